//! Step 3: the notebook's 4-5-1 sigmoid network, squared-error loss, trained by full-batch
//! gradient descent on real data — iris, versicolor vs virginica (the notebook's D = 4).

use backprop::data::{Dataset, LoadOptions, Normalization, load};
use backprop::nn::{Activation, Init, Loss, Metrics, Mlp, MlpBuilder, ParamSelection};
use backprop::optim::{Optimizer, OptimizerConfig, Penalty};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;

use super::Step;
use super::format::{num, pct, sci};
use crate::plot::{Chart, Legend, Series, Style};
use crate::report::{Block, Check, Figure, Section, Table};

/// The run's settings; fixed so that every tour is the same experiment.
#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// Seed for the split and the initial weights.
    pub seed: u64,
    /// Fraction of the samples held out.
    pub held_out: f64,
    /// Gradient-descent epochs (full batch: one step each).
    pub epochs: usize,
    /// Learning rate.
    pub lr: f64,
}

impl Default for Config {
    fn default() -> Self {
        Config { seed: 42, held_out: 0.3, epochs: 20_000, lr: 0.5 }
    }
}

/// What the curvature step needs from training.
pub struct Trained {
    /// The network at the end of training (w*).
    pub model: Mlp<f64>,
    /// Standardised training data.
    pub train: Dataset<f64>,
}

/// Per-epoch history (epoch 0 = before the first step).
struct History {
    epoch: Vec<usize>,
    train: Vec<Metrics>,
    held_out: Vec<Metrics>,
}

fn metrics(m: &Mlp<f64>, d: &Dataset<f64>) -> anyhow::Result<Metrics> {
    Ok(m.evaluate(Loss::SquaredError, d.x.view(), d.y.view(), d.len().max(1))?)
}

/// Loads and standardises the data, trains, and reports.
pub fn run(cfg: Config, show_progress: bool) -> anyhow::Result<(Step, Trained)> {
    let iris = load::<f64>("iris", &LoadOptions::new())?;
    let binary = iris.select_classes(&["versicolor", "virginica"])?;
    let (train_raw, held_raw) = binary.split(cfg.held_out, cfg.seed)?;
    // Statistics from the training part only: the held-out samples stay unseen.
    let norm = Normalization::fit(train_raw.x.view())?;
    let train = train_raw.normalized(&norm)?;
    let held_out = held_raw.normalized(&norm)?;

    let mut model = MlpBuilder::new(&[4, 5, 1])
        .activation(Activation::Sigmoid)
        .init(Init::GlorotUniform)
        .seed(cfg.seed)
        .build::<f64>()?;
    let mut opt = Optimizer::new(OptimizerConfig::gd(cfg.lr), Penalty::default(), &model)?;

    let bar = if show_progress {
        ProgressBar::with_draw_target(Some(cfg.epochs as u64), ProgressDrawTarget::stderr_with_hz(10))
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("      training {bar:32} {pos:>6}/{len} epochs  {msg}  ETA {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut hist = History { epoch: Vec::new(), train: Vec::new(), held_out: Vec::new() };
    let record_every = (cfg.epochs / 500).max(1);
    let (x, y) = (train.x.view(), train.y.view());
    for epoch in 0..=cfg.epochs {
        // Every epoch at first, then every `record_every`: enough points for a smooth curve on
        // a log axis without a history as long as the run.
        if epoch <= 200 || epoch % record_every == 0 || epoch == cfg.epochs {
            let (tr, ho) = (metrics(&model, &train)?, metrics(&model, &held_out)?);
            bar.set_message(format!(
                "loss {:.4}  held-out acc {}",
                tr.loss,
                pct(ho.accuracy.unwrap_or(f64::NAN))
            ));
            hist.epoch.push(epoch);
            hist.train.push(tr);
            hist.held_out.push(ho);
        }
        if epoch == cfg.epochs {
            break;
        }
        let (loss, mut g) = model.loss_and_grad(Loss::SquaredError, x, y)?;
        if !loss.is_finite() {
            anyhow::bail!(backprop::Error::Diverged { epoch: epoch + 1, loss });
        }
        opt.step(&mut model, &mut g);
        bar.inc(1);
    }
    bar.finish_and_clear();

    let (_, g) = model.loss_and_grad(Loss::SquaredError, x, y)?;
    let grad_norm = g.flat(ParamSelection::All).iter().map(|v| v * v).sum::<f64>().sqrt();
    let (first_tr, last_tr) = (hist.train[0], *hist.train.last().unwrap_or(&hist.train[0]));
    let last_ho = *hist.held_out.last().unwrap_or(&hist.held_out[0]);
    let acc = |m: Metrics| m.accuracy.unwrap_or(f64::NAN);

    let mut s = Section::new("Training the notebook's network on real data");
    s.text(format!(
        "Data: iris (Fisher 1936, UCI Machine Learning Repository, CC BY 4.0), versicolor (label 0) vs virginica \
         (label 1): 100 flowers, 4 features (sepal and petal length and width, cm) — the notebook's D = 4. A seeded \
         split (seed {}) holds out {} of them; features are standardised with the training part's mean and standard \
         deviation only.",
        cfg.seed,
        held_out.len()
    ));
    s.text(format!(
        "Model: the notebook's 4-5-1 network with sigmoid hidden and output units and biases, loss ½(ŷ − y)² averaged \
         over samples; weights Glorot-uniform (seed {}) — the notebook's all-ones start would keep the five hidden \
         units identical forever, since they would receive identical gradients. Full-batch gradient descent, learning \
         rate {}, {} epochs, no regularisation (the unregularised w* of the notebook's bonus).",
        cfg.seed, cfg.lr, cfg.epochs
    ));
    s.block(Block::Table(
        Table::new(["", "samples", "loss at start", "loss at end", "accuracy at start", "accuracy at end"])
            .caption("Loss (½(ŷ − y)², mean) and accuracy (ŷ > ½ predicts virginica)")
            .row([
                "train".to_string(),
                train.len().to_string(),
                num(first_tr.loss),
                num(last_tr.loss),
                pct(acc(first_tr)),
                pct(acc(last_tr)),
            ])
            .row([
                "held-out".to_string(),
                held_out.len().to_string(),
                num(hist.held_out[0].loss),
                num(last_ho.loss),
                pct(acc(hist.held_out[0])),
                pct(acc(last_ho)),
            ]),
    ));
    let pts = |f: &dyn Fn(&Metrics) -> f64, m: &[Metrics]| -> Vec<(f64, f64)> {
        hist.epoch.iter().zip(m).map(|(&e, v)| ((e.max(1)) as f64, f(v))).collect()
    };
    let loss_of = |m: &Metrics| m.loss;
    let acc_of = |m: &Metrics| 100.0 * m.accuracy.unwrap_or(f64::NAN);
    s.block(Block::Figure(Figure {
        name: "loss".into(),
        caption: "Training and held-out loss during gradient descent (both axes logarithmic).".into(),
        chart: Chart::new(
            "Loss during training (4-5-1 sigmoid, iris versicolor vs virginica)",
            "epoch",
            "loss ½(ŷ − y)², mean over samples",
        )
        .log_x()
        .log_y()
        .series(Series::new("train", pts(&loss_of, &hist.train), Style::Line).color(0))
        .series(Series::new("held-out", pts(&loss_of, &hist.held_out), Style::Line).color(1)),
    }));
    s.block(Block::Figure(Figure {
        name: "accuracy".into(),
        caption: "Training and held-out accuracy during gradient descent.".into(),
        chart: Chart::new("Accuracy during training", "epoch", "accuracy (%)")
            .log_x()
            .y_range(40.0, 102.0)
            .legend(Legend::LowerRight)
            .series(Series::new("train", pts(&acc_of, &hist.train), Style::Line).color(0))
            .series(Series::new("held-out", pts(&acc_of, &hist.held_out), Style::Line).color(1)),
    }));
    let (best_epoch, best_ho) =
        hist.epoch.iter().zip(&hist.held_out).fold((0usize, f64::INFINITY), |(be, bl), (&e, m)| {
            if m.loss < bl { (e, m.loss) } else { (be, bl) }
        });
    if best_epoch < cfg.epochs {
        s.text(format!(
            "The held-out loss is lowest at epoch {best_epoch} ({}) and rises afterwards while the training loss keeps \
             falling: with no penalty the network fits the 70 training flowers ever more tightly (overfitting). The next \
             section shows why — the unregularised loss has no finite minimiser here.",
            num(best_ho)
        ));
    }
    s.text(format!(
        "At the end, the full gradient norm ‖∇L(w*)‖ is {} — gradient descent approaches a minimiser but never \
         reaches it exactly; the next section checks what that means for the notebook's assumptions.",
        sci(grad_norm, 2)
    ));
    let min_acc = 0.8;
    s.block(Block::Checks(vec![
        Check {
            name: "training reduces the loss".into(),
            passed: last_tr.loss < 0.5 * first_tr.loss,
            detail: format!("{} → {} (required: at least halved)", num(first_tr.loss), num(last_tr.loss)),
        },
        Check {
            name: "the network generalises to held-out flowers".into(),
            passed: acc(last_ho) >= min_acc,
            detail: format!("held-out accuracy {} (required ≥ {})", pct(acc(last_ho)), pct(min_acc)),
        },
    ]));
    let series = |m: &[Metrics]| -> serde_json::Value {
        json!({"loss": m.iter().map(|v| v.loss).collect::<Vec<_>>(), "accuracy": m.iter().map(|v| v.accuracy).collect::<Vec<_>>()})
    };
    let j = json!({
        "data": {"name": "iris", "classes": ["versicolor", "virginica"], "train_samples": train.len(),
                 "held_out_samples": held_out.len(), "normalization": {"mean": norm.mean.clone(), "std": norm.std.clone()}},
        "model": {"sizes": [4, 5, 1], "activation": "sigmoid", "loss": "squared_error", "init": "glorot_uniform",
                  "parameters": model.flat_params(ParamSelection::All).to_vec()},
        "optimizer": {"name": "gd", "lr": cfg.lr, "epochs": cfg.epochs, "seed": cfg.seed},
        "final": {"train_loss": last_tr.loss, "train_accuracy": last_tr.accuracy,
                  "held_out_loss": last_ho.loss, "held_out_accuracy": last_ho.accuracy, "gradient_norm": grad_norm},
        "history": {"epoch": hist.epoch, "train": series(&hist.train), "held_out": series(&hist.held_out)},
    });
    let summary = format!(
        "loss {} → {}, accuracy train {} / held-out {}",
        num(first_tr.loss),
        num(last_tr.loss),
        pct(acc(last_tr)),
        pct(acc(last_ho))
    );
    Ok((Step::new(s, j, summary, false), Trained { model, train }))
}
