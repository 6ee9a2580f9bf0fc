//! Per service, through the real binary and the fake `systemctl` of
//! `util` (which answers multi-unit `show` calls as systemd does): one
//! `systemctl show` per cycle for every unit, the units' `resources`
//! (memory, CPU from the state file's previous sample, tasks) in the
//! status, text, metrics and history, and `limits` held `for` cycles that
//! turn into a `down` and a budgeted restart — in `check` and `run`.

use crate::util::{self, Daemon, Env, promtool_lint, wait_until};
use chatstack_status::time::Timestamp;
use serde_json::Value;
use std::time::Duration;

const PROPS: &str = chatstack_status::probe::units::PROPERTIES;

/// What the fake systemctl says of an active unit, with its figures
/// (written as systemd prints them: `[not set]` for none).
fn unit(env: &Env, name: &str, memory: &str, cpu_ns: &str, tasks: &str) {
    env.write(
        &format!("units/{name}"),
        &format!(
            "Result=success\nNRestarts=0\nMemoryCurrent={memory}\nCPUUsageNSec={cpu_ns}\nTasksCurrent={tasks}\nLoadState=loaded\nActiveState=active\nSubState=running\n"
        ),
    );
}

fn shows(env: &Env) -> Vec<String> {
    env.systemctl_calls().into_iter().filter(|c| c.starts_with("show ")).collect()
}

#[test]
fn one_systemctl_show_per_cycle_answers_every_unit_in_check_and_run() {
    let env = Env::new();
    env.fake_systemctl();
    unit(&env, "web.service", "1000", "0", "1");
    env.unit("db.service", "failed", "failed", "exit-code");
    unit(&env, "worker.service", "[not set]", "[not set]", "[not set]");
    unit(&env, "cron.service", "5", "5", "1");
    let runs = env.path("runs");
    env.config(&format!(
        "timeout: 2s\ninterval: 100ms\nheal: {{enabled: false}}\nservices:\n\
         \x20 - name: web\n    unit: web.service\n\
         \x20 - name: db\n    unit: db.service\n    critical: false\n    diagnosis: false\n\
         \x20 - name: gone\n    unit: gone.service\n    critical: false\n\
         \x20 - name: watcher\n    checks:\n      - {{type: systemd, unit: worker.service}}\n      - {{type: command, argv: [sh, -c, 'echo x >> {}; echo OK']}}\n\
         \x20 - name: job\n    unit: cron.service\n    checks:\n      - {{type: push, period: 1h, grace: 1h}}\n",
        runs.display()
    ));
    let all =
        format!("show -p {PROPS} web.service db.service gone.service worker.service cron.service");
    for i in 1..=3 {
        let out = env.check(&[]);
        assert_eq!(out.code, 1, "{out:#?}");
        assert_eq!(shows(&env).len(), i, "{:?}", env.systemctl_calls());
    }
    assert!(shows(&env).iter().all(|c| *c == all), "{:?}", shows(&env));
    // Each unit check reads its own block.
    let status = env.status();
    let check = |svc: &str| util::service_of(&status, svc)["checks"][0].clone();
    assert_eq!(
        (check("web")["status"].as_str(), check("web")["detail"].as_str()),
        (Some("up"), Some("active (running)"))
    );
    assert_eq!(check("db")["reason"], "unit_failed");
    assert_eq!(check("gone")["reason"], "unit_not_found");
    assert_eq!(check("watcher")["status"], "up");
    // A push service's unit is not observed, but its figures are read.
    assert_eq!(util::service_of(&status, "job")["resources"]["memory_bytes"], 5);

    // The daemon: as many `systemctl show` as cycles (the command check
    // runs once per cycle), each for every unit.
    std::fs::remove_file(env.path("systemctl.log")).unwrap();
    std::fs::remove_file(&runs).unwrap();
    let cycles = || std::fs::read_to_string(&runs).map(|s| s.lines().count()).unwrap_or(0);
    {
        let cfg = env.config_path();
        let _d = Daemon::start(&env, &["run", "--no-http", "-c", cfg.to_str().unwrap()], &[]);
        wait_until(Duration::from_secs(20), || cycles() >= 8);
    }
    let (n_shows, n_cycles) = (shows(&env).len(), cycles());
    eprintln!("FIGURE run: {n_shows} systemctl show calls in {n_cycles} cycles (5 units)");
    assert!(n_shows.abs_diff(n_cycles) <= 1, "{n_shows} calls in {n_cycles} cycles");
    assert!(shows(&env).iter().all(|c| *c == all), "{:?}", shows(&env));
}

#[test]
fn a_unit_systemctl_refuses_does_not_blind_the_others() {
    let env = Env::new();
    let d = env.root().display();
    // systemctl refuses a template name as a whole call (as the real one
    // does: "Unit name foo@.service is neither a valid invocation ID nor
    // unit name"), and answers the others one by one.
    env.fake_program(
        "systemctl",
        &format!(
            "#!/bin/sh\n[ \"$1\" = __ready ] && exit 0\necho \"$*\" >> '{d}/systemctl.log'\n\
             case \"$*\" in *foo@.service*) echo 'Failed to get properties: Unit name foo@.service is neither a valid invocation ID nor unit name.' >&2; exit 1 ;; esac\n\
             shift 3; first=1\nfor u; do [ $first = 1 ] || echo; first=0; printf 'LoadState=loaded\\nActiveState=active\\nSubState=running\\n'; done\n"
        ),
    );
    env.config(
        "timeout: 2s\nservices:\n  - name: a\n    unit: a.service\n  - name: t\n    unit: foo@.service\n  - name: b\n    unit: b.service\n",
    );
    env.check(&[]).code(1);
    let st = env.status();
    assert_eq!(util::service_of(&st, "a")["checks"][0]["status"], "up");
    assert_eq!(util::service_of(&st, "b")["checks"][0]["status"], "up");
    let t = &util::service_of(&st, "t")["checks"][0];
    assert_eq!(
        (t["status"].as_str(), t["reason"].as_str()),
        (Some("unknown"), Some("check_error"))
    );
    assert!(t["detail"].as_str().unwrap().contains("neither a valid"), "{t}");
    assert_eq!(shows(&env).len(), 4, "one for all, then one each: {:?}", shows(&env));
}

fn ms(t: &Value) -> i64 {
    Timestamp::parse(t.as_str().expect("a time")).expect("RFC 3339").0
}

#[test]
fn resources_come_from_the_unit_and_cpu_from_the_previous_sample_in_the_state_file() {
    let env = Env::new();
    env.fake_systemctl();
    unit(&env, "web.service", "734003200", "1000000000", "7");
    unit(&env, "idle.service", "[not set]", "18446744073709551615", "");
    let prom = env.path("m.prom");
    env.config(&format!(
        "timeout: 2s\nprom_file: {prom:?}\nservices:\n  - name: web\n    unit: web.service\n  - name: idle\n    unit: idle.service\n  - name: plain\n    checks:\n      - {{type: command, argv: [sh, -c, 'echo OK']}}\n"
    ));
    env.check(&[]).code(0);
    let web = env.service("web");
    assert_eq!(
        web["resources"],
        serde_json::json!({"memory_bytes": 734003200u64, "cpu_pct": null, "tasks": 7}),
        "the first sample has no CPU figure"
    );
    assert_eq!(
        env.service("idle")["resources"],
        serde_json::json!({"memory_bytes": null, "cpu_pct": null, "tasks": null})
    );
    assert!(env.service("plain").get("resources").is_none(), "no unit, no resources");
    let first = env.state()["services"]["web"]["cpu_sample"].clone();
    assert_eq!(first["usage_ns"], 1_000_000_000u64, "{first}");

    // Half a second of CPU later: percent of one CPU over the time between
    // the samples, as a cron `check` computes it from the state file.
    unit(&env, "web.service", "734003200", "1500000000", "7");
    env.check(&[]).code(0);
    let second = env.state()["services"]["web"]["cpu_sample"].clone();
    let wall_ns = (ms(&second["at"]) - ms(&first["at"])) as f64 * 1e6;
    let want = (0.5e9 / wall_ns * 100.0 * 100.0).round() / 100.0;
    let got = env.service("web")["resources"]["cpu_pct"].as_f64().expect("a CPU figure");
    eprintln!("FIGURE cpu_pct {got} over {} ms between two checks", wall_ns / 1e6);
    assert!((got - want).abs() < 0.011, "{got} vs {want}");

    let text = env.check(&["--format", "text"]).stdout;
    assert!(text.contains("unit memory 734.0 MB, cpu "), "{text}");
    assert!(text.contains("unit: no memory, cpu or tasks figures from systemd"), "{text}");

    // Metrics: the figures there are, promtool-clean.
    unit(&env, "web.service", "734003200", "2500000000", "7");
    env.check(&[]).code(0);
    let cpu = env.service("web")["resources"]["cpu_pct"].as_f64().unwrap();
    let m = std::fs::read_to_string(&prom).unwrap();
    assert!(m.contains("chatstack_service_memory_bytes{service=\"web\"} 734003200\n"), "{m}");
    assert!(
        m.contains(&format!("chatstack_service_cpu_ratio{{service=\"web\"}} {:.4}\n", cpu / 100.0)),
        "{m}"
    );
    assert!(!m.contains("chatstack_service_memory_bytes{service=\"idle\"}"), "{m}");
    promtool_lint(m.as_bytes());

    // The unit restarted: its counter began again, no figure this once.
    unit(&env, "web.service", "1000", "10", "1");
    env.check(&[]).code(0);
    assert_eq!(env.service("web")["resources"]["cpu_pct"], Value::Null);
}

#[test]
fn over_the_memory_limit_for_its_cycles_is_down_and_healed_within_the_budget() {
    let env = Env::new();
    env.fake_systemctl();
    unit(&env, "web.service", "900000000", "0", "3");
    env.config(
        "timeout: 2s\nheal: {after_failures: 1, grace: 0s, max_restarts: 2, window: 1h}\nservices:\n  - name: web\n    unit: web.service\n    limits: {memory: 800MB, for: 3}\n",
    );
    for n in 1..=2 {
        env.check(&[]).code(0);
        assert!(env.systemctl_actions().is_empty(), "restarted after {n} cycles");
        assert_eq!(env.state()["services"]["web"]["limits_over"]["memory"], n);
    }
    env.check(&[]).code(2);
    let web = env.service("web");
    let c = &web["checks"][0];
    assert_eq!((c["status"].as_str(), c["reason"].as_str()), (Some("down"), Some("memory_limit")));
    assert_eq!(
        c["detail"],
        "memory 900.0 MB over the limit 800.0 MB for 3 cycles; unit active (running)"
    );
    assert_eq!(env.systemctl_actions(), ["restart web.service"]);
    // The history's incident says why.
    let inc =
        env.cmd(&["incidents", "-c", env.config_path().to_str().unwrap(), "--format", "json"]);
    assert!(inc.stdout.contains("memory_limit"), "{}", inc.stdout);

    // The restart freed the memory: the count starts again, up.
    unit(&env, "web.service", "40000000", "0", "3");
    env.check(&[]).code(0);
    assert_eq!(env.service("web")["checks"][0]["status"], "up");
    assert!(env.state()["services"]["web"].get("limits_over").is_none());
    // Leaking again, the budget (2) is what stops it.
    unit(&env, "web.service", "900000000", "0", "3");
    for _ in 0..9 {
        env.check(&[]);
    }
    let restarts = env.systemctl_actions().len();
    assert_eq!(restarts, 2, "{:?}", env.systemctl_actions());
    assert_eq!(env.service("web")["heal_suspended"], true);
}

#[test]
fn over_the_cpu_limit_in_run_restarts_the_unit() {
    let env = Env::new();
    env.fake_systemctl();
    // A counter that grows 2 CPU-seconds per wall second: 200 % of one CPU.
    let d = env.root().display();
    let grow = env.write(
        "grow.sh",
        &format!(
            "#!/bin/sh\nwhile :; do ns=$(($(date +%s%N) * 2)); printf 'LoadState=loaded\\nActiveState=active\\nSubState=running\\nResult=success\\nNRestarts=0\\nMemoryCurrent=1000\\nCPUUsageNSec=%s\\nTasksCurrent=2\\n' $ns > '{d}/units/busy.tmp'; mv '{d}/units/busy.tmp' '{d}/units/busy.service'; sleep 0.05; done\n"
        ),
    );
    let _grower = Reap(std::process::Command::new("sh").arg(&grow).spawn().unwrap());
    env.config(
        "interval: 200ms\ntimeout: 2s\nheal: {after_failures: 1, grace: 0s}\nservices:\n  - name: busy\n    unit: busy.service\n    limits: {cpu: 150, for: 2}\n",
    );
    let cfg = env.config_path();
    let _d = Daemon::start(&env, &["run", "--no-http", "-c", cfg.to_str().unwrap()], &[]);
    wait_until(Duration::from_secs(20), || !env.systemctl_actions().is_empty());
    assert_eq!(env.systemctl_actions()[0], "restart busy.service");
    wait_until(Duration::from_secs(10), || {
        env.status_path().exists()
            && env.service("busy")["restarts"].as_array().is_some_and(|r| !r.is_empty())
    });
    let busy = env.service("busy");
    let cpu = busy["resources"]["cpu_pct"].as_f64().unwrap_or(0.0);
    eprintln!("FIGURE cpu_pct of the busy unit in run: {cpu}");
    // About 200 (the counter's rate), give or take the fake's own timing.
    assert!((150.0..=1000.0).contains(&cpu), "{busy:#}");
}

/// A child killed and reaped on drop.
struct Reap(std::process::Child);

impl Drop for Reap {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn limits_are_checked_and_located() {
    let env = Env::new();
    for (yaml, want) in [
        (
            "services:\n  - name: a\n    port: 1\n    limits: {memory: 800MB}\n",
            "monitor.yml:7:13: services[0].limits: limits need the service's `unit`",
        ),
        (
            "services:\n  - name: a\n    unit: a.service\n    limits: {memory: lots}\n",
            "monitor.yml:7:22: services[0].limits.memory: expected a size like 512MB, 1.5GiB or a number of bytes, found \"lots\"",
        ),
        (
            "services:\n  - name: a\n    unit: a.service\n    limits: {cpu: -5}\n",
            "monitor.yml:7:19: services[0].limits.cpu: expected a number like 80",
        ),
        (
            "services:\n  - name: a\n    unit: a.service\n    limits: {cpu: 90, for: 0}\n",
            "monitor.yml:7:28: services[0].limits.for: expected a whole number, 1 or more, found \"0\"",
        ),
        (
            "services:\n  - name: a\n    unit: a.service\n    limits: {for: 2}\n",
            "monitor.yml:7:13: services[0].limits: expected memory, cpu or both",
        ),
        (
            "services:\n  - name: a\n    unit: a.service\n    checks:\n      - {type: push, period: 1h, grace: 1h}\n    limits: {memory: 1GB}\n",
            "monitor.yml:9:13: services[0].limits: a push service's unit is its heal target only",
        ),
        (
            "services:\n  - name: a\n    unit: a.service\n    limits: {memry: 1GB}\n",
            "monitor.yml:7:14: services[0].limits: unknown key `memry` (did you mean `memory`?)",
        ),
    ] {
        env.config(yaml);
        let out = env.cmd(&["validate", "-c", env.config_path().to_str().unwrap()]);
        assert_eq!(out.code, 3, "{yaml}: {out:#?}");
        assert!(out.stderr.contains(want), "{yaml}\nwant {want}\ngot {}", out.stderr);
    }
    // Right ones: sizes in SI and IEC units, CPU over 100 % on many cores.
    env.config(
        "services:\n  - name: a\n    unit: a.service\n    limits: {memory: 1.5GiB, cpu: 250, for: 3}\n  - name: b\n    unit: b.service\n    limits: {memory: '800MB'}\n",
    );
    let out = env.cmd(&["validate", "-c", env.config_path().to_str().unwrap()]);
    assert_eq!(out.code, 0, "{out:#?}");
}

/// Minute rows straight into the history store (a day of them takes
/// 1,440 cycles otherwise): `(minutes ago, memory, cpu)` for `service`.
pub(crate) fn seed_minutes(env: &Env, service: &str, rows: &[(i64, Option<f64>, Option<f64>)]) {
    let c = rusqlite::Connection::open(env.history_path()).unwrap();
    c.execute("INSERT INTO services (name) VALUES (?1) ON CONFLICT (name) DO NOTHING", [service])
        .unwrap();
    let sid: i64 =
        c.query_row("SELECT id FROM services WHERE name = ?1", [service], |r| r.get(0)).unwrap();
    let now = Timestamp::now().0;
    let minute = now - now % 60_000;
    for (ago, mem, cpu) in rows {
        c.execute(
            "INSERT OR REPLACE INTO resource_minutes (service_id, start, mem_n, mem_sum, cpu_n, cpu_sum)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            rusqlite::params![
                sid,
                minute - ago * 60_000,
                i64::from(mem.is_some()),
                mem.unwrap_or(0.0),
                i64::from(cpu.is_some()),
                cpu.unwrap_or(0.0)
            ],
        )
        .unwrap();
    }
}

fn minute_rows(env: &Env) -> i64 {
    let c = rusqlite::Connection::open(env.history_path()).unwrap();
    c.query_row("SELECT COUNT(*) FROM resource_minutes", [], |r| r.get(0)).unwrap()
}

#[test]
fn the_figures_go_to_the_history_per_minute_and_come_back_as_at_most_288_averaged_points() {
    let env = Env::new();
    env.fake_systemctl();
    env.config(
        "timeout: 2s\ninterval: 5s\nservices:\n  - name: web\n    unit: web.service\n  - name: nounit\n    checks:\n      - {type: command, argv: [sh, -c, 'echo OK']}\n",
    );
    // Three cycles: one row per minute holds them all (two if a minute
    // boundary falls between them).
    for (mem, cpu) in [("100", "0"), ("200", "1000000000"), ("300", "2000000000")] {
        unit(&env, "web.service", mem, cpu, "1");
        env.check(&[]).code(0);
    }
    let rows = minute_rows(&env);
    assert!((1..=2).contains(&rows), "{rows} rows for 3 cycles");
    let cfg = env.config_path().display().to_string();
    let d = Daemon::start(&env, &["serve", "-c", &cfg], &[]);
    let doc = d.get("/api/resources").json();
    let web = doc["services"]["web"].as_array().expect("web's points").clone();
    assert!(doc["services"].get("nounit").is_none(), "{doc}");
    let mems: Vec<f64> = web.iter().filter_map(|p| p[1].as_f64()).collect();
    assert!(!mems.is_empty() && mems.iter().all(|m| (100.0..=300.0).contains(m)), "{doc}");
    assert_eq!(doc["step_s"], 300, "24h in 288 buckets of 5 minutes");

    // A day of minutes: 288 points, each the average of its 5 minutes.
    let day: Vec<_> = (0..1440)
        .map(|ago| (ago, Some(1_000.0 + (ago % 5) as f64), (ago % 2 == 0).then_some(10.0)))
        .collect();
    seed_minutes(&env, "web", &day);
    let doc = d.get("/api/resources?since=24h").json();
    let web = doc["services"]["web"].as_array().unwrap().clone();
    eprintln!("FIGURE /api/resources?since=24h over 1440 minute rows: {} points", web.len());
    assert!(web.len() <= 288 && web.len() >= 287, "{}", web.len());
    let since = Timestamp::parse(doc["since"].as_str().unwrap()).unwrap().0 / 1000;
    let times: Vec<i64> = web.iter().map(|p| p[0].as_i64().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[1] - w[0] == 300), "{times:?}");
    assert!(times[0] >= since && (times[0] - since) % 300 == 0, "{} {since}", times[0]);
    // A full bucket in the middle: minutes with ago%5 = 0..4 once each.
    let mid = &web[web.len() / 2];
    assert_eq!(mid[1], 1_002, "{mid}");
    assert_eq!(mid[2], 10.0, "{mid}");
    let hour = d.get("/api/resources?since=1h").json();
    assert_eq!(hour["step_s"], 60);
    assert!(hour["services"]["web"].as_array().unwrap().len() <= 60);
    for bad in ["0", "3d", "soon", "49h"] {
        let r = d.get(&format!("/api/resources?since={bad}"));
        assert_eq!(r.status, 400, "{bad}: {}", r.text());
        assert!(r.json()["error"].as_str().unwrap().starts_with("since: "), "{}", r.text());
    }
    drop(d);

    // Retention: rows older than 48 h go at the next cycle, bounded.
    seed_minutes(&env, "web", &[(49 * 60, Some(1.0), None), (50 * 60, Some(1.0), None)]);
    let before = minute_rows(&env);
    env.check(&[]).code(0);
    assert!(minute_rows(&env) < before, "{} -> {}", before, minute_rows(&env));
    let c = rusqlite::Connection::open(env.history_path()).unwrap();
    let oldest: i64 =
        c.query_row("SELECT MIN(start) FROM resource_minutes", [], |r| r.get(0)).unwrap();
    assert!(Timestamp::now().0 - oldest <= 48 * 3_600_000 + 60_000);
}
