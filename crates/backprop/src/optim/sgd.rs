//! Gradient descent and SGD with (Nesterov) momentum, in PyTorch's formulation.

use ndarray::Zip;

use crate::Scalar;
use crate::nn::rows::by_rows;
use crate::nn::{Grads, Mlp};
use crate::tensor::vmath;

/// θ ← θ − lr·g.
pub(super) fn plain<T: Scalar>(model: &mut Mlp<T>, grads: &Grads<T>, lr: f64) {
    let lr = T::of(lr);
    let rule = |w: &mut T, &g: &T| *w -= lr * g;
    for (layer, g) in model.layers.iter_mut().zip(&grads.as_mlp().layers) {
        let (o, i) = layer.weight.dim();
        by_rows((layer.weight.view_mut(), g.weight.view()), o, i, |(w, g)| {
            Zip::from(w).and(g).for_each(rule)
        });
        if let (Some(b), Some(gb)) = (&mut layer.bias, &g.bias) {
            vmath::vectorized(
                #[inline(always)]
                || Zip::from(b).and(gb).for_each(rule),
            );
        }
    }
}

/// v ← m·v + g; θ ← θ − lr·v, or with Nesterov θ ← θ − lr·(g + m·v).
/// (PyTorch's first step sets v = g, which is the same as starting from v = 0.)
pub(super) fn momentum<T: Scalar>(
    model: &mut Mlp<T>,
    grads: &Grads<T>,
    velocity: &mut Grads<T>,
    lr: f64,
    momentum: f64,
    nesterov: bool,
) {
    let (lr, m) = (T::of(lr), T::of(momentum));
    let rule = |w: &mut T, &g: &T, v: &mut T| {
        *v = m * *v + g;
        let d = if nesterov { g + m * *v } else { *v };
        *w -= lr * d;
    };
    for ((layer, g), v) in
        model.layers.iter_mut().zip(&grads.as_mlp().layers).zip(&mut velocity.as_mlp_mut().layers)
    {
        let (o, i) = layer.weight.dim();
        let views = (layer.weight.view_mut(), g.weight.view(), v.weight.view_mut());
        by_rows(views, o, i, |(w, g, v)| Zip::from(w).and(g).and(v).for_each(rule));
        if let (Some(b), Some(gb), Some(vb)) = (&mut layer.bias, &g.bias, &mut v.bias) {
            vmath::vectorized(
                #[inline(always)]
                || Zip::from(b).and(gb).and(vb).for_each(rule),
            );
        }
    }
}
