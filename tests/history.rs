//! The history store end to end at the store level: every fault of the SPEC
//! in a real child process (its one warning line asserted; disk full and a
//! read-only directory in a private mount namespace with a real tmpfs and a
//! real read-only bind mount), writers and readers at once across threads
//! and processes, and the `history`/`incidents`/`report` commands of the real
//! binary on a seeded database, cross-checked against a direct computation
//! from the seeded timeline.

use crate::util::{self, Env, Out};
use chatstack_status::config::{HistoryConfig, Retention};
use chatstack_status::state::{Health, RestartOutcome};
use chatstack_status::store::seed::{self, Run, SeedSpec};
use chatstack_status::store::{
    CheckProblem, CycleRecord, ReaderPool, Recorder, RestartRun, ServiceRecord, Store, StoreError,
};
use chatstack_status::time::Timestamp;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const CHILD_ENV: &str = "CHATSTACK_TEST_HISTORY_CHILD";

/// Cycles each concurrent writer records at least (then it stops after 4 s):
/// a count, not a time, so a loaded machine slows the test but cannot fail it.
const MIN_CYCLES: i64 = 12;

fn service(name: &str, status: Health) -> ServiceRecord {
    ServiceRecord {
        name: name.into(),
        status,
        latency_ms: Some(4.2),
        muted: false,
        problems: if status == Health::Up {
            Vec::new()
        } else {
            vec![CheckProblem {
                kind: "http".into(),
                target: "http://127.0.0.1:5000/health".into(),
                status: status.as_str().into(),
                reason: Some("refused".into()),
                detail: "connection refused ".repeat(20),
            }]
        },
        restarts: if status == Health::Down {
            vec![RestartRun { at: Timestamp::now(), ok: true, outcome: RestartOutcome::Pending }]
        } else {
            Vec::new()
        },
        alerted: status == Health::Down,
        outcomes: Vec::new(),
    }
}

fn cycle(at: Timestamp, services: Vec<ServiceRecord>) -> CycleRecord {
    CycleRecord {
        at,
        interval: Duration::from_secs(30),
        services,
        samples: Vec::new(),
        resources: Vec::new(),
    }
}

fn names(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i:03}")).collect()
}

fn kind(e: &StoreError) -> &'static str {
    match e {
        StoreError::Disabled => "disabled",
        StoreError::Missing { .. } => "missing",
        StoreError::Locked { .. } => "locked",
        StoreError::Corrupt { .. } => "corrupt",
        StoreError::DiskFull { .. } => "disk_full",
        StoreError::ReadOnly { .. } => "read_only",
        StoreError::CannotOpen { .. } => "cannot_open",
        StoreError::NewerSchema { .. } => "newer_schema",
        StoreError::OlderSchema { .. } => "older_schema",
        StoreError::Foreign { .. } => "foreign",
        StoreError::Sqlite { .. } => "sqlite",
    }
}

fn step(r: Result<(), StoreError>) -> Value {
    match r {
        Ok(()) => json!({"ok": true}),
        Err(e) => json!({"ok": false, "kind": kind(&e), "error": e.to_string()}),
    }
}

/// Runs in a child process (see `run_child`): plays one scenario with a
/// `Recorder`, as a cycle would, and writes what each step returned to
/// `$DIR/report.json`. Ignored in normal runs: the fault tests start it.
#[test]
#[ignore = "helper: started by the history fault tests in a child process"]
fn child_process() {
    let Ok(scenario) = std::env::var(CHILD_ENV) else { return };
    let dir = PathBuf::from(std::env::var("DIR").expect("DIR"));
    let db = PathBuf::from(
        std::env::var("DB").unwrap_or_else(|_| dir.join("history.db").display().to_string()),
    );
    let busy = std::env::var("BUSY_MS").ok().and_then(|v| v.parse().ok()).unwrap_or(2000);
    let cfg = HistoryConfig {
        path: Some(db.clone()),
        retention: Retention::default(),
        busy_timeout: Duration::from_millis(busy),
    };
    let mut rec = Recorder::new(&cfg);
    let now = Timestamp::now();
    let small = |k: i64| {
        cycle(
            Timestamp(now.0 + k * 30_000),
            vec![service("web", Health::Up), service("db", Health::Down)],
        )
    };
    let mut steps = Vec::new();
    match scenario.as_str() {
        "once" => steps.push(step(rec.record(&small(0)))),
        "disk_full" => {
            steps.push(step(rec.record(&small(0))));
            // Fill the filesystem the way another program would.
            let filler = dir.join("filler");
            let mut f = std::fs::File::create(&filler).expect("filler");
            let chunk = vec![0u8; 64 << 10];
            let mut full = false;
            for _ in 0..10_000 {
                if std::io::Write::write_all(&mut f, &chunk).is_err() {
                    full = true;
                    break;
                }
            }
            assert!(full, "the tmpfs never filled up");
            let big: Vec<ServiceRecord> =
                names("svc", 300).iter().map(|n| service(n, Health::Down)).collect();
            steps.push(step(rec.record(&cycle(Timestamp(now.0 + 30_000), big))));
            drop(f);
            std::fs::remove_file(&filler).expect("rm filler");
            steps.push(step(rec.record(&small(2))));
        }
        "writer" => {
            // Concurrency: record up to CYCLES cycles of SERVICES services,
            // for at most SECONDS, and say how many were recorded.
            let prefix = std::env::var("PREFIX").expect("PREFIX");
            let cycles: i64 = std::env::var("CYCLES").expect("CYCLES").parse().expect("n");
            let until = Instant::now() + Duration::from_secs(4);
            let mut done = 0;
            let mut errors = Vec::new();
            for k in 0..cycles {
                // At least MIN_CYCLES however loaded the machine, then until 4 s pass.
                if k >= MIN_CYCLES && Instant::now() > until {
                    break;
                }
                let status = if k % 7 == 3 { Health::Down } else { Health::Up };
                let svcs = names(&prefix, 3).iter().map(|n| service(n, status)).collect();
                match rec.record(&cycle(Timestamp(now.0 + k * 30_000), svcs)) {
                    Ok(()) => done += 1,
                    Err(e) => errors.push(e.to_string()),
                }
            }
            steps.push(json!({"ok": errors.is_empty(), "cycles": done, "errors": errors}));
        }
        other => panic!("unknown scenario {other}"),
    }
    let report = std::env::var("REPORT").expect("REPORT");
    std::fs::write(report, serde_json::to_vec(&steps).expect("json")).expect("report");
}

struct Child {
    out: Out,
    steps: Vec<Value>,
}

impl Child {
    fn warnings(&self) -> Vec<&str> {
        self.out.stderr.lines().filter(|l| l.starts_with("chatstack-status: warning:")).collect()
    }

    #[track_caller]
    fn one_warning(&self, about: &Path, says: &str) -> &str {
        let w = self.warnings();
        assert_eq!(w.len(), 1, "exactly one warning line expected; stderr:\n{}", self.out.stderr);
        assert!(
            w[0].contains(&about.display().to_string()),
            "the warning names the file: {}",
            w[0]
        );
        assert!(w[0].contains(says), "the warning says {says:?}: {}", w[0]);
        w[0]
    }
}

/// Starts this test binary again to run `child_process` with `scenario`;
/// `setup` (run as sh with `$DIR` set, before exec) makes a private mount
/// namespace first when given.
fn run_child(scenario: &str, dir: &Path, setup: Option<&str>, env: &[(&str, &str)]) -> Child {
    std::fs::create_dir_all(dir).expect("child dir");
    let exe = std::env::current_exe().expect("test binary");
    let args =
        ["history::child_process", "--exact", "--ignored", "--nocapture", "--test-threads=1", "-q"];
    let mut c = match setup {
        Some(script) => {
            let mut c = Command::new("unshare");
            c.args(["-m", "sh", "-c", &format!("{script} && exec \"$@\""), "sh"])
                .arg(&exe)
                .args(args);
            c
        }
        None => {
            let mut c = Command::new(&exe);
            c.args(args);
            c
        }
    };
    // The report goes beside the directory: a private mount may hide it.
    let report = dir.with_file_name(format!(
        "{}.report.json",
        dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
    ));
    c.env(CHILD_ENV, scenario)
        .env("DIR", dir)
        .env("REPORT", &report)
        .env_remove("JOURNAL_STREAM")
        .stdin(Stdio::null());
    for (k, v) in env {
        c.env(k, v);
    }
    let out = util::run_bin(c);
    assert_eq!(out.code, 0, "child failed: {out:#?}");
    let bytes = std::fs::read(&report).unwrap_or_else(|_| panic!("no report: {out:#?}"));
    let steps = serde_json::from_slice(&bytes).expect("report json");
    let _ = std::fs::remove_file(&report);
    Child { out, steps }
}

/// Private mount namespaces need root; say so rather than pass silently.
pub(crate) fn can_mount() -> bool {
    if rustix::process::geteuid().is_root() {
        return true;
    }
    eprintln!("SKIPPED: needs root for a private mount namespace (unshare -m)");
    false
}

#[test]
fn disk_full_is_one_warning_and_the_next_cycle_records() {
    if !can_mount() {
        return;
    }
    let env = Env::new();
    let dir = env.path("mnt");
    std::fs::create_dir(&dir).unwrap();
    let child = run_child("disk_full", &dir, Some("mount -t tmpfs -o size=1m tmpfs \"$DIR\""), &[]);
    let db = dir.join("history.db");
    assert_eq!(child.steps[0]["ok"], true, "{:?}", child.steps);
    assert_eq!(child.steps[1]["kind"], "disk_full", "{:?}", child.steps);
    assert_eq!(
        child.steps[2]["ok"], true,
        "space freed: the next cycle records ({:?})",
        child.steps
    );
    child.one_warning(
        &db,
        "disk full; this cycle is not in the history (the next cycle tries again)",
    );
    // The tmpfs went with the namespace; nothing was written to the real directory.
    assert!(!db.exists());
}

#[test]
fn a_read_only_directory_is_one_warning_and_nothing_else() {
    if !can_mount() {
        return;
    }
    let ro = "mount --bind \"$DIR\" \"$DIR\" && mount -o remount,bind,ro \"$DIR\"";
    // No database yet: it cannot be created.
    let env = Env::new();
    let dir = env.path("ro-new");
    std::fs::create_dir(&dir).unwrap();
    let child = run_child("once", &dir, Some(ro), &[]);
    assert_eq!(child.steps[0]["kind"], "read_only", "{:?}", child.steps);
    child.one_warning(&dir.join("history.db"), "read-only");
    assert!(!dir.join("history.db").exists());

    // An existing database in a directory that became read-only.
    let dir = env.path("ro-existing");
    let db = dir.join("history.db");
    let cfg = HistoryConfig { path: Some(db.clone()), ..HistoryConfig::default() };
    Store::open(&cfg)
        .unwrap()
        .record(&cycle(Timestamp::now(), vec![service("web", Health::Up)]))
        .unwrap();
    let before = std::fs::read(&db).unwrap();
    let child = run_child("once", &dir, Some(ro), &[]);
    assert_eq!(child.steps[0]["ok"], false, "{:?}", child.steps);
    assert_eq!(child.steps[0]["kind"], "read_only", "{:?}", child.steps);
    child.one_warning(&db, "read-only (directory");
    assert_eq!(std::fs::read(&db).unwrap(), before);
}

#[test]
fn a_missing_directory_is_created_unless_it_cannot_be() {
    let env = Env::new();
    let db = env.path("var/lib/chatstack/history.db");
    let child = run_child("once", &env.path("w"), None, &[("DB", db.to_str().unwrap())]);
    assert_eq!(child.steps[0]["ok"], true, "{:?}", child.steps);
    assert!(child.warnings().is_empty(), "{}", child.out.stderr);
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!((mode(db.parent().unwrap()), mode(&db)), (0o750, 0o640));

    // Under a regular file no directory can be made.
    env.write("plain-file", "x");
    let db = env.path("plain-file/sub/history.db");
    let child = run_child("once", &env.path("w"), None, &[("DB", db.to_str().unwrap())]);
    assert_eq!(child.steps[0]["kind"], "cannot_open", "{:?}", child.steps);
    child.one_warning(&db, "cannot create directory");
}

#[test]
fn a_corrupt_file_is_moved_aside_with_one_warning_and_the_cycle_recorded_anew() {
    let env = Env::new();
    let dir = env.root().to_path_buf();
    let db = env.history_path();
    let garbage: Vec<u8> = (0..20_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&db, &garbage).unwrap();
    let child = run_child("once", &env.path("w"), None, &[("DB", db.to_str().unwrap())]);
    assert_eq!(child.steps[0]["ok"], true, "{:?}", child.steps);
    let w = child.one_warning(&db, "was corrupt");
    assert!(w.contains("moved it to") && w.contains("started a new one"), "{w}");
    let aside: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("history.db.corrupt-"))
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert_eq!(std::fs::read(&aside[0]).unwrap(), garbage, "moved, not altered");
    assert!(w.contains(&aside[0].display().to_string()), "{w}");
    let mut fresh = Store::open_read(&db).unwrap();
    assert_eq!(fresh.result_count(None).unwrap(), 2, "this cycle's two services");
    assert_eq!(fresh.integrity_check().unwrap(), "ok");
}

#[test]
fn a_newer_schema_is_left_untouched_with_a_warning() {
    let env = Env::new();
    let db = env.history_path();
    let cfg = HistoryConfig { path: Some(db.clone()), ..HistoryConfig::default() };
    Store::open(&cfg)
        .unwrap()
        .record(&cycle(Timestamp::now(), vec![service("web", Health::Up)]))
        .unwrap();
    {
        let c = rusqlite::Connection::open(&db).unwrap();
        c.pragma_update(None, "user_version", 99).unwrap();
    }
    let before = std::fs::read(&db).unwrap();
    let child = run_child("once", &env.path("w"), None, &[("DB", db.to_str().unwrap())]);
    assert_eq!(child.steps[0]["kind"], "newer_schema", "{:?}", child.steps);
    child.one_warning(&db, "schema 99 is newer than this version understands (4); left untouched; no history is written");
    assert_eq!(std::fs::read(&db).unwrap(), before, "not one byte changed");
    // The commands refuse it with exit 3 too.
    env.config(&format!("history_db: {db:?}\nservices:\n  - name: web\n    port: 1\n"));
    let out = run(&env, &["report"], &[]);
    out.code(3);
    assert!(out.stderr.contains("newer than this version"), "{}", out.stderr);
}

#[test]
fn locked_past_the_busy_timeout_is_one_warning() {
    let env = Env::new();
    let db = env.history_path();
    let cfg = HistoryConfig { path: Some(db.clone()), ..HistoryConfig::default() };
    let mut store = Store::open(&cfg).unwrap();
    store.record(&cycle(Timestamp::now(), vec![service("web", Health::Up)])).unwrap();
    let holder = rusqlite::Connection::open(&db).unwrap();
    holder
        .execute_batch("BEGIN IMMEDIATE; INSERT INTO services (name) VALUES ('holder');")
        .unwrap();
    let child = run_child(
        "once",
        &env.path("w"),
        None,
        &[("BUSY_MS", "300"), ("DB", db.to_str().unwrap())],
    );
    assert_eq!(child.steps[0]["kind"], "locked", "{:?}", child.steps);
    child.one_warning(&db, "locked by another process for more than 300ms");
    assert!(child.out.elapsed >= Duration::from_millis(300));
    holder.execute_batch("COMMIT").unwrap();
    let child = run_child(
        "once",
        &env.path("w"),
        None,
        &[("BUSY_MS", "300"), ("DB", db.to_str().unwrap())],
    );
    assert_eq!(child.steps[0]["ok"], true, "released: the next cycle records");
    assert_eq!(store.result_count(None).unwrap(), 3);
}

#[test]
fn writers_and_readers_at_once_lose_nothing() {
    let env = Env::new();
    let db = env.history_path();
    let cfg = HistoryConfig {
        path: Some(db.clone()),
        busy_timeout: Duration::from_secs(5),
        ..HistoryConfig::default()
    };
    Store::open(&cfg).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicU64::new(0));
    let pool = Arc::new(ReaderPool::new(&db, 2));
    let readers: Vec<_> = (0..2)
        .map(|r| {
            let (stop, reads, pool) = (stop.clone(), reads.clone(), pool.clone());
            std::thread::spawn(move || {
                let mut errors = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let now = Timestamp::now();
                    let names = names(&format!("t{r}-"), 3);
                    let got = pool.with(|s| {
                        s.uptime_doc(&names, now)?;
                        s.history(
                            &names[0],
                            Duration::from_secs(86_400),
                            Duration::from_secs(300),
                            now,
                        )?;
                        s.incidents(None, Timestamp(now.0 - 86_400_000), 50, now)?;
                        s.report(&names, Timestamp(now.0 - 86_400_000), now).map(|_| ())
                    });
                    match got {
                        Ok(()) => {
                            reads.fetch_add(1, Ordering::Relaxed);
                        }
                        // The writers may not have created the file's tables yet.
                        Err(e) => errors.push(e.to_string()),
                    }
                }
                errors
            })
        })
        .collect();
    let cycles = 120;
    let threads: Vec<_> = (0..3)
        .map(|w| {
            let cfg = cfg.clone();
            std::thread::spawn(move || {
                let mut rec = Recorder::new(&cfg);
                let base = Timestamp::now();
                let deadline = Instant::now() + Duration::from_secs(4);
                let mut done = 0;
                for k in 0..cycles {
                    if k >= MIN_CYCLES && Instant::now() > deadline {
                        break;
                    }
                    let status = if k % 5 == 2 { Health::Down } else { Health::Up };
                    let svcs =
                        names(&format!("t{w}-"), 3).iter().map(|n| service(n, status)).collect();
                    rec.record(&cycle(Timestamp(base.0 + k * 30_000), svcs))
                        .expect("thread writer");
                    done += 1;
                }
                done
            })
        })
        .collect();
    let procs: Vec<_> = (0..2)
        .map(|p| {
            let dir = env.path(&format!("proc{p}"));
            std::fs::create_dir(&dir).unwrap();
            let db = db.clone();
            std::thread::spawn(move || {
                let child = run_child(
                    "writer",
                    &dir,
                    None,
                    &[
                        ("DB", db.to_str().unwrap()),
                        ("PREFIX", &format!("p{p}-")),
                        ("CYCLES", &cycles.to_string()),
                        ("BUSY_MS", "5000"),
                    ],
                );
                assert!(child.warnings().is_empty(), "{}", child.out.stderr);
                assert_eq!(child.steps[0]["ok"], true, "{:?}", child.steps);
                child.steps[0]["cycles"].as_i64().unwrap()
            })
        })
        .collect();
    let thread_counts: Vec<i64> = threads.into_iter().map(|t| t.join().expect("writer")).collect();
    let proc_counts: Vec<i64> =
        procs.into_iter().map(|t| t.join().expect("process writer")).collect();
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        let errors = r.join().expect("reader");
        assert!(errors.is_empty(), "readers saw errors: {errors:?}");
    }
    assert!(reads.load(Ordering::Relaxed) > 0, "the readers read");
    let mut store = Store::open_read(&db).unwrap();
    for (prefix, counts) in [("t", &thread_counts), ("p", &proc_counts)] {
        for (i, n) in counts.iter().enumerate() {
            assert!(*n >= MIN_CYCLES, "{prefix}{i} wrote {n} cycles only");
            for name in names(&format!("{prefix}{i}-"), 3) {
                assert_eq!(
                    store.result_count(Some(&name)).unwrap(),
                    *n as u64,
                    "{name}: no result lost"
                );
            }
        }
    }
    assert_eq!(store.integrity_check().unwrap(), "ok");
}

// ---- the commands on a seeded database ------------------------------------

/// Runs the binary with `-c` the env's config (and extra environment).
#[track_caller]
fn run(env: &Env, args: &[&str], vars: &[(&str, &str)]) -> Out {
    let cfg = env.config_path();
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["-c", cfg.to_str().unwrap()]);
    env.cmd_env(&all, vars)
}

/// Direct computation from the seeded timeline: covered time of `[from, to)`
/// by (up, degraded, down, maintenance), ms. Each result covers up to the
/// next one, at most 2 × interval; the last one up to `now`.
pub(crate) fn direct(runs: &[Run], i: i64, from: i64, to: i64, now: i64) -> [i64; 4] {
    let mut t = [0i64; 4];
    let slot = |r: &Run| match (r.muted, r.status) {
        (true, _) => 3,
        (false, Health::Up) => 0,
        (false, Health::Degraded) => 1,
        (false, Health::Down) => 2,
    };
    let mut add = |a: i64, b: i64, s: usize| {
        let (a, b) = (a.max(from), b.min(to));
        if b > a {
            t[s] += b - a;
        }
    };
    for (k, r) in runs.iter().enumerate() {
        let last = r.start + (r.count - 1) * i;
        add(r.start, last, slot(r));
        let end = runs.get(k + 1).map_or(now, |n| n.start);
        add(last, end.min(last + 2 * i), slot(r));
    }
    t
}

/// Incidents of the timeline: (started, ended, muted).
pub(crate) fn direct_incidents(runs: &[Run]) -> Vec<(i64, Option<i64>, bool)> {
    let mut out = Vec::new();
    let mut open: Option<(i64, bool)> = None;
    for r in runs {
        match (r.status, open) {
            (Health::Down, None) => open = Some((r.start, r.muted)),
            (Health::Down, Some(_)) => {}
            (_, Some((s, m))) => {
                out.push((s, Some(r.start), m));
                open = None;
            }
            _ => {}
        }
    }
    if let Some((s, m)) = open {
        out.push((s, None, m));
    }
    out
}

pub(crate) fn ts(v: &Value) -> i64 {
    Timestamp::parse(v.as_str().unwrap_or_else(|| panic!("not a time: {v}"))).expect("time").0
}

#[track_caller]
pub(crate) fn near(got: &Value, want_ms: i64, tol_ms: i64, what: &str) {
    let got = got.as_f64().unwrap_or_else(|| panic!("{what}: not a number: {got}"));
    assert!(
        (got * 1000.0 - want_ms as f64).abs() <= tol_ms as f64,
        "{what}: got {got} s, direct computation {} s (± {} s)",
        want_ms as f64 / 1000.0,
        tol_ms as f64 / 1000.0
    );
}

#[test]
fn the_commands_on_a_seeded_database_agree_with_a_direct_computation() {
    let env = Env::new();
    let db = env.history_path();
    let now = Timestamp::now();
    let started = Instant::now();
    let spec = SeedSpec { services: 4, days: 120, result_days: 3, ..SeedSpec::year(now) };
    let out = env.cmd(&[
        "__seed-history",
        "--db",
        db.to_str().unwrap(),
        "--services",
        "4",
        "--days",
        "120",
        "--result-days",
        "3",
        "--now",
        &now.to_string(),
    ]);
    out.code(0);
    assert!(out.stdout.contains("seeded 4 services"), "{}", out.stdout);
    let mut yaml = String::from("services:\n");
    for i in 0..4 {
        yaml.push_str(&format!("  - name: {}\n    port: {}\n", seed::service_name(i), 5000 + i));
    }
    env.config(&yaml);
    let i = spec.interval_ms();
    // Figures move with the clock between the seeding and each command: the
    // window's two ends. The bound below is that drift, plus the window's
    // prorated first hour (its non-up time), which is the one approximation.
    let drift = || 2 * (started.elapsed().as_millis() as i64 + 1000);

    // report --since 30d: uptime, downtime, incidents, MTTR, longest, alerts.
    let report = run(&env, &["report", "--since", "30d", "--format", "json"], &[]);
    report.code(0);
    let r = report.json();
    let (since, until) = (ts(&r["since"]), ts(&r["until"]));
    assert_eq!(until - since, 30 * 86_400_000);
    assert!(until >= now.0 && until - now.0 < 60_000);
    assert_report_matches(&r, &spec, &drift);

    // incidents SERVICE --since 30d: exactly the timeline's, newest first.
    let name = seed::service_name(3);
    let out = run(
        &env,
        &["incidents", &name, "--since", "30d", "--format", "json", "--limit", "1000"],
        &[],
    );
    out.code(0);
    let listed = out.json()["incidents"].as_array().unwrap().clone();
    let mut want: Vec<_> = direct_incidents(&seed::runs(&spec, 3))
        .into_iter()
        .filter(|(_, e, _)| e.is_none_or(|e| e >= until - 30 * 86_400_000))
        .collect();
    want.reverse();
    let got: Vec<(i64, Option<i64>, bool)> = listed
        .iter()
        .map(|x| {
            (
                ts(&x["started_at"]),
                x["ended_at"].as_str().map(|_| ts(&x["ended_at"])),
                x["muted"] == true,
            )
        })
        .collect();
    assert_eq!(got, want);
    assert_eq!(listed[0]["ended_at"], Value::Null, "the last service ends in an open incident");
    assert_eq!(
        listed[0]["cause"],
        json!({"type": "http", "target": "http://127.0.0.1:5003/health", "reason": "refused", "detail": "connection refused"})
    );
    let out = run(&env, &["incidents", &name, "--limit", "2", "--format", "json"], &[]);
    assert_eq!(out.json()["incidents"].as_array().unwrap().len(), 2);

    // history SERVICE --since 7d --step 1d: every day bucket.
    for k in [0, 3] {
        let name = seed::service_name(k);
        let out = run(
            &env,
            &["history", &name, "--since", "7d", "--step", "1d", "--format", "json"],
            &[],
        );
        out.code(0);
        let h = out.json();
        assert_eq!(
            (h["service"].as_str(), h["step_s"].as_i64()),
            (Some(name.as_str()), Some(86_400))
        );
        let buckets = h["buckets"].as_array().unwrap();
        assert_eq!(buckets.len(), 8);
        let runs = seed::runs(&spec, k);
        let cmd_now = now.0 + started.elapsed().as_millis() as i64;
        for b in buckets {
            let at = ts(&b["at"]);
            let t = direct(&runs, i, at, at + 86_400_000, cmd_now);
            for (key, v) in ["up_s", "degraded_s", "down_s", "maintenance_s"].iter().zip(t) {
                near(&b[key], v, drift(), key);
            }
        }
    }
    // The same through csv: one row per service and bucket, the same figures.
    let csv = run(&env, &["history", "--since", "24h", "--step", "1h", "--format", "csv"], &[]);
    csv.code(0);
    let rows: Vec<&str> = csv.stdout.lines().collect();
    assert!(rows[0].starts_with("service,at,step_s,up_s,"), "{}", rows[0]);
    assert_eq!(rows.len(), 1 + 4 * 25, "{}", csv.stdout);
    let json_all =
        run(&env, &["history", "--since", "24h", "--step", "1h", "--format", "json"], &[]).json();
    assert_eq!(json_all.as_array().unwrap().len(), 4);
    let first = rows[1].split(',').collect::<Vec<_>>();
    assert_eq!(first[0], seed::service_name(0));
    assert_eq!(first[1], json_all[0]["buckets"][0]["at"].as_str().unwrap());

    // Text and Markdown say the same figures to people.
    let text = run(&env, &["report", "--since", "30d"], &[]);
    text.code(0);
    let md = run(&env, &["report", "--since", "30d", "--format", "markdown"], &[]);
    md.code(0);
    assert!(md.stdout.contains("| Service | Uptime | Downtime | Incidents | MTTR | Longest outage | Restarts (ok / failed) | Alerts |"), "{}", md.stdout);
    assert!(md.stdout.contains("### Incidents"), "{}", md.stdout);
    for (k, line) in r["services"].as_array().unwrap().iter().enumerate() {
        let name = seed::service_name(k);
        let row = md
            .stdout
            .lines()
            .find(|l| l.starts_with(&format!("| {} |", name)))
            .unwrap_or_else(|| panic!("no row for {name}:\n{}", md.stdout));
        assert!(row.contains(&format!("| {} |", line["incidents"])), "{row}");
        assert!(text.stdout.lines().any(|l| l.trim_start().starts_with(&name)), "{}", text.stdout);
    }
    let inc_text = run(&env, &["incidents", "--since", "30d"], &[]);
    inc_text.code(0);
    assert!(
        inc_text.stdout.contains("ongoing")
            && inc_text.stdout.contains("refused (connection refused)"),
        "{}",
        inc_text.stdout
    );
    run(&env, &["history", &seed::service_name(1)], &[]).code(0);
}

/// A report's figures against the direct computation from the seeded
/// timeline: uptime, downtime, incidents, MTTR, longest, restarts, alerts.
/// `drift` bounds how far the clock moved since the seeding (both window ends).
pub(crate) fn assert_report_matches(r: &Value, spec: &SeedSpec, drift: &dyn Fn() -> i64) {
    let i = spec.interval_ms();
    let (since, until) = (ts(&r["since"]), ts(&r["until"]));
    for (k, line) in r["services"].as_array().unwrap().iter().enumerate() {
        let runs = seed::runs(spec, k);
        assert_eq!(line["name"], seed::service_name(k));
        let t = direct(&runs, i, since, until, until);
        let edge = accounting_edge(&runs, i, since, until);
        near(&line["downtime_s"], t[2], drift() + edge, "downtime");
        let uptime = line["uptime"].as_f64().unwrap();
        let want = (t[0] + t[1]) as f64 * 100.0 / (t[0] + t[1] + t[2]) as f64;
        assert!(
            (uptime - want).abs()
                < 0.01 + (drift() + edge) as f64 * 100.0 / (t[0] + t[1] + t[2]) as f64,
            "uptime {uptime} vs {want}"
        );
        let incidents: Vec<_> = direct_incidents(&runs)
            .into_iter()
            .filter(|(s, e, _)| *s <= until && e.is_none_or(|e| e >= since))
            .collect();
        let counted: Vec<_> = incidents.iter().filter(|x| !x.2).collect();
        assert_eq!(line["incidents"], counted.len(), "{}", line["name"]);
        let ended: Vec<i64> = counted.iter().filter_map(|(s, e, _)| e.map(|e| e - s)).collect();
        if ended.is_empty() {
            assert_eq!(line["mttr_s"], Value::Null);
        } else {
            near(&line["mttr_s"], ended.iter().sum::<i64>() / ended.len() as i64, 1, "mttr");
        }
        let longest = counted.iter().map(|(s, e, _)| e.unwrap_or(until) - s).max().unwrap();
        near(&line["longest_s"], longest, drift(), "longest");
        // Restarts and alerts agree with the incidents listed for the window.
        let listed: Vec<&Value> = r["incidents"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|x| x["service"] == line["name"])
            .collect();
        assert_eq!(listed.len(), incidents.len());
        let restarts: Vec<&Value> = listed
            .iter()
            .flat_map(|x| x["restarts"].as_array().unwrap())
            .filter(|x| ts(&x["at"]) >= since)
            .collect();
        let ok = restarts.iter().filter(|x| x["ok"] == true).count();
        assert_eq!(line["restarts"], json!({"ok": ok, "failed": restarts.len() - ok}));
        assert_eq!(line["alerts"], listed.iter().filter(|x| x["alerted"] == true).count());
    }
}

/// Time not up in the hour holding `from` (other statuses and no data): the
/// prorated edge of a window (a minute within 48 h, else an hour) is the only
/// place a window's figures may be approximate, and prorating a bucket errs
/// by at most what in it is not of its main kind.
pub(crate) fn accounting_edge(runs: &[Run], i: i64, from: i64, now: i64) -> i64 {
    let h = from.div_euclid(3_600_000) * 3_600_000;
    let t = direct(runs, i, h, h + 3_600_000, now);
    3_600_000 - t[0]
}

#[test]
fn the_commands_exit_3_on_bad_arguments_config_or_database() {
    let env = Env::new();
    env.config("services:\n  - name: web\n    port: 1\n");
    // No database yet.
    let out = run(&env, &["report"], &[]);
    out.code(3);
    assert!(out.stderr.contains("no history database yet"), "{}", out.stderr);
    let db = env.history_path();
    let cfg = HistoryConfig { path: Some(db.clone()), ..HistoryConfig::default() };
    Store::open(&cfg)
        .unwrap()
        .record(&cycle(Timestamp::now(), vec![service("web", Health::Down)]))
        .unwrap();
    run(&env, &["report"], &[]).code(0);
    run(&env, &["incidents", "web", "--format", "json"], &[]).code(0);
    for (args, says) in [
        (&["history", "nope"][..], "unknown service \"nope\""),
        (&["incidents", "nope"][..], "unknown service \"nope\""),
        (
            &["history", "--since", "500d"][..],
            "--since 500d: expected more than 0 and at most retention.rollups (400d)",
        ),
        (&["history", "--step", "30s"][..], "--step 30s: expected at least 1m"),
        (&["history", "--since", "yesterday"][..], "--since: invalid duration"),
        (&["report", "--format", "html"][..], "expected text, json or markdown"),
        (&["incidents", "--limit", "0"][..], "expected 1 to 10000"),
    ] {
        let out = run(&env, args, &[]);
        out.code(3);
        assert!(out.stderr.contains(says), "{args:?}: {}", out.stderr);
    }
    // history_db: off, by config and by the environment.
    let out = run(&env, &["report"], &[("CHATSTACK_HISTORY_DB", "off")]);
    out.code(3);
    assert!(out.stderr.contains("history is disabled"), "{}", out.stderr);
    // The environment wins over the config.
    let other = env.path("elsewhere.db");
    let out = run(&env, &["report"], &[("CHATSTACK_HISTORY_DB", other.to_str().unwrap())]);
    out.code(3);
    assert!(out.stderr.contains(&other.display().to_string()), "{}", out.stderr);
    // An unreadable database.
    std::fs::write(&other, vec![7u8; 8192]).unwrap();
    let out = run(&env, &["incidents"], &[("CHATSTACK_HISTORY_DB", other.to_str().unwrap())]);
    out.code(3);
    assert!(out.stderr.contains("corrupt"), "{}", out.stderr);
    // Bad config keys are located like every other key.
    env.config("retention:\n  results: 2w\nservices:\n  - name: web\n    port: 1\n");
    let out = run(&env, &["report"], &[]);
    out.code(3);
    assert!(
        out.stderr.contains("monitor.yml:5:12: retention.results: invalid duration \"2w\""),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("ms, s, m, h or d"), "{}", out.stderr);
}

/// Figures for the notes (`cargo test --release --test integration
/// history::figures -- --ignored --nocapture`): record cost per cycle,
/// query times on the seeded year, file size at full retention.
#[test]
#[ignore = "measurement: run by hand in release"]
fn figures() {
    let env = Env::new();
    let db = env.history_path();
    let now = Timestamp::now();
    let spec = SeedSpec { days: 400, ..SeedSpec::year(now) };
    let s = seed::seed(&db, &spec).unwrap();
    let size = std::fs::metadata(&db).unwrap().len();
    println!(
        "seeded {} results, {} rollup rows, {} incidents in {:.2} s; file {:.1} MB ({:.2} MB per service)",
        s.results,
        s.rollup_rows,
        s.incidents,
        s.elapsed.as_secs_f64(),
        size as f64 / 1e6,
        size as f64 / 1e6 / 10.0
    );
    let names: Vec<String> = (0..10).map(seed::service_name).collect();
    let cfg = HistoryConfig { path: Some(db.clone()), ..HistoryConfig::default() };
    let mut w = Store::open(&cfg).unwrap();
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        (v[v.len() / 2], v[v.len() * 99 / 100])
    };
    let mut times = Vec::new();
    for k in 1..=300 {
        let at = Timestamp(now.0 + k * 30_000);
        let svcs = names
            .iter()
            .map(|n| service(n, if k % 11 == 0 { Health::Down } else { Health::Up }))
            .collect();
        let t = Instant::now();
        w.record(&cycle(at, svcs)).unwrap();
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let (m, p99) = median(times);
    println!("record (10 services, full retention): median {m:.3} ms, p99 {p99:.3} ms");
    let later = Timestamp(now.0 + 301 * 30_000);
    let mut r = Store::open_read(&db).unwrap();
    let mut time = |what: &str, f: &mut dyn FnMut(&mut Store) -> Result<(), StoreError>| {
        let mut times = Vec::new();
        for _ in 0..200 {
            let t = Instant::now();
            f(&mut r).unwrap();
            times.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        let (m, p99) = median(times);
        println!("{what}: median {m:.3} ms, p99 {p99:.3} ms");
    };
    time("uptime (10 services x 6 windows)", &mut |r| r.uptime_doc(&names, later).map(|_| ()));
    time("history since=90d step=1d", &mut |r| {
        r.history(&names[3], Duration::from_secs(90 * 86_400), Duration::from_secs(86_400), later)
            .map(|_| ())
    });
    time("history since=24h step=5m", &mut |r| {
        r.history(&names[3], Duration::from_secs(86_400), Duration::from_secs(300), later)
            .map(|_| ())
    });
    time("report since=365d", &mut |r| {
        r.report(&names, Timestamp(later.0 - 365 * 86_400_000), later).map(|_| ())
    });
    // The command, as an operator runs it (process start, config, output).
    let mut yaml = String::from("services:\n");
    for n in &names {
        yaml.push_str(&format!("  - name: {n}\n    port: 1\n"));
    }
    env.config(&yaml);
    let mut times = Vec::new();
    for _ in 0..20 {
        let out = run(&env, &["report", "--since", "365d", "--format", "json"], &[]);
        out.code(0);
        times.push(out.elapsed.as_secs_f64() * 1000.0);
    }
    let (m, _) = median(times);
    println!(
        "`chatstack-status report --since 365d --format json`: median {m:.1} ms (whole process)"
    );
    drop(w);
    let c = rusqlite::Connection::open(&db).unwrap();
    c.execute_batch("VACUUM").unwrap();
    println!("after VACUUM: {:.1} MB", std::fs::metadata(&db).unwrap().len() as f64 / 1e6);
}

#[test]
fn check_runs_put_uptime_in_the_status_and_the_daemon_serves_the_history() {
    let env = Env::new();
    let tcp = crate::util::TcpFixture::new();
    env.config(&format!(
        "interval: 200ms\ntimeout: 1s\nservices:\n  - name: Web\n    port: {}\n",
        tcp.port()
    ));
    env.check(&[]).code(0);
    env.check(&[]).code(0);
    let web = env.service("Web");
    assert!(web["uptime"]["24h"].as_f64().is_some_and(|u| u == 100.0), "{web:#}");
    assert!(web["uptime"].get("7d").is_some() && web["uptime"].get("30d").is_some());
    let cfg = env.config_path().display().to_string();
    let d = crate::util::Daemon::start(&env, &["run", "-c", &cfg], &[]);
    crate::util::wait_until(Duration::from_secs(10), || d.get("/api/status").status == 200);
    let up = d.get("/api/uptime");
    assert_eq!(up.status, 200, "{}", up.text());
    let doc = up.json();
    assert_eq!(doc["services"][0]["name"], "Web");
    let windows = &doc["services"][0]["windows"];
    for w in ["1h", "24h", "7d", "30d", "90d", "365d"] {
        assert!(windows[w]["coverage"].is_number(), "{w}: {windows:#}");
    }
    assert_eq!(d.get("/api/history?service=Web&since=1h&step=1m").status, 200);
    assert_eq!(d.get("/api/history?service=Nope").status, 404);
    assert_eq!(d.get("/api/history").status, 400);
    assert_eq!(d.get("/api/history?service=Web&step=10s").status, 400);
    assert_eq!(d.get("/api/incidents").json()["incidents"], serde_json::json!([]));
    let badge = d.get("/badge/Web/status.svg");
    assert_eq!(badge.status, 200);
    assert_eq!(badge.header("content-type").as_deref(), Some("image/svg+xml"));
    assert!(badge.text().contains(">up<"), "{}", badge.text());
    assert_eq!(d.get("/badge/Web/uptime/24h.svg").status, 200);
    assert_eq!(d.get("/badge/Nope/status.svg").status, 404);
    let metrics = d.get("/metrics").text();
    assert!(
        metrics.contains("chatstack_service_uptime_ratio{service=\"Web\",window=\"24h\"} 1"),
        "{metrics}"
    );
}

/// A reader that opened the file before any writer initialised it (the
/// daemon's first `/api/…` request racing its first cycle) used to answer
/// "no data" for as long as it lived: it re-read the header only when the
/// file was replaced. Found by tests/openapi.rs: `/api/incidents` stayed
/// `[]` while the status showed an open incident.
#[test]
fn a_reader_opened_before_the_first_write_sees_what_is_written_later() {
    let env = Env::new();
    let db = env.history_path();
    std::fs::write(&db, b"").unwrap();
    let mut early = Store::open_read(&db).unwrap();
    let now = Timestamp::now();
    assert!(early.incidents(None, Timestamp(0), 10, now).unwrap().incidents.is_empty());
    let cfg = HistoryConfig { path: Some(db.clone()), ..HistoryConfig::default() };
    let mut writer = Store::open(&cfg).unwrap();
    writer.record(&cycle(now, vec![service("Down", Health::Down)])).unwrap();
    let seen = early.incidents(None, Timestamp(0), 10, now).unwrap();
    assert_eq!(seen.incidents.len(), 1, "{seen:?}");
    assert_eq!(early.result_count(Some("Down")).unwrap(), 1);
}
