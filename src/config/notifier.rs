//! Notifiers as configured: what every kind shares (name, timeout,
//! filters) and one struct per kind with exactly the keys it uses.
//!
//! The YAML side is one flat `raw::RawNotifier` (serde's tagged enums would
//! lose the locations of errors); `KEYS` says which of its keys each kind
//! takes, so a key given to the wrong kind is one uniform, located error.

use super::Validator;
use super::raw::{NotifierType, RawNotifier};
use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;
use std::path::PathBuf;
use std::time::Duration;

/// The alert events a notifier can subscribe to.
#[derive(Debug, Deserialize, Serialize, Clone, Copy, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum EventName {
    Down,
    Up,
    Degraded,
    Reminder,
    Restart,
    HealSuspended,
    Test,
    /// The service's status keeps changing (`flap`): one event instead of each transition.
    Flapping,
    /// It kept one status for `flap.window` results.
    FlappingEnded,
}

impl EventName {
    /// Every event word, as serde spells them (the table test checks).
    pub const NAMES: &'static [&'static str] = &[
        "down",
        "up",
        "degraded",
        "reminder",
        "restart",
        "heal_suspended",
        "test",
        "flapping",
        "flapping_ended",
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventName::Down => "down",
            EventName::Up => "up",
            EventName::Degraded => "degraded",
            EventName::Reminder => "reminder",
            EventName::Restart => "restart",
            EventName::HealSuspended => "heal_suspended",
            EventName::Test => "test",
            EventName::Flapping => "flapping",
            EventName::FlappingEnded => "flapping_ended",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Notifier {
    /// Label for logs and metrics: `name:` or `<type>-<index>`.
    pub name: String,
    /// Bound on one delivery attempt.
    pub timeout: Duration,
    /// Only these services (empty: all).
    pub services: Vec<String>,
    /// Only these events (empty: all).
    pub events: Vec<EventName>,
    pub kind: NotifierKind,
}

/// One variant per kind of notifier, each with its own settings.
#[derive(Debug, Clone)]
pub enum NotifierKind {
    Webhook(Webhook),
    Slack(Slack),
    Twilio(Twilio),
    Alertmanager(Alertmanager),
}

impl NotifierKind {
    /// The `type:` as written in the config.
    pub fn name(&self) -> &'static str {
        match self {
            NotifierKind::Webhook(_) => "webhook",
            NotifierKind::Slack(_) => "slack",
            NotifierKind::Twilio(_) => "twilio",
            NotifierKind::Alertmanager(_) => "alertmanager",
        }
    }
}

/// Generic JSON webhook: the event as JSON.
#[derive(Debug, Clone)]
pub struct Webhook {
    pub url: String,
    /// `Authorization: Bearer <token>` from this file, read when sending.
    pub bearer_token_file: Option<PathBuf>,
    pub headers: Vec<(String, String)>,
}

/// Slack incoming webhook: `{"text": ...}`.
#[derive(Debug, Clone)]
pub struct Slack {
    pub url: String,
    pub headers: Vec<(String, String)>,
}

/// Twilio SMS: one message per recipient.
#[derive(Debug, Clone)]
pub struct Twilio {
    pub account_sid: String,
    pub auth_token_file: PathBuf,
    pub from: String,
    pub to: Vec<String>,
    pub api_base: String,
}

/// Prometheus Alertmanager (`/api/v2/alerts`): level-triggered, one alert
/// per service down or with healing suspended, re-posted while firing.
#[derive(Debug, Clone)]
pub struct Alertmanager {
    /// Every member of an HA pair gets every alert.
    pub urls: Vec<String>,
    /// Added to every alert (never one of the four the product sets).
    pub labels: Vec<(String, String)>,
    /// Firing alerts are re-posted this often (Alertmanager resolves an
    /// alert not re-sent within its `resolve_timeout`).
    pub resend: Duration,
    pub bearer_token_file: Option<PathBuf>,
    /// `user` and the file holding the password.
    pub basic_auth: Option<(String, PathBuf)>,
}

/// The labels every alert carries; configured `labels` may not replace them.
pub const ALERT_LABELS: [&str; 4] = ["alertname", "service", "host", "severity"];

/// Which keys of `RawNotifier` each kind takes, besides the common ones
/// (`type`, `name`, `timeout`, `services`, `events`).
fn keys(t: NotifierType) -> &'static [&'static str] {
    match t {
        NotifierType::Webhook => &["url", "bearer_token_file", "headers"],
        NotifierType::Slack => &["url", "headers"],
        NotifierType::Twilio => &["account_sid", "auth_token_file", "from", "to", "api_base"],
        NotifierType::Alertmanager => {
            &["urls", "labels", "resend", "bearer_token_file", "basic_auth"]
        }
    }
}

impl Validator<'_> {
    pub(super) fn notifier(&mut self, index: usize, n: Spanned<RawNotifier>) -> Option<Notifier> {
        let loc = n.referenced;
        let r = n.value;
        let kind = r.kind.as_str();
        let before = self.problems.len();
        for key in r.present_keys() {
            if !keys(r.kind).contains(&key) {
                self.at(&loc, format!("`{key}` is not valid for a {kind} notifier"));
            }
        }
        let need = |this: &mut Self, ok: bool, key: &str| {
            if !ok {
                this.at(&loc, format!("notifier of type {kind} needs `{key}`"));
            }
        };
        let headers = r.headers.clone().unwrap_or_default().into_iter().collect::<Vec<_>>();
        let built = match r.kind {
            NotifierType::Webhook => {
                need(self, r.url.is_some(), "url");
                r.url.clone().map(|u| {
                    NotifierKind::Webhook(Webhook {
                        url: u.0,
                        bearer_token_file: r.bearer_token_file.clone(),
                        headers,
                    })
                })
            }
            NotifierType::Slack => {
                need(self, r.url.is_some(), "url");
                r.url.clone().map(|u| NotifierKind::Slack(Slack { url: u.0, headers }))
            }
            NotifierType::Twilio => {
                need(self, r.account_sid.is_some(), "account_sid");
                need(self, r.auth_token_file.is_some(), "auth_token_file");
                need(self, r.from.is_some(), "from");
                need(self, r.to.as_ref().is_some_and(|t| !t.is_empty()), "to");
                if let Some(sid) = &r.account_sid
                    && !sid.bytes().all(|b| b.is_ascii_alphanumeric())
                {
                    self.at(&loc, "twilio account_sid must be letters and digits");
                }
                match (&r.account_sid, &r.auth_token_file, &r.from) {
                    (Some(sid), Some(token), Some(from)) => Some(NotifierKind::Twilio(Twilio {
                        account_sid: sid.clone(),
                        auth_token_file: token.clone(),
                        from: from.clone(),
                        to: r.to.clone().unwrap_or_default(),
                        api_base: r
                            .api_base
                            .clone()
                            .map_or_else(|| "https://api.twilio.com".to_string(), |u| u.0),
                    })),
                    _ => None,
                }
            }
            NotifierType::Alertmanager => {
                let urls = r.urls.as_ref().map(|u| u.value.clone()).unwrap_or_default();
                need(self, !urls.is_empty(), "urls");
                let mut labels = Vec::new();
                if let Some(l) = &r.labels {
                    for (k, v) in &l.value {
                        let name_ok = !k.is_empty()
                            && !k.starts_with(|c: char| c.is_ascii_digit())
                            && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
                        if !name_ok {
                            self.at(
                                &l.referenced,
                                format!("labels: {k:?} is not a Prometheus label name: expected letters, digits and _, not starting with a digit"),
                            );
                        } else if ALERT_LABELS.contains(&k.as_str()) || k.starts_with("__") {
                            self.at(
                                &l.referenced,
                                format!("labels: {k:?} is set by chatstack-status itself: expected another label name"),
                            );
                        }
                        labels.push((k.clone(), v.clone()));
                    }
                }
                let resend = match &r.resend {
                    Some(d) if d.value.0 < Duration::from_secs(1) => {
                        self.at(&d.referenced, "resend: expected a duration of at least 1s");
                        Duration::from_secs(60)
                    }
                    Some(d) => d.value.0,
                    None => Duration::from_secs(60),
                };
                (!urls.is_empty()).then(|| {
                    NotifierKind::Alertmanager(Alertmanager {
                        urls: urls
                            .into_iter()
                            .map(|u| u.0.trim_end_matches('/').to_string())
                            .collect(),
                        labels,
                        resend,
                        bearer_token_file: r.bearer_token_file.clone(),
                        basic_auth: r
                            .basic_auth
                            .as_ref()
                            .map(|b| (b.user.clone(), b.password_file.clone())),
                    })
                })
            }
        };
        if self.problems.len() != before {
            return None;
        }
        Some(Notifier {
            name: r.name.unwrap_or_else(|| format!("{kind}-{}", index + 1)),
            timeout: r.timeout.map_or(Duration::from_secs(5), |d| d.0),
            services: r.services.unwrap_or_default(),
            events: r.events.unwrap_or_default(),
            kind: built?,
        })
    }
}
