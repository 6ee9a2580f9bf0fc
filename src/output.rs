//! Human, JSON and Nagios renderings of a status document.

use crate::heal::HealNote;
use crate::probe::owned;
use crate::probe::{CheckStatus, Reason};
use crate::state::Health;
use crate::status::{CheckReport, ServiceReport, StatusDoc};
use crate::table::{Align, Table};
use crate::time::Timestamp;
use std::fmt::Write;

/// Output of the history commands (each accepts a subset).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataFormat {
    Text,
    Json,
    Csv,
    Markdown,
}

/// How a command prints its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
    Nagios,
}

/// Nagios-style exit code of a document: 0 OK, 1 WARNING, 2 CRITICAL.
pub fn exit_code(doc: &StatusDoc) -> u8 {
    match doc.overall {
        Health::Up => 0,
        Health::Degraded => 1,
        Health::Down => 2,
    }
}

pub fn render(doc: &StatusDoc, format: Format, notes: &[HealNote], color: bool) -> String {
    match format {
        Format::Text => text(doc, notes, color),
        Format::Json => String::from_utf8_lossy(&doc.to_json()).into_owned(),
        Format::Nagios => nagios(doc),
    }
}

/// Whether stdout gets ANSI colour: a terminal, and NO_COLOR unset.
pub fn use_color() -> bool {
    use std::io::IsTerminal;
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

fn paint(s: &str, h: Health, color: bool) -> String {
    if !color {
        return s.to_string();
    }
    let code = match h {
        Health::Up => "32",
        Health::Degraded => "33",
        Health::Down => "31;1",
    };
    format!("\x1b[{code}m{s}\x1b[0m")
}

/// The check a service's row speaks of: its first worst non-up check, else its first check.
fn picked(s: &ServiceReport) -> Option<&CheckReport> {
    let worst = s.checks.iter().map(|c| c.status).max();
    s.checks
        .iter()
        .find(|c| Some(c.status) == worst && c.status != CheckStatus::Up)
        .or(s.checks.first())
}

/// The most telling line about a service: its first non-up check, else its
/// first check (a check that measures says what and its figures). Always one
/// line (a plugin's long output stays in the JSON).
fn service_detail(s: &ServiceReport) -> String {
    match picked(s) {
        Some(c) if c.status != CheckStatus::Up => {
            let reason = c.reason.map(|r| format!(" [{}]", r.as_str())).unwrap_or_default();
            format!("{} {}: {}{reason}", c.kind, c.target_line(), c.summary())
        }
        Some(c) => value_line(c).unwrap_or_else(|| c.summary().to_string()),
        None => String::new(),
    }
}

/// Days from `now` to a check's certificate expiry (negative once expired).
fn cert_days(c: &CheckReport, now: Timestamp) -> Option<f64> {
    c.cert_expires_at.map(|t| (t.0 - now.0) as f64 / 86_400_000.0)
}

/// `cert 89 d left` for the service's earliest certificate, unless the
/// detail shown already talks about it.
fn cert_note(s: &ServiceReport, now: Timestamp) -> Option<String> {
    let shown_is_cert = s.checks.iter().any(|c| {
        c.status != CheckStatus::Up && matches!(c.reason, Some(Reason::CertExpiring | Reason::Tls))
    });
    if shown_is_cert {
        return None;
    }
    let days = s.checks.iter().filter_map(|c| cert_days(c, now)).min_by(f64::total_cmp)?;
    Some(if days < 0.0 {
        "cert expired".to_string()
    } else {
        format!("cert {:.0} d left", days.floor())
    })
}

fn latency(s: &ServiceReport) -> String {
    s.checks
        .iter()
        .find_map(|c| c.latency_ms)
        .map_or_else(|| "-".into(), |ms| format!("{ms:.1} ms"))
}

/// What a service's row says besides its checks: a mute (until when, and
/// why) and healing suspended.
fn service_marks(s: &ServiceReport, now: Timestamp) -> Vec<String> {
    let mut marks = Vec::new();
    if let Some(until) = s.muted_until.filter(|t| *t > now) {
        let why = s.mute_reason.as_deref().map(|r| format!(": {}", clean(r))).unwrap_or_default();
        marks.push(format!("muted until {until}{why}"));
    }
    if s.heal_suspended {
        marks.push("healing suspended (restart budget used; `unmute` resumes it)".into());
    }
    marks
}

/// One line, no control characters (a reason is typed by an operator).
fn clean(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

/// What a terminal line may take: a check's figures wrap to stay within it.
const TEXT_COLUMNS: usize = 100;

fn status_label(s: &ServiceReport) -> String {
    let mut label = s.status.as_str().to_uppercase();
    if !s.critical && s.status == Health::Down {
        label.push('*');
    }
    label
}

fn text(doc: &StatusDoc, notes: &[HealNote], color: bool) -> String {
    let mut out = String::new();
    let mut table = Table::new(&[
        ("SERVICE", Align::Left),
        ("STATUS", Align::Left),
        ("LATENCY", Align::Right),
        ("DETAIL", Align::Left),
    ]);
    // Where the DETAIL column starts, as the table will lay it out (two spaces between columns).
    let col = |head: &str, cell: &dyn Fn(&ServiceReport) -> String| {
        doc.services.iter().map(|s| cell(s).chars().count()).fold(head.len(), usize::max)
    };
    let indent = col("SERVICE", &|s| clean(&s.name))
        + col("STATUS", &status_label)
        + col("LATENCY", &latency)
        + 3 * 2;
    let room = TEXT_COLUMNS.saturating_sub(indent).max(40);
    for s in &doc.services {
        let label = status_label(s);
        let mut detail = service_detail(s);
        if let Some(note) = cert_note(s, doc.generated_at) {
            detail = if detail.is_empty() { note } else { format!("{detail} ({note})") };
        }
        for note in why_notes(s) {
            detail = if detail.is_empty() { note } else { format!("{detail} ({note})") };
        }
        for mark in service_marks(s, doc.generated_at) {
            detail =
                if detail.is_empty() { format!("[{mark}]") } else { format!("{detail} [{mark}]") };
        }
        // A row about a check that measures wraps: its figures after a comma, its sentence
        // (not up) between words; any other row stays one line, as it always was.
        let mut first = match picked(s) {
            Some(c) if c.values.is_some() && c.status == CheckStatus::Up => {
                wrap(&detail, room, ", ")
            }
            Some(c) if c.values.is_some() => wrap(&detail, room, " "),
            _ => vec![detail],
        }
        .into_iter();
        let head = first.next().unwrap_or_default();
        table.row(vec![clean(&s.name), paint(&label, s.status, color), latency(s), head]);
        for line in first.chain(
            value_lines(s).iter().chain(&resources_line(s)).flat_map(|l| wrap(l, room, ", ")),
        ) {
            table.row(vec![String::new(), String::new(), String::new(), line]);
        }
    }
    out.push_str(&table.render());
    let down: Vec<&str> =
        doc.services.iter().filter(|s| s.status == Health::Down).map(|s| s.name.as_str()).collect();
    let summary = match doc.overall {
        Health::Up => "all services up".to_string(),
        _ if down.is_empty() => "degraded".to_string(),
        _ => format!("down: {}", down.join(", ")),
    };
    let _ = writeln!(
        out,
        "overall: {} ({summary}; {} in {:.0} ms)",
        paint(&doc.overall.as_str().to_uppercase(), doc.overall, color),
        plural(doc.services.len(), "service", "services"),
        doc.duration_ms
    );
    if doc.services.iter().any(|s| !s.critical && s.status == Health::Down) {
        let _ = writeln!(out, "* non-critical: counts as a warning");
    }
    for n in notes {
        let _ = writeln!(out, "healing: {}: {}", n.service, n.text);
    }
    out
}

/// "1 service", "2 services".
pub fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// A service's unit's figures: `unit memory 734.0 MB, cpu 12.5%, tasks 7`; a
/// figure systemd has not got is left out (all of them: said so).
fn resources_line(s: &ServiceReport) -> Option<String> {
    let r = s.resources.as_ref()?;
    let shown: Vec<String> = [
        r.memory_bytes.map(|m| format!("memory {}", crate::state::resources::bytes(m))),
        r.cpu_pct.map(|c| format!("cpu {c:.1}%")),
        r.tasks.map(|t| format!("tasks {t}")),
    ]
    .into_iter()
    .flatten()
    .collect();
    Some(if shown.is_empty() {
        "unit: no memory, cpu or tasks figures from systemd".to_string()
    } else {
        format!("unit {}", shown.join(", "))
    })
}

/// One line per check that measured something (`disk /: used 85.2%, …`), but the one the
/// service's row already speaks of.
fn value_lines(s: &ServiceReport) -> Vec<String> {
    let shown = picked(s);
    s.checks
        .iter()
        .filter(|c| !shown.is_some_and(|p| std::ptr::eq(p, *c)))
        .filter_map(value_line)
        .collect()
}

/// A check's figures: `disk / (degraded: disk_space): used 85.2%, total 80.0 GB, …`; a
/// figure the check has not got (null: no swap, no forecast yet) is left out.
fn value_line(c: &CheckReport) -> Option<String> {
    let values = c.values.as_ref()?;
    let shown: Vec<String> = values
        .0
        .iter()
        .filter(|(_, v)| v.is_some())
        .map(|(name, v)| format!("{} {}", owned::value_label(name), owned::show_value(name, *v)))
        .collect();
    let status = if c.status == CheckStatus::Up {
        String::new()
    } else {
        format!(
            " ({}{})",
            c.status.as_str(),
            c.reason.map(|r| format!(": {}", r.as_str())).unwrap_or_default()
        )
    };
    Some(format!("{} {}{status}: {}", c.kind, c.target_line(), shown.join(", ")))
}

/// A line cut at `sep` (`", "` between figures, `" "` between words) so that each piece
/// takes at most `room` characters; the pieces after the first are indented two spaces. A
/// piece with nowhere to cut stays whole.
fn wrap(line: &str, room: usize, sep: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for (i, part) in line.split(sep).enumerate() {
        if i == 0 {
            cur.push_str(part);
        } else if cur.chars().count() + sep.len() + part.chars().count() < room {
            cur.push_str(sep);
            cur.push_str(part);
        } else {
            cur.push_str(sep.trim_end());
            out.push(std::mem::replace(&mut cur, format!("  {part}")));
        }
    }
    out.push(cur);
    out
}

/// Nagios perfdata of a check's values: `'svc disk used_pct'=85.2%;80;90;0;100`.
fn value_perf(s: &ServiceReport, c: &CheckReport, n: usize, perf: &mut Vec<String>) {
    let Some(values) = &c.values else { return };
    for (name, v) in &values.0 {
        let Some(v) = v else { continue };
        let label = if n == 1 {
            format!("{} {} {name}", s.name, c.kind)
        } else {
            format!("{} {} {n} {name}", s.name, c.kind)
        };
        let unit = owned::perf_unit(name);
        let mut item = format!("{}={}{unit}", perf_label(&label), perf_number(*v));
        let limits = c.thresholds.as_ref().filter(|t| t.value == *name);
        let fmt = |x: Option<f64>| x.map(perf_number).unwrap_or_default();
        let (warn, crit) =
            limits.map_or((String::new(), String::new()), |t| (fmt(t.warn), fmt(t.crit)));
        // A process check's `cpu_pct` is of one CPU: it may pass 100.
        let max = if unit == "%" && name != "cpu_pct" { "100" } else { "" };
        let _ = write!(item, ";{warn};{crit};0;{max}");
        perf.push(item.trim_end_matches(';').to_string());
    }
}

/// A perfdata number: no exponent, at most 3 decimals.
fn perf_number(v: f64) -> String {
    let t = format!("{v:.3}");
    let t = t.trim_end_matches('0').trim_end_matches('.');
    if t.is_empty() || t == "-" { "0".into() } else { t.to_string() }
}

/// What the row adds about the why: the open incident's unit result,
/// flapping, and whether the last restart helped.
fn why_notes(s: &ServiceReport) -> Vec<String> {
    let mut notes = Vec::new();
    let diagnosis = s.incident.as_ref().and_then(|i| i.diagnosis.as_ref());
    if let Some(r) = diagnosis.and_then(crate::diagnosis::text::result) {
        notes.push(format!("unit: {r}"));
    }
    if s.flapping {
        notes.push("flapping".into());
    }
    if let Some(r) = s.restarts.last() {
        let ran = if r.ok { "ok" } else { "failed" };
        notes.push(format!("last restart {} {ran}, {}", r.at, r.outcome.as_str()));
    }
    notes
}

/// Seconds as days for a threshold: `14`, `0.5`.
fn days_text(secs: u64) -> String {
    if secs.is_multiple_of(86_400) {
        return (secs / 86_400).to_string();
    }
    let t = format!("{:.3}", secs as f64 / 86_400.0);
    t.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// Quotes a perfdata label (`'` doubled; `=` and `|` not allowed).
fn perf_label(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''").replace(['=', '|'], "_"))
}

fn nagios(doc: &StatusDoc) -> String {
    let state = match doc.overall {
        Health::Up => "OK",
        Health::Degraded => "WARNING",
        Health::Down => "CRITICAL",
    };
    let total = doc.services.len();
    let up = doc.services.iter().filter(|s| s.status == Health::Up).count();
    let bad: Vec<String> = doc
        .services
        .iter()
        .filter(|s| s.status != Health::Up)
        .map(|s| {
            // Nagios splits the line at its first '|': none before the perfdata.
            format!(
                "{} {} ({})",
                s.name.replace('|', "/"),
                s.status.as_str(),
                service_detail(s).replace('|', "/")
            )
        })
        .collect();
    let summary = if bad.is_empty() {
        format!("{up}/{total} services up")
    } else {
        format!("{up}/{total} services up; {}", bad.join("; "))
    };
    let mut perf = vec![format!("services_up={up};;;0;{total}")];
    for s in &doc.services {
        let code = match s.status {
            Health::Up => 0,
            Health::Degraded => 1,
            Health::Down => 2,
        };
        perf.push(format!("{}={code};1;2;0;2", perf_label(&format!("{} state", s.name))));
        let mut seen = std::collections::HashMap::new();
        for c in &s.checks {
            let n = seen.entry(c.kind.as_str()).and_modify(|n| *n += 1).or_insert(1);
            value_perf(s, c, *n, &mut perf);
            if let Some(ms) = c.latency_ms {
                let label = if *n == 1 {
                    format!("{} {}", s.name, c.kind)
                } else {
                    format!("{} {} {n}", s.name, c.kind)
                };
                perf.push(format!("{}={:.4}s;;;0", perf_label(&label), ms / 1000.0));
            }
        }
        // Days of certificate left; thresholds as Nagios ranges ("14:" =
        // alert below 14), so graphers draw the same lines the check uses.
        let mut n = 0;
        for c in &s.checks {
            let Some(days) = cert_days(c, doc.generated_at) else { continue };
            n += 1;
            let label = if n == 1 {
                format!("{} cert_days", s.name)
            } else {
                format!("{} cert_days {n}", s.name)
            };
            let mut item = format!("{}={days:.1}", perf_label(&label));
            if let Some(w) = c.cert_warn_s {
                let _ = write!(item, ";{}:", days_text(w));
                if let Some(cr) = c.cert_crit_s {
                    let _ = write!(item, ";{}:", days_text(cr));
                }
            }
            perf.push(item);
        }
    }
    format!("CHATSTACK {state} - {summary} | {}\n", perf.join(" "))
}
