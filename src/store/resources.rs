//! The services' unit figures over time (`resources`: memory and CPU), for
//! the dashboard's 24 h chart: per service, one row per minute holding the
//! sums and counts of that minute's cycles (so a 5 s interval writes 12
//! samples into one row), kept 48 h and deleted in bounded amounts; read
//! back as at most `MAX_POINTS` averaged buckets per service.

use super::{Result, Store, StoreError};
use crate::time::Timestamp;
use rusqlite::{Transaction, params};
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// The rows' resolution.
const MINUTE_MS: i64 = 60_000;
/// How long the minute rows are kept: the longest `since` answered.
pub const KEEP: Duration = Duration::from_secs(48 * 3600);
/// Points per service at most in an answer.
pub const MAX_POINTS: i64 = 288;
/// Rows deleted per cycle's worth of a prune at most (retention catches up
/// over prunes).
const DELETE_ROWS: i64 = 2_000;

/// One service's figures in one cycle (None: systemd gave none).
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceSample {
    pub service: String,
    pub memory_bytes: Option<f64>,
    pub cpu_pct: Option<f64>,
}

/// `GET /api/resources`: per service, `[unix_s, memory_bytes, cpu_pct]`
/// (each an average over its bucket, null without a sample), oldest first.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResourcesDoc {
    /// The first bucket's start.
    pub since: Timestamp,
    /// The buckets' width.
    pub step_s: i64,
    pub services: BTreeMap<String, Vec<Point>>,
}

/// `[unix_s, memory_bytes, cpu_pct]`.
pub type Point = (i64, Option<u64>, Option<f64>);

pub(super) fn record(
    tx: &Transaction<'_>,
    now: i64,
    samples: &[ResourceSample],
) -> rusqlite::Result<()> {
    let minute = now - now.rem_euclid(MINUTE_MS);
    for s in samples {
        let mem = s.memory_bytes.filter(|v| v.is_finite());
        let cpu = s.cpu_pct.filter(|v| v.is_finite());
        let sid = super::write::service_id(tx, &s.service)?;
        tx.prepare_cached(
            "INSERT INTO resource_minutes (service_id, start, mem_n, mem_sum, cpu_n, cpu_sum)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (service_id, start) DO UPDATE SET
                mem_n = mem_n + excluded.mem_n, mem_sum = mem_sum + excluded.mem_sum,
                cpu_n = cpu_n + excluded.cpu_n, cpu_sum = cpu_sum + excluded.cpu_sum",
        )?
        .execute(params![
            sid,
            minute,
            i64::from(mem.is_some()),
            mem.unwrap_or(0.0),
            i64::from(cpu.is_some()),
            cpu.unwrap_or(0.0)
        ])?;
    }
    Ok(())
}

/// Deletes the minutes older than [`KEEP`], `cycles` times a cycle's bound
/// (a prune: `write::prune_due`).
pub(super) fn enforce_retention(
    tx: &Transaction<'_>,
    now: i64,
    cycles: i64,
) -> rusqlite::Result<()> {
    let cut = now.saturating_sub(KEEP.as_millis() as i64);
    super::write::delete_oldest(tx, "resource_minutes", "start", cut, DELETE_ROWS * cycles)
}

/// The buckets' width for a window: `since / MAX_POINTS`, whole minutes.
pub fn step_ms(since: Duration) -> i64 {
    let since = since.as_millis().min(i64::MAX as u128) as i64;
    let per = (since + MAX_POINTS - 1) / MAX_POINTS;
    ((per + MINUTE_MS - 1) / MINUTE_MS).max(1) * MINUTE_MS
}

impl Store {
    /// The figures of `services` over the last `since` (at most `KEEP`).
    pub fn resources(
        &mut self,
        services: &[String],
        since: Duration,
        now: Timestamp,
    ) -> Result<ResourcesDoc> {
        let step = step_ms(since);
        let from = now.0.saturating_sub(since.as_millis().min(i64::MAX as u128) as i64);
        let mut doc =
            ResourcesDoc { since: Timestamp(from), step_s: step / 1000, services: BTreeMap::new() };
        if self.empty {
            return Ok(doc);
        }
        let (path, busy) = (self.path.clone(), self.busy);
        let err = |e| StoreError::from_sqlite(&path, busy, e);
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT s.name, (r.start - ?1) / ?2 AS b,
                        SUM(r.mem_sum), SUM(r.mem_n), SUM(r.cpu_sum), SUM(r.cpu_n)
                 FROM resource_minutes r JOIN services s ON s.id = r.service_id
                 WHERE r.start >= ?1
                 GROUP BY s.name, b ORDER BY s.name, b",
            )
            .map_err(err)?;
        let rows = st
            .query_map(params![from, step], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, f64>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, f64>(4)?,
                    r.get::<_, i64>(5)?,
                ))
            })
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(|e| StoreError::from_sqlite(&self.path, self.busy, e))?;
        for (name, b, mem_sum, mem_n, cpu_sum, cpu_n) in rows {
            if !services.contains(&name) {
                continue;
            }
            let at = (from + b * step).div_euclid(1000);
            let mem = (mem_n > 0).then(|| (mem_sum / mem_n as f64).round() as u64);
            let cpu = (cpu_n > 0).then(|| (cpu_sum / cpu_n as f64 * 100.0).round() / 100.0);
            doc.services.entry(name).or_default().push((at, mem, cpu));
        }
        Ok(doc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_most_288_buckets_of_whole_minutes() {
        assert_eq!(step_ms(Duration::from_secs(86_400)), 300_000);
        assert_eq!(step_ms(Duration::from_secs(3600)), 60_000);
        assert_eq!(step_ms(Duration::from_secs(48 * 3600)), 600_000);
        assert_eq!(step_ms(Duration::from_secs(1)), 60_000);
        for s in [60, 3599, 3601, 86_399, 86_401, 100_000, 172_800] {
            let d = Duration::from_secs(s);
            let (ms, step) = (d.as_millis() as i64, step_ms(d));
            let n = (ms + step - 1) / step;
            assert!(n <= MAX_POINTS, "{s}: {n}");
        }
    }
}
