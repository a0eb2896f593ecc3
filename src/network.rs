//! [`Network`]: an ordered stack of [`Module`]s with a softmax cross-entropy head and an L2
//! penalty on the weight matrices.
//!
//! Loss: `L = mean cross-entropy(softmax(f(x)), y) + alpha/2·Σ‖W‖²`, the sum running over the
//! parameters marked regularized (weights, never biases). Backward applies the chain rule module
//! by module, last to first, then adds `alpha·W` to each regularized gradient.
//!
//! The network owns one activation buffer and one gradient buffer per module, reused from call
//! to call, so a training step at a steady batch size allocates nothing. That is why even
//! [`forward`](Network::forward) takes `&mut self`.

use crate::linalg::ensure_shape;
use crate::loss::column_max;
use crate::optim::Optimizer;
use crate::{Activation, Error, Float, Init, Layer, Module, Result, SoftmaxCrossEntropy};
use nalgebra::DMatrix;
use rand::Rng;

/// What one training step measured, before its update was applied.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepReport {
    /// 1-based number of this step over the network's life.
    pub step: usize,
    /// Loss on the batch (cross-entropy + L2 penalty).
    pub loss: f64,
    /// Fraction of the batch classified correctly, in [0, 1].
    pub accuracy: f64,
    /// Samples in the batch.
    pub batch_size: usize,
}

/// A feedforward network: modules applied in order, ending in class logits.
///
/// Inputs are `input_rows × batch` matrices, one sample per column; labels are class indices.
#[derive(Debug)]
pub struct Network<T: Float> {
    input_rows: usize,
    modules: Vec<Box<dyn Module<T>>>,
    /// Output rows of each module.
    rows: Vec<usize>,
    l2: T,
    /// `activations[i]` is the output of module `i`.
    activations: Vec<DMatrix<T>>,
    /// `grads[i]` is `dL/d activations[i]`.
    grads: Vec<DMatrix<T>>,
    /// Each parameter's next value, written by the optimizer and swapped in once all are finite.
    next: Vec<DMatrix<T>>,
    steps: usize,
}

impl<T: Float> Network<T> {
    /// An empty network taking `input_rows` features per sample. Add modules with
    /// [`push`](Network::push).
    #[must_use]
    pub fn new(input_rows: usize) -> Self {
        Network {
            input_rows,
            modules: Vec::new(),
            rows: Vec::new(),
            l2: T::zero(),
            activations: Vec::new(),
            grads: Vec::new(),
            next: Vec::new(),
            steps: 0,
        }
    }

    /// Appends a module, checking that it accepts the current output size and gives at least
    /// one row.
    pub fn push(mut self, module: impl Module<T> + 'static) -> Result<Self> {
        self.push_boxed(Box::new(module))?;
        Ok(self)
    }

    /// Appends a boxed module, checking that it accepts the current output size and gives at
    /// least one row.
    pub fn push_boxed(&mut self, module: Box<dyn Module<T>>) -> Result<()> {
        let rows = module.output_rows(self.output_rows())?;
        if rows == 0 {
            return Err(Error::shape(module.kind(), "at least one output row", "0 rows"));
        }
        self.modules.push(module);
        self.rows.push(rows);
        self.activations.push(DMatrix::zeros(0, 0));
        self.grads.push(DMatrix::zeros(0, 0));
        Ok(())
    }

    /// A multilayer perceptron through `sizes` (at least two): one [`Layer`] per pair, the
    /// hidden ones with a fused [`Activation::Relu`], the output one without (it gives logits);
    /// every layer with a bias except the output layer when `output_bias` is false. The same
    /// function as `Layer → Relu → … → Layer`, in fewer passes over the batch.
    ///
    /// `Network::mlp(&[784, 256, 10], Init::He, true, &mut rng)` is the default MNIST network.
    pub fn mlp<R: Rng + ?Sized>(sizes: &[usize], init: Init, output_bias: bool, rng: &mut R) -> Result<Self> {
        if sizes.len() < 2 || sizes.contains(&0) {
            return Err(Error::shape("mlp sizes", "at least two non-zero sizes", format!("{sizes:?}")));
        }
        let mut net = Network::new(sizes[0]);
        let last = sizes.len() - 2;
        for (i, pair) in sizes.windows(2).enumerate() {
            let layer = if i == last && !output_bias {
                Layer::without_bias(pair[0], pair[1], init, rng)
            } else {
                Layer::new(pair[0], pair[1], init, rng)
            };
            let activation = if i == last { Activation::Identity } else { Activation::Relu };
            net = net.push(layer.with_activation(activation))?;
        }
        Ok(net)
    }

    /// Sets the L2 coefficient `alpha` of the penalty `alpha/2·Σ‖W‖²` (must be finite and ≥ 0).
    pub fn with_l2(mut self, alpha: T) -> Result<Self> {
        if !(alpha.is_finite() && alpha >= T::zero()) {
            return Err(Error::InvalidHyperparameter {
                name: "l2 alpha",
                value: alpha.as_f64(),
                requirement: "must be finite and >= 0",
            });
        }
        self.l2 = alpha;
        Ok(self)
    }

    /// The L2 coefficient `alpha`.
    #[must_use]
    pub fn l2(&self) -> T {
        self.l2
    }

    /// Features per input sample.
    #[must_use]
    pub fn input_rows(&self) -> usize {
        self.input_rows
    }

    /// Rows of the final output: the number of classes.
    #[must_use]
    pub fn output_rows(&self) -> usize {
        self.rows.last().copied().unwrap_or(self.input_rows)
    }

    /// The modules, in order.
    #[must_use]
    pub fn modules(&self) -> &[Box<dyn Module<T>>] {
        &self.modules
    }

    /// The modules, mutably (to inspect or set parameters; shapes must not change).
    pub fn modules_mut(&mut self) -> &mut [Box<dyn Module<T>>] {
        &mut self.modules
    }

    /// Every parameter, in the order optimizers and weight files see them.
    pub fn parameters(&self) -> impl Iterator<Item = &crate::Parameter<T>> {
        self.modules.iter().flat_map(|m| m.parameters().iter())
    }

    /// Total number of trainable scalars.
    #[must_use]
    pub fn parameter_count(&self) -> usize {
        self.parameters().map(crate::Parameter::len).sum()
    }

    /// Training steps applied so far.
    #[must_use]
    pub fn steps(&self) -> usize {
        self.steps
    }

    fn check_input(&self, x: &DMatrix<T>) -> Result<()> {
        if self.modules.is_empty() {
            return Err(Error::shape("network", "at least one module", "none"));
        }
        if x.nrows() != self.input_rows {
            return Err(Error::shape(
                "network input",
                format!("{} rows (features per sample; one sample per column)", self.input_rows),
                format!("{} rows", x.nrows()),
            ));
        }
        if x.ncols() == 0 {
            return Err(Error::EmptyBatch { what: "network input" });
        }
        Ok(())
    }

    /// Runs the modules on `x` (`input_rows × batch`) and returns the logits
    /// (`classes × batch`).
    pub fn forward(&mut self, x: &DMatrix<T>) -> Result<&DMatrix<T>> {
        self.check_input(x)?;
        let batch = x.ncols();
        for (i, module) in self.modules.iter().enumerate() {
            let (done, rest) = self.activations.split_at_mut(i);
            let output = &mut rest[0];
            ensure_shape(output, self.rows[i], batch);
            let input = if i == 0 { x } else { &done[i - 1] };
            module.forward(input, output);
        }
        Ok(self.logits())
    }

    fn logits(&self) -> &DMatrix<T> {
        self.activations.last().expect("check_input ensures at least one module")
    }

    /// `alpha/2·Σ‖W‖²` over the regularized parameters.
    #[must_use]
    pub fn l2_penalty(&self) -> T {
        if self.l2 == T::zero() {
            return T::zero();
        }
        let sum = self
            .parameters()
            .filter(|p| p.is_regularized())
            .fold(T::zero(), |acc, p| acc + crate::linalg::sum_of_squares(p.value().as_slice()));
        self.penalty(sum)
    }

    /// `alpha/2` times a sum of squared weights.
    fn penalty(&self, squares: T) -> T {
        self.l2 * squares / T::lit(2.0)
    }

    /// Loss on a batch: mean cross-entropy + L2 penalty. No gradients are computed.
    pub fn loss(&mut self, x: &DMatrix<T>, labels: &[usize]) -> Result<T> {
        Ok(self.loss_counting(x, labels)?.0)
    }

    /// [`loss`](Self::loss), and how many samples the forward pass classified correctly.
    fn loss_counting(&mut self, x: &DMatrix<T>, labels: &[usize]) -> Result<(T, usize)> {
        self.forward(x)?;
        let (ce, correct) = SoftmaxCrossEntropy.loss_and_correct(self.logits(), labels, None)?;
        Ok((ce + self.l2_penalty(), correct))
    }

    /// Forward and backward on a batch: returns the loss and leaves `dL/dP` in every parameter's
    /// gradient (including the L2 term).
    pub fn backward(&mut self, x: &DMatrix<T>, labels: &[usize]) -> Result<T> {
        Ok(self.backward_counting(x, labels)?.0)
    }

    /// [`backward`](Self::backward), and how many samples the forward pass classified correctly.
    fn backward_counting(&mut self, x: &DMatrix<T>, labels: &[usize]) -> Result<(T, usize)> {
        self.forward(x)?;
        let last = self.modules.len() - 1;
        let (ce, correct) = SoftmaxCrossEntropy.loss_and_correct(
            &self.activations[last],
            labels,
            Some(&mut self.grads[last]),
        )?;
        let batch = x.ncols();
        for i in (0..=last).rev() {
            let (lower, upper) = self.grads.split_at_mut(i);
            let grad_input = match i {
                0 => None,
                _ => {
                    let g = &mut lower[i - 1];
                    ensure_shape(g, self.rows[i - 1], batch);
                    Some(g)
                }
            };
            let input = if i == 0 { x } else { &self.activations[i - 1] };
            self.modules[i].backward(input, &self.activations[i], &upper[0], grad_input);
        }
        let mut squares = T::zero();
        if self.l2 != T::zero() {
            for module in &mut self.modules {
                for p in module.parameters_mut().iter_mut().filter(|p| p.is_regularized()) {
                    squares += p.add_l2_gradient(self.l2);
                }
            }
        }
        Ok((ce + self.penalty(squares), correct))
    }

    /// One training step: forward, backward, then `optimizer` updates every parameter.
    ///
    /// If the loss, any gradient or any updated parameter is NaN or infinite, returns
    /// [`Error::NonFinite`] naming the step and leaves the parameters as they were before it
    /// (the optimizer's own running state is not rolled back).
    pub fn train_step<O: Optimizer<T> + ?Sized>(
        &mut self,
        x: &DMatrix<T>,
        labels: &[usize],
        optimizer: &mut O,
    ) -> Result<StepReport> {
        let (loss, correct) = self.backward_counting(x, labels)?;
        let step = self.steps + 1;
        if !loss.is_finite() {
            return Err(Error::NonFinite { step, what: "loss".into(), value: loss.as_f64() });
        }
        optimizer.begin_step();
        // Phase 1: every new value into `next`, checked. Phase 2: swap them in. A failure in
        // phase 1 leaves every parameter as it was.
        let mut index = 0;
        for (m, module) in self.modules.iter().enumerate() {
            for param in module.parameters() {
                if self.next.len() <= index {
                    self.next.push(DMatrix::zeros(0, 0));
                }
                let next = &mut self.next[index];
                ensure_shape(next, param.value().nrows(), param.value().ncols());
                let (value, grad) = (param.value().as_slice(), param.grad().as_slice());
                // A NaN or infinite gradient makes the new value non-finite too (p − lr·NaN, or
                // inf/inf in RMSprop), so this one check covers both; the message says which.
                if !optimizer.update_checked(index, value, grad, next.as_mut_slice()) {
                    // The slow path: find the culprit (NaN if the optimizer flagged a value that
                    // is not there, which a correct one never does).
                    let culprit = |v: &[T]| crate::linalg::first_non_finite(v).map(T::as_f64);
                    let (what, value) = match culprit(grad) {
                        Some(g) => ("gradient", g),
                        None => ("updated value", culprit(next.as_slice()).unwrap_or(f64::NAN)),
                    };
                    let what = format!("{what} of module {m} ({}) {}", module.kind(), param.name());
                    return Err(Error::NonFinite { step, what, value });
                }
                index += 1;
            }
        }
        let params = self.modules.iter_mut().flat_map(|m| m.parameters_mut().iter_mut());
        for (param, next) in params.zip(&mut self.next) {
            param.swap_value(next);
        }
        self.steps = step;
        Ok(StepReport {
            step,
            loss: loss.as_f64(),
            accuracy: correct as f64 / labels.len() as f64,
            batch_size: labels.len(),
        })
    }

    /// Predicted class (argmax of the logits) of each sample.
    pub fn predict(&mut self, x: &DMatrix<T>) -> Result<Vec<usize>> {
        let logits = self.forward(x)?;
        Ok(logits.as_slice().chunks_exact(logits.nrows()).map(|c| column_max(c).0).collect())
    }

    /// Class probabilities (softmax of the logits), `classes × batch`.
    pub fn probabilities(&mut self, x: &DMatrix<T>) -> Result<DMatrix<T>> {
        let mut p = self.forward(x)?.clone();
        SoftmaxCrossEntropy.softmax_in_place(&mut p);
        Ok(p)
    }

    /// Loss (cross-entropy + L2) and accuracy on a batch, from one forward pass.
    pub fn evaluate(&mut self, x: &DMatrix<T>, labels: &[usize]) -> Result<(T, f64)> {
        let (loss, correct) = self.loss_counting(x, labels)?;
        Ok((loss, correct as f64 / labels.len() as f64))
    }

    /// Fraction of samples whose predicted class equals the label, in [0, 1].
    pub fn accuracy(&mut self, x: &DMatrix<T>, labels: &[usize]) -> Result<f64> {
        self.forward(x)?;
        SoftmaxCrossEntropy::check_labels(self.output_rows(), x.ncols(), labels)?;
        Ok(count_correct(self.logits(), labels) as f64 / labels.len() as f64)
    }
}

fn count_correct<T: Float>(logits: &DMatrix<T>, labels: &[usize]) -> usize {
    let columns = logits.as_slice().chunks_exact(logits.nrows());
    columns.zip(labels).filter(|(c, y)| column_max(c).0 == **y).count()
}
