//! The status document: the SPEC's JSON, built from a cycle's results and the
//! services' state, written atomically (0640) after every cycle.

use crate::error::Error;
use crate::fsutil;
use crate::probe::owned::{Thresholds, Values};
use crate::probe::push::Ping;
use crate::probe::{CheckStatus, Reason};
use crate::state::{Health, HistoryEntry, OpenIncident, RestartRecord};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::path::Path;

pub const SCHEMA: u32 = 1;
/// A status file bigger than this is not ours (1,000 services with full
/// history are ~10 MiB).
const MAX_STATUS_BYTES: u64 = 64 << 20;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusDoc {
    pub schema: u32,
    pub generated_at: Timestamp,
    pub host: String,
    pub overall: Health,
    pub duration_ms: f64,
    /// Some service is flapping.
    #[serde(default)]
    pub flapping: bool,
    pub services: Vec<ServiceReport>,
    /// What the history endpoints can answer (absent with `history_db: off`):
    /// a dashboard asks for no more than this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<HistoryInfo>,
    /// The host itself: boot, uptime, CPUs, load, memory (absent where
    /// /proc could not be read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<Box<System>>,
}

/// The status document's `"history": {"retention_s": N}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryInfo {
    /// `retention.rollups` in seconds: the longest `since` `/api/history` takes.
    pub retention_s: u64,
}

/// The status's `system` block.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct System {
    pub boot_id: Option<String>,
    pub booted_at: Option<Timestamp>,
    pub uptime_s: Option<u64>,
    pub cpus: Option<u32>,
    /// 1, 5 and 15 minute load averages.
    pub load: Option<[f64; 3]>,
    pub memory: Option<SystemMemory>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SystemMemory {
    pub total_bytes: u64,
    pub available_bytes: u64,
    pub used_pct: Option<f64>,
    pub swap_total_bytes: u64,
    pub swap_used_pct: Option<f64>,
}

impl System {
    /// The block from what the cycle read, as of `now`.
    pub fn from_figures(f: &crate::probe::host::Figures, now: Timestamp) -> Self {
        let uptime_s = f.uptime.map(|u| u.as_secs());
        System {
            boot_id: f.boot_id.clone(),
            booted_at: uptime_s
                .map(|s| Timestamp((now.0 - s as i64 * 1000).div_euclid(1000) * 1000)),
            uptime_s,
            cpus: f.cpus,
            load: f.load,
            memory: f.memory.map(|m| SystemMemory {
                total_bytes: m.total,
                available_bytes: m.available,
                used_pct: m.used_pct(),
                swap_total_bytes: m.swap_total,
                swap_used_pct: m.swap_used_pct(),
            }),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceReport {
    pub name: String,
    pub status: Health,
    pub critical: bool,
    pub unit: Option<String>,
    pub since: Option<Timestamp>,
    pub consecutive_failures: u32,
    pub heal_suspended: bool,
    pub muted_until: Option<Timestamp>,
    /// What `mute --reason` said (null when not muted or no reason given).
    #[serde(default)]
    pub mute_reason: Option<String>,
    pub restarts: Vec<RestartRecord>,
    /// All restarts ever run by us (for the Prometheus counter).
    #[serde(default)]
    pub restarts_total: u64,
    pub checks: Vec<CheckReport>,
    /// The open incident while down: `{id, started_at, diagnosis}` (null otherwise).
    #[serde(default)]
    pub incident: Option<OpenIncident>,
    /// Its status changed `flap.changes` times within the last `flap.window` results.
    #[serde(default)]
    pub flapping: bool,
    pub history: Vec<HistoryEntry>,
    /// Time-weighted uptime from the history store (absent with `history_db: off`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uptime: Option<Uptime>,
    /// The maintenance window open now, `{"name", "until"}` (null otherwise).
    #[serde(default)]
    pub maintenance: Option<crate::config::OpenWindow>,
    /// The next window to open for this service (the dashboard shows it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_maintenance: Option<NextWindow>,
    /// A service with a unit: its cgroup's `{"memory_bytes", "cpu_pct",
    /// "tasks"}` from systemd (each null without a figure); absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<crate::state::resources::Resources>,
}

/// The next maintenance window of a service, as the dashboard shows it
/// ("maintenance Sun 03:00 CET, in 2 days").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NextWindow {
    pub name: String,
    pub start: Timestamp,
    pub end: Timestamp,
    /// The window's IANA time zone, for showing `start` in it.
    pub timezone: String,
}

/// Uptime percent over the last 24 h, 7 d and 30 d (null: no data).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Uptime {
    #[serde(rename = "24h")]
    pub day: Option<f64>,
    #[serde(rename = "7d")]
    pub week: Option<f64>,
    #[serde(rename = "30d")]
    pub month: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckReport {
    #[serde(rename = "type")]
    pub kind: String,
    pub target: String,
    pub status: CheckStatus,
    pub reason: Option<Reason>,
    pub latency_ms: Option<f64>,
    /// One summary line; a plugin's long output may follow after a newline.
    pub detail: String,
    /// `notAfter` of the earliest-expiring certificate the server presented
    /// (https and tls checks; null when none was read).
    #[serde(default)]
    pub cert_expires_at: Option<Timestamp>,
    /// The check's `cert_warn` and `cert_crit` (seconds), beside a
    /// `cert_expires_at`: the dashboard's warning colour and Nagios thresholds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_warn_s: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_crit_s: Option<u64>,
    /// A push check's latest ping, `{at, ok, message}` (and `exit_code`
    /// when the job gave one); absent on other checks and before any ping.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_ping: Option<Ping>,
    /// A push check's deadline: the latest ping (or, before any, when the
    /// check was first seen) plus `period + grace`; later than this it is late.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ping_due_by: Option<Timestamp>,
    /// What a kind that owns its keys measured (`disk`, `memory`, …): named
    /// numbers, null where not available; absent on other checks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<Values>,
    /// Which of `values` its `warn`/`crit` judge, and those limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thresholds: Option<Thresholds>,
}

impl CheckReport {
    /// The first line of `detail`: what one-line outputs (the text table,
    /// the Nagios line, alert texts) show.
    pub fn summary(&self) -> &str {
        self.detail.lines().next().unwrap_or("")
    }

    /// `target` on one short line: a command check's argv may hold a whole
    /// script (a YAML `|` block), which one-line outputs show with newlines
    /// and runs of blanks folded into single spaces, cut at 80 characters.
    pub fn target_line(&self) -> String {
        const MAX: usize = 80;
        let line = self.target.split_whitespace().collect::<Vec<_>>().join(" ");
        if line.chars().count() <= MAX {
            return line;
        }
        let mut cut: String = line.chars().take(MAX - 1).collect();
        cut.push('…');
        cut
    }
}

/// `overall`: down when a critical service is down, else degraded when any
/// service is degraded or a non-critical one is down, else up.
pub fn overall<'a>(services: impl IntoIterator<Item = (&'a Health, bool)>) -> Health {
    let mut worst = Health::Up;
    for (h, critical) in services {
        let h = match (h, critical) {
            (Health::Down, true) => return Health::Down,
            (Health::Down, false) | (Health::Degraded, _) => Health::Degraded,
            (Health::Up, _) => Health::Up,
        };
        worst = worst.max(h);
    }
    worst
}

/// A service's status from its checks: the worst, unknown counting as degraded.
pub fn service_health(checks: impl IntoIterator<Item = CheckStatus>) -> Health {
    checks
        .into_iter()
        .map(|c| match c {
            CheckStatus::Up => Health::Up,
            CheckStatus::Degraded | CheckStatus::Unknown => Health::Degraded,
            CheckStatus::Down => Health::Down,
        })
        .max()
        .unwrap_or(Health::Up)
}

/// Rounds to 0.1 ms: more digits would be noise.
pub fn ms(d: std::time::Duration) -> f64 {
    (d.as_secs_f64() * 10_000.0).round() / 10.0
}

impl StatusDoc {
    /// A document of no services from `host` at the epoch (tests).
    #[cfg(test)]
    pub fn empty(host: &str) -> Self {
        StatusDoc {
            schema: 1,
            generated_at: Timestamp(0),
            host: host.into(),
            overall: Health::Up,
            duration_ms: 0.0,
            flapping: false,
            services: vec![],
            history: None,
            system: None,
        }
    }

    pub fn to_json(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec_pretty(self).unwrap_or_default();
        v.push(b'\n');
        v
    }

    /// Age of the document at `now`, in seconds.
    pub fn age_s(&self, now: Timestamp) -> f64 {
        (now.0 - self.generated_at.0).max(0) as f64 / 1000.0
    }
}

/// Writes the status file atomically (0640).
pub fn write(path: &Path, doc: &StatusDoc) -> Result<(), Error> {
    fsutil::write_atomic(path, &doc.to_json(), 0o640, fsutil::Durability::Snapshot)
        .map_err(|source| Error::StatusWrite { path: path.into(), source })
}

/// Reads and parses the status file.
pub fn read(path: &Path) -> Result<StatusDoc, Error> {
    let bytes = fsutil::read_regular(path, MAX_STATUS_BYTES).map_err(|e| Error::StatusRead {
        path: path.into(),
        message: if e.kind() == std::io::ErrorKind::NotFound {
            "no status file yet: has `chatstack-status check` or `run` been started?".into()
        } else {
            format!("cannot read status file: {e}")
        },
    })?;
    serde_json::from_slice(&bytes).map_err(|e| Error::StatusRead {
        path: path.into(),
        message: format!("unreadable status file: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overall_follows_the_spec() {
        use Health::*;
        assert_eq!(overall([(&Up, true), (&Up, false)]), Up);
        assert_eq!(overall([(&Up, true), (&Down, false)]), Degraded);
        assert_eq!(overall([(&Degraded, true), (&Up, false)]), Degraded);
        assert_eq!(overall([(&Down, true), (&Degraded, false)]), Down);
        assert_eq!(overall([]), Up);
    }

    /// Rewritten every cycle: an fsync would keep nothing worth keeping.
    #[test]
    fn the_status_file_is_written_without_an_fsync() {
        let d = tempfile::tempdir().unwrap();
        let doc = StatusDoc::empty("h");
        let before = fsutil::syncs_on_this_thread();
        write(&d.path().join("status.json"), &doc).unwrap();
        assert_eq!(fsutil::syncs_on_this_thread(), before);
        assert_eq!(read(&d.path().join("status.json")).unwrap(), doc);
    }

    #[test]
    fn unknown_counts_as_degraded() {
        use CheckStatus as C;
        assert_eq!(service_health([C::Up, C::Unknown]), Health::Degraded);
        assert_eq!(service_health([C::Unknown, C::Down]), Health::Down);
        assert_eq!(service_health([C::Up]), Health::Up);
    }
}

#[cfg(test)]
mod fuzz;
