//! HTTP/1.x on the wire: one request parser (httparse) and one response
//! writer. Whatever the front reads is judged here, once: a head is
//! complete exactly when httparse says so, whatever its line endings, so no
//! second parser can disagree about where a request ends.

use std::borrow::Cow;

/// Request line plus headers, whatever the line endings.
pub const MAX_HEAD: usize = 8 * 1024;
/// Headers per request; more is answered 431.
pub const MAX_HEADERS: usize = 64;
/// A request body is read (and ignored) up to this; beyond it is 413.
pub const MAX_BODY: usize = 8 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Post,
    Options,
    Other,
}

/// A parsed request head, borrowing the connection's buffer.
#[derive(Debug)]
pub struct Request<'a> {
    pub method: Method,
    /// The method as sent (for messages).
    pub method_text: &'a str,
    /// The path, without query; the authority of an absolute-form target is dropped.
    pub path: &'a str,
    /// What follows `?` (without it), or "".
    pub query: &'a str,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor: u8,
    /// The client's address (set by the front; None in unit tests).
    pub peer: Option<std::net::IpAddr>,
    headers: Vec<(&'a str, &'a [u8])>,
}

impl<'a> Request<'a> {
    /// The first header of that name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&'a [u8]> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| *v)
    }

    /// A header's value as trimmed text (None when absent or not UTF-8).
    pub fn header_str(&self, name: &str) -> Option<&'a str> {
        self.header(name).and_then(|v| std::str::from_utf8(v).ok()).map(str::trim)
    }

    /// Whether the client asked to close (or HTTP/1.0 without keep-alive).
    pub fn wants_close(&self) -> bool {
        let tokens = self.header_str("connection").unwrap_or("");
        let has = |t: &str| tokens.split(',').any(|x| x.trim().eq_ignore_ascii_case(t));
        if self.minor == 0 { !has("keep-alive") } else { has("close") }
    }

    /// The first query parameter, key or value, that is not valid UTF-8
    /// once percent-decoded (its raw text): such a query is refused, never
    /// read as if the parameter were absent.
    pub fn undecodable_param(&self) -> Option<&'a str> {
        self.query.split('&').find(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            decode_query(k).is_none() || decode_query(v).is_none()
        })
    }

    /// One query parameter, percent-decoded (`+` is a space).
    pub fn param(&self, name: &str) -> Option<String> {
        self.query.split('&').find_map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (decode_query(k)? == name).then(|| decode_query(v)).flatten()
        })
    }
}

fn decode_query(s: &str) -> Option<String> {
    let s = s.replace('+', " ");
    percent_encoding::percent_decode_str(&s).decode_utf8().ok().map(Cow::into_owned)
}

/// What parsing a buffer yielded.
#[derive(Debug)]
pub enum Parsed<'a> {
    /// A whole head of this many bytes, and the request's body length.
    Complete { req: Request<'a>, head_len: usize, body_len: usize },
    /// Not yet a whole head.
    Partial,
    /// Not acceptable: answer this status and close.
    Reject(u16, &'static str),
}

/// Parses the head at the start of `buf`, within the limits.
pub fn parse(buf: &[u8]) -> Parsed<'_> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut raw = httparse::Request::new(&mut headers);
    let head_len = match raw.parse(buf) {
        Ok(httparse::Status::Complete(n)) if n <= MAX_HEAD => n,
        Ok(httparse::Status::Complete(_)) => return too_big(),
        Ok(httparse::Status::Partial) if buf.len() >= MAX_HEAD => return too_big(),
        Ok(httparse::Status::Partial) => return Parsed::Partial,
        Err(httparse::Error::TooManyHeaders) => return too_big(),
        Err(httparse::Error::Version) => {
            return Parsed::Reject(505, "HTTP version not supported: use HTTP/1.1");
        }
        Err(_) => return Parsed::Reject(400, "malformed request"),
    };
    let (Some(method_text), Some(target), Some(minor)) = (raw.method, raw.path, raw.version) else {
        return Parsed::Reject(400, "malformed request");
    };
    let method = match method_text {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        "POST" => Method::Post,
        "OPTIONS" => Method::Options,
        _ => Method::Other,
    };
    // Absolute form (`GET http://host/x HTTP/1.1`) names the same resource.
    let origin_form = match target.split_once("://") {
        Some((scheme, rest))
            if scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https") =>
        {
            &rest[rest.find('/').unwrap_or(rest.len())..]
        }
        _ => target,
    };
    let (path, query) = origin_form.split_once('?').unwrap_or((origin_form, ""));
    let path = if path.is_empty() { "/" } else { path };
    let query = query.split('#').next().unwrap_or("");
    let headers: Vec<(&str, &[u8])> = raw.headers.iter().map(|h| (h.name, h.value)).collect();
    let req = Request { method, method_text, path, query, minor, peer: None, headers };
    if req.header("transfer-encoding").is_some() {
        return Parsed::Reject(400, "chunked request bodies are not accepted: send Content-Length");
    }
    let lengths: Vec<&[u8]> = req
        .headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .map(|(_, v)| *v)
        .collect();
    let body_len = match lengths.as_slice() {
        [] => 0,
        [one] => match std::str::from_utf8(one).ok().map(str::trim).and_then(|s| {
            s.bytes().all(|b| b.is_ascii_digit()).then(|| s.parse::<usize>().ok()).flatten()
        }) {
            Some(n) if n <= MAX_BODY => n,
            Some(_) => return Parsed::Reject(413, "request body too large"),
            None => return Parsed::Reject(400, "invalid Content-Length"),
        },
        _ => return Parsed::Reject(400, "more than one Content-Length"),
    };
    Parsed::Complete { req, head_len, body_len }
}

fn too_big() -> Parsed<'static> {
    Parsed::Reject(431, "request header too large")
}

/// A response, serialised by `encode`.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub headers: Vec<(&'static str, Cow<'static, str>)>,
    pub body: Cow<'static, [u8]>,
    /// The body's bytes counted in the server's budget until the answer is
    /// written (see `budget`).
    pub held: Option<super::budget::Held>,
}

impl Response {
    pub fn new(
        status: u16,
        content_type: &'static str,
        body: impl Into<Cow<'static, [u8]>>,
    ) -> Self {
        Response { status, content_type, headers: Vec::new(), body: body.into(), held: None }
    }

    /// `{"error": msg}` with this status.
    pub fn json_error(status: u16, msg: &str) -> Self {
        let body = serde_json::to_vec(&serde_json::json!({ "error": msg })).unwrap_or_default();
        Response::new(status, "application/json", body)
    }

    pub fn with(mut self, name: &'static str, value: impl Into<Cow<'static, str>>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
}

pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Content Too Large",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

/// The bytes of `resp`: head, and the body unless `head_only` (HEAD keeps
/// the Content-Length of the body it omits).
pub fn encode(resp: &Response, head_only: bool, close: bool) -> Vec<u8> {
    let mut out = encode_head(resp, close);
    if !head_only {
        out.extend_from_slice(&resp.body);
    }
    out
}

/// The head of `resp` alone: the front writes the body from where it lies
/// (compiled in, or built once), never copying it.
pub fn encode_head(resp: &Response, close: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(
        format!("HTTP/1.1 {} {}\r\n", resp.status, reason_phrase(resp.status)).as_bytes(),
    );
    out.extend_from_slice(b"Server: chatstack-status\r\nDate: ");
    http_date(&mut out);
    out.extend_from_slice(b"\r\nContent-Type: ");
    out.extend_from_slice(resp.content_type.as_bytes());
    for (k, v) in &resp.headers {
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(b": ");
        // Values are ours, but never let one split the head.
        out.extend(v.bytes().filter(|b| *b != b'\r' && *b != b'\n'));
    }
    if close {
        out.extend_from_slice(b"\r\nConnection: close");
    }
    out.extend_from_slice(format!("\r\nContent-Length: {}\r\n\r\n", resp.body.len()).as_bytes());
    out
}

/// Appends the current `Date` value, formatted once per second per thread.
fn http_date(out: &mut Vec<u8>) {
    use std::cell::RefCell;
    use std::time::{SystemTime, UNIX_EPOCH};
    thread_local!(static CACHE: RefCell<(u64, String)> = const { RefCell::new((0, String::new())) });
    let now = SystemTime::now();
    let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if c.0 != secs || c.1.is_empty() {
            *c = (secs, httpdate::fmt_http_date(now));
        }
        out.extend_from_slice(c.1.as_bytes());
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn complete(buf: &[u8]) -> (Request<'_>, usize, usize) {
        match parse(buf) {
            Parsed::Complete { req, head_len, body_len } => (req, head_len, body_len),
            other => panic!("not complete: {other:?}"),
        }
    }

    fn rejected(buf: &[u8]) -> u16 {
        match parse(buf) {
            Parsed::Reject(code, _) => code,
            other => panic!("not rejected: {other:?}"),
        }
    }

    #[test]
    fn a_head_ends_where_httparse_says_whatever_the_line_endings() {
        let (r, n, _) = complete(b"GET /api/status?x=1 HTTP/1.1\r\nHost: a\r\n\r\nNEXT");
        assert_eq!(
            (r.method, r.path, r.query, r.minor, n),
            (Method::Get, "/api/status", "x=1", 1, 41)
        );
        let (r, n, _) = complete(b"GET / HTTP/1.1\nHost: a\n\nNEXT");
        assert_eq!((r.path, n), ("/", 24));
        assert!(matches!(parse(b"GET / HTTP/1.1\r\nHost: a\r\n"), Parsed::Partial));
        assert!(matches!(parse(b""), Parsed::Partial));
    }

    #[test]
    fn limits_hold_whatever_the_line_endings() {
        let long = format!("GET / HTTP/1.1\nX: {}\n\n", "a".repeat(MAX_HEAD));
        assert_eq!(rejected(long.as_bytes()), 431);
        // A partial head at the cap is rejected at once, not waited for.
        let partial = format!("GET / HTTP/1.1\nX: {}", "a".repeat(MAX_HEAD));
        assert_eq!(rejected(partial.as_bytes()), 431);
        // Blank lines before a request line count too.
        assert_eq!(rejected(&vec![b'\n'; MAX_HEAD + 1]), 431);
        let many: String = (0..MAX_HEADERS + 1).map(|i| format!("H{i}: v\r\n")).collect();
        assert_eq!(rejected(format!("GET / HTTP/1.1\r\n{many}\r\n").as_bytes()), 431);
    }

    #[test]
    fn bad_requests_are_rejected_with_the_right_status() {
        assert_eq!(rejected(b"GET / HTTP/2.0\r\n\r\n"), 505);
        assert_eq!(rejected(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), 505);
        assert_eq!(rejected(b"GET / HTTP/1.1\r\nBad Header\r\n\r\n"), 400);
        assert_eq!(rejected(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"), 400);
        assert_eq!(rejected(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"), 400);
        assert_eq!(
            rejected(b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"),
            400
        );
        assert_eq!(rejected(b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n"), 400);
        assert_eq!(rejected(b"POST / HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n"), 413);
    }

    #[test]
    fn bodies_keep_alive_and_parameters() {
        let (r, _, body) = complete(b"POST /api/push/x HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello");
        assert_eq!((r.method, body), (Method::Post, 5));
        assert!(!r.wants_close());
        let (r, _, _) = complete(b"GET / HTTP/1.0\r\n\r\n");
        assert!(r.wants_close());
        let (r, _, _) = complete(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n");
        assert!(!r.wants_close());
        let (r, _, _) = complete(b"GET / HTTP/1.1\r\nConnection: foo, close\r\n\r\n");
        assert!(r.wants_close());
        let (r, _, _) =
            complete(b"GET /h?service=AI-Memory&since=24%68&msg=a+b%20c HTTP/1.1\r\n\r\n");
        assert_eq!(r.param("service").as_deref(), Some("AI-Memory"));
        assert_eq!(r.param("since").as_deref(), Some("24h"));
        assert_eq!(r.param("msg").as_deref(), Some("a b c"));
        assert_eq!(r.param("nope"), None);
        let (r, _, _) = complete(b"GET http://example/api/status?a HTTP/1.1\r\n\r\n");
        assert_eq!((r.path, r.query), ("/api/status", "a"));
    }

    #[test]
    fn encoding_keeps_the_length_for_head_and_never_splits_the_head() {
        let r = Response::new(200, "text/plain", &b"hello"[..]).with("X-A", "1\r\nInjected: yes");
        let full = String::from_utf8(encode(&r, false, false)).unwrap();
        assert!(full.starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(full.contains("\r\nContent-Length: 5\r\n\r\nhello"));
        assert!(!full.contains("\r\nInjected"));
        let head = String::from_utf8(encode(&r, true, true)).unwrap();
        assert!(head.ends_with("Connection: close\r\nContent-Length: 5\r\n\r\n"), "{head}");
    }
}
