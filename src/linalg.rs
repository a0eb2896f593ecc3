//! The scalar types and the one matrix product everything goes through.
//!
//! Batches are column-major `DMatrix` values with **one sample per column**, so each sample is a
//! contiguous slice. Every product in the forward and backward pass is `C = α·op(A)·op(B) + β·C`,
//! where `op` is either the identity or a transpose. A transpose here is never materialised: it
//! is the same memory read with swapped strides, handed to the [`gemm`](https://docs.rs/gemm)
//! crate's kernels (AVX-512 or AVX2/FMA, picked at run time; both cores with the `threading`
//! feature). nalgebra's own `tr_mul`/`gemm_tr` loop element by element and are many times
//! slower, and its `gemm` (via `matrixmultiply`) measured from as fast to 1.8× slower than this
//! on the MNIST shapes (README, Performance).

use nalgebra::{Dim, Matrix, RawStorage, RawStorageMut, RealField};
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};
use std::fmt;

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
}

/// A floating-point scalar the networks can use: `f32` (training) or `f64` (gradient checks).
///
/// Sealed: products dispatch to hand-tuned `f32`/`f64` kernels, so no other type can provide them.
pub trait Float:
    RealField + Copy + Default + fmt::Debug + fmt::Display + Send + Sync + 'static + sealed::Sealed
{
    /// Name of the type, as in `"f32"`.
    const NAME: &'static str;
    /// Size in bytes.
    const BYTES: usize;
    /// Converts an `f64` (a literal or hyper-parameter), rounding for `f32`.
    fn lit(value: f64) -> Self;
    /// Converts to `f64` (exact).
    fn as_f64(self) -> f64;
    /// Draws from the standard normal distribution N(0, 1).
    fn standard_normal<R: Rng + ?Sized>(rng: &mut R) -> Self;
    /// Appends the little-endian bytes of `self`.
    fn write_le(self, out: &mut Vec<u8>);
    /// Reads a value from exactly [`Self::BYTES`] little-endian bytes.
    fn read_le(bytes: &[u8]) -> Self;
}

macro_rules! impl_float {
    ($t:ty) => {
        impl Float for $t {
            const NAME: &'static str = stringify!($t);
            const BYTES: usize = std::mem::size_of::<$t>();
            fn lit(value: f64) -> Self {
                value as $t
            }
            fn as_f64(self) -> f64 {
                self as f64
            }
            fn standard_normal<R: Rng + ?Sized>(rng: &mut R) -> Self {
                StandardNormal.sample(rng)
            }
            fn write_le(self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
            fn read_le(bytes: &[u8]) -> Self {
                let mut raw = [0u8; std::mem::size_of::<$t>()];
                raw.copy_from_slice(bytes);
                <$t>::from_le_bytes(raw)
            }
        }
    };
}
impl_float!(f32);
impl_float!(f64);

/// Thread limit set by [`set_threads`]; 0 means every core.
static THREADS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Limits how many threads matrix products and large elementwise passes use, process-wide:
/// `1` runs everything on the calling thread, `0` (the default) uses every core. Without the
/// `threading` feature everything runs on the calling thread regardless.
pub fn set_threads(threads: usize) {
    THREADS.store(threads, std::sync::atomic::Ordering::Relaxed);
}

fn threads() -> usize {
    THREADS.load(std::sync::atomic::Ordering::Relaxed)
}

fn parallelism() -> gemm::Parallelism {
    match threads() {
        1 => gemm::Parallelism::None,
        #[cfg(feature = "threading")]
        n => gemm::Parallelism::Rayon(n),
        #[cfg(not(feature = "threading"))]
        _ => gemm::Parallelism::None,
    }
}

/// Whether a factor of a product is used as stored or transposed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Use the matrix as stored.
    Id,
    /// Use its transpose (same memory, swapped strides).
    T,
}

/// Shape and strides of `op(x)`: (rows, cols, row stride, col stride).
fn layout<T, R: Dim, C: Dim, S: RawStorage<T, R, C>>(
    x: &Matrix<T, R, C, S>,
    op: Op,
) -> (usize, usize, isize, isize) {
    let (rows, cols) = x.shape();
    let (rs, cs) = x.strides();
    match op {
        Op::Id => (rows, cols, rs as isize, cs as isize),
        Op::T => (cols, rows, cs as isize, rs as isize),
    }
}

/// `c = alpha·op(a)·op(b) + beta·c`, on any nalgebra storage (owned matrices or views).
///
/// With `beta == 0` the old contents of `c` are not read, so it may hold anything (even NaN).
///
/// # Panics
/// If the shapes do not conform. Callers validate user input first, so a panic here is a bug in
/// the crate (or in a custom [`Module`](crate::Module)'s buffer handling).
pub fn gemm<T, R1, C1, S1, R2, C2, S2, R3, C3, S3>(
    alpha: T,
    a: &Matrix<T, R1, C1, S1>,
    op_a: Op,
    b: &Matrix<T, R2, C2, S2>,
    op_b: Op,
    beta: T,
    c: &mut Matrix<T, R3, C3, S3>,
) where
    T: Float,
    R1: Dim,
    C1: Dim,
    S1: RawStorage<T, R1, C1>,
    R2: Dim,
    C2: Dim,
    S2: RawStorage<T, R2, C2>,
    R3: Dim,
    C3: Dim,
    S3: RawStorageMut<T, R3, C3>,
{
    let (m, k, rsa, csa) = layout(a, op_a);
    let (k2, n, rsb, csb) = layout(b, op_b);
    let (m2, n2) = c.shape();
    assert!(k == k2 && m == m2 && n == n2, "gemm: op(a) is {m}x{k}, op(b) is {k2}x{n}, c is {m2}x{n2}");
    let (rsc, csc) = (c.strides().0 as isize, c.strides().1 as isize);
    // gemm's convention: dst = alpha·dst + beta·lhs·rhs, strides given as (column, row), dst not
    // read at all when `read_dst` is false (so beta = 0 ignores NaNs in C). It dispatches on the
    // type: `Float` is sealed to f32 and f64, both of which it implements.
    // SAFETY: shapes checked above; strides come from nalgebra's own storage, which keeps every
    // element in bounds; `c` is borrowed mutably, so it cannot alias `a` or `b`.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            csc,
            rsc,
            beta != T::zero(),
            a.as_ptr(),
            csa,
            rsa,
            b.as_ptr(),
            csb,
            rsb,
            beta,
            alpha,
            false,
            false,
            false,
            parallelism(),
        );
    }
}

/// Resizes `buffer` to `rows × cols` only when its shape differs, so a steady batch size never
/// allocates. New contents are unspecified (zeros after a resize).
pub(crate) fn ensure_shape<T: Float>(buffer: &mut nalgebra::DMatrix<T>, rows: usize, cols: usize) {
    if buffer.shape() != (rows, cols) {
        *buffer = nalgebra::DMatrix::zeros(rows, cols);
    }
}

/// Runs `f` compiled for AVX2 + FMA when the CPU has them, so that elementwise loops inlined
/// into it vectorize 8 lanes wide instead of the x86-64 baseline's 4; elsewhere runs it as is.
/// Results are bit-identical either way (Rust never fuses `a*b + c` on its own).
#[inline(always)]
pub(crate) fn simd<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        #[target_feature(enable = "avx2,fma")]
        unsafe fn wide<R>(f: impl FnOnce() -> R) -> R {
            f()
        }
        // SAFETY: the CPU has the features `wide` is compiled for, checked just above.
        return unsafe { wide(f) };
    }
    f()
}

/// Lanes of the accumulators below: independent partial sums let the compiler vectorize a
/// reduction it may not reorder itself.
const LANES: usize = 16;

/// `Σ vᵢ²`, vectorized.
pub(crate) fn sum_of_squares<T: Float>(values: &[T]) -> T {
    lane_sums(values, |v| v * v).iter().fold(T::zero(), |s, &a| s + a)
}

/// `LANES` partial sums of `f(v)` over `values` (element `i` goes to lane `i % LANES`).
#[inline(always)]
fn lane_sums<T: Float>(values: &[T], f: impl Fn(T) -> T) -> [T; LANES] {
    simd(|| {
        let mut acc = [T::zero(); LANES];
        for chunk in values.chunks(LANES) {
            for (a, &v) in acc.iter_mut().zip(chunk) {
                *a += f(v);
            }
        }
        acc
    })
}

/// The first non-finite value in `values`, if any. Vectorized: `v·0` is 0 for every finite `v`
/// and NaN for ±inf and NaN, so the lane sums stay 0 exactly when all values are finite.
pub(crate) fn first_non_finite<T: Float>(values: &[T]) -> Option<T> {
    let acc = lane_sums(values, |v| v * T::zero());
    if acc.iter().all(|a| *a == T::zero()) { None } else { values.iter().copied().find(|v| !v.is_finite()) }
}

/// Below this many elements a pass over a batch runs on one thread: splitting would cost more
/// than it saves.
const PARALLEL_MIN_ELEMENTS: usize = 1 << 16;

/// A batch-shaped piece of data (or a tuple of them) that can be cut between two columns.
pub(crate) trait SplitColumns: Sized + Send {
    /// `(columns ..col, columns col..)`.
    fn split_at_column(self, col: usize) -> (Self, Self);
}

/// Columns of a column-major buffer: `(data, rows)`.
pub(crate) struct Cols<'a, T>(pub &'a [T], pub usize);
/// Mutable columns of a column-major buffer: `(data, rows)`.
pub(crate) struct ColsMut<'a, T>(pub &'a mut [T], pub usize);

impl<T: Sync> SplitColumns for Cols<'_, T> {
    fn split_at_column(self, col: usize) -> (Self, Self) {
        let (a, b) = self.0.split_at(col * self.1);
        (Cols(a, self.1), Cols(b, self.1))
    }
}

impl<T: Send> SplitColumns for ColsMut<'_, T> {
    fn split_at_column(self, col: usize) -> (Self, Self) {
        let (a, b) = self.0.split_at_mut(col * self.1);
        (ColsMut(a, self.1), ColsMut(b, self.1))
    }
}

impl<S: SplitColumns> SplitColumns for Option<S> {
    fn split_at_column(self, col: usize) -> (Self, Self) {
        match self {
            Some(s) => {
                let (a, b) = s.split_at_column(col);
                (Some(a), Some(b))
            }
            None => (None, None),
        }
    }
}

impl<A: SplitColumns, B: SplitColumns> SplitColumns for (A, B) {
    fn split_at_column(self, col: usize) -> (Self, Self) {
        let (a0, a1) = self.0.split_at_column(col);
        let (b0, b1) = self.1.split_at_column(col);
        ((a0, b0), (a1, b1))
    }
}

impl<A: SplitColumns, B: SplitColumns, C: SplitColumns> SplitColumns for (A, B, C) {
    fn split_at_column(self, col: usize) -> (Self, Self) {
        let (a0, a1) = self.0.split_at_column(col);
        let ((b0, c0), (b1, c1)) = (self.1, self.2).split_at_column(col);
        ((a0, b0, c0), (a1, b1, c1))
    }
}

/// Runs `f` on blocks of the `cols` columns of `data` and folds the blocks' results with
/// `combine`. Large batches are halved recursively and the halves run on both cores (feature
/// `threading`); the split points, and so the order results are combined in, depend only on the
/// shape, so a floating-point reduction gives the same bits on every run.
pub(crate) fn for_column_blocks<S, R, F, C>(cols: usize, rows: usize, data: S, f: &F, combine: &C) -> R
where
    S: SplitColumns,
    R: Send,
    F: Fn(S) -> R + Sync,
    C: Fn(R, R) -> R + Sync,
{
    if !cfg!(feature = "threading") || threads() == 1 || cols < 2 || cols * rows < 2 * PARALLEL_MIN_ELEMENTS {
        return f(data);
    }
    let mid = cols / 2;
    let (left, right) = data.split_at_column(mid);
    let (a, b) = join(
        || for_column_blocks(mid, rows, left, f, combine),
        || for_column_blocks(cols - mid, rows, right, f, combine),
    );
    combine(a, b)
}

#[cfg(feature = "threading")]
fn join<A: Send, B: Send>(a: impl FnOnce() -> A + Send, b: impl FnOnce() -> B + Send) -> (A, B) {
    rayon::join(a, b)
}

#[cfg(not(feature = "threading"))]
fn join<A: Send, B: Send>(a: impl FnOnce() -> A + Send, b: impl FnOnce() -> B + Send) -> (A, B) {
    (a(), b())
}
