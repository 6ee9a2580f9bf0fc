//! Discord webhooks: `POST url` with JSON `{"content"}`, at most 2,000
//! characters (Discord refuses longer). The URL is the credential.

use super::events::{Event, truncate};
use super::http::{Attempt, post};
use crate::config::Discord;
use std::time::Duration;

/// Discord's limit on `content`, in characters.
pub const CONTENT_MAX: usize = 2000;

pub fn send(d: &Discord, e: &Event, timeout: Duration) -> Result<Attempt, Attempt> {
    let headers = vec![("Content-Type".to_string(), "application/json".to_string())];
    // No pings: an alert text naming `@everyone` must not notify a server.
    let body = serde_json::json!({
        "content": content(e),
        "allowed_mentions": { "parse": [] },
    })
    .to_string();
    Ok(post(&d.url, &headers, body.into_bytes(), timeout))
}

pub fn secrets(d: &Discord) -> Vec<String> {
    vec![d.url.clone()]
}

/// The message: a bold title, then the detail, bounded to `CONTENT_MAX`.
pub fn content(e: &Event) -> String {
    let detail = super::telegram::text(e);
    let detail = detail.strip_prefix(&e.text).unwrap_or(&detail).trim();
    let text = format!("**{}**\n{}\n{detail}", super::email::title(e), e.text);
    truncate(text.trim_end(), CONTENT_MAX)
}
