//! Neural networks: activations, losses and the multilayer perceptron.

pub mod activation;
pub mod any;
pub mod loss;
pub mod mlp;
pub mod params;

pub use activation::Activation;
pub use any::AnyMlp;
pub use loss::Loss;
pub use mlp::{Layer, Mlp};
pub use params::{ParamSelection, ParamSpec};
