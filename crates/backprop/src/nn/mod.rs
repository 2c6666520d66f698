//! Neural networks: activations, losses, the multilayer perceptron, its initialisers, and the
//! fused forward/backward kernels that compute its gradients.

pub mod activation;
pub mod any;
pub mod backward;
pub mod forward;
pub mod grads;
pub mod init;
pub mod loss;
pub mod metrics;
pub mod mlp;
pub mod params;
pub(crate) mod rows;
pub(crate) mod split;
pub mod workspace;

pub use activation::Activation;
pub use any::AnyMlp;
pub use grads::Grads;
pub use init::{Init, MlpBuilder};
pub use loss::Loss;
pub use metrics::Metrics;
pub use mlp::{Layer, Mlp};
pub use params::{ParamSelection, ParamSpec};
pub use workspace::Workspace;
