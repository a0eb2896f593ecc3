//! The crate's own small thread team, and the column-block helper built on it.
//!
//! Why not rayon (or the `gemm` crate's rayon mode): a training step at batch 128 is a dozen
//! parallel pieces of 5–300 µs each. Handing each to a pool from a thread outside it costs a
//! futex wake-up and a sleep per piece, and measured slower than one thread. Here the calling
//! thread does one share of the work itself and the helpers *spin* for a short while after each
//! piece before parking, so back-to-back pieces start within a microsecond.
//!
//! [`run`] is the one primitive: `f(0), …, f(parts − 1)` on the caller and the helpers. It is
//! scoped (returns only when every part is done), so `f` may borrow from the caller's stack.
//! A call made while the team is busy (from inside a part, or from a second user thread) runs
//! its parts on the calling thread instead: correct, just not parallel.

use std::cell::UnsafeCell;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering::*};
use std::sync::{Mutex, OnceLock};
use std::thread::Thread;
use std::time::{Duration, Instant};

/// Thread limit set by [`set_threads`]; 0 means every core.
static THREADS: AtomicUsize = AtomicUsize::new(0);

/// How long an idle helper spins before it parks. Longer than the gaps inside a training step
/// (a few µs of single-threaded work between products), short enough not to hold a core for
/// long once training stops.
const SPIN: Duration = Duration::from_micros(300);

/// How long the caller spins waiting for the helpers before it sleeps. Waits in a quiet
/// machine are a few µs (uneven shares); longer ones mean a helper is not running, typically
/// descheduled because other programs keep the cores busy, and spinning on would keep it off
/// this core (a step at batch 128 beside two busy loops: 6 ms spinning, 1.2–2.9 ms sleeping,
/// 1.2 ms single-threaded).
const WAIT_SPIN: Duration = Duration::from_micros(50);

/// Sets how many threads (the caller included) matrix products and large elementwise passes
/// use, process-wide: `1` keeps everything on the calling thread, `0` (the default) uses every
/// core. Without the `threading` feature everything runs on the calling thread regardless.
///
/// Results do not depend on it: work is cut into pieces by shape alone, and reductions combine
/// the pieces in a fixed order.
pub fn set_threads(threads: usize) {
    THREADS.store(threads, Relaxed);
}

/// Threads to use, the caller included.
pub(crate) fn threads() -> usize {
    if !cfg!(feature = "threading") {
        return 1;
    }
    match THREADS.load(Relaxed) {
        0 => cores(),
        n => n,
    }
}

fn cores() -> usize {
    static CORES: OnceLock<usize> = OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// A job as the helpers see it: a borrowed closure with its lifetime erased. [`run`] does not
/// return before every helper has finished with it, which is what makes the erasure sound.
type Job = *const (dyn Fn(usize) + Sync + 'static);

struct Team {
    /// Held (true) while a [`run`] owns the team.
    busy: AtomicBool,
    /// The current job and its part count; written only by the owner of `busy`, before it
    /// bumps the helpers' `epoch` (Release), read by helpers after they see it (Acquire).
    job: UnsafeCell<Option<(Job, usize)>>,
    /// Next part to hand out.
    next: AtomicUsize,
    /// A part panicked.
    panicked: AtomicBool,
    /// The thread that owns the current run, to wake when it sleeps waiting for the helpers.
    owner: UnsafeCell<Option<Thread>>,
    /// The owner is parked, or about to park, waiting for the helpers.
    owner_sleeping: AtomicBool,
    helpers: Mutex<Vec<&'static Helper>>,
    /// The process the helpers were started in.
    pid: AtomicU32,
}

// SAFETY: `job` and `owner` are only written by the thread holding `busy`, while no helper is
// reading them (all helpers engaged by the previous run have reported `done`, and each reads
// them before it does so), and only read by helpers between seeing a new epoch and reporting
// `done`.
unsafe impl Sync for Team {}

struct Helper {
    /// Bumped by the owner to start the helper on the current job.
    epoch: AtomicU64,
    /// Set to `epoch` by the helper when it has finished its parts.
    done: AtomicU64,
    /// The helper is parked, or about to park: the owner must unpark it.
    sleeping: AtomicBool,
    thread: OnceLock<Thread>,
}

fn team() -> &'static Team {
    static TEAM: Team = Team {
        busy: AtomicBool::new(false),
        job: UnsafeCell::new(None),
        next: AtomicUsize::new(0),
        panicked: AtomicBool::new(false),
        owner: UnsafeCell::new(None),
        owner_sleeping: AtomicBool::new(false),
        helpers: Mutex::new(Vec::new()),
        pid: AtomicU32::new(0),
    };
    &TEAM
}

/// Runs `f(0)`, …, `f(parts − 1)`, spread over up to [`threads`] threads (the caller is one of
/// them), and returns when all are done. Which thread runs which part is unspecified.
///
/// # Panics
/// If a part panics, after every other part has finished: with the same payload when it was
/// the caller's part, with a message naming a helper otherwise.
pub(crate) fn run(parts: usize, f: &(dyn Fn(usize) + Sync)) {
    let team = team();
    let wanted = threads().min(parts);
    if wanted <= 1 || team.busy.compare_exchange(false, true, Acquire, Relaxed).is_err() {
        return run_here(parts, f);
    }
    let mut helpers = team.helpers.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    // A child made by fork() has none of its parent's helper threads; waiting for them would
    // hang it. It starts its own.
    let pid = std::process::id();
    if team.pid.swap(pid, Relaxed) != pid {
        helpers.clear();
    }
    while helpers.len() < wanted - 1 {
        // Leaked on purpose: helpers live as long as the process, parked when idle.
        let helper: &'static Helper = Box::leak(Box::new(Helper {
            epoch: AtomicU64::new(0),
            done: AtomicU64::new(0),
            sleeping: AtomicBool::new(false),
            thread: OnceLock::new(),
        }));
        let spawned = std::thread::Builder::new()
            .name(format!("feedforward-{}", helpers.len() + 1))
            .spawn(move || helper_loop(helper));
        match spawned {
            Ok(handle) => {
                let _ = helper.thread.set(handle.thread().clone());
                helpers.push(helper);
            }
            // No more threads to be had: work with the ones there are.
            Err(_) => break,
        }
    }
    let engaged = &helpers[..helpers.len().min(wanted - 1)];
    // SAFETY: erasing the lifetime of `f` is sound because this function waits, below, until
    // every engaged helper has reported done before returning (even if a part panics).
    let job: Job = unsafe { std::mem::transmute::<*const (dyn Fn(usize) + Sync + '_), Job>(f) };
    // SAFETY: we hold `busy` and every helper finished the previous job (see `Team`).
    unsafe {
        *team.job.get() = Some((job, parts));
        *team.owner.get() = Some(std::thread::current());
    }
    team.next.store(0, Relaxed);
    team.panicked.store(false, Relaxed);
    for helper in engaged {
        helper.epoch.fetch_add(1, SeqCst);
        // Pairs with the helper's store of `sleeping` then load of `epoch` (both SeqCst): at
        // least one of the two sides sees the other's write, so a helper never sleeps through
        // a job.
        if helper.sleeping.load(SeqCst) {
            helper.thread.get().expect("set when spawned").unpark();
        }
    }
    let mine = run_parts(&team.next, f, parts);
    for helper in engaged {
        let epoch = helper.epoch.load(Relaxed);
        let start = Instant::now();
        let mut spins = 0u32;
        while helper.done.load(Acquire) != epoch {
            spins = spins.wrapping_add(1);
            if !spins.is_multiple_of(64) || start.elapsed() < WAIT_SPIN {
                std::hint::spin_loop();
                continue;
            }
            // Sleep rather than spin: if the helper was descheduled, spinning here would keep
            // it off this core. Same handshake as the helpers' (see `helper_loop`).
            team.owner_sleeping.store(true, SeqCst);
            if helper.done.load(SeqCst) != epoch {
                std::thread::park();
            }
            team.owner_sleeping.store(false, SeqCst);
        }
    }
    // SAFETY: as above; no helper reads `job` any more.
    unsafe { *team.job.get() = None };
    let helper_panicked = team.panicked.load(Relaxed);
    drop(helpers);
    team.busy.store(false, Release);
    if let Some(payload) = mine {
        resume_unwind(payload);
    }
    assert!(!helper_panicked, "a part run on a feedforward helper thread panicked");
}

/// Every part on the calling thread, with the same panic behaviour as the team.
fn run_here(parts: usize, f: &(dyn Fn(usize) + Sync)) {
    let next = AtomicUsize::new(0);
    if let Some(payload) = run_parts(&next, f, parts) {
        resume_unwind(payload);
    }
}

/// A caught panic's payload.
type Panic = Box<dyn std::any::Any + Send>;

/// Takes parts off the counter `next` and runs them until none are left, going on past a part
/// that panics; returns the first panic's payload.
fn run_parts(next: &AtomicUsize, f: &(dyn Fn(usize) + Sync), parts: usize) -> Option<Panic> {
    let mut first_panic = None;
    loop {
        let part = next.fetch_add(1, Relaxed);
        if part >= parts {
            return first_panic;
        }
        if let Err(payload) = catch_unwind(AssertUnwindSafe(|| f(part))) {
            first_panic.get_or_insert(payload);
        }
    }
}

fn helper_loop(helper: &'static Helper) {
    let team = team();
    let mut seen = 0;
    loop {
        let start = Instant::now();
        let mut spins = 0u32;
        loop {
            if helper.epoch.load(Acquire) != seen {
                break;
            }
            spins = spins.wrapping_add(1);
            if !spins.is_multiple_of(64) || start.elapsed() < SPIN {
                std::hint::spin_loop();
                continue;
            }
            helper.sleeping.store(true, SeqCst);
            if helper.epoch.load(SeqCst) == seen {
                std::thread::park();
            }
            helper.sleeping.store(false, SeqCst);
        }
        seen = helper.epoch.load(Acquire);
        // SAFETY: the owner wrote the job before bumping `epoch`, and keeps it alive until
        // this helper reports `done` below.
        if let Some((job, parts)) = unsafe { *team.job.get() } {
            let f = unsafe { &*job };
            // Our own handle on the owner: once `done` is stored it may move on and replace it.
            let owner = unsafe { (*team.owner.get()).clone() };
            if run_parts(&team.next, f, parts).is_some() {
                team.panicked.store(true, Relaxed);
            }
            helper.done.store(seen, SeqCst);
            if team.owner_sleeping.load(SeqCst)
                && let Some(owner) = owner
            {
                owner.unpark();
            }
        } else {
            helper.done.store(seen, SeqCst);
        }
    }
}

/// Below this many elements a block is not split further: a piece of work must be worth more
/// than the microsecond it takes to hand it over.
const BLOCK_MIN_ELEMENTS: usize = 1 << 14;
/// At most this many blocks per pass (enough to balance any core count this crate targets).
const MAX_BLOCKS: usize = 16;

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

/// A range of column indices, split along with the data it describes (so a block knows where
/// it starts).
pub(crate) struct Span(pub std::ops::Range<usize>);

impl SplitColumns for Span {
    fn split_at_column(self, col: usize) -> (Self, Self) {
        let mid = self.0.start + col;
        (Span(self.0.start..mid), Span(mid..self.0.end))
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

/// Runs `f` on blocks of the `cols` columns of `data` (on every thread of the team) and folds
/// the blocks' results with `combine`, first block to last. `rows` is the work per column: it
/// only sets how many blocks are worth making. The blocks depend only on the shape,
/// not on the thread count, so a floating-point reduction gives the same bits on every run and
/// every machine.
pub(crate) fn for_column_blocks<S, R, F, C>(cols: usize, rows: usize, data: S, f: &F, combine: &C) -> R
where
    S: SplitColumns,
    R: Send,
    F: Fn(S) -> R + Sync,
    C: Fn(R, R) -> R,
{
    let blocks = (cols * rows / BLOCK_MIN_ELEMENTS).clamp(1, MAX_BLOCKS);
    for_blocks(blocks, cols, data, f, combine)
}

/// [`for_column_blocks`] with the number of blocks given (at most [`MAX_BLOCKS`], and fewer
/// when there are fewer columns).
pub(crate) fn for_blocks<S, R, F, C>(blocks: usize, cols: usize, data: S, f: &F, combine: &C) -> R
where
    S: SplitColumns,
    R: Send,
    F: Fn(S) -> R + Sync,
    C: Fn(R, R) -> R,
{
    let blocks = blocks.clamp(1, MAX_BLOCKS).min(cols.max(1));
    if blocks == 1 {
        return f(data);
    }
    let pieces: [Mutex<Option<S>>; MAX_BLOCKS] = std::array::from_fn(|_| Mutex::new(None));
    let mut rest = data;
    for (i, piece) in pieces.iter().enumerate().take(blocks - 1) {
        let (head, tail) = rest.split_at_column(cols * (i + 1) / blocks - cols * i / blocks);
        *piece.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(head);
        rest = tail;
    }
    *pieces[blocks - 1].lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(rest);
    let results: [Mutex<Option<R>>; MAX_BLOCKS] = std::array::from_fn(|_| Mutex::new(None));
    run(blocks, &|i| {
        let piece = pieces[i].lock().ok().and_then(|mut p| p.take()).expect("each block is taken once");
        let result = f(piece);
        *results[i].lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(result);
    });
    results
        .into_iter()
        .take(blocks)
        .map(|r| r.into_inner().ok().flatten().expect("run finishes every block"))
        .reduce(combine)
        .expect("at least two blocks")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_covers_every_part_once_even_nested() {
        let hits: Vec<AtomicUsize> = (0..37).map(|_| AtomicUsize::new(0)).collect();
        run(37, &|i| {
            hits[i].fetch_add(1, Relaxed);
            // A nested call runs on the calling thread and still covers its parts.
            let inner = AtomicUsize::new(0);
            run(3, &|_| {
                inner.fetch_add(1, Relaxed);
            });
            assert_eq!(inner.load(Relaxed), 3);
        });
        assert!(hits.iter().all(|h| h.load(Relaxed) == 1));
    }

    #[test]
    fn callers_on_several_threads_each_get_every_part_once() {
        std::thread::scope(|scope| {
            for caller in 0..4 {
                scope.spawn(move || {
                    for round in 0..200 {
                        let parts = 1 + (caller + round) % 9;
                        let hits: Vec<AtomicUsize> = (0..parts).map(|_| AtomicUsize::new(0)).collect();
                        run(parts, &|i| {
                            hits[i].fetch_add(1, Relaxed);
                        });
                        assert!(hits.iter().all(|h| h.load(Relaxed) == 1), "caller {caller} round {round}");
                    }
                });
            }
        });
    }

    #[test]
    fn a_caller_that_sleeps_waiting_is_woken_by_its_helpers() {
        // Parts of uneven length: the caller is usually done long before the helper and goes
        // to sleep; a lost wake-up would hang here.
        for round in 0..20 {
            let hits: Vec<AtomicUsize> = (0..2).map(|_| AtomicUsize::new(0)).collect();
            run(2, &|i| {
                std::thread::sleep(Duration::from_micros(if i == 1 { 2000 } else { 10 }));
                hits[i].fetch_add(1, Relaxed);
            });
            assert!(hits.iter().all(|h| h.load(Relaxed) == 1), "round {round}");
        }
    }

    #[test]
    fn a_panicking_part_panics_the_caller_after_the_rest_finish() {
        let finished = AtomicUsize::new(0);
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            run(8, &|i| {
                if i == 1 || i == 5 {
                    // Long enough that both threads are likely to meet a panicking part.
                    std::thread::sleep(Duration::from_millis(1));
                    panic!("part {i}");
                }
                finished.fetch_add(1, Relaxed);
            })
        }));
        assert!(outcome.is_err());
        assert_eq!(finished.load(Relaxed), 6);
        // The team is usable afterwards.
        let count = AtomicUsize::new(0);
        run(4, &|_| {
            count.fetch_add(1, Relaxed);
        });
        assert_eq!(count.load(Relaxed), 4);
    }

    #[test]
    fn blocks_and_their_order_do_not_depend_on_the_thread_count() {
        let values: Vec<f32> = (0..100_000).map(|i| ((i * 7919) % 1000) as f32 * 1e-3).collect();
        let sum = |threads| {
            set_threads(threads);
            let s = for_column_blocks(
                values.len(),
                1,
                Cols(&values, 1),
                &|c| c.0.iter().sum::<f32>(),
                &|a, b| a + b,
            );
            set_threads(0);
            s
        };
        assert_eq!(sum(1).to_bits(), sum(2).to_bits());
    }
}
