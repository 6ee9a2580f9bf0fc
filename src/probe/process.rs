//! Process probe: counts processes whose full command line matches.
//!
//! All process checks of a cycle share one scan of the process table
//! (`CycleCtx::processes`), which refreshes only command lines: reading /proc
//! is the expensive part on a busy host.

use super::{CycleCtx, Outcome, ProcessProbe, Reason};

/// Command lines of the host's processes (not threads, not kernel threads,
/// not this monitor), joined with spaces.
pub struct ProcessTable {
    pub cmdlines: Vec<String>,
}

impl ProcessTable {
    pub fn scan() -> Self {
        use sysinfo::{ProcessRefreshKind, ProcessesToUpdate, System, UpdateKind};
        let me = std::process::id();
        let Ok(mut sys) = System::new() else {
            return ProcessTable { cmdlines: Vec::new() };
        };
        sys.refresh_processes_specifics(
            ProcessesToUpdate::All,
            true,
            ProcessRefreshKind::nothing().with_cmd(UpdateKind::Always),
        );
        let cmdlines = sys
            .processes()
            .iter()
            .filter(|(pid, p)| {
                pid.as_u32() != me && p.thread_kind().is_none() && !p.cmd().is_empty()
            })
            .map(|(_, p)| {
                let parts: Vec<_> = p.cmd().iter().map(|s| s.to_string_lossy()).collect();
                parts.join(" ")
            })
            .collect();
        ProcessTable { cmdlines }
    }
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
