//! The subcommands: glue between the CLI, config, cycle and output.
//! Every command returns its exit code; fatal errors come back as `Error`.

use crate::config::{self, Config};
use crate::cycle::{self, CycleOptions};
use crate::error::Error;
use crate::output::{self, DataFormat, Format};
use crate::statefile;
use crate::status::StatusDoc;
use crate::store::{self, Store, StoreError};
use crate::time::Timestamp;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A subcommand with its arguments, as `cli` parsed them.
#[derive(Debug, PartialEq)]
pub enum Command {
    Version,
    Check {
        config: PathBuf,
        no_restart: bool,
        format: Format,
        only: Vec<String>,
    },
    Run {
        config: PathBuf,
        no_restart: bool,
        listen: Option<String>,
        no_http: bool,
    },
    Serve {
        config: PathBuf,
        listen: Option<String>,
    },
    Status {
        config: PathBuf,
        format: Format,
    },
    Validate {
        config: PathBuf,
    },
    Mute {
        config: PathBuf,
        service: String,
        duration: Option<String>,
        reason: Option<String>,
    },
    Unmute {
        config: PathBuf,
        service: String,
    },
    /// A job reports in to its service's push check.
    Ping {
        config: PathBuf,
        service: String,
        fail: bool,
        /// As given: a number, or what `$EXIT_STATUS` holds for a killed job.
        exit_code: Option<String>,
        message: Option<String>,
    },
    NotifyTest {
        config: PathBuf,
    },
    /// The maintenance windows, their next opening and whether open now.
    Maintenance {
        config: PathBuf,
        format: DataFormat,
    },
    PolkitRule {
        config: PathBuf,
    },
    History {
        config: PathBuf,
        service: Option<String>,
        since: Duration,
        step: Duration,
        format: DataFormat,
    },
    Incidents {
        config: PathBuf,
        service: Option<String>,
        since: Duration,
        limit: usize,
        format: DataFormat,
        /// `--id`: one incident, whole.
        id: Option<i64>,
    },
    Report {
        config: PathBuf,
        since: Duration,
        format: DataFormat,
    },
    /// The fleet's state from Prometheus (`fleet --prometheus URL`).
    Fleet {
        prometheus: String,
        format: DataFormat,
    },
    /// Hidden (`__seed-history`): fills a new history database with synthetic
    /// data for benchmarks and tests.
    SeedHistory {
        db: PathBuf,
        spec: crate::store::seed::SeedSpec,
    },
}

pub const UNKNOWN: u8 = 3;
/// How long `check` waits for another holder of the state lock.
const LOCK_WAIT: Duration = Duration::from_secs(2);
/// `mute`/`unmute`/`ping` wait longer: a cycle holds the lock while it
/// steps, heals (restarts are bounded by `heal.timeout`) and saves, though
/// never while it probes.
const EDIT_LOCK_WAIT: Duration = Duration::from_secs(30);

pub fn execute(cmd: Command) -> Result<u8, Error> {
    match cmd {
        Command::Version => {
            println!("chatstack-status {}", env!("CARGO_PKG_VERSION"));
            Ok(0)
        }
        Command::Check { config, no_restart, format, only } => {
            check(&config, no_restart, format, only)
        }
        Command::Status { config, format } => status(&config, format),
        Command::Validate { config } => validate(&config),
        Command::Mute { config, service, duration, reason } => {
            mute(&config, &service, duration, reason)
        }
        Command::Unmute { config, service } => unmute(&config, &service),
        Command::Ping { config, service, fail, exit_code, message } => {
            ping(&config, &service, fail, exit_code.as_deref(), message.as_deref())
        }
        Command::PolkitRule { config } => polkit_rule(&config),
        Command::Run { config, no_restart, listen, no_http } => {
            crate::daemon::run(&config, no_restart, listen, no_http)
        }
        Command::Serve { config, listen } => crate::daemon::serve(&config, listen),
        Command::NotifyTest { config } => crate::notify::test_all(&config::load(&config)?),
        Command::History { config, service, since, step, format } => {
            history(&config, service, since, step, format)
        }
        Command::Incidents { config, id: Some(id), format, .. } => incident(&config, id, format),
        Command::Incidents { config, service, since, limit, format, id: None } => {
            incidents(&config, service, since, limit, format)
        }
        Command::Report { config, since, format } => report(&config, since, format),
        Command::Maintenance { config, format } => {
            let listed = config::maintenance::listing(&config::load(&config)?, Timestamp::now());
            print(&match format {
                DataFormat::Json => json_line(&listed),
                _ => config::maintenance::listing_text(&listed),
            });
            Ok(0)
        }
        Command::SeedHistory { db, spec } => seed_history(&db, &spec),
        Command::Fleet { prometheus, format } => {
            crate::fleet::run(&prometheus, format == DataFormat::Json)
        }
    }
}

fn print(s: &str) {
    // A closed stdout (e.g. `| head`) is not an error worth a panic.
    let _ = std::io::stdout().lock().write_all(s.as_bytes());
}

fn check(path: &Path, no_restart: bool, format: Format, only: Vec<String>) -> Result<u8, Error> {
    let config = config::load(path)?;
    let only = only.iter().map(|name| known(&config, name)).collect::<Result<Vec<_>, _>>()?;
    let opts = CycleOptions { no_restart, only: only.clone() };
    // Probed before the lock is taken: a slow target never keeps the
    // daemon's cycle, `ping` or `mute` waiting on this run.
    let probed = cycle::probe(&config, &opts);
    let mut lock = statefile::lock(&config.state_file, LOCK_WAIT)?;
    let mut state = statefile::load(&config.state_file)?;
    // Restarts are on disk before they run: a run that cannot record one
    // (full disk) must not run it, or the budget never advances.
    let mut persist = |s: &crate::state::StateFile| statefile::save(&config.state_file, s);
    let mut history = crate::store::Recorder::new(&config.history_store);
    let mut out = cycle::apply(&config, &mut state, &opts, probed, &mut persist, &mut history);
    // The cycle's alerts are in the outbox: saved before delivery, which
    // may take a notifier's whole timeout, so a run killed meanwhile loses
    // none (they go out with the next run: at least once).
    statefile::save(&config.state_file, &state)?;
    cycle::add_uptime(&mut out.doc, &mut history);
    // `--only` leaves the status file and the prom file to full runs: one
    // service's view must not replace the host's.
    if only.is_empty() {
        write_status(&config, &out.doc)?;
        crate::metrics::write_prom_file(&config, &out.doc);
    }
    // After the status, so a history fault never costs it: it warns, and
    // the exit code stays the services'.
    let _ = history.record(&cycle::history_record(&config, &state, &out));
    // The diagnoses of the incidents this run opened: after the status is
    // written (never delaying it), before the alerts go (they carry them);
    // captured with the lock released (another `check`, `ping` or `mute`
    // never waits up to `diagnosis::MAX_WALL` for it), then attached under
    // the lock again, to the state as it is then.
    let doc_file = only.is_empty();
    if cycle::number_incidents(&mut state, &mut out, &mut history) && out.captures.is_empty() {
        cycle::save_diagnosed(&config, &state, doc_file.then_some(&out.doc));
    }
    if !out.captures.is_empty() {
        drop(lock);
        let diagnoses = cycle::capture(&config, &out);
        // The cycle is on disk already: waiting as long as `mute` does is
        // better than losing the capture to a busy moment.
        let again = statefile::lock(&config.state_file, EDIT_LOCK_WAIT)
            .and_then(|l| Ok((l, statefile::load(&config.state_file)?)));
        match again {
            Ok((l, now)) => {
                (lock, state) = (l, now);
                cycle::attach(&mut state, &mut out, &diagnoses, &mut history);
                cycle::save_diagnosed(&config, &state, doc_file.then_some(&out.doc));
            }
            Err(e) => {
                // In the history store and this run's output only; the
                // alerts wait in the outbox for the next run.
                crate::warn!("diagnosis: not kept in the state and status files: {e}");
                cycle::attach(&mut state, &mut out, &diagnoses, &mut history);
                print(&output::render(&out.doc, format, &out.notes, output::use_color()));
                return Ok(output::exit_code(&out.doc));
            }
        }
    }
    let heartbeat = crate::notify::heartbeat_due(&config, &out.doc);
    // Saved again only when delivery changed the outbox: with nothing to
    // send (the usual run) that is one fsync and rename fewer.
    if crate::notify::deliver_oneshot(&config, &mut state, heartbeat) {
        statefile::save(&config.state_file, &state)?;
    }
    drop(lock);
    print(&output::render(&out.doc, format, &out.notes, output::use_color()));
    Ok(output::exit_code(&out.doc))
}

pub fn write_status(config: &Config, doc: &StatusDoc) -> Result<(), Error> {
    crate::status::write(&config.status_file, doc)
}

fn status(path: &Path, format: Format) -> Result<u8, Error> {
    let config = config::load(path)?;
    let doc = crate::status::read(&config.status_file)?;
    let age = doc.age_s(Timestamp::now());
    let stale = age > config.stale_after.as_secs_f64();
    match format {
        Format::Json => {
            let mut v = serde_json::to_value(&doc).unwrap_or_default();
            if let Some(o) = v.as_object_mut() {
                o.insert("stale".into(), stale.into());
                o.insert("age_s".into(), serde_json::json!((age * 10.0).round() / 10.0));
            }
            print(&format!("{}\n", serde_json::to_string_pretty(&v).unwrap_or_default()));
        }
        _ => {
            print(&output::render(&doc, Format::Text, &[], output::use_color()));
            print(&format!(
                "generated {} ({:.0} s ago){}\n",
                doc.generated_at,
                age,
                if stale { ", STALE" } else { "" }
            ));
        }
    }
    if stale {
        crate::error!(
            "{}: status is stale: generated {:.0} s ago, more than stale_after ({} s); is the monitor running?",
            config.status_file.display(),
            age,
            config.stale_after.as_secs()
        );
        return Ok(UNKNOWN);
    }
    Ok(output::exit_code(&doc))
}

fn validate(path: &Path) -> Result<u8, Error> {
    let c = config::load(path)?;
    // The push tokens as `run` will read them (present, long enough).
    crate::server::push::gates(&c)
        .map_err(|e| Error::ConfigInvalid { path: c.path.clone(), problems: vec![e] })?;
    for warning in crate::server::push::open_push_warnings(&c) {
        crate::warn!("{warning}");
    }
    let mut kinds = std::collections::BTreeMap::new();
    for ch in c.services.iter().flat_map(|s| &s.checks) {
        *kinds.entry(ch.kind()).or_insert(0) += 1;
    }
    let kinds: Vec<String> = kinds.iter().map(|(k, n)| format!("{n} {k}")).collect();
    let mut s = format!(
        "{}: OK: {}, {} ({})\n",
        c.path.display(),
        crate::output::plural(c.services.len(), "service", "services"),
        crate::output::plural(
            c.services.iter().map(|s| s.checks.len()).sum::<usize>(),
            "check",
            "checks"
        ),
        kinds.join(", ")
    );
    for f in &c.files {
        s.push_str(&format!("  read {}\n", f.display()));
    }
    for svc in &c.services {
        s.push_str(&format!(
            "  {}{}{}: {}\n",
            svc.name,
            if svc.critical { "" } else { " (non-critical)" },
            svc.unit.as_ref().map(|u| format!(" [heals {u}]")).unwrap_or_default(),
            svc.checks
                .iter()
                .map(|c| format!("{} {}", c.kind(), c.target))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let d = config::duration::format;
    s.push_str(&format!(
        "interval {}, timeout {}, workers {}, status {}, state {}, listen {}\n",
        d(c.interval),
        d(c.timeout),
        c.workers,
        c.status_file.display(),
        c.state_file.display(),
        c.listen
    ));
    let h = &c.heal;
    s.push_str(&if h.enabled {
        format!(
            "healing: after {} failed cycles, grace {}, at most {} restarts per {}, stable after {}\n",
            h.after_failures,
            d(h.grace),
            h.max_restarts,
            d(h.window),
            d(h.stable_after)
        )
    } else {
        "healing: disabled\n".to_string()
    });
    s.push_str(&match &c.history_store.path {
        Some(p) => {
            let r = &c.history_store.retention;
            format!(
                "history: {} (results {}, rollups {}, incidents {})\n",
                p.display(),
                d(r.results),
                d(r.rollups),
                d(r.incidents)
            )
        }
        None => "history: off\n".to_string(),
    });
    s.push_str(&format!("notifiers: {}\n", c.notify.len()));
    if c.services.iter().flat_map(|s| &s.checks).any(|c| c.probe.cert_limits().is_some()) {
        s.push_str(&format!("certificates: trusting {}\n", crate::probe::certs::roots_source()));
    }
    print(&s);
    for w in config::advice::warnings(&c) {
        crate::warn!("{}: {w}", c.path.display());
    }
    Ok(0)
}

/// The configured name `service` stands for: itself, or the one name it
/// matches ignoring case (`chatstack` for `ChatStack`); else an error with
/// the names (and the likely one).
fn known(config: &Config, service: &str) -> Result<String, Error> {
    if config.service(service).is_some() {
        return Ok(service.to_string());
    }
    let names: Vec<&str> = config.services.iter().map(|s| s.name.as_str()).collect();
    match crate::suggest::case_insensitive(service, &names) {
        Some(name) => Ok(name.to_string()),
        None => Err(Error::UnknownService {
            name: service.to_string(),
            known: config.services.iter().map(|s| s.name.clone()).collect(),
        }),
    }
}

/// The shortest and longest mute `mute --for` takes.
const MUTE_MIN: Duration = Duration::from_secs(1);
const MUTE_MAX: Duration = Duration::from_secs(90 * 86_400);

fn mute(
    path: &Path,
    service: &str,
    duration: Option<String>,
    reason: Option<String>,
) -> Result<u8, Error> {
    let config = config::load(path)?;
    let service = &known(&config, service)?;
    let dur = match duration {
        Some(d) => config::duration::parse(&d).map_err(|e| Error::Usage(format!("--for: {e}")))?,
        None => Duration::from_secs(3600),
    };
    if !(MUTE_MIN..=MUTE_MAX).contains(&dur) {
        return Err(Error::Usage(format!(
            "--for {}: expected from 1s to 90d (a mute ends by itself; a longer one is \
             forgotten maintenance: mute again when it is over, or remove the service)",
            config::duration::format(dur)
        )));
    }
    // Shown in the status, the dashboard and logs: one clean line, like a
    // job's message (no controls, no bidi or zero-width characters).
    let reason = reason.map(|r| crate::probe::push::clean_message(&r)).filter(|r| !r.is_empty());
    let _lock = statefile::lock(&config.state_file, EDIT_LOCK_WAIT)?;
    let mut state = statefile::load(&config.state_file)?;
    let until = Timestamp::now().plus(dur);
    let s = state.services.entry(service.to_string()).or_default();
    s.muted_until = Some(until);
    s.mute_reason = reason.clone();
    statefile::save(&config.state_file, &state)?;
    print(&format!(
        "{service}: muted until {until} ({}){}: no healing, no alerts\n",
        config::duration::format(dur),
        reason.map(|r| format!(", reason: {r}")).unwrap_or_default()
    ));
    Ok(0)
}

fn unmute(path: &Path, service: &str) -> Result<u8, Error> {
    let config = config::load(path)?;
    let service = &known(&config, service)?;
    let _lock = statefile::lock(&config.state_file, EDIT_LOCK_WAIT)?;
    let mut state = statefile::load(&config.state_file)?;
    let s = state.services.entry(service.to_string()).or_default();
    let was_suspended = s.heal_suspended;
    // A service still down when its mute ends pages once on the next cycle
    // (notify's `alert_muted` memory); one never muted is not paged again.
    s.muted_until = None;
    s.mute_reason = None;
    s.heal_suspended = false;
    s.restarts.clear();
    statefile::save(&config.state_file, &state)?;
    print(&format!(
        "{service}: unmuted{}\n",
        if was_suspended { "; healing budget reset" } else { "" }
    ));
    Ok(0)
}

/// Records a job's report for `service`'s push check in the state file,
/// under the lock (the next cycle, `check` or the daemon's, judges it).
/// Silent on success: a cron job's output is mailed.
fn ping(
    path: &Path,
    service: &str,
    fail: bool,
    exit_code: Option<&str>,
    message: Option<&str>,
) -> Result<u8, Error> {
    let config = config::load(path)?;
    let service = &known(&config, service)?;
    let has_push = config
        .service(service)
        .is_some_and(|s| s.checks.iter().any(|c| matches!(c.probe, crate::probe::Probe::Push(_))));
    if !has_push {
        return Err(Error::Other(format!(
            "service {service:?} has no push check: add `{{type: push, period: 1d, grace: 1h}}` to its checks in {}",
            config.path.display()
        )));
    }
    // Judged before the lock: a bad `--exit-code` records nothing.
    crate::probe::push::Ping::from_cli(Timestamp::now(), fail, exit_code, message)
        .map_err(Error::Usage)?;
    let _lock = statefile::lock(&config.state_file, EDIT_LOCK_WAIT)?;
    let mut state = statefile::load(&config.state_file)?;
    let now = Timestamp::now();
    let ping =
        crate::probe::push::Ping::from_cli(now, fail, exit_code, message).map_err(Error::Usage)?;
    crate::state::record_ping(&mut state, service, ping, 1, now);
    statefile::save(&config.state_file, &state)?;
    Ok(0)
}

/// The polkit rule letting the daemon's user restart exactly the configured units.
pub fn polkit_rule_text(config: &Config) -> String {
    let units: Vec<String> = config
        .services
        .iter()
        .filter_map(|s| s.unit.as_ref())
        .map(|u| serde_json::to_string(u).unwrap_or_default())
        .collect();
    format!(
        r#"// chatstack-status: allow the monitor to restart exactly its configured units.
// Generated by `chatstack-status polkit-rule -c {}`; regenerate after editing the units.
polkit.addRule(function(action, subject) {{
    if (action.id == "org.freedesktop.systemd1.manage-units" &&
        subject.user == "chatstack-status") {{
        var unit = action.lookup("unit");
        var verb = action.lookup("verb");
        var units = [{}];
        if (units.indexOf(unit) >= 0 && (verb == "restart" || verb == "reset-failed")) {{
            return polkit.Result.YES;
        }}
    }}
}});
"#,
        config.path.display().to_string().replace(['\n', '\r'], " "),
        units.join(", ")
    )
}

fn polkit_rule(path: &Path) -> Result<u8, Error> {
    let config = config::load(path)?;
    print(&polkit_rule_text(&config));
    Ok(0)
}

/// Opens the history database read-only for a command (exit 3 when it is
/// off, missing or unreadable).
fn open_history(config: &Config) -> Result<Store, Error> {
    let h = &config.history_store;
    let path = h.path.as_ref().ok_or_else(|| {
        Error::Other(format!("{}: history is disabled (history_db: off)", config.path.display()))
    })?;
    Store::open_read_with(path, h.busy_timeout).map_err(|e| Error::Other(e.to_string()))
}

/// The services to answer for: one (which must be in the config) or all.
fn selected(config: &Config, service: Option<String>) -> Result<Vec<String>, Error> {
    match service {
        Some(name) => Ok(vec![known(config, &name)?]),
        None => Ok(config.services.iter().map(|s| s.name.clone()).collect()),
    }
}

fn json_line<T: serde::Serialize>(v: &T) -> String {
    let mut s = serde_json::to_string_pretty(v).unwrap_or_default();
    s.push('\n');
    s
}

fn store_err(e: StoreError) -> Error {
    Error::Other(e.to_string())
}

fn history(
    path: &Path,
    service: Option<String>,
    since: Duration,
    step: Duration,
    format: DataFormat,
) -> Result<u8, Error> {
    let config = config::load(path)?;
    store::check_history_query(since, step, &config.history_store.retention)
        .map_err(|e| Error::Usage(format!("--{e}")))?;
    let one = service.is_some();
    let names = selected(&config, service)?;
    let mut db = open_history(&config)?;
    let now = Timestamp::now();
    let docs = names
        .iter()
        .map(|n| db.history(n, since, step, now))
        .collect::<Result<Vec<_>, _>>()
        .map_err(store_err)?;
    print(&match format {
        DataFormat::Json if one => json_line(&docs[0]),
        DataFormat::Json => json_line(&docs),
        DataFormat::Csv => store::render::history_csv(&docs),
        _ => store::render::history_text(&docs, now),
    });
    Ok(0)
}

/// `incidents --id ID`: one incident whole; an unknown id is an error (exit 3).
fn incident(path: &Path, id: i64, format: DataFormat) -> Result<u8, Error> {
    let config = config::load(path)?;
    let mut db = open_history(&config)?;
    let found = db.incident(id, Timestamp::now()).map_err(store_err)?;
    let Some(inc) = found else {
        return Err(Error::Other(format!("no incident with id {id} in {}", db.path().display())));
    };
    print(&match format {
        DataFormat::Json => json_line(&inc),
        _ => store::render::incident_whole_text(&inc),
    });
    Ok(0)
}

fn incidents(
    path: &Path,
    service: Option<String>,
    since: Duration,
    limit: usize,
    format: DataFormat,
) -> Result<u8, Error> {
    let config = config::load(path)?;
    let service = service.map(|s| known(&config, &s)).transpose()?;
    let mut db = open_history(&config)?;
    let now = Timestamp::now();
    let since = Timestamp(now.0.saturating_sub(since.as_millis().min(i64::MAX as u128) as i64));
    let doc = db.incidents(service.as_deref(), since, limit, now).map_err(store_err)?;
    print(&match format {
        DataFormat::Json => json_line(&doc),
        _ => store::render::incidents_text(&doc),
    });
    Ok(0)
}

fn report(path: &Path, since: Duration, format: DataFormat) -> Result<u8, Error> {
    let config = config::load(path)?;
    let names = selected(&config, None)?;
    let mut db = open_history(&config)?;
    let now = Timestamp::now();
    let since = Timestamp(now.0.saturating_sub(since.as_millis().min(i64::MAX as u128) as i64));
    let doc = db.report(&names, since, now).map_err(store_err)?;
    print(&match format {
        DataFormat::Json => json_line(&doc),
        DataFormat::Markdown => store::render::report_markdown(&doc),
        _ => store::render::report_text(&doc),
    });
    Ok(0)
}

fn seed_history(db: &Path, spec: &store::seed::SeedSpec) -> Result<u8, Error> {
    let s = store::seed::seed(db, spec).map_err(store_err)?;
    print(&format!(
        "{}: seeded {} services: {} results, {} rollup rows, {} incidents in {:.1} s\n",
        db.display(),
        s.services,
        s.results,
        s.rollup_rows,
        s.incidents,
        s.elapsed.as_secs_f64()
    ));
    Ok(0)
}
