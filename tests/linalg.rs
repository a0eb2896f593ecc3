//! Every strided fast path of `gemm` equals the naive product.

use feedforward::linalg::{Op, gemm};
use nalgebra::DMatrix;
use proptest::prelude::*;

fn naive(a: &DMatrix<f64>, b: &DMatrix<f64>) -> DMatrix<f64> {
    DMatrix::from_fn(a.nrows(), b.ncols(), |i, j| (0..a.ncols()).map(|k| a[(i, k)] * b[(k, j)]).sum())
}

fn matrix(rows: usize, cols: usize, seed: usize) -> DMatrix<f64> {
    DMatrix::from_fn(rows, cols, |i, j| (((i * 31 + j * 17 + seed * 7) % 23) as f64 - 11.0) / 7.0)
}

proptest! {
    #[test]
    fn all_transpose_combinations(m in 1usize..40, k in 1usize..40, n in 1usize..40, alpha in -2.0f64..2.0, beta in -2.0f64..2.0) {
        let a = matrix(m, k, 1);
        let b = matrix(k, n, 2);
        let c0 = matrix(m, n, 3);
        let expect = naive(&a, &b) * alpha + &c0 * beta;
        let at = a.transpose();
        let bt = b.transpose();
        for (x, op_a) in [(&a, Op::Id), (&at, Op::T)] {
            for (y, op_b) in [(&b, Op::Id), (&bt, Op::T)] {
                let mut c = c0.clone();
                gemm(alpha, x, op_a, y, op_b, beta, &mut c);
                prop_assert!((&c - &expect).amax() < 1e-9, "{:?} {:?}", op_a, op_b);
            }
        }
    }
}

#[test]
fn beta_zero_ignores_old_contents_and_f32_matches() {
    let a = matrix(300, 200, 4).map(|v| v as f32);
    let b = matrix(200, 150, 5).map(|v| v as f32);
    let mut c = DMatrix::from_element(300, 150, f32::NAN);
    gemm(1.0, &a, Op::Id, &b, Op::Id, 0.0, &mut c);
    let expect = naive(&a.map(f64::from), &b.map(f64::from));
    assert!((c.map(f64::from) - expect).amax() < 1e-3);
}

#[test]
fn works_on_views() {
    let a = matrix(10, 12, 6);
    let b = matrix(12, 9, 7);
    let mut c = DMatrix::zeros(10, 20);
    gemm(1.0, &a.columns(0, 12), Op::Id, &b.rows(0, 12), Op::Id, 0.0, &mut c.columns_mut(5, 9));
    assert!((c.columns(5, 9) - naive(&a, &b)).amax() < 1e-12);
    assert_eq!(c.columns(0, 5).amax(), 0.0);
}

#[test]
#[should_panic(expected = "gemm")]
fn nonconforming_shapes_panic_as_a_documented_invariant() {
    let mut c = DMatrix::zeros(2, 2);
    gemm(1.0, &matrix(2, 3, 0), Op::Id, &matrix(2, 2, 0), Op::Id, 0.0, &mut c);
}

/// Products big enough to be cut between threads (by rows when `op(a)` is the larger factor, by
/// columns otherwise or when `k` is the smallest dimension, along `k` when it is at least
/// eight times the larger of the others), on strided views, with every transposition: still
/// the naive product, and the same bits on one thread as on several.
#[test]
fn products_cut_between_threads_equal_the_naive_product_and_each_other() {
    let cut_along_k = [(40, 3000, 30), (17, 5001, 64)];
    for (m, k, n) in
        [(300, 90, 70), (70, 90, 300), (129, 200, 33), (300, 40, 120)].into_iter().chain(cut_along_k)
    {
        let a = matrix(m, k, 8);
        let b = matrix(k, n, 9);
        let c0 = matrix(m + 3, n + 2, 10);
        let expect = naive(&a, &b) * 0.5 - c0.view((2, 1), (m, n)) * 2.0;
        let (at, bt) = (a.transpose(), b.transpose());
        for (x, op_a) in [(&a, Op::Id), (&at, Op::T)] {
            for (y, op_b) in [(&b, Op::Id), (&bt, Op::T)] {
                let run = |threads| {
                    feedforward::linalg::set_threads(threads);
                    let mut c = c0.clone();
                    gemm(0.5, x, op_a, y, op_b, -2.0, &mut c.view_mut((2, 1), (m, n)));
                    feedforward::linalg::set_threads(0);
                    c
                };
                let (one, many) = (run(1), run(3));
                assert_eq!(
                    run(2),
                    many,
                    "{m}x{k}x{n} {op_a:?} {op_b:?}: bits differ between 2 and 3 threads"
                );
                assert!((one.view((2, 1), (m, n)) - &expect).amax() < 1e-9, "{m}x{k}x{n} {op_a:?} {op_b:?}");
                assert_eq!(one, many, "{m}x{k}x{n} {op_a:?} {op_b:?}: bits differ with the thread count");
                // Nothing outside the view was touched.
                assert_eq!(one.rows(0, 2), c0.rows(0, 2));
                assert_eq!(one.column(0), c0.column(0));
            }
        }
    }
}
