//! chatstack-status: a health monitor for the services of one host.
//!
//! Where things live: `cli` (arguments) → `app` (subcommands) → `cycle` (one
//! round: `runner` runs `probe`s, `state` decides, `heal` restarts, `status`
//! reports) → `daemon` (the loop, `server`, `metrics`, signals, sd_notify) and
//! `notify` (alerts). `config` turns YAML into a validated `Config`.

pub mod app;
pub mod arena;
pub mod cli;
pub mod config;
pub mod cycle;
pub mod daemon;
pub mod diagnosis;
pub mod error;
pub mod fleet;
pub mod fsutil;
pub mod heal;
#[cfg(test)]
mod layers;
pub mod log;
pub mod metrics;
pub mod notify;
pub mod output;
pub mod probe;
pub mod resident;
pub mod runner;
pub mod sdnotify;
pub mod server;
pub mod state;
pub mod statefile;
pub mod status;
pub mod store;
pub mod suggest;
pub mod table;
#[cfg(test)]
mod testing;
pub mod text;
pub mod time;

use std::process::ExitCode;

/// The whole program: parse arguments, run the command, map errors to exit 3.
pub fn main_with_args(args: Vec<String>) -> ExitCode {
    let program = "chatstack-status";
    let argv: Vec<&str> = args.iter().skip(1).map(String::as_str).collect();
    // Lossily, like the arguments: a path that is not UTF-8 then fails to
    // open with a clear error instead of being ignored.
    let env_config =
        std::env::var_os("CHATSTACK_STATUS_CONFIG").map(|v| v.to_string_lossy().into_owned());
    // A Nagios plugin must say UNKNOWN on stdout too, not only exit 3.
    let mut nagios = argv.windows(2).any(|w| w == ["--format", "nagios"]);
    let result = match cli::parse(program, &argv, env_config) {
        Ok(cli::Parsed::Help(text)) => {
            println!("{text}");
            return ExitCode::SUCCESS;
        }
        Ok(cli::Parsed::Command(cmd)) => {
            nagios = matches!(cmd, app::Command::Check { format: output::Format::Nagios, .. });
            app::execute(cmd)
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            let text = e.to_string();
            for line in text.lines() {
                crate::log::write(crate::log::Level::Error, format_args!("{line}"));
            }
            if nagios {
                println!("CHATSTACK UNKNOWN - {}", text.lines().next().unwrap_or("error"));
            }
            ExitCode::from(app::UNKNOWN)
        }
    }
}
