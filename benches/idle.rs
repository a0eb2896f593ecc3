//! CPU time the parallel helpers burn once training stops: train 200 steps at batch 128, then
//! sleep 1 s and read the process's CPU time (user + system) across the sleep.
//!
//! ```text
//! cargo bench --bench idle                     # the crate's own thread team
//! cargo bench --bench idle --features rayon    # the steps run inside a rayon pool
//! ```

use feedforward::{MlpConfig, Network, Rmsprop, SoftmaxCrossEntropy};
use nalgebra::DMatrix;
use rand::SeedableRng;
use std::time::{Duration, Instant};

/// CPU time of the whole process so far.
fn cpu_time() -> Duration {
    // SAFETY: getrusage writes the struct it is given and reads nothing else.
    let usage = unsafe {
        let mut usage = std::mem::zeroed::<libc::rusage>();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let time = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    time(usage.ru_utime) + time(usage.ru_stime)
}

/// Runs `f` on a thread of a rayon pool of one thread per core (feature `rayon`; the pool lives
/// on, idle, through the sleep), or right here.
#[cfg(feature = "rayon")]
fn inside_pool(f: impl FnOnce() + Send) {
    static POOL: std::sync::OnceLock<rayon::ThreadPool> = std::sync::OnceLock::new();
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    POOL.get_or_init(|| rayon::ThreadPoolBuilder::new().num_threads(cores).build().unwrap()).install(f)
}

#[cfg(not(feature = "rayon"))]
fn inside_pool(f: impl FnOnce()) {
    f()
}

fn main() {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let mut net =
        Network::<f32>::mlp(&[784, 256, 10], MlpConfig::default(), &mut rand::rngs::StdRng::seed_from_u64(0))
            .unwrap();
    let x = DMatrix::from_fn(784, 128, |i, j| ((i * 7 + j * 13) % 256) as f32 / 255.0);
    let y: Vec<usize> = (0..128).map(|j| j % 10).collect();
    let mut opt = Rmsprop::elementwise(1e-3).unwrap();
    let train = || {
        for _ in 0..200 {
            net.train_step(&x, &SoftmaxCrossEntropy::new(), &y, &mut opt).unwrap();
        }
    };
    let started = (Instant::now(), cpu_time());
    inside_pool(train);
    let trained = (Instant::now(), cpu_time());
    std::thread::sleep(Duration::from_secs(1));
    let idle = (Instant::now(), cpu_time());
    let backend = if cfg!(feature = "rayon") { "rayon pool" } else { "feedforward's thread team" };
    println!(
        "{backend}, {cores} threads: training 200 steps took {:.0} ms wall, {:.0} ms CPU; \
         then 1 s asleep burned {:.2} ms CPU",
        (trained.0 - started.0).as_secs_f64() * 1e3,
        (trained.1 - started.1).as_secs_f64() * 1e3,
        (idle.1 - trained.1).as_secs_f64() * 1e3
    );
}
