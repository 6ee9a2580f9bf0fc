//! One monitoring cycle, shared by `check` and `run`: probe every selected
//! service, step its state, heal, and build the status document.

use crate::config::{Config, Service};
use crate::probe::{Outcome, Probe};
use crate::state::{self, Action, Health, Observation, ServiceState, StateFile, StepCtx};
use crate::status::{self, CheckReport, ServiceReport, StatusDoc};
use crate::time::Timestamp;
use crate::{heal, runner};
use std::collections::HashMap;
use std::time::Instant;

/// How a cycle may act.
#[derive(Debug, Clone, Default)]
pub struct CycleOptions {
    /// `--no-restart`: decide as usual, run nothing.
    pub no_restart: bool,
    /// `--only`: probe just these services (empty: all).
    pub only: Vec<String>,
}

/// A line for the operator about healing, e.g. which restart was skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealNote {
    pub service: String,
    pub text: String,
    /// A restart was run (ok or not) or the budget was exhausted: alert-worthy.
    pub kind: HealNoteKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealNoteKind {
    Restarted { ok: bool },
    Suspended,
    Skipped,
}

pub struct CycleOutput {
    pub doc: StatusDoc,
    pub notes: Vec<HealNote>,
    /// Each service's status before this cycle (None: first seen).
    pub previous: HashMap<String, Option<Health>>,
}

/// Runs one cycle, updating `state` in place.
pub fn run(config: &Config, state: &mut StateFile, opts: &CycleOptions) -> CycleOutput {
    let started = Instant::now();
    let selected: Vec<&Service> = config
        .services
        .iter()
        .filter(|s| opts.only.is_empty() || opts.only.iter().any(|o| o == &s.name))
        .collect();

    let checks: Vec<_> = selected.iter().flat_map(|s| s.checks.iter().cloned()).collect();
    let mut outcomes = runner::run_all(checks, config.workers).into_iter();
    let per_service: Vec<Vec<Outcome>> =
        selected.iter().map(|s| outcomes.by_ref().take(s.checks.len()).collect()).collect();

    let now = Timestamp::now();
    let healths: HashMap<&str, Health> = selected
        .iter()
        .zip(&per_service)
        .map(|(s, outs)| (s.name.as_str(), status::service_health(outs.iter().map(|o| o.status))))
        .collect();
    let health_of = |name: &str| -> Option<Health> {
        healths.get(name).copied().or_else(|| state.services.get(name).and_then(|s| s.status))
    };

    let mut notes = Vec::new();
    let mut previous = HashMap::new();
    let mut reports = Vec::new();
    let mut new_states = Vec::new();
    for (svc, outs) in selected.iter().zip(&per_service) {
        let health = healths[svc.name.as_str()];
        let unit_info = svc.unit.as_ref().and_then(|u| {
            svc.checks.iter().zip(outs).find_map(|(c, o)| match &c.probe {
                Probe::Systemd(p) if &p.unit == u => o.unit.as_ref(),
                _ => None,
            })
        });
        let obs = Observation {
            health,
            latency_ms: outs.iter().find_map(|o| o.latency).map(status::ms),
            unit: unit_info,
        };
        let ctx = StepCtx {
            policy: &config.heal,
            now,
            has_unit: svc.unit.is_some(),
            dependency_down: svc.depends_on.iter().any(|d| health_of(d) == Some(Health::Down)),
            history: config.history,
        };
        let prev = state.services.get(&svc.name).cloned().unwrap_or_default();
        previous.insert(svc.name.clone(), prev.status);
        let (mut next, actions) = state::step(&prev, &obs, &ctx);
        for action in actions {
            let unit = svc.unit.as_deref().unwrap_or_default();
            let (text, kind) = match action {
                Action::Restart { .. } if opts.no_restart => (
                    format!(
                        "would restart {unit} after {} failed cycles (skipped: --no-restart)",
                        next.consecutive_failures
                    ),
                    HealNoteKind::Skipped,
                ),
                Action::Restart { reset_failed } => {
                    let rec = heal::restart(
                        &config.heal,
                        unit,
                        reset_failed,
                        unit_info.and_then(|u| u.n_restarts),
                    );
                    let ok = rec.ok;
                    let text = if ok {
                        format!(
                            "restarted {unit} after {} failed cycles",
                            next.consecutive_failures
                        )
                    } else {
                        format!("restart of {unit} failed: {}", rec.detail)
                    };
                    state::record_restart(&mut next, rec);
                    (text, HealNoteKind::Restarted { ok })
                }
                Action::Suspend => (
                    format!(
                        "healing suspended for {unit}: {} restarts within {} already; waiting for it to stay up {} or for `unmute`",
                        next.restarts.len(),
                        crate::config::duration::format(config.heal.window),
                        crate::config::duration::format(config.heal.stable_after)
                    ),
                    HealNoteKind::Suspended,
                ),
                Action::Skip(r) => {
                    (format!("not restarting {unit}: {}", r.describe()), HealNoteKind::Skipped)
                }
            };
            match kind {
                HealNoteKind::Restarted { ok: false } | HealNoteKind::Suspended => {
                    crate::warn!("{}: {text}", svc.name)
                }
                _ => crate::info!("{}: {text}", svc.name),
            }
            notes.push(HealNote { service: svc.name.clone(), text, kind });
        }
        reports.push(report(svc, outs, &next));
        new_states.push((svc.name.clone(), next));
    }
    for (name, s) in new_states {
        state.services.insert(name, s);
    }
    if opts.only.is_empty() {
        // Services removed from the config drop out of the state.
        state.services.retain(|name, _| config.service(name).is_some());
    }
    let overall = status::overall(reports.iter().map(|r| (&r.status, r.critical)));
    let doc = StatusDoc {
        schema: status::SCHEMA,
        generated_at: now,
        host: status::hostname(),
        overall,
        duration_ms: status::ms(started.elapsed()),
        services: reports,
    };
    CycleOutput { doc, notes, previous }
}

/// The status JSON entry of one service.
pub fn report(svc: &Service, outs: &[Outcome], st: &ServiceState) -> ServiceReport {
    ServiceReport {
        name: svc.name.clone(),
        status: st.status.unwrap_or(Health::Up),
        critical: svc.critical,
        unit: svc.unit.clone(),
        since: st.since,
        consecutive_failures: st.consecutive_failures,
        heal_suspended: st.heal_suspended,
        muted_until: st.muted_until,
        restarts: st.restarts.clone(),
        restarts_total: st.restarts_total,
        checks: svc
            .checks
            .iter()
            .zip(outs)
            .map(|(c, o)| {
                let limits = o.cert.as_ref().and(c.probe.cert_limits());
                CheckReport {
                    kind: c.kind().to_string(),
                    target: c.target.clone(),
                    status: o.status,
                    reason: o.reason,
                    latency_ms: o.latency.map(status::ms),
                    detail: o.detail.clone(),
                    cert_expires_at: o.cert.as_ref().map(|c| c.expires_at),
                    cert_warn_s: limits.map(|l| l.warn.as_secs()),
                    cert_crit_s: limits.map(|l| l.crit.as_secs()).filter(|s| *s > 0),
                }
            })
            .collect(),
        history: st.history.iter().cloned().collect(),
    }
}
