//! `init`, `train`, `eval`, `predict`, `grad` end to end through the real binary, including a
//! run killed with SIGKILL mid-training and resumed bit-identically.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn backprop(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_backprop")).args(args).output().expect("the backprop binary runs")
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("backprop-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn ok(out: &std::process::Output) -> String {
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "stdout: {text}\nstderr: {}", String::from_utf8_lossy(&out.stderr));
    text
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn grad_json_at_the_notebook_weights_matches_the_notebook() {
    let dir = tmp("grad");
    let model = dir.join("nb");
    ok(&backprop(&[
        "init",
        "--layers",
        "4,5,1",
        "--activation",
        "sigmoid",
        "--init",
        "ones",
        "--no-bias",
        "--loss",
        "squared_error",
        "--out",
        s(&model),
        "--quiet",
    ]));
    let csv = dir.join("x.csv");
    std::fs::write(&csv, "a,b,c,d,y\n0.01,0.02,0.03,0.04,1\n").unwrap();
    let v: serde_json::Value =
        serde_json::from_str(&ok(&backprop(&["grad", "--model", s(&model), "--data", s(&csv), "--json"])))
            .unwrap();
    let g = &v["gradients"];
    // model file layout: 0.weight is out×in (5×4) = the notebook's w_1 transposed
    let expected_rows = [-1.06113639e-05, -2.12227277e-05, -3.18340916e-05, -4.24454555e-05];
    for j in 0..5 {
        for (i, e) in expected_rows.iter().enumerate() {
            let got = g["0.weight"][j][i].as_f64().unwrap();
            assert!((got - e).abs() < 1e-13, "{got} vs {e}");
        }
        assert!((g["2.weight"][0][j].as_f64().unwrap() + 0.00223387).abs() < 1e-8);
    }
    let y_hat = 0.932_446_754_272_157_f64;
    assert!((v["loss"].as_f64().unwrap() - 0.5 * (y_hat - 1.0f64).powi(2)).abs() < 1e-15);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn train_writes_model_history_and_eval_reports_accuracy() {
    let dir = tmp("train");
    let out = dir.join("run");
    let j: serde_json::Value = serde_json::from_str(&ok(&backprop(&[
        "train",
        "--data",
        "iris",
        "--layers",
        "4,8,3",
        "--activation",
        "tanh",
        "--output-activation",
        "identity",
        "--loss",
        "cross_entropy",
        "--optimizer",
        "adam",
        "--lr",
        "0.02",
        "--batch",
        "16",
        "--epochs",
        "60",
        "--standardize",
        "--val-split",
        "0.2",
        "--seed",
        "4",
        "--out",
        s(&out),
        "--json",
    ])))
    .unwrap();
    assert_eq!(j["epochs"], 60);
    for f in [
        "model.safetensors",
        "config.json",
        "history.csv",
        "checkpoint.safetensors",
        "loss.png",
        "loss.svg",
        "accuracy.png",
        "accuracy.svg",
    ] {
        assert!(out.join(f).exists(), "{f} missing");
    }
    let history = std::fs::read_to_string(out.join("history.csv")).unwrap();
    assert_eq!(history.lines().count(), 61);
    assert!(history.starts_with("epoch,loss,penalty,accuracy,rmse,val_loss,val_accuracy,val_rmse"));
    let e: serde_json::Value =
        serde_json::from_str(&ok(&backprop(&["eval", "--model", s(&out), "--data", "iris", "--json"])))
            .unwrap();
    assert!(e["loss"].as_f64().unwrap() < 0.3, "{e}");
    assert!(e["accuracy"].as_f64().unwrap() > 0.9, "{e}");
    let p: serde_json::Value =
        serde_json::from_str(&ok(&backprop(&["predict", "--model", s(&out), "--data", "iris", "--json"])))
            .unwrap();
    assert_eq!(p["outputs"].as_array().unwrap().len(), 150);
    assert_eq!(p["classes"][0], "setosa");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn bad_options_and_data_are_clear_errors() {
    let dir = tmp("bad");
    let out = dir.join("run");
    let missing = dir.join("missing");
    let cases: &[(&[&str], &str)] = &[
        (
            &["train", "--data", "iris", "--layers", "4,8,2", "--loss", "cross_entropy", "--out", s(&out)],
            "needs 3",
        ),
        (
            &["train", "--data", "iris", "--layers", "3,3", "--loss", "cross_entropy", "--out", s(&out)],
            "4 feature columns",
        ),
        (
            &["train", "--data", "iris", "--layers", "4,3", "--loss", "hinge", "--out", s(&out)],
            "cross_entropy",
        ),
        (
            &[
                "train",
                "--data",
                "iris",
                "--layers",
                "4,3",
                "--activation",
                "gelu",
                "--loss",
                "mse",
                "--out",
                s(&out),
            ],
            "leaky_relu",
        ),
        (
            &[
                "train",
                "--data",
                "iris",
                "--layers",
                "4,3",
                "--loss",
                "cross_entropy",
                "--optimizer",
                "rmsprop",
                "--out",
                s(&out),
            ],
            "adam",
        ),
        (&["train", "--data", "nope.csv", "--layers", "4,3", "--loss", "mse", "--out", s(&out)], "nope.csv"),
        (&["eval", "--model", s(&missing), "--data", "iris"], "missing"),
    ];
    for (args, needle) in cases {
        let o = backprop(args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{args:?} should fail");
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    // a truncated model file
    let m = dir.join("m");
    ok(&backprop(&["init", "--layers", "4,3", "--out", s(&m), "--quiet"]));
    let w = m.join("model.safetensors");
    let bytes = std::fs::read(&w).unwrap();
    std::fs::write(&w, &bytes[..bytes.len() / 2]).unwrap();
    let o = backprop(&["eval", "--model", s(&m), "--data", "iris", "--loss", "cross_entropy"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("model.safetensors"));
    // divergence: says so, exits non-zero, keeps the last good model
    let o = backprop(&[
        "train",
        "--data",
        "iris",
        "--target",
        "petal_length_cm",
        "--layers",
        "3,8,1",
        "--activation",
        "identity",
        "--loss",
        "mse",
        "--optimizer",
        "gd",
        "--lr",
        "100",
        "--epochs",
        "100",
        "--out",
        s(&out),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "should diverge");
    assert!(err.contains("diverged"), "{err}");
    assert!(out.join("model.safetensors").exists());
    std::fs::remove_dir_all(&dir).ok();
}

fn train_args<'a>(out: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut a = vec![
        "train",
        "--data",
        "iris",
        "--layers",
        "4,16,3",
        "--activation",
        "tanh",
        "--output-activation",
        "identity",
        "--loss",
        "cross_entropy",
        "--optimizer",
        "sgd",
        "--lr",
        "0.02",
        "--momentum",
        "0.9",
        "--nesterov",
        "--batch",
        "8",
        "--l2",
        "0.001",
        "--epochs",
        "1500",
        "--standardize",
        "--val-split",
        "0.2",
        "--seed",
        "11",
        "--checkpoint-every",
        "1",
        "--out",
        out,
        "--quiet",
    ];
    a.extend_from_slice(extra);
    a
}

#[test]
fn resume_after_sigkill_is_bit_identical_to_an_uninterrupted_run() {
    let dir = tmp("sigkill");
    let (a, b) = (dir.join("a"), dir.join("b"));
    ok(&backprop(&train_args(s(&a), &[])));

    let mut child = Command::new(env!("CARGO_BIN_EXE_backprop"))
        .args(train_args(s(&b), &[]))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let ck = b.join("checkpoint.safetensors");
    let t0 = Instant::now();
    // Let it get a little way in, then SIGKILL (Child::kill sends SIGKILL on Unix).
    while !ck.exists() && t0.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(150));
    let finished_early = child.try_wait().unwrap().is_some();
    child.kill().ok();
    child.wait().unwrap();
    if !finished_early {
        assert!(!b.join("model.safetensors").exists(), "the killed run did not reach the end");
        let st: backprop::train::TrainState<f64> = backprop::train::checkpoint::load(&ck).unwrap();
        assert!(st.epoch < 300, "killed mid-run, at epoch {}", st.epoch);
    }
    ok(&backprop(&train_args(s(&b), &["--resume"])));
    for f in ["model.safetensors", "history.csv", "config.json"] {
        assert!(
            std::fs::read(a.join(f)).unwrap() == std::fs::read(b.join(f)).unwrap(),
            "{f} differs after resume"
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn commands_on_a_saved_model_read_its_target_column_without_being_told() {
    // The target sits in the middle of the table: without the saved target name, eval, grad and
    // hessian would take the last column as the target and find the wrong feature count.
    let dir = tmp("target");
    let csv = dir.join("data.csv");
    let mut text = String::from("a,b,y,c\n");
    for i in 0..40 {
        let (a, b, c) = (i as f64 / 40.0, ((i * 7) % 11) as f64 / 11.0, ((i * 3) % 5) as f64 / 5.0);
        text.push_str(&format!("{a},{b},{},{c}\n", a - 0.5 * b + 0.25 * c));
    }
    std::fs::write(&csv, text).unwrap();
    let out = dir.join("run");
    ok(&backprop(&[
        "train",
        "--data",
        s(&csv),
        "--target",
        "y",
        "--layers",
        "3,4,1",
        "--activation",
        "tanh",
        "--output-activation",
        "identity",
        "--loss",
        "mse",
        "--epochs",
        "5",
        "--standardize",
        "--seed",
        "1",
        "--out",
        s(&out),
        "--quiet",
    ]));
    let eval = |extra: &[&str]| -> serde_json::Value {
        let mut a = vec!["eval", "--model", s(&out), "--data", s(&csv), "--json"];
        a.extend_from_slice(extra);
        serde_json::from_str(&ok(&backprop(&a))).unwrap()
    };
    assert_eq!(eval(&[])["loss"], eval(&["--target", "y"])["loss"]);
    ok(&backprop(&["grad", "--model", s(&out), "--data", s(&csv), "--json"]));
    let h: serde_json::Value =
        serde_json::from_str(&ok(&backprop(&["hessian", "--model", s(&out), "--data", s(&csv), "--json"])))
            .unwrap();
    assert_eq!(h["n_params"], 16);
    std::fs::remove_dir_all(&dir).ok();
}
