//! Telegram bot API: `POST {api_base}/bot<token>/sendMessage` with JSON
//! `{"chat_id", "text"}`. The token is part of the URL: it is read from
//! `bot_token_file` when sending and scrubbed from every error.

use super::events::{Event, truncate};
use super::http::{Attempt, post, read_secret};
use crate::config::Telegram;
use std::time::Duration;

/// Telegram's limit on a message's text.
pub const TEXT_MAX: usize = 4096;

pub fn send(
    t: &Telegram,
    e: &Event,
    timeout: Duration,
    secrets: &mut Vec<String>,
) -> Result<Attempt, Attempt> {
    let token = read_secret(&t.bot_token_file, "bot_token_file")?;
    secrets.push(token.clone());
    let url = format!("{}/bot{token}/sendMessage", t.api_base);
    let headers = vec![("Content-Type".to_string(), "application/json".to_string())];
    let body = serde_json::json!({ "chat_id": t.chat_id, "text": text(e) }).to_string();
    Ok(post(&url, &headers, body.into_bytes(), timeout))
}

/// The message: the email's body without its signature, bounded.
pub fn text(e: &Event) -> String {
    let body = super::email::body(e);
    let body = body.strip_suffix("\n-- \nchatstack-status\n").unwrap_or(&body);
    truncate(body.trim_end(), TEXT_MAX)
}
