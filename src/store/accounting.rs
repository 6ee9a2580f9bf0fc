//! Time-weighted accounting, pure: no database, no clock.
//!
//! A result covers the time from its cycle to the next result of its service,
//! at most `2 × interval`; what no result covers is *no data*. Covered time is
//! up, degraded or down, or *maintenance* when the service was muted. These
//! functions split such spans into rollup buckets and turn totals into the
//! figures the API shows, so the writer, the seeder and the queries agree.

use crate::state::Health;

pub const MINUTE: i64 = 60_000;
pub const HOUR: i64 = 3_600_000;
pub const DAY: i64 = 86_400_000;
/// The rollup resolutions, finest first (milliseconds).
pub const RESOLUTIONS: [i64; 3] = [MINUTE, HOUR, DAY];
/// Minute rollups are kept this long (fine 24 h charts; coarser after).
pub const MINUTE_KEEP: i64 = 48 * HOUR;

/// Which total a stretch of covered time adds to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Up,
    Degraded,
    Down,
    Maintenance,
}

impl Kind {
    pub fn of(status: Health, muted: bool) -> Kind {
        match (status, muted) {
            (_, true) => Kind::Maintenance,
            (Health::Up, false) => Kind::Up,
            (Health::Degraded, false) => Kind::Degraded,
            (Health::Down, false) => Kind::Down,
        }
    }
}

/// Covered time by kind, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub up: i64,
    pub degraded: i64,
    pub down: i64,
    pub maintenance: i64,
}

impl Totals {
    pub fn add(&mut self, kind: Kind, ms: i64) {
        match kind {
            Kind::Up => self.up += ms,
            Kind::Degraded => self.degraded += ms,
            Kind::Down => self.down += ms,
            Kind::Maintenance => self.maintenance += ms,
        }
    }

    pub fn merge(&mut self, o: &Totals) {
        self.up += o.up;
        self.degraded += o.degraded;
        self.down += o.down;
        self.maintenance += o.maintenance;
    }

    /// Time with data, maintenance included.
    pub fn covered(&self) -> i64 {
        self.up + self.degraded + self.down + self.maintenance
    }

    /// `(up + degraded) / (up + degraded + down)` as a percent, over covered
    /// unmuted time; None when there is none. Rounded *down* to 4 decimals,
    /// so that a minute of downtime in a year never shows as 100.
    pub fn uptime_percent(&self) -> Option<f64> {
        let counted = self.up + self.degraded + self.down;
        if counted <= 0 {
            return None;
        }
        let p = (self.up + self.degraded) as f64 * 100.0 / counted as f64;
        Some(((p * 10_000.0).floor() / 10_000.0).clamp(0.0, 100.0))
    }

    /// `self` scaled by `num / den` (an edge bucket only partly in a window).
    pub fn scaled(&self, num: i64, den: i64) -> Totals {
        let f = |v: i64| ((v as i128 * num as i128) / den.max(1) as i128) as i64;
        Totals {
            up: f(self.up),
            degraded: f(self.degraded),
            down: f(self.down),
            maintenance: f(self.maintenance),
        }
    }
}

/// Latency samples of a bucket.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Latency {
    pub n: i64,
    pub sum: f64,
    pub min: Option<f64>,
    pub max: Option<f64>,
}

impl Latency {
    pub fn add(&mut self, ms: f64) {
        self.n += 1;
        self.sum += ms;
        self.min = Some(self.min.map_or(ms, |m| m.min(ms)));
        self.max = Some(self.max.map_or(ms, |m| m.max(ms)));
    }

    pub fn merge(&mut self, o: &Latency) {
        self.n += o.n;
        self.sum += o.sum;
        self.min = match (self.min, o.min) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.max = match (self.max, o.max) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
    }

    pub fn avg(&self) -> Option<f64> {
        (self.n > 0).then(|| self.sum / self.n as f64)
    }
}

/// Start of the `res` bucket holding instant `t` (UTC, epoch-aligned).
pub fn bucket_start(t: i64, res: i64) -> i64 {
    t.div_euclid(res) * res
}

/// Calls `f(bucket_start, ms)` for each `res` bucket that `[from, to)` overlaps.
pub fn split(from: i64, to: i64, res: i64, mut f: impl FnMut(i64, i64)) {
    let mut t = from;
    while t < to {
        let b = bucket_start(t, res);
        let end = (b + res).min(to);
        f(b, end - t);
        t = end;
    }
}

/// What the previous result of a service covers once the next one arrives
/// at `next_at`: from its own time (or the covered-until mark, if the clock
/// stepped back and that is later) to `next_at`, at most `2 × interval`.
/// None when it covers nothing.
pub fn closed_span(
    last_at: i64,
    interval_ms: i64,
    covered_until: i64,
    next_at: i64,
) -> Option<(i64, i64)> {
    let from = last_at.max(covered_until);
    let to = next_at.min(last_at.saturating_add(interval_ms.saturating_mul(2)));
    (to > from).then_some((from, to))
}

/// The open tail: the last result covers up to `now`, at most `2 × interval`.
pub fn open_span(
    last_at: i64,
    interval_ms: i64,
    covered_until: i64,
    now: i64,
) -> Option<(i64, i64)> {
    closed_span(last_at, interval_ms, covered_until, now)
}

/// `[a, b) ∩ [c, d)`, None when empty.
pub fn intersect(a: i64, b: i64, c: i64, d: i64) -> Option<(i64, i64)> {
    let (from, to) = (a.max(c), b.min(d));
    (to > from).then_some((from, to))
}

/// Milliseconds as seconds, exact to the millisecond.
pub fn secs(ms: i64) -> f64 {
    ms as f64 / 1000.0
}

/// A fraction rounded to 6 decimals.
pub fn ratio(num: i64, den: i64) -> f64 {
    if den <= 0 {
        return 0.0;
    }
    ((num as f64 / den as f64) * 1e6).round().clamp(0.0, 1e6) / 1e6
}
