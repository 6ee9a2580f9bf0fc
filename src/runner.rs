//! The probe pool: runs a cycle's checks on at most `workers` OS threads.
//!
//! Workers take the next check from a shared index, so a cycle lasts about as
//! long as its slowest wave, never the sum. Each probe bounds itself by its
//! timeout; as a last line of defence (a DNS lookup in libc cannot be
//! cancelled) the collector stops waiting at a deadline and reports any check
//! still running as timed out. Its worker is abandoned: it ends on its own.

use crate::probe::{self, Check, CheckStatus, CycleCtx, Outcome, Probe, Reason};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

thread_local! {
    /// Set on probe threads, whose panics `run_all` catches and reports as
    /// a failed check: the process's panic hook lets those pass.
    static CATCHES_PANICS: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether a panic on the current thread is caught and reported as a
/// failed check (true on probe threads) rather than fatal.
pub fn panics_are_caught() -> bool {
    CATCHES_PANICS.with(std::cell::Cell::get)
}

/// Slack on top of the timeouts before the collector gives up on a probe.
const DEADLINE_SLACK: Duration = Duration::from_millis(500);

/// Runs every check once with the cycle's context (the pings push checks
/// judge, the clock they judge at); `results[i]` belongs to `checks[i]`.
pub fn run_all(checks: Vec<Check>, workers: usize, ctx: CycleCtx) -> Vec<Outcome> {
    let n = checks.len();
    if n == 0 {
        return Vec::new();
    }
    let workers = workers.clamp(1, n);
    let max_timeout = checks.iter().map(|c| c.timeout).max().unwrap_or_default();
    // Worst case for well-behaved probes: every wave waits for a full timeout.
    let waves = n.div_ceil(workers) as u32;
    let deadline = Instant::now() + max_timeout * waves + DEADLINE_SLACK;

    let job = Arc::new((checks, AtomicUsize::new(0), ctx));
    let (tx, rx) = mpsc::channel::<(usize, Outcome)>();
    for _ in 0..workers {
        let job = Arc::clone(&job);
        let tx = tx.clone();
        let spawned = std::thread::Builder::new()
            .name("probe".into())
            .stack_size(256 * 1024)
            .spawn(move || {
                CATCHES_PANICS.with(|c| c.set(true));
                let (checks, next, ctx) = &*job;
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(check) = checks.get(i) else { break };
                    let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        probe::run(check, ctx)
                    }))
                    .unwrap_or_else(|_| {
                        Outcome::not_up(
                            CheckStatus::Unknown,
                            Reason::CheckError,
                            "internal error in probe",
                        )
                    });
                    if tx.send((i, out)).is_err() {
                        break;
                    }
                }
            });
        if let Err(e) = spawned {
            crate::warn!("cannot start a probe thread: {e}");
        }
    }
    drop(tx);

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
    let checks = &job.0;
    results
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            r.unwrap_or_else(|| {
                let why =
                    format!("probe did not return within {} ms", checks[i].timeout.as_millis());
                // The systemd check's silence is our tool's, not the unit's.
                let status = match checks[i].probe {
                    Probe::Systemd(_) => CheckStatus::Unknown,
                    _ => CheckStatus::Down,
                };
                Outcome::not_up(status, Reason::Timeout, why).with_latency(checks[i].timeout)
            })
        })
        .collect()
}
