//! Probes: one closed enum of kinds, one file per kind.
//!
//! A probe never returns an error: every failure is an `Outcome` with a
//! machine-readable `Reason`, because "why is it red" is the first question on
//! call. Every probe is bounded by its check's timeout and reads at most a
//! capped amount of what the target sends.

pub mod body;
pub mod certs;
pub mod child;
pub mod command;
pub mod disk;
pub mod host;
pub mod http;
pub mod load;
pub mod memory;
pub mod owned;
pub mod pressure;
pub mod process;
pub mod push;
pub mod systemd;
pub mod systemd_bus;
pub mod tcp;
pub mod tls;
pub mod units;
pub mod x509;

use crate::time::Timestamp;
use certs::{CertInfo, CertLimits, Trust};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// The kinds that own their keys (`owned.rs`): adding one is its file and
/// one line here.
pub static KINDS: &[&owned::KindDef] = &[&disk::KIND, &memory::KIND, &load::KIND, &pressure::KIND];

/// What a check probes, with everything it needs.
#[derive(Debug, Clone)]
pub enum Probe {
    Http(HttpProbe),
    Tcp(TcpProbe),
    Tls(TlsProbe),
    Systemd(SystemdProbe),
    Process(ProcessProbe),
    Command(CommandProbe),
    /// Passive: judged from the pings the state file holds.
    Push(push::PushProbe),
    /// A kind that owns its keys (see `owned.rs` and `KINDS`).
    Owned(Arc<dyn owned::OwnedProbe>),
}

#[derive(Debug, Clone)]
pub struct HttpProbe {
    pub url: String,
    pub method: String,
    pub headers: Vec<(String, String)>,
    pub expect: ExpectStatus,
    pub body_contains: Option<String>,
    /// A regex the body (its first `MAX_BODY` bytes) must match.
    pub body_regex: Option<regex::bytes::Regex>,
    /// `json:` assertions, all of which must hold.
    pub json: Vec<body::JsonAssertion>,
    pub follow_redirects: bool,
    /// Roots that verify an `https` URL (the system's, plus `ca_file`).
    pub trust: Arc<Trust>,
    pub limits: CertLimits,
}

impl HttpProbe {
    /// The shorthand `url:` check: GET, expects 2xx, follows redirects.
    pub fn get(url: String) -> Self {
        HttpProbe {
            url,
            method: "GET".into(),
            headers: Vec::new(),
            expect: ExpectStatus::Class(2),
            body_contains: None,
            body_regex: None,
            json: Vec::new(),
            follow_redirects: true,
            trust: Trust::system(),
            limits: CertLimits::default(),
        }
    }

    pub fn is_https(&self) -> bool {
        self.url.get(..6).is_some_and(|s| s.eq_ignore_ascii_case("https:"))
    }
}

/// Which HTTP status codes count as up: `200`, `[200, 204]`, or `"2xx"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExpectStatus {
    Codes(Vec<u16>),
    /// The hundreds digit: `2` for "2xx".
    Class(u16),
}

impl ExpectStatus {
    pub fn matches(&self, code: u16) -> bool {
        match self {
            ExpectStatus::Codes(c) => c.contains(&code),
            ExpectStatus::Class(h) => code / 100 == *h,
        }
    }
}

impl fmt::Display for ExpectStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExpectStatus::Class(h) => write!(f, "{h}xx"),
            ExpectStatus::Codes(c) => {
                let s: Vec<String> = c.iter().map(u16::to_string).collect();
                f.write_str(&s.join(" or "))
            }
        }
    }
}

#[derive(Debug, Clone)]
pub struct TcpProbe {
    /// `host:port`.
    pub address: String,
}

#[derive(Debug, Clone)]
pub struct TlsProbe {
    /// `host:port`.
    pub address: String,
    /// The name sent as SNI and matched against the certificate (default: the host).
    pub server_name: Option<String>,
    pub trust: Arc<Trust>,
    pub limits: CertLimits,
}

#[derive(Debug, Clone)]
pub struct SystemdProbe {
    pub unit: String,
}

#[derive(Debug, Clone)]
pub enum Matcher {
    /// The shorthand `process:`: a literal substring of the command line.
    Substring(String),
    /// `match:`: a regex over the command line.
    Regex(regex::Regex),
}

impl Matcher {
    pub fn is_match(&self, cmdline: &str) -> bool {
        match self {
            Matcher::Substring(s) => cmdline.contains(s.as_str()),
            Matcher::Regex(r) => r.is_match(cmdline),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ProcessProbe {
    pub matcher: Matcher,
    pub min: u32,
    pub max: Option<u32>,
    /// `max_rss`, `max_cpu` and their `for`.
    pub limits: process::Limits,
}

#[derive(Debug, Clone)]
pub struct CommandProbe {
    pub argv: Vec<String>,
}

/// One configured check: what to probe and its bounds.
#[derive(Debug, Clone)]
pub struct Check {
    pub probe: Probe,
    pub timeout: Duration,
    /// Slower than this => degraded (reason `slow`).
    pub degraded_after: Option<Duration>,
    /// What is probed, as shown in the status JSON (`target`).
    pub target: String,
}

impl Check {
    pub fn kind(&self) -> &'static str {
        self.probe.kind()
    }
}

impl Probe {
    pub fn kind(&self) -> &'static str {
        match self {
            Probe::Http(_) => "http",
            Probe::Tcp(_) => "tcp",
            Probe::Tls(_) => "tls",
            Probe::Systemd(_) => "systemd",
            Probe::Process(_) => "process",
            Probe::Command(_) => "command",
            Probe::Push(_) => "push",
            Probe::Owned(p) => p.def().name,
        }
    }

    /// `for: N`: cycles a threshold must be crossed before the check
    /// leaves up (counted in the state file by `state::hold`).
    pub fn for_cycles(&self) -> u32 {
        match self {
            Probe::Owned(p) => p.for_cycles(),
            Probe::Process(p) => p.limits.for_cycles,
            _ => 1,
        }
    }

    /// Whether `for` holds this reason back (a threshold crossed) rather
    /// than reporting it at once.
    pub fn holds(&self, reason: Reason) -> bool {
        match self {
            Probe::Owned(p) => p.is_threshold(reason),
            Probe::Process(_) => process::Limits::holds(reason),
            _ => false,
        }
    }

    /// The certificate limits of a check that reads certificates (https, tls).
    pub fn cert_limits(&self) -> Option<CertLimits> {
        match self {
            Probe::Http(p) if p.is_https() => Some(p.limits),
            Probe::Tls(p) => Some(p.limits),
            _ => None,
        }
    }
}

/// The state of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckStatus {
    Up,
    Degraded,
    /// Could not be evaluated (e.g. systemctl missing); counts as degraded.
    Unknown,
    Down,
}

impl CheckStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckStatus::Up => "up",
            CheckStatus::Degraded => "degraded",
            CheckStatus::Unknown => "unknown",
            CheckStatus::Down => "down",
        }
    }
}

/// Why a check is not up (SPEC: machine-readable `reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    Timeout,
    Dns,
    Refused,
    Tls,
    HttpStatus,
    BodyMismatch,
    Slow,
    CertExpiring,
    UnitInactive,
    UnitFailed,
    UnitRestarting,
    StartLimitHit,
    UnitNotFound,
    ProcessMissing,
    ProcessCount,
    CommandStatus,
    /// A push check's last successful ping is older than `period + grace`
    /// (or none came within that of the check being first seen).
    PushLate,
    /// A push check's last ping reported failure.
    PushFailed,
    /// systemd keeps restarting the unit itself (`crash_loop`), whatever
    /// state the probe caught it in.
    CrashLoop,
    /// A file system over its `warn`/`crit` space.
    DiskSpace,
    /// A file system over its inode limits.
    DiskInodes,
    /// A file system mounted read-only (without `read_only_ok`).
    ReadOnly,
    /// A file system full within `full_warn` at the current rate.
    DiskFilling,
    /// RAM over `warn`/`crit` (MemTotal not MemAvailable).
    MemoryUsed,
    /// Swap over `swap_warn`/`swap_crit`.
    SwapUsed,
    /// Load per CPU over `warn`/`crit`.
    LoadHigh,
    /// Pressure stall `avg60` over `warn`/`crit`.
    PressureHigh,
    /// The unit's memory over the service's `limits.memory` for `for` cycles.
    MemoryLimit,
    /// The unit's CPU over the service's `limits.cpu` for `for` cycles.
    CpuLimit,
    /// A process check's matching processes over `max_rss`.
    ProcessMemory,
    /// A process check's matching processes over `max_cpu`.
    ProcessCpu,
    CheckError,
}

impl Reason {
    /// Every reason (the fuzzers draw from it): a new one goes here too.
    pub const ALL: &'static [Reason] = &[
        Reason::Timeout,
        Reason::Dns,
        Reason::Refused,
        Reason::Tls,
        Reason::HttpStatus,
        Reason::BodyMismatch,
        Reason::Slow,
        Reason::CertExpiring,
        Reason::UnitInactive,
        Reason::UnitFailed,
        Reason::UnitRestarting,
        Reason::StartLimitHit,
        Reason::UnitNotFound,
        Reason::ProcessMissing,
        Reason::ProcessCount,
        Reason::CommandStatus,
        Reason::PushLate,
        Reason::PushFailed,
        Reason::DiskSpace,
        Reason::DiskInodes,
        Reason::ReadOnly,
        Reason::DiskFilling,
        Reason::MemoryUsed,
        Reason::SwapUsed,
        Reason::LoadHigh,
        Reason::PressureHigh,
        Reason::MemoryLimit,
        Reason::CpuLimit,
        Reason::ProcessMemory,
        Reason::ProcessCpu,
        Reason::CheckError,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Timeout => "timeout",
            Reason::Dns => "dns",
            Reason::Refused => "refused",
            Reason::Tls => "tls",
            Reason::HttpStatus => "http_status",
            Reason::BodyMismatch => "body_mismatch",
            Reason::Slow => "slow",
            Reason::CertExpiring => "cert_expiring",
            Reason::UnitInactive => "unit_inactive",
            Reason::UnitFailed => "unit_failed",
            Reason::UnitRestarting => "unit_restarting",
            Reason::StartLimitHit => "start_limit_hit",
            Reason::UnitNotFound => "unit_not_found",
            Reason::ProcessMissing => "process_missing",
            Reason::ProcessCount => "process_count",
            Reason::CommandStatus => "command_status",
            Reason::PushLate => "push_late",
            Reason::PushFailed => "push_failed",
            Reason::CrashLoop => "crash_loop",
            Reason::DiskSpace => "disk_space",
            Reason::DiskInodes => "disk_inodes",
            Reason::ReadOnly => "read_only",
            Reason::DiskFilling => "disk_filling",
            Reason::MemoryUsed => "memory_used",
            Reason::SwapUsed => "swap_used",
            Reason::LoadHigh => "load_high",
            Reason::PressureHigh => "pressure_high",
            Reason::MemoryLimit => "memory_limit",
            Reason::CpuLimit => "cpu_limit",
            Reason::ProcessMemory => "process_memory",
            Reason::ProcessCpu => "process_cpu",
            Reason::CheckError => "check_error",
        }
    }
}

/// What systemd said about a unit; healing reads it to avoid piling on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitInfo {
    pub load_state: String,
    pub active_state: String,
    pub sub_state: String,
    pub result: String,
    pub n_restarts: Option<u64>,
    /// `MemoryCurrent`, `CPUUsageNSec`, `TasksCurrent` (None: systemd has
    /// no figure, e.g. no accounting for the unit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_usage_ns: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tasks: Option<u64>,
    /// When systemd was asked (the CPU figure's time).
    #[serde(skip)]
    pub sampled_at: Option<Timestamp>,
    /// The unit's block of the `systemctl show` answer (every property the diagnosis
    /// needs): an incident's diagnosis reads the unit as the probe saw it,
    /// before a restart of ours started a new invocation.
    #[serde(skip)]
    pub answer: String,
}

impl UnitInfo {
    /// systemd is already (re)starting it: a restart of ours would pile on.
    pub fn systemd_is_restarting(&self) -> bool {
        matches!(self.active_state.as_str(), "activating" | "reloading" | "deactivating")
            || self.sub_state == "auto-restart"
    }

    pub fn start_limit_hit(&self) -> bool {
        self.result == "start-limit-hit"
    }
}

/// The result of running one check once.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub status: CheckStatus,
    pub reason: Option<Reason>,
    pub detail: String,
    pub latency: Option<Duration>,
    /// Set by systemd checks.
    pub unit: Option<UnitInfo>,
    /// Set by https and tls checks that saw a certificate chain.
    pub cert: Option<Arc<CertInfo>>,
    /// Set by the kinds that own their keys: `values` and their thresholds.
    pub measured: Option<owned::Measured>,
    /// Set by a failing http check: what the server answered (the diagnosis
    /// of an incident shows it).
    pub http: Option<HttpAnswer>,
    /// Set by process checks: their processes' CPU time now, which the
    /// cycle turns into `cpu_pct` against the state file's last sample.
    pub cpu: Option<process::CpuSample>,
}

/// A failing HTTP check's answer: its status code (None when no answer
/// came) and the first `http::EXCERPT` bytes of its body, as text with
/// control characters escaped.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpAnswer {
    pub status: Option<u16>,
    pub body: String,
}

impl Outcome {
    pub fn up(detail: impl Into<String>) -> Self {
        Outcome {
            status: CheckStatus::Up,
            reason: None,
            detail: detail.into(),
            latency: None,
            unit: None,
            cert: None,
            measured: None,
            http: None,
            cpu: None,
        }
    }

    pub fn not_up(status: CheckStatus, reason: Reason, detail: impl Into<String>) -> Self {
        Outcome {
            status,
            reason: Some(reason),
            detail: detail.into(),
            latency: None,
            unit: None,
            cert: None,
            measured: None,
            http: None,
            cpu: None,
        }
    }

    pub fn down(reason: Reason, detail: impl Into<String>) -> Self {
        Self::not_up(CheckStatus::Down, reason, detail)
    }

    /// With the values a kind measured.
    pub fn with_values(mut self, measured: owned::Measured) -> Self {
        self.measured = Some(measured);
        self
    }

    pub fn with_latency(mut self, d: Duration) -> Self {
        self.latency = Some(d);
        self
    }
}

/// Applies `cert_warn`/`cert_crit` to an otherwise up outcome: less time
/// left than `warn` is degraded, than `crit` down, reason `cert_expiring`.
/// A failure found first (status, body, handshake) keeps its own reason.
pub fn judge_cert(mut out: Outcome, limits: CertLimits, now: Timestamp) -> Outcome {
    if out.status != CheckStatus::Up {
        return out;
    }
    if let Some((down, detail)) = out.cert.as_ref().and_then(|c| certs::judge(c, limits, now)) {
        out.status = if down { CheckStatus::Down } else { CheckStatus::Degraded };
        out.reason = Some(Reason::CertExpiring);
        out.detail = format!("{}, {detail}", out.detail);
    }
    out
}

/// Shared, per-cycle context: the process table is scanned at most once per
/// cycle, by whichever process check needs it first; push checks judge the
/// pings the cycle read from the state file, at the cycle's clock.
#[derive(Default)]
pub struct CycleCtx {
    pub processes: OnceLock<process::ProcessTable>,
    /// Each push check's pings, by service name, as the state file holds them.
    pub pushes: HashMap<String, push::PushState>,
    /// The time push checks are judged at (set by the cycle; probes that
    /// measure something read their own clock).
    pub now: Timestamp,
    /// The host's figures, read once by the cycle (memory and load checks,
    /// and the status's `system` block).
    pub host: Option<Arc<host::Figures>>,
    /// The cycle's one `systemctl show` for every unit (`units.rs`).
    pub units: Option<Arc<units::UnitQuery>>,
}

/// Runs one check, bounded by its timeout.
pub fn run(check: &Check, ctx: &CycleCtx) -> Outcome {
    let started = Instant::now();
    let deadline = started + check.timeout;
    let mut out = match &check.probe {
        Probe::Http(p) => http::check(p, check.timeout),
        Probe::Tcp(p) => tcp::check(p, check.timeout),
        Probe::Tls(p) => tls::check(p, check.timeout),
        Probe::Systemd(p) => systemd::check(p, ctx, deadline),
        Probe::Process(p) => process::check(p, ctx),
        Probe::Command(p) => command::check(p, deadline),
        Probe::Push(p) => push::check(p, ctx.pushes.get(&p.service), ctx.now),
        Probe::Owned(p) => p.run(ctx),
    };
    let elapsed = started.elapsed();
    if out.latency.is_none()
        && matches!(check.probe, Probe::Http(_) | Probe::Tcp(_) | Probe::Tls(_) | Probe::Command(_))
    {
        out.latency = Some(elapsed);
    }
    if let (Some(limit), Some(lat)) = (check.degraded_after, out.latency)
        && out.status == CheckStatus::Up
        && lat > limit
    {
        out.status = CheckStatus::Degraded;
        out.reason = Some(Reason::Slow);
        out.detail =
            format!("{} (slow: {} ms > {} ms)", out.detail, lat.as_millis(), limit.as_millis());
    }
    out
}

/// Cuts untrusted text to one short line for a `detail`.
pub fn clean_detail(text: &str, max: usize) -> String {
    let line = text.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("");
    let mut out: String =
        line.chars().filter(|c| !crate::text::is_control_or_format(*c)).take(max).collect();
    if line.chars().count() > max {
        out.push('…');
    }
    out
}
