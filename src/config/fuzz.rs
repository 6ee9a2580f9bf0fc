//! Property tests: The config loader: never a panic, every error located.

use crate::config;
use crate::testing::cases;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use std::path::Path;

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
