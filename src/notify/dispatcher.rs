//! The daemon's delivery: a bounded queue feeding one sender thread, so a
//! cycle never waits on a notifier.
//!
//! `after_cycle` (cycle thread) raises the events, enqueues their
//! deliveries and the heartbeat ping, and returns at once. The sender
//! thread ("notify") runs them in order: each attempt bounded by the
//! notifier's timeout; connection errors, timeouts, 5xx and 429 retried
//! with backoff (0.5 s, 2 s, 8 s; a Retry-After of up to a minute is
//! honoured); a notifier waiting for a retry holds back its later
//! deliveries (order per notifier is kept) but not the other notifiers'.
//! A delivery that still fails is handed back to the next cycle, which
//! keeps it in the state file and retries it later (1 min, doubling up to
//! 30 min). A full queue drops the oldest delivery, with a logged count.
//! At shutdown, what is left after the grace period goes to the state file.
//!
//! The queue lock is never held during network I/O.

use super::heartbeat;
use super::http::Attempt;
use super::{Delivery, heartbeat_due, keep_undelivered, log_events, route, take_undelivered};
use crate::config::{Config, Heartbeat, Notifier};
use crate::cycle::CycleOutput;
use crate::state::StateFile;
use crate::time::Timestamp;
use std::collections::{BTreeMap, HashSet, VecDeque};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// Deliveries (and the heartbeat) waiting for the sender thread.
pub const CAPACITY: usize = 256;
/// Attempts of one delivery before it is handed back to the state file.
pub const MAX_TRIES: u32 = 4;
/// The longest Retry-After we wait for; longer ones are cut to this.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// Backoff before retry number `tries` (1-based): 0.5 s, 2 s, 8 s, ...
fn backoff(tries: u32) -> Duration {
    Duration::from_millis(500u64.saturating_mul(4u64.saturating_pow(tries.saturating_sub(1))))
}

/// After a delivery has failed `attempts` times in all, when the daemon
/// tries it again: 1 min after the first round, doubling, at most 30 min.
fn later(attempts: u32) -> Duration {
    let rounds = attempts.div_ceil(MAX_TRIES).max(1);
    Duration::from_secs(60u64.saturating_mul(1u64 << (rounds - 1).min(5)))
        .min(Duration::from_secs(1800))
}

enum Job {
    Deliver { n: Arc<Notifier>, d: Box<Delivery>, not_before: Instant, tries: u32 },
    Heartbeat { hb: Heartbeat, ok: bool },
}

#[derive(Default)]
struct Counts {
    sent: u64,
    failed: u64,
}

#[derive(Default)]
struct Queue {
    jobs: VecDeque<Job>,
    /// The delivery being sent right now (persisted at shutdown if unfinished).
    in_progress: Option<Delivery>,
    /// Deliveries that used up their tries, for the next cycle to keep.
    gave_up: Vec<Delivery>,
    /// Shutdown: stop at this instant.
    stop_at: Option<Instant>,
    /// The sender thread has returned.
    finished: bool,
    per_notifier: BTreeMap<String, Counts>,
    dropped: u64,
    heartbeats: Counts,
    heartbeat_failing: bool,
    /// Where leftovers go at shutdown (the last cycle's state file).
    state_file: Option<PathBuf>,
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
    /// False when the sender thread could not be started: everything then
    /// goes to the state file for a later run.
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
                        "notify: cannot start the sender thread ({e}); alerts are kept in the state file"
                    );
                    false
                }
            }
        };
        Dispatcher { shared, running }
    }

    /// Cycle thread, under the state lock: raises the cycle's events and
    /// enqueues them (after any due undelivered ones) and the heartbeat.
    /// Never waits on the network.
    pub fn after_cycle(&self, config: &Config, state: &mut StateFile, out: &CycleOutput) {
        let now = Timestamp::now();
        // At the cycle's time, as healing judged it (see after_cycle_oneshot).
        let events = super::events::evaluate(config, state, out, out.doc.generated_at);
        log_events(config, &events);
        let gave_up = {
            let mut q = self.shared.lock();
            q.state_file = Some(config.state_file.clone());
            for n in &config.notify {
                q.per_notifier.entry(n.name.clone()).or_default();
            }
            std::mem::take(&mut q.gave_up)
        };
        keep_undelivered(state, gave_up);
        let new = route(config, &events);
        if !self.running {
            keep_undelivered(state, new);
            return;
        }
        let (due, not_yet): (Vec<Delivery>, Vec<Delivery>) = take_undelivered(config, state, now)
            .into_iter()
            .partition(|d| d.next_attempt.is_none_or(|t| t <= now));
        keep_undelivered(state, not_yet);
        let mut jobs = Vec::new();
        for d in due.into_iter().chain(new) {
            if let Some(n) = config.notify.iter().find(|n| n.name == d.notifier) {
                jobs.push(Job::Deliver {
                    n: Arc::new(n.clone()),
                    d: Box::new(d),
                    not_before: Instant::now(),
                    tries: 0,
                });
            }
        }
        if let Some((hb, ok)) = heartbeat_due(config, out) {
            jobs.push(Job::Heartbeat { hb: hb.clone(), ok });
        }
        self.push(jobs);
    }

    fn push(&self, jobs: Vec<Job>) {
        if jobs.is_empty() {
            return;
        }
        let (dropped_now, total) = {
            let mut q = self.shared.lock();
            let mut dropped_now = 0u64;
            for job in jobs {
                if matches!(job, Job::Heartbeat { .. }) {
                    // Only the latest ping matters.
                    q.jobs.retain(|j| !matches!(j, Job::Heartbeat { .. }));
                }
                q.jobs.push_back(job);
                while q.jobs.len() > CAPACITY {
                    let oldest =
                        q.jobs.iter().position(|j| matches!(j, Job::Deliver { .. })).unwrap_or(0);
                    q.jobs.remove(oldest);
                    dropped_now += 1;
                }
            }
            q.dropped += dropped_now;
            (dropped_now, q.dropped)
        };
        self.shared.cv.notify_all();
        if dropped_now > 0 {
            crate::warn!(
                "notify: queue full ({CAPACITY}): dropped the {dropped_now} oldest notification(s) ({total} dropped since start)"
            );
        }
    }

    /// Lets the sender finish within `grace`, then keeps what is left in
    /// the state file for the next run.
    pub fn shutdown(&self, grace: Duration) {
        let deadline = Instant::now() + grace;
        let leftovers = {
            let mut q = self.shared.lock();
            q.stop_at = Some(deadline);
            self.shared.cv.notify_all();
            while self.running && !q.finished {
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
            let mut left: Vec<Delivery> = std::mem::take(&mut q.gave_up);
            // Unfinished: it may still go out, but a duplicate beats a loss.
            left.extend(q.in_progress.take());
            left.extend(q.jobs.drain(..).filter_map(|j| match j {
                Job::Deliver { d, .. } => Some(*d),
                Job::Heartbeat { .. } => None,
            }));
            (left, q.state_file.clone())
        };
        match leftovers {
            (left, _) if left.is_empty() => {}
            (left, Some(path)) => persist(&path, left),
            (left, None) => {
                crate::warn!("notify: {} notification(s) not delivered at shutdown", left.len())
            }
        }
    }

    /// Prometheus text: notifications sent/failed per notifier, drops,
    /// heartbeat pings and the queue length.
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
                "Notifications delivered (sent) or given up on after retries (failed), per notifier.",
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
            "Notifications dropped because the queue was full.",
        );
        let _ = writeln!(o, "chatstack_notifications_dropped_total {}", q.dropped);
        family(
            &mut o,
            "chatstack_notification_queue_length",
            "gauge",
            "Deliveries waiting for the sender thread.",
        );
        let _ = writeln!(o, "chatstack_notification_queue_length {}", q.jobs.len());
        family(&mut o, "chatstack_heartbeats_total", "counter", "Heartbeat pings, by result.");
        let _ = writeln!(o, "chatstack_heartbeats_total{{result=\"sent\"}} {}", q.heartbeats.sent);
        let _ =
            writeln!(o, "chatstack_heartbeats_total{{result=\"failed\"}} {}", q.heartbeats.failed);
        o
    }
}

/// Appends leftovers to the state file's `undelivered` (under the lock).
fn persist(path: &std::path::Path, left: Vec<Delivery>) {
    let n = left.len();
    let _lock = match crate::fsutil::lock(path, Duration::from_secs(1)) {
        Ok(l) => l,
        Err(_) => {
            crate::warn!("notify: {n} notification(s) not delivered at shutdown (state file busy)");
            return;
        }
    };
    let mut state = match crate::statefile::load(path) {
        Ok(s) => s,
        Err(e) => {
            crate::warn!("notify: {n} notification(s) not delivered at shutdown: {e}");
            return;
        }
    };
    keep_undelivered(&mut state, left);
    match crate::statefile::save(path, &state) {
        Ok(()) => crate::info!(
            "notify: kept {n} undelivered notification(s) in the state file for the next run"
        ),
        Err(e) => crate::warn!("notify: {n} notification(s) not delivered at shutdown: {e}"),
    }
}

enum Pick {
    Ready(usize),
    WaitUntil(Instant),
    Empty,
}

/// The next job to run: the first that is due, skipping notifiers whose
/// earliest job is still waiting for its retry (order per notifier).
fn pick(jobs: &VecDeque<Job>, now: Instant) -> Pick {
    let mut blocked: HashSet<&str> = HashSet::new();
    let mut earliest: Option<Instant> = None;
    for (i, j) in jobs.iter().enumerate() {
        match j {
            Job::Heartbeat { .. } => return Pick::Ready(i),
            Job::Deliver { n, not_before, .. } => {
                if blocked.contains(n.name.as_str()) {
                    continue;
                }
                if *not_before <= now {
                    return Pick::Ready(i);
                }
                blocked.insert(n.name.as_str());
                earliest = Some(earliest.map_or(*not_before, |e| e.min(*not_before)));
            }
        }
    }
    earliest.map_or(Pick::Empty, Pick::WaitUntil)
}

/// The sender thread.
fn sender(shared: &Shared) {
    loop {
        let job = {
            let mut q = shared.lock();
            loop {
                let now = Instant::now();
                if let Some(stop) = q.stop_at
                    && (now >= stop || q.jobs.is_empty())
                {
                    q.finished = true;
                    shared.cv.notify_all();
                    return;
                }
                let wait = match pick(&q.jobs, now) {
                    Pick::Ready(i) => {
                        if let Some(job) = q.jobs.remove(i) {
                            if let Job::Deliver { d, .. } = &job {
                                q.in_progress = Some(Delivery::clone(d));
                            }
                            break job;
                        }
                        continue;
                    }
                    Pick::WaitUntil(t) => t.saturating_duration_since(now),
                    Pick::Empty => Duration::from_secs(3600),
                };
                let wait = match q.stop_at {
                    Some(stop) => wait.min(stop.saturating_duration_since(now)),
                    None => wait,
                };
                q = shared
                    .cv
                    .wait_timeout(q, wait)
                    .map(|(g, _)| g)
                    .unwrap_or_else(|e| e.into_inner().0);
            }
        };
        match job {
            Job::Heartbeat { hb, ok } => {
                let r = heartbeat::ping(&hb, ok, hb.timeout);
                let mut q = shared.lock();
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
                            crate::warn!(
                                "heartbeat: ping failed: {why} (logged again only once it works)"
                            );
                        }
                    }
                }
            }
            Job::Deliver { n, d, tries, .. } => deliver(shared, n, d, tries),
        }
    }
}

fn deliver(shared: &Shared, n: Arc<Notifier>, mut d: Box<Delivery>, tries: u32) {
    let tries = tries + 1;
    d.attempts = d.attempts.saturating_add(1);
    let result = super::attempt(&n, d.to.as_deref(), &d.event, n.timeout);
    let label = d.event.label();
    let mut q = shared.lock();
    q.in_progress = None;
    let message = match result {
        Attempt::Sent => {
            q.per_notifier.entry(n.name.clone()).or_default().sent += 1;
            (false, format!("notify: {}: sent {label}", n.name))
        }
        Attempt::Fail(why) => {
            q.per_notifier.entry(n.name.clone()).or_default().failed += 1;
            (
                true,
                format!(
                    "notify: {}: {label} not delivered: {why}; not retried (check the notifier's config)",
                    n.name
                ),
            )
        }
        Attempt::Retry { why, after } if tries < MAX_TRIES && q.stop_at.is_none() => {
            let wait = after.map_or_else(|| backoff(tries), |a| a.min(MAX_RETRY_AFTER));
            d.last_error = Some(why.clone());
            let text = format!(
                "notify: {}: {label}: {why}; retry {tries} of {} in {} ms",
                n.name,
                MAX_TRIES - 1,
                wait.as_millis()
            );
            // In front: it keeps its place before the notifier's later ones.
            q.jobs.push_front(Job::Deliver { n, d, not_before: Instant::now() + wait, tries });
            (false, text)
        }
        Attempt::Retry { why, .. } => {
            q.per_notifier.entry(n.name.clone()).or_default().failed += 1;
            let text = format!(
                "notify: {}: {label} not delivered after {tries} attempt(s): {why}; kept for a later retry",
                n.name
            );
            d.last_error = Some(why);
            d.next_attempt = Some(Timestamp::now().plus(later(d.attempts)));
            q.gave_up.push(*d);
            (true, text)
        }
    };
    drop(q);
    shared.cv.notify_all();
    match message {
        (true, m) => crate::warn!("{m}"),
        (false, m) => crate::info!("{m}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{NotifierKind, Webhook};

    fn notifier(name: &str) -> Arc<Notifier> {
        Arc::new(Notifier {
            name: name.into(),
            kind: NotifierKind::Webhook(Webhook {
                url: "http://127.0.0.1:1/".into(),
                bearer_token_file: None,
                headers: Vec::new(),
            }),
            timeout: Duration::from_secs(1),
            services: Vec::new(),
            events: Vec::new(),
        })
    }

    fn job(n: &Arc<Notifier>, id: usize, not_before: Instant) -> Job {
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
        };
        let d = Delivery {
            notifier: n.name.clone(),
            to: None,
            event,
            attempts: 0,
            last_error: None,
            next_attempt: None,
        };
        Job::Deliver { n: Arc::clone(n), d: Box::new(d), not_before, tries: 0 }
    }

    fn id(j: &Job) -> String {
        match j {
            Job::Deliver { d, .. } => d.event.id.clone(),
            Job::Heartbeat { .. } => "hb".into(),
        }
    }

    #[test]
    fn a_full_queue_drops_the_oldest_and_counts() {
        // No sender thread: nothing consumes the queue.
        let shared = Arc::new(Shared { q: Mutex::new(Queue::default()), cv: Condvar::new() });
        let d = Dispatcher { shared, running: false };
        let n = notifier("a");
        let now = Instant::now();
        d.push((0..CAPACITY + 10).map(|i| job(&n, i, now)).collect());
        let q = d.shared.lock();
        assert_eq!(q.jobs.len(), CAPACITY);
        assert_eq!(q.dropped, 10);
        assert_eq!(q.jobs.front().map(id).as_deref(), Some("10"));
        drop(q);
        assert!(d.metrics().contains("chatstack_notifications_dropped_total 10\n"));
    }

    #[test]
    fn a_notifier_waiting_for_a_retry_holds_back_only_its_own_jobs() {
        let (a, b) = (notifier("a"), notifier("b"));
        let now = Instant::now();
        let later = now + Duration::from_secs(5);
        let jobs: VecDeque<Job> = [job(&a, 1, later), job(&a, 2, now), job(&b, 3, now)].into();
        assert!(matches!(pick(&jobs, now), Pick::Ready(2)));
        let jobs: VecDeque<Job> = [job(&a, 1, later), job(&a, 2, now)].into();
        assert!(matches!(pick(&jobs, now), Pick::WaitUntil(t) if t == later));
        assert!(matches!(pick(&VecDeque::new(), now), Pick::Empty));
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
