//! Alerts: which events a cycle raises (`events`), how each kind of
//! notifier sends one (`webhook`, `slack`, `twilio`, sharing `http`), the
//! heartbeat, and delivery — in one-shot `check` runs (`deliver_oneshot`)
//! and in the daemon (`Dispatcher`).
//!
//! Delivery is durable: `raise` (called by the cycle) puts every event's
//! deliveries — one per notifier, and per recipient for Twilio — in the
//! state file's outbox (`undelivered`) before the cycle ends, so a run or
//! daemon killed at any moment loses none; whoever sends one reports it
//! done and the next save forgets it. Delivery is at least once (events
//! carry an `id`). The outbox is bounded (oldest dropped, counted); an event
//! older than a day or for a notifier no longer configured is dropped with
//! a warning.
//!
//! Never here: probing, waiting on the cycle, writing a file, or a secret
//! in a message.

pub mod alertmanager;
/// The diagnosis as plain text (Slack, Alertmanager, Twilio, email).
pub use crate::diagnosis::text as diagnosis_text;
pub mod events;
pub mod heartbeat;
pub mod http;
pub mod slack;
pub mod twilio;
pub mod webhook;

mod dispatcher;

pub use dispatcher::Dispatcher;
pub use events::Event;

use crate::config::{Config, EventName, Heartbeat, Notifier, NotifierKind};
use crate::error::Error;
use crate::heal::HealNote;
use crate::state::{Health, StateFile};
use crate::status::StatusDoc;
use crate::time::Timestamp;
use http::Attempt;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::time::{Duration, Instant};

/// One event for one notifier (one recipient for Twilio).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    /// The event's id, the notifier and the recipient: what a sender
    /// reports done (older state files have none: derived on load).
    #[serde(default)]
    pub id: String,
    /// The notifier's `name` (as in the config).
    pub notifier: String,
    /// Twilio: the recipient; Alertmanager: the member's URL.
    #[serde(default)]
    pub to: Option<String>,
    pub event: Event,
    /// Alertmanager: the alert to post, exactly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert: Option<serde_json::Value>,
    /// Attempts so far, over all runs.
    #[serde(default)]
    pub attempts: u32,
    /// Why the last attempt failed (scrubbed of secrets and URLs).
    #[serde(default)]
    pub last_error: Option<String>,
    /// The daemon waits until then before trying again (a `check` run
    /// always tries).
    #[serde(default)]
    pub next_attempt: Option<Timestamp>,
}

impl Delivery {
    fn key(&self) -> String {
        format!("{}|{}|{}", self.event.id, self.notifier, self.to.as_deref().unwrap_or(""))
    }

    /// Where it goes: the notifier and, for the kinds with several, the
    /// recipient or member. Each destination is delivered on its own (its
    /// own order, backoff and time budget), so a dead Alertmanager member or
    /// a failing Twilio number never delays or prevents delivery to another.
    pub fn destination(&self) -> String {
        format!("{}|{}", self.notifier, self.to.as_deref().unwrap_or(""))
    }
}

/// How logs name a delivery's destination without its URL (which may
/// carry credentials): the notifier, and which member or recipient, by
/// position in the config ("am (member 2)", "sms (recipient 1)").
pub fn destination_label(n: &Notifier, d: &Delivery) -> String {
    let Some(to) = d.to.as_deref() else { return n.name.clone() };
    let (list, what): (&[String], &str) = match &n.kind {
        NotifierKind::Alertmanager(a) => (&a.urls, "member"),
        NotifierKind::Twilio(t) => (&t.to, "recipient"),
        NotifierKind::Webhook(_) | NotifierKind::Slack(_) => return n.name.clone(),
    };
    match list.iter().position(|x| x == to) {
        Some(i) if list.len() > 1 => format!("{} ({what} {})", n.name, i + 1),
        _ => n.name.clone(),
    }
}

/// Undelivered events older than this are dropped (with a warning): a
/// day-old "down" is history, not news.
pub const MAX_AGE: Duration = Duration::from_secs(24 * 3600);
/// At most this many undelivered deliveries are kept in the state file.
pub const MAX_KEPT: usize = 500;
/// Attempts of one delivery within one `check` run (time permitting).
const ONESHOT_TRIES: u32 = 3;

/// One attempt to deliver `e` through `n` (to `to`, for the kinds that
/// have recipients), bounded by `timeout`. Whatever went wrong comes back
/// scrubbed of the notifier's secrets and of every URL.
pub fn attempt(n: &Notifier, d: &Delivery, timeout: Duration) -> Attempt {
    let mut secrets = secrets(n);
    let (to, e) = (d.to.as_deref(), &d.event);
    let result = match &n.kind {
        NotifierKind::Webhook(w) => webhook::send(w, e, timeout, &mut secrets),
        NotifierKind::Slack(s) => slack::send(s, e, timeout),
        NotifierKind::Twilio(t) => match to {
            Some(to) => twilio::send(t, &n.name, to, e, timeout, &mut secrets),
            None => Err(Attempt::Fail("no recipient".into())),
        },
        NotifierKind::Alertmanager(a) => match (to, &d.alert) {
            (Some(url), Some(alert)) => alertmanager::send(a, url, alert, timeout, &mut secrets),
            _ => Err(Attempt::Fail("not an alert".into())),
        },
    };
    match result {
        Ok(a) | Err(a) => http::scrub_attempt(a, &secrets),
    }
}

/// The secrets in a notifier's config (those read from files when sending
/// are added by its `send`).
fn secrets(n: &Notifier) -> Vec<String> {
    match &n.kind {
        NotifierKind::Webhook(w) => webhook::secrets(w),
        NotifierKind::Slack(s) => slack::secrets(s),
        NotifierKind::Twilio(_) => Vec::new(),
        NotifierKind::Alertmanager(a) => alertmanager::secrets(a),
    }
}

/// One delivery per recipient of an event: Twilio sends one SMS per
/// number, the others one message; Alertmanager takes no events (it is
/// level-triggered: `alertmanager::sync`).
fn recipients(n: &Notifier) -> Vec<Option<String>> {
    match &n.kind {
        NotifierKind::Twilio(t) => t.to.iter().cloned().map(Some).collect(),
        NotifierKind::Webhook(_) | NotifierKind::Slack(_) => vec![None],
        NotifierKind::Alertmanager(_) => Vec::new(),
    }
}

/// Whether notifier `n` wants event `e` (its `services:` and `events:` filters).
///
/// A service filter also matches the services named in `also_affected`
/// (their own down alerts are folded into this one). An `up` goes to the
/// notifiers that were told about the problem it ends: after a degraded,
/// only to those that take `degraded`.
pub fn wants(n: &Notifier, e: &Event) -> bool {
    let service_ok = n.services.is_empty()
        || n.services.iter().any(|s| *s == e.service || e.also_affected.contains(s));
    let takes = |x: EventName| n.events.is_empty() || n.events.contains(&x);
    let event_ok = takes(e.event)
        && match (e.event, e.previous) {
            (EventName::Up, Some(Health::Degraded)) => takes(EventName::Degraded),
            _ => true,
        };
    service_ok && event_ok
}

/// The deliveries for `events`, in order.
pub fn route(config: &Config, events: &[Event]) -> Vec<Delivery> {
    let mut out = Vec::new();
    for e in events {
        for n in config.notify.iter().filter(|n| wants(n, e)) {
            for to in recipients(n) {
                let mut d = Delivery {
                    id: String::new(),
                    notifier: n.name.clone(),
                    to,
                    event: e.clone(),
                    alert: None,
                    attempts: 0,
                    last_error: None,
                    next_attempt: None,
                };
                d.id = d.key();
                out.push(d);
            }
        }
    }
    out
}

/// The outbox as deliveries, dropping (with a warning) what is unreadable,
/// too old, or for a notifier no longer configured.
pub fn outbox(config: &Config, state: &StateFile, now: Timestamp) -> Vec<Delivery> {
    let mut kept = Vec::new();
    let (mut unreadable, mut old, mut orphaned) = (0usize, 0usize, 0usize);
    for v in &state.undelivered {
        match serde_json::from_value::<Delivery>(v.clone()) {
            Err(_) => unreadable += 1,
            Ok(d) if now.since(d.event.at) > MAX_AGE => old += 1,
            Ok(d) if !config.notify.iter().any(|n| n.name == d.notifier) => orphaned += 1,
            Ok(mut d) => {
                if d.id.is_empty() {
                    d.id = d.key();
                }
                kept.push(d);
            }
        }
    }
    if unreadable > 0 {
        crate::warn!(
            "notify: dropped {unreadable} unreadable undelivered notification(s) from the state file"
        );
    }
    if old > 0 {
        crate::warn!("notify: dropped {old} undelivered notification(s) older than a day");
    }
    if orphaned > 0 {
        crate::warn!(
            "notify: dropped {orphaned} undelivered notification(s) for notifiers no longer configured"
        );
    }
    kept
}

/// Writes `deliveries` as the outbox, oldest first, at most `MAX_KEPT`;
/// returns how many of the oldest were dropped to fit.
pub fn set_outbox(state: &mut StateFile, deliveries: Vec<Delivery>) -> usize {
    let excess = deliveries.len().saturating_sub(MAX_KEPT);
    state.undelivered =
        deliveries.into_iter().skip(excess).filter_map(|d| serde_json::to_value(d).ok()).collect();
    if excess > 0 {
        crate::warn!(
            "notify: more than {MAX_KEPT} undelivered notifications: dropped the {excess} oldest"
        );
    }
    excess
}

/// What `raise` did.
#[derive(Debug, Default)]
pub struct Raised {
    pub events: Vec<Event>,
    /// Deliveries dropped because the outbox was full.
    pub dropped: usize,
}

/// Cycle thread: evaluates this cycle's events (updating the alert memory
/// in `state`) at the cycle's time, as healing judged it, and puts their
/// deliveries in the outbox, where they are durable once `state` is saved.
pub fn raise(
    config: &Config,
    state: &mut StateFile,
    doc: &StatusDoc,
    notes: &[HealNote],
) -> Raised {
    let events = events::evaluate(config, state, doc, notes, doc.generated_at);
    log_events(config, &events);
    let mut all = outbox(config, state, Timestamp::now());
    all.extend(route(config, &events));
    state.alertmanager.retain(|name, _| {
        config
            .notify
            .iter()
            .any(|n| &n.name == name && matches!(n.kind, NotifierKind::Alertmanager(_)))
    });
    for n in &config.notify {
        let NotifierKind::Alertmanager(am) = &n.kind else { continue };
        for d in alertmanager::sync(config, n, am, state, doc) {
            // A newer post of the same alert to the same member replaces
            // one still waiting: only the latest state matters to it.
            let k = alertmanager::alert_key(&d);
            all.retain(|old| {
                !(old.notifier == d.notifier && old.to == d.to && alertmanager::alert_key(old) == k)
            });
            crate::info!("alert: {} -> {}", d.event.text, n.name);
            all.push(d);
        }
    }
    let dropped = set_outbox(state, all);
    Raised { events, dropped }
}

/// Puts the diagnoses captured after this cycle's status into the alerts
/// this cycle raised that are still in the outbox: its down and reminder
/// events, and its Alertmanager `service_down` alerts (annotation
/// `diagnosis`). Earlier cycles' deliveries are left as they were sent.
pub fn attach_diagnoses(state: &mut StateFile, doc: &StatusDoc) {
    for v in &mut state.undelivered {
        let Ok(mut d) = serde_json::from_value::<Delivery>(v.clone()) else { continue };
        let Some(diag) = doc
            .services
            .iter()
            .find(|r| r.name == d.event.service)
            .and_then(|r| r.incident.as_ref())
            .and_then(|i| i.diagnosis.as_ref())
        else {
            continue;
        };
        if d.event.at != doc.generated_at || d.event.diagnosis.is_some() {
            continue;
        }
        match &mut d.alert {
            Some(alert) => alertmanager::annotate(alert, diag),
            None if matches!(d.event.event, EventName::Down | EventName::Reminder) => {
                d.event.diagnosis = Some(diag.clone());
            }
            None => continue,
        }
        if let Ok(new) = serde_json::to_value(&d) {
            *v = new;
        }
    }
}

/// Applies what senders report done: delivered or given up deliveries
/// leave the outbox; retried ones keep their attempt count and next try.
pub fn apply_done(state: &mut StateFile, done: &[Done]) {
    if done.is_empty() {
        return;
    }
    let mut kept = Vec::new();
    for v in std::mem::take(&mut state.undelivered) {
        let Ok(mut d) = serde_json::from_value::<Delivery>(v.clone()) else {
            kept.push(v);
            continue;
        };
        if d.id.is_empty() {
            d.id = d.key();
        }
        match done.iter().rev().find(|x| x.id == d.id) {
            Some(Done { outcome: DoneOutcome::Finished, .. }) => {}
            Some(Done {
                outcome: DoneOutcome::Retry { attempts, last_error, next_attempt },
                ..
            }) => {
                d.attempts = d.attempts.max(*attempts);
                d.last_error = Some(last_error.clone());
                d.next_attempt = *next_attempt;
                kept.extend(serde_json::to_value(d).ok());
            }
            None => kept.push(v),
        }
    }
    state.undelivered = kept;
}

/// A delivery a sender is done with, for `apply_done`.
#[derive(Debug, Clone, PartialEq)]
pub struct Done {
    pub id: String,
    pub outcome: DoneOutcome,
}

#[derive(Debug, Clone, PartialEq)]
pub enum DoneOutcome {
    /// Sent, or refused for good (the receiver's 4xx): out of the outbox.
    Finished,
    /// Not yet: tried `attempts` times in all, next no sooner than then.
    Retry { attempts: u32, last_error: String, next_attempt: Option<Timestamp> },
}

/// Heartbeat due after this cycle: `Some(ok)` when configured and every
/// service was probed (a `check --only` run says nothing about the host).
pub fn heartbeat_due<'a>(config: &'a Config, doc: &StatusDoc) -> Option<(&'a Heartbeat, bool)> {
    let hb = config.heartbeat.as_ref()?;
    if doc.services.len() != config.services.len() {
        return None;
    }
    Some((hb, doc.overall == Health::Up))
}

fn log_events(config: &Config, events: &[Event]) {
    for e in events {
        let to: Vec<&str> =
            config.notify.iter().filter(|n| wants(n, e)).map(|n| n.name.as_str()).collect();
        let to = if to.is_empty() { "no notifier".to_string() } else { to.join(", ") };
        crate::info!("alert: {} [{}] -> {to}", e.text, events::event_str(e.event));
    }
}

/// `check`: delivers the outbox (earlier runs' leftovers first, then this
/// cycle's) within one deadline: each destination (a notifier; each member
/// of an Alertmanager pair and each Twilio recipient on its own) gets its
/// notifier's `timeout` in all, and destinations and the heartbeat run in
/// parallel, so a hanging or dead receiver costs a `check` run at most the
/// longest timeout and never uses up another destination's time. What is
/// not delivered stays in the outbox for the next run.
/// Returns whether the outbox changed (and so needs saving).
pub fn deliver_oneshot(
    config: &Config,
    state: &mut StateFile,
    heartbeat: Option<(&Heartbeat, bool)>,
) -> bool {
    let queue = outbox(config, state, Timestamp::now());
    if queue.is_empty() && state.undelivered.is_empty() {
        deliver_all(config, queue, heartbeat);
        return false;
    }
    let unsent = deliver_all(config, queue, heartbeat);
    set_outbox(state, unsent);
    true
}

/// The queue split by destination, each in its order, destinations in the
/// order they first appear.
fn by_destination(queue: Vec<Delivery>) -> Vec<Vec<Delivery>> {
    let mut lanes: Vec<Vec<Delivery>> = Vec::new();
    for d in queue {
        let dest = d.destination();
        match lanes.iter_mut().find(|l| l[0].destination() == dest) {
            Some(lane) => lane.push(d),
            None => lanes.push(vec![d]),
        }
    }
    lanes
}

/// Delivers in parallel per destination, each within its notifier's
/// timeout; returns what was not delivered (and is worth another try), in
/// the queue's order.
fn deliver_all(
    config: &Config,
    queue: Vec<Delivery>,
    heartbeat: Option<(&Heartbeat, bool)>,
) -> Vec<Delivery> {
    if queue.is_empty() && heartbeat.is_none() {
        return Vec::new();
    }
    let started = Instant::now();
    let order: Vec<String> = queue.iter().map(|d| d.id.clone()).collect();
    let mut lanes: Vec<(&Notifier, Vec<Delivery>)> = Vec::new();
    let mut unsent = Vec::new();
    for lane in by_destination(queue) {
        match config.notify.iter().find(|n| n.name == lane[0].notifier) {
            Some(n) => lanes.push((n, lane)),
            None => unsent.extend(lane),
        }
    }
    std::thread::scope(|s| {
        let mut handles = Vec::new();
        for (n, ds) in lanes {
            let deadline = started + n.timeout;
            let backup = ds.clone();
            let spawned = std::thread::Builder::new()
                .name("notify".into())
                .spawn_scoped(s, move || deliver_serially(n, ds, deadline));
            match spawned {
                Ok(h) => handles.push(h),
                Err(e) => {
                    crate::error!("notify: cannot start a sender thread: {e}");
                    unsent.extend(backup);
                }
            }
        }
        if let Some((hb, ok)) = heartbeat {
            heartbeat_now(hb, ok);
        }
        for h in handles {
            match h.join() {
                Ok(left) => unsent.extend(left),
                Err(_) => crate::error!("notify: a sender thread failed"),
            }
        }
    });
    unsent.sort_by_key(|d| order.iter().position(|id| *id == d.id));
    unsent
}

/// One destination's deliveries in order, until `deadline`. After it has
/// failed with a connection problem, the rest wait for the next run rather
/// than each paying the timeout.
fn deliver_serially(n: &Notifier, ds: Vec<Delivery>, deadline: Instant) -> Vec<Delivery> {
    let Some(first) = ds.first() else { return Vec::new() };
    let label = destination_label(n, first);
    let mut unsent = Vec::new();
    let mut broken: Option<String> = None;
    let mut sent = 0usize;
    for mut d in ds {
        if broken.is_some() {
            unsent.push(d);
            continue;
        }
        let mut tries = 0;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                broken = Some(d.last_error.clone().unwrap_or_else(|| "out of time".into()));
                unsent.push(d);
                break;
            }
            tries += 1;
            d.attempts = d.attempts.saturating_add(1);
            match attempt(n, &d, left.min(n.timeout)) {
                Attempt::Sent => {
                    sent += 1;
                    break;
                }
                Attempt::Fail(why) => {
                    crate::error!(
                        "notify: {label}: {} not delivered: {why}; not retried (check the notifier's config)",
                        d.event.label()
                    );
                    break;
                }
                Attempt::Retry { why, after } => {
                    let wait = after.unwrap_or(Duration::from_millis(200 * u64::from(tries)));
                    d.last_error = Some(why.clone());
                    if tries >= ONESHOT_TRIES || Instant::now() + wait >= deadline {
                        broken = Some(why);
                        unsent.push(d);
                        break;
                    }
                    std::thread::sleep(wait);
                }
            }
        }
    }
    if sent > 0 {
        crate::info!("notify: {label}: sent {sent} notification(s)");
    }
    if let Some(why) = broken {
        crate::warn!(
            "notify: {label}: {} notification(s) not delivered ({why}); kept for the next run",
            unsent.len()
        );
    }
    unsent
}

/// Pings the heartbeat now (one-shot), logging a failure.
fn heartbeat_now(hb: &Heartbeat, ok: bool) {
    if let Err(why) = heartbeat::ping(hb, ok, hb.timeout) {
        crate::warn!("heartbeat: ping failed: {why}");
    }
}

/// `notify-test`: one test event through every notifier (ignoring their
/// `services`/`events` filters), in parallel, each bounded by its timeout.
/// Prints one line per notifier. Exit code: 0 when every notifier
/// delivered, 1 when any failed or none is configured.
pub fn test_all(config: &Config) -> Result<u8, Error> {
    if config.notify.is_empty() {
        let mut err = std::io::stderr().lock();
        let _ = writeln!(
            err,
            "chatstack-status: no notifiers configured in {} (see `notify:`)",
            config.path.display()
        );
        return Ok(1);
    }
    let now = Timestamp::now();
    let results: Vec<Result<usize, String>> = std::thread::scope(|s| {
        let handles: Vec<_> = config
            .notify
            .iter()
            .map(|n| {
                std::thread::Builder::new()
                    .name("notify-test".into())
                    .spawn_scoped(s, move || test_one(config, n, now))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| match h {
                Ok(h) => h.join().unwrap_or_else(|_| Err("internal error".into())),
                Err(e) => Err(format!("cannot start a thread: {e}")),
            })
            .collect()
    });
    let mut text = String::new();
    let mut all_ok = true;
    for (n, r) in config.notify.iter().zip(results) {
        let kind = n.kind.name();
        match r {
            Ok(1) => text.push_str(&format!("{} ({kind}): ok\n", n.name)),
            Ok(k) => text.push_str(&format!("{} ({kind}): ok ({k} messages)\n", n.name)),
            Err(why) => {
                all_ok = false;
                text.push_str(&format!("{} ({kind}): error: {why}\n", n.name));
            }
        }
    }
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
    Ok(if all_ok { 0 } else { 1 })
}

fn test_event(n: &Notifier, host: &str, now: Timestamp) -> Event {
    Event {
        id: format!("{host}/chatstack-status/test/{}", now.0),
        event: EventName::Test,
        service: "chatstack-status".into(),
        status: Health::Up,
        previous: None,
        since: None,
        at: now,
        host: host.to_string(),
        critical: false,
        detail: "test notification".into(),
        text: format!(
            "Test notification from chatstack-status on {host}: notifier {} works.",
            n.name
        ),
        down_for_s: None,
        also_affected: Vec::new(),
        restart_ok: None,
        checks: Vec::new(),
        diagnosis: None,
    }
}

/// Sends the test event; Ok(messages sent) or the first error.
fn test_one(config: &Config, n: &Notifier, now: Timestamp) -> Result<usize, String> {
    let e = test_event(n, &config.host, now);
    let alert = match &n.kind {
        NotifierKind::Alertmanager(a) => Some(alertmanager::test_alert(config, a, now)),
        _ => None,
    };
    let tos: Vec<Option<String>> = match &n.kind {
        NotifierKind::Alertmanager(a) => a.urls.iter().cloned().map(Some).collect(),
        _ => recipients(n),
    };
    let mut sent = 0;
    for to in tos {
        let d = Delivery {
            id: String::new(),
            notifier: n.name.clone(),
            to: to.clone(),
            event: e.clone(),
            alert: alert.clone(),
            attempts: 0,
            last_error: None,
            next_attempt: None,
        };
        match attempt(n, &d, n.timeout) {
            Attempt::Sent => sent += 1,
            Attempt::Retry { why, .. } | Attempt::Fail(why) => {
                return Err(match to {
                    Some(to) => format!("to {}: {why}", http::scrub(&to, &secrets(n))),
                    None => why,
                });
            }
        }
    }
    Ok(sent)
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod why_tests;
