//! The generic webhook: the event as JSON, optional bearer token and headers.

use super::events::Event;
use super::http::{Attempt, post, read_secret};
use crate::config::Webhook;
use std::time::Duration;

/// Sends `e`, adding the secrets it used to `secrets` (for scrubbing).
pub fn send(
    w: &Webhook,
    e: &Event,
    timeout: Duration,
    secrets: &mut Vec<String>,
) -> Result<Attempt, Attempt> {
    let mut headers = vec![("Content-Type".to_string(), "application/json".to_string())];
    if let Some(file) = &w.bearer_token_file {
        let token = read_secret(file, "bearer_token_file")?;
        headers.push(("Authorization".into(), format!("Bearer {token}")));
        secrets.push(token);
    }
    headers.extend(w.headers.iter().cloned());
    let body = serde_json::to_vec(e)
        .map_err(|err| Attempt::Fail(format!("cannot encode the event: {err}")))?;
    Ok(post(&w.url, &headers, body, timeout))
}

/// What never appears in a message: the URL and header values (often API keys).
pub fn secrets(w: &Webhook) -> Vec<String> {
    std::iter::once(w.url.clone()).chain(w.headers.iter().map(|(_, v)| v.clone())).collect()
}
