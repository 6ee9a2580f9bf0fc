//! Healing across separate `check` runs, through the state file, against a
//! fake `systemctl` that answers from files and logs every call.

use crate::util::Env;
use std::time::Duration;

/// A service `web` with unit `web.service` (down unless the test says
/// otherwise) and the given `heal:` block.
fn env_with(heal: &str) -> Env {
    let env = Env::new();
    env.fake_systemctl();
    env.unit("web.service", "failed", "failed", "exit-code");
    env.config(&format!(
        "timeout: 2s\nheal: {heal}\nservices:\n  - name: web\n    unit: web.service\n"
    ));
    env
}

fn restarts(env: &Env) -> usize {
    env.systemctl_actions().iter().filter(|c| *c == "restart web.service").count()
}

#[test]
fn restarts_exactly_on_the_second_consecutive_failing_run() {
    let env = env_with("{grace: 0s}");
    let out = env.check(&[]);
    out.code(2);
    assert_eq!(env.service("web")["consecutive_failures"], 1);
    assert!(env.systemctl_actions().is_empty(), "{:?}", env.systemctl_calls());

    let out = env.check(&[]);
    out.code(2);
    assert_eq!(env.systemctl_actions(), ["restart web.service"]);
    assert!(out.stdout.contains("restarted web.service"), "{}", out.stdout);
    let web = env.service("web");
    assert_eq!(web["consecutive_failures"], 2);
    let r = &web["restarts"];
    assert_eq!(r.as_array().map(Vec::len), Some(1), "{web:#}");
    assert_eq!(r[0]["ok"], true);
    assert!(r[0]["detail"].as_str().unwrap().contains("systemctl restart web.service"), "{r:#}");

    // The third failure is not due (every `after_failures`), the fourth is.
    env.check(&[]);
    assert_eq!(restarts(&env), 1);
    env.check(&[]);
    assert_eq!(restarts(&env), 2);
}

#[test]
fn an_up_run_resets_the_count() {
    let env = env_with("{grace: 0s}");
    env.check(&[]);
    env.unit("web.service", "active", "running", "success");
    env.check(&[]).code(0);
    assert_eq!(env.service("web")["consecutive_failures"], 0);
    env.unit("web.service", "failed", "failed", "exit-code");
    env.check(&[]);
    assert_eq!(restarts(&env), 0, "the count must restart from zero");
    env.check(&[]);
    assert_eq!(restarts(&env), 1);
}

#[test]
fn no_restart_flag_never_restarts_but_says_what_it_would_do() {
    let env = env_with("{grace: 0s}");
    env.check(&["--no-restart"]);
    let out = env.check(&["--no-restart"]);
    out.code(2);
    assert!(env.systemctl_actions().is_empty(), "{:?}", env.systemctl_calls());
    assert!(out.stdout.contains("would restart web.service"), "{}", out.stdout);
    assert!(out.stdout.contains("--no-restart"), "{}", out.stdout);
    // Counting goes on as usual.
    assert_eq!(env.service("web")["consecutive_failures"], 2);
    assert_eq!(env.service("web")["restarts"].as_array().map(Vec::len), Some(0));
}

#[test]
fn heal_disabled_never_restarts() {
    let env = env_with("{enabled: false, grace: 0s}");
    for _ in 0..4 {
        env.check(&[]).code(2);
    }
    assert!(env.systemctl_actions().is_empty(), "{:?}", env.systemctl_calls());
    assert_eq!(env.service("web")["consecutive_failures"], 4);
}

#[test]
fn grace_holds_the_count() {
    let env = env_with("{after_failures: 1, grace: 1h}");
    env.check(&[]);
    assert_eq!(restarts(&env), 1);
    for _ in 0..2 {
        env.check(&[]);
    }
    assert_eq!(restarts(&env), 1, "restarted again within grace");
    assert_eq!(env.service("web")["consecutive_failures"], 1, "the count holds in grace");
}

#[test]
fn the_restart_budget_suspends_healing_until_unmute() {
    let env = env_with("{after_failures: 1, grace: 0s, max_restarts: 2, window: 1h}");
    env.check(&[]);
    env.check(&[]);
    assert_eq!(restarts(&env), 2);
    assert_eq!(env.service("web")["heal_suspended"], false);

    let out = env.check(&[]);
    assert_eq!(restarts(&env), 2, "restarted beyond max_restarts");
    let web = env.service("web");
    assert_eq!(web["heal_suspended"], true, "{web:#}");
    assert_eq!(web["restarts"].as_array().map(Vec::len), Some(2));
    assert!(out.stdout.contains("suspended"), "{}", out.stdout);
    assert!(out.stderr.contains("suspended"), "{}", out.stderr);
    // Probing goes on, healing does not.
    env.check(&[]).code(2);
    assert_eq!(restarts(&env), 2);
    assert_eq!(env.state()["services"]["web"]["heal_suspended"], true);

    let cfg = env.config_path();
    let out = env.cmd(&["unmute", "-c", cfg.to_str().unwrap(), "web"]);
    out.code(0);
    assert_eq!(env.state()["services"]["web"]["heal_suspended"], false);
    env.check(&[]);
    assert_eq!(restarts(&env), 3, "unmute did not give the budget back");
    assert_eq!(env.service("web")["heal_suspended"], false);
}

#[test]
fn systemd_restarting_the_unit_is_left_alone() {
    // Only the unit: auto-restart is degraded, not a failure.
    let env = env_with("{after_failures: 1, grace: 0s}");
    env.unit("web.service", "activating", "auto-restart", "exit-code");
    for _ in 0..3 {
        env.check(&[]).code(1);
    }
    assert!(env.systemctl_actions().is_empty(), "{:?}", env.systemctl_calls());

    // Down through another check while systemd restarts the unit: still no restart.
    let env = Env::new();
    env.fake_systemctl();
    env.unit("web.service", "activating", "auto-restart", "exit-code");
    env.config(&format!(
        "timeout: 1s\nheal: {{grace: 0s}}\nservices:\n  - name: web\n    unit: web.service\n    port: {}\n",
        crate::util::closed_port()
    ));
    env.check(&[]).code(2);
    let out = env.check(&[]);
    out.code(2);
    assert!(env.systemctl_actions().is_empty(), "{:?}", env.systemctl_calls());
    assert!(out.stdout.contains("already restarting"), "{}", out.stdout);
}

#[test]
fn start_limit_hit_alerts_only_unless_reset_failed() {
    let env = env_with("{grace: 0s}");
    env.unit("web.service", "failed", "failed", "start-limit-hit");
    env.check(&[]);
    let out = env.check(&[]);
    assert!(env.systemctl_actions().is_empty(), "{:?}", env.systemctl_calls());
    assert!(out.stdout.contains("start limit"), "{}", out.stdout);

    let env = env_with("{grace: 0s, reset_failed: true}");
    env.unit("web.service", "failed", "failed", "start-limit-hit");
    env.check(&[]);
    env.check(&[]);
    assert_eq!(env.systemctl_actions(), ["reset-failed web.service", "restart web.service"]);
}

#[test]
fn a_failed_restart_is_recorded_as_such() {
    let env = env_with("{after_failures: 1, grace: 0s}");
    env.restart_exit(1);
    let out = env.check(&[]);
    assert_eq!(restarts(&env), 1);
    let r = &env.service("web")["restarts"][0];
    assert_eq!(r["ok"], false, "{r:#}");
    assert!(r["detail"].as_str().unwrap().contains("exit 1"), "{r:#}");
    assert!(out.stderr.contains("restart of web.service failed"), "{}", out.stderr);
}

#[test]
fn a_muted_service_is_not_healed() {
    let env = env_with("{after_failures: 1, grace: 0s}");
    let cfg = env.config_path();
    env.cmd(&["mute", "-c", cfg.to_str().unwrap(), "web", "--for", "1h", "--reason", "deploy"])
        .code(0);
    let out = env.check(&[]);
    assert!(env.systemctl_actions().is_empty(), "{:?}", env.systemctl_calls());
    assert!(out.stdout.contains("muted"), "{}", out.stdout);
    assert!(env.service("web")["muted_until"].is_string());
}

#[test]
fn a_service_whose_dependency_is_down_is_not_healed() {
    let env = Env::new();
    env.fake_systemctl();
    env.unit("web.service", "failed", "failed", "exit-code");
    env.unit("db.service", "failed", "failed", "exit-code");
    env.config(
        "timeout: 2s\nheal: {after_failures: 1, grace: 0s}\nservices:\n\
         \x20 - name: web\n    unit: web.service\n    depends_on: [db]\n\
         \x20 - name: db\n    unit: db.service\n",
    );
    env.check(&[]);
    assert_eq!(env.systemctl_actions(), ["restart db.service"]);
}

#[test]
fn restart_command_is_configurable_and_bounded() {
    let env = Env::new();
    env.fake_systemctl();
    env.unit("web.service", "failed", "failed", "exit-code");
    let log = env.path("custom.log");
    env.fake_program(
        "my-restart",
        &format!("#!/bin/sh\n[ \"$1\" = __ready ] && exit 0\necho \"$*\" >> {}\n", log.display()),
    );
    env.config(
        "timeout: 2s\nheal: {after_failures: 1, grace: 0s, restart_command: [my-restart, --unit, '{unit}']}\n\
         services:\n  - name: web\n    unit: web.service\n",
    );
    env.check(&[]);
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "--unit web.service\n");
    assert!(env.systemctl_actions().is_empty());
}

#[test]
fn a_hanging_restart_command_is_cut_off_at_heal_timeout() {
    let env = Env::new();
    env.fake_systemctl();
    env.unit("web.service", "failed", "failed", "exit-code");
    env.config(
        "timeout: 2s\nheal: {after_failures: 1, grace: 0s, timeout: 500ms, restart_command: [sleep, '30']}\n\
         services:\n  - name: web\n    unit: web.service\n",
    );
    let out = env.check(&[]);
    assert!(out.elapsed < std::time::Duration::from_secs(3), "took {:?}", out.elapsed);
    let r = &env.service("web")["restarts"][0];
    assert_eq!(r["ok"], false, "{r:#}");
    assert!(r["detail"].as_str().unwrap().contains("timed out"), "{r:#}");
}

#[test]
fn a_check_killed_while_alerting_keeps_the_record_of_its_restart() {
    // Alert delivery comes after healing and may take a notifier's whole
    // timeout; a run killed meanwhile (TimeoutStartSec, a cron kill) must
    // not lose the restart it ran, or the next run restarts again with no
    // grace and no budget.
    let hang = crate::util::http_fixture(crate::util::Behaviour::HangAfterAccept);
    let env = Env::new();
    env.fake_systemctl();
    env.unit("web.service", "failed", "failed", "exit-code");
    env.config(&format!(
        "timeout: 2s\nheal: {{after_failures: 1, grace: 1h}}\nnotify:\n  - {{type: webhook, url: \"{}\", timeout: 20s}}\nservices:\n  - name: web\n    unit: web.service\n",
        hang.url("/hook")
    ));
    let cfg = env.config_path();
    let mut child = env
        .command(&["check", "-c", cfg.to_str().unwrap()], &[])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    crate::util::wait_until(std::time::Duration::from_secs(10), || restarts(&env) == 1);
    // Give it a moment to reach the (hanging) delivery, then kill it there.
    std::thread::sleep(std::time::Duration::from_millis(500));
    child.kill().unwrap();
    child.wait().unwrap();
    let web = &env.state()["services"]["web"];
    assert_eq!(web["restarts"].as_array().map(Vec::len), Some(1), "{web:#}");
    assert!(web["last_restart"].is_string(), "{web:#}");

    // The next run is within grace: no second restart.
    env.config(
        "timeout: 2s\nheal: {after_failures: 1, grace: 1h}\nservices:\n  - name: web\n    unit: web.service\n",
    );
    env.check(&[]).code(2);
    assert_eq!(restarts(&env), 1, "{:?}", env.systemctl_calls());
}

// ----- a full disk: no restart that cannot be recorded ---------------------

/// `sh` prologue: writes to regular files fail with EFBIG beyond 0 bytes, as
/// on a full disk (SIGXFSZ ignored so the write fails instead of killing).
const FULL_DISK: &str = "trap '' XFSZ; ulimit -S -f 0; exec \"$0\" \"$@\"";

/// How many restarts the state file on disk says were run.
fn recorded(env: &Env) -> u64 {
    let st = std::fs::read_to_string(env.state_path()).unwrap_or_default();
    serde_json::from_str::<serde_json::Value>(&st)
        .ok()
        .and_then(|v| v["services"]["web"]["restarts_total"].as_u64())
        .unwrap_or(0)
}

#[test]
fn a_full_disk_never_runs_a_restart_it_cannot_record() {
    let env = env_with("{after_failures: 1, grace: 0s, max_restarts: 2, window: 1h}");
    let cfg = env.config_path();
    let full_check = |env: &Env| {
        let out = crate::util::run_bin(
            env.command_via_sh(FULL_DISK, &["check", "-c", cfg.to_str().unwrap()]),
        );
        crate::util::assert_no_panic(&out);
        out
    };
    let mut figure = Vec::new();
    for _ in 0..6 {
        let out = full_check(&env);
        figure.push(restarts(&env));
        out.code(3);
        assert!(out.stderr.contains("cannot write state file"), "{}", out.stderr);
        assert!(out.stderr.contains(&env.state_path().display().to_string()), "{}", out.stderr);
        assert!(out.stderr.contains("not restarting web.service"), "{}", out.stderr);
    }
    eprintln!("FIGURE restarts after each of 6 full-disk runs (max_restarts 2): {figure:?}");
    assert_eq!(restarts(&env), 0, "restarted without a record: {:?}", env.systemctl_calls());

    // Space for one run: one restart, recorded; then full again: none.
    env.check(&[]).code(2);
    assert_eq!((restarts(&env), recorded(&env)), (1, 1));
    for _ in 0..3 {
        full_check(&env).code(3);
    }
    assert_eq!(restarts(&env), 1, "{:?}", env.systemctl_calls());
    for _ in 0..3 {
        env.check(&[]).code(2);
    }
    assert_eq!((restarts(&env), recorded(&env)), (2, 2), "beyond max_restarts");
    assert_eq!(env.service("web")["heal_suspended"], true);
}

#[test]
fn a_restart_is_on_disk_before_it_runs() {
    let env = Env::new();
    let d = env.root().display();
    env.fake_program(
        "systemctl",
        &format!(
            "#!/bin/sh\n[ \"$1\" = __ready ] && exit 0\necho \"$*\" >> '{d}/systemctl.log'\n\
             case \"$1\" in\n  show) printf 'LoadState=loaded\\nActiveState=failed\\nSubState=failed\\nResult=exit-code\\nNRestarts=0\\n' ;;\n\
             \x20 restart) cp '{d}/state.json' '{d}/state-at-restart.json' ;;\nesac\nexit 0\n"
        ),
    );
    env.config(
        "timeout: 2s\nheal: {after_failures: 1, grace: 0s}\nservices:\n  - name: web\n    unit: web.service\n",
    );
    env.check(&[]).code(2);
    assert_eq!(restarts(&env), 1);
    let at_restart = crate::util::read_json(&env.path("state-at-restart.json"));
    let web = &at_restart["services"]["web"];
    eprintln!("FIGURE restarts on disk while the restart ran: {}", web["restarts_total"]);
    assert_eq!(web["restarts_total"], 1, "{at_restart:#}");
    assert_eq!(web["restarts"].as_array().map(Vec::len), Some(1), "{web:#}");
    // Settled afterwards with the real outcome.
    let r = &env.service("web")["restarts"][0];
    assert_eq!(r["ok"], true, "{r:#}");
    assert!(r["detail"].as_str().unwrap().contains("systemctl restart web.service"), "{r:#}");
}

#[test]
fn a_full_disk_in_run_stops_healing_until_the_restart_can_be_recorded() {
    use rustix::process::{Pid, Resource, Rlimit, prlimit};
    let env = env_with("{after_failures: 1, grace: 0s, max_restarts: 3, window: 1h}");
    env.config(
        "interval: 100ms\ntimeout: 2s\nheal: {after_failures: 1, grace: 0s, max_restarts: 3, window: 1h}\n\
         services:\n  - name: web\n    unit: web.service\n",
    );
    let cfg = env.config_path();
    let d = crate::util::Daemon::start_command(
        env.command_via_sh(
            "trap '' XFSZ; exec \"$0\" \"$@\"",
            &["run", "--no-http", "-c", cfg.to_str().unwrap()],
        ),
        false,
    );
    let pid = Pid::from_raw(d.pid() as i32).unwrap();
    // After a whole first cycle (one that fails ends the daemon: a start-up error).
    crate::util::wait_until(Duration::from_secs(10), || {
        restarts(&env) >= 1 && env.status_path().exists()
    });
    let limit = |bytes: Option<u64>| {
        prlimit(Some(pid), Resource::Fsize, Rlimit { current: bytes, maximum: None })
            .expect("prlimit");
    };
    limit(Some(0));
    let at_full = restarts(&env);
    let shows = || env.systemctl_calls().iter().filter(|c| c.starts_with("show ")).count();
    let n = shows();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while shows() < n + 8 {
        assert!(std::time::Instant::now() < deadline, "cycles stopped: {:?}", d.log());
        std::thread::sleep(Duration::from_millis(10));
    }
    let during = restarts(&env);
    eprintln!(
        "FIGURE restarts during 8 full-disk cycles: {} (on disk {})",
        during - at_full,
        recorded(&env)
    );
    assert!(during <= at_full + 1, "healed on a full disk: {at_full} -> {during}");
    assert!(d.logged("not restarting web.service").is_some(), "{:?}", d.log());
    limit(None);
    crate::util::wait_until(Duration::from_secs(10), || {
        env.state()["services"]["web"]["heal_suspended"] == true
    });
    assert_eq!((restarts(&env), recorded(&env)), (3, 3), "{:?}", d.log());
}
