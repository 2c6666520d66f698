//! The notebook's 4-5-1 sigmoid network written with the engine: the bridge between the
//! hand-derived backward pass ([`crate::notebook`]) and automatic differentiation.

use ndarray::{ArrayView1, ArrayView2};

use super::{Tape, Var};
use crate::notebook::Weights;
use crate::{Error, Result};

/// Every node of the notebook's forward pass, named as in the derivation.
#[derive(Clone, Copy, Debug)]
pub struct NotebookGraph<'t> {
    /// Input x (constant).
    pub x: Var<'t, f64>,
    /// W⁽¹⁾ (D×K).
    pub w_1: Var<'t, f64>,
    /// w⁽²⁾ (K).
    pub w_2: Var<'t, f64>,
    /// b⁽¹⁾ (K).
    pub b_1: Var<'t, f64>,
    /// b⁽²⁾ (0-d).
    pub b_2: Var<'t, f64>,
    /// z⁽¹⁾ = xᵀW⁽¹⁾ + b⁽¹⁾.
    pub z_1: Var<'t, f64>,
    /// x⁽¹⁾ = σ(z⁽¹⁾).
    pub x_1: Var<'t, f64>,
    /// z⁽²⁾ = w⁽²⁾ᵀx⁽¹⁾ + b⁽²⁾.
    pub z_2: Var<'t, f64>,
    /// ŷ = σ(z⁽²⁾).
    pub y_hat: Var<'t, f64>,
    /// L = ½(ŷ − y)² (mean over samples in the batch form).
    pub loss: Var<'t, f64>,
}

impl<'t> NotebookGraph<'t> {
    /// The parameters in the notebook's order: `[w_1, w_2, b_1, b_2]`.
    pub fn params(&self) -> [Var<'t, f64>; 4] {
        [self.w_1, self.w_2, self.b_1, self.b_2]
    }
}

fn record<'t>(
    tape: &'t Tape<f64>,
    x: Var<'t, f64>,
    y: Var<'t, f64>,
    w: &Weights,
) -> Result<NotebookGraph<'t>> {
    let w_1 = tape.var_named("w_1", &w.w_1);
    let w_2 = tape.var_named("w_2", &w.w_2);
    let b_1 = tape.var_named("b_1", &w.b_1);
    let b_2 = tape.scalar_named("b_2", w.b_2);
    let z_1 = x.matmul(w_1) + b_1;
    let x_1 = z_1.sigmoid();
    let z_2 = x_1.matmul(w_2) + b_2;
    let y_hat = z_2.sigmoid();
    let loss = y_hat.squared_error(y);
    tape.status()?;
    Ok(NotebookGraph { x, w_1, w_2, b_1, b_2, z_1, x_1, z_2, y_hat, loss })
}

/// Records the notebook network for one sample `(x, y)` on `tape`.
pub fn notebook_network<'t>(
    tape: &'t Tape<f64>,
    y: f64,
    x: ArrayView1<'_, f64>,
    w: &Weights,
) -> Result<NotebookGraph<'t>> {
    if x.len() != w.inputs() {
        return Err(Error::shape(
            "notebook_network",
            format!("x has {} entries but w_1 is {:?}", x.len(), w.w_1.shape()),
        ));
    }
    let xv = tape.constant_named("x", &x);
    let yv = tape.constant_scalar_named("y", y);
    record(tape, xv, yv, w)
}

/// Records the batch form: `x` is n×D, `y` has n entries, L = (1/n) Σₛ ½(ŷₛ − yₛ)².
pub fn notebook_batch_network<'t>(
    tape: &'t Tape<f64>,
    y: ArrayView1<'_, f64>,
    x: ArrayView2<'_, f64>,
    w: &Weights,
) -> Result<NotebookGraph<'t>> {
    if x.ncols() != w.inputs() || y.len() != x.nrows() {
        return Err(Error::shape(
            "notebook_batch_network",
            format!("x {:?}, y {:?} and w_1 {:?} do not fit", x.shape(), y.shape(), w.w_1.shape()),
        ));
    }
    let xv = tape.constant_named("x", &x);
    let yv = tape.constant_named("y", &y);
    record(tape, xv, yv, w)
}
