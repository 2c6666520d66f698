//! Elementwise exp and logistic sigmoid written so the compiler vectorises them, and the slice
//! passes that run them at the CPU's widest vector width.
//!
//! libm's `exp` is a scalar call with branches: a loop over it runs one element at a time
//! (~5 ns each here; the notebook's 10,000-sample batch spent most of its time in it). The
//! functions below use no branches, tables or calls — range reduction, a polynomial and a
//! power of two built from bits — so a loop over a slice becomes straight-line vector code
//! (8 f64 lanes with AVX-512). No well-kept crate offers that on stable Rust with run-time
//! CPU detection: `wide` fixes the vector width at compile time (SSE2 in a portable build),
//! SLEEF's Rust port needs nightly `portable_simd`, and `pulp` has no transcendental functions.
//!
//! **Accuracy.** x = k·ln 2 + r with |r| ≤ ½ln 2 (Cody–Waite: ln 2 split in a high part with
//! trailing zero bits, so k·ln2_hi is exact), then eʳ by its Taylor series to degree 13 (f64;
//! the first omitted term is below 6·10⁻¹⁸ relative) or 7 (f32), then eˣ = eʳ·2^⌊k/2⌋·2^(k−⌊k/2⌋)
//! (two factors so results in the subnormal range and overflow to ∞ come out right). The tests
//! measure at most 1 ulp from libm's `exp` in f64 over [−708, 709.7], one step of the subnormal
//! spacing below that, and at most 2 ulp in f32.
//!
//! **Same result on every path.** The kernels use fused multiply-adds (`mul_add`, one rounding:
//! half the instructions of a separate multiply and add) and Rust never reorders float
//! operations, so [`vectorized`] changes how they are compiled, never what they compute: the
//! AVX-512 and AVX2 paths use the FMA instruction, a CPU without FMA gets libm's correctly
//! rounded software `fma` (slow, but such CPUs predate 2013) — bit-identical values on every
//! path (tested). Call the slice functions, or the elementwise ones inside [`vectorized`]:
//! outside it, even on an FMA machine, each `mul_add` is a libm call.

/// Branch-free elementary functions for `f32` and `f64` (see the module documentation).
pub trait VectorMath: Copy {
    /// eˣ within ~1 ulp: e^(−∞) = 0, e^(+∞) = +∞, NaN for NaN; subnormal results are kept.
    fn exp_vectorizable(self) -> Self;

    /// eˣ for x ≤ 0 (and NaN), bit-identical to [`VectorMath::exp_vectorizable`] there, in
    /// fewer instructions: with k ≤ 0 the scale p·2ᵏ is built as the exact normal number
    /// p·2ᵏ⁺⁶⁴ times the constant 2⁻⁶⁴ (one rounding, as the two-factor scale), and only the
    /// lower clamp is needed. What σ needs (e^−|t|); for x > 0 the result is wrong.
    fn exp_nonpositive(self) -> Self;

    /// tanh x = −m/(m + 2) with m = eᵘ − 1, u = −2|x|, and the sign of x: eᵘ − 1 comes from
    /// the exp's range reduction without forming eᵘ (2ᵏ(eʳ − 1) + (2ᵏ − 1), eʳ − 1 straight
    /// from the polynomial), so small |x| keep full relative accuracy with no cancellation, and
    /// m + 2 ∈ [1, 2]. Within 3 ulp of libm's `tanh` in f64, 2 in f32 (tested); tanh(±0) = ±0, tanh(±∞) = ±1,
    /// NaN for NaN.
    fn tanh_vectorizable(self) -> Self;
}

impl VectorMath for f64 {
    #[inline(always)]
    fn exp_vectorizable(self) -> f64 {
        // Beyond these every result is 0 or ∞; clamping keeps k small. NaN stays NaN.
        let (p1, k) = exp_reduced_f64(self.clamp(-746.0, 710.0));
        let p = 1.0 + p1;
        // 2ᵏ as two normal powers of two: k ∈ [−1076, 1025] after the clamp.
        let k1 = k >> 1;
        let k2 = k.wrapping_sub(k1);
        let s1 = f64::from_bits((k1.wrapping_add(1023) as u64) << 52);
        let s2 = f64::from_bits((k2.wrapping_add(1023) as u64) << 52);
        p * s1 * s2
    }

    #[inline(always)]
    fn exp_nonpositive(self) -> f64 {
        // `if` rather than `max`: a NaN must pass through.
        let (p1, k) = exp_reduced_f64(if self < -746.0 { -746.0 } else { self });
        let p = 1.0 + p1;
        // k ∈ [−1076, 0]: 2ᵏ⁺⁶⁴ is normal, p·2ᵏ⁺⁶⁴ exact, the product with 2⁻⁶⁴ rounds once.
        let s = f64::from_bits((k.wrapping_add(1023 + 64) as u64) << 52);
        p * s * f64::from_bits((1023 - 64) << 52)
    }

    #[inline(always)]
    fn tanh_vectorizable(self) -> f64 {
        // u = −2|x| ∈ [−40, 0]: below −40, eᵘ − 1 rounds to −1 anyway (e⁻⁴⁰ < 2⁻⁵⁴); NaN passes.
        let u = -2.0 * self.abs();
        let (p1, k) = exp_reduced_f64(if u < -40.0 { -40.0 } else { u });
        // eᵘ − 1 = 2ᵏ(eʳ − 1) + (2ᵏ − 1), k ∈ [−58, 0]: 2ᵏ·p1 is exact, one rounding.
        let s = f64::from_bits((k.wrapping_add(1023) as u64) << 52);
        let m = s.mul_add(p1, s - 1.0);
        (-m / (m + 2.0)).copysign(self)
    }
}

/// eˣ = (1 + p1)·2ᵏ for a clamped x: k = round(x/ln 2) and p1 = eʳ − 1, r = x − k·ln 2
/// (|r| ≤ ½ln 2).
#[inline(always)]
fn exp_reduced_f64(x: f64) -> (f64, i64) {
    // ln 2 = LN2_HI + LN2_LO to ~2⁻¹⁰⁵; LN2_HI has 21 trailing zero bits (fdlibm's split).
    const LN2_HI: f64 = f64::from_bits(0x3fe6_2e42_fee0_0000);
    const LN2_LO: f64 = f64::from_bits(0x3dea_39ef_3579_3c76);
    // Adding 1.5·2⁵² rounds to an integer and leaves it in the low mantissa bits.
    const SHIFT: f64 = 6_755_399_441_055_744.0;
    let shifted = x.mul_add(std::f64::consts::LOG2_E, SHIFT);
    let k = (shifted.to_bits() as i64).wrapping_sub(SHIFT.to_bits() as i64);
    let kf = shifted - SHIFT;
    let r = kf.mul_add(-LN2_LO, kf.mul_add(-LN2_HI, x));
    // eʳ = 1 + r + r²(1/2! + r(1/3! + … + r/13!)), leading terms added last.
    let mut q: f64 = 1.0 / 6_227_020_800.0;
    for c in [
        1.0 / 479_001_600.0,
        1.0 / 39_916_800.0,
        1.0 / 3_628_800.0,
        1.0 / 362_880.0,
        1.0 / 40_320.0,
        1.0 / 5_040.0,
        1.0 / 720.0,
        1.0 / 120.0,
        1.0 / 24.0,
        1.0 / 6.0,
        0.5,
    ] {
        q = q.mul_add(r, c);
    }
    ((r * r).mul_add(q, r), k)
}

impl VectorMath for f32 {
    #[inline(always)]
    fn exp_vectorizable(self) -> f32 {
        let (p1, k) = exp_reduced_f32(self.clamp(-104.0, 89.0));
        let p = 1.0 + p1;
        // k ∈ [−151, 129] after the clamp.
        let k1 = k >> 1;
        let k2 = k.wrapping_sub(k1);
        let s1 = f32::from_bits((k1.wrapping_add(127) as u32) << 23);
        let s2 = f32::from_bits((k2.wrapping_add(127) as u32) << 23);
        p * s1 * s2
    }

    #[inline(always)]
    fn exp_nonpositive(self) -> f32 {
        let (p1, k) = exp_reduced_f32(if self < -104.0 { -104.0 } else { self });
        let p = 1.0 + p1;
        // k ∈ [−151, 0]: 2ᵏ⁺⁶⁴ is normal.
        let s = f32::from_bits((k.wrapping_add(127 + 64) as u32) << 23);
        p * s * f32::from_bits((127 - 64) << 23)
    }

    #[inline(always)]
    fn tanh_vectorizable(self) -> f32 {
        // u ∈ [−20, 0]: e⁻²⁰ < 2⁻²⁵; k ∈ [−29, 0].
        let u = -2.0 * self.abs();
        let (p1, k) = exp_reduced_f32(if u < -20.0 { -20.0 } else { u });
        let s = f32::from_bits((k.wrapping_add(127) as u32) << 23);
        let m = s.mul_add(p1, s - 1.0);
        (-m / (m + 2.0)).copysign(self)
    }
}

/// [`exp_reduced_f64`] in f32: eʳ to degree 7.
#[inline(always)]
fn exp_reduced_f32(x: f32) -> (f32, i32) {
    // ln 2 = LN2_HI + LN2_LO; LN2_HI = 0.693359375 has 15 trailing zero bits (Cephes' split).
    const LN2_HI: f32 = f32::from_bits(0x3f31_8000);
    const LN2_LO: f32 = f32::from_bits(0xb95e_8083);
    const SHIFT: f32 = 12_582_912.0; // 1.5·2²³
    let shifted = x.mul_add(std::f32::consts::LOG2_E, SHIFT);
    let k = (shifted.to_bits() as i32).wrapping_sub(SHIFT.to_bits() as i32);
    let kf = shifted - SHIFT;
    let r = kf.mul_add(-LN2_LO, kf.mul_add(-LN2_HI, x));
    let mut q: f32 = 1.0 / 5_040.0;
    for c in [1.0 / 720.0, 1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 0.5] {
        q = q.mul_add(r, c);
    }
    ((r * r).mul_add(q, r), k)
}

/// σ(t) = 1/(1 + e⁻ᵗ) by the same two formulas as [`crate::notebook::stable_sigmoid`]
/// (1/(1 + e^−|t|) for t ≥ 0, e^−|t|/(1 + e^−|t|) for t < 0: no overflow, full relative accuracy
/// in the left tail), selected without a branch and with the vectorisable exp, so it differs
/// from the scalar version only by the exp's last-bit error. σ(±∞) = 1, 0; σ(NaN) = NaN.
#[inline(always)]
pub fn sigmoid<T: crate::Scalar>(t: T) -> T {
    let e = (-t.abs()).exp_nonpositive();
    let numerator = if t >= T::zero() { T::one() } else { e };
    numerator / (T::one() + e)
}

/// Runs `f` compiled for the widest vector instructions this CPU has (AVX-512, else AVX2 with
/// FMA, else the build's baseline), detected at run time, so a portable build still gets 8-lane
/// f64 loops. Only code inlined into `f` benefits: pass an `#[inline(always)]` closure and call
/// `#[inline(always)]` kernels from it. The result is the same on every path (see the module
/// docs). AVX-512 needs Rust ≥ 1.89 (older compilers stop at AVX2); measured on the notebook's
/// batch kernels it is ~1.3× faster than AVX2.
#[inline(always)]
pub fn vectorized<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        if avx512_detected() {
            // SAFETY: `with_avx512` enables AVX-512F, AVX2 and FMA, which the CPU was just
            // detected to have (AVX-512F implies the other two).
            return unsafe { with_avx512(f) };
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            // SAFETY: AVX2 and FMA were just detected on this CPU.
            return unsafe { with_avx2(f) };
        }
    }
    f()
}

#[rustversion::since(1.89)]
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn avx512_detected() -> bool {
    std::arch::is_x86_feature_detected!("avx512f")
}

#[rustversion::before(1.89)]
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn avx512_detected() -> bool {
    false
}

#[rustversion::since(1.89)]
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn with_avx512<R>(f: impl FnOnce() -> R) -> R {
    f()
}

#[rustversion::before(1.89)]
#[cfg(target_arch = "x86_64")]
unsafe fn with_avx512<R>(f: impl FnOnce() -> R) -> R {
    f()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn with_avx2<R>(f: impl FnOnce() -> R) -> R {
    f()
}

/// `x ← eˣ` for every element, vectorised.
pub fn exp_in_place<T: crate::Scalar>(xs: &mut [T]) {
    vectorized(
        #[inline(always)]
        || xs.iter_mut().for_each(|v| *v = v.exp_vectorizable()),
    )
}

/// `x ← tanh x` for every element, vectorised.
pub fn tanh_in_place<T: crate::Scalar>(xs: &mut [T]) {
    vectorized(
        #[inline(always)]
        || xs.iter_mut().for_each(|v| *v = v.tanh_vectorizable()),
    )
}

/// Σ f(x) in 16 lanes (position k into lane k mod 16), then the lanes and the remainder in
/// order: a fixed order that vectorises, where one running sum is a chain of dependent
/// additions.
#[inline(always)]
pub(crate) fn lane_sum<T: crate::Scalar>(x: &[T], f: impl Fn(T) -> T) -> T {
    let (chunks, rest) = x.as_chunks::<16>();
    let lanes = chunks.iter().fold([T::zero(); 16], |mut l, c| {
        l.iter_mut().zip(c).for_each(|(l, &c)| *l += f(c));
        l
    });
    lanes.into_iter().chain(rest.iter().map(|&v| f(v))).fold(T::zero(), |a, b| a + b)
}

/// `x ← σ(x)` for every element, vectorised.
pub fn sigmoid_in_place<T: crate::Scalar>(xs: &mut [T]) {
    vectorized(
        #[inline(always)]
        || xs.iter_mut().for_each(|v| *v = sigmoid(*v)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lane_sums_add_every_entry() {
        for len in [0, 1, 15, 16, 17, 40] {
            let x: Vec<f64> = (0..len).map(|k| k as f64 + 0.5).collect();
            assert_eq!(lane_sum(&x, |v| v), x.iter().sum::<f64>(), "{len}");
        }
    }
    use crate::notebook::stable_sigmoid;

    /// Distance in units in the last place between two finite f64 of the same sign (0 if equal).
    fn ulps64(a: f64, b: f64) -> u64 {
        if a == b {
            return 0;
        }
        (a.to_bits() as i64 - b.to_bits() as i64).unsigned_abs()
    }

    fn ulps32(a: f32, b: f32) -> u32 {
        if a == b {
            return 0;
        }
        (a.to_bits() as i32 - b.to_bits() as i32).unsigned_abs()
    }

    /// n points spread over [lo, hi], plus the ends.
    fn grid(lo: f64, hi: f64, n: usize) -> impl Iterator<Item = f64> {
        (0..=n).map(move |i| lo + (hi - lo) * i as f64 / n as f64)
    }

    #[test]
    fn exp_f64_is_within_one_ulp_of_libm() {
        let mut worst = (0, 0.0);
        // The whole range where eˣ is a normal number, densely, and near 0 more densely.
        for x in grid(-708.0, 709.7, 2_000_003).chain(grid(-1.0, 1.0, 200_001)) {
            let u = ulps64(x.exp_vectorizable(), x.exp());
            if u > worst.0 {
                worst = (u, x);
            }
        }
        assert!(worst.0 <= 1, "{} ulp at x = {}", worst.0, worst.1);
    }

    #[test]
    fn exp_f64_handles_subnormals_overflow_and_specials() {
        // Subnormal results: within one ulp of the subnormal spacing.
        for x in grid(-745.1, -708.5, 10_001) {
            let (a, b) = (x.exp_vectorizable(), x.exp());
            assert!((a - b).abs() <= f64::from_bits(1), "x = {x}: {a:e} vs {b:e}");
        }
        assert_eq!((-746.0f64).exp_vectorizable(), 0.0);
        assert_eq!((-1000.0f64).exp_vectorizable(), 0.0);
        assert_eq!(f64::NEG_INFINITY.exp_vectorizable(), 0.0);
        assert_eq!(710.0f64.exp_vectorizable(), f64::INFINITY);
        assert_eq!(1000.0f64.exp_vectorizable(), f64::INFINITY);
        assert_eq!(f64::INFINITY.exp_vectorizable(), f64::INFINITY);
        assert!(f64::NAN.exp_vectorizable().is_nan());
        assert_eq!(0.0f64.exp_vectorizable(), 1.0);
        assert_eq!((-0.0f64).exp_vectorizable(), 1.0);
        assert!(ulps64(1.0f64.exp_vectorizable(), std::f64::consts::E) <= 1);
    }

    #[test]
    fn exp_f32_is_within_two_ulp_of_correctly_rounded() {
        let mut worst = (0, 0.0);
        for x in grid(-87.0, 88.7, 2_000_003).chain(grid(-1.0, 1.0, 200_001)) {
            let x = x as f32;
            // The f64 exp rounded to f32 is the correctly rounded value (bar double-rounding ties).
            let u = ulps32(x.exp_vectorizable(), (x as f64).exp() as f32);
            if u > worst.0 {
                worst = (u, x);
            }
        }
        assert!(worst.0 <= 2, "{} ulp at x = {}", worst.0, worst.1);
        assert_eq!((-104.0f32).exp_vectorizable(), 0.0);
        assert_eq!(f32::NEG_INFINITY.exp_vectorizable(), 0.0);
        assert_eq!(89.0f32.exp_vectorizable(), f32::INFINITY);
        assert_eq!(f32::INFINITY.exp_vectorizable(), f32::INFINITY);
        assert!(f32::NAN.exp_vectorizable().is_nan());
        assert_eq!(0.0f32.exp_vectorizable(), 1.0);
        // Subnormal f32 results.
        for x in grid(-103.9, -87.5, 10_001) {
            let x = x as f32;
            let (a, b) = (x.exp_vectorizable(), (x as f64).exp() as f32);
            assert!((a - b).abs() <= f32::from_bits(1), "x = {x}: {a:e} vs {b:e}");
        }
    }

    #[test]
    fn exp_nonpositive_equals_exp_bit_for_bit() {
        let xs = grid(-800.0, 0.0, 1_000_003).chain(grid(-745.2, -707.0, 100_001)).chain([
            0.0,
            -0.0,
            -f64::MIN_POSITIVE,
            -1e-300,
            f64::NEG_INFINITY,
            f64::NAN,
        ]);
        for x in xs {
            let (a, b) = (x.exp_nonpositive(), x.exp_vectorizable());
            assert!(a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()), "x = {x}: {a:e} vs {b:e}");
            let x = x as f32;
            let (a, b) = (x.exp_nonpositive(), x.exp_vectorizable());
            assert!(a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()), "x = {x}: {a:e} vs {b:e}");
        }
    }

    #[test]
    fn tanh_f64_is_within_three_ulp_of_libm() {
        // m = eᵘ − 1 within ~1 ulp, amplified by up to 2/(m + 2) < 2 in −m/(m + 2), plus the
        // roundings of m + 2 and of the quotient: ≤ 3 ulp (measured worst: 3, near |x| = 1).
        let mut worst = (0, 0.0);
        // The whole range where tanh is not ±1, densely; near 0, where it is ≈ x; subnormals.
        let xs = grid(-25.0, 25.0, 2_000_003)
            .chain(grid(-1.0, 1.0, 200_001))
            .chain(grid(-1e-6, 1e-6, 20_001))
            .chain([1e-300, -1e-300, 5e-324, f64::MIN_POSITIVE, 0.5493, 0.55, 19.06, 22.0, 40.0, 1e300]);
        for x in xs {
            let (a, b) = (x.tanh_vectorizable(), x.tanh());
            let u = ulps64(a, b);
            if u > worst.0 {
                worst = (u, x);
            }
        }
        assert!(worst.0 <= 3, "{} ulp at x = {}", worst.0, worst.1);
        assert_eq!(0.0f64.tanh_vectorizable().to_bits(), 0.0f64.to_bits());
        assert_eq!((-0.0f64).tanh_vectorizable().to_bits(), (-0.0f64).to_bits());
        assert_eq!(f64::INFINITY.tanh_vectorizable(), 1.0);
        assert_eq!(f64::NEG_INFINITY.tanh_vectorizable(), -1.0);
        assert_eq!(1e300f64.tanh_vectorizable(), 1.0);
        assert_eq!(f64::MAX.tanh_vectorizable(), 1.0);
        assert_eq!(f64::MIN.tanh_vectorizable(), -1.0);
        assert!(f64::NAN.tanh_vectorizable().is_nan());
        assert_eq!(5e-324f64.tanh_vectorizable(), 5e-324);
        // Odd, and |tanh| ≤ 1.
        for x in grid(-30.0, 30.0, 10_001) {
            let t = x.tanh_vectorizable();
            assert_eq!(t, -(-x).tanh_vectorizable());
            assert!(t.abs() <= 1.0);
        }
    }

    #[test]
    fn tanh_f32_is_within_two_ulp_of_correctly_rounded() {
        let mut worst = (0, 0.0f32);
        let xs =
            grid(-12.0, 12.0, 1_000_003).chain(grid(-1.0, 1.0, 200_001)).chain(grid(-1e-4, 1e-4, 20_001));
        for x in xs.chain([1e-40, -1e-40, 9.0, 10.0, 20.0, 1e30]) {
            let x = x as f32;
            let u = ulps32(x.tanh_vectorizable(), (x as f64).tanh() as f32);
            if u > worst.0 {
                worst = (u, x);
            }
        }
        assert!(worst.0 <= 2, "{} ulp at x = {}", worst.0, worst.1);
        assert_eq!(0.0f32.tanh_vectorizable().to_bits(), 0.0f32.to_bits());
        assert_eq!((-0.0f32).tanh_vectorizable().to_bits(), (-0.0f32).to_bits());
        assert_eq!(f32::INFINITY.tanh_vectorizable(), 1.0);
        assert_eq!(f32::NEG_INFINITY.tanh_vectorizable(), -1.0);
        assert!(f32::NAN.tanh_vectorizable().is_nan());
    }

    #[test]
    fn sigmoid_matches_the_stable_scalar_sigmoid() {
        // Relative error: the exp's one ulp becomes at most ~2 ulp of σ after 1 + e and the
        // division; both tails keep full relative accuracy down to the subnormal range, where
        // the error is at most two steps of the subnormal spacing.
        let mut worst = 0.0f64;
        for t in grid(-1000.0, 1000.0, 2_000_000).chain(grid(-40.0, 40.0, 400_001)) {
            let (a, b) = (sigmoid(t), stable_sigmoid(t));
            if b.is_normal() {
                worst = worst.max(((a - b) / b).abs());
            } else {
                assert!((a - b).abs() <= f64::from_bits(2), "t = {t}: {a:e} vs {b:e}");
            }
        }
        assert!(worst <= 3.0 * f64::EPSILON, "relative error {worst:e}");
        assert_eq!(sigmoid(-1000.0f64), 0.0);
        assert_eq!(sigmoid(1000.0f64), 1.0);
        assert_eq!(sigmoid(0.0f64), 0.5);
        assert_eq!(sigmoid(f64::INFINITY), 1.0);
        assert_eq!(sigmoid(f64::NEG_INFINITY), 0.0);
        assert!(sigmoid(f64::NAN).is_nan());
        assert_eq!(sigmoid(-40.0f64), 4.248354255291589e-18);
        assert!(sigmoid(-700.0f64) > 0.0);
    }

    #[test]
    fn sigmoid_f32_matches_the_stable_scalar_sigmoid() {
        let mut worst = 0.0f32;
        for t in grid(-200.0, 200.0, 400_000) {
            let t = t as f32;
            let (a, b) = (sigmoid(t), stable_sigmoid(t));
            if b.is_normal() {
                worst = worst.max(((a - b) / b).abs());
            } else {
                assert!((a - b).abs() <= f32::from_bits(2), "t = {t}: {a:e} vs {b:e}");
            }
        }
        assert!(worst <= 4.0 * f32::EPSILON, "relative error {worst:e}");
        assert_eq!(sigmoid(-1000.0f32), 0.0);
        assert_eq!(sigmoid(1000.0f32), 1.0);
        assert_eq!(sigmoid(f32::INFINITY), 1.0);
        assert_eq!(sigmoid(f32::NEG_INFINITY), 0.0);
        assert!(sigmoid(f32::NAN).is_nan());
    }

    #[test]
    fn slice_passes_equal_the_elementwise_functions_bit_for_bit() {
        // Every vector path (whichever this CPU takes) computes exactly the scalar formula.
        let xs: Vec<f64> = grid(-800.0, 800.0, 10_007)
            .chain([f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 0.0, -0.0])
            .collect();
        let mut e = xs.clone();
        exp_in_place(&mut e);
        let mut s = xs.clone();
        sigmoid_in_place(&mut s);
        let mut th = xs.clone();
        tanh_in_place(&mut th);
        for (&x, &tv) in xs.iter().zip(&th) {
            assert_eq!(tv.to_bits(), x.tanh_vectorizable().to_bits(), "tanh({x})");
        }
        let mut en = xs.iter().map(|x| -x.abs()).collect::<Vec<_>>();
        vectorized(
            #[inline(always)]
            || en.iter_mut().for_each(|v| *v = v.exp_nonpositive()),
        );
        for (((&x, &ev), &sv), &env) in xs.iter().zip(&e).zip(&s).zip(&en) {
            assert_eq!(ev.to_bits(), x.exp_vectorizable().to_bits(), "exp({x})");
            assert_eq!(env.to_bits(), (-x.abs()).exp_nonpositive().to_bits(), "exp(−|{x}|)");
            assert_eq!(sv.to_bits(), sigmoid(x).to_bits(), "σ({x})");
        }
        let xs32: Vec<f32> = xs.iter().map(|&x| x as f32).collect();
        let mut s32 = xs32.clone();
        sigmoid_in_place(&mut s32);
        let mut th32 = xs32.clone();
        tanh_in_place(&mut th32);
        for (&x, &tv) in xs32.iter().zip(&th32) {
            assert_eq!(tv.to_bits(), x.tanh_vectorizable().to_bits(), "tanh({x})");
        }
        for (&x, &sv) in xs32.iter().zip(&s32) {
            assert_eq!(sv.to_bits(), sigmoid(x).to_bits(), "σ({x})");
        }
    }
}
