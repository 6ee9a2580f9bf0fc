//! `step` as a table: a sequence of observations at given times, and after
//! each one the actions asked for and the counters that result.

use super::*;
use crate::config::HealPolicy;
use crate::probe::UnitInfo;
use std::time::Duration;

const T0: i64 = 1_800_000_000;

/// systemd's view of the service's unit in a row.
#[derive(Clone, Copy, Debug)]
enum U {
    /// No systemd check result.
    No,
    Failed,
    AutoRestart,
    Activating,
    LimitHit,
}

fn unit_info(u: U) -> Option<UnitInfo> {
    let (active, sub, result) = match u {
        U::No => return None,
        U::Failed => ("failed", "failed", "exit-code"),
        U::AutoRestart => ("activating", "auto-restart", "exit-code"),
        U::Activating => ("activating", "start", "success"),
        U::LimitHit => ("failed", "failed", "start-limit-hit"),
    };
    Some(UnitInfo {
        load_state: "loaded".into(),
        active_state: active.into(),
        sub_state: sub.into(),
        result: result.into(),
        n_restarts: Some(0),
        ..UnitInfo::default()
    })
}

/// One observation and what must follow from it.
struct Row {
    /// Seconds after T0.
    t: i64,
    health: Health,
    unit: U,
    dependency_down: bool,
    actions: Vec<Action>,
    failures: u32,
    suspended: bool,
    /// Restarts held in the window afterwards.
    restarts: usize,
}

use Health::{Degraded as G, Down as D, Up as P};

/// `(t, health, unit, dependency_down, actions, failures, suspended, restarts)`.
type Spec = (i64, Health, U, bool, Vec<Action>, u32, bool, usize);

fn rows(spec: Vec<Spec>) -> Vec<Row> {
    spec.into_iter()
        .map(|(t, health, unit, dependency_down, actions, failures, suspended, restarts)| Row {
            t,
            health,
            unit,
            dependency_down,
            actions,
            failures,
            suspended,
            restarts,
        })
        .collect()
}

const R: Action = Action::Restart { reset_failed: false };

fn skip(r: SkipReason) -> Vec<Action> {
    vec![Action::Skip(r)]
}

/// Runs the rows through `step`, recording every restart asked for as a
/// successful one (as `cycle` does), and checks each row's expectations.
fn run(name: &str, policy: &HealPolicy, start: ServiceState, has_unit: bool, table: Vec<Row>) {
    let mut s = start;
    for (i, row) in table.iter().enumerate() {
        let now = Timestamp::from_secs(T0 + row.t);
        let info = unit_info(row.unit);
        let obs = Observation { health: row.health, latency_ms: Some(1.0), unit: info.as_ref() };
        let ctx =
            StepCtx { policy, now, has_unit, dependency_down: row.dependency_down, history: 60 };
        let (mut next, actions) = step(&s, &obs, &ctx);
        let at = format!("{name}, row {i} (t={}s, {:?})", row.t, row.health);
        assert_eq!(actions, row.actions, "{at}: actions");
        for a in &actions {
            if let Action::Restart { .. } = a {
                record_restart(
                    &mut next,
                    RestartRecord {
                        at: now,
                        ok: true,
                        detail: "test".into(),
                        n_restarts: None,
                        outcome: Default::default(),
                    },
                );
            }
        }
        assert_eq!(next.consecutive_failures, row.failures, "{at}: consecutive_failures");
        assert_eq!(next.heal_suspended, row.suspended, "{at}: heal_suspended");
        assert_eq!(next.restarts.len(), row.restarts, "{at}: restarts in window");
        assert_eq!(next.status, Some(row.health), "{at}: status");
        s = next;
    }
}

fn policy(f: impl FnOnce(&mut HealPolicy)) -> HealPolicy {
    let mut p = HealPolicy::default();
    f(&mut p);
    p
}

#[test]
fn after_failures_then_every_after_failures_more() {
    // Defaults: after 2, grace 30 s; cycles 30 s apart, so no cycle is in grace.
    let p = HealPolicy::default();
    run(
        "after_failures",
        &p,
        ServiceState::default(),
        true,
        rows(vec![
            (0, D, U::Failed, false, vec![], 1, false, 0),
            (30, D, U::Failed, false, vec![R], 2, false, 1),
            (60, D, U::Failed, false, vec![], 3, false, 1),
            (90, D, U::Failed, false, vec![R], 4, false, 2),
            (120, P, U::No, false, vec![], 0, false, 2),
            (150, D, U::Failed, false, vec![], 1, false, 2),
        ]),
    );
    let p = policy(|p| p.after_failures = 3);
    run(
        "after_failures 3",
        &p,
        ServiceState::default(),
        true,
        rows(vec![
            (0, D, U::No, false, vec![], 1, false, 0),
            (30, D, U::No, false, vec![], 2, false, 0),
            (60, D, U::No, false, vec![R], 3, false, 1),
        ]),
    );
}

#[test]
fn a_non_down_cycle_resets_the_count() {
    let p = HealPolicy::default();
    run(
        "reset",
        &p,
        ServiceState::default(),
        true,
        rows(vec![
            (0, D, U::No, false, vec![], 1, false, 0),
            (30, G, U::No, false, vec![], 0, false, 0),
            (60, D, U::No, false, vec![], 1, false, 0),
            (90, D, U::No, false, vec![R], 2, false, 1),
        ]),
    );
}

#[test]
fn grace_holds_the_count() {
    let p = policy(|p| p.grace = Duration::from_secs(60));
    run(
        "grace",
        &p,
        ServiceState::default(),
        true,
        rows(vec![
            (0, D, U::No, false, vec![], 1, false, 0),
            (30, D, U::No, false, vec![R], 2, false, 1),
            (60, D, U::No, false, vec![], 2, false, 1), // 30 s after: held
            (89, D, U::No, false, vec![], 2, false, 1), // 59 s after: held
            (90, D, U::No, false, vec![], 3, false, 1), // 60 s after: counts
            (120, D, U::No, false, vec![R], 4, false, 2),
        ]),
    );
}

#[test]
fn max_restarts_suspends_until_stable() {
    let p = policy(|p| {
        p.after_failures = 1;
        p.grace = Duration::ZERO;
        p.max_restarts = 2;
        p.stable_after = Duration::from_secs(600);
    });
    run(
        "suspend",
        &p,
        ServiceState::default(),
        true,
        rows(vec![
            (0, D, U::No, false, vec![R], 1, false, 1),
            (30, D, U::No, false, vec![R], 2, false, 2),
            (60, D, U::No, false, vec![Action::Suspend], 3, true, 2),
            (90, D, U::No, false, skip(SkipReason::Suspended), 4, true, 2),
            (120, P, U::No, false, vec![], 0, true, 2), // up since 120
            (719, P, U::No, false, vec![], 0, true, 2), // 599 s up
            (720, P, U::No, false, vec![], 0, false, 0), // 600 s up: cleared
            (750, D, U::No, false, vec![R], 1, false, 1),
        ]),
    );
}

#[test]
fn degraded_is_not_stable_and_restarts_the_stable_clock() {
    let p = policy(|p| {
        p.after_failures = 1;
        p.grace = Duration::ZERO;
        p.max_restarts = 1;
        p.stable_after = Duration::from_secs(100);
    });
    run(
        "stable clock",
        &p,
        ServiceState::default(),
        true,
        rows(vec![
            (0, D, U::No, false, vec![R], 1, false, 1),
            (10, D, U::No, false, vec![Action::Suspend], 2, true, 1),
            (20, P, U::No, false, vec![], 0, true, 1),
            (60, G, U::No, false, vec![], 0, true, 1),
            (130, G, U::No, false, vec![], 0, true, 1), // degraded, not up
            (140, P, U::No, false, vec![], 0, true, 1), // up since 140
            (239, P, U::No, false, vec![], 0, true, 1),
            (240, P, U::No, false, vec![], 0, false, 0),
        ]),
    );
}

#[test]
fn restarts_leave_the_window() {
    let p = policy(|p| {
        p.after_failures = 1;
        p.grace = Duration::ZERO;
        p.max_restarts = 2;
        p.window = Duration::from_secs(60);
    });
    run(
        "window",
        &p,
        ServiceState::default(),
        true,
        rows(vec![
            (0, D, U::No, false, vec![R], 1, false, 1),
            (30, D, U::No, false, vec![R], 2, false, 2),
            // Both restarts are 60 s or more old: out of the window.
            (90, D, U::No, false, vec![R], 3, false, 1),
        ]),
    );
}

#[test]
fn systemd_restarting_the_unit_is_not_piled_on() {
    let p = policy(|p| {
        p.after_failures = 1;
        p.grace = Duration::ZERO;
    });
    run(
        "systemd restarting",
        &p,
        ServiceState::default(),
        true,
        rows(vec![
            (0, D, U::AutoRestart, false, skip(SkipReason::SystemdRestarting), 1, false, 0),
            (30, D, U::Activating, false, skip(SkipReason::SystemdRestarting), 2, false, 0),
            (60, D, U::Failed, false, vec![R], 3, false, 1),
        ]),
    );
}

#[test]
fn start_limit_hit_with_and_without_reset_failed() {
    let p = policy(|p| {
        p.after_failures = 1;
        p.grace = Duration::ZERO;
    });
    run(
        "start-limit-hit, alert only",
        &p,
        ServiceState::default(),
        true,
        rows(vec![
            (0, D, U::LimitHit, false, skip(SkipReason::StartLimitHit), 1, false, 0),
            (30, D, U::LimitHit, false, skip(SkipReason::StartLimitHit), 2, false, 0),
        ]),
    );
    let p = policy(|p| {
        p.after_failures = 1;
        p.grace = Duration::ZERO;
        p.reset_failed = true;
    });
    run(
        "start-limit-hit, reset_failed",
        &p,
        ServiceState::default(),
        true,
        rows(vec![
            (0, D, U::LimitHit, false, vec![Action::Restart { reset_failed: true }], 1, false, 1),
            (30, D, U::Failed, false, vec![R], 2, false, 2),
        ]),
    );
}

#[test]
fn muted_until_the_mute_ends() {
    let p = policy(|p| {
        p.after_failures = 1;
        p.grace = Duration::ZERO;
    });
    let start = ServiceState {
        muted_until: Some(Timestamp::from_secs(T0 + 60)),
        mute_reason: Some("deploy".into()),
        ..Default::default()
    };
    run(
        "muted",
        &p,
        start.clone(),
        true,
        rows(vec![
            (0, D, U::Failed, false, skip(SkipReason::Muted), 1, false, 0),
            (59, D, U::Failed, false, skip(SkipReason::Muted), 2, false, 0),
            (60, D, U::Failed, false, vec![R], 3, false, 1),
        ]),
    );
    // The mute is forgotten once it has ended.
    let obs = Observation { health: D, latency_ms: None, unit: None };
    let ctx = StepCtx {
        policy: &p,
        now: Timestamp::from_secs(T0 + 61),
        has_unit: true,
        dependency_down: false,
        history: 60,
    };
    let (s, _) = step(&start, &obs, &ctx);
    assert_eq!((s.muted_until, s.mute_reason), (None, None));
}

#[test]
fn a_down_dependency_holds_healing() {
    let p = policy(|p| {
        p.after_failures = 1;
        p.grace = Duration::ZERO;
    });
    run(
        "dependency",
        &p,
        ServiceState::default(),
        true,
        rows(vec![
            (0, D, U::Failed, true, skip(SkipReason::DependencyDown), 1, false, 0),
            (30, D, U::Failed, false, vec![R], 2, false, 1),
        ]),
    );
}

#[test]
fn no_unit_or_healing_disabled_counts_but_never_acts() {
    let p = policy(|p| {
        p.after_failures = 1;
        p.grace = Duration::ZERO;
    });
    let down_rows = || {
        rows(vec![
            (0, D, U::No, false, vec![], 1, false, 0),
            (30, D, U::No, false, vec![], 2, false, 0),
            (60, D, U::No, false, vec![], 3, false, 0),
        ])
    };
    run("no unit", &p, ServiceState::default(), false, down_rows());
    let p = policy(|p| {
        p.after_failures = 1;
        p.enabled = false;
    });
    run("disabled", &p, ServiceState::default(), true, down_rows());
}

#[test]
fn history_is_capped_oldest_first_and_since_marks_changes() {
    let p = HealPolicy::default();
    let mut s = ServiceState::default();
    let seq = [(0, P), (10, P), (20, D), (30, D), (40, P)];
    let mut since = Vec::new();
    for (t, h) in seq {
        let obs = Observation { health: h, latency_ms: Some(t as f64), unit: None };
        let ctx = StepCtx {
            policy: &p,
            now: Timestamp::from_secs(T0 + t),
            has_unit: false,
            dependency_down: false,
            history: 3,
        };
        s = step(&s, &obs, &ctx).0;
        since.push(s.since.map(|x| x.0 / 1000 - T0));
    }
    let h: Vec<(i64, Health)> = s.history.iter().map(|e| (e.at.0 / 1000 - T0, e.status)).collect();
    assert_eq!(h, [(20, D), (30, D), (40, P)]);
    assert_eq!(s.history.back().and_then(|e| e.latency_ms), Some(40.0));
    assert_eq!(since, [Some(0), Some(0), Some(20), Some(20), Some(40)]);

    let ctx = StepCtx {
        policy: &p,
        now: Timestamp::from_secs(T0 + 50),
        has_unit: false,
        dependency_down: false,
        history: 0,
    };
    let obs = Observation { health: P, latency_ms: None, unit: None };
    assert!(step(&s, &obs, &ctx).0.history.is_empty());
}

#[test]
fn state_file_round_trips_and_tolerates_missing_keys() {
    let mut f = StateFile { schema: 1, ..Default::default() };
    let mut s = ServiceState { status: Some(D), consecutive_failures: 2, ..Default::default() };
    record_restart(
        &mut s,
        RestartRecord {
            at: Timestamp::from_secs(T0),
            ok: true,
            detail: "x".into(),
            n_restarts: Some(3),
            outcome: Default::default(),
        },
    );
    f.services.insert("web".into(), s);
    let text = serde_json::to_string(&f).unwrap();
    assert_eq!(serde_json::from_str::<StateFile>(&text).unwrap(), f);
    // An older state file without newer keys still loads.
    let old: StateFile =
        serde_json::from_str(r#"{"schema":1,"services":{"web":{"consecutive_failures":1}}}"#)
            .unwrap();
    assert_eq!(old.services["web"].consecutive_failures, 1);
}

#[test]
fn a_clock_stepped_back_does_not_hold_the_count_in_grace() {
    // Our last restart is recorded 1 h "in the future": the clock stepped
    // back at boot. Failures count at once rather than after an hour.
    let p = HealPolicy::default();
    let start = ServiceState {
        last_restart: Some(Timestamp::from_secs(T0 + 3600)),
        ..ServiceState::default()
    };
    run(
        "clock stepped back",
        &p,
        start,
        true,
        rows(vec![
            (0, D, U::Failed, false, vec![], 1, false, 0),
            (30, D, U::Failed, false, vec![R], 2, false, 1),
        ]),
    );
}
