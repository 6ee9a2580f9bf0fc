//! The email, Telegram, Discord and ntfy notifiers end to end: the real
//! binary's `check` runs and `notify-test` against a real SMTP server
//! (aiosmtpd from the package index, in target/smtp-venv: tests/smtp/) and
//! loopback HTTP receivers that record each request's exact shape.

use crate::util::{Env, Pki, Reply, Seen, http_handler, kill, wait_until};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

/// A command check exiting with the code in `<name>.rc` (0 up, 2 down),
/// printing `out` (its detail).
fn probe(env: &Env, name: &str, out: &str) -> String {
    let d = env.root().display();
    let script = format!(
        "#!/bin/sh\n[ \"$1\" = __ready ] && exit 0\necho '{out}'\nexit \"$(cat '{d}/{name}.rc' 2>/dev/null || echo 0)\"\n"
    );
    env.fake_program(&format!("probe-{name}"), &script).display().to_string()
}

fn set_up(env: &Env, name: &str, up: bool) {
    env.write(&format!("{name}.rc"), if up { "0\n" } else { "2\n" });
}

/// `notify` YAML plus one service `web` (critical unless told) on a probe.
fn env_with(notify: &str, service_extra: &str) -> Env {
    let env = Env::new();
    let probe = probe(&env, "web", "web answered 502 from upstream");
    env.config(&format!(
        "timeout: 5s\nnotify:\n{notify}services:\n  - name: web\n    checks: [{{type: command, argv: [\"{probe}\"]}}]\n{service_extra}"
    ));
    env
}

// ----- a real SMTP server ---------------------------------------------------

fn smtp_python() -> &'static str {
    static PYTHON: OnceLock<String> = OnceLock::new();
    PYTHON.get_or_init(|| {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/smtp/venv.sh");
        let out = Command::new("bash").arg(script).output().expect("bash");
        assert!(
            out.status.success(),
            "tests/smtp/venv.sh: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    })
}

/// aiosmtpd on 127.0.0.1, recording what it accepts; killed on Drop.
struct Smtp {
    child: Child,
    port: u16,
    out: PathBuf,
}

impl Smtp {
    fn start(env: &Env, port: u16, extra: &[&str]) -> Smtp {
        let out = env.path("smtp-received.jsonl");
        let mut child = Command::new(smtp_python())
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/smtp/server.py"))
            .args(["--out", &out.display().to_string(), "--port", &port.to_string()])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(env.path("smtp-server.log")).expect("log"))
            .spawn()
            .expect("start the SMTP server");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("port");
        let port = line.trim().parse().unwrap_or_else(|_| panic!("SMTP server said {line:?}"));
        Smtp { child, port, out }
    }

    fn messages(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("JSON line"))
            .collect()
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        kill(self.child.id());
        let _ = self.child.wait();
    }
}

fn email_yaml(port: u16, tls: &str, extra: &str) -> String {
    format!(
        "  - type: email\n    smtp: {{host: 127.0.0.1, port: {port}, tls: {tls}}}\n    from: \"chatstack-status <alerts@example.com>\"\n    to: [ops@example.com, oncall@example.com]\n{extra}"
    )
}

fn header<'a>(data: &'a str, name: &str) -> Option<&'a str> {
    data.lines()
        .take_while(|l| !l.is_empty())
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(": "))
}

#[test]
fn email_down_and_up_reach_a_real_smtp_server_one_message_per_recipient() {
    let env = Env::new();
    let smtp = Smtp::start(&env, 0, &[]);
    let env2 = env_with(&email_yaml(smtp.port, "none", ""), "");
    let env = env2; // the service lives in its own env; the server writes in the first
    set_up(&env, "web", false);
    env.check(&[]).code(2);
    wait_until(Duration::from_secs(5), || smtp.messages().len() == 2);
    let msgs = smtp.messages();
    let mut rcpts: Vec<String> =
        msgs.iter().map(|m| m["rcpt_tos"][0].as_str().unwrap_or_default().to_string()).collect();
    rcpts.sort();
    assert_eq!(rcpts, ["oncall@example.com", "ops@example.com"]);
    let data = msgs[0]["data"].as_str().expect("data");
    let host = env.status()["host"].as_str().expect("host").to_string();
    assert_eq!(
        header(data, "Subject"),
        Some(format!("[chatstack-status] web is DOWN on {host}").as_str()),
        "{data}"
    );
    assert_eq!(msgs[0]["mail_from"], "alerts@example.com");
    assert!(header(data, "Content-Type").is_some_and(|c| c.starts_with("text/plain")), "{data}");
    assert!(data.contains("web answered 502 from upstream"), "the detail: {data}");
    assert_eq!(env.state()["undelivered"], serde_json::json!([]));

    set_up(&env, "web", true);
    env.check(&[]).code(0);
    wait_until(Duration::from_secs(5), || smtp.messages().len() == 4);
    let up = smtp.messages()[3]["data"].as_str().unwrap_or_default().to_string();
    assert!(header(&up, "Subject").is_some_and(|s| s.contains("web is UP on")), "{up}");
}

#[test]
fn email_over_starttls_and_implicit_tls_with_a_test_ca_and_a_login() {
    for tls in ["starttls", "implicit"] {
        let env = Env::new();
        let pki = Pki::new(&env.path("pki"), "smtp", &["IP:127.0.0.1"]);
        let (cert, key) = (pki.cert.display().to_string(), pki.key.display().to_string());
        let smtp = Smtp::start(
            &env,
            0,
            &["--tls", tls, "--cert", &cert, "--key", &key, "--login", "alerts:smtp-pw-81f3"],
        );
        let pw = env.write("smtp-password", "smtp-pw-81f3\n");
        let web = probe(&env, "web", "down for the test");
        let mut yaml = format!(
            "notify:\n{}",
            email_yaml(
                smtp.port,
                tls,
                &format!(
                    "    username: alerts\n    password_file: \"{}\"\n    ca_file: \"{}\"\n    to: [ops@example.com]\n",
                    pw.display(),
                    pki.ca.display()
                )
            )
        );
        // `to` given twice above: keep the last (one recipient).
        yaml = yaml.replacen("    to: [ops@example.com, oncall@example.com]\n", "", 1);
        env.config(&format!(
            "{yaml}services:\n  - name: web\n    checks: [{{type: command, argv: [\"{web}\"]}}]\n"
        ));
        set_up(&env, "web", false);
        let out = env.check(&[]);
        out.code(2);
        assert_eq!(env.state()["undelivered"], serde_json::json!([]), "{tls}");
        wait_until(Duration::from_secs(5), || smtp.messages().len() == 1);
        let m = &smtp.messages()[0];
        assert_eq!(m["tls"], true, "{tls}: {m}");
        assert_eq!(m["login"], "alerts", "{tls}: {m}");
        let state = std::fs::read_to_string(env.state_path()).unwrap_or_default();
        for text in [&out.stdout, &out.stderr, &state] {
            assert!(!text.contains("smtp-pw-81f3"), "the password leaked: {text}");
        }

        // Without the test CA the server is not trusted: nothing is sent,
        // the delivery waits in the outbox, and the error says why.
        let env2 = Env::new();
        let probe2 = probe(&env2, "web", "down");
        env2.config(&format!(
            "notify:\n  - {{type: email, smtp: {{host: 127.0.0.1, port: {}, tls: {tls}}}, from: a@example.com, to: [b@example.com], username: alerts, password_file: \"{}\"}}\nservices:\n  - name: web\n    checks: [{{type: command, argv: [\"{probe2}\"]}}]\n",
            smtp.port,
            pw.display()
        ));
        set_up(&env2, "web", false);
        env2.check(&[]).code(2);
        assert_eq!(smtp.messages().len(), 1, "{tls}: sent to an untrusted server");
        let undelivered = env2.state()["undelivered"].clone();
        assert_eq!(undelivered.as_array().map(Vec::len), Some(1), "{undelivered:#}");
        let why = undelivered[0]["last_error"].as_str().unwrap_or_default();
        assert!(why.to_lowercase().contains("certificate") || why.contains("TLS"), "{why}");
    }
}

#[test]
fn email_server_down_then_up_loses_nothing() {
    let env = Env::new();
    let port = {
        let first = Smtp::start(&env, 0, &[]);
        first.port
    }; // the server is gone now
    let env = env_with(&email_yaml(port, "none", "    name: mail\n"), "");
    set_up(&env, "web", false);
    env.check(&[]).code(2);
    let undelivered = env.state()["undelivered"].clone();
    assert_eq!(undelivered.as_array().map(Vec::len), Some(2), "{undelivered:#}");
    assert!(
        undelivered[0]["last_error"].as_str().is_some_and(|e| e.contains("refused")),
        "{undelivered:#}"
    );

    let smtp = Smtp::start(&env, port, &[]);
    env.check(&[]).code(2);
    wait_until(Duration::from_secs(5), || smtp.messages().len() == 2);
    assert!(
        smtp.messages()
            .iter()
            .all(|m| m["data"].as_str().is_some_and(|d| d.contains("is DOWN on")))
    );
    assert_eq!(env.state()["undelivered"], serde_json::json!([]));
}

#[test]
fn email_without_tls_to_a_network_host_is_a_located_config_error() {
    let env = env_with(
        "  - type: email\n    smtp: {host: smtp.example.com, port: 25, tls: none}\n    from: a@example.com\n    to: [b@example.com]\n",
        "",
    );
    let out = env.cmd(&["validate", "-c", &env.config_path().display().to_string()]);
    out.code(3);
    let text = std::fs::read_to_string(env.config_path()).expect("config");
    let line = 1 + text.lines().position(|l| l.contains("smtp:")).expect("smtp line");
    assert!(
        out.stderr.contains(&format!(
            "monitor.yml:{line}:11: smtp: tls: none is allowed only to a loopback host"
        )),
        "{}",
        out.stderr
    );
    let env = env_with(
        "  - type: email\n    smtp: {host: localhost, tls: none}\n    from: not an address\n    to: [b@example.com]\n",
        "",
    );
    let out = env.cmd(&["validate", "-c", &env.config_path().display().to_string()]);
    out.code(3);
    assert!(
        out.stderr.contains("from: \"not an address\" is not a mail address"),
        "{}",
        out.stderr
    );
}

// ----- HTTP channels ----------------------------------------------------------

const BOT_TOKEN: &str = "123456:telegram-secret-AbC9";
const NTFY_TOKEN: &str = "tk_ntfysecret42";

#[test]
fn telegram_posts_send_message_with_chat_id_and_text_and_never_shows_the_token() {
    // First answers 500 quoting the URL (as a proxy might): the token must not
    // reach the state file or the output.
    let fail = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let f = std::sync::Arc::clone(&fail);
    let r = http_handler(move |s: &Seen| {
        if f.load(std::sync::atomic::Ordering::SeqCst) {
            Reply::new(500, format!("upstream error for {} token {BOT_TOKEN}", s.path))
        } else {
            Reply::new(200, r#"{"ok":true}"#)
        }
    });
    let env = Env::new();
    let token = env.write("tg-token", &format!("{BOT_TOKEN}\n"));
    let env = env_with(
        &format!(
            "  - {{type: telegram, bot_token_file: \"{}\", chat_id: \"-1001234567890\", api_base: \"{}\"}}\n",
            token.display(),
            r.url("/tg")
        ),
        "",
    );
    set_up(&env, "web", false);
    let out = env.check(&[]);
    out.code(2);
    let state = std::fs::read_to_string(env.state_path()).expect("state");
    for text in [&out.stdout, &out.stderr, &state] {
        assert!(!text.contains("telegram-secret"), "the token leaked: {text}");
    }
    assert!(state.contains("HTTP 500"), "{state}");

    fail.store(false, std::sync::atomic::Ordering::SeqCst);
    env.check(&[]).code(2);
    let reqs = r.requests();
    let last = reqs.last().expect("a request");
    assert_eq!(last.method, "POST");
    assert_eq!(last.path, format!("/tg/bot{BOT_TOKEN}/sendMessage"));
    assert!(last.header("content-type").is_some_and(|c| c.starts_with("application/json")));
    let v: Value = serde_json::from_str(&last.body).expect("JSON");
    assert_eq!(v["chat_id"], "-1001234567890");
    let text = v["text"].as_str().expect("text");
    assert!(
        text.contains("web") && text.contains("DOWN") && text.contains("502 from upstream"),
        "{text}"
    );
    assert_eq!(v.as_object().map(|o| o.len()), Some(2), "{v}");
    assert_eq!(env.state()["undelivered"], serde_json::json!([]));
}

#[test]
fn discord_posts_content_of_at_most_2000_characters() {
    let r = http_handler(|_| Reply::new(204, ""));
    let env = Env::new();
    let long = "x".repeat(900);
    let probes: Vec<String> = (0..4).map(|i| probe(&env, &format!("p{i}"), &long)).collect();
    let checks: Vec<String> =
        probes.iter().map(|p| format!("{{type: command, argv: [\"{p}\"]}}")).collect();
    env.config(&format!(
        "notify:\n  - {{type: discord, url: \"{}\"}}\nservices:\n  - name: web\n    checks: [{}]\n",
        r.url("/api/webhooks/1/secret"),
        checks.join(", ")
    ));
    for i in 0..4 {
        set_up(&env, &format!("p{i}"), false);
    }
    env.check(&[]).code(2);
    let reqs = r.requests();
    assert_eq!(reqs.len(), 1, "{reqs:#?}");
    assert_eq!(reqs[0].path, "/api/webhooks/1/secret");
    let v: Value = serde_json::from_str(&reqs[0].body).expect("JSON");
    let content = v["content"].as_str().expect("content");
    assert!(content.chars().count() <= 2000, "{} characters", content.chars().count());
    assert!(content.chars().count() > 1500, "the detail is there: {content}");
    assert!(content.contains("web is DOWN on"), "{content}");
}

#[test]
fn ntfy_gets_text_title_priority_tags_and_the_bearer_token() {
    let r = http_handler(|_| Reply::new(200, "{}"));
    let env = Env::new();
    let token = env.write("ntfy-token", &format!("{NTFY_TOKEN}\n"));
    let side = probe(&env, "side", "side is broken");
    let env = env_with(
        &format!(
            "  - {{type: ntfy, url: \"{}\", token_file: \"{}\"}}\n",
            r.url("/chatstack-alerts"),
            token.display()
        ),
        &format!(
            "  - name: side\n    critical: false\n    checks: [{{type: command, argv: [\"{side}\"]}}]\n"
        ),
    );
    set_up(&env, "web", false);
    std::fs::write(format!("{}/side.rc", side.rsplit_once("/bin/").map_or("", |p| p.0)), "2\n")
        .expect("side down");
    env.check(&[]).code(2);
    set_up(&env, "web", true);
    env.check(&[]).code(1);
    let reqs = r.requests();
    assert_eq!(reqs.len(), 3, "{reqs:#?}");
    let by = |svc: &str, word: &str| -> Seen {
        reqs.iter()
            .find(|q| {
                q.header("title").is_some_and(|t| t.starts_with(&format!("{svc} is {word} on")))
            })
            .unwrap_or_else(|| panic!("{svc} {word}: {reqs:#?}"))
            .clone()
    };
    let (web_down, side_down, web_up) = (by("web", "DOWN"), by("side", "DOWN"), by("web", "UP"));
    assert_eq!(web_down.header("priority"), Some("5"), "critical down");
    assert_eq!(side_down.header("priority"), Some("4"), "other down");
    assert_eq!(web_up.header("priority"), Some("3"), "otherwise");
    assert_eq!(web_down.header("tags"), Some("rotating_light,down,down"));
    assert_eq!(web_up.header("tags"), Some("green_circle,up,up"));
    for q in &reqs {
        assert_eq!(q.method, "POST");
        assert_eq!(q.path, "/chatstack-alerts");
        assert_eq!(q.header("authorization"), Some(format!("Bearer {NTFY_TOKEN}").as_str()));
        assert!(q.header("content-type").is_some_and(|c| c.starts_with("text/plain")));
    }
    assert!(web_down.body.contains("502 from upstream"), "{}", web_down.body);
}

#[test]
fn notify_test_reaches_email_telegram_discord_and_ntfy() {
    let env = Env::new();
    let smtp = Smtp::start(&env, 0, &[]);
    let r = http_handler(|_| Reply::new(200, "{}"));
    let token = env.write("tg", "123:abc-token\n");
    let probe = probe(&env, "web", "x");
    env.config(&format!(
        "notify:\n{}  - {{type: telegram, name: tg, bot_token_file: \"{}\", chat_id: \"42\", api_base: \"{}\"}}\n  - {{type: discord, name: dc, url: \"{}\"}}\n  - {{type: ntfy, name: nt, url: \"{}\"}}\nservices:\n  - name: web\n    checks: [{{type: command, argv: [\"{probe}\"]}}]\n",
        email_yaml(smtp.port, "none", "    name: mail\n"),
        token.display(),
        r.url("/tg"),
        r.url("/dc"),
        r.url("/nt"),
    ));
    let out = env.cmd(&["notify-test", "-c", &env.config_path().display().to_string()]);
    out.code(0);
    for line in
        ["mail (email): ok (2 messages)", "tg (telegram): ok", "dc (discord): ok", "nt (ntfy): ok"]
    {
        assert!(out.stdout.contains(line), "{line}: {}", out.stdout);
    }
    assert_eq!(smtp.messages().len(), 2);
    let mut paths: Vec<String> = r.requests().iter().map(|q| q.path.clone()).collect();
    paths.sort();
    assert_eq!(paths, ["/dc", "/nt", "/tg/bot123:abc-token/sendMessage"]);
}
