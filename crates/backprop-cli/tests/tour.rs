//! `backprop tour` end to end: the real binary, the report files, and the numbers in the JSON.

use std::path::PathBuf;
use std::process::Command;

fn out_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("backprop-tour-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn tour_writes_a_complete_report_whose_numbers_pass_the_checks() {
    let dir = out_dir("e2e");
    let out = Command::new(env!("CARGO_BIN_EXE_backprop"))
        .args(["tour", "--quiet", "--json", "--out"])
        .arg(&dir)
        .output()
        .expect("the backprop binary runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exit {:?}; stderr:\n{stderr}", out.status.code());

    // --json prints exactly what report.json holds.
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout is JSON");
    let text = std::fs::read_to_string(dir.join("report.json")).expect("report.json exists");
    let json: serde_json::Value = serde_json::from_str(&text).expect("report.json is JSON");
    assert_eq!(printed, json);

    // Every file the issue names.
    for f in ["report.html", "report.md", "report.json"] {
        assert!(std::fs::metadata(dir.join(f)).map(|m| m.len() > 500).unwrap_or(false), "{f}");
    }
    for fig in ["loss", "spectrum", "shrinkage", "error_vs_mu"] {
        for ext in ["png", "svg"] {
            let p = dir.join(format!("{fig}.{ext}"));
            assert!(std::fs::metadata(&p).map(|m| m.len() > 2000).unwrap_or(false), "{}", p.display());
        }
    }
    let png = std::fs::read(dir.join("loss.png")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");

    // The HTML is self-contained: figures embedded, no external scripts or styles.
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert_eq!(html.matches("data:image/svg+xml;base64,").count(), 5);
    assert!(!html.contains("<script") && !html.contains("http://") && !html.contains("https://"));

    // The numbers pass the checks they claim to.
    assert_eq!(json["passed"], true);
    let checks = json["checks"].as_array().unwrap();
    assert!(checks.len() >= 10);
    assert!(checks.iter().all(|c| c["passed"] == true), "{checks:#?}");
    let y_hat = json["notebook"]["y_hat"].as_f64().unwrap();
    assert!((y_hat - 0.932446754272157).powi(2) < 1e-15);
    assert_eq!(json["notebook"]["gradients"]["w_1"].as_array().unwrap().len(), 4);
    assert!(json["backward"]["engine"]["notebook_point"]["worst_difference"].as_f64().unwrap() <= 1e-15);
    assert!(json["training"]["final"]["held_out_accuracy"].as_f64().unwrap() >= 0.8);
    let h = json["curvature"]["gradient_descent_point"]["hessian"]["matrix"].as_array().unwrap();
    assert_eq!(h.len(), 31);
    for (i, row) in h.iter().enumerate() {
        for (j, v) in row.as_array().unwrap().iter().enumerate() {
            assert_eq!(*v, h[j][i], "H is symmetric at ({i}, {j})");
        }
    }
    let eig: Vec<f64> = json["curvature"]["regularised_base"]["eigenvalues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_eq!(eig.len(), 25);
    assert!(eig.windows(2).all(|w| w[0] >= w[1]), "eigenvalues decreasing");
    assert!(eig.iter().all(|l| *l > 0.0), "H₀ positive definite at w*₀");
    let first = &json["curvature"]["regularised_base"]["results"][0];
    assert!(first["relative_error_joint"].as_f64().unwrap() < 1e-2);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn tour_reports_an_unwritable_output_directory_as_an_error() {
    // A regular file where the directory should be.
    let file = std::env::temp_dir().join(format!("backprop-tour-test-file-{}", std::process::id()));
    std::fs::write(&file, b"not a directory").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_backprop"))
        .args(["tour", "--quiet", "--out"])
        .arg(file.join("sub"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with("error:"), "{stderr}");
    std::fs::remove_file(&file).unwrap();
}
