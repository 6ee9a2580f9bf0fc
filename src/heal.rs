//! Runs the restarts that `state::step` asks for: `restart_command` with
//! `{unit}` substituted, never through a shell, bounded by `heal.timeout`.
//! What a restart command that exited 0 left running is not killed (only
//! at the timeout or after a failure): a script may start the service in
//! the background.

use crate::config::HealPolicy;
use crate::probe::child::{RunError, run_bounded_keep};
use crate::probe::clean_detail;
use crate::state::RestartRecord;
use crate::time::Timestamp;
use std::time::Instant;

/// Restarts `unit` (after `systemctl reset-failed` when asked) and reports
/// what happened. Never fails: a failed restart is a record with `ok: false`.
pub fn restart(
    policy: &HealPolicy,
    unit: &str,
    reset_failed: bool,
    n_restarts: Option<u64>,
) -> RestartRecord {
    let at = Timestamp::now();
    let deadline = Instant::now() + policy.timeout;
    let mut notes = Vec::new();
    if reset_failed {
        let argv = ["systemctl", "reset-failed", unit].map(String::from);
        let (_, note) = run(&argv, deadline);
        notes.push(note);
    }
    let argv: Vec<String> =
        policy.restart_command.iter().map(|a| a.replace("{unit}", unit)).collect();
    let (ok, note) = run(&argv, deadline);
    notes.push(note);
    RestartRecord { at, ok, detail: notes.join("; "), n_restarts, outcome: Default::default() }
}

fn run(argv: &[String], deadline: Instant) -> (bool, String) {
    let cmd = argv.join(" ");
    // What a successful restart command started stays (a script that
    // backgrounds the service); see `child::AfterExit`.
    match run_bounded_keep(argv, deadline, 16 * 1024) {
        Ok(out) if out.code == Some(0) => (true, cmd),
        Ok(out) => {
            let err = clean_detail(&String::from_utf8_lossy(&out.stderr), 160);
            let how = out.code.map_or_else(|| "killed".to_string(), |c| format!("exit {c}"));
            (
                false,
                if err.is_empty() {
                    format!("{cmd}: {how}")
                } else {
                    format!("{cmd}: {how}: {err}")
                },
            )
        }
        Err(RunError::Spawn(e)) => (false, format!("{cmd}: cannot run: {e}")),
        Err(RunError::Timeout) => (false, format!("{cmd}: timed out (heal.timeout)")),
    }
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
