//! The multilayer perceptron: a stack of affine layers, each followed by an activation.
//!
//! Layer l computes aₗ = fₗ(aₗ₋₁ Wₗᵀ + bₗ) on a batch of row vectors, with Wₗ stored out×in as
//! in PyTorch's `nn.Linear`, so the model file loads into the equivalent `torch.nn.Sequential`.

use ndarray::{Array1, Array2};

use super::activation::Activation;
use super::params::{ParamSelection, ParamSpec};
use crate::{Error, Result, Scalar};

/// One affine layer and its activation.
#[derive(Clone, Debug, PartialEq)]
pub struct Layer<T> {
    /// out×in weight matrix.
    pub weight: Array2<T>,
    /// `out` biases, or `None` for a layer without bias.
    pub bias: Option<Array1<T>>,
    /// The activation applied after the affine map.
    pub activation: Activation,
}

impl<T: Scalar> Layer<T> {
    /// Input width.
    pub fn inputs(&self) -> usize {
        self.weight.ncols()
    }
    /// Output width.
    pub fn outputs(&self) -> usize {
        self.weight.nrows()
    }
}

/// A multilayer perceptron of any depth and widths, in `f32` or `f64`.
#[derive(Clone, Debug, PartialEq)]
pub struct Mlp<T> {
    /// The layers, input side first.
    pub layers: Vec<Layer<T>>,
}

impl<T: Scalar> Mlp<T> {
    /// An all-zero network with widths `sizes` (`[inputs, hidden…, outputs]`), one activation
    /// per layer (`activations.len() == sizes.len() - 1`) and biases if `bias`.
    pub fn zeros(sizes: &[usize], activations: &[Activation], bias: bool) -> Result<Self> {
        if sizes.len() < 2 {
            return Err(Error::invalid(
                "layers",
                format!("need at least an input and an output width, got {sizes:?}"),
            ));
        }
        if let Some(i) = sizes.iter().position(|&s| s == 0) {
            return Err(Error::invalid("layers", format!("width {i} is 0 in {sizes:?}")));
        }
        if activations.len() != sizes.len() - 1 {
            return Err(Error::invalid(
                "activations",
                format!(
                    "{} layers need {} activations, got {}",
                    sizes.len() - 1,
                    sizes.len() - 1,
                    activations.len()
                ),
            ));
        }
        let layers = sizes
            .windows(2)
            .zip(activations)
            .map(|(w, &activation)| Layer {
                weight: Array2::zeros((w[1], w[0])),
                bias: bias.then(|| Array1::zeros(w[1])),
                activation,
            })
            .collect();
        Ok(Mlp { layers })
    }

    /// Checks that consecutive layers fit together and every parameter is finite.
    pub fn validate(&self) -> Result<()> {
        if self.layers.is_empty() {
            return Err(Error::invalid("model", "has no layers"));
        }
        for (l, pair) in self.layers.windows(2).enumerate() {
            if pair[0].outputs() != pair[1].inputs() {
                return Err(Error::shape(
                    "mlp",
                    format!(
                        "layer {l} outputs {} but layer {} takes {} inputs",
                        pair[0].outputs(),
                        l + 1,
                        pair[1].inputs()
                    ),
                ));
            }
        }
        for (l, layer) in self.layers.iter().enumerate() {
            if let Some(b) = &layer.bias
                && b.len() != layer.outputs()
            {
                return Err(Error::shape(
                    "mlp",
                    format!(
                        "layer {l}: weight is {:?} but bias has {} entries",
                        layer.weight.shape(),
                        b.len()
                    ),
                ));
            }
            if let Some((i, v)) = layer.weight.iter().enumerate().find(|(_, v)| !v.is_finite()) {
                return Err(Error::non_finite(format!("layer {l} weight"), format!("element {i} is {v}")));
            }
            if let Some(b) = &layer.bias
                && let Some((i, v)) = b.iter().enumerate().find(|(_, v)| !v.is_finite())
            {
                return Err(Error::non_finite(format!("layer {l} bias"), format!("element {i} is {v}")));
            }
        }
        Ok(())
    }

    /// Widths `[inputs, hidden…, outputs]`.
    pub fn sizes(&self) -> Vec<usize> {
        let mut s = vec![self.inputs()];
        s.extend(self.layers.iter().map(|l| l.outputs()));
        s
    }

    /// Input width.
    pub fn inputs(&self) -> usize {
        self.layers.first().map_or(0, |l| l.inputs())
    }

    /// Output width.
    pub fn outputs(&self) -> usize {
        self.layers.last().map_or(0, |l| l.outputs())
    }

    /// The activations, one per layer.
    pub fn activations(&self) -> Vec<Activation> {
        self.layers.iter().map(|l| l.activation).collect()
    }

    /// Whether the layers carry biases.
    pub fn has_bias(&self) -> bool {
        self.layers.iter().any(|l| l.bias.is_some())
    }

    /// Every tensor in the flat order, named as in the equivalent `torch.nn.Sequential`:
    /// Linear modules and activation modules alternate, an identity activation has no module.
    pub fn param_specs(&self) -> Vec<ParamSpec> {
        let mut specs = Vec::new();
        let mut module = 0;
        let mut offset = 0;
        for (l, layer) in self.layers.iter().enumerate() {
            let shape = vec![layer.outputs(), layer.inputs()];
            specs.push(ParamSpec {
                name: format!("{module}.weight"),
                layer: l,
                is_bias: false,
                offset,
                shape,
            });
            offset += layer.weight.len();
            if let Some(b) = &layer.bias {
                specs.push(ParamSpec {
                    name: format!("{module}.bias"),
                    layer: l,
                    is_bias: true,
                    offset,
                    shape: vec![b.len()],
                });
                offset += b.len();
            }
            module += if layer.activation == Activation::Identity { 1 } else { 2 };
        }
        specs
    }

    /// Number of parameters in a selection.
    pub fn num_params(&self, selection: ParamSelection) -> usize {
        self.param_specs().iter().filter(|s| s.selected(selection)).map(ParamSpec::len).sum()
    }

    /// The selected parameters as one flat vector, in the documented order.
    pub fn flat_params(&self, selection: ParamSelection) -> Array1<T> {
        let mut out = Vec::with_capacity(self.num_params(selection));
        for layer in &self.layers {
            out.extend(layer.weight.iter().copied());
            if selection == ParamSelection::All
                && let Some(b) = &layer.bias
            {
                out.extend(b.iter().copied());
            }
        }
        Array1::from(out)
    }

    /// Overwrites the selected parameters from a flat vector (the inverse of [`Mlp::flat_params`]).
    pub fn set_flat_params(&mut self, selection: ParamSelection, flat: &[T]) -> Result<()> {
        let n = self.num_params(selection);
        if flat.len() != n {
            return Err(Error::shape(
                "set_flat_params",
                format!("the model has {n} {selection} parameters, got {}", flat.len()),
            ));
        }
        let mut it = flat.iter().copied();
        for layer in &mut self.layers {
            layer.weight.iter_mut().for_each(|w| *w = it.next().unwrap_or_else(T::zero));
            if selection == ParamSelection::All
                && let Some(b) = &mut layer.bias
            {
                b.iter_mut().for_each(|w| *w = it.next().unwrap_or_else(T::zero));
            }
        }
        Ok(())
    }

    /// 1 where the L2 penalty applies, 0 where it does not, over a selection's flat vector.
    /// The regularised Hessian is H + μ·diag(mask).
    pub fn penalty_mask(&self, selection: ParamSelection) -> Array1<T> {
        let mut out = Vec::with_capacity(self.num_params(selection));
        for spec in self.param_specs().iter().filter(|s| s.selected(selection)) {
            let m = if spec.penalised() { T::one() } else { T::zero() };
            out.extend(std::iter::repeat_n(m, spec.len()));
        }
        Array1::from(out)
    }

    /// The same network in another precision.
    pub fn cast<U: Scalar>(&self) -> Mlp<U> {
        Mlp {
            layers: self
                .layers
                .iter()
                .map(|l| Layer {
                    weight: l.weight.mapv(|v| U::of(v.f64())),
                    bias: l.bias.as_ref().map(|b| b.mapv(|v| U::of(v.f64()))),
                    activation: l.activation,
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Activation::*;

    #[test]
    fn tensor_names_follow_torch_sequential_indices() {
        let m = Mlp::<f64>::zeros(&[4, 5, 3, 1], &[Sigmoid, Identity, Sigmoid], true).unwrap();
        let names: Vec<_> = m.param_specs().into_iter().map(|s| s.name).collect();
        assert_eq!(names, ["0.weight", "0.bias", "2.weight", "2.bias", "3.weight", "3.bias"]);
    }

    #[test]
    fn flat_params_round_trip_and_mask_excludes_biases() {
        let mut m = Mlp::<f64>::zeros(&[2, 3, 1], &[Tanh, Identity], true).unwrap();
        assert_eq!(m.num_params(ParamSelection::Weights), 9);
        assert_eq!(m.num_params(ParamSelection::All), 13);
        let flat: Vec<f64> = (0..13).map(f64::from).collect();
        m.set_flat_params(ParamSelection::All, &flat).unwrap();
        assert_eq!(m.flat_params(ParamSelection::All).to_vec(), flat);
        // weight 0 is 3×2 row-major, then its 3 biases
        assert_eq!(m.layers[0].weight[[1, 0]], 2.0);
        assert_eq!(m.layers[0].bias.as_ref().unwrap()[0], 6.0);
        let mask = m.penalty_mask(ParamSelection::All).to_vec();
        assert_eq!(mask, [1., 1., 1., 1., 1., 1., 0., 0., 0., 1., 1., 1., 0.]);
        assert!(m.set_flat_params(ParamSelection::All, &flat[..3]).is_err());
    }

    #[test]
    fn bad_sizes_are_errors() {
        assert!(Mlp::<f64>::zeros(&[4], &[], true).is_err());
        assert!(Mlp::<f64>::zeros(&[4, 0, 1], &[Sigmoid, Sigmoid], true).is_err());
        assert!(Mlp::<f64>::zeros(&[4, 5, 1], &[Sigmoid], true).is_err());
    }
}
