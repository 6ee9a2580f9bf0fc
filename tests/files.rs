//! The status and state files: shape, atomicity, modes, recovery, locking.

use crate::util::{Behaviour, Env, TcpFixture, http_fixture, read_json, wait_until};
use serde_json::Value;
use std::collections::BTreeSet;
use std::fs::{self, File};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::time::{Duration, Instant};

fn keys(v: &Value) -> BTreeSet<&str> {
    v.as_object().map(|o| o.keys().map(String::as_str).collect()).unwrap_or_default()
}

fn set<'a>(k: &[&'a str]) -> BTreeSet<&'a str> {
    k.iter().copied().collect()
}

#[track_caller]
fn assert_utc(v: &Value) {
    let re = regex::Regex::new(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$").unwrap();
    let s = v.as_str().unwrap_or_else(|| panic!("not a time string: {v}"));
    assert!(re.is_match(s), "not RFC 3339 UTC: {s}");
    let t = chatstack_status::time::Timestamp::parse(s).expect("parses");
    let now = chatstack_status::time::Timestamp::now();
    assert!(
        now.since(t) < Duration::from_secs(120) && t.since(now) < Duration::from_secs(5),
        "{s} is not now"
    );
}

#[track_caller]
fn assert_opt_num(v: &Value) {
    assert!(v.is_null() || v.as_f64().is_some_and(|n| n >= 0.0), "expected null or a number: {v}");
}

#[test]
fn status_file_has_the_spec_shape() {
    let env = Env::new();
    env.fake_systemctl();
    env.unit("web.service", "failed", "failed", "exit-code");
    let ok = http_fixture(Behaviour::Ok("ok".into()));
    env.config(&format!(
        "timeout: 2s\nhistory: 3\nheal: {{after_failures: 1, grace: 0s}}\nservices:\n\
         \x20 - name: api\n    url: '{}'\n\
         \x20 - name: web\n    critical: false\n    unit: web.service\n",
        ok.url("/")
    ));
    for _ in 0..5 {
        env.check(&[]).code(1);
    }
    let doc = env.status();
    assert_eq!(
        keys(&doc),
        set(&[
            "schema",
            "generated_at",
            "host",
            "overall",
            "duration_ms",
            "flapping",
            "services",
            "history",
            "system"
        ])
    );
    assert_eq!(doc["schema"], 1);
    assert_utc(&doc["generated_at"]);
    assert!(doc["host"].as_str().is_some_and(|h| !h.is_empty()));
    assert_eq!(doc["overall"], "degraded");
    assert!(doc["duration_ms"].as_f64().is_some_and(|d| d >= 0.0));
    let services = doc["services"].as_array().unwrap();
    assert_eq!(
        services.iter().map(|s| s["name"].as_str().unwrap()).collect::<Vec<_>>(),
        ["api", "web"]
    );
    for s in services {
        // The SPEC's keys; an extra one (e.g. `restarts_total`) is allowed.
        assert!(
            set(&[
                "name",
                "status",
                "critical",
                "unit",
                "since",
                "consecutive_failures",
                "heal_suspended",
                "muted_until",
                "restarts",
                "checks",
                "history"
            ])
            .is_subset(&keys(s)),
            "{s:#}"
        );
        assert!(matches!(s["status"].as_str(), Some("up" | "degraded" | "down")));
        assert!(s["critical"].is_boolean());
        assert!(s["unit"].is_null() || s["unit"].is_string());
        assert_utc(&s["since"]);
        assert!(s["consecutive_failures"].is_u64());
        assert!(s["heal_suspended"].is_boolean());
        assert!(s["muted_until"].is_null());
        for c in s["checks"].as_array().unwrap() {
            // `cert_expires_at` (SPEC Part 2): null on checks without a certificate.
            assert_eq!(
                keys(c),
                set(&[
                    "type",
                    "target",
                    "status",
                    "reason",
                    "latency_ms",
                    "detail",
                    "cert_expires_at"
                ])
            );
            assert!(c["cert_expires_at"].is_null(), "{c:#}");
            assert!(matches!(c["status"].as_str(), Some("up" | "degraded" | "down" | "unknown")));
            assert_eq!(c["reason"].is_null(), c["status"] == "up", "{c:#}");
            assert_opt_num(&c["latency_ms"]);
            assert!(c["detail"].is_string() && c["target"].is_string());
        }
        // history: capped at `history`, oldest first.
        let h = s["history"].as_array().unwrap();
        assert_eq!(h.len(), 3, "{s:#}");
        for e in h {
            assert_eq!(keys(e), set(&["at", "status", "latency_ms"]));
            assert_utc(&e["at"]);
            assert_opt_num(&e["latency_ms"]);
        }
        let at: Vec<_> = h
            .iter()
            .map(|e| chatstack_status::time::Timestamp::parse(e["at"].as_str().unwrap()).unwrap())
            .collect();
        assert!(at.windows(2).all(|w| w[0] < w[1]), "history not oldest first: {h:#?}");
        assert_eq!(s["history"].as_array().unwrap().last().unwrap()["at"], doc["generated_at"]);
    }
    let api = &services[0];
    assert_eq!(api["unit"], Value::Null);
    assert!(api["checks"][0]["latency_ms"].as_f64().is_some());
    let web = &services[1];
    assert_eq!(web["unit"], "web.service");
    assert_eq!(web["status"], "down");
    assert_eq!(web["checks"][0]["latency_ms"], Value::Null);
    // Restarts: one per run with after_failures 1 and no grace.
    let r = web["restarts"].as_array().unwrap();
    assert_eq!(r.len(), 3, "max_restarts 3: {web:#}");
    for x in r {
        assert!(set(&["at", "ok", "detail"]).is_subset(&keys(x)), "{x:#}");
        assert_utc(&x["at"]);
        assert_eq!(x["ok"], true);
    }
    assert_eq!(web["heal_suspended"], true);
}

#[test]
fn status_file_is_0640_and_its_directory_is_created() {
    let env = Env::new();
    let l = TcpFixture::new();
    let status = env.path("deep/er/status.json");
    let state = env.path("other/state.json");
    env.config(&format!(
        "status_file: {status:?}\nstate_file: {state:?}\nservices:\n  - name: a\n    port: {}\n",
        l.port()
    ));
    env.check(&[]).code(0);
    let mode = fs::metadata(&status).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o640, "status file mode {mode:o}");
    let mode = fs::metadata(&state).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o640, "state file mode {mode:o}");
    read_json(&status);
    read_json(&state);
    // No temp files left behind.
    let left: Vec<_> = fs::read_dir(status.parent().unwrap())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, ["status.json"]);
}

#[test]
fn unwritable_status_directory_is_exit_3_with_a_clear_message() {
    let env = Env::new();
    let l = TcpFixture::new();
    // A regular file where the directory should be: fails even for root.
    env.write("not-a-dir", "");
    let status = env.path("not-a-dir/status.json");
    env.config(&format!(
        "status_file: {status:?}\nservices:\n  - name: a\n    port: {}\n",
        l.port()
    ));
    let out = env.check(&[]);
    out.code(3);
    assert!(out.stderr.contains(&status.display().to_string()), "{}", out.stderr);
    assert!(out.stderr.contains("status file"), "{}", out.stderr);

    if rustix::process::geteuid().is_root() {
        return; // root writes through mode bits
    }
    let dir = env.path("ro");
    fs::create_dir(&dir).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o500)).unwrap();
    let status = dir.join("status.json");
    env.config(&format!(
        "status_file: {status:?}\nservices:\n  - name: a\n    port: {}\n",
        l.port()
    ));
    let out = env.check(&[]);
    out.code(3);
    assert!(out.stderr.contains("status file"), "{}", out.stderr);
}

#[test]
fn corrupt_or_truncated_state_is_moved_aside_and_the_run_goes_on() {
    for (i, bad) in
        ["{\"schema\": 1, \"services\": {\"a\": {\"consecutive_fail", "\u{0}\u{1}garbage", ""]
            .iter()
            .enumerate()
    {
        let env = Env::new();
        let l = TcpFixture::new();
        env.config(&format!("services:\n  - name: a\n    port: {}\n", l.port()));
        fs::write(env.state_path(), bad).unwrap();
        let out = env.check(&[]);
        out.code(0);
        assert!(out.stderr.contains("corrupt"), "case {i}: {}", out.stderr);
        let aside: Vec<_> = fs::read_dir(env.root())
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("state.json.corrupt-"))
            .collect();
        assert_eq!(aside.len(), 1, "case {i}: {aside:?}");
        assert!(out.stderr.contains(&aside[0].display().to_string()), "{}", out.stderr);
        assert_eq!(fs::read_to_string(&aside[0]).unwrap(), *bad);
        assert_eq!(env.state()["services"]["a"]["status"], "up");
    }
}

#[test]
fn a_held_lock_makes_check_wait_then_exit_3() {
    let env = Env::new();
    let l = TcpFixture::new();
    env.config(&format!("services:\n  - name: a\n    port: {}\n", l.port()));
    let lock = File::create(env.path("state.json.lock")).unwrap();
    lock.lock().unwrap();
    let started = Instant::now();
    let out = env.check(&[]);
    let waited = started.elapsed();
    out.code(3);
    assert!(out.stderr.contains("lock"), "{}", out.stderr);
    assert!(out.stderr.contains("state.json.lock"), "{}", out.stderr);
    assert!(waited >= Duration::from_millis(1500), "gave up after {waited:?}");
    assert!(waited < Duration::from_secs(5), "waited {waited:?}");
    assert!(!env.status_path().exists(), "wrote the status without the lock");

    // Released while it waits: the check goes on.
    drop(lock);
    let env = Env::new();
    env.config(&format!("services:\n  - name: a\n    port: {}\n", l.port()));
    let lock = File::create(env.path("state.json.lock")).unwrap();
    lock.lock().unwrap();
    let cfg = env.config_path();
    let c = env.command(&["check", "-c", cfg.to_str().unwrap()], &[]);
    let started = Instant::now();
    let child = std::thread::spawn(move || crate::util::run_bin(c));
    // The hold time itself is what is tested: the check must outwait it.
    std::thread::sleep(Duration::from_millis(600));
    drop(lock);
    let out = child.join().unwrap();
    crate::util::assert_no_panic(&out);
    out.code(0);
    assert!(started.elapsed() >= Duration::from_millis(600));
    env.status();
}

#[test]
fn concurrent_checks_never_leave_a_file_that_fails_to_parse() {
    let env = Env::new();
    let l = TcpFixture::new();
    let ok = http_fixture(Behaviour::Ok("ok".into()));
    env.config(&format!(
        "history: 5\nservices:\n  - name: a\n    port: {}\n  - name: b\n    url: '{}'\n",
        l.port(),
        ok.url("/")
    ));
    let cfg = env.config_path();
    let status = env.status_path();
    let state = env.state_path();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // A reader that parses both files continuously while the writers run.
    let reader = {
        let (status, state, stop) = (status.clone(), state.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut reads = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                for p in [&status, &state] {
                    if let Ok(text) = fs::read_to_string(p) {
                        serde_json::from_str::<Value>(&text)
                            .unwrap_or_else(|e| panic!("{} torn ({e}): {text}", p.display()));
                        reads += 1;
                    }
                }
            }
            reads
        })
    };
    for round in 0..3 {
        let runs: Vec<_> = (0..8)
            .map(|_| {
                let c = env.command(&["check", "-c", cfg.to_str().unwrap()], &[]);
                std::thread::spawn(move || crate::util::run_bin(c))
            })
            .collect();
        let outs: Vec<_> = runs.into_iter().map(|r| r.join().unwrap()).collect();
        let mut ok_runs = 0;
        for o in &outs {
            crate::util::assert_no_panic(o);
            match o.code {
                0 => ok_runs += 1,
                3 => assert!(o.stderr.contains("lock"), "round {round}: {o:#?}"),
                _ => panic!("round {round}: {o:#?}"),
            }
        }
        assert!(ok_runs >= 1, "round {round}: no run got through");
        read_json(&status);
        let st = read_json(&state);
        assert_eq!(st["services"]["a"]["status"], "up");
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let reads = reader.join().expect("a reader saw a torn file");
    assert!(reads > 0);
    let h = env.service("a")["history"].as_array().unwrap().len();
    assert_eq!(h, 5);
}

#[test]
fn env_overrides_the_file_paths() {
    let env = Env::new();
    let l = TcpFixture::new();
    env.config(&format!("services:\n  - name: a\n    port: {}\n", l.port()));
    let status = env.path("env/status.json");
    let state = env.path("env/state.json");
    let cfg = env.config_path();
    env.cmd_env(
        &["check", "-c", cfg.to_str().unwrap()],
        &[
            ("CHATSTACK_STATUS_FILE", status.to_str().unwrap()),
            ("CHATSTACK_STATE_FILE", state.to_str().unwrap()),
        ],
    )
    .code(0);
    read_json(&status);
    read_json(&state);
    assert!(!env.status_path().exists());
    assert!(!env.state_path().exists());
}

// ----- hardening: owners, odd files, leftovers ------------------------------

/// The uid (and gid) playing the daemon's user when a test runs as root.
const DAEMON_UID: u32 = 65534;

/// These tests replay what `sudo chatstack-status …` does to the daemon's
/// files, so they need root (CI runs as root): without it they fail, loudly.
#[track_caller]
fn require_root() {
    assert!(
        rustix::process::geteuid().is_root(),
        "this test replays root editing the daemon's files: run the suite as root (CI does)"
    );
}

#[track_caller]
fn owner_and_mode(p: &std::path::Path) -> (u32, u32) {
    use std::os::unix::fs::MetadataExt;
    let m = fs::metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    (m.uid(), m.mode() & 0o7777)
}

/// `uid:mode` with the mode in octal.
fn shown((uid, mode): (u32, u32)) -> String {
    format!("{uid}:{mode:o}")
}

/// Gives `dir` (and everything the binary must write in it) to the daemon's user.
fn give_to_daemon_user(p: &std::path::Path) {
    std::os::unix::fs::chown(p, Some(DAEMON_UID), Some(DAEMON_UID)).expect("chown");
}

/// `cmd` as the daemon's user.
fn as_daemon_user(mut c: std::process::Command) -> std::process::Command {
    use std::os::unix::process::CommandExt;
    c.uid(DAEMON_UID).gid(DAEMON_UID);
    c
}

#[test]
fn root_runs_keep_the_owner_and_mode_of_the_daemons_files() {
    require_root();
    let env = Env::new();
    let l = TcpFixture::new();
    env.config(&format!("services:\n  - name: a\n    port: {}\n", l.port()));
    env.check(&[]).code(0);
    for p in [env.state_path(), env.status_path()] {
        give_to_daemon_user(&p);
        fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).unwrap();
    }
    env.check(&[]).code(0);
    let after_check = [owner_and_mode(&env.state_path()), owner_and_mode(&env.status_path())];
    let cfg = env.config_path();
    env.cmd(&["mute", "-c", cfg.to_str().unwrap(), "a", "--for", "1h"]).code(0);
    let after_mute = owner_and_mode(&env.state_path());
    eprintln!(
        "FIGURE uid:mode of state, status after a root check: {}, {}; state after mute: {}",
        shown(after_check[0]),
        shown(after_check[1]),
        shown(after_mute)
    );
    assert_eq!(after_check, [(DAEMON_UID, 0o600), (DAEMON_UID, 0o600)], "after check");
    assert_eq!(after_mute, (DAEMON_UID, 0o600), "after mute");
    assert!(env.state()["services"]["a"]["muted_until"].is_string());
}

#[test]
fn a_lock_and_state_first_made_by_root_stay_usable_by_the_daemon_user() {
    require_root();
    let env = Env::new();
    env.fake_systemctl();
    env.unit("web.service", "failed", "failed", "exit-code");
    env.config(
        "timeout: 2s\nheal: {after_failures: 1, grace: 0s}\nservices:\n  - name: web\n    unit: web.service\n",
    );
    give_to_daemon_user(env.root());
    let cfg = env.config_path();
    let cfg = cfg.to_str().unwrap();
    // `sudo chatstack-status mute web` before the daemon ever ran.
    env.cmd(&["mute", "-c", cfg, "web", "--for", "1h"]).code(0);
    let lock = env.path("state.json.lock");
    eprintln!(
        "FIGURE made by root: state {}, lock {}",
        shown(owner_and_mode(&env.state_path())),
        shown(owner_and_mode(&lock))
    );
    // Then a cycle as the daemon's user.
    let out = crate::util::run_bin(as_daemon_user(env.command(&["check", "-c", cfg], &[])));
    crate::util::assert_no_panic(&out);
    eprintln!("FIGURE daemon-user check: exit {}, actions {:?}", out.code, env.systemctl_actions());
    out.code(2);
    assert!(env.systemctl_actions().is_empty(), "restarted a muted unit: {out:#?}");
    assert!(!out.stderr.contains("fresh"), "{}", out.stderr);
    let web = &env.state()["services"]["web"];
    assert!(web["muted_until"].is_string(), "the mute was lost: {web:#}");
    assert_eq!(web["consecutive_failures"], 1, "{web:#}");
    assert_eq!(owner_and_mode(&lock).0, DAEMON_UID);
}

#[test]
fn an_unreadable_state_file_is_exit_3_and_heals_nothing() {
    require_root();
    let env = Env::new();
    env.fake_systemctl();
    env.unit("web.service", "failed", "failed", "exit-code");
    env.config(
        "timeout: 2s\nheal: {after_failures: 1, grace: 0s}\nservices:\n  - name: web\n    unit: web.service\n",
    );
    give_to_daemon_user(env.root());
    let cfg = env.config_path();
    let cfg = cfg.to_str().unwrap();
    let mute = env.command(&["mute", "-c", cfg, "web", "--for", "1h"], &[]);
    crate::util::run_bin(as_daemon_user(mute)).code(0);
    // What an older `sudo mute` left behind: root's, 0600.
    let state = env.state_path();
    std::os::unix::fs::chown(&state, Some(0), Some(0)).unwrap();
    fs::set_permissions(&state, fs::Permissions::from_mode(0o600)).unwrap();
    let before = fs::read(&state).unwrap();
    for args in
        [vec!["check", "-c", cfg], vec!["mute", "-c", cfg, "web"], vec!["unmute", "-c", cfg, "web"]]
    {
        let out = crate::util::run_bin(as_daemon_user(env.command(&args, &[])));
        crate::util::assert_no_panic(&out);
        eprintln!("FIGURE {args:?} on an unreadable state file: exit {}", out.code);
        out.code(3);
        let errs: Vec<&str> = out.stderr.lines().collect();
        assert_eq!(errs.len(), 1, "{}", out.stderr);
        assert!(errs[0].contains(&state.display().to_string()), "{}", out.stderr);
        assert!(errs[0].contains("cannot read state file"), "{}", out.stderr);
    }
    assert!(env.systemctl_actions().is_empty(), "healed blind: {:?}", env.systemctl_actions());
    assert_eq!(fs::read(&state).unwrap(), before, "the state file was replaced");
    assert_eq!(owner_and_mode(&state), (0, 0o600));
}

#[test]
fn the_daemon_skips_its_cycles_while_the_state_file_is_unreadable() {
    use crate::util::Daemon;
    require_root();
    let env = Env::new();
    env.fake_systemctl();
    env.unit("web.service", "failed", "failed", "exit-code");
    env.config(
        "interval: 100ms\ntimeout: 2s\nheal: {after_failures: 1, grace: 0s}\nservices:\n  - name: web\n    unit: web.service\n",
    );
    give_to_daemon_user(env.root());
    let cfg = env.config_path();
    let cfg = cfg.to_str().unwrap();
    let out = crate::util::run_bin(as_daemon_user(
        env.command(&["mute", "-c", cfg, "web", "--for", "1h"], &[]),
    ));
    out.code(0);
    let d = Daemon::start_command(
        as_daemon_user(env.command(&["run", "--no-http", "-c", cfg], &[])),
        false,
    );
    let shows = || env.systemctl_calls().iter().filter(|c| c.starts_with("show ")).count();
    wait_until(Duration::from_secs(10), || shows() >= 3);
    // Root replaces the file with one the daemon cannot read (an older
    // `sudo mute`: under the lock, as it takes it).
    let state = env.state_path();
    let copy = env.path("state.root");
    let lock = File::open(env.path("state.json.lock")).unwrap();
    lock.lock().unwrap();
    fs::copy(&state, &copy).unwrap();
    fs::set_permissions(&copy, fs::Permissions::from_mode(0o600)).unwrap();
    fs::rename(&copy, &state).unwrap();
    drop(lock);
    let before = fs::read(&state).unwrap();
    wait_until(Duration::from_secs(10), || {
        d.log().iter().filter(|l| l.contains("cannot read state file")).count() >= 3
            || !env.systemctl_actions().is_empty()
    });
    eprintln!(
        "FIGURE unreadable state in run: actions {:?}, log {:?}",
        env.systemctl_actions(),
        d.log().iter().rev().take(3).collect::<Vec<_>>()
    );
    assert!(env.systemctl_actions().is_empty(), "restarted a muted unit: {:?}", d.log());
    assert_eq!(fs::read(&state).unwrap(), before, "the daemon replaced the state file");
    // Fixed by the admin: the daemon carries on where it was, mute included.
    give_to_daemon_user(&state);
    let n = shows();
    wait_until(Duration::from_secs(10), || shows() >= n + 3);
    assert!(env.systemctl_actions().is_empty(), "{:?}", env.systemctl_actions());
    assert!(env.state()["services"]["web"]["muted_until"].is_string());
}

#[test]
fn leftover_temp_files_of_a_killed_write_are_removed() {
    let env = Env::new();
    let l = TcpFixture::new();
    env.config(&format!("services:\n  - name: a\n    port: {}\n", l.port()));
    let old = std::time::SystemTime::now() - Duration::from_secs(600);
    let stale = [".state.json.Ab12Cd.tmp", ".status.json.xY34zW.tmp"];
    for name in stale {
        let f = File::create(env.path(name)).unwrap();
        f.set_modified(old).unwrap();
    }
    // A fresh one may be a concurrent writer's; another file's are not ours.
    let kept = [".state.json.Fr35hh.tmp", ".other.json.Ab12Cd.tmp", ".state.json.tmp"];
    for name in kept {
        let f = File::create(env.path(name)).unwrap();
        if !name.contains("Fr35hh") {
            f.set_modified(old).unwrap();
        }
    }
    env.check(&[]).code(0);
    let left: Vec<&str> = stale.iter().copied().filter(|n| env.path(n).exists()).collect();
    eprintln!("FIGURE stale temp files left after a check: {}", left.len());
    assert!(left.is_empty(), "left behind: {left:?}");
    for name in kept {
        assert!(env.path(name).exists(), "removed {name}");
    }
}

#[test]
fn a_fifo_or_a_directory_in_place_of_a_file_is_exit_3_at_once() {
    let env = Env::new();
    let l = TcpFixture::new();
    env.config(&format!("services:\n  - name: a\n    port: {}\n", l.port()));
    let cfg = env.config_path();
    let cfg = cfg.to_str().unwrap();
    let mkfifo = |p: &std::path::Path| {
        let ok = std::process::Command::new("mkfifo").arg(p).status().expect("mkfifo");
        assert!(ok.success());
    };
    #[track_caller]
    fn refused(out: &crate::util::Out, path: &std::path::Path, what: &str) {
        eprintln!("FIGURE {what}: exit {} after {:?}", out.code, out.elapsed);
        out.code(3);
        assert!(out.elapsed < Duration::from_secs(5), "{what}: took {:?}", out.elapsed);
        assert!(out.stderr.contains(&path.display().to_string()), "{what}: {}", out.stderr);
        assert!(out.stderr.contains("not a regular file"), "{what}: {}", out.stderr);
    }
    let state = env.state_path();
    mkfifo(&state);
    refused(&env.check(&[]), &state, "check on a FIFO state file");
    refused(&env.cmd(&["mute", "-c", cfg, "a"]), &state, "mute on a FIFO state file");
    refused(&env.cmd(&["unmute", "-c", cfg, "a"]), &state, "unmute on a FIFO state file");
    assert!(fs::symlink_metadata(&state).unwrap().file_type().is_fifo(), "replaced the FIFO");
    assert!(!env.status_path().exists());
    fs::remove_file(&state).unwrap();
    fs::create_dir(&state).unwrap();
    refused(&env.check(&[]), &state, "check on a directory state file");
    fs::remove_dir(&state).unwrap();

    let status = env.status_path();
    mkfifo(&status);
    refused(&env.cmd(&["status", "-c", cfg]), &status, "status on a FIFO status file");
    let fifo_cfg = env.path("fifo.yml");
    mkfifo(&fifo_cfg);
    refused(&env.cmd(&["check", "-c", fifo_cfg.to_str().unwrap()]), &fifo_cfg, "a FIFO config");
}

/// A member of the daemon's group (not its user): who the README lets read
/// the state (the admin panel's user).
const GROUP_MEMBER_UID: u32 = 65533;

/// Issue 18 #10: a member of the daemon's group could `flock` the 0640
/// `state.json.lock` and so stop every cycle. The lock is now 0600 (owned
/// like the state file): they cannot open it, let alone hold it; a lock
/// left 0640 by an older version is tightened by the next run (root's too,
/// which hands a root-owned one to the daemon's user).
#[test]
fn a_member_of_the_daemons_group_cannot_hold_the_state_lock() {
    require_root();
    let env = Env::new();
    let l = TcpFixture::new();
    env.config(&format!("services:\n  - name: a\n    port: {}\n", l.port()));
    give_to_daemon_user(env.root());
    fs::set_permissions(env.root(), fs::Permissions::from_mode(0o750)).unwrap();
    let cfg = env.config_path();
    let cfg = cfg.to_str().unwrap();
    let daemon_check = || {
        let out = crate::util::run_bin(as_daemon_user(env.command(&["check", "-c", cfg], &[])));
        crate::util::assert_no_panic(&out);
        out
    };
    daemon_check().code(0);
    let lock = env.path("state.json.lock");
    eprintln!("FIGURE lock made by the daemon's user: {}", shown(owner_and_mode(&lock)));

    // The group member tries to hold it (as `flock` does) for 30 s.
    let attack = || {
        use std::os::unix::process::CommandExt;
        let mut c = std::process::Command::new("flock");
        c.arg("-n").arg(&lock).args(["sleep", "30"]);
        c.uid(GROUP_MEMBER_UID).gid(DAEMON_UID);
        c.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::piped());
        c.spawn().expect("flock")
    };
    let mut attacker = attack();
    let status = {
        let deadline = std::time::Instant::now() + Duration::from_secs(2);
        loop {
            if let Some(s) = attacker.try_wait().unwrap() {
                break Some(s);
            }
            if std::time::Instant::now() > deadline {
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    let out = daemon_check();
    if status.is_none() {
        let _ = attacker.kill();
        let _ = attacker.wait();
    }
    eprintln!("FIGURE group member's flock: {status:?}; daemon-user check: exit {}", out.code);
    assert!(status.is_some_and(|s| !s.success()), "the group member holds the lock: {out:#?}");
    out.code(0);
    assert_eq!(owner_and_mode(&lock), (DAEMON_UID, 0o600));

    // An older version's 0640 lock, the daemon's or root's, is tightened.
    for owner in [DAEMON_UID, 0] {
        std::os::unix::fs::chown(&lock, Some(owner), Some(owner)).unwrap();
        fs::set_permissions(&lock, fs::Permissions::from_mode(0o640)).unwrap();
        env.check(&[]).code(0); // root, as `sudo chatstack-status check`
        assert_eq!(owner_and_mode(&lock), (DAEMON_UID, 0o600), "was owned by {owner}");
    }
    std::os::unix::fs::chown(&lock, Some(DAEMON_UID), Some(DAEMON_UID)).unwrap();
    fs::set_permissions(&lock, fs::Permissions::from_mode(0o640)).unwrap();
    daemon_check().code(0); // the daemon's user, on its own file
    assert_eq!(owner_and_mode(&lock), (DAEMON_UID, 0o600));
}

/// A planted symlink in place of the lock is not followed.
#[test]
fn a_symlink_in_place_of_the_lock_is_refused() {
    let env = Env::new();
    let l = TcpFixture::new();
    env.config(&format!("services:\n  - name: a\n    port: {}\n", l.port()));
    let target = env.path("elsewhere");
    std::os::unix::fs::symlink(&target, env.path("state.json.lock")).unwrap();
    let out = env.check(&[]);
    out.code(3);
    assert!(out.stderr.contains("state.json.lock"), "{}", out.stderr);
    assert!(out.stderr.contains("symbolic link"), "{}", out.stderr);
    assert!(!target.exists(), "followed the link");
}

/// Issue 18 #6: `sudo chatstack-status check` before the daemon's first
/// cycle created `history.db` root:root 0640, which the daemon then could
/// neither write nor read. It now goes to the directory's owner like the
/// state and status files; one an older root run left root's is given back.
#[test]
fn a_history_database_root_creates_belongs_to_the_daemon_user() {
    require_root();
    let env = Env::new();
    let l = TcpFixture::new();
    env.config(&format!("services:\n  - name: a\n    port: {}\n", l.port()));
    give_to_daemon_user(env.root());
    let cfg = env.config_path();
    let cfg = cfg.to_str().unwrap();
    env.check(&[]).code(0); // root, as `sudo chatstack-status check`
    let db = env.history_path();
    eprintln!("FIGURE history.db made by root: {}", shown(owner_and_mode(&db)));
    assert_eq!(owner_and_mode(&db), (DAEMON_UID, 0o640));
    let daemon_run = |args: &[&str]| {
        let out = crate::util::run_bin(as_daemon_user(env.command(args, &[])));
        crate::util::assert_no_panic(&out);
        out
    };
    let out = daemon_run(&["check", "-c", cfg]);
    out.code(0);
    assert!(!out.stderr.contains("history"), "{}", out.stderr);
    let out = daemon_run(&["history", "-c", cfg, "a", "--format", "json"]);
    out.code(0);
    // An older root run's leftover: root's database (and -wal, -shm) given back.
    for suffix in ["", "-wal", "-shm"] {
        let p = std::path::PathBuf::from(format!("{}{suffix}", db.display()));
        if !p.exists() {
            File::create(&p).unwrap();
        }
        std::os::unix::fs::chown(&p, Some(0), Some(0)).unwrap();
    }
    fs::remove_file(format!("{}-wal", db.display())).unwrap();
    fs::remove_file(format!("{}-shm", db.display())).unwrap();
    env.check(&[]).code(0);
    assert_eq!(owner_and_mode(&db).0, DAEMON_UID, "given back");
    for suffix in ["-wal", "-shm"] {
        let p = std::path::PathBuf::from(format!("{}{suffix}", db.display()));
        if p.exists() {
            assert_eq!(owner_and_mode(&p).0, DAEMON_UID, "{suffix}");
        }
    }
    let out = daemon_run(&["check", "-c", cfg]);
    out.code(0);
    assert!(!out.stderr.contains("history"), "{}", out.stderr);
}

/// Issue 18 #7: a root `check` followed a `history.db` symlink the daemon's
/// user planted and turned a root-owned 0600 file into a SQLite database.
/// Now it is refused (one warning; the check itself goes on).
#[test]
fn a_root_check_never_follows_a_planted_history_symlink() {
    require_root();
    let env = Env::new();
    let l = TcpFixture::new();
    env.config(&format!("services:\n  - name: a\n    port: {}\n", l.port()));
    give_to_daemon_user(env.root());
    let secret = env.path("root-only");
    fs::write(&secret, "").unwrap();
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o600)).unwrap();
    std::os::unix::fs::symlink(&secret, env.history_path()).unwrap();
    let out = env.check(&[]);
    out.code(0);
    eprintln!("FIGURE root check on a symlinked history.db: {}", out.stderr.trim());
    assert!(out.stderr.contains("symbolic link, not followed"), "{}", out.stderr);
    assert_eq!(fs::read(&secret).unwrap(), b"", "the target was written");
    assert_eq!(owner_and_mode(&secret), (0, 0o600));
    assert!(fs::symlink_metadata(env.history_path()).unwrap().file_type().is_symlink());
}

/// Issue 18 #5: a FIFO in place of `history_db` made every reader block in
/// `open()`: `history` hung, and each history request parked a `serve`
/// thread for good until `/healthz` answered 503. Now refused at once.
#[test]
fn a_fifo_history_database_never_blocks_a_reader() {
    let env = Env::new();
    let l = TcpFixture::new();
    env.config(&format!("services:\n  - name: a\n    port: {}\n", l.port()));
    env.check(&[]).code(0);
    let db = env.history_path();
    for p in [db.clone(), std::path::PathBuf::from(format!("{}-wal", db.display()))] {
        let _ = fs::remove_file(&p);
    }
    let ok = std::process::Command::new("mkfifo").arg(&db).status().expect("mkfifo");
    assert!(ok.success());
    let cfg = env.config_path();
    let cfg = cfg.to_str().unwrap();
    let out = env.cmd(&["history", "-c", cfg, "a"]);
    eprintln!("FIGURE history on a FIFO: exit {} after {:?}", out.code, out.elapsed);
    out.code(3);
    assert!(out.elapsed < Duration::from_secs(3), "{:?}", out.elapsed);
    assert!(out.stderr.contains("not a regular file (a FIFO)"), "{}", out.stderr);
    let out = env.check(&[]);
    out.code(0);
    assert!(out.elapsed < Duration::from_secs(3), "{:?}", out.elapsed);
    let d = crate::util::Daemon::start(&env, &["serve", "-c", cfg], &[]);
    let started = Instant::now();
    for _ in 0..20 {
        let r = d.get("/api/history?service=a&since=1h");
        assert_eq!(r.status, 503, "{}", r.text());
        assert!(r.text().contains("FIFO"), "{}", r.text());
    }
    eprintln!("FIGURE 20 history requests on a FIFO: {:?}", started.elapsed());
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
    assert_eq!(d.get("/healthz").status, 200);
    assert!(fs::symlink_metadata(&db).unwrap().file_type().is_fifo(), "replaced the FIFO");
}
