//! Data sets: images as columns of an `f32` matrix, with optional labels.
//!
//! Readers for the MNIST IDX files ([`idx`]) and Kaggle's digit-recognizer CSVs ([`csv`]), whose
//! pixels are scaled from 0..=255 to [0, 1] by dividing by 255; and CSV tables of any task
//! ([`table`]).

pub mod csv;
pub mod idx;
mod missing;
pub mod table;

use crate::error::plural;
use crate::{Error, Float, Result};
use nalgebra::DMatrix;
use std::path::Path;

/// Images (`features × samples`, one image per column) and, when known, their labels.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    images: DMatrix<f32>,
    labels: Option<Vec<usize>>,
}

impl Dataset {
    /// A data set from images (one per column) and optional labels (one per image).
    pub fn new(images: DMatrix<f32>, labels: Option<Vec<usize>>) -> Result<Self> {
        if let Some(l) = &labels
            && l.len() != images.ncols()
        {
            return Err(Error::shape(
                "data set labels",
                format!("{} (one per image)", plural(images.ncols(), "label")),
                format!("{}", l.len()),
            ));
        }
        Ok(Dataset { images, labels })
    }

    /// Number of samples.
    #[must_use]
    pub fn len(&self) -> usize {
        self.images.ncols()
    }

    /// True when there are no samples.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Features per sample (784 for MNIST).
    #[must_use]
    pub fn features(&self) -> usize {
        self.images.nrows()
    }

    /// The images, `features × samples`, values in [0, 1].
    #[must_use]
    pub fn images(&self) -> &DMatrix<f32> {
        &self.images
    }

    /// The images converted to `T` (a copy; for `f32` prefer [`images`](Dataset::images)).
    #[must_use]
    pub fn images_as<T: Float>(&self) -> DMatrix<T> {
        self.images.map(|v| T::lit(f64::from(v)))
    }

    /// The pixels of image `i`.
    ///
    /// # Panics
    /// If `i >= len()`.
    #[must_use]
    pub fn image(&self, i: usize) -> &[f32] {
        let f = self.features();
        &self.images.as_slice()[i * f..(i + 1) * f]
    }

    /// The labels, if the data set has them.
    #[must_use]
    pub fn labels(&self) -> Option<&[usize]> {
        self.labels.as_deref()
    }

    /// The labels, or [`Error::NoLabels`] naming `what` for a data set without them.
    pub fn require_labels(&self, what: &'static str) -> Result<&[usize]> {
        self.labels().ok_or(Error::NoLabels { what })
    }

    /// The first `n` samples (all of them if `n >= len()`).
    #[must_use]
    pub fn take(mut self, n: usize) -> Self {
        if n < self.len() {
            self.images = self.images.columns(0, n).into_owned();
            if let Some(l) = &mut self.labels {
                l.truncate(n);
            }
        }
        self
    }

    /// The first `n` samples and the rest, as two data sets (a validation split held out of a
    /// training set: `let (train, validation) = all.split_at(all.len() - 5000)`).
    ///
    /// # Panics
    /// If `n > len()`.
    #[must_use]
    pub fn split_at(self, n: usize) -> (Dataset, Dataset) {
        assert!(n <= self.len(), "split_at({n}) of a data set of {} samples", self.len());
        let rest = self.len() - n;
        let tail = Dataset {
            images: self.images.columns(n, rest).into_owned(),
            labels: self.labels.as_ref().map(|l| l[n..].to_vec()),
        };
        (self.take(n), tail)
    }
}

/// Which half of MNIST.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    /// The 60000 training images (`train-*`).
    Train,
    /// The 10000 test images (`t10k-*`).
    Test,
}

/// What to tell a user whose MNIST files are missing.
pub const MNIST_HINT: &str = "The MNIST IDX files (train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, \
t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz, gzipped or not) ship in this repository's data/mnist/ \
and on the MNIST site.";

/// Classes of a digit data set: labels are 0 to 9.
pub const DIGITS: usize = 10;

/// Loads one split of MNIST from `dir`, accepting each file gzipped (`.gz`) or raw.
pub fn load_mnist(dir: impl AsRef<Path>, split: Split) -> Result<Dataset> {
    load_mnist_first(dir, split, usize::MAX)
}

/// Loads the first `limit` images of one split of MNIST (all of them if there are fewer).
/// Only those are converted to `f32`, so memory holds the kept images once.
pub fn load_mnist_first(dir: impl AsRef<Path>, split: Split, limit: usize) -> Result<Dataset> {
    let prefix = match split {
        Split::Train => "train",
        Split::Test => "t10k",
    };
    let find = |stem: String| {
        let gz = dir.as_ref().join(format!("{stem}.gz"));
        let raw = dir.as_ref().join(&stem);
        if !gz.exists() && raw.exists() { raw } else { gz }
    };
    let images_path = find(format!("{prefix}-images-idx3-ubyte"));
    let images = idx::read_idx(&images_path)?;
    let labels_path = find(format!("{prefix}-labels-idx1-ubyte"));
    let mut labels = idx::read_labels(&labels_path)?;
    if images.dims.first() != Some(&labels.len()) {
        return Err(Error::Idx {
            path: labels_path,
            reason: format!("{} for images of dimensions {:?}", plural(labels.len(), "label"), images.dims),
        });
    }
    labels.truncate(limit);
    if let Some(record) = labels.iter().position(|&l| l >= DIGITS) {
        return Err(Error::Idx {
            path: labels_path,
            reason: format!("record {record}: label {} is not a digit 0..=9", labels[record]),
        });
    }
    let images = idx::images_from(images.truncate_outer(limit), &images_path)?;
    Dataset::new(images, Some(labels))
}
