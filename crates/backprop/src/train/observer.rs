//! Hooks into the training loop: progress display, logging, checkpoints, custom stopping.

use super::{EpochRecord, TrainState};
use crate::Result;

/// Whether training goes on after an epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Control {
    /// Keep going.
    Continue,
    /// Stop after this epoch (the run ends normally).
    Stop,
}

/// How a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// All configured epochs ran.
    Completed,
    /// Early stopping fired (no improvement for `patience` epochs).
    EarlyStopped,
    /// An observer asked to stop.
    Stopped,
    /// The loss became NaN/Inf; the state was reset to the last good epoch.
    Diverged,
}

/// Called by [`super::Trainer::fit`] at the start, after every epoch and at the end. Errors an
/// observer returns (e.g. a failed checkpoint write) stop the run and are returned by `fit`.
pub trait Observer<T> {
    /// Before the first epoch of this call (`state.epoch` epochs were already done).
    fn on_start(&mut self, _state: &TrainState<T>, _total_epochs: usize) -> Result<()> {
        Ok(())
    }

    /// After each minibatch step: `batch` of `batches` in `epoch` (for progress on long epochs).
    fn on_batch(&mut self, _epoch: usize, _batch: usize, _batches: usize) {}

    /// After each completed epoch; `state.history` already holds `record`.
    fn on_epoch(&mut self, state: &TrainState<T>, record: &EpochRecord) -> Result<Control>;

    /// After the last epoch, also after divergence (then `state` is the last good state).
    fn on_end(&mut self, _state: &TrainState<T>, _outcome: Outcome) -> Result<()> {
        Ok(())
    }
}

/// An observer from a closure called after each epoch.
pub struct OnEpoch<F>(pub F);

impl<T, F: FnMut(&TrainState<T>, &EpochRecord) -> Control> Observer<T> for OnEpoch<F> {
    fn on_epoch(&mut self, state: &TrainState<T>, record: &EpochRecord) -> Result<Control> {
        Ok((self.0)(state, record))
    }
}
