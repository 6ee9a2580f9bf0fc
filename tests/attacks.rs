//! The HTTP front under attack, each finding of the hardening issue replayed
//! against the real daemon (bounded: seconds, a few connections, loopback):
//! other clients are answered within 2 s during and after, and threads,
//! connection slots and memory come back to baseline.

use crate::util::{Daemon, Env, request, started, trickle_until_closed, wait_until};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

/// A number from /proc/PID/status, e.g. `Threads` or `VmRSS` (kB).
fn proc_status(pid: u32, key: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Every slow-path endpoint answers, each within 2 s.
#[track_caller]
fn everyone_is_answered(d: &Daemon) {
    for path in ["/healthz", "/metrics", "/", "/static/js/status.js", "/api/status"] {
        let t0 = Instant::now();
        let r = d.get(path);
        assert_eq!(r.status, 200, "{path}: {}", r.head);
        assert!(t0.elapsed() < Duration::from_secs(2), "{path} took {:?}", t0.elapsed());
    }
}

/// Sends raw bytes on a fresh connection and reads the answer until the
/// server closes (bounded by `within`); returns it and how long it took.
fn exchange(port: u16, bytes: &[u8], within: Duration) -> (String, Duration) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(within)).expect("timeout");
    let t0 = Instant::now();
    let _ = s.write_all(bytes);
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    (String::from_utf8_lossy(&got).into_owned(), t0.elapsed())
}

#[test]
fn megabytes_pipelined_without_reading_cannot_wedge_the_server() {
    // Finding 1: ~8 MB of slow-path requests pipelined on one connection,
    // never reading the answers, then closed, used to leave handler and
    // relay threads blocked for good; after ~520 clients everyone got 503.
    let env = Env::new();
    let (d, _t) = started(&env, "");
    let baseline_threads = proc_status(d.pid(), "Threads");
    let port = d.port;
    let attacker = std::thread::spawn(move || {
        let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        s.set_write_timeout(Some(Duration::from_secs(15))).expect("timeout");
        let burst = b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n".repeat(4096); // 128 KiB
        let mut sent = 0usize;
        while sent < 8 << 20 {
            if s.write_all(&burst).is_err() {
                break; // the server gave up on us: that is the point
            }
            sent += burst.len();
        }
        let _ = s.shutdown(Shutdown::Both);
        sent
    });
    // During the attack, everyone else is served.
    everyone_is_answered(&d);
    let _ = attacker.join();
    everyone_is_answered(&d);
    // Ordinary clients after it: none is refused (the old front filled its
    // 512 places with leaked ones).
    for i in 0..600 {
        let r = request(d.port, "GET", "/healthz", &[]);
        assert_eq!(r.status, 200, "client {i}: {}", r.head);
    }
    wait_until(Duration::from_secs(15), || proc_status(d.pid(), "Threads") <= baseline_threads + 2);
}

#[test]
fn bare_lf_heads_cannot_bypass_the_head_cap() {
    // Finding 2: after one bare-LF request, 4 KB lines separated by "\n\n"
    // took RSS from 6 MB to 518 MB in 3 s from one connection.
    let env = Env::new();
    let (d, _t) = started(&env, "");
    let rss0 = proc_status(d.pid(), "VmRSS");
    let mut s = TcpStream::connect(("127.0.0.1", d.port)).expect("connect");
    s.set_write_timeout(Some(Duration::from_secs(2))).expect("timeout");
    s.set_read_timeout(Some(Duration::from_secs(3))).expect("timeout");
    let _ = s.write_all(b"GET /healthz HTTP/1.1\nHost: x\n\n");
    let line = [vec![b'a'; 4096], b"\n\n".to_vec()].concat();
    let t0 = Instant::now();
    let mut refused = false;
    while t0.elapsed() < Duration::from_secs(3) {
        if s.write_all(&line).is_err() {
            refused = true;
            break;
        }
    }
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 200"), "the bare-LF request is answered: {text}");
    assert!(
        refused || text.contains("HTTP/1.1 400") || text.contains("HTTP/1.1 431"),
        "the stream of lines was accepted: {text}"
    );
    let rss1 = proc_status(d.pid(), "VmRSS");
    assert!(rss1 < rss0 + 4096, "RSS grew from {rss0} kB to {rss1} kB");
    everyone_is_answered(&d);
}

#[test]
fn a_bare_lf_head_over_8_kib_gets_431() {
    let env = Env::new();
    let (d, _t) = started(&env, "");
    // After one bare-LF request, as the attack did: the old front then
    // metered "\n\n" heads while tiny_http waited for "\r\n\r\n".
    let head =
        format!("GET /healthz HTTP/1.1\n\nGET /healthz HTTP/1.1\nX-Big: {}\n\n", "a".repeat(9000));
    let (text, took) = exchange(d.port, head.as_bytes(), Duration::from_secs(5));
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("HTTP/1.1 431"), "{text}");
    assert!(took < Duration::from_secs(2), "took {took:?}");
}

#[test]
fn a_complete_bare_lf_request_is_answered_at_once() {
    // Finding 2, last part: it got neither an answer nor a close for seconds.
    let env = Env::new();
    let (d, _t) = started(&env, "");
    for path in ["/healthz", "/metrics", "/nope"] {
        let req = format!("GET {path} HTTP/1.1\nHost: x\nConnection: close\n\n");
        let (text, took) = exchange(d.port, req.as_bytes(), Duration::from_secs(5));
        assert!(text.starts_with("HTTP/1.1 200") || text.starts_with("HTTP/1.1 404"), "{text}");
        assert!(took < Duration::from_secs(1), "{path} took {took:?}");
    }
}

#[test]
fn a_bare_lf_trickle_cannot_outlive_the_head_timeout() {
    // Finding 2: after one bare-LF request, bytes trickled with a "\n\n"
    // every second reset the old front's head clock while tiny_http kept
    // waiting for one endless CRLF head: the connection lived for good.
    let env = Env::new();
    let (d, _t) = started(&env, "");
    let mut s = TcpStream::connect(("127.0.0.1", d.port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_millis(100))).expect("timeout");
    let _ = s.write_all(b"GET /healthz HTTP/1.1\n\n");
    let piece = |i: u32| -> &'static [u8] { if i % 10 == 9 { b"\n\n" } else { b"a" } };
    let took = trickle_until_closed(&mut s, Duration::from_secs(14), piece, |_| {});
    let took = took.expect("a bare-LF trickle held the connection for 14 s");
    assert!(took < Duration::from_secs(12), "cut off after {took:?}");
    everyone_is_answered(&d);
}

#[test]
fn other_versions_and_malformed_requests_are_answered_not_ignored() {
    // Finding 11: silence instead of 400/505.
    let env = Env::new();
    let (d, _t) = started(&env, "");
    for (req, status) in [
        (&b"GET /healthz HTTP/2.0\r\n\r\n"[..], "505"),
        (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "505"),
        (b"GET /healthz HTTP/1.1\r\nBad Header\r\n\r\n", "400"),
        (b"GET /healthz HTTP/1.1\r\nContent-Length: x\r\n\r\n", "400"),
        (b"GET /healthz HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "400"),
    ] {
        let (text, took) = exchange(d.port, req, Duration::from_secs(5));
        assert!(
            text.starts_with(&format!("HTTP/1.1 {status}")),
            "{:?}: {text}",
            String::from_utf8_lossy(req)
        );
        assert!(took < Duration::from_secs(1), "took {took:?}");
    }
}

#[test]
fn a_pipelined_request_before_an_oversize_head_keeps_its_answer() {
    // Finding 11: the valid first request lost its answer.
    let env = Env::new();
    let (d, _t) = started(&env, "");
    let req = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nX-Big: {}\r\n\r\n",
        "a".repeat(9000)
    );
    let (text, _) = exchange(d.port, req.as_bytes(), Duration::from_secs(5));
    let first = text.find("HTTP/1.1 200");
    let second = text.find("HTTP/1.1 431");
    assert!(first.is_some() && second.is_some() && first < second, "{text}");
}

#[test]
fn idle_connections_cannot_lock_everyone_out() {
    // Finding 11: 512 idle connections denied everyone for the idle timeout.
    let env = Env::new();
    let (d, _t) = started(&env, "");
    let mut idle = Vec::new();
    for i in 0..600 {
        let mut s = TcpStream::connect(("127.0.0.1", d.port)).expect("connect");
        if i % 2 == 0 {
            let _ = s.write_all(b"GET /api/sta"); // half a request line
        }
        idle.push(s);
    }
    for _ in 0..5 {
        let t0 = Instant::now();
        let r = d.get("/api/status");
        assert_eq!(r.status, 200, "{}", r.head);
        assert!(t0.elapsed() < Duration::from_secs(2), "took {:?}", t0.elapsed());
    }
    drop(idle);
    everyone_is_answered(&d);
}

#[test]
fn cors_star_is_a_literal_star_without_credentials() {
    // Finding 6: `*` reflected any Origin (null too) with credentials.
    let env = Env::new();
    let (d, _t) = started(&env, "cors_origins: [\"*\"]\n");
    for origin in ["null", "https://evil.example"] {
        let r = request(d.port, "GET", "/api/status", &[("Origin", origin)]);
        assert_eq!(r.status, 200);
        assert_eq!(r.header("access-control-allow-origin").as_deref(), Some("*"), "{}", r.head);
        assert_eq!(r.header("access-control-allow-credentials"), None, "{}", r.head);
    }
}

#[test]
fn cors_star_with_basic_auth_is_a_config_error() {
    let env = Env::new();
    env.write("password", "s3cret\n");
    env.config(&format!(
        "cors_origins: [\"*\"]\nbasic_auth: {{ user: admin, password_file: {:?} }}\nservices:\n  - name: Web\n    port: 1\n",
        env.path("password")
    ));
    let cfg = env.config_path().display().to_string();
    let out = env.cmd(&["validate", "-c", &cfg]);
    out.code(3);
    assert!(out.stderr.contains("monitor.yml:"), "{}", out.stderr);
    assert!(
        out.stderr.contains("cors_origins") && out.stderr.contains("basic_auth"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_fifo_password_file_on_reload_keeps_the_old_config_and_the_loop_alive() {
    // Finding 10: a FIFO password_file on SIGHUP blocked the main loop
    // (cycles stopped, SIGTERM ignored).
    let env = Env::new();
    let pw = env.write("password", "s3cret\n");
    let (mut d, _t) =
        started(&env, &format!("basic_auth: {{ user: admin, password_file: {pw:?} }}\n"));
    let auth = [("Authorization", "Basic YWRtaW46czNjcmV0")];
    assert_eq!(request(d.port, "GET", "/api/status", &auth).status, 200);
    std::fs::remove_file(&pw).expect("rm");
    let made = std::process::Command::new("mkfifo").arg(&pw).status().expect("mkfifo");
    assert!(made.success());
    d.signal(rustix::process::Signal::HUP);
    wait_until(Duration::from_secs(5), || d.logged("reload: keeping the old config").is_some());
    let line = d.logged("reload: keeping the old config").unwrap_or_default();
    assert!(line.contains("password") && line.contains("not a regular file"), "{line}");
    // Cycles go on (healthz needs a recent cycle) and the old login still works.
    let before = request(d.port, "GET", "/api/status", &auth).json()["generated_at"].clone();
    assert!(before.is_string(), "{before}");
    wait_until(Duration::from_secs(5), || {
        let r = request(d.port, "GET", "/api/status", &auth);
        r.status == 200 && r.json()["generated_at"] != before
    });
    d.signal(rustix::process::Signal::TERM);
    let (code, took) = d.wait_exit(Duration::from_secs(5));
    assert_eq!(code, Some(0));
    assert!(took < Duration::from_secs(3), "SIGTERM took {took:?}");
}
