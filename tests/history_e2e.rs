//! The history store end to end through the real binary: an incident across
//! `check` runs, across daemon cycles and across a daemon restart, compared
//! with the status files of the same runs; 20 `check`s at once plus a daemon
//! plus readers of every endpoint, every result counted; each fault of the
//! SPEC hitting a real `check` (and a real daemon where it matters); and a
//! seeded year served by `serve`, cross-checked against a direct computation
//! and against the commands' JSON; and `check` runs from cron leaving the
//! file complete (no WAL that grows from run to run).
//!
//! Store-level tests (a `Recorder` in a child process) and the commands on a
//! small seeded database are in tests/history.rs; the direct computation
//! from a seeded timeline is shared from there.

use crate::history::{accounting_edge, assert_report_matches, direct, direct_incidents, near, ts};
use crate::util::{self, Daemon, Env, Out, TcpFixture, closed_port, wait_until};

use chatstack_status::state::Health;
use chatstack_status::store::seed::{self, Run, SeedSpec};
use chatstack_status::time::Timestamp;
use rustix::process::Signal;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const WARNING: &str = "chatstack-status: warning:";

fn warnings(lines: &str) -> Vec<&str> {
    lines.lines().filter(|l| l.starts_with(WARNING)).collect()
}

/// A daemon's warnings, but for cycles outlasting the interval (which a
/// loaded test machine causes).
fn daemon_warnings(d: &Daemon) -> Vec<String> {
    d.log()
        .into_iter()
        .filter(|l| l.starts_with(WARNING) && !l.contains("longer than the interval"))
        .collect()
}

/// The status file, or None while it does not exist yet.
fn status_now(env: &Env) -> Option<Value> {
    let text = std::fs::read_to_string(env.status_path()).ok()?;
    serde_json::from_str(&text).ok()
}

fn service(doc: &Value, name: &str) -> Value {
    util::service_of(doc, name)
}

/// A command with `-c` the env's config appended.
#[track_caller]
fn cmd(env: &Env, args: &[&str], vars: &[(&str, &str)]) -> Out {
    let cfg = env.config_path();
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["-c", cfg.to_str().unwrap()]);
    env.cmd_env(&all, vars)
}

/// `incidents --format json` (every incident of the last 30 days).
#[track_caller]
fn incidents(env: &Env) -> Vec<Value> {
    let out = cmd(env, &["incidents", "--format", "json", "--limit", "10000"], &[]);
    out.code(0);
    out.json()["incidents"].as_array().cloned().unwrap_or_default()
}

/// A read-only look at the database, as a test would with sqlite3.
fn sql(db: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .expect("open the history database")
}

/// Every result time of `service`, oldest first.
fn result_times(db: &Path, name: &str) -> Vec<i64> {
    let c = sql(db);
    let mut st = c
        .prepare(
            "SELECT r.at FROM results r JOIN services s ON s.id = r.service_id
             WHERE s.name = ?1 ORDER BY r.at",
        )
        .unwrap();
    st.query_map([name], |r| r.get(0)).unwrap().map(Result::unwrap).collect()
}

/// The status history ring of a service: (at, status), oldest first.
fn ring(doc: &Value, name: &str) -> Vec<(i64, String)> {
    service(doc, name)["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (ts(&h["at"]), h["status"].as_str().unwrap().to_string()))
        .collect()
}

/// Incidents as the ring says they are: (first down, first non-down after it).
fn incidents_of_ring(ring: &[(i64, String)]) -> Vec<(i64, Option<i64>)> {
    let mut out = Vec::new();
    let mut open = None;
    for (at, status) in ring {
        match (status.as_str(), open) {
            ("down", None) => open = Some(*at),
            ("down", Some(_)) => {}
            (_, Some(s)) => {
                out.push((s, Some(*at)));
                open = None;
            }
            _ => {}
        }
    }
    if let Some(s) = open {
        out.push((s, None));
    }
    out
}

fn span(i: &Value) -> (i64, Option<i64>) {
    (ts(&i["started_at"]), i["ended_at"].as_str().map(|_| ts(&i["ended_at"])))
}

/// The restarts of a status entry as the incident lists them: `[{at, ok}]`.
/// An incident's restarts as {at, ok} (their `outcome` is judged after the
/// status file that recorded them was written).
fn at_ok(restarts: &Value) -> Value {
    Value::Array(
        restarts
            .as_array()
            .unwrap()
            .iter()
            .map(|r| json!({"at": r["at"], "ok": r["ok"]}))
            .collect(),
    )
}

fn restarts_of(svc: &Value) -> Value {
    Value::Array(
        svc["restarts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| json!({"at": r["at"], "ok": r["ok"]}))
            .collect(),
    )
}

/// The cause as the incident lists it, from the status entry's first down check.
fn cause_of(svc: &Value) -> Value {
    let c = svc["checks"].as_array().unwrap().iter().find(|c| c["status"] == "down").unwrap();
    json!({"type": c["type"], "target": c["target"], "reason": c["reason"], "detail": c["detail"]})
}

fn stop(d: &mut Daemon) {
    d.signal(Signal::TERM);
    let (code, _) = d.wait_exit(Duration::from_secs(15));
    assert_eq!(code, Some(0), "daemon exit; log: {:#?}", d.log());
}

// ---- 1. incidents end to end ----------------------------------------------

#[test]
fn a_flip_across_check_runs_is_one_incident_with_the_status_files_cause_and_restart() {
    let env = Env::new();
    env.fake_systemctl();
    env.unit("web.service", "active", "running", "success");
    let tcp = TcpFixture::new();
    let hook = util::http_fixture(util::Behaviour::Ok("ok".into()));
    env.config(&format!(
        "timeout: 2s\nheal: {{grace: 0s}}\n\
         notify:\n  - {{type: webhook, name: hook, url: \"{}\", timeout: 2s}}\n\
         services:\n  - name: web\n    unit: web.service\n  - name: db\n    port: {}\n",
        hook.url("/hook"),
        tcp.port()
    ));
    let mut docs = Vec::new();
    let mut run = |code: i32| {
        let out = env.check(&[]);
        out.code(code);
        assert!(warnings(&out.stderr).is_empty(), "{}", out.stderr);
        docs.push(env.status());
    };
    run(0); // 0: up
    env.unit("web.service", "failed", "failed", "exit-code");
    run(2); // 1: down: the incident begins
    run(2); // 2: down again: healing restarts the unit
    assert_eq!(env.systemctl_actions(), ["restart web.service"]);
    env.unit("web.service", "active", "running", "success"); // the restart worked
    run(0); // 3: up: the incident ends
    run(0); // 4: up

    let listed = incidents(&env);
    assert_eq!(listed.len(), 1, "{listed:#?}");
    let inc = &listed[0];
    let at = |k: usize| ts(&docs[k]["generated_at"]);
    let down = service(&docs[1], "web");
    assert_eq!(inc["service"], "web");
    assert_eq!(inc["started_at"], docs[1]["generated_at"], "the first down run");
    assert_eq!(ts(&down["since"]), at(1));
    assert_eq!(inc["ended_at"], docs[3]["generated_at"], "the first up run");
    assert_eq!(ts(&service(&docs[3], "web")["since"]), at(3));
    near(&inc["duration_s"], at(3) - at(1), 0, "duration");
    assert_eq!(inc["cause"], cause_of(&down));
    assert_eq!(
        inc["cause"],
        json!({"type": "systemd", "target": "web.service", "reason": "unit_failed",
               "detail": "failed (failed), result exit-code"})
    );
    // The restart, exactly as the status file of its run records it.
    let healed = service(&docs[2], "web");
    assert_eq!(healed["restarts"].as_array().unwrap().len(), 1, "{healed:#}");
    assert_eq!(at_ok(&inc["restarts"]), restarts_of(&healed));
    assert_eq!(at_ok(&inc["restarts"]), restarts_of(&service(&docs[4], "web")));
    assert_eq!((inc["alerted"].clone(), inc["muted"].clone()), (json!(true), json!(false)));
    assert!(
        hook.requests().iter().any(|r| r.path == "/hook"),
        "the alert that `alerted` stands for was delivered"
    );

    // The report agrees: one incident, its downtime, its restart, its alert.
    let out = cmd(&env, &["report", "--format", "json"], &[]);
    out.code(0);
    let r = out.json();
    let web = r["services"].as_array().unwrap().iter().find(|s| s["name"] == "web").unwrap();
    assert_eq!(web["incidents"], 1);
    near(&web["downtime_s"], at(3) - at(1), 0, "downtime");
    near(&web["mttr_s"], at(3) - at(1), 0, "mttr");
    assert_eq!(web["restarts"], json!({"ok": 1, "failed": 0}));
    assert_eq!(web["alerts"], 1);
    let db = r["services"].as_array().unwrap().iter().find(|s| s["name"] == "db").unwrap();
    assert_eq!((db["incidents"].clone(), db["uptime"].clone()), (json!(0), json!(100.0)));
    // Every run is in the history, at its status file's time.
    let times: Vec<i64> = (0..docs.len()).map(at).collect();
    assert_eq!(result_times(&env.history_path(), "web"), times);
    assert_eq!(result_times(&env.history_path(), "db"), times);
}

#[test]
fn without_a_notifier_an_incident_is_not_alerted() {
    let env = Env::new();
    env.config(&format!("timeout: 1s\nservices:\n  - name: web\n    port: {}\n", closed_port()));
    env.check(&[]).code(2);
    let listed = incidents(&env);
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["alerted"], false, "no notifier: no alert was sent");
    let r = cmd(&env, &["report", "--format", "json"], &[]).json();
    assert_eq!(r["services"][0]["alerts"], 0);
}

/// A service `web` on `web.service` (only its unit checked) at `interval`.
fn unit_env(interval: &str, heal: &str) -> Env {
    let env = Env::new();
    env.fake_systemctl();
    env.unit("web.service", "active", "running", "success");
    env.config(&format!(
        "interval: {interval}\ntimeout: 2s\nheal: {heal}\nservices:\n  - name: web\n    unit: web.service\n"
    ));
    env
}

fn run_daemon(env: &Env) -> Daemon {
    let cfg = env.config_path().display().to_string();
    Daemon::start(env, &["run", "-c", &cfg], &[])
}

/// Waits for a status file (newer than `after`) in which `web` has `status`.
#[track_caller]
fn wait_for_web(env: &Env, status: &str, after: i64) -> Value {
    let mut seen = None;
    wait_until(Duration::from_secs(20), || {
        seen = status_now(env)
            .filter(|d| ts(&d["generated_at"]) > after && service(d, "web")["status"] == status);
        seen.is_some()
    });
    seen.unwrap()
}

#[test]
fn a_flip_through_the_daemon_is_one_incident_with_the_cycles_cause_and_restarts() {
    let env = unit_env("300ms", "{grace: 0s}");
    let mut d = run_daemon(&env);
    let up = wait_for_web(&env, "up", 0);
    env.unit("web.service", "failed", "failed", "exit-code");
    let down = wait_for_web(&env, "down", ts(&up["generated_at"]));
    wait_until(Duration::from_secs(20), || !env.systemctl_actions().is_empty());
    env.unit("web.service", "active", "running", "success");
    let healed = wait_for_web(&env, "up", ts(&down["generated_at"]));
    // One more cycle, so that the recovery is recorded before we look.
    let last = wait_for_web(&env, "up", ts(&healed["generated_at"]));

    // While it runs, /api/incidents says what the command says, byte for byte.
    let api = d.get("/api/incidents");
    assert_eq!(api.status, 200, "{}", api.text());
    let out = cmd(&env, &["incidents", "--format", "json"], &[]);
    out.code(0);
    assert_eq!(api.json(), out.json(), "the endpoint and the command disagree");
    stop(&mut d);
    assert!(daemon_warnings(&d).is_empty(), "{:#?}", d.log());

    let listed = incidents(&env);
    assert_eq!(listed.len(), 1, "{listed:#?}");
    let inc = &listed[0];
    let ring = ring(&last, "web");
    assert_eq!(incidents_of_ring(&ring), vec![span(inc)], "ring {ring:?}");
    assert_eq!(ts(&inc["started_at"]), ts(&service(&down, "web")["since"]));
    assert_eq!(ts(&inc["ended_at"]), ts(&service(&healed, "web")["since"]));
    assert_eq!(inc["cause"], cause_of(&service(&down, "web")));
    let restarts = restarts_of(&service(&last, "web"));
    assert!(!restarts.as_array().unwrap().is_empty());
    assert_eq!(at_ok(&inc["restarts"]), restarts, "the restarts the status file records");
    assert_eq!(
        env.systemctl_actions().len(),
        restarts.as_array().unwrap().len(),
        "{:?}",
        env.systemctl_calls()
    );
    // Every cycle of the ring is in the history, at its time.
    let recorded = result_times(&env.history_path(), "web");
    for (at, _) in &ring {
        assert!(recorded.contains(at), "cycle at {at} not in the history");
    }
}

/// Polls the daemon's `/api/incidents` until `cond` holds on its list.
#[track_caller]
fn wait_for_incidents(d: &Daemon, cond: impl Fn(&[Value]) -> bool) {
    wait_until(Duration::from_secs(20), || {
        let r = d.get("/api/incidents");
        r.status == 200 && cond(r.json()["incidents"].as_array().map_or(&[][..], |v| v))
    });
}

/// The rings of several status documents merged: every cycle any of them saw.
fn merged_ring(docs: &[&Value], name: &str) -> Vec<(i64, String)> {
    let mut all = BTreeMap::new();
    for d in docs {
        all.extend(ring(d, name));
    }
    all.into_iter().collect()
}

#[test]
fn an_incident_open_across_daemon_restarts_stays_one_and_ends_at_the_first_non_down_result() {
    let env = unit_env("250ms", "{enabled: false}");
    env.unit("web.service", "failed", "failed", "exit-code");

    // First daemon: the incident opens.
    let mut a = run_daemon(&env);
    let first = wait_for_web(&env, "down", 0);
    wait_for_incidents(&a, |l| l.len() == 1 && l[0]["ended_at"].is_null());
    stop(&mut a);
    let a_last = status_now(&env).unwrap();

    // Second daemon: still down (the same incident goes on), then it recovers.
    let mut b = run_daemon(&env);
    let b_down = wait_for_web(&env, "down", ts(&a_last["generated_at"]));
    wait_for_incidents(&b, |l| l.len() == 1);
    assert_eq!(incidents(&env).len(), 1, "the second daemon continues the incident");
    env.unit("web.service", "active", "running", "success");
    let b_up = wait_for_web(&env, "up", ts(&b_down["generated_at"]));
    // Down again, and stopped while down.
    env.unit("web.service", "failed", "failed", "exit-code");
    let b_down2 = wait_for_web(&env, "down", ts(&b_up["generated_at"]));
    wait_for_incidents(&b, |l| l.len() == 2 && l[0]["ended_at"].is_null());
    stop(&mut b);
    let b_last = status_now(&env).unwrap();
    let stopped_at = ts(&b_last["generated_at"]);

    // Third daemon: the service recovered while no monitor ran: the open
    // incident ends at the third daemon's first result, not at the stop.
    env.unit("web.service", "active", "running", "success");
    let mut c = run_daemon(&env);
    let c_up = wait_for_web(&env, "up", stopped_at);
    wait_for_incidents(&c, |l| l.len() == 2 && !l[0]["ended_at"].is_null());
    stop(&mut c);
    for d in [&a, &b, &c] {
        assert!(daemon_warnings(d).is_empty(), "{:#?}", d.log());
    }
    let c_last = status_now(&env).unwrap();

    let mut listed = incidents(&env);
    listed.reverse(); // oldest first
    assert_eq!(listed.len(), 2, "{listed:#?}");
    let spans: Vec<_> = listed.iter().map(span).collect();
    assert_eq!(spans[0].0, ts(&service(&first, "web")["since"]));
    assert_eq!(spans[0].1, Some(ts(&service(&b_up, "web")["since"])));
    assert_eq!(spans[1].0, ts(&service(&b_down2, "web")["since"]));
    // Every cycle of the three daemons, from their status rings.
    let ring = merged_ring(&[&a_last, &b_last, &c_last], "web");
    let c_first = ring.iter().find(|(at, _)| *at > stopped_at).expect("a cycle of the third");
    assert_eq!(spans[1].1, Some(c_first.0), "ended at the third daemon's first result");
    assert_eq!(c_first.0, ts(&service(&c_up, "web")["since"]));
    assert_eq!(incidents_of_ring(&ring), spans, "ring {ring:?}");
    for inc in &listed {
        assert_eq!(inc["cause"]["reason"], "unit_failed");
        assert_eq!(inc["restarts"], json!([]));
        assert_eq!(inc["alerted"], false);
    }
    // Nothing was lost across the restarts: every cycle has its result.
    assert_eq!(
        result_times(&env.history_path(), "web"),
        ring.iter().map(|(at, _)| *at).collect::<Vec<_>>()
    );
}

// ---- 2. writers and readers at once ----------------------------------------

/// Every history endpoint (and the others a dashboard polls), as readers hit them.
const ENDPOINTS: &[&str] = &[
    "/api/status",
    "/api/uptime",
    "/api/history?service=flap&since=24h&step=5m",
    "/api/history?service=web&since=90d&step=1d",
    "/api/incidents",
    "/api/incidents?service=flap&since=1h&limit=5",
    "/badge/web/status.svg",
    "/badge/flap/uptime/24h.svg",
    "/badge/web/uptime/90d.svg",
    "/metrics",
];

/// One GET; a connection that fails is an answer with status 0.
fn get(port: u16, path: &str) -> (u16, String) {
    let attempt = std::panic::catch_unwind(|| util::request(port, "GET", path, &[]));
    match attempt {
        Ok(r) => (r.status, r.text().chars().take(300).collect()),
        Err(_) => (0, "connection failed".into()),
    }
}

/// (at, status code) of every result of `name`, oldest first.
fn results(db: &Path, name: &str) -> Vec<(i64, i64)> {
    let c = sql(db);
    let mut st = c
        .prepare(
            "SELECT r.at, r.status FROM results r JOIN services s ON s.id = r.service_id
             WHERE s.name = ?1 ORDER BY r.at",
        )
        .unwrap();
    st.query_map([name], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().map(Result::unwrap).collect()
}

/// The incidents table of `name`: (started_at, ended_at), oldest first.
fn incident_rows(db: &Path, name: &str) -> Vec<(i64, Option<i64>)> {
    let c = sql(db);
    let mut st = c
        .prepare(
            "SELECT i.started_at, i.ended_at FROM incidents i JOIN services s
             ON s.id = i.service_id WHERE s.name = ?1 ORDER BY i.started_at",
        )
        .unwrap();
    st.query_map([name], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().map(Result::unwrap).collect()
}

#[test]
fn twenty_checks_a_daemon_and_readers_of_every_endpoint_at_once_lose_no_result() {
    const SECONDS: u64 = 30;
    let env = Env::new();
    let tcp = TcpFixture::new();
    let probes = env.path("probes.log");
    // `count` writes the tag of the process that probed it (from its
    // environment; pids are reused too soon): which cycles ran.
    // `flap` is down two seconds in four: incidents open and end throughout.
    env.config(&format!(
        "interval: 200ms\ntimeout: 2s\nservices:\n  - name: web\n    port: {}\n\
         \x20 - name: flap\n    checks: [{{type: command, argv: [sh, -c, 'test $(( $(date +%s) % 4 )) -lt 2 || exit 2']}}]\n\
         \x20 - name: count\n    checks: [{{type: command, argv: [sh, -c, 'echo $PROBE_TAG >> {}']}}]\n",
        tcp.port(),
        probes.display()
    ));
    let cfg = env.config_path().display().to_string();
    let mut daemon = Daemon::start(&env, &["run", "-c", &cfg], &[("PROBE_TAG", "daemon")]);
    let port = daemon.port;
    wait_until(Duration::from_secs(20), || get(port, "/api/status").0 == 200);

    let stop_readers = AtomicBool::new(false);
    let deadline = Instant::now() + Duration::from_secs(SECONDS);
    let (checks, reads) = std::thread::scope(|s| {
        let readers: Vec<_> = (0..4)
            .map(|r| {
                let stop = &stop_readers;
                s.spawn(move || {
                    let mut answers: Vec<(&str, u16, String)> = Vec::new();
                    let mut k = r;
                    // Bounded: the writers' deadline, and a count.
                    while !stop.load(Ordering::Relaxed) && answers.len() < 200_000 {
                        let path = ENDPOINTS[k % ENDPOINTS.len()];
                        let (status, body) = get(port, path);
                        answers.push((path, status, body));
                        k += 1;
                    }
                    answers
                })
            })
            .collect();
        let checkers: Vec<_> = (0..20)
            .map(|_| {
                let env = &env;
                let cfg = &cfg;
                s.spawn(move || {
                    let mut outs = Vec::new();
                    while Instant::now() < deadline && outs.len() < 10_000 {
                        let tag = util::unique("check-");
                        let args = ["check", "-c", cfg, "--format", "json"];
                        let c = env.command(&args, &[("PROBE_TAG", &tag)]);
                        outs.push((tag, util::run_bin(c)));
                    }
                    outs
                })
            })
            .collect();
        let checks: Vec<(String, Out)> =
            checkers.into_iter().flat_map(|t| t.join().unwrap()).collect();
        stop_readers.store(true, Ordering::Relaxed);
        let reads: Vec<_> = readers.into_iter().flat_map(|t| t.join().unwrap()).collect();
        (checks, reads)
    });
    stop(&mut daemon);

    // No error answer from any endpoint, and every endpoint was read.
    let errors: Vec<_> = reads.iter().filter(|(_, status, _)| *status != 200).collect();
    assert!(
        errors.is_empty(),
        "{} of {} answers were errors: {:#?}",
        errors.len(),
        reads.len(),
        &errors[..errors.len().min(10)]
    );
    for path in ENDPOINTS {
        assert!(reads.iter().filter(|(p, ..)| p == path).count() >= 5, "{path} hardly read");
    }
    // (It may say that a cycle outlasted the interval: it waited for the lock.)
    let log = daemon.log().join("\n");
    let db = env.history_path();
    let about_history = |l: &&str| l.contains(&db.display().to_string()) || l.contains("history");
    assert!(!warnings(&log).iter().any(about_history), "{log}");

    // Every `check` ended with the services' code, or 3 when the state lock
    // stayed busy (it probes before taking the lock, so a slow target never
    // keeps the daemon waiting; then it recorded nothing).
    let pids = std::fs::read_to_string(&probes).unwrap();
    let probed = |tag: &str| pids.lines().filter(|l| l.trim() == tag).count();
    let recorded: BTreeMap<&str, Vec<i64>> = ["web", "flap", "count"]
        .into_iter()
        .map(|name| (name, results(&db, name).into_iter().map(|(at, _)| at).collect()))
        .collect();
    let mut ok = 0;
    let mut locked_out = 0;
    for (tag, out) in &checks {
        util::assert_no_panic(out);
        assert!(warnings(&out.stderr).is_empty(), "a history warning under load: {}", out.stderr);
        match out.code {
            0..=2 => {
                ok += 1;
                assert_eq!(probed(tag), 1, "{out:#?}");
                let at = ts(&out.json()["generated_at"]);
                for (name, times) in &recorded {
                    assert!(
                        times.binary_search(&at).is_ok(),
                        "{name}: the check at {at} is not recorded"
                    );
                }
            }
            3 => {
                assert!(out.stderr.contains("lock"), "exit 3 for another reason: {out:#?}");
                assert!(probed(tag) <= 1, "{out:#?}");
                locked_out += probed(tag);
            }
            _ => panic!("unexpected exit: {out:#?}"),
        }
    }
    let cycles = probed("daemon");
    assert!(ok >= 20 && cycles >= 10, "too little happened: {ok} checks, {cycles} daemon cycles");
    assert_eq!(
        pids.lines().count(),
        ok + cycles + locked_out,
        "every probe was a check (exit 0-2, or 3 when the lock stayed busy) or a daemon cycle"
    );
    for (name, times) in &recorded {
        assert_eq!(times.len(), ok + cycles, "{name}: {ok} checks + {cycles} daemon cycles");
    }

    let mut store = chatstack_status::store::Store::open_read(&db).unwrap();
    assert_eq!(store.integrity_check().unwrap(), "ok");
    // Results were recorded in their order: the incidents are exactly the
    // down stretches of the results, and each service's mark is its newest.
    let flap = results(&db, "flap");
    let ring: Vec<(i64, String)> =
        flap.iter().map(|(at, s)| (*at, if *s == 2 { "down" } else { "up" }.to_string())).collect();
    let stretches = incidents_of_ring(&ring);
    assert!(stretches.len() >= 3, "flap flipped: {stretches:?}");
    assert_eq!(incident_rows(&db, "flap"), stretches);
    let c = sql(&db);
    for (name, times) in &recorded {
        let last: i64 = c
            .query_row("SELECT last_at FROM services WHERE name = ?1", [name], |r| r.get(0))
            .unwrap();
        assert_eq!(Some(&last), times.last(), "{name}: the mark is the newest result");
    }
    eprintln!(
        "{} checks ({ok} recorded, {} found the lock busy), {cycles} daemon cycles, {} answers",
        checks.len(),
        checks.len() - ok,
        reads.len()
    );
}

/// Waits until `cond` holds or `within` passes; says which (for waits that
/// may legitimately time out, e.g. for something the fixed code never does).
fn holds_within(within: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    cond()
}

#[test]
fn a_check_during_a_daemon_cycle_is_recorded_after_that_cycle() {
    // The daemon's cycle and a `check` take turns under the state lock; their
    // results must reach the history in that order. Hold the database's write
    // lock so that the daemon's first cycle is stuck recording, then run a
    // `check`: it must not get past the state lock (and so must not record)
    // before the daemon's cycle has. (When the daemon recorded after
    // unlocking, the check, whose retries were the more frequent, won about
    // nineteen times in twenty: its later result went in first, the mark went
    // backwards and an incident could open after the service was seen up.)
    let env = Env::new();
    let tcp = TcpFixture::new();
    env.config(&format!(
        "interval: 1h\ntimeout: 1s\nservices:\n  - name: web\n    port: {}\n",
        tcp.port()
    ));
    env.check(&[]).code(0);
    let db = env.history_path();
    let before = ts(&env.status()["generated_at"]);
    let holder = rusqlite::Connection::open(&db).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    let cfg = env.config_path().display().to_string();
    let mut d = Daemon::start(&env, &["run", "-c", &cfg, "--no-http"], &[]);
    // Its cycle has written the status: it is recording now, and waiting.
    wait_until(Duration::from_secs(10), || {
        status_now(&env).is_some_and(|s| ts(&s["generated_at"]) > before)
    });
    let daemon_at = ts(&env.status()["generated_at"]);
    let blocked = Instant::now();
    // Let SQLite's retries of the daemon back off to their longest (100 ms).
    holds_within(Duration::from_millis(300), || false);
    let check = std::thread::scope(|s| {
        let c = s.spawn(|| env.check(&[]));
        // Only the old order lets the check write its status now.
        let overtook = holds_within(Duration::from_millis(500), || {
            status_now(&env).is_some_and(|s| ts(&s["generated_at"]) > daemon_at)
        });
        assert!(
            blocked.elapsed() < Duration::from_millis(1500),
            "the hold must stay below the busy timeout"
        );
        holder.execute_batch("COMMIT").unwrap();
        let out = c.join().unwrap();
        (out, overtook)
    });
    let (out, overtook) = check;
    out.code(0);
    stop(&mut d);
    let check_at = ts(&env.status()["generated_at"]);
    assert!(check_at > daemon_at);
    assert!(!overtook, "the check ran its cycle while the daemon's was not yet recorded");
    assert!(warnings(&out.stderr).is_empty(), "{}", out.stderr);
    assert!(daemon_warnings(&d).is_empty(), "{:#?}", d.log());
    let times = result_times(&db, "web");
    assert_eq!(times[1..], [daemon_at, check_at]);
    let last: i64 = sql(&db).query_row("SELECT last_at FROM services", [], |r| r.get(0)).unwrap();
    assert_eq!(last, check_at, "the mark is the newest result");
}

// ---- 3. each fault, through `check` and the daemon -------------------------

/// A world for the fault tests: `web` up and `db` down, so the exit code is
/// 2 whatever the history does; a 300 ms interval for the daemon.
struct Faulty {
    env: Env,
    _tcp: TcpFixture,
    db: PathBuf,
}

const RECORD_WARNING: &str = "this cycle is not in the history (the next cycle tries again)";

impl Faulty {
    /// `history` is the database's path inside the env's directory.
    fn new(history: &str) -> Faulty {
        Self::with(history, "")
    }

    fn with(history: &str, extra: &str) -> Faulty {
        let env = Env::new();
        let tcp = TcpFixture::new();
        let db = env.path(history);
        env.config(&format!(
            "history_db: {db:?}\n{extra}interval: 300ms\ntimeout: 1s\n\
             services:\n  - name: web\n    port: {}\n  - name: db\n    port: {}\n",
            tcp.port(),
            closed_port()
        ));
        // The reference: the same cycle without a history gives this code.
        let off = f_check(&env, &[("CHATSTACK_HISTORY_DB", "off")]);
        off.code(2);
        assert!(!db.exists());
        Faulty { env, _tcp: tcp, db }
    }

    /// One `check`, with every guarantee of a cycle that a history fault
    /// must not cost asserted: the services' exit code, a new status file,
    /// and the state file of the same cycle. Returns it and its time.
    #[track_caller]
    fn check(&self) -> (Out, i64) {
        let before = status_now(&self.env).map(|s| ts(&s["generated_at"]));
        let out = f_check(&self.env, &[]);
        let at = self.cycle_written(&out, before);
        (out, at)
    }

    /// A `check` that records (no warning at all).
    #[track_caller]
    fn check_records(&self) -> i64 {
        let (out, at) = self.check();
        assert!(warnings(&out.stderr).is_empty(), "{}", out.stderr);
        assert!(self.recorded(&self.db, at), "the cycle at {at} is in the history");
        at
    }

    #[track_caller]
    fn cycle_written(&self, out: &Out, before: Option<i64>) -> i64 {
        self.cycle_files(out.code, &self.env.status(), &self.env.state(), before)
    }

    #[track_caller]
    fn cycle_files(&self, code: i32, status: &Value, state: &Value, before: Option<i64>) -> i64 {
        assert_eq!(code, 2, "the services' exit code");
        let at = ts(&status["generated_at"]);
        assert!(before.is_none_or(|b| at > b), "a new status file");
        assert_eq!(service(status, "web")["status"], "up");
        assert_eq!(service(status, "db")["status"], "down");
        let ring = state["services"]["web"]["history"].as_array().unwrap();
        assert_eq!(ts(&ring.last().unwrap()["at"]), at, "the state file of the same cycle");
        at
    }

    fn recorded(&self, db: &Path, at: i64) -> bool {
        db.exists() && ["web", "db"].iter().all(|s| result_times(db, s).contains(&at))
    }

    fn daemon(&self) -> Daemon {
        run_daemon(&self.env)
    }
}

#[track_caller]
fn f_check(env: &Env, vars: &[(&str, &str)]) -> Out {
    let cfg = env.config_path();
    env.cmd_env(&["check", "-c", cfg.to_str().unwrap()], vars)
}

/// Exactly one warning line, naming `db` and saying `says`.
#[track_caller]
fn one_warning(text: &str, db: &Path, says: &str) -> String {
    let w = warnings(text);
    assert_eq!(w.len(), 1, "exactly one warning line expected:\n{text}");
    assert!(w[0].contains(&db.display().to_string()), "the warning names the file: {}", w[0]);
    assert!(w[0].contains(says), "the warning says {says:?}: {}", w[0]);
    w[0].to_string()
}

/// `db` where SQLite can open it: SQLite resolves symbolic links in a path,
/// and `/proc/PID/root` (a daemon's private mount namespace) resolves to our
/// own root, so a database seen through it is read from a copy (the file and
/// its WAL: a consistent snapshot, the WAL's torn tail ignored by SQLite).
fn readable(db: &Path) -> (Option<tempfile::TempDir>, PathBuf) {
    if !db.starts_with("/proc") {
        return (None, db.to_path_buf());
    }
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("history.db");
    std::fs::copy(db, &copy).unwrap();
    let wal = PathBuf::from(format!("{}-wal", db.display()));
    if wal.exists() {
        std::fs::copy(&wal, dir.path().join("history.db-wal")).unwrap();
    }
    (Some(dir), copy)
}

/// The newest result time in `db` (reading it where the test sees it).
fn newest(db: &Path) -> Option<i64> {
    if !db.exists() {
        return None;
    }
    let (_keep, db) = readable(db);
    // A file just created has no tables until its first transaction ends.
    let c = rusqlite::Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY);
    c.ok()?
        .query_row(
            "SELECT max(r.at) FROM results r JOIN services s ON s.id = r.service_id
             WHERE s.name = 'web'",
            [],
            |r| r.get(0),
        )
        .ok()
        .flatten()
}

#[track_caller]
fn wait_recorded_after(read: &Path, t: i64) {
    wait_until(Duration::from_secs(20), || newest(read).is_some_and(|n| n > t));
}

/// Waits for `n` warning lines naming `db` in the daemon's log.
#[track_caller]
fn wait_warnings(d: &Daemon, db: &Path, n: usize) {
    let name = db.display().to_string();
    wait_until(Duration::from_secs(20), || {
        d.log().iter().filter(|l| l.starts_with(WARNING) && l.contains(&name)).count() >= n
    });
}

/// After a daemon started at `started` went through a fault in `[from, to]`
/// and its repair, read from `read` (where the test sees `f.db`): every
/// cycle wrote its status (the status ring has it), the cycles missing from
/// the history all fell in the fault, and each of them has exactly one
/// warning line naming the file and saying `says`. Returns how many were lost.
#[track_caller]
fn assert_daemon_went_on(
    f: &Faulty,
    d: &Daemon,
    read: &Path,
    says: &str,
    started: i64,
    (from, to): (i64, i64),
) -> usize {
    let (_keep, read) = readable(read);
    let recorded = result_times(&read, "web");
    let last = *recorded.last().expect("recorded after the repair");
    let ring: Vec<i64> = ring(&f.env.status(), "web")
        .into_iter()
        .map(|(at, _)| at)
        .filter(|at| *at >= started && *at <= last)
        .collect();
    assert!(ring.len() < 60, "the ring holds every cycle of the test");
    let missing: Vec<i64> = ring.iter().copied().filter(|at| !recorded.contains(at)).collect();
    // A cycle probed just before the fault may have been recorded into it.
    for at in &missing {
        assert!(*at >= from - 2_000 && *at <= to, "{at} lost outside the fault [{from}, {to}]");
    }
    let name = f.db.display().to_string();
    let log = d.log();
    let (about, other): (Vec<&String>, Vec<&String>) =
        log.iter().filter(|l| l.starts_with(WARNING)).partition(|l| l.contains(&name));
    assert_eq!(about.len(), missing.len(), "one warning per cycle not recorded: {log:#?}");
    for w in &about {
        assert!(w.contains(says), "the warning says {says:?}: {w}");
    }
    // Cycles that waited for the database may outlast the interval: said so.
    assert!(other.iter().all(|l| l.contains("longer than the interval")), "{other:#?}");
    missing.len()
}

#[test]
fn locked_past_the_busy_timeout_check_and_the_daemon_warn_once_and_go_on() {
    let f = Faulty::new("history.db");
    f.check_records();
    let holder = rusqlite::Connection::open(&f.db).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    let (out, at) = f.check();
    assert!(out.elapsed >= Duration::from_secs(2), "it waited the busy timeout");
    one_warning(
        &out.stderr,
        &f.db,
        &format!("history database locked by another process for more than 2s; {RECORD_WARNING}"),
    );
    assert!(!f.recorded(&f.db, at));
    holder.execute_batch("COMMIT").unwrap();
    f.check_records();

    // The daemon, started while another process holds the lock.
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    let from = Timestamp::now().0;
    let mut d = f.daemon();
    wait_warnings(&d, &f.db, 2);
    holder.execute_batch("COMMIT").unwrap();
    let to = Timestamp::now().0;
    wait_recorded_after(&f.db, to);
    let lost = assert_daemon_went_on(&f, &d, &f.db, "locked by another process", from, (from, to));
    assert!(lost >= 2);
    stop(&mut d);
    assert_eq!(
        chatstack_status::store::Store::open_read(&f.db).unwrap().integrity_check().unwrap(),
        "ok"
    );
}

fn corrupt_aside(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy().into_owned();
            n.starts_with("history.db.corrupt-") && !n.ends_with("-wal")
        })
        .collect();
    v.sort();
    v
}

fn garbage(len: u32) -> Vec<u8> {
    (0..len).map(|i| (i.wrapping_mul(7919) % 251) as u8).collect()
}

#[test]
fn a_corrupt_file_is_moved_aside_and_the_same_cycle_recorded_anew_by_check_and_the_daemon() {
    let f = Faulty::new("history.db");
    let dir = f.env.root().to_path_buf();
    // Not a database at all.
    std::fs::write(&f.db, garbage(20_000)).unwrap();
    let (out, at) = f.check();
    let w = one_warning(&out.stderr, &f.db, "history database was corrupt");
    let aside = corrupt_aside(&dir);
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert!(
        w.contains(&format!("moved it to {} and started a new one", aside[0].display())),
        "{w}"
    );
    assert_eq!(std::fs::read(&aside[0]).unwrap(), garbage(20_000), "moved, not altered");
    assert!(f.recorded(&f.db, at), "the same cycle, in the new file");
    f.check_records();

    // A real database whose pages were damaged on disk.
    damage(&f.db);
    let (out, at) = f.check();
    one_warning(&out.stderr, &f.db, "history database was corrupt");
    assert_eq!(corrupt_aside(&dir).len(), 2);
    assert!(f.recorded(&f.db, at));
    assert_eq!(result_times(&f.db, "web"), vec![at], "a new database");
    f.check_records();

    // The daemon, started on a damaged file (as after a crash of the disk).
    damage(&f.db);
    let started = Timestamp::now().0;
    let mut d = f.daemon();
    wait_warnings(&d, &f.db, 1);
    wait_recorded_after(&f.db, started);
    // The readers find the new file too.
    wait_until(Duration::from_secs(10), || d.get("/api/uptime").status == 200);
    let to = Timestamp::now().0;
    wait_recorded_after(&f.db, to);
    stop(&mut d);
    let log = daemon_warnings(&d).join("\n");
    one_warning(&log, &f.db, "history database was corrupt");
    assert_eq!(corrupt_aside(&dir).len(), 3);
    // No cycle lost: every cycle of the daemon is in the new file, the
    // first (which found the damage) included.
    let recorded = result_times(&f.db, "web");
    let cycles: Vec<i64> = ring(&f.env.status(), "web")
        .into_iter()
        .map(|(at, _)| at)
        .filter(|at| *at >= started && at <= recorded.last().unwrap())
        .collect();
    assert!(cycles.len() >= 2);
    assert_eq!(recorded, cycles, "every cycle of the daemon, in the new file");
    assert_eq!(
        chatstack_status::store::Store::open_read(&f.db).unwrap().integrity_check().unwrap(),
        "ok"
    );
}

/// Overwrites every page of a database but its first with junk, on disk
/// (its WAL checkpointed first, so that the damage is what SQLite reads).
fn damage(db: &Path) {
    {
        let c = rusqlite::Connection::open(db).unwrap();
        c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())).unwrap();
    }
    let mut bytes = std::fs::read(db).unwrap();
    assert!(bytes.len() > 8192, "{} bytes", bytes.len());
    let junk = garbage(bytes.len() as u32);
    bytes[4096..].copy_from_slice(&junk[4096..]);
    std::fs::write(db, &bytes).unwrap();
}

/// Runs `script` (sh, with `$BIN` the binary) in a private mount namespace,
/// in the env's environment (PATH, no CHATSTACK_ variables).
fn in_namespace(env: &Env, script: &str) -> Out {
    let path = env.write("ns.sh", script);
    let c = env.command_via_sh(&format!("BIN=\"$0\" exec unshare -m sh {path:?}"), &[]);
    let out = util::run_bin(c);
    util::assert_no_panic(&out);
    out
}

/// The outputs of the runs a namespace script made (`run N` below).
struct NsRun {
    code: i32,
    stderr: String,
    status: Value,
    state: Value,
}

const NS_RUN: &str = r#"run() {
    "$BIN" check -c "$CFG" >/dev/null 2>"$OUT/err$1"; echo $? >"$OUT/rc$1"
    cp "$STATUS" "$OUT/status$1.json"; cp "$STATE" "$OUT/state$1.json"
}
"#;

impl Faulty {
    fn ns_prelude(&self) -> String {
        let out = self.env.path("ns-out");
        std::fs::create_dir_all(&out).unwrap();
        format!(
            "set -u\nCFG={:?}\nOUT={:?}\nSTATUS={:?}\nSTATE={:?}\n{NS_RUN}",
            self.env.config_path(),
            out,
            self.env.status_path(),
            self.env.state_path()
        )
    }

    #[track_caller]
    fn ns_run(&self, n: u32) -> NsRun {
        let out = self.env.path("ns-out");
        let read = |f: &str| std::fs::read_to_string(out.join(f)).unwrap_or_default();
        NsRun {
            code: read(&format!("rc{n}")).trim().parse().expect("the run's exit code"),
            stderr: read(&format!("err{n}")),
            status: serde_json::from_str(&read(&format!("status{n}.json"))).expect("status"),
            state: serde_json::from_str(&read(&format!("state{n}.json"))).expect("state"),
        }
    }
}

#[test]
fn a_full_disk_check_and_the_daemon_warn_once_and_record_again_when_space_is_back() {
    if !crate::history::can_mount() {
        return;
    }
    let f = Faulty::new("mnt/history.db");
    let mnt = f.db.parent().unwrap().to_path_buf();
    std::fs::create_dir(&mnt).unwrap();
    let copy = f.env.path("ns-out/copy.db");
    let script = format!(
        "{}MNT={mnt:?}\nmount -t tmpfs -o size=1m tmpfs \"$MNT\" || exit 90\n\
         run 1\n\
         dd if=/dev/zero of=\"$MNT/filler\" bs=64k 2>/dev/null; [ -s \"$MNT/filler\" ] || exit 91\n\
         run 2\n\
         rm \"$MNT/filler\"\n\
         run 3\n\
         cp \"$MNT/history.db\" {copy:?}; [ -f \"$MNT/history.db-wal\" ] && cp \"$MNT/history.db-wal\" {copy:?}-wal\n\
         exit 0\n",
        f.ns_prelude()
    );
    let out = in_namespace(&f.env, &script);
    out.code(0);
    let runs: Vec<NsRun> = (1..=3).map(|n| f.ns_run(n)).collect();
    let mut before = None;
    let mut ats = Vec::new();
    for r in &runs {
        let at = f.cycle_files(r.code, &r.status, &r.state, before);
        before = Some(at);
        ats.push(at);
    }
    assert!(warnings(&runs[0].stderr).is_empty(), "{}", runs[0].stderr);
    one_warning(
        &runs[1].stderr,
        &f.db,
        &format!("cannot write the history database: disk full; {RECORD_WARNING}"),
    );
    assert!(warnings(&runs[2].stderr).is_empty(), "{}", runs[2].stderr);
    assert_eq!(result_times(&copy, "web"), vec![ats[0], ats[2]], "space back: recorded again");
    assert!(!f.db.exists(), "the tmpfs went with the namespace");

    // The daemon on a tmpfs of its own, filled from outside while it runs.
    let script = format!(
        "mount -t tmpfs -o size=1m tmpfs {mnt:?} && exec \"$0\" run -c {:?} --listen 127.0.0.1:0",
        f.env.config_path()
    );
    let c = f.env.command_via_sh(&format!("exec unshare -m sh -c {script:?} \"$0\""), &[]);
    let started = Timestamp::now().0;
    let mut d = Daemon::start_command(c, true);
    let root = PathBuf::from(format!("/proc/{}/root", d.pid()));
    let seen = |p: &Path| root.join(p.strip_prefix("/").unwrap());
    let read = seen(&f.db);
    wait_recorded_after(&read, 0);
    let from = Timestamp::now().0;
    {
        use std::io::Write;
        let mut filler = std::fs::File::create(seen(&mnt.join("filler"))).unwrap();
        let chunk = vec![0u8; 64 << 10];
        let mut full = false;
        for _ in 0..100 {
            if filler.write_all(&chunk).is_err() {
                full = true;
                break;
            }
        }
        assert!(full, "the tmpfs filled up");
    }
    wait_warnings(&d, &f.db, 1);
    let warned = ts(&f.env.status()["generated_at"]);
    // Monitoring goes on: new status files while the disk is full.
    wait_until(Duration::from_secs(10), || ts(&f.env.status()["generated_at"]) > warned);
    std::fs::remove_file(seen(&mnt.join("filler"))).unwrap();
    let to = Timestamp::now().0;
    wait_recorded_after(&read, to);
    assert_daemon_went_on(&f, &d, &read, "disk full", started, (from, to));
    stop(&mut d);
}

#[test]
fn a_read_only_directory_check_and_the_daemon_warn_once_and_record_when_writable_again() {
    if !crate::history::can_mount() {
        return;
    }
    let f = Faulty::new("hist/history.db");
    let dir = f.db.parent().unwrap().to_path_buf();
    std::fs::create_dir(&dir).unwrap();
    let ro =
        format!("mount --bind {dir:?} {dir:?} && mount -o remount,bind,ro {dir:?} || exit 90\n");
    // No database yet: it cannot be created.
    let out = in_namespace(&f.env, &format!("{}{ro}run 1\n", f.ns_prelude()));
    out.code(0);
    let r = f.ns_run(1);
    let first = f.cycle_files(r.code, &r.status, &r.state, None);
    one_warning(&r.stderr, &f.db, "read-only (directory");
    assert!(std::fs::read_dir(&dir).unwrap().next().is_none(), "nothing was created");
    // Writable again (outside the namespace): the next cycle records.
    let at = f.check_records();
    assert!(at > first);
    // An existing database in a directory that became read-only.
    let before = std::fs::read(&f.db).unwrap();
    let out = in_namespace(&f.env, &format!("{}{ro}run 2\n", f.ns_prelude()));
    out.code(0);
    let r = f.ns_run(2);
    let at = f.cycle_files(r.code, &r.status, &r.state, Some(at));
    one_warning(
        &r.stderr,
        &f.db,
        &format!("read-only (directory {} is not writable", dir.display()),
    );
    assert_eq!(std::fs::read(&f.db).unwrap(), before, "not one byte changed");
    assert!(!f.recorded(&f.db, at));
    f.check_records();

    // The daemon in a namespace where the directory is read-only, until
    // the test makes it writable there again.
    let script = format!(
        "mount --bind {dir:?} {dir:?} && mount -o remount,bind,ro {dir:?} && exec \"$0\" run -c {:?} --listen 127.0.0.1:0",
        f.env.config_path()
    );
    let c = f.env.command_via_sh(&format!("exec unshare -m sh -c {script:?} \"$0\""), &[]);
    let from = Timestamp::now().0;
    let mut d = Daemon::start_command(c, true);
    wait_warnings(&d, &f.db, 2);
    let fixed = std::process::Command::new("nsenter")
        .args(["-t", &d.pid().to_string(), "-m", "mount", "-o", "remount,bind,rw"])
        .arg(&dir)
        .status()
        .expect("nsenter");
    assert!(fixed.success());
    let to = Timestamp::now().0;
    wait_recorded_after(&f.db, to);
    let lost = assert_daemon_went_on(&f, &d, &f.db, "read-only", from, (from, to));
    assert!(lost >= 2);
    stop(&mut d);
}

#[test]
fn a_missing_directory_is_created_like_the_state_files_and_one_that_cannot_be_is_one_warning() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new();
    let tcp = TcpFixture::new();
    let (db, state) = (env.path("var/lib/a/history.db"), env.path("var/lib/b/state.json"));
    env.config(&format!(
        "history_db: {db:?}\nstate_file: {state:?}\nservices:\n  - name: web\n    port: {}\n",
        tcp.port()
    ));
    let out = env.check(&[]);
    out.code(0);
    assert!(warnings(&out.stderr).is_empty(), "{}", out.stderr);
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(db.parent().unwrap()), mode(state.parent().unwrap()), "like the state file's");
    assert_eq!((mode(db.parent().unwrap()), mode(&db)), (0o750, 0o640));
    assert_eq!(result_times(&db, "web"), vec![ts(&env.status()["generated_at"])]);

    // Under a regular file no directory can be made; once it is gone, one is.
    let f = Faulty::new("blocker/sub/history.db");
    f.env.write("blocker", "a file where a directory should be");
    let (out, at) = f.check();
    one_warning(
        &out.stderr,
        &f.db,
        &format!("cannot create directory {}", f.env.path("blocker/sub").display()),
    );
    assert!(out.stderr.contains(RECORD_WARNING), "{}", out.stderr);
    assert!(!f.recorded(&f.db, at));
    std::fs::remove_file(f.env.path("blocker")).unwrap();
    f.check_records();
    assert_eq!(mode(f.db.parent().unwrap()), 0o750);

    // The daemon: the same, repaired while it runs.
    std::fs::remove_dir_all(f.env.path("blocker")).unwrap();
    f.env.write("blocker", "again");
    let from = Timestamp::now().0;
    let mut d = f.daemon();
    wait_warnings(&d, &f.db, 2);
    std::fs::remove_file(f.env.path("blocker")).unwrap();
    let to = Timestamp::now().0;
    wait_recorded_after(&f.db, to);
    let lost = assert_daemon_went_on(&f, &d, &f.db, "cannot create directory", from, (from, to));
    assert!(lost >= 2);
    stop(&mut d);
}

fn set_schema(db: &Path, version: i64) {
    let c = rusqlite::Connection::open(db).unwrap();
    c.pragma_update(None, "user_version", version).unwrap();
}

#[test]
fn a_newer_schema_is_left_untouched_while_check_and_the_daemon_go_on() {
    let f = Faulty::new("history.db");
    f.check_records();
    set_schema(&f.db, 99);
    let before = std::fs::read(&f.db).unwrap();
    let says = "history database schema 99 is newer than this version understands (4); left untouched; no history is written";
    for _ in 0..2 {
        // Each cycle tries again, and leaves it alone again.
        let (out, at) = f.check();
        one_warning(&out.stderr, &f.db, says);
        assert_eq!(std::fs::read(&f.db).unwrap(), before, "not one byte changed");
        let wal = f.env.path("history.db-wal");
        assert!(std::fs::metadata(&wal).map_or(0, |m| m.len()) == 0, "nothing in its WAL either");
        assert!(f.env.service("web")["uptime"].is_null(), "no figures from a file not understood");
        assert!(!f.recorded(&f.db, at));
    }
    // Put back as this version knows it (say, by the operator): it records.
    set_schema(&f.db, 4);
    f.check_records();

    // The daemon: monitoring and the status go on, the history endpoints say why.
    set_schema(&f.db, 99);
    let from = Timestamp::now().0;
    let mut d = f.daemon();
    wait_warnings(&d, &f.db, 2);
    assert_eq!(d.get("/api/status").status, 200);
    let up = d.get("/api/uptime");
    assert_eq!(up.status, 503, "{}", up.text());
    assert!(
        up.json()["error"].as_str().unwrap().contains("newer than this version"),
        "{}",
        up.text()
    );
    set_schema(&f.db, 4);
    let to = Timestamp::now().0;
    wait_recorded_after(&f.db, to);
    wait_until(Duration::from_secs(10), || d.get("/api/uptime").status == 200);
    let lost = assert_daemon_went_on(
        &f,
        &d,
        &f.db,
        "left untouched; no history is written",
        from,
        (from, to),
    );
    assert!(lost >= 2);
    stop(&mut d);
}

// ---- 4. a seeded year served by `serve` ------------------------------------

/// The seeded timeline's latency figures over `[from, to)`: (min, avg, max)
/// of every result that has one, rounded as the API rounds them.
fn direct_latency(runs: &[Run], i: i64, from: i64, to: i64) -> Value {
    let (mut n, mut sum, mut min, mut max) = (0u64, 0.0f64, f64::MAX, f64::MIN);
    for r in runs {
        let first = ((from - r.start).max(0) + i - 1) / i;
        let mut k = first;
        while k < r.count && r.start + k * i < to {
            if let Some(l) = seed::latency(r.start + k * i, r.status, i) {
                n += 1;
                sum += l;
                min = min.min(l);
                max = max.max(l);
            }
            k += 1;
        }
    }
    let r3 = |v: f64| (v * 1000.0).round() / 1000.0;
    if n == 0 {
        json!({"min": null, "avg": null, "max": null})
    } else {
        json!({"min": r3(min), "avg": r3(sum / n as f64), "max": r3(max)})
    }
}

/// The seeded restarts: one per incident, in its first unmuted down run of
/// three results or more, two intervals in; ok unless its slot is a fifth.
fn direct_restarts(runs: &[Run], i: i64) -> BTreeMap<i64, Vec<Value>> {
    let mut out: BTreeMap<i64, Vec<Value>> = BTreeMap::new();
    let mut open: Option<(i64, bool)> = None;
    for r in runs {
        match (r.status, open) {
            (Health::Down, None) => open = Some((r.start, false)),
            (Health::Down, Some(_)) => {}
            (_, Some(_)) => open = None,
            _ => {}
        }
        if let (Health::Down, Some((start, false))) = (r.status, open)
            && r.count >= 3
            && !r.muted
        {
            let at = r.start + 2 * i;
            out.entry(start)
                .or_default()
                .push(json!({"at": Timestamp(at).to_string(), "ok": (at / i) % 5 != 0}));
            open = Some((start, true));
        }
    }
    out
}

/// `api` and `cmd` are the same document but for the numbers at `clock`
/// (JSON pointers), which depend on the moment of the query and may differ
/// by the `moved` seconds between the two queries.
#[track_caller]
fn same_but_the_clock(api: &Value, cmd: &Value, clock: &[String], moved: f64) {
    let (mut a, mut b) = (api.clone(), cmd.clone());
    for p in clock {
        let (x, y) = (a.pointer(p).and_then(Value::as_f64), b.pointer(p).and_then(Value::as_f64));
        let (x, y) = (x.unwrap_or_else(|| panic!("{p} in {api}")), y.expect("in the command's"));
        assert!((x - y).abs() <= moved + 0.001, "{p}: {x} vs {y} ({moved} s apart)");
        *a.pointer_mut(p).unwrap() = Value::Null;
        *b.pointer_mut(p).unwrap() = Value::Null;
    }
    assert!(a == b, "the endpoint and the command disagree:\napi {a:#}\ncmd {b:#}");
}

/// `/badge/…/uptime/W.svg`'s percent: the figure, floored to two decimals.
fn badge_percent(svg: &str) -> f64 {
    let re = regex::Regex::new(r">([0-9.]+)%<").unwrap();
    re.captures(svg).unwrap_or_else(|| panic!("no percent in {svg}"))[1].parse().unwrap()
}

#[test]
fn a_seeded_year_served_by_serve_answers_every_endpoint_and_command_as_computed_directly() {
    let env = Env::new();
    let db = env.history_path();
    // Seeded as of two minutes ago: the last results' spans (2 × 30 s) have
    // closed, so only the windows' ends move with the clock.
    let now = Timestamp(Timestamp::now().0 - 120_000);
    let started = Instant::now();
    let spec = SeedSpec::year(now);
    let out = env.cmd(&["__seed-history", "--db", db.to_str().unwrap(), "--now", &now.to_string()]);
    out.code(0);
    assert!(out.stdout.contains("seeded 10 services"), "{}", out.stdout);
    let seeded = out.stdout.clone();
    let i = spec.interval_ms();
    let runs: Vec<Vec<Run>> = (0..spec.services).map(|k| seed::runs(&spec, k)).collect();
    let names: Vec<String> = (0..spec.services).map(seed::service_name).collect();
    let mut yaml = String::from("services:\n");
    for n in &names {
        yaml.push_str(&format!("  - name: {n}\n    port: {}\n", closed_port()));
    }
    env.config(&yaml);
    // A status file for /api/status and the metrics, with the uptime figures
    // of the seeded year: a `check` whose own cycle goes into a copy.
    let copy = env.path("copy.db");
    std::fs::copy(&db, &copy).unwrap();
    assert!(!env.path("history.db-wal").exists(), "the seeder left the file complete");
    let checked = f_check(&env, &[("CHATSTACK_HISTORY_DB", copy.to_str().unwrap())]);
    checked.code(2);
    let status = env.status();
    let cfg = env.config_path().display().to_string();
    let d = Daemon::start(&env, &["serve", "-c", &cfg], &[]);

    // /api/status: the status file, with the seeded uptime per service.
    let s = d.get("/api/status");
    assert_eq!(s.status, 200);
    let at = ts(&status["generated_at"]);
    for (k, name) in names.iter().enumerate() {
        let u = &service(&s.json(), name)["uptime"];
        for (label, w) in [("24h", 1), ("7d", 7), ("30d", 30)] {
            let from = at - w * 86_400_000;
            let t = direct(&runs[k], i, from, at, at);
            let counted = t[0] + t[1] + t[2];
            let tol = accounting_edge(&runs[k], i, from, at) as f64 * 100.0 / counted as f64;
            let want = (t[0] + t[1]) as f64 * 100.0 / counted as f64;
            let got = u[label].as_f64().unwrap();
            assert!((got - want).abs() <= tol + 0.0001, "{name} {label}: {got} vs {want}");
        }
    }
    // /metrics: the same figures as ratios.
    let m = d.get("/metrics");
    assert_eq!(m.status, 200);
    let metrics = m.text();
    for name in &names {
        let u = service(&status, name)["uptime"]["30d"].as_f64().unwrap();
        let line = format!("chatstack_service_uptime_ratio{{service=\"{name}\",window=\"30d\"}} ");
        let v: f64 = metrics
            .lines()
            .find_map(|l| l.strip_prefix(&line))
            .unwrap_or_else(|| panic!("no {line} in\n{metrics}"))
            .parse()
            .unwrap();
        assert!((v - u / 100.0).abs() < 1e-6, "{name}: {v} vs {u}");
    }

    // /api/uptime: every service, every window, against the timeline.
    let up = d.get("/api/uptime");
    assert_eq!(up.status, 200, "{}", up.text());
    let up = up.json();
    let q = ts(&up["generated_at"]);
    let listed: Vec<&str> =
        up["services"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(listed, names.iter().map(String::as_str).collect::<Vec<_>>(), "config order");
    for (k, svc) in up["services"].as_array().unwrap().iter().enumerate() {
        for (label, len) in [
            ("1h", 3_600_000),
            ("24h", 86_400_000),
            ("7d", 7 * 86_400_000),
            ("30d", 30 * 86_400_000),
            ("90d", 90 * 86_400_000),
            ("365d", 365 * 86_400_000),
        ] {
            let f = &svc["windows"][label];
            let from = q - len;
            let t = direct(&runs[k], i, from, q, q);
            let edge = accounting_edge(&runs[k], i, from, q) + 1;
            let what = format!("{} {label}", names[k]);
            for (key, v) in ["up_s", "degraded_s", "down_s", "maintenance_s"].iter().zip(t) {
                near(&f[key], v, edge, &format!("{what} {key}"));
            }
            let covered: i64 = t.iter().sum();
            near(&f["nodata_s"], len - covered, edge, &format!("{what} nodata"));
            let coverage = f["coverage"].as_f64().unwrap();
            assert!(
                (coverage - covered as f64 / len as f64).abs() <= edge as f64 / len as f64 + 1e-6
            );
            let counted = t[0] + t[1] + t[2];
            if counted == 0 {
                assert_eq!(f["uptime"], Value::Null, "{what}");
            } else {
                let want = (t[0] + t[1]) as f64 * 100.0 / counted as f64;
                let got = f["uptime"].as_f64().unwrap();
                assert!(
                    (got - want).abs() <= edge as f64 * 100.0 / counted as f64 + 0.0001,
                    "{what}: {got} vs {want}"
                );
            }
        }
    }
    // Badges: the status from the status file, the uptime from the store.
    for (k, name) in names.iter().enumerate() {
        let b = d.get(&format!("/badge/{name}/status.svg"));
        assert_eq!(b.status, 200);
        assert_eq!(b.header("cache-control").as_deref(), Some("max-age=30"));
        assert!(b.text().contains(">down<"), "{}", b.text());
        for w in ["24h", "7d", "30d", "90d"] {
            let b = d.get(&format!("/badge/{name}/uptime/{w}.svg"));
            assert_eq!(b.status, 200, "{}", b.text());
            let want = up["services"][k]["windows"][w]["uptime"].as_f64().unwrap();
            let got = badge_percent(&b.text());
            assert!(
                got <= want + 1e-9 && want - got < 0.011,
                "{name} {w}: badge {got}, uptime {want}"
            );
        }
    }
    assert_eq!(d.get("/badge/nope/status.svg").status, 404);
    assert_eq!(d.get("/badge/svc-01/uptime/365d.svg").status, 404);

    // /api/history: day buckets over 90 days and 5-minute ones over a day,
    // bucket by bucket against the timeline, and equal to the command's.
    for (k, since, step, step_ms, n) in [
        (3, "90d", "1d", 86_400_000i64, 91usize),
        (9, "24h", "5m", 300_000, 289),
        (0, "7d", "1h", 3_600_000, 169),
    ] {
        let name = &names[k];
        let path = format!("/api/history?service={name}&since={since}&step={step}");
        let t0 = Instant::now();
        let before = Timestamp::now().0;
        let api = d.get(&path);
        let out = cmd(
            &env,
            &["history", name, "--since", since, "--step", step, "--format", "json"],
            &[],
        );
        let moved = t0.elapsed().as_secs_f64();
        assert_eq!(api.status, 200, "{}", api.text());
        out.code(0);
        let (api, doc) = (api.json(), out.json());
        assert_eq!(api["step_s"], step_ms / 1000);
        let buckets = api["buckets"].as_array().unwrap();
        assert_eq!(buckets.len(), n, "{path}");
        assert_eq!(ts(&api["since"]), (before - ms_of(since)).div_euclid(step_ms) * step_ms);
        for (j, b) in buckets.iter().enumerate() {
            let at = ts(&b["at"]);
            assert_eq!(at, ts(&api["since"]) + j as i64 * step_ms);
            let t = direct(&runs[k], i, at, at + step_ms, before);
            for (key, v) in ["up_s", "degraded_s", "down_s", "maintenance_s"].iter().zip(t) {
                near(&b[key], v, 0, &format!("{path} {} {key}", b["at"]));
            }
            let lat = direct_latency(&runs[k], i, at, at + step_ms);
            for key in ["min", "avg", "max"] {
                let (g, w) = (&b["latency_ms"][key], &lat[key]);
                assert!(
                    g.as_f64().zip(w.as_f64()).map_or(g == w, |(g, w)| (g - w).abs() < 0.0011),
                    "{path} {} latency {key}: {g} vs {w}",
                    b["at"]
                );
            }
        }
        let last = format!("/buckets/{}/nodata_s", n - 1);
        same_but_the_clock(&api, &doc, &[last], moved);
    }
    assert_eq!(d.get("/api/history?service=svc-00&since=500d").status, 400);
    assert_eq!(d.get("/api/history?service=svc-00&step=30s").status, 400);
    assert_eq!(d.get("/api/history?service=nope").status, 404);

    // /api/incidents: svc-09's last 30 days exactly as the timeline has them
    // (its last incident still open), and every service's by default.
    let name = &names[9];
    let t0 = Instant::now();
    let before = Timestamp::now().0;
    let api = d.get(&format!("/api/incidents?service={name}&since=30d&limit=1000"));
    let out = cmd(
        &env,
        &["incidents", name, "--since", "30d", "--limit", "1000", "--format", "json"],
        &[],
    );
    let moved = t0.elapsed().as_secs_f64();
    assert_eq!(api.status, 200);
    out.code(0);
    let api = api.json();
    let listed = api["incidents"].as_array().unwrap();
    let mut want = direct_incidents(&runs[9]);
    want.retain(|(_, e, _)| e.is_none_or(|e| e >= before - 30 * 86_400_000));
    want.reverse();
    let got: Vec<(i64, Option<i64>, bool)> =
        listed.iter().map(|x| (span(x).0, span(x).1, x["muted"] == true)).collect();
    assert_eq!(got, want);
    let restarts = direct_restarts(&runs[9], i);
    for x in listed {
        let (s, e) = span(x);
        assert_eq!(x["service"], name.as_str());
        assert_eq!(
            x["cause"],
            json!({"type": "http", "target": "http://127.0.0.1:5009/health", "reason": "refused", "detail": "connection refused"})
        );
        assert_eq!(
            at_ok(&x["restarts"]),
            Value::Array(restarts.get(&s).cloned().unwrap_or_default()),
            "{x}"
        );
        assert_eq!(x["alerted"], x["muted"] == false, "the seed alerts unmuted incidents");
        if let Some(e) = e {
            near(&x["duration_s"], e - s, 0, "duration");
        }
    }
    assert_eq!(listed[0]["ended_at"], Value::Null, "open");
    same_but_the_clock(&api, &out.json(), &["/incidents/0/duration_s".to_string()], moved);
    let t0 = Instant::now();
    let api = d.get("/api/incidents");
    let out = cmd(&env, &["incidents", "--format", "json"], &[]);
    let moved = t0.elapsed().as_secs_f64();
    let api = api.json();
    let open: Vec<String> = api["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .filter(|(_, x)| x["ended_at"].is_null())
        .map(|(k, _)| format!("/incidents/{k}/duration_s"))
        .collect();
    assert_eq!(api["incidents"].as_array().unwrap().len(), 50, "the default limit");
    same_but_the_clock(&api, &out.json(), &open, moved);

    // Every command answers, and the report agrees with the timeline.
    let drift = || 2 * (started.elapsed().as_millis() as i64 + 1000);
    for since in ["365d", "30d"] {
        let out = cmd(&env, &["report", "--since", since, "--format", "json"], &[]);
        out.code(0);
        assert_report_matches(&out.json(), &spec, &drift);
    }
    let md = cmd(&env, &["report", "--since", "365d", "--format", "markdown"], &[]);
    md.code(0);
    let text = cmd(&env, &["report", "--since", "90d"], &[]);
    text.code(0);
    for name in &names {
        assert!(md.stdout.contains(&format!("| {name} |")), "{}", md.stdout);
        assert!(
            text.stdout.lines().any(|l| l.trim_start().starts_with(name.as_str())),
            "{}",
            text.stdout
        );
    }
    let csv = cmd(&env, &["history", "--since", "24h", "--step", "1h", "--format", "csv"], &[]);
    csv.code(0);
    assert_eq!(csv.stdout.lines().count(), 1 + 10 * 25);
    cmd(&env, &["history", &names[2], "--since", "30d", "--step", "1d"], &[]).code(0);
    let inc = cmd(&env, &["incidents", "--since", "90d"], &[]);
    inc.code(0);
    assert!(inc.stdout.contains("ongoing"), "{}", inc.stdout);
    // Readers only: the seeded file holds what was seeded.
    let results: u64 = seeded
        .split(" services: ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("the seed's summary");
    let mut store = chatstack_status::store::Store::open_read(&db).unwrap();
    assert_eq!(store.result_count(None).unwrap(), results);
}

/// "90d", "24h", "7d" in milliseconds.
fn ms_of(since: &str) -> i64 {
    let (n, unit) = since.split_at(since.len() - 1);
    n.parse::<i64>().unwrap() * if unit == "d" { 86_400_000 } else { 3_600_000 }
}

// ---- 5. the file across cron runs -----------------------------------------

#[test]
fn check_runs_from_cron_leave_no_growing_wal_behind() {
    // Each `check` is a new process, the database's only user: SQLite then
    // rebuilds the WAL index from the WAL on open and forgets what earlier
    // checkpoints copied, so a WAL left at close is read whole, copied whole
    // and appended to by every later run (it grew by a cycle's pages, ~70 KB,
    // per run, forever: 100 MB a day from a minutely cron). Left complete at
    // close, the next run starts from the database file alone.
    let env = Env::new();
    let tcp = TcpFixture::new();
    let mut yaml = String::from("timeout: 1s\nservices:\n");
    for k in 0..4 {
        yaml.push_str(&format!("  - name: s{k}\n    port: {}\n", tcp.port()));
    }
    env.config(&yaml);
    let wal = env.path("history.db-wal");
    let wal_len = || std::fs::metadata(&wal).map_or(0, |m| m.len());
    let mut sizes = Vec::new();
    for _ in 0..12 {
        env.check(&[]).code(0);
        sizes.push(wal_len());
    }
    assert!(sizes.iter().all(|s| *s == 0), "the WAL after each run: {sizes:?}");
    assert_eq!(result_times(&env.history_path(), "s3").len(), 12);
    let mut store = chatstack_status::store::Store::open_read(&env.history_path()).unwrap();
    assert_eq!(store.integrity_check().unwrap(), "ok");
}
