//! The embedded HTTP server: `front` (connections, bounds), `wire` (the one
//! request parser and response writer), `route` (the one routing
//! function), `www` (dashboard files). The status is served from an
//! in-memory snapshot: `run` publishes one per cycle, `serve` re-reads the
//! status file only when it changes.
//!
//! tiny_http is not used here: 0.12 has no header limits, no read timeouts,
//! a thread per connection without limit and an accept loop that dies on
//! the first accept error, so it could only ever sit behind a front that
//! already parsed, bounded and answered (the hot path) every request — a
//! second parser that disagreed with the front's (the bare-LF smuggling of
//! issue 10) and a relay that could wedge both (see docs/BENCHMARKS.md).

pub mod budget;
pub mod front;
pub mod history;
pub mod push;
pub mod route;
pub mod tls;
pub mod wire;
pub mod www;

use crate::config::Config;
use crate::status::StatusDoc;
use crate::time::Timestamp;
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant, SystemTime};

/// A status document with its renderings, built once per cycle (or file change).
pub struct Snapshot {
    pub doc: StatusDoc,
    /// Compact JSON without its closing brace: `stale` and `age_s` are
    /// appended per request. Made by the first request that needs it: an
    /// idle daemon nobody asks does not serialise its document a second
    /// time each cycle (2 % of an idle cycle's CPU).
    json_open: OnceLock<Vec<u8>>,
}

impl Snapshot {
    pub fn new(doc: StatusDoc) -> Self {
        Snapshot { doc, json_open: OnceLock::new() }
    }

    fn json_open(&self) -> &[u8] {
        self.json_open.get_or_init(|| {
            let mut json = serde_json::to_vec(&self.doc).unwrap_or_else(|_| b"{}".to_vec());
            json.pop(); // the closing '}'
            json
        })
    }

    /// The `/api/status` body: the document plus `stale` and `age_s`.
    pub fn api_json(&self, stale_after: Duration) -> Vec<u8> {
        let age = self.doc.age_s(Timestamp::now());
        let stale = age > stale_after.as_secs_f64();
        let open = self.json_open();
        let mut v = Vec::with_capacity(open.len() + 32);
        v.extend_from_slice(open);
        v.extend_from_slice(format!(",\"stale\":{stale},\"age_s\":{age:.1}}}").as_bytes());
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
    /// HTTP pushes waiting for the next cycle to record them.
    pushes: push::Inbox,
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

    /// The HTTP pushes received since the last take (the daemon's cycle
    /// records them in the state file, under its lock).
    pub fn take_pushes(&self) -> Vec<(String, push::Queued)> {
        self.pushes.take()
    }

    /// Puts back pushes a cycle took but could not save.
    pub fn requeue_pushes(&self, taken: Vec<(String, push::Queued)>) {
        self.pushes.requeue(taken);
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
    pub(crate) fn snapshot(&self) -> Result<Arc<Snapshot>, String> {
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
        let doc = crate::status::read(&self.path).map_err(|e| e.to_string())?;
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
    /// HTTPS settings, when `tls:` is configured.
    tls: Option<Arc<rustls::ServerConfig>>,
    /// The history store's readers (None: `history_db: off`).
    history: Option<Arc<history::History>>,
    /// The configured services, in config order (the history answers' order).
    services: Vec<String>,
    /// Who may push to each push check (by service name).
    pushes: std::collections::HashMap<String, push::Gate>,
}

impl Web {
    /// Reads the password and TLS files: an unreadable or bad one is a
    /// start-up error, or a reload that keeps the old settings.
    pub fn from_config(c: &Config) -> Result<Web, String> {
        let auth = match &c.basic_auth {
            None => None,
            Some(a) => {
                let pw = read_secret(&a.password_file, "basic_auth password_file")?;
                let creds = format!("{}:{pw}", a.user);
                use base64::Engine as _;
                let encoded = base64::engine::general_purpose::STANDARD.encode(creds);
                Some(format!("Basic {encoded}").into_bytes())
            }
        };
        Ok(Web {
            auth,
            www_dir: c.www_dir.clone(),
            cors_origins: c.cors_origins.clone(),
            stale_after: c.stale_after,
            cycle_window: c.interval * 2 + c.max_timeout(),
            tls: c.tls.as_ref().map(tls::server_config).transpose()?,
            history: c.history_store.path.as_ref().map(|p| {
                Arc::new(history::History {
                    pool: crate::store::ReaderPool::new(p, history::READERS),
                    retention: c.history_store.retention,
                })
            }),
            services: c.services.iter().map(|s| s.name.clone()).collect(),
            pushes: push::gates(c)?,
        })
    }
}

/// A secret kept in a file (the basic_auth password, a push check's token):
/// the file without its trailing line end. A FIFO, a directory, an unreadable or empty file is an
/// error (at start-up, or a reload that keeps the old config), never a hang.
fn read_secret(path: &std::path::Path, what: &str) -> Result<String, String> {
    let bytes = crate::fsutil::read_regular(path, 64 * 1024)
        .map_err(|e| format!("{}: cannot read {what}: {e}", path.display()))?;
    let text = String::from_utf8_lossy(&bytes);
    let secret = text.trim_end_matches(['\n', '\r']);
    if secret.is_empty() {
        return Err(format!("{}: {what} is empty", path.display()));
    }
    Ok(secret.to_string())
}

pub struct Server {
    source: Source,
    web: RwLock<Arc<Web>>,
    front: OnceLock<front::Front>,
    /// Bytes of large answers built and not yet sent (see `budget`).
    budget: budget::Budget,
    /// Failed push tokens per client (see `push::Throttle`).
    push_throttle: push::Throttle,
}

impl Server {
    pub fn set_web(&self, mut web: Web) {
        if let Ok(mut w) = self.web.write() {
            // Same database: keep the open readers.
            if let (Some(old), Some(new)) = (&w.history, &web.history)
                && old.pool.path() == new.pool.path()
                && old.retention == new.retention
            {
                web.history = Some(Arc::clone(old));
            }
            *w = Arc::new(web);
        }
    }

    pub fn live(&self) -> Option<&Live> {
        match &self.source {
            Source::Live(l) => Some(l),
            Source::File(_) => None,
        }
    }

    fn web(&self) -> Option<Arc<Web>> {
        self.web.read().ok().map(|w| Arc::clone(&w))
    }

    /// Client connections held open now.
    pub fn connections(&self) -> usize {
        self.front.get().map_or(0, front::Front::connections)
    }

    pub(crate) fn snapshot(&self) -> Result<Arc<Snapshot>, String> {
        match &self.source {
            Source::Live(l) => {
                l.snapshot.read().ok().and_then(|s| s.clone()).ok_or_else(|| {
                    "no status yet: the first check cycle has not finished".to_string()
                })
            }
            Source::File(f) => f.snapshot(),
        }
    }

    fn extra_metrics(&self) -> String {
        match &self.source {
            Source::Live(l) => l.extra_metrics.read().map(|m| m.clone()).unwrap_or_default(),
            Source::File(_) => String::new(),
        }
    }

    fn healthy(&self, web: &Web) -> (bool, String) {
        match &self.source {
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
}

/// Starts serving `listener` (already bound by the caller, so bind errors
/// are reported at start-up). Returns the shared server state.
pub fn start(listener: TcpListener, source: Source, web: Web) -> std::io::Result<Arc<Server>> {
    let addr = listener.local_addr()?;
    let server = Arc::new(Server {
        source,
        web: RwLock::new(Arc::new(web)),
        front: OnceLock::new(),
        budget: budget::Budget::new(budget::DEFAULT_BYTES),
        push_throttle: push::Throttle::default(),
    });
    let routed = Arc::clone(&server);
    let handler: front::Handler = Arc::new(move |req, body| route::route(&routed, req, body));
    let settings = Arc::clone(&server);
    let tls: front::TlsSource = Arc::new(move || settings.web().and_then(|w| w.tls.clone()));
    let https = server.web().is_some_and(|w| w.tls.is_some());
    let _ = server.front.set(front::spawn(listener, front::Limits::default(), handler, tls)?);
    crate::info!("listening on {addr}");
    if https {
        crate::info!("serving HTTPS only on {addr} (tls: configured)");
    }
    Ok(server)
}

/// Polls `cond` until it holds or `within` passes (then panics); for unit tests.
#[cfg(test)]
pub(crate) fn tests_wait(within: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !cond() {
        assert!(Instant::now() < deadline, "condition not met within {within:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_is_serialised_for_the_api_only_when_first_asked() {
        let doc = StatusDoc::empty("h");
        let snap = Snapshot::new(doc.clone());
        assert!(snap.json_open.get().is_none(), "serialised before anyone asked");
        let body = snap.api_json(Duration::from_secs(60));
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["host"], "h");
        assert_eq!(v["stale"], true);
        let mut compact = serde_json::to_vec(&doc).unwrap();
        compact.pop();
        assert_eq!(snap.json_open.get(), Some(&compact));
    }
}
