//! Push checks end to end: `ping` and cron'd `check` through the state file;
//! the daemon's `/api/push/NAME` (auth, tokens, methods, the next cycle's
//! status, one state write per cycle); `serve`'s 404; healing, mutes and
//! alerts of a push service; and pings racing a daemon and cron checks.
//!
//! Lateness is real time: periods of a second or two, waited for by polling
//! `check` (or the API) with a deadline, never by sleeping.

use crate::util::{Daemon, Env, TcpFixture, check_of, http_handler, request, wait_until};
use crate::util::{Reply, promtool_lint, service_of};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::MetadataExt;
use std::time::{Duration, Instant};

/// `ping -c monitor.yml` plus `args`.
#[track_caller]
fn ping(env: &Env, args: &[&str]) -> crate::util::Out {
    let cfg = env.config_path();
    let mut all = vec!["ping", "-c", cfg.to_str().expect("utf-8 path")];
    all.extend_from_slice(args);
    env.cmd(&all)
}

/// The push check of service `name` in the status file (its first check).
#[track_caller]
fn push_check(env: &Env, name: &str) -> Value {
    check_of(&env.status(), name)
}

/// A config with `backup`: one push check, and whatever else `extra` adds.
fn backup(env: &Env, push: &str, extra: &str) {
    env.config(&format!(
        "timeout: 2s\nheal: {{ enabled: false }}\n{extra}services:\n  - name: backup\n    checks:\n      - {{ type: push, {push} }}\n"
    ));
}

#[test]
fn before_any_ping_unknown_then_late() {
    let env = Env::new();
    backup(&env, "period: 1s, grace: 500ms", "");
    let out = env.check(&["--format", "json"]);
    out.code(1); // unknown counts as degraded: WARNING
    let c = check_of(&out.json(), "backup");
    assert_eq!(
        (c["type"].as_str(), c["status"].as_str()),
        (Some("push"), Some("unknown")),
        "{c:#}"
    );
    assert_eq!(
        (c["reason"].as_str(), c["detail"].as_str()),
        (Some("push_late"), Some("waiting for the first ping"))
    );
    assert!(c.get("last_ping").is_none(), "{c:#}");
    let first_seen = env.state()["services"]["backup"]["push"]["first_seen"].clone();
    assert!(first_seen.is_string(), "{:#}", env.state());
    assert_eq!(c["ping_due_by"].as_str().map(|s| s > first_seen.as_str().unwrap()), Some(true));

    // Still unknown until period + grace after it was first seen; then down.
    wait_until(Duration::from_secs(10), || {
        env.check(&[]);
        push_check(&env, "backup")["status"] == "down"
    });
    let c = push_check(&env, "backup");
    assert_eq!(c["reason"], "push_late", "{c:#}");
    let detail = c["detail"].as_str().unwrap();
    assert!(detail.starts_with("no ping since the check was first seen"), "{detail}");
    assert!(detail.contains("expected every 1s + 500ms grace"), "{detail}");
    // Not before its time: first seen once, judged from then.
    assert_eq!(env.state()["services"]["backup"]["push"]["first_seen"], first_seen);
    let at = |v: &Value| chrono_ms(v.as_str().unwrap());
    assert!(at(&env.status()["generated_at"]) - at(&first_seen) >= 1500, "late too early");
    env.check(&[]).code(2);
}

#[test]
fn ping_then_check_is_up_late_after_period_and_grace_and_a_good_ping_recovers() {
    let env = Env::new();
    backup(&env, "period: 1s, grace: 1s", "");
    let out = ping(&env, &["backup", "--message", "dump ok"]);
    out.code(0);
    assert_eq!((out.stdout.as_str(), out.stderr.as_str()), ("", ""), "ping is silent");
    env.check(&[]).code(0);
    let c = push_check(&env, "backup");
    assert_eq!((c["status"].as_str(), c["reason"].as_str()), (Some("up"), None), "{c:#}");
    let detail = c["detail"].as_str().unwrap();
    assert!(detail.starts_with("last ping ") && detail.ends_with(": dump ok"), "{detail}");
    assert_eq!(c["last_ping"]["ok"], true);
    assert_eq!(c["last_ping"]["message"], "dump ok");
    let at = chrono_ms(c["last_ping"]["at"].as_str().unwrap());
    assert_eq!(chrono_ms(c["ping_due_by"].as_str().unwrap()) - at, 2000, "{c:#}");

    wait_until(Duration::from_secs(10), || {
        env.check(&[]);
        push_check(&env, "backup")["status"] == "down"
    });
    let c = push_check(&env, "backup");
    assert_eq!(c["reason"], "push_late", "{c:#}");
    let detail = c["detail"].as_str().unwrap();
    assert!(detail.starts_with("no ping for ") && detail.contains(": dump ok)"), "{detail}");
    assert!(chrono_ms(env.status()["generated_at"].as_str().unwrap()) - at >= 2000);
    // The last ping is still shown while it is late.
    assert_eq!(c["last_ping"]["message"], "dump ok");

    ping(&env, &["backup", "--message", "second run"]).code(0);
    env.check(&[]).code(0);
    let c = push_check(&env, "backup");
    assert_eq!(
        (c["status"].as_str(), c["last_ping"]["message"].as_str()),
        (Some("up"), Some("second run"))
    );
    assert_eq!(env.state()["services"]["backup"]["push"]["pings"], 2);
}

#[test]
fn failures_exit_codes_and_messages() {
    let env = Env::new();
    backup(&env, "period: 1h, grace: 1h", "");
    let judged = |args: &[&str]| -> Value {
        let mut all = vec!["backup"];
        all.extend_from_slice(args);
        ping(&env, &all).code(0);
        env.check(&[]);
        push_check(&env, "backup")
    };
    let c = judged(&["--fail", "--message", "disk full"]);
    assert_eq!(
        (c["status"].as_str(), c["reason"].as_str()),
        (Some("down"), Some("push_failed")),
        "{c:#}"
    );
    assert!(
        c["detail"].as_str().unwrap().contains("reported failure: disk full; no success on record"),
        "{c:#}"
    );
    assert_eq!(c["last_ping"]["ok"], false);
    env.check(&[]).code(2);

    let c = judged(&["--exit-code", "0"]);
    assert_eq!(
        (c["status"].as_str(), c["last_ping"]["exit_code"].as_i64()),
        (Some("up"), Some(0)),
        "{c:#}"
    );
    assert!(c["detail"].as_str().unwrap().contains(", exit code 0"), "{c:#}");

    let c = judged(&["--exit-code", "3", "--message", "rsync: connection unexpectedly closed"]);
    assert_eq!(
        (c["reason"].as_str(), c["last_ping"]["exit_code"].as_i64()),
        (Some("push_failed"), Some(3))
    );
    let detail = c["detail"].as_str().unwrap();
    assert!(detail.contains("reported failure, exit code 3: rsync: connection"), "{detail}");
    assert!(detail.contains("; last success "), "{detail}");

    // systemd's $EXIT_STATUS of a killed job is a signal name: a failure.
    let c = judged(&["--exit-code", "TERM"]);
    assert_eq!(
        (c["reason"].as_str(), c["last_ping"]["message"].as_str()),
        (Some("push_failed"), Some("exit status TERM"))
    );

    // A good ping recovers; the message is one line, without control characters, capped.
    let long = format!("line one\nline\ttwo \u{1b}[31m{}", "x".repeat(500));
    let c = judged(&["--message", &long]);
    assert_eq!(c["status"], "up", "{c:#}");
    let msg = c["last_ping"]["message"].as_str().unwrap();
    assert!(msg.starts_with("line one line two [31mxxx"), "{msg}");
    assert_eq!(msg.chars().count(), 200, "{msg}");
    assert!(msg.ends_with('…') && !msg.chars().any(char::is_control), "{msg}");
    assert_eq!(env.state()["services"]["backup"]["push"]["pings"], 5);
}

#[test]
fn ping_refuses_unknown_services_and_services_without_a_push_check() {
    let env = Env::new();
    let tcp = TcpFixture::new();
    env.config(&format!(
        "services:\n  - name: backup\n    checks: [{{ type: push, period: 1d, grace: 1h }}]\n  - name: web\n    port: {}\n",
        tcp.port()
    ));
    let out = ping(&env, &["nope"]);
    out.code(3);
    assert!(
        out.stderr.contains("unknown service \"nope\": expected one of backup, web"),
        "{}",
        out.stderr
    );
    let out = ping(&env, &["web", "--message", "x"]);
    out.code(3);
    assert!(out.stderr.contains("service \"web\" has no push check"), "{}", out.stderr);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(!env.state_path().exists(), "nothing recorded");
    let out = ping(&env, &[]);
    out.code(3);
    assert!(out.stderr.contains("service"), "{}", out.stderr);
    ping(&env, &["backup"]).code(0);
    assert_eq!(env.state()["services"]["backup"]["push"]["pings"], 1);
}

#[test]
fn config_errors_of_push_keys_are_located() {
    let env = Env::new();
    env.config(
        "services:\n  - name: a\n    checks:\n      - { type: push, period: 1d }\n  - name: b\n    checks:\n      - { type: push, period: 0s, grace: 1h, token_file: '' }\n      - { type: push, period: 1d, grace: 1h }\n  - name: c\n    checks:\n      - { type: tcp, address: 'h:1', grace: 1h }\n",
    );
    let cfg = env.config_path();
    let out = env.cmd(&["validate", "-c", cfg.to_str().unwrap()]);
    out.code(3);
    let m = cfg.display().to_string();
    // `env.config` adds three lines (status, state, history) on top.
    for want in [
        format!("{m}:7:9: service \"a\": a push check needs `period`"),
        format!("{m}:10:31: service \"b\": period must be greater than 0"),
        format!("{m}:10:58: service \"b\": token_file is empty"),
        format!("{m}:11:9: service \"b\": a second push check"),
        format!("{m}:14:9: service \"c\": `grace` not valid for a tcp check"),
    ] {
        assert!(out.stderr.lines().any(|l| l.contains(&want)), "{want}\nnot in:\n{}", out.stderr);
    }
    env.config(
        "services:\n  - name: a\n    checks:\n      - { type: push, period: 1d, grace: soon }\n",
    );
    let out = env.cmd(&["validate", "-c", cfg.to_str().unwrap()]);
    out.code(3);
    assert!(
        out.stderr
            .contains(&format!("{m}:7:42: services[0].checks[0].grace: invalid duration \"soon\"")),
        "{}",
        out.stderr
    );
}

#[test]
fn a_push_service_with_a_unit_heals_like_any_other_and_a_mute_holds_it() {
    let env = Env::new();
    env.fake_systemctl();
    env.config(
        "timeout: 2s\nheal: { grace: 0s }\nservices:\n  - name: backup\n    unit: backup.service\n    checks:\n      - { type: push, period: 2s, grace: 0s }\n",
    );
    ping(&env, &["backup"]).code(0);
    env.check(&[]).code(0);
    wait_until(Duration::from_secs(10), || {
        env.check(&[]);
        env.service("backup")["status"] == "down"
    });
    assert_eq!(env.service("backup")["consecutive_failures"], 1);
    // Not judged by a probe: the service has its push check only, and systemd
    // was only asked to `show` (the cycle's one call gives the unit's
    // `resources`; the incident's diagnosis asks for the job's exit and journal).
    let svc = env.service("backup");
    assert_eq!(svc["checks"].as_array().map(Vec::len), Some(1), "{svc:#}");
    let calls = env.systemctl_calls();
    assert!(
        calls.iter().all(|c| c.starts_with("show -p "))
            && calls.last().is_some_and(
                |c| c.starts_with("show -p Id,ActiveState,SubState,Result,ExecMainCode")
            ),
        "the unit is not observed: {calls:?}"
    );
    // The second failed cycle restarts the job's unit (a oneshot runs again).
    let out = env.check(&[]);
    out.code(2);
    assert_eq!(env.systemctl_actions(), ["restart backup.service"]);
    assert!(
        out.stdout.contains("restarted backup.service after 2 failed cycles"),
        "{}",
        out.stdout
    );
    assert_eq!(env.service("backup")["restarts"][0]["ok"], true);

    let cfg = env.config_path();
    env.cmd(&["mute", "-c", cfg.to_str().unwrap(), "backup", "--for", "1h"]).code(0);
    env.check(&[]);
    let out = env.check(&[]);
    assert!(
        out.stdout.contains("not restarting backup.service: the service is muted"),
        "{}",
        out.stdout
    );
    assert_eq!(env.systemctl_actions(), ["restart backup.service"], "restarted while muted");
    // A ping ends it.
    ping(&env, &["backup"]).code(0);
    env.check(&[]).code(0);
    assert_eq!(env.service("backup")["consecutive_failures"], 0);
}

#[test]
fn a_late_push_check_alerts_unless_muted() {
    let env = Env::new();
    let hooks = http_handler(|_| Reply::new(200, "ok"));
    env.config(&format!(
        "timeout: 2s\nheal: {{ enabled: false }}\nnotify:\n  - {{ type: webhook, url: \"{}\", services: [backup] }}\n  - {{ type: webhook, url: \"{}\", services: [sync] }}\nservices:\n  - name: backup\n    checks: [{{ type: push, period: 2s, grace: 0s }}]\n  - name: sync\n    checks: [{{ type: push, period: 2s, grace: 0s }}]\n",
        hooks.url("/backup"),
        hooks.url("/sync")
    ));
    let cfg = env.config_path();
    env.cmd(&["mute", "-c", cfg.to_str().unwrap(), "sync", "--for", "1h"]).code(0);
    ping(&env, &["backup"]).code(0);
    ping(&env, &["sync"]).code(0);
    env.check(&[]).code(0);
    wait_until(Duration::from_secs(10), || {
        env.check(&[]);
        service_of(&env.status(), "backup")["status"] == "down"
            && service_of(&env.status(), "sync")["status"] == "down"
    });
    // `check` delivers before it exits.
    let paths: Vec<String> = hooks.requests().iter().map(|r| r.path.clone()).collect();
    assert_eq!(paths, ["/backup"], "the muted one must not page");
    assert_eq!(hooks.requests()[0].method, "POST");
}

// ----- the daemon -------------------------------------------------------------

const ADMIN: (&str, &str) = ("Authorization", "Basic YWRtaW46czNjcmV0"); // admin:s3cret

/// `run` with `backup` (a token) and `sync` (none) push checks and a tcp `web`.
fn daemon(env: &Env, top: &str, interval: &str) -> (Daemon, TcpFixture) {
    let tcp = TcpFixture::new();
    env.write("backup.token", "t0k3n-backup-2026x\nignored second line\n");
    env.config(&format!(
        "interval: {interval}\ntimeout: 1s\nheal: {{ enabled: false }}\n{top}services:\n  - name: backup\n    checks: [{{ type: push, period: 1h, grace: 1h, token_file: {:?} }}]\n  - name: sync job\n    checks: [{{ type: push, period: 1h, grace: 1h }}]\n  - name: web\n    port: {}\n",
        env.path("backup.token"),
        tcp.port()
    ));
    let cfg = env.config_path().display().to_string();
    let d = Daemon::start(env, &["run", "-c", &cfg], &[]);
    wait_until(Duration::from_secs(10), || request(d.port, "GET", "/healthz", &[]).status == 200);
    (d, tcp)
}

/// One request with a body (`Content-Length`), `Connection: close`.
fn with_body(port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> u16 {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).expect("send");
    s.write_all(body).expect("send body");
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    String::from_utf8_lossy(&raw)
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

/// The check of `name` in the daemon's `/api/status`.
fn api_check(d: &Daemon, name: &str, auth: &[(&str, &str)]) -> (Value, Value) {
    let doc = request(d.port, "GET", "/api/status", auth).json();
    (check_of(&doc, name), doc["generated_at"].clone())
}

#[test]
fn http_push_with_basic_auth_or_the_token_and_every_refusal() {
    let env = Env::new();
    env.write("password", "s3cret\n");
    let top = format!(
        "basic_auth: {{ user: admin, password_file: {:?} }}\ncors_origins: [\"https://admin.example\"]\n",
        env.path("password")
    );
    let (d, _t) = daemon(&env, &top, "200ms");
    let p = d.port;
    let code = |method: &str, path: &str, h: &[(&str, &str)]| request(p, method, path, h).status;

    // The token alone, or basic auth alone.
    let ok = request(p, "GET", "/api/push/backup?token=t0k3n-backup-2026x&msg=by+token", &[]);
    assert_eq!(ok.status, 200, "{}", ok.text());
    assert_eq!(ok.header("cache-control").as_deref(), Some("no-store"));
    let v = ok.json();
    assert_eq!(
        (v["service"].as_str(), v["status"].as_str(), v["message"].as_str()),
        (Some("backup"), Some("up"), Some("by token"))
    );
    assert!(v["at"].is_string(), "{v}");
    assert_eq!(code("GET", "/api/push/backup", &[ADMIN]), 200);
    assert_eq!(code("GET", "/api/push/sync%20job?status=up", &[ADMIN]), 200);
    // Wrong, missing, or another check's token: 401 (with the basic challenge).
    for path in [
        "/api/push/backup?token=wrong",
        "/api/push/backup?token=t0k3n-backu",
        "/api/push/backup",
        "/api/push/backup?token=",
        "/api/push/sync%20job?token=t0k3n-backup-2026x",
    ] {
        let r = request(p, "GET", path, &[]);
        assert_eq!(r.status, 401, "{path}: {}", r.text());
        assert!(r.header("www-authenticate").unwrap().starts_with("Basic realm="), "{path}");
    }
    assert_eq!(
        code("GET", "/api/push/backup?token=wrong", &[("Authorization", "Basic YWRtaW46d3Jvbmc=")]),
        401
    );
    // Not a push check: 404 (behind auth, not told apart from a known one without it).
    assert_eq!(code("GET", "/api/push/web", &[ADMIN]), 404);
    assert_eq!(code("GET", "/api/push/nope", &[ADMIN]), 404);
    assert_eq!(code("GET", "/api/push/nope", &[]), 401);
    assert_eq!(code("GET", "/api/push/", &[ADMIN]), 404);
    assert_eq!(code("GET", "/api/push/backup?status=sideways", &[ADMIN]), 400);

    // POST works (its body ignored, capped like any request's); HEAD too; nothing else.
    assert_eq!(
        with_body(
            p,
            "POST",
            "/api/push/backup?token=t0k3n-backup-2026x&msg=posted",
            &[],
            b"{\"ignored\": true}"
        ),
        200
    );
    assert_eq!(
        with_body(
            p,
            "POST",
            "/api/push/backup?token=t0k3n-backup-2026x",
            &[],
            &vec![b'x'; 9 * 1024]
        ),
        413
    );
    let head = request(p, "HEAD", "/api/push/backup?token=t0k3n-backup-2026x&msg=head", &[]);
    assert_eq!((head.status, head.body.len()), (200, 0));
    for m in ["PUT", "DELETE", "PATCH"] {
        let r =
            request(p, m, "/api/push/backup?token=t0k3n-backup-2026x", &[("Content-Length", "0")]);
        assert_eq!(r.status, 405, "{m}");
        assert_eq!(r.header("allow").as_deref(), Some("GET, HEAD, POST"), "{m}");
    }
    // Every other path still refuses POST.
    for path in ["/api/status", "/metrics", "/", "/api/pushx", "/api/push"] {
        let r = request(p, "POST", path, &[ADMIN, ("Content-Length", "0")]);
        assert_eq!(r.status, 405, "{path}");
        assert_eq!(r.header("allow").as_deref(), Some("GET, HEAD"), "{path}");
    }
    // The CORS preflight of the push path names POST; of others, not.
    let origin = ("Origin", "https://admin.example");
    let pre = request(p, "OPTIONS", "/api/push/backup", &[origin]);
    assert_eq!(pre.status, 204, "{}", pre.head);
    assert_eq!(pre.header("access-control-allow-methods").as_deref(), Some("GET, HEAD, POST"));
    let pre = request(p, "OPTIONS", "/api/status", &[origin]);
    assert_eq!(pre.header("access-control-allow-methods").as_deref(), Some("GET, HEAD"));
    let cross = request(p, "GET", "/api/push/backup?token=t0k3n-backup-2026x&msg=cross", &[origin]);
    assert_eq!(
        cross.header("access-control-allow-origin").as_deref(),
        Some("https://admin.example")
    );
    let evil = request(p, "OPTIONS", "/api/push/backup", &[("Origin", "https://evil.example")]);
    assert_eq!((evil.status, evil.header("allow").as_deref()), (405, Some("GET, HEAD, POST")));

    // status=down is a failure in the status.
    assert_eq!(
        code(
            "POST",
            "/api/push/sync%20job?status=down&msg=upstream+503",
            &[ADMIN, ("Content-Length", "0")]
        ),
        200
    );
    wait_until(Duration::from_secs(10), || {
        api_check(&d, "sync job", &[ADMIN]).0["reason"] == "push_failed"
    });
    let (c, _) = api_check(&d, "sync job", &[ADMIN]);
    assert_eq!(
        (c["last_ping"]["ok"].as_bool(), c["last_ping"]["message"].as_str()),
        (Some(false), Some("upstream 503"))
    );
    let (c, _) = api_check(&d, "backup", &[ADMIN]);
    assert_eq!(c["last_ping"]["message"], "cross", "the latest of the backup pushes: {c:#}");
    // Every accepted push counted, none of the refused: token, basic, POST, HEAD, cross.
    wait_until(Duration::from_secs(10), || env.state()["services"]["backup"]["push"]["pings"] == 5);

    // The metric, and promtool's lint of the whole exposition.
    let text = request(p, "GET", "/metrics", &[ADMIN]).text();
    assert!(text.contains("# TYPE chatstack_push_last_ping_timestamp_seconds gauge"), "{text}");
    let line = text
        .lines()
        .find(|l| {
            l.starts_with(
                "chatstack_push_last_ping_timestamp_seconds{service=\"sync job\",check=\"0\"} ",
            )
        })
        .unwrap_or_else(|| panic!("no push metric for sync job:\n{text}"));
    let value: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    let (c, _) = api_check(&d, "sync job", &[ADMIN]);
    assert_eq!((value * 1000.0).round() as i64, chrono_ms(c["last_ping"]["at"].as_str().unwrap()));
    promtool_lint(text.as_bytes());
}

#[test]
fn without_basic_auth_a_push_needs_the_token_if_the_check_has_one() {
    let env = Env::new();
    let (d, _t) = daemon(&env, "", "200ms");
    let code = |path: &str| request(d.port, "GET", path, &[]).status;
    assert_eq!(code("/api/push/sync%20job"), 200, "no token, no auth: open (on the listener)");
    assert_eq!(code("/api/push/backup"), 401);
    assert_eq!(code("/api/push/backup?token=nope"), 401);
    let r = request(d.port, "GET", "/api/push/backup", &[]);
    assert_eq!(r.header("www-authenticate"), None, "no basic auth to offer");
    assert_eq!(code("/api/push/backup?token=t0k3n-backup-2026x"), 200);
    assert_eq!(code("/api/push/web"), 404);
    assert_eq!(code("/api/push/nope"), 404);
}

#[test]
fn an_http_push_is_in_the_next_cycles_status() {
    let env = Env::new();
    let (d, _t) = daemon(&env, "", "300ms");
    for n in 0..3 {
        let msg = format!("run-{n}");
        let r = request(d.port, "GET", &format!("/api/push/sync%20job?msg={msg}"), &[]);
        assert_eq!(r.status, 200);
        let pushed = chrono_ms(r.json()["at"].as_str().unwrap());
        // Watch every status from now on: the one that shows the push is at
        // most the second one generated after it (the cycle running while
        // it came took the queue before it), and it shows it exactly.
        let mut after = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let (c, at) = api_check(&d, "sync job", &[]);
            let at = chrono_ms(at.as_str().unwrap());
            if at > pushed && !after.contains(&at) {
                after.push(at);
            }
            if c["last_ping"]["message"] == msg.as_str() {
                assert_eq!(chrono_ms(c["last_ping"]["at"].as_str().unwrap()), pushed);
                assert_eq!(c["status"], "up", "{c:#}");
                break;
            }
            assert!(Instant::now() < deadline, "push {msg} never shown");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(after.len() <= 2, "{msg}: shown only in status {} after it", after.len());
    }
}

#[test]
fn the_state_file_is_written_once_per_cycle_however_many_pushes_come() {
    let env = Env::new();
    let (d, _t) = daemon(&env, "", "500ms");
    wait_until(Duration::from_secs(10), || env.state_path().exists() && env.status_path().exists());
    let ino = |p: &std::path::Path| std::fs::metadata(p).map(|m| m.ino()).unwrap_or(0);
    let (state, status) = (env.state_path(), env.status_path());
    // Pushes on one thread; this one watches both files' inodes (each write
    // is a rename: a new inode).
    let port = d.port;
    let pusher = std::thread::spawn(move || {
        let started = Instant::now();
        let mut n = 0;
        while started.elapsed() < Duration::from_millis(1500) && n < 5000 {
            assert_eq!(
                request(
                    port,
                    "POST",
                    &format!("/api/push/sync%20job?msg=p{n}"),
                    &[("Content-Length", "0")]
                )
                .status,
                200
            );
            n += 1;
        }
        n
    });
    let (mut states, mut statuses) = (vec![ino(&state)], vec![ino(&status)]);
    while !pusher.is_finished() {
        for (seen, path) in [(&mut states, &state), (&mut statuses, &status)] {
            let i = ino(path);
            if seen.last() != Some(&i) {
                seen.push(i);
            }
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    let sent = pusher.join().unwrap();
    assert!(sent >= 50, "only {sent} pushes in 1.5 s");
    // Once per cycle (the status file is written once per cycle too).
    assert!(
        states.len() <= statuses.len() + 1,
        "{} state writes, {} cycles, {sent} pushes",
        states.len(),
        statuses.len()
    );
    assert!(statuses.len() <= 6, "{} cycles in 1.5 s at 500 ms", statuses.len());
    // And none lost.
    wait_until(Duration::from_secs(10), || {
        env.state()["services"]["sync job"]["push"]["pings"] == sent
    });
    let last = format!("p{}", sent - 1);
    assert_eq!(env.state()["services"]["sync job"]["push"]["last"]["message"], last.as_str());
}

#[test]
fn the_token_file_is_read_at_start_and_on_reload_not_per_request() {
    let env = Env::new();
    let (d, _t) = daemon(&env, "", "200ms");
    let code = |token: &str| {
        request(d.port, "GET", &format!("/api/push/backup?token={token}"), &[]).status
    };
    assert_eq!(code("t0k3n-backup-2026x"), 200);
    env.write("backup.token", "rotated-token-2026\n");
    assert_eq!(
        (code("t0k3n-backup-2026x"), code("rotated-token-2026")),
        (200, 401),
        "read per request"
    );
    d.signal(rustix::process::Signal::HUP);
    wait_until(Duration::from_secs(10), || code("rotated-token-2026") == 200);
    assert_eq!(code("t0k3n-backup-2026x"), 401);
    // An unreadable one on reload keeps the old config, and says why.
    std::fs::remove_file(env.path("backup.token")).unwrap();
    d.signal(rustix::process::Signal::HUP);
    wait_until(Duration::from_secs(10), || {
        d.logged("cannot read token_file of service \"backup\"").is_some()
    });
    assert_eq!(code("rotated-token-2026"), 200);
}

#[test]
fn pushes_after_the_last_cycle_are_recorded_at_exit() {
    let env = Env::new();
    let (mut d, _t) = daemon(&env, "", "1h");
    wait_until(Duration::from_secs(10), || env.state_path().exists());
    for n in 0..3 {
        assert_eq!(
            request(d.port, "GET", &format!("/api/push/sync%20job?msg=late-{n}"), &[]).status,
            200
        );
    }
    assert!(env.state()["services"]["sync job"]["push"]["last"].is_null(), "no cycle since");
    d.signal(rustix::process::Signal::TERM);
    assert_eq!(d.wait_exit(Duration::from_secs(10)).0, Some(0));
    let push = &env.state()["services"]["sync job"]["push"];
    assert_eq!(
        (push["pings"].as_u64(), push["last"]["message"].as_str()),
        (Some(3), Some("late-2")),
        "{push:#}"
    );
}

#[test]
fn serve_answers_404_for_pushes_there_is_no_cycle_to_judge_them() {
    let env = Env::new();
    backup(&env, "period: 1h, grace: 1h", "");
    env.check(&[]).code(1);
    let cfg = env.config_path().display().to_string();
    let d = Daemon::start(&env, &["serve", "-c", &cfg], &[]);
    for method in ["GET", "POST"] {
        let r = request(d.port, method, "/api/push/backup?msg=x", &[("Content-Length", "0")]);
        assert_eq!(r.status, 404, "{method}");
        let e = r.json()["error"].as_str().unwrap().to_string();
        assert!(e.contains("`serve`") && e.contains("chatstack-status ping"), "{e}");
    }
    assert_eq!(request(d.port, "PUT", "/api/push/backup", &[("Content-Length", "0")]).status, 405);
    // Nothing was recorded: `ping` on the host is the way there.
    assert!(env.state()["services"]["backup"]["push"]["last"].is_null(), "{:#}", env.state());
}

#[test]
fn an_unreadable_token_file_is_a_start_up_error() {
    let env = Env::new();
    env.config("services:\n  - name: backup\n    checks: [{ type: push, period: 1h, grace: 1h, token_file: /nonexistent/token }]\n");
    let cfg = env.config_path().display().to_string();
    let out = env.cmd(&["run", "-c", &cfg, "--listen", "127.0.0.1:0"]);
    out.code(3);
    assert!(
        out.stderr.contains("/nonexistent/token: cannot read token_file of service \"backup\""),
        "{}",
        out.stderr
    );
    // `check` does not need it (cron mode has no HTTP push).
    env.check(&[]).code(1);
}

// ----- concurrency ------------------------------------------------------------

#[test]
fn fifty_pings_racing_a_daemon_and_cron_checks_lose_none_and_the_last_wins() {
    let env = Env::new();
    let (d, _t) = daemon(&env, "", "100ms");
    // One good ping first, so every check of the race is all up (exit 0).
    ping(&env, &["sync job", "--message", "before"]).code(0);
    ping(&env, &["backup"]).code(0);
    wait_until(Duration::from_secs(10), || api_check(&d, "sync job", &[]).0["status"] == "up");

    let stop = std::sync::atomic::AtomicBool::new(false);
    let codes = std::thread::scope(|scope| {
        // Cron: `check` after `check`, while the pings go on.
        let checker = scope.spawn(|| {
            let mut codes = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::SeqCst) && codes.len() < 500 {
                let out = env.check(&[]);
                codes.push((out.code, out.stderr));
            }
            codes
        });
        // 50 pings, one after another, half by the command line, half over
        // HTTP: each races the daemon's cycles (which hold the lock) and the checks.
        for n in 0..50 {
            let msg = format!("ping {n}");
            if n % 2 == 0 {
                ping(&env, &["sync job", "--message", &msg]).code(0);
            } else {
                let path = format!("/api/push/sync%20job?msg=ping+{n}");
                assert_eq!(request(d.port, "GET", &path, &[]).status, 200, "{msg}");
            }
        }
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        checker.join().unwrap()
    });
    assert!(!codes.is_empty());
    for (code, stderr) in &codes {
        assert_eq!(*code, 0, "a racing check failed: {stderr}");
    }
    // Every ping recorded (the HTTP ones by the next cycle), and the last one sent wins.
    wait_until(Duration::from_secs(10), || {
        env.state()["services"]["sync job"]["push"]["pings"] == 51
    });
    let push = &env.state()["services"]["sync job"]["push"];
    assert_eq!(push["last"]["message"], "ping 49", "{push:#}");
    wait_until(Duration::from_secs(10), || {
        api_check(&d, "sync job", &[]).0["last_ping"]["message"] == "ping 49"
    });
    eprintln!("{} cron checks raced the 50 pings", codes.len());
}

/// Milliseconds since the epoch of an RFC 3339 time in our files.
#[track_caller]
fn chrono_ms(s: &str) -> i64 {
    chatstack_status::time::Timestamp::parse(s).unwrap_or_else(|| panic!("not RFC 3339: {s}")).0
}

/// Issue 18 #13: bidi overrides and zero-width characters in a job's
/// message (CLI and HTTP) and in a mute reason never reach the state, the
/// status, the alerts or the logs; controls are removed as before.
#[test]
fn bidi_and_zero_width_characters_are_removed_from_messages_and_reasons() {
    let env = Env::new();
    backup(&env, "period: 1h, grace: 1h", "");
    let evil = "invoice\u{202E}fdp.exe\u{200B}\u{200F}\u{2066}\u{FEFF} done";
    let clean = "invoicefdp.exe done";
    ping(&env, &["backup", "--fail", "--message", evil]).code(0);
    let out = env.check(&[]);
    out.code(2);
    let state = std::fs::read_to_string(env.state_path()).unwrap();
    let status = std::fs::read_to_string(env.status_path()).unwrap();
    assert_eq!(env.state()["services"]["backup"]["push"]["last"]["message"], clean);
    assert!(push_check(&env, "backup")["detail"].as_str().unwrap().contains(clean), "{status}");
    let hidden = ['\u{202E}', '\u{200B}', '\u{200F}', '\u{2066}', '\u{FEFF}'];
    for text in [&state, &status, &out.stdout, &out.stderr] {
        assert!(!text.contains(hidden), "{text}");
    }
    let cfg = env.config_path().display().to_string();
    let out = env.cmd(&["mute", "-c", &cfg, "backup", "--reason", evil]);
    out.code(0);
    assert_eq!(env.state()["services"]["backup"]["mute_reason"], clean);
    assert!(!out.stdout.contains(hidden), "{}", out.stdout);

    // Over HTTP: the daemon's push endpoint cleans the same way.
    let (d, _tcp) = daemon(&env, "", "100ms");
    let msg = "a%E2%80%AEb%E2%80%8Bc";
    let path = format!("/api/push/backup?status=down&msg={msg}&token=t0k3n-backup-2026x");
    let code = request(d.port, "GET", &path, &[]).status;
    assert!(code < 300, "{code}");
    wait_until(Duration::from_secs(10), || {
        env.state()["services"]["backup"]["push"]["last"]["message"] == "abc"
    });
    assert!(!d.log().join("\n").contains(hidden));
}
