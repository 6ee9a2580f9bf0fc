//! systemd probe: `systemctl show -p PROPERTIES UNIT`, run from PATH without
//! a shell (which is also what lets tests fake it). The same call asks for
//! what an incident's diagnosis needs (exit status, invocation, memory), so
//! the diagnosis sees the unit as it was when it failed.
//!
//! When `systemctl` itself fails (missing, past the timeout, killed, an
//! answer that is not `systemctl show`'s) the unit could not be evaluated:
//! `unknown`, never `down`, so the monitor's own tool never triggers a heal.

use super::child::{RunError, run_bounded};
use super::{CheckStatus, Outcome, Reason, SystemdProbe, UnitInfo, clean_detail};
use std::time::Instant;

pub const PROPERTIES: &str = "LoadState,ActiveState,SubState,Result,NRestarts,Id,ExecMainCode,ExecMainStatus,ExecMainPID,InvocationID,MemoryCurrent";

pub fn check(p: &SystemdProbe, deadline: Instant) -> Outcome {
    let argv = ["systemctl", "show", "-p", PROPERTIES, p.unit.as_str()].map(String::from);
    let out = match run_bounded(&argv, deadline, 16 * 1024) {
        Ok(o) => o,
        Err(RunError::Spawn(e)) if e.kind() == std::io::ErrorKind::NotFound => {
            return Outcome::not_up(
                CheckStatus::Unknown,
                Reason::CheckError,
                "systemctl not found on PATH",
            );
        }
        Err(RunError::Spawn(e)) => {
            return Outcome::not_up(
                CheckStatus::Unknown,
                Reason::CheckError,
                format!("cannot run systemctl: {e}"),
            );
        }
        Err(RunError::Timeout) => {
            return Outcome::not_up(
                CheckStatus::Unknown,
                Reason::Timeout,
                "systemctl did not answer in time",
            );
        }
    };
    if out.code != Some(0) {
        let msg = clean_detail(&String::from_utf8_lossy(&out.stderr), 160);
        let msg = match (msg.is_empty(), out.code, out.signal) {
            (false, ..) => msg,
            (true, Some(c), _) => format!("exited with {c}"),
            (true, None, Some(sig)) => format!("killed by signal {sig}"),
            (true, None, None) => "ended without an exit status".into(),
        };
        return Outcome::not_up(
            CheckStatus::Unknown,
            Reason::CheckError,
            format!("systemctl: {msg}"),
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    if !answers_show(&text) {
        let said = clean_detail(&text, 120);
        return Outcome::not_up(
            CheckStatus::Unknown,
            Reason::CheckError,
            if said.is_empty() {
                "systemctl show answered nothing".to_string()
            } else {
                format!("not an answer of systemctl show: {said}")
            },
        );
    }
    let mut u = parse_show(&text);
    u.answer = text.into_owned();
    evaluate(u)
}

/// Whether `text` carries the properties a verdict needs: `systemctl show`
/// prints every property asked for, so one missing means someone else spoke.
fn answers_show(text: &str) -> bool {
    ["LoadState", "ActiveState", "SubState"].iter().all(|key| {
        text.lines().any(|l| {
            l.split_once('=').is_some_and(|(k, v)| k.trim() == *key && !v.trim().is_empty())
        })
    })
}

/// Reads `KEY=VALUE` lines of `systemctl show`.
pub fn parse_show(text: &str) -> UnitInfo {
    let mut u = UnitInfo::default();
    for line in text.lines() {
        let Some((k, v)) = line.split_once('=') else { continue };
        let v = v.trim().to_string();
        match k.trim() {
            "LoadState" => u.load_state = v,
            "ActiveState" => u.active_state = v,
            "SubState" => u.sub_state = v,
            "Result" => u.result = v,
            "NRestarts" => u.n_restarts = v.parse().ok(),
            _ => {}
        }
    }
    u
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
    }
}

fn or_unknown(s: &str) -> &str {
    if s.is_empty() { "unknown" } else { s }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn only_a_full_answer_is_one() {
        assert!(answers_show("LoadState=loaded\nActiveState=active\nSubState=running\n"));
        assert!(!answers_show("ActiveState=inactive\nSubState=dead\n"));
        assert!(!answers_show("LoadState=\nActiveState=inactive\nSubState=dead\n"));
        assert!(!answers_show("Failed to connect to bus: No such file or directory\n"));
        assert!(!answers_show(""));
    }
}
