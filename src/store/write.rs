//! The writer: one transaction per cycle that stores the raw results,
//! closes each service's previous span into the minute/hour/day rollups,
//! opens, extends and ends incidents, and deletes a bounded number of rows
//! past retention.

use super::accounting::{self, DAY, HOUR, Kind, Latency, MINUTE, MINUTE_KEEP, Totals};
use super::schema::{status_code, status_of};
use super::{Result, Store, StoreError};
use crate::config::Retention;
use crate::state::{Health, RestartOutcome};
use crate::time::Timestamp;
use rusqlite::{Transaction, params};
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// What one cycle hands the store.
#[derive(Debug, Clone, PartialEq)]
pub struct CycleRecord {
    /// The cycle's time (the status document's `generated_at`).
    pub at: Timestamp,
    /// The cycle's `interval`: a result covers at most twice this.
    pub interval: Duration,
    pub services: Vec<ServiceRecord>,
    /// Values kept over time (`samples.rs`): (series, value).
    pub samples: Vec<(String, f64)>,
    /// The services' unit figures (`resources.rs`).
    pub resources: Vec<super::ResourceSample>,
}

/// One service in one cycle.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceRecord {
    pub name: String,
    pub status: Health,
    pub latency_ms: Option<f64>,
    /// Muted at the cycle's time: its span counts as maintenance.
    pub muted: bool,
    /// Every check that was not up, in config order.
    pub problems: Vec<CheckProblem>,
    /// The restarts run in this cycle.
    pub restarts: Vec<RestartRun>,
    /// A down alert was raised for it in this cycle.
    pub alerted: bool,
    /// Earlier restarts judged in this cycle (by their time).
    pub outcomes: Vec<(Timestamp, RestartOutcome)>,
}

/// A check that was not up.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckProblem {
    #[serde(rename = "type")]
    pub kind: String,
    pub target: String,
    /// `degraded`, `unknown` or `down`.
    pub status: String,
    pub reason: Option<String>,
    pub detail: String,
}

/// A restart run by the healer: when, whether the command succeeded, and
/// whether it helped (`pending` until the first cycle after the grace).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RestartRun {
    pub at: Timestamp,
    pub ok: bool,
    pub outcome: RestartOutcome,
}

/// Rows past retention deleted per cycle and table, at most: enough to keep
/// up with what a cycle adds many times over, small enough that catching up
/// after a long retention change stays a few milliseconds per cycle. A
/// prune deletes for the cycles since the one before, at most a minute's.
const DELETE_RESULTS: i64 = 2_000;
const DELETE_ROLLUPS: i64 = 500;
const DELETE_INCIDENTS: i64 = 100;
/// How often a connection prunes (ms). Every cycle, the 17 bounded deletes
/// of 5 services (each with its own temporary b-tree and page cache) were a
/// fifth of the daemon's history cost (bench/NOTES.md, "cost"); a `check`,
/// one cycle per process, still prunes each run.
const PRUNE_EVERY: i64 = 60_000;
/// The most cycles' worth of rows one prune deletes, however short the
/// interval (a minute of 100 ms cycles).
const PRUNE_CYCLES: i64 = 600;
/// Stored text is bounded whatever a target answered.
const MAX_DETAIL: usize = 1_000;
const MAX_PROBLEMS: usize = 32;

/// The per-service row: the last result and the covered-until mark.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Mark {
    pub id: i64,
    pub last: Option<LastResult>,
    pub covered_until: i64,
    pub open_incident: Option<i64>,
}

#[derive(Debug, Clone, Copy)]
pub(super) struct LastResult {
    pub at: i64,
    pub status: Health,
    pub muted: bool,
    pub interval: i64,
}

impl Mark {
    /// The open tail at `now`: what the last result covers so far.
    pub fn tail(&self, now: i64) -> Option<(i64, i64, Kind)> {
        let l = self.last?;
        let (from, to) = accounting::open_span(l.at, l.interval, self.covered_until, now)?;
        Some((from, to, Kind::of(l.status, l.muted)))
    }
}

/// Rollup deltas of one cycle, merged before they are written.
#[derive(Debug, Default)]
pub(super) struct Delta {
    pub totals: Totals,
    pub samples: i64,
    pub latency: Latency,
}

pub(super) type Deltas = BTreeMap<(i64, i64, i64), Delta>;

/// Adds a covered span to the deltas of every resolution, split at bucket
/// boundaries. Parts older than what retention keeps are not written (this
/// also bounds the work of an absurdly long span).
pub(super) fn add_span(
    deltas: &mut Deltas,
    sid: i64,
    (from, to): (i64, i64),
    kind: Kind,
    now: i64,
    rollups_keep: i64,
) {
    for (res, keep) in
        [(MINUTE, MINUTE_KEEP.min(rollups_keep)), (HOUR, rollups_keep), (DAY, rollups_keep)]
    {
        let floor = accounting::bucket_start(now.saturating_sub(keep), res);
        let Some((a, b)) = accounting::intersect(from, to, floor, i64::MAX) else { continue };
        accounting::split(a, b, res, |start, ms| {
            deltas.entry((sid, res, start)).or_default().totals.add(kind, ms);
        });
    }
}

pub(super) fn add_sample(deltas: &mut Deltas, sid: i64, at: i64, latency_ms: Option<f64>) {
    for res in accounting::RESOLUTIONS {
        let d = deltas.entry((sid, res, accounting::bucket_start(at, res))).or_default();
        d.samples += 1;
        if let Some(l) = latency_ms.filter(|l| l.is_finite() && *l >= 0.0) {
            d.latency.add(l);
        }
    }
}

pub(super) fn flush_deltas(tx: &Transaction<'_>, deltas: &Deltas) -> rusqlite::Result<()> {
    let mut st = tx.prepare_cached(
        "INSERT INTO rollups (service_id, res, start, up, degraded, down, maintenance,
                              samples, lat_n, lat_sum, lat_min, lat_max)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
         ON CONFLICT (service_id, res, start) DO UPDATE SET
            up = up + excluded.up,
            degraded = degraded + excluded.degraded,
            down = down + excluded.down,
            maintenance = maintenance + excluded.maintenance,
            samples = samples + excluded.samples,
            lat_n = lat_n + excluded.lat_n,
            lat_sum = lat_sum + excluded.lat_sum,
            lat_min = min(coalesce(lat_min, excluded.lat_min), coalesce(excluded.lat_min, lat_min)),
            lat_max = max(coalesce(lat_max, excluded.lat_max), coalesce(excluded.lat_max, lat_max))",
    )?;
    for ((sid, res, start), d) in deltas {
        let t = &d.totals;
        st.execute(params![
            sid,
            res,
            start,
            t.up,
            t.degraded,
            t.down,
            t.maintenance,
            d.samples,
            d.latency.n,
            d.latency.sum,
            d.latency.min,
            d.latency.max
        ])?;
    }
    Ok(())
}

/// The service's row id, its row made on first sight. Looked up first: the
/// insert that would find it there anyway was one statement more per
/// service in every cycle's transaction.
pub(super) fn service_id(tx: &Transaction<'_>, name: &str) -> rusqlite::Result<i64> {
    use rusqlite::OptionalExtension;
    let mut select = tx.prepare_cached("SELECT id FROM services WHERE name = ?1")?;
    if let Some(id) = select.query_row([name], |r| r.get(0)).optional()? {
        return Ok(id);
    }
    tx.prepare_cached("INSERT INTO services (name) VALUES (?1) ON CONFLICT (name) DO NOTHING")?
        .execute([name])?;
    select.query_row([name], |r| r.get(0))
}

pub(super) fn load_mark(conn: &rusqlite::Connection, sid: i64) -> rusqlite::Result<Mark> {
    conn.prepare_cached(
        "SELECT last_at, last_status, last_muted, last_interval, covered_until, open_incident
         FROM services WHERE id = ?1",
    )?
    .query_row([sid], |r| {
        let last_at: Option<i64> = r.get(0)?;
        let last = match last_at {
            Some(at) => Some(LastResult {
                at,
                status: status_of(r.get::<_, Option<i64>>(1)?.unwrap_or(0)),
                muted: r.get::<_, Option<bool>>(2)?.unwrap_or(false),
                interval: r.get::<_, Option<i64>>(3)?.unwrap_or(0),
            }),
            None => None,
        };
        Ok(Mark {
            id: sid,
            last,
            covered_until: r.get::<_, Option<i64>>(4)?.unwrap_or(i64::MIN),
            open_incident: r.get(5)?,
        })
    })
}

fn clip(s: &str) -> String {
    if s.len() <= MAX_DETAIL {
        return s.to_string();
    }
    let mut end = MAX_DETAIL;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

impl Store {
    /// Records one cycle in one transaction: all of it or nothing.
    pub fn record(&mut self, rec: &CycleRecord) -> Result<()> {
        self.refresh()?;
        let Some(retention) = self.writer else {
            return Err(StoreError::ReadOnly {
                path: self.path.clone(),
                detail: "opened for reading".into(),
            });
        };
        let (path, busy) = (self.path.clone(), self.busy);
        let err = |e| super::explain_read_only(&path, StoreError::from_sqlite(&path, busy, e));
        let prune = prune_due(self.pruned_at, rec.at.0, ms(rec.interval));
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(err)?;
        write_cycle(&tx, rec, &retention, prune).and_then(|()| tx.commit()).map_err(err)?;
        if prune.is_some() {
            self.pruned_at = Some(rec.at.0);
        }
        Ok(())
    }
}

/// Whether this cycle prunes, and how many cycles' worth: the first cycle
/// of a connection does, then one a minute (or after the clock stepped
/// back), deleting for the cycles since, at most a minute of them: per
/// minute, what pruning every cycle deleted.
fn prune_due(last: Option<i64>, now: i64, interval: i64) -> Option<i64> {
    let interval = interval.max(1);
    let minute = (PRUNE_EVERY / interval).clamp(1, PRUNE_CYCLES);
    match last {
        None => Some(1),
        Some(at) if now < at => Some(1),
        Some(at) if now - at >= PRUNE_EVERY => Some(((now - at) / interval).clamp(1, minute)),
        Some(_) => None,
    }
}

/// Deletes `table`'s `limit` oldest rows whose `column` is before `cut`
/// (a rowid table; the names are ours, never input).
pub(super) fn delete_oldest(
    tx: &Transaction<'_>,
    table: &str,
    column: &str,
    cut: i64,
    limit: i64,
) -> rusqlite::Result<()> {
    tx.prepare_cached(&format!(
        "DELETE FROM {table} WHERE rowid IN
            (SELECT rowid FROM {table} WHERE {column} < ?1 ORDER BY {column} LIMIT ?2)"
    ))?
    .execute(params![cut, limit])?;
    Ok(())
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn write_cycle(
    tx: &Transaction<'_>,
    rec: &CycleRecord,
    retention: &Retention,
    prune: Option<i64>,
) -> rusqlite::Result<()> {
    let now = rec.at.0;
    let interval = ms(rec.interval).max(1);
    let rollups_keep = ms(retention.rollups);
    let mut deltas = Deltas::new();
    for svc in &rec.services {
        let sid = service_id(tx, &svc.name)?;
        let mut mark = load_mark(tx, sid)?;
        // Close the previous result's span now that the next one is here.
        let mut covered = mark.covered_until;
        match mark.last {
            Some(l) => {
                if let Some(span) =
                    accounting::closed_span(l.at, l.interval, mark.covered_until, now)
                {
                    add_span(
                        &mut deltas,
                        sid,
                        span,
                        Kind::of(l.status, l.muted),
                        now,
                        rollups_keep,
                    );
                    covered = covered.max(span.1);
                }
            }
            None => covered = now,
        }
        add_sample(&mut deltas, sid, now, svc.latency_ms);
        insert_result(tx, sid, now, interval, svc)?;
        mark.open_incident = track_incident(tx, sid, now, svc, mark.open_incident)?;
        for (at, outcome) in &svc.outcomes {
            tx.prepare_cached(
                "UPDATE restarts SET outcome = ?3 WHERE service_id = ?1 AND at = ?2",
            )?
            .execute(params![sid, at.0, outcome.as_str()])?;
        }
        tx.prepare_cached(
            "UPDATE services SET last_at = ?2, last_status = ?3, last_muted = ?4,
                 last_interval = ?5, covered_until = ?6, open_incident = ?7 WHERE id = ?1",
        )?
        .execute(params![
            sid,
            now,
            status_code(svc.status),
            svc.muted,
            interval,
            covered,
            mark.open_incident
        ])?;
    }
    flush_deltas(tx, &deltas)?;
    super::samples::insert(tx, now, &rec.samples)?;
    super::resources::record(tx, now, &rec.resources)?;
    let Some(cycles) = prune else { return Ok(()) };
    super::samples::enforce_retention(tx, now.saturating_sub(ms(retention.results)), cycles)?;
    super::resources::enforce_retention(tx, now, cycles)?;
    enforce_retention(tx, now, retention, cycles)
}

fn insert_result(
    tx: &Transaction<'_>,
    sid: i64,
    at: i64,
    interval: i64,
    svc: &ServiceRecord,
) -> rusqlite::Result<()> {
    let problems = if svc.problems.is_empty() {
        None
    } else {
        let bounded: Vec<CheckProblem> = svc
            .problems
            .iter()
            .take(MAX_PROBLEMS)
            .map(|p| CheckProblem {
                kind: clip(&p.kind),
                target: clip(&p.target),
                status: clip(&p.status),
                reason: p.reason.as_deref().map(clip),
                detail: clip(&p.detail),
            })
            .collect();
        serde_json::to_string(&bounded).ok()
    };
    let latency_us = svc
        .latency_ms
        .filter(|l| l.is_finite() && *l >= 0.0)
        .map(|l| (l * 1000.0).round().min(i64::MAX as f64) as i64);
    // The same service at the same millisecond twice can only be a clock
    // stepped back onto an earlier result: keep the first.
    tx.prepare_cached(
        "INSERT INTO results (at, service_id, status, latency_us, muted, interval_ms, problems)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT DO NOTHING",
    )?
    .execute(params![
        at,
        sid,
        status_code(svc.status),
        latency_us,
        svc.muted,
        interval,
        problems
    ])?;
    Ok(())
}

/// Opens, extends or ends the service's incident; returns the one open after
/// this result.
fn track_incident(
    tx: &Transaction<'_>,
    sid: i64,
    now: i64,
    svc: &ServiceRecord,
    open: Option<i64>,
) -> rusqlite::Result<Option<i64>> {
    if svc.status != Health::Down {
        if let Some(id) = open {
            tx.prepare_cached("UPDATE incidents SET ended_at = max(?2, started_at) WHERE id = ?1")?
                .execute(params![id, now])?;
        }
        return Ok(None);
    }
    let id = match open {
        Some(id) => {
            if svc.alerted {
                tx.prepare_cached("UPDATE incidents SET alerts = alerts + 1 WHERE id = ?1")?
                    .execute([id])?;
            }
            id
        }
        None => {
            let cause = svc.problems.iter().find(|p| p.status == "down");
            tx.prepare_cached(
                "INSERT INTO incidents (service_id, started_at, cause_type, cause_target,
                     cause_reason, cause_detail, alerts, muted)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?
            .execute(params![
                sid,
                now,
                cause.map(|c| clip(&c.kind)),
                cause.map(|c| clip(&c.target)),
                cause.and_then(|c| c.reason.as_deref().map(clip)),
                cause.map(|c| clip(&c.detail)),
                i64::from(svc.alerted),
                svc.muted
            ])?;
            tx.last_insert_rowid()
        }
    };
    for r in &svc.restarts {
        tx.prepare_cached(
            "INSERT INTO restarts (incident_id, service_id, at, ok, outcome)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(params![id, sid, r.at.0, r.ok, r.outcome.as_str()])?;
    }
    Ok(Some(id))
}

/// Deletes what retention no longer keeps, `cycles` times a cycle's bound.
fn enforce_retention(
    tx: &Transaction<'_>,
    now: i64,
    retention: &Retention,
    cycles: i64,
) -> rusqlite::Result<()> {
    let cut = |keep: Duration| now.saturating_sub(ms(keep));
    tx.prepare_cached(
        "DELETE FROM results WHERE (at, service_id) IN
            (SELECT at, service_id FROM results WHERE at < ?1 ORDER BY at LIMIT ?2)",
    )?
    .execute(params![cut(retention.results), DELETE_RESULTS * cycles])?;

    let rollups_keep = ms(retention.rollups);
    let sids: Vec<i64> = {
        let mut st = tx.prepare_cached("SELECT id FROM services")?;
        st.query_map([], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?
    };
    let mut del = tx.prepare_cached(
        "DELETE FROM rollups WHERE service_id = ?1 AND res = ?2 AND start IN
            (SELECT start FROM rollups WHERE service_id = ?1 AND res = ?2 AND start < ?3
             ORDER BY start LIMIT ?4)",
    )?;
    for sid in sids {
        for (res, keep) in
            [(MINUTE, MINUTE_KEEP.min(rollups_keep)), (HOUR, rollups_keep), (DAY, rollups_keep)]
        {
            // A bucket goes once all of it is older than the retention.
            del.execute(params![
                sid,
                res,
                now.saturating_sub(keep).saturating_sub(res),
                DELETE_ROLLUPS * cycles
            ])?;
        }
    }

    let old: Vec<i64> = {
        let mut st = tx.prepare_cached(
            "SELECT id FROM incidents WHERE ended_at IS NOT NULL AND ended_at < ?1
             ORDER BY ended_at LIMIT ?2",
        )?;
        st.query_map(params![cut(retention.incidents), DELETE_INCIDENTS * cycles], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?
    };
    for id in old {
        tx.prepare_cached("DELETE FROM restarts WHERE incident_id = ?1")?.execute([id])?;
        tx.prepare_cached("DELETE FROM incidents WHERE id = ?1")?.execute([id])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_prune_is_due_once_a_minute_and_covers_the_cycles_since() {
        use super::prune_due;
        assert_eq!(prune_due(None, 1_000, 5_000), Some(1), "a connection's first cycle");
        assert_eq!(prune_due(Some(0), 59_999, 5_000), None);
        assert_eq!(prune_due(Some(0), 60_000, 5_000), Some(12));
        assert_eq!(prune_due(Some(0), 60_000, 30_000), Some(2));
        assert_eq!(prune_due(Some(0), 3_600_000, 5_000), Some(12), "at most a minute's worth");
        assert_eq!(prune_due(Some(0), 3_600_000, 1_000), Some(60), "a minute of 1 s cycles");
        assert_eq!(prune_due(Some(0), 3_600_000, 600_000), Some(1));
        assert_eq!(prune_due(Some(0), 90_000, 0), Some(600), "no division by a zero interval");
        assert_eq!(prune_due(Some(60_000), 1_000, 5_000), Some(1), "the clock stepped back");
    }
}
