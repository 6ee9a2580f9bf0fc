//! Config parsing: the shorthand, defaults, full-form checks, and errors
//! located at `file:line:column`.

use super::*;
use crate::probe::{Matcher, Probe};

fn ok(text: &str) -> Config {
    parse(text, Path::new("m.yml")).unwrap_or_else(|e| panic!("rejected:\n{}", e.join("\n")))
}

fn errors(text: &str) -> Vec<String> {
    match parse(text, Path::new("m.yml")) {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => e,
    }
}

/// The first error, which must be at `line` and mention `fragment`.
#[track_caller]
fn error_at(text: &str, line: usize, fragment: &str) {
    let errs = errors(text);
    let prefix = format!("m.yml:{line}:");
    assert!(
        errs.iter().any(|e| e.starts_with(&prefix) && e.contains(fragment)),
        "expected an error at line {line} mentioning {fragment:?}, got:\n{}",
        errs.join("\n")
    );
    for e in &errs {
        let mut parts = e.splitn(4, ':');
        let (file, l, c) = (parts.next(), parts.next(), parts.next());
        assert_eq!(file, Some("m.yml"), "{e}");
        assert!(l.is_some_and(|l| l.parse::<usize>().is_ok_and(|l| l >= 1)), "no line: {e}");
        assert!(c.is_some_and(|c| c.parse::<usize>().is_ok_and(|c| c >= 1)), "no column: {e}");
    }
}

#[test]
fn defaults_follow_the_spec() {
    let c = ok("services:\n  - name: a\n    port: 80\n");
    assert_eq!(c.interval, Duration::from_secs(30));
    assert_eq!(c.timeout, Duration::from_secs(5));
    assert_eq!(c.workers, 16);
    assert_eq!(c.stale_after, Duration::from_secs(90));
    assert_eq!(c.status_file, Path::new(DEFAULT_STATUS_FILE));
    assert_eq!(c.state_file, Path::new(DEFAULT_STATE_FILE));
    assert_eq!(c.listen, "127.0.0.1:8095");
    assert_eq!(c.history, 60);
    assert_eq!(c.heal, HealPolicy::default());
    assert!(c.heal.enabled);
    assert_eq!(c.heal.after_failures, 2);
    assert_eq!(c.heal.grace, Duration::from_secs(30));
    assert_eq!(c.heal.max_restarts, 3);
    assert_eq!(c.heal.window, Duration::from_secs(900));
    assert_eq!(c.heal.stable_after, Duration::from_secs(600));
    assert!(!c.heal.reset_failed);
    assert_eq!(c.heal.restart_command, ["systemctl", "restart", "{unit}"]);
    assert!(c.notify.is_empty());
    let s = &c.services[0];
    assert!(s.critical);
    assert_eq!(s.unit, None);
    assert!(s.depends_on.is_empty());
    assert_eq!(s.checks[0].timeout, Duration::from_secs(5));
    assert_eq!(s.checks[0].degraded_after, None);
}

#[test]
fn shorthand_expands_into_checks_in_reading_order() {
    let c = ok(
        "timeout: 2s\nservices:\n  - name: ChatStack\n    process: app.py\n    unit: chatstack.service\n    port: 5000\n    url: http://127.0.0.1:5000/health\n",
    );
    let s = &c.services[0];
    assert_eq!(s.unit.as_deref(), Some("chatstack.service"));
    let kinds: Vec<_> = s.checks.iter().map(|c| (c.kind(), c.target.as_str())).collect();
    assert_eq!(
        kinds,
        [
            ("http", "http://127.0.0.1:5000/health"),
            ("tcp", "127.0.0.1:5000"),
            ("systemd", "chatstack.service"),
            ("process", "app.py"),
        ]
    );
    assert!(s.checks.iter().all(|c| c.timeout == Duration::from_secs(2)));
    match &s.checks[0].probe {
        Probe::Http(h) => {
            assert_eq!(h.method, "GET");
            assert_eq!(h.expect, ExpectStatus::Class(2));
            assert!(h.follow_redirects);
            assert_eq!(h.body_contains, None);
        }
        p => panic!("{p:?}"),
    }
    match &s.checks[3].probe {
        Probe::Process(p) => {
            assert!(matches!(&p.matcher, Matcher::Substring(x) if x == "app.py"));
            assert_eq!((p.min, p.max), (1, None));
        }
        p => panic!("{p:?}"),
    }
}

#[test]
fn port_takes_a_number_or_host_port() {
    let c = ok(
        "services:\n  - name: a\n    port: '10.0.0.5:6379'\n  - name: b\n    port: '6380'\n  - name: c\n    port: '[::1]:22'\n",
    );
    let t: Vec<_> = c.services.iter().map(|s| s.checks[0].target.as_str()).collect();
    assert_eq!(t, ["10.0.0.5:6379", "127.0.0.1:6380", "[::1]:22"]);
}

#[test]
fn full_form_checks() {
    let c = ok(r#"
services:
  - name: LeadFlowTracker
    critical: false
    timeout: 3s
    depends_on: [Other]
    checks:
      - type: http
        url: https://leadflow.example/health
        method: head
        expect_status: [200, 204]
        body_contains: '"ok"'
        degraded_after: 1500ms
        timeout: 4s
        headers: { X-Probe: chatstack-status }
        follow_redirects: false
      - type: http
        url: http://x/
        expect_status: "5XX"
      - type: http
        url: http://x/
        expect_status: 204
      - type: tcp
        address: localhost:6379
      - type: process
        match: "gunicorn .*memory:app"
        min: 2
        max: 8
      - type: systemd
        unit: redis-server.service
      - type: command
        argv: [/usr/lib/nagios/plugins/check_disk, -w, "20%"]
  - name: Other
    url: http://127.0.0.1:1/
"#);
    let s = &c.services[0];
    assert!(!s.critical);
    assert_eq!(s.depends_on, ["Other"]);
    assert_eq!(s.unit, None);
    let ch = &s.checks;
    assert_eq!(ch.len(), 7);
    match &ch[0].probe {
        Probe::Http(h) => {
            assert_eq!(h.method, "HEAD");
            assert_eq!(h.expect, ExpectStatus::Codes(vec![200, 204]));
            assert_eq!(h.body_contains.as_deref(), Some("\"ok\""));
            assert_eq!(h.headers, [("X-Probe".to_string(), "chatstack-status".to_string())]);
            assert!(!h.follow_redirects);
        }
        p => panic!("{p:?}"),
    }
    assert_eq!(ch[0].timeout, Duration::from_secs(4));
    assert_eq!(ch[0].degraded_after, Some(Duration::from_millis(1500)));
    assert!(matches!(&ch[1].probe, Probe::Http(h) if h.expect == ExpectStatus::Class(5)));
    assert!(matches!(&ch[2].probe, Probe::Http(h) if h.expect == ExpectStatus::Codes(vec![204])));
    assert_eq!(ch[1].timeout, Duration::from_secs(3), "the service timeout is the default");
    assert_eq!(ch[3].target, "localhost:6379");
    match &ch[4].probe {
        Probe::Process(p) => {
            assert!(
                matches!(&p.matcher, Matcher::Regex(r) if r.is_match("gunicorn -w 4 memory:app"))
            );
            assert_eq!((p.min, p.max), (2, Some(8)));
        }
        p => panic!("{p:?}"),
    }
    assert_eq!(ch[5].target, "redis-server.service");
    assert!(matches!(&ch[6].probe, Probe::Command(c) if c.argv.len() == 3));
}

#[test]
fn the_units_own_systemd_check_is_not_doubled() {
    let c = ok(
        "services:\n  - name: a\n    unit: a.service\n    checks:\n      - type: systemd\n        unit: a.service\n      - type: systemd\n        unit: b.service\n",
    );
    let t: Vec<_> = c.services[0].checks.iter().map(|c| c.target.as_str()).collect();
    assert_eq!(t, ["a.service", "b.service"]);
}

#[test]
fn durations_in_every_form() {
    let c = ok(
        "interval: 2m\ntimeout: 1.5\nstale_after: 90\nheal:\n  grace: 500ms\n  window: 1h\nservices:\n  - name: a\n    port: 80\n",
    );
    assert_eq!(c.interval, Duration::from_secs(120));
    assert_eq!(c.timeout, Duration::from_millis(1500));
    assert_eq!(c.stale_after, Duration::from_secs(90));
    assert_eq!(c.heal.grace, Duration::from_millis(500));
    assert_eq!(c.heal.window, Duration::from_secs(3600));
}

#[test]
fn heal_and_notify_blocks() {
    let c = ok(r#"
heal:
  enabled: false
  after_failures: 3
  max_restarts: 5
  reset_failed: true
  restart_command: [sudo, systemctl, restart, "{unit}"]
notify:
  - type: slack
    url: https://hooks.slack.com/services/x
  - type: webhook
    url: https://example.internal/hook
    timeout: 2s
    events: [down, up]
    services: [a]
  - type: twilio
    account_sid: AC123
    auth_token_file: /etc/t
    from: "+15550000000"
    to: ["+15551111111"]
services:
  - name: a
    port: 80
"#);
    assert!(!c.heal.enabled);
    assert_eq!(c.heal.after_failures, 3);
    assert_eq!(c.heal.max_restarts, 5);
    assert!(c.heal.reset_failed);
    assert_eq!(c.heal.restart_command[0], "sudo");
    assert_eq!(c.notify.len(), 3);
    assert_eq!(c.notify[1].timeout, Duration::from_secs(2));
    assert_eq!(c.notify[1].events, [EventName::Down, EventName::Up]);
    match &c.notify[2].kind {
        NotifierKind::Twilio(t) => assert_eq!(t.api_base, "https://api.twilio.com"),
        other => panic!("expected twilio, got {other:?}"),
    }
}

#[test]
fn errors_are_located() {
    let svc = "services:\n  - name: a\n    port: 80\n";
    error_at(&format!("{svc}intervall: 5s\n"), 4, "intervall");
    error_at(&format!("{svc}    urll: x\n"), 4, "urll");
    error_at(
        "services:\n  - name: a\n    checks:\n      - type: tcp\n        address: h:1\n        adress: x\n",
        6,
        "adress",
    );
    error_at(&format!("workers: lots\n{svc}"), 1, "");
    error_at(&format!("timeout: 5 minutes\n{svc}"), 1, "duration");
    error_at(&format!("timeout: 0s\n{svc}"), 1, "timeout");
    error_at(&format!("heal:\n  grace: -1s\n{svc}"), 2, "duration");
    error_at(
        "services:\n  - name: a\n    checks:\n      - type: process\n        match: '(('\n",
        5,
        "regex",
    );
    error_at("services:\n  - name: a\n    unit: 'a b'\n", 3, "unit name");
    error_at("services:\n  - name: a\n    unit: '-a'\n", 3, "unit name");
    error_at(&format!("{svc}  - name: a\n    port: 81\n"), 4, "duplicate");
    error_at("services: []\n", 1, "empty");
    error_at("services:\n  - name: a\n    checks:\n      - url: http://x/\n", 4, "type");
    error_at(
        "services:\n  - name: a\n    checks:\n      - type: tcp\n        address: h:1\n        url: http://x/\n",
        4,
        "`url`",
    );
    error_at("services:\n  - name: a\n    checks:\n      - type: http\n", 4, "url");
    error_at(&format!("{svc}    depends_on: [zz]\n"), 4, "depends_on");
    error_at("services:\n  - name: a\n    port: 0\n", 3, "port");
    error_at("services:\n  - name: a\n    url: ftp://x/\n", 3, "URL");
    error_at("services:\n  - name: a\n    url: 'http://'\n", 3, "URL");
    error_at(
        "services:\n  - name: a\n    checks:\n      - type: http\n        url: http://x/\n        expect_status: 99\n",
        6,
        "status",
    );
    error_at(
        "services:\n  - name: a\n    checks:\n      - type: http\n        url: http://x/\n        expect_status: '6xx'\n",
        6,
        "expect_status",
    );
    error_at(
        "services:\n  - name: a\n    checks:\n      - type: http\n        url: http://x/\n        method: BREW\n",
        6,
        "method",
    );
    error_at(
        "services:\n  - name: a\n    checks:\n      - type: command\n        argv: []\n",
        5,
        "argv",
    );
    error_at(
        "services:\n  - name: a\n    checks:\n      - type: process\n        match: x\n        min: 2\n        max: 1\n",
        4,
        "max",
    );
    error_at("services:\n  - name: a\n", 2, "nothing to check");
    error_at(&format!("heal:\n  after_failures: 0\n{svc}"), 2, "after_failures");
    error_at(&format!("notify:\n  - type: slack\n{svc}"), 2, "url");
    error_at(&format!("notify:\n  - type: pager\n    url: http://x/\n{svc}"), 2, "pager");
}

#[test]
fn every_problem_is_reported_not_just_the_first() {
    // Problems found after parsing are all collected (a YAML or type error
    // stops the parser at the first).
    let errs = errors(
        "services:\n  - name: a\n    port: 80\n  - name: a\n    port: 81\n    depends_on: [nope]\n  - name: c\n",
    );
    assert_eq!(errs.len(), 3, "{errs:?}");
    assert!(errs[0].starts_with("m.yml:4:") && errs[0].contains("duplicate"), "{errs:?}");
    assert!(errs.iter().any(|e| e.starts_with("m.yml:7:") && e.contains("nothing to check")));
    assert!(errs.iter().any(|e| e.starts_with("m.yml:6:") && e.contains("\"nope\"")));
}

#[test]
fn messages_say_what_was_expected_once_located() {
    // The full table is errors/tests.rs; these are the forms `validate` users meet most.
    for (text, expected) in [
        (
            "workers: lots\nservices: []\n",
            "m.yml:1:10: workers: expected a whole number (0 or more), found \"lots\"",
        ),
        (
            "services:\n  - name: a\n    critical: maybe\n",
            "m.yml:3:15: services[0].critical: expected true or false, found \"maybe\"",
        ),
        ("services: nope\n", "m.yml:1:11: services: expected a list, found \"nope\""),
        (
            "services:\n  - a\n",
            "m.yml:2:5: services[0]: expected a mapping of `key: value` lines, found \"a\"",
        ),
        (
            "services:\n  - name: a\n    unit: 'a b'\n",
            "m.yml:3:11: services[0].unit: invalid unit name \"a b\": expected",
        ),
    ] {
        let errs = errors(text);
        assert!(errs[0].starts_with(expected), "{text:?}: {errs:?}");
        // The location is ours, once: not repeated by the YAML crate.
        assert!(!errs[0].contains(" column "), "{errs:?}");
    }
}

#[test]
fn not_yaml_and_yaml_bombs_are_errors_not_hangs() {
    let errs = errors("services:\n  - name: a\n    port: [80\n");
    assert!(errs[0].starts_with("m.yml:"), "{errs:?}");
    errors("");
    errors("- just\n- a list\n");
    let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 0..12 {
        let prev = if i == 0 { "a".to_string() } else { format!("b{}", i - 1) };
        bomb.push_str(&format!("b{i}: &b{i} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"));
    }
    bomb.push_str("services:\n  - name: a\n    port: 80\n");
    let started = std::time::Instant::now();
    errors(&bomb);
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[test]
fn check_urls_are_shown_without_their_password() {
    use super::shown_url;
    assert_eq!(shown_url("http://u:p4ss@h:80/x?y"), "http://***@h:80/x?y");
    assert_eq!(shown_url("https://token@h/"), "https://***@h/");
    assert_eq!(shown_url("http://h/a@b"), "http://h/a@b");
    assert_eq!(shown_url("http://h"), "http://h");
    let c = ok("services:\n  - name: a\n    url: http://admin:hunter2@127.0.0.1:1/health\n");
    assert_eq!(c.services[0].checks[0].target, "http://***@127.0.0.1:1/health");
}

#[test]
fn history_db_and_retention() {
    let svc = "services:\n  - name: a\n    port: 80\n";
    let c = ok(svc);
    assert_eq!(c.history_store.path.as_deref(), Some(Path::new(DEFAULT_HISTORY_DB)));
    assert_eq!(c.history_store.retention, Retention::default());
    assert_eq!(c.history_store.retention.results, Duration::from_secs(14 * 86_400));
    assert_eq!(c.history_store.retention.rollups, Duration::from_secs(400 * 86_400));
    assert_eq!(ok(&format!("history_db: \"off\"\n{svc}")).history_store.path, None);
    assert_eq!(ok(&format!("history_db: off\n{svc}")).history_store.path, None);
    let c = ok(&format!(
        "history_db: /srv/h.db\nretention:\n  results: 2d\n  rollups: 90d\n  incidents: 1.5d\n{svc}"
    ));
    assert_eq!(c.history_store.path.as_deref(), Some(Path::new("/srv/h.db")));
    assert_eq!(
        c.history_store.retention,
        Retention {
            results: Duration::from_secs(2 * 86_400),
            rollups: Duration::from_secs(90 * 86_400),
            incidents: Duration::from_secs(36 * 3600),
        }
    );
    error_at(&format!("retention:\n  results: 2w\n{svc}"), 2, "ms, s, m, h or d");
    error_at(
        &format!("retention:\n  rollups: 30s\n{svc}"),
        2,
        "retention.rollups must be at least 1m",
    );
    error_at(&format!("retention:\n  result: 2d\n{svc}"), 2, "result");
    error_at(&format!("history_db: ''\n{svc}"), 1, "history_db is empty");
}

/// One http check on `url` with `extra` lines (8 spaces in) appended.
fn http_check(url: &str, extra: &str) -> String {
    format!("services:\n  - name: a\n    checks:\n      - type: http\n        url: {url}\n{extra}")
}

/// The exact `line:column` of the first error, and that it mentions `fragment`.
#[track_caller]
fn error_at_col(text: &str, line: usize, col: usize, fragment: &str) {
    let errs = errors(text);
    let prefix = format!("m.yml:{line}:{col}: ");
    assert!(
        errs.iter().any(|e| e.starts_with(&prefix) && e.contains(fragment)),
        "expected an error at {line}:{col} mentioning {fragment:?}, got:\n{}",
        errs.join("\n")
    );
}

#[test]
fn json_and_body_regex_are_parsed() {
    let c = ok(&http_check(
        "https://h/",
        "        body_regex: '\"status\":\\s*\"ok\"'\n        json:\n          \"/status\": ok\n          \"/db/ok\": true\n          \"/queue/depth\": {\"<\": 1000}\n          \"/tags\": [a, b]\n          \"/items/0/name\":\n            matches: \"^x\"\n          \"/gone\": {exists: false}\n          \"/v\": 3\n          \"/n\": null\n",
    ));
    let Probe::Http(p) = &c.services[0].checks[0].probe else { panic!() };
    assert!(p.body_regex.as_ref().is_some_and(|r| r.is_match(br#"{"status": "ok"}"#)));
    let shown: Vec<String> = p.json.iter().map(|a| format!("{} {}", a.pointer, a.expect)).collect();
    assert_eq!(
        shown,
        [
            "\"/status\" \"ok\"",
            "\"/db/ok\" true",
            "\"/queue/depth\" < 1000",
            "\"/tags\" [\"a\",\"b\"]",
            "\"/items/0/name\" a match for /^x/",
            "\"/gone\" to be absent",
            "\"/v\" 3",
            "\"/n\" null",
        ]
    );
}

#[test]
fn json_errors_are_located_each_at_its_key_or_value() {
    let text = http_check(
        "https://h/",
        "        json:\n          \"db/ok\": true\n          \"/a~2\": 1\n          \"/q\": {\"~=\": 3}\n          \"/r\":\n            matches: \"(\"\n          \"/s\": {\"<\": \"five\"}\n          \"/t\": {\"<\": 1, \">\": 0}\n          \"/u\": {exists: maybe}\n          \"/v\": {}\n",
    );
    error_at_col(&text, 7, 11, "invalid JSON pointer \"db/ok\"");
    error_at_col(&text, 8, 11, "'~' must be followed by 0");
    error_at_col(
        &text,
        9,
        17,
        "unknown operator \"~=\": expected one of <, <=, >, >=, !=, exists, matches",
    );
    error_at_col(&text, 11, 13, "invalid regex \"(\"");
    error_at_col(&text, 12, 17, "operator \"<\" needs a number, not a string");
    error_at_col(&text, 13, 17, "expected one operator per pointer");
    error_at_col(&text, 14, 17, "operator \"exists\" needs true or false");
    error_at_col(&text, 15, 17, "empty mapping");
    assert_eq!(errors(&text).len(), 8, "{:#?}", errors(&text));
    error_at_col(&http_check("https://h/", "        json: {}\n"), 6, 15, "json is empty");
    error_at_col(
        &http_check("https://h/", "        json:\n          \"/a\": 1\n          \"/a\": 2\n"),
        8,
        11,
        "",
    );
    error_at_col(&http_check("https://h/", "        json: [1]\n"), 6, 15, "");
    error_at_col(
        &http_check("https://h/", "        body_regex: \"((\"\n"),
        6,
        21,
        "invalid regex \"((\"",
    );
}

#[test]
fn certificate_keys_have_defaults_and_located_errors() {
    let c = ok(&http_check("https://h/", ""));
    let Probe::Http(p) = &c.services[0].checks[0].probe else { panic!() };
    assert_eq!(p.limits.warn, Duration::from_secs(14 * 86_400));
    assert_eq!(p.limits.crit, Duration::ZERO);
    assert!(p.trust.ca_file().is_none());
    let c = ok(
        "services:\n  - name: a\n    checks:\n      - {type: tls, address: 'db:5432', server_name: db.internal, cert_warn: 30d, cert_crit: 7d}\n",
    );
    let check = &c.services[0].checks[0];
    assert_eq!(check.target, "db:5432 (db.internal)");
    let Probe::Tls(t) = &check.probe else { panic!() };
    assert_eq!(t.server_name.as_deref(), Some("db.internal"));
    assert_eq!(t.limits.warn, Duration::from_secs(30 * 86_400));
    assert_eq!(t.limits.crit, Duration::from_secs(7 * 86_400));

    for key in ["cert_warn: 3d", "cert_crit: 1d", "ca_file: /x.pem"] {
        let (name, _) = key.split_once(':').unwrap();
        let col = 10 + name.len() + 2 - 1;
        error_at_col(
            &http_check("http://h/", &format!("        {key}\n")),
            6,
            col,
            "needs an https:// URL",
        );
    }
    error_at_col(
        &http_check("https://h/", "        cert_warn: 7d\n        cert_crit: 14d\n"),
        7,
        20,
        "cert_crit (14d) must be shorter than cert_warn (7d)",
    );
    error_at_col(&http_check("https://h/", "        cert_warn: soon\n"), 6, 20, "");
    let tls = |extra: &str| {
        format!(
            "services:\n  - name: a\n    checks:\n      - type: tls\n        address: h:443\n{extra}"
        )
    };
    error_at_col(
        &tls("        server_name: \"not a name\"\n"),
        6,
        22,
        "invalid server name \"not a name\"",
    );
    error_at_col(
        &tls("        ca_file: /nonexistent/ca.pem\n"),
        6,
        18,
        "ca_file: cannot read /nonexistent/ca.pem",
    );
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "hello\n").unwrap();
    error_at_col(&tls(&format!("        ca_file: {junk:?}\n")), 6, 18, "no certificate found");
    error_at(&tls("        url: https://h/\n"), 4, "`url` not valid for a tls check");
    error_at(&tls("        json: {\"/a\": 1}\n"), 4, "`json` not valid for a tls check");
    error_at(
        &http_check("https://h/", "        server_name: h\n"),
        4,
        "`server_name` not valid for a http check",
    );
    error_at(
        "services:\n  - name: a\n    checks:\n      - {type: tls}\n",
        4,
        "a tls check needs `address`",
    );
}

#[test]
fn checks_naming_one_ca_file_share_its_trust() {
    let pem = "-----BEGIN CERTIFICATE-----\nMIIB7TCCAZKgAwIBAgIUfis8leJ4IoNWMVkEw2fBzC5fExswCgYIKoZIzj0EAwIw\nPTELMAkGA1UEBhMCREUxEzARBgNVBAoMCkNoYXQgU3RhY2sxGTAXBgNVBAMMEGxl\nYWRmbG93LmV4YW1wbGUwHhcNMjYxMjAxMDkwMjMyWhcNNDkxMTMwMDkwMjMyWjA9\nMQswCQYDVQQGEwJERTETMBEGA1UECgwKQ2hhdCBTdGFjazEZMBcGA1UEAwwQbGVh\nZGZsb3cuZXhhbXBsZTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABO2/uhURVXCD\nXqvcPA1xX41wsQ1vS05wDtYhcOq0zrmjz2VWwqa85OeLW6Vn933oqPabNNAuN8iI\nrDtKjSkVItmjcDBuMB0GA1UdDgQWBBRibl08Cx9oEPb5ZmFnuUgWfLnibDAfBgNV\nHSMEGDAWgBRibl08Cx9oEPb5ZmFnuUgWfLnibDAPBgNVHRMBAf8EBTADAQH/MBsG\nA1UdEQQUMBKCEGxlYWRmbG93LmV4YW1wbGUwCgYIKoZIzj0EAwIDSQAwRgIhAOOn\n5DnNsuIinQFBb5Hroi57b+BE0U4NDyDqdrNDv0jXAiEAmkCFcWGPWF6fRXDL3rLt\nutONmp7+mcNwpiYMUvAel/I=\n-----END CERTIFICATE-----\n";
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, pem).unwrap();
    let c = ok(&format!(
        "services:\n  - name: a\n    checks:\n      - {{type: http, url: 'https://a/', ca_file: {ca:?}}}\n      - {{type: tls, address: 'a:443', ca_file: {ca:?}}}\n      - {{type: http, url: 'https://b/'}}\n"
    ));
    let trusts: Vec<_> = c.services[0]
        .checks
        .iter()
        .map(|c| match &c.probe {
            Probe::Http(p) => Arc::clone(&p.trust),
            Probe::Tls(p) => Arc::clone(&p.trust),
            _ => panic!(),
        })
        .collect();
    assert!(Arc::ptr_eq(&trusts[0], &trusts[1]));
    assert!(!Arc::ptr_eq(&trusts[0], &trusts[2]));
    assert_eq!(trusts[0].ca_file(), Some(ca.as_path()));
}

#[test]
fn push_checks_and_their_located_errors() {
    let c = ok(
        "services:\n  - name: backup\n    unit: backup.service\n    checks:\n      - {type: push, period: 1d, grace: 1h, token_file: /etc/t}\n",
    );
    // The unit is the heal target, not observed (a oneshot job's unit is inactive between runs).
    assert_eq!(c.services[0].unit.as_deref(), Some("backup.service"));
    assert_eq!(c.services[0].checks.len(), 1);
    let check = &c.services[0].checks[0];
    assert_eq!((check.kind(), check.target.as_str()), ("push", "every 1d + 1h grace"));
    let Probe::Push(p) = &check.probe else { panic!() };
    assert_eq!(p.service, "backup");
    assert_eq!((p.period, p.grace), (Duration::from_secs(86_400), Duration::from_secs(3600)));
    assert_eq!(p.token_file.as_deref(), Some(Path::new("/etc/t")));
    assert_eq!(p.allowed(), Duration::from_secs(90_000));
    // ...unless a systemd check says so.
    let c = ok(
        "services:\n  - name: backup\n    unit: b.service\n    checks:\n      - {type: push, period: 1d, grace: 1h}\n      - {type: systemd, unit: b.service}\n",
    );
    let kinds: Vec<_> = c.services[0].checks.iter().map(|c| c.kind()).collect();
    assert_eq!(kinds, ["push", "systemd"]);
    let c =
        ok("services:\n  - name: b\n    checks:\n      - {type: push, period: 90s, grace: 0s}\n");
    let Probe::Push(p) = &c.services[0].checks[0].probe else { panic!() };
    assert_eq!((p.grace, p.token_file.as_ref()), (Duration::ZERO, None));

    let push =
        |extra: &str| format!("services:\n  - name: b\n    checks:\n      - type: push\n{extra}");
    error_at_col(&push("        grace: 1h\n"), 4, 9, "a push check needs `period` (how often");
    error_at_col(&push("        period: 1d\n"), 4, 9, "and `grace` (how late");
    error_at_col(
        &push("        period: 0s\n        grace: 1h\n"),
        5,
        17,
        "period must be greater than 0",
    );
    error_at_col(
        &push("        period: soon\n        grace: 1h\n"),
        5,
        17,
        "invalid duration \"soon\"",
    );
    error_at_col(
        &push("        period: 1d\n        grace: [1]\n"),
        6,
        16,
        "grace: expected a duration",
    );
    error_at_col(
        &push("        period: 1d\n        grace: 1h\n        token_file: ''\n"),
        7,
        21,
        "token_file is empty",
    );
    error_at(
        &push("        period: 1d\n        grace: 1h\n        url: http://h/\n"),
        4,
        "`url` not valid for a push check",
    );
    error_at(
        "services:\n  - name: b\n    checks:\n      - {type: tcp, address: 'h:1', period: 1d}\n",
        4,
        "`period` not valid for a tcp check",
    );
    error_at_col(
        &push(
            "        period: 1d\n        grace: 1h\n      - {type: push, period: 2d, grace: 1h}\n",
        ),
        7,
        9,
        "a second push check: expected at most one per service",
    );
}
