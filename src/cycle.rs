//! One monitoring cycle, shared by `check` and `run`: probe every selected
//! service, step its state, heal, and build the status document.
//!
//! In two steps, so that the state lock is never held while targets are
//! probed (a target slower than the interval would otherwise keep `ping`,
//! `mute` and `unmute` out for good): `probe` needs no state and runs
//! unlocked; `apply`, under the lock, on the state as it is then, judges
//! the push checks (pure: from the pings the state holds now), steps,
//! heals and raises the alerts.

use crate::config::{Config, HealPolicy, Service};
use crate::error::Error;
use crate::heal::{HealNote, HealNoteKind};
use crate::probe::push::PushState;
use crate::probe::units::UnitQuery;
use crate::probe::{CheckStatus, CycleCtx, Outcome, Probe, UnitInfo, owned};
use crate::state::{
    self, Action, Health, Observation, OpenIncident, RestartOutcome, RestartRecord, ServiceState,
    StateFile, StepCtx,
};
use crate::status::{self, CheckReport, ServiceReport, StatusDoc, Uptime};
use crate::time::Timestamp;
use crate::{heal, notify, runner, store};
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

pub struct CycleOutput {
    pub doc: StatusDoc,
    pub notes: Vec<HealNote>,
    /// Each service's status before this cycle (None: first seen).
    pub previous: HashMap<String, Option<Health>>,
    /// The alerts it raised: their deliveries are in the state's outbox.
    pub raised: notify::Raised,
    /// The restarts it ran, by service, at the time each started (as the
    /// state's records say: the history must agree with the status file).
    pub restarts: Vec<(String, store::RestartRun)>,
    /// Earlier restarts whose outcome this cycle judged, by service.
    pub outcomes: Vec<(String, Timestamp, RestartOutcome)>,
    /// The services whose incident opened in this cycle.
    pub opened: Vec<String>,
    /// What their diagnoses need (services with `diagnosis: false` have none).
    pub captures: Vec<crate::diagnosis::Job>,
}

/// Saves the state file; `run` calls it before running any restart.
pub type Persist<'a> = dyn FnMut(&StateFile) -> Result<(), Error> + 'a;

/// What a service's actions come to: a line for the operator now, or a
/// restart still to run once it is on disk.
enum Pending {
    Note(String, HealNoteKind),
    Restart { reset_failed: bool, failures: u32 },
}

/// What probing found, before the state is read: every selected service's
/// outcomes in check order, push checks left for `apply` to judge.
pub struct Probed {
    started: Instant,
    outcomes: Vec<Vec<Option<Outcome>>>,
    /// The host's figures, read once for the probes and the system block.
    figures: std::sync::Arc<crate::probe::host::Figures>,
    /// The cycle's one `systemctl show` (the units' state and resources).
    units: Option<std::sync::Arc<UnitQuery>>,
}

fn selected<'a>(config: &'a Config, opts: &CycleOptions) -> Vec<&'a Service> {
    config
        .services
        .iter()
        .filter(|s| opts.only.is_empty() || opts.only.iter().any(|o| o == &s.name))
        .collect()
}

/// Probes every selected service except its push checks. Reads and locks
/// nothing: the callers run it before taking the state lock.
pub fn probe(config: &Config, opts: &CycleOptions) -> Probed {
    probe_on(config, opts, None)
}

/// `probe` on the daemon's probe threads, kept across cycles (`None`:
/// threads started for this round, as `check` does).
pub fn probe_on(config: &Config, opts: &CycleOptions, pool: Option<&runner::Pool>) -> Probed {
    let started = Instant::now();
    let selected = selected(config, opts);
    let is_push = |c: &&crate::probe::Check| matches!(c.probe, Probe::Push(_));
    let checks: Vec<_> =
        selected.iter().flat_map(|s| s.checks.iter().filter(|c| !is_push(c)).cloned()).collect();
    // /proc once per cycle: the memory and load checks and the system block.
    let figures = std::sync::Arc::new(crate::probe::host::Figures::read());
    let host = Some(std::sync::Arc::clone(&figures));
    // systemd once per cycle: every unit a check observes or a service has.
    let query = UnitQuery::new(
        checks
            .iter()
            .filter_map(|c| match &c.probe {
                Probe::Systemd(p) => Some(p.unit.clone()),
                _ => None,
            })
            .chain(selected.iter().filter_map(|s| s.unit.clone())),
    );
    let units = (!query.is_empty()).then(|| std::sync::Arc::new(query));
    let ctx = CycleCtx { now: Timestamp::now(), host, units: units.clone(), ..CycleCtx::default() };
    let outcomes = match pool {
        Some(pool) => pool.run(checks, config.workers, ctx),
        None => runner::run_all(checks, config.workers, ctx),
    };
    let mut outcomes = outcomes.into_iter();
    let outcomes = selected
        .iter()
        .map(|s| {
            s.checks.iter().map(|c| if is_push(&c) { None } else { outcomes.next() }).collect()
        })
        .collect();
    if let Some(q) = &units {
        // A unit no check observes (a push service's) is asked for now.
        q.ask(Instant::now() + config.timeout);
    }
    Probed { started, outcomes, figures, units }
}

/// Runs one cycle, updating `state` in place: `probe` then `apply` (for
/// callers that hold the lock throughout, and tests).
pub fn run(
    config: &Config,
    state: &mut StateFile,
    opts: &CycleOptions,
    persist: &mut Persist<'_>,
    history: &mut store::Recorder,
) -> CycleOutput {
    let probed = probe(config, opts);
    apply(config, state, opts, probed, persist, history)
}

/// The rest of a cycle, under the state lock, on the state as it is now.
///
/// Restarts are recorded in `state` and handed to `persist` before any of
/// them runs: a run killed meanwhile, or a result that cannot be saved,
/// still counts against the budget, and when `persist` fails no restart
/// runs at all (a full disk would otherwise restart every run, budget or
/// not). Their results then replace the provisional records; saving those
/// is the caller's, as for the rest of the cycle.
pub fn apply(
    config: &Config,
    state: &mut StateFile,
    opts: &CycleOptions,
    probed: Probed,
    persist: &mut Persist<'_>,
    history: &mut store::Recorder,
) -> CycleOutput {
    let Probed { started, outcomes, figures, units } = probed;
    let selected = selected(config, opts);
    // Push checks are judged now, from the pings the state holds under the
    // lock: one that came in while the others were probed counts.
    let ctx = push_context(&selected, state, Timestamp::now());
    let mut per_service: Vec<Vec<Outcome>> = selected
        .iter()
        .zip(outcomes)
        .map(|(s, outs)| {
            s.checks
                .iter()
                .zip(outs)
                .map(|(c, o)| o.unwrap_or_else(|| crate::probe::run(c, &ctx)))
                .collect()
        })
        .collect();
    for (svc, outs) in selected.iter().zip(per_service.iter_mut()) {
        forecast(svc, outs, history, Timestamp::now());
        let samples = state.services.get(&svc.name).is_some_and(|s| !s.proc_cpu.is_empty());
        if samples || svc.checks.iter().any(|c| matches!(c.probe, Probe::Process(_))) {
            let st = state.services.entry(svc.name.clone()).or_default();
            state::cpu::apply(st, &svc.checks, outs);
        }
        if svc.checks.iter().any(|c| c.probe.for_cycles() > 1) {
            let st = state.services.entry(svc.name.clone()).or_default();
            state::hold::apply(st, &svc.checks, outs);
        }
    }

    let now = Timestamp::now();
    // Maintenance windows mute as `mute` does: set before anything decides.
    for svc in &selected {
        let open = config.maintenance_open(&svc.name, now);
        if open.is_some() || state.services.contains_key(&svc.name) {
            state.services.entry(svc.name.clone()).or_default().maintenance = open;
        }
    }
    let mut resources = Vec::with_capacity(selected.len());
    for (svc, outs) in selected.iter().zip(per_service.iter_mut()) {
        resources.push(judge_resources(svc, outs, state, units.as_deref(), now));
        judge_crash_loop(svc, outs, state, now);
    }
    let healths: HashMap<&str, Health> = selected
        .iter()
        .zip(&per_service)
        .map(|(s, outs)| (s.name.as_str(), status::service_health(outs.iter().map(|o| o.status))))
        .collect();
    let health_of = |name: &str| -> Option<Health> {
        healths.get(name).copied().or_else(|| state.services.get(name).and_then(|s| s.status))
    };

    // Decide (pure): every service's next state and what it asks for.
    let (mut judged, mut opened, mut captures) = (Vec::new(), Vec::new(), Vec::new());
    let mut previous = HashMap::new();
    let mut plans = Vec::new();
    for (svc, outs) in selected.iter().zip(&per_service) {
        let health = healths[svc.name.as_str()];
        let unit_info = unit_info(svc, outs);
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
        state::loops::observe_flap(&mut next, health, svc.flap);
        for (p, n) in prev.restarts.iter().zip(&next.restarts) {
            if p.at == n.at && p.outcome != n.outcome {
                judged.push((svc.name.clone(), n.at, n.outcome));
            }
        }
        if health != Health::Down {
            next.incident = None;
        } else if next.incident.is_none() {
            next.incident = Some(OpenIncident { id: None, started_at: now, diagnosis: None });
            opened.push(svc.name.clone());
            if svc.diagnosis {
                captures.push(capture_job(svc, outs));
            }
        }
        let unit = svc.unit.as_deref().unwrap_or_default();
        let pending: Vec<Pending> = actions
            .into_iter()
            .map(|action| match action {
                Action::Restart { .. } if opts.no_restart => Pending::Note(
                    format!(
                        "would restart {unit} after {} failed cycles (skipped: --no-restart)",
                        next.consecutive_failures
                    ),
                    HealNoteKind::Skipped,
                ),
                Action::Restart { reset_failed } => {
                    Pending::Restart { reset_failed, failures: next.consecutive_failures }
                }
                Action::Suspend => Pending::Note(
                    format!(
                        "healing suspended for {unit}: {} restarts within {} already; waiting for it to stay up {} or for `unmute`",
                        next.restarts.len(),
                        crate::config::duration::format(config.heal.window),
                        crate::config::duration::format(config.heal.stable_after)
                    ),
                    HealNoteKind::Suspended,
                ),
                Action::Skip(r) => Pending::Note(
                    format!("not restarting {unit}: {}", r.describe()),
                    HealNoteKind::Skipped,
                ),
            })
            .collect();
        plans.push((svc, outs, next, pending));
    }

    // Record the restarts, persist, and only then run them.
    let restarting =
        plans.iter().any(|(_, _, _, p)| p.iter().any(|p| matches!(p, Pending::Restart { .. })));
    let unrecorded = if restarting {
        let mut with_records = state.clone();
        for (svc, outs, next, pending) in &plans {
            let mut next = next.clone();
            for p in pending {
                if let Pending::Restart { .. } = p {
                    state::record_restart(&mut next, provisional(svc, outs, now, &config.heal));
                }
            }
            with_records.services.insert(svc.name.clone(), next);
        }
        persist(&with_records).err()
    } else {
        None
    };
    let mut notes = Vec::new();
    let mut ran = Vec::new();
    let mut reports = Vec::new();
    for ((svc, outs, mut next, pending), res) in plans.into_iter().zip(resources) {
        let unit = svc.unit.as_deref().unwrap_or_default();
        for p in pending {
            let (text, kind, loud) = match (p, &unrecorded) {
                (Pending::Note(text, kind), _) => (text, kind, kind == HealNoteKind::Suspended),
                (Pending::Restart { .. }, Some(e)) => (
                    format!("not restarting {unit}: the restart cannot be recorded first ({e})"),
                    HealNoteKind::Skipped,
                    true,
                ),
                (Pending::Restart { reset_failed, failures }, None) => {
                    state::record_restart(&mut next, provisional(svc, outs, now, &config.heal));
                    let n_restarts = unit_info(svc, outs).and_then(|u| u.n_restarts);
                    let rec = heal::restart(&config.heal, unit, reset_failed, n_restarts);
                    let ok = rec.ok;
                    ran.push((
                        svc.name.clone(),
                        store::RestartRun { at: rec.at, ok, outcome: RestartOutcome::Pending },
                    ));
                    let text = if ok {
                        format!("restarted {unit} after {failures} failed cycles")
                    } else {
                        format!("restart of {unit} failed: {}", rec.detail)
                    };
                    state::settle_restart(&mut next, rec);
                    (text, HealNoteKind::Restarted { ok }, !ok)
                }
            };
            if loud {
                crate::warn!("{}: {text}", svc.name);
            } else {
                crate::info!("{}: {text}", svc.name);
            }
            notes.push(HealNote { service: svc.name.clone(), text, kind });
        }
        let mut r = report(svc, outs, &next);
        r.next_maintenance = next_window(config, &svc.name, now);
        r.resources = res;
        reports.push(r);
        state.services.insert(svc.name.clone(), next);
    }
    if opts.only.is_empty() {
        // Services removed from the config drop out of the state.
        state.services.retain(|name, _| config.service(name).is_some());
    }
    let overall = status::overall(reports.iter().map(|r| (&r.status, r.critical)));
    let doc = StatusDoc {
        schema: status::SCHEMA,
        generated_at: now,
        host: config.host.clone(),
        overall,
        duration_ms: status::ms(started.elapsed()),
        flapping: reports.iter().any(|r| r.flapping),
        services: reports,
        history: config.history_store.path.as_ref().map(|_| status::HistoryInfo {
            retention_s: config.history_store.retention.rollups.as_secs(),
        }),
        system: Some(Box::new(status::System::from_figures(&figures, now))),
    };
    let raised = notify::raise(config, state, &doc, &notes);
    CycleOutput { doc, notes, previous, raised, restarts: ran, outcomes: judged, opened, captures }
}

/// The service's `resources` from the cycle's `systemctl show` (None: no
/// unit), and its `limits`: held `for` cycles, the unit check is down
/// (`memory_limit`, `cpu_limit`) unless it already is for its own reason.
fn judge_resources(
    svc: &Service,
    outs: &mut [Outcome],
    state: &mut StateFile,
    units: Option<&UnitQuery>,
    now: Timestamp,
) -> Option<state::resources::Resources> {
    let unit = svc.unit.as_ref()?;
    let seen = units.and_then(|q| q.answered(unit));
    let st = state.services.entry(svc.name.clone()).or_default();
    let res = state::resources::observe(st, seen, now);
    if svc.limits.is_none() {
        st.limits_over = Default::default();
    }
    if let Some(limits) = svc.limits.as_ref()
        && let Some((reason, detail)) = state::resources::judge(st, limits, &res)
        && let Some(out) = svc.checks.iter().zip(outs.iter_mut()).find_map(|(c, o)| {
            matches!(&c.probe, Probe::Systemd(p) if &p.unit == unit).then_some(o)
        })
        && out.status != CheckStatus::Down
    {
        out.status = CheckStatus::Down;
        out.reason = Some(reason);
        out.detail = format!("{detail}; unit {}", out.detail);
    }
    Some(res)
}

/// `crash_loop`: the service's own unit check is down, whatever state the
/// probe caught the unit in, when systemd restarted it `crash_loop.restarts`
/// times within `crash_loop.within` (the samples live in the state file).
fn judge_crash_loop(svc: &Service, outs: &mut [Outcome], state: &mut StateFile, now: Timestamp) {
    let Some(unit) = svc.unit.as_ref() else { return };
    let Some(out) =
        svc.checks.iter().zip(outs.iter_mut()).find_map(|(c, o)| {
            matches!(&c.probe, Probe::Systemd(p) if &p.unit == unit).then_some(o)
        })
    else {
        return;
    };
    let st = state.services.entry(svc.name.clone()).or_default();
    let ours: Vec<Timestamp> = st.restarts.iter().map(|r| r.at).collect();
    let n_now = out.unit.as_ref().and_then(|u| u.n_restarts);
    let cfg = svc.crash_loop;
    if let Some(n) = state::loops::crash_loop(&mut st.unit_restarts, n_now, now, cfg, &ours) {
        out.status = crate::probe::CheckStatus::Down;
        out.reason = Some(crate::probe::Reason::CrashLoop);
        out.detail = format!(
            "crash loop: {n} restarts by systemd within {}; now {}",
            crate::config::duration::format(cfg.within),
            out.detail
        );
    }
}

/// What the diagnosis of `svc`'s new incident needs from this cycle.
fn capture_job(svc: &Service, outs: &[Outcome]) -> crate::diagnosis::Job {
    crate::diagnosis::Job {
        service: svc.name.clone(),
        unit: svc.unit.clone(),
        unit_answer: unit_info(svc, outs).map(|u| u.answer.clone()).filter(|a| !a.is_empty()),
        http: outs.iter().find_map(|o| o.http.clone()),
        disks_over_warn: svc
            .checks
            .iter()
            .zip(outs)
            .filter(|(c, o)| c.kind() == "disk" && o.status != crate::probe::CheckStatus::Up)
            .map(|(c, _)| c.target.clone())
            .collect(),
    }
}

/// Under the lock, once the cycle is recorded in the history store: the
/// store's ids of the incidents this cycle opened, in the state and the
/// document. Returns whether there are any (their files are then saved
/// again: `save_diagnosed`, at once when nothing is to be captured, else
/// after `attach`).
pub fn number_incidents(
    state: &mut StateFile,
    out: &mut CycleOutput,
    recorder: &mut store::Recorder,
) -> bool {
    let mut store = recorder.store();
    for name in &out.opened {
        let Some(inc) = state.services.get_mut(name).and_then(|s| s.incident.as_mut()) else {
            continue;
        };
        if let Some(st) = store.as_deref_mut() {
            inc.id = st.open_incident(name).ok().flatten();
        }
        if let Some(r) = out.doc.services.iter_mut().find(|r| &r.name == name) {
            r.incident = Some(inc.clone());
        }
    }
    !out.opened.is_empty()
}

/// The diagnoses of the incidents this cycle opened (at most
/// `diagnosis::MAX_WALL`), in the order of `out.captures`. Holds no lock
/// and reads no state: the callers release the state lock first, so a
/// `check` from cron, `ping` or `mute` never waits for a capture.
pub fn capture(config: &Config, out: &CycleOutput) -> Vec<crate::diagnosis::Diagnosis> {
    if out.captures.is_empty() {
        return Vec::new();
    }
    let started = Instant::now();
    let diagnoses = crate::diagnosis::capture_all(&out.captures, &config.diagnosis);
    crate::info!("diagnosis: captured {} in {} ms", diagnoses.len(), started.elapsed().as_millis());
    diagnoses
}

/// Under the lock again, on the state as it is now (another run may have
/// stepped it meanwhile): each diagnosis goes to its incident in the
/// history store, in the state when it is still the same incident (same
/// `started_at`), in the document, and in the alerts still in the outbox.
pub fn attach(
    state: &mut StateFile,
    out: &mut CycleOutput,
    diagnoses: &[crate::diagnosis::Diagnosis],
    recorder: &mut store::Recorder,
) {
    let mut store = recorder.store();
    for (job, d) in out.captures.iter().zip(diagnoses) {
        let Some(r) = out.doc.services.iter_mut().find(|r| r.name == job.service) else {
            continue;
        };
        let Some(inc) = r.incident.as_mut() else { continue };
        inc.diagnosis = Some(d.clone());
        if let (Some(st), Some(id)) = (store.as_deref_mut(), inc.id)
            && let Ok(json) = serde_json::to_string(d)
        {
            let _ = st.set_diagnosis(id, &json);
        }
    }
    // Every incident the cycle opened (those without a capture too: their
    // ids were numbered under the first lock, on the state re-read since).
    for name in &out.opened {
        let ours = out.doc.services.iter().find(|r| &r.name == name);
        let Some(ours) = ours.and_then(|r| r.incident.as_ref()) else { continue };
        if let Some(now) = state.services.get_mut(name).and_then(|s| s.incident.as_mut())
            && now.started_at == ours.started_at
        {
            now.id = now.id.or(ours.id);
            now.diagnosis = now.diagnosis.take().or_else(|| ours.diagnosis.clone());
        }
    }
    notify::attach_diagnoses(state, &out.doc);
    for e in &mut out.raised.events {
        if matches!(e.event, crate::config::EventName::Down | crate::config::EventName::Reminder)
            && e.diagnosis.is_none()
        {
            e.diagnosis = out
                .doc
                .services
                .iter()
                .find(|r| r.name == e.service)
                .and_then(|r| r.incident.as_ref())
                .and_then(|i| i.diagnosis.clone());
        }
    }
}

/// The forecasts of the kinds that declare one (a disk's `full_in_s`): a
/// least-squares line through the history store's samples of the last
/// `window` and this cycle's value; null with fewer than 3 samples, a value
/// not falling, or no store. Under `warn`, an up check is degraded.
fn forecast(svc: &Service, outs: &mut [Outcome], history: &mut store::Recorder, now: Timestamp) {
    for (c, out) in svc.checks.iter().zip(outs.iter_mut()) {
        let Probe::Owned(p) = &c.probe else { continue };
        let Some(f) = p.forecast() else { continue };
        let Some(m) = out.measured.as_mut() else { continue };
        let Some(current) = m.values.get(f.value) else { continue };
        let series = store::series_name(&svc.name, c.kind(), &c.target, f.value);
        let past = history.open().and_then(|s| s.samples(&series, f.window, now).ok());
        let left = past.and_then(|mut pts| {
            pts.push((now.as_secs_f64(), current));
            owned::time_to_zero(&pts)
        });
        m.values.set(f.into, left);
        if let (Some(left), Some(warn)) = (left, f.warn)
            && left < warn.as_secs_f64()
            && out.status == CheckStatus::Up
        {
            out.status = CheckStatus::Degraded;
            out.reason = Some(f.reason);
            out.detail = format!(
                "{}; full in {} at the rate of the last {}",
                out.detail,
                owned::show_seconds(left),
                crate::config::duration::format(f.window)
            );
        }
    }
}

/// The samples this cycle adds to the history store: the values forecasts read.
fn samples(config: &Config, doc: &StatusDoc) -> Vec<(String, f64)> {
    let mut out = Vec::new();
    for r in &doc.services {
        let Some(svc) = config.service(&r.name) else { continue };
        for (c, rep) in svc.checks.iter().zip(&r.checks) {
            let Probe::Owned(p) = &c.probe else { continue };
            let Some(f) = p.forecast() else { continue };
            if let Some(v) = rep.values.as_ref().and_then(|v| v.get(f.value)) {
                out.push((store::series_name(&r.name, c.kind(), &c.target, f.value), v));
            }
        }
    }
    out
}

/// The probes' context: each push check's pings as the state holds them,
/// judged at `now`. A push check seen for the first time is remembered
/// (`first_seen`: "waiting for the first ping" runs from it); a service
/// whose push check is gone forgets its pings.
fn push_context(selected: &[&Service], state: &mut StateFile, now: Timestamp) -> CycleCtx {
    let mut pushes = HashMap::new();
    for svc in selected {
        if svc.checks.iter().any(|c| matches!(c.probe, Probe::Push(_))) {
            let seen = state.services.entry(svc.name.clone()).or_default();
            let push = seen.push.get_or_insert_with(PushState::default);
            push.first_seen.get_or_insert(now);
            pushes.insert(svc.name.clone(), push.clone());
        } else if let Some(seen) = state.services.get_mut(&svc.name) {
            seen.push = None;
        }
    }
    CycleCtx { pushes, now, ..CycleCtx::default() }
}

/// systemd's view of the service's own unit, when a check probed it.
fn unit_info<'a>(svc: &Service, outs: &'a [Outcome]) -> Option<&'a UnitInfo> {
    let u = svc.unit.as_ref()?;
    svc.checks.iter().zip(outs).find_map(|(c, o)| match &c.probe {
        Probe::Systemd(p) if &p.unit == u => o.unit.as_ref(),
        _ => None,
    })
}

/// The record of a restart about to run, as it stays if its result never
/// makes it to disk (the run was killed): counted, and not known to be ok.
fn provisional(
    svc: &Service,
    outs: &[Outcome],
    now: Timestamp,
    policy: &HealPolicy,
) -> RestartRecord {
    let unit = svc.unit.as_deref().unwrap_or_default();
    let argv: Vec<String> =
        policy.restart_command.iter().map(|a| a.replace("{unit}", unit)).collect();
    RestartRecord {
        at: now,
        ok: false,
        detail: format!(
            "{}: started; no result was recorded (the run ended first)",
            argv.join(" ")
        ),
        n_restarts: unit_info(svc, outs).and_then(|u| u.n_restarts),
        outcome: crate::state::RestartOutcome::Pending,
    }
}

/// The status JSON entry of one service.
pub fn report(svc: &Service, outs: &[Outcome], st: &ServiceState) -> ServiceReport {
    let push = st.push.as_ref();
    let is_push = |c: &crate::probe::Check| matches!(c.probe, Probe::Push(_));
    ServiceReport {
        name: svc.name.clone(),
        status: st.status.unwrap_or(Health::Up),
        critical: svc.critical,
        unit: svc.unit.clone(),
        since: st.since,
        consecutive_failures: st.consecutive_failures,
        heal_suspended: st.heal_suspended,
        muted_until: st.muted_until,
        mute_reason: st.muted_until.and(st.mute_reason.clone()),
        restarts: st.restarts.clone(),
        restarts_total: st.restarts_total,
        incident: st.incident.clone(),
        flapping: st.flapping,
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
                    last_ping: push.and_then(|p| p.last.clone()).filter(|_| is_push(c)),
                    ping_due_by: match (&c.probe, push) {
                        (Probe::Push(p), Some(seen)) => seen
                            .last
                            .as_ref()
                            .map(|l| l.at)
                            .or(seen.first_seen)
                            .map(|t| t.plus(p.allowed())),
                        _ => None,
                    },
                    values: o.measured.as_ref().map(|m| m.values.clone()),
                    thresholds: o.measured.as_ref().and_then(|m| m.thresholds.clone()),
                }
            })
            .collect(),
        history: st.history.iter().cloned().collect(),
        uptime: None,
        maintenance: st.maintenance.clone(),
        next_maintenance: None,
        resources: None,
    }
}

/// The next maintenance window to open for `service` after `now`.
fn next_window(config: &Config, service: &str, now: Timestamp) -> Option<status::NextWindow> {
    config
        .maintenance
        .iter()
        .filter(|w| w.covers(service))
        .filter_map(|w| {
            // The next one to *open*: past the one open now, if any.
            let o = w.current_or_next(now)?;
            let o = if o.contains(now) { w.current_or_next(o.end)? } else { o };
            Some((o, w))
        })
        .min_by_key(|(o, _)| o.start)
        .map(|(o, w)| status::NextWindow {
            name: w.name.clone(),
            start: o.start,
            end: o.end,
            timezone: w.timezone_name.clone(),
        })
}

/// Adds each service's uptime (24 h, 7 d, 30 d) from the history store,
/// as of the store's last record plus the open tail to now (in the daemon,
/// as of up to a minute ago while no status or mute changed:
/// `Recorder::status_uptimes`); nothing when the store is off or cannot be
/// opened (`record` then says why).
pub fn add_uptime(doc: &mut StatusDoc, recorder: &mut store::Recorder) {
    let now = doc.generated_at;
    let services = doc
        .services
        .iter()
        .map(|s| (s.name.clone(), s.status, s.muted_until.is_some_and(|t| t > now)))
        .collect();
    let Some(figures) = recorder.status_uptimes(services, now) else { return };
    for (s, u) in doc.services.iter_mut().zip(figures) {
        if let Some(u) = u {
            s.uptime = Some(Uptime {
                day: u.get("24h").copied().flatten(),
                week: u.get("7d").copied().flatten(),
                month: u.get("30d").copied().flatten(),
            });
        }
    }
}

/// Saves the state and rewrites the status file (when given) after
/// `number_incidents` or `attach` (under the lock). When another run wrote
/// a newer status file meanwhile, that one keeps its results and only
/// gains the incidents' ids and diagnoses. The cycle's own results are
/// already on disk: a failure here costs only the diagnosis in those files
/// (it is in the history store and the alerts), so it warns instead of
/// failing the cycle.
pub fn save_diagnosed(config: &Config, state: &StateFile, doc: Option<&StatusDoc>) {
    if let Err(e) = crate::statefile::save(&config.state_file, state) {
        crate::warn!("diagnosis: not kept in the state file: {e}");
    }
    let Some(doc) = doc else { return };
    let newer = status::read(&config.status_file)
        .ok()
        .filter(|on_disk| on_disk.generated_at > doc.generated_at)
        .map(|mut on_disk| {
            for r in &mut on_disk.services {
                let ours = doc.services.iter().find(|o| o.name == r.name);
                let ours = ours.and_then(|o| o.incident.as_ref());
                if let (Some(inc), Some(ours)) = (r.incident.as_mut(), ours)
                    && inc.started_at == ours.started_at
                {
                    inc.id = inc.id.or(ours.id);
                    inc.diagnosis = inc.diagnosis.take().or_else(|| ours.diagnosis.clone());
                }
            }
            on_disk
        });
    if let Err(e) = status::write(&config.status_file, newer.as_ref().unwrap_or(doc)) {
        crate::warn!("diagnosis: not in the status file: {e}");
    }
}

/// What the history store is told about this cycle.
pub fn history_record(config: &Config, state: &StateFile, out: &CycleOutput) -> store::CycleRecord {
    let at = out.doc.generated_at;
    // `alerted` is "an alert was sent": a down event some notifier takes
    // (without one, the event is only logged).
    let alerted = |name: &str| {
        out.raised.events.iter().any(|e| {
            e.event == crate::config::EventName::Down
                && (e.service == name || e.also_affected.iter().any(|a| a == name))
                && config.notify.iter().any(|n| notify::wants(n, e))
        })
    };
    let services = out
        .doc
        .services
        .iter()
        .map(|r| store::ServiceRecord {
            name: r.name.clone(),
            status: r.status,
            latency_ms: r.checks.iter().find_map(|c| c.latency_ms),
            muted: state.services.get(&r.name).is_some_and(|s| s.is_muted(at)),
            problems: r
                .checks
                .iter()
                .filter(|c| c.status != crate::probe::CheckStatus::Up)
                .map(|c| store::CheckProblem {
                    kind: c.kind.clone(),
                    target: c.target.clone(),
                    status: c.status.as_str().to_string(),
                    reason: c.reason.map(|x| x.as_str().to_string()),
                    detail: c.detail.clone(),
                })
                .collect(),
            restarts: out
                .restarts
                .iter()
                .filter(|(name, _)| *name == r.name)
                .map(|(_, run)| *run)
                .collect(),
            alerted: alerted(&r.name),
            outcomes: out
                .outcomes
                .iter()
                .filter(|(name, ..)| *name == r.name)
                .map(|(_, at, o)| (*at, *o))
                .collect(),
        })
        .collect();
    let samples = samples(config, &out.doc);
    let resources = out
        .doc
        .services
        .iter()
        .filter_map(|r| {
            let res = r.resources.as_ref()?;
            Some(store::ResourceSample {
                service: r.name.clone(),
                memory_bytes: res.memory_bytes.map(|m| m as f64),
                cpu_pct: res.cpu_pct,
            })
        })
        .collect();
    store::CycleRecord { at, interval: config.interval, services, samples, resources }
}
