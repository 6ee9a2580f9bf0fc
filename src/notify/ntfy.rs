//! ntfy: `POST url` with the text as the body and the headers `Title`,
//! `Priority` (5 for a critical service down, 4 for other downs, 3
//! otherwise) and `Tags`; `Authorization: Bearer` from `token_file`.

use super::events::Event;
use super::http::{Attempt, post, read_secret};
use crate::config::{EventName, Ntfy};
use crate::state::Health;
use std::time::Duration;

pub fn send(
    n: &Ntfy,
    e: &Event,
    timeout: Duration,
    secrets: &mut Vec<String>,
) -> Result<Attempt, Attempt> {
    let mut headers = vec![
        ("Content-Type".to_string(), "text/plain; charset=utf-8".to_string()),
        ("Title".to_string(), header_text(&super::email::title(e))),
        ("Priority".to_string(), priority(e).to_string()),
        ("Tags".to_string(), tags(e).join(",")),
    ];
    if let Some(file) = &n.token_file {
        let token = read_secret(file, "token_file")?;
        headers.push(("Authorization".into(), format!("Bearer {token}")));
        secrets.push(token);
    }
    Ok(post(&n.url, &headers, super::telegram::text(e).into_bytes(), timeout))
}

/// The topic URL can be a secret (an unguessable topic name).
pub fn secrets(n: &Ntfy) -> Vec<String> {
    vec![n.url.clone()]
}

/// 5 for a critical service down, 4 for other downs, 3 otherwise.
pub fn priority(e: &Event) -> u8 {
    let down = e.status == Health::Down
        && matches!(
            e.event,
            EventName::Down | EventName::Reminder | EventName::Restart | EventName::HealSuspended
        );
    match (down, e.critical) {
        (true, true) => 5,
        (true, false) => 4,
        _ => 3,
    }
}

/// An emoji short code ntfy shows, then the event and the service's state.
pub fn tags(e: &Event) -> Vec<String> {
    let emoji = match (e.event, e.status) {
        (EventName::Test, _) => "white_check_mark",
        (EventName::Up, Health::Up) => "green_circle",
        (_, Health::Down) => "rotating_light",
        (EventName::Restart, _) => "arrows_counterclockwise",
        (EventName::FlappingEnded, _) => "information_source",
        _ => "warning",
    };
    vec![emoji.to_string(), e.event.as_str().to_string(), e.status.as_str().to_string()]
}

/// A header value: ASCII as is, anything else as an RFC 2047 encoded word
/// (which ntfy decodes), so a service named in any script keeps its name.
pub fn header_text(s: &str) -> String {
    let clean: String = s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    if clean.is_ascii() {
        clean
    } else {
        use base64::Engine as _;
        format!("=?UTF-8?B?{}?=", base64::engine::general_purpose::STANDARD.encode(clean))
    }
}
