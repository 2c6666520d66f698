//! Reverse-mode automatic differentiation of tensor programs, to any order.
//!
//! The notebook's promise — backpropagation computes the gradient of any compositional function
//! at a cost similar to evaluating it — as an engine:
//!
//! - a [`Tape`]: an append-only arena of nodes in evaluation order, so the backward pass is one
//!   reverse sweep (no graph search, no recursion, no reference cycles);
//! - a [`Var`]: a `Copy` handle with `+ − × ÷` and tensor methods (matmul, reductions,
//!   activations, softmax, indexing, losses), numpy broadcasting, `f32` or `f64`;
//! - one `match` of derivative rules ([`backward`](self)), each beside its formula, run either on
//!   numbers (the fast first-order path) or as tape ops (so gradients are differentiable:
//!   [`Tape::grad_graph`], [`Tape::hvp`], [`Tape::hessian`]); small nodes (elementwise, 1-D/2-D
//!   matmul, full reductions) run the same formulas as slice loops, where per-op overhead would
//!   dominate;
//! - [`Tape::compile`]: a recording compiled into a [`Plan`] that replays it on new values
//!   with preallocated buffers (record once, replay many times, as `jax.jit`);
//! - [`gradcheck`]: analytic derivatives against central finite differences.
//!
//! ```
//! use backprop::autodiff::Tape;
//! use ndarray::array;
//!
//! let tape = Tape::<f64>::new();
//! let w = tape.var(&array![[1.0, 2.0], [3.0, 4.0]]);
//! let x = tape.constant(&array![1.0, -1.0]);
//! // L = Σ tanh(W·x)²
//! let loss = w.matmul(x).tanh().square().sum();
//! let g = tape.grad(loss, &[w])?;
//! // ∂L/∂Wᵢⱼ = 2 tanh(zᵢ)(1 − tanh²(zᵢ)) xⱼ with z = W·x = [−1, −1]
//! let t = (-1.0f64).tanh();
//! let d = 2.0 * t * (1.0 - t * t);
//! assert!((g[0][[0, 0]] - d).abs() < 1e-12 && (g[0][[1, 1]] + d).abs() < 1e-12);
//!
//! // Second order: the gradient is itself a Var.
//! let s = tape.scalar(0.3);
//! let f = s.sin().exp();                      // f = e^{sin s}
//! let df = tape.grad_graph(f, &[s])?[0];      // f' = cos s · e^{sin s}
//! let d2 = tape.grad(df, &[s])?[0].sum();     // f'' = (cos² s − sin s)·e^{sin s}
//! let e = 0.3f64.sin().exp();
//! assert!((d2 - (0.3f64.cos().powi(2) - 0.3f64.sin()) * e).abs() < 1e-12);
//! # Ok::<(), backprop::Error>(())
//! ```

mod backward;
mod check;
mod dot;
mod fast;
mod grad;
mod kernels;
mod loss;
pub mod notebook;
mod op;
mod plan;
mod pool;
mod tape;
mod var;

pub use check::{GradCheck, GradCheckReport, HvpReport, InputReport, gradcheck};
pub use dot::{NodeInfo, summarize};
pub use grad::{grad, grad_graph, hessian, hvp, jacobian, vjp};
pub use notebook::{NotebookGraph, notebook_batch_network, notebook_network};
pub use op::{Binary, Op, Unary};
pub use plan::Plan;
pub use tape::{NodeId, Tape};
pub use var::Var;
