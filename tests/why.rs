//! The why, through the real binary with a fake `systemctl` and a fake
//! `journalctl` first on PATH: every field of the diagnosis, every way its
//! capture can fail, redaction everywhere the diagnosis goes, `diagnosis:
//! false`, restart outcomes, crash loops and flapping, in `check` and `run`.

use crate::util::{self, Daemon, Env, http_handler, wait_until};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const INVOCATION: &str = "0123456789abcdef0123456789abcdef";

/// A fake `systemctl` using shell builtins only (so a test may run with
/// PATH = bin/ alone): `show` prints `units/<unit>`, every call is logged.
fn fake_systemctl(env: &Env) {
    let d = env.root().display();
    env.fake_program(
        "systemctl",
        &format!(
            r#"#!/bin/sh
[ "$1" = __ready ] && exit 0
D='{d}'
echo "$*" >> "$D/systemctl.log"
case "$1" in
  show)
    # One block per unit, separated by an empty line (as systemd answers).
    shift; first=1
    while [ $# -gt 0 ]; do
      case "$1" in -p) shift 2; continue ;; -*) shift; continue ;; esac
      [ $first = 1 ] || echo; first=0
      while IFS= read -r l; do printf '%s\n' "$l"; done < "$D/units/$1"
      shift
    done
    exit 0 ;;
esac
exit 0
"#
        ),
    );
    std::fs::create_dir_all(env.path("units")).unwrap();
}

/// What the fake systemctl says of `unit` (every property the probe and the
/// diagnosis ask for).
fn unit(env: &Env, name: &str, active: &str, result: &str, code: &str, status: i32, n: u64) {
    let sub = if active == "active" { "running" } else { "failed" };
    env.write(
        &format!("units/{name}"),
        &format!(
            "Id={name}\nLoadState=loaded\nActiveState={active}\nSubState={sub}\nResult={result}\nExecMainCode={code}\nExecMainStatus={status}\nExecMainPID=812\nNRestarts={n}\nInvocationID={INVOCATION}\nMemoryCurrent=[not set]\n"
        ),
    );
}

/// A fake `journalctl` running `body` (sh), its arguments logged.
fn fake_journalctl(env: &Env, body: &str) {
    let d = env.root().display();
    env.fake_program(
        "journalctl",
        &format!("#!/bin/sh\n[ \"$1\" = __ready ] && exit 0\necho \"$*\" >> '{d}/journalctl.log'\n{body}\n"),
    );
}

const JOURNAL: &str = r#"printf '%s\n' '2026-12-07T03:12:00+0000 web[812]: starting' '2026-12-07T03:12:01+0000 web[812]: login password=hunter2 failed' '2026-12-07T03:12:01+0000 web[812]: <img src=x onerror=alert(1)>' '2026-12-07T03:12:02+0000 systemd[1]: web.service: Main process exited, code=exited, status=3/NOTIMPLEMENTED'"#;

/// A webhook receiver: keeps every request body, answers 200.
struct Hook {
    port: u16,
    bodies: Arc<Mutex<Vec<String>>>,
}

impl Hook {
    fn start() -> Hook {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let bodies: Arc<Mutex<Vec<String>>> = Arc::default();
        let keep = Arc::clone(&bodies);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut s) = stream else { continue };
                let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                let mut buf = Vec::new();
                let mut chunk = [0u8; 8192];
                while let Ok(n) = s.read(&mut chunk) {
                    if n == 0 {
                        break;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let len = text[..end]
                            .lines()
                            .find_map(|l| {
                                let (k, v) = l.split_once(':')?;
                                k.eq_ignore_ascii_case("content-length")
                                    .then(|| v.trim().parse::<usize>().ok())?
                            })
                            .unwrap_or(0);
                        if buf.len() >= end + 4 + len {
                            keep.lock().unwrap().push(text[end + 4..].to_string());
                            let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
                            break;
                        }
                    }
                }
            }
        });
        Hook { port, bodies }
    }

    fn events(&self) -> Vec<Value> {
        self.bodies.lock().unwrap().iter().filter_map(|b| serde_json::from_str(b).ok()).collect()
    }
}

/// One service `web` (unit web.service, an http check on `http`), a webhook.
fn config(env: &Env, http: &str, hook: u16, extra: &str, service_extra: &str) {
    env.config(&format!(
        "timeout: 2s\nheal: {{ enabled: false }}\n{extra}notify:\n  - type: webhook\n    url: http://127.0.0.1:{hook}/hook\nservices:\n  - name: web\n    unit: web.service\n    url: {http}\n{service_extra}"
    ));
}

/// Everything the database holds, as text (main file and WAL).
fn db_bytes(env: &Env) -> String {
    let mut all = Vec::new();
    for f in ["history.db", "history.db-wal"] {
        all.extend(std::fs::read(env.path(f)).unwrap_or_default());
    }
    String::from_utf8_lossy(&all).into_owned()
}

#[test]
fn a_failed_unit_gets_a_diagnosis_in_status_state_store_incidents_and_alerts() {
    let env = Env::new();
    fake_systemctl(&env);
    unit(&env, "web.service", "failed", "exit-code", "1", 3, 2);
    fake_journalctl(&env, JOURNAL);
    let site =
        http_handler(|_| util::Reply::new(502, "Bad Gateway\r\n<b>token: s3cr3t</b>\u{1b}[0m"));
    let hook = Hook::start();
    config(&env, &site.url("/health"), hook.port, "", "");
    let started = Instant::now();
    env.check(&[]).code(2);
    let wall = started.elapsed();

    let svc = env.service("web");
    let inc = &svc["incident"];
    assert!(inc["id"].as_i64().is_some(), "{inc}");
    assert!(inc["started_at"].is_string());
    let d = &inc["diagnosis"];
    assert_eq!(
        d["unit"],
        serde_json::json!({"name": "web.service", "active_state": "failed", "sub_state": "failed",
            "result": "exit-code", "exit_code": 3, "exit_signal": null, "n_restarts": 2, "memory_bytes": null})
    );
    assert_eq!(d["oom_kill"], false);
    assert_eq!(d["journal_error"], Value::Null);
    let journal: Vec<&str> =
        d["journal"].as_array().unwrap().iter().map(|l| l.as_str().unwrap()).collect();
    assert_eq!(
        journal,
        [
            "2026-12-07T03:12:00+0000 web[812]: starting",
            "2026-12-07T03:12:01+0000 web[812]: login [redacted] failed",
            "2026-12-07T03:12:01+0000 web[812]: <img src=x onerror=alert(1)>",
            "2026-12-07T03:12:02+0000 systemd[1]: web.service: Main process exited, code=exited, status=3/NOTIMPLEMENTED",
        ]
    );
    assert_eq!(d["http"]["status"], 502);
    // Control characters escaped, then the token and all after it redacted.
    assert_eq!(d["http"]["body"], "Bad Gateway\\r\\n<b>[redacted]");
    assert!(d["system"]["memory_used_pct"].as_f64().is_some_and(|m| (0.0..=100.0).contains(&m)));
    assert!(d["system"]["load_per_cpu"].as_f64().is_some());
    assert_eq!(d["system"]["disks_over_warn"], serde_json::json!([]));
    let top = d["top_memory"].as_array().unwrap();
    assert!((1..=5).contains(&top.len()), "{top:?}");
    assert!(top.windows(2).all(|w| w[0]["rss_bytes"].as_u64() >= w[1]["rss_bytes"].as_u64()));
    assert!(d["captured_at"].is_string());
    assert!(serde_json::to_vec(d).unwrap().len() <= 16 * 1024);
    assert!(wall < Duration::from_secs(10), "{wall:?}");

    // journalctl: the latest invocation, by id, no shell.
    let jlog = env.read("journalctl.log");
    assert!(
        jlog.contains(&format!("_SYSTEMD_INVOCATION_ID={INVOCATION} + INVOCATION_ID={INVOCATION}")),
        "{jlog}"
    );
    assert!(jlog.contains("--lines 20"), "{jlog}");
    // One systemctl show in all, the probe's, with every property the
    // diagnosis needs: the diagnosis reads the unit as the probe saw it.
    let slog = env.read("systemctl.log");
    assert_eq!(slog.lines().count(), 1, "{slog}");
    assert!(
        slog.starts_with(&format!(
            "show -p {} web.service",
            chatstack_status::probe::units::PROPERTIES
        )),
        "{slog}"
    );

    // The webhook's down event carries the same diagnosis.
    wait_until(Duration::from_secs(5), || !hook.events().is_empty());
    let down = hook.events().into_iter().find(|e| e["event"] == "down").expect("down event");
    assert_eq!(&down["diagnosis"], d);

    // The store, the API's JSON and `incidents --id`.
    let cfg = env.config_path().display().to_string();
    let list = env.cmd(&["incidents", "-c", &cfg, "--format", "json"]).code(0).json();
    assert_eq!(&list["incidents"][0]["diagnosis"], d);
    let id = inc["id"].as_i64().unwrap().to_string();
    let one = env.cmd(&["incidents", "-c", &cfg, "--id", &id, "--format", "json"]).code(0).json();
    assert_eq!(&one["diagnosis"], d);
    let text = env.cmd(&["incidents", "-c", &cfg, "--id", &id]).code(0).stdout.clone();
    for want in [
        "result exit-code, exit code 3",
        "login [redacted] failed",
        "http: HTTP 502",
        "top memory:",
    ] {
        assert!(text.contains(want), "{want:?} not in\n{text}");
    }
    let missing = env.cmd(&["incidents", "-c", &cfg, "--id", "999"]);
    assert_eq!(missing.code, 3);
    assert!(missing.stderr.contains("no incident with id 999"), "{}", missing.stderr);
    let report = env.cmd(&["report", "-c", &cfg, "--format", "json"]).code(0).json();
    assert_eq!(&report["incidents"][0]["diagnosis"], d);
    // The text of `check` names the unit's result.
    let again = env.check(&[]);
    assert!(again.stdout.contains("unit: exit-code, exit 3"), "{}", again.stdout);

    // Captured once per incident: the second run did not run journalctl again.
    assert_eq!(env.read("journalctl.log").lines().count(), 1);
    assert_eq!(&env.service("web")["incident"]["diagnosis"], d);

    // The secrets appear nowhere.
    for (what, text) in [
        ("status", env.read("status.json")),
        ("state", env.read("state.json")),
        ("store", db_bytes(&env)),
        ("incidents", text),
        ("webhook", hook.bodies.lock().unwrap().join("\n")),
    ] {
        assert!(!text.contains("hunter2") && !text.contains("s3cr3t"), "a secret in the {what}");
    }
}

/// A fake journal as systemd 252 writes it for `echo …; exit 3`: the main
/// process (pid 812) exited before journald read its line, so journald
/// could not read its invocation id from its cgroup: the line carries only
/// `_SYSTEMD_UNIT` (from the stream) and `_PID`. The fake prints each line
/// whose fields one of its match groups names, in the journal's order.
fn fake_journal_with_an_untagged_last_line(env: &Env) {
    fake_journalctl(
        env,
        &format!(
            r#"a=" $* "
read -r b < /proc/sys/kernel/random/boot_id; b=$(echo "$b" | tr -d -)
inv=no; pid=no
case "$a" in *" _SYSTEMD_INVOCATION_ID={INVOCATION} + INVOCATION_ID={INVOCATION} "*) inv=yes ;; esac
case "$a" in *" + _SYSTEMD_UNIT=web.service _PID=812 _BOOT_ID=$b "*) pid=yes ;; esac
[ $inv = yes ] && echo '2026-12-07T03:12:00+0000 systemd[1]: Started web.service.'
[ $pid = yes ] && echo '2026-12-07T03:12:01+0000 web[812]: fatal: the last words before exit 3'
[ $inv = yes ] && echo '2026-12-07T03:12:01+0000 systemd[1]: web.service: Main process exited, code=exited, status=3/NOTIMPLEMENTED'
exit 0"#
        ),
    );
}

#[test]
fn the_main_process_last_line_without_an_invocation_id_is_in_the_journal() {
    let env = Env::new();
    fake_systemctl(&env);
    // `unit: web`: systemd's own name (`Id`) is what the journal knows.
    unit(&env, "web", "failed", "exit-code", "1", 3, 0);
    env.write("units/web", &env.read("units/web").replace("Id=web\n", "Id=web.service\n"));
    fake_journal_with_an_untagged_last_line(&env);
    env.config("timeout: 2s\nheal: { enabled: false }\nservices:\n  - name: web\n    unit: web\n");
    env.check(&[]).code(2);
    let d = &env.service("web")["incident"]["diagnosis"];
    assert_eq!(d["journal_error"], Value::Null, "{d}");
    assert_eq!(
        d["journal"],
        serde_json::json!([
            "2026-12-07T03:12:00+0000 systemd[1]: Started web.service.",
            "2026-12-07T03:12:01+0000 web[812]: fatal: the last words before exit 3",
            "2026-12-07T03:12:01+0000 systemd[1]: web.service: Main process exited, code=exited, status=3/NOTIMPLEMENTED",
        ]),
        "journalctl was asked: {}",
        env.read("journalctl.log")
    );
}

/// A fake `systemctl` whose `restart` starts a new invocation: the unit is
/// then active, with a new id and main pid.
fn fake_systemctl_whose_restart_starts_a_new_invocation(env: &Env) {
    fake_systemctl(env);
    let d = env.root().display();
    env.fake_program(
        "systemctl",
        &format!(
            r#"#!/bin/sh
[ "$1" = __ready ] && exit 0
D='{d}'
echo "$*" >> "$D/systemctl.log"
for unit; do :; done
case "$1" in
  show) while IFS= read -r l; do printf '%s
' "$l"; done < "$D/units/$unit" ;;
  restart) while IFS= read -r l; do printf '%s
' "$l"; done < "$D/units/$unit.restarted" > "$D/units/$unit" ;;
esac
exit 0
"#
        ),
    );
}

#[test]
fn the_diagnosis_is_of_the_failed_invocation_not_of_the_one_our_restart_started() {
    const NEW: &str = "fedcba9876543210fedcba9876543210";
    let env = Env::new();
    fake_systemctl_whose_restart_starts_a_new_invocation(&env);
    unit(&env, "web.service", "failed", "exit-code", "1", 3, 0);
    env.write(
        "units/web.service.restarted",
        &format!("Id=web.service\nLoadState=loaded\nActiveState=active\nSubState=running\nResult=success\nExecMainCode=0\nExecMainStatus=0\nExecMainPID=900\nNRestarts=0\nInvocationID={NEW}\nMemoryCurrent=4096\n"),
    );
    fake_journal_with_an_untagged_last_line(&env);
    // after_failures 1: the restart runs in the cycle the incident opens,
    // before the capture (which runs after the status file is written).
    env.config("timeout: 2s\nheal: { after_failures: 1, grace: 0s }\nservices:\n  - name: web\n    unit: web.service\n");
    env.check(&[]).code(2);
    assert_eq!(env.systemctl_actions(), ["restart web.service"]);
    let d = &env.service("web")["incident"]["diagnosis"];
    assert_eq!(
        (&d["unit"]["active_state"], &d["unit"]["result"], &d["unit"]["exit_code"]),
        (&"failed".into(), &"exit-code".into(), &3.into()),
        "{d}"
    );
    let jlog = env.read("journalctl.log");
    assert!(jlog.contains(&format!("INVOCATION_ID={INVOCATION}")) && !jlog.contains(NEW), "{jlog}");
    assert!(
        d["journal"]
            .as_array()
            .is_some_and(|j| j.iter().any(|l| l.as_str().unwrap().contains("the last words"))),
        "{d}"
    );
}

#[test]
fn a_second_check_does_not_wait_for_the_first_ones_capture() {
    let env = Env::new();
    fake_systemctl(&env);
    unit(&env, "web.service", "failed", "exit-code", "1", 3, 0);
    // journalctl answers only once the test lets it (or is killed at the
    // capture's 2 s deadline).
    let release = env.path("release");
    fake_journalctl(
        &env,
        &format!(
            "while [ ! -e '{}' ]; do sleep 0.02; done\necho '2026-12-07T03:12:01+0000 web[812]: released'",
            release.display()
        ),
    );
    env.config(
        "timeout: 2s\nheal: { enabled: false }\nservices:\n  - name: web\n    unit: web.service\n",
    );
    let cfg = env.config_path().display().to_string();
    let mut first = env
        .command(&["check", "-c", &cfg], &[])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // The first check is in its capture once it called journalctl.
    wait_until(Duration::from_secs(15), || env.path("journalctl.log").exists());
    let capture_started = Instant::now();
    let second = env.check(&[]);
    let waited = capture_started.elapsed();
    std::fs::write(&release, "").unwrap();
    wait_until(Duration::from_secs(10), || first.try_wait().unwrap().is_some());
    assert_eq!(first.wait().unwrap().code(), Some(2));
    second.code(2);
    // The second check ended while the first one's journalctl still waited
    // for the release: the first capture got its line, not a timeout.
    let d = &env.service("web")["incident"]["diagnosis"];
    assert_eq!(
        d["journal"],
        serde_json::json!(["2026-12-07T03:12:01+0000 web[812]: released"]),
        "the second check took {waited:?}: {d}"
    );
    // Kept in the state and the store too, though the second check saved
    // both (and wrote a newer status file) while the first one captured.
    assert_eq!(&env.state()["services"]["web"]["incident"]["diagnosis"], d);
    let inc = env.cmd(&["incidents", "-c", &cfg, "--format", "json"]).code(0).json();
    assert_eq!(&inc["incidents"][0]["diagnosis"], d);
    assert_eq!(env.read("journalctl.log").lines().count(), 1, "captured once");
}

#[test]
fn incidents_without_a_capture_keep_their_ids_beside_one_with_a_capture() {
    let env = Env::new();
    fake_systemctl(&env);
    unit(&env, "web.service", "failed", "exit-code", "1", 3, 0);
    unit(&env, "quiet.service", "failed", "exit-code", "1", 3, 0);
    fake_journalctl(&env, JOURNAL);
    env.config("timeout: 2s\nheal: { enabled: false }\nservices:\n  - name: web\n    unit: web.service\n  - name: quiet\n    unit: quiet.service\n    diagnosis: false\n");
    env.check(&[]).code(2);
    let state = env.state();
    for name in ["web", "quiet"] {
        let inc = &state["services"][name]["incident"];
        assert!(inc["id"].as_i64().is_some(), "{name}: {inc}");
        assert_eq!(&env.service(name)["incident"]["id"], &inc["id"], "{name}");
    }
    assert!(state["services"]["web"]["incident"]["diagnosis"].is_object());
    assert_eq!(state["services"]["quiet"]["incident"]["diagnosis"], Value::Null);
}

/// Runs one `check` with `journalctl` doing `body` (None: no journalctl on
/// PATH at all) and returns the service's diagnosis and the run's wall time.
fn capture_with(body: Option<&str>) -> (Value, Duration) {
    let env = Env::new();
    fake_systemctl(&env);
    unit(&env, "web.service", "failed", "exit-code", "1", 1, 0);
    if let Some(b) = body {
        fake_journalctl(&env, b);
    }
    let site = http_handler(|_| util::Reply::new(500, "no"));
    let hook = Hook::start();
    config(&env, &site.url("/"), hook.port, "", "");
    let cfg = env.config_path().display().to_string();
    let bin = env.path("bin").display().to_string();
    let started = Instant::now();
    // PATH is bin/ alone: a missing journalctl is missing.
    let out = env.cmd_env(&["check", "-c", &cfg], &[("PATH", &bin)]);
    let wall = started.elapsed();
    assert_eq!(out.code, 2, "{out:#?}");
    (env.service("web")["incident"]["diagnosis"].clone(), wall)
}

#[test]
fn every_failure_of_journalctl_leaves_journal_null_with_the_reason() {
    let cases: [(Option<&str>, &str); 5] = [
        (None, "journalctl not found on PATH"),
        (Some("exec /bin/sleep 30"), "journalctl did not answer in time"),
        (
            Some("echo 'Failed to open journal' >&2; exit 1"),
            "journalctl exited with 1: Failed to open journal",
        ),
        (
            Some(
                "i=0; while [ $i -lt 40000 ]; do echo 'a line of the journal that goes on and on and on and on'; i=$((i+1)); done",
            ),
            "journalctl printed more than 256 KiB",
        ),
        (Some(r"printf 'ok\n\377\376 broken\n'"), "journalctl printed bytes that are not UTF-8"),
    ];
    for (body, why) in cases {
        let (d, wall) = capture_with(body);
        assert_eq!(d["journal"], Value::Null, "{body:?}: {d}");
        let err = d["journal_error"].as_str().unwrap_or_default();
        assert!(err.starts_with(why), "{body:?}: {err}");
        // The rest of the diagnosis is there all the same.
        assert_eq!(d["unit"]["exit_code"], 1, "{body:?}");
        assert_eq!(d["http"]["status"], 500, "{body:?}");
        // Bounded: the hanging journalctl costs at most the 2 s budget.
        assert!(wall < Duration::from_secs(6), "{body:?}: {wall:?}");
    }
}

#[test]
fn an_oom_kill_is_named_by_result_or_by_a_journal_line() {
    let env = Env::new();
    fake_systemctl(&env);
    unit(&env, "web.service", "failed", "oom-kill", "2", 9, 0);
    fake_journalctl(
        &env,
        "echo 'web.service: A process of this unit has been killed by the OOM killer.'",
    );
    let site = http_handler(|_| util::Reply::new(200, "ok"));
    let hook = Hook::start();
    config(&env, &site.url("/"), hook.port, "diagnosis: { journal_lines: 3 }\n", "");
    env.check(&[]).code(2);
    let d = env.service("web")["incident"]["diagnosis"].clone();
    assert_eq!(
        (d["oom_kill"].clone(), d["unit"]["exit_signal"].clone()),
        (true.into(), "KILL".into())
    );
    assert_eq!(d["unit"]["exit_code"], Value::Null);
    assert_eq!(d["http"], Value::Null, "no http check failed");
    assert!(env.read("journalctl.log").contains("--lines 3"));

    // A journal line alone says so too (the unit's Result may be plain exit-code).
    let env = Env::new();
    fake_systemctl(&env);
    unit(&env, "web.service", "failed", "exit-code", "1", 137, 0);
    fake_journalctl(&env, "echo 'kernel: Out of memory: Killed process 812 (python3)'");
    config(&env, &site.url("/"), hook.port, "", "");
    env.check(&[]).code(2);
    assert_eq!(env.service("web")["incident"]["diagnosis"]["oom_kill"], true);
}

#[test]
fn diagnosis_false_and_a_custom_redaction() {
    let env = Env::new();
    fake_systemctl(&env);
    unit(&env, "web.service", "failed", "exit-code", "1", 1, 0);
    fake_journalctl(&env, JOURNAL);
    let site = http_handler(|_| util::Reply::new(200, "ok"));
    let hook = Hook::start();
    config(&env, &site.url("/"), hook.port, "", "    diagnosis: false\n");
    env.check(&[]).code(2);
    let inc = env.service("web")["incident"].clone();
    assert!(inc["id"].as_i64().is_some() && inc["started_at"].is_string(), "{inc}");
    assert_eq!(inc["diagnosis"], Value::Null);
    assert_eq!(env.read("journalctl.log"), "", "journalctl never ran");
    assert_eq!(env.read("systemctl.log").lines().count(), 1, "the probe's show alone");

    // `redact` replaces the default list: here only "starting" goes.
    let env = Env::new();
    fake_systemctl(&env);
    unit(&env, "web.service", "failed", "exit-code", "1", 1, 0);
    fake_journalctl(&env, JOURNAL);
    config(&env, &site.url("/"), hook.port, "diagnosis: { redact: ['start\\w+'] }\n", "");
    env.check(&[]).code(2);
    let j = env.service("web")["incident"]["diagnosis"]["journal"].clone();
    assert_eq!(j[0], "2026-12-07T03:12:00+0000 web[812]: [redacted]");
    assert!(j[1].as_str().unwrap().contains("password=hunter2"));

    // Out of range: a located config error, exit 3.
    config(&env, &site.url("/"), hook.port, "diagnosis: { journal_lines: 201 }\n", "");
    let out = env.check(&[]);
    assert_eq!(out.code, 3);
    assert!(
        out.stderr.contains("monitor.yml:") && out.stderr.contains("at most 200"),
        "{}",
        out.stderr
    );
}

#[test]
fn an_up_service_has_no_incident_and_no_capture_runs() {
    let env = Env::new();
    fake_systemctl(&env);
    unit(&env, "web.service", "active", "success", "0", 0, 0);
    fake_journalctl(&env, JOURNAL);
    let site = http_handler(|_| util::Reply::new(200, "ok"));
    let hook = Hook::start();
    config(&env, &site.url("/"), hook.port, "", "");
    env.check(&[]).code(0);
    assert_eq!(env.service("web")["incident"], Value::Null);
    assert_eq!(env.status()["flapping"], false);
    assert_eq!(env.read("journalctl.log"), "");
}

#[test]
fn restarts_say_whether_they_helped() {
    for (after, want) in [("failed", "still_down"), ("active", "recovered")] {
        let env = Env::new();
        fake_systemctl(&env);
        unit(&env, "web.service", "failed", "exit-code", "1", 1, 0);
        fake_journalctl(&env, "true");
        let hook = Hook::start();
        env.config(&format!(
            "heal: {{ after_failures: 1, grace: 0s, max_restarts: 1 }}\nnotify:\n  - type: webhook\n    url: http://127.0.0.1:{}/hook\nservices:\n  - name: web\n    unit: web.service\n",
            hook.port
        ));
        env.check(&[]).code(2);
        let r = &env.service("web")["restarts"][0];
        assert_eq!((r["ok"].clone(), r["outcome"].clone()), (true.into(), "pending".into()));
        unit(&env, "web.service", after, "success", "1", 0, 0);
        let out = env.check(&[]);
        let svc = env.service("web");
        assert_eq!(svc["restarts"][0]["outcome"], want, "{svc}");
        assert!(out.stdout.contains(want), "{}", out.stdout);
        let cfg = env.config_path().display().to_string();
        let inc = env.cmd(&["incidents", "-c", &cfg, "--format", "json"]).code(0).json();
        assert_eq!(inc["incidents"][0]["restarts"][0]["outcome"], want, "{inc}");
    }
}

#[test]
fn a_unit_systemd_keeps_restarting_is_a_crash_loop_even_while_active() {
    let env = Env::new();
    fake_systemctl(&env);
    fake_journalctl(&env, "true");
    let hook = Hook::start();
    env.config(&format!(
        "heal: {{ enabled: false }}\ncrash_loop: {{ restarts: 3, within: 10m }}\nnotify:\n  - type: webhook\n    url: http://127.0.0.1:{}/hook\nservices:\n  - name: web\n    unit: web.service\n",
        hook.port
    ));
    for n in 0..3 {
        unit(&env, "web.service", "active", "success", "1", 0, n);
        env.check(&[]).code(0);
    }
    unit(&env, "web.service", "active", "success", "1", 0, 3);
    let out = env.check(&[]);
    assert_eq!(out.code, 2, "{}", out.stdout);
    let c = &env.service("web")["checks"][0];
    assert_eq!((c["status"].clone(), c["reason"].clone()), ("down".into(), "crash_loop".into()));
    assert!(c["detail"].as_str().unwrap().contains("3 restarts by systemd within 10m"), "{c}");
    let state = env.state();
    assert!(state["services"]["web"]["unit_restarts"].as_array().is_some_and(|s| s.len() >= 4));
}

#[test]
fn flapping_raises_one_event_then_flapping_ended() {
    let env = Env::new();
    fake_systemctl(&env);
    fake_journalctl(&env, "true");
    let hook = Hook::start();
    env.config(&format!(
        "heal: {{ enabled: false }}\nnotify:\n  - type: webhook\n    url: http://127.0.0.1:{}/hook\nservices:\n  - name: web\n    unit: web.service\n    flap: {{ changes: 3, window: 4 }}\n",
        hook.port
    ));
    let states =
        ["active", "failed", "active", "failed", "active", "failed", "failed", "failed", "failed"];
    let mut flags = Vec::new();
    for s in states {
        unit(
            &env,
            "web.service",
            s,
            if s == "active" { "success" } else { "exit-code" },
            "1",
            1,
            0,
        );
        env.check(&[]);
        flags.push(env.service("web")["flapping"].as_bool().unwrap());
        assert_eq!(env.status()["flapping"], flags[flags.len() - 1]);
    }
    assert_eq!(flags, [false, false, false, true, true, true, true, true, false]);
    wait_until(Duration::from_secs(5), || {
        hook.events().iter().any(|e| e["event"] == "flapping_ended")
    });
    let kinds: Vec<String> =
        hook.events().iter().map(|e| e["event"].as_str().unwrap().to_string()).collect();
    assert_eq!(kinds, ["down", "up", "flapping", "flapping_ended"], "{kinds:?}");
    let ended = hook.events().into_iter().last().unwrap();
    assert_eq!(ended["status"], "down");
}

#[test]
fn the_daemon_captures_too_and_serves_it() {
    let env = Env::new();
    fake_systemctl(&env);
    unit(&env, "web.service", "failed", "exit-code", "1", 3, 0);
    fake_journalctl(&env, JOURNAL);
    let hook = Hook::start();
    env.config(&format!(
        "interval: 200ms\nheal: {{ enabled: false }}\nnotify:\n  - type: webhook\n    url: http://127.0.0.1:{}/hook\nservices:\n  - name: web\n    unit: web.service\n",
        hook.port
    ));
    let cfg = env.config_path().display().to_string();
    let d = Daemon::start(&env, &["run", "-c", &cfg], &[]);
    wait_until(Duration::from_secs(10), || {
        d.get("/api/status").json()["services"][0]["incident"]["diagnosis"]["unit"]["exit_code"]
            == 3
    });
    let api = d.get("/api/incidents").json();
    assert_eq!(api["incidents"][0]["diagnosis"]["unit"]["exit_code"], 3, "{api}");
    assert_eq!(env.service("web")["incident"]["diagnosis"]["unit"]["exit_code"], 3);
    wait_until(Duration::from_secs(5), || hook.events().iter().any(|e| e["event"] == "down"));
    let down = hook.events().into_iter().find(|e| e["event"] == "down").unwrap();
    assert_eq!(down["diagnosis"]["unit"]["exit_code"], 3);
    let all = format!("{api}{}", hook.bodies.lock().unwrap().join(""));
    assert!(!all.contains("hunter2"));
}
