//! The unit's last journal lines: `journalctl` from PATH, no shell, bounded
//! in time (the capture's deadline), bytes (`MAX_OUTPUT`) and lines (`-n`).

use crate::probe::child::{RunError, run_bounded};
use crate::probe::clean_detail;
use std::time::Instant;

/// More output than this is not `-n 200` of a sane journal: refused.
pub const MAX_OUTPUT: usize = 256 * 1024;

/// Which journal lines are the unit's latest invocation's, as `systemctl
/// show` named it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Invocation {
    /// `InvocationID`: journald tags the service's own lines with it
    /// (`_SYSTEMD_INVOCATION_ID`), systemd its lines about it (`INVOCATION_ID`).
    pub id: Option<String>,
    /// `ExecMainPID`: the main process, kept by systemd after it exited.
    pub main_pid: Option<u32>,
    /// `Id`: systemd's own name of the unit.
    pub unit: Option<String>,
}

/// The arguments: the latest invocation's lines when systemd named one,
/// else the unit's (`-u`).
///
/// The invocation's lines are those tagged with its id, and the main
/// process's lines in this boot: journald reads a process's invocation id
/// from its cgroup, and a process that printed its last words and exited
/// before journald read them has none left (the line keeps only the unit
/// name the stream was opened with, and the pid). Seen under a real
/// systemd 252: `echo …; exit 1` lost its line to an invocation match in
/// about 1 start in 6 (tests/packaging/test-systemd.sh).
pub fn argv(unit: &str, invocation: &Invocation, boot: Option<&str>, lines: usize) -> Vec<String> {
    let mut a: Vec<String> =
        ["journalctl", "--no-pager", "--quiet", "--no-hostname", "--output=short-iso", "--lines"]
            .map(String::from)
            .to_vec();
    a.push(lines.to_string());
    match &invocation.id {
        Some(id) => {
            a.push(format!("_SYSTEMD_INVOCATION_ID={id}"));
            a.push("+".into());
            a.push(format!("INVOCATION_ID={id}"));
            if let Some(pid) = invocation.main_pid {
                a.push("+".into());
                a.push(format!("_SYSTEMD_UNIT={}", invocation.unit.as_deref().unwrap_or(unit)));
                a.push(format!("_PID={pid}"));
                // A pid comes back after a reboot: only this boot's.
                if let Some(b) = boot {
                    a.push(format!("_BOOT_ID={b}"));
                }
            }
        }
        None => {
            a.push("--unit".into());
            a.push(unit.to_string());
        }
    }
    a
}

/// This boot's id as the journal writes it (32 hex digits), from /proc.
pub fn boot_id() -> Option<String> {
    let text = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let id: String = text.trim().chars().filter(|c| *c != '-').collect();
    (id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())).then_some(id)
}

/// The last `lines` lines, oldest first; or why there are none.
pub fn last_lines(
    unit: &str,
    invocation: &Invocation,
    lines: usize,
    deadline: Instant,
) -> Result<Vec<String>, String> {
    let argv = argv(unit, invocation, boot_id().as_deref(), lines);
    let out = match run_bounded(&argv, deadline, MAX_OUTPUT + 1) {
        Ok(o) => o,
        Err(RunError::Spawn(e)) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err("journalctl not found on PATH".into());
        }
        Err(RunError::Spawn(e)) => return Err(format!("cannot run journalctl: {e}")),
        Err(RunError::Timeout) => return Err("journalctl did not answer in time".into()),
    };
    if out.code != Some(0) {
        let said = clean_detail(&String::from_utf8_lossy(&out.stderr), 160);
        let how = match (out.code, out.signal) {
            (Some(c), _) => format!("exited with {c}"),
            (None, Some(s)) => format!("killed by signal {s}"),
            _ => "ended without an exit status".into(),
        };
        return Err(if said.is_empty() {
            format!("journalctl {how}")
        } else {
            format!("journalctl {how}: {said}")
        });
    }
    if out.stdout.len() > MAX_OUTPUT {
        return Err(format!("journalctl printed more than {} KiB", MAX_OUTPUT / 1024));
    }
    let text = String::from_utf8(out.stdout).map_err(|e| {
        format!(
            "journalctl printed bytes that are not UTF-8 (at byte {})",
            e.utf8_error().valid_up_to()
        )
    })?;
    let all: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
    let skip = all.len().saturating_sub(lines);
    Ok(all[skip..].iter().map(|l| escape(l)).collect())
}

/// Control characters (an ANSI colour, a stray CR) as escapes: a line is
/// shown as text everywhere.
fn escape(line: &str) -> String {
    if line.chars().any(char::is_control) {
        crate::probe::http::escape_controls(line)
    } else {
        line.to_string()
    }
}

/// A journal line that reports an out-of-memory kill (the kernel's, or
/// systemd's "killed by the OOM killer", "Failed with result 'oom-kill'").
pub fn reports_oom_kill(line: &str) -> bool {
    let l = line.to_ascii_lowercase();
    l.contains("oom-kill") || l.contains("oom killer") || l.contains("out of memory")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_invocation_or_else_the_unit_is_an_argument() {
        const ID: &str = "0123456789abcdef0123456789abcdef";
        let mut inv = Invocation { id: Some(ID.into()), ..Invocation::default() };
        let a = argv("x.service", &inv, Some("b0"), 20);
        assert_eq!(
            a[a.len() - 3..],
            [format!("_SYSTEMD_INVOCATION_ID={ID}"), "+".into(), format!("INVOCATION_ID={ID}")]
        );
        assert!(!a.contains(&"--unit".to_string()));
        // The main process's lines too (those journald could not tag), by
        // systemd's name of the unit, in this boot.
        inv.main_pid = Some(812);
        inv.unit = Some("x.service".into());
        let a = argv("x", &inv, Some("b0"), 20);
        assert_eq!(
            a[a.len() - 7..],
            [
                format!("_SYSTEMD_INVOCATION_ID={ID}"),
                "+".into(),
                format!("INVOCATION_ID={ID}"),
                "+".into(),
                "_SYSTEMD_UNIT=x.service".into(),
                "_PID=812".into(),
                "_BOOT_ID=b0".into()
            ]
        );
        let a = argv("x.service", &inv, None, 20);
        assert_eq!(a.last().map(String::as_str), Some("_PID=812"));
        let a = argv("x.service", &Invocation::default(), None, 7);
        assert_eq!(a[a.len() - 2..], ["--unit".to_string(), "x.service".to_string()]);
        assert!(a.windows(2).any(|w| w == ["--lines", "7"]));
    }

    #[test]
    fn this_boot() {
        let b = boot_id().expect("/proc/sys/kernel/random/boot_id");
        assert_eq!(b.len(), 32);
    }

    #[test]
    fn oom_lines() {
        assert!(reports_oom_kill("systemd[1]: x.service: Failed with result 'oom-kill'."));
        assert!(reports_oom_kill(
            "x.service: A process of this unit has been killed by the OOM killer."
        ));
        assert!(reports_oom_kill("kernel: Out of memory: Killed process 812 (python3)"));
        assert!(!reports_oom_kill("python: MemoryError"));
    }
}
