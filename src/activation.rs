//! Activations: each one a function `f` and its derivative `f'` side by side, usable as a
//! module of its own ([`Relu`], [`LeakyRelu`], [`Tanh`], [`Sigmoid`], [`Gelu`], [`Silu`]) and fused into a
//! [`Layer`](crate::Layer) ([`Activation`]).
//!
//! | activation | `y = f(z)` | `f'`, read from | NaN/±inf in `z` stays non-finite |
//! |---|---|---|---|
//! | ReLU | `max(z, 0) + (z − z)` | `1{y > 0}`, the output | yes |
//! | LeakyReLU (slope `a ≥ 0`) | `z` if `z > 0`, else `a·z` | `1` if `y > 0`, else `a`; the output | yes |
//! | tanh | `tanh z` | `1 − y²`, the output | no: `tanh(±∞) = ±1` |
//! | sigmoid | `1/(1 + e^(−z))` | `y·(1 − y)`, the output | no: `σ(±∞) = 1, 0` |
//! | GELU, tanh form | `z/2·(1 + tanh u)`, `u = √(2/π)·(z + 0.044715·z³)` | `(1 + t)/2 + z/2·(1 − t²)·√(2/π)·(1 + 3·0.044715·z²)`, `t = tanh u`; the input | yes |
//! | SiLU (swish) | `z·σ(z)`, `σ(z) = 1/(1 + e^(−z))` | `σ(z)·(1 + z·(1 − σ(z)))`; the input | yes |
//!
//! The derivative of ReLU and LeakyReLU at exactly 0 is taken as that of the left side (a
//! valid subgradient), as in the original recipe's `delta1 = (W1·delta2) ⊙ 1{z1 > 0}`. GELU is
//! PyTorch's `GELU(approximate='tanh')` (the exact form needs `erf`, which Rust's `std` lacks).
//!
//! ReLU adds `z − z` (0 for finite `z`, NaN for NaN and ±∞) to `max(z, 0)`: the same value for
//! every finite `z`, while NaN and −∞ stay non-finite, so a network can find a NaN or ±inf of
//! its input in its output ([`Module::propagates_non_finite`]).
//!
//! A new activation is one item: a type implementing [`ActivationFunction`] (it is then a
//! [`Module`] too); to fuse it into a [`Layer`](crate::Layer), a variant of [`Activation`] and
//! its line in `with_function!` below.

use crate::elementary::tanh;
use crate::linalg::{flush_subnormal, map1, map2, simd};
use crate::parallel::{Cols, ColsMut, for_column_blocks};
use crate::{Error, Float, Module, Result};
use nalgebra::DMatrix;
use serde_json::{Map, Value};

/// Which value an activation's derivative is computed from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DerivativeFrom {
    /// The output `y = f(z)`: a fused layer need not keep `z`.
    Output,
    /// The input `z`: a fused layer computes `f'(z)` beside `f(z)` in its training forward
    /// pass and keeps it for backward (one buffer of its outputs).
    Input,
}

/// An elementwise activation `y = f(z)` and its derivative, side by side. Every implementation
/// is also a [`Module`] (no parameters; the loops live once, in this file).
pub trait ActivationFunction: Copy + std::fmt::Debug + Send + Sync + 'static {
    /// Kind name in messages and model files, e.g. `"Relu"`.
    const KIND: &'static str;
    /// Whether [`derivative`](Self::derivative) reads the output or the input.
    const DERIVATIVE_FROM: DerivativeFrom;
    /// Whether a NaN or ±inf input always gives a non-finite output (see
    /// [`Module::propagates_non_finite`]).
    const PROPAGATES_NON_FINITE: bool;

    /// `f(z)`.
    fn f<T: Float>(&self, z: T) -> T;

    /// `f'` at `at`: the output `y` or the input `z`, as [`DERIVATIVE_FROM`](Self::DERIVATIVE_FROM)
    /// says.
    fn derivative<T: Float>(&self, at: T) -> T;

    /// `(f(z), f')`, with `f'` at the output or the input as
    /// [`DERIVATIVE_FROM`](Self::DERIVATIVE_FROM) says: what a fused layer's training pass
    /// computes for a derivative that reads `z`. Override only to share work between the two
    /// (GELU's `tanh`, SiLU's sigmoid), giving the same bits as [`f`](Self::f) and
    /// [`derivative`](Self::derivative).
    #[inline(always)]
    fn f_and_derivative<T: Float>(&self, z: T) -> (T, T) {
        let y = self.f(z);
        let at = match Self::DERIVATIVE_FROM {
            DerivativeFrom::Output => y,
            DerivativeFrom::Input => z,
        };
        (y, self.derivative(at))
    }

    /// `dL/dz = f'·dL/dy`. Override only to compute the same value in fewer operations (ReLU
    /// selects): a fused [`Layer`](crate::Layer) whose activation's derivative reads the input
    /// multiplies `dL/dy` by the `f'(z)` it kept instead.
    #[inline(always)]
    fn gradient<T: Float>(&self, at: T, dy: T) -> T {
        self.derivative(at) * dy
    }

    /// Settings a model file needs to rebuild it (LeakyReLU's slope). Default: none.
    fn settings(&self) -> Map<String, Value> {
        Map::new()
    }
}

/// `y = z`: a layer with no activation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Identity;

impl ActivationFunction for Identity {
    const KIND: &'static str = "Identity";
    const DERIVATIVE_FROM: DerivativeFrom = DerivativeFrom::Output;
    const PROPAGATES_NON_FINITE: bool = true;
    #[inline(always)]
    fn f<T: Float>(&self, z: T) -> T {
        z
    }
    #[inline(always)]
    fn derivative<T: Float>(&self, _: T) -> T {
        T::one()
    }
    #[inline(always)]
    fn gradient<T: Float>(&self, _: T, dy: T) -> T {
        dy
    }
}

/// The rectified linear unit `max(z, 0)`, applied elementwise. No parameters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Relu;

impl ActivationFunction for Relu {
    const KIND: &'static str = "Relu";
    const DERIVATIVE_FROM: DerivativeFrom = DerivativeFrom::Output;
    const PROPAGATES_NON_FINITE: bool = true;
    #[inline(always)]
    #[expect(clippy::eq_op, reason = "z − z is 0 for finite z and NaN otherwise: on purpose")]
    fn f<T: Float>(&self, z: T) -> T {
        // `z − z` is 0 for every finite z and NaN for NaN and ±inf: the same bits as
        // `max(z, 0)` for finite z, and non-finite stays non-finite. (A select of `0·z` below
        // the kink does the same, but LLVM vectorized it poorly: README, Performance.)
        (if z > T::zero() { z } else { T::zero() }) + (z - z)
    }
    #[inline(always)]
    fn derivative<T: Float>(&self, y: T) -> T {
        if y > T::zero() { T::one() } else { T::zero() }
    }
    #[inline(always)]
    fn gradient<T: Float>(&self, y: T, dy: T) -> T {
        if y > T::zero() { dy } else { T::zero() }
    }
}

/// The leaky ReLU: `z` above 0, `slope·z` below. PyTorch's default slope is 0.01.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LeakyRelu {
    slope: f64,
}

impl LeakyRelu {
    /// PyTorch's default, slope 0.01.
    pub const DEFAULT: LeakyRelu = LeakyRelu { slope: 0.01 };

    /// A leaky ReLU with `slope` finite and ≥ 0 (a negative slope would make `f` fold over,
    /// and its derivative could not be read from the output).
    pub fn new(slope: f64) -> Result<Self> {
        if !(slope.is_finite() && slope >= 0.0) {
            return Err(Error::InvalidHyperparameter {
                name: "leaky relu slope",
                value: slope,
                requirement: "must be finite and >= 0",
            });
        }
        Ok(LeakyRelu { slope })
    }

    /// The slope below 0.
    #[must_use]
    pub fn slope(&self) -> f64 {
        self.slope
    }
}

impl Default for LeakyRelu {
    fn default() -> Self {
        LeakyRelu::DEFAULT
    }
}

impl ActivationFunction for LeakyRelu {
    const KIND: &'static str = "LeakyRelu";
    const DERIVATIVE_FROM: DerivativeFrom = DerivativeFrom::Output;
    const PROPAGATES_NON_FINITE: bool = true;
    #[inline(always)]
    fn f<T: Float>(&self, z: T) -> T {
        if z > T::zero() { z } else { T::lit(self.slope) * z }
    }
    #[inline(always)]
    fn derivative<T: Float>(&self, y: T) -> T {
        if y > T::zero() { T::one() } else { T::lit(self.slope) }
    }
    fn settings(&self) -> Map<String, Value> {
        Map::from_iter([("slope".to_string(), self.slope.into())])
    }
}

/// The hyperbolic tangent, applied elementwise.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tanh;

impl ActivationFunction for Tanh {
    const KIND: &'static str = "Tanh";
    const DERIVATIVE_FROM: DerivativeFrom = DerivativeFrom::Output;
    const PROPAGATES_NON_FINITE: bool = false;
    #[inline(always)]
    fn f<T: Float>(&self, z: T) -> T {
        tanh(z)
    }
    #[inline(always)]
    fn derivative<T: Float>(&self, y: T) -> T {
        T::one() - y * y
    }
}

/// The logistic sigmoid `1/(1 + e^(−z))`, applied elementwise; computed with the exponential of
/// `−|z|` only, so it never overflows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sigmoid;

impl ActivationFunction for Sigmoid {
    const KIND: &'static str = "Sigmoid";
    const DERIVATIVE_FROM: DerivativeFrom = DerivativeFrom::Output;
    const PROPAGATES_NON_FINITE: bool = false;
    #[inline(always)]
    fn f<T: Float>(&self, z: T) -> T {
        crate::loss::sigmoid(z)
    }
    #[inline(always)]
    fn derivative<T: Float>(&self, y: T) -> T {
        y * (T::one() - y)
    }
}

/// GELU in its tanh form (PyTorch's `GELU(approximate='tanh')`), applied elementwise.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Gelu;

/// `√(2/π)` and the cubic coefficient of the tanh form of GELU.
const GELU_K: f64 = 0.797_884_560_802_865_4;
const GELU_C: f64 = 0.044_715;

impl ActivationFunction for Gelu {
    const KIND: &'static str = "Gelu";
    const DERIVATIVE_FROM: DerivativeFrom = DerivativeFrom::Input;
    const PROPAGATES_NON_FINITE: bool = true;
    #[inline(always)]
    fn f<T: Float>(&self, z: T) -> T {
        gelu_from_tanh(z, gelu_tanh(z))
    }
    #[inline(always)]
    fn derivative<T: Float>(&self, z: T) -> T {
        gelu_derivative_from_tanh(z, gelu_tanh(z))
    }
    #[inline(always)]
    fn f_and_derivative<T: Float>(&self, z: T) -> (T, T) {
        let t = gelu_tanh(z);
        (gelu_from_tanh(z, t), gelu_derivative_from_tanh(z, t))
    }
}

/// `tanh u`, `u = √(2/π)·(z + c·z³)`: what GELU and its derivative share.
#[inline(always)]
fn gelu_tanh<T: Float>(z: T) -> T {
    tanh(T::lit(GELU_K) * (z + T::lit(GELU_C) * z * z * z))
}

/// `GELU(z) = z·(1 + tanh u)/2`.
#[inline(always)]
fn gelu_from_tanh<T: Float>(z: T, t: T) -> T {
    T::lit(0.5) * z * (T::one() + t)
}

/// `GELU'(z) = (1 + tanh u)/2 + z·(1 − tanh² u)·u'/2`, `u' = √(2/π)·(1 + 3c·z²)`.
#[inline(always)]
fn gelu_derivative_from_tanh<T: Float>(z: T, t: T) -> T {
    // Beyond |z| = 10, tanh u is ±1 to the last bit of an f64: f' is 1 or 0, and the
    // formula below would compute 0·∞ for huge z.
    if z.abs() > T::lit(10.0) {
        return if z > T::zero() { T::one() } else { T::zero() };
    }
    let (k, c, half) = (T::lit(GELU_K), T::lit(GELU_C), T::lit(0.5));
    half * (T::one() + t) + half * z * (T::one() - t * t) * k * (T::one() + T::lit(3.0) * c * z * z)
}

/// SiLU, also called swish: `z·σ(z)` (PyTorch's `nn.SiLU`), applied elementwise. Its
/// derivative `σ(z)·(1 + z·(1 − σ(z)))` needs `z`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Silu;

impl ActivationFunction for Silu {
    const KIND: &'static str = "Silu";
    const DERIVATIVE_FROM: DerivativeFrom = DerivativeFrom::Input;
    const PROPAGATES_NON_FINITE: bool = true;
    #[inline(always)]
    fn f<T: Float>(&self, z: T) -> T {
        z * crate::loss::sigmoid(z)
    }
    #[inline(always)]
    fn derivative<T: Float>(&self, z: T) -> T {
        silu_derivative_from_sigmoid(z, crate::loss::sigmoid(z))
    }
    #[inline(always)]
    fn f_and_derivative<T: Float>(&self, z: T) -> (T, T) {
        let s = crate::loss::sigmoid(z);
        (z * s, silu_derivative_from_sigmoid(z, s))
    }
}

/// `SiLU'(z) = σ(z)·(1 + z·(1 − σ(z)))`, given `s = σ(z)`.
#[inline(always)]
fn silu_derivative_from_sigmoid<T: Float>(z: T, s: T) -> T {
    s * (T::one() + z * (T::one() - s))
}

/// What a [`Layer`](crate::Layer) applies to its affine output `z = Wᵀx + b`, in the same pass
/// as the bias: `Layer → Relu` as one module costs one pass over the batch where the two
/// modules cost four (bias, ReLU forward; ReLU backward, bias gradient), and holds one buffer
/// of activations fewer. Each variant computes the same bits as its module.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
#[non_exhaustive]
pub enum Activation {
    /// `y = z`.
    #[default]
    Identity,
    /// The [`Relu`] function.
    Relu,
    /// The [`LeakyRelu`] function with its slope.
    LeakyRelu(LeakyRelu),
    /// The [`Tanh`] function.
    Tanh,
    /// The [`Sigmoid`] function.
    Sigmoid,
    /// The [`Gelu`] function. Its derivative needs `z`: the layer's training forward pass
    /// keeps `f'(z)` for backward, one buffer of its outputs more than the other activations.
    Gelu,
    /// The [`Silu`] function. Like GELU, its derivative needs `z`.
    Silu,
}

/// Runs `$body` with `$a` bound to the [`ActivationFunction`] of `$activation`: one arm per
/// variant, each a concrete type, so each compiles to its own vectorized loop.
macro_rules! with_function {
    ($activation:expr, $a:ident => $body:expr) => {
        match $activation {
            $crate::Activation::Identity => {
                let $a = $crate::activation::Identity;
                $body
            }
            $crate::Activation::Relu => {
                let $a = $crate::Relu;
                $body
            }
            $crate::Activation::LeakyRelu(leaky) => {
                let $a = leaky;
                $body
            }
            $crate::Activation::Tanh => {
                let $a = $crate::Tanh;
                $body
            }
            $crate::Activation::Sigmoid => {
                let $a = $crate::Sigmoid;
                $body
            }
            $crate::Activation::Gelu => {
                let $a = $crate::Gelu;
                $body
            }
            $crate::Activation::Silu => {
                let $a = $crate::Silu;
                $body
            }
        }
    };
}
pub(crate) use with_function;

/// Names as in model files and on a command line.
const NAMES: [&str; 7] = ["identity", "relu", "leaky_relu", "tanh", "sigmoid", "gelu", "silu"];

impl Activation {
    /// Lower-case name, as in model files: `"identity"`, `"relu"`, `"leaky_relu"`, `"tanh"`,
    /// `"sigmoid"`, `"gelu"`, `"silu"`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Activation::Identity => NAMES[0],
            Activation::Relu => NAMES[1],
            Activation::LeakyRelu(_) => NAMES[2],
            Activation::Tanh => NAMES[3],
            Activation::Sigmoid => NAMES[4],
            Activation::Gelu => NAMES[5],
            Activation::Silu => NAMES[6],
        }
    }

    /// The function as a module of its own ([`Relu`], [`Tanh`], …); `None` for the identity.
    #[must_use]
    pub fn module<T: Float>(self) -> Option<Box<dyn Module<T>>> {
        match self {
            Activation::Identity => None,
            Activation::Relu => Some(Box::new(Relu)),
            Activation::LeakyRelu(leaky) => Some(Box::new(leaky)),
            Activation::Tanh => Some(Box::new(Tanh)),
            Activation::Sigmoid => Some(Box::new(Sigmoid)),
            Activation::Gelu => Some(Box::new(Gelu)),
            Activation::Silu => Some(Box::new(Silu)),
        }
    }

    /// Where the derivative is read from.
    #[must_use]
    pub fn derivative_from(self) -> DerivativeFrom {
        with_function!(self, a => derivative_from(a))
    }

    /// Whether a NaN or ±inf in `z` always gives a non-finite output.
    #[must_use]
    pub fn propagates_non_finite(self) -> bool {
        with_function!(self, a => propagates(a))
    }

    /// Settings a model file needs besides the name (LeakyReLU's `slope`).
    #[must_use]
    pub fn settings(self) -> Map<String, Value> {
        with_function!(self, a => a.settings())
    }

    /// The activation named `name` (as [`name`](Self::name) gives it), with `settings` (a
    /// LeakyReLU's `slope`, default 0.01).
    pub fn from_name(name: &str, settings: &Map<String, Value>) -> Result<Self, String> {
        Ok(match name {
            "identity" => Activation::Identity,
            "relu" => Activation::Relu,
            "leaky_relu" => {
                let slope = match settings.get("slope") {
                    None => LeakyRelu::DEFAULT.slope,
                    Some(v) => v.as_f64().ok_or("slope is not a number")?,
                };
                Activation::LeakyRelu(LeakyRelu::new(slope).map_err(|e| e.to_string())?)
            }
            "tanh" => Activation::Tanh,
            "sigmoid" => Activation::Sigmoid,
            "gelu" => Activation::Gelu,
            "silu" => Activation::Silu,
            other => {
                return Err(format!("unknown activation {other:?}: expected one of {}", NAMES.join(", ")));
            }
        })
    }
}

fn derivative_from<A: ActivationFunction>(_: A) -> DerivativeFrom {
    A::DERIVATIVE_FROM
}

fn propagates<A: ActivationFunction>(_: A) -> bool {
    A::PROPAGATES_NON_FINITE
}

impl std::str::FromStr for Activation {
    type Err = String;

    /// Parses a [`name`](Activation::name); `leaky_relu` takes the default slope 0.01, and
    /// `leaky_relu:0.2` another one.
    fn from_str(s: &str) -> Result<Self, String> {
        match s.split_once(':') {
            Some(("leaky_relu", slope)) => {
                let slope: f64 =
                    slope.parse().map_err(|_| format!("leaky_relu slope {slope:?} is not a number"))?;
                Activation::from_name("leaky_relu", &Map::from_iter([("slope".to_string(), slope.into())]))
            }
            _ => Activation::from_name(s, &Map::new()),
        }
    }
}

/// Every activation function is a module: `y = f(x)` elementwise, no parameters.
impl<T: Float, A: ActivationFunction> Module<T> for A {
    fn kind(&self) -> &'static str {
        A::KIND
    }

    fn output_rows(&self, input_rows: usize) -> Result<usize> {
        Ok(input_rows)
    }

    fn forward(&self, input: &DMatrix<T>, output: &mut DMatrix<T>) {
        let (rows, cols) = input.shape();
        let data = (ColsMut(output.as_mut_slice(), rows), Cols(input.as_slice(), rows));
        let block = |(y, z): (ColsMut<'_, T>, Cols<'_, T>)| {
            simd(
                #[inline(always)]
                || map1(y.0, z.0, |z| self.f(z)),
            );
        };
        for_column_blocks(cols, rows, data, &block, &|(), ()| ());
    }

    fn backward(
        &mut self,
        input: &DMatrix<T>,
        output: &DMatrix<T>,
        grad_output: &DMatrix<T>,
        grad_input: Option<&mut DMatrix<T>>,
    ) {
        let Some(dz) = grad_input else { return };
        let at = match A::DERIVATIVE_FROM {
            DerivativeFrom::Output => output,
            DerivativeFrom::Input => input,
        };
        let (rows, cols) = input.shape();
        let data =
            (ColsMut(dz.as_mut_slice(), rows), Cols(at.as_slice(), rows), Cols(grad_output.as_slice(), rows));
        let this = *self;
        let block = |(dz, at, dy): (ColsMut<'_, T>, Cols<'_, T>, Cols<'_, T>)| {
            simd(
                #[inline(always)]
                || map2(dz.0, at.0, dy.0, |at, dy| flush_subnormal(this.gradient(at, dy))),
            );
        };
        for_column_blocks(cols, rows, data, &block, &|(), ()| ());
    }

    fn propagates_non_finite(&self) -> bool {
        A::PROPAGATES_NON_FINITE
    }

    fn describe(&self) -> Option<Map<String, Value>> {
        Some(self.settings())
    }
}
