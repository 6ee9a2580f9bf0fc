//! `run` and `serve` as real processes: the cycle loop, signals, reloads,
//! sd_notify. Also home of `Daemon` (a child guard) and `get` (a raw HTTP
//! client) that the server tests share.

use crate::util::{Env, kill, wait_until};

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A running `run`/`serve`, killed by PID on drop.
pub struct Daemon {
    child: Option<Child>,
    pub port: u16,
    log: Arc<Mutex<Vec<String>>>,
}

impl Daemon {
    /// Starts `chatstack-status <args> --listen 127.0.0.1:0` (unless `--no-http`)
    /// and waits for its "listening on" line.
    #[track_caller]
    pub fn start(env: &Env, args: &[&str], extra_env: &[(&str, &str)]) -> Daemon {
        let mut all: Vec<&str> = args.to_vec();
        let http = !args.contains(&"--no-http");
        if http && !args.contains(&"--listen") {
            all.extend(["--listen", "127.0.0.1:0"]);
        }
        Self::start_command(env.command(&all, extra_env), http)
    }

    /// Starts a prepared command (e.g. under another uid, or through `sh`);
    /// with `http`, waits for its "listening on" line.
    #[track_caller]
    pub fn start_command(mut command: std::process::Command, http: bool) -> Daemon {
        let mut child =
            command.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().expect("spawn daemon");
        let log = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().expect("stderr");
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        let mut d = Daemon { child: Some(child), port: 0, log };
        if http {
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if let Some(port) = d
                    .logged("listening on 127.0.0.1:")
                    .and_then(|l| l.rsplit(':').next().and_then(|p| p.trim().parse().ok()))
                {
                    d.port = port;
                    break;
                }
                if let Some(code) = d.exited() {
                    panic!("daemon exited with {code:?} before listening: {:?}", d.log());
                }
                assert!(Instant::now() < deadline, "daemon did not listen: {:?}", d.log());
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        d
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// The first log line containing `needle`.
    pub fn logged(&self, needle: &str) -> Option<String> {
        self.log().into_iter().find(|l| l.contains(needle))
    }

    pub fn signal(&self, sig: rustix::process::Signal) {
        let pid = rustix::process::Pid::from_raw(self.pid() as i32).expect("pid");
        rustix::process::kill_process(pid, sig).expect("kill");
    }

    /// Exit code if it has exited.
    pub fn exited(&mut self) -> Option<Option<i32>> {
        self.child.as_mut()?.try_wait().ok().flatten().map(|s| s.code())
    }

    /// Waits for the exit (bounded); returns the code and how long it took.
    #[track_caller]
    pub fn wait_exit(&mut self, within: Duration) -> (Option<i32>, Duration) {
        let started = Instant::now();
        loop {
            if let Some(code) = self.exited() {
                return (code, started.elapsed());
            }
            assert!(started.elapsed() < within, "daemon still running after {within:?}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// GET (or another method) on the daemon.
    pub fn get(&self, path: &str) -> Resp {
        request(self.port, "GET", path, &[])
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            if c.try_wait().ok().flatten().is_none() {
                kill(c.id());
            }
            let _ = c.wait();
        }
    }
}

#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

/// One HTTP/1.1 request with `Connection: close`, bounded by 5 s.
pub fn request(port: u16, method: &str, path: &str, headers: &[(&str, &str)]) -> Resp {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).expect("send");
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or(raw.len());
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let body = raw.get(split + 4..).unwrap_or_default().to_vec();
    let status = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    Resp { status, head, body }
}

/// A config whose services are all up (a local TCP listener) or, with
/// `down_port`, one is down.
pub fn simple_config(env: &Env, up_port: u16, interval: &str) {
    env.config(&format!(
        "interval: {interval}\ntimeout: 1s\nheal: {{ enabled: false }}\nservices:\n  - name: Web\n    port: {up_port}\n"
    ));
}

fn cfg(env: &Env) -> String {
    env.config_path().display().to_string()
}

#[test]
fn run_serves_and_exits_0_on_sigterm_quickly() {
    let env = Env::new();
    let tcp = crate::util::TcpFixture::new();
    simple_config(&env, tcp.port(), "100ms");
    let mut d = Daemon::start(&env, &["run", "-c", &cfg(&env)], &[]);
    wait_until(Duration::from_secs(10), || d.get("/api/status").status == 200);
    // The status file is written every cycle too.
    let first = crate::util::read_json(&env.status_path())["generated_at"].clone();
    wait_until(Duration::from_secs(10), || {
        crate::util::read_json(&env.status_path())["generated_at"] != first
    });
    d.signal(rustix::process::Signal::TERM);
    let (code, took) = d.wait_exit(Duration::from_secs(5));
    assert_eq!(code, Some(0), "{:?}", d.log());
    assert!(took < Duration::from_secs(5), "took {took:?}");
}

#[test]
fn sigint_during_a_hung_cycle_exits_0_within_its_timeout() {
    let env = Env::new();
    let hang = crate::util::http_fixture(crate::util::Behaviour::HangAfterAccept);
    env.config(&format!(
        "interval: 100ms\ntimeout: 1s\nheal: {{ enabled: false }}\nservices:\n  - name: Hung\n    url: {}\n",
        hang.url("/")
    ));
    let mut d = Daemon::start(&env, &["run", "-c", &cfg(&env)], &[]);
    d.signal(rustix::process::Signal::INT);
    let (code, took) = d.wait_exit(Duration::from_secs(5));
    assert_eq!(code, Some(0), "{:?}", d.log());
    assert!(took < Duration::from_secs(3), "took {took:?}");
}

#[test]
fn sighup_adds_a_service_and_a_broken_config_keeps_the_old_one() {
    let env = Env::new();
    let tcp = crate::util::TcpFixture::new();
    simple_config(&env, tcp.port(), "100ms");
    let d = Daemon::start(&env, &["run", "-c", &cfg(&env)], &[]);
    wait_until(Duration::from_secs(10), || d.get("/api/status").status == 200);
    let names = |d: &Daemon| -> Vec<String> {
        d.get("/api/status").json()["services"]
            .as_array()
            .map(|a| a.iter().map(|s| s["name"].as_str().unwrap_or("").to_string()).collect())
            .unwrap_or_default()
    };
    assert_eq!(names(&d), ["Web"]);
    env.config(&format!(
        "interval: 100ms\ntimeout: 1s\nheal: {{ enabled: false }}\nservices:\n  - name: Web\n    port: {}\n  - name: Added\n    port: {}\n",
        tcp.port(),
        tcp.port()
    ));
    d.signal(rustix::process::Signal::HUP);
    wait_until(Duration::from_secs(5), || names(&d) == ["Web", "Added"]);
    // History of a kept service survives the reload.
    let hist = |d: &Daemon| {
        d.get("/api/status").json()["services"][0]["history"].as_array().map_or(0, Vec::len)
    };
    let before = hist(&d);
    assert!(before >= 2, "history {before}");

    env.write("monitor.yml", "interval: 100ms\nservices: [ {name: Broken, bogus_key: 1} ]\n");
    d.signal(rustix::process::Signal::HUP);
    wait_until(Duration::from_secs(5), || d.logged("keeping the old config").is_some());
    let line = d.logged("keeping the old config").unwrap();
    assert!(line.contains("monitor.yml:2:"), "{line}");
    // Still running the old (reloaded) config.
    wait_until(Duration::from_secs(5), || hist(&d) > before);
    assert_eq!(names(&d), ["Web", "Added"]);

    // Removing a service drops it from the status.
    simple_config(&env, tcp.port(), "100ms");
    d.signal(rustix::process::Signal::HUP);
    wait_until(Duration::from_secs(5), || names(&d) == ["Web"]);
}

#[test]
fn port_in_use_is_a_clear_start_up_error() {
    let env = Env::new();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    simple_config(&env, taken.local_addr().unwrap().port(), "1s");
    let out = env.cmd(&["run", "-c", &cfg(&env), "--listen", &addr]);
    assert_eq!(out.code, 3, "{out:?}");
    assert!(out.stderr.contains(&format!("cannot listen on {addr}")), "{}", out.stderr);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
}

#[test]
fn sd_notify_gets_ready_watchdog_and_stopping() {
    use std::os::unix::net::UnixDatagram;
    let env = Env::new();
    let tcp = crate::util::TcpFixture::new();
    simple_config(&env, tcp.port(), "100ms");
    let sock_path = env.path("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let d = Daemon::start(
        &env,
        &["run", "-c", &cfg(&env), "--no-http"],
        &[("NOTIFY_SOCKET", sock_path.to_str().unwrap()), ("WATCHDOG_USEC", "2000000")],
    );
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(10);
    while !(seen.iter().any(|m: &String| m == "READY=1")
        && seen.iter().filter(|m| *m == "WATCHDOG=1").count() >= 2)
    {
        assert!(Instant::now() < deadline, "got {seen:?}");
        let n = sock.recv(&mut buf).expect("datagram");
        seen.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    d.signal(rustix::process::Signal::TERM);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !seen.iter().any(|m| m == "STOPPING=1") {
        assert!(Instant::now() < deadline, "got {seen:?}");
        let n = sock.recv(&mut buf).expect("datagram");
        seen.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
}

#[test]
fn sd_notify_abstract_socket() {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::net::{SocketAddr, UnixDatagram};
    let env = Env::new();
    let tcp = crate::util::TcpFixture::new();
    simple_config(&env, tcp.port(), "100ms");
    let name = crate::util::unique("chatstack-notify-");
    let sock =
        UnixDatagram::bind_addr(&SocketAddr::from_abstract_name(name.as_bytes()).unwrap()).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _d = Daemon::start(
        &env,
        &["run", "-c", &cfg(&env), "--no-http"],
        &[("NOTIFY_SOCKET", &format!("@{name}"))],
    );
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        assert!(Instant::now() < deadline);
        let n = sock.recv(&mut buf).expect("datagram");
        if &buf[..n] == b"READY=1" {
            break;
        }
    }
}

#[test]
fn overrun_is_logged_and_cycles_do_not_stack() {
    let env = Env::new();
    let slow = crate::util::http_fixture(crate::util::Behaviour::Delay(400));
    env.config(&format!(
        "interval: 100ms\ntimeout: 2s\nheal: {{ enabled: false }}\nservices:\n  - name: Slow\n    url: {}\n",
        slow.url("/")
    ));
    let d = Daemon::start(&env, &["run", "-c", &cfg(&env), "--no-http"], &[]);
    wait_until(Duration::from_secs(10), || d.logged("longer than the interval").is_some());
    // One cycle at a time: after ~1.2 s at most 3–4 requests, not 12.
    let started = Instant::now();
    let n0 = slow.requests().len();
    wait_until(Duration::from_secs(5), || started.elapsed() > Duration::from_millis(1200));
    let n = slow.requests().len() - n0;
    assert!(n <= 4, "{n} requests in 1.2 s: cycles stacked");
}

#[test]
fn serve_rereads_the_status_file_when_it_changes() {
    let env = Env::new();
    let tcp = crate::util::TcpFixture::new();
    simple_config(&env, tcp.port(), "1s");
    let d = Daemon::start(&env, &["serve", "-c", &cfg(&env)], &[]);
    let r = d.get("/api/status");
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(r.json()["error"].is_string());
    assert_eq!(d.get("/healthz").status, 503);
    env.check(&[]).code(0);
    wait_until(Duration::from_secs(5), || d.get("/api/status").status == 200);
    let doc = d.get("/api/status").json();
    assert_eq!(doc["services"][0]["name"], "Web");
    assert_eq!(doc["stale"], false);
    assert_eq!(d.get("/healthz").status, 200);
    // A newer file is picked up.
    let before = doc["generated_at"].clone();
    wait_until(Duration::from_secs(5), || {
        env.check(&[]).code(0);
        d.get("/api/status").json()["generated_at"] != before
    });
}

#[test]
fn serve_reports_a_stale_file() {
    let env = Env::new();
    let tcp = crate::util::TcpFixture::new();
    simple_config(&env, tcp.port(), "1s");
    env.check(&[]).code(0);
    let mut doc = crate::util::read_json(&env.status_path());
    doc["generated_at"] = "2020-01-01T00:00:00Z".into();
    std::fs::write(env.status_path(), serde_json::to_vec(&doc).unwrap()).unwrap();
    let d = Daemon::start(&env, &["serve", "-c", &cfg(&env)], &[]);
    let v = d.get("/api/status").json();
    assert_eq!(v["stale"], true);
    assert!(v["age_s"].as_f64().unwrap() > 1e6);
    assert_eq!(d.get("/healthz").status, 503);
}

#[test]
fn healthz_in_run_is_ok_while_cycles_run() {
    // A cycle longer than 2×interval + timeout cannot happen with bounded
    // probes, so the window is checked from the other side: healthy while
    // cycles run.
    let env = Env::new();
    let tcp = crate::util::TcpFixture::new();
    simple_config(&env, tcp.port(), "100ms");
    let d = Daemon::start(&env, &["run", "-c", &cfg(&env)], &[]);
    wait_until(Duration::from_secs(10), || d.get("/healthz").status == 200);
    let v = d.get("/healthz").json();
    assert_eq!(v["ok"], true);
}

#[test]
fn watchdog_pings_continue_between_long_cycles() {
    use std::os::unix::net::UnixDatagram;
    let env = Env::new();
    let tcp = crate::util::TcpFixture::new();
    simple_config(&env, tcp.port(), "1h");
    let sock_path = env.path("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _d = Daemon::start(
        &env,
        &["run", "-c", &cfg(&env), "--no-http"],
        &[("NOTIFY_SOCKET", sock_path.to_str().unwrap()), ("WATCHDOG_USEC", "200000")],
    );
    let mut pings = 0;
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(10);
    while pings < 5 {
        assert!(Instant::now() < deadline, "only {pings} watchdog pings with a 1h interval");
        let n = sock.recv(&mut buf).expect("datagram");
        pings += usize::from(&buf[..n] == b"WATCHDOG=1");
    }
}
