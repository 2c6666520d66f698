//! # backprop
//!
//! Gradients of neural networks by backpropagation — from the teaching notebook's 4-5-1 sigmoid
//! network, derived by hand ([`notebook`]), to a general reverse-mode autodiff engine with
//! higher-order derivatives, MLPs trained on real data, and exact curvature analysis.

pub mod autodiff;
pub mod curvature;
pub mod data;
pub mod error;
pub mod io;
pub mod nn;
pub mod notebook;
pub mod optim;
mod parallel;
pub mod tensor;
mod thread_cache;
pub mod train;

pub use error::{Error, Result};
pub use tensor::{DType, Scalar};
