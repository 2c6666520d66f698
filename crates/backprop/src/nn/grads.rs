//! Gradients in the model's own shape.
//!
//! A [`Grads`] has one weight matrix (out×in) and one optional bias vector per layer, exactly
//! like the [`Mlp`] it differentiates, so its tensors carry the model file's names
//! (`0.weight`, `0.bias`, …) and [`Grads::flat`] follows the documented flat order of
//! [`Mlp::param_specs`]. Optimiser state (velocities, Adam moments) uses the same container.

use ndarray::{Array1, ArrayViewD};

use super::mlp::Mlp;
use super::params::ParamSelection;
use crate::{Error, Result, Scalar};

/// ∂L/∂θ for every parameter θ of an [`Mlp`], in the model's shapes.
#[derive(Clone, Debug, PartialEq)]
pub struct Grads<T> {
    inner: Mlp<T>,
}

impl<T: Scalar> Grads<T> {
    /// All-zero gradients shaped like `mlp`.
    pub fn zeros_like(mlp: &Mlp<T>) -> Self {
        // Zeros allocated as such, not a copy of the weights overwritten.
        let layers = mlp.layers.iter().map(|l| super::mlp::Layer {
            weight: ndarray::Array2::zeros(l.weight.raw_dim()),
            bias: l.bias.as_ref().map(|b| Array1::zeros(b.len())),
            activation: l.activation,
        });
        Grads { inner: Mlp { layers: layers.collect() } }
    }

    /// The gradients as a model-shaped container, by value (no copy).
    pub fn into_mlp(self) -> Mlp<T> {
        self.inner
    }

    /// Whether the shapes (widths and bias flags) equal `mlp`'s.
    pub fn fits(&self, mlp: &Mlp<T>) -> bool {
        self.inner.layers.len() == mlp.layers.len()
            && self.inner.layers.iter().zip(&mlp.layers).all(|(g, m)| {
                g.weight.dim() == m.weight.dim()
                    && g.bias.as_ref().map(|b| b.len()) == m.bias.as_ref().map(|b| b.len())
            })
    }

    /// Sets every entry to zero, keeping the allocation.
    pub fn fill_zero(&mut self) {
        self.inner.layers.iter_mut().for_each(|l| {
            l.weight.fill(T::zero());
            if let Some(b) = &mut l.bias {
                b.fill(T::zero());
            }
        });
    }

    /// The per-layer tensors, shaped like the model's layers (activations copied from the model).
    pub fn as_mlp(&self) -> &Mlp<T> {
        &self.inner
    }

    /// Mutable access for kernels that write gradients in place.
    pub fn as_mlp_mut(&mut self) -> &mut Mlp<T> {
        &mut self.inner
    }

    /// Gradient of layer `l`'s weight (out×in).
    pub fn weight(&self, l: usize) -> &ndarray::Array2<T> {
        &self.inner.layers[l].weight
    }

    /// Gradient of layer `l`'s bias, if the layer has one.
    pub fn bias(&self, l: usize) -> Option<&Array1<T>> {
        self.inner.layers[l].bias.as_ref()
    }

    /// The selected gradients as one flat vector in the documented order (see
    /// [`Mlp::param_specs`]): layer by layer, weight row-major, then the bias.
    pub fn flat(&self, selection: ParamSelection) -> Array1<T> {
        self.inner.flat_params(selection)
    }

    /// Overwrites from a flat vector in the documented order.
    pub fn set_flat(&mut self, selection: ParamSelection, flat: &[T]) -> Result<()> {
        self.inner.set_flat_params(selection, flat)
    }

    /// Every tensor with its model-file name (`0.weight`, `0.bias`, `2.weight`, …).
    pub fn tensors(&self) -> Vec<(String, ArrayViewD<'_, T>)> {
        let specs = self.inner.param_specs();
        let mut out = Vec::with_capacity(specs.len());
        for spec in specs {
            let layer = &self.inner.layers[spec.layer];
            let view = if spec.is_bias {
                match &layer.bias {
                    Some(b) => b.view().into_dyn(),
                    None => continue,
                }
            } else {
                layer.weight.view().into_dyn()
            };
            out.push((spec.name, view));
        }
        out
    }

    /// Euclidean norm over all entries, accumulated in f64.
    pub fn norm(&self) -> f64 {
        let mut s = 0.0;
        for l in &self.inner.layers {
            s += l.weight.iter().map(|v| v.f64() * v.f64()).sum::<f64>();
            if let Some(b) = &l.bias {
                s += b.iter().map(|v| v.f64() * v.f64()).sum::<f64>();
            }
        }
        s.sqrt()
    }

    /// Checks every entry is finite, naming the first tensor and index that is not.
    pub fn check_finite(&self) -> Result<()> {
        for (name, t) in self.tensors() {
            if let Some((i, v)) = t.iter().enumerate().find(|(_, v)| !v.is_finite()) {
                return Err(Error::non_finite(format!("gradient {name}"), format!("element {i} is {v}")));
            }
        }
        Ok(())
    }
}
