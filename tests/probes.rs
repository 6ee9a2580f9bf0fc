//! The five probe kinds against real local targets: every state and reason,
//! the bounds on time and memory, and the parallel runner.

use crate::util::{
    Behaviour, Env, Marked, TcpFixture, any_process_with, check_of, closed_port, http_fixture,
    http_handler, unique, wait_until,
};
use serde_json::Value;
use std::time::{Duration, Instant};

/// Runs `check --format json` with one service `svc` holding `checks`
/// (YAML flow mappings, one per line) and returns the service's checks.
#[track_caller]
fn run_checks(env: &Env, head: &str, checks: &[String]) -> (crate::util::Out, Vec<Value>) {
    let list: String = checks.iter().map(|c| format!("      - {c}\n")).collect();
    env.config(&format!("{head}services:\n  - name: svc\n    checks:\n{list}"));
    let out = env.check(&["--format", "json"]);
    let doc = out.json();
    let svc = crate::util::service_of(&doc, "svc");
    let checks = svc["checks"].as_array().cloned().unwrap_or_default();
    (out, checks)
}

/// One check; returns its JSON entry.
#[track_caller]
fn one(env: &Env, check: &str) -> Value {
    let (_, checks) = run_checks(env, "timeout: 1s\n", &[check.to_string()]);
    checks[0].clone()
}

#[track_caller]
fn assert_state(c: &Value, status: &str, reason: Option<&str>) {
    assert_eq!(c["status"], status, "{c:#}");
    match reason {
        Some(r) => assert_eq!(c["reason"], r, "{c:#}"),
        None => assert!(c["reason"].is_null(), "{c:#}"),
    }
}

/// A host name the resolver rejects locally (a label over 63 bytes), so the
/// lookup fails at once and sends nothing anywhere.
fn unresolvable_host() -> String {
    format!("{}.invalid", "a".repeat(70))
}

// ----- http ---------------------------------------------------------------

#[test]
fn http_ok_is_up_with_latency() {
    let env = Env::new();
    let srv = http_fixture(Behaviour::Ok("fine".into()));
    let c = one(&env, &format!("{{type: http, url: '{}'}}", srv.url("/health")));
    assert_state(&c, "up", None);
    assert_eq!(c["detail"], "HTTP 200");
    assert!(c["latency_ms"].as_f64().is_some_and(|l| l >= 0.0), "{c:#}");
    assert_eq!(srv.requests()[0].path, "/health");
}

#[test]
fn http_500_is_down_http_status() {
    let env = Env::new();
    let srv = http_fixture(Behaviour::Status(500));
    let c = one(&env, &format!("{{type: http, url: '{}'}}", srv.url("/")));
    assert_state(&c, "down", Some("http_status"));
    assert!(c["detail"].as_str().unwrap().contains("500"), "{c:#}");
}

#[test]
fn expect_status_int_list_and_class() {
    let env = Env::new();
    let s204 = http_fixture(Behaviour::Status(204));
    let s200 = http_fixture(Behaviour::Status(200));
    let s503 = http_fixture(Behaviour::Status(503));
    let (u204, u200, u503) = (s204.url("/"), s200.url("/"), s503.url("/"));
    let (_, c) = run_checks(
        &env,
        "timeout: 1s\n",
        &[
            format!("{{type: http, url: '{u204}', expect_status: 204}}"),
            format!("{{type: http, url: '{u200}', expect_status: 204}}"),
            format!("{{type: http, url: '{u204}', expect_status: [200, 204]}}"),
            format!("{{type: http, url: '{u503}', expect_status: [200, 204]}}"),
            format!("{{type: http, url: '{u503}', expect_status: '5xx'}}"),
            format!("{{type: http, url: '{u200}', expect_status: '5xx'}}"),
            format!("{{type: http, url: '{u204}', expect_status: '2xx'}}"),
        ],
    );
    let got: Vec<&str> = c.iter().map(|c| c["status"].as_str().unwrap()).collect();
    assert_eq!(got, ["up", "down", "up", "down", "up", "down", "up"], "{c:#?}");
    assert_eq!(c[1]["reason"], "http_status");
}

#[test]
fn body_contains_matches_or_is_body_mismatch() {
    let env = Env::new();
    let srv = http_fixture(Behaviour::Ok(r#"{"status": "ok"}"#.into()));
    let url = srv.url("/");
    let (_, c) = run_checks(
        &env,
        "timeout: 1s\n",
        &[
            format!(r#"{{type: http, url: '{url}', body_contains: '"status": "ok"'}}"#),
            format!(r#"{{type: http, url: '{url}', body_contains: 'healthy'}}"#),
        ],
    );
    assert_state(&c[0], "up", None);
    assert_state(&c[1], "down", Some("body_mismatch"));
}

/// A health endpoint's JSON, as the README's examples assume.
const HEALTH_JSON: &str = r#"{"status":"ok","version":3.0,"db":{"ok":true,"latency_ms":12},
"queue":{"depth":950},"items":[{"name":"first"},{"name":"second"}],"a/b":{"m~n":"esc"},
"note":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}"#;

#[test]
fn json_assertions_every_operator_against_a_real_body() {
    let env = Env::new();
    let srv = http_fixture(Behaviour::Ok(HEALTH_JSON.into()));
    let url = srv.url("/health");
    // (assertion, holds?)
    let cases: &[(&str, bool)] = &[
        (r#"{"/status": ok}"#, true),
        (r#"{"/status": down}"#, false),
        (r#"{"/db/ok": true}"#, true),
        (r#"{"/db/ok": false}"#, false),
        (r#"{"/version": 3}"#, true),
        (r#"{"/queue/depth": {"<": 1000}}"#, true),
        (r#"{"/queue/depth": {"<": 950}}"#, false),
        (r#"{"/queue/depth": {"<=": 950}}"#, true),
        (r#"{"/queue/depth": {"<=": 949.5}}"#, false),
        (r#"{"/db/latency_ms": {">": 9}}"#, true),
        (r#"{"/db/latency_ms": {">": 12}}"#, false),
        (r#"{"/db/latency_ms": {">=": 12}}"#, true),
        (r#"{"/db/latency_ms": {">=": 12.5}}"#, false),
        (r#"{"/status": {"!=": down}}"#, true),
        (r#"{"/status": {"!=": ok}}"#, false),
        (r#"{"/db": {exists: true}}"#, true),
        (r#"{"/error": {exists: true}}"#, false),
        (r#"{"/error": {exists: false}}"#, true),
        (r#"{"/db/ok": {exists: false}}"#, false),
        (r#"{"/items/1/name": {matches: "^sec"}}"#, true),
        (r#"{"/items/0/name": {matches: "^sec"}}"#, false),
        (r#"{"/items/0/name": first}"#, true),
        (r#"{"/items/2/name": {exists: true}}"#, false),
        (r#"{"/a~1b/m~0n": esc}"#, true),
        (r#"{"/a~1b/m~0n": {"!=": esc}}"#, false),
        (r#"{"/status": ok, "/db/ok": true, "/queue/depth": {"<": 900}}"#, false),
    ];
    let checks: Vec<String> =
        cases.iter().map(|(j, _)| format!("{{type: http, url: '{url}', json: {j}}}")).collect();
    let (_, c) = run_checks(&env, "timeout: 2s\n", &checks);
    for ((json, holds), got) in cases.iter().zip(&c) {
        if *holds {
            assert_state(got, "up", None);
        } else {
            assert_state(got, "down", Some("body_mismatch"));
            let d = got["detail"].as_str().unwrap();
            assert!(d.starts_with("HTTP 200, json \"/"), "{json}: {d}");
            assert!(d.contains("expected") && d.contains("found"), "{json}: {d}");
        }
    }
    assert_eq!(
        c[1]["detail"], "HTTP 200, json \"/status\": expected \"down\", found \"ok\"",
        "pointer, expected and found"
    );
    assert_eq!(
        c[22]["detail"],
        "HTTP 200, json \"/items/2/name\": expected to exist, found nothing (/items has no index \"2\" (an array of 2))"
    );
    assert!(
        c[25]["detail"].as_str().unwrap().contains("\"/queue/depth\": expected < 900, found 950")
    );
}

#[test]
fn json_found_values_are_cut_and_numbers_compare_as_numbers() {
    let env = Env::new();
    let srv = http_fixture(Behaviour::Ok(r#"{"n": 10, "s": "10", "f": 1e1, "big": {"k": [1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30]}}"#.into()));
    let url = srv.url("/");
    let (_, c) = run_checks(
        &env,
        "timeout: 2s\n",
        &[
            // 10 > 9 as numbers ("10" < "9" as text).
            format!(r#"{{type: http, url: '{url}', json: {{"/n": {{">": 9}}}}}}"#),
            format!(r#"{{type: http, url: '{url}', json: {{"/f": 10}}}}"#),
            format!(r#"{{type: http, url: '{url}', json: {{"/n": 10.0}}}}"#),
            // A string is not a number.
            format!(r#"{{type: http, url: '{url}', json: {{"/s": {{">": 9}}}}}}"#),
            format!(r#"{{type: http, url: '{url}', json: {{"/big": 1}}}}"#),
        ],
    );
    assert_state(&c[0], "up", None);
    assert_state(&c[1], "up", None);
    assert_state(&c[2], "up", None);
    assert_state(&c[3], "down", Some("body_mismatch"));
    assert_eq!(c[3]["detail"], "HTTP 200, json \"/s\": expected > 9, found \"10\"");
    let d = c[4]["detail"].as_str().unwrap();
    assert!(d.ends_with('…') && d.chars().count() < 140, "found is cut: {d}");
}

#[test]
fn json_on_a_non_json_or_oversized_body_is_body_mismatch() {
    let env = Env::new();
    let html = http_fixture(Behaviour::Ok("<html><body>Welcome</body></html>".into()));
    let big = http_handler(|_| {
        // Valid JSON, one byte over 1 MiB: not parsed (bounded), said so.
        let pad = "x".repeat((1 << 20) - 13);
        crate::util::Reply::new(200, format!(r#"{{"p":"{pad}","z":1}}"#))
    });
    // Exactly 1 MiB: read whole and parsed.
    let exact = http_handler(|_| {
        let pad = "x".repeat((1 << 20) - 14);
        crate::util::Reply::new(200, format!(r#"{{"p":"{pad}","z":1}}"#))
    });
    let huge = http_fixture(Behaviour::HugeBody);
    let (out, c) = run_checks(
        &env,
        "timeout: 3s\n",
        &[
            format!(r#"{{type: http, url: '{}', json: {{"/status": ok}}}}"#, html.url("/")),
            format!(r#"{{type: http, url: '{}', json: {{"/z": 1}}}}"#, big.url("/")),
            format!(r#"{{type: http, url: '{}', json: {{"/z": 1}}}}"#, exact.url("/")),
            format!(r#"{{type: http, url: '{}', json: {{"/z": 1}}}}"#, huge.url("/")),
        ],
    );
    assert_state(&c[0], "down", Some("body_mismatch"));
    let d = c[0]["detail"].as_str().unwrap();
    assert!(d.contains("body is not JSON") && d.contains("<html><body>"), "{d}");
    for over in [&c[1], &c[3]] {
        assert_state(over, "down", Some("body_mismatch"));
        assert!(over["detail"].as_str().unwrap().contains("body is over 1 MiB"), "{over:#}");
    }
    assert_state(&c[2], "up", None);
    assert!(out.elapsed < Duration::from_secs(3), "took {:?}", out.elapsed);
}

#[test]
fn body_regex_matches_or_is_body_mismatch() {
    let env = Env::new();
    let srv = http_fixture(Behaviour::Ok(r#"{"status": "ok", "build": "2026.11.3"}"#.into()));
    let url = srv.url("/");
    let (_, c) = run_checks(
        &env,
        "timeout: 1s\n",
        &[
            format!(r#"{{type: http, url: '{url}', body_regex: '"build": "\d{{4}}\.\d+\.\d+"'}}"#),
            format!(r#"{{type: http, url: '{url}', body_regex: '"status": "(degraded|down)"'}}"#),
        ],
    );
    assert_state(&c[0], "up", None);
    assert_state(&c[1], "down", Some("body_mismatch"));
    assert!(
        c[1]["detail"]
            .as_str()
            .unwrap()
            .contains("body does not match /\"status\": \"(degraded|down)\"/"),
        "{:#}",
        c[1]
    );
}

#[test]
fn slower_than_degraded_after_is_slow() {
    let env = Env::new();
    let srv = http_fixture(Behaviour::Delay(300));
    let fast = http_fixture(Behaviour::Ok("ok".into()));
    let (_, c) = run_checks(
        &env,
        "timeout: 2s\n",
        &[
            format!("{{type: http, url: '{}', degraded_after: 100ms}}", srv.url("/")),
            format!("{{type: http, url: '{}', degraded_after: 1500ms}}", fast.url("/")),
        ],
    );
    assert_state(&c[0], "degraded", Some("slow"));
    assert!(c[0]["latency_ms"].as_f64().unwrap() >= 300.0, "{:#}", c[0]);
    assert_state(&c[1], "up", None);
}

#[test]
fn hang_after_accept_times_out_within_its_timeout() {
    let env = Env::new();
    let srv = http_fixture(Behaviour::HangAfterAccept);
    let (out, c) =
        run_checks(&env, "", &[format!("{{type: http, url: '{}', timeout: 500ms}}", srv.url("/"))]);
    assert_state(&c[0], "down", Some("timeout"));
    assert!(out.elapsed < Duration::from_millis(2500), "took {:?}", out.elapsed);
}

#[test]
fn closed_port_is_refused() {
    let env = Env::new();
    let c = one(&env, &format!("{{type: http, url: 'http://127.0.0.1:{}/'}}", closed_port()));
    assert_state(&c, "down", Some("refused"));
}

/// The test fixture itself: a closed port must stay closed while other tests
/// bind, or a "down" service comes up mid-test (a CI run saw exactly that).
#[test]
fn a_closed_port_cannot_be_taken_by_another_bind() {
    let port = closed_port();
    assert!(std::net::TcpListener::bind(("127.0.0.1", port)).is_err(), "port {port} rebound");
    for _ in 0..2000 {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        assert_ne!(l.local_addr().unwrap().port(), port);
    }
    let e = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused);
}

#[test]
fn unresolvable_host_is_dns() {
    let env = Env::new();
    let host = unresolvable_host();
    let (out, c) = run_checks(
        &env,
        "timeout: 1s\n",
        &[
            format!("{{type: http, url: 'http://{host}/'}}"),
            format!("{{type: tcp, address: '{host}:80'}}"),
        ],
    );
    assert_state(&c[0], "down", Some("dns"));
    assert_state(&c[1], "down", Some("dns"));
    assert!(out.elapsed < Duration::from_millis(1500), "took {:?}", out.elapsed);
}

#[test]
fn redirect_loop_fails_with_a_reason() {
    let env = Env::new();
    let srv = http_fixture(Behaviour::RedirectLoop);
    let (out, c) = run_checks(
        &env,
        "timeout: 2s\n",
        &[format!("{{type: http, url: '{}'}}", srv.url("/loop"))],
    );
    assert_state(&c[0], "down", Some("http_status"));
    assert!(c[0]["detail"].as_str().unwrap().to_lowercase().contains("redirect"), "{:#}", c[0]);
    // Followed a few times, not forever.
    let n = srv.requests().len();
    assert!((2..=10).contains(&n), "{n} requests");
    assert!(out.elapsed < Duration::from_secs(2), "took {:?}", out.elapsed);
}

#[test]
fn redirects_are_followed_unless_disabled() {
    let env = Env::new();
    let srv = http_handler(|seen| match seen.path.as_str() {
        "/old" => crate::util::Reply::new(302, "moved").header("Location", "/new"),
        _ => crate::util::Reply::new(200, "here"),
    });
    let url = srv.url("/old");
    let (_, c) = run_checks(
        &env,
        "timeout: 1s\n",
        &[
            format!("{{type: http, url: '{url}'}}"),
            format!("{{type: http, url: '{url}', follow_redirects: false}}"),
        ],
    );
    assert_state(&c[0], "up", None);
    assert_state(&c[1], "down", Some("http_status"));
    assert!(c[1]["detail"].as_str().unwrap().contains("302"), "{:#}", c[1]);
}

#[test]
fn garbage_instead_of_http_is_down_with_a_reason() {
    let env = Env::new();
    let srv = http_fixture(Behaviour::Garbage);
    let c = one(&env, &format!("{{type: http, url: '{}'}}", srv.url("/")));
    assert_eq!(c["status"], "down", "{c:#}");
    assert!(c["reason"].is_string(), "{c:#}");
}

#[test]
fn method_and_headers_are_sent() {
    let env = Env::new();
    let srv = http_fixture(Behaviour::Ok("ok".into()));
    let c = one(
        &env,
        &format!(
            "{{type: http, url: '{}', method: post, headers: {{X-Probe: chatstack-status, X-Two: '2'}}}}",
            srv.url("/p")
        ),
    );
    assert_state(&c, "up", None);
    let r = &srv.requests()[0];
    assert_eq!(r.method, "POST");
    assert_eq!(r.header("X-Probe"), Some("chatstack-status"));
    assert_eq!(r.header("X-Two"), Some("2"));
    assert!(r.header("User-Agent").is_some_and(|u| u.starts_with("chatstack-status/")), "{r:?}");
}

/// Peak RSS (VmHWM, kB) of a running process.
fn vm_hwm_kb(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Runs `check` and samples the child's peak RSS until it exits.
fn check_with_peak_rss(env: &Env) -> (std::process::ExitStatus, Duration, u64) {
    let cfg = env.config_path();
    let mut child = env
        .command(&["check", "-c", cfg.to_str().unwrap()], &[])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let started = Instant::now();
    let mut peak = 0;
    let status = loop {
        if let Some(kb) = vm_hwm_kb(child.id()) {
            peak = peak.max(kb);
        }
        if let Some(st) = child.try_wait().expect("try_wait") {
            break st;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "check ran away");
        std::thread::sleep(Duration::from_millis(5));
    };
    (status, started.elapsed(), peak)
}

#[test]
fn huge_and_endless_bodies_are_capped_in_time_and_memory() {
    let env = Env::new();
    let huge = http_fixture(Behaviour::HugeBody);
    let endless = http_fixture(Behaviour::EndlessBody);
    // Keeps the process alive ~400 ms after the bodies were read, so the
    // RSS samples certainly cover the body reads.
    let slow = http_fixture(Behaviour::Delay(400));
    env.config(&format!(
        "timeout: 3s\nservices:\n  - name: svc\n    checks:\n\
         \x20     - {{type: http, url: '{}', body_contains: needle}}\n\
         \x20     - {{type: http, url: '{}', body_contains: xxxx}}\n\
         \x20     - {{type: http, url: '{}', body_contains: needle}}\n\
         \x20     - {{type: http, url: '{}'}}\n",
        huge.url("/"),
        huge.url("/"),
        endless.url("/"),
        slow.url("/"),
    ));
    let (_, elapsed, peak_kb) = check_with_peak_rss(&env);
    eprintln!("huge/endless body check: {elapsed:?}, peak RSS {peak_kb} kB");
    assert!(elapsed < Duration::from_secs(3), "took {elapsed:?}");
    assert!(peak_kb > 0, "no RSS sample");
    assert!(peak_kb < 40 * 1024, "peak RSS {peak_kb} kB: the body was buffered");
    let doc = env.status();
    let checks = crate::util::service_of(&doc, "svc")["checks"].clone();
    assert_state(&checks[0], "down", Some("body_mismatch"));
    assert_state(&checks[1], "up", None);
    assert_state(&checks[2], "down", Some("body_mismatch"));
    assert_state(&checks[3], "up", None);
}

// ----- tcp ----------------------------------------------------------------

#[test]
fn tcp_up_and_refused_and_shorthand_port() {
    let env = Env::new();
    let l = TcpFixture::new();
    let closed = closed_port();
    env.config(&format!(
        "timeout: 1s\nservices:\n\
         \x20 - name: a\n    port: {}\n\
         \x20 - name: b\n    port: '127.0.0.1:{closed}'\n\
         \x20 - name: c\n    checks:\n      - {{type: tcp, address: 'localhost:{}'}}\n",
        l.port(),
        l.port()
    ));
    let doc = env.check(&["--format", "json"]).json();
    let a = check_of(&doc, "a");
    assert_state(&a, "up", None);
    assert_eq!(a["type"], "tcp");
    assert_eq!(a["target"], format!("127.0.0.1:{}", l.port()));
    assert_state(&check_of(&doc, "b"), "down", Some("refused"));
    assert_state(&check_of(&doc, "c"), "up", None);
}

// ----- systemd ------------------------------------------------------------

#[test]
fn systemd_states_map_as_the_spec_says() {
    let env = Env::new();
    env.fake_systemctl();
    let cases = [
        ("active.service", ("active", "running", "success"), "up", None),
        ("inactive.service", ("inactive", "dead", "success"), "down", Some("unit_inactive")),
        ("failed.service", ("failed", "failed", "exit-code"), "down", Some("unit_failed")),
        (
            "looping.service",
            ("activating", "auto-restart", "exit-code"),
            "degraded",
            Some("unit_restarting"),
        ),
        (
            "starting.service",
            ("activating", "start", "success"),
            "degraded",
            Some("unit_restarting"),
        ),
        ("limit.service", ("failed", "failed", "start-limit-hit"), "down", Some("start_limit_hit")),
        ("missing.service", ("", "", ""), "unknown", Some("unit_not_found")),
    ];
    let mut checks = Vec::new();
    for (unit, (a, s, r), _, _) in &cases {
        if !a.is_empty() {
            env.unit(unit, a, s, r);
        }
        checks.push(format!("{{type: systemd, unit: {unit}}}"));
    }
    let (_, got) = run_checks(&env, "timeout: 2s\n", &checks);
    for ((unit, _, status, reason), c) in cases.iter().zip(&got) {
        assert_eq!(c["target"], *unit);
        assert_state(c, status, *reason);
    }
    // One `systemctl show` for every unit of the cycle, in check order.
    let units: Vec<&str> = cases.iter().map(|c| c.0).collect();
    assert_eq!(
        env.systemctl_calls(),
        [format!("show -p {} {}", chatstack_status::probe::units::PROPERTIES, units.join(" "))]
    );
}

/// A systemd that listens on a D-Bus socket: the bench's fake
/// (`bench/fake_systemd_bus.py`: every unit loaded, active, running), or a
/// thread that authenticates and then fails it. Ended with the test.
enum FakeBus {
    Python(std::process::Child),
    Thread,
}

impl FakeBus {
    /// `args`: none, `["break"]` (hangs up at the first question) or
    /// `["mute"]` (answers none).
    fn python(env: &Env, args: &[&str]) -> (FakeBus, String) {
        use std::io::BufRead;
        let sock = env.path("bus");
        let mut child = std::process::Command::new("python3")
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/bench/fake_systemd_bus.py"))
            .arg(&sock)
            .args(args)
            .env("FAKE_BUS_LOG", env.path("bus.log"))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("python3");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "ready");
        (FakeBus::Python(child), format!("unix:path={}", sock.display()))
    }

    /// Authenticates, reads the first message (`Hello`), then closes
    /// (`hang: false`) or keeps the connection open and silent.
    fn thread(env: &Env, hang: bool) -> (FakeBus, String) {
        use std::io::{Read, Write};
        let sock = env.path("bus");
        let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut c) = conn else { return };
                let mut b = [0u8; 4096];
                let mut seen = Vec::new();
                while !seen.windows(2).any(|w| w == b"\r\n") {
                    let Ok(n @ 1..) = c.read(&mut b) else { break };
                    seen.extend_from_slice(&b[..n]);
                }
                let _ = c.write_all(b"OK 0123456789abcdef0123456789abcdef\r\n");
                let _ = c.read(&mut b);
                // Silent until the client hangs up (its process ends).
                while hang && c.read(&mut b).is_ok_and(|n| n > 0) {}
            }
        });
        (FakeBus::Thread, format!("unix:path={}", sock.display()))
    }
}

impl Drop for FakeBus {
    fn drop(&mut self) {
        if let FakeBus::Python(c) = self {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn unit_check_with_bus(env: &Env, bus: &str, timeout: &str) -> (crate::util::Out, Value) {
    env.config(&format!(
        "timeout: {timeout}\nservices:\n  - name: svc\n    checks:\n      - {{type: systemd, unit: web.service}}\n"
    ));
    let cfg = env.config_path();
    let out = env.cmd_env(
        &["check", "-c", cfg.to_str().unwrap(), "--format", "json"],
        &[("DBUS_SYSTEM_BUS_ADDRESS", bus)],
    );
    let c = check_of(&out.json(), "svc");
    (out, c)
}

#[test]
fn units_are_asked_over_dbus_where_systemd_listens_and_no_systemctl_runs() {
    let env = Env::new();
    env.fake_systemctl().unit("web.service", "failed", "failed", "exit-code");
    let (_bus, addr) = FakeBus::python(&env, &[]);
    let (_, c) = unit_check_with_bus(&env, &addr, "2s");
    // The bus's answer (active), not the fake systemctl's (failed).
    assert_state(&c, "up", None);
    assert_eq!(c["detail"], "active (running)", "{c:#}");
    assert_eq!(env.systemctl_calls(), Vec::<String>::new());
}

#[test]
fn a_bus_that_breaks_gives_the_cycle_to_systemctl_and_a_silent_one_costs_the_timeout() {
    let env = Env::new();
    env.fake_systemctl().unit("web.service", "failed", "failed", "exit-code");
    // Hangs up at Hello: no connection, systemctl answers; `check` says
    // nothing of it (cron would mail it at every run).
    let (_bus, addr) = FakeBus::thread(&env, false);
    let (out, c) = unit_check_with_bus(&env, &addr, "2s");
    assert_state(&c, "down", Some("unit_failed"));
    assert_eq!(env.systemctl_calls().len(), 1, "{:?}", env.systemctl_calls());
    assert!(!out.stderr.contains("D-Bus"), "{}", out.stderr);

    // Hangs up at the first question: the same cycle asks systemctl, and says so.
    let env = Env::new();
    env.fake_systemctl().unit("web.service", "failed", "failed", "exit-code");
    let (_bus, addr) = FakeBus::python(&env, &["break"]);
    let (out, c) = unit_check_with_bus(&env, &addr, "2s");
    assert_state(&c, "down", Some("unit_failed"));
    assert_eq!(env.systemctl_calls().len(), 1, "{:?}", env.systemctl_calls());
    assert!(
        out.stderr.contains("D-Bus at") && out.stderr.contains("asking systemctl"),
        "{}",
        out.stderr
    );

    // Silent at Hello, or at the properties: the unit's check costs its
    // timeout and is unknown (systemctl, which would go through the same
    // systemd, is not run after the deadline).
    for mute in ["at Hello", "at Get"] {
        let env = Env::new();
        env.fake_systemctl().unit("web.service", "active", "running", "success");
        let (_bus, addr) = match mute {
            "at Hello" => FakeBus::thread(&env, true),
            _ => FakeBus::python(&env, &["mute"]),
        };
        let (out, c) = unit_check_with_bus(&env, &addr, "1s");
        assert_state(&c, "unknown", Some("timeout"));
        assert!(out.elapsed < Duration::from_secs(6), "{mute}: {:?}", out.elapsed);
        assert_eq!(env.systemctl_calls(), Vec::<String>::new(), "{mute}");
    }
}

/// Connections the Python fake bus accepted so far.
fn bus_connections(env: &Env) -> usize {
    std::fs::read_to_string(env.path("bus.log")).map_or(0, |l| l.lines().count())
}

#[test]
fn a_bus_that_breaks_is_left_for_a_minute_not_reconnected_every_cycle() {
    let env = Env::new();
    env.fake_systemctl().unit("web.service", "active", "running", "success");
    let (_bus, addr) = FakeBus::python(&env, &["break"]);
    env.config(
        "interval: 100ms\ntimeout: 2s\nservices:\n  - name: svc\n    checks:\n      - {type: systemd, unit: web.service}\n",
    );
    let cfg = env.config_path().display().to_string();
    let d = crate::util::Daemon::start(
        &env,
        &["run", "-c", &cfg, "--no-http"],
        &[("DBUS_SYSTEM_BUS_ADDRESS", addr.as_str())],
    );
    // Six cycles, each answered by systemctl (the first one after the break).
    wait_until(Duration::from_secs(20), || env.systemctl_calls().len() >= 6);
    drop(d);
    assert_eq!(bus_connections(&env), 1, "one try, then a minute without");
    let calls = env.systemctl_calls();
    assert!(calls.iter().all(|c| c.starts_with("show ")), "{calls:?}");
}

#[test]
fn systemctl_missing_or_not_booted_is_unknown() {
    let env = Env::new();
    env.config("timeout: 1s\nservices:\n  - name: svc\n    checks:\n      - {type: systemd, unit: web.service}\n");
    // PATH without any systemctl.
    let empty = env.path("empty-bin");
    std::fs::create_dir(&empty).unwrap();
    let cfg = env.config_path();
    let out = env.cmd_env(
        &["check", "-c", cfg.to_str().unwrap(), "--format", "json"],
        &[("PATH", empty.to_str().unwrap())],
    );
    let c = check_of(&out.json(), "svc");
    assert_state(&c, "unknown", Some("check_error"));
    assert!(c["detail"].as_str().unwrap().contains("systemctl"), "{c:#}");
    // Unknown counts as degraded: exit 1, not 2.
    assert_eq!(out.code, 1);

    env.fake_program(
        "systemctl",
        "#!/bin/sh\n[ \"$1\" = __ready ] && exit 0\necho 'System has not been booted with systemd as init system (PID 1). Can'\"'\"'t operate.' >&2\nexit 1\n",
    );
    let c = check_of(&env.check(&["--format", "json"]).json(), "svc");
    assert_state(&c, "unknown", Some("check_error"));
    assert!(c["detail"].as_str().unwrap().contains("not been booted"), "{c:#}");
}

// ----- process ------------------------------------------------------------

#[test]
fn process_substring_regex_and_counts() {
    let env = Env::new();
    let p1 = Marked::start();
    let m = p1.marker.clone();
    let _p2 = Marked::start_with(&m);
    let esc = m.replace('.', r"\.");
    let absent = unique("9000.");
    let (_, c) = run_checks(
        &env,
        "timeout: 2s\n",
        &[
            format!("{{type: process, match: 'sleep {esc}$'}}"),
            format!("{{type: process, match: '{esc}', min: 3}}"),
            format!("{{type: process, match: '{esc}', max: 1}}"),
            format!("{{type: process, match: '{esc}', min: 2, max: 2}}"),
            format!("{{type: process, match: 'sleep {absent}'}}"),
        ],
    );
    assert_state(&c[0], "up", None);
    assert!(c[0]["detail"].as_str().unwrap().contains('2'), "{:#}", c[0]);
    assert_state(&c[1], "down", Some("process_count"));
    assert_state(&c[2], "down", Some("process_count"));
    assert_state(&c[3], "up", None);
    assert_state(&c[4], "down", Some("process_missing"));

    // Shorthand: a literal substring: "30.0" would match "3000" as a regex.
    env.config(&format!(
        "services:\n  - name: lit\n    process: 'sleep {m}'\n  - name: dot\n    process: 'sleep 30.{}'\n",
        &m[3..]
    ));
    let doc = env.check(&["--format", "json"]).json();
    assert_state(&check_of(&doc, "lit"), "up", None);
    assert_state(&check_of(&doc, "dot"), "down", Some("process_missing"));
}

#[test]
fn process_check_does_not_count_the_monitor_itself() {
    let env = Env::new();
    // The only process whose command line holds the config path is the monitor.
    let cfg = env.config_path();
    env.config(&format!("services:\n  - name: me\n    process: '{}'\n", cfg.display()));
    let c = check_of(&env.check(&["--format", "json"]).json(), "me");
    assert_state(&c, "down", Some("process_missing"));
}

// ----- command ------------------------------------------------------------

#[test]
fn command_exit_codes_map_to_states() {
    let env = Env::new();
    let sh = |code: i32, text: &str| {
        format!(
            "{{type: command, argv: [sh, -c, 'echo \"{text} | t=1s;;;0\"; echo more; exit {code}']}}"
        )
    };
    let (_, c) = run_checks(
        &env,
        "timeout: 2s\n",
        &[
            sh(0, "PLUG OK - fine"),
            sh(1, "PLUG WARNING - meh"),
            sh(2, "PLUG CRITICAL - bad"),
            sh(3, "PLUG UNKNOWN - eh"),
            sh(7, "odd"),
            "{type: command, argv: [/nonexistent/plugin]}".to_string(),
        ],
    );
    assert_state(&c[0], "up", None);
    // The first line is the summary; Nagios long output follows it.
    assert_eq!(c[0]["detail"], "PLUG OK - fine\nmore");
    assert_state(&c[1], "degraded", Some("command_status"));
    assert!(c[1]["detail"].as_str().unwrap().starts_with("PLUG WARNING - meh"), "{:#}", c[1]);
    assert_state(&c[2], "down", Some("command_status"));
    assert_state(&c[3], "unknown", Some("command_status"));
    assert_state(&c[4], "unknown", Some("command_status"));
    assert_state(&c[5], "unknown", Some("check_error"));
}

#[test]
fn command_timeout_kills_the_whole_process_group() {
    let env = Env::new();
    let marker = unique("3000.");
    let pidfile = env.path("grandchild.pid");
    let script = format!("sleep {marker} & echo $! > {}; wait", pidfile.display());
    let (out, c) = run_checks(
        &env,
        "",
        &[format!("{{type: command, timeout: 500ms, argv: [sh, -c, '{script}']}}")],
    );
    assert_state(&c[0], "down", Some("timeout"));
    assert!(out.elapsed < Duration::from_secs(2), "took {:?}", out.elapsed);
    // The grandchild really ran, and is gone with its group.
    let pid: u32 = std::fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap();
    assert!(pid > 0);
    wait_until(Duration::from_secs(3), || !any_process_with(&format!("sleep {marker}")));
}

#[test]
fn command_endless_output_is_bounded() {
    let env = Env::new();
    let (out, c) = run_checks(
        &env,
        "",
        &[
            "{type: command, timeout: 500ms, argv: [yes, 'OK - endless']}".to_string(),
            "{type: command, timeout: 2s, argv: [sh, -c, 'head -c 5000000 /dev/zero | tr \"\\0\" x; echo; exit 0']}".to_string(),
        ],
    );
    assert_state(&c[0], "down", Some("timeout"));
    assert_state(&c[1], "up", None);
    assert!(c[1]["detail"].as_str().unwrap().chars().count() <= 201, "{:#}", c[1]);
    assert!(out.elapsed < Duration::from_secs(3), "took {:?}", out.elapsed);
}

#[test]
fn real_nagios_plugins() {
    let dummy = "/usr/lib/nagios/plugins/check_dummy";
    let tcp = "/usr/lib/nagios/plugins/check_tcp";
    if !std::path::Path::new(dummy).exists() || !std::path::Path::new(tcp).exists() {
        eprintln!("note: monitoring-plugins-basic not installed; skipping real plugin test");
        return;
    }
    let env = Env::new();
    let l = TcpFixture::new();
    let closed = closed_port();
    let (_, c) = run_checks(
        &env,
        "timeout: 3s\n",
        &[
            format!("{{type: command, argv: [{dummy}, '0', 'all fine']}}"),
            format!("{{type: command, argv: [{dummy}, '1', 'so so']}}"),
            format!("{{type: command, argv: [{dummy}, '2', 'broken']}}"),
            format!("{{type: command, argv: [{tcp}, -H, 127.0.0.1, -p, '{}']}}", l.port()),
            format!("{{type: command, argv: [{tcp}, -H, 127.0.0.1, -p, '{closed}']}}"),
        ],
    );
    assert_state(&c[0], "up", None);
    assert!(c[0]["detail"].as_str().unwrap().contains("all fine"), "{:#}", c[0]);
    assert_state(&c[1], "degraded", Some("command_status"));
    assert_state(&c[2], "down", Some("command_status"));
    assert_state(&c[3], "up", None);
    assert!(c[3]["detail"].as_str().unwrap().starts_with("TCP OK"), "{:#}", c[3]);
    assert_state(&c[4], "down", Some("command_status"));
}

// ----- the runner ---------------------------------------------------------

#[test]
fn a_hung_target_costs_its_timeout_and_nothing_more() {
    let env = Env::new();
    let ok = http_fixture(Behaviour::Ok("ok".into()));
    let hung = http_fixture(Behaviour::HangAfterAccept);
    let mut yaml = String::from("timeout: 1s\nservices:\n");
    for i in 0..10 {
        yaml.push_str(&format!("  - name: ok{i}\n    url: '{}'\n", ok.url(&format!("/{i}"))));
    }
    yaml.push_str(&format!("  - name: hung\n    url: '{}'\n", hung.url("/")));
    env.config(&yaml);
    let out = env.check(&["--format", "json"]);
    eprintln!("FIGURE hung among ten: {:?}", out.elapsed);
    assert!(out.elapsed < Duration::from_millis(2500), "took {:?}", out.elapsed);
    out.code(2);
    let doc = out.json();
    assert_state(&check_of(&doc, "hung"), "down", Some("timeout"));
    for i in 0..10 {
        assert_state(&check_of(&doc, &format!("ok{i}")), "up", None);
    }
}

#[test]
fn forty_slow_targets_on_sixteen_workers_take_three_waves_not_forty() {
    let env = Env::new();
    let slow = http_fixture(Behaviour::Delay(300));
    let mut yaml = String::from("timeout: 3s\nworkers: 16\nservices:\n");
    for i in 0..40 {
        yaml.push_str(&format!("  - name: s{i}\n    url: '{}'\n", slow.url(&format!("/{i}"))));
    }
    env.config(&yaml);
    let out = env.check(&[]);
    eprintln!("FIGURE 40 x 300ms on 16 workers: {:?}", out.elapsed);
    out.code(0);
    assert_eq!(slow.requests().len(), 40);
    // ceil(40/16) = 3 waves of 300 ms: at least 0.9 s (the pool is bounded),
    // far below 40 x 0.3 = 12 s (the pool is parallel).
    assert!(out.elapsed >= Duration::from_millis(850), "took {:?}", out.elapsed);
    assert!(out.elapsed < Duration::from_millis(2500), "took {:?}", out.elapsed);
}

#[test]
fn https_to_a_plain_http_server_is_tls() {
    let env = Env::new();
    // Answers plain HTTP at once, whatever it is sent (a ClientHello here).
    let srv = crate::util::accept_loop(|mut s, _| {
        use std::io::Write;
        let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
    });
    let c = one(&env, &format!("{{type: http, url: 'https://{}/'}}", srv.addr));
    assert_state(&c, "down", Some("tls"));
}

#[test]
fn an_untrusted_certificate_is_tls() {
    let env = Env::new();
    let Some(srv) = crate::util::TlsFixture::start(&env) else {
        eprintln!("note: openssl not installed; skipping the certificate test");
        return;
    };
    let c = one(&env, &format!("{{type: http, url: 'https://{}/'}}", srv.addr));
    assert_state(&c, "down", Some("tls"));
    assert!(c["detail"].as_str().unwrap().contains("certificate"), "{c:#}");
}

// ----- the monitor's own tool failing; plugins that misbehave --------------

/// A fake `systemctl` whose `show` runs `show_body` (sh), logging every call.
fn odd_systemctl(env: &Env, show_body: &str) {
    let d = env.root().display();
    env.fake_program(
        "systemctl",
        &format!(
            "#!/bin/sh\n[ \"$1\" = __ready ] && exit 0\necho \"$*\" >> '{d}/systemctl.log'\n\
             case \"$1\" in\n  show) {show_body} ;;\nesac\nexit 0\n"
        ),
    );
}

#[test]
fn a_hung_systemctl_is_unknown_and_never_heals() {
    use crate::util::Daemon;
    let env = Env::new();
    odd_systemctl(&env, "sleep 5");
    env.config(
        "interval: 100ms\ntimeout: 300ms\nheal: {after_failures: 1, grace: 0s}\n\
         services:\n  - name: web\n    unit: web.service\n",
    );
    let cfg = env.config_path();
    let _d = Daemon::start(&env, &["run", "--no-http", "-c", cfg.to_str().unwrap()], &[]);
    let shows = || env.systemctl_calls().iter().filter(|c| c.starts_with("show ")).count();
    wait_until(Duration::from_secs(15), || shows() >= 6 && env.status_path().exists());
    let web = env.service("web");
    eprintln!(
        "FIGURE hung systemctl after {} cycles: service {}, check {}/{}, actions {:?}",
        shows(),
        web["status"],
        web["checks"][0]["status"],
        web["checks"][0]["reason"],
        env.systemctl_actions()
    );
    assert!(env.systemctl_actions().is_empty(), "healed on a hung systemctl");
    assert_eq!(web["status"], "degraded", "{web:#}");
    assert_state(&web["checks"][0], "unknown", Some("timeout"));
}

#[test]
fn systemctl_crashing_or_answering_nonsense_is_unknown() {
    for (what, body) in [
        ("killed by a signal", "kill -SEGV $$"),
        ("garbage", "echo 'Failed to connect to bus: no such luck'"),
        ("no LoadState", "printf 'ActiveState=inactive\\nSubState=dead\\n'"),
        ("empty", "true"),
    ] {
        let env = Env::new();
        odd_systemctl(&env, body);
        env.config(
            "timeout: 2s\nheal: {after_failures: 1, grace: 0s}\nservices:\n  - name: web\n    unit: web.service\n",
        );
        for _ in 0..3 {
            env.check(&[]).code(1);
        }
        let c = &env.service("web")["checks"][0];
        assert_state(c, "unknown", Some("check_error"));
        assert!(env.systemctl_actions().is_empty(), "{what}: {:?}", env.systemctl_calls());
    }
}

/// Kills (on drop) every process whose command line holds `marker`: the
/// helpers a test's plugins left behind on purpose.
struct KillMarked(String);

impl Drop for KillMarked {
    fn drop(&mut self) {
        let Ok(dir) = std::fs::read_dir("/proc") else { return };
        for pid in dir.flatten().filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok()) {
            if crate::util::cmdline(pid).contains(&self.0) {
                crate::util::kill(pid);
            }
        }
    }
}

/// Threads and open fds of a process, as /proc counts them.
fn tasks_and_fds(pid: u32) -> (usize, usize) {
    let count = |d: String| std::fs::read_dir(d).map(|d| d.count()).unwrap_or(0);
    (count(format!("/proc/{pid}/task")), count(format!("/proc/{pid}/fd")))
}

/// Medians of `tasks_and_fds` over a few samples (a cycle's probe threads come and go).
fn settled(pid: u32) -> (usize, usize) {
    let mut t = Vec::new();
    let mut f = Vec::new();
    for _ in 0..9 {
        let (a, b) = tasks_and_fds(pid);
        t.push(a);
        f.push(b);
        std::thread::sleep(Duration::from_millis(30));
    }
    t.sort_unstable();
    f.sort_unstable();
    (t[4], f[4])
}

#[test]
fn plugin_helpers_that_outlive_the_plugin_leak_no_threads_or_fds() {
    use crate::util::Daemon;
    let env = Env::new();
    let marker = unique("30.");
    let _helpers = KillMarked(format!("sleep {marker}"));
    let runs = env.path("runs");
    // A plugin that starts a helper in its own session, holding our pipes.
    let script = format!(
        "setsid sleep {marker} & echo x >> {}; echo \"HELPER OK - started\"; exit 0",
        runs.display()
    );
    env.config(&format!(
        "interval: 100ms\ntimeout: 2s\nservices:\n  - name: plug\n    checks:\n      - {{type: command, argv: [sh, -c, '{script}']}}\n"
    ));
    let cfg = env.config_path();
    let d = Daemon::start(&env, &["run", "--no-http", "-c", cfg.to_str().unwrap()], &[]);
    let ran = || std::fs::read_to_string(&runs).map(|s| s.lines().count()).unwrap_or(0);
    wait_until(Duration::from_secs(15), || ran() >= 5);
    let base = settled(d.pid());
    wait_until(Duration::from_secs(30), || ran() >= 35);
    let after = settled(d.pid());
    let detail = env.service("plug")["checks"][0]["detail"].clone();
    eprintln!(
        "FIGURE (threads, fds) of run after 5 plugin runs {base:?}, after {}: {after:?}; detail {detail}",
        ran()
    );
    assert!(after.0 <= base.0 + 2, "threads grew: {base:?} -> {after:?}");
    assert!(after.1 <= base.1 + 2, "fds grew: {base:?} -> {after:?}");
    assert_eq!(detail, "HELPER OK - started");
}

#[test]
fn multi_line_plugin_output_is_a_summary_line_plus_long_text() {
    let env = Env::new();
    // The idiomatic YAML block script: its newlines are in the argv too (and
    // `$x` keeps the long output's text out of the script itself).
    env.config(
        "timeout: 2s\nservices:\n  - name: disk\n    checks:\n      - type: command\n        argv:\n\
         \x20         - sh\n          - -c\n          - |\n            echo 'DISK WARNING - / at 91%'\n\
         \x20           x=line\n            echo \"/ 91% used, $x-two\"\n\
         \x20           echo \"/home 40% used, $x-three | /=91%;80;90 /home=40%\"\n\
         \x20           echo '/var=10%'\n            exit 1\n\
         \x20 - name: other\n    checks:\n      - {type: command, argv: [sh, -c, 'echo fine']}\n",
    );
    let json = env.check(&["--format", "json"]);
    json.code(1);
    let c = crate::util::check_of(&json.json(), "disk");
    assert_state(&c, "degraded", Some("command_status"));
    let detail = c["detail"].as_str().unwrap();
    eprintln!("FIGURE multi-line plugin detail: {detail:?}");
    assert_eq!(
        detail,
        "DISK WARNING - / at 91% (exit 1)\n/ 91% used, line-two\n/home 40% used, line-three"
    );

    let nagios = env.check(&["--format", "nagios"]);
    nagios.code(1);
    eprintln!("FIGURE multi-line plugin, nagios output: {:?}", nagios.stdout);
    assert_eq!(nagios.stdout.lines().count(), 1, "{:?}", nagios.stdout);
    assert!(nagios.stdout.contains("DISK WARNING - / at 91% (exit 1)"), "{}", nagios.stdout);
    assert!(!nagios.stdout.contains("line-t"), "{}", nagios.stdout);

    let text = env.check(&[]);
    text.code(1);
    let lines: Vec<&str> = text.stdout.lines().collect();
    eprintln!("FIGURE multi-line plugin, text table: {lines:#?}");
    // Header, one line per service, the overall line.
    assert_eq!(lines.len(), 4, "{}", text.stdout);
    assert!(lines[1].starts_with("disk ") && lines[1].contains("DISK WARNING"), "{}", text.stdout);
    assert!(lines[2].starts_with("other "), "{}", text.stdout);
    assert!(!text.stdout.contains("line-t"), "{}", text.stdout);
}

// ---- disk: a tmpfs of known size in a private mount namespace ----

/// Runs `script` (sh, `$BIN` is the binary) in a private mount namespace
/// where `mnt` is a fresh tmpfs of `size_k` KiB and at most `inodes` inodes.
#[track_caller]
fn in_tmpfs(env: &Env, size_k: u32, inodes: u32, script: &str) -> crate::util::Out {
    let mnt = env.path("mnt");
    std::fs::create_dir_all(&mnt).expect("mnt");
    let file = env.write(
        "in-tmpfs.sh",
        &format!(
            "mount -t tmpfs -o size={size_k}k,nr_inodes={inodes} tmpfs {mnt:?} || exit 9\n{script}\n"
        ),
    );
    let c = env.command_via_sh(&format!("BIN=\"$0\" exec unshare -m sh {file:?}"), &[]);
    crate::util::run_bin(c)
}

/// df's own figures for a path: (Size, Avail, Use% without the sign), in bytes.
fn df_line(text: &str) -> (u64, u64, u64) {
    let row: Vec<u64> = text
        .lines()
        .nth(1)
        .expect("df row")
        .split_whitespace()
        .map(|w| w.trim_end_matches('%').parse().expect("df number"))
        .collect();
    (row[0], row[1], row[2])
}

#[test]
fn disk_space_inodes_and_read_only_on_a_tmpfs_of_known_size() {
    if !crate::history::can_mount() {
        return;
    }
    let env = Env::new();
    let mnt = env.path("mnt");
    let disk = |name: &str, extra: &str| {
        format!("  - name: {name}\n    checks:\n      - {{type: disk, path: {mnt:?}{extra}}}\n")
    };
    env.config(&format!(
        "services:\n{}{}{}{}",
        disk("warned", ", warn: 50, crit: 90"),
        disk("full", ", warn: 50, crit: '60%'"),
        disk("inodes", ", warn: 99, crit: 99.5, inodes_warn: 10, inodes_crit: 50"),
        disk("ro_ok", ", warn: 99, crit: 99.5, read_only_ok: true"),
    ));
    let cfg = env.config_path();
    let (rw, ro, df) = (env.path("rw.json"), env.path("ro.json"), env.path("df.txt"));
    // 3000 KiB of 4096, 20 files of 100 inodes; then remounted read-only.
    let script = format!(
        "dd if=/dev/zero of={mnt:?}/fill bs=1k count=3000 2>/dev/null && \
         for i in $(seq 1 20); do : > {mnt:?}/f$i; done && \
         df -B1 --output=size,avail,pcent {mnt:?} > {df:?} && \
         \"$BIN\" check -c {cfg:?} --format json > {rw:?}; \
         mount -o remount,ro {mnt:?} && \
         \"$BIN\" check -c {cfg:?} --format json > {ro:?}; exit 0"
    );
    let out = in_tmpfs(&env, 4096, 100, &script);
    assert_eq!(out.code, 0, "{out:#?}\n{}", env.read("in-tmpfs.sh"));
    let rw = crate::util::read_json(&rw);
    let check = |doc: &Value, name: &str| crate::util::service_of(doc, name)["checks"][0].clone();

    let c = check(&rw, "warned");
    assert_state(&c, "degraded", Some("disk_space"));
    let (size, avail, pct) = df_line(&std::fs::read_to_string(&df).unwrap());
    assert_eq!(c["values"]["total_bytes"], size, "df's Size: {c:#}");
    assert_eq!(size, 4096 * 1024);
    assert_eq!(c["values"]["available_bytes"], avail, "df's Avail: {c:#}");
    let used = c["values"]["used_pct"].as_f64().unwrap();
    // df rounds Use% up to a whole percent; we keep one decimal.
    assert!(used <= pct as f64 && used > pct as f64 - 1.0, "{used} against df's {pct}%");
    assert!(c["detail"].as_str().unwrap().contains("% used"), "{c:#}");
    assert_eq!(
        c["thresholds"],
        serde_json::json!({"value": "used_pct", "warn": 50.0, "crit": 90.0})
    );
    assert!(c["values"]["full_in_s"].is_null(), "one sample is no forecast: {c:#}");

    assert_state(&check(&rw, "full"), "down", Some("disk_space"));
    let c = check(&rw, "inodes");
    assert_state(&c, "degraded", Some("disk_inodes"));
    // 21 of 100 inodes: the root directory and 21 files.
    let inodes = c["values"]["inodes_used_pct"].as_f64().unwrap();
    assert!((21.0..=23.0).contains(&inodes), "{c:#}");
    assert_state(&check(&rw, "ro_ok"), "up", None);

    let ro = crate::util::read_json(&ro);
    for name in ["warned", "full", "inodes"] {
        let c = check(&ro, name);
        assert_state(&c, "down", Some("read_only"));
        assert!(c["detail"].as_str().unwrap().contains("read-only"), "{c:#}");
    }
    assert_state(&check(&ro, "ro_ok"), "up", None);
    assert_eq!(ro["overall"], "down");
}

#[test]
fn a_disk_path_that_is_not_there_is_down_and_says_why() {
    let env = Env::new();
    let missing = env.path("not-mounted");
    let c = one(&env, &format!("{{type: disk, path: {missing:?}}}"));
    assert_state(&c, "down", Some("check_error"));
    assert!(c["detail"].as_str().unwrap().contains("No such file or directory"), "{c:#}");
}

#[test]
fn disk_for_counts_cycles_across_check_runs() {
    let env = Env::new();
    // Any used space is over 0%: over every cycle; `for: 3` holds it up twice.
    let check = "{type: disk, path: /, warn: 0, crit: 100, for: 3}";
    for (run, (status, reason)) in
        [("up", None), ("up", None), ("degraded", Some("disk_space"))].into_iter().enumerate()
    {
        let c = one(&env, check);
        assert_state(&c, status, reason);
        let over = &env.state()["services"]["svc"]["over"];
        assert_eq!(over.as_object().map(|o| o.len()), Some(1), "{over}");
        assert_eq!(over.as_object().unwrap().values().next().unwrap(), run + 1);
        if run < 2 {
            assert!(
                c["detail"].as_str().unwrap().contains(&format!("over {} of the 3", run + 1)),
                "{c:#}"
            );
        }
    }
    // Under the threshold again: the count starts afresh.
    let c = one(&env, "{type: disk, path: /, warn: 100, crit: 100, for: 3}");
    assert_state(&c, "up", None);
    assert!(env.state()["services"]["svc"].get("over").is_none(), "{}", env.state());
}

#[test]
fn disk_forecast_fills_in_from_the_history_and_warns() {
    if !crate::history::can_mount() {
        return;
    }
    let env = Env::new();
    let mnt = env.path("mnt");
    let prom = env.path("disk.prom");
    env.config(&format!(
        "prom_file: {prom:?}\nservices:\n  - name: Host\n    checks:\n      - {{type: disk, path: {mnt:?}, warn: 99, crit: 99.5, full_warn: 1d, forecast_window: 1h}}\n"
    ));
    let cfg = env.config_path();
    // Four cycles, 256 KiB more each time: the third has a trend. Whether
    // a run takes 10 ms or a second, 63 MiB left is more than a second and
    // less than an hour away (with 8 MiB and 512 KiB a run, a fast machine
    // read "full in 0 s").
    let mut script = String::new();
    for i in 0..4 {
        script.push_str(&format!(
            "dd if=/dev/zero of={mnt:?}/f{i} bs=1k count=256 2>/dev/null && \
             \"$BIN\" check -c {cfg:?} --format json > {:?}; ",
            env.path(&format!("run{i}.json"))
        ));
    }
    script.push_str("exit 0");
    let out = in_tmpfs(&env, 65536, 1000, &script);
    assert_eq!(out.code, 0, "{out:#?}");
    let runs: Vec<Value> = (0..4)
        .map(|i| {
            let doc = crate::util::read_json(&env.path(&format!("run{i}.json")));
            crate::util::service_of(&doc, "Host")["checks"][0].clone()
        })
        .collect();
    for c in &runs[..2] {
        assert!(c["values"]["full_in_s"].is_null(), "fewer than 3 samples: {c:#}");
        assert_state(c, "up", None);
    }
    for c in &runs[2..] {
        let left = c["values"]["full_in_s"].as_f64().unwrap_or_else(|| panic!("{c:#}"));
        // Filling 256 KiB per run (well under a minute apart), with at most 64 MiB left.
        assert!(left > 0.0 && left < 3600.0, "{c:#}");
        assert_state(c, "degraded", Some("disk_filling"));
        assert!(c["detail"].as_str().unwrap().contains("full in"), "{c:#}");
    }
    // The metrics of the last run: promtool-clean, with the disk's families.
    let text = std::fs::read_to_string(&prom).unwrap();
    crate::util::promtool_lint(text.as_bytes());
    let series = format!(
        "chatstack_disk_used_ratio{{service=\"Host\",path={:?}}} ",
        mnt.display().to_string()
    );
    assert!(text.contains(&series), "{text}");
    assert!(text.contains("chatstack_disk_inodes_used_ratio{"), "{text}");

    // Without a history store there is no forecast.
    env.config(
        "history_db: \"off\"\nservices:\n  - name: Host\n    checks:\n      - {type: disk, path: /, full_warn: 1d}\n",
    );
    let doc = env.check(&["--format", "json"]).json();
    let c = crate::util::service_of(&doc, "Host")["checks"][0].clone();
    assert!(c["values"]["full_in_s"].is_null(), "{c:#}");
    assert_ne!(c["reason"], "disk_filling");
}

#[test]
fn disk_config_errors_are_located() {
    let env = Env::new();
    env.write(
        "bad.yml",
        "services:\n  - name: Host\n    checks:\n      - type: disk\n        path: /\n        warn: lots\n      - {type: disk, path: rel, warn: 95, crit: 90, forecast_window: 5s}\n      - {type: tcp, address: 'h:1', path: /}\n      - {type: disk}\n",
    );
    let bad = env.path("bad.yml");
    let out = env.cmd(&["validate", "-c", bad.to_str().unwrap()]);
    out.code(3);
    let f = bad.display();
    for line in [
        format!(
            "{f}:6:15: services[0].checks[0].warn: expected a number like 80 (a percentage may be written \"80%\"), found \"lots\""
        ),
        format!("{f}:7:28: service \"Host\": disk path \"rel\": expected an absolute path"),
        format!("{f}:7:49: service \"Host\": crit (90) is below warn (95)"),
        format!("{f}:7:70: service \"Host\": forecast_window: expected at least 10s"),
        format!("{f}:8:9: service \"Host\": `path` not valid for a tcp check"),
        format!("{f}:9:9: service \"Host\": a disk check needs `path`"),
    ] {
        assert!(out.stderr.contains(&line), "missing {line}\n{}", out.stderr);
    }
}

// ---- memory, load, pressure: /proc files of known content in a private mount namespace ----

#[test]
fn memory_load_and_pressure_from_proc_files_of_known_content() {
    if !crate::history::can_mount() {
        return;
    }
    let env = Env::new();
    let fake = |name: &str, text: &str| env.write(&format!("fake/{name}"), text);
    let meminfo = fake(
        "meminfo",
        "MemTotal:        1000000 kB\nMemFree:          50000 kB\nMemAvailable:     100000 kB\nSwapTotal:        400000 kB\nSwapFree:         100000 kB\n",
    );
    let loadavg = fake("loadavg", "6.00 4.00 2.00 3/456 7890\n");
    let online = fake("online", "0-3\n");
    fake(
        "pressure/cpu",
        "some avg10=30.00 avg60=25.00 avg300=20.00 total=1\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n",
    );
    fake(
        "pressure/io",
        "some avg10=1.00 avg60=1.00 avg300=1.00 total=1\nfull avg10=60.00 avg60=50.00 avg300=40.00 total=9\n",
    );
    let pressure = env.path("fake/pressure");
    let svc = |name: &str, check: &str| format!("  - name: {name}\n    checks:\n      - {check}\n");
    env.config(&format!(
        "services:\n{}{}{}{}{}{}{}",
        svc("ram", "{type: memory, warn: 85, crit: 95}"),
        svc("swap", "{type: memory, warn: 95, crit: 99, swap_warn: 50, swap_crit: '70%'}"),
        svc("load5", "{type: load, warn: 0.9, crit: 3}"),
        svc("load1", "{type: load, window: 1m, warn: 0.9, crit: 1.4}"),
        svc("cpu", "{type: pressure, resource: cpu}"),
        svc("io", "{type: pressure, resource: io, full: true}"),
        svc("nopsi", "{type: pressure, resource: memory}"),
    ));
    let cfg = env.config_path();
    let json = env.path("out.json");
    let script = format!(
        "mount --bind {meminfo:?} /proc/meminfo && mount --bind {loadavg:?} /proc/loadavg && \
         mount --bind {online:?} /sys/devices/system/cpu/online && \
         mount --bind {pressure:?} /proc/pressure && \
         \"$BIN\" check -c {cfg:?} --format json > {json:?}; exit 0"
    );
    let out = in_tmpfs(&env, 64, 100, &script);
    assert_eq!(out.code, 0, "{out:#?}");
    let doc = crate::util::read_json(&json);
    let check = |name: &str| crate::util::service_of(&doc, name)["checks"][0].clone();

    let c = check("ram");
    assert_state(&c, "degraded", Some("memory_used"));
    assert_eq!(c["values"]["used_pct"], 90.0);
    assert_eq!(c["values"]["total_bytes"], 1_024_000_000u64);
    assert_eq!(c["values"]["available_bytes"], 102_400_000u64);
    assert_eq!(c["values"]["swap_used_pct"], 75.0);
    let c = check("swap");
    assert_state(&c, "down", Some("swap_used"));

    let c = check("load5");
    assert_state(&c, "degraded", Some("load_high"));
    assert_eq!(
        c["values"],
        serde_json::json!({"load1": 6, "load5": 4, "load15": 2, "cpus": 4, "per_cpu": 1})
    );
    let c = check("load1");
    assert_state(&c, "down", Some("load_high"));
    assert_eq!(c["values"]["per_cpu"], 1.5);

    let c = check("cpu");
    assert_state(&c, "degraded", Some("pressure_high"));
    assert_eq!(c["values"], serde_json::json!({"avg10": 30, "avg60": 25, "avg300": 20}));
    let c = check("io");
    assert_state(&c, "down", Some("pressure_high"));
    assert_eq!(c["values"]["avg60"], 50.0);
    let c = check("nopsi");
    assert_state(&c, "unknown", Some("check_error"));
    assert!(c["detail"].as_str().unwrap().contains("/proc/pressure/memory"), "{c:#}");

    // The system block reads the same files.
    let sys = &doc["system"];
    assert_eq!(sys["cpus"], 4);
    assert_eq!(sys["load"], serde_json::json!([6.0, 4.0, 2.0]));
    assert_eq!(sys["memory"]["used_pct"], 90.0);
    assert_eq!(sys["memory"]["swap_total_bytes"], 409_600_000u64);
    assert_eq!(sys["memory"]["swap_used_pct"], 75.0);
}

#[test]
fn the_system_block_and_its_metrics_describe_this_host() {
    let env = Env::new();
    let prom = env.path("host.prom");
    env.config(&format!(
        "prom_file: {prom:?}\nservices:\n  - name: Host\n    checks:\n      - {{type: memory, warn: 100, crit: 100}}\n      - {{type: load, warn: 1000, crit: 1000}}\n"
    ));
    let doc = env.check(&["--format", "json"]).json();
    let sys = &doc["system"];
    let boot_id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
    assert_eq!(sys["boot_id"], boot_id.trim());
    let uptime: f64 = std::fs::read_to_string("/proc/uptime")
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let up = sys["uptime_s"].as_f64().unwrap();
    assert!((up - uptime).abs() < 60.0, "{up} against {uptime}");
    assert!(sys["booted_at"].as_str().unwrap().ends_with('Z'));
    assert!(sys["cpus"].as_u64().unwrap() >= 1);
    assert_eq!(sys["load"].as_array().unwrap().len(), 3);
    assert!(sys["memory"]["total_bytes"].as_u64().unwrap() > 0);
    let c = crate::util::service_of(&doc, "Host")["checks"][0].clone();
    assert_state(&c, "up", None);
    assert_eq!(c["values"]["total_bytes"], sys["memory"]["total_bytes"]);

    let text = std::fs::read_to_string(&prom).unwrap();
    crate::util::promtool_lint(text.as_bytes());
    for family in [
        "chatstack_memory_used_ratio ",
        "chatstack_load_per_cpu{window=\"1m\"} ",
        "chatstack_load_per_cpu{window=\"15m\"} ",
        "chatstack_boot_time_seconds ",
    ] {
        assert!(text.contains(family), "{family} missing:\n{text}");
    }
    // Text and Nagios show the values readably.
    let out = env.check(&[]);
    assert!(out.stdout.contains("memory RAM: used "), "{}", out.stdout);
    let nagios = env.check(&["--format", "nagios"]);
    assert!(nagios.stdout.contains("'Host memory used_pct'="), "{}", nagios.stdout);
    assert!(nagios.stdout.contains("%;100;100;0;100"), "{}", nagios.stdout);
}

/// `check` in a terminal (issue 21, "seen"): under a long service name the resource checks'
/// figures wrap within 100 columns, a figure a check has not got (no forecast with
/// `history_db: off`, no swap here) is left out rather than shown as "n/a", and the service's
/// row says which check its figures are (`disk /: used …`), not a bare "65.7% used".
#[test]
fn resource_checks_read_within_100_columns() {
    let env = Env::new();
    env.config(
        "history_db: off\nservices:\n  - name: The droplet itself, with a long name\n    checks:\n      \
         - { type: disk, path: /, warn: 98, crit: 99 }\n      - { type: memory, warn: 98, crit: 99 }\n      \
         - { type: load, warn: 100, crit: 200 }\n",
    );
    let out = env.check(&[]);
    let text = &out.stdout;
    for line in text.lines() {
        assert!(line.chars().count() <= 100, "{} columns: {line:?}\n{text}", line.chars().count());
    }
    assert!(!text.contains("n/a"), "{text}");
    let row = text.lines().find(|l| l.starts_with("The droplet itself")).expect(text);
    assert!(row.contains(" UP ") && row.contains("disk /: used "), "{row:?}\n{text}");
    assert_eq!(text.matches("disk /").count(), 1, "{text}");
    for want in ["memory RAM: used ", "load per CPU, 5m: load1 ", "per cpu "] {
        assert!(text.contains(want), "{want:?} missing:\n{text}");
    }
}
