//! The dashboard in a real headless Chromium, driven by tests/browser/run.py:
//! against the fixture (stale, error, lost connection, two widgets, the
//! history parts, history off or failing, credentials across origins) and
//! against the real daemon with up, degraded and down services, one of whose
//! details is an HTML injection attempt that must render as text, and with a
//! seeded history database (uptime figures, 90-day bars, incidents), and with
//! a unit's memory and CPU (its card's figures and 24 h charts from
//! /api/resources) under the host panel.

use crate::util::Daemon;
use crate::util::{Env, TcpFixture, closed_port, wait_until};
use std::process::Command;
use std::time::Duration;

fn chromium_available() -> bool {
    let ok = std::path::Path::new("/usr/bin/chromium").exists();
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "chromium missing in CI: install the chromium package"
        );
        eprintln!("chromium not installed: browser test skipped (run `make deps`)");
    }
    ok
}

#[track_caller]
fn run_browser_test(args: &[&str]) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser/run.py");
    let out = Command::new("python3").arg(script).args(args).output().expect("python3");
    let text =
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "browser test failed:\n{text}");
    assert!(!text.contains("FAIL"), "{text}");
}

#[test]
fn dashboard_fixture_scenarios_in_chromium() {
    if chromium_available() {
        run_browser_test(&["--timeout", "60"]);
    }
}

#[test]
fn dashboard_against_the_daemon_in_chromium() {
    if !chromium_available() {
        return;
    }
    let env = Env::new();
    let up = TcpFixture::new();
    env.config(&format!(
        r#"interval: 200ms
timeout: 1s
heal: {{ enabled: false }}
services:
  - name: Up Service
    port: {}
  - name: Slow Service
    critical: false
    checks:
      - type: command
        argv: [sh, -c, "echo '<img src=x onerror=alert(1)>'; exit 1"]
  - name: Down Service
    port: {}
"#,
        up.port(),
        closed_port()
    ));
    let cfg = env.config_path().display().to_string();
    let d = Daemon::start(&env, &["run", "-c", &cfg], &[]);
    wait_until(Duration::from_secs(10), || {
        let r = d.get("/api/status");
        r.status == 200 && r.json()["services"][0]["history"].as_array().map_or(0, Vec::len) >= 3
    });
    let doc = d.get("/api/status").json();
    let states: Vec<&str> =
        doc["services"].as_array().unwrap().iter().map(|s| s["status"].as_str().unwrap()).collect();
    assert_eq!(states, ["up", "degraded", "down"]);
    run_browser_test(&["--base-url", &format!("http://127.0.0.1:{}", d.port), "--timeout", "60"]);
}

#[test]
fn stale_warning_against_serve_in_chromium() {
    if !chromium_available() {
        return;
    }
    let env = Env::new();
    let up = TcpFixture::new();
    env.config(&format!("services:\n  - name: Web\n    port: {}\n", up.port()));
    env.check(&[]).code(0);
    let mut doc = crate::util::read_json(&env.status_path());
    doc["generated_at"] = "2026-01-01T00:00:00Z".into();
    std::fs::write(env.status_path(), serde_json::to_vec(&doc).unwrap()).unwrap();
    let cfg = env.config_path().display().to_string();
    let d = Daemon::start(&env, &["serve", "-c", &cfg], &[]);
    assert_eq!(d.get("/api/status").json()["stale"], true);
    run_browser_test(&["--base-url", &format!("http://127.0.0.1:{}", d.port), "--timeout", "60"]);
}

#[test]
fn dashboard_shows_a_seeded_history_from_the_daemon_in_chromium() {
    if !chromium_available() {
        return;
    }
    let env = Env::new();
    let db = env.history_path();
    env.cmd(&[
        "__seed-history",
        "--db",
        db.to_str().unwrap(),
        "--services",
        "3",
        "--days",
        "120",
        "--result-days",
        "3",
    ])
    .code(0);
    // svc-00 and svc-02 answer, svc-01 is down: the daemon's own cycles add to the seeded past.
    let (a, b) = (TcpFixture::new(), TcpFixture::new());
    env.config(&format!(
        "interval: 1s\ntimeout: 1s\nheal: {{ enabled: false }}\nservices:\n  - name: svc-00\n    port: {}\n  - name: svc-01\n    port: {}\n  - name: svc-02\n    port: {}\n",
        a.port(),
        closed_port(),
        b.port()
    ));
    let cfg = env.config_path().display().to_string();
    let d = Daemon::start(&env, &["run", "-c", &cfg], &[]);
    wait_until(Duration::from_secs(10), || {
        let r = d.get("/api/status");
        r.status == 200 && r.json()["services"][0]["uptime"]["30d"].is_number()
    });
    let incidents = d.get("/api/incidents?since=30d&limit=50").json();
    assert!(
        incidents["incidents"].as_array().is_some_and(|l| l.len() > 3),
        "the seeded month has incidents: {incidents:#}"
    );
    run_browser_test(&[
        "--base-url",
        &format!("http://127.0.0.1:{}", d.port),
        "--expect-history",
        "--timeout",
        "60",
    ]);
}

#[test]
fn dashboard_over_tls_in_chromium() {
    // Hardening round two, finding 1: over `tls:` every answer over 64 KiB
    // was cut at ~65,360 bytes, and the widget is larger: the dashboard
    // never loaded over HTTPS. Chromium loads it from the daemon itself
    // (page-tls-direct), and through the test's proxy, which trusts the CA.
    if !chromium_available() {
        return;
    }
    let env = Env::new();
    let up = TcpFixture::new();
    let pki = crate::util::Pki::new(&env.path("pki"), "dash", &["IP:127.0.0.1"]);
    env.config(&format!(
        "interval: 200ms\ntimeout: 1s\nheal: {{ enabled: false }}\ntls: {{ cert_file: {:?}, key_file: {:?} }}\nservices:\n  - name: Up Service\n    port: {}\n  - name: Down Service\n    port: {}\n",
        pki.cert,
        pki.key,
        up.port(),
        closed_port()
    ));
    let cfg = env.config_path().display().to_string();
    let d = Daemon::start(&env, &["run", "-c", &cfg], &[]);
    let base = format!("https://127.0.0.1:{}", d.port);
    let ca = pki.ca.display().to_string();
    run_browser_test(&["--base-url", &base, "--ca-file", &ca, "--timeout", "60"]);
}

/// The shipped demo as a newcomer starts it (`make run`: `run -c config/demo.yml`), only its
/// files moved into a tempdir and its port picked free: the dashboard shows no error text (it
/// keeps 30 days of rollups; the dashboard must not ask for 90), every card that is not up
/// says why.
#[test]
fn the_shipped_demo_shows_no_error_text_in_chromium() {
    if !chromium_available() {
        return;
    }
    let env = Env::new();
    let demo = concat!(env!("CARGO_MANIFEST_DIR"), "/config/demo.yml");
    let (status, state, db) = (env.status_path(), env.state_path(), env.history_path());
    let d = Daemon::start(
        &env,
        &["run", "-c", demo],
        &[
            ("CHATSTACK_STATUS_FILE", status.to_str().unwrap()),
            ("CHATSTACK_STATE_FILE", state.to_str().unwrap()),
            ("CHATSTACK_HISTORY_DB", db.to_str().unwrap()),
        ],
    );
    wait_until(Duration::from_secs(20), || {
        let r = d.get("/api/status");
        r.status == 200
            && r.json()["services"][0]["uptime"].is_object()
            && d.get("/api/uptime").status == 200
    });
    let doc = d.get("/api/status").json();
    assert_eq!(doc["history"]["retention_s"], 30 * 86_400, "{doc:#}");
    run_browser_test(&[
        "--base-url",
        &format!("http://127.0.0.1:{}", d.port),
        "--expect-clean",
        "--timeout",
        "60",
    ]);
}

/// Per service memory and CPU from the real agent (issue 21, "seen"): a unit's `resources`
/// from the fake `systemctl show`, a day of its minute figures in the history store, and
/// `serve`: the card shows the unit's memory and CPU and the 24 h charts drawn from
/// `/api/resources`; the Host service's disk and memory checks make the host panel above.
#[test]
fn per_service_memory_and_cpu_from_the_daemon_in_chromium() {
    if !chromium_available() {
        return;
    }
    let env = Env::new();
    env.fake_systemctl();
    env.config(
        "timeout: 2s\nservices:\n  - name: Worker\n    unit: worker.service\n  - name: Host\n    checks:\n      - { type: disk, path: /, warn: 98, crit: 99 }\n      - { type: memory, warn: 98, crit: 99 }\n",
    );
    for (mem, cpu_ns) in [("300000000", "0"), ("310000000", "1000000000")] {
        env.write(
            "units/worker.service",
            &format!(
                "LoadState=loaded\nActiveState=active\nSubState=running\nResult=success\nNRestarts=0\nMemoryCurrent={mem}\nCPUUsageNSec={cpu_ns}\nTasksCurrent=7\n"
            ),
        );
        env.check(&[]);
    }
    let day: Vec<_> = (0..1440)
        .map(|ago| {
            (ago, Some(3.0e8 + 1.0e5 * (1440 - ago) as f64), Some(5.0 + (ago % 60) as f64 / 10.0))
        })
        .collect();
    crate::resources::seed_minutes(&env, "Worker", &day);
    let cfg = env.config_path().display().to_string();
    let d = Daemon::start(&env, &["serve", "-c", &cfg], &[]);
    let doc = d.get("/api/status").json();
    assert!(doc["services"][0]["resources"]["memory_bytes"].is_number(), "{doc:#}");
    run_browser_test(&[
        "--base-url",
        &format!("http://127.0.0.1:{}", d.port),
        "--expect-resources",
        "Worker",
        "--timeout",
        "60",
    ]);
}
