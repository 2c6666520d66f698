//! Adam, in PyTorch's formulation (`torch.optim.Adam`, `foreach=False`):
//!
//! ```text
//! m ← β₁m + (1 − β₁)g          v ← β₂v + (1 − β₂)g²
//! θ ← θ − (lr / (1 − β₁ᵗ)) · m / (√v / √(1 − β₂ᵗ) + ε)
//! ```

use ndarray::Zip;

use crate::Scalar;
use crate::nn::rows::by_rows;
use crate::nn::{Grads, Mlp};
use crate::tensor::vmath;

#[allow(clippy::too_many_arguments)]
pub(super) fn step<T: Scalar>(
    model: &mut Mlp<T>,
    grads: &Grads<T>,
    m: &mut Grads<T>,
    v: &mut Grads<T>,
    t: u64,
    lr: f64,
    beta1: f64,
    beta2: f64,
    eps: f64,
) {
    let t = i32::try_from(t).unwrap_or(i32::MAX);
    let bc1 = 1.0 - beta1.powi(t);
    let bc2_sqrt = (1.0 - beta2.powi(t)).sqrt();
    let (step, b2, eps, bc2) = (T::of(lr / bc1), T::of(beta2), T::of(eps), T::of(bc2_sqrt));
    let (one_b1, one_b2) = (T::of(1.0 - beta1), T::of(1.0 - beta2));
    let rule = |w: &mut T, &g: &T, m: &mut T, v: &mut T| {
        // m.lerp_(g, 1 − β₁) as PyTorch computes it
        *m = *m + one_b1 * (g - *m);
        *v = b2 * *v + one_b2 * g * g;
        *w -= step * (*m / (v.sqrt() / bc2 + eps));
    };
    let layers = model
        .layers
        .iter_mut()
        .zip(&grads.as_mlp().layers)
        .zip(&mut m.as_mlp_mut().layers)
        .zip(&mut v.as_mlp_mut().layers);
    for (((layer, g), m), v) in layers {
        let (o, i) = layer.weight.dim();
        let views = (layer.weight.view_mut(), g.weight.view(), m.weight.view_mut(), v.weight.view_mut());
        by_rows(views, o, i, |(w, g, m, v)| Zip::from(w).and(g).and(m).and(v).for_each(rule));
        if let (Some(b), Some(gb), Some(mb), Some(vb)) = (&mut layer.bias, &g.bias, &mut m.bias, &mut v.bias)
        {
            vmath::vectorized(
                #[inline(always)]
                || Zip::from(b).and(gb).and(mb).and(vb).for_each(rule),
            );
        }
    }
}
