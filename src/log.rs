//! One line per event on stderr, journald-friendly.
//!
//! Under systemd (`JOURNAL_STREAM` set) each line gets a `<N>` syslog priority
//! prefix that journald turns into the entry's priority; elsewhere a plain
//! `level: message` keeps cron mail and terminals readable.

use std::io::Write;
use std::sync::OnceLock;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Error = 3,
    Warn = 4,
    Info = 6,
}

fn journald() -> bool {
    static J: OnceLock<bool> = OnceLock::new();
    *J.get_or_init(|| std::env::var_os("JOURNAL_STREAM").is_some())
}

/// Writes one log line; newlines inside the message are flattened so that
/// one event stays one line whatever a remote server sent us.
pub fn write(level: Level, msg: std::fmt::Arguments<'_>) {
    let mut text = msg.to_string();
    if text.contains(['\n', '\r']) {
        text = text.replace(['\n', '\r'], " ");
    }
    let line = if journald() {
        format!("<{}>{}\n", level as u8, text)
    } else {
        let tag = match level {
            Level::Error => "error",
            Level::Warn => "warning",
            Level::Info => "info",
        };
        format!("chatstack-status: {tag}: {text}\n")
    };
    // A closed stderr must never take the monitor down.
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

#[macro_export]
macro_rules! info {
    ($($t:tt)*) => { $crate::log::write($crate::log::Level::Info, format_args!($($t)*)) };
}
#[macro_export]
macro_rules! warn {
    ($($t:tt)*) => { $crate::log::write($crate::log::Level::Warn, format_args!($($t)*)) };
}
#[macro_export]
macro_rules! error {
    ($($t:tt)*) => { $crate::log::write($crate::log::Level::Error, format_args!($($t)*)) };
}
