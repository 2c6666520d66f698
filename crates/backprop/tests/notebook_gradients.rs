//! The hand-derived backward pass of `backprop::notebook` against central finite differences,
//! for random widths, inputs, weights, biases and targets — single sample and batch.

use backprop::notebook::{
    Weights, batch_backpropagation, batch_feed_forward, simple_backpropagation, simple_feed_forward,
};
use ndarray::{Array1, Array2};
use proptest::prelude::*;

/// L(w) = ½(ŷ − y)² for one sample.
fn loss_single(y: f64, x: &Array1<f64>, w: &Weights) -> f64 {
    0.5 * (simple_feed_forward(x.view(), w).unwrap() - y).powi(2)
}

/// L(w) = (1/n) Σₛ ½(ŷₛ − yₛ)².
fn loss_batch(y: &Array1<f64>, x: &Array2<f64>, w: &Weights) -> f64 {
    let y_hat = batch_feed_forward(x.view(), w).unwrap();
    (&y_hat - y).mapv(|r| 0.5 * r * r).mean().unwrap()
}

/// Every parameter as a mutable reference, in a fixed order with a name for messages.
fn params_mut(w: &mut Weights) -> Vec<(String, &mut f64)> {
    let mut out = Vec::new();
    let (d, k) = w.w_1.dim();
    for (idx, v) in w.w_1.iter_mut().enumerate() {
        out.push((format!("w_1[{}, {}]", idx / k, idx % k), v));
    }
    debug_assert_eq!(out.len(), d * k);
    for (j, v) in w.w_2.iter_mut().enumerate() {
        out.push((format!("w_2[{j}]"), v));
    }
    for (j, v) in w.b_1.iter_mut().enumerate() {
        out.push((format!("b_1[{j}]"), v));
    }
    out.push(("b_2".into(), &mut w.b_2));
    out
}

/// Central differences (L(θ + h) − L(θ − h)) / 2h for every parameter; error O(h²) + O(ε/h).
fn finite_differences(w: &Weights, loss: impl Fn(&Weights) -> f64) -> Vec<(String, f64)> {
    let n = params_mut(&mut w.clone()).len();
    (0..n)
        .map(|i| {
            let mut plus = w.clone();
            let mut minus = w.clone();
            let (name, p) = params_mut(&mut plus).swap_remove(i);
            let h = 1e-5 * (1.0 + p.abs());
            *p += h;
            *params_mut(&mut minus).swap_remove(i).1 -= h;
            (name, (loss(&plus) - loss(&minus)) / (2.0 * h))
        })
        .collect()
}

fn analytic(g: &backprop::notebook::Gradients) -> Vec<f64> {
    g.w_1.iter().chain(g.w_2.iter()).chain(g.b_1.iter()).copied().chain(std::iter::once(g.b_2)).collect()
}

fn assert_close(analytic: &[f64], numeric: &[(String, f64)]) -> Result<(), TestCaseError> {
    prop_assert_eq!(analytic.len(), numeric.len());
    for (a, (name, n)) in analytic.iter().zip(numeric) {
        prop_assert!(
            (a - n).abs() <= 1e-7 + 1e-6 * n.abs(),
            "{}: hand-derived {:e}, finite differences {:e}",
            name,
            a,
            n
        );
    }
    Ok(())
}

fn weights(d: usize, k: usize) -> impl Strategy<Value = Weights> {
    (
        prop::collection::vec(-2.0..2.0f64, d * k),
        prop::collection::vec(-2.0..2.0f64, k),
        prop::collection::vec(-1.0..1.0f64, k),
        -1.0..1.0f64,
    )
        .prop_map(move |(w1, w2, b1, b2)| {
            Weights::with_biases(
                Array2::from_shape_vec((d, k), w1).unwrap(),
                Array1::from(w2),
                Array1::from(b1),
                b2,
            )
            .unwrap()
        })
}

fn single_case() -> impl Strategy<Value = (Weights, Array1<f64>, f64)> {
    (1usize..7, 1usize..7).prop_flat_map(|(d, k)| {
        (weights(d, k), prop::collection::vec(-2.0..2.0f64, d).prop_map(Array1::from), -0.5..1.5f64)
    })
}

fn batch_case() -> impl Strategy<Value = (Weights, Array2<f64>, Array1<f64>)> {
    (1usize..6, 1usize..6, 1usize..9).prop_flat_map(|(d, k, n)| {
        (
            weights(d, k),
            prop::collection::vec(-2.0..2.0f64, n * d)
                .prop_map(move |v| Array2::from_shape_vec((n, d), v).unwrap()),
            prop::collection::vec(0.0..1.0f64, n).prop_map(Array1::from),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn single_sample_gradients_match_finite_differences((w, x, y) in single_case()) {
        let g = simple_backpropagation(y, x.view(), &w).unwrap();
        assert_close(&analytic(&g), &finite_differences(&w, |w| loss_single(y, &x, w)))?;
    }

    #[test]
    fn batch_gradients_match_finite_differences((w, x, y) in batch_case()) {
        let (loss, g) = batch_backpropagation(y.view(), x.view(), &w).unwrap();
        prop_assert!((loss - loss_batch(&y, &x, &w)).abs() <= 1e-15 * (1.0 + loss));
        assert_close(&analytic(&g), &finite_differences(&w, |w| loss_batch(&y, &x, w)))?;
    }

    #[test]
    fn batch_of_one_equals_single_sample((w, x, y) in single_case()) {
        let xb = x.clone().insert_axis(ndarray::Axis(0));
        let (loss, gb) = batch_backpropagation(ndarray::array![y].view(), xb.view(), &w).unwrap();
        let gs = simple_backpropagation(y, x.view(), &w).unwrap();
        prop_assert!((loss - loss_single(y, &x, &w)).abs() <= 4.0 * f64::EPSILON * (1.0 + loss));
        for (b, s) in analytic(&gb).iter().zip(analytic(&gs)) {
            prop_assert!((b - s).abs() <= 1e-15 * (1.0 + s.abs()), "{:e} vs {:e}", b, s);
        }
    }

    #[test]
    fn batch_gradient_is_mean_of_single_gradients((w, x, y) in batch_case()) {
        let (_, gb) = batch_backpropagation(y.view(), x.view(), &w).unwrap();
        let n = x.nrows() as f64;
        let mut mean = vec![0.0; analytic(&gb).len()];
        for (row, &t) in x.outer_iter().zip(y.iter()) {
            let g = simple_backpropagation(t, row, &w).unwrap();
            for (m, v) in mean.iter_mut().zip(analytic(&g)) {
                *m += v / n;
            }
        }
        for (b, m) in analytic(&gb).iter().zip(&mean) {
            prop_assert!((b - m).abs() <= 1e-14 * (1.0 + m.abs()), "{:e} vs {:e}", b, m);
        }
    }

    #[test]
    fn batch_forward_equals_single_forward((w, x, _y) in batch_case()) {
        let yb = batch_feed_forward(x.view(), &w).unwrap();
        for (row, b) in x.outer_iter().zip(yb.iter()) {
            let s = simple_feed_forward(row, &w).unwrap();
            prop_assert!((b - s).abs() <= 4.0 * f64::EPSILON);
        }
    }
}
