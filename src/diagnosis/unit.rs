//! The unit's state at the incident: one `systemctl show` for every
//! property the diagnosis needs (and the invocation id the journal needs).

use super::UnitDiag;
use crate::probe::child::{RunError, run_bounded};
use crate::probe::clean_detail;
use std::time::Instant;

pub const PROPERTIES: &str =
    "ActiveState,SubState,Result,ExecMainCode,ExecMainStatus,NRestarts,InvocationID,MemoryCurrent";

/// `systemctl show -p PROPERTIES UNIT`, from PATH, no shell: the unit's
/// state and its latest invocation id (None when systemd has none).
pub fn show(name: &str, deadline: Instant) -> Result<(UnitDiag, Option<String>), String> {
    let argv = ["systemctl", "show", "-p", PROPERTIES, name].map(String::from);
    let out = match run_bounded(&argv, deadline, 16 * 1024) {
        Ok(o) => o,
        Err(RunError::Spawn(e)) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err("systemctl not found on PATH".into());
        }
        Err(RunError::Spawn(e)) => return Err(format!("cannot run systemctl: {e}")),
        Err(RunError::Timeout) => return Err("systemctl did not answer in time".into()),
    };
    if out.code != Some(0) {
        let said = clean_detail(&String::from_utf8_lossy(&out.stderr), 160);
        return Err(format!("systemctl show failed ({}): {said}", status_text(&out)));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(parse(name, &text))
}

fn status_text(out: &crate::probe::child::RunOutput) -> String {
    match (out.code, out.signal) {
        (Some(c), _) => format!("exit {c}"),
        (None, Some(s)) => format!("signal {s}"),
        _ => "no exit status".into(),
    }
}

/// Reads `KEY=VALUE` lines into the diagnosis's unit and the invocation id.
pub fn parse(name: &str, text: &str) -> (UnitDiag, Option<String>) {
    let mut u = UnitDiag { name: name.to_string(), ..UnitDiag::default() };
    let (mut code, mut status, mut invocation) = (None::<String>, None::<i32>, None);
    for line in text.lines() {
        let Some((k, v)) = line.split_once('=') else { continue };
        let v = v.trim();
        match k.trim() {
            "ActiveState" => u.active_state = v.to_string(),
            "SubState" => u.sub_state = v.to_string(),
            "Result" => u.result = v.to_string(),
            "ExecMainCode" => code = Some(v.to_string()),
            "ExecMainStatus" => status = v.parse().ok(),
            "NRestarts" => u.n_restarts = v.parse().ok(),
            "InvocationID" => {
                invocation = Some(v.to_string()).filter(|v| is_invocation_id(v));
            }
            // "[not set]", or u64::MAX ("infinity") when accounting is off.
            "MemoryCurrent" => u.memory_bytes = v.parse().ok().filter(|m| *m != u64::MAX),
            _ => {}
        }
    }
    // ExecMainCode is a CLD_* code: 1 exited, 2 killed, 3 dumped core.
    match (code.as_deref(), status) {
        (Some("1" | "exited"), Some(s)) => u.exit_code = Some(s),
        (Some("2" | "3" | "killed" | "dumped"), Some(s)) => u.exit_signal = Some(signal_name(s)),
        _ => {}
    }
    (u, invocation)
}

/// 32 hex digits (systemd's sd_id128 text form), nothing else: it becomes
/// a journalctl argument.
fn is_invocation_id(v: &str) -> bool {
    v.len() == 32 && v.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A Linux signal's name without `SIG` (its number when unknown).
pub fn signal_name(n: i32) -> String {
    const NAMES: [&str; 31] = [
        "HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "BUS", "FPE", "KILL", "USR1", "SEGV", "USR2",
        "PIPE", "ALRM", "TERM", "STKFLT", "CHLD", "CONT", "STOP", "TSTP", "TTIN", "TTOU", "URG",
        "XCPU", "XFSZ", "VTALRM", "PROF", "WINCH", "IO", "PWR", "SYS",
    ];
    usize::try_from(n)
        .ok()
        .and_then(|i| i.checked_sub(1))
        .and_then(|i| NAMES.get(i))
        .map_or_else(|| n.to_string(), |s| (*s).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_code_signal_memory_and_invocation() {
        let (u, inv) = parse(
            "a.service",
            "ActiveState=failed\nSubState=failed\nResult=exit-code\nExecMainCode=1\nExecMainStatus=3\nNRestarts=4\nInvocationID=0123456789abcdef0123456789abcdef\nMemoryCurrent=[not set]\n",
        );
        assert_eq!((u.exit_code, u.exit_signal.as_deref()), (Some(3), None));
        assert_eq!((u.n_restarts, u.memory_bytes), (Some(4), None));
        assert_eq!(inv.as_deref(), Some("0123456789abcdef0123456789abcdef"));
        let (u, inv) = parse(
            "a.service",
            "Result=oom-kill\nExecMainCode=2\nExecMainStatus=9\nInvocationID=\nMemoryCurrent=1048576\n",
        );
        assert_eq!((u.exit_code, u.exit_signal.as_deref()), (None, Some("KILL")));
        assert_eq!((u.memory_bytes, inv), (Some(1_048_576), None));
        let (u, _) =
            parse("a", "ExecMainCode=0\nExecMainStatus=0\nMemoryCurrent=18446744073709551615\n");
        assert_eq!((u.exit_code, u.exit_signal, u.memory_bytes), (None, None, None));
        let (_, inv) = parse("a", "InvocationID=--output=x\n");
        assert_eq!(inv, None, "only a hex id becomes an argument");
    }

    #[test]
    fn signal_names() {
        assert_eq!(signal_name(9), "KILL");
        assert_eq!(signal_name(15), "TERM");
        assert_eq!(signal_name(6), "ABRT");
        assert_eq!(signal_name(64), "64");
        assert_eq!(signal_name(0), "0");
    }
}
