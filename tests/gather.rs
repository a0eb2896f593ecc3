//! `train::gather_columns`, the minibatch copy of `fit`: the right columns in the right order,
//! for any batch size and on any thread count.

use feedforward::linalg::set_threads;
use feedforward::train::gather_columns;
use nalgebra::DMatrix;

#[test]
fn gathers_the_named_columns_in_order_on_any_thread_count() {
    let matrix = DMatrix::from_fn(784, 1000, |i, j| (i * 1000 + j) as f32);
    // Repeats, reversed runs and a batch large enough to be cut into blocks.
    let indices: Vec<usize> = (0..300).map(|k| (k * 7919) % 1000).chain([999, 0, 0, 5]).collect();
    let expected = DMatrix::from_fn(784, indices.len(), |i, j| matrix[(i, indices[j])]);
    for threads in [1, 2, 3] {
        set_threads(threads);
        // A batch of another shape is resized; one of the same shape is overwritten.
        let mut batch = DMatrix::from_element(3, 3, f32::NAN);
        gather_columns(&matrix, &indices, &mut batch);
        assert_eq!(batch, expected, "{threads} threads");
        gather_columns(&matrix, &indices, &mut batch);
        assert_eq!(batch, expected, "{threads} threads, reused buffer");
    }
    set_threads(0);
}

#[test]
fn empty_shapes_are_fine() {
    let mut batch = DMatrix::<f64>::zeros(0, 0);
    gather_columns(&DMatrix::<f64>::zeros(0, 10), &[3, 4], &mut batch);
    assert_eq!(batch.shape(), (0, 2));
    gather_columns(&DMatrix::<f64>::zeros(5, 10), &[], &mut batch);
    assert_eq!(batch.shape(), (5, 0));
}
