//! Property-based fuzzing of everything that parses outside input.
//!
//! `cargo test` runs each property with a bounded number of cases (the
//! `PROPTEST_CASES` environment variable, else `DEFAULT_CASES`); `make fuzz`
//! runs them deep in release mode. Inputs are either arbitrary (bytes,
//! strings) or built from the grammar's own pieces, so the interesting paths
//! (nested YAML, percent escapes, perfdata, RFC 3339) are reached often.

use crate::config::{self, duration};
use crate::probe::body::{Expect, JsonAssertion, Pointer, check_json};
use crate::probe::command::parse_plugin_output;
use crate::probe::push::Ping;
use crate::probe::x509;
use crate::probe::{CheckStatus, Reason};
use crate::server::www;
use crate::state::{Health, HistoryEntry, RestartRecord};
use crate::statefile;
use crate::status::{CheckReport, ServiceReport, StatusDoc};
use crate::time::Timestamp;
use proptest::prelude::*;
use proptest::test_runner::{Config as PtConfig, TestCaseError};
use std::path::Path;
use std::time::Duration;

/// Cases per property under a plain `cargo test`.
const DEFAULT_CASES: u32 = 256;

fn cases(divisor: u32) -> PtConfig {
    let n = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
        .unwrap_or(DEFAULT_CASES);
    PtConfig {
        cases: (n / divisor).max(16),
        // No regression files written into src/ by a failing run: the
        // failing input is printed, and a fixed bug gets a unit test.
        failure_persistence: None,
        ..PtConfig::default()
    }
}

// ---------------------------------------------------------------- x509

proptest! {
    #![proptest_config(cases(1))]

    /// Certificates come from servers: any bytes are an error or a summary.
    #[test]
    fn x509_arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let _ = x509::summarize(&bytes);
    }

    /// A real certificate with bytes overwritten, inserted or cut away.
    #[test]
    fn x509_mutated_certificates_never_panic(
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..8)
    ) {
        let mut der = x509::tests::der_of(x509::tests::OPENSSL_2049);
        for (at, byte, how) in edits {
            let i = at.index(der.len());
            match how {
                0 => der[i] = byte,
                1 => der.insert(i, byte),
                _ => der.truncate(i),
            }
            if der.is_empty() {
                break;
            }
        }
        if let Ok(s) = x509::summarize(&der) {
            prop_assert!(s.subject.chars().count() <= x509::MAX_SUBJECT + 1);
            prop_assert!(!s.subject.chars().any(char::is_control));
        }
    }
}

proptest! {
    #![proptest_config(cases(1))]

    /// PEM: any bytes are blocks or errors; what we encode comes back.
    #[test]
    fn pem_reader_round_trips_and_never_panics(
        data in prop::collection::vec(any::<u8>(), 0..300),
        noise in "(?s).{0,200}",
        width in 1usize..80,
    ) {
        let _ = x509::pem_certificates(noise.as_bytes());
        let b64 = { use base64::Engine as _; base64::engine::general_purpose::STANDARD.encode(&data) };
        let lines: Vec<&str> = b64.as_bytes().chunks(width).map(|c| std::str::from_utf8(c).unwrap_or("")).collect();
        let pem = format!("{noise}\n-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n", lines.join("\r\n"));
        let got = x509::pem_certificates(pem.as_bytes());
        let last = got.last().cloned();
        if !data.is_empty() {
            prop_assert_eq!(last, Some(Ok(data)));
        }
    }
}

// ---------------------------------------------------------------- json bodies

/// JSON-ish bodies: valid documents built from pieces, and near misses.
fn json_body() -> impl Strategy<Value = Vec<u8>> {
    let leaf = prop_oneof![
        Just("null".to_string()),
        Just("true".to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|f| f.to_string()),
        Just("18446744073709551616".to_string()),
        Just("1e400".to_string()),
        "\\PC{0,8}".prop_map(|s| format!("{s:?}")),
    ];
    let doc = leaf.prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(|v| format!("[{}]", v.join(","))),
            prop::collection::vec(("[a-z~/]{0,3}", inner), 0..4).prop_map(|v| {
                let members: Vec<String> =
                    v.into_iter().map(|(k, v)| format!("{k:?}:{v}")).collect();
                format!("{{{}}}", members.join(","))
            }),
        ]
    });
    prop_oneof![
        4 => doc.prop_map(String::into_bytes),
        1 => prop::collection::vec(any::<u8>(), 0..100),
    ]
}

fn pointer_text() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            Just("/".to_string()),
            Just("~0".to_string()),
            Just("~1".to_string()),
            Just("~".to_string()),
            Just("0".to_string()),
            Just("01".to_string()),
            Just("-".to_string()),
            "[a-z]{0,2}",
        ],
        0..8,
    )
    .prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(cases(1))]

    /// Pointers from pieces, resolved in JSON-ish bodies under every
    /// operator: a verdict or a one-line detail, never a panic.
    #[test]
    fn json_assertions_never_panic(body in json_body(), pointer in pointer_text(), op in 0usize..8) {
        let Ok(pointer) = Pointer::parse(&pointer) else { return Ok(()) };
        let expect = match op {
            0 => Ok(Expect::Equals(serde_json::json!(1))),
            1 => Ok(Expect::NotEquals(serde_json::json!([1, {"a": null}]))),
            2 => Expect::operator("<", serde_json::json!(1.5)),
            3 => Expect::operator(">=", serde_json::json!(u64::MAX)),
            4 => Expect::operator("exists", serde_json::json!(true)),
            5 => Expect::operator("exists", serde_json::json!(false)),
            6 => Expect::operator("matches", serde_json::json!("^a")),
            _ => Expect::operator("<=", serde_json::json!(-3)),
        };
        let Ok(expect) = expect else { return Ok(()) };
        if let Err(detail) = check_json(&body, false, &[JsonAssertion { pointer, expect }]) {
            prop_assert!(!detail.contains('\n'), "multi-line detail {:?}", detail);
            prop_assert!(detail.chars().count() < 600, "long detail {:?}", detail);
        }
    }
}

// ---------------------------------------------------------------- config

const CONFIG_PATH: &str = "/fuzz/monitor.yml";

/// Pieces of config YAML: keys, values and structure, glued in any order.
fn yaml_piece() -> impl Strategy<Value = String> {
    let keys = prop::sample::select(vec![
        "interval",
        "timeout",
        "workers",
        "stale_after",
        "status_file",
        "state_file",
        "listen",
        "history",
        "www_dir",
        "basic_auth",
        "user",
        "password_file",
        "cors_origins",
        "prom_file",
        "heartbeat",
        "heal",
        "enabled",
        "after_failures",
        "grace",
        "max_restarts",
        "window",
        "stable_after",
        "reset_failed",
        "restart_command",
        "notify",
        "type",
        "url",
        "bearer_token_file",
        "events",
        "services",
        "name",
        "critical",
        "port",
        "unit",
        "process",
        "depends_on",
        "confirm",
        "reminder",
        "checks",
        "method",
        "expect_status",
        "body_contains",
        "body_regex",
        "json",
        "cert_warn",
        "cert_crit",
        "ca_file",
        "server_name",
        "degraded_after",
        "follow_redirects",
        "headers",
        "address",
        "match",
        "min",
        "max",
        "argv",
        "account_sid",
        "auth_token_file",
        "from",
        "to",
        "api_base",
        "bogus_key",
    ]);
    let values = prop::sample::select(vec![
        "5s",
        "500ms",
        "2m",
        "1h",
        "0",
        "-1",
        "1e999",
        "NaN",
        ".inf",
        "1024",
        "1025",
        "70000",
        "true",
        "false",
        "null",
        "~",
        "http",
        "tcp",
        "systemd",
        "process",
        "command",
        "tls",
        "14d",
        "/nonexistent.pem",
        "{\"/a\": 1}",
        "{\"/db/ok\": {\"<\": 3}}",
        "{\"x\": {matches: \"(\"}}",
        "{\"/a~2\": {\"~=\": 1}}",
        "\"/items/0/name\"",
        "{exists: maybe}",
        "slack",
        "webhook",
        "twilio",
        "http://127.0.0.1:5000/health",
        "https://x/",
        "ftp://x",
        "127.0.0.1:6379",
        "a.service",
        "-bad.service",
        "\"(unclosed\"",
        "\"2xx\"",
        "[200, 204]",
        "[]",
        "{}",
        "[cat, /proc/loadavg]",
        "{ user: a, password_file: /p }",
        "'quoted ''x'''",
        "\"esc \\u00e9 \\x00\"",
        "&a x",
        "*a",
        "*nope",
        "!!str 5",
        "!!binary aGk=",
        "|\n  block",
        ">-\n  folded",
        "ChatStack",
        "\u{1F600}",
    ]);
    prop_oneof![
        4 => (keys.clone(), values).prop_map(|(k, v)| format!("{k}: {v}")),
        2 => keys.prop_map(|k| format!("{k}:")),
        2 => Just("\n".to_string()),
        2 => prop::sample::select(vec!["  ", "    ", "      ", "\t"]).prop_map(String::from),
        2 => Just("- ".to_string()),
        1 => prop::sample::select(vec![
            "services:\n  - name: A\n    port: 1\n",
            "---\n",
            "...\n",
            "? ",
            ": ",
            "{",
            "}",
            "[",
            "]",
            ",",
            "#",
            "%YAML 1.2\n",
            "<<: *a\n",
            "\u{feff}",
            "\r\n",
        ])
        .prop_map(String::from),
        1 => "[^\u{0}]{0,12}",
    ]
}

fn yaml_text() -> impl Strategy<Value = String> {
    prop::collection::vec(yaml_piece(), 0..60).prop_map(|v| v.concat())
}

/// Every line of a config error names the file, maybe a position, then says what.
fn check_config_error(text: &str) -> Result<(), TestCaseError> {
    let re = regex::Regex::new(&format!(r"^{}(:\d+:\d+)?: \S.*$", regex::escape(CONFIG_PATH)))
        .expect("valid regex");
    prop_assert!(!text.is_empty(), "empty error");
    for line in text.lines() {
        prop_assert!(re.is_match(line), "unlocated error line {:?} in {:?}", line, text);
    }
    Ok(())
}

proptest! {
    #![proptest_config(cases(1))]

    #[test]
    fn config_parse_yamlish_never_panics_and_locates_errors(text in yaml_text()) {
        if let Err(problems) = config::parse(&text, Path::new(CONFIG_PATH)) {
            prop_assert!(!problems.is_empty());
            check_config_error(&problems.join("\n"))?;
        }
    }

    #[test]
    fn config_parse_arbitrary_text_never_panics(text in "\\PC{0,200}") {
        if let Err(problems) = config::parse(&text, Path::new(CONFIG_PATH)) {
            check_config_error(&problems.join("\n"))?;
        }
    }

    #[test]
    fn config_parse_valid_prefix_then_noise(noise in yaml_text(), at in 0usize..400) {
        // A valid config with noise spliced in somewhere.
        let base = "interval: 5s\ntimeout: 2s\nworkers: 4\nheal:\n  grace: 0s\nservices:\n  - name: A\n    url: http://127.0.0.1:1/\n    port: 1\n    unit: a.service\n    process: x\n  - name: B\n    checks:\n      - type: process\n        match: \"a.*b\"\n      - { type: command, argv: [true] }\n";
        let mut cut = at.min(base.len());
        while !base.is_char_boundary(cut) {
            cut -= 1;
        }
        let text = format!("{}{}{}", &base[..cut], noise, &base[cut..]);
        if let Err(problems) = config::parse(&text, Path::new(CONFIG_PATH)) {
            check_config_error(&problems.join("\n"))?;
        }
    }
}

proptest! {
    #![proptest_config(cases(4))]

    /// The file loader: arbitrary bytes (not UTF-8 included) from a real file.
    #[test]
    fn config_load_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("monitor.yml");
        std::fs::write(&path, &bytes).expect("write");
        if let Err(e) = config::load(&path) {
            let text = e.to_string();
            let re = regex::Regex::new(&format!(
                r"^{}(:\d+:\d+)?: \S.*$",
                regex::escape(&path.display().to_string())
            ))
            .expect("valid regex");
            for line in text.lines() {
                prop_assert!(re.is_match(line), "unlocated error line {:?}", line);
            }
        }
    }
}

#[test]
fn config_parse_accepts_the_shipped_configs() {
    for f in ["config/monitor.yml", "config/demo.yml"] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(f);
        let text = std::fs::read_to_string(&path).expect("shipped config");
        assert!(config::parse(&text, &path).is_ok(), "{f} does not parse");
    }
}

// ------------------------------------------------------------- durations

fn duration_text() -> impl Strategy<Value = String> {
    let num = prop_oneof![
        (0u64..100_000).prop_map(|n| n.to_string()),
        (0u64..10_000, 0u64..1000).prop_map(|(a, b)| format!("{a}.{b}")),
        "[0-9.]{0,8}",
        Just("1e3".to_string()),
        Just("99999999999999999999".to_string()),
    ];
    let unit =
        prop::sample::select(vec!["", "ms", "s", "m", "h", "d", " s", "S", "µs", "x", "ms "]);
    let space = prop::sample::select(vec!["", " ", "\t"]);
    prop_oneof![
        4 => (space.clone(), num, unit, space).prop_map(|(a, n, u, b)| format!("{a}{n}{u}{b}")),
        1 => "\\PC{0,16}",
    ]
}

proptest! {
    #![proptest_config(cases(1))]

    #[test]
    fn duration_parse_never_panics(text in duration_text()) {
        if let Ok(d) = duration::parse(&text) {
            // Whatever parses is within the documented bound and reads back
            // from its own formatting (to the millisecond we keep).
            prop_assert!(d <= Duration::from_secs(315_360_000));
            let again = duration::parse(&duration::format(d));
            prop_assert_eq!(again.map(|x| x.as_millis()), Ok(d.as_millis()), "{:?}", text);
        }
    }

    #[test]
    fn duration_format_parse_round_trip(ms in 0u64..315_360_000_000) {
        let d = Duration::from_millis(ms);
        let text = duration::format(d);
        prop_assert_eq!(duration::parse(&text), Ok(d), "{}", text);
    }

    #[test]
    fn duration_unit_forms_are_exact(n in 0u64..100_000) {
        prop_assert_eq!(duration::parse(&format!("{n}ms")), Ok(Duration::from_millis(n)));
        prop_assert_eq!(duration::parse(&format!("{n}s")), Ok(Duration::from_secs(n)));
        prop_assert_eq!(duration::parse(&format!("{n}m")), Ok(Duration::from_secs(n * 60)));
        prop_assert_eq!(duration::parse(&n.to_string()), Ok(Duration::from_secs(n)));
    }
}

// ------------------------------------------------------------ state file

fn state_json() -> impl Strategy<Value = String> {
    let piece = prop::sample::select(vec![
        "{",
        "}",
        "[",
        "]",
        ",",
        ":",
        "\"schema\"",
        "\"services\"",
        "\"undelivered\"",
        "\"A\"",
        "\"status\"",
        "\"up\"",
        "\"down\"",
        "\"since\"",
        "\"2026-11-28T06:30:00Z\"",
        "\"2026-13-28T06:30:00Z\"",
        "\"consecutive_failures\"",
        "\"restarts\"",
        "\"at\"",
        "\"ok\"",
        "\"detail\"",
        "\"history\"",
        "\"latency_ms\"",
        "\"muted_until\"",
        "\"heal_suspended\"",
        "\"push\"",
        "\"first_seen\"",
        "\"last\"",
        "\"last_ok\"",
        "\"pings\"",
        "\"message\"",
        "\"exit_code\"",
        "1",
        "2",
        "-1",
        "4294967296",
        "1e400",
        "0.5",
        "true",
        "null",
        "\"\\ud800\"",
    ]);
    prop_oneof![
        4 => prop::collection::vec(piece, 0..40).prop_map(|v| v.concat()),
        1 => Just(r#"{"schema":1,"services":{"A":{"status":"down","consecutive_failures":3,"restarts":[{"at":"2026-11-28T06:30:00Z","ok":true,"detail":"x"}],"history":[{"at":"2026-11-28T06:30:00Z","status":"up","latency_ms":1.5}]}}}"#.to_string()),
        1 => Just(r#"{"schema":1,"services":{"backup":{"push":{"first_seen":"2026-11-28T06:30:00Z","last":{"at":"2026-11-28T06:31:00Z","ok":false,"message":"disk full","exit_code":3},"last_ok":null,"pings":7}}}}"#.to_string()),
    ]
}

proptest! {
    #![proptest_config(cases(1))]

    #[test]
    fn statefile_parse_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let _ = statefile::parse(&bytes);
    }

    #[test]
    fn statefile_parse_jsonish(text in state_json()) {
        if let Ok(s) = statefile::parse(text.as_bytes()) {
            prop_assert_eq!(s.schema, statefile::SCHEMA);
            // What parsed saves and parses back to the same state.
            let bytes = serde_json::to_vec(&s).expect("serialise");
            prop_assert_eq!(statefile::parse(&bytes).ok(), Some(s));
        }
    }
}

proptest! {
    // Each corrupt case logs a warning line on stderr (not captured by the
    // test harness): fewer cases keep `make test` readable.
    #![proptest_config(cases(8))]

    /// A corrupt file is moved aside and the run starts fresh.
    #[test]
    fn statefile_load_recovers(
        bytes in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..200),
            state_json().prop_map(String::into_bytes),
        ]
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state.json");
        std::fs::write(&path, &bytes).expect("write");
        let loaded = statefile::load(&path).expect("a regular file loads");
        match statefile::parse(&bytes) {
            Ok(s) => {
                prop_assert_eq!(loaded, s);
                prop_assert!(path.exists(), "a good state file was moved");
            }
            Err(_) => {
                prop_assert_eq!(loaded.schema, statefile::SCHEMA);
                prop_assert!(loaded.services.is_empty() && loaded.undelivered.is_empty());
                prop_assert!(!path.exists(), "the corrupt file is still in place");
                let aside: Vec<_> = std::fs::read_dir(dir.path())
                    .expect("read_dir")
                    .flatten()
                    .filter(|e| e.file_name().to_string_lossy().starts_with("state.json.corrupt-"))
                    .collect();
                prop_assert_eq!(aside.len(), 1);
                prop_assert_eq!(std::fs::read(aside[0].path()).expect("read aside"), bytes);
                // And the fresh state saves over it.
                prop_assert!(statefile::save(&path, &loaded).is_ok());
                prop_assert_eq!(statefile::load(&path).expect("loads"), loaded);
            }
        }
    }
}

// ------------------------------------------------- HTTP path normalisation

fn url_path() -> impl Strategy<Value = String> {
    let seg = prop::sample::select(vec![
        "..",
        ".",
        "",
        "%2e%2e",
        "%2E%2e",
        "%2e",
        ".%2e",
        "%2f",
        "%2F",
        "%5c",
        "%5C",
        "%00",
        "%25",
        "%252e%252e",
        "%",
        "%g0",
        "%c0%ae",
        "\\",
        "..\\..",
        "static",
        "js",
        "status.js",
        "admin_status.html",
        "secret.txt",
        "link",
        "linkdir",
        "sub",
        "etc",
        "passwd",
        "/",
        "~",
        "\u{0}",
        "é",
    ]);
    let prefix = prop::sample::select(vec![
        "/static/",
        "/static",
        "/",
        "//",
        "",
        "/static//",
        "/index.html",
    ]);
    prop_oneof![
        6 => (prefix, prop::collection::vec(seg, 0..8)).prop_map(|(p, s)| format!("{p}{}", s.join("/"))),
        1 => "\\PC{0,40}",
        1 => "/static/[./%a-f0-9\\\\]{0,30}",
    ]
}

proptest! {
    #![proptest_config(cases(1))]

    #[test]
    fn www_relative_path_stays_inside(path in url_path()) {
        if let Some(rel) = www::relative_path(&path) {
            prop_assert!(!rel.is_empty());
            prop_assert!(!rel.starts_with('/'), "{:?} -> {:?}", path, rel);
            prop_assert!(!rel.contains('\\') && !rel.contains('\0'), "{:?} -> {:?}", path, rel);
            prop_assert!(
                rel.split('/').all(|s| !s.is_empty() && s != ".." && s != "."),
                "{:?} -> {:?}", path, rel
            );
        }
    }

    #[test]
    fn www_percent_decode_never_panics(s in "\\PC{0,40}") {
        let _ = www::percent_decode(&s);
    }
}

/// A www_dir with a secret beside it and symlinks pointing out of it.
struct WwwFixture {
    _dir: tempfile::TempDir,
    www: std::path::PathBuf,
}

const SECRET: &[u8] = b"TOP-SECRET-CONTENTS";

fn www_fixture() -> WwwFixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let www = dir.path().join("www");
    std::fs::create_dir_all(www.join("js")).expect("mkdir");
    std::fs::create_dir_all(www.join("sub")).expect("mkdir");
    std::fs::write(www.join("admin_status.html"), b"<html>").expect("write");
    std::fs::write(www.join("js/status.js"), b"js").expect("write");
    std::fs::write(dir.path().join("secret.txt"), SECRET).expect("write");
    std::fs::create_dir_all(dir.path().join("etc")).expect("mkdir");
    std::fs::write(dir.path().join("etc/passwd"), SECRET).expect("write");
    std::os::unix::fs::symlink("../secret.txt", www.join("link")).expect("symlink");
    std::os::unix::fs::symlink("..", www.join("linkdir")).expect("symlink");
    std::os::unix::fs::symlink("../../secret.txt", www.join("sub/link")).expect("symlink");
    WwwFixture { _dir: dir, www }
}

#[test]
fn www_lookup_refuses_symlinks_out() {
    let f = www_fixture();
    for rel in ["link", "linkdir/secret.txt", "sub/link", "linkdir/etc/passwd"] {
        assert!(www::lookup(Some(&f.www), rel).is_none(), "{rel} escaped");
    }
    assert_eq!(www::lookup(Some(&f.www), "js/status.js").as_deref(), Some(&b"js"[..]));
}

proptest! {
    #![proptest_config(cases(2))]

    #[test]
    fn www_lookup_never_serves_the_secret(paths in prop::collection::vec(url_path(), 1..16)) {
        let f = www_fixture();
        for path in paths {
            if let Some(rel) = www::relative_path(&path)
                && let Some(bytes) = www::lookup(Some(&f.www), &rel)
            {
                prop_assert!(bytes.as_ref() != SECRET, "{:?} served the secret via {:?}", path, rel);
            }
        }
    }
}

// ------------------------------------------------- Nagios plugin output

fn plugin_output() -> impl Strategy<Value = String> {
    let label = prop_oneof![
        "[a-z/_ ]{0,8}",
        Just("'my disk'".to_string()),
        Just("'it''s'".to_string()),
        Just("'unterminated".to_string()),
        Just("".to_string()),
    ];
    let value = prop_oneof![
        "-?[0-9]{1,6}(\\.[0-9]{1,3})?",
        Just("1e999".to_string()),
        Just("-1e999".to_string()),
        Just("NaN".to_string()),
        Just("inf".to_string()),
        Just("1e-400".to_string()),
        Just("+.e".to_string()),
        Just("U".to_string()),
        "[0-9eE+.-]{0,6}",
    ];
    let uom = prop::sample::select(vec!["", "s", "ms", "%", "B", "KB", "MB", "c", "errors"]);
    let item = (label, value, uom, "(;[0-9.~@:-]{0,4}){0,4}")
        .prop_map(|(l, v, u, t)| format!("{l}={v}{u}{t}"));
    let perf = prop::collection::vec(item, 0..6).prop_map(|v| v.join(" "));
    let text = "\\PC{0,40}";
    prop_oneof![
        3 => (text, perf.clone(), prop::collection::vec((text, prop::option::of(perf)), 0..3))
            .prop_map(|(s, p, rest)| {
                let mut out = format!("{s} | {p}");
                for (t, p) in rest {
                    out.push('\n');
                    out.push_str(&t);
                    if let Some(p) = p {
                        out.push_str(" | ");
                        out.push_str(&p);
                    }
                }
                out
            }),
        1 => "(?s).{0,120}",
        1 => "[|=;' \n\r\t\u{0}a1.eE-]{0,60}",
    ]
}

proptest! {
    #![proptest_config(cases(1))]

    #[test]
    fn plugin_output_parses_safely(text in plugin_output()) {
        let o = parse_plugin_output(&text);
        prop_assert!(!o.summary.contains(['\n', '\r']), "{:?}", o.summary);
        prop_assert!(o.summary.chars().count() <= 201);
        prop_assert!(o.perfdata.len() <= 100);
        for p in &o.perfdata {
            prop_assert!(p.value.is_finite(), "{:?} from {:?}", p, text);
            prop_assert!(!p.label.is_empty());
        }
    }
}

// ------------------------------------------------------ status JSON

/// Inside the range RFC 3339 with a four-digit year can express.
const MIN_TS: i64 = -62_167_219_200_000; // 0000-01-01T00:00:00Z
const MAX_TS: i64 = 253_402_300_799_999; // 9999-12-31T23:59:59.999Z

fn timestamp() -> impl Strategy<Value = Timestamp> {
    prop_oneof![
        3 => (1_500_000_000_000i64..2_500_000_000_000).prop_map(Timestamp),
        1 => (MIN_TS..=MAX_TS).prop_map(Timestamp),
        1 => (0i64..10_000).prop_map(|s| Timestamp(s * 1000)),
    ]
}

/// Latencies as the product rounds them: tenths of a millisecond.
fn tenths() -> impl Strategy<Value = f64> {
    (0u64..100_000_000).prop_map(|n| n as f64 / 10.0)
}

fn health() -> impl Strategy<Value = Health> {
    prop::sample::select(vec![Health::Up, Health::Degraded, Health::Down])
}

fn reason() -> impl Strategy<Value = Reason> {
    prop::sample::select(vec![
        Reason::Timeout,
        Reason::Dns,
        Reason::Refused,
        Reason::Tls,
        Reason::HttpStatus,
        Reason::BodyMismatch,
        Reason::Slow,
        Reason::CertExpiring,
        Reason::UnitInactive,
        Reason::UnitFailed,
        Reason::UnitRestarting,
        Reason::StartLimitHit,
        Reason::UnitNotFound,
        Reason::ProcessMissing,
        Reason::ProcessCount,
        Reason::CommandStatus,
        Reason::PushLate,
        Reason::PushFailed,
        Reason::CheckError,
    ])
}

fn check_report() -> impl Strategy<Value = CheckReport> {
    (
        prop::sample::select(vec!["http", "tcp", "tls", "systemd", "process", "command", "push"]),
        "\\PC{0,30}",
        prop::sample::select(vec![
            CheckStatus::Up,
            CheckStatus::Degraded,
            CheckStatus::Unknown,
            CheckStatus::Down,
        ]),
        prop::option::of(reason()),
        prop::option::of(tenths()),
        "(?s).{0,40}",
        prop::option::of((timestamp(), any::<u64>(), prop::option::of(1..u64::MAX))),
        prop::option::of((ping(), timestamp())),
    )
        .prop_map(|(kind, target, status, reason, latency_ms, detail, cert, push)| {
            CheckReport {
                kind: kind.to_string(),
                target,
                status,
                reason,
                latency_ms,
                detail,
                cert_expires_at: cert.map(|c| c.0),
                cert_warn_s: cert.map(|c| c.1),
                cert_crit_s: cert.and_then(|c| c.2),
                last_ping: push.as_ref().map(|p| p.0.clone()),
                ping_due_by: push.map(|p| p.1),
            }
        })
}

/// A push check's ping as the state and status files hold it.
fn ping() -> impl Strategy<Value = Ping> {
    (timestamp(), any::<bool>(), "\\PC{0,30}", prop::option::of(any::<i32>()))
        .prop_map(|(at, ok, message, exit_code)| Ping { at, ok, message, exit_code })
}

fn service_report() -> impl Strategy<Value = ServiceReport> {
    let restart = (timestamp(), any::<bool>(), "\\PC{0,20}", prop::option::of(any::<u64>()))
        .prop_map(|(at, ok, detail, n_restarts)| RestartRecord { at, ok, detail, n_restarts });
    let history = (timestamp(), health(), prop::option::of(tenths()))
        .prop_map(|(at, status, latency_ms)| HistoryEntry { at, status, latency_ms });
    (
        ("\\PC{1,20}", health(), any::<bool>(), prop::option::of("[a-z.@-]{1,20}")),
        (prop::option::of(timestamp()), any::<u32>(), any::<bool>(), prop::option::of(timestamp())),
        prop::collection::vec(restart, 0..3),
        any::<u64>(),
        prop::collection::vec(check_report(), 0..5),
        prop::collection::vec(history, 0..5),
        prop::option::of((
            prop::option::of(tenths()),
            prop::option::of(tenths()),
            prop::option::of(tenths()),
        )),
    )
        .prop_map(
            |(
                (name, status, critical, unit),
                (since, consecutive_failures, heal_suspended, muted_until),
                restarts,
                restarts_total,
                checks,
                history,
                uptime,
            )| ServiceReport {
                name,
                status,
                critical,
                unit,
                since,
                consecutive_failures,
                heal_suspended,
                muted_until,
                restarts,
                restarts_total,
                checks,
                history,
                uptime: uptime.map(|(day, week, month)| crate::status::Uptime { day, week, month }),
            },
        )
}

fn status_doc() -> impl Strategy<Value = StatusDoc> {
    (timestamp(), "\\PC{0,30}", health(), tenths(), prop::collection::vec(service_report(), 0..5))
        .prop_map(|(generated_at, host, overall, duration_ms, services)| StatusDoc {
            schema: crate::status::SCHEMA,
            generated_at,
            host,
            overall,
            duration_ms,
            services,
        })
}

/// Rounds every float to the tenth of a millisecond the product keeps, so
/// the comparison does not depend on the last bit of a float parse.
fn normalise(mut doc: StatusDoc) -> StatusDoc {
    fn r(x: f64) -> f64 {
        (x * 10.0).round() / 10.0
    }
    doc.duration_ms = r(doc.duration_ms);
    for s in &mut doc.services {
        for c in &mut s.checks {
            c.latency_ms = c.latency_ms.map(r);
        }
        for h in &mut s.history {
            h.latency_ms = h.latency_ms.map(r);
        }
    }
    doc
}

proptest! {
    #![proptest_config(cases(2))]

    #[test]
    fn status_json_round_trips(doc in status_doc()) {
        // The file form (pretty, what `check` writes) and the compact form (the API).
        let pretty = doc.to_json();
        let back: StatusDoc = serde_json::from_slice(&pretty).expect("status file parses");
        prop_assert_eq!(normalise(back), normalise(doc.clone()));
        let compact = serde_json::to_vec(&doc).expect("serialise");
        let back: StatusDoc = serde_json::from_slice(&compact).expect("API JSON parses");
        prop_assert_eq!(normalise(back), normalise(doc));
    }

    #[test]
    fn status_json_garbage_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = serde_json::from_slice::<StatusDoc>(&bytes);
    }
}

// ------------------------------------------------------- RFC 3339 time

fn rfc3339ish() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => (
            "[0-9]{4}", "[0-9]{2}", "[0-9]{2}",
            prop::sample::select(vec!["T", "t", " ", "x"]),
            "[0-9]{2}", "[0-9]{2}", "[0-9]{2}",
            prop::sample::select(vec!["", ".", ".5", ".123", ".123456789", ".1234567890123456789012"]),
            prop::sample::select(vec!["Z", "z", "+00:00", "-05:30", "+99:99", "+0100", "", "Zz", "+é:00"]),
        )
            .prop_map(|(y, mo, d, t, h, mi, s, f, z)| format!("{y}-{mo}-{d}{t}{h}:{mi}:{s}{f}{z}")),
        1 => "\\PC{0,32}",
    ]
}

proptest! {
    #![proptest_config(cases(1))]

    #[test]
    fn timestamp_format_parse_round_trip(ms in MIN_TS..=MAX_TS) {
        let t = Timestamp(ms);
        let text = t.to_string();
        prop_assert_eq!(Timestamp::parse(&text), Some(t), "{}", text);
        // Through serde too (what the status and state files use).
        let json = serde_json::to_string(&t).expect("serialise");
        prop_assert_eq!(serde_json::from_str::<Timestamp>(&json).ok(), Some(t));
    }

    #[test]
    fn timestamp_parse_never_panics(text in rfc3339ish()) {
        if let Some(t) = Timestamp::parse(&text) {
            // Whatever parses formats to a canonical form that parses back to it.
            prop_assert_eq!(Timestamp::parse(&t.to_string()), Some(t), "{:?}", text);
        }
    }
}
