//! The keys of "the why": `diagnosis:` (journal lines, redaction),
//! `crash_loop:` and `flap:` — top-level, and per service (`diagnosis:
//! false`, and `crash_loop:`/`flap:` overriding the top-level values key by
//! key).

use super::Validator;
use super::duration::Dur;
use super::raw::Pattern;
use serde::Deserialize;
use serde_saphyr::{Location, Spanned};
use std::time::Duration;

/// The most journal lines a diagnosis may ask for.
pub const MAX_JOURNAL_LINES: usize = 200;

/// What redacts a diagnosis when `diagnosis.redact` is not set: `key=value`
/// and `key: value` for password, passwd, secret, token and api_key/api-key
/// (also inside longer names: `db_password=`, `access_token:`), and
/// `Authorization:` headers to the end of their line.
pub const DEFAULT_REDACT: &[&str] = &[
    r#"(?i)(password|passwd|secret|token|api[_-]key)\s*[=:]\s*("[^"]*"|'[^']*'|[^\s,;&"']+)"#,
    r"(?i)authorization\s*:\s*[^\r\n]*",
];

/// `diagnosis:` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDiagnosis {
    pub journal_lines: Option<Spanned<usize>>,
    pub redact: Option<Vec<Pattern>>,
}

/// `crash_loop:` as written (top-level or per service).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCrashLoop {
    pub restarts: Option<Spanned<u32>>,
    pub within: Option<Dur>,
}

/// `flap:` as written (top-level or per service).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFlap {
    pub changes: Option<Spanned<u32>>,
    pub window: Option<Spanned<u32>>,
}

/// How an incident's diagnosis is taken.
#[derive(Debug, Clone)]
pub struct DiagnosisSettings {
    /// The unit's last journal lines kept (0: journalctl is not run).
    pub journal_lines: usize,
    /// Every match in every text of a diagnosis becomes `[redacted]`.
    pub redact: Vec<regex::Regex>,
}

impl Default for DiagnosisSettings {
    fn default() -> Self {
        DiagnosisSettings {
            journal_lines: 20,
            redact: DEFAULT_REDACT.iter().filter_map(|p| regex::Regex::new(p).ok()).collect(),
        }
    }
}

/// A unit restarted by systemd itself at least `restarts` times within
/// `within` (our own restarts not counted) is in a crash loop: down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CrashLoop {
    pub restarts: u32,
    pub within: Duration,
}

impl Default for CrashLoop {
    fn default() -> Self {
        CrashLoop { restarts: 3, within: Duration::from_secs(600) }
    }
}

/// A service whose status changed at least `changes` times within its last
/// `window` results is flapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flap {
    pub changes: u32,
    pub window: u32,
}

impl Default for Flap {
    fn default() -> Self {
        Flap { changes: 5, window: 20 }
    }
}

impl Validator<'_> {
    pub(super) fn diagnosis(&mut self, raw: Option<RawDiagnosis>) -> DiagnosisSettings {
        let d = DiagnosisSettings::default();
        let Some(r) = raw else { return d };
        let journal_lines = match r.journal_lines {
            Some(n) if n.value > MAX_JOURNAL_LINES => {
                self.at(
                    &n.referenced,
                    format!(
                        "diagnosis.journal_lines: expected at most {MAX_JOURNAL_LINES}, found {}",
                        n.value
                    ),
                );
                d.journal_lines
            }
            Some(n) => n.value,
            None => d.journal_lines,
        };
        let redact = match r.redact {
            Some(list) => list.into_iter().map(|p| p.0).collect(),
            None => d.redact,
        };
        DiagnosisSettings { journal_lines, redact }
    }

    pub(super) fn crash_loop(&mut self, raw: Option<RawCrashLoop>, base: CrashLoop) -> CrashLoop {
        let Some(r) = raw else { return base };
        let restarts = match r.restarts {
            Some(n) if n.value == 0 => {
                self.at(&n.referenced, "crash_loop.restarts must be at least 1");
                base.restarts
            }
            Some(n) => n.value,
            None => base.restarts,
        };
        let within = r.within.map_or(base.within, |d| d.0);
        CrashLoop { restarts, within }
    }

    pub(super) fn flap(&mut self, raw: Option<RawFlap>, base: Flap, at: &Location) -> Flap {
        let Some(r) = raw else { return base };
        let changes = r.changes.as_ref().map_or(base.changes, |c| c.value);
        let window = r.window.as_ref().map_or(base.window, |w| w.value);
        let loc = r.changes.as_ref().or(r.window.as_ref()).map_or(*at, |s| s.referenced);
        if changes == 0 || window < 2 || changes >= window {
            self.at(
                &loc,
                format!("flap: expected 1 <= changes < window (a window of n results holds at most n - 1 changes), found changes {changes}, window {window}"),
            );
            return base;
        }
        Flap { changes, window }
    }
}
