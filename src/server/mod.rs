//! The embedded HTTP server: tiny_http on its own threads, behind the
//! bounded front in `guard`. Routes are one `match`; every response sets its
//! Content-Type. The status is served from an in-memory snapshot: `run`
//! publishes one per cycle, `serve` re-reads the status file only when its
//! modification time changes.

pub mod guard;
pub mod www;

use crate::config::Config;
use crate::metrics;
use crate::status::StatusDoc;
use crate::time::Timestamp;
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};
use tiny_http::{Header, Request, Response};

/// Threads answering requests from tiny_http's queue.
const HANDLERS: usize = 2;

/// A status document with its renderings, built once per cycle (or file change).
pub struct Snapshot {
    pub doc: StatusDoc,
    /// Compact JSON without its closing brace: `stale` and `age_s` are
    /// appended per request.
    json_open: Vec<u8>,
}

impl Snapshot {
    pub fn new(doc: StatusDoc) -> Self {
        let mut json_open = serde_json::to_vec(&doc).unwrap_or_else(|_| b"{}".to_vec());
        json_open.pop(); // the closing '}'
        Snapshot { doc, json_open }
    }

    fn api_json(&self, stale_after: Duration) -> Vec<u8> {
        let age = self.doc.age_s(Timestamp::now());
        let stale = age > stale_after.as_secs_f64();
        let mut v = self.json_open.clone();
        v.extend_from_slice(format!(",\"stale\":{stale},\"age_s\":{:.1}}}", age).as_bytes());
        v
    }
}

/// Where the server's status comes from.
pub enum Source {
    /// `run`: the daemon publishes each cycle.
    Live(Live),
    /// `serve`: the file cron'd `check` writes.
    File(FileSource),
}

#[derive(Default)]
pub struct Live {
    snapshot: RwLock<Option<Arc<Snapshot>>>,
    last_cycle_end: Mutex<Option<Instant>>,
    /// Extra metric families owned by the daemon (notification counters).
    extra_metrics: RwLock<String>,
}

impl Live {
    pub fn publish(&self, doc: StatusDoc) {
        let snap = Arc::new(Snapshot::new(doc));
        if let Ok(mut s) = self.snapshot.write() {
            *s = Some(snap);
        }
        if let Ok(mut t) = self.last_cycle_end.lock() {
            *t = Some(Instant::now());
        }
    }

    pub fn set_extra_metrics(&self, text: String) {
        if let Ok(mut m) = self.extra_metrics.write() {
            *m = text;
        }
    }
}

pub struct FileSource {
    path: PathBuf,
    cache: Mutex<Option<(SystemTime, u64, Arc<Snapshot>)>>,
}

impl FileSource {
    pub fn new(path: PathBuf) -> Self {
        FileSource { path, cache: Mutex::new(None) }
    }

    /// The current snapshot, re-reading the file only when it changed.
    fn snapshot(&self) -> Result<Arc<Snapshot>, String> {
        let meta = std::fs::metadata(&self.path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => {
                format!("no status file yet at {}", self.path.display())
            }
            _ => format!("cannot read {}: {e}", self.path.display()),
        })?;
        let key = (meta.modified().unwrap_or(SystemTime::UNIX_EPOCH), meta.len());
        let mut cache = self.cache.lock().map_err(|_| "internal error".to_string())?;
        if let Some((m, l, snap)) = cache.as_ref()
            && (*m, *l) == key
        {
            return Ok(Arc::clone(snap));
        }
        let doc = crate::app::read_status(&self.path).map_err(|e| e.to_string())?;
        let snap = Arc::new(Snapshot::new(doc));
        *cache = Some((key.0, key.1, Arc::clone(&snap)));
        Ok(snap)
    }
}

/// Settings read from the config, replaced on reload.
pub struct Web {
    /// The exact `Authorization` header value accepted, when auth is on.
    auth: Option<Vec<u8>>,
    www_dir: Option<PathBuf>,
    cors_origins: Vec<String>,
    stale_after: Duration,
    /// `run`: /healthz fails when no cycle ended within this.
    cycle_window: Duration,
}

impl Web {
    /// Reads the password file: an unreadable one is a start-up/reload error.
    pub fn from_config(c: &Config) -> Result<Web, String> {
        let auth = match &c.basic_auth {
            None => None,
            Some(a) => {
                let pw = std::fs::read_to_string(&a.password_file).map_err(|e| {
                    format!(
                        "{}: cannot read basic_auth password_file: {e}",
                        a.password_file.display()
                    )
                })?;
                let pw = pw.trim_end_matches(['\n', '\r']);
                if pw.is_empty() {
                    return Err(format!(
                        "{}: basic_auth password_file is empty",
                        a.password_file.display()
                    ));
                }
                Some(
                    format!("Basic {}", base64(format!("{}:{pw}", a.user).as_bytes())).into_bytes(),
                )
            }
        };
        Ok(Web {
            auth,
            www_dir: c.www_dir.clone(),
            cors_origins: c.cors_origins.clone(),
            stale_after: c.stale_after,
            cycle_window: c.interval * 2 + c.max_timeout(),
        })
    }
}

pub struct Server {
    pub source: Source,
    pub web: RwLock<Arc<Web>>,
    /// Kept for the life of the server: holds the private backend socket.
    _dir: tempfile::TempDir,
}

impl Server {
    pub fn set_web(&self, web: Web) {
        if let Ok(mut w) = self.web.write() {
            *w = Arc::new(web);
        }
    }

    pub fn live(&self) -> Option<&Live> {
        match &self.source {
            Source::Live(l) => Some(l),
            Source::File(_) => None,
        }
    }
}

/// Starts serving `listener` (already bound by the caller, so bind errors
/// are reported at start-up). Returns the shared server state.
pub fn start(listener: TcpListener, source: Source, web: Web) -> std::io::Result<Arc<Server>> {
    let dir = tempfile::Builder::new().prefix("chatstack-status-http.").tempdir()?;
    let sock = dir.path().join("http.sock");
    let backend = std::os::unix::net::UnixListener::bind(&sock)?;
    let http = tiny_http::Server::from_listener(backend, None).map_err(std::io::Error::other)?;
    let http = Arc::new(http);
    let server = Arc::new(Server { source, web: RwLock::new(Arc::new(web)), _dir: dir });
    for i in 0..HANDLERS {
        let (http, server) = (Arc::clone(&http), Arc::clone(&server));
        std::thread::Builder::new().name(format!("http-{i}")).spawn(move || {
            while let Ok(req) = http.recv() {
                handle(&server, req);
            }
        })?;
    }
    let addr = listener.local_addr()?;
    let fast_server = Arc::clone(&server);
    let fast: guard::Fast = Arc::new(move |head: &[u8]| fast_answer(&fast_server, head));
    guard::spawn(listener, sock, fast)?;
    crate::info!("listening on {addr}");
    Ok(server)
}

/// The hot path, answered by the front without tiny_http: a plain
/// `GET /api/status` over HTTP/1.1 with valid (or no required) credentials,
/// no Origin and no body, once a status exists. Everything else (CORS, 401,
/// 503, HEAD, other paths and versions) is declined and served by `handle`,
/// which stays the one place that defines the full behaviour.
fn fast_answer(server: &Server, head: &[u8]) -> Option<(Vec<u8>, bool)> {
    let text = std::str::from_utf8(head).ok()?;
    let mut lines = text.split('\n').map(|l| l.trim_end_matches('\r'));
    let mut parts = lines.next()?.split(' ');
    let (method, target, version) = (parts.next()?, parts.next()?, parts.next()?);
    if method != "GET" || version != "HTTP/1.1" || parts.next().is_some() {
        return None;
    }
    if target.split(['?', '#']).next() != Some("/api/status") {
        return None;
    }
    let web = server.web.read().ok().map(|w| Arc::clone(&w))?;
    let mut close = false;
    let mut authorized = web.auth.is_none();
    for line in lines.filter(|l| !l.is_empty()) {
        let (name, value) = line.split_once(':')?;
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "authorization" => {
                authorized =
                    web.auth.as_deref().is_some_and(|e| constant_time_eq(value.as_bytes(), e))
            }
            "connection" => close = value.eq_ignore_ascii_case("close"),
            "origin" | "transfer-encoding" | "expect" | "upgrade" => return None,
            "content-length" if value != "0" => return None,
            _ => {}
        }
    }
    if !authorized {
        return None;
    }
    let body = snapshot(server).ok()?.api_json(web.stale_after);
    let mut out = Vec::with_capacity(body.len() + 160);
    out.extend_from_slice(b"HTTP/1.1 200 OK\r\nServer: chatstack-status\r\nDate: ");
    out.extend_from_slice(crate::time::http_date(std::time::SystemTime::now()).as_bytes());
    out.extend_from_slice(b"\r\nContent-Type: application/json\r\nCache-Control: no-store\r\n");
    if close {
        out.extend_from_slice(b"Connection: close\r\n");
    }
    out.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
    out.extend_from_slice(&body);
    Some((out, close))
}

fn header(k: &str, v: &str) -> Header {
    Header::from_bytes(k.as_bytes(), v.as_bytes()).unwrap_or_else(|_| {
        Header::from_bytes(&b"X-Invalid"[..], &b"1"[..]).expect("static header is valid")
    })
}

fn respond(req: Request, status: u16, ctype: &str, body: Vec<u8>, extra: &[(&str, String)]) {
    let mut r = Response::from_data(body)
        .with_status_code(status)
        .with_header(header("Content-Type", ctype));
    for (k, v) in extra {
        r.add_header(header(k, v));
    }
    // A client that went away is not our problem.
    let _ = req.respond(r);
}

fn json_error(msg: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({ "error": msg })).unwrap_or_default()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for i in 0..a.len().max(b.len()) {
        diff |= usize::from(a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0xff));
    }
    diff == 0
}

fn handle(server: &Server, req: Request) {
    let web = server.web.read().map(|w| Arc::clone(&w)).ok();
    let Some(web) = web else { return };
    let path = req.url().split(['?', '#']).next().unwrap_or("/").to_string();
    let method = req.method().clone();
    let origin = req
        .headers()
        .iter()
        .find(|h| h.field.equiv("Origin"))
        .map(|h| h.value.as_str().to_string())
        .filter(|o| web.cors_origins.iter().any(|c| c == o || c == "*"));
    if method == tiny_http::Method::Options && path == "/api/status" && origin.is_some() {
        // CORS preflight (a cross-origin fetch with credentials sends one):
        // answered without auth, as browsers send no credentials with it.
        let mut extra = cors_headers(origin, web.auth.is_some());
        extra.push(("Access-Control-Allow-Methods", "GET, HEAD".into()));
        extra.push(("Access-Control-Allow-Headers", "Authorization".into()));
        extra.push(("Access-Control-Max-Age", "600".into()));
        return respond(req, 204, "text/plain", Vec::new(), &extra);
    }
    if !matches!(method, tiny_http::Method::Get | tiny_http::Method::Head) {
        return respond(
            req,
            405,
            "application/json",
            json_error("method not allowed: use GET or HEAD"),
            &[("Allow", "GET, HEAD".into())],
        );
    }
    if path == "/healthz" {
        let (ok, why) = healthy(server, &web);
        let body =
            serde_json::to_vec(&serde_json::json!({"ok": ok, "detail": why})).unwrap_or_default();
        return respond(
            req,
            if ok { 200 } else { 503 },
            "application/json",
            body,
            &[("Cache-Control", "no-store".into())],
        );
    }
    if let Some(expected) = &web.auth {
        let given = req
            .headers()
            .iter()
            .find(|h| h.field.equiv("Authorization"))
            .map(|h| h.value.as_bytes().to_vec());
        if !given.is_some_and(|g| constant_time_eq(&g, expected)) {
            return respond(
                req,
                401,
                "application/json",
                json_error("authentication required"),
                &[(
                    "WWW-Authenticate",
                    "Basic realm=\"chatstack-status\", charset=\"UTF-8\"".into(),
                )],
            );
        }
    }
    match path.as_str() {
        "/api/status" => {
            let mut extra = vec![("Cache-Control", "no-store".to_string())];
            extra.extend(cors_headers(origin, web.auth.is_some()));
            match snapshot(server) {
                Ok(s) => respond(req, 200, "application/json", s.api_json(web.stale_after), &extra),
                Err(e) => respond(req, 503, "application/json", json_error(&e), &extra),
            }
        }
        "/metrics" => {
            let snap = snapshot(server).ok();
            let mut text = metrics::render(snap.as_ref().map(|s| &s.doc), Timestamp::now());
            if let Some(live) = server.live()
                && let Ok(extra) = live.extra_metrics.read()
            {
                text.push_str(&extra);
            }
            respond(
                req,
                200,
                metrics::CONTENT_TYPE,
                text.into_bytes(),
                &[("Cache-Control", "no-store".into())],
            )
        }
        p => match www::relative_path(p)
            .and_then(|rel| www::lookup(web.www_dir.as_deref(), &rel).map(|b| (rel, b)))
        {
            Some((rel, bytes)) => respond(
                req,
                200,
                www::content_type(&rel),
                bytes.into_owned(),
                &[("Cache-Control", "no-cache".into())],
            ),
            None => respond(req, 404, "application/json", json_error("not found"), &[]),
        },
    }
}

/// CORS headers for an allowed `origin` (None: none at all).
fn cors_headers(origin: Option<String>, credentials: bool) -> Vec<(&'static str, String)> {
    let Some(o) = origin else { return Vec::new() };
    let mut h = vec![("Access-Control-Allow-Origin", o), ("Vary", "Origin".to_string())];
    if credentials {
        h.push(("Access-Control-Allow-Credentials", "true".to_string()));
    }
    h
}

fn snapshot(server: &Server) -> Result<Arc<Snapshot>, String> {
    match &server.source {
        Source::Live(l) => l
            .snapshot
            .read()
            .ok()
            .and_then(|s| s.clone())
            .ok_or_else(|| "no status yet: the first check cycle has not finished".to_string()),
        Source::File(f) => f.snapshot(),
    }
}

fn healthy(server: &Server, web: &Web) -> (bool, String) {
    match &server.source {
        Source::Live(l) => match l.last_cycle_end.lock().ok().and_then(|t| *t) {
            Some(t) if t.elapsed() <= web.cycle_window => {
                (true, format!("last cycle ended {:.1} s ago", t.elapsed().as_secs_f64()))
            }
            Some(t) => {
                (false, format!("no cycle has ended for {:.0} s", t.elapsed().as_secs_f64()))
            }
            None => (false, "the first cycle has not finished".into()),
        },
        Source::File(f) => match f.snapshot() {
            Ok(s) => {
                let age = s.doc.age_s(Timestamp::now());
                if age > web.stale_after.as_secs_f64() {
                    (false, format!("status file is stale: {age:.0} s old"))
                } else {
                    (true, format!("status file is {age:.1} s old"))
                }
            }
            Err(e) => (false, e),
        },
    }
}

/// Standard base64 with padding, for Basic auth (the header we expect, and
/// the one the Twilio notifier sends).
pub fn base64(input: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
            ("admin:s3cret", "YWRtaW46czNjcmV0"),
        ] {
            assert_eq!(base64(i.as_bytes()), o);
        }
    }

    #[test]
    fn constant_time_eq_is_eq() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert!(!constant_time_eq(b"", b"a"));
    }
}
