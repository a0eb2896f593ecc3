//! The scalar types and the one matrix product everything goes through.
//!
//! Batches are column-major `DMatrix` values with **one sample per column**, so each sample is a
//! contiguous slice. Every product in the forward and backward pass is `C = α·op(A)·op(B) + β·C`,
//! where `op` is either the identity or a transpose. A transpose here is never materialised: it
//! is the same memory read with swapped strides, handed to the [`gemm`](https://docs.rs/gemm)
//! crate's kernels (AVX-512 or AVX2/FMA, picked at run time). With the `threading` feature a
//! large product is cut into one share of the output rows (or columns) per thread, each share
//! one single-threaded kernel call on the crate's own thread team (`parallel.rs`): at batch 128
//! that ran the step's products in 420 µs where the `gemm` crate's own rayon mode took 700.
//! nalgebra's own `tr_mul`/`gemm_tr` loop element by element and are many times slower, and its
//! `gemm` (via `matrixmultiply`) measured from as fast to 1.8× slower than the `gemm` crate on
//! the MNIST shapes (README, Performance).

use crate::parallel::{Cols, ColsMut, MAX_BLOCKS, for_column_blocks};
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
    /// The smallest positive normal value (`f32::MIN_POSITIVE`, `f64::MIN_POSITIVE`); smaller
    /// magnitudes are subnormal.
    const MIN_NORMAL: Self;
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
            const MIN_NORMAL: Self = <$t>::MIN_POSITIVE;
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

pub use crate::parallel::set_threads;

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
    let product = Product {
        m,
        n,
        k,
        a: a.as_ptr(),
        rsa,
        csa,
        b: b.as_ptr(),
        rsb,
        csb,
        c: c.as_mut_ptr(),
        rsc,
        csc,
        alpha,
        beta,
    };
    // One share of the output per thread: rows when `op(a)` is the larger factor, columns
    // otherwise, so the larger factor is cut and each thread packs only its part of it. When
    // `c` is the largest of the three (k the smallest dimension: a weight gradient `x·δᵀ` on a
    // minibatch) it is cut into column blocks instead, contiguous in memory: the same blocks,
    // on the same threads, as the flat passes that follow over the gradient (L2, optimizer),
    // which then find their block in their own core's cache.
    let large = m * n * k >= SPLIT_MIN_MACS;
    if large && k >= SPLIT_DEPTH_RATIO * m.max(n) {
        // SAFETY: as below; `split_depth` computes the same product in pieces.
        return unsafe { product.split_depth() };
    }
    let parts = if large { crate::parallel::threads() } else { 1 };
    let by_columns = n >= m || k <= n;
    let (len, align) = if by_columns { (n, 1) } else { (m, ROW_ALIGN) };
    let parts = parts.min(len.div_ceil(align)).max(1);
    if parts == 1 {
        // SAFETY: shapes checked above, `c` is borrowed mutably so it cannot alias `a` or `b`,
        // and nalgebra's strides keep every element in bounds.
        return unsafe { product.compute() };
    }
    let bound = |i: usize| (len * i / parts / align * align).min(len);
    crate::parallel::run(parts, &|i| {
        let (from, to) = (bound(i), if i + 1 == parts { len } else { bound(i + 1) });
        let piece = if by_columns { product.columns(from, to) } else { product.rows(from, to) };
        // SAFETY: as above; the pieces write disjoint rows (or columns) of `c`.
        unsafe { piece.compute() }
    });
}

/// Below this many multiply-adds a product runs on one thread (a few µs of work).
const SPLIT_MIN_MACS: usize = 1 << 20;
/// A product whose depth `k` is at least this many times its larger output dimension (a weight
/// gradient `x·δᵀ` over a large batch) is cut along `k` ([`Product::split_depth`]).
const SPLIT_DEPTH_RATIO: usize = 8;
/// The pieces of a product cut along `k`: fixed, so that the order of its sums is too (and
/// even between 1, 2 and 4 threads).
const DEPTH_PIECES: usize = 4;
/// Row shares are cut at multiples of this: the height of the `gemm` crate's f32 kernel tile
/// with AVX2, so no thread runs a ragged tile it need not there. Its AVX-512 tiles are 16, 32,
/// 48 or 64 rows high; cuts at multiples of 64 would balance three threads worse (256 rows as
/// 64, 64 and 128).
const ROW_ALIGN: usize = 16;

/// One matrix product as raw parts: `c = alpha·a·b + beta·c`, with `a` m×k, `b` k×n, `c` m×n,
/// each given by a pointer and (row, column) strides.
#[derive(Clone, Copy)]
struct Product<T> {
    m: usize,
    n: usize,
    k: usize,
    a: *const T,
    rsa: isize,
    csa: isize,
    b: *const T,
    rsb: isize,
    csb: isize,
    c: *mut T,
    rsc: isize,
    csc: isize,
    alpha: T,
    beta: T,
}

// SAFETY: a `Product` is only built by `gemm`, which holds the borrows its pointers come from
// (shared for `a` and `b`, exclusive for `c`) until every piece of it has been computed, and
// pieces computed on different threads write disjoint parts of `c`.
unsafe impl<T: Send> Send for Product<T> {}
// SAFETY: as for `Send`: shared access only reads `a` and `b`, and the pieces' writes to `c`
// are disjoint.
unsafe impl<T: Sync> Sync for Product<T> {}

impl<T: Float> Product<T> {
    /// Rows `from..to` of `c` (and of `a`).
    fn rows(&self, from: usize, to: usize) -> Self {
        let (a, c) = (
            self.a.wrapping_offset(from as isize * self.rsa),
            self.c.wrapping_offset(from as isize * self.rsc),
        );
        Product { m: to - from, a, c, ..*self }
    }

    /// Columns `from..to` of `c` (and of `b`).
    fn columns(&self, from: usize, to: usize) -> Self {
        let (b, c) = (
            self.b.wrapping_offset(from as isize * self.csb),
            self.c.wrapping_offset(from as isize * self.csc),
        );
        Product { n: to - from, b, c, ..*self }
    }

    /// Depths `from..to` of the sum (columns of `a`, rows of `b`).
    fn depth(&self, from: usize, to: usize) -> Self {
        let (a, b) = (
            self.a.wrapping_offset(from as isize * self.csa),
            self.b.wrapping_offset(from as isize * self.rsb),
        );
        Product { k: to - from, a, b, ..*self }
    }

    /// The product as [`DEPTH_PIECES`] products over consecutive ranges of `k`, run on the
    /// thread team: the first into `c` (with `beta`), the others into partial sums in this
    /// thread's scratch buffer, then added to `c` in piece order. Cut by rows or columns
    /// instead, every thread would pack the whole of the deep factors (at full batch, all
    /// 42000 samples of `δ` for each share of `x·δᵀ`); cut along `k`, each packs its own
    /// samples only (the full-batch weight gradient: 66.8 → 61.3 ms, README, Performance).
    /// The pieces depend only on the shape, and so do the bits of the result.
    ///
    /// # Safety
    /// As for [`compute`](Product::compute).
    unsafe fn split_depth(&self) {
        let (m, n) = (self.m, self.n);
        let partial = m * n;
        with_scratch::<T, _>((DEPTH_PIECES - 1) * partial, |scratch| {
            let base = scratch.as_mut_ptr();
            let bound = |i: usize| self.k * i / DEPTH_PIECES;
            let pieces: [Product<T>; DEPTH_PIECES] = std::array::from_fn(|i| {
                let piece = self.depth(bound(i), bound(i + 1));
                if i == 0 {
                    piece
                } else {
                    // Column-major m × n partial sums, `alpha` applied, old contents not read.
                    let c = base.wrapping_add((i - 1) * partial);
                    Product { c, rsc: 1, csc: m as isize, beta: T::zero(), ..piece }
                }
            });
            // SAFETY: the caller's contract covers `a`, `b` and `c`; the partial sums are
            // disjoint `m × n` ranges of `scratch`, which nothing else touches meanwhile.
            crate::parallel::run(DEPTH_PIECES, &|i| unsafe { pieces[i].compute() });
            let partials = &*scratch;
            for j in 0..n {
                for i in 0..m {
                    // SAFETY: (i, j) is in `c`, whose pieces are all done.
                    let c = unsafe { &mut *self.c.offset(i as isize * self.rsc + j as isize * self.csc) };
                    *c = partials.chunks_exact(partial).fold(*c, |sum, p| sum + p[i + j * m]);
                }
            }
        });
    }

    /// Runs the product on the calling thread.
    ///
    /// # Safety
    /// Every element addressed by the shapes and strides is in bounds, and `c` aliases neither
    /// `a` nor `b` nor a piece computed concurrently.
    unsafe fn compute(&self) {
        if self.m == 0 || self.n == 0 {
            return;
        }
        // gemm's convention: dst = alpha·dst + beta·lhs·rhs, strides given as (column, row),
        // dst not read at all when `read_dst` is false (so beta = 0 ignores NaNs in C). It
        // dispatches on the type: `Float` is sealed to f32 and f64, both of which it implements.
        // SAFETY: in bounds and unaliased, as this function's own contract requires of the caller.
        unsafe {
            gemm::gemm(
                self.m,
                self.n,
                self.k,
                self.c,
                self.csc,
                self.rsc,
                self.beta != T::zero(),
                self.a,
                self.csa,
                self.rsa,
                self.b,
                self.csb,
                self.rsb,
                self.beta,
                self.alpha,
                false,
                false,
                false,
                gemm::Parallelism::None,
            );
        }
    }
}

/// Runs `f` on a scratch slice of `len` values owned by the calling thread, grown when too
/// short and kept for the next call (so a steady shape allocates nothing after its first
/// call). Contents are unspecified. A nested call gets a fresh buffer.
fn with_scratch<T: Float, R>(len: usize, f: impl FnOnce(&mut [T]) -> R) -> R {
    use std::any::{Any, TypeId};
    use std::cell::RefCell;
    thread_local! {
        static F32: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
        static F64: RefCell<Vec<f64>> = const { RefCell::new(Vec::new()) };
    }
    fn on<T: Float, U: 'static, R>(cell: &RefCell<Vec<U>>, len: usize, f: impl FnOnce(&mut [T]) -> R) -> R {
        let Ok(mut buffer) = cell.try_borrow_mut() else {
            return f(&mut vec![T::zero(); len]);
        };
        let buffer = (&mut *buffer as &mut dyn Any).downcast_mut::<Vec<T>>().expect("U is T");
        if buffer.len() < len {
            buffer.resize(len, T::zero());
        }
        f(&mut buffer[..len])
    }
    // `Float` is sealed to f32 and f64.
    if TypeId::of::<T>() == TypeId::of::<f32>() {
        F32.with(|c| on(c, len, f))
    } else {
        F64.with(|c| on(c, len, f))
    }
}

/// Makes the calling thread's own state of the matrix kernels: the `gemm` crate keeps one
/// buffer the size of the L2 cache per thread, made on the thread's first product. A helper
/// thread calls this when it starts, so that its first piece of a step allocates no more than
/// any later one (the allocation count of a step must not depend on which thread happened to
/// run which piece: `tests/helper_warm_up.rs`).
pub(crate) fn warm_up_thread() {
    // 64 × 64 factors, the left one contiguous by columns: the kernels' path through that
    // buffer (64 is a multiple of every SIMD width they use). Small enough for one thread.
    let a = nalgebra::DMatrix::<f32>::zeros(64, 64);
    let mut c = nalgebra::DMatrix::<f32>::zeros(64, 64);
    gemm(1.0, &a, Op::Id, &a, Op::Id, 0.0, &mut c);
}

/// Resizes `buffer` to `rows × cols` only when its shape differs, so a steady batch size never
/// allocates. New contents are unspecified (zeros after a resize).
pub(crate) fn ensure_shape<T: Float>(buffer: &mut nalgebra::DMatrix<T>, rows: usize, cols: usize) {
    if buffer.shape() != (rows, cols) {
        *buffer = nalgebra::DMatrix::zeros(rows, cols);
    }
}

/// `value`, or 0 if it is subnormal (NaN and ±inf pass).
///
/// x86 CPUs compute with subnormal numbers through a microcode assist, tens to hundreds of
/// times slower than with normal ones, and the penalty lands on whole vector instructions of
/// the matrix products. Values this small carry nothing a gradient or an optimizer state
/// needs, so the passes that produce them (the losses' gradients, a layer's `δ`, optimizer
/// state) store 0 instead (README, Performance).
#[inline(always)]
pub(crate) fn flush_subnormal<T: Float>(value: T) -> T {
    if value.abs() < T::MIN_NORMAL { T::zero() } else { value }
}

/// Replaces every subnormal value of `values` by 0 (NaN and ±inf are kept, −0 may become +0):
/// what this crate's own passes do to the gradients and optimizer state they store, since x86
/// CPUs compute with subnormal numbers many times slower, in every product that reads them.
/// For a custom [`Module`](crate::Module) whose `backward` writes a `dL/d(input)` or a
/// gradient that can decay that far, such as a saturating activation's.
///
/// ```
/// let mut grad = [0.5f32, 1e-39, -3e-42, 0.0, f32::NEG_INFINITY];
/// feedforward::linalg::flush_subnormals(&mut grad);
/// assert_eq!(grad, [0.5, 0.0, 0.0, 0.0, f32::NEG_INFINITY]);
/// ```
pub fn flush_subnormals<T: Float>(values: &mut [T]) {
    simd(
        #[inline(always)]
        || values.iter_mut().for_each(|v| *v = flush_subnormal(*v)),
    );
}

/// The smallest `|g|` whose weighted square `weight·g·g` is a normal number: below it
/// [`square_input`] gives 0.
#[inline]
pub(crate) fn square_limit<T: Float>(weight: T) -> T {
    (T::MIN_NORMAL / weight).sqrt()
}

/// `g`, or 0 where `|g| < limit` (from [`square_limit`]): the input of a weighted square whose
/// result would be subnormal. Zeroing the *input* matters: a vectorized select computes both
/// sides, so squaring first and flushing the result would still pay the assist. A term below
/// the smallest normal number is dropped, as the state it is added to would be flushed
/// ([`flush_subnormal`]).
#[inline(always)]
pub(crate) fn square_input<T: Float>(g: T, limit: T) -> T {
    if g.abs() < limit { T::zero() } else { g }
}

/// Runs `f` compiled for AVX2 + FMA when the CPU has them, so that elementwise loops inlined
/// into it vectorize 8 lanes wide instead of the x86-64 baseline's 4; elsewhere runs it as is.
/// Results are bit-identical either way (Rust never fuses `a*b + c` on its own).
///
/// Pass the closure as `simd(#[inline(always)] || …)`: it is called from two places (the AVX2
/// wrapper and the fallback), and without the attribute LLVM may keep a large loop out of line,
/// compiled for the baseline (measured four times slower on the L2 pass).
#[inline(always)]
pub(crate) fn simd<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY (of calling it): only on a CPU with AVX2 and FMA, checked by the caller below.
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
pub(crate) const LANES: usize = 16;

/// `Σ vᵢ²`, vectorized, on both cores for long slices.
pub(crate) fn sum_of_squares<T: Float>(values: &[T]) -> T {
    let limit = square_limit(T::one());
    let block = |v: Cols<'_, T>| {
        lane_total(v.0, |v| {
            let v = square_input(v, limit);
            v * v
        })
    };
    for_column_blocks(values.len(), 1, Cols(values, 1), &block, &|a, b| a + b)
}

/// `grad += alpha·value`, returning `Σ valueᵢ²`: the L2 penalty's gradient and its value from
/// one pass over the tensor.
pub(crate) fn add_scaled_sum_squares<T: Float>(grad: &mut [T], alpha: T, value: &[T]) -> T {
    assert_eq!(grad.len(), value.len(), "add_scaled_sum_squares: lengths differ");
    let block = |(g, w): (ColsMut<'_, T>, Cols<'_, T>)| {
        simd(
            #[inline(always)]
            || add_scaled_sum_squares_block(g.0, alpha, w.0),
        )
    };
    let data = (ColsMut(grad, 1), Cols(value, 1));
    for_column_blocks(value.len(), 1, data, &block, &|a, b| a + b)
}

/// `Σ f(xᵢ)` in [`LANES`] running sums added at the end: a strict left-to-right sum of floats
/// cannot be vectorized, this can (and is the same on any machine).
#[inline(always)]
pub(crate) fn lane_sum<T: Float>(x: &[T], f: impl Fn(T) -> T) -> T {
    let mut acc = [T::zero(); LANES];
    // `chunks_exact` and its remainder, not `chunks`: the fixed-length inner loop is what
    // vectorizes (three times faster here).
    let chunks = x.chunks_exact(LANES);
    let rest = chunks.remainder();
    for chunk in chunks {
        for (a, &v) in acc.iter_mut().zip(chunk) {
            *a += f(v);
        }
    }
    for (a, &v) in acc.iter_mut().zip(rest) {
        *a += f(v);
    }
    acc.iter().fold(T::zero(), |s, &a| s + a)
}

#[inline(always)]
fn add_scaled_sum_squares_block<T: Float>(grad: &mut [T], alpha: T, value: &[T]) -> T {
    let mut acc = [T::zero(); LANES];
    let whole = value.len() - value.len() % LANES;
    let ((g, g_rest), (w, w_rest)) = (grad.split_at_mut(whole), value.split_at(whole));
    for (g, w) in g.chunks_exact_mut(LANES).zip(w.chunks_exact(LANES)) {
        // Sums into a local array, stored once: with every load of the chunk before its one
        // store, LLVM need not prove `g` and `w` apart to vectorize (it could not: scalar code).
        let mut sum = [T::zero(); LANES];
        for lane in 0..LANES {
            sum[lane] = g[lane] + alpha * w[lane];
            acc[lane] += w[lane] * w[lane];
        }
        g.copy_from_slice(&sum);
    }
    for (lane, (g, &w)) in g_rest.iter_mut().zip(w_rest).enumerate() {
        *g += alpha * w;
        acc[lane] += w * w;
    }
    acc.iter().fold(T::zero(), |s, &a| s + a)
}

/// `f(out column, input column)` for every sample (column, `rows` long) of two column-major
/// buffers of the same shape: [`for_each_column_with`] with one input.
#[inline(always)]
pub(crate) fn for_each_column<T: Float>(
    out: &mut [T],
    input: &[T],
    rows: usize,
    f: impl Fn(&mut [T], &[T]) + Sync,
) {
    for_each_column_with(
        out,
        input,
        input,
        rows,
        #[inline(always)]
        |out, input, _| f(out, input),
    );
}

/// `f(out column, a column, b column)` for every sample (column, `rows` long) of three
/// column-major buffers of the same shape: the columns cut into blocks over the thread team,
/// each block compiled wide ([`simd`]). Pass `f` as `#[inline(always)] |out, a, b| …`, so that
/// it vectorizes inside the wide code.
#[inline(always)]
pub(crate) fn for_each_column_with<T: Float>(
    out: &mut [T],
    a: &[T],
    b: &[T],
    rows: usize,
    f: impl Fn(&mut [T], &[T], &[T]) + Sync,
) {
    assert!(out.len() == a.len() && a.len() == b.len(), "for_each_column_with: lengths differ");
    let columns = a.len().checked_div(rows).unwrap_or(0);
    let block = |(out, (a, b)): (ColsMut<'_, T>, (Cols<'_, T>, Cols<'_, T>))| {
        simd(
            #[inline(always)]
            || {
                let inputs = a.0.chunks_exact(rows).zip(b.0.chunks_exact(rows));
                out.0.chunks_exact_mut(rows).zip(inputs).for_each(|(o, (a, b))| f(o, a, b));
            },
        );
    };
    let data = (ColsMut(out, rows), (Cols(a, rows), Cols(b, rows)));
    for_column_blocks(columns, rows, data, &block, &|(), ()| ());
}

/// `target[i] = values[i]`, with subnormals flushed to zero: per-feature gradient sums stored
/// into a parameter's gradient.
pub(crate) fn store_flushed<T: Float>(target: &mut [T], values: &[T]) {
    assert_eq!(target.len(), values.len(), "store_flushed: lengths differ");
    target.iter_mut().zip(values).for_each(|(t, &v)| *t = flush_subnormal(v));
}

/// Memory a module's passes reuse from call to call, so that a steady batch size allocates
/// nothing once warm. It carries nothing between calls: a clone starts empty, any two are
/// `==`, and `{:?}` shows no values.
#[derive(Default)]
pub(crate) struct Scratch<T>(Vec<T>);

impl<T: Float> Scratch<T> {
    /// `len` values of unspecified contents, grown (once) if needed.
    pub(crate) fn take(&mut self, len: usize) -> &mut [T] {
        if self.0.len() < len {
            self.0.resize(len, T::zero());
        }
        &mut self.0[..len]
    }
}

impl<T> Clone for Scratch<T> {
    fn clone(&self) -> Self {
        Scratch(Vec::new())
    }
}

impl<T> PartialEq for Scratch<T> {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl<T> fmt::Debug for Scratch<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Scratch")
    }
}

/// `K` per-row sums over the samples (columns) of two column-major buffers of the same shape:
/// `add(sums, a column, b column)` adds one sample's terms into `sums` (`K` slices of `rows`).
/// The columns are cut into blocks by shape alone, each block sums its columns in order into
/// a slot of `scratch` of its own, and the blocks' slots are added in block order: the sums do
/// not depend on the thread count. They are returned in `scratch`, which is why they are
/// mutable. Pass `add` as `#[inline(always)] |sums, a, b| …`.
#[inline(always)]
pub(crate) fn column_sums<'s, T: Float, const K: usize>(
    a: &[T],
    b: &[T],
    rows: usize,
    scratch: &'s mut Scratch<T>,
    add: impl Fn(&mut [&mut [T]; K], &[T], &[T]) + Sync,
) -> [&'s mut [T]; K] {
    assert_eq!(a.len(), b.len(), "column_sums: lengths differ");
    let width = K * rows;
    if width == 0 {
        return std::array::from_fn(|_| &mut [][..]);
    }
    let slots = std::sync::Mutex::new(scratch.take(width * MAX_BLOCKS).chunks_exact_mut(width));
    let block = |(a, b): (Cols<'_, T>, Cols<'_, T>)| {
        let slot = slots.lock().ok().and_then(|mut s| s.next());
        let slot = slot.expect("one slot per block, at most MAX_BLOCKS blocks");
        slot.fill(T::zero());
        let mut parts = slot.chunks_exact_mut(rows);
        let mut sums: [&mut [T]; K] = std::array::from_fn(|_| parts.next().expect("K sums of `rows`"));
        simd(
            #[inline(always)]
            || a.0.chunks_exact(rows).zip(b.0.chunks_exact(rows)).for_each(|(a, b)| add(&mut sums, a, b)),
        );
        slot
    };
    let combine = |left: &'s mut [T], right: &'s mut [T]| {
        update(left, right, |l, r| l + r);
        left
    };
    let columns = a.len() / rows;
    let total = for_column_blocks(columns, rows, (Cols(a, rows), Cols(b, rows)), &block, &combine);
    let mut parts = total.chunks_exact_mut(rows);
    std::array::from_fn(|_| parts.next().expect("K sums of `rows`"))
}

/// `out[i] = f(a[i])`, in chunks the compiler vectorizes (see [`map2`]).
#[inline(always)]
pub(crate) fn map1<T: Float>(out: &mut [T], a: &[T], f: impl Fn(T) -> T) {
    map2(out, a, a, |a, _| f(a));
}

/// `out[i] = f(a[i], b[i])`, in chunks the compiler vectorizes (see [`map3`]).
#[inline(always)]
pub(crate) fn map2<T: Float>(out: &mut [T], a: &[T], b: &[T], f: impl Fn(T, T) -> T) {
    map3(out, a, b, b, |a, b, _| f(a, b));
}

/// `out[i] = f(a[i], b[i], c[i])`, in chunks the compiler vectorizes: each chunk's results go
/// to a local array stored once, after every load, so LLVM need not prove `out` apart from the
/// inputs (it cannot, once the slices have been inlined away from their `noalias` arguments).
#[inline(always)]
pub(crate) fn map3<T: Float>(out: &mut [T], a: &[T], b: &[T], c: &[T], f: impl Fn(T, T, T) -> T) {
    let len = out.len();
    assert!(a.len() == len && b.len() == len && c.len() == len, "map3: lengths differ");
    let whole = len - len % LANES;
    let (o, o_rest) = out.split_at_mut(whole);
    let chunks = a.chunks_exact(LANES).zip(b.chunks_exact(LANES)).zip(c.chunks_exact(LANES));
    for (o, ((a, b), c)) in o.chunks_exact_mut(LANES).zip(chunks) {
        let mut r = [T::zero(); LANES];
        for lane in 0..LANES {
            r[lane] = f(a[lane], b[lane], c[lane]);
        }
        o.copy_from_slice(&r);
    }
    let rest = a[whole..].iter().zip(&b[whole..]).zip(&c[whole..]);
    for (o, ((&a, &b), &c)) in o_rest.iter_mut().zip(rest) {
        *o = f(a, b, c);
    }
}

/// `x[i] = f(x[i], other[i])`, in place, in chunks the compiler vectorizes (see [`map2`]).
#[inline(always)]
pub(crate) fn update<T: Float>(x: &mut [T], other: &[T], f: impl Fn(T, T) -> T) {
    assert_eq!(x.len(), other.len(), "update: lengths differ");
    let whole = x.len() - x.len() % LANES;
    let (x_whole, x_rest) = x.split_at_mut(whole);
    for (x, o) in x_whole.chunks_exact_mut(LANES).zip(other.chunks_exact(LANES)) {
        let mut r = [T::zero(); LANES];
        for lane in 0..LANES {
            r[lane] = f(x[lane], o[lane]);
        }
        x.copy_from_slice(&r);
    }
    for (x, &o) in x_rest.iter_mut().zip(&other[whole..]) {
        *x = f(*x, o);
    }
}

/// `(x[i], out[i]) = f(x[i], other[i])`: [`update`] with a second output.
#[inline(always)]
pub(crate) fn update_pair<T: Float>(x: &mut [T], out: &mut [T], other: &[T], f: impl Fn(T, T) -> (T, T)) {
    let len = x.len();
    assert!(out.len() == len && other.len() == len, "update_pair: lengths differ");
    let whole = len - len % LANES;
    let (x_whole, x_rest) = x.split_at_mut(whole);
    let (out_whole, out_rest) = out.split_at_mut(whole);
    let chunks = x_whole.chunks_exact_mut(LANES).zip(out_whole.chunks_exact_mut(LANES));
    for ((x, out), o) in chunks.zip(other.chunks_exact(LANES)) {
        let (mut r, mut s) = ([T::zero(); LANES], [T::zero(); LANES]);
        for lane in 0..LANES {
            (r[lane], s[lane]) = f(x[lane], o[lane]);
        }
        x.copy_from_slice(&r);
        out.copy_from_slice(&s);
    }
    for ((x, out), &o) in x_rest.iter_mut().zip(out_rest).zip(&other[whole..]) {
        (*x, *out) = f(*x, o);
    }
}

/// `Σ f(vᵢ)`, accumulated in `LANES` partial sums (element `i` goes to lane `i % LANES`):
/// [`lane_sum`] compiled wide. Written out rather than as `simd(|| lane_sum(values, f))`,
/// which measured the training step slower (README, Performance).
#[inline(always)]
fn lane_total<T: Float>(values: &[T], f: impl Fn(T) -> T) -> T {
    simd(
        #[inline(always)]
        || {
            let mut acc = [T::zero(); LANES];
            // `chunks_exact` and its remainder, not `chunks`: the fixed-length inner loop is what
            // vectorizes (three times faster here).
            let chunks = values.chunks_exact(LANES);
            let rest = chunks.remainder();
            for chunk in chunks {
                for (a, &v) in acc.iter_mut().zip(chunk) {
                    *a += f(v);
                }
            }
            for (a, &v) in acc.iter_mut().zip(rest) {
                *a += f(v);
            }
            acc.iter().fold(T::zero(), |s, &a| s + a)
        },
    )
}

/// Whether every value is finite. Vectorized: `v·0` is 0 for every finite `v` and NaN for ±inf
/// and NaN, so the sum stays 0 exactly when all values are finite.
#[inline(always)]
pub(crate) fn all_finite<T: Float>(values: &[T]) -> bool {
    lane_total(values, |v| v * T::zero()) == T::zero()
}

/// Position and value of the first non-finite entry of `values`, if any. The common case, all
/// finite, is one vectorized pass on every thread; only a failing tensor is scanned again.
pub(crate) fn first_non_finite<T: Float>(values: &[T]) -> Option<(usize, T)> {
    let block = |v: Cols<'_, T>| all_finite(v.0);
    if for_column_blocks(values.len(), 1, Cols(values, 1), &block, &|a, b| a && b) {
        return None;
    }
    values.iter().position(|v| !v.is_finite()).map(|k| (k, values[k]))
}
