//! `backprop notebook` end to end: the real binary, its output, its JSON contract, its exit code.

use std::process::Command;

fn backprop(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_backprop")).args(args).output().expect("the backprop binary runs")
}

#[test]
fn notebook_passes_and_exits_zero() {
    let out = backprop(&["notebook"]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{text}");
    assert!(text.contains("0.93244675427215695"), "{text}");
    assert!(text.contains("-4.24454555e-5"), "{text}");
    assert_eq!(text.matches("PASS").count(), 2, "{text}");
    assert!(text.contains("Verdict: both checks pass"), "{text}");
}

#[test]
fn notebook_json_follows_the_contract() {
    let out = backprop(&["notebook", "--json"]);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout is one JSON object");
    let y_hat = v["y_hat"].as_f64().expect("y_hat is a number");
    assert!((y_hat - 0.932446754272157_f64).abs() < 1e-15);
    let w_1 = v["gradients"]["w_1"].as_array().expect("w_1 is an array");
    assert_eq!(w_1.len(), 4);
    let expected_rows = [-1.06113639e-05, -2.12227277e-05, -3.18340916e-05, -4.24454555e-05];
    for (row, e) in w_1.iter().zip(expected_rows) {
        let row = row.as_array().expect("each w_1 row is an array");
        assert_eq!(row.len(), 5);
        for x in row {
            assert!((x.as_f64().unwrap() - e).abs() < 1e-13);
        }
    }
    let w_2 = v["gradients"]["w_2"].as_array().expect("w_2 is an array");
    assert_eq!(w_2.len(), 5);
    for x in w_2 {
        assert!((x.as_f64().unwrap() + 0.00223387).abs() < 1e-8);
    }
    assert_eq!(v["passed"], true);
    assert!(v["gradient_squared_error"].as_f64().unwrap() < 1e-15);
}

#[test]
fn help_is_complete() {
    let top = String::from_utf8(backprop(&["--help"]).stdout).unwrap();
    assert!(top.contains("notebook") && top.contains("tour"), "{top}");
    let sub = backprop(&["notebook", "--help"]);
    assert!(sub.status.success());
    let sub = String::from_utf8(sub.stdout).unwrap();
    for needle in ["--json", "0.93244675427215695", "1e-15", "Exit status"] {
        assert!(sub.contains(needle), "missing {needle:?} in:\n{sub}");
    }
}

#[test]
fn tour_help_lists_its_steps_and_options() {
    let out = backprop(&["tour", "--help"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for needle in ["--out", "--quiet", "--json", "backprop-report", "iris", "Hessian", "Exit status"] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
}

#[test]
fn unknown_option_is_an_error_with_exit_two() {
    let out = backprop(&["notebook", "--no-such-flag"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--no-such-flag"));
}
