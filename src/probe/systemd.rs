//! systemd probe: the unit's `LoadState`, `ActiveState`, `SubState`,
//! `Result` and `NRestarts` from the cycle's one question to systemd (see
//! `units.rs`: over D-Bus, or `systemctl show` run from PATH without a
//! shell, which is also what lets tests fake it), mapped to a check state.
//! The same question asks for what an incident's diagnosis needs (exit
//! status, invocation, memory), so the diagnosis sees the unit as it was
//! when it failed.
//!
//! When systemd cannot be asked (`systemctl` missing, past the timeout,
//! killed, an answer that is not `systemctl show`'s; no D-Bus answer by the
//! timeout) the unit could not be evaluated:
//! `unknown`, never `down`, so the monitor's own tool never triggers a heal.

use super::units::UnitQuery;
use super::{CheckStatus, CycleCtx, Outcome, Reason, SystemdProbe, UnitInfo};
use std::time::Instant;

/// The unit's state from the cycle's one `systemctl show` (`units.rs`);
/// a check run outside a cycle that asked (none covers its unit) asks for
/// its unit alone.
pub fn check(p: &SystemdProbe, ctx: &CycleCtx, deadline: Instant) -> Outcome {
    let answer = match ctx.units.as_deref().filter(|q| q.covers(&p.unit)) {
        Some(q) => q.get(&p.unit, deadline),
        None => UnitQuery::new([p.unit.clone()]).get(&p.unit, deadline),
    };
    match answer {
        Ok(u) => evaluate(u),
        Err(f) => f.outcome(),
    }
}

/// The SPEC's mapping from unit state to check state.
pub fn evaluate(u: UnitInfo) -> Outcome {
    let mut detail = format!("{} ({})", or_unknown(&u.active_state), or_unknown(&u.sub_state));
    if !u.result.is_empty() && u.result != "success" {
        detail.push_str(&format!(", result {}", u.result));
    }
    if let Some(n) = u.n_restarts.filter(|n| *n > 0) {
        detail.push_str(&format!(", {n} restarts by systemd"));
    }
    let (status, reason) = if u.load_state == "not-found" {
        detail = "unit not found".into();
        (CheckStatus::Unknown, Some(Reason::UnitNotFound))
    } else if u.sub_state == "auto-restart"
        || matches!(u.active_state.as_str(), "activating" | "reloading" | "deactivating")
    {
        (CheckStatus::Degraded, Some(Reason::UnitRestarting))
    } else if u.active_state == "active" {
        (CheckStatus::Up, None)
    } else if u.start_limit_hit() {
        (CheckStatus::Down, Some(Reason::StartLimitHit))
    } else if u.active_state == "failed" {
        (CheckStatus::Down, Some(Reason::UnitFailed))
    } else if u.active_state == "inactive" {
        (CheckStatus::Down, Some(Reason::UnitInactive))
    } else {
        (CheckStatus::Unknown, Some(Reason::CheckError))
    };
    Outcome {
        status,
        reason,
        detail,
        latency: None,
        unit: Some(u),
        cert: None,
        measured: None,
        http: None,
        cpu: None,
    }
}

fn or_unknown(s: &str) -> &str {
    if s.is_empty() { "unknown" } else { s }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::units::parse_show;

    fn eval(active: &str, sub: &str, result: &str, load: &str) -> (CheckStatus, Option<Reason>) {
        let text = format!(
            "LoadState={load}\nActiveState={active}\nSubState={sub}\nResult={result}\nNRestarts=0\n"
        );
        let o = evaluate(parse_show(&text));
        (o.status, o.reason)
    }

    #[test]
    fn maps_unit_states_as_the_spec_says() {
        use CheckStatus::*;
        assert_eq!(eval("active", "running", "success", "loaded"), (Up, None));
        assert_eq!(
            eval("activating", "auto-restart", "exit-code", "loaded"),
            (Degraded, Some(Reason::UnitRestarting))
        );
        assert_eq!(
            eval("activating", "start", "success", "loaded"),
            (Degraded, Some(Reason::UnitRestarting))
        );
        assert_eq!(
            eval("reloading", "running", "success", "loaded"),
            (Degraded, Some(Reason::UnitRestarting))
        );
        assert_eq!(
            eval("failed", "failed", "start-limit-hit", "loaded"),
            (Down, Some(Reason::StartLimitHit))
        );
        assert_eq!(
            eval("failed", "failed", "exit-code", "loaded"),
            (Down, Some(Reason::UnitFailed))
        );
        assert_eq!(
            eval("inactive", "dead", "success", "loaded"),
            (Down, Some(Reason::UnitInactive))
        );
        assert_eq!(
            eval("inactive", "dead", "success", "not-found"),
            (Unknown, Some(Reason::UnitNotFound))
        );
        assert_eq!(eval("", "", "", ""), (Unknown, Some(Reason::CheckError)));
    }
}
