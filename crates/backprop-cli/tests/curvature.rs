//! `backprop hessian` and `backprop regularize` end to end: a model fitted and saved with the
//! library, the real binary, the JSON contracts and the files.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use backprop::curvature::{MlpObjective, PenalisedNewton};
use backprop::data::{LoadOptions, Normalization, load};
use backprop::io::{ModelConfig, save_model};
use backprop::nn::{Activation, Loss, MlpBuilder, ParamSelection};

/// A fresh directory for one test, removed when the test passes (kept when it fails, to look
/// at).
struct Scratch(PathBuf);

impl std::ops::Deref for Scratch {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

fn dir(name: &str) -> Scratch {
    let d = std::env::temp_dir().join(format!("backprop-curvature-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    Scratch(d)
}

fn backprop(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_backprop")).args(args).output().expect("the backprop binary runs")
}

/// Iris versicolor (0) vs virginica (1) as a CSV, and a 4-3-1 sigmoid/bce model fitted to a
/// minimum (damped Newton) saved next to it.
fn fixture(root: &Path) -> (String, String) {
    let iris = load::<f64>("iris", &LoadOptions::new()).unwrap();
    let ds = iris.select_classes(&["versicolor", "virginica"]).unwrap();
    let mut csv = format!("{},label\n", ds.feature_names.join(","));
    for (x, y) in ds.x.outer_iter().zip(ds.y.outer_iter()) {
        let row: Vec<String> = x.iter().map(|v| v.to_string()).collect();
        csv += &format!("{},{}\n", row.join(","), y[0]);
    }
    let data = root.join("binary.csv");
    std::fs::write(&data, csv).unwrap();
    let norm = Normalization::fit(ds.x.view()).unwrap();
    let x = ds.normalized(&norm).unwrap().x;
    let mut m = MlpBuilder::new(&[4, 3, 1]).activation(Activation::Sigmoid).seed(3).build::<f64>().unwrap();
    let obj = MlpObjective::new(&m, x.view(), ds.y.view(), Loss::Bce).unwrap().params(ParamSelection::All);
    // A small penalty keeps the separable-ish problem at a finite minimum.
    let fit =
        PenalisedNewton::new().minimize(&obj, obj.initial().view(), obj.penalty_mask().view(), 1e-3).unwrap();
    m.set_flat_params(ParamSelection::All, fit.w.as_slice().unwrap()).unwrap();
    let model = root.join("model");
    save_model(&model, &m, &ModelConfig::new(&m).loss(Loss::Bce).normalization(norm)).unwrap();
    (model.display().to_string(), data.display().to_string())
}

#[test]
fn hessian_json_and_files_follow_the_contract() {
    let root = dir("hessian");
    let (model, data) = fixture(&root);
    let out = root.join("h");
    let o = backprop(&[
        "hessian",
        "--model",
        &model,
        "--data",
        &data,
        "--target",
        "label",
        "--json",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["n_params"], 15);
    let eig: Vec<f64> = v["eigenvalues"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
    assert_eq!(eig.len(), 15);
    assert!(eig.windows(2).all(|w| w[0] >= w[1]));
    let h = v["hessian"].as_array().unwrap();
    assert_eq!(h.len(), 15);
    for (i, row) in h.iter().enumerate() {
        for (j, hij) in row.as_array().unwrap().iter().enumerate() {
            assert_eq!(*hij, h[j][i]);
        }
    }
    let trace: f64 = (0..15).map(|i| h[i][i].as_f64().unwrap()).sum();
    assert!((trace - eig.iter().sum::<f64>()).abs() < 1e-10 * trace.abs().max(1.0));
    for f in
        ["hessian.npy", "eigenvalues.npy", "eigenvectors.npy", "spectrum.png", "spectrum.svg", "hessian.json"]
    {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    // The human table.
    let o = backprop(&["hessian", "--model", &model, "--data", &data, "--params", "all"]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success() && text.contains("19 parameters (all") && text.contains("condition number"),
        "{text}"
    );
}

#[test]
fn regularize_json_reports_every_mu_and_writes_plots() {
    let root = dir("regularize");
    let (model, data) = fixture(&root);
    let out = root.join("r");
    let o = backprop(&[
        "regularize",
        "--model",
        &model,
        "--data",
        &data,
        "--mu",
        "0.001,0.01,0.1,1",
        "--json",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let results = v["results"].as_array().unwrap();
    assert_eq!(results.len(), 4);
    for (r, mu) in results.iter().zip([0.001, 0.01, 0.1, 1.0]) {
        assert_eq!(r["mu"].as_f64().unwrap(), mu);
        let e = r["relative_error"].as_f64().unwrap();
        assert!(e.is_finite() && e >= 0.0);
        assert_eq!(r["directions"].as_array().unwrap().len(), 15);
    }
    for f in [
        "shrinkage.png",
        "shrinkage.svg",
        "prediction_error.png",
        "prediction_error.svg",
        "regularize.json",
        "measured_weights.npy",
    ] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    let o = backprop(&["regularize", "--model", &model, "--data", &data, "--mu", "0.01"]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success() && text.contains("Per eigen-direction"), "{text}");
    // A base penalty: the analysed point is the strict minimum of L + (μ₀/2)‖w‖².
    let o = backprop(&[
        "regularize",
        "--model",
        &model,
        "--data",
        &data,
        "--mu",
        "1e-4,1e-3",
        "--base-mu",
        "0.01",
        "--json",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["base_mu"].as_f64(), Some(0.01));
    assert_eq!(v["base_minimizer"]["converged"], true, "{}", v["base_minimizer"]);
    assert!(v["diagnostics"]["grad_norm"].as_f64().unwrap() < 1e-8, "{}", v["diagnostics"]);
}

#[test]
fn bad_options_are_errors_with_exit_two() {
    let root = dir("bad");
    let (model, data) = fixture(&root);
    for args in [
        vec!["regularize", "--model", &model, "--data", &data, "--mu", "-1"],
        vec!["regularize", "--model", &model, "--data", &data, "--mu", "abc"],
        vec!["regularize", "--model", &model, "--data", &data, "--mu", "0.1", "--base-mu", "-1"],
        vec!["hessian", "--model", "/nonexistent/model", "--data", &data],
        vec!["hessian", "--model", &model, "--data", "nope.txt"],
        vec!["hessian", "--model", &model, "--data", &data, "--params", "biases"],
        vec!["hessian", "--model", &model, "--data", &data, "--top-k", "0"],
    ] {
        let o = backprop(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
        assert!(String::from_utf8_lossy(&o.stderr).contains("error"), "{args:?}");
    }
}
