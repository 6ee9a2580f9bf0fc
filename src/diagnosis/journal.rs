//! The unit's last journal lines: `journalctl` from PATH, no shell, bounded
//! in time (the capture's deadline), bytes (`MAX_OUTPUT`) and lines (`-n`).

use crate::probe::child::{RunError, run_bounded};
use crate::probe::clean_detail;
use std::time::Instant;

/// More output than this is not `-n 200` of a sane journal: refused.
pub const MAX_OUTPUT: usize = 256 * 1024;

/// The arguments: the latest invocation's lines (the service's own output,
/// `_SYSTEMD_INVOCATION_ID`, and systemd's lines about it, `INVOCATION_ID`)
/// when systemd named one, else the unit's (`-u`).
pub fn argv(unit: &str, invocation: Option<&str>, lines: usize) -> Vec<String> {
    let mut a: Vec<String> =
        ["journalctl", "--no-pager", "--quiet", "--no-hostname", "--output=short-iso", "--lines"]
            .map(String::from)
            .to_vec();
    a.push(lines.to_string());
    match invocation {
        Some(id) => {
            a.push(format!("_SYSTEMD_INVOCATION_ID={id}"));
            a.push("+".into());
            a.push(format!("INVOCATION_ID={id}"));
        }
        None => {
            a.push("--unit".into());
            a.push(unit.to_string());
        }
    }
    a
}

/// The last `lines` lines, oldest first; or why there are none.
pub fn last_lines(
    unit: &str,
    invocation: Option<&str>,
    lines: usize,
    deadline: Instant,
) -> Result<Vec<String>, String> {
    let out = match run_bounded(&argv(unit, invocation, lines), deadline, MAX_OUTPUT + 1) {
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
        let a = argv("x.service", Some("0123456789abcdef0123456789abcdef"), 20);
        assert!(a.contains(&"_SYSTEMD_INVOCATION_ID=0123456789abcdef0123456789abcdef".to_string()));
        assert!(a.contains(&"INVOCATION_ID=0123456789abcdef0123456789abcdef".to_string()));
        assert!(!a.contains(&"--unit".to_string()));
        let a = argv("x.service", None, 7);
        assert_eq!(a[a.len() - 2..], ["--unit".to_string(), "x.service".to_string()]);
        assert!(a.windows(2).any(|w| w == ["--lines", "7"]));
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
