//! Configuration: YAML in, a validated `Config` out.
//!
//! `raw` mirrors the file (serde, unknown keys rejected); this module turns it
//! into the `Config` every other module reads, applying the SPEC's defaults,
//! expanding the service shorthand into checks and collecting *every* problem,
//! each as `file:line:column: what was expected`. The YAML crate (serde-saphyr)
//! is used only here.

pub mod advice;
mod diagnosis;
pub mod dropins;
pub mod duration;
mod email;
mod env;
mod errors;
#[cfg(test)]
mod fuzz;
pub mod limits;
pub mod maintenance;
mod notifier;
mod owned;
pub mod raw;
mod schema;

pub use diagnosis::{CrashLoop, DEFAULT_REDACT, DiagnosisSettings, Flap, MAX_JOURNAL_LINES};
pub use email::is_loopback;
pub use maintenance::{OpenWindow, Window};
pub use notifier::{
    ALERT_LABELS, Alertmanager, Discord, Email, EventName, Notifier, NotifierKind, Ntfy, Slack,
    SmtpTls, Telegram, Twilio, Webhook,
};

use crate::error::Error;
pub use crate::probe::Check;
use crate::probe::body::{Expect, JsonAssertion, Pointer};
use crate::probe::certs::{CertLimits, Trust};
use crate::probe::push::PushProbe;
use crate::probe::{
    CommandProbe, HttpProbe, Matcher, Probe, ProcessProbe, SystemdProbe, TcpProbe, TlsProbe,
};
use raw::{CheckKind, ExpectStatus, RawCheck, RawConfig, RawService};
use serde_saphyr::{Location, Spanned};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub const DEFAULT_PATH: &str = "/etc/chatstack-status/monitor.yml";
pub const DEFAULT_STATUS_FILE: &str = "/var/lib/chatstack/status.json";
pub const DEFAULT_STATE_FILE: &str = "/var/lib/chatstack/state.json";
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8095";
pub const DEFAULT_HISTORY_DB: &str = "/var/lib/chatstack/history.db";
/// Config files are small; anything bigger is a mistake, not a config.
const MAX_CONFIG_BYTES: u64 = 4 << 20;

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where it was read from (for messages and reloads).
    pub path: PathBuf,
    /// Every file read: the main one, then its `conf.d/` drop-ins in order.
    pub files: Vec<PathBuf>,
    /// This host's name in the status, alerts and the dashboard (default:
    /// the machine's host name), so agents can share a machine in tests.
    pub host: String,
    /// The dashboard's address as users reach it (alert links).
    pub public_url: Option<String>,
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
    /// The history database (`history_db`, `retention`).
    pub history_store: HistoryConfig,
    /// Serve dashboard files from here instead of the embedded copies.
    pub www_dir: Option<PathBuf>,
    pub basic_auth: Option<BasicAuth>,
    /// HTTPS on `listen` (PEM files, read by `run`/`serve` at start and on reload).
    pub tls: Option<TlsFiles>,
    /// Origins allowed to fetch /api/status cross-origin.
    pub cors_origins: Vec<String>,
    /// Optional node_exporter textfile-collector output.
    pub prom_file: Option<PathBuf>,
    pub heartbeat: Option<Heartbeat>,
    pub heal: HealPolicy,
    /// How incidents' diagnoses are taken (`diagnosis:`).
    pub diagnosis: DiagnosisSettings,
    pub notify: Vec<Notifier>,
    pub services: Vec<Service>,
    /// `maintenance:` windows (see `maintenance`).
    pub maintenance: Vec<Window>,
}

/// Where the history database lives and how long it keeps what.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryConfig {
    /// None: `history_db: off` (nothing is recorded, the history commands exit 3).
    pub path: Option<PathBuf>,
    pub retention: Retention,
    /// How long a writer or reader waits for another one's lock before giving
    /// up on this cycle (not a YAML key: a bound, not a tunable).
    pub busy_timeout: Duration,
}

impl Default for HistoryConfig {
    fn default() -> Self {
        HistoryConfig {
            path: Some(DEFAULT_HISTORY_DB.into()),
            retention: Retention::default(),
            busy_timeout: Duration::from_secs(2),
        }
    }
}

/// `retention:`: how long the history database keeps each kind of row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Per-cycle results (with the reason and detail of every check not up).
    pub results: Duration,
    /// Hourly and daily rollups (minute rollups are kept 48 h at most).
    pub rollups: Duration,
    /// Incidents (and the restarts run during them), counted from their end.
    pub incidents: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        const DAY: u64 = 86_400;
        Retention {
            results: Duration::from_secs(14 * DAY),
            rollups: Duration::from_secs(400 * DAY),
            incidents: Duration::from_secs(400 * DAY),
        }
    }
}

#[derive(Debug, Clone)]
pub struct BasicAuth {
    pub user: String,
    pub password_file: PathBuf,
}

#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The certificate chain, leaf first.
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
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
    /// Its incidents get a diagnosis (`diagnosis: false` turns it off).
    pub diagnosis: bool,
    pub crash_loop: CrashLoop,
    pub flap: Flap,
    /// `limits:` on the unit's memory and CPU (None: none).
    pub limits: Option<limits::Limits>,
}

impl Config {
    pub fn service(&self, name: &str) -> Option<&Service> {
        self.services.iter().find(|s| s.name == name)
    }

    /// The maintenance window open for `service` at `now`, if any.
    pub fn maintenance_open(
        &self,
        service: &str,
        now: crate::time::Timestamp,
    ) -> Option<OpenWindow> {
        maintenance::open_for(&self.maintenance, service, now)
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
/// overrides (`CHATSTACK_STATUS_FILE`, `CHATSTACK_STATE_FILE`, `CHATSTACK_STATUS_STALE`,
/// `CHATSTACK_HISTORY_DB`).
pub fn load(path: &Path) -> Result<Config, Error> {
    let text = read_text(path)?;
    let mut dropins = Vec::new();
    for file in dropins::list(path)? {
        let text = read_text(&file)?;
        dropins.push((file, text));
    }
    let mut config = parse_files(&text, path, &dropins)
        .map_err(|problems| Error::ConfigInvalid { path: path.into(), problems })?;
    apply_env(&mut config, path)?;
    Ok(config)
}

/// One config file's text (bounded, UTF-8, a regular file).
fn read_text(path: &Path) -> Result<String, Error> {
    let bytes = crate::fsutil::read_regular(path, MAX_CONFIG_BYTES).map_err(|source| {
        if source.kind() == std::io::ErrorKind::FileTooLarge {
            Error::ConfigInvalid {
                path: path.into(),
                problems: vec![format!(
                    "{}: file is {source}: expected a config under 4 MiB",
                    path.display()
                )],
            }
        } else {
            Error::ConfigRead { path: path.into(), source }
        }
    })?;
    let text = String::from_utf8(bytes).map_err(|e| Error::ConfigInvalid {
        path: path.into(),
        problems: vec![format!(
            "{}: not UTF-8 text (invalid byte at offset {})",
            path.display(),
            e.utf8_error().valid_up_to()
        )],
    })?;
    Ok(text)
}

fn apply_env(config: &mut Config, path: &Path) -> Result<(), Error> {
    if let Some(v) = env_nonempty("CHATSTACK_STATUS_FILE") {
        config.status_file = v.into();
    }
    if let Some(v) = env_nonempty("CHATSTACK_STATE_FILE") {
        config.state_file = v.into();
    }
    if let Some(v) = env_nonempty("CHATSTACK_HISTORY_DB") {
        config.history_store.path = history_path(&v);
    }
    if let Some(v) = env_nonempty("CHATSTACK_STATUS_STALE") {
        config.stale_after = duration::parse(&v).map_err(|e| Error::ConfigInvalid {
            path: path.into(),
            problems: vec![format!("CHATSTACK_STATUS_STALE: {e}")],
        })?;
    }
    Ok(())
}

/// `history_db`'s value: a path, or `off` for none.
fn history_path(v: &str) -> Option<PathBuf> {
    if v == "off" { None } else { Some(v.into()) }
}

fn env_nonempty(key: &str) -> Option<String> {
    std::env::var(key).ok().filter(|v| !v.is_empty())
}

/// Parses and validates config text. Problems come back as
/// `file:line:column: message` lines, all of them.
pub fn parse(text: &str, path: &Path) -> Result<Config, Vec<String>> {
    parse_files(text, path, &[])
}

/// Parses and validates a main config file and its drop-ins (path, text),
/// each with `${…}` expanded from the environment first. Every problem of
/// every file comes back, each located in its own file.
pub fn parse_files(
    text: &str,
    path: &Path,
    dropins: &[(PathBuf, String)],
) -> Result<Config, Vec<String>> {
    let options = serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_events: 200_000,
            max_depth: 64,
            max_aliases: 1_000,
            max_anchors: 1_000,
        },
    };
    let lookup = |name: &str| std::env::var(name).ok();
    let mut problems = Vec::new();
    let mut read = |path: &Path, text: &str| -> Option<String> {
        env::expand(text, path, &options, &lookup).map_err(|p| problems.extend(p)).ok()
    };
    let main_text = read(path, text);
    let texts: Vec<Option<String>> = dropins.iter().map(|(p, t)| read(p, t)).collect();
    let raw = main_text.and_then(|text| {
        serde_saphyr::from_str_with_options::<RawConfig>(&text, options.clone())
            .map_err(|e| problems.push(errors::describe(path, &text, &options, &e)))
            .ok()
    });
    let mut extra = Vec::new();
    for ((p, _), text) in dropins.iter().zip(texts) {
        let Some(text) = text else { continue };
        match serde_saphyr::from_str_with_options::<Option<dropins::RawDropIn>>(
            &text,
            options.clone(),
        ) {
            Ok(d) => extra.push((p.as_path(), d.unwrap_or_default())),
            Err(e) => problems.push(errors::describe(p, &text, &options, &e)),
        }
    }
    match raw {
        Some(raw) if problems.is_empty() => {
            Validator { path, problems: Vec::new(), trusts: HashMap::new(), service_index: 0 }
                .config(raw, extra)
        }
        _ => Err(problems),
    }
}

struct Validator<'a> {
    path: &'a Path,
    problems: Vec<String>,
    /// One `Trust` per `ca_file`, shared by the checks naming it.
    trusts: HashMap<PathBuf, Arc<Trust>>,
    /// The index of the service being validated (for key paths in messages).
    service_index: usize,
}

impl<'a> Validator<'a> {
    fn at(&mut self, loc: &Location, msg: impl std::fmt::Display) {
        self.problems.push(format!(
            "{}:{}:{}: {msg}",
            self.path.display(),
            loc.line(),
            loc.column()
        ));
    }

    fn config(
        mut self,
        raw: RawConfig,
        dropins: Vec<(&'a Path, dropins::RawDropIn)>,
    ) -> Result<Config, Vec<String>> {
        let main = self.path;
        let files = std::iter::once(main)
            .chain(dropins.iter().map(|(p, _)| *p))
            .map(Path::to_path_buf)
            .collect();
        // Drop-ins' notifiers and services follow the main file's, each
        // validated (and its problems located) in its own file.
        let mut more_notify = Vec::new();
        let mut more_services = Vec::new();
        for (p, d) in dropins {
            more_notify.extend(d.notify.unwrap_or_default().into_iter().map(|n| (p, n)));
            more_services.push((p, d.services.unwrap_or_default()));
        }
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
        let host = match raw.host {
            Some(h) if h.value.trim().is_empty() || h.value.chars().any(char::is_control) => {
                self.at(
                    &h.referenced,
                    "host: expected a host name (text without control characters)",
                );
                String::new()
            }
            Some(h) => h.value,
            None => machine_hostname(),
        };
        let cors_origins = self.cors_origins(raw.cors_origins, raw.basic_auth.is_some());
        let heal = self.heal(raw.heal);
        let diagnosis = self.diagnosis(raw.diagnosis);
        let crash_loop = self.crash_loop(raw.crash_loop, CrashLoop::default());
        let flap = self.flap(raw.flap, Flap::default(), &raw.services.referenced);
        let history_store = self.history_store(raw.history_db, raw.retention);
        let notify = raw
            .notify
            .unwrap_or_default()
            .into_iter()
            .map(|n| (main, n))
            .chain(more_notify)
            .enumerate()
            .filter_map(|(i, (p, n))| {
                self.path = p;
                self.notifier(i, n)
            })
            .collect();
        self.path = main;

        let services_loc = raw.services.referenced;
        if raw.services.value.is_empty() {
            self.at(&services_loc, "services is empty: expected at least one service");
        }
        let mut first_at: HashMap<String, String> = HashMap::new();
        let mut services = Vec::new();
        let mut deps = Vec::new();
        for (p, list) in std::iter::once((main, raw.services.value)).chain(more_services) {
            self.path = p;
            for (i, s) in list.into_iter().enumerate() {
                self.service_index = i;
                for d in s.value.depends_on.iter().flatten() {
                    deps.push((s.value.name.value.clone(), d.value.clone(), d.referenced, p));
                }
                let loc = s.value.name.referenced;
                let here = format!("{}:{}:{}", p.display(), loc.line(), loc.column());
                if let Some(first) = first_at.get(&s.value.name.value) {
                    let msg = format!(
                        "duplicate service name {:?}: already defined at {first}: names must be unique",
                        s.value.name.value
                    );
                    self.at(&loc, msg);
                } else {
                    first_at.insert(s.value.name.value.clone(), here);
                }
                if let Some(svc) = self.service(s, timeout, crash_loop, flap) {
                    services.push(svc);
                }
            }
        }
        let seen: HashSet<String> = first_at.into_keys().collect();
        // depends_on must name a known service, and not itself.
        for (svc, d, loc, p) in deps {
            self.path = p;
            if !seen.contains(&d) || d == svc {
                self.at(
                    &loc,
                    format!(
                        "service {svc:?}: depends_on {d:?}: expected the name of another service"
                    ),
                );
            }
        }
        self.path = main;
        let maintenance = self.maintenance(raw.maintenance, &seen);
        if !self.problems.is_empty() {
            return Err(self.problems);
        }
        Ok(Config {
            maintenance,
            files,
            path: self.path.to_path_buf(),
            host,
            public_url: raw.public_url.map(|u| u.0),
            interval,
            timeout,
            workers,
            stale_after: raw.stale_after.map_or(Duration::from_secs(90), |d| d.0),
            status_file: raw.status_file.unwrap_or_else(|| DEFAULT_STATUS_FILE.into()),
            state_file: raw.state_file.unwrap_or_else(|| DEFAULT_STATE_FILE.into()),
            listen,
            history,
            history_store,
            www_dir: raw.www_dir,
            basic_auth: raw
                .basic_auth
                .map(|b| BasicAuth { user: b.user, password_file: b.password_file }),
            cors_origins,
            tls: raw.tls.map(|t| TlsFiles { cert_file: t.cert_file, key_file: t.key_file }),
            prom_file: raw.prom_file,
            heartbeat: raw.heartbeat.map(|h| Heartbeat {
                url: h.url.0,
                timeout: h.timeout.map_or(Duration::from_secs(5), |d| d.0),
            }),
            heal,
            diagnosis,
            notify,
            services,
        })
    }

    /// `*`, or origins as browsers send them (`scheme://host[:port]`).
    /// `*` never comes with credentials, so it cannot go with basic_auth.
    fn cors_origins(&mut self, raw: Option<Vec<Spanned<String>>>, auth: bool) -> Vec<String> {
        let mut out = Vec::new();
        for o in raw.unwrap_or_default() {
            let v = o.value;
            if v == "*" {
                if auth {
                    self.at(
                        &o.referenced,
                        "cors_origins: \"*\" cannot be used with basic_auth (browsers send no credentials to \"*\"): list the admin page's origin instead, e.g. \"https://admin.example.com\"",
                    );
                }
            } else if !is_origin(&v) {
                self.at(
                    &o.referenced,
                    format!("cors_origins: expected \"*\" or an origin like \"https://admin.example.com\" (scheme, host, optional port; no path), found {v:?}"),
                );
            }
            out.push(v);
        }
        out
    }

    fn history_store(
        &mut self,
        db: Option<Spanned<String>>,
        retention: Option<raw::RawRetention>,
    ) -> HistoryConfig {
        let mut h = HistoryConfig::default();
        if let Some(db) = db {
            if db.value.trim().is_empty() {
                self.at(&db.referenced, "history_db is empty: expected a file path or `off`");
            } else {
                h.path = history_path(&db.value);
            }
        }
        let Some(r) = retention else { return h };
        for (key, value, slot) in [
            ("results", r.results, &mut h.retention.results),
            ("rollups", r.rollups, &mut h.retention.rollups),
            ("incidents", r.incidents, &mut h.retention.incidents),
        ] {
            let Some(v) = value else { continue };
            if v.value.0 < Duration::from_secs(60) {
                self.at(
                    &v.referenced,
                    format!(
                        "retention.{key} must be at least 1m: expected a duration such as 14d, 400d or 48h"
                    ),
                );
            } else {
                *slot = v.value.0;
            }
        }
        h
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

    fn service(
        &mut self,
        s: Spanned<RawService>,
        default_timeout: Duration,
        crash_loop: CrashLoop,
        flap: Flap,
    ) -> Option<Service> {
        let loc = s.referenced;
        let r = s.value;
        let crash_loop = self.crash_loop(r.crash_loop, crash_loop);
        let flap = self.flap(r.flap, flap, &loc);
        let name = r.name.value;
        if name.trim().is_empty() || name.chars().any(|c| c.is_control() || !is_xml_char(c)) {
            self.at(
                &r.name.referenced,
                "service name must be non-empty text without control characters (nor U+FFFE, U+FFFF: XML has no place for them, and the badges are XML)",
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
        // A push service's unit is its heal target only: a job's unit (a
        // oneshot) is inactive between runs, so observing it would keep the
        // service down. A `type: systemd` check can still observe it.
        let has_push = r.checks.iter().flatten().any(|c| c.value.kind == CheckKind::Push);
        if let Some(unit) = r.unit.as_ref().filter(|_| !has_push) {
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
                    limits: Default::default(),
                }),
                timeout,
                degraded_after: None,
            });
        }
        for (i, c) in r.checks.unwrap_or_default().into_iter().enumerate() {
            let at = c.referenced;
            if let Some(check) = self.check(&name, i, c, timeout) {
                // Pings are recorded per service: one push check each.
                let push = |c: &Check| matches!(c.probe, Probe::Push(_));
                if push(&check) && checks.iter().any(push) {
                    self.at(&at, format!("service {name:?}: a second push check: expected at most one per service (pings are recorded per service)"));
                    continue;
                }
                // The service's own unit is already observed by the shorthand check.
                let dup_unit = !has_push
                    && matches!((&check.probe, &r.unit), (Probe::Systemd(p), Some(u)) if p.unit == u.0);
                if !dup_unit {
                    checks.push(check);
                }
            }
        }
        let limits = self.limits(r.limits, r.unit.is_some(), !has_push);
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
            diagnosis: r.diagnosis.unwrap_or(true),
            crash_loop,
            flap,
            limits,
        })
    }

    fn check(
        &mut self,
        service: &str,
        index: usize,
        c: Spanned<RawCheck>,
        default_timeout: Duration,
    ) -> Option<Check> {
        let loc = c.referenced;
        let mut r = c.value;
        let foreign = r.foreign_keys();
        let path = format!("services[{}].checks[{index}]", self.service_index);
        let mut owned_keys = self.owned_keys(&path, service, &loc, std::mem::take(&mut r.owned))?;
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
                let limits = crate::probe::process::Limits::from_keys(&mut owned_keys);
                for (at, msg) in owned_keys.take_problems() {
                    self.at_pos(at, msg);
                }
                let target = p.0.as_str().to_string();
                let matcher = Matcher::Regex(p.0);
                (Probe::Process(ProcessProbe { matcher, min, max: r.max, limits }), target)
            }
            CheckKind::Command => {
                let Some(a) = r.argv else { return missing(self, "argv") };
                let target = a.0.join(" ");
                (Probe::Command(CommandProbe { argv: a.0 }), target)
            }
            CheckKind::Owned(def) => {
                let degraded_after = r.degraded_after.map(|d| d.0);
                return self.owned_check(def, owned_keys, timeout, degraded_after);
            }
            CheckKind::Push => {
                let (Some(period), Some(grace)) = (r.period, r.grace) else {
                    self.at(&loc, format!("service {service:?}: a push check needs `period` (how often the job reports in, e.g. 1d) and `grace` (how late it may be on top of that, e.g. 1h)"));
                    return None;
                };
                if period.value.0.is_zero() {
                    self.at(
                        &period.referenced,
                        format!("service {service:?}: period must be greater than 0"),
                    );
                }
                let token_file = match r.token_file {
                    Some(f) if f.value.as_os_str().is_empty() => {
                        self.at(
                            &f.referenced,
                            format!(
                                "service {service:?}: token_file is empty: expected a file path"
                            ),
                        );
                        None
                    }
                    f => f.map(|f| f.value),
                };
                let target = format!(
                    "every {} + {} grace",
                    duration::format(period.value.0),
                    duration::format(grace.0)
                );
                let probe = PushProbe {
                    service: service.to_string(),
                    period: period.value.0,
                    grace: grace.0,
                    token_file,
                };
                (Probe::Push(probe), target)
            }
        };
        Some(Check { probe, timeout, degraded_after: r.degraded_after.map(|d| d.0), target })
    }
}

/// The machine's host name: the default `host`.
fn machine_hostname() -> String {
    rustix::system::uname().nodename().to_string_lossy().into_owned()
}

/// `http(s)://host[:port]`, as a browser's Origin header reads (`null` is not one).
fn is_origin(v: &str) -> bool {
    let Some((scheme, rest)) = v.split_once("://") else { return false };
    let host = rest
        .rsplit_once(':')
        .map_or(rest, |(h, port)| if port.parse::<u16>().is_ok() { h } else { rest });
    matches!(scheme, "http" | "https")
        && !host.is_empty()
        && host.bytes().all(|b| b.is_ascii_alphanumeric() || b"-.[]:".contains(&b))
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
    k.name()
}

/// A character XML 1.0 allows in text (`Char` of the XML grammar): the
/// SVG badges carry service names.
pub fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | ' '..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

#[cfg(test)]
mod tests;
