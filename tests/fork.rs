//! A child made by `fork()` after the thread team has started has none of its parent's helper
//! threads: it must start its own rather than wait for them forever.
#![cfg(unix)]

use feedforward::linalg::{Op, gemm};
use nalgebra::DMatrix;
use std::time::{Duration, Instant};

/// Big enough to be cut between threads.
fn product_sum() -> f64 {
    let a = DMatrix::<f64>::from_fn(300, 200, |i, j| ((i + j) % 7) as f64);
    let b = DMatrix::<f64>::from_fn(200, 100, |i, j| ((i * j) % 5) as f64);
    let mut c = DMatrix::zeros(300, 100);
    gemm(1.0, &a, Op::Id, &b, Op::Id, 0.0, &mut c);
    c.sum()
}

#[test]
fn a_forked_child_still_multiplies() {
    feedforward::linalg::set_threads(2);
    let expect = product_sum(); // starts the helper thread
    // SAFETY: the child only runs the product and exits without unwinding or running
    // destructors; the parent only waits for it.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        let code = if product_sum() == expect { 0 } else { 1 };
        unsafe { libc::_exit(code) };
    }
    assert!(pid > 0, "fork failed");
    let start = Instant::now();
    let mut status = 0;
    loop {
        // SAFETY: plain system calls on our own child.
        if unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) } == pid {
            break;
        }
        if start.elapsed() > Duration::from_secs(30) {
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, &mut status, 0);
            }
            panic!("the forked child hung in a matrix product");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0, "child status {status}");
}
