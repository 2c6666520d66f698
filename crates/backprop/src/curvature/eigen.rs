//! The dense symmetric eigendecomposition H = QΛQᵀ, eigenvalues in decreasing order as in the
//! notebook.

use ndarray::{Array1, Array2, ArrayView2, ShapeBuilder};
use rayon::prelude::*;

use super::{divide, tridiag};
use crate::tensor::transpose_into;
use crate::{Error, Result};

/// Matrices smaller than this are decomposed on the calling thread alone.
const SEQUENTIAL_BELOW: usize = 128;

/// H = Q·diag(λ)·Qᵀ with λ₁ ≥ λ₂ ≥ … and Q orthonormal (column i is the eigenvector of λᵢ).
#[derive(Clone, Debug)]
pub struct SymmetricEigen {
    /// Eigenvalues, decreasing.
    pub values: Array1<f64>,
    /// Orthonormal eigenvectors, one per column, in the order of `values`.
    pub vectors: Array2<f64>,
}

impl SymmetricEigen {
    /// λ_max/λ_min over the eigenvalues' magnitudes: ∞ when one is 0.
    pub fn condition_number(&self) -> f64 {
        let max = self.values.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let min = self.values.iter().fold(f64::INFINITY, |m, v| m.min(v.abs()));
        if min == 0.0 { f64::INFINITY } else { max / min }
    }

    /// Q·diag(f(λ))·Qᵀ·x: a spectral function of H applied to a vector.
    pub fn apply_function(&self, x: ndarray::ArrayView1<'_, f64>, f: impl Fn(f64) -> f64) -> Array1<f64> {
        let mut c = self.vectors.t().dot(&x);
        c.iter_mut().zip(&self.values).for_each(|(c, &l)| *c *= f(l));
        self.vectors.dot(&c)
    }
}

/// The eigendecomposition of the symmetric matrix `h` (only its lower triangle is read, as by
/// numpy's `eigh`), in three steps:
/// 1. QᵀHQ = T, Householder tridiagonalisation blocked as LAPACK's `dsytrd`
///    (`curvature/tridiag.rs`; faer's own is unblocked and ~1.7× slower at n = 2000);
/// 2. T = ZΛZᵀ by divide and conquer (`curvature/divide.rs`: faer's below 64 rows, merges of
///    our own above, on every thread), eigenpairs in decreasing order;
/// 3. the eigenvectors QZ, by faer's blocked application of Q's reflectors, each thread on its
///    own columns.
///
/// The eigenvectors are written column by column, so the result is column-major (Fortran
/// order; `vectors.t()` is row-major).
///
/// ```
/// use ndarray::array;
/// let e = backprop::curvature::eigh(array![[2.0, 1.0], [1.0, 2.0]].view()).unwrap();
/// assert!((e.values[0] - 3.0).abs() < 1e-12 && (e.values[1] - 1.0).abs() < 1e-12);
/// ```
pub fn eigh(h: ArrayView2<'_, f64>) -> Result<SymmetricEigen> {
    use faer::dyn_stack::{MemBuffer, MemStack};
    use faer::linalg::householder;

    let (n, m) = h.dim();
    if n != m {
        return Err(Error::shape("eigh", format!("the matrix must be square, got {n}×{m}")));
    }
    if n == 0 {
        return Ok(SymmetricEigen { values: Array1::zeros(0), vectors: Array2::zeros((0, 0)) });
    }
    // Waking the other thread costs more than a small decomposition (faer's own, which hands
    // any work to rayon: n = 25 took 0.3 ms instead of 0.06), so below SEQUENTIAL_BELOW
    // everything stays on the calling thread.
    let parallel = n >= SEQUENTIAL_BELOW;
    let h = h.as_standard_layout();
    let h = h.as_slice().expect("standard layout");
    // faer's divide and conquer has absolute tolerances: on c·H its eigenvalues are off by
    // ~1e-5 relative at c = 1e-12 or 1e8, and by half at c = 1e-30, while they are exact to
    // rounding for ‖H‖ near 1 (our merges' deflation tolerance too has an absolute floor).
    // Like LAPACK's drivers, decompose H·2⁻ᵉ with max|Hᵢⱼ| in [1, 2) and scale the
    // eigenvalues back: a power of two changes no digit.
    let (finite, max) = scan(h, n, parallel);
    if !finite {
        let (i, v) = h.iter().enumerate().find(|(_, v)| !v.is_finite()).expect("a non-finite entry");
        return Err(Error::non_finite("eigh input", format!("entry ({}, {}) is {v}", i / n, i % n)));
    }
    let e = scale_exponent(max);
    // Column-major H (a row-major buffer transposed), its lower triangle scaled by 2⁻ᵉ; the
    // upper triangle is the reduction's scratch.
    let mut a = crate::tensor::zeroed_huge(n * n);
    transpose_into(h, n, n, &mut a, parallel);
    if e != 0 {
        let (s1, s2) = pow2_factors(-e);
        let scale = |(j, col): (usize, &mut [f64])| col[j..].iter_mut().for_each(|v| *v = *v * s1 * s2);
        if parallel {
            a.par_chunks_mut(n).enumerate().for_each(scale);
        } else {
            a.chunks_mut(n).enumerate().for_each(scale);
        }
    }
    let t = tridiag::tridiagonalize(&mut a, n);

    let mut s = vec![0.0; n];
    let mut q = crate::tensor::zeroed_huge(n * n);
    divide::tridiagonal_eigh(&t.diag, &t.sub, &mut s, &mut q, parallel)?;
    let bs = faer::linalg::qr::no_pivoting::factor::recommended_block_size::<f64>(n, n).max(1);
    if n > 1 {
        // Q = H₀⋯H_{n−2} applied to the rows 1.. of Z, in blocks of `bs` reflectors (faer's
        // compact-WY factors; faer's τ is 1/τ, ∞ for the identity, as its own reduction stores).
        let n1 = n - 1;
        let essentials = faer::MatRef::from_column_major_slice(&a, n, n).submatrix(1, 0, n1, n1);
        let mut factor = faer::Mat::<f64>::zeros(bs, n1);
        let mut j = 0;
        while j < n1 {
            let b = bs.min(n1 - j);
            let mut block = factor.as_mut().submatrix_mut(0, j, b, b);
            for k in 0..b {
                let tau = t.tau[j + k];
                block[(k, k)] = if tau == 0.0 { f64::INFINITY } else { tau.recip() };
            }
            householder::upgrade_householder_factor(
                block,
                essentials.submatrix(j, j, n1 - j, b),
                b,
                1,
                faer::Par::Seq,
            );
            j += b;
        }
        // Each thread applies all of Q to its own block of Z's columns: no synchronisation
        // between them, where faer's parallel product synchronises at each of the n/bs blocks
        // (n = 2000: 128–141 vs 137–157 ms).
        let threads = if parallel { rayon::current_num_threads() } else { 1 };
        let width = n.div_ceil(threads);
        let apply = |z: &mut [f64]| -> Result<()> {
            let cols = z.len() / n;
            let mut stack = MemBuffer::try_new(
                householder::apply_block_householder_sequence_on_the_left_in_place_scratch::<f64>(
                    n1, bs, cols,
                ),
            )
            .map_err(|_| Error::invalid("eigh", format!("cannot allocate the workspace for {n} rows")))?;
            householder::apply_block_householder_sequence_on_the_left_in_place_with_conj(
                essentials,
                factor.as_ref(),
                faer::Conj::No,
                faer::MatMut::from_column_major_slice_mut(z, n, cols).subrows_mut(1, n1),
                faer::Par::Seq,
                MemStack::new(&mut stack),
            );
            Ok(())
        };
        if threads > 1 {
            q.par_chunks_mut(width * n).try_for_each(apply)?;
        } else {
            apply(&mut q)?;
        }
    }
    let values = scaled_back(&s, e, "eigh")?;
    let vectors = Array2::from_shape_vec((n, n).f(), q).expect("n·n entries");
    Ok(SymmetricEigen { values, vectors })
}

/// Eigenvalues (decreasing) and eigenvectors of the symmetric tridiagonal T with diagonal
/// `diag` and off-diagonal `sub`, by our divide and conquer directly — no dense n×n T to reduce
/// again (a Lanczos run's T at m = 265: O(m³) of the dense path, done every five steps).
/// Scaled by a power of two as [`eigh`] is, for the solvers' absolute tolerances.
pub(crate) fn tridiagonal_eigh(diag: &[f64], sub: &[f64]) -> Result<SymmetricEigen> {
    let n = diag.len();
    if sub.len() + 1 != n.max(1) {
        return Err(Error::shape(
            "tridiagonal_eigh",
            format!("{n} diagonal and {} off-diagonal entries", sub.len()),
        ));
    }
    if n == 0 {
        return Ok(SymmetricEigen { values: Array1::zeros(0), vectors: Array2::zeros((0, 0)) });
    }
    if let Some(v) = diag.iter().chain(sub).find(|v| !v.is_finite()) {
        return Err(Error::non_finite("tridiagonal_eigh", format!("an entry is {v}")));
    }
    let e = scale_exponent(diag.iter().chain(sub).fold(0.0f64, |m, v| m.max(v.abs())));
    let scaled = |v: &[f64]| -> Vec<f64> { v.iter().map(|&x| times_pow2(x, -e)).collect() };
    let (mut s, mut z) = (vec![0.0; n], vec![0.0; n * n]);
    divide::tridiagonal_eigh(&scaled(diag), &scaled(sub), &mut s, &mut z, n >= SEQUENTIAL_BELOW)?;
    let values = scaled_back(&s, e, "tridiagonal_eigh")?;
    let vectors = Array2::from_shape_vec((n, n).f(), z).expect("n·n entries");
    Ok(SymmetricEigen { values, vectors })
}

/// The e with max·2⁻ᵉ in [1, 2) (0 for max = 0): the power of two the solvers' input is
/// scaled by.
fn scale_exponent(max: f64) -> i32 {
    if max > 0.0 { max.log2().floor() as i32 } else { 0 }
}

/// The eigenvalues `s` of the scaled matrix times 2ᵉ, or an error naming `op` if one
/// overflows f64.
fn scaled_back(s: &[f64], e: i32, op: &str) -> Result<Array1<f64>> {
    let values = Array1::from_iter(s.iter().map(|&v| times_pow2(v, e)));
    if let Some(v) = values.iter().find(|v| !v.is_finite()) {
        return Err(Error::non_finite(op, format!("an eigenvalue is {v}: it overflows f64")));
    }
    Ok(values)
}

/// x·2ᵉ, exact unless the result over- or underflows.
fn times_pow2(x: f64, e: i32) -> f64 {
    let (s1, s2) = pow2_factors(e);
    x * s1 * s2
}

/// (s₁, s₂) with s₁·s₂ = 2ᵉ, each a finite f64: 2ᵉ alone is not one for |e| > 1023 (a
/// subnormal input's scale).
fn pow2_factors(e: i32) -> (f64, f64) {
    let half = e / 2;
    (2f64.powi(half), 2f64.powi(e - half))
}

/// Whether every entry of the row-major n×n `h` is finite, and max|hᵢⱼ| over its lower
/// triangle (j ≤ i): one pass, rows in parallel, eight independent lanes (vectorised) per row.
fn scan(h: &[f64], n: usize, parallel: bool) -> (bool, f64) {
    const LANES: usize = 8;
    let row = |i: usize| {
        let (lower, upper) = h[i * n..(i + 1) * n].split_at(i + 1);
        // x·0 is 0 for finite x and NaN for ±∞ and NaN; f64::max skips NaN.
        let (mut nan, mut max) = ([0.0f64; LANES], [0.0f64; LANES]);
        let chunks = lower.chunks_exact(LANES);
        let rest = chunks.remainder();
        for c in chunks {
            for l in 0..LANES {
                nan[l] += c[l] * 0.0;
                max[l] = max[l].max(c[l].abs());
            }
        }
        let chunks = upper.chunks_exact(LANES);
        let upper_rest = chunks.remainder();
        for c in chunks {
            for l in 0..LANES {
                nan[l] += c[l] * 0.0;
            }
        }
        let finite = nan.iter().chain(rest).chain(upper_rest).all(|v| v.is_finite());
        let max = rest.iter().fold(max.iter().fold(0.0f64, |m, v| m.max(*v)), |m, v| m.max(v.abs()));
        (finite, max)
    };
    let both = |(f, m): (bool, f64), (g, k): (bool, f64)| (f && g, m.max(k));
    if parallel {
        (0..n).into_par_iter().map(row).reduce(|| (true, 0.0), both)
    } else {
        (0..n).map(row).fold((true, 0.0), both)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eigenvalues_decrease_and_q_is_orthonormal_and_reconstructs() {
        let n = 30;
        let b = Array2::from_shape_fn((n, n), |(i, j)| ((i * 7 + j * 13) % 11) as f64 - 5.0);
        let h = &b + &b.t();
        let e = eigh(h.view()).unwrap();
        assert!(e.values.windows(2).into_iter().all(|w| w[0] >= w[1]));
        let qtq = e.vectors.t().dot(&e.vectors);
        assert!((&qtq - &Array2::<f64>::eye(n)).iter().all(|v| v.abs() < 1e-12));
        let rec = e.vectors.dot(&Array2::from_diag(&e.values)).dot(&e.vectors.t());
        assert!((&rec - &h).iter().all(|v| v.abs() < 1e-10));
        // H·qᵢ = λᵢqᵢ column by column (pairs columns with values, whatever the storage).
        for (i, q) in e.vectors.columns().into_iter().enumerate() {
            assert!((&h.dot(&q) - &(&q * e.values[i])).iter().all(|v| v.abs() < 1e-10), "column {i}");
        }
        // A transposed (column-major) view and odd sizes give the same values.
        for n in [1, 2, 7] {
            let b = Array2::from_shape_fn((n, n), |(i, j)| ((i * 5 + j * 3) % 7) as f64 - 3.0);
            let h = &b + &b.t();
            let (a, t) = (eigh(h.view()).unwrap(), eigh(h.t()).unwrap());
            assert!((&a.values - &t.values).iter().all(|v| v.abs() < 1e-12), "n = {n}");
            let rec = a.vectors.dot(&Array2::from_diag(&a.values)).dot(&a.vectors.t());
            assert!((&rec - &h).iter().all(|v| v.abs() < 1e-10), "n = {n}");
        }
    }

    /// Sizes across the reduction's panel width and its two-thread threshold, plus matrices
    /// with null reflectors and repeated eigenvalues, against faer's own unblocked
    /// decomposition (an independent reduction) and the defining identities.
    #[test]
    fn matches_faer_across_panels_threads_and_degenerate_spectra() {
        use faer::dyn_stack::{MemBuffer, MemStack};
        let random = |n: usize, seed: u64| {
            let mut s = seed;
            let b = Array2::from_shape_simple_fn((n, n), || {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((s >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
            });
            &b + &b.t()
        };
        let mut cases: Vec<Array2<f64>> =
            [31, 32, 33, 97, 300].iter().map(|&n| random(n, n as u64)).collect();
        let n = 300;
        cases.push(Array2::from_diag(&Array1::from_iter((0..n).map(|i| (i % 7) as f64 - 3.0))));
        let u = random(n, 9).slice(ndarray::s![.., ..3]).to_owned();
        cases.push(Array2::<f64>::eye(n) * 2.0 + u.dot(&u.t())); // λ = 2 repeated n − 3 times
        for h in &cases {
            let n = h.nrows();
            let e = eigh(h.view()).unwrap();
            let scale = h.iter().fold(1.0f64, |m, v| m.max(v.abs())) * n as f64;
            let par = faer::Par::Seq;
            let mut buf = MemBuffer::new(faer::linalg::evd::self_adjoint_evd_scratch::<f64>(
                n,
                faer::linalg::evd::ComputeEigenvectors::No,
                par,
                Default::default(),
            ));
            let mut s = faer::diag::Diag::<f64>::zeros(n);
            let hf = faer::Mat::<f64>::from_fn(n, n, |i, j| h[[i, j]]);
            faer::linalg::evd::self_adjoint_evd(
                hf.as_ref(),
                s.as_mut(),
                None,
                par,
                MemStack::new(&mut buf),
                Default::default(),
            )
            .unwrap();
            let s = s.column_vector();
            for i in 0..n {
                assert!((e.values[i] - s[n - 1 - i]).abs() < 1e-13 * scale, "n = {n}: λ{i}");
            }
            let qtq = e.vectors.t().dot(&e.vectors);
            assert!((&qtq - &Array2::<f64>::eye(n)).iter().all(|v| v.abs() < 1e-12), "n = {n}: QᵀQ");
            let r = h.dot(&e.vectors) - &e.vectors * &e.values;
            assert!(r.iter().all(|v| v.abs() < 1e-13 * scale), "n = {n}: HQ − QΛ");
        }
    }

    /// faer's divide and conquer alone is off by ~1e-5 relative at these scales (1e-12, 1e8)
    /// and by half at 1e-30; the power-of-two normalisation makes eigh exactly scale-covariant.
    #[test]
    fn eigenvalues_of_a_scaled_matrix_scale_exactly() {
        let n = 300;
        let mut s = 5u64;
        let b = Array2::from_shape_simple_fn((n, n), || {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
        });
        let h = &b + &b.t();
        let base = eigh(h.view()).unwrap();
        let spread = base.values[0].abs().max(base.values[n - 1].abs());
        for c in [1e-300, 1e-30, 1e-12, 1e-8, 1e8, 1e30, 1e300] {
            let e = eigh((&h * c).view()).unwrap();
            for i in 0..n {
                assert!((e.values[i] / c - base.values[i]).abs() < 1e-13 * spread, "c = {c:e}: λ{i}");
            }
            let r = (&h * c).dot(&e.vectors) - &e.vectors * &e.values;
            assert!(r.iter().all(|v| v.abs() < 1e-13 * spread * c * n as f64), "c = {c:e}: HQ − QΛ");
        }
        // Subnormal entries, and eigenvalues that overflow f64, are reported, not hidden.
        let tiny = eigh((&h * 1e-310).view()).unwrap();
        assert!(tiny.values.iter().all(|v| v.is_finite()) && tiny.values[0] > 0.0);
        let huge = Array2::from_elem((2, 2), f64::MAX);
        assert!(eigh(huge.view()).is_err());
    }

    #[test]
    fn only_the_lower_triangle_is_read() {
        let h = ndarray::array![[2.0, 1.0], [1.0, 2.0]];
        let mut junk = h.clone();
        junk[[0, 1]] = 100.0;
        let (a, b) = (eigh(h.view()).unwrap(), eigh(junk.view()).unwrap());
        assert_eq!(a.values, b.values);
        // Nor does the upper triangle set the scale: 1e300 above tiny entries changes nothing.
        let mut tiny = &h * 1e-10;
        let want = eigh(tiny.view()).unwrap().values;
        tiny[[0, 1]] = 1e300;
        assert_eq!(eigh(tiny.view()).unwrap().values, want);
    }

    #[test]
    fn scan_finds_every_non_finite_entry_and_the_lower_triangle_max() {
        for n in [1, 9, 130] {
            let h: Vec<f64> = (0..n * n).map(|k| ((k * 37) % 101) as f64 / 50.0 - 1.0).collect();
            let lower = (0..n).flat_map(|i| (0..=i).map(move |j| (i, j)));
            let want = lower.fold(0.0f64, |m, (i, j)| m.max(h[i * n + j].abs()));
            for parallel in [false, true] {
                assert_eq!(scan(&h, n, parallel), (true, want), "n = {n}");
                // Positions in the eight lanes and in the rest, below and above the diagonal
                // (every one for the small sizes).
                let step = if n > 9 { 53 } else { 1 };
                for k in (0..n * n).step_by(step).chain([n * n - 1, (n / 2) * (n + 1)]) {
                    for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
                        let mut g = h.clone();
                        g[k] = bad;
                        assert!(!scan(&g, n, parallel).0, "n = {n}, entry {k} = {bad}");
                    }
                }
            }
            // A large entry above the diagonal does not count.
            let mut g = h.clone();
            g[n - 1] = 1e300;
            assert_eq!(scan(&g, n, false).1, if n == 1 { 1e300 } else { want });
        }
    }

    #[test]
    fn non_square_or_non_finite_is_an_error() {
        assert!(eigh(Array2::<f64>::zeros((2, 3)).view()).is_err());
        let mut h = Array2::<f64>::eye(2);
        h[[0, 1]] = f64::NAN;
        assert!(eigh(h.view()).is_err());
    }

    #[test]
    fn tridiagonal_eigh_matches_the_dense_path_at_any_scale() {
        for n in [1usize, 2, 5, 70, 150] {
            for scale in [1.0, 1e-200, 1e200] {
                let diag: Vec<f64> = (0..n).map(|i| scale * (((i * 7) % 11) as f64 - 5.0)).collect();
                let sub: Vec<f64> = (1..n).map(|i| scale * (((i * 5) % 7) as f64 * 0.5 - 1.0)).collect();
                let mut t = Array2::zeros((n, n));
                for i in 0..n {
                    t[[i, i]] = diag[i];
                    if i + 1 < n {
                        t[[i, i + 1]] = sub[i];
                        t[[i + 1, i]] = sub[i];
                    }
                }
                let e = tridiagonal_eigh(&diag, &sub).unwrap();
                let dense = eigh(t.view()).unwrap();
                let top = dense.values.iter().fold(0.0f64, |a, v| a.max(v.abs()));
                for (a, b) in e.values.iter().zip(&dense.values) {
                    assert!((a - b).abs() <= 1e-13 * top, "n {n} scale {scale:e}: {a} vs {b}");
                }
                assert!(e.values.as_slice().unwrap().windows(2).all(|w| w[0] >= w[1]));
                let residual = t.dot(&e.vectors) - &e.vectors * &e.values;
                assert!(residual.iter().all(|v| v.abs() <= 1e-13 * top), "n {n} scale {scale:e}: TZ = ZΛ");
            }
        }
        assert!(tridiagonal_eigh(&[1.0, 2.0], &[]).is_err());
        assert!(tridiagonal_eigh(&[1.0, f64::NAN], &[0.5]).is_err());
        assert_eq!(tridiagonal_eigh(&[], &[]).unwrap().values.len(), 0);
    }
}
