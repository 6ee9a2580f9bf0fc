//! The configuration exactly as written in YAML.
//!
//! Every struct denies unknown keys: a typo must fail loudly rather than
//! silently disable a check. Values whose validity can be judged alone
//! (durations, regexes, unit names, URLs) are checked while deserializing, so
//! their errors carry the exact line and column of the value.

use super::duration::{Dur, Timeout};
use super::notifier::EventName;
pub use crate::probe::ExpectStatus;
use crate::probe::owned::{self, KindDef};
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::LazyLock;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub host: Option<Spanned<String>>,
    pub public_url: Option<HttpUrl>,
    pub interval: Option<Spanned<Dur>>,
    pub timeout: Option<Spanned<Dur>>,
    pub workers: Option<Spanned<usize>>,
    pub stale_after: Option<Dur>,
    pub status_file: Option<PathBuf>,
    pub state_file: Option<PathBuf>,
    pub listen: Option<Spanned<String>>,
    pub history: Option<Spanned<usize>>,
    /// The history database's path, or `off`.
    pub history_db: Option<Spanned<String>>,
    pub retention: Option<RawRetention>,
    pub www_dir: Option<PathBuf>,
    pub basic_auth: Option<RawBasicAuth>,
    pub tls: Option<RawTls>,
    pub cors_origins: Option<Vec<Spanned<String>>>,
    pub prom_file: Option<PathBuf>,
    pub heartbeat: Option<RawHeartbeat>,
    pub heal: Option<RawHeal>,
    pub diagnosis: Option<super::diagnosis::RawDiagnosis>,
    pub crash_loop: Option<super::diagnosis::RawCrashLoop>,
    pub flap: Option<super::diagnosis::RawFlap>,
    pub notify: Option<Vec<Spanned<RawNotifier>>>,
    pub services: Spanned<Vec<Spanned<RawService>>>,
    pub maintenance: Option<Vec<Spanned<super::maintenance::RawWindow>>>,
}

/// `retention:` of the history database.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRetention {
    pub results: Option<Spanned<Dur>>,
    pub rollups: Option<Spanned<Dur>>,
    pub incidents: Option<Spanned<Dur>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBasicAuth {
    pub user: String,
    pub password_file: PathBuf,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
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

/// A notifier's `type:`.
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum NotifierType {
    Webhook,
    Slack,
    Twilio,
    Alertmanager,
    Email,
    Telegram,
    Discord,
    Ntfy,
}

impl NotifierType {
    /// Every `type:` word, as serde spells them (the table test checks).
    pub const NAMES: &'static [&'static str] =
        &["webhook", "slack", "twilio", "alertmanager", "email", "telegram", "discord", "ntfy"];

    pub fn as_str(self) -> &'static str {
        match self {
            NotifierType::Webhook => "webhook",
            NotifierType::Slack => "slack",
            NotifierType::Twilio => "twilio",
            NotifierType::Alertmanager => "alertmanager",
            NotifierType::Email => "email",
            NotifierType::Telegram => "telegram",
            NotifierType::Discord => "discord",
            NotifierType::Ntfy => "ntfy",
        }
    }
}

/// Every key any notifier takes; `notifier.rs` says which kind takes which.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNotifier {
    #[serde(rename = "type")]
    pub kind: NotifierType,
    pub name: Option<String>,
    pub timeout: Option<Timeout>,
    pub services: Option<Vec<String>>,
    pub events: Option<Vec<EventName>>,
    pub url: Option<SecretUrl>,
    pub bearer_token_file: Option<PathBuf>,
    pub headers: Option<BTreeMap<String, String>>,
    pub account_sid: Option<String>,
    pub auth_token_file: Option<PathBuf>,
    pub from: Option<String>,
    pub to: Option<Vec<String>>,
    pub api_base: Option<HttpUrl>,
    pub urls: Option<Spanned<Vec<HttpUrl>>>,
    pub labels: Option<Spanned<BTreeMap<String, String>>>,
    pub resend: Option<Spanned<Dur>>,
    pub basic_auth: Option<RawBasicAuth>,
    pub smtp: Option<Spanned<RawSmtp>>,
    pub username: Option<String>,
    pub password_file: Option<PathBuf>,
    pub ca_file: Option<PathBuf>,
    pub bot_token_file: Option<PathBuf>,
    pub chat_id: Option<String>,
    pub token_file: Option<PathBuf>,
}

/// `smtp:` of an email notifier.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSmtp {
    pub host: Spanned<String>,
    pub port: Option<u16>,
    pub tls: Option<SmtpTls>,
}

/// How the email notifier secures its SMTP connection.
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS (refused if the server cannot).
    Starttls,
    /// TLS from the first byte (SMTPS, port 465).
    Implicit,
    /// No TLS at all: loopback hosts only.
    None,
}

impl SmtpTls {
    pub const NAMES: &'static [&'static str] = &["starttls", "implicit", "none"];
}

impl RawNotifier {
    /// The kind-specific keys present (the common ones are valid for all).
    pub fn present_keys(&self) -> Vec<&'static str> {
        [
            ("url", self.url.is_some()),
            ("bearer_token_file", self.bearer_token_file.is_some()),
            ("headers", self.headers.is_some()),
            ("account_sid", self.account_sid.is_some()),
            ("auth_token_file", self.auth_token_file.is_some()),
            ("from", self.from.is_some()),
            ("to", self.to.is_some()),
            ("api_base", self.api_base.is_some()),
            ("urls", self.urls.is_some()),
            ("labels", self.labels.is_some()),
            ("resend", self.resend.is_some()),
            ("basic_auth", self.basic_auth.is_some()),
            ("smtp", self.smtp.is_some()),
            ("username", self.username.is_some()),
            ("password_file", self.password_file.is_some()),
            ("ca_file", self.ca_file.is_some()),
            ("bot_token_file", self.bot_token_file.is_some()),
            ("chat_id", self.chat_id.is_some()),
            ("token_file", self.token_file.is_some()),
        ]
        .into_iter()
        .filter_map(|(k, set)| set.then_some(k))
        .collect()
    }
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
    /// `false`: no diagnosis is taken for its incidents.
    pub diagnosis: Option<bool>,
    pub crash_loop: Option<super::diagnosis::RawCrashLoop>,
    pub flap: Option<super::diagnosis::RawFlap>,
    /// `limits: {memory, cpu, for}` on the unit's figures.
    pub limits: Option<Spanned<super::limits::RawLimits>>,
    pub checks: Option<Vec<Spanned<RawCheck>>>,
}

/// A check's `type:`: the kinds written out here, or one that owns its keys
/// (`probe::owned`, listed in `probe::KINDS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckKind {
    Http,
    Tcp,
    Tls,
    Systemd,
    Process,
    Command,
    Push,
    Owned(&'static KindDef),
}

impl CheckKind {
    /// The kinds written out here, as their `type:` words.
    const BUILT_IN: &'static [(&'static str, CheckKind)] = &[
        ("http", CheckKind::Http),
        ("tcp", CheckKind::Tcp),
        ("tls", CheckKind::Tls),
        ("systemd", CheckKind::Systemd),
        ("process", CheckKind::Process),
        ("command", CheckKind::Command),
        ("push", CheckKind::Push),
    ];

    /// Every `type:` word (the table test checks them against serde's).
    pub fn names() -> &'static [&'static str] {
        static NAMES: LazyLock<Vec<&'static str>> = LazyLock::new(|| {
            let built_in = CheckKind::BUILT_IN.iter().map(|(n, _)| *n);
            built_in.chain(crate::probe::KINDS.iter().map(|d| d.name)).collect()
        });
        &NAMES
    }

    pub fn name(self) -> &'static str {
        match self {
            CheckKind::Owned(def) => def.name,
            other => CheckKind::BUILT_IN.iter().find(|(_, k)| *k == other).map_or("?", |(n, _)| n),
        }
    }
}

impl<'de> Deserialize<'de> for CheckKind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let word = String::deserialize(d)?;
        if let Some((_, k)) = CheckKind::BUILT_IN.iter().find(|(n, _)| *n == word) {
            return Ok(*k);
        }
        match owned::def(&word) {
            Some(def) => Ok(CheckKind::Owned(def)),
            None => Err(de::Error::unknown_variant(&word, CheckKind::names())),
        }
    }
}

/// Declares `RawCheck`: one `Option` per key, and a hand-written visitor
/// that reads them as serde's derive would (so errors stay located), and
/// keeps the keys of the kinds that own theirs (`probe::owned`) as written,
/// with their places, for the validator to type. An unknown key is an error.
macro_rules! raw_check {
    ($( $(#[$m:meta])* $key:literal => $field:ident: $ty:ty, )*) => {
        /// One entry of `checks:`. A flat struct rather than a tagged enum
        /// because serde buffers tagged enums, which would lose the YAML
        /// locations of errors.
        #[derive(Debug)]
        pub struct RawCheck {
            pub kind: CheckKind,
            $( $(#[$m])* pub $field: Option<$ty>, )*
            /// The keys of owned kinds, as written (key, value), in order.
            pub owned: Vec<(Spanned<String>, Spanned<serde_json::Value>)>,
        }

        impl RawCheck {
            /// Every key a check may have (serde's "expected one of").
            pub fn keys() -> &'static [&'static str] {
                static KEYS: LazyLock<Vec<&'static str>> = LazyLock::new(|| {
                    let mut keys = vec!["type", $($key),*];
                    for (k, _) in owned::all_keys() {
                        if !keys.contains(&k) {
                            keys.push(k);
                        }
                    }
                    keys
                });
                &KEYS
            }
        }

        impl<'de> Deserialize<'de> for RawCheck {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> Visitor<'de> for V {
                    type Value = RawCheck;
                    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                        f.write_str("struct RawCheck")
                    }
                    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawCheck, A::Error> {
                        let mut kind: Option<CheckKind> = None;
                        $( let mut $field: Option<$ty> = None; )*
                        let mut owned = Vec::new();
                        let mut seen: Vec<&'static str> = Vec::new();
                        while let Some(key) = map.next_key::<Spanned<String>>()? {
                            let Some(&name) = RawCheck::keys().iter().find(|k| **k == key.value) else {
                                return Err(de::Error::unknown_field(&key.value, RawCheck::keys()));
                            };
                            if seen.contains(&name) {
                                return Err(de::Error::duplicate_field(name));
                            }
                            seen.push(name);
                            match name {
                                "type" => kind = Some(map.next_value()?),
                                $( $key => $field = map.next_value::<Option<$ty>>()?, )*
                                _ => owned.push((key, map.next_value()?)),
                            }
                        }
                        let kind = kind.ok_or_else(|| de::Error::missing_field("type"))?;
                        Ok(RawCheck { kind, $($field,)* owned })
                    }
                }
                d.deserialize_struct("RawCheck", RawCheck::keys(), V)
            }
        }
    };
}

raw_check! {
    "timeout" => timeout: Timeout,
    "degraded_after" => degraded_after: Dur,
    // http
    "url" => url: HttpUrl,
    "method" => method: Method,
    "expect_status" => expect_status: ExpectStatus,
    "body_contains" => body_contains: String,
    "headers" => headers: BTreeMap<String, String>,
    "follow_redirects" => follow_redirects: bool,
    "body_regex" => body_regex: BodyRegex,
    "json" => json: Spanned<RawJson>,
    // tcp, tls
    "address" => address: PortOrAddress,
    // https (http), tls
    "cert_warn" => cert_warn: Spanned<Dur>,
    "cert_crit" => cert_crit: Spanned<Dur>,
    "ca_file" => ca_file: Spanned<PathBuf>,
    // tls
    "server_name" => server_name: ServerNameText,
    // systemd
    "unit" => unit: UnitName,
    // process
    "match" => pattern: Pattern,
    "min" => min: u32,
    "max" => max: u32,
    // command
    "argv" => argv: Argv,
    // push
    /// How often the job reports in.
    "period" => period: Spanned<Dur>,
    /// How late a report may be on top of `period`.
    "grace" => grace: Dur,
    /// A file whose first line is the token the HTTP push accepts as `?token=`.
    "token_file" => token_file: Spanned<PathBuf>,
}

impl RawCheck {
    /// The keys present that the check's type does not use.
    pub fn foreign_keys(&self) -> Vec<&'static str> {
        use CheckKind::*;
        let present: [(&'static str, bool, &[CheckKind]); 21] = [
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
            ("period", self.period.is_some(), &[Push]),
            ("grace", self.grace.is_some(), &[Push]),
            ("token_file", self.token_file.is_some(), &[Push]),
        ];
        let mut foreign: Vec<&'static str> = present
            .iter()
            .filter(|(_, set, kinds)| *set && !kinds.contains(&self.kind))
            .map(|(k, _, _)| *k)
            .collect();
        // An owned kind's keys belong to it alone.
        let own: &[(&str, owned::KeyType)] = match self.kind {
            Owned(def) => def.keys,
            Process => crate::probe::process::KEYS,
            _ => &[],
        };
        for (key, _) in &self.owned {
            if !own.iter().any(|(k, _)| *k == key.value)
                && let Some(&name) = RawCheck::keys().iter().find(|k| **k == key.value)
            {
                foreign.push(name);
            }
        }
        foreign
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
    "non-empty text",
    |s| if s.is_empty() { Err("expected non-empty text, found \"\"".to_string()) } else { Ok(s.to_string()) }
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
        match v.first() {
            None => Err(de::Error::custom(
                "expected [program, arg, ...] (no shell is used), found an empty list",
            )),
            Some(program) if program.is_empty() => Err(de::Error::custom(
                "expected [program, arg, ...] (no shell is used), found \"\" as the program",
            )),
            Some(_) => Ok(Argv(v)),
        }
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

fn status_code<E: de::Error>(v: u64) -> Result<u16, E> {
    match v {
        100..=599 => Ok(v as u16),
        _ => Err(E::custom(format!("invalid HTTP status {v}: expected 100-599"))),
    }
}

/// One code of an `expect_status` list, checked as it is read so that a
/// bad one is reported at its own line and column (not at the list's).
struct StatusCode(u16);

impl<'de> Deserialize<'de> for StatusCode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        status_code(u64::deserialize(d)?).map(StatusCode)
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
                while let Some(StatusCode(code)) = seq.next_element()? {
                    codes.push(code);
                }
                if codes.is_empty() {
                    return Err(de::Error::custom(
                        "expected at least one status code, found an empty list",
                    ));
                }
                Ok(ExpectStatus::Codes(codes))
            }
        }
        d.deserialize_any(V)
    }
}
