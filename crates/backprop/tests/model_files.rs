//! Data in, model files out: the paths a user takes from `--data iris` to a model directory that
//! PyTorch can load.

use std::path::{Path, PathBuf};
use std::process::Command;

use backprop::data::{LoadOptions, Normalization, load};
use backprop::io::{ModelConfig, load_model, save_model, write_npy};
use backprop::nn::{Activation, AnyMlp, Init, Loss, MlpBuilder};
use ndarray::Array2;

struct Scratch(PathBuf);
impl Scratch {
    fn new(tag: &str) -> Self {
        let p = std::env::temp_dir().join(format!("backprop-it-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Scratch(p)
    }
}
impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn notebook_binary_iris_task_round_trips_through_a_model_directory() {
    let iris = load::<f64>("iris", &LoadOptions::new()).unwrap();
    let binary = iris.select_classes(&["versicolor", "virginica"]).unwrap();
    assert_eq!((binary.len(), binary.n_features()), (100, 4));
    let (train, val) = binary.split(0.2, 42).unwrap();
    let norm = Normalization::fit(train.x.view()).unwrap();
    let (train, val) = (train.normalized(&norm).unwrap(), val.normalized(&norm).unwrap());
    assert!(train.x.column(0).sum().abs() < 1e-9);
    assert_eq!(val.len(), 20);

    let mlp = MlpBuilder::new(&[4, 5, 1])
        .activation(Activation::Sigmoid)
        .init(Init::GlorotUniform)
        .seed(3)
        .build::<f64>()
        .unwrap();
    let s = Scratch::new("iris");
    let cfg = ModelConfig::new(&mlp).loss(Loss::Bce).normalization(norm.clone()).names_from(&train);
    save_model(&s.0, &mlp, &cfg).unwrap();
    let (back, cfg) = load_model(&s.0).unwrap();
    assert_eq!(back, AnyMlp::F64(mlp.clone()));
    assert_eq!(cfg.classes.as_deref().unwrap(), ["versicolor", "virginica"]);
    assert_eq!(cfg.feature_names.as_ref().unwrap()[2], "petal_length_cm");
    assert_eq!(cfg.normalization.as_ref(), Some(&norm));

    // Evaluation data is encoded with the model's classes, whatever order its rows come in.
    let eval = load::<f64>("iris", &LoadOptions::new().class_order(cfg.classes.clone().unwrap()));
    assert!(eval.is_err(), "setosa is not one of the model's classes, so this must fail loudly");
}

#[test]
fn f32_models_keep_their_dtype_and_predictions() {
    let wine = load::<f32>("wine", &LoadOptions::new()).unwrap();
    let mlp = MlpBuilder::new(&[13, 8, 3])
        .activation(Activation::Tanh)
        .output_activation(Activation::Identity)
        .init(Init::GlorotNormal)
        .seed(9)
        .build::<f32>()
        .unwrap();
    let s = Scratch::new("wine");
    save_model(&s.0, &mlp, &ModelConfig::new(&mlp).loss(Loss::CrossEntropy).names_from(&wine)).unwrap();
    let (back, cfg) = load_model(&s.0).unwrap();
    let AnyMlp::F32(back) = back else { panic!("dtype changed") };
    let x = Normalization::fit(wine.x.view()).map(|n| wine.normalized(&n).unwrap().x).unwrap();
    assert_eq!(back.predict(x.view()).unwrap(), mlp.predict(x.view()).unwrap());
    assert_eq!(
        cfg.torch,
        "torch.nn.Sequential(torch.nn.Linear(13, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))"
    );
}

/// A Python interpreter (`BACKPROP_PYTHON`, else `python3`) that can import `modules`.
fn python_with(modules: &str) -> Option<String> {
    for py in [std::env::var("BACKPROP_PYTHON").unwrap_or_default(), "python3".into()] {
        if py.is_empty() {
            continue;
        }
        let ok = Command::new(&py)
            .args(["-c", &format!("import {modules}")])
            .output()
            .is_ok_and(|o| o.status.success());
        if ok {
            return Some(py);
        }
    }
    None
}

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/torch").join(name)
}

fn run_script(py: &str, name: &str, args: &[&str]) {
    let out = Command::new(py).arg(script(name)).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{name} {:?} failed:\n{}{}",
        args,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprint!("{}", String::from_utf8_lossy(&out.stdout));
}

fn run(py: &str, args: &[&str]) {
    run_script(py, "check_state_dict.py", args);
}

/// Architectures not chosen to be convenient: deep, no bias, identity in the middle.
const CASES: [(&[usize], &[Activation], bool); 3] = [
    (&[4, 5, 1], &[Activation::Sigmoid, Activation::Sigmoid], true),
    (&[3, 6, 6, 2], &[Activation::Relu, Activation::Identity, Activation::Tanh], false),
    (&[2, 4, 3], &[Activation::LeakyRelu, Activation::Softplus], true),
];

/// Saves case `i` in `dtype` with inputs and our predictions as `.npy`; returns (dir, x, y).
fn save_case(root: &Path, i: usize, dtype: &str) -> (PathBuf, PathBuf, PathBuf) {
    let (sizes, acts, bias) = CASES[i];
    let dir = root.join(format!("ours-{i}-{dtype}"));
    let x = Array2::from_shape_fn((7, sizes[0]), |(r, c)| ((r * 3 + c) as f64 * 0.37).sin() * 2.0);
    let x_path = root.join(format!("ours-{i}-{dtype}.x.npy"));
    let y_path = root.join(format!("ours-{i}-{dtype}.y.npy"));
    let builder =
        MlpBuilder::new(sizes).activations(acts).bias(bias).init(Init::GlorotUniform).seed(i as u64);
    if dtype == "f32" {
        let m = builder.build::<f32>().unwrap();
        save_model(&dir, &m, &ModelConfig::new(&m)).unwrap();
        let x = x.mapv(|v| v as f32);
        write_npy(&x_path, &x).unwrap();
        write_npy(&y_path, &m.predict(x.view()).unwrap()).unwrap();
    } else {
        let m = builder.build::<f64>().unwrap();
        save_model(&dir, &m, &ModelConfig::new(&m)).unwrap();
        write_npy(&x_path, &x).unwrap();
        write_npy(&y_path, &m.predict(x.view()).unwrap()).unwrap();
    }
    (dir, x_path, y_path)
}

/// numpy + the `safetensors` package read our files and their forward pass matches ours.
#[test]
#[ignore = "needs python3 with numpy and safetensors"]
fn numpy_reads_our_model_files() {
    let Some(py) = python_with("numpy, safetensors") else {
        panic!("no python with numpy and safetensors found")
    };
    let s = Scratch::new("numpy");
    for i in 0..CASES.len() {
        for dtype in ["f32", "f64"] {
            let (dir, x, y) = save_case(&s.0, i, dtype);
            run_script(
                &py,
                "numpy_forward.py",
                &[dir.to_str().unwrap(), x.to_str().unwrap(), y.to_str().unwrap()],
            );
        }
    }
}

/// Both directions against PyTorch: our files load with `load_state_dict(strict=True)` and give
/// the same outputs; torch's `save_file(model.state_dict())` loads here and gives the same
/// outputs. Needs python3 with torch, numpy and safetensors (or `BACKPROP_PYTHON`).
#[test]
#[ignore = "needs python3 with torch, numpy and safetensors"]
fn torch_round_trip() {
    let Some(py) = python_with("torch, numpy, safetensors") else {
        panic!("no python with torch, numpy and safetensors found")
    };
    let s = Scratch::new("torch");
    for (i, (sizes, acts, bias)) in CASES.iter().enumerate() {
        for dtype in ["f32", "f64"] {
            let (dir, x_path, y_path) = save_case(&s.0, i, dtype);
            run(
                &py,
                &[
                    "load",
                    dir.to_str().unwrap(),
                    "--x",
                    x_path.to_str().unwrap(),
                    "--y",
                    y_path.to_str().unwrap(),
                ],
            );

            // The other way: torch writes, we read and compare forward passes.
            let tdir = s.0.join(format!("torch-{i}-{dtype}"));
            let layers = sizes.iter().map(|s| s.to_string()).collect::<Vec<_>>().join(",");
            let names = acts.iter().map(|a| a.name()).collect::<Vec<_>>().join(",");
            let mut args = vec![
                "save",
                tdir.to_str().unwrap(),
                "--layers",
                &layers,
                "--activations",
                &names,
                "--dtype",
                dtype,
            ];
            if !bias {
                args.push("--no-bias");
            }
            run(&py, &args);
            let (model, _) = load_model(&tdir).unwrap();
            let x = load::<f64>(tdir.join("x.npy").to_str().unwrap(), &LoadOptions::new().no_targets())
                .unwrap()
                .x;
            let want =
                load::<f64>(tdir.join("torch_y.npy").to_str().unwrap(), &LoadOptions::new().no_targets())
                    .unwrap()
                    .x;
            let got: Array2<f64> = match &model {
                AnyMlp::F32(m) => m.predict(x.mapv(|v| v as f32).view()).unwrap().mapv(f64::from),
                AnyMlp::F64(m) => m.predict(x.view()).unwrap(),
            };
            let tol = if dtype == "f32" { 1e-5 } else { 1e-12 };
            let err = (&got - &want).iter().fold(0.0f64, |a, d| a.max(d.abs()));
            assert!(err < tol, "case {i} {dtype}: max |Δ| = {err:e}");
        }
    }
}
