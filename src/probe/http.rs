//! HTTP(S) probe: one shared ureq agent (rustls), bounded by the check's
//! timeout over the whole exchange, redirects and body included.

use super::{CheckStatus, HttpProbe, Outcome, Reason, clean_detail};
use std::io::Read;
use std::sync::LazyLock;
use std::time::{Duration, Instant};

/// The most body read when matching `body_contains`: a 50 MB or endless
/// body costs at most this much memory and its timeout.
pub const MAX_BODY: u64 = 1 << 20;
/// Redirects followed when `follow_redirects` is on.
pub const MAX_REDIRECTS: u32 = 5;
/// Response head limit; it must fit the input buffer, which ureq allocates
/// (zeroed) per connection and keeps while the connection is pooled. ureq's
/// defaults (128 KiB in + 128 KiB out) cost 1 MiB of memset for 4 targets in
/// a one-shot `check` and 256 KiB of RSS per pooled connection in `run`.
pub const MAX_RESPONSE_HEAD: usize = 32 * 1024;

static AGENT: LazyLock<ureq::Agent> = LazyLock::new(|| {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(MAX_REDIRECTS)
        .user_agent(concat!("chatstack-status/", env!("CARGO_PKG_VERSION")))
        .max_response_header_size(MAX_RESPONSE_HEAD)
        .input_buffer_size(MAX_RESPONSE_HEAD)
        .output_buffer_size(16 * 1024)
        .max_idle_connections(64)
        .max_idle_connections_per_host(2)
        .build()
        .new_agent()
});

/// Builds a request with our per-check settings.
fn request(p: &HttpProbe, timeout: Duration) -> Result<ureq::http::Request<()>, String> {
    let mut b = ureq::http::Request::builder().method(p.method.as_str()).uri(&p.url);
    for (k, v) in &p.headers {
        b = b.header(k, v);
    }
    let req = b.body(()).map_err(|e| format!("invalid request: {e}"))?;
    Ok(AGENT
        .configure_request(req)
        .timeout_global(Some(timeout))
        .max_redirects(if p.follow_redirects { MAX_REDIRECTS } else { 0 })
        .build())
}

pub fn check(p: &HttpProbe, timeout: Duration) -> Outcome {
    let started = Instant::now();
    let req = match request(p, timeout) {
        Ok(r) => r,
        Err(e) => return Outcome::not_up(CheckStatus::Unknown, Reason::CheckError, e),
    };
    let mut resp = match AGENT.run(req) {
        Ok(r) => r,
        Err(e) => {
            let https = p.url.get(..6).is_some_and(|s| s.eq_ignore_ascii_case("https:"));
            return classify(&e, timeout, https).with_latency(started.elapsed());
        }
    };
    let code = resp.status().as_u16();
    let status_line = format!("HTTP {code}");
    if !p.expect.matches(code) {
        let mut detail = format!("{status_line}, expected {}", p.expect);
        if (300..400).contains(&code)
            && let Some(loc) = resp.headers().get("location").and_then(|v| v.to_str().ok())
        {
            detail.push_str(&format!(" (Location: {})", clean_detail(loc, 120)));
        }
        return Outcome::down(Reason::HttpStatus, detail).with_latency(started.elapsed());
    }
    if let Some(needle) = &p.body_contains {
        let mut body = Vec::new();
        let read = resp.body_mut().as_reader().take(MAX_BODY).read_to_end(&mut body);
        let latency = started.elapsed();
        if let Err(e) = read {
            let timed_out = latency >= timeout || e.to_string().to_lowercase().contains("timeout");
            let reason = if timed_out { Reason::Timeout } else { Reason::CheckError };
            return Outcome::down(
                reason,
                format!("{status_line}, reading body: {}", clean_detail(&e.to_string(), 160)),
            )
            .with_latency(latency);
        }
        if !contains(&body, needle.as_bytes()) {
            let capped = if body.len() as u64 >= MAX_BODY { " in the first 1 MiB" } else { "" };
            return Outcome::down(
                Reason::BodyMismatch,
                format!("{status_line}, body does not contain {needle:?}{capped}"),
            )
            .with_latency(latency);
        }
        return Outcome::up(status_line).with_latency(latency);
    }
    Outcome::up(status_line).with_latency(started.elapsed())
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

fn classify(e: &ureq::Error, timeout: Duration, https: bool) -> Outcome {
    use ureq::Error as E;
    let text = clean_detail(&e.to_string(), 200);
    match e {
        E::Timeout(_) => {
            Outcome::down(Reason::Timeout, format!("no answer within {} ms", timeout.as_millis()))
        }
        E::HostNotFound => Outcome::down(Reason::Dns, "host name not found"),
        E::ConnectionFailed => Outcome::down(Reason::Refused, "connection failed"),
        // rustls reports a failed handshake as an InvalidData I/O error.
        E::Io(io) if https && io.kind() == std::io::ErrorKind::InvalidData => {
            Outcome::down(Reason::Tls, format!("TLS: {text}"))
        }
        E::Io(io) => io_outcome(io, &text),
        E::Tls(_) | E::Rustls(_) | E::Pem(_) | E::TlsRequired => {
            Outcome::down(Reason::Tls, format!("TLS: {text}"))
        }
        E::TooManyRedirects | E::RedirectFailed => Outcome::down(
            Reason::HttpStatus,
            format!("redirects: {text} (more than {MAX_REDIRECTS})"),
        ),
        E::LargeResponseHeader(..) => {
            Outcome::down(Reason::CheckError, "response headers too large")
        }
        E::Protocol(_) => {
            Outcome::down(Reason::CheckError, format!("not a valid HTTP response: {text}"))
        }
        _ => Outcome::down(Reason::CheckError, text),
    }
}

/// Maps socket errors to reasons, shared with the TCP probe.
pub fn io_outcome(io: &std::io::Error, text: &str) -> Outcome {
    use std::io::ErrorKind as K;
    match io.kind() {
        K::ConnectionRefused => Outcome::down(Reason::Refused, "connection refused"),
        K::TimedOut | K::WouldBlock => Outcome::down(Reason::Timeout, "connection timed out"),
        K::HostUnreachable | K::NetworkUnreachable => {
            Outcome::down(Reason::Refused, text.to_string())
        }
        _ if text.contains("lookup")
            || text.contains("resolve")
            || text.contains("Name or service") =>
        {
            Outcome::down(Reason::Dns, text.to_string())
        }
        _ => Outcome::down(Reason::CheckError, text.to_string()),
    }
}
