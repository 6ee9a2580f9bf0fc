//! Text, CSV and Markdown for the `history`, `incidents` and `report`
//! commands (their JSON is the answer structs themselves). No database here.
//!
//! Causes and details come from probed targets: text output drops control
//! characters and Markdown escapes what would change the table.

use super::{HistoryDoc, Incident, IncidentsDoc, ReportDoc};
use crate::table::{Align, Table};
use crate::time::{Timestamp, human_duration};
use std::fmt::Write;
use std::time::Duration;

/// "99.931%", "100%", or "no data"; rounded down, like the figures.
pub fn percent(p: Option<f64>) -> String {
    match p {
        None => "no data".into(),
        Some(p) if p >= 100.0 => "100%".into(),
        Some(p) => format!("{:.3}%", (p * 1000.0).floor() / 1000.0),
    }
}

/// "3m 20s"; a fraction of a second is "<1s", never "0s" (a 0.4 s outage
/// beside an uptime below 100% must not read as none).
fn dur(s: f64) -> String {
    if s > 0.0 && s < 1.0 {
        return "<1s".into();
    }
    human_duration(Duration::from_secs_f64(s.max(0.0)))
}

fn dur_opt(s: Option<f64>) -> String {
    s.map_or_else(|| "-".into(), dur)
}

/// The window a `since` covers, for headings: "24h", "30d".
fn span_label(from: Timestamp, to: Timestamp) -> String {
    crate::config::duration::format(to.since(from))
}

/// One line, no control characters, no invisible format characters.
fn clean(s: &str) -> String {
    s.chars()
        .filter(|c| !crate::text::is_format(*c))
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

fn cause_text(i: &Incident) -> String {
    match &i.cause {
        None => "-".into(),
        Some(c) => clean(&format!(
            "{} {}: {}{}",
            c.kind,
            c.target,
            c.reason.as_deref().unwrap_or("down"),
            if c.detail.is_empty() { String::new() } else { format!(" ({})", c.detail) }
        )),
    }
}

fn restarts_text(i: &Incident) -> String {
    if i.restarts.is_empty() {
        return "none".into();
    }
    let ok = i.restarts.iter().filter(|r| r.ok).count();
    format!("{ok} ok, {} failed", i.restarts.len() - ok)
}

/// The uptime and coverage of a whole series. Summed in whole milliseconds
/// (what the buckets hold) and judged like the API's figures: `x * 100 / x`
/// in floating point is not always 100 (0.019 s + 48.402 s up and nothing
/// down printed 99.999%), so no down time must read 100%.
fn sum_buckets(doc: &HistoryDoc) -> (Option<f64>, f64) {
    let ms = |s: f64| (s * 1000.0).round() as i64;
    let (mut t, mut total) = (super::accounting::Totals::default(), 0i64);
    for b in &doc.buckets {
        t.up += ms(b.up_s);
        t.degraded += ms(b.degraded_s);
        t.down += ms(b.down_s);
        t.maintenance += ms(b.maintenance_s);
        total += ms(b.up_s + b.degraded_s + b.down_s + b.maintenance_s) + ms(b.nodata_s);
    }
    let covered = t.covered();
    (t.uptime_percent(), if total > 0 { covered as f64 / total as f64 } else { 0.0 })
}

/// Buckets without any data in a row, from the `i`th on.
fn empty_run(buckets: &[super::Bucket], i: usize) -> usize {
    buckets[i..].iter().take_while(|b| is_empty(b)).count()
}

fn is_empty(b: &super::Bucket) -> bool {
    b.up_s + b.degraded_s + b.down_s + b.maintenance_s <= 0.0
}

/// `history --format text`. Buckets without data are not listed one by one:
/// a run of them is one line ("no data from … to …"), said once.
pub fn history_text(docs: &[HistoryDoc], now: Timestamp) -> String {
    let mut s = String::new();
    for doc in docs {
        let (uptime, coverage) = sum_buckets(doc);
        let step = span_label(Timestamp(0), Timestamp(doc.step_s * 1000));
        let _ = writeln!(
            s,
            "{}: since {} in {} steps: uptime {}, coverage {:.1}%",
            clean(&doc.service),
            doc.since,
            step,
            percent(uptime),
            coverage * 100.0
        );
        if doc.buckets.iter().all(is_empty) {
            let _ = writeln!(
                s,
                "  no data in any of the {} (nothing recorded for it in this range)",
                plural(doc.buckets.len(), &format!("{step} step"), &format!("{step} steps"))
            );
            continue;
        }
        let mut t = Table::new(&[
            ("at (UTC)", Align::Left),
            ("uptime", Align::Right),
            ("up", Align::Right),
            ("degraded", Align::Right),
            ("down", Align::Right),
            ("maint.", Align::Right),
            ("no data", Align::Right),
            ("latency avg / max", Align::Left),
        ])
        .indent("  ");
        let mut i = 0;
        while i < doc.buckets.len() {
            let run = empty_run(&doc.buckets, i);
            if run > 1 {
                let from = doc.buckets[i].at;
                let to = Timestamp(
                    (doc.buckets[i + run - 1].at.0 + doc.step_s * 1000).min(now.0.max(from.0)),
                );
                t.note(format!(
                    "no data from {from} to {to} ({})",
                    plural(run, &format!("{step} step"), &format!("{step} steps"))
                ));
                i += run;
                continue;
            }
            let b = &doc.buckets[i];
            let lat = match (b.latency_ms.avg, b.latency_ms.max) {
                (Some(a), Some(m)) => format!("{a:.1} / {m:.1} ms"),
                _ => "-".into(),
            };
            t.row(vec![
                b.at.to_string(),
                percent(b.uptime),
                dur(b.up_s),
                dur(b.degraded_s),
                dur(b.down_s),
                dur(b.maintenance_s),
                dur(b.nodata_s),
                lat,
            ]);
            i += 1;
        }
        s.push_str(&t.render());
    }
    if docs.is_empty() {
        let _ = writeln!(s, "no services (at {now})");
    }
    s
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn csv_field(v: &str) -> String {
    if v.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", v.replace('"', "\"\""))
    } else {
        v.to_string()
    }
}

fn num(v: Option<f64>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

/// `history --format csv`: one row per service and bucket.
pub fn history_csv(docs: &[HistoryDoc]) -> String {
    let mut s = String::from(
        "service,at,step_s,up_s,degraded_s,down_s,maintenance_s,nodata_s,uptime,latency_min_ms,latency_avg_ms,latency_max_ms\n",
    );
    for doc in docs {
        for b in &doc.buckets {
            let _ = writeln!(
                s,
                "{},{},{},{},{},{},{},{},{},{},{},{}",
                csv_field(&doc.service),
                b.at,
                doc.step_s,
                b.up_s,
                b.degraded_s,
                b.down_s,
                b.maintenance_s,
                b.nodata_s,
                num(b.uptime),
                num(b.latency_ms.min),
                num(b.latency_ms.avg),
                num(b.latency_ms.max)
            );
        }
    }
    s
}

fn incident_lines(s: &mut String, incidents: &[Incident], indent: &str) {
    let mut t = Table::new(&[
        ("started (UTC)", Align::Left),
        ("duration", Align::Right),
        ("service", Align::Left),
        ("state", Align::Left),
        ("restarts", Align::Left),
        ("alerted", Align::Left),
        ("cause", Align::Left),
    ])
    .indent(indent);
    for i in incidents {
        let state = match (i.ended_at, i.muted) {
            (None, false) => "ongoing",
            (None, true) => "ongoing, muted",
            (Some(_), true) => "ended, muted",
            (Some(_), false) => "ended",
        };
        t.row(vec![
            i.started_at.to_string(),
            dur(i.duration_s),
            clean(&i.service),
            state.into(),
            restarts_text(i),
            if i.alerted { "yes" } else { "no" }.into(),
            cause_text(i),
        ]);
    }
    s.push_str(&t.render());
}

/// `incidents --id ID`: one incident, whole: its cause, each restart with
/// whether it helped, and its diagnosis as text.
pub fn incident_whole_text(i: &Incident) -> String {
    let mut s = String::new();
    let state = if i.ended_at.is_some() { "ended" } else { "ongoing" };
    let _ = writeln!(
        s,
        "incident {} of {} ({state}{})",
        i.id,
        clean(&i.service),
        if i.muted { ", muted" } else { "" }
    );
    let _ = writeln!(s, "started: {}", i.started_at);
    match i.ended_at {
        Some(end) => {
            let _ = writeln!(s, "ended:   {end} ({})", dur(i.duration_s));
        }
        None => {
            let _ = writeln!(s, "ongoing: {} so far", dur(i.duration_s));
        }
    }
    let _ = writeln!(s, "cause:   {}", cause_text(i));
    let _ = writeln!(s, "alerted: {}", if i.alerted { "yes" } else { "no" });
    if i.restarts.is_empty() {
        let _ = writeln!(s, "restarts: none");
    } else {
        let _ = writeln!(s, "restarts:");
        for r in &i.restarts {
            let ran = if r.ok { "ok" } else { "failed" };
            let _ = writeln!(s, "  {} {ran}, {}", r.at, r.outcome.as_str());
        }
    }
    let diagnosis = i
        .diagnosis
        .as_ref()
        .and_then(|v| serde_json::from_value::<crate::diagnosis::Diagnosis>(v.clone()).ok());
    match diagnosis {
        Some(d) => {
            let _ = writeln!(s, "diagnosis:");
            for line in crate::diagnosis::text::plain_text(&d).lines() {
                let _ = writeln!(
                    s,
                    "  {}",
                    line.chars().filter(|c| !c.is_control()).collect::<String>()
                );
            }
        }
        None => {
            let _ = writeln!(s, "diagnosis: none (off for the service, or not captured)");
        }
    }
    s
}

/// `incidents --format text`.
pub fn incidents_text(doc: &IncidentsDoc) -> String {
    let mut s = String::new();
    if doc.incidents.is_empty() {
        s.push_str("no incidents\n");
        return s;
    }
    incident_lines(&mut s, &doc.incidents, "");
    s
}

/// `report --format text`.
pub fn report_text(doc: &ReportDoc) -> String {
    let mut s = String::new();
    let _ =
        writeln!(s, "Report {} to {} ({})", doc.since, doc.until, span_label(doc.since, doc.until));
    let mut t = Table::new(&[
        ("service", Align::Left),
        ("uptime", Align::Right),
        ("downtime", Align::Right),
        ("incidents", Align::Right),
        ("MTTR", Align::Right),
        ("longest", Align::Right),
        ("restarts", Align::Right),
        ("alerts", Align::Right),
    ])
    .indent("  ");
    for l in &doc.services {
        t.row(vec![
            clean(&l.name),
            percent(l.uptime),
            dur(l.downtime_s),
            l.incidents.to_string(),
            dur_opt(l.mttr_s),
            dur_opt(l.longest_s),
            format!("{}/{}", l.restarts.ok, l.restarts.failed),
            l.alerts.to_string(),
        ]);
    }
    s.push_str(&t.render());
    let _ = writeln!(
        s,
        "uptime = (up + degraded) / (up + degraded + down) over covered, unmuted time; restarts ok/failed"
    );
    if doc.incidents.is_empty() {
        s.push_str("\nno incidents\n");
    } else {
        let _ = writeln!(s, "\nIncidents ({}):", doc.incidents.len());
        incident_lines(&mut s, &doc.incidents, "  ");
    }
    s
}

/// Escapes what Markdown (and the HTML a mail client renders it to) would
/// interpret, and keeps one cell on one line.
pub fn md_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '|' | '\\' | '`' | '*' | '_' | '[' | ']' | '#' | '~' => {
                out.push('\\');
                out.push(c);
            }
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            c if crate::text::is_format(c) => {}
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

fn minute(t: Timestamp) -> String {
    let s = t.to_string();
    format!("{} {}", &s[..10.min(s.len())], s.get(11..16).unwrap_or(""))
}

/// `report --format markdown`: the per-service table and the incidents, to
/// paste into a monthly mail.
pub fn report_markdown(doc: &ReportDoc) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "## Availability report: {} to {} UTC ({})\n",
        minute(doc.since),
        minute(doc.until),
        span_label(doc.since, doc.until)
    );
    s.push_str("| Service | Uptime | Downtime | Incidents | MTTR | Longest outage | Restarts (ok / failed) | Alerts |\n");
    s.push_str("|:--|--:|--:|--:|--:|--:|--:|--:|\n");
    for l in &doc.services {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} / {} | {} |",
            md_escape(&l.name),
            percent(l.uptime),
            dur(l.downtime_s),
            l.incidents,
            dur_opt(l.mttr_s),
            dur_opt(l.longest_s),
            l.restarts.ok,
            l.restarts.failed,
            l.alerts
        );
    }
    s.push_str(
        "\nUptime is (up + degraded) / (up + degraded + down) over the time the monitor covered; \
         maintenance (muted) time and time without data are left out. \
         Incidents, MTTR and the longest outage leave out those that began during maintenance.\n",
    );
    if doc.incidents.is_empty() {
        s.push_str("\nNo incidents.\n");
        return s;
    }
    let _ = writeln!(s, "\n### Incidents ({})\n", doc.incidents.len());
    s.push_str("| Started (UTC) | Service | Duration | Cause | Restarts | Alerted |\n");
    s.push_str("|:--|:--|--:|:--|:--|:--|\n");
    for i in &doc.incidents {
        let mut duration = dur(i.duration_s);
        if i.ended_at.is_none() {
            duration.push_str(" (ongoing)");
        }
        let mut service = md_escape(&i.service);
        if i.muted {
            service.push_str(" (maintenance)");
        }
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} |",
            minute(i.started_at),
            service,
            duration,
            md_escape(&cause_text(i)),
            restarts_text(i),
            if i.alerted { "yes" } else { "no" }
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::query::{Bucket, Cause, LatencyFigures, RestartCounts, ServiceSla};

    const LONG: &str = "NeuroSphere SendTextended";

    fn incident(service: &str) -> Incident {
        Incident {
            id: 1,
            service: service.into(),
            started_at: Timestamp(1_796_603_426_250),
            ended_at: Some(Timestamp(1_796_603_450_250)),
            duration_s: 24.0,
            cause: Some(Cause {
                kind: "tcp".into(),
                target: "127.0.0.1:5000".into(),
                reason: Some("refused".into()),
                detail: "connection refused".into(),
            }),
            restarts: Vec::new(),
            alerted: true,
            muted: false,
            alerts: 1,
            diagnosis: None,
        }
    }

    /// The cells, found left to right on one line, are at least two blanks apart.
    #[track_caller]
    fn columns_apart(text: &str, cells: &[&str]) {
        let line = text.lines().find(|l| l.contains(cells[0])).expect(text);
        let mut at = line.find(cells[0]).expect(text) + cells[0].len();
        for cell in &cells[1..] {
            let gap = line[at..].find(cell).unwrap_or_else(|| panic!("{cell:?} missing:\n{text}"));
            assert!(
                gap >= 2 && line[at..at + gap].trim().is_empty(),
                "{cell:?} touches the cell before it:\n{text}"
            );
            at += gap + cell.len();
        }
    }

    #[test]
    fn incidents_columns_never_touch() {
        let text =
            incidents_text(&IncidentsDoc { incidents: vec![incident(LONG), incident("db")] });
        columns_apart(
            &text,
            &["2026-12-07T00:30:26.250Z", "24s", LONG, "ended", "none", "yes", "tcp"],
        );
        let header = text.lines().next().unwrap();
        let row = text.lines().nth(1).unwrap();
        assert_eq!(header.find("service"), row.find(LONG), "{text}");
    }

    #[test]
    fn report_columns_never_touch() {
        let doc = ReportDoc {
            since: Timestamp(1_796_000_000_000),
            until: Timestamp(1_796_603_450_250),
            services: vec![ServiceSla {
                name: LONG.into(),
                uptime: Some(99.5),
                downtime_s: 24.0,
                incidents: 1,
                mttr_s: Some(24.0),
                longest_s: Some(24.0),
                restarts: RestartCounts { ok: 0, failed: 0 },
                alerts: 1,
            }],
            incidents: vec![incident(LONG)],
        };
        let text = report_text(&doc);
        columns_apart(&text, &[LONG, "99.500%", "24s"]);
        columns_apart(&text, &["2026-12-07T00:30:26.250Z", "24s", LONG, "ended"]);
    }

    fn bucket(at: i64, up_s: f64, down_s: f64, nodata_s: f64) -> Bucket {
        Bucket {
            at: Timestamp(at),
            up_s,
            degraded_s: 0.0,
            down_s,
            maintenance_s: 0.0,
            nodata_s,
            uptime: (up_s + down_s > 0.0).then(|| up_s * 100.0 / (up_s + down_s)),
            latency_ms: LatencyFigures { min: None, avg: None, max: None },
            samples: 0,
        }
    }

    #[test]
    fn history_says_no_data_once_not_per_bucket() {
        let h = 3_600_000;
        let t0 = 1_796_000_400_000 / h * h;
        let mut buckets: Vec<Bucket> =
            (0..100).map(|i| bucket(t0 + i * h, 0.0, 0.0, 3600.0)).collect();
        buckets.extend((100..108).map(|i| bucket(t0 + i * h, 3600.0, 0.0, 0.0)));
        let doc = HistoryDoc { service: "web".into(), since: Timestamp(t0), step_s: 3600, buckets };
        let text = history_text(std::slice::from_ref(&doc), Timestamp(t0 + 108 * h));
        assert_eq!(text.matches("no data").count(), 2, "the header's column and one run:\n{text}");
        assert!(text.contains("(100 1h steps)"), "{text}");
        assert!(text.lines().count() <= 12, "{text}");
        assert!(text.contains("uptime 100%"), "{text}");

        let empty = HistoryDoc { buckets: doc.buckets[..100].to_vec(), ..doc };
        let text = history_text(&[empty], Timestamp(t0 + 100 * h));
        assert_eq!(text.lines().count(), 2, "{text}");
        assert!(text.contains("no data in any of the 100 1h steps"), "{text}");
    }

    #[test]
    fn uptime_is_100_only_without_down_time_and_below_shows_below() {
        assert_eq!(percent(Some(100.0)), "100%");
        assert_eq!(percent(Some(99.99999)), "99.999%");
        // A fraction of a second down is not "0s" beside a 99.999%.
        assert_eq!(dur(0.4), "<1s");
        assert_eq!(dur(0.0), "0s");
        // Seen on the demo: 0.019 s and 48.402 s up, nothing down, printed 99.999%.
        let m = 60_000;
        let buckets = vec![bucket(0, 0.019, 0.0, 59.981), bucket(m, 48.402, 0.0, 0.0)];
        let doc = HistoryDoc { service: "web".into(), since: Timestamp(0), step_s: 60, buckets };
        let text = history_text(std::slice::from_ref(&doc), Timestamp(2 * m));
        assert!(text.contains("uptime 100%,"), "{text}");
        let mut down = doc.clone();
        down.buckets[1].down_s = 0.001;
        let text = history_text(&[down], Timestamp(2 * m));
        assert!(text.contains("uptime 99.997%,"), "below 100 shows as below: {text}");
    }
}
