//! The crate's own small thread team, and the column-block helper built on it.
//!
//! Why not rayon (or the `gemm` crate's rayon mode): a training step at batch 128 is a dozen
//! parallel pieces of 5–300 µs each. Handing each to a pool from a thread outside it costs a
//! futex wake-up and a sleep per piece, and measured slower than one thread; even with the
//! whole step inside a rayon pool (feature `rayon`, which runs the parts on the caller's pool)
//! a step at batch 128 took 1.29× as long, at batch 32 1.86× (README, Performance). Here the
//! calling thread does one share of the work itself and the helpers *spin* for a short while
//! after each piece before parking, so back-to-back pieces start within a microsecond.
//!
//! [`run`] is the one primitive: `f(0), …, f(parts − 1)` on the caller and the helpers. It is
//! scoped (returns only when every part is done), so `f` may borrow from the caller's stack.
//! Each thread first runs its own contiguous share of the parts (the caller the first share,
//! helper `i` share `i`), so successive passes over the same data find it in the cache of the
//! core that touched it last; a thread done early takes parts left in the others' shares.
//! A call made while the team is busy (from inside a part, or from a second user thread) runs
//! its parts on the calling thread instead: correct, just not parallel.

use std::cell::UnsafeCell;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering, Ordering::*};
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

/// A job's closure, its lifetime erased.
type JobFn = *const (dyn Fn(usize) + Sync + 'static);

/// A job as the helpers see it: a borrowed closure and the engaged helpers, lifetimes erased.
/// [`run`] does not return before every helper has finished with it, which is what makes the
/// erasure sound.
#[derive(Clone, Copy)]
struct Job {
    f: JobFn,
    /// Worker 0 is the owner, worker `i` is `helpers[i - 1]`.
    helpers: *const [&'static Helper],
}

/// A thread's contiguous share of a job's parts, `next..end`. Its owner takes parts from the
/// front; so does any other thread once its own share is empty.
struct Share {
    next: AtomicUsize,
    end: AtomicUsize,
}

impl Share {
    const fn new() -> Self {
        Share { next: AtomicUsize::new(0), end: AtomicUsize::new(0) }
    }

    fn set(&self, from: usize, to: usize) {
        self.next.store(from, Relaxed);
        self.end.store(to, Relaxed);
    }

    fn take(&self) -> Option<usize> {
        let part = self.next.fetch_add(1, Relaxed);
        (part < self.end.load(Relaxed)).then_some(part)
    }
}

struct Team {
    /// Held (true) while a [`run`] owns the team.
    busy: AtomicBool,
    /// The current job; written only by the owner of `busy`, before it bumps the helpers'
    /// `epoch` (Release), read by helpers after they see it (Acquire). Likewise the shares.
    job: UnsafeCell<Option<Job>>,
    /// The owner's share of the parts.
    share: Share,
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
    /// This helper's share of the current job's parts.
    share: Share,
    thread: OnceLock<Thread>,
}

fn team() -> &'static Team {
    static TEAM: Team = Team {
        busy: AtomicBool::new(false),
        job: UnsafeCell::new(None),
        share: Share::new(),
        panicked: AtomicBool::new(false),
        owner: UnsafeCell::new(None),
        owner_sleeping: AtomicBool::new(false),
        helpers: Mutex::new(Vec::new()),
        pid: AtomicU32::new(0),
    };
    &TEAM
}

/// Runs `f(0)`, …, `f(parts − 1)`, spread over up to [`threads`] threads (the caller is one of
/// them), and returns when all are done. Thread `i` of `n` starts on parts
/// `parts·i/n .. parts·(i+1)/n` (the caller is thread 0); who runs which part is otherwise
/// unspecified, so `f` must not depend on it for anything but speed.
///
/// # Panics
/// If a part panics, after every other part has finished: with the same payload when it was
/// the caller's part, with a message naming a helper otherwise.
pub(crate) fn run(parts: usize, f: &(dyn Fn(usize) + Sync)) {
    #[cfg(feature = "rayon")]
    if rayon::current_thread_index().is_some() {
        return run_on_rayon(parts, f);
    }
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
            share: Share::new(),
            thread: OnceLock::new(),
        }));
        let worker = helpers.len() + 1;
        let spawned = std::thread::Builder::new()
            .name(format!("feedforward-{worker}"))
            .spawn(move || helper_loop(helper, worker));
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
    let f_static = unsafe { std::mem::transmute::<*const (dyn Fn(usize) + Sync + '_), JobFn>(f) };
    let job = Job { f: f_static, helpers: engaged };
    let workers = engaged.len() + 1;
    for w in 0..workers {
        job.share(&team.share, w).set(parts * w / workers, parts * (w + 1) / workers);
    }
    // SAFETY: we hold `busy` and every helper finished the previous job (see `Team`).
    unsafe {
        *team.job.get() = Some(job);
        *team.owner.get() = Some(std::thread::current());
    }
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
    let mine = run_shares(&job, &team.share, 0, f);
    for helper in engaged {
        let epoch = helper.epoch.load(Relaxed);
        // Then sleep rather than spin: if the helper was descheduled, spinning here would keep
        // it off this core.
        wait_until(|order| helper.done.load(order) == epoch, &team.owner_sleeping, WAIT_SPIN);
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

/// [`run`] called from a thread of a rayon pool (feature `rayon`): the parts go to that pool,
/// cut into the same contiguous shares as the team's, the caller running the first. A panic
/// in a part propagates once every part is done.
#[cfg(feature = "rayon")]
fn run_on_rayon(parts: usize, f: &(dyn Fn(usize) + Sync)) {
    let workers = threads().min(parts).min(rayon::current_num_threads());
    if workers <= 1 {
        return run_here(parts, f);
    }
    rayon::scope(|scope| {
        for w in 1..workers {
            let share = parts * w / workers..parts * (w + 1) / workers;
            scope.spawn(move |_| share.for_each(f));
        }
        (0..parts / workers).for_each(f);
    });
}

/// Every part on the calling thread, with the same panic behaviour as the team.
fn run_here(parts: usize, f: &(dyn Fn(usize) + Sync)) {
    let mut first_panic = None;
    for part in 0..parts {
        run_part(f, part, &mut first_panic);
    }
    if let Some(payload) = first_panic {
        resume_unwind(payload);
    }
}

/// A caught panic's payload.
type Panic = Box<dyn std::any::Any + Send>;

/// Runs part `part`, catching a panic into `first_panic` (if it is the first).
fn run_part(f: &(dyn Fn(usize) + Sync), part: usize, first_panic: &mut Option<Panic>) {
    if let Err(payload) = catch_unwind(AssertUnwindSafe(|| f(part))) {
        first_panic.get_or_insert(payload);
    }
}

impl Job {
    /// Worker `w`'s share; `owner` is the owner's (worker 0).
    fn share<'a>(&self, owner: &'a Share, w: usize) -> &'a Share {
        match w {
            0 => owner,
            // SAFETY: `helpers` points into the helper list, which the owner keeps locked and
            // unchanged until every helper is done with the job; helpers are never freed.
            _ => unsafe { &(&(*self.helpers))[w - 1].share },
        }
    }
}

/// Worker `me`'s loop: its own share first, then what is left of the others', in turn; goes
/// on past a part that panics and returns the first panic's payload.
fn run_shares(job: &Job, owner: &Share, me: usize, f: &(dyn Fn(usize) + Sync)) -> Option<Panic> {
    let workers = job.helpers.len() + 1;
    let mut first_panic = None;
    for w in (me..workers).chain(0..me) {
        let share = job.share(owner, w);
        while let Some(part) = share.take() {
            run_part(f, part, &mut first_panic);
        }
    }
    first_panic
}

/// Returns once `ready` holds: spins for `spin`, then parks with `sleeping` set. Whoever makes
/// `ready` true stores it, then reads `sleeping` and unparks this thread if set; both sides use
/// SeqCst for that store and load (`ready` is read with the ordering it is given), so at least
/// one sees the other's write and a wake-up is never lost.
fn wait_until(ready: impl Fn(Ordering) -> bool, sleeping: &AtomicBool, spin: Duration) {
    let start = Instant::now();
    let mut spins = 0u32;
    while !ready(Acquire) {
        spins = spins.wrapping_add(1);
        if !spins.is_multiple_of(64) || start.elapsed() < spin {
            std::hint::spin_loop();
            continue;
        }
        sleeping.store(true, SeqCst);
        if !ready(SeqCst) {
            std::thread::park();
        }
        sleeping.store(false, SeqCst);
    }
}

fn helper_loop(helper: &'static Helper, worker: usize) {
    crate::linalg::warm_up_thread();
    let team = team();
    let mut seen = 0;
    loop {
        wait_until(|order| helper.epoch.load(order) != seen, &helper.sleeping, SPIN);
        seen = helper.epoch.load(Acquire);
        // SAFETY: the owner wrote the job before bumping `epoch`, and keeps it alive until
        // this helper reports `done` below.
        if let Some(job) = unsafe { *team.job.get() } {
            // SAFETY: `f` outlives the job: the owner's `run` waits for this helper's `done`.
            let f = unsafe { &*job.f };
            // Our own handle on the owner: once `done` is stored it may move on and replace it.
            // SAFETY: written by the owner before the epoch bump, like `job`, and not changed
            // until this helper reports `done`.
            let owner = unsafe { (*team.owner.get()).clone() };
            if run_shares(&job, &team.share, worker, f).is_some() {
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
pub(crate) const MAX_BLOCKS: usize = 16;

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

impl<S: SplitColumns, const K: usize> SplitColumns for [S; K] {
    fn split_at_column(self, col: usize) -> (Self, Self) {
        let mut heads: [Option<S>; K] = std::array::from_fn(|_| None);
        let tails = {
            let mut k = 0;
            self.map(|s| {
                let (head, tail) = s.split_at_column(col);
                heads[k] = Some(head);
                k += 1;
                tail
            })
        };
        (heads.map(|h| h.expect("every piece was split")), tails)
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
    let blocks = (cols * rows / BLOCK_MIN_ELEMENTS).clamp(1, MAX_BLOCKS).min(cols.max(1));
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

    /// The team and the thread limit are process-wide: these tests take turns.
    static SERIAL: Mutex<()> = Mutex::new(());

    fn serial() -> std::sync::MutexGuard<'static, ()> {
        SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    // Needs a second thread: without the team every part runs on the caller, in order.
    #[cfg(feature = "threading")]
    #[test]
    fn a_thread_done_early_takes_parts_left_in_another_share() {
        let _turn = serial();
        set_threads(2);
        // Shares: parts 0–1 to the caller, 2–3 to the helper. Part 2 waits for part 3, so the
        // run finishes only if the thread not running part 2 takes part 3, whoever's share it
        // is in (the helper may not even have started when the caller finishes its own).
        for round in 0..50 {
            let third_done = AtomicBool::new(false);
            run(4, &|i| match i {
                2 => {
                    let start = Instant::now();
                    while !third_done.load(Acquire) {
                        let patience = Duration::from_secs(if cfg!(miri) { 3600 } else { 20 });
                        assert!(start.elapsed() < patience, "round {round}: part 3 never ran");
                        std::thread::yield_now();
                    }
                }
                3 => third_done.store(true, Release),
                _ => {}
            });
        }
        set_threads(0);
    }

    #[test]
    fn run_covers_every_part_once_even_nested() {
        let _turn = serial();
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
        let _turn = serial();
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
        let _turn = serial();
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
        let _turn = serial();
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
        let _turn = serial();
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
