//! The training loop: epochs of (shuffled) minibatches, an optimiser, observers, validation,
//! early stopping, divergence detection and resumable checkpoints.
//!
//! All state that influences the next epoch — model, optimiser buffers, the shuffling
//! generator, the epoch counter, the history and the early-stopping bookkeeping — lives in one
//! [`TrainState`]. Saving it ([`checkpoint`]) and continuing with [`Trainer::fit`] therefore
//! gives bit-identical results to a run that was never interrupted.
//!
//! ```
//! use backprop::nn::{Activation, Loss, MlpBuilder};
//! use backprop::optim::OptimizerConfig;
//! use backprop::train::{TrainState, Trainer};
//! use ndarray::array;
//!
//! let x = array![[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]];
//! let y = array![[0.0], [1.0], [1.0], [0.0]];
//! let model = MlpBuilder::new(&[2, 8, 1]).activation(Activation::Tanh).output_activation(Activation::Sigmoid).seed(3).build::<f64>().unwrap();
//! let trainer = Trainer::new(Loss::Bce, OptimizerConfig::adam(0.05)).epochs(500).seed(1);
//! let mut state = TrainState::new(model, &trainer).unwrap();
//! trainer.fit(&mut state, x.view(), y.view(), None, &mut []).unwrap();
//! assert_eq!(state.history.last().unwrap().accuracy, Some(1.0));
//! ```

pub mod checkpoint;
mod history;
mod observer;

use ndarray::{Array2, ArrayView2, CowArray};
use rand::SeedableRng;
use rand::rngs::ChaCha8Rng;

pub use checkpoint::Checkpointer;
pub use history::{CSV_COLUMNS, EpochRecord, History};
pub use observer::{Control, Observer, OnEpoch, Outcome};

use crate::nn::metrics::MetricSums;
use crate::nn::{Grads, Loss, Mlp, Workspace};
use crate::optim::{Optimizer, OptimizerConfig, OptimizerState, Penalty};
use crate::{Error, Result, Scalar};

/// Stop when the monitored loss (validation loss if there is validation data, else the training
/// loss) has not improved by more than `min_delta` for `patience` epochs.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EarlyStopping {
    /// Epochs without improvement before stopping.
    pub patience: usize,
    /// The smallest decrease that counts as an improvement.
    pub min_delta: f64,
    /// Put the best epoch's weights back at the end.
    pub restore_best: bool,
}

/// Everything that defines a run (what a resumed run must agree on).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TrainConfig {
    /// The loss.
    pub loss: Loss,
    /// The optimiser.
    pub optimizer: OptimizerConfig,
    /// L2 penalty / decoupled decay.
    pub penalty: Penalty,
    /// Total epochs.
    pub epochs: usize,
    /// Minibatch rows; `None` = the whole training set (always for `gd`).
    pub batch_size: Option<usize>,
    /// Seed of the shuffling generator.
    pub seed: u64,
    /// Shuffle minibatches every epoch (ignored for full-batch training).
    pub shuffle: bool,
    /// Early stopping, if any.
    pub early_stopping: Option<EarlyStopping>,
}

/// Builder-style training configuration and the loop that runs it.
#[derive(Clone, Debug, PartialEq)]
pub struct Trainer {
    /// The configuration.
    pub config: TrainConfig,
}

impl Trainer {
    /// A trainer for `loss` with `optimizer`; defaults: 100 epochs, full batch, seed 0, shuffle.
    pub fn new(loss: Loss, optimizer: OptimizerConfig) -> Self {
        Trainer {
            config: TrainConfig {
                loss,
                optimizer,
                penalty: Penalty::default(),
                epochs: 100,
                batch_size: None,
                seed: 0,
                shuffle: true,
                early_stopping: None,
            },
        }
    }

    /// Total epochs.
    pub fn epochs(mut self, epochs: usize) -> Self {
        self.config.epochs = epochs;
        self
    }

    /// Minibatch rows (ignored by `gd`, which always uses the full batch).
    pub fn batch_size(mut self, rows: usize) -> Self {
        self.config.batch_size = Some(rows);
        self
    }

    /// The L2 penalty (μ/2)‖w‖² on weights (never biases).
    pub fn l2(mut self, mu: f64) -> Self {
        self.config.penalty.l2 = mu;
        self
    }

    /// Decoupled weight decay λ (AdamW-style), weights only.
    pub fn weight_decay(mut self, lambda: f64) -> Self {
        self.config.penalty.weight_decay = lambda;
        self
    }

    /// Seed of the shuffling generator.
    pub fn seed(mut self, seed: u64) -> Self {
        self.config.seed = seed;
        self
    }

    /// Whether minibatches are reshuffled each epoch.
    pub fn shuffle(mut self, shuffle: bool) -> Self {
        self.config.shuffle = shuffle;
        self
    }

    /// Early stopping after `patience` epochs without an improvement of more than `min_delta`,
    /// restoring the best weights.
    pub fn early_stopping(mut self, patience: usize, min_delta: f64) -> Self {
        self.config.early_stopping = Some(EarlyStopping { patience, min_delta, restore_best: true });
        self
    }

    /// Checks the configuration.
    pub fn validate(&self) -> Result<()> {
        let c = &self.config;
        c.optimizer.validate()?;
        c.penalty.validate()?;
        if c.batch_size == Some(0) {
            return Err(Error::invalid("batch", "must be at least 1"));
        }
        if let Some(es) = c.early_stopping
            && (es.patience == 0 || !es.min_delta.is_finite() || es.min_delta < 0.0)
        {
            return Err(Error::invalid(
                "early stopping",
                "patience must be ≥ 1 and min_delta a finite number ≥ 0",
            ));
        }
        Ok(())
    }

    /// The batch size used on `n` training rows.
    pub fn effective_batch(&self, n: usize) -> usize {
        if self.config.optimizer.is_full_batch() {
            n
        } else {
            self.config.batch_size.unwrap_or(n).min(n).max(1)
        }
    }
}

/// The best epoch seen, for early stopping.
#[derive(Clone, Debug, PartialEq)]
pub struct Best<T> {
    /// Its epoch.
    pub epoch: usize,
    /// Its monitored loss.
    pub value: f64,
    /// Its weights.
    pub model: Mlp<T>,
}

/// The complete state of a run after `epoch` epochs: what a checkpoint holds.
#[derive(Clone, Debug)]
pub struct TrainState<T> {
    /// The model being trained.
    pub model: Mlp<T>,
    /// The optimiser's buffers and step count.
    pub optimizer: OptimizerState<T>,
    /// The shuffling generator's exact state (`ChaCha8Rng::serialize_state`: seed, stream,
    /// word position).
    pub rng: [u8; 49],
    /// Completed epochs.
    pub epoch: usize,
    /// One record per completed epoch.
    pub history: History,
    /// Early stopping: the best epoch so far.
    pub best: Option<Best<T>>,
    /// Early stopping: epochs since the best.
    pub bad_epochs: usize,
    /// The configuration this state was produced with.
    pub config: TrainConfig,
}

impl<T: Scalar> TrainState<T> {
    /// The state before the first epoch: `model` as given, fresh optimiser, generator from the
    /// trainer's seed.
    pub fn new(model: Mlp<T>, trainer: &Trainer) -> Result<Self> {
        trainer.validate()?;
        model.validate()?;
        let optimizer =
            Optimizer::new(trainer.config.optimizer, trainer.config.penalty, &model)?.state().clone();
        Ok(TrainState {
            model,
            optimizer,
            rng: ChaCha8Rng::seed_from_u64(trainer.config.seed).serialize_state(),
            epoch: 0,
            history: History::default(),
            best: None,
            bad_epochs: 0,
            config: trainer.config.clone(),
        })
    }

    /// Whether `self` (e.g. loaded from a checkpoint) can be continued by `trainer`: every setting
    /// except the number of epochs must match.
    pub fn check_resumable(&self, trainer: &Trainer) -> Result<()> {
        let mut a = self.config.clone();
        a.epochs = trainer.config.epochs;
        if a != trainer.config {
            return Err(Error::invalid(
                "resume",
                format!(
                    "the checkpoint was made with different settings: {} vs now {}",
                    serde_json::to_string(&self.config).unwrap_or_default(),
                    serde_json::to_string(&trainer.config).unwrap_or_default()
                ),
            ));
        }
        Ok(())
    }
}

/// Validation data for [`Trainer::fit`].
pub type Validation<'a, T> = (ArrayView2<'a, T>, ArrayView2<'a, T>);

impl Trainer {
    /// Trains `state.model` on (x, y) from epoch `state.epoch + 1` to the configured total,
    /// evaluating on `validation` after each epoch and calling `observers`.
    ///
    /// On a NaN/Inf loss, `state` is put back to the end of the last good epoch and
    /// `Error::Diverged` is returned (observers' `on_end` sees that state first).
    pub fn fit<T: Scalar>(
        &self,
        state: &mut TrainState<T>,
        x: ArrayView2<'_, T>,
        y: ArrayView2<'_, T>,
        validation: Option<Validation<'_, T>>,
        observers: &mut [&mut dyn Observer<T>],
    ) -> Result<Outcome> {
        self.validate()?;
        state.check_resumable(self)?;
        let cfg = &self.config;
        let loss = cfg.loss;
        crate::nn::forward::check_finite(&x, "training data")?;
        crate::nn::backward::check_batch(&state.model, loss, &x, &y)?;
        if let Some((xv, yv)) = validation {
            crate::nn::forward::check_finite(&xv, "validation data")?;
            crate::nn::backward::check_batch(&state.model, loss, &xv, &yv)?;
        }
        let mut optimizer = Optimizer::new(cfg.optimizer, cfg.penalty, &state.model)?;
        optimizer.set_state(state.optimizer.clone())?;

        let n = x.nrows();
        let batch = self.effective_batch(n);
        let full_batch = batch >= n;
        // Minibatches are gathered row by row. From a column-major x (a transposed view, a
        // Fortran-order array) every gathered value is another cache miss: such data is copied
        // into row-major order once.
        let (x, y) = if full_batch {
            (CowArray::from(x), CowArray::from(y))
        } else {
            (x.as_standard_layout(), y.as_standard_layout())
        };
        let (x, y) = (x.view(), y.view());
        let shuffle = cfg.shuffle && !full_batch;
        let mut ws = Workspace::new(&state.model, batch);
        let mut val_ws = Workspace::new(&state.model, validation.map_or(0, |(xv, _)| xv.nrows().min(1024)));
        let mut grads = Grads::zeros_like(&state.model);
        let mut bx = Array2::<T>::zeros((if full_batch { 0 } else { batch }, x.ncols()));
        let mut by = Array2::<T>::zeros((if full_batch { 0 } else { batch }, y.ncols()));
        let mut order: Vec<usize> = (0..n).collect();
        let batches = n.div_ceil(batch);
        // The last good state, to fall back to on divergence.
        let mut good_model = state.model.clone();
        let mut good_opt = state.optimizer.clone();
        let mut good_rng = state.rng;

        for obs in observers.iter_mut() {
            obs.on_start(state, cfg.epochs)?;
        }
        let mut outcome = Outcome::Completed;
        while state.epoch < cfg.epochs {
            let epoch = state.epoch + 1;
            if shuffle {
                order.iter_mut().enumerate().for_each(|(i, o)| *o = i);
                let mut rng = ChaCha8Rng::deserialize_state(&state.rng);
                crate::nn::init::shuffle(&mut order, &mut rng);
                state.rng = rng.serialize_state();
            }
            let mut sums = MetricSums::new();
            let mut diverged = None;
            for b in 0..batches {
                let (start, end) = (b * batch, ((b + 1) * batch).min(n));
                let rows = end - start;
                let (xb, yb) = if full_batch {
                    (x.view(), y.view())
                } else {
                    for (r, &i) in order[start..end].iter().enumerate() {
                        bx.row_mut(r).assign(&x.row(i));
                        by.row_mut(r).assign(&y.row(i));
                    }
                    (bx.slice(ndarray::s![..rows, ..]), by.slice(ndarray::s![..rows, ..]))
                };
                // Forward, backward and update; plain SGD/GD fuse the update into the weight
                // gradient GEMMs. On a non-finite loss the model is left as it was.
                let l = optimizer.train_step_unchecked(&mut ws, &mut state.model, loss, xb, yb, &mut grads);
                if !l.is_finite() {
                    diverged = Some(l);
                    break;
                }
                // The forward pass's outputs and logits are still in the workspace.
                sums.add(loss, l, ws.output(), ws.logits(), yb);
                for obs in observers.iter_mut() {
                    obs.on_batch(epoch, b + 1, batches);
                }
            }
            let penalty = optimizer.penalty_value(&state.model);
            if diverged.is_none() && (!penalty.is_finite() || state.model.validate().is_err()) {
                diverged = Some(f64::NAN);
            }
            if let Some(l) = diverged {
                state.model.clone_from(&good_model);
                state.optimizer.clone_from(&good_opt);
                state.rng = good_rng;
                for obs in observers.iter_mut() {
                    obs.on_end(state, Outcome::Diverged)?;
                }
                return Err(Error::Diverged { epoch, loss: l });
            }
            let m = sums.finish(loss);
            let mut record = EpochRecord {
                epoch,
                loss: m.loss,
                penalty,
                accuracy: m.accuracy,
                rmse: m.rmse,
                val_loss: None,
                val_accuracy: None,
                val_rmse: None,
            };
            if let Some((xv, yv)) = validation {
                let vm = state.model.evaluate_in(&mut val_ws, loss, xv, yv, 1024);
                record.val_loss = Some(vm.loss);
                record.val_accuracy = vm.accuracy;
                record.val_rmse = vm.rmse;
            }
            state.epoch = epoch;
            state.optimizer.clone_from(optimizer.state());
            state.history.epochs.push(record);
            let mut control = Control::Continue;
            if let Some(es) = cfg.early_stopping {
                let monitored = record.val_loss.unwrap_or(record.loss);
                let improved = state.best.as_ref().is_none_or(|b| monitored < b.value - es.min_delta);
                if improved {
                    match &mut state.best {
                        Some(b) => {
                            b.epoch = epoch;
                            b.value = monitored;
                            b.model.clone_from(&state.model);
                        }
                        None => {
                            state.best = Some(Best { epoch, value: monitored, model: state.model.clone() })
                        }
                    }
                    state.bad_epochs = 0;
                } else {
                    state.bad_epochs += 1;
                    if state.bad_epochs >= es.patience {
                        control = Control::Stop;
                        outcome = Outcome::EarlyStopped;
                    }
                }
            }
            good_model.clone_from(&state.model);
            good_opt.clone_from(&state.optimizer);
            good_rng = state.rng;
            for obs in observers.iter_mut() {
                if obs.on_epoch(state, &record)? == Control::Stop && control == Control::Continue {
                    control = Control::Stop;
                    outcome = Outcome::Stopped;
                }
            }
            if control == Control::Stop {
                break;
            }
        }
        if outcome == Outcome::EarlyStopped
            && let Some(es) = cfg.early_stopping
            && es.restore_best
            && let Some(b) = &state.best
        {
            state.model.clone_from(&b.model);
        }
        for obs in observers.iter_mut() {
            obs.on_end(state, outcome)?;
        }
        Ok(outcome)
    }
}
