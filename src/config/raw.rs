//! The configuration exactly as written in YAML.
//!
//! Every struct denies unknown keys: a typo must fail loudly rather than
//! silently disable a check. Values whose validity can be judged alone
//! (durations, regexes, unit names, URLs) are checked while deserializing, so
//! their errors carry the exact line and column of the value.

use super::duration::{Dur, Timeout};
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub interval: Option<Spanned<Dur>>,
    pub timeout: Option<Spanned<Dur>>,
    pub workers: Option<Spanned<usize>>,
    pub stale_after: Option<Dur>,
    pub status_file: Option<PathBuf>,
    pub state_file: Option<PathBuf>,
    pub listen: Option<Spanned<String>>,
    pub history: Option<Spanned<usize>>,
    pub www_dir: Option<PathBuf>,
    pub basic_auth: Option<RawBasicAuth>,
    pub cors_origins: Option<Vec<String>>,
    pub prom_file: Option<PathBuf>,
    pub heartbeat: Option<RawHeartbeat>,
    pub heal: Option<RawHeal>,
    pub notify: Option<Vec<Spanned<RawNotifier>>>,
    pub services: Spanned<Vec<Spanned<RawService>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBasicAuth {
    pub user: String,
    pub password_file: PathBuf,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHeartbeat {
    pub url: SecretUrl,
    pub timeout: Option<Timeout>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHeal {
    pub enabled: Option<bool>,
    pub after_failures: Option<Spanned<u32>>,
    pub grace: Option<Dur>,
    pub max_restarts: Option<u32>,
    pub window: Option<Dur>,
    pub stable_after: Option<Dur>,
    pub reset_failed: Option<bool>,
    pub restart_command: Option<Spanned<Vec<String>>>,
    pub timeout: Option<Timeout>,
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum NotifierKind {
    Webhook,
    Slack,
    Twilio,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNotifier {
    #[serde(rename = "type")]
    pub kind: NotifierKind,
    pub name: Option<String>,
    pub url: Option<SecretUrl>,
    pub bearer_token_file: Option<PathBuf>,
    pub headers: Option<BTreeMap<String, String>>,
    pub timeout: Option<Timeout>,
    pub services: Option<Vec<String>>,
    pub events: Option<Vec<EventName>>,
    pub account_sid: Option<String>,
    pub auth_token_file: Option<PathBuf>,
    pub from: Option<String>,
    pub to: Option<Vec<String>>,
    pub api_base: Option<HttpUrl>,
}

/// The alert events a notifier can subscribe to.
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventName {
    Down,
    Up,
    Degraded,
    Reminder,
    Restart,
    HealSuspended,
    Test,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawService {
    pub name: Spanned<String>,
    pub critical: Option<bool>,
    pub url: Option<HttpUrl>,
    pub port: Option<PortOrAddress>,
    pub unit: Option<UnitName>,
    pub process: Option<NonEmpty>,
    pub depends_on: Option<Vec<Spanned<String>>>,
    pub confirm: Option<u32>,
    pub reminder: Option<Dur>,
    pub timeout: Option<Timeout>,
    pub checks: Option<Vec<Spanned<RawCheck>>>,
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum CheckKind {
    Http,
    Tcp,
    Tls,
    Systemd,
    Process,
    Command,
}

/// One entry of `checks:`. A flat struct rather than a tagged enum because
/// serde buffers tagged enums, which would lose the YAML locations of errors.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCheck {
    #[serde(rename = "type")]
    pub kind: CheckKind,
    pub timeout: Option<Timeout>,
    pub degraded_after: Option<Dur>,
    // http
    pub url: Option<HttpUrl>,
    pub method: Option<Method>,
    pub expect_status: Option<ExpectStatus>,
    pub body_contains: Option<String>,
    pub headers: Option<BTreeMap<String, String>>,
    pub follow_redirects: Option<bool>,
    pub body_regex: Option<BodyRegex>,
    pub json: Option<Spanned<RawJson>>,
    // tcp, tls
    pub address: Option<PortOrAddress>,
    // https (http), tls
    pub cert_warn: Option<Spanned<Dur>>,
    pub cert_crit: Option<Spanned<Dur>>,
    pub ca_file: Option<Spanned<PathBuf>>,
    // tls
    pub server_name: Option<ServerNameText>,
    // systemd
    pub unit: Option<UnitName>,
    // process
    #[serde(rename = "match")]
    pub pattern: Option<Pattern>,
    pub min: Option<u32>,
    pub max: Option<u32>,
    // command
    pub argv: Option<Argv>,
}

impl RawCheck {
    /// The keys present that the check's type does not use.
    pub fn foreign_keys(&self) -> Vec<&'static str> {
        use CheckKind::*;
        let present: [(&'static str, bool, &[CheckKind]); 18] = [
            ("url", self.url.is_some(), &[Http]),
            ("method", self.method.is_some(), &[Http]),
            ("expect_status", self.expect_status.is_some(), &[Http]),
            ("body_contains", self.body_contains.is_some(), &[Http]),
            ("body_regex", self.body_regex.is_some(), &[Http]),
            ("json", self.json.is_some(), &[Http]),
            ("headers", self.headers.is_some(), &[Http]),
            ("follow_redirects", self.follow_redirects.is_some(), &[Http]),
            ("address", self.address.is_some(), &[Tcp, Tls]),
            ("cert_warn", self.cert_warn.is_some(), &[Http, Tls]),
            ("cert_crit", self.cert_crit.is_some(), &[Http, Tls]),
            ("ca_file", self.ca_file.is_some(), &[Http, Tls]),
            ("server_name", self.server_name.is_some(), &[Tls]),
            ("unit", self.unit.is_some(), &[Systemd]),
            ("match", self.pattern.is_some(), &[Process]),
            ("min", self.min.is_some(), &[Process]),
            ("max", self.max.is_some(), &[Process]),
            ("argv", self.argv.is_some(), &[Command]),
        ];
        present
            .iter()
            .filter(|(_, set, kinds)| *set && !kinds.contains(&self.kind))
            .map(|(k, _, _)| *k)
            .collect()
    }
}

/// Deserializes from a string and runs a validation that produces the value,
/// so a bad value is reported at its own line and column.
macro_rules! validated_string {
    ($(#[$m:meta])* $name:ident($inner:ty), $expecting:literal, $check:expr) => {
        $(#[$m])*
        #[derive(Debug, Clone)]
        pub struct $name(pub $inner);
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                let check: fn(&str) -> Result<$inner, String> = $check;
                check(&s).map($name).map_err(de::Error::custom)
            }
        }
        impl $name {
            #[allow(dead_code)]
            const EXPECTING: &'static str = $expecting;
        }
    };
}

validated_string!(
    /// An `http://` or `https://` URL with a host.
    HttpUrl(String),
    "an http:// or https:// URL",
    |s| {
        let uri: ureq::http::Uri = s.parse().map_err(|e| format!("invalid URL {s:?}: {e}"))?;
        match (uri.scheme_str(), uri.host()) {
            (Some("http" | "https"), Some(h)) if !h.is_empty() => Ok(s.to_string()),
            _ => Err(format!("invalid URL {s:?}: expected an http:// or https:// URL with a host")),
        }
    }
);

validated_string!(
    /// A notifier's or the heartbeat's URL: like `HttpUrl`, but a secret (a
    /// Slack or healthchecks URL is its own credential), so an error never
    /// quotes it.
    SecretUrl(String),
    "an http:// or https:// URL",
    |s| {
        let uri: ureq::http::Uri = s.parse().map_err(|_| {
            "invalid URL (not quoted: it is a secret): expected an http:// or https:// URL"
                .to_string()
        })?;
        match (uri.scheme_str(), uri.host()) {
            (Some("http" | "https"), Some(h)) if !h.is_empty() => Ok(s.to_string()),
            _ => Err("invalid URL (not quoted: it is a secret): expected an http:// or https:// URL with a host".to_string()),
        }
    }
);

validated_string!(
    /// A systemd unit name, safe to pass as one argv element.
    UnitName(String),
    "a unit name",
    |s| {
        let ok = !s.is_empty()
            && !s.starts_with('-')
            && s.len() <= 256
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || b":_.@-".contains(&b));
        if ok {
            Ok(s.to_string())
        } else {
            Err(format!(
                "invalid unit name {s:?}: expected letters, digits and :_.@- only, not starting with '-'"
            ))
        }
    }
);

validated_string!(
    /// A regular expression over a process's full command line.
    Pattern(regex::Regex),
    "a regular expression",
    |s| {
        regex::RegexBuilder::new(s)
            .size_limit(1 << 20)
            .build()
            .map_err(|e| format!("invalid regex {s:?}: {}", e.to_string().replace('\n', " ")))
    }
);

validated_string!(
    /// A regular expression over an HTTP body (bytes: a body need not be UTF-8).
    BodyRegex(regex::bytes::Regex),
    "a regular expression",
    |s| {
        regex::bytes::RegexBuilder::new(s)
            .size_limit(1 << 20)
            .build()
            .map_err(|e| format!("invalid regex {s:?}: {}", e.to_string().replace('\n', " ")))
    }
);

validated_string!(
    /// The name a `tls` check sends as SNI and matches against the certificate.
    ServerNameText(String),
    "a DNS name or an IP address",
    |s| crate::probe::certs::server_name(s).map(|_| s.to_string())
);

validated_string!(
    /// A non-empty string.
    NonEmpty(String),
    "a non-empty string",
    |s| if s.is_empty() { Err("expected a non-empty string".to_string()) } else { Ok(s.to_string()) }
);

validated_string!(
    /// An HTTP method token.
    Method(String),
    "an HTTP method",
    |s| {
        let up = s.to_ascii_uppercase();
        match up.as_str() {
            "GET" | "HEAD" | "POST" | "PUT" | "DELETE" | "OPTIONS" | "PATCH" => Ok(up),
            _ => Err(format!("invalid method {s:?}: expected GET, HEAD, POST, PUT, DELETE, OPTIONS or PATCH")),
        }
    }
);

/// `json:` as written: pointers and values, each with its location, in
/// order. `config::Validator` parses them, so a bad pointer is reported at
/// its key and a bad operator or regex at its value, all of them at once.
#[derive(Debug)]
pub struct RawJson(pub Vec<(Spanned<String>, Spanned<serde_json::Value>)>);

impl<'de> Deserialize<'de> for RawJson {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawJson;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a mapping of JSON pointers to values, like \"/status\": ok")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawJson, A::Error> {
                let mut out = Vec::new();
                while let Some(key) = map.next_key::<Spanned<String>>()? {
                    out.push((key, map.next_value()?));
                }
                Ok(RawJson(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// A command line for a plugin: a non-empty list, run without a shell.
#[derive(Debug, Clone)]
pub struct Argv(pub Vec<String>);

impl<'de> Deserialize<'de> for Argv {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Vec::<String>::deserialize(d)?;
        if v.is_empty() || v[0].is_empty() {
            return Err(de::Error::custom(
                "argv must be a non-empty list: [program, arg, ...] (no shell is used)",
            ));
        }
        Ok(Argv(v))
    }
}

/// `port: 5000` (on 127.0.0.1) or `"host:port"`.
#[derive(Debug, Clone)]
pub struct PortOrAddress(pub String);

impl<'de> Deserialize<'de> for PortOrAddress {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = PortOrAddress;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a port number or \"host:port\"")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<PortOrAddress, E> {
                match u16::try_from(v) {
                    Ok(p) if p > 0 => Ok(PortOrAddress(format!("127.0.0.1:{p}"))),
                    _ => Err(E::custom(format!("invalid port {v}: expected 1-65535"))),
                }
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<PortOrAddress, E> {
                Err(E::custom(format!("invalid port {v}: expected 1-65535")))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<PortOrAddress, E> {
                if let Ok(p) = v.parse::<u64>() {
                    return self.visit_u64(p);
                }
                let bad = || E::custom(format!("invalid address {v:?}: expected \"host:port\""));
                let (host, port) = v.rsplit_once(':').ok_or_else(bad)?;
                let host = host.trim_start_matches('[').trim_end_matches(']');
                match port.parse::<u16>() {
                    Ok(p) if p > 0 && !host.is_empty() && !host.contains(char::is_whitespace) => {
                        Ok(PortOrAddress(v.to_string()))
                    }
                    _ => Err(bad()),
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// Which HTTP status codes count as up: `200`, `[200, 204]`, or `"2xx"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExpectStatus {
    Codes(Vec<u16>),
    /// The hundreds digit: `2` for "2xx".
    Class(u16),
}

impl ExpectStatus {
    pub fn matches(&self, code: u16) -> bool {
        match self {
            ExpectStatus::Codes(c) => c.contains(&code),
            ExpectStatus::Class(h) => code / 100 == *h,
        }
    }
}

impl fmt::Display for ExpectStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExpectStatus::Class(h) => write!(f, "{h}xx"),
            ExpectStatus::Codes(c) => {
                let s: Vec<String> = c.iter().map(u16::to_string).collect();
                f.write_str(&s.join(" or "))
            }
        }
    }
}

fn status_code<E: de::Error>(v: u64) -> Result<u16, E> {
    match v {
        100..=599 => Ok(v as u16),
        _ => Err(E::custom(format!("invalid HTTP status {v}: expected 100-599"))),
    }
}

impl<'de> Deserialize<'de> for ExpectStatus {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ExpectStatus;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a status code, a list of codes, or a class like \"2xx\"")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ExpectStatus, E> {
                Ok(ExpectStatus::Codes(vec![status_code(v)?]))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ExpectStatus, E> {
                Err(E::custom(format!("invalid HTTP status {v}: expected 100-599")))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ExpectStatus, E> {
                let t = v.trim().to_ascii_lowercase();
                if let Ok(n) = t.parse::<u64>() {
                    return self.visit_u64(n);
                }
                match t.as_bytes() {
                    [h @ b'1'..=b'5', b'x', b'x'] => Ok(ExpectStatus::Class(u16::from(h - b'0'))),
                    _ => Err(E::custom(format!(
                        "invalid expect_status {v:?}: expected a code like 200, a list, or a class like \"2xx\""
                    ))),
                }
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ExpectStatus, A::Error> {
                let mut codes = Vec::new();
                while let Some(v) = seq.next_element::<u64>()? {
                    codes.push(status_code(v)?);
                }
                if codes.is_empty() {
                    return Err(de::Error::custom(
                        "expect_status list is empty: expected at least one code",
                    ));
                }
                Ok(ExpectStatus::Codes(codes))
            }
        }
        d.deserialize_any(V)
    }
}
