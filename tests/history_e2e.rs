//! The history store end to end through the real binary: an incident across
//! `check` runs, across daemon cycles and across a daemon restart, compared
//! with the status files of the same runs; 20 `check`s at once plus a daemon
//! plus readers of every endpoint, every result counted; each fault of the
//! SPEC hitting a real `check` (and a real daemon where it matters); and a
//! seeded year served by `serve`, cross-checked against a direct computation
//! and against the commands' JSON.
//!
//! Store-level tests (a `Recorder` in a child process) and the commands on a
//! small seeded database are in tests/history.rs; the direct computation
//! from a seeded timeline is shared from there.

use crate::history::{near, ts};
use crate::util::{self, Daemon, Env, Out, TcpFixture, closed_port, wait_until};

use rustix::process::Signal;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::Path;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const WARNING: &str = "chatstack-status: warning:";

fn warnings(lines: &str) -> Vec<&str> {
    lines.lines().filter(|l| l.starts_with(WARNING)).collect()
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
    assert_eq!(inc["restarts"], restarts_of(&healed));
    assert_eq!(inc["restarts"], restarts_of(&service(&docs[4], "web")));
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
    assert!(warnings(&d.log().join("\n")).is_empty(), "{:#?}", d.log());

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
    assert_eq!(inc["restarts"], restarts, "the restarts the status file records");
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
        assert!(warnings(&d.log().join("\n")).is_empty(), "{:#?}", d.log());
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
    // stayed busy (it then probed and recorded nothing).
    let pids = std::fs::read_to_string(&probes).unwrap();
    let probed = |tag: &str| pids.lines().filter(|l| l.trim() == tag).count();
    let recorded: BTreeMap<&str, Vec<i64>> = ["web", "flap", "count"]
        .into_iter()
        .map(|name| (name, results(&db, name).into_iter().map(|(at, _)| at).collect()))
        .collect();
    let mut ok = 0;
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
                assert_eq!(probed(tag), 0, "{out:#?}");
            }
            _ => panic!("unexpected exit: {out:#?}"),
        }
    }
    let cycles = probed("daemon");
    assert!(ok >= 20 && cycles >= 10, "too little happened: {ok} checks, {cycles} daemon cycles");
    assert_eq!(
        pids.lines().count(),
        ok + cycles,
        "every probe was a check that exited 0-2 or a daemon cycle"
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
    assert!(warnings(&d.log().join("\n")).is_empty(), "{:#?}", d.log());
    let times = result_times(&db, "web");
    assert_eq!(times[1..], [daemon_at, check_at]);
    let last: i64 = sql(&db).query_row("SELECT last_at FROM services", [], |r| r.get(0)).unwrap();
    assert_eq!(last, check_at, "the mark is the newest result");
}
