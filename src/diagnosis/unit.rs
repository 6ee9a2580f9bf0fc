//! The unit's state at the incident: the probe's `systemctl show` answer
//! (taken before any restart of ours), or, for a unit no probe observes
//! (a push service's job), one `systemctl show` for every property the
//! diagnosis needs (and what the journal query needs).

use super::UnitDiag;
use super::journal::Invocation;
use crate::probe::child::{RunError, run_bounded};
use crate::probe::clean_detail;
use std::time::Instant;

pub const PROPERTIES: &str = "Id,ActiveState,SubState,Result,ExecMainCode,ExecMainStatus,ExecMainPID,NRestarts,InvocationID,MemoryCurrent";

/// `systemctl show -p PROPERTIES UNIT`, from PATH, no shell: the unit's
/// state and which journal lines are its latest invocation's.
pub fn show(name: &str, deadline: Instant) -> Result<(UnitDiag, Invocation), String> {
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

/// Reads `KEY=VALUE` lines into the diagnosis's unit and its invocation.
pub fn parse(name: &str, text: &str) -> (UnitDiag, Invocation) {
    let mut u = UnitDiag { name: name.to_string(), ..UnitDiag::default() };
    let (mut code, mut status) = (None::<String>, None::<i32>);
    let mut invocation = Invocation::default();
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
            "InvocationID" => invocation.id = Some(v.to_string()).filter(|v| is_invocation_id(v)),
            // The main process's, kept by systemd after it exited (0: none).
            "ExecMainPID" => invocation.main_pid = v.parse().ok().filter(|p| *p > 0),
            // systemd's own name of the unit (`x` becomes `x.service`).
            "Id" => invocation.unit = Some(v.to_string()).filter(|v| is_unit_name(v)),
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

/// A unit name as systemd prints it (it becomes part of a journalctl match).
fn is_unit_name(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= 256
        && v.contains('.')
        && v.bytes().all(|b| b.is_ascii_alphanumeric() || b":-_.\\@".contains(&b))
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
            "Id=a.service\nActiveState=failed\nSubState=failed\nResult=exit-code\nExecMainCode=1\nExecMainStatus=3\nExecMainPID=812\nNRestarts=4\nInvocationID=0123456789abcdef0123456789abcdef\nMemoryCurrent=[not set]\n",
        );
        assert_eq!((u.exit_code, u.exit_signal.as_deref()), (Some(3), None));
        assert_eq!((u.n_restarts, u.memory_bytes), (Some(4), None));
        assert_eq!(
            inv,
            Invocation {
                id: Some("0123456789abcdef0123456789abcdef".into()),
                main_pid: Some(812),
                unit: Some("a.service".into())
            }
        );
        let (u, inv) = parse(
            "a.service",
            "Result=oom-kill\nExecMainCode=2\nExecMainStatus=9\nExecMainPID=0\nInvocationID=\nMemoryCurrent=1048576\n",
        );
        assert_eq!((u.exit_code, u.exit_signal.as_deref()), (None, Some("KILL")));
        assert_eq!((u.memory_bytes, inv), (Some(1_048_576), Invocation::default()));
        let (u, _) =
            parse("a", "ExecMainCode=0\nExecMainStatus=0\nMemoryCurrent=18446744073709551615\n");
        assert_eq!((u.exit_code, u.exit_signal, u.memory_bytes), (None, None, None));
        let (_, inv) = parse("a", "InvocationID=--output=x\nId=a b\nExecMainPID=x\n");
        assert_eq!(
            inv,
            Invocation::default(),
            "only a hex id, a unit name, a pid become arguments"
        );
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
