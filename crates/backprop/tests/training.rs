//! The training loop: updates match the optimiser formulas, checkpoints resume bit-identically,
//! divergence keeps the last good state, early stopping restores the best weights.

use backprop::nn::{Activation, Grads, Init, Loss, Mlp, MlpBuilder, ParamSelection, Workspace};
use backprop::optim::{Optimizer, OptimizerConfig, Penalty};
use backprop::train::{Checkpointer, Control, Observer, OnEpoch, Outcome, TrainState, Trainer, checkpoint};
use backprop::{Error, Scalar};
use ndarray::Array2;

/// Three noisy blobs in 4-d, labels as class indices.
fn blobs<T: Scalar>(n: usize) -> (Array2<T>, Array2<T>) {
    let x = Array2::from_shape_fn((n, 4), |(i, j)| {
        let c = (i % 3) as f64;
        T::of(c * if j % 2 == 0 { 1.0 } else { -0.7 } + 0.4 * ((i * 4 + j) as f64 * 1.731).sin())
    });
    let y = Array2::from_shape_fn((n, 1), |(i, _)| T::of((i % 3) as f64));
    (x, y)
}

fn classifier<T: Scalar>(seed: u64) -> Mlp<T> {
    MlpBuilder::new(&[4, 16, 3])
        .activation(Activation::Tanh)
        .output_activation(Activation::Identity)
        .seed(seed)
        .build()
        .unwrap()
}

#[test]
fn one_gd_epoch_is_one_gradient_step() {
    let (x, y) = blobs::<f64>(30);
    let m0 = classifier::<f64>(1);
    let (_, g) = m0.loss_and_grad(Loss::CrossEntropy, x.view(), y.view()).unwrap();
    let trainer = Trainer::new(Loss::CrossEntropy, OptimizerConfig::gd(0.3)).epochs(1);
    let mut st = TrainState::new(m0.clone(), &trainer).unwrap();
    trainer.fit(&mut st, x.view(), y.view(), None, &mut []).unwrap();
    // The trainer's step is `Optimizer::train_step` exactly (for GD fused into the weight
    // gradient GEMMs: W ← W − lr·δᵀa in one accumulation) …
    let mut fused = m0.clone();
    let mut opt = Optimizer::new(OptimizerConfig::gd(0.3), Penalty::default(), &fused).unwrap();
    let (mut ws, mut scratch) = (Workspace::new(&fused, 30), Grads::zeros_like(&fused));
    opt.train_step(&mut ws, &mut fused, Loss::CrossEntropy, x.view(), y.view(), &mut scratch).unwrap();
    assert_eq!(st.model, fused);
    // … which is θ − lr·∇L up to the rounding of the fused accumulation.
    let expect = &m0.flat_params(ParamSelection::All) - &(&g.flat(ParamSelection::All) * 0.3);
    for (a, b) in st.model.flat_params(ParamSelection::All).iter().zip(expect.iter()) {
        assert!((a - b).abs() <= 1e-15 * (1.0 + b.abs()), "{a} vs {b}");
    }
    let first = st.history.epochs[0];
    assert_eq!(first.loss, m0.loss(Loss::CrossEntropy, x.view(), y.view()).unwrap());
}

fn run_to<T: Scalar>(trainer: &Trainer, st: &mut TrainState<T>, x: &Array2<T>, y: &Array2<T>, epochs: usize) {
    let t = trainer.clone().epochs(epochs);
    let (xv, yv) = (x.slice(ndarray::s![..10, ..]), y.slice(ndarray::s![..10, ..]));
    t.fit(st, x.view(), y.view(), Some((xv, yv)), &mut []).unwrap();
}

fn assert_bit_identical<T: Scalar>(a: &TrainState<T>, b: &TrainState<T>) {
    let bits =
        |m: &Mlp<T>| m.flat_params(ParamSelection::All).iter().map(|v| v.f64().to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&a.model), bits(&b.model));
    assert_eq!(a.optimizer, b.optimizer);
    assert_eq!(a.rng, b.rng);
    assert_eq!(a.epoch, b.epoch);
    assert_eq!(a.history, b.history);
    assert_eq!(a.best, b.best);
    assert_eq!(a.bad_epochs, b.bad_epochs);
}

fn resume_is_bit_identical<T: Scalar>(opt: OptimizerConfig, l2: f64) {
    let (x, y) = blobs::<T>(90);
    let trainer = Trainer::new(Loss::CrossEntropy, opt)
        .batch_size(16)
        .seed(9)
        .l2(l2)
        .early_stopping(1000, 0.0)
        .epochs(12);
    let mut straight = TrainState::new(classifier::<T>(2), &trainer).unwrap();
    run_to(&trainer, &mut straight, &x, &y, 12);

    let dir = std::env::temp_dir().join(format!(
        "backprop-resume-{}-{}-{}-{l2}",
        std::process::id(),
        opt.name(),
        T::DTYPE
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(checkpoint::CHECKPOINT_FILE);
    let mut first = TrainState::new(classifier::<T>(2), &trainer).unwrap();
    run_to(&trainer, &mut first, &x, &y, 5);
    checkpoint::save(&first, &path).unwrap();
    assert_eq!(checkpoint::dtype(&path).unwrap(), T::DTYPE);
    let mut resumed: TrainState<T> = checkpoint::load(&path).unwrap();
    assert_bit_identical(&first, &resumed);
    run_to(&trainer, &mut resumed, &x, &y, 12);
    assert_bit_identical(&straight, &resumed);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn resume_from_checkpoint_is_bit_identical_sgd_nesterov_f64() {
    resume_is_bit_identical::<f64>(OptimizerConfig::Sgd { lr: 0.05, momentum: 0.9, nesterov: true }, 1e-3);
}

#[test]
fn resume_from_checkpoint_is_bit_identical_plain_sgd_fused_step() {
    // No momentum, no penalty: the trainer takes the fused SGD step.
    resume_is_bit_identical::<f64>(OptimizerConfig::sgd(0.05), 0.0);
    resume_is_bit_identical::<f32>(OptimizerConfig::sgd(0.05), 0.0);
}

#[test]
fn resume_from_checkpoint_is_bit_identical_adam_f32() {
    resume_is_bit_identical::<f32>(OptimizerConfig::adam(0.01), 1e-3);
}

#[test]
fn training_learns_and_seed_controls_shuffling() {
    let (x, y) = blobs::<f32>(150);
    let trainer =
        Trainer::new(Loss::CrossEntropy, OptimizerConfig::adam(0.02)).batch_size(10).epochs(40).seed(5);
    let mut a = TrainState::new(classifier::<f32>(3), &trainer).unwrap();
    trainer.fit(&mut a, x.view(), y.view(), None, &mut []).unwrap();
    let last = a.history.last().unwrap();
    assert!(last.loss < a.history.epochs[0].loss * 0.5, "{:?}", a.history.epochs[0]);
    assert!(last.accuracy.unwrap() > 0.9, "{last:?}");
    let mut b = TrainState::new(classifier::<f32>(3), &trainer).unwrap();
    trainer.fit(&mut b, x.view(), y.view(), None, &mut []).unwrap();
    assert_eq!(a.model, b.model);
    let other = trainer.clone().seed(6);
    let mut c = TrainState::new(classifier::<f32>(3), &other).unwrap();
    other.fit(&mut c, x.view(), y.view(), None, &mut []).unwrap();
    assert_ne!(a.model, c.model);
}

#[test]
fn column_major_data_trains_exactly_as_its_row_major_copy() {
    // Minibatches are gathered by rows; a column-major x (a transposed view or a Fortran-order
    // array) goes through a row-major copy, which must not change a bit of the run.
    let (x, y) = blobs::<f64>(90);
    let fortran = x.t().as_standard_layout().into_owned().reversed_axes();
    assert!(!fortran.is_standard_layout() && fortran == x);
    let trainer = Trainer::new(Loss::CrossEntropy, OptimizerConfig::sgd(0.1)).batch_size(8).epochs(3).seed(2);
    let mut a = TrainState::new(classifier::<f64>(4), &trainer).unwrap();
    trainer.fit(&mut a, x.view(), y.view(), None, &mut []).unwrap();
    let mut b = TrainState::new(classifier::<f64>(4), &trainer).unwrap();
    trainer.fit(&mut b, fortran.view(), y.view(), None, &mut []).unwrap();
    assert_bit_identical(&a, &b);
}

#[test]
fn divergence_is_an_error_and_keeps_the_last_good_state() {
    let (x, _) = blobs::<f64>(30);
    let y = x.column(0).mapv(|v| v * 1e3).insert_axis(ndarray::Axis(1));
    let m = MlpBuilder::new(&[4, 8, 1])
        .activation(Activation::Identity)
        .init(Init::He)
        .seed(1)
        .build::<f64>()
        .unwrap();
    let trainer = Trainer::new(Loss::Mse, OptimizerConfig::gd(10.0)).epochs(100);
    let mut st = TrainState::new(m, &trainer).unwrap();
    let dir = std::env::temp_dir().join(format!("backprop-diverge-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut ck = Checkpointer::new(dir.join("ck.safetensors"), 1);
    let err = trainer.fit(&mut st, x.view(), y.view(), None, &mut [&mut ck]).unwrap_err();
    let Error::Diverged { epoch, .. } = err else { panic!("{err}") };
    assert_eq!(st.epoch, epoch - 1);
    assert!(st.model.validate().is_ok(), "the kept model is finite");
    let saved: TrainState<f64> = checkpoint::load(&dir.join("ck.safetensors")).unwrap();
    assert_eq!(saved.model, st.model);
    assert!(err.to_string().contains("diverged"));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn early_stopping_stops_and_restores_the_best_weights() {
    let (x, y) = blobs::<f64>(60);
    // Validation on shifted data so that the validation loss turns up eventually.
    let xv = x.mapv(|v| v + 0.8);
    let trainer =
        Trainer::new(Loss::CrossEntropy, OptimizerConfig::adam(0.05)).epochs(500).early_stopping(5, 0.0);
    let mut st = TrainState::new(classifier::<f64>(4), &trainer).unwrap();
    let outcome = trainer.fit(&mut st, x.view(), y.view(), Some((xv.view(), y.view())), &mut []).unwrap();
    assert_eq!(outcome, Outcome::EarlyStopped);
    let best = st.best.as_ref().unwrap();
    assert_eq!(st.epoch, best.epoch + 5);
    assert_eq!(st.model, best.model);
    let best_val = st.history.epochs.iter().filter_map(|r| r.val_loss).fold(f64::INFINITY, f64::min);
    assert_eq!(best.value, best_val);
}

#[test]
fn observers_see_every_epoch_and_can_stop() {
    let (x, y) = blobs::<f64>(30);
    let trainer = Trainer::new(Loss::CrossEntropy, OptimizerConfig::sgd(0.1)).batch_size(7).epochs(10);
    let mut st = TrainState::new(classifier::<f64>(1), &trainer).unwrap();
    let mut seen = Vec::new();
    let mut obs = OnEpoch(|_: &TrainState<f64>, r: &backprop::train::EpochRecord| {
        seen.push(r.epoch);
        if r.epoch == 4 { Control::Stop } else { Control::Continue }
    });
    let out =
        trainer.fit(&mut st, x.view(), y.view(), None, &mut [&mut obs as &mut dyn Observer<f64>]).unwrap();
    assert_eq!(out, Outcome::Stopped);
    assert_eq!(seen, [1, 2, 3, 4]);
    assert!(st.history.to_csv().starts_with("epoch,loss,penalty,accuracy"));
}

#[test]
fn resume_with_other_settings_or_bad_data_is_refused() {
    let (x, y) = blobs::<f64>(30);
    let trainer = Trainer::new(Loss::CrossEntropy, OptimizerConfig::sgd(0.1)).epochs(2);
    let mut st = TrainState::new(classifier::<f64>(1), &trainer).unwrap();
    trainer.fit(&mut st, x.view(), y.view(), None, &mut []).unwrap();
    let other = trainer.clone().l2(0.1).epochs(4);
    assert!(
        other
            .fit(&mut st, x.view(), y.view(), None, &mut [])
            .unwrap_err()
            .to_string()
            .contains("different settings")
    );
    let mut bad = x.clone();
    bad[[3, 2]] = f64::INFINITY;
    let e =
        trainer.clone().epochs(3).fit(&mut st, bad.view(), y.view(), None, &mut []).unwrap_err().to_string();
    assert!(e.contains("row 3, column 2"), "{e}");
    let bad_file = std::env::temp_dir().join(format!("backprop-bad-ck-{}", std::process::id()));
    std::fs::write(&bad_file, b"not a checkpoint").unwrap();
    assert!(checkpoint::load::<f64>(&bad_file).is_err());
    std::fs::remove_file(&bad_file).ok();
}
