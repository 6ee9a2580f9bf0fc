//! The readers: uptime over windows, history buckets, incidents and the SLA
//! report, answered from the rollups plus each service's open tail (so live
//! figures are current) and never by rescanning raw results. Each answer is
//! a serde struct whose JSON is exactly the API's (SPEC, "History and
//! incidents").
//!
//! A window's start rarely falls on a bucket boundary: the bucket holding it
//! (a minute within the last 48 h, else an hour) is prorated. Everything
//! after it is whole buckets, finest near the start, days after that.

use super::accounting::{
    self, DAY, HOUR, Latency, MINUTE, MINUTE_KEEP, Totals, bucket_start, secs,
};
use super::schema::status_of;
use super::write::{LastResult, Mark};
use super::{Result, Store};
use crate::time::Timestamp;
use rusqlite::{OptionalExtension, params};
use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};
use std::time::Duration;

/// A named window ending now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub label: &'static str,
    pub ms: i64,
}

const fn w(label: &'static str, ms: i64) -> Window {
    Window { label, ms }
}

/// `/api/uptime`'s windows.
pub const UPTIME_WINDOWS: [Window; 6] = [
    w("1h", HOUR),
    w("24h", DAY),
    w("7d", 7 * DAY),
    w("30d", 30 * DAY),
    w("90d", 90 * DAY),
    w("365d", 365 * DAY),
];
/// The status document's (and the Prometheus ratio's) windows.
pub const STATUS_WINDOWS: [Window; 3] = [w("24h", DAY), w("7d", 7 * DAY), w("30d", 30 * DAY)];
/// `/api/history`'s finest step.
pub const HISTORY_MIN_STEP: Duration = Duration::from_secs(60);
/// Incidents listed by a report at most.
pub const REPORT_WINDOW_LIMIT: usize = 10_000;
/// Buckets one history answer holds at most (a coarser step beyond).
const MAX_BUCKETS: i64 = 10_000;
const MAX_INCIDENTS: usize = 10_000;

/// A JSON object whose keys keep their order ("1h" before "24h").
#[derive(Debug, Clone, PartialEq)]
pub struct OrderedMap<V>(pub Vec<(String, V)>);

impl<V> OrderedMap<V> {
    pub fn get(&self, key: &str) -> Option<&V> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }
}

impl<V: Serialize> Serialize for OrderedMap<V> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

/// One window of `/api/uptime`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WindowFigures {
    /// Percent, null when nothing unmuted was covered.
    pub uptime: Option<f64>,
    pub up_s: f64,
    pub degraded_s: f64,
    pub down_s: f64,
    pub maintenance_s: f64,
    pub nodata_s: f64,
    /// Covered time / the window's length (0-1).
    pub coverage: f64,
}

impl WindowFigures {
    pub fn new(t: &Totals, len_ms: i64) -> WindowFigures {
        let covered = t.covered().min(len_ms.max(0));
        WindowFigures {
            uptime: t.uptime_percent(),
            up_s: secs(t.up),
            degraded_s: secs(t.degraded),
            down_s: secs(t.down),
            maintenance_s: secs(t.maintenance),
            nodata_s: secs((len_ms - covered).max(0)),
            coverage: accounting::ratio(covered, len_ms),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServiceUptime {
    pub name: String,
    pub windows: OrderedMap<WindowFigures>,
}

/// `GET /api/uptime`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UptimeDoc {
    pub generated_at: Timestamp,
    pub services: Vec<ServiceUptime>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LatencyFigures {
    pub min: Option<f64>,
    pub avg: Option<f64>,
    pub max: Option<f64>,
}

impl LatencyFigures {
    fn of(l: &Latency) -> LatencyFigures {
        let r = |v: f64| (v * 1000.0).round() / 1000.0;
        LatencyFigures { min: l.min.map(r), avg: l.avg().map(r), max: l.max.map(r) }
    }
}

/// One bucket of `/api/history`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bucket {
    pub at: Timestamp,
    pub up_s: f64,
    pub degraded_s: f64,
    pub down_s: f64,
    pub maintenance_s: f64,
    pub nodata_s: f64,
    pub uptime: Option<f64>,
    pub latency_ms: LatencyFigures,
    /// Results in the bucket (not in the API object: for text output).
    #[serde(skip)]
    pub samples: i64,
}

/// `GET /api/history`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistoryDoc {
    pub service: String,
    /// The first bucket's start (buckets are aligned to `step_s`, UTC).
    pub since: Timestamp,
    /// The resolution answered: the step asked for, or coarser when only
    /// coarser rollups reach back to `since`.
    pub step_s: i64,
    pub buckets: Vec<Bucket>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cause {
    #[serde(rename = "type")]
    pub kind: String,
    pub target: String,
    pub reason: Option<String>,
    pub detail: String,
}

/// A maximal stretch in which a service was down.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Incident {
    pub id: i64,
    pub service: String,
    pub started_at: Timestamp,
    /// None while it is open.
    pub ended_at: Option<Timestamp>,
    /// To its end, or so far.
    pub duration_s: f64,
    /// The first check that was down when it began.
    pub cause: Option<Cause>,
    pub restarts: Vec<super::RestartRun>,
    /// An alert was sent for it.
    pub alerted: bool,
    /// It began while the service was muted.
    pub muted: bool,
    /// Down alerts raised during it (not in the API object: for the report).
    #[serde(skip)]
    pub alerts: i64,
    /// What was captured when it opened (null: off, not captured, or older).
    pub diagnosis: Option<serde_json::Value>,
}

/// `GET /api/incidents`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IncidentsDoc {
    pub incidents: Vec<Incident>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RestartCounts {
    pub ok: u64,
    pub failed: u64,
}

/// One service's line of the SLA report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServiceSla {
    pub name: String,
    pub uptime: Option<f64>,
    /// Unmuted down time in the window.
    pub downtime_s: f64,
    /// Incidents overlapping the window that did not begin during maintenance.
    pub incidents: u64,
    /// Mean duration of those of them that have ended (null: none has).
    pub mttr_s: Option<f64>,
    /// The longest of them (an open one counts so far; null: none).
    pub longest_s: Option<f64>,
    pub restarts: RestartCounts,
    /// Down alerts raised in the incidents overlapping the window.
    pub alerts: u64,
}

/// `chatstack-status report --format json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReportDoc {
    pub since: Timestamp,
    pub until: Timestamp,
    pub services: Vec<ServiceSla>,
    /// Every incident overlapping the window, newest first.
    pub incidents: Vec<Incident>,
}

/// The SPEC's bounds on a history query (`since` up to `retention.rollups`,
/// `step` at least 1m), as one message per problem, for the command and
/// `/api/history` (400) alike.
pub fn check_history_query(
    since: Duration,
    step: Duration,
    retention: &crate::config::Retention,
) -> std::result::Result<(), String> {
    let d = crate::config::duration::format;
    if since.is_zero() || since > retention.rollups {
        return Err(format!(
            "since {}: expected more than 0 and at most retention.rollups ({})",
            d(since),
            d(retention.rollups)
        ));
    }
    if step < HISTORY_MIN_STEP {
        return Err(format!("step {}: expected at least 1m", d(step)));
    }
    Ok(())
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn round_up(v: i64, unit: i64) -> i64 {
    v.div_euclid(unit) * unit + if v.rem_euclid(unit) == 0 { 0 } else { unit }
}

/// One aggregated range of a window: buckets of `res` starting in `[lo, hi)`,
/// scaled by `weight` (the edge bucket only partly in the window).
#[derive(Debug, Clone, Copy)]
struct Part {
    res: i64,
    lo: i64,
    hi: i64,
    weight: Option<(i64, i64)>,
}

/// How `[from, now)` is read: the bucket holding `from` (a minute within
/// the last 48 h, else an hour) prorated, then minutes to the next hour,
/// hours to the next day, days to now. Buckets at the end are whole: they
/// hold nothing past the covered-until mark, which is at most now.
fn plan(from: i64, now: i64) -> [Part; 4] {
    let none = |res| Part { res, lo: 0, hi: 0, weight: None };
    let mut p = [none(MINUTE), none(MINUTE), none(HOUR), none(DAY)];
    if from >= now {
        return p;
    }
    let first_res = if from >= now - MINUTE_KEEP + MINUTE { MINUTE } else { HOUR };
    let edge = bucket_start(from, first_res);
    let mut next = edge;
    if edge < from {
        p[0] = Part {
            res: first_res,
            lo: edge,
            hi: edge + 1,
            weight: Some((edge + first_res - from, first_res)),
        };
        next = edge + first_res;
    }
    // The first hour boundary at or after `next` (`next` itself after an hour edge).
    let hour = round_up(next, HOUR);
    if first_res == MINUTE {
        p[1] = Part { res: MINUTE, lo: next, hi: hour.min(now), weight: None };
    }
    let day = round_up(hour, DAY);
    p[2] = Part { res: HOUR, lo: hour, hi: day.min(now), weight: None };
    p[3] = Part { res: DAY, lo: day, hi: now, weight: None };
    p
}

/// `windows × 4` aggregated ranges in one statement (one row each).
/// One aggregated range of rollups. A plain statement run once per range:
/// preparing one compound statement for all ranges cost a one-shot `check`
/// ~1.5 M instructions (a third of its whole run); this one prepares in a
/// fraction of that and is as fast once cached (the daemon and readers).
pub(super) const RANGE_SQL: &str = "SELECT coalesce(sum(up), 0), coalesce(sum(degraded), 0), \
     coalesce(sum(down), 0), coalesce(sum(maintenance), 0) FROM rollups \
     WHERE service_id = ?1 AND res = ?2 AND start >= ?3 AND start < ?4";

/// History buckets' rows: one service's rollups of one resolution in a range.
pub(super) const ROWS_SQL: &str = "SELECT start, up, degraded, down, maintenance, samples,
        lat_n, lat_sum, lat_min, lat_max
    FROM rollups WHERE service_id = ?1 AND res = ?2 AND start >= ?3 AND start < ?4
    ORDER BY start";

/// One rollup row as read for history buckets.
struct Row {
    start: i64,
    totals: Totals,
    samples: i64,
    latency: Latency,
}

impl Store {
    /// Services the database has seen, by name.
    pub fn known_services(&mut self) -> Result<Vec<String>> {
        self.refresh()?;
        if self.empty {
            return Ok(Vec::new());
        }
        let mut st = self
            .conn
            .prepare_cached("SELECT name FROM services ORDER BY name")
            .map_err(|e| self.sql_err(e))?;
        let rows = st.query_map([], |r| r.get(0)).map_err(|e| self.sql_err(e))?;
        rows.collect::<std::result::Result<_, _>>().map_err(|e| self.sql_err(e))
    }

    fn mark(&self, service: &str) -> Result<Option<Mark>> {
        if self.empty {
            return Ok(None);
        }
        self.conn
            .prepare_cached(
                "SELECT id, last_at, last_status, last_muted, last_interval, covered_until,
                        open_incident
                 FROM services WHERE name = ?1",
            )
            .and_then(|mut st| {
                st.query_row([service], |r| {
                    let last = match r.get::<_, Option<i64>>(1)? {
                        Some(at) => Some(LastResult {
                            at,
                            status: status_of(r.get::<_, Option<i64>>(2)?.unwrap_or(0)),
                            muted: r.get::<_, Option<bool>>(3)?.unwrap_or(false),
                            interval: r.get::<_, Option<i64>>(4)?.unwrap_or(0),
                        }),
                        None => None,
                    };
                    Ok(Mark {
                        id: r.get(0)?,
                        last,
                        covered_until: r.get::<_, Option<i64>>(5)?.unwrap_or(i64::MIN),
                        open_incident: r.get(6)?,
                    })
                })
                .optional()
            })
            .map_err(|e| self.sql_err(e))
    }

    fn rows(&self, sid: i64, res: i64, from: i64, to: i64) -> Result<Vec<Row>> {
        let mut st = self.conn.prepare_cached(ROWS_SQL).map_err(|e| self.sql_err(e))?;
        let rows = st
            .query_map(params![sid, res, from, to], |r| {
                Ok(Row {
                    start: r.get(0)?,
                    totals: Totals {
                        up: r.get(1)?,
                        degraded: r.get(2)?,
                        down: r.get(3)?,
                        maintenance: r.get(4)?,
                    },
                    samples: r.get(5)?,
                    latency: Latency {
                        n: r.get(6)?,
                        sum: r.get(7)?,
                        min: r.get(8)?,
                        max: r.get(9)?,
                    },
                })
            })
            .map_err(|e| self.sql_err(e))?;
        rows.collect::<std::result::Result<_, _>>().map_err(|e| self.sql_err(e))
    }

    /// Covered time of `[from, now)`: rollups plus the open tail.
    fn window_totals(&self, mark: &Mark, from: i64, now: i64) -> Result<Totals> {
        Ok(self.windows_totals(mark, &[from], now)?.pop().unwrap_or_default())
    }

    /// Covered time of `[from, now)` for each `from`, in one statement: per
    /// window four aggregated ranges (the prorated edge bucket, minutes to
    /// the hour, hours to the day, days to now), plus the open tail.
    fn windows_totals(&self, mark: &Mark, froms: &[i64], now: i64) -> Result<Vec<Totals>> {
        let plans: Vec<[Part; 4]> = froms.iter().map(|&from| plan(from, now)).collect();
        let mut st = self.conn.prepare_cached(RANGE_SQL).map_err(|e| self.sql_err(e))?;
        let mut parts = Vec::with_capacity(plans.len() * 4);
        for p in plans.iter().flatten() {
            let t = st
                .query_row(rusqlite::params![mark.id, p.res, p.lo, p.hi], |r| {
                    Ok(Totals {
                        up: r.get(0)?,
                        degraded: r.get(1)?,
                        down: r.get(2)?,
                        maintenance: r.get(3)?,
                    })
                })
                .map_err(|e| self.sql_err(e))?;
            parts.push(t);
        }
        drop(st);
        let tail = mark.tail(now);
        Ok(plans
            .iter()
            .zip(froms)
            .enumerate()
            .map(|(w, (plan, &from))| {
                let mut t = Totals::default();
                for (k, p) in plan.iter().enumerate() {
                    let part = &parts[w * 4 + k];
                    match p.weight {
                        Some((num, den)) => t.merge(&part.scaled(num, den)),
                        None => t.merge(part),
                    }
                }
                if let Some((a, b, kind)) = tail
                    && let Some((a, b)) = accounting::intersect(a, b, from, now)
                {
                    t.add(kind, b - a);
                }
                t
            })
            .collect())
    }

    /// One service's figures over windows ending at `now`.
    pub fn uptime(
        &mut self,
        service: &str,
        windows: &[Window],
        now: Timestamp,
    ) -> Result<ServiceUptime> {
        self.refresh()?;
        let mark = self.mark(service)?;
        let froms: Vec<i64> = windows.iter().map(|w| now.0.saturating_sub(w.ms)).collect();
        let totals = match &mark {
            Some(m) => self.windows_totals(m, &froms, now.0)?,
            None => vec![Totals::default(); windows.len()],
        };
        let out = windows
            .iter()
            .zip(totals)
            .map(|(w, t)| (w.label.to_string(), WindowFigures::new(&t, w.ms)))
            .collect();
        Ok(ServiceUptime { name: service.to_string(), windows: OrderedMap(out) })
    }

    /// `GET /api/uptime` for these services (in this order).
    pub fn uptime_doc<S: AsRef<str>>(
        &mut self,
        services: &[S],
        now: Timestamp,
    ) -> Result<UptimeDoc> {
        let services = services
            .iter()
            .map(|s| self.uptime(s.as_ref(), &UPTIME_WINDOWS, now))
            .collect::<Result<_>>()?;
        Ok(UptimeDoc { generated_at: now, services })
    }

    /// Runs `f`'s queries in one read transaction: one snapshot, and one
    /// lock taken instead of one per query (the status document's uptime
    /// asks 13 queries per service every cycle). A failed BEGIN only costs
    /// that saving.
    pub fn in_one_read<T>(&mut self, f: impl FnOnce(&mut Store) -> T) -> T {
        let began = self.conn.execute_batch("BEGIN").is_ok();
        let out = f(self);
        if began && !self.conn.is_autocommit() {
            let _ = self.conn.execute_batch("COMMIT");
        }
        out
    }

    /// The status document's `"uptime": {"24h", "7d", "30d"}` (percent or null).
    pub fn status_uptime(
        &mut self,
        service: &str,
        now: Timestamp,
    ) -> Result<OrderedMap<Option<f64>>> {
        let u = self.uptime(service, &STATUS_WINDOWS, now)?;
        Ok(OrderedMap(u.windows.0.into_iter().map(|(k, f)| (k, f.uptime)).collect()))
    }

    /// `GET /api/history`: buckets of `step` (or coarser, see `step_s`)
    /// from `since` ago to `now`, oldest first.
    pub fn history(
        &mut self,
        service: &str,
        since: Duration,
        step: Duration,
        now: Timestamp,
    ) -> Result<HistoryDoc> {
        self.refresh()?;
        let now = now.0;
        let asked_start = now.saturating_sub(ms(since).max(MINUTE));
        let want = ms(step).max(MINUTE);
        // The finest rollup that reaches back to the first bucket's start.
        let mut res = MINUTE;
        let mut step_ms = round_up(want, res);
        let mut start = bucket_start(asked_start, step_ms);
        if start < now - MINUTE_KEEP + MINUTE {
            res = HOUR;
            step_ms = round_up(want, res);
            start = bucket_start(asked_start, step_ms);
        }
        if (now - start) / step_ms > MAX_BUCKETS {
            step_ms = round_up((now - asked_start) / MAX_BUCKETS + 1, res);
            start = bucket_start(asked_start, step_ms);
        }
        // Read the coarsest rows that still fit the step: same figures, fewer rows.
        let read_res = if step_ms % DAY == 0 {
            DAY
        } else if step_ms % HOUR == 0 {
            HOUR
        } else {
            MINUTE
        };
        let n = ((now - start + step_ms - 1) / step_ms).max(1);
        let mut acc: Vec<(Totals, Latency, i64)> = vec![Default::default(); n as usize];
        let mark = self.mark(service)?;
        if let Some(m) = &mark {
            for row in self.rows(m.id, read_res, start, start + n * step_ms)? {
                let i = ((row.start - start) / step_ms) as usize;
                if let Some(slot) = acc.get_mut(i) {
                    slot.0.merge(&row.totals);
                    slot.1.merge(&row.latency);
                    slot.2 += row.samples;
                }
            }
            if let Some((a, b, kind)) = m.tail(now)
                && let Some((a, b)) = accounting::intersect(a, b, start, now)
            {
                accounting::split(a, b, step_ms, |bs, part| {
                    if let Some(slot) = acc.get_mut(((bs - start) / step_ms) as usize) {
                        slot.0.add(kind, part);
                    }
                });
            }
        }
        let buckets = acc
            .iter()
            .enumerate()
            .map(|(i, (t, l, samples))| {
                let at = start + i as i64 * step_ms;
                let len = (at + step_ms).min(now) - at;
                let covered = t.covered().min(len);
                Bucket {
                    at: Timestamp(at),
                    up_s: secs(t.up),
                    degraded_s: secs(t.degraded),
                    down_s: secs(t.down),
                    maintenance_s: secs(t.maintenance),
                    nodata_s: secs((len - covered).max(0)),
                    uptime: t.uptime_percent(),
                    latency_ms: LatencyFigures::of(l),
                    samples: *samples,
                }
            })
            .collect();
        Ok(HistoryDoc {
            service: service.to_string(),
            since: Timestamp(start),
            step_s: step_ms / 1000,
            buckets,
        })
    }

    /// `GET /api/incidents`: incidents open or ended at or after `since`,
    /// newest first, at most `limit`.
    pub fn incidents(
        &mut self,
        service: Option<&str>,
        since: Timestamp,
        limit: usize,
        now: Timestamp,
    ) -> Result<IncidentsDoc> {
        self.incidents_where(service, since, limit, now, None)
    }

    /// `incidents --id ID`: that one incident, whole (None: no such id).
    pub fn incident(&mut self, id: i64, now: Timestamp) -> Result<Option<Incident>> {
        let doc = self.incidents_where(None, Timestamp(i64::MIN), 1, now, Some(id))?;
        Ok(doc.incidents.into_iter().next())
    }

    fn incidents_where(
        &mut self,
        service: Option<&str>,
        since: Timestamp,
        limit: usize,
        now: Timestamp,
        only_id: Option<i64>,
    ) -> Result<IncidentsDoc> {
        self.refresh()?;
        if self.empty {
            return Ok(IncidentsDoc { incidents: Vec::new() });
        }
        let limit = limit.min(MAX_INCIDENTS) as i64;
        let mut incidents = {
            let mut st = self
                .conn
                .prepare_cached(
                    "SELECT i.id, s.name, i.started_at, i.ended_at, i.cause_type, i.cause_target,
                            i.cause_reason, i.cause_detail, i.alerts, i.muted, i.diagnosis
                     FROM incidents i JOIN services s ON s.id = i.service_id
                     WHERE (?1 IS NULL OR s.name = ?1)
                       AND (i.ended_at IS NULL OR i.ended_at >= ?2)
                       AND (?4 IS NULL OR i.id = ?4)
                     ORDER BY i.started_at DESC, i.id DESC LIMIT ?3",
                )
                .map_err(|e| self.sql_err(e))?;
            let rows = st
                .query_map(params![service, since.0, limit, only_id], |r| {
                    let started: i64 = r.get(2)?;
                    let ended: Option<i64> = r.get(3)?;
                    let kind: Option<String> = r.get(4)?;
                    let alerts: i64 = r.get(8)?;
                    Ok(Incident {
                        id: r.get(0)?,
                        service: r.get(1)?,
                        started_at: Timestamp(started),
                        ended_at: ended.map(Timestamp),
                        duration_s: secs((ended.unwrap_or(now.0) - started).max(0)),
                        cause: match kind {
                            Some(kind) => Some(Cause {
                                kind,
                                target: r.get::<_, Option<String>>(5)?.unwrap_or_default(),
                                reason: r.get(6)?,
                                detail: r.get::<_, Option<String>>(7)?.unwrap_or_default(),
                            }),
                            None => None,
                        },
                        restarts: Vec::new(),
                        alerted: alerts > 0,
                        muted: r.get(9)?,
                        alerts,
                        diagnosis: r
                            .get::<_, Option<String>>(10)?
                            .and_then(|t| serde_json::from_str(&t).ok()),
                    })
                })
                .map_err(|e| self.sql_err(e))?;
            rows.collect::<std::result::Result<Vec<_>, _>>().map_err(|e| self.sql_err(e))?
        };
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT at, ok, outcome FROM restarts WHERE incident_id = ?1 ORDER BY at, id",
            )
            .map_err(|e| self.sql_err(e))?;
        for inc in &mut incidents {
            let rows = st
                .query_map([inc.id], |r| {
                    Ok(super::RestartRun {
                        at: Timestamp(r.get(0)?),
                        ok: r.get(1)?,
                        outcome: outcome_of(r.get::<_, Option<String>>(2)?.as_deref()),
                    })
                })
                .map_err(|e| self.sql_err(e))?;
            inc.restarts =
                rows.collect::<std::result::Result<_, _>>().map_err(|e| self.sql_err(e))?;
        }
        Ok(IncidentsDoc { incidents })
    }

    /// The SLA report over `[since, now]` for these services (in this order).
    pub fn report<S: AsRef<str>>(
        &mut self,
        services: &[S],
        since: Timestamp,
        now: Timestamp,
    ) -> Result<ReportDoc> {
        self.refresh()?;
        let incidents = self.incidents(None, since, REPORT_WINDOW_LIMIT, now)?.incidents;
        let mut lines = Vec::with_capacity(services.len());
        for name in services {
            let name = name.as_ref();
            let mark = self.mark(name)?;
            let totals = match &mark {
                Some(m) => self.window_totals(m, since.0, now.0)?,
                None => Totals::default(),
            };
            let mine: Vec<&Incident> =
                incidents.iter().filter(|i| i.service == name && i.started_at <= now).collect();
            let counted: Vec<&&Incident> = mine.iter().filter(|i| !i.muted).collect();
            let ended: Vec<f64> =
                counted.iter().filter(|i| i.ended_at.is_some()).map(|i| i.duration_s).collect();
            let restarts = match &mark {
                Some(m) => self.restart_counts(m.id, since.0, now.0)?,
                None => RestartCounts { ok: 0, failed: 0 },
            };
            lines.push(ServiceSla {
                name: name.to_string(),
                uptime: totals.uptime_percent(),
                downtime_s: secs(totals.down),
                incidents: counted.len() as u64,
                mttr_s: (!ended.is_empty()).then(|| {
                    (ended.iter().sum::<f64>() / ended.len() as f64 * 1000.0).round() / 1000.0
                }),
                longest_s: counted.iter().map(|i| i.duration_s).reduce(f64::max),
                restarts,
                alerts: mine.iter().map(|i| i.alerts.max(0) as u64).sum(),
            });
        }
        Ok(ReportDoc { since, until: now, services: lines, incidents })
    }

    fn restart_counts(&self, sid: i64, from: i64, to: i64) -> Result<RestartCounts> {
        self.conn
            .prepare_cached(
                "SELECT coalesce(sum(ok != 0), 0), coalesce(sum(ok = 0), 0) FROM restarts
                 WHERE service_id = ?1 AND at >= ?2 AND at <= ?3",
            )
            .and_then(|mut st| {
                st.query_row(params![sid, from, to], |r| {
                    Ok(RestartCounts {
                        ok: r.get::<_, i64>(0)? as u64,
                        failed: r.get::<_, i64>(1)? as u64,
                    })
                })
            })
            .map_err(|e| self.sql_err(e))
    }
}

/// A stored restart outcome (null: recorded before outcomes existed, or
/// not judged yet).
fn outcome_of(text: Option<&str>) -> crate::state::RestartOutcome {
    use crate::state::RestartOutcome as O;
    match text {
        Some("recovered") => O::Recovered,
        Some("still_down") => O::StillDown,
        _ => O::Pending,
    }
}
