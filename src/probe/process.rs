//! Process probe: counts processes whose full command line matches.
//!
//! All process checks of a cycle share one scan of the process table
//! (`CycleCtx::processes`), which reads only what matching needs: one
//! `/proc/PID/cmdline` per process. Reading /proc is the expensive part on a
//! busy host (a general process library also reads `stat`, `status` and every
//! thread's directory: 8 times the system calls, see docs/BENCHMARKS.md).

use super::{CycleCtx, Outcome, ProcessProbe, Reason};
use std::io::Read;

/// Command lines of the host's processes (not threads, not kernel threads,
/// not this monitor), arguments joined with spaces.
pub struct ProcessTable {
    pub cmdlines: Vec<String>,
}

impl ProcessTable {
    pub fn scan() -> Self {
        Self::scan_dir(std::path::Path::new("/proc"))
    }

    fn scan_dir(proc: &std::path::Path) -> Self {
        let me = std::process::id();
        let mut cmdlines = Vec::new();
        // Only thread-group leaders are listed in /proc: threads are not.
        let Ok(entries) = std::fs::read_dir(proc) else {
            return ProcessTable { cmdlines };
        };
        let mut buf = Vec::with_capacity(4096);
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(pid) = name.to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
            if pid == me {
                continue;
            }
            buf.clear();
            let path = entry.path().join("cmdline");
            // A process that exited since the listing is simply not there.
            if std::fs::File::open(&path).and_then(|mut f| f.read_to_end(&mut buf)).is_err() {
                continue;
            }
            if let Some(c) = join_cmdline(&buf) {
                cmdlines.push(c);
            }
        }
        ProcessTable { cmdlines }
    }
}

/// `/proc/PID/cmdline` (arguments each ended by NUL) as one line, arguments
/// joined by spaces; None when empty (kernel threads, zombies).
fn join_cmdline(raw: &[u8]) -> Option<String> {
    let end = raw.iter().rposition(|&b| b != 0)? + 1;
    let joined: Vec<u8> = raw[..end].iter().map(|&b| if b == 0 { b' ' } else { b }).collect();
    Some(match String::from_utf8(joined) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    })
}

pub fn check(p: &ProcessProbe, ctx: &CycleCtx) -> Outcome {
    let table = ctx.processes.get_or_init(ProcessTable::scan);
    let n = table.cmdlines.iter().filter(|c| p.matcher.is_match(c)).count() as u32;
    let range = match p.max {
        Some(max) => format!("{}..{}", p.min, max),
        None => format!(">= {}", p.min),
    };
    if n == 0 && p.min > 0 {
        return Outcome::down(Reason::ProcessMissing, "no matching process");
    }
    if n < p.min || p.max.is_some_and(|m| n > m) {
        return Outcome::down(
            Reason::ProcessCount,
            format!("{n} matching processes, expected {range}"),
        );
    }
    Outcome::up(format!("{n} matching process{}", if n == 1 { "" } else { "es" }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_arguments_like_a_command_line() {
        assert_eq!(
            join_cmdline(b"python3\0app.py\0--port\x005000\0").as_deref(),
            Some("python3 app.py --port 5000")
        );
        assert_eq!(join_cmdline(b"a\0\0b\0").as_deref(), Some("a  b"));
        // Rewritten titles (nginx, postgres) have no NUL or trailing padding.
        assert_eq!(
            join_cmdline(b"nginx: master process\0\0\0").as_deref(),
            Some("nginx: master process")
        );
        assert_eq!(join_cmdline(b""), None);
        assert_eq!(join_cmdline(b"\0\0"), None);
        assert_eq!(join_cmdline(b"caf\xe9\0").as_deref(), Some("caf\u{fffd}"));
    }

    #[test]
    fn scan_skips_itself_kernel_threads_and_non_pids() {
        let dir = tempfile::tempdir().expect("tempdir");
        let me = std::process::id().to_string();
        for (name, cmdline) in [
            ("1", &b"init\0"[..]),
            ("42", b"python3\0app.py\0"),
            ("43", b""), // kernel thread
            (me.as_str(), b"chatstack-status\0run\0"),
            ("self", b"not a pid\0"),
        ] {
            std::fs::create_dir(dir.path().join(name)).expect("mkdir");
            std::fs::write(dir.path().join(name).join("cmdline"), cmdline).expect("write");
        }
        std::fs::create_dir(dir.path().join("44")).expect("mkdir"); // exited meanwhile
        let mut got = ProcessTable::scan_dir(dir.path()).cmdlines;
        got.sort();
        assert_eq!(got, ["init", "python3 app.py"]);
    }

    #[test]
    fn scan_sees_a_child() {
        let mut child =
            std::process::Command::new("sleep").arg("31.4159").spawn().expect("spawn sleep");
        // spawn() returns while the child is still inside execve: until the
        // kernel has set up its arguments its cmdline reads empty. Poll.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let mut table = ProcessTable::scan();
        while !table.cmdlines.iter().any(|c| c == "sleep 31.4159")
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(std::time::Duration::from_millis(5));
            table = ProcessTable::scan();
        }
        let _ = child.kill();
        let _ = child.wait();
        assert!(table.cmdlines.iter().any(|c| c == "sleep 31.4159"), "{:?}", table.cmdlines);
    }
}
