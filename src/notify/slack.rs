//! Slack incoming webhooks: `{"text": ...}`, 200 `ok` on success.

use super::events::Event;
use super::http::{Attempt, post};
use crate::config::{EventName, Slack};
use crate::state::Health;
use std::time::Duration;

pub fn send(s: &Slack, e: &Event, timeout: Duration) -> Result<Attempt, Attempt> {
    let mut headers = vec![("Content-Type".to_string(), "application/json".to_string())];
    headers.extend(s.headers.iter().cloned());
    let body = serde_json::json!({ "text": slack_text(e) }).to_string().into_bytes();
    Ok(post(&s.url, &headers, body, timeout))
}

/// The URL is the credential; header values may be too.
pub fn secrets(s: &Slack) -> Vec<String> {
    std::iter::once(s.url.clone()).chain(s.headers.iter().map(|(_, v)| v.clone())).collect()
}

/// Journal lines a Slack message shows.
pub const SLACK_JOURNAL_LINES: usize = 5;

/// Slack's mrkdwn escapes.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// The Slack message: an emoji for the kind, then the event's line
/// (escaped as Slack's mrkdwn requires).
pub fn slack_text(e: &Event) -> String {
    let icon = match (e.event, e.status) {
        (EventName::Down, _) | (EventName::Reminder, _) => ":red_circle:",
        (EventName::Up, Health::Up) => ":large_green_circle:",
        (EventName::Up, _) | (EventName::Degraded, _) => ":large_yellow_circle:",
        (EventName::Restart, _) => ":arrows_counterclockwise:",
        (EventName::HealSuspended, _) => ":warning:",
        (EventName::Test, _) => ":white_check_mark:",
        (EventName::Flapping, _) => ":warning:",
        (EventName::FlappingEnded, _) => ":information_source:",
    };
    let mut text = format!("{icon} {}", escape(&e.text));
    if let Some(d) = &e.diagnosis {
        // The result or exit, then the journal's last lines as a code block.
        if let Some(unit) = super::diagnosis_text::unit_line(d) {
            text.push_str(&format!("\n{}", escape(&unit)));
        }
        let lines = super::diagnosis_text::journal_tail(d, SLACK_JOURNAL_LINES);
        if !lines.is_empty() {
            let block = lines.join("\n").replace("```", "'''");
            text.push_str(&format!("\n```{}```", escape(&block)));
        }
    }
    text
}
