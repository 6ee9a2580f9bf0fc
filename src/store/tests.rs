//! Unit tables for the store: time-weighted accounting on hand-built result
//! sequences, incidents, retention, history buckets, and the faults a writer
//! must survive (real files, real second connections).

use super::accounting::{self, DAY, HOUR, MINUTE};
use super::*;
use crate::config::{HistoryConfig, Retention};
use crate::state::Health::{self, Degraded, Down, Up};
use crate::state::RestartOutcome;
use std::time::Duration;

/// 2026-11-28T00:00:00Z: a UTC midnight.
const T0: i64 = 1_795_824_000_000;

fn ts(s: i64) -> Timestamp {
    Timestamp(T0 + s * 1000)
}

struct Db {
    dir: tempfile::TempDir,
    cfg: HistoryConfig,
    store: Store,
}

fn db_with(retention: Retention) -> Db {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = HistoryConfig {
        path: Some(dir.path().join("history.db")),
        retention,
        busy_timeout: Duration::from_secs(2),
    };
    let store = Store::open(&cfg).expect("open");
    Db { dir, cfg, store }
}

fn db() -> Db {
    db_with(Retention::default())
}

fn svc(name: &str, status: Health, muted: bool) -> ServiceRecord {
    ServiceRecord {
        name: name.into(),
        status,
        latency_ms: (status != Down).then_some(3.0),
        muted,
        problems: Vec::new(),
        restarts: Vec::new(),
        alerted: false,
        outcomes: Vec::new(),
    }
}

fn cycle(at_s: i64, interval_s: u64, services: Vec<ServiceRecord>) -> CycleRecord {
    CycleRecord {
        at: ts(at_s),
        interval: Duration::from_secs(interval_s),
        services,
        samples: Vec::new(),
        resources: Vec::new(),
    }
}

fn window(ms: i64) -> Window {
    Window { label: "w", ms }
}

fn problem(kind: &str, target: &str, status: &str, reason: &str) -> CheckProblem {
    CheckProblem {
        kind: kind.into(),
        target: target.into(),
        status: status.into(),
        reason: Some(reason.into()),
        detail: format!("{reason} detail"),
    }
}

/// One accounting case: results of service "s" (time in s, status, muted).
struct Case {
    name: &'static str,
    interval: u64,
    results: &'static [(i64, Health, bool)],
    now: i64,
    window: i64,
    /// up, degraded, down, maintenance, nodata (seconds).
    expect: [f64; 5],
    uptime: Option<f64>,
}

#[test]
fn time_weighted_uptime_and_coverage() {
    const UP30: [(i64, Health, bool); 120] = {
        let mut a = [(0, Up, false); 120];
        let mut i = 0;
        while i < 120 {
            a[i].0 = i as i64 * 30;
            i += 1;
        }
        a
    };
    let cases = [
        Case {
            name: "a regular 30 s cycle, all up: the open tail completes the hour",
            interval: 30,
            results: &UP30,
            now: 3600,
            window: 3600,
            expect: [3600.0, 0.0, 0.0, 0.0, 0.0],
            uptime: Some(100.0),
        },
        Case {
            name: "irregular cron runs: each result covers to the next, at most 2 x interval",
            interval: 60,
            results: &[
                (0, Up, false),
                (60, Down, false),
                (150, Up, false),
                (330, Degraded, false),
                (390, Up, false),
            ],
            now: 450,
            window: 450,
            // up [0,60) [150,270) [390,450); down [60,150); degraded [330,390); no data [270,330)
            expect: [240.0, 60.0, 90.0, 0.0, 60.0],
            uptime: Some(76.923),
        },
        Case {
            name: "a monitor outage: the gap past 2 x interval is no data, not up",
            interval: 30,
            results: &[
                (0, Up, false),
                (30, Up, false),
                (60, Up, false),
                (700, Up, false),
                (730, Up, false),
            ],
            now: 760,
            window: 760,
            expect: [180.0, 0.0, 0.0, 0.0, 580.0],
            uptime: Some(100.0),
        },
        Case {
            name: "muted time is maintenance, outside uptime, whatever the status",
            interval: 30,
            results: &[(0, Up, false), (30, Down, true), (60, Down, true), (90, Up, false)],
            now: 120,
            window: 120,
            expect: [60.0, 0.0, 0.0, 60.0, 0.0],
            uptime: Some(100.0),
        },
        Case {
            name: "a clock stepped back: no second counts twice",
            interval: 30,
            results: &[
                (0, Up, false),
                (30, Up, false),
                (60, Down, false),
                (45, Degraded, false),
                (75, Up, false),
                (105, Up, false),
            ],
            now: 135,
            window: 135,
            // the down result at 60 is overtaken at once; degraded only from the mark at 60
            expect: [120.0, 15.0, 0.0, 0.0, 0.0],
            uptime: Some(100.0),
        },
        Case {
            name: "the open tail stops at 2 x interval",
            interval: 30,
            results: &[(0, Down, false)],
            now: 600,
            window: 600,
            expect: [0.0, 0.0, 60.0, 0.0, 540.0],
            uptime: Some(0.0),
        },
        Case {
            name: "a result before the window counts only inside it",
            interval: 60,
            results: &[(0, Down, false), (60, Up, false)],
            now: 3660,
            window: 3600,
            expect: [120.0, 0.0, 0.0, 0.0, 3480.0],
            uptime: Some(100.0),
        },
        Case {
            name: "only maintenance: covered, but uptime is null",
            interval: 30,
            results: &[(0, Down, true), (30, Up, true)],
            now: 60,
            window: 60,
            expect: [0.0, 0.0, 0.0, 60.0, 0.0],
            uptime: None,
        },
    ];
    for c in cases {
        let mut d = db();
        for &(t, status, muted) in c.results {
            d.store.record(&cycle(t, c.interval, vec![svc("s", status, muted)])).expect(c.name);
        }
        let u = d.store.uptime("s", &[window(c.window * 1000)], ts(c.now)).expect(c.name);
        let f = u.windows.get("w").expect("window");
        let got = [f.up_s, f.degraded_s, f.down_s, f.maintenance_s, f.nodata_s];
        assert_eq!(got, c.expect, "{}", c.name);
        assert_eq!(f.uptime, c.uptime, "{}", c.name);
        let covered = c.expect[..4].iter().sum::<f64>();
        assert_eq!(
            f.coverage,
            accounting::ratio((covered * 1000.0) as i64, c.window * 1000),
            "{}",
            c.name
        );
    }
}

#[test]
fn nothing_recorded_is_null_uptime_and_zero_coverage() {
    let mut d = db();
    d.store.record(&cycle(0, 30, vec![svc("other", Up, false)])).unwrap();
    let u = d.store.uptime("never-seen", &UPTIME_WINDOWS, ts(60)).unwrap();
    assert_eq!(u.windows.0.len(), 6);
    for (label, f) in &u.windows.0 {
        assert_eq!(f.uptime, None, "{label}");
        assert_eq!(f.coverage, 0.0, "{label}");
        assert_eq!(f.up_s + f.down_s + f.degraded_s + f.maintenance_s, 0.0, "{label}");
    }
    assert_eq!(u.windows.get("24h").unwrap().nodata_s, 86_400.0);
    let text = serde_json::to_string(&u).unwrap();
    let at = |k: &str| text.find(&format!("\"{k}\":{{")).unwrap_or(usize::MAX);
    let order = ["1h", "24h", "7d", "30d", "90d", "365d"].map(at);
    assert!(order.windows(2).all(|w| w[0] < w[1]), "window keys keep their order: {text}");
}

#[test]
fn windows_are_exact_across_minute_hour_and_day_rollups() {
    // Two and a half days of a 60 s cycle, down 10:00-10:20 on the second
    // day and muted 03:00-03:30 on the third; windows starting mid-minute
    // and mid-hour use the edge bucket prorated.
    let mut d = db();
    let down = (DAY + 10 * HOUR) / 1000..(DAY + 10 * HOUR + 20 * MINUTE) / 1000;
    let muted = (2 * DAY + 3 * HOUR) / 1000..(2 * DAY + 3 * HOUR + 30 * MINUTE) / 1000;
    let end = (2 * DAY + 12 * HOUR) / 1000;
    let mut t = 0;
    while t < end {
        let status = if down.contains(&t) { Down } else { Up };
        d.store.record(&cycle(t, 60, vec![svc("s", status, muted.contains(&t))])).unwrap();
        t += 60;
    }
    let now = end + 15; // mid-interval, mid-minute
    for (len, down_s, maint_s) in [
        (HOUR, 0.0, 0.0),
        (DAY, 0.0, 1800.0),
        (DAY + 14 * HOUR + 27 * MINUTE, 1200.0, 1800.0),
        (2 * DAY + 12 * HOUR, 1200.0, 1800.0),
    ] {
        let u = d.store.uptime("s", &[window(len)], ts(now)).unwrap();
        let f = u.windows.get("w").unwrap();
        assert_eq!(f.down_s, down_s, "window {len}");
        assert_eq!(f.maintenance_s, maint_s, "window {len}");
        // From the first result on, everything is covered.
        let start = now * 1000 - len;
        let expect_nodata = if start < 0 { (-start) as f64 / 1000.0 } else { 0.0 };
        assert_eq!(f.nodata_s, expect_nodata, "window {len}");
        assert_eq!(
            f.up_s,
            (len as f64 / 1000.0) - down_s - maint_s - expect_nodata,
            "window {len}"
        );
    }
    let u = d.store.uptime("s", &[window(3 * DAY)], ts(now)).unwrap();
    let f = u.windows.get("w").unwrap();
    assert_eq!(
        f.uptime,
        Some(((100.0 - 1200.0 * 100.0 / (216_015.0 - 1800.0)) * 1e4_f64).floor() / 1e4)
    );
}

#[test]
fn a_day_boundary_splits_the_span_into_both_days() {
    let mut d = db();
    for (t, status) in [(-60, Up), (-15, Down), (30, Up)] {
        d.store.record(&cycle(t, 60, vec![svc("s", status, false)])).unwrap();
    }
    let now = ts(90);
    let days = d
        .store
        .history("s", Duration::from_secs(86_400), Duration::from_secs(86_400), now)
        .unwrap();
    assert_eq!(days.step_s, 86_400);
    assert_eq!(days.buckets.len(), 2);
    let (y, t) = (&days.buckets[0], &days.buckets[1]);
    assert_eq!((y.at, t.at), (Timestamp(T0 - DAY), Timestamp(T0)));
    assert_eq!((y.up_s, y.down_s, y.nodata_s), (45.0, 15.0, 86_340.0));
    assert_eq!((t.up_s, t.down_s, t.nodata_s), (60.0, 30.0, 0.0));
    let minutes =
        d.store.history("s", Duration::from_secs(180), Duration::from_secs(60), now).unwrap();
    let got: Vec<(Timestamp, f64, f64)> =
        minutes.buckets.iter().map(|b| (b.at, b.up_s, b.down_s)).collect();
    assert_eq!(
        got,
        [
            (Timestamp(T0 - 2 * MINUTE), 0.0, 0.0),
            (Timestamp(T0 - MINUTE), 45.0, 15.0),
            (Timestamp(T0), 30.0, 30.0),
            (Timestamp(T0 + MINUTE), 30.0, 0.0),
        ]
    );
    assert_eq!(minutes.buckets[3].nodata_s, 0.0, "the current bucket ends now, not in the future");
    // Samples and latency land in the bucket of their result.
    assert_eq!(minutes.buckets[2].samples, 1);
    assert_eq!(minutes.buckets[1].latency_ms.max, Some(3.0));
}

#[test]
fn history_answers_with_the_finest_rollup_that_reaches_back() {
    let mut d = db();
    d.store.record(&cycle(0, 30, vec![svc("s", Up, false)])).unwrap();
    let now = ts(30);
    let step = |since: u64, step: u64, d: &mut Db| {
        d.store.history("s", Duration::from_secs(since), Duration::from_secs(step), now).unwrap()
    };
    assert_eq!(step(86_400, 300, &mut d).step_s, 300);
    assert_eq!(step(86_400, 90, &mut d).step_s, 120, "a step is a whole number of minutes");
    assert_eq!(step(90 * 86_400, 60, &mut d).step_s, 3600, "minute rollups reach back 48 h only");
    let h = step(90 * 86_400, 86_400, &mut d);
    assert_eq!((h.step_s, h.buckets.len()), (86_400, 91));
    assert_eq!(h.since, Timestamp(T0 - 90 * DAY));
    let long = step(3000 * 86_400, 3600, &mut d);
    assert!(long.buckets.len() <= 10_000, "{}", long.buckets.len());
    assert_eq!(long.step_s % 3600, 0);
    let json = serde_json::to_value(&h).unwrap();
    let b = &json["buckets"][90];
    for key in
        ["at", "up_s", "degraded_s", "down_s", "maintenance_s", "nodata_s", "uptime", "latency_ms"]
    {
        assert!(b.get(key).is_some(), "bucket lacks {key}: {b}");
    }
    assert_eq!(b["latency_ms"], serde_json::json!({"min": 3.0, "avg": 3.0, "max": 3.0}));
    assert_eq!(
        json["buckets"][0]["latency_ms"],
        serde_json::json!({"min": null, "avg": null, "max": null})
    );
    assert_eq!(b["up_s"], 30.0, "the open tail is counted at query time");
}

#[test]
fn one_down_stretch_is_one_incident_with_cause_restarts_and_alert() {
    let mut d = db();
    let down = |at: i64, restart: Option<bool>, alerted: bool| {
        let mut s = svc("web", Down, false);
        s.problems = vec![
            problem("tcp", "127.0.0.1:5432", "degraded", "slow"),
            problem("http", "http://127.0.0.1:5000/health", "down", "refused"),
            problem("systemd", "web.service", "down", "unit_failed"),
        ];
        s.restarts = restart
            .map(|ok| vec![RestartRun { at: ts(at + 1), ok, outcome: RestartOutcome::Pending }])
            .unwrap_or_default();
        s.alerted = alerted;
        cycle(at, 30, vec![s, svc("other", Up, false)])
    };
    d.store.record(&cycle(0, 30, vec![svc("web", Up, false), svc("other", Up, false)])).unwrap();
    d.store.record(&down(30, None, true)).unwrap();
    d.store.record(&down(60, Some(false), false)).unwrap();
    let mut judged = down(90, Some(true), false);
    judged.services[0].outcomes = vec![(ts(61), RestartOutcome::StillDown)];
    d.store.record(&judged).unwrap();
    let mut web = svc("web", Degraded, false);
    web.outcomes = vec![(ts(91), RestartOutcome::Recovered)];
    d.store.record(&cycle(120, 30, vec![web, svc("other", Degraded, false)])).unwrap();
    d.store.record(&cycle(150, 30, vec![svc("web", Up, false), svc("other", Up, false)])).unwrap();

    let all = d.store.incidents(None, ts(-DAY / 1000), 50, ts(180)).unwrap();
    assert_eq!(all.incidents.len(), 1, "degraded is not an incident: {all:?}");
    let i = &all.incidents[0];
    assert_eq!((i.service.as_str(), i.started_at, i.ended_at), ("web", ts(30), Some(ts(120))));
    assert_eq!(i.duration_s, 90.0);
    let cause = i.cause.as_ref().expect("cause");
    assert_eq!(
        (
            cause.kind.as_str(),
            cause.target.as_str(),
            cause.reason.as_deref(),
            cause.detail.as_str()
        ),
        ("http", "http://127.0.0.1:5000/health", Some("refused"), "refused detail")
    );
    assert_eq!(
        i.restarts,
        [
            RestartRun { at: ts(61), ok: false, outcome: RestartOutcome::StillDown },
            RestartRun { at: ts(91), ok: true, outcome: RestartOutcome::Recovered }
        ]
    );
    assert!(i.alerted && !i.muted);
    let json = serde_json::to_value(i).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "id": i.id, "service": "web", "started_at": "2026-11-28T00:00:30Z",
            "ended_at": "2026-11-28T00:02:00Z", "duration_s": 90.0,
            "cause": {"type": "http", "target": "http://127.0.0.1:5000/health", "reason": "refused", "detail": "refused detail"},
            "restarts": [
                {"at": "2026-11-28T00:01:01Z", "ok": false, "outcome": "still_down"},
                {"at": "2026-11-28T00:01:31Z", "ok": true, "outcome": "recovered"}
            ],
            "alerted": true, "muted": false, "diagnosis": null
        })
    );
    // The diagnosis is attached after the cycle is recorded, by id, and
    // `incident(id)` reads that one incident whole.
    d.store.set_diagnosis(i.id, r#"{"oom_kill":true,"journal":["a"]}"#).unwrap();
    let one = d.store.incident(i.id, ts(180)).unwrap().expect("by id");
    assert_eq!(one.diagnosis, Some(serde_json::json!({"oom_kill": true, "journal": ["a"]})));
    assert_eq!(one.restarts, i.restarts);
    assert_eq!(d.store.incident(i.id + 1, ts(180)).unwrap(), None);
    assert_eq!(d.store.open_incident("web").unwrap(), None, "it ended");
    // Filters: by service, and by since (an incident ended before it is left out).
    assert_eq!(d.store.incidents(Some("other"), ts(-100), 50, ts(180)).unwrap().incidents.len(), 0);
    assert_eq!(d.store.incidents(Some("web"), ts(121), 50, ts(180)).unwrap().incidents.len(), 0);
    assert_eq!(d.store.incidents(Some("web"), ts(120), 50, ts(180)).unwrap().incidents.len(), 1);

    let r = d.store.report(&["web", "other"], ts(0), ts(180)).unwrap();
    let web = &r.services[0];
    assert_eq!(
        (web.incidents, web.mttr_s, web.longest_s, web.alerts),
        (1, Some(90.0), Some(90.0), 1)
    );
    assert_eq!(web.restarts, RestartCounts { ok: 1, failed: 1 });
    assert_eq!(web.downtime_s, 90.0);
    assert_eq!(web.uptime, Some(50.0));
    assert_eq!(r.services[1].incidents, 0);
    assert_eq!(r.services[1].mttr_s, None);
    assert_eq!(r.incidents.len(), 1);
}

#[test]
fn an_incident_stays_open_across_a_restart_of_the_monitor() {
    let mut d = db();
    d.store.record(&cycle(0, 30, vec![svc("web", Down, false)])).unwrap();
    d.store.record(&cycle(30, 30, vec![svc("web", Down, false)])).unwrap();
    drop(d.store);
    let mut store = Store::open(&d.cfg).unwrap();
    let open = store.incidents(Some("web"), ts(0), 10, ts(45)).unwrap();
    assert_eq!(open.incidents.len(), 1);
    assert_eq!((open.incidents[0].ended_at, open.incidents[0].duration_s), (None, 45.0));
    // Down again after an hour's outage of the monitor: the same incident.
    store.record(&cycle(3600, 30, vec![svc("web", Down, false)])).unwrap();
    store.record(&cycle(3630, 30, vec![svc("web", Up, false)])).unwrap();
    let after = store.incidents(Some("web"), ts(0), 10, ts(4000)).unwrap();
    assert_eq!(after.incidents.len(), 1);
    assert_eq!(after.incidents[0].id, open.incidents[0].id);
    assert_eq!(after.incidents[0].ended_at, Some(ts(3630)));
}

#[test]
fn an_incident_that_began_muted_says_so_and_is_left_out_of_the_sla() {
    let mut d = db();
    d.store.record(&cycle(0, 30, vec![svc("web", Down, true)])).unwrap();
    d.store.record(&cycle(30, 30, vec![svc("web", Down, false)])).unwrap();
    d.store.record(&cycle(60, 30, vec![svc("web", Up, false)])).unwrap();
    let i = d.store.incidents(None, ts(0), 10, ts(90)).unwrap();
    assert!(i.incidents[0].muted);
    let r = d.store.report(&["web"], ts(0), ts(90)).unwrap();
    assert_eq!((r.services[0].incidents, r.services[0].longest_s), (0, None));
    assert_eq!(r.services[0].downtime_s, 30.0, "only the unmuted down time");
    assert_eq!(r.incidents.len(), 1, "listed all the same");
}

#[test]
fn retention_deletes_old_rows_a_bounded_amount_once_a_minute() {
    let mut d = db();
    // 2,100 results of 2 services two days ago, then the retention shrinks.
    for k in 0..1050 {
        let t = -2 * 86_400 + k * 30;
        d.store.record(&cycle(t, 30, vec![svc("a", Up, false), svc("b", Down, false)])).unwrap();
    }
    assert_eq!(d.store.result_count(None).unwrap(), 2100);
    let short = Retention {
        results: Duration::from_secs(3600),
        rollups: Duration::from_secs(6 * 3600),
        incidents: Duration::from_secs(3600),
    };
    let mut cfg = d.cfg.clone();
    cfg.retention = short;
    let mut store = Store::open(&cfg).unwrap();
    store.record(&cycle(0, 30, vec![svc("a", Up, false)])).unwrap();
    assert_eq!(store.result_count(None).unwrap(), 2101 - 2000, "at most 2,000 per cycle");
    store.record(&cycle(30, 30, vec![svc("a", Up, false)])).unwrap();
    assert_eq!(store.result_count(None).unwrap(), 102, "a minute between prunes");
    store.record(&cycle(60, 30, vec![svc("a", Up, false)])).unwrap();
    assert_eq!(store.result_count(None).unwrap(), 3, "the rest a minute later");
    // Rollups older than 6 h and the ended incident of b are gone too.
    let old = store
        .history("a", Duration::from_secs(3 * 86_400), Duration::from_secs(3600), ts(60))
        .unwrap();
    assert!(old.buckets.iter().all(|b| b.up_s == 0.0 || b.at.0 >= T0 - 7 * HOUR), "{old:?}");
    store.record(&cycle(90, 30, vec![svc("b", Up, false)])).unwrap();
    store.record(&cycle(2 * 3600, 30, vec![svc("b", Up, false)])).unwrap();
    assert!(store.incidents(Some("b"), Timestamp(0), 10, ts(7200)).unwrap().incidents.is_empty());
}

#[test]
fn untrusted_detail_is_bounded() {
    let mut d = db();
    let mut s = svc("web", Down, false);
    s.problems = (0..100).map(|_| problem("http", &"x".repeat(5000), "down", "timeout")).collect();
    d.store.record(&cycle(0, 30, vec![s])).unwrap();
    let i = d.store.incidents(None, ts(0), 1, ts(1)).unwrap();
    assert!(i.incidents[0].cause.as_ref().unwrap().target.len() <= 1004);
    let bytes: i64 =
        d.store.conn.query_row("SELECT length(problems) FROM results", [], |r| r.get(0)).unwrap();
    assert!(bytes < 40_000, "{bytes}");
}

// ---- files and faults ------------------------------------------------------

#[test]
fn a_missing_directory_is_created_and_the_file_is_0640() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("var/lib/chatstack/history.db");
    let cfg = HistoryConfig { path: Some(path.clone()), ..HistoryConfig::default() };
    let mut store = Store::open(&cfg).unwrap();
    store.record(&cycle(0, 30, vec![svc("s", Up, false)])).unwrap();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode(&path), 0o640);
    assert_eq!(mode(path.parent().unwrap()), 0o750);
    let wal = path.with_file_name("history.db-wal");
    assert_eq!(mode(&wal), 0o640, "SQLite gives its WAL the database's mode");
    let jm: String = store.conn.pragma_query_value(None, "journal_mode", |r| r.get(0)).unwrap();
    assert_eq!(jm, "wal");
}

#[test]
fn a_corrupt_file_is_refused_and_the_recorder_starts_anew_into_which_the_cycle_records() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.db");
    std::fs::write(&path, b"this is not SQLite, just 64 bytes of text of some other program.....")
        .unwrap();
    let cfg = HistoryConfig { path: Some(path.clone()), ..HistoryConfig::default() };
    assert!(matches!(Store::open(&cfg), Err(StoreError::Corrupt { .. })));
    let mut rec = Recorder::new(&cfg);
    rec.record(&cycle(0, 30, vec![svc("s", Down, false)])).unwrap();
    let aside: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .filter(|n| n.starts_with("history.db.corrupt-"))
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert!(std::fs::read(dir.path().join(&aside[0])).unwrap().starts_with(b"this is not SQLite"));
    assert_eq!(Store::open_read(&path).unwrap().result_count(None).unwrap(), 1);
}

#[test]
fn damaged_pages_are_corruption_too() {
    let mut d = db();
    for k in 0..400 {
        d.store
            .record(&cycle(k * 30, 30, vec![svc("a", Up, false), svc("b", Degraded, false)]))
            .unwrap();
    }
    let path = d.cfg.path.clone().unwrap();
    d.store.conn.pragma_update(None, "wal_checkpoint", "TRUNCATE").unwrap();
    drop(d.store);
    let mut bytes = std::fs::read(&path).unwrap();
    let page = 4096;
    assert!(bytes.len() > 8 * page);
    for b in &mut bytes[2 * page..] {
        *b = 0xA5;
    }
    std::fs::write(&path, &bytes).unwrap();
    let err = Store::open(&d.cfg).and_then(|mut s| {
        s.record(&cycle(400 * 30, 30, vec![svc("a", Up, false)]))?;
        s.integrity_check().map(|_| ())
    });
    assert!(matches!(err, Err(StoreError::Corrupt { .. })), "{err:?}");
    let mut rec = Recorder::new(&d.cfg);
    rec.record(&cycle(400 * 30, 30, vec![svc("a", Up, false)])).unwrap();
    let mut fresh = Store::open_read(&path).unwrap();
    assert_eq!(fresh.result_count(None).unwrap(), 1);
    assert_eq!(fresh.integrity_check().unwrap(), "ok");
}

fn sha(path: &std::path::Path) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

#[test]
fn a_newer_schema_is_left_untouched() {
    let d = db();
    let path = d.cfg.path.clone().unwrap();
    drop(d.store);
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        c.pragma_update(None, "user_version", schema::LATEST + 1).unwrap();
        c.pragma_update(None, "journal_mode", "DELETE").unwrap();
    }
    let before = sha(&path);
    let err = Store::open(&d.cfg).unwrap_err();
    assert_eq!(
        err,
        StoreError::NewerSchema {
            path: path.clone(),
            found: schema::LATEST + 1,
            supported: schema::LATEST
        }
    );
    assert!(err.to_string().contains("left untouched"), "{err}");
    let mut rec = Recorder::new(&d.cfg);
    assert!(matches!(
        rec.record(&cycle(0, 30, vec![svc("s", Up, false)])),
        Err(StoreError::NewerSchema { .. })
    ));
    assert!(matches!(Store::open_read(&path), Err(StoreError::NewerSchema { .. })));
    assert_eq!(sha(&path), before, "not one byte changed");
    assert!(!path.with_file_name("history.db-wal").exists());
}

#[test]
fn a_foreign_sqlite_file_is_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.db");
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch("CREATE TABLE notes (t TEXT);")
        .unwrap();
    let before = sha(&path);
    let cfg = HistoryConfig { path: Some(path.clone()), ..HistoryConfig::default() };
    assert!(matches!(Store::open(&cfg), Err(StoreError::Foreign { .. })));
    assert!(matches!(
        Recorder::new(&cfg).record(&cycle(0, 30, vec![])),
        Err(StoreError::Foreign { .. })
    ));
    assert_eq!(sha(&path), before);
}

#[test]
fn locked_past_the_busy_timeout_is_an_error_and_the_next_cycle_records() {
    let mut d = db();
    let path = d.cfg.path.clone().unwrap();
    let holder = rusqlite::Connection::open(&path).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    let mut cfg = d.cfg.clone();
    cfg.busy_timeout = Duration::from_millis(200);
    let mut rec = Recorder::new(&cfg);
    let t = std::time::Instant::now();
    let err = rec.record(&cycle(0, 30, vec![svc("s", Up, false)])).unwrap_err();
    assert_eq!(err, StoreError::Locked { path: path.clone(), waited: Duration::from_millis(200) });
    assert!(t.elapsed() >= Duration::from_millis(200) && t.elapsed() < Duration::from_secs(5));
    assert!(err.to_string().contains("locked by another process for more than 200ms"), "{err}");
    holder.execute_batch("COMMIT").unwrap();
    rec.record(&cycle(30, 30, vec![svc("s", Up, false)])).unwrap();
    assert_eq!(d.store.result_count(None).unwrap(), 1);
}

#[test]
fn readers_see_an_uninitialised_file_as_no_data_and_a_missing_one_as_missing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.db");
    assert!(matches!(Store::open_read(&path), Err(StoreError::Missing { .. })));
    std::fs::write(&path, b"").unwrap();
    let mut r = Store::open_read(&path).unwrap();
    assert_eq!(
        r.uptime("s", &STATUS_WINDOWS, ts(0)).unwrap().windows.get("24h").unwrap().uptime,
        None
    );
    assert!(r.incidents(None, ts(0), 5, ts(0)).unwrap().incidents.is_empty());
    assert_eq!(
        r.history("s", Duration::from_secs(3600), Duration::from_secs(60), ts(0))
            .unwrap()
            .buckets
            .len(),
        60
    );
    assert!(matches!(r.record(&cycle(0, 30, vec![])), Err(StoreError::ReadOnly { .. })));
}

#[test]
fn a_reader_follows_a_database_replaced_under_it() {
    let mut d = db();
    d.store.record(&cycle(0, 30, vec![svc("s", Up, false)])).unwrap();
    let path = d.cfg.path.clone().unwrap();
    let mut reader = Store::open_read(&path).unwrap();
    assert_eq!(reader.result_count(None).unwrap(), 1);
    drop(d.store);
    move_aside(&path).unwrap();
    let mut fresh = Store::open(&d.cfg).unwrap();
    for t in [0, 30] {
        fresh.record(&cycle(t, 30, vec![svc("s", Up, false)])).unwrap();
    }
    assert_eq!(reader.result_count(None).unwrap(), 2, "reopened the new file");
    let _ = &d.dir;
}

#[test]
fn status_uptime_is_percent_per_window() {
    let mut d = db();
    for (t, s) in [(0, Up), (30, Down), (60, Up)] {
        d.store.record(&cycle(t, 30, vec![svc("s", s, false)])).unwrap();
    }
    let u = d.store.status_uptime("s", ts(90)).unwrap();
    assert_eq!(
        serde_json::to_value(&u).unwrap(),
        serde_json::json!({"24h": 66.6666, "7d": 66.6666, "30d": 66.6666})
    );
}

#[test]
fn queries_in_one_read_see_one_snapshot_and_the_next_ones_see_the_new_rows() {
    let mut d = db();
    d.store.record(&cycle(0, 30, vec![svc("s", Up, false)])).unwrap();
    let mut reader = Store::open_read(d.cfg.path.as_deref().unwrap()).unwrap();
    let (first, second) = reader.in_one_read(|r| {
        let first = r.result_count(None).unwrap();
        d.store.record(&cycle(30, 30, vec![svc("s", Up, false)])).unwrap();
        (first, r.result_count(None).unwrap())
    });
    assert_eq!((first, second), (1, 1), "one snapshot");
    assert!(reader.conn.is_autocommit(), "the read transaction is over");
    assert_eq!(reader.result_count(None).unwrap(), 2);
}

#[test]
fn the_pool_reuses_the_uptime_answer_until_the_file_changes_or_it_ages() {
    let mut d = db();
    d.store.record(&cycle(0, 30, vec![svc("s", Up, false)])).expect("record");
    let pool = ReaderPool::new(d.cfg.path.as_deref().expect("path"), 2);
    let names = vec!["s".to_string()];
    let a = pool.uptime_doc(&names, ts(10)).expect("uptime");
    let b = pool.uptime_doc(&names, ts(20)).expect("uptime");
    assert_eq!(a, b, "reused: the same answer, with the time it was computed");
    assert_eq!(b.generated_at, ts(10));
    // Other services are another question.
    let two = vec!["s".to_string(), "t".to_string()];
    assert_eq!(pool.uptime_doc(&two, ts(20)).expect("uptime").services.len(), 2);
    assert_eq!(pool.uptime_doc(&names, ts(25)).expect("uptime").generated_at, ts(25));
    // A cycle's write shows at once.
    d.store.record(&cycle(30, 30, vec![svc("s", Down, false)])).expect("record");
    let c = pool.uptime_doc(&names, ts(40)).expect("uptime");
    assert_eq!(c.generated_at, ts(40));
    let hour = c.services[0].windows.get("1h").expect("1h");
    assert_eq!(hour.down_s, 10.0, "the down result's span so far");
    // Unchanged, an answer older than UPTIME_REUSE is computed anew.
    let deadline = std::time::Instant::now() + UPTIME_REUSE * 5;
    let mut k = 41;
    while pool.uptime_doc(&names, ts(k)).expect("uptime").generated_at == ts(40) {
        assert!(std::time::Instant::now() < deadline, "never recomputed");
        std::thread::sleep(Duration::from_millis(20));
        k += 1;
    }
}

#[test]
fn range_queries_keep_their_plan_when_new_bounds_are_bound() {
    let mut d = db();
    for k in 0..50 {
        d.store.record(&cycle(k * 30, 30, vec![svc("s", Up, false)])).expect("record");
    }
    let path = d.cfg.path.clone().expect("path");
    let mut r = Store::open_read(&path).expect("reader");
    for k in 0..3 {
        let now = ts(1500 + k * 60);
        r.history("s", Duration::from_secs(3600), Duration::from_secs(60), now).expect("history");
        r.uptime("s", &UPTIME_WINDOWS, now).expect("uptime");
    }
    for sql in [query::ROWS_SQL.to_string(), query::RANGE_SQL.to_string()] {
        let st = r.conn.prepare_cached(&sql).expect("cached");
        assert_eq!(st.get_status(rusqlite::StatementStatus::RePrepare), 0, "{sql}");
        assert!(st.get_status(rusqlite::StatementStatus::Run) >= 3, "it ran: {sql}");
    }
}

#[test]
fn every_connection_bounds_its_page_cache() {
    let mut d = db();
    d.store.record(&cycle(0, 30, vec![svc("s", Up, false)])).expect("record");
    let path = d.cfg.path.clone().expect("path");
    let r = Store::open_read(&path).expect("reader");
    for conn in [&d.store.conn, &r.conn] {
        let kib: i64 = conn.pragma_query_value(None, "cache_size", |r| r.get(0)).expect("pragma");
        assert_eq!(kib, -CACHE_KIB, "SQLite's default is -2000 (2 MiB per connection)");
    }
}

/// Issue 18 #5 and #7: a FIFO in place of the database (or of its -wal)
/// is refused at once by readers and the writer, never waited on; a
/// symlink is never followed, whoever opens it.
#[test]
fn a_fifo_or_a_symlink_in_place_of_the_database_is_refused_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("history.db");
    let made = std::process::Command::new("mkfifo").arg(&db).status().expect("mkfifo");
    assert!(made.success());
    let cfg = HistoryConfig { path: Some(db.clone()), ..HistoryConfig::default() };
    let started = std::time::Instant::now();
    let e = Store::open_read(&db).expect_err("a FIFO");
    assert!(e.to_string().contains("not a regular file (a FIFO)"), "{e}");
    let e = Store::open(&cfg).expect_err("a FIFO");
    assert!(e.to_string().contains("not a regular file (a FIFO)"), "{e}");
    let pool = ReaderPool::new(&db, 2);
    assert!(pool.with(|s| s.result_count(None)).is_err());
    assert!(started.elapsed() < Duration::from_secs(1), "blocked: {:?}", started.elapsed());
    std::fs::remove_file(&db).unwrap();

    // A symlink to a file someone else owns: refused, the target untouched.
    let target = dir.path().join("precious");
    std::fs::write(&target, b"not yours").unwrap();
    std::os::unix::fs::symlink(&target, &db).unwrap();
    for e in [Store::open(&cfg).expect_err("symlink"), Store::open_read(&db).expect_err("symlink")]
    {
        assert!(e.to_string().contains("symbolic link, not followed"), "{e}");
    }
    assert_eq!(std::fs::read(&target).unwrap(), b"not yours");
    std::fs::remove_file(&db).unwrap();

    // Its -wal a symlink: refused too.
    Store::open(&cfg).expect("a real one").record(&cycle(0, 30, vec![])).expect("record");
    let wal = dir.path().join("history.db-wal");
    let _ = std::fs::remove_file(&wal);
    std::os::unix::fs::symlink(&target, &wal).unwrap();
    let e = Store::open(&cfg).expect_err("-wal symlink");
    assert!(e.to_string().contains("-wal is a symbolic link, not followed"), "{e}");
    assert_eq!(std::fs::read(&target).unwrap(), b"not yours");
}

/// Issue 18 #5: a reader waits for a pooled connection at most the busy
/// timeout, then gets an error (a 503), never parks its thread for good.
#[test]
fn waiting_for_a_pooled_reader_is_bounded() {
    let mut d = db();
    d.store.record(&cycle(0, 30, vec![svc("s", Up, false)])).expect("record");
    let pool = ReaderPool::new(d.cfg.path.as_deref().expect("path"), 1);
    let (held_tx, held_rx) = std::sync::mpsc::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    std::thread::scope(|s| {
        let pool = &pool;
        s.spawn(move || {
            pool.with(|_| {
                held_tx.send(()).expect("send");
                let _ = release_rx.recv_timeout(Duration::from_secs(20));
                Ok(())
            })
            .expect("the holder");
        });
        held_rx.recv_timeout(Duration::from_secs(10)).expect("held");
        let started = std::time::Instant::now();
        let e = pool.with(|s| s.result_count(None)).expect_err("bounded");
        let waited = started.elapsed();
        release_tx.send(()).expect("release");
        assert!(matches!(e, StoreError::Locked { .. }), "{e}");
        assert!(
            waited >= Duration::from_millis(1900) && waited < Duration::from_secs(5),
            "{waited:?}"
        );
    });
    assert_eq!(pool.with(|s| s.result_count(None)).expect("free again"), 1);
}

#[test]
fn a_version_1_file_gains_diagnosis_and_outcome_and_keeps_its_incidents() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.db");
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch(schema::MIGRATIONS[0]).unwrap();
        c.pragma_update(None, "application_id", schema::APPLICATION_ID).unwrap();
        c.pragma_update(None, "user_version", 1).unwrap();
        c.execute_batch(
            "INSERT INTO services (id, name) VALUES (1, 'web');
             INSERT INTO incidents (id, service_id, started_at, ended_at, muted) VALUES (7, 1, 1000, 2000, 0);
             INSERT INTO restarts (incident_id, service_id, at, ok) VALUES (7, 1, 1500, 1);",
        )
        .unwrap();
    }
    let cfg = HistoryConfig {
        path: Some(path.clone()),
        retention: Retention::default(),
        busy_timeout: Duration::from_secs(2),
    };
    let mut store = Store::open(&cfg).expect("migrates");
    let version: i64 = rusqlite::Connection::open(&path)
        .unwrap()
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, schema::LATEST);
    let old = store.incident(7, Timestamp(3000)).unwrap().expect("kept");
    assert_eq!(old.diagnosis, None);
    assert_eq!(old.restarts[0].outcome, RestartOutcome::Pending, "not judged then");
    store.set_diagnosis(7, r#"{"oom_kill":false}"#).unwrap();
    assert!(store.incident(7, Timestamp(3000)).unwrap().unwrap().diagnosis.is_some());
}

#[test]
fn samples_are_kept_per_series_read_by_window_and_retained_like_results() {
    let retention = Retention { results: Duration::from_secs(3600), ..Retention::default() };
    let mut d = db_with(retention);
    let series = series_name("web", "disk", "/", "available_bytes");
    let other = series_name("web", "disk", "/var", "available_bytes");
    let record = |store: &mut Store, at: i64, v: f64| {
        let mut rec = cycle(at, 30, vec![svc("web", Up, false)]);
        rec.samples = vec![(series.clone(), v), (other.clone(), 1.0)];
        rec.samples.push((series_name("web", "disk", "/", "nan"), f64::NAN));
        store.record(&rec).unwrap();
    };
    for (at, v) in [(1_000, 900.0), (1_030, 899.0), (1_060, 898.0)] {
        record(&mut d.store, at, v);
    }
    let secs = |s: i64| (T0 / 1000 + s) as f64;
    // The last 60 s before 1060 hold this series' three samples (not the other's).
    let got = d.store.samples(&series, Duration::from_secs(60), ts(1_060)).unwrap();
    assert_eq!(got, vec![(secs(1_000), 900.0), (secs(1_030), 899.0), (secs(1_060), 898.0)]);
    let got = d.store.samples(&series, Duration::from_secs(30), ts(1_060)).unwrap();
    assert_eq!(got, vec![(secs(1_030), 899.0), (secs(1_060), 898.0)]);
    // At 5000, retention (1 h) drops everything before 1400.
    record(&mut d.store, 5_000, 897.0);
    let all = d.store.samples(&series, Duration::from_secs(100_000), ts(5_000)).unwrap();
    assert_eq!(all, vec![(secs(5_000), 897.0)]);
}

#[test]
fn the_status_uptimes_are_kept_a_minute_while_no_status_or_mute_changes() {
    let mut d = db();
    for t in [0, 30] {
        d.store.record(&cycle(t, 30, vec![svc("s", Up, false)])).unwrap();
    }
    let mut rec = Recorder::new(&d.cfg);
    let key = |h: Health, muted: bool| vec![("s".to_string(), h, muted)];
    let day = |u: &[StatusUptime]| u[0].as_ref().unwrap().0[0].1;
    // No figure yet (nothing recorded for "t"): asked again at the next cycle.
    let new = vec![("t".to_string(), Up, false)];
    assert_eq!(day(rec.status_uptimes(new.clone(), ts(30)).unwrap()), None);
    d.store.record(&cycle(30, 30, vec![svc("t", Up, false)])).unwrap();
    assert_eq!(day(rec.status_uptimes(new, ts(31)).unwrap()), Some(100.0));
    assert_eq!(day(rec.status_uptimes(key(Up, false), ts(60)).unwrap()), Some(100.0));
    // Down since 60 s (written by the cycle, as the daemon does after it
    // asked): the figure stands while the status does, for a minute.
    d.store.record(&cycle(60, 30, vec![svc("s", Down, false)])).unwrap();
    d.store.record(&cycle(90, 30, vec![svc("s", Down, false)])).unwrap();
    assert_eq!(day(rec.status_uptimes(key(Up, false), ts(119)).unwrap()), Some(100.0));
    // Asked anew at once when the status changes, or the mute ...
    assert_eq!(day(rec.status_uptimes(key(Down, false), ts(120)).unwrap()), Some(50.0));
    assert_eq!(day(rec.status_uptimes(key(Down, false), ts(150)).unwrap()), Some(50.0));
    assert_eq!(day(rec.status_uptimes(key(Down, true), ts(150)).unwrap()), Some(40.0));
    // ... or a minute on, or when the clock went back.
    for t in [120, 150, 180] {
        d.store.record(&cycle(t, 30, vec![svc("s", Down, false)])).unwrap();
    }
    assert_eq!(day(rec.status_uptimes(key(Down, true), ts(209)).unwrap()), Some(40.0));
    assert_eq!(day(rec.status_uptimes(key(Down, true), ts(210)).unwrap()), Some(28.5714));
    assert_eq!(day(rec.status_uptimes(key(Down, true), ts(200)).unwrap()), Some(30.0));
}
