//! `conf.d/` drop-ins and `${…}` in config files, through the real binary:
//! order, forbidden keys, a service defined twice (both places named),
//! errors located in the file they come from, every form of `${…}` and `$$`
//! (a regex's `$` left alone), and SIGHUP re-reading every file.

use crate::util::{Daemon, Env, TcpFixture, wait_until};
use std::time::Duration;

fn cfg(env: &Env) -> String {
    env.config_path().display().to_string()
}

fn names(doc: &serde_json::Value) -> Vec<String> {
    doc["services"]
        .as_array()
        .map(|a| a.iter().map(|s| s["name"].as_str().unwrap_or("").to_string()).collect())
        .unwrap_or_default()
}

#[test]
fn drop_ins_are_read_after_the_main_file_in_name_order() {
    let tcp = TcpFixture::new();
    let env = Env::new();
    let p = tcp.port();
    env.config(&format!("services:\n  - name: main\n    port: {p}\n"));
    env.write("conf.d/20-b.yml", &format!("services:\n  - name: b\n    port: {p}\n"));
    env.write(
        "conf.d/10-a.yaml",
        &format!("# ChatStack's package\nservices:\n  - name: a1\n    port: {p}\n  - name: a2\n    port: {p}\nnotify:\n  - {{type: webhook, name: from-a, url: \"http://127.0.0.1:1/\"}}\n"),
    );
    env.write("conf.d/notes.txt", "services: not yaml for us\n");
    env.write("conf.d/.hidden.yml", "interval: 1s\n");
    env.write("conf.d/30-empty.yml", "# nothing yet\n");
    let out = env.cmd(&["validate", "-c", &cfg(&env)]);
    out.code(0);
    let read: Vec<&str> =
        out.stdout.lines().filter_map(|l| l.trim().strip_prefix("read ")).collect();
    let d = env.root().display();
    assert_eq!(
        read,
        [
            format!("{d}/monitor.yml"),
            format!("{d}/conf.d/10-a.yaml"),
            format!("{d}/conf.d/20-b.yml"),
            format!("{d}/conf.d/30-empty.yml"),
        ],
        "{}",
        out.stdout
    );
    env.check(&[]).code(0);
    assert_eq!(names(&env.status()), ["main", "a1", "a2", "b"]);
    let out = env.cmd(&["notify-test", "-c", &cfg(&env)]);
    assert!(out.stdout.contains("from-a (webhook):"), "{}", out.stdout);
}

#[test]
fn a_drop_in_may_hold_only_services_and_notify() {
    let env = Env::new();
    env.config("services:\n  - name: main\n    port: 1\n");
    env.write("conf.d/x.yml", "services:\n  - name: x\n    port: 1\ninterval: 5s\n");
    let out = env.cmd(&["validate", "-c", &cfg(&env)]);
    out.code(3);
    let at = format!("{}/conf.d/x.yml:4:1:", env.root().display());
    assert!(out.stderr.contains(&at) && out.stderr.contains("interval"), "{at}\n{}", out.stderr);
}

#[test]
fn a_service_defined_twice_names_both_places_and_errors_stay_in_their_file() {
    let env = Env::new();
    env.config("services:\n  - name: web\n    port: 1\n");
    env.write(
        "conf.d/dup.yml",
        "services:\n  - name: other\n    port: 1\n  - name: web\n    url: \"ftp://x/\"\n",
    );
    let out = env.cmd(&["validate", "-c", &cfg(&env)]);
    out.code(3);
    let d = env.root().display();
    // The bad URL is in the drop-in: located there (the crate stops at the first type error).
    assert!(out.stderr.contains(&format!("{d}/conf.d/dup.yml:5:10:")), "{}", out.stderr);

    env.write(
        "conf.d/dup.yml",
        "services:\n  - name: other\n    port: 1\n  - name: web\n    port: 2\n",
    );
    let out = env.cmd(&["validate", "-c", &cfg(&env)]);
    out.code(3);
    let want = format!(
        "{d}/conf.d/dup.yml:4:11: duplicate service name \"web\": already defined at {d}/monitor.yml:"
    );
    assert!(out.stderr.contains(&want), "{want}\n{}", out.stderr);
    let main_line = 1 + std::fs::read_to_string(env.config_path())
        .expect("config")
        .lines()
        .position(|l| l.contains("name: web"))
        .expect("web");
    assert!(
        out.stderr.contains(&format!("monitor.yml:{main_line}:11: names must be unique")),
        "{}",
        out.stderr
    );
}

#[test]
fn every_form_of_dollar_in_every_file() {
    let tcp = TcpFixture::new();
    let env = Env::new();
    env.config(
        "host: ${CS_TEST_HOST}\nworkers: ${CS_TEST_WORKERS:-2}\nservices:\n  - name: \"${CS_TEST_NAME:-fallback}\"\n    port: ${CS_TEST_PORT}\n  - name: price$$\n    process: ${CS_TEST_UNSET_OK:-^chatstack-none$}\n    critical: ${CS_TEST_CRITICAL:-false}\n",
    );
    env.write(
        "conf.d/app.yml",
        "services:\n  - name: app\n    checks:\n      - {type: tcp, address: \"127.0.0.1:${CS_TEST_PORT}\"}\n      - {type: process, match: '^a$|$HOME', min: 0}\n",
    );
    let port = tcp.port().to_string();
    let vars = [("CS_TEST_HOST", "box-7"), ("CS_TEST_PORT", port.as_str()), ("CS_TEST_NAME", "")];
    let out = env.cmd_env(&["check", "-c", &cfg(&env), "--format", "json"], &vars);
    assert!(out.code == 0 || out.code == 1, "{out:?}");
    let doc = out.json();
    assert_eq!(doc["host"], "box-7");
    assert_eq!(names(&doc), ["fallback", "price$", "app"], "an empty NAME takes the default");
    let svc = |n: &str| {
        doc["services"]
            .as_array()
            .and_then(|a| a.iter().find(|s| s["name"] == n).cloned())
            .expect(n)
    };
    assert_eq!(svc("fallback")["checks"][0]["target"], format!("127.0.0.1:{port}"));
    assert_eq!(svc("fallback")["status"], "up");
    assert_eq!(svc("price$")["checks"][0]["target"], "^chatstack-none$", "the default, its $ kept");
    assert_eq!(svc("price$")["critical"], false, "a boolean stays a boolean");
    assert_eq!(svc("app")["checks"][0]["target"], format!("127.0.0.1:{port}"));
    assert_eq!(svc("app")["checks"][1]["target"], "^a$|$HOME", "other $ stay as written");

    // An unset NAME without a default: located at that value, in its file.
    let out = env.cmd_env(&["validate", "-c", &cfg(&env)], &[("CS_TEST_HOST", "h")]);
    out.code(3);
    let d = env.root().display();
    let line = 1 + std::fs::read_to_string(env.config_path())
        .expect("cfg")
        .lines()
        .position(|l| l.contains("port: ${"))
        .expect("port");
    for at in [
        format!("{d}/monitor.yml:{line}:11: services[0].port: ${{CS_TEST_PORT}} is not set"),
        format!(
            "{d}/conf.d/app.yml:4:30: services[0].checks[0].address: ${{CS_TEST_PORT}} is not set"
        ),
    ] {
        assert!(out.stderr.contains(&at), "{at}\n{}", out.stderr);
    }
}

#[test]
fn sighup_re_reads_every_file() {
    let tcp = TcpFixture::new();
    let env = Env::new();
    env.config(&format!(
        "interval: 100ms\ntimeout: 1s\nheal: {{ enabled: false }}\nservices:\n  - name: Web\n    port: {}\n",
        tcp.port()
    ));
    let d = Daemon::start(&env, &["run", "-c", &cfg(&env)], &[]);
    wait_until(Duration::from_secs(10), || d.get("/api/status").status == 200);
    assert_eq!(names(&d.get("/api/status").json()), ["Web"]);

    env.write(
        "conf.d/chatstack.yml",
        &format!("services:\n  - name: ChatStack\n    port: {}\n", tcp.port()),
    );
    d.signal(rustix::process::Signal::HUP);
    wait_until(Duration::from_secs(5), || {
        names(&d.get("/api/status").json()) == ["Web", "ChatStack"]
    });

    // A broken drop-in keeps the old config, and says where.
    env.write("conf.d/chatstack.yml", "services:\n  - name: ChatStack\n    port: nope\n");
    d.signal(rustix::process::Signal::HUP);
    wait_until(Duration::from_secs(5), || d.logged("keeping the old config").is_some());
    let line = d.logged("keeping the old config").unwrap_or_default();
    assert!(line.contains("conf.d/chatstack.yml:3:"), "{line}");

    std::fs::remove_file(env.path("conf.d/chatstack.yml")).expect("rm");
    d.signal(rustix::process::Signal::HUP);
    wait_until(Duration::from_secs(5), || names(&d.get("/api/status").json()) == ["Web"]);
}
