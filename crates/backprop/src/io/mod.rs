//! Files: atomic writes, model directories (safetensors + JSON config) and `.npy` output.
//!
//! Every file the project writes goes through [`atomic_write`]: a crash leaves the old file or
//! the new one, never a torn one.

mod atomic;
mod inputs;
mod model;
mod npy;

pub use atomic::{atomic_write, atomic_write_with, write_json};
pub use model::{
    CONFIG_FILE, FORMAT, FORMAT_VERSION, ModelConfig, WEIGHTS_FILE, load_config, load_model, model_files,
    save_model, weights_bytes,
};
pub use npy::write_npy;
