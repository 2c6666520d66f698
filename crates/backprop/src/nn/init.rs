//! Weight initialisers and the [`MlpBuilder`].
//!
//! Every random draw comes from a seeded `ChaCha8Rng` and is turned into a number by plain IEEE
//! arithmetic written out here (uniforms from the top 53 bits of a `u64`; normals by
//! Box–Muller with a hand-written `ln` and `cos` that use only `+ − × ÷ √`), never by a
//! platform's `libm`. So the same seed gives bit-identical weights on every machine, in f64,
//! and in f32 (drawn in f64, then rounded).
//!
//! ```
//! use backprop::nn::{Activation, Init, MlpBuilder};
//!
//! let a = MlpBuilder::new(&[4, 5, 1]).activation(Activation::Sigmoid).init(Init::GlorotUniform).seed(42).build::<f64>().unwrap();
//! let b = MlpBuilder::new(&[4, 5, 1]).activation(Activation::Sigmoid).init(Init::GlorotUniform).seed(42).build::<f64>().unwrap();
//! assert_eq!(a, b);
//! // The notebook's network: all-ones weights, no biases.
//! let nb = MlpBuilder::new(&[4, 5, 1]).init(Init::Ones).bias(false).build::<f64>().unwrap();
//! assert!(nb.layers[0].weight.iter().all(|&w| w == 1.0));
//! ```

use std::fmt;
use std::str::FromStr;

use rand::Rng;
use rand::SeedableRng;
use rand::rngs::ChaCha8Rng;

use super::activation::Activation;
use super::mlp::Mlp;
use crate::{Error, Result, Scalar};

/// How a layer's weights are drawn (`fan_in`, `fan_out` are the layer's input and output widths).
/// Biases always start at zero, as in the notebook (PyTorch draws them; zero is the common
/// textbook choice and keeps `ones` reproducing the notebook exactly).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Init {
    /// Every weight 1: the notebook's `np.ones`.
    Ones,
    /// Every weight the given constant.
    Constant(f64),
    /// Glorot/Xavier uniform: U(−a, a), a = √(6/(fan_in + fan_out)).
    GlorotUniform,
    /// Glorot/Xavier normal: N(0, 2/(fan_in + fan_out)).
    GlorotNormal,
    /// He/Kaiming normal (for ReLU): N(0, 2/fan_in).
    He,
    /// He/Kaiming uniform: U(−a, a), a = √(6/fan_in).
    HeUniform,
}

impl Init {
    /// The names accepted on the command line (`constant` takes a value: `constant:0.5`).
    pub const NAMES: [&'static str; 7] =
        ["ones", "constant:V", "glorot", "glorot_uniform", "glorot_normal", "he", "he_uniform"];
}

impl fmt::Display for Init {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Init::Ones => f.write_str("ones"),
            Init::Constant(c) => write!(f, "constant:{c}"),
            Init::GlorotUniform => f.write_str("glorot_uniform"),
            Init::GlorotNormal => f.write_str("glorot_normal"),
            Init::He => f.write_str("he"),
            Init::HeUniform => f.write_str("he_uniform"),
        }
    }
}

impl FromStr for Init {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "ones" => Init::Ones,
            "glorot" | "glorot_uniform" | "xavier" | "xavier_uniform" => Init::GlorotUniform,
            "glorot_normal" | "xavier_normal" => Init::GlorotNormal,
            "he" | "he_normal" | "kaiming" | "kaiming_normal" => Init::He,
            "he_uniform" | "kaiming_uniform" => Init::HeUniform,
            other => {
                if let Some(v) = other.strip_prefix("constant:") {
                    let c: f64 = v
                        .parse()
                        .map_err(|_| Error::invalid("init", format!("`{v}` in `{other}` is not a number")))?;
                    if !c.is_finite() {
                        return Err(Error::invalid("init", format!("constant {c} is not finite")));
                    }
                    Init::Constant(c)
                } else {
                    return Err(Error::invalid(
                        "init",
                        format!("`{other}` is not one of {}", Init::NAMES.join(", ")),
                    ));
                }
            }
        })
    }
}

/// A uniform draw in [0, 1) from the top 53 bits of one `u64`: exact, portable.
#[inline]
pub(crate) fn uniform01(rng: &mut ChaCha8Rng) -> f64 {
    (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// An integer uniform in `0..n` (n ≥ 1) by rejection, free of modulo bias; portable and
/// independent of `rand`'s internal algorithms, so shuffles never change with a crate upgrade.
#[inline]
pub(crate) fn uniform_below(rng: &mut ChaCha8Rng, n: u64) -> u64 {
    debug_assert!(n > 0);
    let zone = u64::MAX - (u64::MAX - n + 1) % n;
    loop {
        let v = rng.next_u64();
        if v <= zone {
            return v % n;
        }
    }
}

/// Fisher–Yates shuffle driven by [`uniform_below`].
pub(crate) fn shuffle<U>(items: &mut [U], rng: &mut ChaCha8Rng) {
    for i in (1..items.len()).rev() {
        let j = uniform_below(rng, i as u64 + 1) as usize;
        items.swap(i, j);
    }
}

/// ln x for finite x > 0 with only IEEE-exact operations: x = m·2ᵉ with m ∈ [√½, √2),
/// ln m = 2 atanh s = 2(s + s³/3 + s⁵/5 + …), s = (m − 1)/(m + 1), |s| < 0.172.
fn portable_ln(x: f64) -> f64 {
    debug_assert!(x > 0.0 && x.is_finite());
    let (mut m, mut e) = {
        let bits = x.to_bits();
        let exp = ((bits >> 52) & 0x7ff) as i64;
        if exp == 0 {
            // subnormal: scale up by 2⁵⁴ first
            let y = x * (1u64 << 54) as f64;
            let b = y.to_bits();
            (
                f64::from_bits((b & !(0x7ffu64 << 52)) | (1023u64 << 52)),
                ((b >> 52) & 0x7ff) as i64 - 1023 - 54,
            )
        } else {
            (f64::from_bits((bits & !(0x7ffu64 << 52)) | (1023u64 << 52)), exp - 1023)
        }
    };
    if m > std::f64::consts::SQRT_2 {
        m *= 0.5;
        e += 1;
    }
    let s = (m - 1.0) / (m + 1.0);
    let s2 = s * s;
    let mut term = s;
    let mut sum = 0.0;
    let mut k = 1.0;
    while k < 40.0 {
        sum += term / k;
        term *= s2;
        k += 2.0;
    }
    2.0 * sum + e as f64 * std::f64::consts::LN_2
}

/// cos(2πu) for u ∈ [0, 1) with only IEEE-exact operations: fold to t ∈ [0, π/4]-ish octants
/// and sum the Taylor series (enough terms for full double precision on |t| ≤ π/2).
fn portable_cos_2pi(u: f64) -> f64 {
    use std::f64::consts::PI;
    // cos(2πu) = −cos(2π(u − ½)) and the argument θ = 2π(u − ½) ∈ [−π, π).
    let mut theta = 2.0 * PI * (u - 0.5);
    let mut sign = -1.0;
    // cos(θ) = −cos(π − |θ|) to bring |θ| into [0, π/2].
    theta = theta.abs();
    if theta > PI / 2.0 {
        theta = PI - theta;
        sign = -sign;
    }
    let t2 = theta * theta;
    let mut term = 1.0;
    let mut sum = 0.0;
    let mut n = 0.0;
    while n < 30.0 {
        sum += term;
        term *= -t2 / ((n + 1.0) * (n + 2.0));
        n += 2.0;
    }
    sign * sum
}

/// A standard normal draw by Box–Muller (one of the pair; the sine is not needed).
pub(crate) fn standard_normal(rng: &mut ChaCha8Rng) -> f64 {
    // u1 ∈ (0, 1] so ln u1 is finite.
    let u1 = 1.0 - uniform01(rng);
    let u2 = uniform01(rng);
    (-2.0 * portable_ln(u1)).sqrt() * portable_cos_2pi(u2)
}

impl Init {
    /// One weight for a layer with the given fans.
    fn draw(self, rng: &mut ChaCha8Rng, fan_in: usize, fan_out: usize) -> f64 {
        let (fi, fo) = (fan_in as f64, fan_out as f64);
        match self {
            Init::Ones => 1.0,
            Init::Constant(c) => c,
            Init::GlorotUniform => (6.0 / (fi + fo)).sqrt() * (2.0 * uniform01(rng) - 1.0),
            Init::GlorotNormal => (2.0 / (fi + fo)).sqrt() * standard_normal(rng),
            Init::He => (2.0 / fi).sqrt() * standard_normal(rng),
            Init::HeUniform => (6.0 / fi).sqrt() * (2.0 * uniform01(rng) - 1.0),
        }
    }

    /// Fills every weight of `mlp` (row-major, layer by layer) from a fresh generator seeded with
    /// `seed`; sets every bias to zero.
    pub fn apply<T: Scalar>(self, mlp: &mut Mlp<T>, seed: u64) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        for layer in &mut mlp.layers {
            let (fan_out, fan_in) = layer.weight.dim();
            layer.weight.iter_mut().for_each(|w| *w = T::of(self.draw(&mut rng, fan_in, fan_out)));
            if let Some(b) = &mut layer.bias {
                b.fill(T::zero());
            }
        }
    }
}

/// Builder for an initialised [`Mlp`]: widths, activations, biases, initialiser and seed.
#[derive(Clone, Debug)]
pub struct MlpBuilder {
    sizes: Vec<usize>,
    activation: Activation,
    output_activation: Option<Activation>,
    activations: Option<Vec<Activation>>,
    bias: bool,
    init: Init,
    seed: u64,
}

impl MlpBuilder {
    /// A network with widths `sizes` = `[inputs, hidden…, outputs]`; defaults: sigmoid
    /// everywhere, biases, Glorot uniform, seed 0.
    pub fn new(sizes: &[usize]) -> Self {
        MlpBuilder {
            sizes: sizes.to_vec(),
            activation: Activation::Sigmoid,
            output_activation: None,
            activations: None,
            bias: true,
            init: Init::GlorotUniform,
            seed: 0,
        }
    }

    /// The activation of every layer, the output included unless [`Self::output_activation`] is set.
    pub fn activation(mut self, a: Activation) -> Self {
        self.activation = a;
        self
    }

    /// The output layer's activation.
    pub fn output_activation(mut self, a: Activation) -> Self {
        self.output_activation = Some(a);
        self
    }

    /// One activation per layer explicitly (overrides the two options above).
    pub fn activations(mut self, a: &[Activation]) -> Self {
        self.activations = Some(a.to_vec());
        self
    }

    /// Whether layers have biases (default true).
    pub fn bias(mut self, bias: bool) -> Self {
        self.bias = bias;
        self
    }

    /// The weight initialiser.
    pub fn init(mut self, init: Init) -> Self {
        self.init = init;
        self
    }

    /// The seed of the weights' generator.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// The initialised network.
    pub fn build<T: Scalar>(&self) -> Result<Mlp<T>> {
        let n = self.sizes.len().saturating_sub(1);
        let acts = match &self.activations {
            Some(a) => a.clone(),
            None => {
                let mut a = vec![self.activation; n];
                if let (Some(last), Some(out)) = (a.last_mut(), self.output_activation) {
                    *last = out;
                }
                a
            }
        };
        let mut mlp = Mlp::zeros(&self.sizes, &acts, self.bias)?;
        self.init.apply(&mut mlp, self.seed);
        Ok(mlp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn portable_ln_and_cos_match_libm() {
        for &x in &[1e-300, 1e-10, 0.1, 0.5, 0.7, 1.0, 1.5, 2.0, 10.0, 1e10, 5e-324] {
            let (a, b) = (portable_ln(x), x.ln());
            assert!((a - b).abs() <= 1e-15 * b.abs().max(1.0), "ln {x}: {a} vs {b}");
        }
        for i in 0..1000 {
            let u = i as f64 / 1000.0;
            let (a, b) = (portable_cos_2pi(u), (2.0 * std::f64::consts::PI * u).cos());
            assert!((a - b).abs() < 1e-14, "cos 2π·{u}: {a} vs {b}");
        }
    }

    #[test]
    fn same_seed_same_weights_and_known_first_draws() {
        let b = MlpBuilder::new(&[3, 4, 2]).init(Init::GlorotNormal).seed(7);
        let m1 = b.build::<f64>().unwrap();
        let m2 = b.build::<f64>().unwrap();
        assert_eq!(m1, m2);
        let m3 = b.clone().seed(8).build::<f64>().unwrap();
        assert_ne!(m1, m3);
        // f32 is the f64 draw rounded.
        let m32 = b.build::<f32>().unwrap();
        assert_eq!(m32, m1.cast::<f32>());
    }

    #[test]
    fn draws_have_the_documented_scale() {
        let m = MlpBuilder::new(&[400, 600]).init(Init::GlorotUniform).seed(1).build::<f64>().unwrap();
        let a = (6.0f64 / 1000.0).sqrt();
        assert!(m.layers[0].weight.iter().all(|w| w.abs() <= a));
        let var = m.layers[0].weight.iter().map(|w| w * w).sum::<f64>() / 240_000.0;
        assert!((var - a * a / 3.0).abs() < 0.02 * a * a / 3.0, "{var}");
        let m = MlpBuilder::new(&[400, 600]).init(Init::He).seed(1).build::<f64>().unwrap();
        let w = &m.layers[0].weight;
        let mean = w.sum() / 240_000.0;
        let var = w.iter().map(|w| w * w).sum::<f64>() / 240_000.0;
        assert!(mean.abs() < 0.01 * (2.0f64 / 400.0).sqrt(), "{mean}");
        assert!((var - 2.0 / 400.0).abs() < 0.02 * 2.0 / 400.0, "{var}");
        assert!(m.layers[0].bias.as_ref().unwrap().iter().all(|&b| b == 0.0));
    }

    #[test]
    fn shuffle_is_a_permutation_and_reproducible() {
        let mut a: Vec<usize> = (0..100).collect();
        let mut b = a.clone();
        shuffle(&mut a, &mut ChaCha8Rng::seed_from_u64(3));
        shuffle(&mut b, &mut ChaCha8Rng::seed_from_u64(3));
        assert_eq!(a, b);
        assert_ne!(a, (0..100).collect::<Vec<_>>());
        let mut s = a.clone();
        s.sort();
        assert_eq!(s, (0..100).collect::<Vec<_>>());
    }

    #[test]
    fn output_activation_overrides_only_the_last_layer_and_names_parse() {
        let m = MlpBuilder::new(&[2, 3, 3, 1])
            .activation(Activation::Relu)
            .output_activation(Activation::Identity)
            .build::<f32>()
            .unwrap();
        assert_eq!(m.activations(), [Activation::Relu, Activation::Relu, Activation::Identity]);
        assert_eq!("glorot".parse::<Init>().unwrap(), Init::GlorotUniform);
        assert_eq!("constant:0.5".parse::<Init>().unwrap(), Init::Constant(0.5));
        assert!("constant:x".parse::<Init>().is_err());
        assert!("zeros!".parse::<Init>().unwrap_err().to_string().contains("he_uniform"));
    }
}
