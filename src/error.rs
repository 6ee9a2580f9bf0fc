//! Fatal errors: each carries its context and prints as one line per problem.
//! Observed failures of targets are never errors (see `probe::Outcome`).

use std::fmt;
use std::io;
use std::path::PathBuf;

#[derive(Debug)]
pub enum Error {
    Usage(String),
    ConfigRead {
        path: PathBuf,
        source: io::Error,
    },
    /// Each problem is already `file:line:column: message`.
    ConfigInvalid {
        path: PathBuf,
        problems: Vec<String>,
    },
    StatusWrite {
        path: PathBuf,
        source: io::Error,
    },
    StateWrite {
        path: PathBuf,
        source: io::Error,
    },
    StateRead {
        path: PathBuf,
        source: io::Error,
    },
    StatusRead {
        path: PathBuf,
        message: String,
    },
    Locked {
        path: PathBuf,
    },
    Lock {
        path: PathBuf,
        source: io::Error,
    },
    Listen {
        addr: String,
        source: io::Error,
    },
    UnknownService {
        name: String,
        known: Vec<String>,
    },
    Other(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage(m) => write!(f, "{m}"),
            Error::ConfigRead { path, source } => {
                write!(f, "{}: cannot read config: {}", path.display(), io_text(source))
            }
            Error::ConfigInvalid { problems, .. } => write!(f, "{}", problems.join("\n")),
            Error::StatusWrite { path, source } => {
                write!(f, "{}: cannot write status file: {}", path.display(), io_text(source))
            }
            Error::StateWrite { path, source } => {
                write!(f, "{}: cannot write state file: {}", path.display(), io_text(source))
            }
            Error::StateRead { path, source } => write!(
                f,
                "{}: cannot read state file: {}; fix it (owner, mode, type) or remove it to start fresh",
                path.display(),
                io_text(source)
            ),
            Error::StatusRead { path, message } => write!(f, "{}: {message}", path.display()),
            Error::Locked { path } => write!(
                f,
                "{}: another chatstack-status check holds the lock; try again when it has finished",
                path.display()
            ),
            Error::Lock { path, source } => {
                write!(f, "{}: cannot take the lock: {}", path.display(), io_text(source))
            }
            Error::Listen { addr, source } => {
                write!(f, "cannot listen on {addr}: {}", io_text(source))
            }
            Error::UnknownService { name, known } => {
                let names: Vec<&str> = known.iter().map(String::as_str).collect();
                let same_case: Vec<&str> =
                    names.iter().copied().filter(|k| k.eq_ignore_ascii_case(name)).collect();
                if same_case.len() > 1 {
                    return write!(
                        f,
                        "service {name:?} is ambiguous: {} differ only in case; give the exact name",
                        same_case.join(", ")
                    );
                }
                write!(f, "unknown service {name:?}")?;
                if let Some(c) = crate::suggest::closest(name, &names) {
                    write!(f, " (did you mean {c:?}?)")?;
                }
                write!(f, ": expected one of {}", known.join(", "))
            }
            Error::Other(m) => write!(f, "{m}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::ConfigRead { source, .. }
            | Error::StatusWrite { source, .. }
            | Error::StateWrite { source, .. }
            | Error::StateRead { source, .. }
            | Error::Lock { source, .. }
            | Error::Listen { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// io::Error's text without the "(os error N)" noise.
fn io_text(e: &io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}
