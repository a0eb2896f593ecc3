//! Weight averaging: [`train::fit`](crate::train::fit) keeps a running average of the network's
//! weights beside the weights it trains, validates the average and ends with it. An average
//! of the points a noisy optimizer visits near a minimum sits closer to its bottom than any
//! one of them. Reached as `feedforward::train::Averaging`.

use crate::linalg::simd;
use crate::parallel::{Cols, ColsMut, for_column_blocks};
use crate::weights;
use crate::{Error, Float, Network, Result};
use nalgebra::DMatrix;

/// Which average of the weights [`train::fit`](crate::train::fit) keeps
/// ([`TrainConfig::averaging`](crate::train::TrainConfig::averaging)). Every tensor of the
/// network is averaged, parameters and buffers alike: [`BatchNorm`](crate::BatchNorm)'s
/// running statistics are averaged too, as PyTorch's `AveragedModel` with `use_buffers=True`
/// does. To recompute them from the averaged weights instead (PyTorch's `update_bn`), call
/// [`Network::recompute_batch_norm`](crate::Network::recompute_batch_norm) after the run; it
/// helped on MNIST and hurt on a small noisy regression (README), so `fit` leaves the choice to
/// you.
///
/// With an average, each epoch's validation measures the averaged weights, early stopping
/// keeps the best average, and the network holds the average when the run ends (or the best
/// one, with early stopping); [`FitReport::averaged`](crate::train::FitReport::averaged) says
/// how many weights went into it. A checkpoint saves it, so a resumed run goes on with the
/// same average.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Averaging {
    /// An exponential moving average, updated after every step (Polyak averaging): the
    /// weights after each step `k` of `n` so far weigh `d^(n − k)`, normalized, so the average
    /// spans about the last `1/(1 − d)` steps (`decay` 0.999, in [0, 1): about a thousand) and
    /// is the plain mean of the steps so far while there are fewer. The update is
    /// `a ← a + s·(w − a)` with `s = (1 − d)/(1 − dⁿ)` at the `n`-th step (Adam's bias
    /// correction: the same average as starting `a` at 0 and dividing by `1 − dⁿ`).
    ///
    /// PyTorch's `AveragedModel` with `get_ema_multi_avg_fn(d)` instead copies the first
    /// step's weights and then moves by `1 − d`, which leaves `d^(n − 1)` of them in the
    /// average: with `d` = 0.999, 53% after 630 steps. On a short run that average is mostly
    /// the barely trained first weights (README).
    Exponential {
        /// `d`, the weight of the past.
        decay: f64,
    },
    /// The plain mean of the weights at the end of each epoch from `from_epoch` (1-based) on:
    /// stochastic weight averaging (Izmailov et al., 2018; PyTorch's `AveragedModel` updated
    /// once an epoch). Best with a learning rate that stays up over those epochs (a constant
    /// schedule, or cosine with a `final_fraction` well above 0). Until `from_epoch`, there is
    /// no average: validation measures the weights themselves.
    Epochs {
        /// The first epoch whose weights are averaged, at least 1 and at most the run's epochs.
        from_epoch: usize,
    },
}

impl Averaging {
    /// Refuses a decay outside [0, 1), and a first epoch of 0 or past the run's `epochs`.
    pub(crate) fn check(self, epochs: usize) -> Result<()> {
        match self {
            Averaging::Exponential { decay } if !(0.0..1.0).contains(&decay) => {
                Err(Error::InvalidHyperparameter {
                    name: "weight-averaging decay",
                    value: decay,
                    requirement: "must be in [0, 1)",
                })
            }
            Averaging::Epochs { from_epoch } if from_epoch == 0 || from_epoch > epochs => {
                Err(Error::InvalidHyperparameter {
                    name: "weight-averaging first epoch",
                    value: from_epoch as f64,
                    requirement: "must be from 1 to the run's epochs",
                })
            }
            _ => Ok(()),
        }
    }

    /// After an accepted step: an exponential average takes the network's weights in.
    pub(crate) fn after_step<T: Float>(self, average: &mut Option<Average<T>>, network: &Network<T>) {
        if let Averaging::Exponential { decay } = self {
            // The (count + 1)-th snapshot's share, bias-corrected.
            let share = |count: usize| T::lit((1.0 - decay) / (1.0 - decay.powf((count + 1) as f64)));
            Average::take_in(average, network, share);
        }
    }

    /// At the end of epoch `epoch` (1-based): the epochs' mean takes the network's weights in,
    /// from its first epoch on.
    pub(crate) fn after_epoch<T: Float>(
        self,
        average: &mut Option<Average<T>>,
        network: &Network<T>,
        epoch: usize,
    ) {
        if let Averaging::Epochs { from_epoch } = self
            && epoch >= from_epoch
        {
            // The (n+1)-th of n + 1 equal shares.
            Average::take_in(average, network, |count| T::lit(1.0 / (count + 1) as f64));
        }
    }
}

/// The average of a network's tensors (in the order of [`weights::tensors`]) and how many
/// snapshots of them went into it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Average<T: Float> {
    pub tensors: Vec<DMatrix<T>>,
    pub count: usize,
}

impl<T: Float> Average<T> {
    /// Moves the average towards the network's tensors by the share `share(count)` (the first
    /// snapshot is copied): `a ← a + s·(w − a)`.
    fn take_in(average: &mut Option<Average<T>>, network: &Network<T>, share: impl Fn(usize) -> T) {
        let Some(average) = average else {
            let tensors = weights::tensors(network).into_iter().cloned().collect();
            *average = Some(Average { tensors, count: 1 });
            return;
        };
        let s = share(average.count);
        let mut averages = average.tensors.iter_mut();
        // After every step, over every weight: collecting nothing, on the thread team,
        // vectorized.
        weights::for_each_tensor(network, |w| {
            let a = averages.next().expect("one average per tensor");
            if a.is_empty() {
                return;
            }
            let rows = a.nrows();
            let data = (ColsMut(a.as_mut_slice(), rows), Cols(w.as_slice(), rows));
            let block = |(a, w): (ColsMut<'_, T>, Cols<'_, T>)| {
                simd(
                    #[inline(always)]
                    || a.0.iter_mut().zip(w.0).for_each(|(a, &w)| *a += s * (w - *a)),
                );
            };
            for_column_blocks(w.ncols(), rows, data, &block, &|(), ()| ());
        });
        average.count += 1;
    }
}
