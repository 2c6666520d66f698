//! Elementwise activation functions and their derivatives.

use std::fmt;
use std::str::FromStr;

use crate::notebook::stable_sigmoid;
use crate::{Error, Result, Scalar};

/// The slope of `leaky_relu` for negative inputs (PyTorch's default `negative_slope`).
pub const LEAKY_SLOPE: f64 = 0.01;

/// An activation applied after a layer's affine map; names as on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// σ(z) = 1/(1 + e⁻ᶻ); σ' = σ(1 − σ).
    Sigmoid,
    /// tanh z; tanh' = 1 − tanh².
    Tanh,
    /// max(z, 0); derivative 1 for z > 0, else 0.
    Relu,
    /// z for z > 0, else 0.01·z (PyTorch's default slope).
    LeakyRelu,
    /// ln(1 + eᶻ); derivative σ(z).
    Softplus,
    /// z; derivative 1.
    Identity,
}

impl Activation {
    /// All activations, for `--help` texts and tests.
    pub const ALL: [Activation; 6] = [
        Activation::Sigmoid,
        Activation::Tanh,
        Activation::Relu,
        Activation::LeakyRelu,
        Activation::Softplus,
        Activation::Identity,
    ];

    /// The name used on the command line and in `config.json`.
    pub fn name(self) -> &'static str {
        match self {
            Activation::Sigmoid => "sigmoid",
            Activation::Tanh => "tanh",
            Activation::Relu => "relu",
            Activation::LeakyRelu => "leaky_relu",
            Activation::Softplus => "softplus",
            Activation::Identity => "identity",
        }
    }

    /// The equivalent `torch.nn` module, or `None` for the identity (no module in the
    /// `Sequential`).
    pub fn torch_module(self) -> Option<&'static str> {
        match self {
            Activation::Sigmoid => Some("Sigmoid()"),
            Activation::Tanh => Some("Tanh()"),
            Activation::Relu => Some("ReLU()"),
            Activation::LeakyRelu => Some("LeakyReLU(0.01)"),
            Activation::Softplus => Some("Softplus()"),
            Activation::Identity => None,
        }
    }

    /// a = f(z).
    #[inline]
    pub fn apply<T: Scalar>(self, z: T) -> T {
        match self {
            Activation::Sigmoid => stable_sigmoid(z),
            Activation::Tanh => z.tanh(),
            Activation::Relu => z.max(T::zero()),
            Activation::LeakyRelu => {
                if z > T::zero() {
                    z
                } else {
                    z * T::of(LEAKY_SLOPE)
                }
            }
            // ln(1 + eᶻ) = max(z, 0) + ln(1 + e^−|z|): no overflow for large z.
            Activation::Softplus => z.max(T::zero()) + (-z.abs()).exp().ln_1p(),
            Activation::Identity => z,
        }
    }

    /// f'(z), given both the input `z` and the saved output `a = f(z)` (whichever is cheaper).
    #[inline]
    pub fn derivative<T: Scalar>(self, z: T, a: T) -> T {
        match self {
            Activation::Sigmoid => a * (T::one() - a),
            Activation::Tanh => T::one() - a * a,
            Activation::Relu => {
                if z > T::zero() {
                    T::one()
                } else {
                    T::zero()
                }
            }
            Activation::LeakyRelu => {
                if z > T::zero() {
                    T::one()
                } else {
                    T::of(LEAKY_SLOPE)
                }
            }
            Activation::Softplus => stable_sigmoid(z),
            Activation::Identity => T::one(),
        }
    }

    /// f'(z) from the saved output a = f(z) alone, so the backward pass needs no copy of z:
    /// σ' = a(1 − a), tanh' = 1 − a², relu' = 𝟙(a > 0), leaky_relu' = 1 if a > 0 else 0.01
    /// (a > 0 ⇔ z > 0 for both), softplus' = σ(z) = 1 − e⁻ᵃ (from eᵃ = 1 + eᶻ), identity' = 1.
    #[inline]
    pub fn derivative_from_output<T: Scalar>(self, a: T) -> T {
        match self {
            Activation::Sigmoid => a * (T::one() - a),
            Activation::Tanh => T::one() - a * a,
            Activation::Relu => {
                if a > T::zero() {
                    T::one()
                } else {
                    T::zero()
                }
            }
            Activation::LeakyRelu => {
                if a > T::zero() {
                    T::one()
                } else {
                    T::of(LEAKY_SLOPE)
                }
            }
            // −expm1(−a) keeps full accuracy when a ≈ eᶻ is tiny.
            Activation::Softplus => -(-a).exp_m1(),
            Activation::Identity => T::one(),
        }
    }

    /// f''(z) given z and a = f(z): σ'' = σ'(1 − 2σ), tanh'' = −2 tanh (1 − tanh²),
    /// softplus'' = σ', 0 for the piecewise-linear ones.
    #[inline]
    pub fn second_derivative<T: Scalar>(self, z: T, a: T) -> T {
        let two = T::of(2.0);
        match self {
            Activation::Sigmoid => a * (T::one() - a) * (T::one() - two * a),
            Activation::Tanh => -two * a * (T::one() - a * a),
            Activation::Softplus => {
                let s = stable_sigmoid(z);
                s * (T::one() - s)
            }
            Activation::Relu | Activation::LeakyRelu | Activation::Identity => T::zero(),
        }
    }
}

impl fmt::Display for Activation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Activation {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Activation::ALL.into_iter().find(|a| a.name() == s).ok_or_else(|| {
            let names: Vec<_> = Activation::ALL.iter().map(|a| a.name()).collect();
            Error::invalid("activation", format!("`{s}` is not one of {}", names.join(", ")))
        })
    }
}
