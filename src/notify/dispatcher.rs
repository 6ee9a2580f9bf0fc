//! The daemon's delivery: one sender thread working from the durable
//! outbox, so a cycle never waits on a notifier and a kill loses nothing.
//!
//! After each cycle has saved the state file, `sync` hands the sender the
//! outbox (and the heartbeat ping). The sender runs due deliveries in
//! order, each attempt on a thread of its own (at most `MAX_IN_FLIGHT` at
//! once, one per destination) and bounded by the notifier's timeout;
//! connection errors, timeouts, 5xx and 429 retried with backoff (0.5 s,
//! 2 s, 8 s; a Retry-After of up to a minute is honoured), then again later
//! (1 min, doubling up to 30 min). A destination — a notifier, and each
//! member of an Alertmanager pair and each Twilio recipient on its own —
//! waiting for a retry or hanging on an attempt holds back its own later
//! deliveries (order per destination is kept) but no other destination's,
//! so one dead member never delays the other. What it finishes (sent, or refused for good) or reschedules
//! it reports through `take_done`, which the next cycle applies to the
//! state file under the lock: the daemon's cycle stays the one writer of
//! that file. At shutdown the sender gets a grace period, then the daemon
//! applies what was done and saves.
//!
//! The queue lock is never held during network I/O.

use super::heartbeat;
use super::http::Attempt;
use super::{Delivery, Done, DoneOutcome};
use crate::config::{Config, Heartbeat, Notifier};
use crate::time::Timestamp;
use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// Quick attempts of one delivery before it waits for a later round.
pub const MAX_TRIES: u32 = 4;
/// The longest Retry-After we wait for; longer ones are cut to this.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);
/// Attempts (and heartbeat pings) running at once, each on its own thread
/// and to a different destination: enough that a few hanging receivers
/// leave the others unaffected, few enough to bound the threads.
pub const MAX_IN_FLIGHT: usize = 16;

/// Backoff before retry number `tries` (1-based): 0.5 s, 2 s, 8 s, ...
fn backoff(tries: u32) -> Duration {
    Duration::from_millis(500u64.saturating_mul(4u64.saturating_pow(tries.saturating_sub(1))))
}

/// After a delivery has failed `attempts` times in all, when it is tried
/// again: 1 min after the first round, doubling, at most 30 min.
fn later(attempts: u32) -> Duration {
    let rounds = attempts.div_ceil(MAX_TRIES).max(1);
    Duration::from_secs(60u64.saturating_mul(1u64 << (rounds - 1).min(5)))
        .min(Duration::from_secs(1800))
}

struct Job {
    d: Delivery,
    not_before: Instant,
    /// Attempts in the current quick round.
    tries: u32,
}

#[derive(Default)]
struct Counts {
    sent: u64,
    failed: u64,
}

#[derive(Default)]
struct Queue {
    /// The outbox as the last cycle saved it, minus what is being sent.
    jobs: Vec<Job>,
    heartbeat: Option<(Heartbeat, bool)>,
    /// A heartbeat ping is running.
    pinging: bool,
    /// The deliveries being sent right now: id → destination.
    in_progress: BTreeMap<String, String>,
    /// Reports for the next cycle to apply to the state file.
    done: Vec<Done>,
    notifiers: BTreeMap<String, Arc<Notifier>>,
    /// Shutdown: stop at this instant.
    stop_at: Option<Instant>,
    /// The sender thread has returned (attempts may still be running).
    finished: bool,
    per_notifier: BTreeMap<String, Counts>,
    dropped: u64,
    heartbeats: Counts,
    heartbeat_failing: bool,
}

struct Shared {
    q: Mutex<Queue>,
    cv: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        // A panic elsewhere must not stop alerting: the queue stays usable.
        self.q.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The daemon's alert delivery (see the module docs).
pub struct Dispatcher {
    shared: Arc<Shared>,
    /// False when the sender thread could not be started: the outbox then
    /// waits in the state file for a later run.
    running: bool,
}

impl Default for Dispatcher {
    fn default() -> Self {
        Self::start()
    }
}

impl Dispatcher {
    /// Starts the sender thread.
    pub fn start() -> Self {
        let shared = Arc::new(Shared { q: Mutex::new(Queue::default()), cv: Condvar::new() });
        let running = {
            let shared = Arc::clone(&shared);
            match std::thread::Builder::new().name("notify".into()).spawn(move || sender(&shared)) {
                Ok(_) => true,
                Err(e) => {
                    crate::error!(
                        "notify: cannot start the sender thread ({e}); alerts wait in the state file"
                    );
                    false
                }
            }
        };
        Dispatcher { shared, running }
    }

    /// After a cycle saved the state file: the outbox to work from, the
    /// heartbeat ping due, and how many deliveries the full outbox dropped.
    pub fn sync(
        &self,
        config: &Config,
        outbox: Vec<Delivery>,
        heartbeat: Option<(&Heartbeat, bool)>,
        dropped: usize,
    ) {
        let now = Instant::now();
        let wall = Timestamp::now();
        {
            let mut q = self.shared.lock();
            q.notifiers =
                config.notify.iter().map(|n| (n.name.clone(), Arc::new(n.clone()))).collect();
            for n in &config.notify {
                q.per_notifier.entry(n.name.clone()).or_default();
            }
            q.dropped += dropped as u64;
            // Finished but not yet applied to the file: not again.
            let finished: HashSet<String> = q
                .done
                .iter()
                .filter(|d| d.outcome == DoneOutcome::Finished)
                .map(|d| d.id.clone())
                .collect();
            let mut old: BTreeMap<String, Job> =
                std::mem::take(&mut q.jobs).into_iter().map(|j| (j.d.id.clone(), j)).collect();
            let mut jobs = Vec::new();
            for d in outbox {
                if finished.contains(&d.id) || q.in_progress.contains_key(&d.id) {
                    continue;
                }
                jobs.push(old.remove(&d.id).unwrap_or_else(|| {
                    let wait = d.next_attempt.map_or(Duration::ZERO, |t| {
                        if t > wall { t.since(wall) } else { Duration::ZERO }
                    });
                    Job { d, not_before: now + wait, tries: 0 }
                }));
            }
            q.jobs = jobs;
            if let Some((hb, ok)) = heartbeat {
                q.heartbeat = Some((hb.clone(), ok));
            }
        }
        self.shared.cv.notify_all();
    }

    /// What the sender finished or rescheduled since the last call.
    pub fn take_done(&self) -> Vec<Done> {
        std::mem::take(&mut self.shared.lock().done)
    }

    /// Lets the sender finish what it is doing within `grace`, then stops
    /// it; the caller applies `take_done` to the state file.
    pub fn shutdown(&self, grace: Duration) {
        let deadline = Instant::now() + grace;
        let mut q = self.shared.lock();
        q.stop_at = Some(deadline);
        self.shared.cv.notify_all();
        while self.running && !(q.finished && q.in_progress.is_empty() && !q.pinging) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            q = self
                .shared
                .cv
                .wait_timeout(q, left)
                .map(|(g, _)| g)
                .unwrap_or_else(|e| e.into_inner().0);
        }
        let left = q.jobs.len() + q.in_progress.len();
        drop(q);
        if left > 0 {
            crate::info!(
                "notify: {left} notification(s) not delivered yet; they wait in the state file"
            );
        }
    }

    /// Prometheus text: notifications sent/failed per notifier, drops,
    /// heartbeat pings and the outbox length.
    pub fn metrics(&self) -> String {
        let q = self.shared.lock();
        let mut o = String::new();
        let family = |o: &mut String, name: &str, kind: &str, help: &str| {
            let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} {kind}");
        };
        if !q.per_notifier.is_empty() {
            family(
                &mut o,
                "chatstack_notifications_total",
                "counter",
                "Notifications delivered (sent), or attempt rounds that failed (failed), per notifier.",
            );
            for (name, c) in &q.per_notifier {
                let l = crate::metrics::label(name);
                let _ = writeln!(
                    o,
                    "chatstack_notifications_total{{notifier=\"{l}\",result=\"sent\"}} {}",
                    c.sent
                );
                let _ = writeln!(
                    o,
                    "chatstack_notifications_total{{notifier=\"{l}\",result=\"failed\"}} {}",
                    c.failed
                );
            }
        }
        family(
            &mut o,
            "chatstack_notifications_dropped_total",
            "counter",
            "Notifications dropped because the outbox was full.",
        );
        let _ = writeln!(o, "chatstack_notifications_dropped_total {}", q.dropped);
        family(
            &mut o,
            "chatstack_notification_queue_length",
            "gauge",
            "Deliveries in the outbox, waiting to be sent.",
        );
        let waiting = q.jobs.len() + q.in_progress.len();
        let _ = writeln!(o, "chatstack_notification_queue_length {waiting}");
        family(&mut o, "chatstack_heartbeats_total", "counter", "Heartbeat pings, by result.");
        let _ = writeln!(o, "chatstack_heartbeats_total{{result=\"sent\"}} {}", q.heartbeats.sent);
        let _ =
            writeln!(o, "chatstack_heartbeats_total{{result=\"failed\"}} {}", q.heartbeats.failed);
        o
    }
}

enum Pick {
    Heartbeat,
    Ready(usize),
    WaitUntil(Instant),
    Empty,
}

/// The next thing to start: the heartbeat (unless a ping is running), else
/// the first due delivery whose destination is not busy, skipping the
/// destinations whose earliest delivery still waits for its retry or is
/// being sent. Nothing while `MAX_IN_FLIGHT` attempts run.
fn pick(q: &Queue, now: Instant) -> Pick {
    if q.heartbeat.is_some() && !q.pinging {
        return Pick::Heartbeat;
    }
    if q.in_progress.len() >= MAX_IN_FLIGHT {
        return Pick::Empty;
    }
    let mut blocked: HashSet<String> = q.in_progress.values().cloned().collect();
    let mut earliest: Option<Instant> = None;
    for (i, j) in q.jobs.iter().enumerate() {
        let dest = j.d.destination();
        if blocked.contains(&dest) {
            continue;
        }
        if j.not_before <= now {
            return Pick::Ready(i);
        }
        earliest = Some(earliest.map_or(j.not_before, |e| e.min(j.not_before)));
        blocked.insert(dest);
    }
    earliest.map_or(Pick::Empty, Pick::WaitUntil)
}

/// The sender thread: starts due work, each attempt on a thread of its
/// own that reports back through the queue and wakes this loop.
fn sender(shared: &Arc<Shared>) {
    let mut q = shared.lock();
    loop {
        let now = Instant::now();
        if let Some(stop) = q.stop_at
            && (now >= stop || q.jobs.iter().all(|j| j.not_before > now))
        {
            q.finished = true;
            shared.cv.notify_all();
            return;
        }
        let wait = match pick(&q, now) {
            Pick::Heartbeat => {
                if let Some((hb, ok)) = q.heartbeat.take() {
                    q.pinging = true;
                    let worker = Arc::clone(shared);
                    let spawned = std::thread::Builder::new()
                        .name("notify-ping".into())
                        .spawn(move || ping(&worker, &hb, ok));
                    if let Err(e) = spawned {
                        q.pinging = false;
                        crate::error!("heartbeat: cannot start a thread for the ping: {e}");
                    }
                }
                continue;
            }
            Pick::Ready(i) => {
                let job = q.jobs.remove(i);
                // Its notifier left the config: the next cycle drops it.
                let Some(n) = q.notifiers.get(&job.d.notifier).cloned() else { continue };
                let (id, dest) = (job.d.id.clone(), job.d.destination());
                q.in_progress.insert(id.clone(), dest);
                let worker = Arc::clone(shared);
                let job = Box::new(job);
                let spawned = std::thread::Builder::new()
                    .name("notify-send".into())
                    .spawn(move || deliver(&worker, &n, *job));
                match spawned {
                    Ok(_) => continue,
                    Err(e) => {
                        // The job moved into the closure that failed to
                        // start: the outbox in the state file still has
                        // it, and the next cycle's `sync` hands it back.
                        q.in_progress.remove(&id);
                        crate::error!("notify: cannot start a thread to send ({e}); retried later");
                        Duration::from_secs(1)
                    }
                }
            }
            Pick::WaitUntil(t) => t.saturating_duration_since(now),
            Pick::Empty => Duration::from_secs(3600),
        };
        let wait = match q.stop_at {
            Some(stop) => wait.min(stop.saturating_duration_since(now)),
            None => wait,
        };
        q = shared.cv.wait_timeout(q, wait).map(|(g, _)| g).unwrap_or_else(|e| e.into_inner().0);
    }
}

fn ping(shared: &Shared, hb: &Heartbeat, ok: bool) {
    let r = heartbeat::ping(hb, ok, hb.timeout);
    let mut q = shared.lock();
    q.pinging = false;
    shared.cv.notify_all();
    match r {
        Ok(()) => {
            q.heartbeats.sent += 1;
            if std::mem::replace(&mut q.heartbeat_failing, false) {
                drop(q);
                crate::info!("heartbeat: ping works again");
            }
        }
        Err(why) => {
            q.heartbeats.failed += 1;
            if !std::mem::replace(&mut q.heartbeat_failing, true) {
                drop(q);
                crate::warn!("heartbeat: ping failed: {why} (logged again only once it works)");
            }
        }
    }
}

fn deliver(shared: &Shared, n: &Notifier, mut job: Job) {
    job.tries += 1;
    job.d.attempts = job.d.attempts.saturating_add(1);
    let result = super::attempt(n, &job.d, n.timeout);
    let label = job.d.event.label();
    let name = super::destination_label(n, &job.d);
    let mut q = shared.lock();
    q.in_progress.remove(&job.d.id);
    let id = job.d.id.clone();
    let (loud, message) = match result {
        Attempt::Sent => {
            q.per_notifier.entry(n.name.clone()).or_default().sent += 1;
            q.done.push(Done { id, outcome: DoneOutcome::Finished });
            (false, format!("notify: {}: sent {label}", name))
        }
        Attempt::Fail(why) => {
            q.per_notifier.entry(n.name.clone()).or_default().failed += 1;
            q.done.push(Done { id, outcome: DoneOutcome::Finished });
            (
                true,
                format!(
                    "notify: {}: {label} not delivered: {why}; not retried (check the notifier's config)",
                    name
                ),
            )
        }
        Attempt::Retry { why, after } if job.tries < MAX_TRIES => {
            let wait = after.map_or_else(|| backoff(job.tries), |a| a.min(MAX_RETRY_AFTER));
            job.d.last_error = Some(why.clone());
            job.not_before = Instant::now() + wait;
            let text = format!(
                "notify: {}: {label}: {why}; retry {} of {} in {} ms",
                name,
                job.tries,
                MAX_TRIES - 1,
                wait.as_millis()
            );
            // In front: it keeps its place before the notifier's later ones.
            q.jobs.insert(0, job);
            (false, text)
        }
        Attempt::Retry { why, .. } => {
            q.per_notifier.entry(n.name.clone()).or_default().failed += 1;
            let wait = later(job.d.attempts);
            let text = format!(
                "notify: {}: {label} not delivered after {} attempt(s): {why}; next try in {} s",
                name,
                job.d.attempts,
                wait.as_secs()
            );
            let next_attempt = Some(Timestamp::now().plus(wait));
            q.done.push(Done {
                id,
                outcome: DoneOutcome::Retry {
                    attempts: job.d.attempts,
                    last_error: why.clone(),
                    next_attempt,
                },
            });
            job.d.last_error = Some(why);
            job.d.next_attempt = next_attempt;
            job.not_before = Instant::now() + wait;
            job.tries = 0;
            q.jobs.insert(0, job);
            (true, text)
        }
    };
    drop(q);
    shared.cv.notify_all();
    if loud {
        crate::warn!("{message}");
    } else {
        crate::info!("{message}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(notifier: &str, id: usize, not_before: Instant) -> Job {
        let event = super::super::events::Event {
            id: id.to_string(),
            event: crate::config::EventName::Down,
            service: "s".into(),
            status: crate::state::Health::Down,
            previous: None,
            since: None,
            at: Timestamp(0),
            host: "h".into(),
            critical: true,
            detail: String::new(),
            text: String::new(),
            down_for_s: None,
            also_affected: Vec::new(),
            restart_ok: None,
            checks: Vec::new(),
            diagnosis: None,
        };
        let d = Delivery {
            id: id.to_string(),
            notifier: notifier.into(),
            to: None,
            event,
            alert: None,
            attempts: 0,
            last_error: None,
            next_attempt: None,
        };
        Job { d, not_before, tries: 0 }
    }

    #[test]
    fn a_notifier_waiting_for_a_retry_holds_back_only_its_own_deliveries() {
        let now = Instant::now();
        let later = now + Duration::from_secs(5);
        let q = |jobs| Queue { jobs, ..Queue::default() };
        let jobs = vec![job("a", 1, later), job("a", 2, now), job("b", 3, now)];
        assert!(matches!(pick(&q(jobs), now), Pick::Ready(2)));
        let jobs = vec![job("a", 1, later), job("a", 2, now)];
        assert!(matches!(pick(&q(jobs), now), Pick::WaitUntil(t) if t == later));
        assert!(matches!(pick(&q(Vec::new()), now), Pick::Empty));
    }

    /// Each member of an Alertmanager pair (each Twilio recipient) is a
    /// destination of its own: one waiting for its retry, or hanging on an
    /// attempt, never holds back another's delivery.
    #[test]
    fn a_member_waiting_or_hanging_holds_back_only_its_own_deliveries() {
        let now = Instant::now();
        let later = now + Duration::from_secs(5);
        let to = |mut j: Job, to: &str| {
            j.d.to = Some(to.into());
            j
        };
        let jobs = vec![to(job("am", 1, later), "m1"), to(job("am", 2, now), "m2")];
        let q = Queue { jobs, ..Queue::default() };
        assert!(matches!(pick(&q, now), Pick::Ready(1)), "member 2 is not held back");
        // Member 1's attempt hangs (in progress): its next waits, member 2's goes.
        let jobs = vec![to(job("am", 3, now), "m1"), to(job("am", 4, now), "m2")];
        let mut q = Queue { jobs, ..Queue::default() };
        q.in_progress.insert("1".into(), "am|m1".into());
        assert!(matches!(pick(&q, now), Pick::Ready(1)));
        q.in_progress.insert("4".into(), "am|m2".into());
        assert!(matches!(pick(&q, now), Pick::Empty), "both destinations busy");
    }

    #[test]
    fn sync_keeps_retry_state_and_skips_what_is_done() {
        // No sender thread: nothing consumes the queue.
        let shared = Arc::new(Shared { q: Mutex::new(Queue::default()), cv: Condvar::new() });
        let d = Dispatcher { shared, running: false };
        let config = crate::config::parse(
            "notify:\n  - {type: webhook, name: a, url: 'http://127.0.0.1:1/'}\nservices:\n  - name: s\n    port: 1\n",
            std::path::Path::new("t.yml"),
        )
        .expect("config");
        let soon = Instant::now() + Duration::from_secs(60);
        let outbox = |ids: &[usize]| -> Vec<Delivery> {
            ids.iter().map(|i| job("a", *i, Instant::now()).d).collect()
        };
        d.sync(&config, outbox(&[1, 2, 3]), None, 2);
        {
            let mut q = d.shared.lock();
            q.jobs[0].not_before = soon; // 1 waits for a retry
            q.done.push(Done { id: "2".into(), outcome: DoneOutcome::Finished });
        }
        // The next cycle's outbox still has 1 and 2 (not yet applied) and a new 4.
        d.sync(&config, outbox(&[1, 2, 3, 4]), None, 0);
        let q = d.shared.lock();
        let ids: Vec<&str> = q.jobs.iter().map(|j| j.d.id.as_str()).collect();
        assert_eq!(ids, ["1", "3", "4"]);
        assert_eq!(q.jobs[0].not_before, soon);
        assert_eq!(q.dropped, 2);
        drop(q);
        assert!(d.metrics().contains("chatstack_notifications_dropped_total 2\n"));
        assert!(d.metrics().contains("chatstack_notification_queue_length 3\n"));
    }

    #[test]
    fn backoff_grows() {
        assert_eq!(backoff(1), Duration::from_millis(500));
        assert_eq!(backoff(2), Duration::from_secs(2));
        assert_eq!(backoff(3), Duration::from_secs(8));
        assert_eq!(later(4), Duration::from_secs(60));
        assert_eq!(later(8), Duration::from_secs(120));
        assert_eq!(later(400), Duration::from_secs(1800));
    }
}
