//! Every key of the config file and what it takes, in the words a user reads.
//!
//! One row per key, by path: `services[].checks[].timeout`, where `[]` is any
//! entry of a list and `*` any key of a free-form mapping (`headers`). Type
//! errors take their "expected …" from here (see `errors.rs`): the YAML crate
//! only knows the Rust type, and sometimes not even that.
//!
//! A key added to `raw.rs` needs its row here, and the table test in
//! `errors/tests.rs` says so: it checks the rows under every struct against
//! the keys serde knows, and feeds every row wrong values and a right one.

use super::notifier::EventName;
use super::raw::{CheckKind, NotifierType, SmtpTls};
use crate::probe::owned::{self, KeyType};
use std::sync::LazyLock;

/// What a key takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `u32`, `usize`: 0, 1, 2 …
    Whole,
    Bool,
    /// `Dur`, `Timeout`: `500ms`, `5s`, `2m`, `1h`, `1d` or bare seconds.
    Duration,
    /// Any scalar, read as text.
    Text,
    Path,
    Url,
    /// A URL that is its own credential: a wrong value is never quoted.
    SecretUrl,
    Unit,
    Regex,
    Method,
    /// `port: 5000` or `"host:port"`.
    Address,
    /// `expect_status`: a code, a list of codes, or a class.
    Status,
    /// One entry of an `expect_status` list.
    StatusCode,
    /// One of these words (a serde enum).
    OneOf(&'static [&'static str]),
    /// A list; its entries have their own row (`key[]`).
    List,
    /// A struct of `raw.rs`: its keys have their own rows.
    Struct,
    /// HTTP headers: any `Name: value` (values may hold tokens, so a wrong
    /// value is never quoted).
    Headers,
    /// A TLS server name: a DNS name or an IP address.
    ServerName,
    /// `json:`: JSON pointers to what must hold there (any value: the
    /// validator judges each, at its own line and column).
    Pointers,
    /// A check's `type:`: one of `CheckKind::names()`.
    CheckType,
    /// A key of a kind that owns its keys (`probe::owned`): the validator
    /// types it, at its value.
    Owned(KeyType),
}

impl Kind {
    /// "expected …": plain English, never a Rust type.
    pub fn expected(self) -> String {
        match self {
            Kind::Whole => "a whole number (0 or more)".into(),
            Kind::Bool => "true or false".into(),
            Kind::Duration => "a duration like 500ms, 5s, 2m, 1h or 1d".into(),
            Kind::Text => "text".into(),
            Kind::Path => "a file path".into(),
            Kind::Url | Kind::SecretUrl => "an http:// or https:// URL".into(),
            Kind::Unit => "a systemd unit name like nginx.service".into(),
            Kind::Regex => "a regular expression".into(),
            Kind::Method => "an HTTP method like GET or HEAD".into(),
            Kind::Address => "a port number or \"host:port\"".into(),
            Kind::Status => {
                "a status code like 200, a list of codes, or a class like \"2xx\"".into()
            }
            Kind::StatusCode => "a status code like 200".into(),
            Kind::OneOf(words) => one_of(words),
            Kind::List => "a list".into(),
            Kind::Struct => "a mapping of `key: value` lines".into(),
            Kind::Headers => "a mapping of `Header-Name: value` lines".into(),
            Kind::ServerName => "a DNS name or an IP address".into(),
            Kind::Pointers => "a mapping of JSON pointers to values, like \"/status\": ok".into(),
            Kind::CheckType => one_of(CheckKind::names()),
            Kind::Owned(t) => t.expected(),
        }
    }

    /// A wrong value of this key is described, never quoted.
    pub fn is_secret(self) -> bool {
        matches!(self, Kind::SecretUrl | Kind::Headers)
    }

    /// Holds other keys or entries (which have rows of their own).
    pub fn is_container(self) -> bool {
        matches!(self, Kind::List | Kind::Struct | Kind::Headers)
    }
}

/// "one of a, b or c".
pub fn one_of(words: &[&str]) -> String {
    match words {
        [] => "nothing at all".into(),
        [one] => one.to_string(),
        [init @ .., last] => format!("one of {} or {last}", init.join(", ")),
    }
}

use Kind::*;

const NOTIFIER_TYPES: Kind = OneOf(NotifierType::NAMES);
const CHECK_TYPES: Kind = CheckType;
const EVENTS: Kind = OneOf(EventName::NAMES);

/// Every key, by path, in the order of `raw.rs`.
pub const KEYS: &[(&str, Kind)] = &[
    ("host", Text),
    ("public_url", Url),
    ("history_db", Text),
    ("retention", Struct),
    ("retention.results", Duration),
    ("retention.rollups", Duration),
    ("retention.incidents", Duration),
    ("tls", Struct),
    ("tls.cert_file", Path),
    ("tls.key_file", Path),
    ("interval", Duration),
    ("timeout", Duration),
    ("workers", Whole),
    ("stale_after", Duration),
    ("status_file", Path),
    ("state_file", Path),
    ("listen", Text),
    ("history", Whole),
    ("www_dir", Path),
    ("basic_auth", Struct),
    ("basic_auth.user", Text),
    ("basic_auth.password_file", Path),
    ("cors_origins", List),
    ("cors_origins[]", Text),
    ("prom_file", Path),
    ("heartbeat", Struct),
    ("heartbeat.url", SecretUrl),
    ("heartbeat.timeout", Duration),
    ("heal", Struct),
    ("heal.enabled", Bool),
    ("heal.after_failures", Whole),
    ("heal.grace", Duration),
    ("heal.max_restarts", Whole),
    ("heal.window", Duration),
    ("heal.stable_after", Duration),
    ("heal.reset_failed", Bool),
    ("heal.restart_command", List),
    ("heal.restart_command[]", Text),
    ("heal.timeout", Duration),
    ("diagnosis", Struct),
    ("diagnosis.journal_lines", Whole),
    ("diagnosis.redact", List),
    ("diagnosis.redact[]", Regex),
    ("crash_loop", Struct),
    ("crash_loop.restarts", Whole),
    ("crash_loop.within", Duration),
    ("flap", Struct),
    ("flap.changes", Whole),
    ("flap.window", Whole),
    ("notify", List),
    ("notify[]", Struct),
    ("notify[].type", NOTIFIER_TYPES),
    ("notify[].name", Text),
    ("notify[].timeout", Duration),
    ("notify[].services", List),
    ("notify[].services[]", Text),
    ("notify[].events", List),
    ("notify[].events[]", EVENTS),
    ("notify[].url", SecretUrl),
    ("notify[].bearer_token_file", Path),
    ("notify[].headers", Headers),
    ("notify[].headers.*", Text),
    ("notify[].account_sid", Text),
    ("notify[].auth_token_file", Path),
    ("notify[].from", Text),
    ("notify[].to", List),
    ("notify[].to[]", Text),
    ("notify[].api_base", Url),
    ("notify[].urls", List),
    ("notify[].urls[]", Url),
    ("notify[].labels", Headers),
    ("notify[].labels.*", Text),
    ("notify[].resend", Duration),
    ("notify[].basic_auth", Struct),
    ("notify[].basic_auth.user", Text),
    ("notify[].basic_auth.password_file", Path),
    ("notify[].smtp", Struct),
    ("notify[].smtp.host", Text),
    ("notify[].smtp.port", Whole),
    ("notify[].smtp.tls", OneOf(SmtpTls::NAMES)),
    ("notify[].username", Text),
    ("notify[].password_file", Path),
    ("notify[].ca_file", Path),
    ("notify[].bot_token_file", Path),
    ("notify[].chat_id", Text),
    ("notify[].token_file", Path),
    ("maintenance", List),
    ("maintenance[]", Struct),
    ("maintenance[].name", Text),
    ("maintenance[].every", List),
    ("maintenance[].every[]", Text),
    ("maintenance[].start", Text),
    ("maintenance[].duration", Duration),
    ("maintenance[].timezone", Text),
    ("maintenance[].services", List),
    ("maintenance[].services[]", Text),
    ("services", List),
    ("services[]", Struct),
    ("services[].name", Text),
    ("services[].critical", Bool),
    ("services[].url", Url),
    ("services[].port", Address),
    ("services[].unit", Unit),
    ("services[].process", Text),
    ("services[].depends_on", List),
    ("services[].depends_on[]", Text),
    ("services[].confirm", Whole),
    ("services[].reminder", Duration),
    ("services[].timeout", Duration),
    ("services[].diagnosis", Bool),
    ("services[].crash_loop", Struct),
    ("services[].crash_loop.restarts", Whole),
    ("services[].crash_loop.within", Duration),
    ("services[].flap", Struct),
    ("services[].flap.changes", Whole),
    ("services[].flap.window", Whole),
    ("services[].limits", Struct),
    ("services[].limits.memory", Owned(KeyType::Size)),
    ("services[].limits.cpu", Owned(KeyType::Number)),
    ("services[].limits.for", Owned(KeyType::Count)),
    ("services[].checks", List),
    ("services[].checks[]", Struct),
    ("services[].checks[].type", CHECK_TYPES),
    ("services[].checks[].timeout", Duration),
    ("services[].checks[].degraded_after", Duration),
    ("services[].checks[].url", Url),
    ("services[].checks[].method", Method),
    ("services[].checks[].expect_status", Status),
    ("services[].checks[].expect_status[]", StatusCode),
    ("services[].checks[].body_contains", Text),
    ("services[].checks[].body_regex", Regex),
    ("services[].checks[].json", Pointers),
    ("services[].checks[].headers", Headers),
    ("services[].checks[].headers.*", Text),
    ("services[].checks[].follow_redirects", Bool),
    ("services[].checks[].address", Address),
    ("services[].checks[].cert_warn", Duration),
    ("services[].checks[].cert_crit", Duration),
    ("services[].checks[].ca_file", Path),
    ("services[].checks[].server_name", ServerName),
    ("services[].checks[].unit", Unit),
    ("services[].checks[].match", Regex),
    ("services[].checks[].min", Whole),
    ("services[].checks[].max", Whole),
    ("services[].checks[].argv", List),
    ("services[].checks[].argv[]", Text),
    ("services[].checks[].period", Duration),
    ("services[].checks[].grace", Duration),
    ("services[].checks[].token_file", Path),
];

/// Every row: `KEYS`, then the keys of the kinds that own theirs
/// (`services[].checks[].KEY`, from `probe::KINDS`).
pub fn rows() -> &'static [(&'static str, Kind)] {
    static ROWS: LazyLock<Vec<(&'static str, Kind)>> = LazyLock::new(|| {
        let mut rows = KEYS.to_vec();
        for (key, t) in owned::all_keys() {
            let path: &'static str =
                Box::leak(format!("services[].checks[].{key}").into_boxed_str());
            rows.push((path, Owned(t)));
        }
        rows
    });
    &ROWS
}

/// One step of a path into the document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seg {
    Key(String),
    Index(usize),
}

/// The row of a concrete path (`services[1].checks[0].timeout`), if any.
pub fn lookup(path: &[Seg]) -> Option<Kind> {
    rows().iter().find(|(pattern, _)| matches(pattern, path)).map(|(_, kind)| *kind)
}

fn matches(pattern: &str, path: &[Seg]) -> bool {
    let mut rest = path;
    for part in pattern.split('.') {
        let (key, lists) = match part.find("[]") {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        match rest.split_first() {
            Some((Seg::Key(k), tail)) if key == "*" || key == k => rest = tail,
            _ => return false,
        }
        for _ in 0..lists.len() / 2 {
            match rest.split_first() {
                Some((Seg::Index(_), tail)) => rest = tail,
                _ => return false,
            }
        }
    }
    rest.is_empty()
}

/// `services[1].checks[0].timeout`, as messages show a path.
pub fn display(path: &[Seg]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            Seg::Index(i) => out.push_str(&format!("[{i}]")),
            Seg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                let plain =
                    !k.is_empty() && k.chars().all(|c| c.is_alphanumeric() || c == '_' || c == '-');
                if plain {
                    out.push_str(k);
                } else {
                    out.push_str(&format!("{:?}", cut(k)));
                }
            }
        }
    }
    out
}

/// Long text shortened for a one-line message.
pub fn cut(text: &str) -> String {
    const MAX_CHARS: usize = 40;
    if text.chars().count() <= MAX_CHARS {
        return text.to_string();
    }
    let mut short: String = text.chars().take(MAX_CHARS - 1).collect();
    short.push('…');
    short
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(s: &[&str]) -> Vec<Seg> {
        s.iter()
            .map(|p| match p.parse::<usize>() {
                Ok(i) => Seg::Index(i),
                Err(_) => Seg::Key(p.to_string()),
            })
            .collect()
    }

    #[test]
    fn paths_find_their_row() {
        let p = path(&["services", "1", "checks", "0", "timeout"]);
        assert_eq!(lookup(&p), Some(Duration));
        assert_eq!(display(&p), "services[1].checks[0].timeout");
        assert_eq!(lookup(&path(&["services", "1"])), Some(Struct));
        assert_eq!(lookup(&path(&["services"])), Some(List));
        assert_eq!(lookup(&path(&["notify", "0", "headers", "X-Any"])), Some(Text));
        assert_eq!(lookup(&path(&["services", "timeout"])), None);
        assert_eq!(lookup(&path(&["services", "0", "nope"])), None);
        assert_eq!(lookup(&path(&["heal", "enabled", "0"])), None);
        assert_eq!(lookup(&[]), None);
        assert_eq!(display(&path(&["headers", "a b"])), "headers.\"a b\"");
    }

    #[test]
    fn every_row_is_unique_and_its_parent_has_a_row() {
        let rows = rows();
        for (i, (p, _)) in rows.iter().enumerate() {
            assert!(!rows[..i].iter().any(|(q, _)| q == p), "{p} twice");
            let parent = p.strip_suffix("[]").or_else(|| p.rsplit_once('.').map(|(a, _)| a));
            if let Some(parent) = parent {
                let kind = rows.iter().find(|(q, _)| *q == parent).map(|(_, k)| *k);
                let holds = |k: Kind| k.is_container() || k == Status;
                assert!(kind.is_some_and(holds), "{p}: parent {parent} has no row");
            }
        }
    }

    #[test]
    fn long_text_is_cut() {
        assert_eq!(cut("short"), "short");
        let long = "x".repeat(100);
        assert_eq!(cut(&long).chars().count(), 40);
        assert!(cut(&long).ends_with('…'));
        assert_eq!(one_of(&["a", "b", "c"]), "one of a, b or c");
    }
}
