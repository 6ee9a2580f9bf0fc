//! Text, CSV and Markdown for the `history`, `incidents` and `report`
//! commands (their JSON is the answer structs themselves). No database here.
//!
//! Causes and details come from probed targets: text output drops control
//! characters and Markdown escapes what would change the table.

use super::{HistoryDoc, Incident, IncidentsDoc, ReportDoc};
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

fn dur(s: f64) -> String {
    human_duration(Duration::from_secs_f64(s.max(0.0)))
}

fn dur_opt(s: Option<f64>) -> String {
    s.map_or_else(|| "-".into(), dur)
}

/// The window a `since` covers, for headings: "24h", "30d".
fn span_label(from: Timestamp, to: Timestamp) -> String {
    crate::config::duration::format(to.since(from))
}

/// One line, no control characters.
fn clean(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
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

fn sum_buckets(doc: &HistoryDoc) -> (Option<f64>, f64) {
    let (mut up, mut counted, mut covered, mut total) = (0.0, 0.0, 0.0, 0.0);
    for b in &doc.buckets {
        up += b.up_s + b.degraded_s;
        counted += b.up_s + b.degraded_s + b.down_s;
        let c = b.up_s + b.degraded_s + b.down_s + b.maintenance_s;
        covered += c;
        total += c + b.nodata_s;
    }
    let uptime = (counted > 0.0).then(|| up * 100.0 / counted);
    (uptime, if total > 0.0 { covered / total } else { 0.0 })
}

/// `history --format text`.
pub fn history_text(docs: &[HistoryDoc], now: Timestamp) -> String {
    let mut s = String::new();
    for doc in docs {
        let (uptime, coverage) = sum_buckets(doc);
        let _ = writeln!(
            s,
            "{}: since {} in {} steps: uptime {}, coverage {:.1}%",
            clean(&doc.service),
            doc.since,
            span_label(Timestamp(0), Timestamp(doc.step_s * 1000)),
            percent(uptime),
            coverage * 100.0
        );
        let _ = writeln!(
            s,
            "  {:<22}{:>10}{:>10}{:>10}{:>10}{:>10}{:>10}  latency avg / max",
            "at (UTC)", "uptime", "up", "degraded", "down", "maint.", "no data"
        );
        for b in &doc.buckets {
            let lat = match (b.latency_ms.avg, b.latency_ms.max) {
                (Some(a), Some(m)) => format!("{a:.1} / {m:.1} ms"),
                _ => "-".into(),
            };
            let _ = writeln!(
                s,
                "  {:<22}{:>10}{:>10}{:>10}{:>10}{:>10}{:>10}  {lat}",
                b.at.to_string(),
                percent(b.uptime),
                dur(b.up_s),
                dur(b.degraded_s),
                dur(b.down_s),
                dur(b.maintenance_s),
                dur(b.nodata_s),
            );
        }
    }
    if docs.is_empty() {
        let _ = writeln!(s, "no services (at {now})");
    }
    s
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
    let _ = writeln!(
        s,
        "{indent}{:<22}{:<10}{:<20}{:<14}{:<16}{:<8}cause",
        "started (UTC)", "duration", "service", "state", "restarts", "alerted"
    );
    for i in incidents {
        let state = match (i.ended_at, i.muted) {
            (None, false) => "ongoing",
            (None, true) => "ongoing, muted",
            (Some(_), true) => "ended, muted",
            (Some(_), false) => "ended",
        };
        let _ = writeln!(
            s,
            "{indent}{:<22}{:<10}{:<20}{:<14}{:<16}{:<8}{}",
            i.started_at.to_string(),
            dur(i.duration_s),
            clean(&i.service),
            state,
            restarts_text(i),
            if i.alerted { "yes" } else { "no" },
            cause_text(i)
        );
    }
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
    let _ = writeln!(
        s,
        "  {:<20}{:>10}{:>11}{:>11}{:>10}{:>10}{:>11}{:>8}",
        "service", "uptime", "downtime", "incidents", "MTTR", "longest", "restarts", "alerts"
    );
    for l in &doc.services {
        let _ = writeln!(
            s,
            "  {:<20}{:>10}{:>11}{:>11}{:>10}{:>10}{:>11}{:>8}",
            clean(&l.name),
            percent(l.uptime),
            dur(l.downtime_s),
            l.incidents,
            dur_opt(l.mttr_s),
            dur_opt(l.longest_s),
            format!("{}/{}", l.restarts.ok, l.restarts.failed),
            l.alerts
        );
    }
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
