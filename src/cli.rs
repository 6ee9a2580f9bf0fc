//! The command line (argh), converted at once into our own `Command`, so argh
//! types stay in this file.

use crate::app::Command;
use crate::error::Error;
use crate::output::{DataFormat, Format};
use argh::FromArgs;
use std::path::PathBuf;
use std::time::Duration;

/// Health monitor for the services of one host: probes, status JSON, healing, alerts.
#[derive(FromArgs, Debug)]
struct Top {
    /// print the version and exit
    #[argh(switch)]
    version: bool,
    #[argh(subcommand)]
    cmd: Option<Sub>,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand)]
enum Sub {
    Check(CheckArgs),
    Run(RunArgs),
    Serve(ServeArgs),
    Status(StatusArgs),
    Validate(ValidateArgs),
    Mute(MuteArgs),
    Unmute(UnmuteArgs),
    Ping(PingArgs),
    NotifyTest(NotifyTestArgs),
    PolkitRule(PolkitRuleArgs),
    History(HistoryArgs),
    Incidents(IncidentsArgs),
    Report(ReportArgs),
    Maintenance(MaintenanceArgs),
    Fleet(FleetArgs),
}

/// Probe once, heal, write the status file; exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "check")]
struct CheckArgs {
    /// config file (default: $CHATSTACK_STATUS_CONFIG or /etc/chatstack-status/monitor.yml)
    #[argh(option, short = 'c')]
    config: Option<PathBuf>,
    /// decide as usual but restart nothing
    #[argh(switch)]
    no_restart: bool,
    /// output: text, json or nagios (default text)
    #[argh(option, default = "String::from(\"text\")")]
    format: String,
    /// check only this service (repeatable); the status file is left to full runs
    #[argh(option)]
    only: Vec<String>,
}

/// Run as a daemon: a cycle every interval, plus the HTTP server.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "run")]
struct RunArgs {
    /// config file
    #[argh(option, short = 'c')]
    config: Option<PathBuf>,
    /// decide as usual but restart nothing
    #[argh(switch)]
    no_restart: bool,
    /// HTTP listen address (overrides `listen`)
    #[argh(option)]
    listen: Option<String>,
    /// do not start the HTTP server
    #[argh(switch)]
    no_http: bool,
}

/// Serve the status file that cron'd `check` writes: HTTP only.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "serve")]
struct ServeArgs {
    /// config file
    #[argh(option, short = 'c')]
    config: Option<PathBuf>,
    /// HTTP listen address (overrides `listen`)
    #[argh(option)]
    listen: Option<String>,
}

/// Print the status file; exit code from it (3 when missing or stale).
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "status")]
struct StatusArgs {
    /// config file
    #[argh(option, short = 'c')]
    config: Option<PathBuf>,
    /// output: text or json (default text)
    #[argh(option, default = "String::from(\"text\")")]
    format: String,
}

/// Parse and validate the config, print a summary; exit 0 or 3.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "validate")]
struct ValidateArgs {
    /// config file
    #[argh(option, short = 'c')]
    config: Option<PathBuf>,
}

/// Maintenance: no healing and no alerts for SERVICE.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "mute")]
struct MuteArgs {
    /// config file
    #[argh(option, short = 'c')]
    config: Option<PathBuf>,
    /// the service to mute
    #[argh(positional)]
    service: String,
    /// how long, 1s to 90d, e.g. 30m (default 1h)
    #[argh(option, long = "for")]
    duration: Option<String>,
    /// why, shown in the status, the dashboard and check/status
    #[argh(option)]
    reason: Option<String>,
}

/// End a mute, and clear a suspended heal budget.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "unmute")]
struct UnmuteArgs {
    /// config file
    #[argh(option, short = 'c')]
    config: Option<PathBuf>,
    /// the service to unmute
    #[argh(positional)]
    service: String,
}

/// Report in for SERVICE's push check (a job that ran); exit 0, or 3 for an unknown service or one without a push check.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "ping")]
struct PingArgs {
    /// config file
    #[argh(option, short = 'c')]
    config: Option<PathBuf>,
    /// the service whose push check this reports to
    #[argh(positional)]
    service: String,
    /// the job failed
    #[argh(switch)]
    fail: bool,
    /// the job's exit status, an integer 0-255 (0 is success) or a signal name such as TERM from systemd's $EXIT_STATUS (a failure); anything else is exit 3
    #[argh(option)]
    exit_code: Option<String>,
    /// what the job says, shown with the check (one line, at most 200 characters)
    #[argh(option)]
    message: Option<String>,
}

/// Send one test event through every notifier; exit 0 if all accepted it, else 1.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "notify-test")]
struct NotifyTestArgs {
    /// config file
    #[argh(option, short = 'c')]
    config: Option<PathBuf>,
}

/// Print the polkit rule that lets the daemon restart exactly the configured units.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "polkit-rule")]
struct PolkitRuleArgs {
    /// config file
    #[argh(option, short = 'c')]
    config: Option<PathBuf>,
}

/// Uptime, downtime and latency in buckets over a past window (history database).
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "history")]
struct HistoryArgs {
    /// config file
    #[argh(option, short = 'c')]
    config: Option<PathBuf>,
    /// only this service (default: all)
    #[argh(positional)]
    service: Option<String>,
    /// how far back, e.g. 24h, 7d, 90d (default 24h)
    #[argh(option, default = "String::from(\"24h\")")]
    since: String,
    /// bucket size, at least 1m, e.g. 5m, 1h, 1d (default 1h)
    #[argh(option, default = "String::from(\"1h\")")]
    step: String,
    /// output: text, json or csv (default text)
    #[argh(option, default = "String::from(\"text\")")]
    format: String,
}

/// Incidents (down stretches) with their cause and what healing did, newest first.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "incidents")]
struct IncidentsArgs {
    /// config file
    #[argh(option, short = 'c')]
    config: Option<PathBuf>,
    /// only this service (default: all)
    #[argh(positional)]
    service: Option<String>,
    /// how far back, e.g. 7d (default 30d)
    #[argh(option, default = "String::from(\"30d\")")]
    since: String,
    /// at most this many (default 50)
    #[argh(option, default = "50")]
    limit: usize,
    /// output: text or json (default text)
    #[argh(option, default = "String::from(\"text\")")]
    format: String,
    /// print this one incident whole (its restarts and diagnosis)
    #[argh(option)]
    id: Option<i64>,
}

/// SLA summary per service: uptime, downtime, incidents, MTTR, restarts, alerts.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "report")]
struct ReportArgs {
    /// config file
    #[argh(option, short = 'c')]
    config: Option<PathBuf>,
    /// the period, e.g. 7d, 30d, 365d (default 30d)
    #[argh(option, default = "String::from(\"30d\")")]
    since: String,
    /// output: text, json or markdown (default text)
    #[argh(option, default = "String::from(\"text\")")]
    format: String,
}

/// The maintenance windows: when each opens and closes next, and which are open.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "maintenance")]
struct MaintenanceArgs {
    /// config file
    #[argh(option, short = 'c')]
    config: Option<PathBuf>,
    /// output: text or json (default text)
    #[argh(option, default = "String::from(\"text\")")]
    format: String,
}

/// The fleet's state from the Prometheus that scrapes its agents: one row per host and service, worst first.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "fleet")]
struct FleetArgs {
    /// the Prometheus to ask, e.g. http://prometheus:9090
    #[argh(option)]
    prometheus: String,
    /// output: text or json (default text)
    #[argh(option, default = "String::from(\"text\")")]
    format: String,
}

/// What parsing the command line led to.
pub enum Parsed {
    Command(Command),
    /// `--help`: print this and exit 0.
    Help(String),
}

/// Parses `args` (without the program name). `config_env` is
/// `$CHATSTACK_STATUS_CONFIG`, passed in so tests need no environment.
pub fn parse(program: &str, args: &[&str], config_env: Option<String>) -> Result<Parsed, Error> {
    if args.first() == Some(&"__seed-history") {
        return seed_args(&args[1..]).map(Parsed::Command);
    }
    let top = match Top::from_args(&[program], args) {
        Ok(t) => t,
        Err(early) => {
            return match early.status {
                Ok(()) => Ok(Parsed::Help(early.output)),
                Err(()) => Err(Error::Usage(format!(
                    "{}\nRun '{program} --help' for usage.",
                    early.output.trim_end()
                ))),
            };
        }
    };
    let cfg = |c: Option<PathBuf>| -> PathBuf {
        c.or_else(|| config_env.clone().filter(|s| !s.is_empty()).map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from(crate::config::DEFAULT_PATH))
    };
    let cmd = match (top.version, top.cmd) {
        (true, _) => Command::Version,
        (false, None) => {
            return Err(Error::Usage(format!(
                "a command is required: check, run, serve, status, validate, mute, unmute, ping, notify-test, polkit-rule, history, incidents, report, fleet or maintenance\nRun '{program} --help' for usage."
            )));
        }
        (false, Some(sub)) => match sub {
            Sub::Check(a) => Command::Check {
                config: cfg(a.config),
                no_restart: a.no_restart,
                format: format(&a.format, true)?,
                only: a.only,
            },
            Sub::Run(a) => Command::Run {
                config: cfg(a.config),
                no_restart: a.no_restart,
                listen: a.listen,
                no_http: a.no_http,
            },
            Sub::Serve(a) => Command::Serve { config: cfg(a.config), listen: a.listen },
            Sub::Status(a) => {
                Command::Status { config: cfg(a.config), format: format(&a.format, false)? }
            }
            Sub::Validate(a) => Command::Validate { config: cfg(a.config) },
            Sub::Mute(a) => Command::Mute {
                config: cfg(a.config),
                service: a.service,
                duration: a.duration,
                reason: a.reason,
            },
            Sub::Unmute(a) => Command::Unmute { config: cfg(a.config), service: a.service },
            Sub::Ping(a) => Command::Ping {
                config: cfg(a.config),
                service: a.service,
                fail: a.fail,
                exit_code: a.exit_code,
                message: a.message,
            },
            Sub::NotifyTest(a) => Command::NotifyTest { config: cfg(a.config) },
            Sub::PolkitRule(a) => Command::PolkitRule { config: cfg(a.config) },
            Sub::History(a) => Command::History {
                config: cfg(a.config),
                service: a.service,
                since: duration("--since", &a.since)?,
                step: duration("--step", &a.step)?,
                format: data_format(
                    &a.format,
                    &[DataFormat::Text, DataFormat::Json, DataFormat::Csv],
                )?,
            },
            Sub::Incidents(a) => Command::Incidents {
                config: cfg(a.config),
                service: a.service,
                since: duration("--since", &a.since)?,
                limit: match a.limit {
                    1..=10_000 => a.limit,
                    n => {
                        return Err(Error::Usage(format!(
                            "invalid --limit {n}: expected 1 to 10000"
                        )));
                    }
                },
                format: data_format(&a.format, &[DataFormat::Text, DataFormat::Json])?,
                id: a.id,
            },
            Sub::Maintenance(a) => Command::Maintenance {
                config: cfg(a.config),
                format: data_format(&a.format, &[DataFormat::Text, DataFormat::Json])?,
            },
            Sub::Fleet(a) => Command::Fleet {
                prometheus: prometheus_url(&a.prometheus)?,
                format: data_format(&a.format, &[DataFormat::Text, DataFormat::Json])?,
            },
            Sub::Report(a) => Command::Report {
                config: cfg(a.config),
                since: duration("--since", &a.since)?,
                format: data_format(
                    &a.format,
                    &[DataFormat::Text, DataFormat::Json, DataFormat::Markdown],
                )?,
            },
        },
    };
    Ok(Parsed::Command(cmd))
}

fn duration(flag: &str, s: &str) -> Result<Duration, Error> {
    match crate::config::duration::parse(s) {
        Ok(d) if !d.is_zero() => Ok(d),
        Ok(_) => Err(Error::Usage(format!("{flag}: must be greater than 0"))),
        Err(e) => Err(Error::Usage(format!("{flag}: {e}"))),
    }
}

/// `--prometheus`: an http(s) URL (a path prefix is kept, for a
/// Prometheus behind a reverse proxy).
fn prometheus_url(s: &str) -> Result<String, Error> {
    let ok = ["http://", "https://"]
        .iter()
        .any(|p| s.strip_prefix(p).is_some_and(|rest| !rest.is_empty() && !rest.starts_with('/')));
    if ok && !s.contains(char::is_whitespace) {
        Ok(s.to_string())
    } else {
        Err(Error::Usage(format!(
            "invalid --prometheus {s:?}: expected an http:// or https:// URL, e.g. http://127.0.0.1:9090"
        )))
    }
}

fn data_format(s: &str, allowed: &[DataFormat]) -> Result<DataFormat, Error> {
    let f = match s {
        "text" => Some(DataFormat::Text),
        "json" => Some(DataFormat::Json),
        "csv" => Some(DataFormat::Csv),
        "markdown" => Some(DataFormat::Markdown),
        _ => None,
    };
    match f {
        Some(f) if allowed.contains(&f) => Ok(f),
        _ => {
            let names: Vec<&str> = allowed
                .iter()
                .map(|f| match f {
                    DataFormat::Text => "text",
                    DataFormat::Json => "json",
                    DataFormat::Csv => "csv",
                    DataFormat::Markdown => "markdown",
                })
                .collect();
            let (last, rest) = names.split_last().map_or(("", &[][..]), |(l, r)| (*l, r));
            Err(Error::Usage(format!(
                "invalid --format {s:?}: expected {} or {last}",
                rest.join(", ")
            )))
        }
    }
}

/// `__seed-history --db PATH [--services N] [--days N] [--result-days N]
/// [--interval DUR] [--now RFC3339] [--seed N]`, parsed by hand so it stays
/// out of `--help` and the completions.
fn seed_args(args: &[&str]) -> Result<Command, Error> {
    let bad = |m: String| Error::Usage(format!("__seed-history: {m}"));
    let mut db = None;
    let mut spec = crate::store::seed::SeedSpec::year(crate::time::Timestamp::now());
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| bad(format!("{flag} needs a value")))?;
        let int = |v: &str| {
            v.parse::<i64>()
                .ok()
                .filter(|n| *n >= 0)
                .ok_or_else(|| bad(format!("{flag}: expected a whole number, got {v:?}")))
        };
        match *flag {
            "--db" => db = Some(PathBuf::from(value)),
            "--services" => spec.services = int(value)?.clamp(1, 1000) as usize,
            "--days" => spec.days = int(value)?.clamp(1, 3650),
            "--result-days" => spec.result_days = int(value)?.clamp(0, 3650),
            "--seed" => spec.seed = int(value)? as u64,
            "--interval" => {
                spec.interval = duration("--interval", value)?.max(Duration::from_secs(1))
            }
            "--now" => {
                spec.now = crate::time::Timestamp::parse(value).ok_or_else(|| {
                    bad(format!("--now: expected an RFC 3339 time, got {value:?}"))
                })?
            }
            other => return Err(bad(format!("unknown option {other:?}"))),
        }
    }
    let db = db.ok_or_else(|| bad("--db PATH is required".into()))?;
    Ok(Command::SeedHistory { db, spec })
}

fn format(s: &str, nagios_ok: bool) -> Result<Format, Error> {
    match s {
        "text" => Ok(Format::Text),
        "json" => Ok(Format::Json),
        "nagios" if nagios_ok => Ok(Format::Nagios),
        _ if nagios_ok => {
            Err(Error::Usage(format!("invalid --format {s:?}: expected text, json or nagios")))
        }
        _ => Err(Error::Usage(format!("invalid --format {s:?}: expected text or json"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(args: &[&str]) -> Result<Command, String> {
        match parse("chatstack-status", args, None) {
            Ok(Parsed::Command(c)) => Ok(c),
            Ok(Parsed::Help(h)) => Err(format!("help: {h}")),
            Err(e) => Err(e.to_string()),
        }
    }

    #[test]
    fn check_flags() {
        assert_eq!(
            cmd(&[
                "check",
                "-c",
                "x.yml",
                "--no-restart",
                "--format",
                "nagios",
                "--only",
                "A",
                "--only",
                "B"
            ]),
            Ok(Command::Check {
                config: "x.yml".into(),
                no_restart: true,
                format: Format::Nagios,
                only: vec!["A".into(), "B".into()]
            })
        );
    }

    #[test]
    fn config_falls_back_to_env_then_default() {
        let c = parse("p", &["validate"], Some("/env.yml".into()));
        assert!(
            matches!(c, Ok(Parsed::Command(Command::Validate { config })) if config.as_os_str() == "/env.yml")
        );
        assert_eq!(
            cmd(&["validate"]),
            Ok(Command::Validate { config: crate::config::DEFAULT_PATH.into() })
        );
    }

    #[test]
    fn usage_errors() {
        assert!(cmd(&[]).is_err());
        assert!(cmd(&["bogus"]).is_err());
        assert!(cmd(&["check", "--format", "xml"]).is_err());
        assert!(cmd(&["status", "--format", "nagios"]).is_err());
        assert!(cmd(&["mute"]).is_err());
        assert_eq!(cmd(&["--version"]), Ok(Command::Version));
        assert!(matches!(parse("p", &["--help"], None), Ok(Parsed::Help(_))));
    }

    #[test]
    fn ping_flags() {
        assert_eq!(
            cmd(&["ping", "-c", "x.yml", "backup", "--exit-code", "TERM", "--message", "a b"]),
            Ok(Command::Ping {
                config: "x.yml".into(),
                service: "backup".into(),
                fail: false,
                exit_code: Some("TERM".into()),
                message: Some("a b".into())
            })
        );
        assert_eq!(
            cmd(&["ping", "backup", "--fail"]),
            Ok(Command::Ping {
                config: crate::config::DEFAULT_PATH.into(),
                service: "backup".into(),
                fail: true,
                exit_code: None,
                message: None
            })
        );
        assert!(cmd(&["ping"]).is_err());
        assert!(cmd(&["ping", "a", "b"]).is_err());
    }

    #[test]
    fn history_commands() {
        assert_eq!(
            cmd(&[
                "history",
                "-c",
                "x.yml",
                "ChatStack",
                "--since",
                "7d",
                "--step",
                "1d",
                "--format",
                "csv"
            ]),
            Ok(Command::History {
                config: "x.yml".into(),
                service: Some("ChatStack".into()),
                since: Duration::from_secs(7 * 86_400),
                step: Duration::from_secs(86_400),
                format: DataFormat::Csv
            })
        );
        assert_eq!(
            cmd(&["history"]),
            Ok(Command::History {
                config: crate::config::DEFAULT_PATH.into(),
                service: None,
                since: Duration::from_secs(86_400),
                step: Duration::from_secs(3600),
                format: DataFormat::Text
            })
        );
        assert_eq!(
            cmd(&["incidents", "--limit", "5", "--format", "json"]),
            Ok(Command::Incidents {
                config: crate::config::DEFAULT_PATH.into(),
                service: None,
                since: Duration::from_secs(30 * 86_400),
                limit: 5,
                format: DataFormat::Json,
                id: None,
            })
        );
        assert_eq!(
            cmd(&["report", "--since", "365d", "--format", "markdown"]),
            Ok(Command::Report {
                config: crate::config::DEFAULT_PATH.into(),
                since: Duration::from_secs(365 * 86_400),
                format: DataFormat::Markdown
            })
        );
        for (args, says) in [
            (&["history", "--since", "5x"][..], "--since: invalid duration \"5x\""),
            (&["history", "--step", "0"][..], "--step: must be greater than 0"),
            (&["history", "--format", "markdown"][..], "expected text, json or csv"),
            (&["incidents", "--format", "csv"][..], "expected text or json"),
            (&["incidents", "--limit", "0"][..], "expected 1 to 10000"),
            (&["report", "--format", "csv"][..], "expected text, json or markdown"),
            (&["__seed-history"][..], "--db PATH is required"),
            (&["__seed-history", "--db"][..], "--db needs a value"),
        ] {
            let e = cmd(args).unwrap_err();
            assert!(e.contains(says), "{args:?}: {e}");
        }
        assert!(matches!(
            cmd(&["__seed-history", "--db", "/tmp/x.db", "--services", "3", "--now", "2026-11-28T00:00:00Z"]),
            Ok(Command::SeedHistory { spec, .. }) if spec.services == 3 && spec.now.0 == 1_795_824_000_000
        ));
    }
}
