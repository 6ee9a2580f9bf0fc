//! What every notifier's HTTP delivery shares: the agent, one POST, how an
//! answer is classified (sent, worth a retry, or not), secrets read from
//! files, and `scrub`, through which every error text passes so no secret
//! or URL ever reaches a log line, the state file or a metric.

use super::events::truncate;
use std::io::Read;
use std::path::Path;
use std::sync::LazyLock;
use std::time::Duration;

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    Sent,
    /// Worth trying again: connection trouble, timeout, 5xx, 429. `after` is
    /// the receiver's Retry-After, if it gave one.
    Retry {
        why: String,
        after: Option<Duration>,
    },
    /// Trying again will not help (e.g. 400, 401, 404): the config is wrong.
    Fail(String),
}

/// The longest Retry-After taken from an answer (a day); callers may cap
/// it further.
const MAX_RETRY_AFTER_S: u64 = 24 * 3600;
/// The most of an error answer's body read and quoted.
const MAX_ANSWER: u64 = 2048;

pub static AGENT: LazyLock<ureq::Agent> = LazyLock::new(|| {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        // A redirected POST could carry the message (and its credentials) elsewhere.
        .max_redirects(0)
        .user_agent(concat!("chatstack-status/", env!("CARGO_PKG_VERSION")))
        .max_response_header_size(64 * 1024)
        .build()
        .new_agent()
});

pub fn scrub_attempt(a: Attempt, secrets: &[String]) -> Attempt {
    match a {
        Attempt::Sent => Attempt::Sent,
        Attempt::Retry { why, after } => Attempt::Retry { why: scrub(&why, secrets), after },
        Attempt::Fail(why) => Attempt::Fail(scrub(&why, secrets)),
    }
}

/// A secret file bigger than this is not a token.
const MAX_SECRET_BYTES: u64 = 64 * 1024;

/// A secret from a file: trimmed, non-empty, UTF-8, a regular file (a FIFO
/// would block the sender). The error names the file, never its content.
pub fn read_secret(path: &Path, key: &str) -> Result<String, Attempt> {
    let text = crate::fsutil::read_regular(path, MAX_SECRET_BYTES).and_then(|b| {
        String::from_utf8(b)
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "not UTF-8 text"))
    });
    match text {
        Ok(s) if !s.trim().is_empty() => Ok(s.trim().to_string()),
        Ok(_) => {
            Err(Attempt::Retry { why: format!("{key} {} is empty", path.display()), after: None })
        }
        Err(err) => Err(Attempt::Retry {
            why: format!("cannot read {key} {}: {}", path.display(), io_text(&err)),
            after: None,
        }),
    }
}

pub fn post(url: &str, headers: &[(String, String)], body: Vec<u8>, timeout: Duration) -> Attempt {
    let mut b = ureq::http::Request::builder().method("POST").uri(url);
    for (k, v) in headers {
        b = b.header(k, v);
    }
    let req = match b.body(body) {
        Ok(r) => r,
        Err(_) => return Attempt::Fail("invalid request (check the url and headers)".into()),
    };
    let req = AGENT.configure_request(req).timeout_global(Some(timeout)).build();
    match AGENT.run(req) {
        Ok(resp) => classify_answer(resp),
        Err(err) => classify_error(&err, timeout),
    }
}

pub fn classify_answer(mut resp: ureq::http::Response<ureq::Body>) -> Attempt {
    let code = resp.status().as_u16();
    if (200..300).contains(&code) {
        return Attempt::Sent;
    }
    let retry_after = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        // Bounded here so no caller can overflow an `Instant` with it (an
        // absurd value crashed `check` before it saved its state).
        .map(|secs| Duration::from_secs(secs.min(MAX_RETRY_AFTER_S)));
    let mut body = Vec::new();
    let _ = resp.body_mut().as_reader().take(MAX_ANSWER).read_to_end(&mut body);
    let answer = String::from_utf8_lossy(&body);
    let answer = answer.trim();
    // Whole (at most MAX_ANSWER bytes): `scrub`, which every answer goes
    // through, blanks secrets first and then cuts the text to length.
    let why =
        if answer.is_empty() { format!("HTTP {code}") } else { format!("HTTP {code}: {answer}") };
    if code == 408 || code == 425 || code == 429 || code >= 500 {
        Attempt::Retry { why, after: retry_after }
    } else {
        Attempt::Fail(why)
    }
}

pub fn classify_error(err: &ureq::Error, timeout: Duration) -> Attempt {
    use ureq::Error as E;
    let why = match err {
        E::Timeout(_) => no_answer(timeout),
        E::HostNotFound => "host name not found".into(),
        E::ConnectionFailed => "connection failed".into(),
        E::Io(io) => match io.kind() {
            std::io::ErrorKind::ConnectionRefused => "connection refused".into(),
            std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionAborted => {
                "connection reset".into()
            }
            std::io::ErrorKind::UnexpectedEof => "connection closed without an answer".into(),
            std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => no_answer(timeout),
            _ => io_text(io),
        },
        E::Protocol(_) => "not a valid HTTP answer (connection closed?)".into(),
        E::BadUri(_) | E::Http(_) => return Attempt::Fail("invalid url".into()),
        other => other.to_string(),
    };
    Attempt::Retry { why, after: None }
}

/// "no answer within 2 s" (rounded: the budget left may be a hair under the timeout).
pub fn no_answer(timeout: Duration) -> String {
    let tenths = (timeout.as_millis() + 50) / 100;
    if tenths.is_multiple_of(10) {
        format!("no answer within {} s", tenths / 10)
    } else {
        format!("no answer within {}.{} s", tenths / 10, tenths % 10)
    }
}

pub fn io_text(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// `application/x-www-form-urlencoded`.
pub fn form(pairs: &[(&str, &str)]) -> String {
    let enc = |s: &str| {
        let mut o = String::with_capacity(s.len());
        for b in s.bytes() {
            match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                    o.push(b as char)
                }
                b' ' => o.push('+'),
                _ => o.push_str(&format!("%{b:02X}")),
            }
        }
        o
    };
    pairs.iter().map(|(k, v)| format!("{}={}", enc(k), enc(v))).collect::<Vec<_>>().join("&")
}

static URL_RE: LazyLock<Option<regex::Regex>> =
    LazyLock::new(|| regex::Regex::new(r#"(?i)\b[a-z][a-z0-9+.\-]*://[^\s"'<>]+"#).ok());

/// Removes every secret and every URL from a message, flattens it to one
/// line and bounds its length.
pub fn scrub(text: &str, secrets: &[String]) -> String {
    // Secrets are blanked in the whole text before anything is cut: cut
    // first, a secret quoted near the limit would survive in part.
    let mut t = text.replace(['\n', '\r', '\t'], " ");
    for s in secrets {
        if s.len() >= 4 {
            t = t.replace(s.as_str(), "<secret>");
        }
    }
    if let Some(re) = URL_RE.as_ref() {
        t = re.replace_all(&t, "<url>").into_owned();
    }
    t.retain(|c| !crate::text::is_control_or_format(c));
    truncate(&t, 240)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_encodes_plus_and_spaces() {
        assert_eq!(
            form(&[("To", "+15551111111"), ("Body", "a b&c=é")]),
            "To=%2B15551111111&Body=a+b%26c%3D%C3%A9"
        );
    }

    #[test]
    fn scrub_removes_urls_and_secrets() {
        let s = scrub(
            "POST https://hooks.slack.com/services/T/B/X failed: token s3cr3t!\nbye",
            &["s3cr3t!".into()],
        );
        assert_eq!(s, "POST <url> failed: token <secret> bye");
    }

    #[test]
    fn a_secret_file_that_is_a_fifo_or_too_big_is_a_retry_at_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let fifo = dir.path().join("token");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
        assert!(made.success());
        let started = std::time::Instant::now();
        match read_secret(&fifo, "bearer_token_file") {
            Err(Attempt::Retry { why, .. }) => {
                assert!(why.contains("not a regular file (a FIFO)"), "{why}");
                assert!(why.contains(&fifo.display().to_string()), "{why}");
            }
            _ => panic!("a FIFO secret was read"),
        }
        assert!(started.elapsed() < Duration::from_secs(1), "blocked on a FIFO");
        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'x'; 70_000]).expect("write");
        assert!(matches!(read_secret(&big, "k"), Err(Attempt::Retry { .. })));
        let ok = dir.path().join("ok");
        std::fs::write(&ok, " s3cr3t\n").expect("write");
        assert_eq!(read_secret(&ok, "k").ok().as_deref(), Some("s3cr3t"));
    }
}
