//! The command line: exit codes, output formats, `--only`, `status`,
//! `validate` and its located errors, environment overrides, usage errors.

use crate::util::{Behaviour, Env, TcpFixture, closed_port, http_fixture, perfdata_items};
use chatstack_status::time::Timestamp;

/// (name, critical, shorthand line) of one service.
type Svc<'a> = (&'a str, bool, String);

/// One service per entry.
fn services(entries: &[Svc<'_>]) -> String {
    let mut y = String::from("timeout: 1s\nservices:\n");
    for (name, critical, line) in entries {
        y.push_str(&format!("  - name: {name}\n    critical: {critical}\n    {line}\n"));
    }
    y
}

#[test]
fn exit_codes_follow_the_nagios_convention() {
    let l = TcpFixture::new();
    let up = format!("port: {}", l.port());
    let down = format!("port: {}", closed_port());
    let slow = http_fixture(Behaviour::Delay(200));
    let degraded =
        format!("checks: [{{type: http, url: '{}', degraded_after: 50ms}}]", slow.url("/"));
    let cases: [(&str, Vec<Svc<'_>>, i32); 5] = [
        ("all up", vec![("a", true, up.clone()), ("b", false, up.clone())], 0),
        ("degraded", vec![("a", true, up.clone()), ("b", true, degraded)], 1),
        ("non-critical down", vec![("a", true, up.clone()), ("b", false, down.clone())], 1),
        ("critical down", vec![("a", true, down.clone()), ("b", false, up.clone())], 2),
        ("both down", vec![("a", true, down.clone()), ("b", false, down)], 2),
    ];
    for (what, svcs, code) in cases {
        let env = Env::new();
        env.config(&services(&svcs));
        let out = env.check(&[]);
        assert_eq!(out.code, code, "{what}: {out:#?}");
        let overall = ["up", "degraded", "down"][code as usize];
        assert_eq!(env.status()["overall"], overall, "{what}");
    }
    let env = Env::new();
    env.config("services: nope\n");
    env.check(&[]).code(3);
}

#[test]
fn text_output_is_a_table_without_colour() {
    let env = Env::new();
    let l = TcpFixture::new();
    env.config(&services(&[
        ("Alpha", true, format!("port: {}", l.port())),
        ("Beta", false, format!("port: {}", closed_port())),
    ]));
    let out = env.check(&[]);
    out.code(1);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(lines[0].starts_with("SERVICE") && lines[0].contains("STATUS"), "{}", out.stdout);
    assert!(lines.iter().any(|l| l.starts_with("Alpha") && l.contains("UP")), "{}", out.stdout);
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("Beta") && l.contains("DOWN") && l.contains("[refused]")),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains('\x1b'), "colour without a TTY: {:?}", out.stdout);
}

#[test]
fn json_format_is_the_status_document() {
    let env = Env::new();
    let l = TcpFixture::new();
    env.config(&services(&[("a", true, format!("port: {}", l.port()))]));
    let out = env.check(&["--format", "json"]);
    out.code(0);
    assert_eq!(out.json(), env.status());
}

#[test]
fn nagios_format_is_one_line_with_valid_perfdata() {
    let l = TcpFixture::new();
    let ok = http_fixture(Behaviour::Ok("ok".into()));
    let line_re =
        regex::Regex::new(r"^CHATSTACK (OK|WARNING|CRITICAL|UNKNOWN) - .* \| (.+)$").unwrap();
    let perf_re = regex::Regex::new(
        r"^('(?:[^']|'')+'|[^'=\s]+)=-?[0-9]+(\.[0-9]+)?([a-zA-Z%]+)?(;(-?[0-9.]*)?){0,4}$",
    )
    .unwrap();
    for (svcs, code, word) in [
        (
            vec![
                ("Web App", true, format!("url: '{}'", ok.url("/"))),
                ("it's db", false, format!("port: {}", l.port())),
            ],
            0,
            "OK",
        ),
        (
            vec![
                ("Web App", true, format!("port: {}", l.port())),
                ("x", false, format!("port: {}", closed_port())),
            ],
            1,
            "WARNING",
        ),
        (vec![("Web App", true, format!("port: {}", closed_port()))], 2, "CRITICAL"),
        // A '|' in a name must not start the perfdata early.
        (vec![("web|api", true, format!("port: {}", closed_port()))], 2, "CRITICAL"),
    ] {
        let env = Env::new();
        env.config(&services(&svcs));
        let out = env.check(&["--format", "nagios"]);
        assert_eq!(out.code, code, "{out:#?}");
        assert_eq!(out.stdout.lines().count(), 1, "{}", out.stdout);
        let line = out.stdout.trim_end();
        assert_eq!(line.matches('|').count(), 1, "one '|' before the perfdata: {line}");
        let caps = line_re.captures(line).unwrap_or_else(|| panic!("not a Nagios line: {line}"));
        assert_eq!(&caps[1], word);
        let items = perfdata_items(&caps[2]);
        assert!(!items.is_empty());
        assert_eq!(items.join(" "), caps[2].trim(), "perfdata has stray text");
        for item in &items {
            assert!(perf_re.is_match(item), "bad perfdata item {item:?} in {line}");
        }
    }
}

#[test]
fn only_probes_the_named_services() {
    let env = Env::new();
    let l = TcpFixture::new();
    env.config(&services(&[
        ("a", true, format!("port: {}", l.port())),
        ("b", true, format!("port: {}", closed_port())),
    ]));
    let out = env.check(&["--only", "a", "--format", "json"]);
    out.code(0);
    let doc = out.json();
    let names: Vec<_> =
        doc["services"].as_array().unwrap().iter().map(|s| s["name"].clone()).collect();
    assert_eq!(names, ["a"]);
    assert!(env.state()["services"].get("b").is_none(), "b was probed");

    let out = env.check(&["--only", "nope"]);
    out.code(3);
    assert!(out.stderr.contains("\"nope\""), "{}", out.stderr);
    assert!(out.stderr.contains('a') && out.stderr.contains('b'), "{}", out.stderr);
}

#[test]
fn status_reads_the_file_and_exits_from_it() {
    let env = Env::new();
    env.config(&services(&[("a", true, format!("port: {}", closed_port()))]));
    let cfg = env.config_path();
    let cfg = cfg.to_str().unwrap();

    let out = env.cmd(&["status", "-c", cfg]);
    out.code(3);
    assert!(out.stderr.contains("status.json"), "{}", out.stderr);
    assert!(out.stderr.contains("no status file"), "{}", out.stderr);

    env.check(&[]).code(2);
    let out = env.cmd(&["status", "-c", cfg]);
    out.code(2);
    assert!(out.stdout.contains("DOWN"), "{}", out.stdout);
    let out = env.cmd(&["status", "-c", cfg, "--format", "json"]);
    out.code(2);
    let v = out.json();
    assert_eq!(v["stale"], false);
    assert!(v["age_s"].as_f64().is_some_and(|a| a >= 0.0));
    assert_eq!(v["overall"], "down");

    // A document 5 s old: fresh by default (90 s), stale with CHATSTACK_STATUS_STALE=1.
    let mut doc = env.status();
    doc["generated_at"] = Timestamp(Timestamp::now().0 - 5_000).to_string().into();
    doc["overall"] = "up".into();
    std::fs::write(env.status_path(), doc.to_string()).unwrap();
    env.cmd(&["status", "-c", cfg]).code(0);
    let out = env.cmd_env(&["status", "-c", cfg], &[("CHATSTACK_STATUS_STALE", "1")]);
    out.code(3);
    assert!(out.stderr.contains("stale"), "{}", out.stderr);
    let out =
        env.cmd_env(&["status", "-c", cfg, "--format", "json"], &[("CHATSTACK_STATUS_STALE", "1")]);
    out.code(3);
    assert_eq!(out.json()["stale"], true);

    std::fs::write(env.status_path(), "{\"schema\": 1, \"gener").unwrap();
    let out = env.cmd(&["status", "-c", cfg]);
    out.code(3);
    assert!(out.stderr.contains("status.json"), "{}", out.stderr);
}

#[test]
fn config_comes_from_the_environment_when_not_given() {
    let env = Env::new();
    let l = TcpFixture::new();
    env.config(&services(&[("a", true, format!("port: {}", l.port()))]));
    let cfg = env.config_path();
    let cfg = cfg.to_str().unwrap();
    let out = env.cmd_env(&["validate"], &[("CHATSTACK_STATUS_CONFIG", cfg)]);
    out.code(0);
    assert!(out.stdout.contains(cfg), "{}", out.stdout);
    env.cmd_env(&["check"], &[("CHATSTACK_STATUS_CONFIG", cfg)]).code(0);
    env.status();
    // -c wins over the environment.
    let out =
        env.cmd_env(&["validate", "-c", cfg], &[("CHATSTACK_STATUS_CONFIG", "/nonexistent.yml")]);
    out.code(0);
    // A missing config names the file.
    let out =
        env.cmd_env(&["validate"], &[("CHATSTACK_STATUS_CONFIG", "/nonexistent/monitor.yml")]);
    out.code(3);
    assert!(out.stderr.contains("/nonexistent/monitor.yml"), "{}", out.stderr);
}

#[test]
fn version_help_and_usage_errors() {
    let env = Env::new();
    let out = env.cmd(&["--version"]);
    out.code(0);
    assert_eq!(out.stdout.trim(), format!("chatstack-status {}", env!("CARGO_PKG_VERSION")));
    let out = env.cmd(&["--help"]);
    out.code(0);
    for sub in ["check", "status", "validate"] {
        assert!(out.stdout.contains(sub), "{}", out.stdout);
    }
    env.cmd(&["check", "--help"]).code(0);
    for bad in [
        &[][..],
        &["frobnicate"],
        &["check", "--bogus"],
        &["check", "--format", "xml"],
        &["status", "--format", "nagios"],
        &["check", "-c"],
        &["mute"],
    ] {
        let out = env.cmd(bad);
        assert_eq!(out.code, 3, "{bad:?}: {out:#?}");
        assert!(!out.stderr.trim().is_empty(), "{bad:?}: no message");
    }
}

#[test]
fn shipped_configs_validate() {
    let env = Env::new();
    for name in ["monitor.yml", "demo.yml"] {
        let path = format!("{}/config/{name}", env!("CARGO_MANIFEST_DIR"));
        let out = env.cmd(&["validate", "-c", &path]);
        assert_eq!(out.code, 0, "{name}: {out:#?}");
        assert!(out.stdout.contains("OK"), "{}", out.stdout);
    }
}

#[test]
fn validate_prints_a_summary() {
    let env = Env::new();
    env.config("services:\n  - name: web\n    url: http://127.0.0.1:1/\n    unit: web.service\n");
    let cfg = env.config_path();
    let out = env.cmd(&["validate", "-c", cfg.to_str().unwrap()]);
    out.code(0);
    assert!(out.stdout.contains("1 service, 2 checks"), "{}", out.stdout);
    assert!(out.stdout.contains("heals web.service"), "{}", out.stdout);
}

/// Every bad config: exit 3, `file:line:column: ...` on stderr.
#[test]
fn every_bad_config_is_exit_3_with_its_location() {
    let ok_tail = "    port: 80\n";
    let cases: Vec<(&str, String, usize, &str)> = vec![
        ("unknown top-level key", format!("services:\n  - name: a\n{ok_tail}intervall: 5s\n"), 4, "intervall"),
        ("unknown service key", format!("services:\n  - name: a\n{ok_tail}    urll: http://x/\n"), 4, "urll"),
        (
            "unknown check key",
            "services:\n  - name: a\n    checks:\n      - type: tcp\n        address: 127.0.0.1:1\n        adress: x\n".into(),
            6,
            "adress",
        ),
        ("unknown heal key", format!("heal:\n  enabled: true\n  max_restart: 3\nservices:\n  - name: a\n{ok_tail}"), 3, "max_restart"),
        ("wrong type (workers)", format!("workers: many\nservices:\n  - name: a\n{ok_tail}"), 1, ""),
        ("wrong type (critical)", format!("services:\n  - name: a\n    critical: maybe\n{ok_tail}"), 3, ""),
        ("wrong type (services)", "services: nope\n".into(), 1, ""),
        ("bad duration", format!("timeout: 5 minutes\nservices:\n  - name: a\n{ok_tail}"), 1, "duration"),
        (
            "bad duration in a check",
            "services:\n  - name: a\n    checks:\n      - type: tcp\n        address: 127.0.0.1:1\n        timeout: soon\n".into(),
            6,
            "duration",
        ),
        (
            "bad regex",
            "services:\n  - name: a\n    checks:\n      - type: process\n        match: 'gunicorn (('\n".into(),
            5,
            "regex",
        ),
        ("bad unit name", "services:\n  - name: a\n    unit: 'web service;rm -rf'\n".into(), 3, "unit name"),
        (
            "bad unit name in a check",
            "services:\n  - name: a\n    checks:\n      - type: systemd\n        unit: -x.service\n".into(),
            5,
            "unit name",
        ),
        ("duplicate service names", format!("services:\n  - name: a\n{ok_tail}  - name: a\n{ok_tail}"), 4, "duplicate"),
        ("empty services", "interval: 5s\nservices: []\n".into(), 2, "empty"),
        ("zero service timeout", "services:\n  - name: a\n    timeout: 0s\n    port: 80\n".into(), 3, "greater than 0"),
        ("zero heal timeout", format!("heal: {{timeout: 0}}\nservices:\n  - name: a\n{ok_tail}"), 1, "greater than 0"),
        ("missing type", "services:\n  - name: a\n    checks:\n      - url: http://x/\n".into(), 4, "type"),
        (
            "key foreign to the check type",
            "services:\n  - name: a\n    checks:\n      - type: tcp\n        address: 127.0.0.1:1\n        url: http://x/\n".into(),
            4,
            "url",
        ),
        ("unknown check type", "services:\n  - name: a\n    checks:\n      - type: ping\n".into(), 4, "ping"),
        ("check missing its target", "services:\n  - name: a\n    checks:\n      - type: http\n".into(), 4, "url"),
        ("depends_on unknown", format!("services:\n  - name: a\n{ok_tail}    depends_on: [b]\n"), 4, "depends_on"),
        ("depends_on itself", format!("services:\n  - name: a\n{ok_tail}    depends_on: [a]\n"), 4, "depends_on"),
        ("bad port", "services:\n  - name: a\n    port: 70000\n".into(), 3, "port"),
        ("bad url", "services:\n  - name: a\n    url: ftp://example/\n".into(), 3, "URL"),
        (
            "bad expect_status",
            "services:\n  - name: a\n    checks:\n      - type: http\n        url: http://x/\n        expect_status: 2yy\n".into(),
            6,
            "expect_status",
        ),
        (
            "max below min",
            "services:\n  - name: a\n    checks:\n      - type: process\n        match: x\n        min: 3\n        max: 1\n".into(),
            4,
            "max",
        ),
        ("service with nothing to check", "services:\n  - name: a\n    critical: true\n".into(), 2, "nothing to check"),
        ("after_failures 0", format!("heal:\n  after_failures: 0\nservices:\n  - name: a\n{ok_tail}"), 2, "after_failures"),
        ("empty argv", "services:\n  - name: a\n    checks:\n      - type: command\n        argv: []\n".into(), 5, "argv"),
        ("not YAML", "services:\n  - name: a\n    port: [80\n".into(), 3, ""),
        ("zero interval", format!("interval: 0s\nservices:\n  - name: a\n{ok_tail}"), 1, "interval"),
        ("zero timeout", format!("services:\n  - name: a\n{ok_tail}timeout: 0\n"), 4, "timeout"),
        ("zero workers", format!("workers: 0\nservices:\n  - name: a\n{ok_tail}"), 1, "workers"),
    ];
    let env = Env::new();
    let loc_re = regex::Regex::new(r"bad\.yml:(\d+):(\d+): ").unwrap();
    let mut failures = Vec::new();
    for (what, yaml, line, fragment) in &cases {
        let path = env.write("bad.yml", yaml);
        let out = env.cmd(&["validate", "-c", path.to_str().unwrap()]);
        let located = loc_re.captures_iter(&out.stderr).any(|c| {
            c[1].parse::<usize>() == Ok(*line) && c[2].parse::<usize>().is_ok_and(|c| c >= 1)
        });
        if out.code != 3 || !located || !out.stderr.contains(fragment) || !out.stdout.is_empty() {
            failures.push(format!(
                "{what}: expected exit 3 and bad.yml:{line}:COL with {fragment:?}; got exit {}:\n{}",
                out.code, out.stderr
            ));
        }
        // check refuses the same config the same way.
        let out = env.cmd(&["check", "-c", path.to_str().unwrap()]);
        if out.code != 3 {
            failures.push(format!("{what}: check exited {}", out.code));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// A value of the wrong type: exit 3 and one line naming the key (with its
/// parents), what it takes and what the file holds, at the value. The table
/// of every key is `src/config/errors/tests.rs`; these go through the binary.
#[test]
fn validate_names_the_key_what_it_takes_and_what_was_found() {
    let svc = "services:\n  - name: a\n    port: 1\n";
    let cases: Vec<(String, &str)> = vec![
        (
            format!("workers: many\n{svc}"),
            "1:10: workers: expected a whole number (0 or more), found \"many\"",
        ),
        (
            format!("heal:\n  enabled: yes please\n{svc}"),
            "2:12: heal.enabled: expected true or false, found \"yes please\"",
        ),
        (
            format!("interval: [1]\n{svc}"),
            "1:11: interval: expected a duration like 500ms, 5s, 2m, 1h or 1d, found a list",
        ),
        (
            format!("history: {{a: 1}}\n{svc}"),
            "1:10: history: expected a whole number (0 or more), found a mapping",
        ),
        (format!("cors_origins: foo\n{svc}"), "1:15: cors_origins: expected a list, found \"foo\""),
        (
            format!("{svc}  - name: b\n    checks:\n      - type: tcp\n        address: h:1\n        timeout:\n          - 1s\n"),
            "9:11: services[1].checks[0].timeout: expected a duration like 500ms, 5s, 2m, 1h or 1d, found a list",
        ),
        (
            format!("notify:\n  - {{type: slack, url: 'https://hooks.example/x', events: [down, sideways]}}\n{svc}"),
            "2:66: notify[0].events[1]: expected one of down, up, degraded, reminder, restart, heal_suspended, test, flapping, flapping_ended or rebooted, found \"sideways\"",
        ),
        // Our own value errors keep their words and gain the key.
        (
            "services:\n  - name: a\n    checks:\n      - type: tcp\n        address: h:1\n        timeout: soon\n".into(),
            "6:18: services[0].checks[0].timeout: invalid duration \"soon\": expected a number with ms, s, m, h or d (e.g. 500ms, 5s, 2m, 1d) or a number of seconds",
        ),
    ];
    let env = Env::new();
    let rust = regex::Regex::new(
        r"\b(u8|u16|u32|u64|usize|i32|i64|f64|bool|map|seq|sequence|string|scalar|Option|Vec)\b",
    )
    .unwrap();
    for (yaml, want) in &cases {
        let path = env.write("bad.yml", yaml);
        let out = env.cmd(&["validate", "-c", path.to_str().unwrap()]);
        assert_eq!(out.code, 3, "{yaml}\n{out:#?}");
        assert_eq!(out.stdout, "", "{yaml}");
        assert_eq!(
            out.stderr,
            format!("chatstack-status: error: {}:{want}\n", path.display()),
            "{yaml}"
        );
        assert!(!rust.is_match(&out.stderr), "a Rust word: {}", out.stderr);
    }
}

/// After the file parses, every problem is found and each is one line.
#[test]
fn validate_reports_every_problem_one_line_each() {
    let env = Env::new();
    let path = env.write(
        "bad.yml",
        "workers: 0\nservices:\n  - name: a\n    port: 80\n  - name: a\n    port: 81\n    depends_on: [nope]\n  - name: c\n",
    );
    let out = env.cmd(&["validate", "-c", path.to_str().unwrap()]);
    assert_eq!(out.code, 3, "{out:#?}");
    let at = |l: &str| format!("chatstack-status: error: {}:{l}:", path.display());
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 4, "{}", out.stderr);
    for (line, what) in
        [("1:10", "workers"), ("5:11", "duplicate"), ("8:5", "nothing to check"), ("7:18", "nope")]
    {
        assert!(
            lines.iter().any(|l| l.starts_with(&at(line)) && l.contains(what)),
            "{line} {what}:\n{}",
            out.stderr
        );
    }
}

#[test]
fn bad_stale_override_is_a_config_error() {
    let env = Env::new();
    env.config(&services(&[("a", true, "port: 80".into())]));
    let cfg = env.config_path();
    let out = env
        .cmd_env(&["status", "-c", cfg.to_str().unwrap()], &[("CHATSTACK_STATUS_STALE", "soon")]);
    out.code(3);
    assert!(out.stderr.contains("CHATSTACK_STATUS_STALE"), "{}", out.stderr);
}

#[test]
fn nagios_format_says_unknown_on_stdout_when_it_cannot_check() {
    let env = Env::new();
    env.write("monitor.yml", "services: []\n");
    let cfg = env.config_path().display().to_string();
    let out = env.cmd(&["check", "-c", &cfg, "--format", "nagios"]);
    assert_eq!(out.code, 3, "{out:?}");
    assert!(out.stdout.starts_with("CHATSTACK UNKNOWN - "), "{}", out.stdout);
    assert!(out.stdout.contains("monitor.yml:1:"), "{}", out.stdout);
    assert_eq!(out.stdout.lines().count(), 1);
    // Text format keeps stdout empty on errors.
    let out = env.cmd(&["check", "-c", &cfg]);
    assert_eq!((out.code, out.stdout.as_str()), (3, ""));
}

#[test]
fn host_names_the_host_in_the_status_and_output() {
    let env = Env::new();
    let tcp = TcpFixture::new();
    env.config(&format!("host: droplet-7\nservices:\n  - name: Web\n    port: {}\n", tcp.port()));
    let out = env.check(&["--format", "json"]);
    out.code(0);
    assert_eq!(out.json()["host"], "droplet-7");
    assert_eq!(env.status()["host"], "droplet-7");
    env.config("host: ''\nservices:\n  - name: Web\n    port: 1\n");
    let bad = env.check(&[]);
    bad.code(3);
    let line = env.read("monitor.yml").lines().position(|l| l.starts_with("host:")).unwrap() + 1;
    assert!(bad.stderr.contains(&format!("monitor.yml:{line}:7: host:")), "{}", bad.stderr);
}

/// Issue 18 #9: an argument that is not UTF-8 (a job's Latin-1 output in
/// `--message`, a path) never panics: it is taken lossily, for every
/// subcommand, and the ping is recorded.
#[test]
fn arguments_that_are_not_utf8_are_taken_lossily_never_a_panic() {
    let env = Env::new();
    env.config(
        "timeout: 1s\nheal: { enabled: false }\nservices:\n  - name: backup\n    checks: [{ type: push, period: 1h, grace: 1h }]\n",
    );
    let cfg = env.config_path().display().to_string();
    let run = |script: &str| {
        let out = crate::util::run_bin(env.command_via_sh(script, &[]));
        crate::util::assert_no_panic(&out);
        out
    };
    let latin1 = "\"$(printf 'caf\\351')\"";
    let out = run(&format!("exec \"$0\" ping -c '{cfg}' backup --message {latin1}"));
    out.code(0);
    assert_eq!(
        env.state()["services"]["backup"]["push"]["last"]["message"],
        "caf\u{fffd}",
        "{}",
        out.stderr
    );
    let out = run(&format!("exec \"$0\" mute -c '{cfg}' backup --for 1h --reason {latin1}"));
    out.code(0);
    assert_eq!(env.state()["services"]["backup"]["mute_reason"], "caf\u{fffd}", "{}", out.stderr);
    // Where the lossy text names something, the error says what was not found.
    let out = run(&format!("exec \"$0\" ping -c '{cfg}' {latin1}"));
    out.code(3);
    assert!(out.stderr.contains("unknown service \"caf\u{fffd}\""), "{}", out.stderr);
    for sub in ["check", "validate", "status", "history", "incidents", "report", "notify-test"] {
        let out = run(&format!("exec \"$0\" {sub} -c /tmp/{latin1}.yml"));
        out.code(3);
        assert_eq!(out.stderr.lines().count(), 1, "{sub}: {}", out.stderr);
    }
    let out = run(&format!("CHATSTACK_STATUS_CONFIG=/tmp/{latin1}.yml exec \"$0\" check"));
    out.code(3);
    assert!(out.stderr.contains("/tmp/caf\u{fffd}.yml"), "{}", out.stderr);
}

/// Issue 18 #16 (SPEC Part 3, small promises): `ping --exit-code` takes an
/// integer 0-255 (or systemd's signal name); anything else is exit 3 and
/// records nothing.
#[test]
fn ping_exit_code_must_be_0_to_255() {
    let env = Env::new();
    env.config(
        "timeout: 1s\nheal: { enabled: false }\nservices:\n  - name: backup\n    checks: [{ type: push, period: 1h, grace: 1h }]\n",
    );
    let cfg = env.config_path().display().to_string();
    for bad in ["notanumber", "300", "-1", "256", "", "1.5"] {
        let out = env.cmd(&["ping", "-c", &cfg, "backup", "--exit-code", bad]);
        out.code(3);
        assert!(
            out.stderr.contains("--exit-code: expected an integer 0-255"),
            "{bad}: {}",
            out.stderr
        );
        assert!(!env.state_path().exists(), "{bad}: nothing recorded");
    }
    env.cmd(&["ping", "-c", &cfg, "backup", "--exit-code", "255"]).code(0);
    assert_eq!(env.state()["services"]["backup"]["push"]["last"]["exit_code"], 255);
    env.cmd(&["ping", "-c", &cfg, "backup", "--exit-code", "0"]).code(0);
    assert_eq!(env.state()["services"]["backup"]["push"]["pings"], 2);
}
