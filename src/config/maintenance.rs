//! Maintenance windows (`maintenance:`): on chosen weekdays, from a wall-clock
//! `start` in an IANA `timezone`, for `duration`, the named services (default:
//! all) are treated as muted — no healing, no alerts, their time counted as
//! maintenance.
//!
//! Time zones come from the system's tz database (`/usr/share/zoneinfo`,
//! through jiff), so DST is the database's, not a rule of ours: a window at
//! 03:00 Europe/Berlin opens at 01:00 UTC in summer and 02:00 UTC in winter.
//! A start in a DST gap opens at the first instant after it (02:30 on the
//! spring-forward night is 03:30 local); in a fold, at the earlier instant.
//! `duration` is elapsed time, whatever the clocks do meanwhile.

use super::Validator;
use super::duration::{self, Dur};
use crate::time::Timestamp;
use jiff::civil::{Date, Time};
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;
use std::time::Duration;

/// `maintenance[]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWindow {
    pub name: Spanned<String>,
    pub every: Spanned<Vec<Spanned<String>>>,
    pub start: Spanned<String>,
    pub duration: Spanned<Dur>,
    pub timezone: Option<Spanned<String>>,
    pub services: Option<Vec<Spanned<String>>>,
}

/// The longest window: a weekly window longer than a week would never close.
const MAX_DURATION: Duration = Duration::from_secs(7 * 86_400);

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// A validated window.
#[derive(Debug, Clone)]
pub struct Window {
    pub name: String,
    /// Monday first.
    pub days: [bool; 7],
    pub start: Time,
    pub duration: Duration,
    pub timezone: TimeZone,
    /// The IANA name as written (`UTC` by default).
    pub timezone_name: String,
    /// The services it covers (empty: all).
    pub services: Vec<String>,
}

/// A window open now for a service: the status's `maintenance`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenWindow {
    pub name: String,
    pub until: Timestamp,
}

/// One occurrence of a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Occurrence {
    pub start: Timestamp,
    pub end: Timestamp,
}

impl Occurrence {
    pub fn contains(&self, now: Timestamp) -> bool {
        self.start <= now && now < self.end
    }
}

impl Window {
    pub fn covers(&self, service: &str) -> bool {
        self.services.is_empty() || self.services.iter().any(|s| s == service)
    }

    /// The occurrence open at `now`, else the next one to open (None only
    /// if the calendar ends first).
    pub fn current_or_next(&self, now: Timestamp) -> Option<Occurrence> {
        let ts = jiff::Timestamp::from_millisecond(now.0).ok()?;
        let today = ts.to_zoned_datetime(self.timezone.clone()).date();
        // Back far enough for an occurrence that began up to a week ago and
        // is still open, forward past the next week.
        let mut day = today.checked_sub(jiff::Span::new().days(8)).ok()?;
        for _ in 0..17 {
            if let Some(o) = self.occurrence_on(day)
                && o.end > now
            {
                return Some(o);
            }
            day = day.tomorrow().ok()?;
        }
        None
    }

    /// The occurrence starting on local `day`, if the window runs that day.
    fn occurrence_on(&self, day: Date) -> Option<Occurrence> {
        let weekday = usize::try_from(day.weekday().to_monday_zero_offset()).ok()?;
        if !self.days[weekday] {
            return None;
        }
        // `compatible`: a start in a gap moves past it, in a fold takes the earlier.
        let start = day.to_datetime(self.start).to_zoned_datetime(self.timezone.clone()).ok()?;
        let start = Timestamp(start.timestamp().as_millisecond());
        Some(Occurrence { start, end: start.plus(self.duration) })
    }

    /// Open at `now`: until when.
    pub fn open_at(&self, now: Timestamp) -> Option<Timestamp> {
        self.current_or_next(now).filter(|o| o.contains(now)).map(|o| o.end)
    }

    /// The weekdays as written (`sun`, `mon, wed`).
    pub fn days_text(&self) -> String {
        if self.days.iter().all(|d| *d) {
            return "every day".into();
        }
        DAYS.iter()
            .zip(self.days)
            .filter(|(_, on)| *on)
            .map(|(d, _)| *d)
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// `03:00`.
    pub fn start_text(&self) -> String {
        format!("{:02}:{:02}", self.start.hour(), self.start.minute())
    }
}

/// Of `windows`, the one open for `service` at `now` that stays open the
/// longest (several may overlap).
pub fn open_for(windows: &[Window], service: &str, now: Timestamp) -> Option<OpenWindow> {
    windows
        .iter()
        .filter(|w| w.covers(service))
        .filter_map(|w| w.open_at(now).map(|until| OpenWindow { name: w.name.clone(), until }))
        .max_by_key(|o| o.until)
}

/// A time zone by IANA name, from the system's database (`UTC` needs none).
pub fn time_zone(name: &str) -> Result<TimeZone, String> {
    if name == "UTC" {
        return Ok(TimeZone::UTC);
    }
    jiff::tz::db().get(name).map_err(|_| {
        format!("unknown time zone {name:?}: expected an IANA name like Europe/Berlin or UTC (from the system's tz database, /usr/share/zoneinfo)")
    })
}

/// `HH:MM` (or `HH:MM:SS`), 24-hour.
fn parse_start(s: &str) -> Option<Time> {
    let mut parts = s.trim().split(':');
    let mut next = |max: i8| -> Option<Option<i8>> {
        match parts.next() {
            None => Some(None),
            Some(p) if (1..=2).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()) => {
                let v: i8 = p.parse().ok()?;
                (v <= max).then_some(Some(v))
            }
            Some(_) => None,
        }
    };
    let h = next(23)??;
    let m = next(59)??;
    let sec = next(59)?.unwrap_or(0);
    if parts.next().is_some() {
        return None;
    }
    Time::new(h, m, sec, 0).ok()
}

/// One window as `chatstack-status maintenance` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Listed {
    pub name: String,
    /// `sun`, `mon, thu` or `every day`.
    pub every: String,
    /// Wall-clock `HH:MM` in `timezone`.
    pub start: String,
    /// As `duration:` reads (`1h`).
    pub duration: String,
    pub timezone: String,
    /// The services it covers (empty: all).
    pub services: Vec<String>,
    /// The occurrence open now, else the next one (RFC 3339 UTC).
    pub next_start: Option<Timestamp>,
    pub next_end: Option<Timestamp>,
    pub active: bool,
}

/// Every window of `config`, in the config's order, as of `now`.
pub fn listing(config: &super::Config, now: Timestamp) -> Vec<Listed> {
    config
        .maintenance
        .iter()
        .map(|w| {
            let o = w.current_or_next(now);
            Listed {
                name: w.name.clone(),
                every: w.days_text(),
                start: w.start_text(),
                duration: duration::format(w.duration),
                timezone: w.timezone_name.clone(),
                services: w.services.clone(),
                next_start: o.map(|o| o.start),
                next_end: o.map(|o| o.end),
                active: o.is_some_and(|o| o.contains(now)),
            }
        })
        .collect()
}

/// The listing as a table a person reads.
pub fn listing_text(listed: &[Listed]) -> String {
    if listed.is_empty() {
        return "no maintenance windows configured\n".into();
    }
    let mut out = String::new();
    for l in listed {
        let services =
            if l.services.is_empty() { "all services".to_string() } else { l.services.join(", ") };
        let when = match (l.active, l.next_start, l.next_end) {
            (true, _, Some(end)) => format!("OPEN until {end}"),
            (false, Some(start), Some(end)) => format!("next {start} to {end}"),
            _ => "no next occurrence".to_string(),
        };
        out.push_str(&format!(
            "{}: {} {} {} for {} ({services}): {when}\n",
            l.name, l.every, l.start, l.timezone, l.duration
        ));
    }
    out
}

impl Validator<'_> {
    /// `maintenance:`; `services` are the configured names (each window's
    /// must be among them).
    pub(super) fn maintenance(
        &mut self,
        raw: Option<Vec<Spanned<RawWindow>>>,
        services: &std::collections::HashSet<String>,
    ) -> Vec<Window> {
        let mut out: Vec<Window> = Vec::new();
        for w in raw.unwrap_or_default() {
            let w = w.value;
            let name = w.name.value.trim().to_string();
            if name.is_empty() || name.chars().any(char::is_control) {
                self.at(&w.name.referenced, "maintenance name: expected non-empty text");
            } else if out.iter().any(|o| o.name == name) {
                self.at(
                    &w.name.referenced,
                    format!("maintenance {name:?} is defined twice: names must be unique"),
                );
            }
            let mut days = [false; 7];
            if w.every.value.is_empty() {
                self.at(&w.every.referenced, format!("maintenance {name:?}: every is empty: expected days like [sun] or [mon, thu], or [day]"));
            }
            for d in &w.every.value {
                let word = d.value.trim().to_ascii_lowercase();
                match DAYS.iter().position(|x| *x == word) {
                    Some(i) => days[i] = true,
                    None if word == "day" => days = [true; 7],
                    None => self.at(
                        &d.referenced,
                        format!("maintenance {name:?}: unknown day {:?}: expected mon, tue, wed, thu, fri, sat, sun or day (every day)", d.value),
                    ),
                }
            }
            let start = parse_start(&w.start.value).unwrap_or_else(|| {
                self.at(
                    &w.start.referenced,
                    format!(
                        "maintenance {name:?}: start {:?}: expected a 24-hour time like \"03:00\"",
                        w.start.value
                    ),
                );
                Time::midnight()
            });
            let dur = w.duration.value.0;
            if dur.is_zero() || dur > MAX_DURATION {
                self.at(
                    &w.duration.referenced,
                    format!(
                        "maintenance {name:?}: duration {}: expected more than 0 and at most 7d",
                        duration::format(dur)
                    ),
                );
            }
            let tz_name =
                w.timezone.as_ref().map_or("UTC".to_string(), |t| t.value.trim().to_string());
            let timezone = match time_zone(&tz_name) {
                Ok(tz) => tz,
                Err(e) => {
                    let at = w.timezone.as_ref().map(|t| t.referenced).unwrap_or(w.name.referenced);
                    self.at(&at, format!("maintenance {name:?}: {e}"));
                    TimeZone::UTC
                }
            };
            let mut covered = Vec::new();
            for s in w.services.unwrap_or_default() {
                if !services.contains(&s.value) {
                    self.at(
                        &s.referenced,
                        format!("maintenance {name:?}: unknown service {:?}: expected the name of a configured service", s.value),
                    );
                }
                covered.push(s.value);
            }
            out.push(Window {
                name,
                days,
                start,
                duration: dur,
                timezone,
                timezone_name: tz_name,
                services: covered,
            });
        }
        out
    }
}

#[cfg(test)]
mod tests;
