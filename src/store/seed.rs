//! Synthetic history for tests and benchmarks: a year of rollups and two
//! weeks of raw results for N services, in seconds, as the writer would have
//! left them (same accounting, same tables, incidents and restarts included).
//!
//! The timeline is deterministic (a fixed PRNG) and public (`runs`), so a
//! test can compute the expected figures directly from it. Reached from the
//! command line as the hidden `chatstack-status __seed-history` (used by the
//! benchmarks); not part of the product's interface.

use super::accounting::{self, DAY, HOUR, Kind, Latency, MINUTE, MINUTE_KEEP, Totals};
use super::schema::status_code;
use super::{Result, Store, StoreError};
use crate::config::{HistoryConfig, Retention};
use crate::state::Health;
use crate::time::Timestamp;
use rusqlite::params;
use std::path::Path;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, PartialEq)]
pub struct SeedSpec {
    pub services: usize,
    /// Days of rollups (and incidents) before `now`.
    pub days: i64,
    /// Days of raw results before `now`.
    pub result_days: i64,
    pub interval: Duration,
    pub now: Timestamp,
    pub seed: u64,
}

impl SeedSpec {
    /// 10 services, a year of rollups, two weeks of results, a 30 s cycle.
    pub fn year(now: Timestamp) -> SeedSpec {
        SeedSpec {
            services: 10,
            days: 365,
            result_days: 14,
            interval: Duration::from_secs(30),
            now,
            seed: 1,
        }
    }

    pub fn interval_ms(&self) -> i64 {
        (self.interval.as_millis() as i64).max(1000)
    }
}

/// Consecutive results of one status: at `start + k × interval`, `k < count`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Run {
    pub start: i64,
    pub count: i64,
    pub status: Health,
    pub muted: bool,
}

impl Run {
    pub fn last(&self, interval: i64) -> i64 {
        self.start + (self.count - 1) * interval
    }
}

#[derive(Debug, Clone)]
pub struct SeedSummary {
    pub services: usize,
    pub results: u64,
    pub rollup_rows: u64,
    pub incidents: u64,
    pub elapsed: Duration,
}

pub fn service_name(i: usize) -> String {
    format!("svc-{i:02}")
}

/// splitmix64: tiny, deterministic, good enough for a synthetic timeline.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() % (hi - lo + 1) as u64) as i64
    }
}

/// The seeded results of service `index`, oldest first. The last result is
/// one interval before `now`; the last service ends down (an open incident).
pub fn runs(spec: &SeedSpec, index: usize) -> Vec<Run> {
    let i = spec.interval_ms();
    let mut rng = Rng(spec.seed.wrapping_mul(1_000_003).wrapping_add(index as u64 * 7919));
    let first = accounting::bucket_start(spec.now.0 - spec.days * DAY, i);
    let last = accounting::bucket_start(spec.now.0, i) - i;
    let cycles = |ms: i64| (ms / i).max(1);
    let mut out = Vec::new();
    let mut t = first;
    let push = |out: &mut Vec<Run>, t: &mut i64, count: i64, status: Health, muted: bool| {
        let count = count.min((last - *t) / i + 1);
        if count > 0 {
            out.push(Run { start: *t, count, status, muted });
            *t += count * i;
        }
    };
    while t <= last {
        let up = rng.range(cycles(6 * HOUR), cycles(4 * DAY));
        push(&mut out, &mut t, up, Health::Up, false);
        match rng.range(0, 99) {
            0..=54 => {
                let n = rng.range(1, cycles(HOUR) / 2);
                push(&mut out, &mut t, n, Health::Down, false);
            }
            55..=79 => {
                let n = rng.range(2, cycles(HOUR));
                push(&mut out, &mut t, n, Health::Degraded, false);
            }
            80..=89 => {
                let n = rng.range(cycles(10 * MINUTE), cycles(2 * HOUR));
                let status = if rng.range(0, 1) == 0 { Health::Down } else { Health::Up };
                push(&mut out, &mut t, n, status, true);
            }
            90..=94 => t += rng.range(cycles(30 * MINUTE), cycles(8 * HOUR)) * i,
            _ => {
                // Down across a monitor outage: one incident.
                push(&mut out, &mut t, 10, Health::Down, false);
                t += rng.range(cycles(HOUR), cycles(3 * HOUR)) * i;
                push(&mut out, &mut t, 5, Health::Down, false);
            }
        }
    }
    if index + 1 == spec.services {
        // Make the last service's final results a still-open incident.
        if let Some(r) = out.last_mut()
            && r.count > 20
        {
            r.count -= 20;
            let start = r.last(i) + i;
            out.push(Run { start, count: 20, status: Health::Down, muted: false });
        }
    }
    out
}

/// A seeded result's latency (ms): None for a down result.
pub fn latency(at: i64, status: Health, interval: i64) -> Option<f64> {
    let k = (at / interval) % 17;
    match status {
        Health::Down => None,
        Health::Degraded => Some(1500.0 + k as f64 * 10.0),
        Health::Up => Some(2.0 + k as f64 * 0.5),
    }
}

/// Dense rollup accumulators over `[from, to)` at one resolution.
struct Dense {
    res: i64,
    from: i64,
    cells: Vec<(Totals, Latency, i64)>,
}

impl Dense {
    fn new(res: i64, from: i64, to: i64) -> Dense {
        let from = accounting::bucket_start(from, res);
        let n = ((to - from) / res + 1).max(0) as usize;
        Dense { res, from, cells: vec![Default::default(); n] }
    }

    fn cell(&mut self, start: i64) -> Option<&mut (Totals, Latency, i64)> {
        if start < self.from {
            return None;
        }
        self.cells.get_mut(((start - self.from) / self.res) as usize)
    }

    fn span(&mut self, from: i64, to: i64, kind: Kind) {
        let Some((a, b)) = accounting::intersect(from, to, self.from, i64::MAX) else { return };
        let res = self.res;
        accounting::split(a, b, res, |start, ms| {
            if let Some(c) = self.cell(start) {
                c.0.add(kind, ms);
            }
        });
    }

    fn sample(&mut self, at: i64, latency: Option<f64>) {
        let start = accounting::bucket_start(at, self.res);
        if let Some(c) = self.cell(start) {
            c.2 += 1;
            if let Some(l) = latency {
                c.1.add(l);
            }
        }
    }
}

/// Fills a new database at `path` (refuses one that already has services).
pub fn seed(path: &Path, spec: &SeedSpec) -> Result<SeedSummary> {
    let started = Instant::now();
    let retention = Retention::default();
    let cfg = HistoryConfig { path: Some(path.into()), retention, ..HistoryConfig::default() };
    let mut store = Store::open(&cfg)?;
    let busy = store.busy;
    let sql = |e| StoreError::from_sqlite(path, busy, e);
    if !store.known_services()?.is_empty() {
        return Err(StoreError::Sqlite {
            path: path.into(),
            detail: "already holds history: seed only a new file".into(),
        });
    }
    let now = spec.now.0;
    let i = spec.interval_ms();
    let mut summary = SeedSummary {
        services: spec.services,
        results: 0,
        rollup_rows: 0,
        incidents: 0,
        elapsed: Duration::ZERO,
    };
    store.conn.pragma_update(None, "synchronous", "OFF").map_err(sql)?;
    let tx = store.conn.transaction().map_err(sql)?;
    for index in 0..spec.services {
        let name = service_name(index);
        let sid = super::write::service_id(&tx, &name).map_err(sql)?;
        let runs = runs(spec, index);
        let mut dense = [
            Dense::new(MINUTE, now - MINUTE_KEEP, now),
            Dense::new(HOUR, now - spec.days * DAY, now),
            Dense::new(DAY, now - spec.days * DAY, now),
        ];
        let results_from = now - spec.result_days * DAY;
        let mut result_stmt = tx
            .prepare_cached(
                "INSERT INTO results (at, service_id, status, latency_us, muted, interval_ms, problems)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .map_err(sql)?;
        let problem = format!(
            r#"[{{"type":"http","target":"http://127.0.0.1:{}/health","status":"{{}}","reason":"{{}}","detail":"{{}}"}}]"#,
            5000 + index
        );
        let mut incident: Option<(i64, bool)> = None; // (id, restarted)
        for (k, run) in runs.iter().enumerate() {
            let next_start = runs.get(k + 1).map(|r| r.start);
            let kind = Kind::of(run.status, run.muted);
            // Spans: the run's results back to back, then its last result
            // up to the next run (at most 2 × interval); the final one is the tail.
            let last = run.last(i);
            let mut spans = vec![(run.start, last)];
            if let Some(n) = next_start {
                spans.push((last, n.min(last + 2 * i)));
            }
            for (a, b) in spans {
                if b > a {
                    for d in &mut dense {
                        d.span(a, b, kind);
                    }
                }
            }
            for c in 0..run.count {
                let at = run.start + c * i;
                let lat = latency(at, run.status, i);
                for d in &mut dense {
                    d.sample(at, lat);
                }
                if at >= results_from {
                    let problems = match run.status {
                        Health::Up => None,
                        Health::Degraded => Some(
                            problem
                                .replacen("{}", "degraded", 1)
                                .replacen("{}", "slow", 1)
                                .replacen("{}", "HTTP 200 in 1.5 s", 1),
                        ),
                        Health::Down => Some(
                            problem
                                .replacen("{}", "down", 1)
                                .replacen("{}", "refused", 1)
                                .replacen("{}", "connection refused", 1),
                        ),
                    };
                    let us = lat.map(|l| (l * 1000.0).round() as i64);
                    result_stmt
                        .execute(params![
                            at,
                            sid,
                            status_code(run.status),
                            us,
                            run.muted,
                            i,
                            problems
                        ])
                        .map_err(sql)?;
                    summary.results += 1;
                }
            }
            // Incidents: a down run opens one (unless open), anything else ends it.
            match (run.status, incident) {
                (Health::Down, None) => {
                    tx.execute(
                        "INSERT INTO incidents (service_id, started_at, cause_type, cause_target,
                             cause_reason, cause_detail, alerts, muted)
                         VALUES (?1, ?2, 'http', ?3, 'refused', 'connection refused', ?4, ?5)",
                        params![
                            sid,
                            run.start,
                            format!("http://127.0.0.1:{}/health", 5000 + index),
                            i64::from(!run.muted),
                            run.muted
                        ],
                    )
                    .map_err(sql)?;
                    incident = Some((tx.last_insert_rowid(), false));
                    summary.incidents += 1;
                }
                (Health::Down, Some(_)) => {}
                (_, Some((id, _))) => {
                    tx.execute(
                        "UPDATE incidents SET ended_at = ?2 WHERE id = ?1",
                        params![id, run.start],
                    )
                    .map_err(sql)?;
                    incident = None;
                }
                _ => {}
            }
            if let (Health::Down, Some((id, false))) = (run.status, incident)
                && run.count >= 3
                && !run.muted
            {
                let at = run.start + 2 * i;
                let ok = (at / i) % 5 != 0;
                tx.execute(
                    "INSERT INTO restarts (incident_id, service_id, at, ok) VALUES (?1, ?2, ?3, ?4)",
                    params![id, sid, at, ok],
                )
                .map_err(sql)?;
                incident = Some((id, true));
            }
        }
        drop(result_stmt);
        let mut rollup = tx
            .prepare_cached(
                "INSERT INTO rollups (service_id, res, start, up, degraded, down, maintenance,
                     samples, lat_n, lat_sum, lat_min, lat_max)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            )
            .map_err(sql)?;
        for d in &dense {
            for (k, (t, l, samples)) in d.cells.iter().enumerate() {
                if t.covered() == 0 && *samples == 0 {
                    continue;
                }
                let start = d.from + k as i64 * d.res;
                rollup
                    .execute(params![
                        sid,
                        d.res,
                        start,
                        t.up,
                        t.degraded,
                        t.down,
                        t.maintenance,
                        samples,
                        l.n,
                        l.sum,
                        l.min,
                        l.max
                    ])
                    .map_err(sql)?;
                summary.rollup_rows += 1;
            }
        }
        drop(rollup);
        if let Some(r) = runs.last() {
            tx.execute(
                "UPDATE services SET last_at = ?2, last_status = ?3, last_muted = ?4,
                     last_interval = ?5, covered_until = ?2, open_incident = ?6 WHERE id = ?1",
                params![sid, r.last(i), status_code(r.status), r.muted, i, incident.map(|x| x.0)],
            )
            .map_err(sql)?;
        }
    }
    tx.commit().map_err(sql)?;
    store.conn.pragma_update(None, "synchronous", "NORMAL").map_err(sql)?;
    summary.elapsed = started.elapsed();
    Ok(summary)
}
