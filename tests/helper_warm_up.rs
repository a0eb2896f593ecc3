//! A helper thread's first matrix product allocates what its later ones do. In a file of its
//! own: the helpers must not have run a product before this test (a fresh process).
#![cfg(feature = "threading")]

use feedforward::Network;
use feedforward::linalg::{Op, gemm};
use nalgebra::DMatrix;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: defers to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn count(f: impl FnOnce()) -> usize {
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    f();
    ALLOCATIONS.load(Ordering::SeqCst) - before
}

/// The matrix kernels keep a per-thread buffer, made on a thread's first product. A helper
/// thread that had run no product yet used to make it during a later step, one allocation more
/// than the step before it: a step's count depended on which thread had happened to run
/// which piece (the flaky `left: 131, right: 130` of the test above). Helpers now make it when
/// they start. Here they start on work with no product in it, then run their first product.
#[test]
fn a_helpers_first_product_allocates_what_its_later_ones_do() {
    // Helpers start on a ReLU pass (no product) over a batch big enough to be cut up.
    feedforward::linalg::set_threads(2);
    let relu_only = Network::<f32>::new(64).push(feedforward::Relu).unwrap();
    let x = DMatrix::<f32>::from_fn(64, 4096, |i, j| (i as f32 - j as f32) / 100.0);
    relu_only.output(&x).unwrap();
    // The calling thread has its buffer already (earlier products on it, or this one).
    let a = DMatrix::<f32>::from_element(512, 512, 0.5);
    let mut c = DMatrix::<f32>::zeros(512, 512);
    feedforward::linalg::set_threads(1);
    gemm(1.0, &a, Op::Id, &a, Op::Id, 0.0, &mut c);
    feedforward::linalg::set_threads(2);
    let first = count(|| gemm(1.0, &a, Op::Id, &a, Op::Id, 0.0, &mut c));
    let second = count(|| gemm(1.0, &a, Op::Id, &a, Op::Id, 0.0, &mut c));
    feedforward::linalg::set_threads(0);
    assert_eq!(first, second, "the helper's first product allocated more than its second");
}
