//! Measured values over time (`samples`): what a kind's forecast fits a
//! line through (a disk's `available_bytes`, for `full_in_s`). One row per
//! series and cycle; a series is named by `series_name`. Kept as long as
//! the per-cycle results, deleted by the writer in bounded amounts.

use super::{Result, Store, StoreError};
use crate::time::Timestamp;
use rusqlite::{Transaction, params};
use std::time::Duration;

/// Rows deleted per cycle's worth of a prune at most (retention catches up
/// over prunes).
const DELETE_SAMPLES: i64 = 2_000;

/// The series of one value of one check: service, kind, target, value.
pub fn series_name(service: &str, kind: &str, target: &str, value: &str) -> String {
    format!("{service}\u{1f}{kind}\u{1f}{target}\u{1f}{value}")
}

pub(super) fn insert(
    tx: &Transaction<'_>,
    at: i64,
    samples: &[(String, f64)],
) -> rusqlite::Result<()> {
    let mut st =
        tx.prepare_cached("INSERT INTO samples (series, at, value) VALUES (?1, ?2, ?3)")?;
    for (series, v) in samples.iter().filter(|(_, v)| v.is_finite()) {
        st.execute(params![series, at, v])?;
    }
    Ok(())
}

pub(super) fn enforce_retention(
    tx: &Transaction<'_>,
    cut: i64,
    cycles: i64,
) -> rusqlite::Result<()> {
    super::write::delete_oldest(tx, "samples", "at", cut, DELETE_SAMPLES * cycles)
}

impl Store {
    /// A series' samples since `since` ago, oldest first: (unix seconds, value).
    pub fn samples(
        &mut self,
        series: &str,
        since: Duration,
        now: Timestamp,
    ) -> Result<Vec<(f64, f64)>> {
        if self.empty {
            return Ok(Vec::new());
        }
        let from = now.0.saturating_sub(i64::try_from(since.as_millis()).unwrap_or(i64::MAX));
        let (path, busy) = (self.path.clone(), self.busy);
        let err = |e| StoreError::from_sqlite(&path, busy, e);
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT at, value FROM samples WHERE series = ?1 AND at >= ?2 ORDER BY at",
            )
            .map_err(err)?;
        let rows = st
            .query_map(params![series, from], |r| {
                Ok((r.get::<_, i64>(0)? as f64 / 1000.0, r.get::<_, f64>(1)?))
            })
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(|e| StoreError::from_sqlite(&self.path, self.busy, e))?;
        Ok(rows)
    }
}
