//! `run` and `serve` as real processes: the cycle loop, signals, reloads,
//! sd_notify.

use crate::util::{Daemon, Env, simple_config, wait_until};

use std::time::{Duration, Instant};

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

/// Issue 18 #8: a target slower than the interval (timeout 3 s, interval
/// 500 ms) made cycles run back to back holding the state lock through
/// their probing: `ping`, `mute` and `unmute` waited 30 s and failed. Now
/// probing holds no lock: each answers at once, and its effect shows in
/// the next cycle. `validate` warns about such a timeout.
#[test]
fn a_target_slower_than_the_interval_never_locks_out_ping_mute_or_unmute() {
    let env = Env::new();
    let hang = crate::util::http_fixture(crate::util::Behaviour::HangAfterAccept);
    env.config(&format!(
        "interval: 500ms\ntimeout: 3s\nheal: {{ enabled: false }}\nservices:\n  - name: slow\n    url: {}\n  - name: backup\n    checks: [{{ type: push, period: 1h, grace: 1h }}]\n",
        hang.url("/")
    ));
    let cfg = cfg(&env);
    let out = env.cmd(&["validate", "-c", &cfg]);
    out.code(0);
    assert!(
        out.stderr.contains("service \"slow\": http check")
            && out.stderr.contains("timeout 3s is longer than the interval 500ms"),
        "{}",
        out.stderr
    );
    let d = Daemon::start(&env, &["run", "-c", &cfg, "--no-http"], &[]);
    // Two cycles in: they now run back to back.
    wait_until(Duration::from_secs(15), || {
        d.log().iter().filter(|l| l.contains("longer than the interval")).count() >= 2
    });
    for round in 0..3 {
        let started = Instant::now();
        for args in [
            vec!["ping", "-c", &cfg, "backup", "--message", "nightly"],
            vec!["mute", "-c", &cfg, "slow", "--for", "1h"],
            vec!["unmute", "-c", &cfg, "slow"],
        ] {
            let out = env.cmd(&args);
            out.code(0);
            let took = started.elapsed();
            assert!(took < Duration::from_secs(2), "round {round}: {args:?} took {took:?}");
        }
    }
    assert_eq!(env.state()["services"]["backup"]["push"]["pings"], 3);
    // The next cycle judges the push check from the pings.
    wait_until(Duration::from_secs(15), || {
        crate::util::check_of(&env.status(), "backup")["last_ping"]["message"] == "nightly"
    });
}

/// Issue 19 #10 (SPEC Part 3, small promises): a second `run` on the same
/// state file exits 3 naming the running one's PID (two daemons would heal
/// twice); a cron `check` beside the daemon works as before; once the first
/// is gone (even killed), a new one starts.
#[test]
fn a_second_run_on_the_same_state_file_exits_3_naming_the_first() {
    let env = Env::new();
    let tcp = crate::util::TcpFixture::new();
    simple_config(&env, tcp.port(), "100ms");
    let mut first = Daemon::start(&env, &["run", "-c", &cfg(&env), "--no-http"], &[]);
    wait_until(Duration::from_secs(10), || env.status_path().exists());
    let out = env.cmd(&["run", "-c", &cfg(&env), "--no-http"]);
    out.code(3);
    let pid = format!("PID {}", first.pid());
    assert!(out.stderr.contains(&pid), "{pid}: {}", out.stderr);
    assert!(out.stderr.contains("already running on"), "{}", out.stderr);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    // Also when it listens elsewhere: the claim is the state file's.
    let out = env.cmd(&["run", "-c", &cfg(&env), "--listen", "127.0.0.1:0"]);
    out.code(3);
    assert!(out.stderr.contains(&pid), "{}", out.stderr);
    env.check(&[]).code(0);
    assert!(first.exited().is_none(), "the first daemon runs on");

    first.signal(rustix::process::Signal::KILL);
    let _ = first.wait_exit(Duration::from_secs(5));
    let second = Daemon::start(&env, &["run", "-c", &cfg(&env), "--no-http"], &[]);
    let before = crate::util::read_json(&env.status_path())["generated_at"].clone();
    wait_until(Duration::from_secs(10), || {
        crate::util::read_json(&env.status_path())["generated_at"] != before
    });
    let pid_file = std::fs::read_to_string(format!("{}.pid", env.state_path().display())).unwrap();
    assert_eq!(pid_file.trim(), second.pid().to_string());
}

/// Issue 21 (cost): a healthy cycle changes only what may wait a minute
/// (the rings of recent results, samples), so the daemon keeps the state
/// in memory and leaves the file alone; a `mute` written meanwhile is seen
/// by the next cycle and kept; SIGTERM writes what was kept.
#[test]
fn a_healthy_daemon_leaves_the_state_file_alone_sees_a_mute_and_writes_at_exit() {
    use std::os::unix::fs::MetadataExt;
    let env = Env::new();
    let tcp = crate::util::TcpFixture::new();
    simple_config(&env, tcp.port(), "100ms");
    let mut d = Daemon::start(&env, &["run", "-c", &cfg(&env), "--no-http"], &[]);
    let generated = || crate::util::read_json(&env.status_path())["generated_at"].clone();
    let cycles = |n: usize| {
        let mut seen = vec![];
        wait_until(Duration::from_secs(20), || {
            if let Some(g) = env.status_path().exists().then(generated)
                && seen.last() != Some(&g)
            {
                seen.push(g);
            }
            seen.len() > n
        });
    };
    cycles(2);
    let file = || std::fs::metadata(env.state_path()).map(|m| (m.ino(), m.mtime_nsec())).ok();
    let before = file();
    cycles(5);
    assert_eq!(file(), before, "rewritten by healthy cycles");

    env.cmd(&["mute", "-c", &cfg(&env), "Web", "--for", "1h"]).code(0);
    wait_until(Duration::from_secs(10), || {
        !crate::util::service_of(&env.status(), "Web")["muted_until"].is_null()
    });
    cycles(3);
    assert!(!env.state()["services"]["Web"]["muted_until"].is_null(), "the mute was lost");

    let last = || env.state()["services"]["Web"]["history"].as_array().unwrap().last().cloned();
    let on_disk = last();
    cycles(3);
    d.signal(rustix::process::Signal::TERM);
    assert_eq!(d.wait_exit(Duration::from_secs(5)).0, Some(0), "{:?}", d.log());
    let at_exit = last().unwrap();
    assert_ne!(Some(&at_exit), on_disk.as_ref(), "the kept cycles were not written at exit");
    assert_eq!(at_exit["at"], generated(), "the last cycle's result");
}
