//! The L2 penalty and decoupled weight decay: two different things, named apart.
//!
//! **L2 penalty** (`l2 = μ`, the notebook's regulariser): the objective becomes
//! L(θ) + (μ/2)‖w‖², where w are the *weights only* — biases are never penalised, as the
//! notebook says. Its gradient adds μ·w to the weights' gradients (and nothing to the biases'),
//! before any optimiser sees it, so with Adam it is scaled by Adam's step like any gradient. The
//! regularised Hessian is H + μ·diag(mask). Which entries are penalised is decided in one place,
//! [`ParamSpec::penalised`](crate::nn::ParamSpec::penalised), which also defines
//! [`Mlp::penalty_mask`](crate::nn::Mlp::penalty_mask); this module reads it from there.
//!
//! **Decoupled weight decay** (`weight_decay = λ`, as in AdamW, Loshchilov & Hutter 2019): not
//! part of the loss; each step first shrinks the masked weights, w ← (1 − lr·λ)·w, then applies
//! the optimiser's update to the unpenalised gradient.

use ndarray::Zip;

use crate::nn::rows::by_rows;
use crate::nn::{Grads, Mlp};
use crate::{Error, Result, Scalar};

/// L2 penalty and decoupled weight decay strengths (both 0 by default).
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Penalty {
    /// μ in (μ/2)‖w‖² added to the loss (weights only).
    pub l2: f64,
    /// λ in the decoupled decay w ← (1 − lr·λ)w (weights only), AdamW-style.
    pub weight_decay: f64,
}

/// Per layer: (weight penalised, bias penalised), read from [`crate::nn::ParamSpec::penalised`].
pub(crate) fn layer_mask<T: Scalar>(mlp: &Mlp<T>) -> Vec<(bool, bool)> {
    let mut mask = vec![(false, false); mlp.layers.len()];
    for spec in mlp.param_specs() {
        if spec.is_bias {
            mask[spec.layer].1 = spec.penalised();
        } else {
            mask[spec.layer].0 = spec.penalised();
        }
    }
    mask
}

impl Penalty {
    /// An L2 penalty of strength μ.
    pub fn l2(mu: f64) -> Self {
        Penalty { l2: mu, weight_decay: 0.0 }
    }

    /// Checks both strengths are finite and non-negative.
    pub fn validate(&self) -> Result<()> {
        for (name, v) in [("l2", self.l2), ("weight_decay", self.weight_decay)] {
            if !v.is_finite() || v < 0.0 {
                return Err(Error::invalid(name, format!("must be a finite number ≥ 0, got {v}")));
            }
        }
        Ok(())
    }

    /// (μ/2)‖w‖² over the penalised entries (0 if μ = 0).
    pub fn value<T: Scalar>(&self, mlp: &Mlp<T>) -> f64 {
        if self.l2 == 0.0 {
            return 0.0;
        }
        let mut s = 0.0;
        for (layer, (w_pen, b_pen)) in mlp.layers.iter().zip(layer_mask(mlp)) {
            if w_pen {
                s += layer.weight.iter().map(|v| v.f64() * v.f64()).sum::<f64>();
            }
            if b_pen && let Some(b) = &layer.bias {
                s += b.iter().map(|v| v.f64() * v.f64()).sum::<f64>();
            }
        }
        0.5 * self.l2 * s
    }

    /// g ← g + μ·w on the penalised entries.
    pub fn add_gradient<T: Scalar>(&self, mlp: &Mlp<T>, grads: &mut Grads<T>, mask: &[(bool, bool)]) {
        if self.l2 == 0.0 {
            return;
        }
        let mu = T::of(self.l2);
        for ((layer, g), &(w_pen, b_pen)) in mlp.layers.iter().zip(&mut grads.as_mlp_mut().layers).zip(mask) {
            if w_pen {
                let (o, i) = layer.weight.dim();
                let views = (g.weight.view_mut(), layer.weight.view());
                by_rows(views, o, i, |(g, w)| Zip::from(g).and(w).for_each(|g, &w| *g += mu * w));
            }
            if b_pen && let (Some(gb), Some(b)) = (&mut g.bias, &layer.bias) {
                Zip::from(gb).and(b).for_each(|g, &w| *g += mu * w);
            }
        }
    }

    /// w ← (1 − lr·λ)·w on the penalised entries (decoupled decay).
    pub fn decay<T: Scalar>(&self, mlp: &mut Mlp<T>, lr: f64, mask: &[(bool, bool)]) {
        if self.weight_decay == 0.0 {
            return;
        }
        let f = T::of(1.0 - lr * self.weight_decay);
        for (layer, &(w_pen, b_pen)) in mlp.layers.iter_mut().zip(mask) {
            if w_pen {
                let (o, i) = layer.weight.dim();
                by_rows(layer.weight.view_mut(), o, i, |w| Zip::from(w).for_each(|w| *w *= f));
            }
            if b_pen && let Some(b) = &mut layer.bias {
                b.mapv_inplace(|w| w * f);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::{Activation, Loss, MlpBuilder, ParamSelection};
    use ndarray::array;

    #[test]
    fn l2_gradient_is_mu_w_on_weights_and_zero_on_biases() {
        let mut m = MlpBuilder::new(&[2, 3, 1]).activation(Activation::Tanh).seed(3).build::<f64>().unwrap();
        m.layers[0].bias.as_mut().unwrap().fill(0.7);
        let p = Penalty::l2(0.1);
        let mut g = Grads::zeros_like(&m);
        p.add_gradient(&m, &mut g, &layer_mask(&m));
        let expect = &m.flat_params(ParamSelection::All) * &m.penalty_mask(ParamSelection::All) * 0.1;
        assert_eq!(g.flat(ParamSelection::All), expect);
        let w = m.flat_params(ParamSelection::Weights);
        assert!((p.value(&m) - 0.05 * w.dot(&w)).abs() < 1e-15);
        // finite-difference check of the penalised objective's gradient
        let (x, y) = (array![[0.3, -0.2]], array![[0.5]]);
        let obj = |m: &Mlp<f64>| m.loss(Loss::Mse, x.view(), y.view()).unwrap() + p.value(m);
        let (_, mut g) = m.loss_and_grad(Loss::Mse, x.view(), y.view()).unwrap();
        p.add_gradient(&m, &mut g, &layer_mask(&m));
        let theta = m.flat_params(ParamSelection::All);
        for k in 0..theta.len() {
            let mut t = theta.clone();
            t[k] += 1e-6;
            let mut mp = m.clone();
            mp.set_flat_params(ParamSelection::All, t.as_slice().unwrap()).unwrap();
            t[k] -= 2e-6;
            let mut mm = m.clone();
            mm.set_flat_params(ParamSelection::All, t.as_slice().unwrap()).unwrap();
            let fd = (obj(&mp) - obj(&mm)) / 2e-6;
            assert!((fd - g.flat(ParamSelection::All)[k]).abs() < 1e-8, "{k}");
        }
    }

    #[test]
    fn decoupled_decay_shrinks_weights_only() {
        let mut m = MlpBuilder::new(&[2, 2]).seed(1).build::<f64>().unwrap();
        m.layers[0].bias.as_mut().unwrap().fill(1.0);
        let before = m.clone();
        let mask = layer_mask(&m);
        Penalty { l2: 0.0, weight_decay: 0.5 }.decay(&mut m, 0.1, &mask);
        assert_eq!(m.layers[0].weight, &before.layers[0].weight * 0.95);
        assert_eq!(m.layers[0].bias, before.layers[0].bias);
        assert!(Penalty::l2(-1.0).validate().is_err());
    }
}
