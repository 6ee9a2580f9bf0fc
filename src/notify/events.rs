//! Which alerts a cycle raises: the alert state machine, pure.
//!
//! `evaluate` reads the cycle's result and each service's alert memory in the
//! state file (`alerted`, `pending`, ...), updates that memory and returns the
//! events. It reads no clock and does no I/O, so `check` from cron and the
//! daemon raise exactly the same events from the same state file.
//!
//! The rules (README "Alerts"):
//! - An event fires on a transition of the *alerted* state, once the new
//!   state has held for the service's `confirm` cycles. A service first seen
//!   up raises nothing; first seen down (or degraded), it does.
//! - `down` when entering down; `up` when leaving an alerted down (to up or
//!   degraded) or an alerted degraded (to up), with how long it was down;
//!   `degraded` when entering degraded from up; `reminder` every `reminder`
//!   while still down; `restart` and `heal_suspended` from the healing notes.
//! - Muted services raise nothing; their pending state keeps counting, and a
//!   service still down when its mute ends raises one down event then.
//! - Flapping (`state::loops`): one `flapping` event when it starts, no
//!   transitions while it lasts, one `flapping_ended` when it settles (the
//!   alerted state is then the status it settled on).
//! - While one of its `depends_on` is down, a service's own down is held
//!   (not announced); it is named in the dependency's down event instead
//!   ("also affected"). If it is still down when the dependency recovers,
//!   its own down fires then.

use crate::config::EventName;
use crate::config::{Config, Service};
use crate::heal::{HealNote, HealNoteKind};
use crate::probe::CheckStatus;
use crate::state::{Health, ServiceState, StateFile};
use crate::status::{CheckReport, ServiceReport, StatusDoc};
use crate::time::{Timestamp, human_duration};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};

/// One alert, as a webhook receives it (JSON) and as every notifier renders it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Unique per event (host, service, event, time): lets receivers dedupe.
    pub id: String,
    pub event: EventName,
    pub service: String,
    /// The service's status now.
    pub status: Health,
    /// The state announced before (None: never announced).
    #[serde(default)]
    pub previous: Option<Health>,
    /// When the service entered `status`.
    #[serde(default)]
    pub since: Option<Timestamp>,
    /// When the event was raised.
    pub at: Timestamp,
    pub host: String,
    #[serde(default)]
    pub critical: bool,
    /// What is wrong (failing checks), or what healing did.
    #[serde(default)]
    pub detail: String,
    /// One readable line: what Slack shows and the log says.
    #[serde(default)]
    pub text: String,
    /// Seconds the service was down (`up` events after a down).
    #[serde(default)]
    pub down_for_s: Option<u64>,
    /// Services that depend on this one and are down with it; their own
    /// down alerts are folded into this one.
    #[serde(default)]
    pub also_affected: Vec<String>,
    /// A `rebooted` event: the previous boot's last cycle (the host was
    /// down, or at least unwatched, from then until `since`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_boot_last_cycle_at: Option<Timestamp>,
    /// For `restart` events: whether the restart command succeeded.
    #[serde(default)]
    pub restart_ok: Option<bool>,
    #[serde(default)]
    pub checks: Vec<CheckReport>,
    /// The open incident's diagnosis (down and reminder events; null
    /// otherwise, or before it is captured, or with `diagnosis: false`).
    #[serde(default)]
    pub diagnosis: Option<crate::diagnosis::Diagnosis>,
}

impl Event {
    /// An event about `svc` as this cycle's report `r` shows it. What only
    /// some events carry (`previous`, `down_for_s`, `also_affected`,
    /// `restart_ok`, `diagnosis`, `previous_boot_last_cycle_at`) starts
    /// empty: a caller sets it with `..Event::about(…)`.
    fn about(
        svc: &Service,
        r: &ServiceReport,
        event: EventName,
        host: &str,
        now: Timestamp,
        detail: String,
        text: String,
    ) -> Event {
        Event {
            id: event_id(host, &svc.name, event, now),
            event,
            service: svc.name.clone(),
            status: r.status,
            previous: None,
            since: r.since,
            at: now,
            host: host.to_string(),
            critical: svc.critical,
            detail,
            text,
            down_for_s: None,
            also_affected: Vec::new(),
            previous_boot_last_cycle_at: None,
            restart_ok: None,
            checks: r.checks.clone(),
            diagnosis: None,
        }
    }

    /// "AI-Memory down", for log lines.
    pub fn label(&self) -> String {
        format!("{} {}", self.service, event_str(self.event))
    }
}

pub fn event_str(e: EventName) -> &'static str {
    e.as_str()
}

/// The most characters of check details carried in one event.
const MAX_DETAIL: usize = 400;

/// Updates the alert memory in `state` for this cycle and returns the events
/// it raises, in config order (healing events after state changes).
pub fn evaluate(
    config: &Config,
    state: &mut StateFile,
    doc: &StatusDoc,
    notes: &[HealNote],
    now: Timestamp,
) -> Vec<Event> {
    let reports: HashMap<&str, &ServiceReport> =
        doc.services.iter().map(|r| (r.name.as_str(), r)).collect();
    let health_of = |name: &str| -> Option<Health> {
        reports
            .get(name)
            .map(|r| r.status)
            .or_else(|| state.services.get(name).and_then(|s| s.status))
    };
    let down: HashSet<&str> = config
        .services
        .iter()
        .map(|s| s.name.as_str())
        .filter(|n| health_of(n) == Some(Health::Down))
        .collect();
    let deps = Deps::new(config, &down);
    let host = &doc.host;

    let mut events = Vec::new();
    // Down events by service, so dependents can be folded into them.
    let mut down_events: HashMap<String, usize> = HashMap::new();
    let mut held = Vec::new();
    for svc in &config.services {
        let Some(report) = reports.get(svc.name.as_str()) else { continue };
        let st = state.services.entry(svc.name.clone()).or_default();
        let cur = report.status;
        if let Some(flap) = flap_step(st, cur, report.since, now) {
            events.push(flap_event(svc, report, flap, host, now));
            continue;
        }
        if st.flap_alerted {
            continue; // flapping: one event said so, not each transition
        }
        let is_held = cur == Health::Down && deps.held(&svc.name);
        let Some(kind) = step(st, svc, cur, report.since, is_held, now) else {
            if is_held && st.pending_cycles == svc.confirm && st.alerted != Some(Health::Down) {
                crate::info!(
                    "{}: down, but so is {}: its alert is folded into theirs",
                    svc.name,
                    deps.roots(&svc.name).join(", ")
                );
            }
            if is_held {
                held.push(svc.name.clone());
            }
            continue;
        };
        let e = build(svc, report, kind, host, now);
        if e.event == EventName::Down {
            down_events.insert(svc.name.clone(), events.len());
        }
        events.push(e);
    }
    for name in &held {
        for root in deps.roots(name) {
            if let Some(&i) = down_events.get(&root) {
                events[i].also_affected.push(name.clone());
            }
        }
    }
    for &i in down_events.values() {
        let e = &mut events[i];
        if !e.also_affected.is_empty() {
            e.text.push_str(&format!(
                " Also affected: {} (depend{} on {}).",
                e.also_affected.join(", "),
                if e.also_affected.len() == 1 { "s" } else { "" },
                e.service
            ));
        }
    }

    for note in notes {
        let Some(svc) = config.service(&note.service) else { continue };
        let Some(report) = reports.get(svc.name.as_str()) else { continue };
        if state.services.get(&svc.name).is_some_and(|s| s.is_muted(now)) {
            continue;
        }
        let (event, restart_ok, text) = match note.kind {
            HealNoteKind::Restarted { ok } => (
                EventName::Restart,
                Some(ok),
                sentence(format!("{} on {host}: {}", svc.name, note.text)),
            ),
            HealNoteKind::Suspended => (
                EventName::HealSuspended,
                None,
                sentence(format!("{} on {host}: {}", svc.name, note.text)),
            ),
            HealNoteKind::Skipped => continue,
        };
        events.push(Event {
            restart_ok,
            ..Event::about(svc, report, event, host, now, note.text.clone(), text)
        });
    }
    events
}

/// Flapping's alert memory: `Some(Flapping)` when it starts, `Some(FlappingEnded)`
/// when it ends (the alerted state becomes the status then), None otherwise.
/// A muted service announces neither.
fn flap_step(
    st: &mut ServiceState,
    cur: Health,
    since: Option<Timestamp>,
    now: Timestamp,
) -> Option<EventName> {
    if st.is_muted(now) {
        return None;
    }
    match (st.flapping, st.flap_alerted) {
        (true, false) => {
            st.flap_alerted = true;
            Some(EventName::Flapping)
        }
        (false, true) => {
            st.flap_alerted = false;
            remember(st, cur, since.unwrap_or(now));
            Some(EventName::FlappingEnded)
        }
        _ => None,
    }
}

fn flap_event(
    svc: &Service,
    r: &ServiceReport,
    event: EventName,
    host: &str,
    now: Timestamp,
) -> Event {
    let name = &svc.name;
    let (detail, text) = if event == EventName::Flapping {
        let d = format!(
            "status changed {} times within the last {} results (now {}); single transitions are not announced until it settles",
            svc.flap.changes,
            svc.flap.window,
            r.status.as_str()
        );
        (d, format!("{name} is FLAPPING on {host} (now {}).", r.status.as_str().to_uppercase()))
    } else {
        let d = format!("kept one status for {} results: {}", svc.flap.window, r.status.as_str());
        (d, format!("{name} stopped flapping on {host}: {}.", r.status.as_str().to_uppercase()))
    };
    Event::about(svc, r, event, host, now, detail, text)
}

/// What `step` decided to announce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// The alerted state changed from `previous`; `down_for` for recoveries.
    Transition {
        previous: Option<Health>,
        down_for: Option<std::time::Duration>,
    },
    Reminder {
        down_for: std::time::Duration,
    },
}

/// One service's alert memory for one cycle. Pure.
fn step(
    st: &mut ServiceState,
    svc: &Service,
    cur: Health,
    since: Option<Timestamp>,
    held: bool,
    now: Timestamp,
) -> Option<Kind> {
    let muted = st.is_muted(now);
    if !muted && st.alert_muted {
        // A mute just ended: still down means one down event now.
        st.alert_muted = false;
        if cur == Health::Down {
            st.alerted = None;
        }
    }
    if st.alerted == Some(cur) {
        st.pending = None;
        st.pending_cycles = 0;
    } else if st.pending == Some(cur) {
        st.pending_cycles = st.pending_cycles.saturating_add(1);
    } else {
        st.pending = Some(cur);
        st.pending_cycles = 1;
    }
    if muted {
        st.alert_muted = true;
        return None;
    }
    if st.alerted.is_none() && cur == Health::Up {
        // First seen up: nothing to say.
        remember(st, cur, since.unwrap_or(now));
        return None;
    }
    if held {
        return None;
    }
    if st.alerted != Some(cur) {
        if st.pending_cycles < svc.confirm.max(1) {
            return None;
        }
        let previous = st.alerted;
        let entered = since.unwrap_or(now);
        let down_for = match previous {
            Some(Health::Down) => st.alerted_since.map(|t| entered.since(t)),
            _ => None,
        };
        remember(st, cur, entered);
        if cur == Health::Down {
            st.last_reminder = Some(now);
        }
        return Some(Kind::Transition { previous, down_for });
    }
    // Holding the alerted state: only "still down" reminders.
    match (cur, svc.reminder) {
        (Health::Down, Some(every)) => {
            let last = st.last_reminder.or(st.alerted_since).unwrap_or(now);
            if now.since(last) >= every {
                st.last_reminder = Some(now);
                let down_for = now.since(st.alerted_since.unwrap_or(now));
                return Some(Kind::Reminder { down_for });
            }
            None
        }
        _ => None,
    }
}

fn remember(st: &mut ServiceState, cur: Health, since: Timestamp) {
    st.alerted = Some(cur);
    st.alerted_since = Some(since);
    st.pending = None;
    st.pending_cycles = 0;
    if cur != Health::Down {
        st.last_reminder = None;
    }
}

fn build(svc: &Service, r: &ServiceReport, kind: Kind, host: &str, now: Timestamp) -> Event {
    let problems = problems(&r.checks);
    let name = &svc.name;
    let (event, previous, down_for, detail, text) = match kind {
        Kind::Transition { previous, down_for } => match (previous, r.status) {
            (_, Health::Down) => (
                EventName::Down,
                previous,
                None,
                problems.clone(),
                sentence(format!("{name} is DOWN on {host}: {problems}")),
            ),
            (Some(Health::Down), now_status) => {
                let after = down_for
                    .map(|d| format!(" after {} down", human_duration(d)))
                    .unwrap_or_default();
                let (what, detail) = if now_status == Health::Degraded {
                    (" (degraded)".to_string(), problems.clone())
                } else {
                    (String::new(), "all checks up".to_string())
                };
                (
                    EventName::Up,
                    previous,
                    down_for,
                    detail,
                    format!("{name} is back UP{what} on {host}{after}."),
                )
            }
            (Some(Health::Degraded), Health::Up) => (
                EventName::Up,
                previous,
                None,
                "all checks up".to_string(),
                format!("{name} is UP again on {host} (was degraded)."),
            ),
            (_, _) => (
                EventName::Degraded,
                previous,
                None,
                problems.clone(),
                sentence(format!("{name} is DEGRADED on {host}: {problems}")),
            ),
        },
        Kind::Reminder { down_for } => (
            EventName::Reminder,
            Some(Health::Down),
            Some(down_for),
            problems.clone(),
            sentence(format!(
                "{name} is still DOWN on {host} ({} so far): {problems}",
                human_duration(down_for)
            )),
        ),
    };
    Event {
        previous,
        down_for_s: down_for.map(|d| d.as_secs()),
        diagnosis: match event {
            EventName::Down | EventName::Reminder => {
                r.incident.as_ref().and_then(|i| i.diagnosis.clone())
            }
            _ => None,
        },
        ..Event::about(svc, r, event, host, now, detail, text)
    }
}

/// `text` ended by a full stop, unless it already ends as a sentence does
/// (a check's detail is often a tool's own sentence: systemctl's "Can't
/// operate.").
fn sentence(mut text: String) -> String {
    if !text.ends_with(['.', '!', '?', '…']) {
        text.push('.');
    }
    text
}

fn event_id(host: &str, service: &str, event: EventName, at: Timestamp) -> String {
    format!("{host}/{service}/{}/{}", event_str(event), at.0)
}

/// "http http://x/health: HTTP 500; tcp 127.0.0.1:6379: connection refused".
pub fn problems(checks: &[CheckReport]) -> String {
    let parts: Vec<String> = checks
        .iter()
        .filter(|c| c.status != CheckStatus::Up)
        .map(|c| {
            format!(
                "{} {}: {}",
                c.kind,
                c.target_line(),
                if c.summary().is_empty() { c.status.as_str() } else { c.summary() }
            )
        })
        .collect();
    let text = if parts.is_empty() { "no check failing".to_string() } else { parts.join("; ") };
    truncate(&text, MAX_DETAIL)
}

/// At most `max` characters, with "…" when cut.
pub fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
    t.push('…');
    t
}

/// The dependency graph restricted to what is down this cycle.
struct Deps<'a> {
    depends_on: HashMap<&'a str, &'a [String]>,
    down: &'a HashSet<&'a str>,
}

impl<'a> Deps<'a> {
    fn new(config: &'a Config, down: &'a HashSet<&'a str>) -> Self {
        Deps {
            depends_on: config
                .services
                .iter()
                .map(|s| (s.name.as_str(), s.depends_on.as_slice()))
                .collect(),
            down,
        }
    }

    /// `from` reaches `to` through depends_on edges.
    fn reaches(&self, from: &str, to: &str) -> bool {
        let mut seen = HashSet::new();
        let mut stack = vec![from];
        while let Some(n) = stack.pop() {
            if n == to {
                return true;
            }
            if seen.insert(n) {
                stack.extend(
                    self.depends_on.get(n).into_iter().flat_map(|d| d.iter().map(String::as_str)),
                );
            }
        }
        false
    }

    /// The down dependencies that explain `name` being down (a dependency
    /// cycle explains nothing, so two services depending on each other both
    /// page rather than neither).
    fn causes(&self, name: &str) -> Vec<&'a str> {
        self.depends_on
            .get(name)
            .into_iter()
            .flat_map(|d| d.iter())
            .map(String::as_str)
            .filter(|d| self.down.contains(d) && !self.reaches(d, name))
            .collect()
    }

    fn held(&self, name: &str) -> bool {
        self.down.contains(name) && !self.causes(name).is_empty()
    }

    /// The down services at the bottom of `name`'s chain of down dependencies.
    fn roots(&self, name: &str) -> Vec<String> {
        let mut roots = Vec::new();
        let mut seen = HashSet::new();
        let mut stack = self.causes(name);
        while let Some(n) = stack.pop() {
            if !seen.insert(n) {
                continue;
            }
            let further = self.causes(n);
            if further.is_empty() {
                if !roots.iter().any(|r| r == n) {
                    roots.push(n.to_string());
                }
            } else {
                stack.extend(further);
            }
        }
        roots.sort();
        roots
    }
}

#[cfg(test)]
mod tests;
