//! Test support: a hermetic `Env` (tempdir, config, fake programs, the real
//! binary) and loopback fixtures (HTTP servers good and hostile, TCP
//! listeners, closed ports, marked child processes). Everything stops on Drop.

#![allow(dead_code)]

mod daemon;
mod pki;
pub use daemon::{Daemon, request, simple_config, started};
pub use pki::Pki;

use serde_json::Value;
use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_chatstack-status");
/// No single run of the binary in a test may take longer than this.
const RUN_LIMIT: Duration = Duration::from_secs(30);

/// Polls `cond` until it holds or `within` passes (then panics).
#[track_caller]
pub fn wait_until(within: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    loop {
        if cond() {
            return;
        }
        assert!(Instant::now() < deadline, "condition not met within {within:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A name no other test (or process on the host) uses.
pub fn unique(prefix: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("{prefix}{}{}{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed), nanos)
}

/// What one run of the binary did.
#[derive(Debug)]
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Out {
    /// stdout parsed as JSON.
    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout))
    }

    #[track_caller]
    pub fn code(&self, expected: i32) -> &Self {
        assert_eq!(self.code, expected, "exit code; {self:#?}");
        self
    }
}

/// A test's private world: a tempdir with the config, `bin/` (first on
/// PATH) for fake programs, and the status and state files.
pub struct Env {
    dir: tempfile::TempDir,
}

impl Default for Env {
    fn default() -> Self {
        Self::new()
    }
}

impl Env {
    pub fn new() -> Self {
        let dir = tempfile::Builder::new().prefix("chatstack-test.").tempdir().expect("tempdir");
        fs::create_dir(dir.path().join("bin")).expect("bin/");
        Env { dir }
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn config_path(&self) -> PathBuf {
        self.path("monitor.yml")
    }

    pub fn status_path(&self) -> PathBuf {
        self.path("status.json")
    }

    pub fn state_path(&self) -> PathBuf {
        self.path("state.json")
    }

    pub fn history_path(&self) -> PathBuf {
        self.path("history.db")
    }

    /// Writes `monitor.yml`: `yaml`, with `status_file`/`state_file`/`history_db`
    /// in the tempdir unless it sets them.
    pub fn config(&self, yaml: &str) -> &Self {
        let mut text = String::new();
        let has = |key: &str| yaml.lines().any(|l| l.starts_with(&format!("{key}:")));
        if !has("status_file") {
            text.push_str(&format!("status_file: {:?}\n", self.status_path()));
        }
        if !has("state_file") {
            text.push_str(&format!("state_file: {:?}\n", self.state_path()));
        }
        if !has("history_db") {
            text.push_str(&format!("history_db: {:?}\n", self.history_path()));
        }
        text.push_str(yaml);
        self.write("monitor.yml", &text);
        self
    }

    /// Writes a file under the tempdir (parents created).
    pub fn write(&self, rel: &str, content: &str) -> PathBuf {
        let p = self.path(rel);
        if let Some(d) = p.parent() {
            fs::create_dir_all(d).expect("mkdir");
        }
        fs::write(&p, content).expect("write");
        p
    }

    pub fn read(&self, rel: &str) -> String {
        fs::read_to_string(self.path(rel)).unwrap_or_default()
    }

    /// Writes an executable `bin/<name>` (first on PATH in `cmd`).
    pub fn fake_program(&self, name: &str, script: &str) -> PathBuf {
        let p = self.path(&format!("bin/{name}"));
        write_executable(&p, script);
        p
    }

    /// A fake `systemctl`: `show` answers from `units/<unit>` (KEY=VALUE
    /// lines; missing file: `LoadState=not-found`), one block per unit
    /// named, separated by an empty line, as systemd does, `restart` and
    /// `reset-failed` exit with the code in `systemctl.rc` (default 0), and
    /// every call's arguments are appended to `systemctl.log`.
    pub fn fake_systemctl(&self) -> &Self {
        let d = self.root().display();
        self.fake_program(
            "systemctl",
            &format!(
                r#"#!/bin/sh
[ "$1" = __ready ] && exit 0
# A test may run the monitor with a file size limit (a full disk): the
# fake's own log must not be limited with it.
ulimit -S -f unlimited 2>/dev/null
D='{d}'
echo "$*" >> "$D/systemctl.log"
case "$1" in
  show)
    # As systemd answers: one block per unit, in argument order, separated
    # by an empty line.
    shift; first=1
    while [ $# -gt 0 ]; do
      case "$1" in -p) shift 2; continue ;; -*) shift; continue ;; esac
      [ $first = 1 ] || echo; first=0
      if [ -f "$D/units/$1" ]; then cat "$D/units/$1"
      else printf 'LoadState=not-found\nActiveState=inactive\nSubState=dead\nResult=success\nNRestarts=0\n'
      fi
      shift
    done
    exit 0 ;;
  restart|reset-failed)
    exit "$(cat "$D/systemctl.rc" 2>/dev/null || echo 0)" ;;
esac
exit 0
"#
            ),
        );
        fs::create_dir_all(self.path("units")).expect("units/");
        self
    }

    /// Sets what the fake systemctl says about `unit`:
    /// `ActiveState SubState Result`, e.g. `unit("web.service", "failed", "failed", "exit-code")`.
    pub fn unit(&self, unit: &str, active: &str, sub: &str, result: &str) -> &Self {
        self.write(
            &format!("units/{unit}"),
            &format!(
                "LoadState=loaded\nActiveState={active}\nSubState={sub}\nResult={result}\nNRestarts=0\n"
            ),
        );
        self
    }

    /// The exit code of the fake `systemctl restart|reset-failed`.
    pub fn restart_exit(&self, code: i32) -> &Self {
        self.write("systemctl.rc", &format!("{code}\n"));
        self
    }

    /// Every call of the fake systemctl, one line of arguments each.
    pub fn systemctl_calls(&self) -> Vec<String> {
        self.read("systemctl.log").lines().map(str::to_string).collect()
    }

    /// Calls of the fake systemctl other than `show`.
    pub fn systemctl_actions(&self) -> Vec<String> {
        self.systemctl_calls().into_iter().filter(|l| !l.starts_with("show ")).collect()
    }

    /// Runs the binary: `PATH` = `bin/` + inherited, our variables removed,
    /// `NO_COLOR=1`, stdin null. Panics if it panicked or ran away.
    #[track_caller]
    pub fn cmd(&self, args: &[&str]) -> Out {
        self.cmd_env(args, &[])
    }

    /// `cmd` with extra environment (`PATH` may be replaced here too).
    #[track_caller]
    pub fn cmd_env(&self, args: &[&str], env: &[(&str, &str)]) -> Out {
        let out = run_bin(self.command(args, env));
        assert_no_panic(&out);
        out
    }

    /// The `Command` that `cmd_env` runs, for tests that need the child.
    pub fn command(&self, args: &[&str], env: &[(&str, &str)]) -> Command {
        let mut c = Command::new(BIN);
        c.args(args);
        self.prepare(c, env)
    }

    /// The binary run with `args` through `sh -c SCRIPT`, in the same
    /// environment as `command`: SCRIPT ends with `exec "$0" "$@"` after
    /// setting up what the test needs (e.g. `ulimit -f 0`: a full disk).
    pub fn command_via_sh(&self, script: &str, args: &[&str]) -> Command {
        let mut c = Command::new("sh");
        c.arg("-c").arg(script).arg(BIN).args(args);
        self.prepare(c, &[])
    }

    fn prepare(&self, mut c: Command, env: &[(&str, &str)]) -> Command {
        c.current_dir(self.root()).stdin(Stdio::null());
        for (k, _) in std::env::vars_os() {
            let k = k.to_string_lossy();
            if k.starts_with("CHATSTACK_")
                || matches!(
                    k.as_ref(),
                    "NOTIFY_SOCKET"
                        | "JOURNAL_STREAM"
                        | "WATCHDOG_USEC"
                        | "WATCHDOG_PID"
                        | "SSL_CERT_FILE"
                )
            {
                c.env_remove(k.as_ref());
            }
        }
        let path = std::env::var("PATH").unwrap_or_default();
        c.env("PATH", format!("{}:{path}", self.path("bin").display()));
        c.env("NO_COLOR", "1");
        // systemd is the fake `systemctl`'s, never the host's (a dead bus
        // address: the binary falls back to `systemctl`).
        c.env("DBUS_SYSTEM_BUS_ADDRESS", format!("unix:path={}", self.path("no-bus").display()));
        for (k, v) in env {
            c.env(k, v);
        }
        c
    }

    /// `check -c monitor.yml` plus `args`.
    #[track_caller]
    pub fn check(&self, args: &[&str]) -> Out {
        let cfg = self.config_path();
        let mut all = vec!["check", "-c", cfg.to_str().expect("utf-8 path")];
        all.extend_from_slice(args);
        self.cmd(&all)
    }

    /// The status file as JSON.
    #[track_caller]
    pub fn status(&self) -> Value {
        read_json(&self.status_path())
    }

    /// The state file as JSON.
    #[track_caller]
    pub fn state(&self) -> Value {
        read_json(&self.state_path())
    }

    /// The status file's entry for service `name`.
    #[track_caller]
    pub fn service(&self, name: &str) -> Value {
        service_of(&self.status(), name)
    }
}

/// A service's entry in a status document.
#[track_caller]
pub fn service_of(doc: &Value, name: &str) -> Value {
    doc["services"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["name"] == name))
        .cloned()
        .unwrap_or_else(|| panic!("no service {name:?} in {doc:#}"))
}

/// The first check of service `name` in a status document.
#[track_caller]
pub fn check_of(doc: &Value, name: &str) -> Value {
    service_of(doc, name)["checks"][0].clone()
}

#[track_caller]
pub fn read_json(path: &Path) -> Value {
    let text =
        fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not JSON ({e}):\n{text}", path.display()))
}

#[track_caller]
pub fn assert_no_panic(out: &Out) {
    for bad in ["panicked", "internal error", "RUST_BACKTRACE", "stack backtrace"] {
        assert!(!out.stderr.contains(bad), "stderr contains {bad:?}:\n{}", out.stderr);
    }
}

/// Runs a prepared command to completion (bounded by `RUN_LIMIT`).
#[track_caller]
pub fn run_bin(mut c: Command) -> Out {
    let started = Instant::now();
    let mut child =
        c.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn the binary");
    let out_r = reader(child.stdout.take());
    let err_r = reader(child.stderr.take());
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    let status = match rx.recv_timeout(RUN_LIMIT) {
        Ok(s) => s.expect("wait"),
        Err(_) => {
            kill(pid);
            panic!("the binary ran longer than {RUN_LIMIT:?}: {c:?}");
        }
    };
    let elapsed = started.elapsed();
    let stdout = out_r.join().unwrap_or_default();
    let stderr = err_r.join().unwrap_or_default();
    Out { code: status.code().unwrap_or(-1), stdout, stderr, elapsed }
}

fn reader<R: Read + Send + 'static>(pipe: Option<R>) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut s = Vec::new();
        if let Some(mut p) = pipe {
            let _ = p.read_to_end(&mut s);
        }
        String::from_utf8_lossy(&s).into_owned()
    })
}

pub fn kill(pid: u32) {
    if let Some(pid) = rustix::process::Pid::from_raw(pid as i32) {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
    }
}

/// Writes an executable script and waits until it can be executed: another
/// thread forking while the file was open for writing makes exec fail with
/// ETXTBSY until that child has exec'd. The script must exit 0 at once
/// when its first argument is `__ready`.
pub fn write_executable(path: &Path, script: &str) {
    {
        let mut f = fs::File::create(path).expect("create script");
        f.write_all(script.as_bytes()).expect("write script");
        f.set_permissions(fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    wait_until(Duration::from_secs(10), || {
        match Command::new(path).arg("__ready").stdin(Stdio::null()).status() {
            Ok(_) => true,
            Err(e) if e.raw_os_error() == Some(26) => false, // ETXTBSY
            Err(e) => panic!("cannot run {}: {e}", path.display()),
        }
    });
}

// ----- fixtures -----------------------------------------------------------

/// A port on 127.0.0.1 that nothing listens on and nothing else can take.
///
/// Why not bind, record and drop: the port is then free, and another test's
/// fixture or daemon binding port 0 can be handed it while this test still
/// expects "refused" (a CI run saw a "down" service come up that way). Here
/// the port is the client end of a loopback connection held for the life of
/// the test binary: no listener on it, so a connect is refused, and bind
/// (explicit or port 0) cannot reuse it while the connection exists.
pub fn closed_port() -> u16 {
    static HELD: Mutex<Vec<(TcpListener, TcpStream, TcpStream)>> = Mutex::new(Vec::new());
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let client = TcpStream::connect(l.local_addr().expect("addr")).expect("connect");
    let (server, _) = l.accept().expect("accept");
    let port = client.local_addr().expect("client addr").port();
    HELD.lock().unwrap_or_else(|p| p.into_inner()).push((l, client, server));
    port
}

/// A TCP listener on 127.0.0.1 that accepts (and drops) connections until dropped.
pub struct TcpFixture {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl TcpFixture {
    pub fn new() -> Self {
        accept_loop(|_stream, _stop| {})
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }
}

impl Default for TcpFixture {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TcpFixture {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Accepts connections on 127.0.0.1:0 and hands each to `handle` on its own
/// thread, until dropped (the handler should end when `stop` is set).
pub fn accept_loop(handle: impl Fn(TcpStream, &AtomicBool) + Send + Sync + 'static) -> TcpFixture {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let stop = Arc::new(AtomicBool::new(false));
    let handle = Arc::new(handle);
    let thread = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut workers = Vec::new();
            for stream in listener.incoming() {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let (handle, stop) = (Arc::clone(&handle), Arc::clone(&stop));
                workers.push(std::thread::spawn(move || handle(stream, &stop)));
            }
            for w in workers {
                let _ = w.join();
            }
        })
    };
    TcpFixture { addr, stop, thread: Some(thread) }
}

/// How an HTTP fixture answers.
#[derive(Debug, Clone)]
pub enum Behaviour {
    /// 200 with this body.
    Ok(String),
    /// This status, body "status N".
    Status(u16),
    /// Waits this many ms, then 200 "ok".
    Delay(u64),
    /// Accepts the connection and never answers.
    HangAfterAccept,
    /// 200 with a 64 MiB body of 'x' (Content-Length set).
    HugeBody,
    /// 200 with no length and 'x' forever (bounded at 256 MiB per connection).
    EndlessBody,
    /// 302 to itself.
    RedirectLoop,
    /// Not HTTP at all.
    Garbage,
}

/// Holds a connection open, answering nothing and draining what it sends,
/// until the peer closes, `stop` is set, or a minute passes (bounded).
pub fn hold_silently(stream: &TcpStream, stop: &AtomicBool) {
    let _ = stream.set_read_timeout(Some(Duration::from_millis(50)));
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut buf = [0u8; 1024];
    let mut s = stream;
    while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return,
        }
    }
}

/// Trickles `piece(i)` (i = 0, 1, …) into `stream`, one per read timeout of
/// the stream, reading whatever comes back, until the server closes the
/// connection (Some(how long it took)) or `within` passes (None). `between`
/// runs after every piece (e.g. to check that others are served meanwhile).
pub fn trickle_until_closed(
    stream: &mut TcpStream,
    within: Duration,
    mut piece: impl FnMut(u32) -> &'static [u8],
    mut between: impl FnMut(Duration),
) -> Option<Duration> {
    let t0 = Instant::now();
    let mut sink = [0u8; 4096];
    let mut i = 0u32;
    while t0.elapsed() < within {
        if stream.write_all(piece(i)).is_err() {
            return Some(t0.elapsed());
        }
        i += 1;
        loop {
            match stream.read(&mut sink) {
                Ok(0) => return Some(t0.elapsed()),
                Ok(_) => {} // an answer, a session ticket: keep draining
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    break;
                }
                Err(_) => return Some(t0.elapsed()),
            }
        }
        between(t0.elapsed());
    }
    None
}

/// A request an HTTP fixture received.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    /// The request body (at most 1 MiB, as text).
    pub body: String,
}

impl Seen {
    /// A header's value (name case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// What a handler answers.
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
    pub headers: Vec<(String, String)>,
    pub delay: Duration,
}

impl Reply {
    pub fn new(status: u16, body: impl Into<Vec<u8>>) -> Self {
        Reply { status, body: body.into(), headers: Vec::new(), delay: Duration::ZERO }
    }

    pub fn header(mut self, k: &str, v: &str) -> Self {
        self.headers.push((k.into(), v.into()));
        self
    }
}

/// A real HTTP server on 127.0.0.1:<ephemeral>, stopped on Drop.
pub struct HttpFixture {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    inner: Inner,
}

enum Inner {
    Tiny {
        server: Arc<tiny_http::Server>,
        thread: Option<JoinHandle<()>>,
    },
    /// Held for its Drop.
    Raw(TcpFixture),
}

impl HttpFixture {
    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The requests received so far (tiny_http behaviours only).
    pub fn requests(&self) -> Vec<Seen> {
        self.seen.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

impl Drop for HttpFixture {
    fn drop(&mut self) {
        if let Inner::Tiny { server, thread } = &mut self.inner {
            server.unblock();
            if let Some(t) = thread.take() {
                let _ = t.join();
            }
        }
    }
}

/// An HTTP fixture with one of the standard behaviours.
pub fn http_fixture(b: Behaviour) -> HttpFixture {
    match b {
        Behaviour::Ok(body) => http_handler(move |_| Reply::new(200, body.clone())),
        Behaviour::Status(code) => {
            http_handler(move |_| Reply::new(code, format!("status {code}")))
        }
        Behaviour::Delay(ms) => http_handler(move |_| Reply {
            delay: Duration::from_millis(ms),
            ..Reply::new(200, "ok")
        }),
        Behaviour::RedirectLoop => {
            http_handler(|seen| Reply::new(302, "again").header("Location", &seen.path))
        }
        Behaviour::HangAfterAccept => raw(|stream, stop| hold_silently(&stream, stop)),
        Behaviour::HugeBody => raw(|stream, stop| {
            const LEN: usize = 64 << 20;
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {LEN}\r\nContent-Type: text/plain\r\n\r\n"
            );
            stream_body(stream, stop, head.as_bytes(), LEN);
        }),
        Behaviour::EndlessBody => raw(|stream, stop| {
            let head = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n";
            stream_body(stream, stop, head.as_bytes(), 256 << 20);
        }),
        Behaviour::Garbage => raw(|mut stream, _| {
            read_head(&mut stream);
            let _ = stream
                .write_all(b"\x00\xff\xfeSSH-2.0-garbage \x01\x02 not http at all\r\n\r\n\x7f");
        }),
    }
}

fn raw(handle: impl Fn(TcpStream, &AtomicBool) + Send + Sync + 'static) -> HttpFixture {
    let f = accept_loop(handle);
    HttpFixture { addr: f.addr, seen: Arc::default(), inner: Inner::Raw(f) }
}

/// Reads until the end of the request head (or a bound), ignoring it.
fn read_head(stream: &mut TcpStream) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while head.len() < 64 * 1024 && !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
}

/// Answers with `head` and then `len` bytes of 'x', until the client goes away.
fn stream_body(mut stream: TcpStream, stop: &AtomicBool, head: &[u8], len: usize) {
    read_head(&mut stream);
    let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
    if stream.write_all(head).is_err() {
        return;
    }
    let chunk = vec![b'x'; 64 * 1024];
    let mut sent = 0;
    while sent < len && !stop.load(Ordering::SeqCst) {
        let n = chunk.len().min(len - sent);
        if stream.write_all(&chunk[..n]).is_err() {
            return;
        }
        sent += n;
    }
}

/// An HTTP fixture answering every request with `f(request)`, each request
/// on its own thread (so slow answers overlap), recording what it saw.
pub fn http_handler(f: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> HttpFixture {
    let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("tiny_http"));
    let addr = server.server_addr().to_ip().expect("ip listener");
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let f = Arc::new(f);
    let thread = {
        let (server, seen) = (Arc::clone(&server), Arc::clone(&seen));
        std::thread::spawn(move || {
            let mut workers = Vec::new();
            // `recv` fails once `unblock` is called on Drop.
            while let Ok(mut req) = server.recv() {
                let mut body = Vec::new();
                let _ = std::io::Read::read_to_end(
                    &mut std::io::Read::take(req.as_reader(), 1 << 20),
                    &mut body,
                );
                let s = Seen {
                    body: String::from_utf8_lossy(&body).into_owned(),
                    method: req.method().as_str().to_string(),
                    path: req.url().to_string(),
                    headers: req
                        .headers()
                        .iter()
                        .map(|h| {
                            (h.field.as_str().as_str().to_string(), h.value.as_str().to_string())
                        })
                        .collect(),
                };
                if let Ok(mut v) = seen.lock() {
                    v.push(s.clone());
                }
                let f = Arc::clone(&f);
                workers.push(std::thread::spawn(move || {
                    let reply = f(&s);
                    if !reply.delay.is_zero() {
                        std::thread::sleep(reply.delay);
                    }
                    let mut resp =
                        tiny_http::Response::from_data(reply.body).with_status_code(reply.status);
                    for (k, v) in reply.headers {
                        if let Ok(h) = tiny_http::Header::from_bytes(k.as_bytes(), v.as_bytes()) {
                            resp.add_header(h);
                        }
                    }
                    let _ = req.respond(resp);
                }));
                workers.retain(|w| !w.is_finished());
            }
            for w in workers {
                let _ = w.join();
            }
        })
    };
    HttpFixture { addr, seen, inner: Inner::Tiny { server, thread: Some(thread) } }
}

/// A real process with a unique marker in its command line
/// (`sleep 3000.<digits>`), killed on Drop.
pub struct Marked {
    child: Child,
    pub marker: String,
}

impl Marked {
    /// Starts `sleep 3000.<unique digits>`; the marker is that argument.
    pub fn start() -> Self {
        let marker = format!("3000.{}", unique(""));
        Self::start_with(&marker)
    }

    /// Starts another `sleep` with the same marker.
    pub fn start_with(marker: &str) -> Self {
        let child = Command::new("sleep")
            .arg(marker)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn sleep");
        let pid = child.id();
        // Visible in /proc once exec has replaced the forked test process.
        wait_until(Duration::from_secs(5), || cmdline(pid).contains(marker));
        Marked { child, marker: marker.to_string() }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Marked {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A process's command line, args joined by spaces ("" when gone or a zombie).
pub fn cmdline(pid: u32) -> String {
    fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " ").trim_end().to_string())
        .unwrap_or_default()
}

/// Whether any live process's command line contains `needle`.
pub fn any_process_with(needle: &str) -> bool {
    let Ok(dir) = fs::read_dir("/proc") else { return false };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()))
        .any(|pid| cmdline(pid).contains(needle))
}

/// Nagios `--format nagios` perfdata items (quoted labels may hold spaces).
pub fn perfdata_items(perf: &str) -> Vec<String> {
    let re = regex::Regex::new(r"'(?:[^']|'')+'=\S*|[^\s']\S*").expect("regex");
    re.find_iter(perf).map(|m| m.as_str().to_string()).collect()
}

/// `openssl s_server` on 127.0.0.1:<ephemeral> with a fresh self-signed
/// certificate (so a client that verifies certificates must refuse it),
/// killed on Drop. None when `openssl` is not installed.
pub struct TlsFixture {
    child: Child,
    pub addr: SocketAddr,
}

impl TlsFixture {
    pub fn start(env: &Env) -> Option<Self> {
        let (key, cert) = (env.path("tls-key.pem"), env.path("tls-cert.pem"));
        let made = Command::new("openssl")
            .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"])
            .args(["-nodes", "-days", "2", "-subj", "/CN=127.0.0.1"])
            .args(["-addext", "subjectAltName=IP:127.0.0.1"])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        match made {
            Ok(s) if s.success() => {}
            Ok(s) => panic!("openssl req failed: {s}"),
            Err(_) => return None,
        }
        let mut child = Command::new("openssl")
            .args(["s_server", "-accept", "127.0.0.1:0", "-www"])
            .arg("-cert")
            .arg(&cert)
            .arg("-key")
            .arg(&key)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn openssl s_server");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(a) = line.strip_prefix("ACCEPT ") {
                    let _ = tx.send(a.trim().to_string());
                }
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(a) => a.parse().expect("ACCEPT address"),
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("openssl s_server did not start");
            }
        };
        Some(TlsFixture { child, addr })
    }
}

impl Drop for TlsFixture {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Where Debian's `prometheus` package puts promtool; None where it is not
/// installed, which only a machine outside CI may be (`make deps`).
pub fn promtool() -> Option<&'static str> {
    let path = "/usr/bin/promtool";
    if Path::new(path).exists() {
        return Some(path);
    }
    assert!(std::env::var_os("CI").is_none(), "promtool missing in CI: install prometheus");
    eprintln!("promtool not installed: skipped (run `make deps`)");
    None
}

/// `promtool check metrics` on an exposition: it must pass without a single
/// lint remark. Skipped (with a line) where promtool is missing outside CI.
pub fn promtool_lint(text: &[u8]) {
    let Some(promtool) = promtool() else { return };
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool");
    child.stdin.take().expect("stdin").write_all(text).expect("promtool's stdin");
    let out = child.wait_with_output().expect("promtool");
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
