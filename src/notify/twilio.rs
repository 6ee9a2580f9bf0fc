//! Twilio SMS: a form POST to `/2010-04-01/Accounts/{sid}/Messages.json`
//! with basic auth sid:token, one message per recipient, 160 characters.

use super::events::{Event, truncate};
use super::http::{Attempt, form, post, read_secret};
use crate::config::{EventName, Twilio};
use crate::probe::CheckStatus;
use crate::state::Health;
use std::time::Duration;

/// The longest SMS body we send (one GSM segment).
pub const SMS_MAX: usize = 160;

/// Sends `e` to one recipient `to`.
pub fn send(
    t: &Twilio,
    notifier: &str,
    to: &str,
    e: &Event,
    timeout: Duration,
    secrets: &mut Vec<String>,
) -> Result<Attempt, Attempt> {
    let token = read_secret(&t.auth_token_file, "auth_token_file")?;
    let auth = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{token}", t.account_sid))
    };
    secrets.push(token);
    secrets.push(auth.clone());
    let url = format!(
        "{}/2010-04-01/Accounts/{}/Messages.json",
        t.api_base.trim_end_matches('/'),
        t.account_sid
    );
    let headers = vec![
        ("Content-Type".to_string(), "application/x-www-form-urlencoded".to_string()),
        ("Authorization".to_string(), format!("Basic {auth}")),
    ];
    let body = form(&[("To", to), ("From", &t.from), ("Body", &sms_text(e, notifier))]);
    Ok(post(&url, &headers, body.into_bytes(), timeout))
}

/// The SMS body: the essentials in at most `SMS_MAX` characters.
pub fn sms_text(e: &Event, notifier: &str) -> String {
    let first_problem = e
        .checks
        .iter()
        .find(|c| c.status != CheckStatus::Up)
        .map(|c| c.detail.clone())
        .unwrap_or_default();
    let with = |s: String, extra: &str| if extra.is_empty() { s } else { format!("{s}: {extra}") };
    // The unit's result first: of all the diagnosis it is what fits an SMS.
    let first_problem = match e.diagnosis.as_ref().and_then(super::diagnosis_text::result) {
        Some(r) if first_problem.is_empty() => r,
        Some(r) => format!("{r}; {first_problem}"),
        None => first_problem,
    };
    let (svc, host) = (&e.service, &e.host);
    let mut text = match e.event {
        EventName::Down => with(format!("{svc} DOWN on {host}"), &first_problem),
        EventName::Degraded => with(format!("{svc} DEGRADED on {host}"), &first_problem),
        EventName::Up => {
            let after = e
                .down_for_s
                .map(|s| {
                    format!(" after {} down", crate::time::human_duration(Duration::from_secs(s)))
                })
                .unwrap_or_default();
            let how = if e.status == Health::Degraded { " (degraded)" } else { "" };
            format!("{svc} back UP{how} on {host}{after}")
        }
        EventName::Reminder => {
            let d = e
                .down_for_s
                .map(|s| crate::time::human_duration(Duration::from_secs(s)))
                .unwrap_or_default();
            with(format!("{svc} still DOWN on {host} ({d})"), &first_problem)
        }
        EventName::Restart | EventName::HealSuspended => format!("{svc} on {host}: {}", e.detail),
        EventName::Test => format!("chatstack-status test from {host}: notifier {notifier} works"),
        EventName::Flapping | EventName::FlappingEnded => e.text.trim_end_matches('.').to_string(),
    };
    if !e.also_affected.is_empty() {
        text.push_str(&format!(". Also affected: {}", e.also_affected.join(", ")));
    }
    truncate(&text, SMS_MAX)
}
