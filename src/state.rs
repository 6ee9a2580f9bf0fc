//! Per-service memory across cycles and invocations, and the healing rules.
//!
//! `step` is pure: it reads no clock and does no I/O. Given what the service
//! looked like before, what this cycle observed and the policy, it returns the
//! new state and the actions to take. The caller runs the actions (see
//! `heal.rs`) and records their outcome with `record_restart`. The whole
//! `StateFile` is persisted as JSON so that `check` run from cron heals and
//! alerts exactly like the daemon.

use crate::config::HealPolicy;
use crate::diagnosis::Diagnosis;
use crate::probe::UnitInfo;
use crate::probe::push::{Ping, PushState};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};

/// A service's state: the worst of its checks, unknown counting as degraded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    Up,
    Degraded,
    Down,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Up => "up",
            Health::Degraded => "degraded",
            Health::Down => "down",
        }
    }
}

/// One restart we ran (or tried to).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RestartRecord {
    pub at: Timestamp,
    pub ok: bool,
    pub detail: String,
    /// systemd's NRestarts of the unit when we restarted it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n_restarts: Option<u64>,
    /// Whether it helped: judged at the first cycle after the grace.
    #[serde(default)]
    pub outcome: RestartOutcome,
}

/// Whether a restart helped (`ok` only says the command succeeded).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RestartOutcome {
    /// The grace has not passed yet.
    #[default]
    Pending,
    /// Not down at the first cycle after the grace.
    Recovered,
    /// Still down then.
    StillDown,
}

impl RestartOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            RestartOutcome::Pending => "pending",
            RestartOutcome::Recovered => "recovered",
            RestartOutcome::StillDown => "still_down",
        }
    }
}

/// The service's open incident (while it is down), as the status JSON
/// shows it: the store's id (null without a history store), when it
/// started, and its diagnosis once captured (null when off or not yet).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpenIncident {
    pub id: Option<i64>,
    pub started_at: Timestamp,
    pub diagnosis: Option<Diagnosis>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub at: Timestamp,
    pub status: Health,
    pub latency_ms: Option<f64>,
}

/// Everything remembered about one service.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServiceState {
    /// Last cycle's status (None: never probed).
    pub status: Option<Health>,
    /// When `status` began.
    pub since: Option<Timestamp>,
    /// Consecutive down cycles that counted (not within grace).
    pub consecutive_failures: u32,
    /// Our last restart, for the grace period.
    pub last_restart: Option<Timestamp>,
    /// Our restarts within the heal window.
    pub restarts: Vec<RestartRecord>,
    /// Restart budget exhausted: no healing until stable or unmuted.
    pub heal_suspended: bool,
    /// Every restart we ever ran (a Prometheus counter).
    pub restarts_total: u64,
    /// Oldest first, at most `history` entries.
    pub history: VecDeque<HistoryEntry>,
    pub muted_until: Option<Timestamp>,
    pub mute_reason: Option<String>,
    /// Alerting memory (see notify): the state last alerted and how many
    /// cycles a new state has held.
    pub alerted: Option<Health>,
    pub pending: Option<Health>,
    pub pending_cycles: u32,
    pub last_reminder: Option<Timestamp>,
    /// When the alerted state began (for "back up after 5m down").
    pub alerted_since: Option<Timestamp>,
    /// The last alert evaluation saw the service muted (so the end of a
    /// mute can raise the down event the mute held back).
    pub alert_muted: bool,
    /// A push check's pings (`ping`, or the daemon's HTTP queue) and when
    /// the check was first seen; absent for services without one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub push: Option<PushState>,
    /// The maintenance window open at the last cycle (set by the cycle
    /// from the config, so it mutes exactly as `mute` does).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maintenance: Option<crate::config::OpenWindow>,
    /// Consecutive cycles each check with `for` has been over its
    /// threshold (see `hold`), by check.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub over: BTreeMap<String, u32>,
    /// Each process check's last CPU sample (see `cpu`), by check.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub proc_cpu: BTreeMap<String, crate::probe::process::CpuSample>,
    /// The open incident (None while not down).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub incident: Option<OpenIncident>,
    /// The unit's NRestarts as the last cycles saw it (crash loops; see
    /// `loops`), oldest first, within `crash_loop.within` plus one before.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unit_restarts: Vec<loops::RestartSample>,
    /// The last `flap.window` statuses, oldest first.
    #[serde(skip_serializing_if = "VecDeque::is_empty")]
    pub recent: VecDeque<Health>,
    pub flapping: bool,
    /// The alerts announced the flapping (`flapping` sent, `flapping_ended` not yet).
    pub flap_alerted: bool,
    /// The unit's CPU counter at the last cycle (`cpu_pct`; see `resources`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_sample: Option<resources::CpuSample>,
    /// Consecutive cycles over each of the service's `limits`.
    #[serde(skip_serializing_if = "resources::LimitCounts::is_zero")]
    pub limits_over: resources::LimitCounts,
}

impl ServiceState {
    /// Muted by `mute`, or in a maintenance window (which mutes the same way).
    pub fn is_muted(&self, now: Timestamp) -> bool {
        self.muted_until.is_some_and(|t| t > now)
            || self.maintenance.as_ref().is_some_and(|m| m.until > now)
    }
}

/// The boot a cycle last ran in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BootMark {
    pub id: String,
    pub last_cycle_at: Timestamp,
}

/// The state file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StateFile {
    pub schema: u32,
    pub services: BTreeMap<String, ServiceState>,
    /// The boot this host was last seen in, and that boot's last cycle: a
    /// different boot id raises one `rebooted` event.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub boot: Option<BootMark>,
    /// The outbox: deliveries not yet done, retried by whichever run comes
    /// next (kept as JSON so one unreadable entry cannot spoil the file).
    pub undelivered: Vec<serde_json::Value>,
    /// Per Alertmanager notifier: the alerts it has firing ("alertname|service").
    pub alertmanager: BTreeMap<String, BTreeMap<String, FiringAlert>>,
}

/// An alert an Alertmanager notifier has firing.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FiringAlert {
    pub starts_at: Timestamp,
    /// When it was last posted (re-posted every `resend`).
    pub last_sent: Timestamp,
}

/// What the cycle saw of one service.
#[derive(Debug, Clone)]
pub struct Observation<'a> {
    pub health: Health,
    pub latency_ms: Option<f64>,
    /// systemd's view of the service's own unit, when probed.
    pub unit: Option<&'a UnitInfo>,
}

/// Circumstances of this step that do not live in the service's state.
#[derive(Debug, Clone)]
pub struct StepCtx<'a> {
    pub policy: &'a HealPolicy,
    pub now: Timestamp,
    pub has_unit: bool,
    /// A `depends_on` service is down this cycle.
    pub dependency_down: bool,
    pub history: usize,
}

/// What `step` asks the caller to do, or why it did not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Restart the unit (after `systemctl reset-failed` when `reset_failed`).
    Restart { reset_failed: bool },
    /// Budget exhausted just now: healing suspended (alert once).
    Suspend,
    /// A restart was due but is not run, and why.
    Skip(SkipReason),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    Suspended,
    Muted,
    DependencyDown,
    SystemdRestarting,
    StartLimitHit,
}

impl SkipReason {
    pub fn describe(self) -> &'static str {
        match self {
            SkipReason::Suspended => "healing is suspended (restart budget used up)",
            SkipReason::Muted => "the service is muted",
            SkipReason::DependencyDown => "a service it depends on is down",
            SkipReason::SystemdRestarting => "systemd is already restarting it",
            SkipReason::StartLimitHit => {
                "systemd's start limit is hit (set heal.reset_failed to override)"
            }
        }
    }
}

/// One cycle of one service. Pure.
pub fn step(
    prev: &ServiceState,
    obs: &Observation<'_>,
    ctx: &StepCtx<'_>,
) -> (ServiceState, Vec<Action>) {
    let mut s = prev.clone();
    let now = ctx.now;
    let policy = ctx.policy;
    let mut actions = Vec::new();

    resolve_outcomes(&mut s, obs.health, now, policy);
    if s.status != Some(obs.health) {
        s.since = Some(now);
    }
    s.status = Some(obs.health);
    s.history.push_back(HistoryEntry { at: now, status: obs.health, latency_ms: obs.latency_ms });
    while s.history.len() > ctx.history {
        s.history.pop_front();
    }
    // Forget restarts that left the window.
    let window_start = Timestamp(now.0.saturating_sub(policy.window.as_millis() as i64));
    s.restarts.retain(|r| r.at > window_start);
    if s.muted_until.is_some_and(|t| t <= now) {
        s.muted_until = None;
        s.mute_reason = None;
    }

    if obs.health != Health::Down {
        s.consecutive_failures = 0;
        let stable = obs.health == Health::Up
            && s.since.is_some_and(|t| now.since(t) >= policy.stable_after);
        if stable && (s.heal_suspended || !s.restarts.is_empty()) {
            s.restarts.clear();
            s.heal_suspended = false;
        }
        return (s, actions);
    }

    // A restart "in the future" means the clock stepped back: no grace then,
    // or a slow clock fix at boot would hold the count for hours.
    let in_grace = s.last_restart.is_some_and(|t| t <= now && now.since(t) < policy.grace);
    if in_grace {
        return (s, actions); // the count holds
    }
    s.consecutive_failures = s.consecutive_failures.saturating_add(1);
    let due = s.consecutive_failures.is_multiple_of(policy.after_failures.max(1));
    if !(due && ctx.has_unit && policy.enabled) {
        return (s, actions);
    }
    let unit = obs.unit;
    let skip = if s.heal_suspended {
        Some(SkipReason::Suspended)
    } else if s.is_muted(now) {
        Some(SkipReason::Muted)
    } else if ctx.dependency_down {
        Some(SkipReason::DependencyDown)
    } else if unit.is_some_and(UnitInfo::systemd_is_restarting) {
        Some(SkipReason::SystemdRestarting)
    } else if unit.is_some_and(UnitInfo::start_limit_hit) && !policy.reset_failed {
        Some(SkipReason::StartLimitHit)
    } else {
        None
    };
    match skip {
        Some(r) => actions.push(Action::Skip(r)),
        None if s.restarts.len() as u32 >= policy.max_restarts => {
            s.heal_suspended = true;
            actions.push(Action::Suspend);
        }
        None => actions
            .push(Action::Restart { reset_failed: unit.is_some_and(UnitInfo::start_limit_hit) }),
    }
    (s, actions)
}

/// Judges the restarts whose grace has passed: this is the first cycle
/// after it, so the service's status now says whether the restart helped.
fn resolve_outcomes(s: &mut ServiceState, health: Health, now: Timestamp, policy: &HealPolicy) {
    for r in s.restarts.iter_mut().filter(|r| r.outcome == RestartOutcome::Pending) {
        if now > r.at && now.since(r.at) >= policy.grace {
            r.outcome = if health == Health::Down {
                RestartOutcome::StillDown
            } else {
                RestartOutcome::Recovered
            };
        }
    }
}

/// Records a restart we run: it counts against the window and starts grace.
/// Recorded (and persisted) before it runs, so that no restart goes
/// uncounted; `settle_restart` then fills in its result.
pub fn record_restart(s: &mut ServiceState, rec: RestartRecord) {
    s.last_restart = Some(rec.at);
    s.restarts_total += 1;
    s.restarts.push(rec);
}

/// Records `count` pings of `service`'s push check, `ping` the latest (see
/// `PushState::record`); the caller holds the state lock.
pub fn record_ping(state: &mut StateFile, service: &str, ping: Ping, count: u64, now: Timestamp) {
    let seen = state.services.entry(service.to_string()).or_default();
    seen.push.get_or_insert_with(PushState::default).record(ping, count, now);
}

/// Replaces the record of the restart just run (the last one) with its result.
pub fn settle_restart(s: &mut ServiceState, rec: RestartRecord) {
    match s.restarts.last_mut() {
        Some(last) => *last = rec,
        None => s.restarts.push(rec),
    }
}

pub mod cpu;
pub mod hold;
pub mod loops;
pub mod resources;

#[cfg(test)]
mod tests;
