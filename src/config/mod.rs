//! Configuration: YAML in, a validated `Config` out.
//!
//! `raw` mirrors the file (serde, unknown keys rejected); this module turns it
//! into the `Config` every other module reads, applying the SPEC's defaults,
//! expanding the service shorthand into checks and collecting *every* problem,
//! each as `file:line:column: what was expected`. The YAML crate (serde-saphyr)
//! is used only here.

pub mod duration;
pub mod raw;

use crate::error::Error;
use crate::probe::body::{Expect, JsonAssertion, Pointer};
use crate::probe::certs::{CertLimits, Trust};
use crate::probe::{
    CommandProbe, HttpProbe, Matcher, Probe, ProcessProbe, SystemdProbe, TcpProbe, TlsProbe,
};
use raw::{CheckKind, EventName, ExpectStatus, NotifierKind, RawCheck, RawConfig, RawService};
use serde_saphyr::{Location, Spanned};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub const DEFAULT_PATH: &str = "/etc/chatstack-status/monitor.yml";
pub const DEFAULT_STATUS_FILE: &str = "/var/lib/chatstack/status.json";
pub const DEFAULT_STATE_FILE: &str = "/var/lib/chatstack/state.json";
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8095";
/// Config files are small; anything bigger is a mistake, not a config.
const MAX_CONFIG_BYTES: u64 = 4 << 20;

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where it was read from (for messages and reloads).
    pub path: PathBuf,
    /// Daemon cycle period, start to start.
    pub interval: Duration,
    /// Default per-check timeout.
    pub timeout: Duration,
    /// Probe threads per cycle.
    pub workers: usize,
    /// A status older than this is stale (`status` exits 3, /healthz in `serve` fails).
    pub stale_after: Duration,
    pub status_file: PathBuf,
    pub state_file: PathBuf,
    /// HTTP listen address of `run` and `serve`.
    pub listen: String,
    /// Results kept per service for the dashboard.
    pub history: usize,
    /// Serve dashboard files from here instead of the embedded copies.
    pub www_dir: Option<PathBuf>,
    pub basic_auth: Option<BasicAuth>,
    /// Origins allowed to fetch /api/status cross-origin.
    pub cors_origins: Vec<String>,
    /// Optional node_exporter textfile-collector output.
    pub prom_file: Option<PathBuf>,
    pub heartbeat: Option<Heartbeat>,
    pub heal: HealPolicy,
    pub notify: Vec<Notifier>,
    pub services: Vec<Service>,
}

#[derive(Debug, Clone)]
pub struct BasicAuth {
    pub user: String,
    pub password_file: PathBuf,
}

#[derive(Debug, Clone)]
pub struct Heartbeat {
    pub url: String,
    pub timeout: Duration,
}

/// How and when failing units are restarted (see SPEC "Healing, precisely").
#[derive(Debug, Clone, PartialEq)]
pub struct HealPolicy {
    pub enabled: bool,
    /// Consecutive down cycles before a restart (and again every this many).
    pub after_failures: u32,
    /// After our restart, failures do not count for this long.
    pub grace: Duration,
    /// Our restarts allowed within `window` before healing is suspended.
    pub max_restarts: u32,
    pub window: Duration,
    /// Up continuously this long clears the window and a suspension.
    pub stable_after: Duration,
    /// On start-limit-hit: reset-failed then restart (true) or alert only.
    pub reset_failed: bool,
    /// argv with `{unit}` substituted; never run through a shell.
    pub restart_command: Vec<String>,
    /// Bound on one restart command.
    pub timeout: Duration,
}

impl Default for HealPolicy {
    fn default() -> Self {
        HealPolicy {
            enabled: true,
            after_failures: 2,
            grace: Duration::from_secs(30),
            max_restarts: 3,
            window: Duration::from_secs(15 * 60),
            stable_after: Duration::from_secs(10 * 60),
            reset_failed: false,
            restart_command: vec!["systemctl".into(), "restart".into(), "{unit}".into()],
            timeout: Duration::from_secs(60),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Notifier {
    /// Label for logs and metrics: `name:` or `<type>-<index>`.
    pub name: String,
    pub kind: NotifierKind,
    pub url: Option<String>,
    pub bearer_token_file: Option<PathBuf>,
    pub headers: Vec<(String, String)>,
    pub timeout: Duration,
    /// Only these services (empty: all).
    pub services: Vec<String>,
    /// Only these events (empty: all).
    pub events: Vec<EventName>,
    pub account_sid: Option<String>,
    pub auth_token_file: Option<PathBuf>,
    pub from: Option<String>,
    pub to: Vec<String>,
    pub api_base: String,
}

#[derive(Debug, Clone)]
pub struct Service {
    pub name: String,
    /// Down => CRITICAL (true) or WARNING (false).
    pub critical: bool,
    /// The unit healing restarts; also observed by a systemd check.
    pub unit: Option<String>,
    /// While one of these is down, this service is neither healed nor paged.
    pub depends_on: Vec<String>,
    /// Cycles a new state must hold before down/up alerts fire.
    pub confirm: u32,
    /// Re-send "still down" this often (None: never).
    pub reminder: Option<Duration>,
    pub checks: Vec<Check>,
}

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

impl Config {
    pub fn service(&self, name: &str) -> Option<&Service> {
        self.services.iter().find(|s| s.name == name)
    }

    /// The longest timeout of any check: the bound on a cycle's slowest check.
    pub fn max_timeout(&self) -> Duration {
        self.services
            .iter()
            .flat_map(|s| &s.checks)
            .map(|c| c.timeout)
            .max()
            .unwrap_or(self.timeout)
    }
}

/// Reads, parses and validates a config file, then applies the environment
/// overrides (`CHATSTACK_STATUS_FILE`, `CHATSTACK_STATE_FILE`, `CHATSTACK_STATUS_STALE`).
pub fn load(path: &Path) -> Result<Config, Error> {
    let meta = std::fs::metadata(path)
        .map_err(|source| Error::ConfigRead { path: path.into(), source })?;
    if meta.len() > MAX_CONFIG_BYTES {
        return Err(Error::ConfigInvalid {
            path: path.into(),
            problems: vec![format!(
                "{}: file is {} bytes: expected a config under 4 MiB",
                path.display(),
                meta.len()
            )],
        });
    }
    let bytes =
        std::fs::read(path).map_err(|source| Error::ConfigRead { path: path.into(), source })?;
    let text = String::from_utf8(bytes).map_err(|e| Error::ConfigInvalid {
        path: path.into(),
        problems: vec![format!(
            "{}: not UTF-8 text (invalid byte at offset {})",
            path.display(),
            e.utf8_error().valid_up_to()
        )],
    })?;
    let mut config = parse(&text, path)
        .map_err(|problems| Error::ConfigInvalid { path: path.into(), problems })?;
    apply_env(&mut config, path)?;
    Ok(config)
}

fn apply_env(config: &mut Config, path: &Path) -> Result<(), Error> {
    if let Some(v) = env_nonempty("CHATSTACK_STATUS_FILE") {
        config.status_file = v.into();
    }
    if let Some(v) = env_nonempty("CHATSTACK_STATE_FILE") {
        config.state_file = v.into();
    }
    if let Some(v) = env_nonempty("CHATSTACK_STATUS_STALE") {
        config.stale_after = duration::parse(&v).map_err(|e| Error::ConfigInvalid {
            path: path.into(),
            problems: vec![format!("CHATSTACK_STATUS_STALE: {e}")],
        })?;
    }
    Ok(())
}

fn env_nonempty(key: &str) -> Option<String> {
    std::env::var(key).ok().filter(|v| !v.is_empty())
}

/// Parses and validates config text. Problems come back as
/// `file:line:column: message` lines, all of them.
pub fn parse(text: &str, path: &Path) -> Result<Config, Vec<String>> {
    let options = serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_events: 200_000,
            max_depth: 64,
            max_aliases: 1_000,
            max_anchors: 1_000,
        },
    };
    let raw: RawConfig = serde_saphyr::from_str_with_options(text, options)
        .map_err(|e| vec![yaml_error(path, &e)])?;
    Validator { path, problems: Vec::new(), trusts: HashMap::new() }.config(raw)
}

fn yaml_error(path: &Path, e: &serde_saphyr::Error) -> String {
    let loc = e.location();
    // The message alone: the crate's Display adds its own location (and may
    // render a snippet); we print `file:line:column:` ourselves.
    use serde_saphyr::MessageFormatter;
    let msg = first_message_line(&serde_saphyr::UserMessageFormatter.format_message(e));
    match loc {
        Some(l) if l.line() > 0 => format!("{}:{}:{}: {msg}", path.display(), l.line(), l.column()),
        _ => format!("{}: {msg}", path.display()),
    }
}

fn first_message_line(full: &str) -> String {
    let line = full
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with("-->") && !l.starts_with('|'))
        .unwrap_or("invalid YAML");
    // Drop a trailing " at line X, column Y" the crate may append: we print our own.
    let line = match line.find(" at line ") {
        Some(i) => &line[..i],
        None => line,
    };
    let line = line.strip_prefix("error: ").unwrap_or(line);
    // Say what was expected where the crate only names a Rust type.
    match line {
        "invalid u8" | "invalid u16" | "invalid u32" | "invalid u64" | "invalid usize" => {
            format!("{line}: expected a whole number (0 or more)")
        }
        "invalid boolean" | "invalid bool" => format!("{line}: expected true or false"),
        "expected sequence start" => "expected a list: [a, b] or one `- item` per line".to_string(),
        "expected mapping start" => "expected a mapping of `key: value` lines".to_string(),
        _ => line.to_string(),
    }
}

struct Validator<'a> {
    path: &'a Path,
    problems: Vec<String>,
    /// One `Trust` per `ca_file`, shared by the checks naming it.
    trusts: HashMap<PathBuf, Arc<Trust>>,
}

impl Validator<'_> {
    fn at(&mut self, loc: &Location, msg: impl std::fmt::Display) {
        self.problems.push(format!(
            "{}:{}:{}: {msg}",
            self.path.display(),
            loc.line(),
            loc.column()
        ));
    }

    fn config(mut self, raw: RawConfig) -> Result<Config, Vec<String>> {
        for (key, d) in [("interval", &raw.interval), ("timeout", &raw.timeout)] {
            if let Some(d) = d.as_ref().filter(|d| d.value.0.is_zero()) {
                self.at(&d.referenced, format!("{key} must be greater than 0"));
            }
        }
        let timeout = raw.timeout.map_or(Duration::from_secs(5), |d| d.value.0);
        let interval = raw.interval.map_or(Duration::from_secs(30), |d| d.value.0);
        let workers = match raw.workers {
            Some(w) if w.value == 0 || w.value > 1024 => {
                self.at(
                    &w.referenced,
                    format!("workers: {} is out of range: expected 1-1024", w.value),
                );
                1
            }
            Some(w) => w.value,
            None => 16,
        };
        let history = match raw.history {
            Some(h) if h.value > 10_000 => {
                self.at(
                    &h.referenced,
                    format!("history: {} is too large: expected at most 10000", h.value),
                );
                60
            }
            Some(h) => h.value,
            None => 60,
        };
        let listen = match raw.listen {
            Some(l) => {
                if l.value.parse::<std::net::SocketAddr>().is_err()
                    && !l
                        .value
                        .rsplit_once(':')
                        .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok())
                {
                    self.at(
                        &l.referenced,
                        format!("invalid listen address {:?}: expected \"host:port\"", l.value),
                    );
                }
                l.value
            }
            None => DEFAULT_LISTEN.to_string(),
        };
        let heal = self.heal(raw.heal);
        let notify = raw
            .notify
            .unwrap_or_default()
            .into_iter()
            .enumerate()
            .filter_map(|(i, n)| self.notifier(i, n))
            .collect();

        let services_loc = raw.services.referenced;
        if raw.services.value.is_empty() {
            self.at(&services_loc, "services is empty: expected at least one service");
        }
        let mut seen = HashSet::new();
        let mut services = Vec::new();
        let mut deps = Vec::new();
        for s in raw.services.value {
            for d in s.value.depends_on.iter().flatten() {
                deps.push((s.value.name.value.clone(), d.value.clone(), d.referenced));
            }
            if !seen.insert(s.value.name.value.clone()) {
                let loc = s.value.name.referenced;
                self.at(
                    &loc,
                    format!(
                        "duplicate service name {:?}: names must be unique",
                        s.value.name.value
                    ),
                );
            }
            if let Some(svc) = self.service(s, timeout) {
                services.push(svc);
            }
        }
        // depends_on must name a known service, and not itself.
        for (svc, d, loc) in deps {
            if !seen.contains(&d) || d == svc {
                self.at(
                    &loc,
                    format!(
                        "service {svc:?}: depends_on {d:?}: expected the name of another service"
                    ),
                );
            }
        }
        if !self.problems.is_empty() {
            return Err(self.problems);
        }
        Ok(Config {
            path: self.path.to_path_buf(),
            interval,
            timeout,
            workers,
            stale_after: raw.stale_after.map_or(Duration::from_secs(90), |d| d.0),
            status_file: raw.status_file.unwrap_or_else(|| DEFAULT_STATUS_FILE.into()),
            state_file: raw.state_file.unwrap_or_else(|| DEFAULT_STATE_FILE.into()),
            listen,
            history,
            www_dir: raw.www_dir,
            basic_auth: raw
                .basic_auth
                .map(|b| BasicAuth { user: b.user, password_file: b.password_file }),
            cors_origins: raw.cors_origins.unwrap_or_default(),
            prom_file: raw.prom_file,
            heartbeat: raw.heartbeat.map(|h| Heartbeat {
                url: h.url.0,
                timeout: h.timeout.map_or(Duration::from_secs(5), |d| d.0),
            }),
            heal,
            notify,
            services,
        })
    }

    fn heal(&mut self, raw: Option<raw::RawHeal>) -> HealPolicy {
        let d = HealPolicy::default();
        let Some(r) = raw else { return d };
        let after_failures = match r.after_failures {
            Some(a) if a.value == 0 => {
                self.at(&a.referenced, "heal.after_failures must be at least 1");
                d.after_failures
            }
            Some(a) => a.value,
            None => d.after_failures,
        };
        let restart_command = match r.restart_command {
            Some(c) if c.value.is_empty() || c.value[0].is_empty() => {
                self.at(
                    &c.referenced,
                    "heal.restart_command must be a non-empty list: [program, arg, ...]",
                );
                d.restart_command.clone()
            }
            Some(c) => c.value,
            None => d.restart_command.clone(),
        };
        HealPolicy {
            enabled: r.enabled.unwrap_or(d.enabled),
            after_failures,
            grace: r.grace.map_or(d.grace, |x| x.0),
            max_restarts: r.max_restarts.unwrap_or(d.max_restarts),
            window: r.window.map_or(d.window, |x| x.0),
            stable_after: r.stable_after.map_or(d.stable_after, |x| x.0),
            reset_failed: r.reset_failed.unwrap_or(d.reset_failed),
            restart_command,
            timeout: r.timeout.map_or(d.timeout, |x| x.0),
        }
    }

    fn notifier(&mut self, index: usize, n: Spanned<raw::RawNotifier>) -> Option<Notifier> {
        let loc = n.referenced;
        let r = n.value;
        let kind_name = match r.kind {
            NotifierKind::Webhook => "webhook",
            NotifierKind::Slack => "slack",
            NotifierKind::Twilio => "twilio",
        };
        let before = self.problems.len();
        let need = |v: bool, key: &str, this: &mut Self| {
            if !v {
                this.at(&loc, format!("notifier of type {kind_name} needs `{key}`"));
            }
        };
        match r.kind {
            NotifierKind::Webhook | NotifierKind::Slack => {
                need(r.url.is_some(), "url", self);
                for (key, set) in [
                    ("account_sid", r.account_sid.is_some()),
                    ("auth_token_file", r.auth_token_file.is_some()),
                    ("from", r.from.is_some()),
                    ("to", r.to.is_some()),
                    ("api_base", r.api_base.is_some()),
                ] {
                    if set {
                        self.at(&loc, format!("`{key}` is not valid for a {kind_name} notifier"));
                    }
                }
            }
            NotifierKind::Twilio => {
                need(r.account_sid.is_some(), "account_sid", self);
                need(r.auth_token_file.is_some(), "auth_token_file", self);
                need(r.from.is_some(), "from", self);
                need(r.to.as_ref().is_some_and(|t| !t.is_empty()), "to", self);
                if r.url.is_some() {
                    self.at(&loc, "`url` is not valid for a twilio notifier (use api_base)");
                }
                if let Some(sid) = &r.account_sid
                    && !sid.bytes().all(|b| b.is_ascii_alphanumeric())
                {
                    self.at(&loc, "twilio account_sid must be letters and digits");
                }
            }
        }
        if r.kind == NotifierKind::Slack && r.bearer_token_file.is_some() {
            self.at(&loc, "`bearer_token_file` is not valid for a slack notifier");
        }
        if self.problems.len() != before {
            return None;
        }
        Some(Notifier {
            name: r.name.unwrap_or_else(|| format!("{kind_name}-{}", index + 1)),
            kind: r.kind,
            url: r.url.map(|u| u.0),
            bearer_token_file: r.bearer_token_file,
            headers: r.headers.unwrap_or_default().into_iter().collect(),
            timeout: r.timeout.map_or(Duration::from_secs(5), |d| d.0),
            services: r.services.unwrap_or_default(),
            events: r.events.unwrap_or_default(),
            account_sid: r.account_sid,
            auth_token_file: r.auth_token_file,
            from: r.from,
            to: r.to.unwrap_or_default(),
            api_base: r.api_base.map_or_else(|| "https://api.twilio.com".to_string(), |u| u.0),
        })
    }

    fn service(&mut self, s: Spanned<RawService>, default_timeout: Duration) -> Option<Service> {
        let loc = s.referenced;
        let r = s.value;
        let name = r.name.value;
        if name.trim().is_empty() || name.chars().any(char::is_control) {
            self.at(
                &r.name.referenced,
                "service name must be non-empty text without control characters",
            );
        }
        let timeout = r.timeout.map_or(default_timeout, |d| d.0);
        let mut checks = Vec::new();
        // The shorthand, in the order an operator reads it.
        if let Some(url) = r.url {
            checks.push(Check {
                target: shown_url(&url.0),
                probe: Probe::Http(HttpProbe::get(url.0)),
                timeout,
                degraded_after: None,
            });
        }
        if let Some(addr) = r.port {
            checks.push(Check {
                target: addr.0.clone(),
                probe: Probe::Tcp(TcpProbe { address: addr.0 }),
                timeout,
                degraded_after: None,
            });
        }
        if let Some(unit) = &r.unit {
            checks.push(Check {
                target: unit.0.clone(),
                probe: Probe::Systemd(SystemdProbe { unit: unit.0.clone() }),
                timeout,
                degraded_after: None,
            });
        }
        if let Some(p) = r.process {
            checks.push(Check {
                target: p.0.clone(),
                probe: Probe::Process(ProcessProbe {
                    matcher: Matcher::Substring(p.0),
                    min: 1,
                    max: None,
                }),
                timeout,
                degraded_after: None,
            });
        }
        for c in r.checks.unwrap_or_default() {
            if let Some(check) = self.check(&name, c, timeout) {
                // The service's own unit is already observed by the shorthand check.
                let dup_unit = matches!((&check.probe, &r.unit), (Probe::Systemd(p), Some(u)) if p.unit == u.0);
                if !dup_unit {
                    checks.push(check);
                }
            }
        }
        if checks.is_empty() {
            self.at(&loc, format!("service {name:?} has nothing to check: expected url, port, unit, process or checks"));
            return None;
        }
        if r.confirm == Some(0) {
            self.at(&loc, format!("service {name:?}: confirm must be at least 1"));
        }
        Some(Service {
            name,
            critical: r.critical.unwrap_or(true),
            unit: r.unit.map(|u| u.0),
            depends_on: r.depends_on.unwrap_or_default().into_iter().map(|d| d.value).collect(),
            confirm: r.confirm.unwrap_or(1).max(1),
            reminder: r.reminder.map(|d| d.0).filter(|d| !d.is_zero()),
            checks,
        })
    }

    fn check(
        &mut self,
        service: &str,
        c: Spanned<RawCheck>,
        default_timeout: Duration,
    ) -> Option<Check> {
        let loc = c.referenced;
        let r = c.value;
        let foreign = r.foreign_keys();
        if !foreign.is_empty() {
            self.at(
                &loc,
                format!(
                    "service {service:?}: {} not valid for a {} check",
                    foreign.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", "),
                    kind_name(r.kind)
                ),
            );
            return None;
        }
        let timeout = r.timeout.map_or(default_timeout, |d| d.0);
        if timeout.is_zero() {
            self.at(&loc, format!("service {service:?}: timeout must be greater than 0"));
        }
        let missing = |this: &mut Self, key: &str| {
            this.at(
                &loc,
                format!("service {service:?}: a {} check needs `{key}`", kind_name(r.kind)),
            );
            None
        };
        // Only https and tls checks can set these (see `foreign_keys`).
        let (trust, limits) = self.tls_settings(service, &r);
        let (probe, target) = match r.kind {
            CheckKind::Http => {
                let Some(url) = r.url else { return missing(self, "url") };
                let mut headers = Vec::new();
                for (k, v) in r.headers.unwrap_or_default() {
                    let name_ok = ureq::http::HeaderName::from_bytes(k.as_bytes()).is_ok();
                    let value_ok = ureq::http::HeaderValue::from_str(&v).is_ok();
                    if !name_ok || !value_ok {
                        self.at(&loc, format!("service {service:?}: invalid header {k:?}: expected a token name and a printable value"));
                    }
                    headers.push((k, v));
                }
                let https = url.0.get(..6).is_some_and(|p| p.eq_ignore_ascii_case("https:"));
                if !https {
                    for (key, at) in [
                        ("cert_warn", r.cert_warn.as_ref().map(|d| d.referenced)),
                        ("cert_crit", r.cert_crit.as_ref().map(|d| d.referenced)),
                        ("ca_file", r.ca_file.as_ref().map(|f| f.referenced)),
                    ] {
                        if let Some(at) = at {
                            self.at(&at, format!("service {service:?}: `{key}` needs an https:// URL (certificates are read only over TLS)"));
                        }
                    }
                }
                let probe = HttpProbe {
                    url: url.0.clone(),
                    method: r.method.map_or_else(|| "GET".to_string(), |m| m.0),
                    headers,
                    expect: r.expect_status.unwrap_or(ExpectStatus::Class(2)),
                    body_contains: r.body_contains.filter(|b| !b.is_empty()),
                    body_regex: r.body_regex.map(|b| b.0),
                    json: self.json(service, r.json),
                    follow_redirects: r.follow_redirects.unwrap_or(true),
                    trust,
                    limits,
                };
                (Probe::Http(probe), shown_url(&url.0))
            }
            CheckKind::Tcp => {
                let Some(a) = r.address else { return missing(self, "address") };
                (Probe::Tcp(TcpProbe { address: a.0.clone() }), a.0)
            }
            CheckKind::Tls => {
                let Some(a) = r.address else { return missing(self, "address") };
                let server_name = r.server_name.map(|n| n.0);
                let target = match &server_name {
                    Some(n) => format!("{} ({n})", a.0),
                    None => a.0.clone(),
                };
                (Probe::Tls(TlsProbe { address: a.0, server_name, trust, limits }), target)
            }
            CheckKind::Systemd => {
                let Some(u) = r.unit else { return missing(self, "unit") };
                (Probe::Systemd(SystemdProbe { unit: u.0.clone() }), u.0)
            }
            CheckKind::Process => {
                let Some(p) = r.pattern else { return missing(self, "match") };
                let min = r.min.unwrap_or(1);
                if let Some(max) = r.max
                    && max < min
                {
                    self.at(&loc, format!("service {service:?}: max ({max}) is below min ({min})"));
                }
                let target = p.0.as_str().to_string();
                (
                    Probe::Process(ProcessProbe { matcher: Matcher::Regex(p.0), min, max: r.max }),
                    target,
                )
            }
            CheckKind::Command => {
                let Some(a) = r.argv else { return missing(self, "argv") };
                let target = a.0.join(" ");
                (Probe::Command(CommandProbe { argv: a.0 }), target)
            }
        };
        Some(Check { probe, timeout, degraded_after: r.degraded_after.map(|d| d.0), target })
    }
}

impl Validator<'_> {
    /// `json:` assertions; each bad pointer at its key, each bad operator,
    /// operand or regex at its value.
    fn json(&mut self, service: &str, raw: Option<Spanned<raw::RawJson>>) -> Vec<JsonAssertion> {
        let Some(raw) = raw else { return Vec::new() };
        if raw.value.0.is_empty() {
            self.at(
                &raw.referenced,
                format!(
                    "service {service:?}: json is empty: expected at least one \"/pointer\": value"
                ),
            );
        }
        let mut out: Vec<JsonAssertion> = Vec::new();
        for (key, value) in raw.value.0 {
            let pointer = match Pointer::parse(&key.value) {
                Ok(p) => p,
                Err(e) => {
                    self.at(&key.referenced, format!("service {service:?}: json: {e}"));
                    continue;
                }
            };
            if out.iter().any(|a| a.pointer == pointer) {
                self.at(
                    &key.referenced,
                    format!("service {service:?}: json: pointer {:?} given twice", key.value),
                );
                continue;
            }
            match Expect::from_value(value.value) {
                Ok(expect) => out.push(JsonAssertion { pointer, expect }),
                Err(e) => self.at(
                    &value.referenced,
                    format!("service {service:?}: json {:?}: {e}", key.value),
                ),
            }
        }
        out
    }

    /// `ca_file`, `cert_warn` and `cert_crit` of an https or tls check.
    fn tls_settings(&mut self, service: &str, r: &RawCheck) -> (Arc<Trust>, CertLimits) {
        let d = CertLimits::default();
        let limits = CertLimits {
            warn: r.cert_warn.as_ref().map_or(d.warn, |w| w.value.0),
            crit: r.cert_crit.as_ref().map_or(d.crit, |c| c.value.0),
        };
        if let Some(c) = &r.cert_crit
            && !limits.crit.is_zero()
            && limits.crit >= limits.warn
        {
            self.at(
                &c.referenced,
                format!(
                    "service {service:?}: cert_crit ({}) must be shorter than cert_warn ({})",
                    duration::format(limits.crit),
                    duration::format(limits.warn)
                ),
            );
        }
        let trust = match &r.ca_file {
            None => Trust::system(),
            Some(f) => match self.trusts.get(&f.value) {
                Some(t) => Arc::clone(t),
                None => match Trust::with_ca_file(&f.value) {
                    Ok(t) => {
                        self.trusts.insert(f.value.clone(), Arc::clone(&t));
                        t
                    }
                    Err(e) => {
                        self.at(&f.referenced, format!("service {service:?}: ca_file: {e}"));
                        Trust::system()
                    }
                },
            },
        };
        (trust, limits)
    }
}

/// A check URL as shown in the status, metrics and logs: credentials in
/// its userinfo (`http://user:secret@host/`, `https://token@host/`) are masked.
pub fn shown_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((_, host)) => format!("{scheme}://***@{host}{tail}"),
        None => url.to_string(),
    }
}

fn kind_name(k: CheckKind) -> &'static str {
    match k {
        CheckKind::Http => "http",
        CheckKind::Tcp => "tcp",
        CheckKind::Tls => "tls",
        CheckKind::Systemd => "systemd",
        CheckKind::Process => "process",
        CheckKind::Command => "command",
    }
}

#[cfg(test)]
mod tests;
