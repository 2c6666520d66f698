//! Optimisers: full-batch gradient descent (the notebook's), minibatch SGD with momentum or
//! Nesterov momentum, and Adam — with the L2 penalty and decoupled weight decay of [`penalty`].
//!
//! Update rules follow PyTorch's `torch.optim.SGD` and `torch.optim.Adam` exactly (same
//! formulas, same order of operations), so a run can be checked step by step against PyTorch.
//!
//! ```
//! use backprop::nn::{Loss, MlpBuilder};
//! use backprop::optim::{Optimizer, OptimizerConfig, Penalty};
//! use ndarray::array;
//!
//! let mut m = MlpBuilder::new(&[2, 3, 1]).seed(1).build::<f64>().unwrap();
//! let (x, y) = (array![[0.0, 1.0], [1.0, 0.0]], array![[1.0], [0.0]]);
//! let mut opt = Optimizer::new(OptimizerConfig::adam(0.01), Penalty::l2(1e-3), &m).unwrap();
//! let before = m.loss(Loss::SquaredError, x.view(), y.view()).unwrap();
//! for _ in 0..200 {
//!     let (_, mut g) = m.loss_and_grad(Loss::SquaredError, x.view(), y.view()).unwrap();
//!     opt.step(&mut m, &mut g);
//! }
//! assert!(m.loss(Loss::SquaredError, x.view(), y.view()).unwrap() < before);
//! ```

mod adam;
pub mod penalty;
mod sgd;

use std::fmt;

pub use penalty::Penalty;

use ndarray::ArrayView2;

use crate::nn::{Grads, Loss, Mlp, Workspace};
use crate::{Error, Result, Scalar};

/// Which optimiser, with its hyper-parameters.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "name", rename_all = "snake_case")]
pub enum OptimizerConfig {
    /// Gradient descent θ ← θ − lr·∇L; the training loop uses the whole data set as one batch.
    Gd {
        /// Learning rate.
        lr: f64,
    },
    /// Minibatch SGD with optional (Nesterov) momentum, PyTorch's convention:
    /// v ← m·v + g; θ ← θ − lr·v (or θ ← θ − lr·(g + m·v) with Nesterov).
    Sgd {
        /// Learning rate.
        lr: f64,
        /// Momentum m ∈ [0, 1).
        momentum: f64,
        /// Nesterov momentum (needs m > 0).
        nesterov: bool,
    },
    /// Adam (Kingma & Ba): m ← β₁m + (1−β₁)g, v ← β₂v + (1−β₂)g²,
    /// θ ← θ − (lr/(1−β₁ᵗ))·m/(√v/√(1−β₂ᵗ) + ε).
    Adam {
        /// Learning rate.
        lr: f64,
        /// β₁.
        beta1: f64,
        /// β₂.
        beta2: f64,
        /// ε.
        eps: f64,
    },
}

impl OptimizerConfig {
    /// The names on the command line.
    pub const NAMES: [&'static str; 3] = ["gd", "sgd", "adam"];

    /// Full-batch gradient descent.
    pub fn gd(lr: f64) -> Self {
        OptimizerConfig::Gd { lr }
    }

    /// Plain minibatch SGD.
    pub fn sgd(lr: f64) -> Self {
        OptimizerConfig::Sgd { lr, momentum: 0.0, nesterov: false }
    }

    /// Adam with PyTorch's defaults β = (0.9, 0.999), ε = 1e-8.
    pub fn adam(lr: f64) -> Self {
        OptimizerConfig::Adam { lr, beta1: 0.9, beta2: 0.999, eps: 1e-8 }
    }

    /// From a command-line name with the learning rate and momentum options.
    pub fn from_name(name: &str, lr: f64, momentum: f64, nesterov: bool) -> Result<Self> {
        let c = match name {
            "gd" => OptimizerConfig::Gd { lr },
            "sgd" => OptimizerConfig::Sgd { lr, momentum, nesterov },
            "adam" => OptimizerConfig::adam(lr),
            other => {
                return Err(Error::invalid(
                    "optimizer",
                    format!("`{other}` is not one of {}", Self::NAMES.join(", ")),
                ));
            }
        };
        c.validate()?;
        Ok(c)
    }

    /// The command-line name.
    pub fn name(&self) -> &'static str {
        match self {
            OptimizerConfig::Gd { .. } => "gd",
            OptimizerConfig::Sgd { .. } => "sgd",
            OptimizerConfig::Adam { .. } => "adam",
        }
    }

    /// The learning rate.
    pub fn lr(&self) -> f64 {
        match *self {
            OptimizerConfig::Gd { lr }
            | OptimizerConfig::Sgd { lr, .. }
            | OptimizerConfig::Adam { lr, .. } => lr,
        }
    }

    /// Whether the optimiser works on the whole data set at once.
    pub fn is_full_batch(&self) -> bool {
        matches!(self, OptimizerConfig::Gd { .. })
    }

    /// Checks every hyper-parameter's range.
    pub fn validate(&self) -> Result<()> {
        let lr = self.lr();
        if !lr.is_finite() || lr <= 0.0 {
            return Err(Error::invalid("lr", format!("must be a finite number > 0, got {lr}")));
        }
        match *self {
            OptimizerConfig::Sgd { momentum, nesterov, .. } => {
                if !(0.0..1.0).contains(&momentum) {
                    return Err(Error::invalid("momentum", format!("must be in [0, 1), got {momentum}")));
                }
                if nesterov && momentum == 0.0 {
                    return Err(Error::invalid("nesterov", "needs a momentum > 0"));
                }
            }
            OptimizerConfig::Adam { beta1, beta2, eps, .. } => {
                for (n, b) in [("beta1", beta1), ("beta2", beta2)] {
                    if !(0.0..1.0).contains(&b) {
                        return Err(Error::invalid(n, format!("must be in [0, 1), got {b}")));
                    }
                }
                if !eps.is_finite() || eps <= 0.0 {
                    return Err(Error::invalid("eps", format!("must be > 0, got {eps}")));
                }
            }
            OptimizerConfig::Gd { .. } => {}
        }
        Ok(())
    }

    /// Names of the state slots (tensors shaped like the model) this optimiser keeps.
    pub fn slot_names(&self) -> &'static [&'static str] {
        match *self {
            OptimizerConfig::Gd { .. } => &[],
            OptimizerConfig::Sgd { momentum: 0.0, .. } => &[],
            OptimizerConfig::Sgd { .. } => &["velocity"],
            OptimizerConfig::Adam { .. } => &["exp_avg", "exp_avg_sq"],
        }
    }
}

impl fmt::Display for OptimizerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            OptimizerConfig::Gd { lr } => write!(f, "gd(lr={lr})"),
            OptimizerConfig::Sgd { lr, momentum, nesterov } => {
                write!(f, "sgd(lr={lr}, momentum={momentum}{})", if nesterov { ", nesterov" } else { "" })
            }
            OptimizerConfig::Adam { lr, beta1, beta2, eps } => {
                write!(f, "adam(lr={lr}, betas=({beta1}, {beta2}), eps={eps})")
            }
        }
    }
}

/// Everything an optimiser carries between steps: what a checkpoint must save.
#[derive(Clone, Debug, PartialEq)]
pub struct OptimizerState<T> {
    /// Steps taken so far (Adam's t).
    pub step: u64,
    /// Model-shaped buffers, named by [`OptimizerConfig::slot_names`].
    pub slots: Vec<Grads<T>>,
}

/// An optimiser with its state, bound to one model's shapes.
#[derive(Clone, Debug)]
pub struct Optimizer<T> {
    config: OptimizerConfig,
    penalty: Penalty,
    mask: Vec<(bool, bool)>,
    state: OptimizerState<T>,
}

impl<T: Scalar> Optimizer<T> {
    /// A fresh optimiser for `model` (state zero).
    pub fn new(config: OptimizerConfig, penalty: Penalty, model: &Mlp<T>) -> Result<Self> {
        config.validate()?;
        penalty.validate()?;
        let slots = config.slot_names().iter().map(|_| Grads::zeros_like(model)).collect();
        Ok(Optimizer {
            config,
            penalty,
            mask: penalty::layer_mask(model),
            state: OptimizerState { step: 0, slots },
        })
    }

    /// The configuration.
    pub fn config(&self) -> &OptimizerConfig {
        &self.config
    }

    /// The penalty.
    pub fn penalty(&self) -> &Penalty {
        &self.penalty
    }

    /// The state (for checkpoints).
    pub fn state(&self) -> &OptimizerState<T> {
        &self.state
    }

    /// Restores a saved state; its slots must match this optimiser and model.
    pub fn set_state(&mut self, state: OptimizerState<T>) -> Result<()> {
        if state.slots.len() != self.state.slots.len()
            || state.slots.iter().zip(&self.state.slots).any(|(a, b)| !a.fits(b.as_mlp()))
        {
            return Err(Error::shape(
                "optimizer state",
                format!(
                    "{} needs {} model-shaped slots ({:?})",
                    self.config.name(),
                    self.state.slots.len(),
                    self.config.slot_names()
                ),
            ));
        }
        self.state = state;
        Ok(())
    }

    /// The L2 penalty (μ/2)‖w‖² at `model` (0 without one).
    pub fn penalty_value(&self, model: &Mlp<T>) -> f64 {
        self.penalty.value(model)
    }

    /// One update of `model` from the data-loss gradient `grads`. Adds the L2 term μ·w to
    /// `grads` first (so `grads` holds the penalised objective's gradient afterwards), applies
    /// decoupled decay if set, then the optimiser's rule.
    pub fn step(&mut self, model: &mut Mlp<T>, grads: &mut Grads<T>) {
        debug_assert!(grads.fits(model));
        self.penalty.add_gradient(model, grads, &self.mask);
        self.penalty.decay(model, self.config.lr(), &self.mask);
        self.state.step += 1;
        match self.config {
            OptimizerConfig::Gd { lr } => sgd::plain(model, grads, lr),
            OptimizerConfig::Sgd { lr, momentum: 0.0, .. } => sgd::plain(model, grads, lr),
            OptimizerConfig::Sgd { lr, momentum, nesterov } => {
                sgd::momentum(model, grads, &mut self.state.slots[0], lr, momentum, nesterov)
            }
            OptimizerConfig::Adam { lr, beta1, beta2, eps } => {
                let (m, v) = self.state.slots.split_at_mut(1);
                adam::step(model, grads, &mut m[0], &mut v[0], self.state.step, lr, beta1, beta2, eps)
            }
        }
    }
}

impl<T: Scalar> Optimizer<T> {
    /// One training step on the batch (x, y): the loss and gradient of `model` through `ws`,
    /// then this optimiser's update. Returns the data loss before the step. Shapes and targets
    /// are checked as by [`Workspace::loss_and_grad`]; if the loss is not finite the model is
    /// left unchanged, so a training loop can stop on divergence with the last weights.
    ///
    /// Gradient descent and SGD without momentum, L2 penalty or weight decay fuse the update
    /// into the backward pass: each weight gradient GEMM accumulates −lr·δᵀa straight into the
    /// weights, so no gradient matrix is written and re-read (the weights are touched once
    /// instead of three times; equal to [`Optimizer::step`] up to rounding). `grads` is then
    /// only scratch. Every other configuration fills `grads` as [`Workspace::loss_and_grad`]
    /// does and calls [`Optimizer::step`].
    ///
    /// ```
    /// use backprop::nn::{Grads, Loss, MlpBuilder, Workspace};
    /// use backprop::optim::{Optimizer, OptimizerConfig, Penalty};
    /// use ndarray::array;
    ///
    /// let mut m = MlpBuilder::new(&[2, 3, 1]).seed(1).build::<f64>().unwrap();
    /// let (x, y) = (array![[0.0, 1.0], [1.0, 0.0]], array![[1.0], [0.0]]);
    /// let (mut ws, mut g) = (Workspace::new(&m, 2), Grads::zeros_like(&m));
    /// let mut opt = Optimizer::new(OptimizerConfig::sgd(0.5), Penalty::default(), &m).unwrap();
    /// let first = opt.train_step(&mut ws, &mut m, Loss::SquaredError, x.view(), y.view(), &mut g).unwrap();
    /// for _ in 0..50 {
    ///     opt.train_step(&mut ws, &mut m, Loss::SquaredError, x.view(), y.view(), &mut g).unwrap();
    /// }
    /// assert!(m.loss(Loss::SquaredError, x.view(), y.view()).unwrap() < first);
    /// ```
    pub fn train_step(
        &mut self,
        ws: &mut Workspace<T>,
        model: &mut Mlp<T>,
        loss: Loss,
        x: ArrayView2<'_, T>,
        y: ArrayView2<'_, T>,
        grads: &mut Grads<T>,
    ) -> Result<f64> {
        crate::nn::backward::check_batch(model, loss, &x, &y)?;
        if !grads.fits(model) {
            return Err(Error::shape("train_step", "the gradient container is not shaped like the model"));
        }
        Ok(self.train_step_unchecked(ws, model, loss, x, y, grads))
    }

    /// [`Optimizer::train_step`] after its checks (the training loop checks the data once).
    pub(crate) fn train_step_unchecked(
        &mut self,
        ws: &mut Workspace<T>,
        model: &mut Mlp<T>,
        loss: Loss,
        x: ArrayView2<'_, T>,
        y: ArrayView2<'_, T>,
        grads: &mut Grads<T>,
    ) -> f64 {
        let plain_lr = match self.config {
            OptimizerConfig::Gd { lr } | OptimizerConfig::Sgd { lr, momentum: 0.0, .. } => Some(lr),
            _ => None,
        };
        match plain_lr {
            Some(lr) if self.penalty.l2 == 0.0 && self.penalty.weight_decay == 0.0 => {
                let value = ws.loss_and_sgd_step_unchecked(model, loss, x, y, T::of(lr), grads);
                if value.is_finite() {
                    self.state.step += 1;
                }
                value
            }
            _ => {
                let value = ws.loss_and_grad_unchecked(model, loss, x, y, grads);
                if value.is_finite() {
                    self.step(model, grads);
                }
                value
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::{MlpBuilder, ParamSelection};

    fn setup() -> (Mlp<f64>, Grads<f64>) {
        let m = MlpBuilder::new(&[2, 2]).seed(4).build::<f64>().unwrap();
        let mut g = Grads::zeros_like(&m);
        g.set_flat(ParamSelection::All, &[0.1, -0.2, 0.3, 0.4, -0.5, 0.6]).unwrap();
        (m, g)
    }

    #[test]
    fn sgd_momentum_and_nesterov_follow_the_torch_formulas() {
        for nesterov in [false, true] {
            let (mut m, g) = setup();
            let theta0 = m.flat_params(ParamSelection::All);
            let gf = g.flat(ParamSelection::All);
            let mut opt = Optimizer::new(
                OptimizerConfig::Sgd { lr: 0.1, momentum: 0.9, nesterov },
                Penalty::default(),
                &m,
            )
            .unwrap();
            opt.step(&mut m, &mut g.clone());
            opt.step(&mut m, &mut g.clone());
            // v1 = g, v2 = 1.9 g; plain: θ0 − 0.1(g + 1.9g); nesterov: θ0 − 0.1((g + 0.9g) + (g + 1.71g))
            let total = if nesterov { 1.9 + 2.71 } else { 1.0 + 1.9 };
            let expect = &theta0 - &(&gf * (0.1 * total));
            let got = m.flat_params(ParamSelection::All);
            for (a, b) in got.iter().zip(expect.iter()) {
                assert!((a - b).abs() < 1e-15, "{a} vs {b}");
            }
        }
    }

    #[test]
    fn adam_first_step_moves_each_parameter_by_lr_against_its_gradient_sign() {
        let (mut m, g) = setup();
        let theta0 = m.flat_params(ParamSelection::All);
        let mut opt = Optimizer::new(OptimizerConfig::adam(0.01), Penalty::default(), &m).unwrap();
        opt.step(&mut m, &mut g.clone());
        let d = &m.flat_params(ParamSelection::All) - &theta0;
        for (di, gi) in d.iter().zip(g.flat(ParamSelection::All).iter()) {
            assert!((di + 0.01 * gi.signum()).abs() < 1e-9, "{di} for gradient {gi}");
        }
        assert_eq!(opt.state().step, 1);
        assert_eq!(opt.state().slots.len(), 2);
    }

    #[test]
    fn l2_in_step_equals_adding_mu_w_to_weight_gradients_only() {
        let (m0, g) = setup();
        let mut a = m0.clone();
        let mut opt = Optimizer::new(OptimizerConfig::gd(0.5), Penalty::l2(0.2), &a).unwrap();
        opt.step(&mut a, &mut g.clone());
        let expect = &m0.flat_params(ParamSelection::All)
            - &((&g.flat(ParamSelection::All)
                + &(&m0.flat_params(ParamSelection::All) * &m0.penalty_mask(ParamSelection::All) * 0.2))
                * 0.5);
        assert_eq!(a.flat_params(ParamSelection::All), expect);
    }

    #[test]
    fn fused_sgd_step_equals_gradient_then_step() {
        use crate::nn::{Activation, Workspace};
        use ndarray::Array2;
        // Hidden layers with and without bias, two activations; a few steps in f64.
        for (acts, bias) in [(Activation::Tanh, true), (Activation::Relu, false), (Activation::Sigmoid, true)]
        {
            let mut fused =
                MlpBuilder::new(&[5, 7, 6, 3]).activation(acts).bias(bias).seed(9).build::<f64>().unwrap();
            let mut plain = fused.clone();
            let x = Array2::from_shape_fn((11, 5), |(i, j)| ((i * 5 + j) as f64 * 0.37).sin());
            let y = Array2::from_shape_fn((11, 1), |(i, _)| (i % 3) as f64);
            let config = OptimizerConfig::sgd(0.3);
            let mut opt_f = Optimizer::new(config, Penalty::default(), &fused).unwrap();
            let mut opt_p = opt_f.clone();
            let (mut ws, mut g) = (Workspace::new(&fused, 11), Grads::zeros_like(&fused));
            for _ in 0..4 {
                let lf = opt_f
                    .train_step(&mut ws, &mut fused, Loss::CrossEntropy, x.view(), y.view(), &mut g)
                    .unwrap();
                let (lp, mut gp) = plain.loss_and_grad(Loss::CrossEntropy, x.view(), y.view()).unwrap();
                opt_p.step(&mut plain, &mut gp);
                assert!((lf - lp).abs() <= 1e-14 * lp.abs(), "{lf} vs {lp}");
            }
            assert_eq!(opt_f.state().step, 4);
            // W − lr·δᵀa in one GEMM vs W − lr·(δᵀa rounded): equal up to a few roundings.
            let (a, b) = (fused.flat_params(ParamSelection::All), plain.flat_params(ParamSelection::All));
            for (u, v) in a.iter().zip(b.iter()) {
                assert!((u - v).abs() <= 1e-13 * (1.0 + v.abs()), "{acts}: {u} vs {v}");
            }
        }
    }

    #[test]
    fn train_step_without_fusion_is_gradient_then_step_exactly() {
        use crate::nn::Workspace;
        use ndarray::array;
        let (x, y) = (array![[0.0, 1.0], [1.0, 0.0], [0.5, 0.5]], array![[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]]);
        for (config, penalty) in [
            (OptimizerConfig::Sgd { lr: 0.1, momentum: 0.9, nesterov: true }, Penalty::default()),
            (OptimizerConfig::adam(0.01), Penalty::default()),
            (OptimizerConfig::sgd(0.1), Penalty::l2(0.01)),
        ] {
            let mut a = MlpBuilder::new(&[2, 4, 2]).seed(3).build::<f64>().unwrap();
            let mut b = a.clone();
            let mut opt_a = Optimizer::new(config, penalty, &a).unwrap();
            let mut opt_b = opt_a.clone();
            let (mut ws, mut g) = (Workspace::new(&a, 3), Grads::zeros_like(&a));
            for _ in 0..3 {
                let la = opt_a.train_step(&mut ws, &mut a, Loss::Mse, x.view(), y.view(), &mut g).unwrap();
                let (lb, mut gb) = b.loss_and_grad(Loss::Mse, x.view(), y.view()).unwrap();
                opt_b.step(&mut b, &mut gb);
                assert_eq!(la, lb);
                assert_eq!(g, gb);
            }
            assert_eq!(a, b, "{config}");
        }
    }

    #[test]
    fn train_step_checks_shapes_and_leaves_the_model_on_a_non_finite_loss() {
        use crate::nn::Workspace;
        use ndarray::array;
        // Identity activations: inputs of 1e300 overflow the squared error to ∞.
        let mut m = MlpBuilder::new(&[2, 3, 1])
            .activation(crate::nn::Activation::Identity)
            .seed(2)
            .build::<f64>()
            .unwrap();
        let mut opt = Optimizer::new(OptimizerConfig::sgd(0.1), Penalty::default(), &m).unwrap();
        let (mut ws, mut g) = (Workspace::new(&m, 1), Grads::zeros_like(&m));
        let bad_width = array![[1.0, 2.0, 3.0]];
        assert!(
            opt.train_step(&mut ws, &mut m, Loss::Mse, bad_width.view(), array![[1.0]].view(), &mut g)
                .is_err()
        );
        let before = m.clone();
        let l = opt.train_step(
            &mut ws,
            &mut m,
            Loss::Mse,
            array![[1e300, 1e300]].view(),
            array![[1.0]].view(),
            &mut g,
        );
        assert!(!l.unwrap().is_finite());
        assert_eq!(m, before);
        assert_eq!(opt.state().step, 0);
    }

    #[test]
    fn bad_hyper_parameters_are_errors() {
        assert!(
            OptimizerConfig::from_name("rmsprop", 0.1, 0.0, false).unwrap_err().to_string().contains("adam")
        );
        assert!(OptimizerConfig::from_name("sgd", -0.1, 0.0, false).is_err());
        assert!(OptimizerConfig::from_name("sgd", 0.1, 1.0, false).is_err());
        assert!(OptimizerConfig::from_name("sgd", 0.1, 0.0, true).is_err());
        assert!(OptimizerConfig::from_name("gd", f64::NAN, 0.0, false).is_err());
    }
}
