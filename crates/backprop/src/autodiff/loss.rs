//! Losses as compositions of tape ops (so they differentiate to any order), and the bridge
//! from the `nn` activation and loss enums to tape ops.

use ndarray::{ArrayD, IxDyn};

use super::var::Var;
use crate::nn::{Activation, Loss};
use crate::{Error, Result, Scalar};

impl<'t, T: Scalar> Var<'t, T> {
    fn same_shape(self, target: Var<'t, T>, op: &str) -> Result<()> {
        if !self.with_shape(|a| target.with_shape(|b| a == b)) {
            let (a, b) = (self.shape(), target.shape());
            return Err(Error::shape(
                op,
                format!("prediction {a:?} and target {b:?} differ (no implicit broadcasting in losses)"),
            ));
        }
        Ok(())
    }

    fn failed(self, e: Error) -> Self {
        self.tape.record_error(e);
        self.tape.push(super::op::Op::Invalid, |_, _| Err(Error::Autodiff("invalid operand".into())))
    }

    /// The notebook's loss: `L = (1/n) Σₛ ½‖ŷₛ − yₛ‖²`, summed over outputs and averaged over the
    /// `n` samples on axis 0 (a 0-d prediction is one sample: `½(ŷ − y)²`).
    pub fn squared_error(self, target: Var<'t, T>) -> Self {
        if let Err(e) = self.same_shape(target, "squared_error") {
            return self.failed(e);
        }
        let n = self.with_shape(|s| s.first().copied().unwrap_or(1).max(1));
        (self - target).square().sum().scale(T::of(0.5 / n as f64))
    }

    /// Mean squared error over all elements, `mean((ŷ − y)²)` (PyTorch's `MSELoss`).
    pub fn mse(self, target: Var<'t, T>) -> Self {
        if let Err(e) = self.same_shape(target, "mse") {
            return self.failed(e);
        }
        (self - target).square().mean()
    }

    /// Binary cross-entropy from logits `z` with targets `y ∈ [0, 1]`, mean over elements:
    /// `ℓ = softplus(z) − y·z` (= −y ln σ(z) − (1 − y) ln(1 − σ(z)), without overflow).
    pub fn bce_with_logits(self, target: Var<'t, T>) -> Self {
        if let Err(e) = self.same_shape(target, "bce_with_logits") {
            return self.failed(e);
        }
        (self.softplus() - target * self).mean()
    }

    /// Softmax cross-entropy from logits `[n, C]` and class indices (one per row), mean over
    /// rows: `ℓ = −log_softmax(z)[s, yₛ]`, with the maximum subtracted first (stable).
    pub fn cross_entropy_with_logits(self, classes: &[usize]) -> Self {
        let s = self.shape();
        let (logits, n, c) = match s.as_slice() {
            [c] => (self.reshape(&[1, *c]), 1, *c),
            [n, c] => (self, *n, *c),
            _ => {
                return self.failed(Error::shape(
                    "cross_entropy_with_logits",
                    format!("logits must be [n, C] or [C], got {s:?}"),
                ));
            }
        };
        if classes.len() != n {
            return self.failed(Error::shape(
                "cross_entropy_with_logits",
                format!("logits {s:?} have {n} rows but {} class labels were given", classes.len()),
            ));
        }
        if let Some((i, &k)) = classes.iter().enumerate().find(|(_, k)| **k >= c) {
            return self.failed(Error::invalid(
                "cross_entropy_with_logits",
                format!("label {k} of sample {i} is not below the {c} classes"),
            ));
        }
        let index = ArrayD::from_shape_vec(IxDyn(&[n, 1]), classes.to_vec()).expect("n labels");
        -(logits.log_softmax(1).gather(1, &index).mean())
    }

    /// The activation from `nn` as a tape op (identity records nothing).
    pub fn activation(self, a: Activation) -> Self {
        match a {
            Activation::Sigmoid => self.sigmoid(),
            Activation::Tanh => self.tanh(),
            Activation::Relu => self.relu(),
            Activation::LeakyRelu => self.leaky_relu(T::of(crate::nn::activation::LEAKY_SLOPE)),
            Activation::Softplus => self.softplus(),
            Activation::Identity => self,
            #[allow(unreachable_patterns)]
            _ => self.failed(Error::invalid("activation", format!("{a:?} has no tape op"))),
        }
    }

    /// The loss from `nn` on this prediction (logits for `Bce` and `CrossEntropy`); class
    /// targets for `CrossEntropy` are given as a 1-D tensor of indices stored as floats.
    pub fn loss(self, loss: Loss, target: Var<'t, T>) -> Self {
        match loss {
            Loss::SquaredError => self.squared_error(target),
            Loss::Mse => self.mse(target),
            Loss::Bce => self.bce_with_logits(target),
            Loss::CrossEntropy => match target.value() {
                Ok(t) => {
                    let mut classes = Vec::with_capacity(t.len());
                    for (i, &x) in t.iter().enumerate() {
                        if !(x >= T::zero() && x.fract() == T::zero()) {
                            return self.failed(Error::invalid(
                                "cross_entropy target",
                                format!("entry {i} is {x}, not a class index"),
                            ));
                        }
                        classes.push(x.f64() as usize);
                    }
                    self.cross_entropy_with_logits(&classes)
                }
                Err(e) => self.failed(e),
            },
            #[allow(unreachable_patterns)]
            _ => self.failed(Error::invalid("loss", format!("{loss:?} has no tape form"))),
        }
    }
}
