//! The command line (argh), converted at once into our own `Command`, so argh
//! types stay in this file.

use crate::app::Command;
use crate::error::Error;
use crate::output::Format;
use argh::FromArgs;
use std::path::PathBuf;

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
    NotifyTest(NotifyTestArgs),
    PolkitRule(PolkitRuleArgs),
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
    /// how long, e.g. 30m (default 1h)
    #[argh(option, long = "for")]
    duration: Option<String>,
    /// why, shown in the status
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

/// What parsing the command line led to.
pub enum Parsed {
    Command(Command),
    /// `--help`: print this and exit 0.
    Help(String),
}

/// Parses `args` (without the program name). `config_env` is
/// `$CHATSTACK_STATUS_CONFIG`, passed in so tests need no environment.
pub fn parse(program: &str, args: &[&str], config_env: Option<String>) -> Result<Parsed, Error> {
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
                "a command is required: check, run, serve, status, validate, mute, unmute, notify-test or polkit-rule\nRun '{program} --help' for usage."
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
            Sub::NotifyTest(a) => Command::NotifyTest { config: cfg(a.config) },
            Sub::PolkitRule(a) => Command::PolkitRule { config: cfg(a.config) },
        },
    };
    Ok(Parsed::Command(cmd))
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
}
