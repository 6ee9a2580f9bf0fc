//! HTTP(S) probe: one ureq agent per set of trusted roots (most checks share
//! one), bounded by the check's timeout over the whole exchange, redirects
//! and body included. `https` goes through `certs::CertConnector`, so the
//! certificate chain is read on the probe's own connection.

use super::certs::{self, Trust};
use super::{CheckStatus, HttpProbe, Outcome, Reason, body, clean_detail};
use crate::time::Timestamp;
use std::io::Read;
use std::time::{Duration, Instant};
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{ConnectProxyConnector, Connector, NextTimeout, TcpConnector};

/// The most body read for `body_contains`, `body_regex` or `json`: a 50 MB
/// or endless body costs at most this much memory and its timeout.
pub const MAX_BODY: u64 = 1 << 20;
/// Redirects followed when `follow_redirects` is on.
pub const MAX_REDIRECTS: u32 = 5;
/// Response head limit; it must fit the input buffer, which ureq allocates
/// (zeroed) per connection and keeps while the connection is kept for the
/// next cycle. ureq's defaults (128 KiB in + 128 KiB out) cost 1 MiB of
/// memset for 4 targets in a one-shot `check` and 256 KiB of memory per kept
/// connection in `run`. 16 KiB is twice what nginx accepts from a proxied
/// server by default (`proxy_buffer_size`, 4 or 8 KiB); a longer head is
/// `check_error`, "response headers too large".
pub const MAX_RESPONSE_HEAD: usize = 16 * 1024;
/// How much of a failing answer's body an incident keeps.
pub const EXCERPT: usize = 512;
/// ureq's output buffer: a request's head, never a body, written a line at
/// a time, so it bounds the longest line (the request line with its URL, or
/// one header): 8 KiB, what nginx and Apache accept by default.
const OUTPUT_BUFFER: usize = 8 * 1024;

/// The agent of a trust: ureq's defaults (proxy from the environment, as
/// before) with our connector in place of ureq's rustls one.
fn agent(trust: &Trust) -> &ureq::Agent {
    trust.http_agent(|| {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(MAX_REDIRECTS)
            .user_agent(concat!("chatstack-status/", env!("CARGO_PKG_VERSION")))
            // One byte under the buffer: ureq tells a head over the limit
            // only while it still has room to read, else it reports the
            // full buffer as "peer disconnected".
            .max_response_header_size(MAX_RESPONSE_HEAD - 1)
            .input_buffer_size(MAX_RESPONSE_HEAD)
            .output_buffer_size(OUTPUT_BUFFER)
            .max_idle_connections(64)
            .max_idle_connections_per_host(2)
            .build();
        let connector =
            ().chain(ConnectProxyConnector::default())
                .chain(TcpConnector::default())
                .chain(trust.connector());
        ureq::Agent::with_parts(config, connector, AddressFirst::default())
    })
}

/// ureq's resolver starts a thread for every lookup under a timeout, even of
/// an IP address: 4 threads a cycle for 4 services at `http://127.0.0.1:…`
/// (an idle cycle: 8.66 -> 7.41 ms of CPU without them). An address is taken
/// as it is; a name still goes to ureq's resolver, bounded by its timeout.
#[derive(Debug, Default)]
struct AddressFirst(DefaultResolver);

impl AddressFirst {
    fn literal(uri: &ureq::http::Uri) -> Option<std::net::SocketAddr> {
        let host = uri.host()?;
        let ip: std::net::IpAddr = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host)
            .parse()
            .ok()?;
        let port = uri.port_u16().or(match uri.scheme_str()? {
            "http" => Some(80),
            "https" => Some(443),
            _ => None,
        })?;
        Some(std::net::SocketAddr::new(ip, port))
    }
}

impl Resolver for AddressFirst {
    fn resolve(
        &self,
        uri: &ureq::http::Uri,
        config: &ureq::config::Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let Some(addr) = Self::literal(uri) else { return self.0.resolve(uri, config, timeout) };
        if config.ip_family().keep_wanted(std::iter::once(addr)).next().is_none() {
            return Err(ureq::Error::HostNotFound);
        }
        let mut out = self.empty();
        out.push(addr);
        Ok(out)
    }
}

/// Builds a request with our per-check settings; `fresh` keeps it off the
/// agent's pool of kept connections (see `send`).
fn request(
    agent: &ureq::Agent,
    p: &HttpProbe,
    timeout: Duration,
    fresh: bool,
) -> Result<ureq::http::Request<()>, String> {
    let mut b = ureq::http::Request::builder().method(p.method.as_str()).uri(&p.url);
    for (k, v) in &p.headers {
        b = b.header(k, v);
    }
    let req = b.body(()).map_err(|e| format!("invalid request: {e}"))?;
    let mut config = agent
        .configure_request(req)
        .timeout_global(Some(timeout))
        .max_redirects(if p.follow_redirects { MAX_REDIRECTS } else { 0 });
    if fresh {
        // ureq lets a request use the pool only when its transport settings
        // are the agent's: one byte more of output buffer (never filled by
        // a probe's request) is ureq's way to ask for a new connection.
        config = config.output_buffer_size(OUTPUT_BUFFER + 1);
    }
    Ok(config.build())
}

pub fn check(p: &HttpProbe, timeout: Duration) -> Outcome {
    certs::begin();
    let out = exchange(p, timeout);
    let cert = if p.is_https() { certs::presented() } else { None };
    super::judge_cert(Outcome { cert, ..out }, p.limits, Timestamp::now())
}

fn exchange(p: &HttpProbe, timeout: Duration) -> Outcome {
    let started = Instant::now();
    let mut resp = match send(agent(&p.trust), p, timeout, started) {
        Ok(r) => r,
        Err(Sent::Invalid(e)) => {
            return Outcome::not_up(CheckStatus::Unknown, Reason::CheckError, e);
        }
        Err(Sent::Failed(e)) => {
            let out = classify(&e, timeout, p.is_https()).with_latency(started.elapsed());
            return answered(out, None, b"");
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
        // The start of the body says why (a proxy's error page, a stack
        // trace): read within what is left of the timeout, at most EXCERPT.
        let mut head = Vec::new();
        let _ = resp.body_mut().as_reader().take(EXCERPT as u64).read_to_end(&mut head);
        let out = Outcome::down(Reason::HttpStatus, detail).with_latency(started.elapsed());
        return answered(out, Some(code), &head);
    }
    if p.body_contains.is_none() && p.body_regex.is_none() && p.json.is_empty() {
        // The body is left unread, so the connection is closed, not kept:
        // see `send`.
        return Outcome::up(status_line).with_latency(started.elapsed());
    }
    // One byte past the cap tells a body of exactly 1 MiB from a longer one.
    let mut body = Vec::new();
    let read = resp.body_mut().as_reader().take(MAX_BODY + 1).read_to_end(&mut body);
    let latency = started.elapsed();
    if let Err(e) = read {
        let timed_out = latency >= timeout || e.to_string().to_lowercase().contains("timeout");
        let reason = if timed_out { Reason::Timeout } else { Reason::CheckError };
        let out = Outcome::down(
            reason,
            format!("{status_line}, reading body: {}", clean_detail(&e.to_string(), 160)),
        )
        .with_latency(latency);
        return answered(out, Some(code), &body);
    }
    let capped = body.len() as u64 > MAX_BODY;
    body.truncate(MAX_BODY as usize);
    match body_verdict(p, &body, capped) {
        Ok(()) => Outcome::up(status_line).with_latency(latency),
        Err(why) => answered(
            Outcome::down(Reason::BodyMismatch, format!("{status_line}, {why}"))
                .with_latency(latency),
            Some(code),
            &body,
        ),
    }
}

/// Why a request got no answer: it could not be built, or it failed.
enum Sent {
    Invalid(String),
    Failed(ureq::Error),
}

/// Sends the check's request. ureq keeps a connection whose answer was
/// read to its end (a body rule reads it), at most 2 per host:port, and
/// hands it to the next request to the same place; a passing answer whose
/// body no rule reads is not read, so its connection is closed. Kept idle
/// connections are few on purpose: a server that gives each connection a
/// thread from a bounded pool (tiny_http, Apache's prefork) serves no one
/// else on the threads our idle connections hold, and reading every short
/// body to keep every connection starved 12 of 40 checks of one such
/// server in a test (`forty_slow_targets_…`).
///
/// The server may close a kept connection just as the request leaves: its
/// keep-alive timeout (uvicorn's 5 s, gunicorn's 2 s) can end with our
/// interval. The request then meets a closed connection and no answer,
/// which says nothing about the service, so an idempotent request that
/// fails so is sent once more on a new connection, within what is left of
/// the timeout. A server that closes every connection fails the second
/// time too, and that failure is the check's.
fn send(
    agent: &ureq::Agent,
    p: &HttpProbe,
    timeout: Duration,
    started: Instant,
) -> Result<ureq::http::Response<ureq::Body>, Sent> {
    let first = agent.run(request(agent, p, timeout, false).map_err(Sent::Invalid)?);
    match first {
        Err(ureq::Error::Io(e)) if closed_unanswered(&e) && idempotent(&p.method) => {
            let left = timeout.saturating_sub(started.elapsed());
            if left.is_zero() {
                return Err(Sent::Failed(ureq::Error::Io(e)));
            }
            certs::begin();
            agent.run(request(agent, p, left, true).map_err(Sent::Invalid)?).map_err(Sent::Failed)
        }
        other => other.map_err(Sent::Failed),
    }
}

/// The ways a kept connection the server has closed fails a request.
fn closed_unanswered(e: &std::io::Error) -> bool {
    use std::io::ErrorKind as K;
    matches!(e.kind(), K::UnexpectedEof | K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe)
}

/// RFC 9110's idempotent methods: sending one twice changes nothing more.
fn idempotent(method: &str) -> bool {
    matches!(method, "GET" | "HEAD" | "OPTIONS" | "PUT" | "DELETE")
}

/// A failing outcome with what the server answered kept for the diagnosis.
fn answered(mut out: Outcome, status: Option<u16>, body: &[u8]) -> Outcome {
    out.http = Some(super::HttpAnswer { status, body: excerpt(body) });
    out
}

/// The first `EXCERPT` bytes of `body` as text: invalid UTF-8 replaced,
/// control characters escaped (`\n`, `\u{1b}`), so it is one safe string
/// whatever the server sent.
pub fn excerpt(body: &[u8]) -> String {
    let head = &body[..body.len().min(EXCERPT)];
    escape_controls(&String::from_utf8_lossy(head))
}

/// Control characters as Rust-style escapes; everything else as it is.
pub fn escape_controls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// `body_contains`, then `body_regex`, then the `json` assertions.
fn body_verdict(p: &HttpProbe, body: &[u8], capped: bool) -> Result<(), String> {
    let within = if capped { " in the first 1 MiB" } else { "" };
    if let Some(needle) = &p.body_contains
        && !contains(body, needle.as_bytes())
    {
        return Err(format!("body does not contain {needle:?}{within}"));
    }
    if let Some(re) = &p.body_regex
        && !re.is_match(body)
    {
        return Err(format!("body does not match /{}/{within}", clean_detail(re.as_str(), 80)));
    }
    body::check_json(body, capped, &p.json)
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
        E::Rustls(r) => Outcome::down(
            Reason::Tls,
            certs::failure_detail(r, certs::presented().as_deref(), Timestamp::now()),
        ),
        E::Tls(_) | E::Pem(_) | E::TlsRequired => {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(s: &str) -> ureq::http::Uri {
        s.parse().unwrap()
    }

    #[test]
    fn an_address_is_taken_as_it_is_and_a_name_is_left_to_ureq() {
        let at = |s: &str| AddressFirst::literal(&uri(s)).map(|a| a.to_string());
        assert_eq!(at("http://127.0.0.1:8080/health").as_deref(), Some("127.0.0.1:8080"));
        assert_eq!(at("http://127.0.0.1/").as_deref(), Some("127.0.0.1:80"));
        assert_eq!(at("https://10.0.0.2/").as_deref(), Some("10.0.0.2:443"));
        assert_eq!(at("http://[::1]:9/x").as_deref(), Some("[::1]:9"));
        assert_eq!(at("http://localhost:8080/"), None);
        assert_eq!(at("http://example.com/"), None);
    }

    #[test]
    fn an_address_resolves_to_itself_and_a_name_through_ureq() {
        let config = ureq::config::Config::default();
        let timeout = NextTimeout {
            after: ureq::unversioned::transport::time::Duration::from_secs(5),
            reason: ureq::Timeout::Resolve,
            per_read: None,
            per_write: None,
        };
        let r = AddressFirst::default();
        let got = r.resolve(&uri("http://127.0.0.1:1/"), &config, timeout).unwrap();
        assert_eq!(got.iter().map(|a| a.to_string()).collect::<Vec<_>>(), ["127.0.0.1:1"]);
        let named = r.resolve(&uri("http://localhost:1/"), &config, timeout).unwrap();
        assert!(named.iter().all(|a| a.ip().is_loopback() && a.port() == 1), "{named:?}");
        let v4_only =
            ureq::config::Config::builder().ip_family(ureq::config::IpFamily::Ipv4Only).build();
        assert!(r.resolve(&uri("http://[::1]:1/"), &v4_only, timeout).is_err());
    }

    /// A keep-alive server on 127.0.0.1: every request on a connection is
    /// answered 200 with `body`, except that on connection 1 the request
    /// number `drop_at` (from 1) is read and the connection closed
    /// unanswered, as when a keep-alive timeout ends just as a request
    /// leaves. Returns the URL and the count of accepted connections.
    fn keep_alive_server(
        body: usize,
        drop_at: Option<usize>,
    ) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        use std::io::Write;
        use std::sync::atomic::{AtomicUsize, Ordering};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/health", listener.local_addr().unwrap());
        let accepted = std::sync::Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { return };
                let nth = count.fetch_add(1, Ordering::SeqCst) + 1;
                std::thread::spawn(move || {
                    let mut seen = Vec::new();
                    let find = |hay: &[u8], needle: &[u8]| {
                        hay.windows(needle.len()).position(|w| w == needle)
                    };
                    let more = |conn: &mut std::net::TcpStream, seen: &mut Vec<u8>| {
                        let mut buf = [0u8; 4096];
                        match conn.read(&mut buf) {
                            Ok(0) | Err(_) => false,
                            Ok(n) => {
                                seen.extend_from_slice(&buf[..n]);
                                true
                            }
                        }
                    };
                    for request in 1.. {
                        // The head, then its body (a POST's may come
                        // chunked, its end in a later read): one request.
                        let end = loop {
                            match find(&seen, b"\r\n\r\n") {
                                Some(at) => break at + 4,
                                None if more(&mut conn, &mut seen) => {}
                                None => return,
                            }
                        };
                        let head = String::from_utf8_lossy(&seen[..end]).to_lowercase();
                        seen.drain(..end);
                        if head.contains("transfer-encoding: chunked") {
                            loop {
                                match find(&seen, b"0\r\n\r\n") {
                                    Some(at) => {
                                        seen.drain(..at + 5);
                                        break;
                                    }
                                    None if more(&mut conn, &mut seen) => {}
                                    None => return,
                                }
                            }
                        }
                        if nth == 1 && drop_at == Some(request) {
                            return;
                        }
                        let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {body}\r\n\r\n");
                        let out = [head.as_bytes(), &vec![b'x'; body]].concat();
                        if conn.write_all(&out).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        (url, accepted)
    }

    fn connections(n: &std::sync::atomic::AtomicUsize) -> usize {
        n.load(std::sync::atomic::Ordering::SeqCst)
    }

    #[test]
    fn a_passing_answer_no_rule_reads_does_not_hold_the_servers_connection() {
        // A server with a thread per connection serves no one else on the
        // thread an idle kept connection holds: a plain check closes its
        // connection, a body check keeps one (ureq's pool, 2 per host).
        let t = Duration::from_secs(5);
        let (url, accepted) = keep_alive_server(3, None);
        let p = HttpProbe::get(url.clone());
        for _ in 0..3 {
            let out = check(&p, t);
            assert_eq!(out.status, CheckStatus::Up, "{}", out.detail);
        }
        assert_eq!(connections(&accepted), 3, "a new connection per plain check");
        let p = HttpProbe {
            body_contains: Some("xxx".into()),
            trust: Trust::private(),
            ..HttpProbe::get(url)
        };
        for _ in 0..3 {
            assert_eq!(check(&p, t).status, CheckStatus::Up);
        }
        assert_eq!(connections(&accepted), 4, "a body check's connection is kept");
    }

    #[test]
    fn a_kept_connection_closed_by_the_server_is_not_a_failure_but_a_post_is_not_sent_twice() {
        let t = Duration::from_secs(5);
        let body_check = |url: String| HttpProbe {
            body_contains: Some("x".into()),
            trust: Trust::private(),
            ..HttpProbe::get(url)
        };
        let (url, accepted) = keep_alive_server(3, Some(2));
        let p = body_check(url);
        assert_eq!(check(&p, t).status, CheckStatus::Up);
        let out = check(&p, t);
        assert_eq!(out.status, CheckStatus::Up, "{}", out.detail);
        assert_eq!(connections(&accepted), 2, "sent again on a new connection");
        assert_eq!(check(&p, t).status, CheckStatus::Up);

        let (url, _) = keep_alive_server(3, Some(2));
        let p = HttpProbe { method: "POST".into(), ..body_check(url) };
        assert_eq!(check(&p, t).status, CheckStatus::Up);
        let out = check(&p, t);
        assert_eq!(out.status, CheckStatus::Down, "a POST may have been acted on: not sent again");
    }

    /// A server answering 200 with `extra` bytes of one header in its head.
    fn head_server(extra: usize) -> String {
        use std::io::Write;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { return };
                let mut buf = [0u8; 16384];
                let _ = conn.read(&mut buf);
                let head = format!(
                    "HTTP/1.1 200 OK\r\nX-Big: {}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    "a".repeat(extra)
                );
                let _ = conn.write_all(head.as_bytes());
            }
        });
        url
    }

    #[test]
    fn a_response_head_up_to_the_limit_passes_and_a_longer_one_is_a_clear_error() {
        let t = Duration::from_secs(5);
        let ok = check(&HttpProbe::get(head_server(MAX_RESPONSE_HEAD - 200)), t);
        assert_eq!(ok.status, CheckStatus::Up, "{}", ok.detail);
        let big = check(&HttpProbe::get(head_server(MAX_RESPONSE_HEAD + 100)), t);
        assert_eq!(
            (big.status, big.detail.as_str()),
            (CheckStatus::Down, "response headers too large")
        );
        // A long URL (the request line) and a long header still fit.
        let url = format!("{}?q={}", head_server(10), "b".repeat(7 * 1024));
        let mut p = HttpProbe::get(url);
        p.headers.push(("Authorization".into(), format!("Bearer {}", "c".repeat(6 * 1024))));
        let long = check(&p, t);
        assert_eq!(long.status, CheckStatus::Up, "{}", long.detail);
    }
}
