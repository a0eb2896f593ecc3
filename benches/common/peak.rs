//! The machine's own FMA peak: independent chains of fused multiply-adds on registers, nothing
//! read from memory. A step's GFLOP/s divided by this (same run, same thread count) is the
//! fraction of the peak it reaches (`scripts/roofline.py`).
//!
//! Each flavour is the widest vectors of one instruction set: AVX-512 where the CPU has it,
//! AVX2 + FMA else; the ratio the crate's targets use is against the widest one the CPU has.
//! Twelve chains of 8 or 16 lanes (f32; half as many lanes in f64) keep two FMA units with a
//! latency of up to 6 cycles busy. The iteration is long (tens of ms per thread) so that
//! starting the threads costs well under 1% of it.

use criterion::{BenchmarkId, Criterion, Throughput};
use std::hint::black_box;
use std::time::Duration;

/// Independent accumulators per thread.
const CHAINS: usize = 12;
/// Rounds of `CHAINS` vector FMAs per thread and iteration.
const ROUNDS: usize = 4_000_000;

/// One FMA kernel: its name, the lanes of its vector, and the loop itself.
struct Kernel {
    name: &'static str,
    lanes: usize,
    run: fn(usize) -> f64,
}

// The AVX-512 intrinsics are stable since Rust 1.89: the benchmarks need it, while the library
// itself keeps its MSRV of 1.88.
#[cfg(target_arch = "x86_64")]
#[allow(clippy::incompatible_msrv)]
mod x86 {
    use super::CHAINS;
    use std::arch::x86_64::*;

    /// `x = x·a + b` on `CHAINS` vectors, `rounds` times; returns their sum, so nothing is
    /// dead code. `a < 1` keeps every `x` near `b / (1 − a)`: no overflow, no subnormals.
    macro_rules! fma_loop {
        ($name:ident, $features:literal, $t:ty, $lanes:literal, $splat:ident, $fmadd:ident, $store:ident) => {
            #[target_feature(enable = $features)]
            unsafe fn $name(rounds: usize) -> f64 {
                // Opaque to the compiler, which would otherwise see `x = 1` as a fixed point
                // of the loop and drop it.
                let (a, b, x) = std::hint::black_box((0.999, 1e-3, 0.5));
                let (a, b) = ($splat(a), $splat(b));
                let mut acc = [$splat(x); CHAINS];
                for _ in 0..rounds {
                    for x in &mut acc {
                        *x = $fmadd(*x, a, b);
                    }
                }
                let mut total = 0.0;
                for x in acc {
                    let mut lanes = [0.0 as $t; $lanes];
                    // SAFETY: `lanes` holds exactly one vector.
                    unsafe { $store(lanes.as_mut_ptr(), x) };
                    total += lanes.iter().map(|&v| f64::from(v)).sum::<f64>();
                }
                total
            }
        };
    }

    fma_loop!(avx512_f32, "avx512f", f32, 16, _mm512_set1_ps, _mm512_fmadd_ps, _mm512_storeu_ps);
    fma_loop!(avx512_f64, "avx512f", f64, 8, _mm512_set1_pd, _mm512_fmadd_pd, _mm512_storeu_pd);
    fma_loop!(avx2_f32, "avx2,fma", f32, 8, _mm256_set1_ps, _mm256_fmadd_ps, _mm256_storeu_ps);
    fma_loop!(avx2_f64, "avx2,fma", f64, 4, _mm256_set1_pd, _mm256_fmadd_pd, _mm256_storeu_pd);

    /// The kernels this CPU can run.
    pub(super) fn kernels() -> Vec<super::Kernel> {
        let mut out = Vec::new();
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            // SAFETY (both closures): the CPU has AVX2 and FMA, checked just above.
            out.push(super::Kernel { name: "f32_avx2", lanes: 8, run: |r| unsafe { avx2_f32(r) } });
            out.push(super::Kernel { name: "f64_avx2", lanes: 4, run: |r| unsafe { avx2_f64(r) } });
        }
        if is_x86_feature_detected!("avx512f") {
            // SAFETY (both closures): the CPU has AVX-512F, checked just above.
            out.push(super::Kernel { name: "f32_avx512", lanes: 16, run: |r| unsafe { avx512_f32(r) } });
            out.push(super::Kernel { name: "f64_avx512", lanes: 8, run: |r| unsafe { avx512_f64(r) } });
        }
        out
    }
}

fn kernels() -> Vec<Kernel> {
    #[cfg(target_arch = "x86_64")]
    return x86::kernels();
    #[cfg(not(target_arch = "x86_64"))]
    Vec::new()
}

/// `peak/<kernel>/<threads>`: every kernel on 1 thread and on every core; throughput in
/// elements is flops, so criterion's `Gelem/s` reads as GFLOP/s.
pub fn bench(c: &mut Criterion) {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let mut group = c.benchmark_group("peak");
    group.sample_size(10).warm_up_time(Duration::from_millis(300)).measurement_time(Duration::from_secs(2));
    for kernel in kernels() {
        for threads in [1, cores].into_iter().collect::<std::collections::BTreeSet<_>>() {
            let flops = (threads * ROUNDS * CHAINS * kernel.lanes * 2) as u64;
            group.throughput(Throughput::Elements(flops));
            group.bench_function(BenchmarkId::new(kernel.name, threads), |b| {
                b.iter(|| {
                    std::thread::scope(|scope| {
                        let others: Vec<_> =
                            (1..threads).map(|_| scope.spawn(|| (kernel.run)(black_box(ROUNDS)))).collect();
                        let mine = (kernel.run)(black_box(ROUNDS));
                        others.into_iter().map(|t| t.join().unwrap()).sum::<f64>() + mine
                    })
                })
            });
        }
    }
    group.finish();
}
