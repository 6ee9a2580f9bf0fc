//! The probe pool: runs a cycle's checks on at most `workers` OS threads.
//!
//! Workers take the next check from a shared queue, so a cycle lasts about
//! as long as its slowest wave, never the sum. Each probe bounds itself by
//! its timeout; as a last line of defence (a DNS lookup in libc cannot be
//! cancelled) the collector stops waiting at a deadline and reports any
//! check still running as timed out. Its worker is abandoned: it ends on
//! its own.
//!
//! `run_all` starts its threads for one round (`check` runs once); the
//! daemon keeps a `Pool` whose threads live across cycles.

use crate::probe::{self, Check, CheckStatus, CycleCtx, Outcome, Probe, Reason};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, mpsc};
use std::time::{Duration, Instant};

thread_local! {
    /// Set on probe threads, whose panics are caught and reported as a
    /// failed check: the process's panic hook lets those pass.
    static CATCHES_PANICS: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether a panic on the current thread is caught and reported as a
/// failed check (true on probe threads) rather than fatal.
pub fn panics_are_caught() -> bool {
    CATCHES_PANICS.with(std::cell::Cell::get)
}

/// Slack on top of the timeouts before the collector gives up on a probe.
const DEADLINE_SLACK: Duration = Duration::from_millis(500);

/// How long a check may wait in the pool's queue with no thread free
/// before the pool starts another (up to `workers`).
const GROW_AFTER: Duration = Duration::from_millis(10);

/// A probe thread's stack: probes are shallow, and most of it is never touched.
const PROBE_STACK: usize = 256 * 1024;

/// How long a cycle of `checks` on `workers` threads may take: for
/// well-behaved probes, every wave waits for a full timeout.
fn deadline_after(checks: &[Check], workers: usize) -> Duration {
    let max_timeout = checks.iter().map(|c| c.timeout).max().unwrap_or_default();
    let waves = checks.len().div_ceil(workers.max(1)) as u32;
    max_timeout * waves + DEADLINE_SLACK
}

/// One probe, a panic in it reported as a failed check.
fn run_caught(check: &Check, ctx: &CycleCtx) -> Outcome {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| probe::run(check, ctx)))
        .unwrap_or_else(|_| {
            Outcome::not_up(CheckStatus::Unknown, Reason::CheckError, "internal error in probe")
        })
}

/// Waits for `n` results until `deadline` (or until every sender is gone).
fn collect(
    rx: &mpsc::Receiver<(usize, Outcome)>,
    n: usize,
    deadline: Instant,
) -> Vec<Option<Outcome>> {
    let mut results: Vec<Option<Outcome>> = vec![None; n];
    let mut got = 0;
    while got < n {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok((i, out)) => {
                if results[i].is_none() {
                    got += 1;
                }
                results[i] = Some(out);
            }
            Err(_) => break, // deadline passed, or every worker is gone
        }
    }
    results
}

/// The results in check order, a missing one reported as timed out.
fn finish(results: Vec<Option<Outcome>>, checks: &[Check]) -> Vec<Outcome> {
    results
        .into_iter()
        .zip(checks)
        .map(|(r, check)| {
            r.unwrap_or_else(|| {
                let why = format!("probe did not return within {} ms", check.timeout.as_millis());
                // The systemd check's silence is our tool's, not the unit's.
                let status = match check.probe {
                    Probe::Systemd(_) => CheckStatus::Unknown,
                    _ => CheckStatus::Down,
                };
                Outcome::not_up(status, Reason::Timeout, why).with_latency(check.timeout)
            })
        })
        .collect()
}

/// Runs every check once with the cycle's context (the pings push checks
/// judge, the clock they judge at) on threads started for this round;
/// `results[i]` belongs to `checks[i]`.
pub fn run_all(checks: Vec<Check>, workers: usize, ctx: CycleCtx) -> Vec<Outcome> {
    let n = checks.len();
    if n == 0 {
        return Vec::new();
    }
    let workers = workers.clamp(1, n);
    let deadline = Instant::now() + deadline_after(&checks, workers);
    let job = Arc::new((checks, AtomicUsize::new(0), ctx));
    let (tx, rx) = mpsc::channel::<(usize, Outcome)>();
    for _ in 0..workers {
        let job = Arc::clone(&job);
        let tx = tx.clone();
        let spawned = std::thread::Builder::new()
            .name("probe".into())
            .stack_size(PROBE_STACK)
            .spawn(move || {
                CATCHES_PANICS.with(|c| c.set(true));
                let (checks, next, ctx) = &*job;
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(check) = checks.get(i) else { break };
                    if tx.send((i, run_caught(check, ctx))).is_err() {
                        break;
                    }
                }
            });
        if let Err(e) = spawned {
            crate::warn!("cannot start a probe thread: {e}");
        }
    }
    drop(tx);
    let results = collect(&rx, n, deadline);
    finish(results, &job.0)
}

/// Probe threads kept across the daemon's cycles (`run`): creating a
/// cycle's threads was the largest single part of an idle daemon's CPU
/// (bench/NOTES.md). A cycle hands its checks to the pool and waits for
/// them as `run_all` does, with the same deadline. It starts threads as
/// checks wait for one (at most `workers` on a cycle's checks), so it holds
/// as many as the cycles need at once, not `workers`: each idle thread
/// costs its touched stack.
///
/// A probe that outlives the deadline (a DNS lookup in libc cannot be
/// cancelled) keeps its thread: the next cycle does not wait for it but
/// starts another thread in its place, and when it does come back, a
/// thread beyond what the last cycle needed ends. So a stuck probe never
/// delays a cycle and never shrinks the pool for good.
pub struct Pool {
    shared: Arc<Shared>,
}

struct Shared {
    queue: Mutex<Queue>,
    wake: Condvar,
    /// Threads started over the pool's life (tests read it).
    started: AtomicUsize,
    /// Times a cycle's collector woke up (tests read it).
    collector_wakes: AtomicUsize,
}

#[derive(Default)]
struct Queue {
    tasks: VecDeque<Task>,
    /// Threads alive, and those of them running a probe now.
    alive: usize,
    busy: usize,
    /// How many idle threads to keep: the last cycle's need.
    keep: usize,
    closed: bool,
}

/// One cycle's checks, shared by the tasks of the cycle.
struct Job {
    checks: Vec<Check>,
    ctx: CycleCtx,
    results: Results,
    /// Its checks running now (at most `workers`).
    running: AtomicUsize,
}

/// A cycle's outcomes as its probes hand them in. Only the last one wakes
/// the collector: a wake per outcome (a channel's send) was 7 % of an idle
/// cycle's CPU in `futex` wake-ups (perf), for a collector that has nothing
/// to do until the last.
struct Results {
    got: Mutex<(Vec<Option<Outcome>>, usize)>,
    all_in: Condvar,
}

impl Results {
    fn new(n: usize) -> Self {
        Results { got: Mutex::new((vec![None; n], 0)), all_in: Condvar::new() }
    }

    fn lock(&self) -> MutexGuard<'_, (Vec<Option<Outcome>>, usize)> {
        self.got.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn hand_in(&self, index: usize, out: Outcome) {
        let mut got = self.lock();
        let (slots, count) = &mut *got;
        // Taken already when the collector gave up at its deadline.
        let Some(slot) = slots.get_mut(index) else { return };
        if slot.is_none() {
            *count += 1;
        }
        *slot = Some(out);
        if *count == slots.len() {
            self.all_in.notify_one();
        }
    }

    /// Waits until every outcome is in or `wait` has passed; true when all are in.
    fn wait(&self, wait: Duration) -> bool {
        let got = self.lock();
        let (got, _) = self
            .all_in
            .wait_timeout_while(got, wait, |(slots, count)| *count < slots.len())
            .unwrap_or_else(PoisonError::into_inner);
        got.1 == got.0.len()
    }

    fn take(&self) -> Vec<Option<Outcome>> {
        std::mem::take(&mut self.lock().0)
    }
}

struct Task {
    job: Arc<Job>,
    index: usize,
}

impl Default for Pool {
    fn default() -> Self {
        Self::new()
    }
}

impl Pool {
    pub fn new() -> Self {
        Pool {
            shared: Arc::new(Shared {
                queue: Mutex::new(Queue::default()),
                wake: Condvar::new(),
                started: AtomicUsize::new(0),
                collector_wakes: AtomicUsize::new(0),
            }),
        }
    }

    /// Threads alive now (idle, probing, or stuck in a probe).
    pub fn threads(&self) -> usize {
        self.shared.lock().alive
    }

    /// Threads started since the pool was made.
    pub fn threads_started(&self) -> usize {
        self.shared.started.load(Ordering::Relaxed)
    }

    /// Runs every check once on the pool, at most `workers` at a time, as
    /// `run_all` does; `results[i]` belongs to `checks[i]`.
    pub fn run(&self, checks: Vec<Check>, workers: usize, ctx: CycleCtx) -> Vec<Outcome> {
        let n = checks.len();
        if n == 0 {
            return Vec::new();
        }
        let need = workers.clamp(1, n);
        let deadline = Instant::now() + deadline_after(&checks, need);
        let job =
            Arc::new(Job { checks, ctx, results: Results::new(n), running: AtomicUsize::new(0) });
        let first = {
            let mut q = self.shared.lock();
            q.keep = need;
            q.tasks.extend((0..n).map(|index| Task { job: Arc::clone(&job), index }));
            // Threads stuck in an earlier cycle's probe are busy: not counted.
            q.alive == q.busy
        };
        if first {
            self.spawn();
        }
        self.shared.wake.notify_all();
        // Grows while checks wait with no thread free: a cycle of quick
        // checks keeps a few threads, a slow target gets one of its own.
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || job.results.wait(left.min(GROW_AFTER)) {
                break;
            }
            self.shared.collector_wakes.fetch_add(1, Ordering::Relaxed);
            let grow = {
                let q = self.shared.lock();
                let waiting = q.tasks.iter().any(|t| Arc::ptr_eq(&t.job, &job));
                waiting && q.alive == q.busy && job.running.load(Ordering::SeqCst) < need
            };
            if grow {
                self.spawn();
            }
        }
        let results = job.results.take();
        // Given up (deadline): what is still queued of this cycle is dropped.
        self.shared.lock().tasks.retain(|t| !Arc::ptr_eq(&t.job, &job));
        finish(results, &job.checks)
    }

    /// One more thread (counted alive before it starts).
    fn spawn(&self) {
        self.shared.lock().alive += 1;
        let shared = Arc::clone(&self.shared);
        let spawned = std::thread::Builder::new()
            .name("probe".into())
            .stack_size(PROBE_STACK)
            .spawn(move || shared.work());
        match spawned {
            Ok(_) => {
                self.shared.started.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                self.shared.lock().alive -= 1;
                crate::warn!("cannot start a probe thread: {e}");
            }
        }
    }
}

impl Drop for Pool {
    /// Ends the idle threads; those still probing end when they return.
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.wake.notify_all();
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        // A panic is never raised while the lock is held; be safe anyway.
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A pool thread: takes tasks until the pool closes or it is one idle
    /// thread too many.
    fn work(&self) {
        CATCHES_PANICS.with(|c| c.set(true));
        loop {
            let task = {
                let mut q = self.lock();
                loop {
                    if q.closed || (q.tasks.is_empty() && q.alive - q.busy > q.keep) {
                        q.alive -= 1;
                        return;
                    }
                    if let Some(t) = q.tasks.pop_front() {
                        q.busy += 1;
                        break t;
                    }
                    q = self.wake.wait(q).unwrap_or_else(PoisonError::into_inner);
                }
            };
            task.job.running.fetch_add(1, Ordering::SeqCst);
            let out = run_caught(&task.job.checks[task.index], &task.job.ctx);
            task.job.running.fetch_sub(1, Ordering::SeqCst);
            // Idle again before the collector hears of it: a cycle that
            // starts right after this one's last result counts this thread
            // as free, rather than starting another.
            self.lock().busy -= 1;
            // The collector may have given up on it: nobody reads it then.
            task.job.results.hand_in(task.index, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::owned::{Built, Keys, KindDef, OwnedProbe};
    use std::sync::atomic::AtomicBool;

    fn no_build(_: &mut Keys) -> Option<Built> {
        None
    }

    static TEST_KIND: KindDef = KindDef { name: "test", keys: &[], build: no_build, metrics: &[] };

    /// A probe that answers at once, panics, or blocks until released
    /// (ignoring its timeout, as a libc DNS lookup does).
    #[derive(Debug)]
    enum Act {
        Answer,
        Panic,
        Block(Arc<AtomicBool>),
    }

    impl OwnedProbe for Act {
        fn def(&self) -> &'static KindDef {
            &TEST_KIND
        }
        fn run(&self, _: &CycleCtx) -> Outcome {
            match self {
                Act::Answer => {
                    let name = std::thread::current().name().unwrap_or("").to_string();
                    Outcome::up(format!("{name} {:?}", std::thread::current().id()))
                }
                Act::Panic => panic!("a probe's bug"),
                Act::Block(released) => {
                    let deadline = Instant::now() + Duration::from_secs(30);
                    while !released.load(Ordering::SeqCst) && Instant::now() < deadline {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    Outcome::up("released")
                }
            }
        }
    }

    /// A timeout no loaded CI machine reaches, so a slow scheduler is never
    /// read as a timeout.
    fn check(act: Act) -> Check {
        check_within(act, Duration::from_secs(20))
    }

    /// The stuck-probe test's checks: the collector's deadline follows the
    /// longest timeout, so all of that cycle's checks get a short one.
    fn check_within(act: Act, timeout: Duration) -> Check {
        Check {
            probe: Probe::Owned(Arc::new(act)),
            timeout,
            degraded_after: None,
            target: "t".into(),
        }
    }

    fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !cond() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn the_collector_wakes_once_for_all_outcomes_not_once_for_each() {
        let pool = Pool::new();
        let started = Instant::now();
        let outs = pool.run((0..32).map(|_| check(Act::Answer)).collect(), 4, CycleCtx::default());
        assert!(outs.iter().all(|o| o.status == CheckStatus::Up));
        // Besides the last outcome, only its GROW_AFTER ticks wake it (a
        // wake per outcome was 31 more).
        let ticks = (started.elapsed().as_millis() / GROW_AFTER.as_millis()) as usize;
        let wakes = pool.shared.collector_wakes.load(Ordering::Relaxed);
        assert!(wakes <= ticks + 1, "{wakes} wakes in {ticks} ticks");
        assert!(ticks < 31, "too slow a machine to tell ({ticks} ticks)");
    }

    #[test]
    fn the_pool_keeps_its_threads_across_cycles() {
        let pool = Pool::new();
        let mut seen = std::collections::HashSet::new();
        let mut started = Vec::new();
        for _ in 0..5 {
            let outs =
                pool.run((0..8).map(|_| check(Act::Answer)).collect(), 4, CycleCtx::default());
            assert_eq!(outs.len(), 8);
            for o in outs {
                assert_eq!(o.status, CheckStatus::Up, "{}", o.detail);
                assert!(o.detail.starts_with("probe "), "{}", o.detail);
                seen.insert(o.detail);
            }
            started.push(pool.threads_started());
        }
        // Quick checks: a thread or a few, kept: never more than `workers`
        // over the five cycles (a thread each per cycle would be 20 or more).
        assert!(started[4] <= 4, "{started:?}");
        assert!(seen.len() <= 4, "{seen:?}");
        // A cycle that needs fewer threads: the surplus ends.
        let outs = pool.run(vec![check(Act::Answer)], 4, CycleCtx::default());
        assert_eq!(outs[0].status, CheckStatus::Up);
        wait_until("the surplus threads to end", || pool.threads() == 1);
    }

    #[test]
    fn slow_checks_get_a_thread_each_up_to_workers() {
        let pool = Pool::new();
        let released = Arc::new(AtomicBool::new(false));
        let slow: Vec<Check> = (0..6).map(|_| check(Act::Block(Arc::clone(&released)))).collect();
        let releaser = {
            let released = Arc::clone(&released);
            let shared = Arc::clone(&pool.shared);
            std::thread::spawn(move || {
                // Released once 4 run at once: they would wait forever otherwise
                // (and time out), so this also shows they ran side by side.
                wait_until("4 probes running", || shared.lock().busy == 4);
                released.store(true, Ordering::SeqCst);
            })
        };
        let outs = pool.run(slow, 4, CycleCtx::default());
        releaser.join().unwrap();
        assert!(outs.iter().all(|o| o.status == CheckStatus::Up), "{outs:?}");
        assert_eq!(pool.threads_started(), 4, "never more than workers");
    }

    #[test]
    fn a_panicking_probe_is_a_failed_check_and_its_thread_lives_on() {
        let pool = Pool::new();
        for _ in 0..3 {
            let outs =
                pool.run(vec![check(Act::Panic), check(Act::Answer)], 1, CycleCtx::default());
            assert_eq!(outs[0].status, CheckStatus::Unknown);
            assert_eq!(outs[0].reason, Some(Reason::CheckError));
            assert_eq!(outs[1].status, CheckStatus::Up);
        }
        assert_eq!(pool.threads_started(), 1, "the panic cost its thread");
    }

    #[test]
    fn a_stuck_probe_neither_delays_the_next_cycle_nor_shrinks_the_pool() {
        let pool = Pool::new();
        let released = Arc::new(AtomicBool::new(false));
        let started = Instant::now();
        let outs = pool.run(
            vec![
                check_within(Act::Block(Arc::clone(&released)), Duration::from_secs(1)),
                check_within(Act::Answer, Duration::from_secs(1)),
            ],
            2,
            CycleCtx::default(),
        );
        // Given up at the deadline (1 s), long before the probe's 30 s.
        assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
        assert_eq!(outs[0].status, CheckStatus::Down);
        assert_eq!(outs[0].reason, Some(Reason::Timeout));
        assert_eq!(outs[1].status, CheckStatus::Up);
        // The next cycle: not delayed by the stuck thread.
        let started = Instant::now();
        let outs = pool.run(vec![check(Act::Answer), check(Act::Answer)], 2, CycleCtx::default());
        // Not behind the stuck probe (it blocks 30 s): a bound that catches that, not a race.
        assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
        assert!(outs.iter().all(|o| o.status == CheckStatus::Up));
        let before = pool.threads();
        assert!((2..=3).contains(&before), "{before} threads");
        // It comes back and serves again: the pool never shrinks for good.
        released.store(true, Ordering::SeqCst);
        wait_until("the stuck thread to come back", || {
            let q = pool.shared.lock();
            q.busy == 0 && q.alive <= 2
        });
        let outs = pool.run(vec![check(Act::Answer), check(Act::Answer)], 2, CycleCtx::default());
        assert!(outs.iter().all(|o| o.status == CheckStatus::Up));
        assert!(pool.threads_started() <= 3);
    }

    #[test]
    fn a_dropped_pool_ends_its_threads() {
        let pool = Pool::new();
        pool.run(vec![check(Act::Answer), check(Act::Answer)], 2, CycleCtx::default());
        let shared = Arc::clone(&pool.shared);
        drop(pool);
        wait_until("the idle threads to end", || shared.lock().alive == 0);
    }
}
