//! Prometheus text exposition (format 0.0.4), rendered from a status
//! document, so `run` (in memory), `serve` (the file) and `check` (the
//! textfile-collector file) export exactly the same families.

use crate::config::Config;
use crate::probe::CheckStatus;
use crate::state::Health;
use crate::status::StatusDoc;
use crate::time::Timestamp;
use std::fmt::Write;

pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Escapes a label value: backslash, double quote and newline.
pub fn label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// The metrics of `doc` (None: no status yet) as seen at `now`.
pub fn render(doc: Option<&StatusDoc>, now: Timestamp) -> String {
    render_with(doc, now, true)
}

/// `with_age: false` leaves out the status age, which a file written once
/// would freeze (node_exporter reports the file's mtime instead).
fn render_with(doc: Option<&StatusDoc>, now: Timestamp, with_age: bool) -> String {
    let mut o = String::with_capacity(4096);
    family(&mut o, "chatstack_build_info", "gauge", "Version of chatstack-status; always 1.");
    let _ = writeln!(o, "chatstack_build_info{{version=\"{}\"}} 1", env!("CARGO_PKG_VERSION"));
    family(&mut o, "chatstack_status_available", "gauge", "1 when a status document exists.");
    let _ = writeln!(o, "chatstack_status_available {}", u8::from(doc.is_some()));
    let Some(doc) = doc else { return o };

    if with_age {
        family(
            &mut o,
            "chatstack_status_age_seconds",
            "gauge",
            "Seconds since the status was generated.",
        );
        let _ = writeln!(o, "chatstack_status_age_seconds {:.3}", doc.age_s(now));
    }
    family(
        &mut o,
        "chatstack_last_cycle_timestamp_seconds",
        "gauge",
        "Unix time the last cycle's status was generated.",
    );
    let _ =
        writeln!(o, "chatstack_last_cycle_timestamp_seconds {:.3}", doc.generated_at.as_secs_f64());
    family(
        &mut o,
        "chatstack_cycle_duration_seconds",
        "gauge",
        "How long the last check cycle took.",
    );
    let _ = writeln!(o, "chatstack_cycle_duration_seconds {:.4}", doc.duration_ms / 1000.0);
    family(
        &mut o,
        "chatstack_overall_state",
        "gauge",
        "1 for the current overall state (up, degraded, down).",
    );
    for h in [Health::Up, Health::Degraded, Health::Down] {
        let _ = writeln!(
            o,
            "chatstack_overall_state{{state=\"{}\"}} {}",
            h.as_str(),
            u8::from(doc.overall == h)
        );
    }

    let svc = |o: &mut String,
               name: &str,
               kind: &str,
               help: &str,
               value: &dyn Fn(&crate::status::ServiceReport) -> String| {
        family(o, name, kind, help);
        for s in &doc.services {
            let _ = writeln!(o, "{name}{{service=\"{}\"}} {}", label(&s.name), value(s));
        }
    };
    family(
        &mut o,
        "chatstack_service_up",
        "gauge",
        "1 when the service is up or degraded, 0 when down.",
    );
    for s in &doc.services {
        let _ = writeln!(
            o,
            "chatstack_service_up{{service=\"{}\",critical=\"{}\"}} {}",
            label(&s.name),
            s.critical,
            u8::from(s.status != Health::Down)
        );
    }
    if doc.services.iter().any(|s| s.uptime.is_some()) {
        family(
            &mut o,
            "chatstack_service_uptime_ratio",
            "gauge",
            "Time-weighted uptime (0-1) over the window, from the history store; absent without data.",
        );
        for s in &doc.services {
            let Some(u) = &s.uptime else { continue };
            for (window, v) in [("24h", u.day), ("7d", u.week), ("30d", u.month)] {
                if let Some(pct) = v {
                    let _ = writeln!(
                        o,
                        "chatstack_service_uptime_ratio{{service=\"{}\",window=\"{window}\"}} {}",
                        label(&s.name),
                        pct / 100.0
                    );
                }
            }
        }
    }
    family(
        &mut o,
        "chatstack_service_state",
        "gauge",
        "1 for the service's current state (up, degraded, down).",
    );
    for s in &doc.services {
        for h in [Health::Up, Health::Degraded, Health::Down] {
            let _ = writeln!(
                o,
                "chatstack_service_state{{service=\"{}\",state=\"{}\"}} {}",
                label(&s.name),
                h.as_str(),
                u8::from(s.status == h)
            );
        }
    }
    service_resources(&mut o, doc);
    // What `chatstack-status fleet` and the fleet dashboard show beside a
    // state: since when, and why (the status JSON's `since` and reasons).
    family(
        &mut o,
        "chatstack_service_since_timestamp_seconds",
        "gauge",
        "Unix time the service's current state began.",
    );
    for s in &doc.services {
        if let Some(t) = s.since {
            let _ = writeln!(
                o,
                "chatstack_service_since_timestamp_seconds{{service=\"{}\"}} {:.3}",
                label(&s.name),
                t.as_secs_f64()
            );
        }
    }
    family(
        &mut o,
        "chatstack_check_reason_info",
        "gauge",
        "1 for each check that is not up, labelled with its reason.",
    );
    for s in &doc.services {
        for (i, c) in s.checks.iter().enumerate() {
            if let Some(r) = c.reason {
                let _ = writeln!(
                    o,
                    "chatstack_check_reason_info{{service=\"{}\",check=\"{i}\",type=\"{}\",reason=\"{}\"}} 1",
                    label(&s.name),
                    c.kind,
                    r.as_str()
                );
            }
        }
    }
    svc(
        &mut o,
        "chatstack_service_consecutive_failures",
        "gauge",
        "Consecutive failed cycles counted towards healing.",
        &|s| s.consecutive_failures.to_string(),
    );
    svc(&mut o, "chatstack_restarts_total", "counter", "Restarts run by chatstack-status.", &|s| {
        s.restarts_total.to_string()
    });
    svc(
        &mut o,
        "chatstack_heal_suspended",
        "gauge",
        "1 when healing is suspended (restart budget used up).",
        &|s| u8::from(s.heal_suspended).to_string(),
    );
    svc(
        &mut o,
        "chatstack_service_muted",
        "gauge",
        "1 while the service is muted for maintenance.",
        &|s| u8::from(s.muted_until.is_some_and(|t| t > now)).to_string(),
    );

    family(
        &mut o,
        "chatstack_check_up",
        "gauge",
        "1 when the check is up or degraded, 0 when down or unknown.",
    );
    let check_labels =
        |s: &crate::status::ServiceReport, i: usize, c: &crate::status::CheckReport| {
            format!(
                "service=\"{}\",check=\"{}\",type=\"{}\",target=\"{}\"",
                label(&s.name),
                i,
                c.kind,
                label(&c.target)
            )
        };
    for s in &doc.services {
        for (i, c) in s.checks.iter().enumerate() {
            let up = matches!(c.status, CheckStatus::Up | CheckStatus::Degraded);
            let _ = writeln!(o, "chatstack_check_up{{{}}} {}", check_labels(s, i, c), u8::from(up));
        }
    }
    family(&mut o, "chatstack_check_duration_seconds", "gauge", "How long the check's probe took.");
    for s in &doc.services {
        for (i, c) in s.checks.iter().enumerate() {
            if let Some(ms) = c.latency_ms {
                let _ = writeln!(
                    o,
                    "chatstack_check_duration_seconds{{{}}} {:.4}",
                    check_labels(s, i, c),
                    ms / 1000.0
                );
            }
        }
    }
    family(
        &mut o,
        "chatstack_cert_expiry_timestamp_seconds",
        "gauge",
        "Unix time the earliest-expiring certificate the server presented expires (notAfter).",
    );
    for s in &doc.services {
        for (i, c) in s.checks.iter().enumerate() {
            if let Some(t) = c.cert_expires_at {
                let _ = writeln!(
                    o,
                    "chatstack_cert_expiry_timestamp_seconds{{service=\"{}\",check=\"{i}\",target=\"{}\"}} {}",
                    label(&s.name),
                    label(&c.target),
                    t.0.div_euclid(1000)
                );
            }
        }
    }
    family(
        &mut o,
        "chatstack_push_last_ping_timestamp_seconds",
        "gauge",
        "Unix time of a push check's latest ping (chatstack-status ping, or /api/push).",
    );
    for s in &doc.services {
        for (i, c) in s.checks.iter().enumerate() {
            if let Some(p) = &c.last_ping {
                let _ = writeln!(
                    o,
                    "chatstack_push_last_ping_timestamp_seconds{{service=\"{}\",check=\"{i}\"}} {:.3}",
                    label(&s.name),
                    p.at.as_secs_f64()
                );
            }
        }
    }
    owned_families(&mut o, doc);
    system_families(&mut o, doc);
    o
}

/// A derived figure without float noise (`0.491`, not `0.49100000000000005`).
fn tidy(v: f64) -> f64 {
    (v * 1e6).round() / 1e6
}

/// The host's own figures, from the status's `system` block.
fn system_families(o: &mut String, doc: &StatusDoc) {
    let Some(sys) = &doc.system else { return };
    if let Some(pct) = sys.memory.as_ref().and_then(|m| m.used_pct) {
        family(
            o,
            "chatstack_memory_used_ratio",
            "gauge",
            "Memory in use (0-1): MemTotal not MemAvailable.",
        );
        let _ = writeln!(o, "chatstack_memory_used_ratio {}", tidy(pct / 100.0));
    }
    if let (Some(load), Some(cpus)) = (sys.load, sys.cpus.filter(|c| *c > 0)) {
        family(o, "chatstack_load_per_cpu", "gauge", "Load average divided by the online CPUs.");
        for (window, v) in ["1m", "5m", "15m"].iter().zip(load) {
            let _ = writeln!(
                o,
                "chatstack_load_per_cpu{{window=\"{window}\"}} {}",
                v / f64::from(cpus)
            );
        }
    }
    if let Some(t) = sys.booted_at {
        family(o, "chatstack_boot_time_seconds", "gauge", "Unix time the host booted.");
        let _ = writeln!(o, "chatstack_boot_time_seconds {}", t.0.div_euclid(1000));
    }
}

/// The families the kinds that own their keys declare (`probe::KINDS`) and
/// process checks', from their checks' `values`; a family without a sample
/// is left out.
fn owned_families(o: &mut String, doc: &StatusDoc) {
    let kinds = crate::probe::KINDS.iter().map(|d| (d.name, d.metrics));
    // Process checks report `values` too (`probe::process`).
    for (kind, metrics) in kinds.chain([("process", crate::probe::process::METRICS)]) {
        for m in metrics {
            let mut lines: Vec<String> = Vec::new();
            for s in &doc.services {
                for c in s.checks.iter().filter(|c| c.kind == kind) {
                    let Some(v) = c.values.as_ref().and_then(|v| v.get(m.value)) else { continue };
                    let series = format!(
                        "{}{{service=\"{}\",{}=\"{}\"}}",
                        m.name,
                        label(&s.name),
                        m.target_label,
                        label(&c.target)
                    );
                    // One sample per series: a second check of the same target adds nothing.
                    if !lines.iter().any(|l| l.starts_with(&format!("{series} "))) {
                        lines.push(format!("{series} {}", tidy(v * m.scale)));
                    }
                }
            }
            if !lines.is_empty() {
                family(o, m.name, "gauge", m.help);
                for l in lines {
                    let _ = writeln!(o, "{l}");
                }
            }
        }
    }
}

/// With `prom_file` set, writes the metrics for node_exporter's textfile
/// collector (atomically; 0644 so the exporter's user can read it).
pub fn write_prom_file(config: &Config, doc: &StatusDoc) {
    let Some(path) = &config.prom_file else { return };
    let text = render_with(Some(doc), Timestamp::now(), false);
    if let Err(e) = crate::fsutil::write_atomic(
        path,
        text.as_bytes(),
        0o644,
        crate::fsutil::Durability::Snapshot,
    ) {
        crate::warn!("{}: cannot write prom_file: {e}", path.display());
    }
}

/// The units' figures of services with a unit (`resources`); a figure
/// systemd does not give has no sample.
fn service_resources(o: &mut String, doc: &StatusDoc) {
    let res = || doc.services.iter().filter_map(|s| Some((s, s.resources.as_ref()?)));
    if res().any(|(_, r)| r.memory_bytes.is_some()) {
        family(
            o,
            "chatstack_service_memory_bytes",
            "gauge",
            "Memory of the service's unit (its cgroup's MemoryCurrent, from systemd).",
        );
        for (s, r) in res() {
            if let Some(m) = r.memory_bytes {
                let _ = writeln!(
                    o,
                    "chatstack_service_memory_bytes{{service=\"{}\"}} {m}",
                    label(&s.name)
                );
            }
        }
    }
    if res().any(|(_, r)| r.cpu_pct.is_some()) {
        family(
            o,
            "chatstack_service_cpu_ratio",
            "gauge",
            "CPU of the service's unit since the previous cycle, in CPUs (1 = one CPU busy).",
        );
        for (s, r) in res() {
            if let Some(c) = r.cpu_pct {
                let _ = writeln!(
                    o,
                    "chatstack_service_cpu_ratio{{service=\"{}\"}} {:.4}",
                    label(&s.name),
                    c / 100.0
                );
            }
        }
    }
}
