//! A running daemon (`run`/`serve`) as a child guard, and a raw HTTP/1.1
//! client for talking to it.

use super::{Env, TcpFixture, kill};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A running `run`/`serve`, killed by PID on drop.
pub struct Daemon {
    child: Option<Child>,
    /// Where it listens (from its "listening on" line; any `--listen` address).
    pub addr: SocketAddr,
    pub port: u16,
    log: Arc<Mutex<Vec<String>>>,
}

impl Daemon {
    /// Starts `chatstack-status <args> --listen 127.0.0.1:0` (unless `--no-http`
    /// or another `--listen` is given) and waits for its "listening on" line.
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
        let unbound = SocketAddr::from(([127, 0, 0, 1], 0));
        let mut d = Daemon { child: Some(child), addr: unbound, port: 0, log };
        if http {
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if let Some(addr) = d.logged("listening on ").and_then(|l| listen_addr(&l)) {
                    d.addr = addr;
                    d.port = addr.port();
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

/// The address in a "listening on ADDR" log line (a scheme, if any, ignored).
fn listen_addr(line: &str) -> Option<SocketAddr> {
    let rest = line.split_once("listening on ")?.1;
    let word = rest.split_whitespace().next()?;
    word.trim_start_matches("https://").trim_start_matches("http://").parse().ok()
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

/// `run` on one up service (a TCP listener), with `extra_yaml` top-level
/// keys, cycling every 200 ms; returns once `/healthz` says 200.
pub fn started(env: &Env, extra_yaml: &str) -> (Daemon, TcpFixture) {
    let tcp = TcpFixture::new();
    env.config(&format!(
        "interval: 200ms\ntimeout: 1s\nheal: {{ enabled: false }}\n{extra_yaml}services:\n  - name: Web\n    port: {}\n",
        tcp.port()
    ));
    let cfg = env.config_path().display().to_string();
    let d = Daemon::start(env, &["run", "-c", &cfg], &[]);
    super::wait_until(Duration::from_secs(10), || {
        request(d.port, "GET", "/healthz", &[]).status == 200
    });
    (d, tcp)
}
