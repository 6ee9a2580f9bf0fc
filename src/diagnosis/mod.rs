//! "The why": what an operator would look at first when an incident opens,
//! captured once, bounded, redacted, and kept with the incident.
//!
//! `capture_all` runs after the cycle's status file is written, with the
//! state lock released (`cycle::capture`; `cycle::attach` keeps the result
//! under the lock again): the unit as the probe's `systemctl show` saw it,
//! before any restart of ours (one `systemctl show` of its own for a unit
//! no probe observes; `unit.rs`), the unit's latest invocation's journal
//! through `journalctl` (`journal.rs`), the host from /proc (`host.rs`),
//! the failing HTTP answer the probe kept.
//! Every child is bounded in time and bytes (`probe::child`), the whole
//! capture by `MAX_WALL`, the result by `MAX_BYTES`; every text passes the
//! redaction (`redact.rs`) before anything stores or sends it.
//!
//! Never here: deciding status, writing a file, or a shell.

mod host;
mod journal;
pub mod redact;
pub mod text;
mod unit;

use crate::config::DiagnosisSettings;
use crate::probe::HttpAnswer;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub use host::{HostNow, TopProcess};

/// The whole capture, every incident of a cycle together, ends by then.
pub const MAX_WALL: Duration = Duration::from_secs(2);
/// A diagnosis's JSON is at most this big (the oldest journal lines go first).
pub const MAX_BYTES: usize = 16 * 1024;
/// Each journal line is cut to this many bytes.
pub const MAX_LINE: usize = 512;
/// Incidents diagnosed at once (each runs up to two children).
const WORKERS: usize = 4;

/// An incident's diagnosis (SPEC "The why").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Diagnosis {
    pub captured_at: Timestamp,
    /// systemd's view of the service's unit (null without a unit, or when
    /// `systemctl show` failed: `unit_error` says why).
    pub unit: Option<UnitDiag>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit_error: Option<String>,
    /// `Result=oom-kill`, or a journal line of the unit reports an OOM kill.
    pub oom_kill: bool,
    /// The last lines of the unit's latest invocation, oldest first.
    pub journal: Option<Vec<String>>,
    pub journal_error: Option<String>,
    /// The first failing http check's answer.
    pub http: Option<HttpAnswer>,
    pub system: SystemDiag,
    pub top_memory: Vec<TopProcess>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UnitDiag {
    pub name: String,
    pub active_state: String,
    pub sub_state: String,
    pub result: String,
    /// The main process's exit status, when it exited.
    pub exit_code: Option<i32>,
    /// The signal that killed the main process (`KILL`, no `SIG`).
    pub exit_signal: Option<String>,
    pub n_restarts: Option<u64>,
    pub memory_bytes: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SystemDiag {
    pub memory_used_pct: Option<f64>,
    pub load_per_cpu: Option<f64>,
    /// The paths of the status's disk checks that are not up.
    pub disks_over_warn: Vec<String>,
}

/// What one incident's capture needs from the cycle.
#[derive(Debug, Clone)]
pub struct Job {
    pub service: String,
    pub unit: Option<String>,
    /// The probe's `systemctl show` answer for the unit, taken before any
    /// restart of ours (None when no probe observes it: then the capture
    /// asks systemd itself).
    pub unit_answer: Option<String>,
    pub http: Option<HttpAnswer>,
    pub disks_over_warn: Vec<String>,
}

/// Captures the diagnosis of every job, within `MAX_WALL` in all: the host
/// is read once, the units' children run `WORKERS` at a time.
pub fn capture_all(jobs: &[Job], settings: &DiagnosisSettings) -> Vec<Diagnosis> {
    if jobs.is_empty() {
        return Vec::new();
    }
    let started = Instant::now();
    let deadline = started + MAX_WALL;
    let host = HostNow::read();
    let next = AtomicUsize::new(0);
    let mut out: Vec<Option<Diagnosis>> = vec![None; jobs.len()];
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..WORKERS.min(jobs.len()))
            .filter_map(|_| {
                std::thread::Builder::new()
                    .name("diagnosis".into())
                    .spawn_scoped(s, || {
                        let mut done = Vec::new();
                        loop {
                            let i = next.fetch_add(1, Ordering::Relaxed);
                            let Some(job) = jobs.get(i) else { break };
                            done.push((i, capture(job, settings, &host, deadline)));
                        }
                        done
                    })
                    .ok()
            })
            .collect();
        for w in workers {
            for (i, d) in w.join().unwrap_or_default() {
                out[i] = Some(d);
            }
        }
    });
    // No worker could start: capture here, one after the other.
    jobs.iter()
        .zip(out)
        .map(|(job, d)| d.unwrap_or_else(|| capture(job, settings, &host, deadline)))
        .collect()
}

/// One incident's diagnosis, by `deadline`.
pub fn capture(
    job: &Job,
    settings: &DiagnosisSettings,
    host: &HostNow,
    deadline: Instant,
) -> Diagnosis {
    let captured_at = Timestamp::now();
    let (unit, unit_error, invocation) = match (&job.unit, &job.unit_answer) {
        (Some(name), Some(answer)) => {
            let (u, inv) = unit::parse(name, answer);
            (Some(u), None, inv)
        }
        (Some(name), None) => match unit::show(name, deadline) {
            Ok((u, inv)) => (Some(u), None, inv),
            Err(e) => (None, Some(e), journal::Invocation::default()),
        },
        (None, _) => (None, None, journal::Invocation::default()),
    };
    let (journal, journal_error) = match &job.unit {
        None => (None, Some("no unit: the service has no journal of its own".to_string())),
        Some(_) if settings.journal_lines == 0 => {
            (None, Some("diagnosis.journal_lines is 0".to_string()))
        }
        Some(name) => {
            match journal::last_lines(name, &invocation, settings.journal_lines, deadline) {
                Ok(lines) => (Some(lines), None),
                Err(e) => (None, Some(e)),
            }
        }
    };
    let oom_kill = unit.as_ref().is_some_and(|u| u.result == "oom-kill")
        || journal.iter().flatten().any(|l| journal::reports_oom_kill(l));
    let mut d = Diagnosis {
        captured_at,
        unit,
        unit_error,
        oom_kill,
        journal,
        journal_error,
        http: job.http.clone(),
        system: SystemDiag {
            memory_used_pct: host.memory_used_pct,
            load_per_cpu: host.load_per_cpu,
            disks_over_warn: job.disks_over_warn.clone(),
        },
        top_memory: host.top_memory.clone(),
    };
    redact::diagnosis(&mut d, &settings.redact);
    cut_lines(&mut d);
    fit(&mut d);
    d
}

/// Each journal line at most `MAX_LINE` bytes (after redaction, so a cut
/// never leaves half a secret that the pattern no longer matches).
fn cut_lines(d: &mut Diagnosis) {
    for l in d.journal.iter_mut().flatten() {
        if l.len() > MAX_LINE {
            let mut end = MAX_LINE;
            while !l.is_char_boundary(end) {
                end -= 1;
            }
            l.truncate(end);
        }
    }
}

/// The JSON at most `MAX_BYTES`: the oldest journal lines go first, then
/// the process list, then the body.
fn fit(d: &mut Diagnosis) {
    let size = |d: &Diagnosis| serde_json::to_vec(d).map_or(0, |v| v.len());
    while size(d) > MAX_BYTES {
        if let Some(j) = d.journal.as_mut().filter(|j| !j.is_empty()) {
            j.remove(0);
        } else if !d.top_memory.is_empty() {
            d.top_memory.pop();
        } else if let Some(h) = d.http.as_mut().filter(|h| !h.body.is_empty()) {
            h.body.clear();
        } else {
            break;
        }
    }
}

#[cfg(test)]
mod tests;
