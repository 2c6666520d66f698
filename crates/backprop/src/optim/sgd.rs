//! Gradient descent and SGD with (Nesterov) momentum, in PyTorch's formulation.

use ndarray::Zip;

use crate::Scalar;
use crate::nn::{Grads, Mlp};

/// θ ← θ − lr·g.
pub(super) fn plain<T: Scalar>(model: &mut Mlp<T>, grads: &Grads<T>, lr: f64) {
    let lr = T::of(lr);
    for (layer, g) in model.layers.iter_mut().zip(&grads.as_mlp().layers) {
        Zip::from(&mut layer.weight).and(&g.weight).for_each(|w, &g| *w -= lr * g);
        if let (Some(b), Some(gb)) = (&mut layer.bias, &g.bias) {
            Zip::from(b).and(gb).for_each(|w, &g| *w -= lr * g);
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
        Zip::from(&mut layer.weight).and(&g.weight).and(&mut v.weight).for_each(rule);
        if let (Some(b), Some(gb), Some(vb)) = (&mut layer.bias, &g.bias, &mut v.bias) {
            Zip::from(b).and(gb).and(vb).for_each(rule);
        }
    }
}
