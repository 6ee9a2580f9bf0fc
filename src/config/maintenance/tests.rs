//! Windows open and closed, computed against the system's tz database.

use super::*;

fn window(every: &[usize], start: &str, dur_s: u64, tz: &str) -> Window {
    let mut days = [false; 7];
    for d in every {
        days[*d] = true;
    }
    Window {
        name: "w".into(),
        days,
        start: parse_start(start).expect("start"),
        duration: Duration::from_secs(dur_s),
        timezone: time_zone(tz).expect("tz"),
        timezone_name: tz.into(),
        services: Vec::new(),
    }
}

/// A UTC instant from its RFC 3339 text, as our `Timestamp`.
fn at(s: &str) -> Timestamp {
    Timestamp(s.parse::<jiff::Timestamp>().expect("instant").as_millisecond())
}

const MON: usize = 0;
const SAT: usize = 5;
const SUN: usize = 6;

#[test]
fn open_and_closed_in_utc() {
    // Sunday 2026-12-06, 03:00-04:00 UTC.
    let w = window(&[SUN], "03:00", 3600, "UTC");
    assert_eq!(w.open_at(at("2026-12-06T02:59:59Z")), None);
    assert_eq!(w.open_at(at("2026-12-06T03:00:00Z")), Some(at("2026-12-06T04:00:00Z")));
    assert_eq!(w.open_at(at("2026-12-06T03:59:59.999Z")), Some(at("2026-12-06T04:00:00Z")));
    assert_eq!(w.open_at(at("2026-12-06T04:00:00Z")), None, "the end is excluded");
    assert_eq!(w.open_at(at("2026-12-07T03:30:00Z")), None, "a Monday");
    let next = w.current_or_next(at("2026-12-06T05:00:00Z")).expect("next");
    assert_eq!((next.start, next.end), (at("2026-12-13T03:00:00Z"), at("2026-12-13T04:00:00Z")));
}

#[test]
fn a_window_crossing_midnight_is_open_on_the_next_day_too() {
    // Saturday 23:00 for 2 h in Berlin (winter: UTC+1): Sat 22:00Z to Sun 00:00Z.
    let w = window(&[SAT], "23:00", 7200, "Europe/Berlin");
    assert_eq!(w.open_at(at("2026-12-05T21:59:00Z")), None);
    assert_eq!(w.open_at(at("2026-12-05T22:30:00Z")), Some(at("2026-12-06T00:00:00Z")));
    // Sunday 00:30 local = Saturday 23:30Z: still Saturday's window.
    assert_eq!(w.open_at(at("2026-12-05T23:30:00Z")), Some(at("2026-12-06T00:00:00Z")));
    assert_eq!(w.open_at(at("2026-12-06T00:00:00Z")), None);
}

#[test]
fn dst_is_the_tz_databases() {
    // The expected instants are the database's own (through jiff), not ours:
    // Berlin's offset differs before and after 2026-03-29 (the spring change).
    let berlin = jiff::tz::db().get("Europe/Berlin").expect("Europe/Berlin in /usr/share/zoneinfo");
    let local = |d: &str| {
        let dt: jiff::civil::DateTime = d.parse().expect("datetime");
        Timestamp(dt.to_zoned_datetime(berlin.clone()).expect("zoned").timestamp().as_millisecond())
    };
    let w = window(&[SUN], "03:00", 3600, "Europe/Berlin");
    let before = w.current_or_next(at("2026-03-21T00:00:00Z")).expect("winter");
    assert_eq!(before.start, local("2026-03-22T03:00"));
    assert_eq!(before.start, at("2026-03-22T02:00:00Z"), "CET is UTC+1");
    let after = w.current_or_next(at("2026-03-28T00:00:00Z")).expect("summer");
    assert_eq!(after.start, local("2026-03-29T03:00"));
    assert_eq!(after.start, at("2026-03-29T01:00:00Z"), "CEST is UTC+2 from that night");
    assert_eq!(after.end.0 - after.start.0, 3_600_000, "an hour of elapsed time");

    // A start inside the gap (02:30 does not exist that night) opens after it.
    let gap = window(&[SUN], "02:30", 3600, "Europe/Berlin");
    let o = gap.current_or_next(at("2026-03-28T00:00:00Z")).expect("gap");
    assert_eq!(o.start, at("2026-03-29T01:30:00Z"), "03:30 CEST");

    // New York moves on another date (2026-03-08): same wall clock, other instants.
    let ny = window(&[SUN], "03:00", 3600, "America/New_York");
    assert_eq!(
        ny.current_or_next(at("2026-03-01T12:00:00Z")).expect("est").start,
        at("2026-03-08T07:00:00Z")
    );
    assert_eq!(
        ny.current_or_next(at("2026-03-09T00:00:00Z")).expect("edt").start,
        at("2026-03-15T07:00:00Z")
    );
}

#[test]
fn several_days_and_every_day() {
    let w = window(&[MON, SUN], "12:00", 60, "UTC");
    assert_eq!(w.days_text(), "mon, sun");
    let all = window(&[0, 1, 2, 3, 4, 5, 6], "00:00", 60, "UTC");
    assert_eq!(all.days_text(), "every day");
    assert_eq!(
        all.current_or_next(at("2026-12-09T10:00:00Z")).expect("next").start,
        at("2026-12-10T00:00:00Z")
    );
}

#[test]
fn starts_parse_as_24_hour_times() {
    assert_eq!(parse_start("03:00"), Time::new(3, 0, 0, 0).ok());
    assert_eq!(parse_start("3:05"), Time::new(3, 5, 0, 0).ok());
    assert_eq!(parse_start("23:59:30"), Time::new(23, 59, 30, 0).ok());
    for bad in ["24:00", "03:60", "3", "03:00 pm", "", "03:00:00:00", "-1:00"] {
        assert_eq!(parse_start(bad), None, "{bad:?}");
    }
}
