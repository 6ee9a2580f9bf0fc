//! `chatstack-status fleet --prometheus URL`: the state of every host ×
//! service of a fleet, read from the Prometheus that scrapes the agents
//! (docs/FLEET.md), worst first, with since when and why; an agent that is
//! not being scraped (`up` 0) or whose status is old is named as such.
//!
//! Six instant queries through Prometheus's HTTP API (ureq), run side by
//! side, so the answer takes one round trip's time, not six. Runs on main;
//! never touches the local agent's files.

use crate::error::Error;
use crate::time::Timestamp;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Duration;

/// An agent whose last cycle is older than this is stale (as the shipped
/// `ChatstackAgentStale` rule says).
pub const STALE_AFTER_S: f64 = 180.0;
/// How far back a vanished agent's services are still listed.
const LOOKBACK: &str = "1h";
/// Each query's bound: a Prometheus that hangs is an error, not a hang.
const TIMEOUT: Duration = Duration::from_secs(10);

/// One row: a service on a host, or a host whose agent is gone and whose
/// services are unknown.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Row {
    pub host: String,
    pub instance: String,
    /// None: no service is known for the host (an agent never scraped).
    pub service: Option<String>,
    pub critical: Option<bool>,
    /// `up`, `degraded`, `down`, or the agent's state when it is not
    /// answering: `absent` (not scraped), `stale` (its status is old).
    pub status: String,
    pub since: Option<Timestamp>,
    pub reason: Option<String>,
}

/// What `fleet` prints as JSON.
#[derive(Debug, Serialize)]
pub struct FleetDoc {
    pub prometheus: String,
    pub generated_at: Timestamp,
    pub rows: Vec<Row>,
}

/// Worst first: down (critical before not), absent, stale, degraded, up.
fn rank(r: &Row) -> u8 {
    match (r.status.as_str(), r.critical) {
        ("down", Some(true)) => 0,
        ("down", _) => 1,
        ("absent", _) => 2,
        ("stale", _) => 3,
        ("degraded", _) => 4,
        ("up", _) => 5,
        _ => 6,
    }
}

/// Nagios-style: 2 when a critical service is down or an agent is absent,
/// 1 when anything else is not up, 0 when all is up.
pub fn exit_code(rows: &[Row]) -> u8 {
    rows.iter()
        .map(|r| match rank(r) {
            0 | 2 => 2,
            5 => 0,
            _ => 1,
        })
        .max()
        .unwrap_or(0)
}

/// One instant query's result vector.
fn query(agent: &ureq::Agent, base: &str, promql: &str) -> Result<Vec<Value>, String> {
    let url = format!("{}/api/v1/query", base.trim_end_matches('/'));
    let mut resp =
        agent.get(&url).query("query", promql).call().map_err(|e| format!("{url}: {e}"))?;
    let status = resp.status().as_u16();
    let body = resp
        .body_mut()
        .with_config()
        .limit(64 << 20)
        .read_to_string()
        .map_err(|e| format!("{url}: reading the answer: {e}"))?;
    let v: Value = serde_json::from_str(&body).map_err(|_| {
        format!(
            "{url}: HTTP {status}, not a Prometheus answer: {}",
            body.chars().take(200).collect::<String>()
        )
    })?;
    if v["status"] != "success" {
        return Err(format!(
            "{url}: query {promql:?} failed: HTTP {status}: {}",
            v["error"].as_str().unwrap_or("no error text")
        ));
    }
    Ok(v["data"]["result"].as_array().cloned().unwrap_or_default())
}

fn label<'a>(s: &'a Value, name: &str) -> &'a str {
    s["metric"][name].as_str().unwrap_or("")
}

fn value(s: &Value) -> Option<f64> {
    s["value"][1].as_str()?.parse().ok()
}

/// Where a series comes from: its target (job, instance).
type Target = (String, String);

fn target(s: &Value) -> Target {
    (label(s, "job").to_string(), label(s, "instance").to_string())
}

const QUERIES: [&str; 6] = [
    // Every service seen within the lookback (a dead agent's too).
    "last_over_time(chatstack_service_up[1h])",
    "chatstack_service_state == 1",
    "chatstack_service_since_timestamp_seconds",
    "chatstack_check_reason_info",
    r#"up{job="chatstack-status"}"#,
    // The agent's last cycle, also after it vanished.
    "last_over_time(chatstack_last_cycle_timestamp_seconds[1h])",
];

/// The fleet's rows from the Prometheus at `base`, worst first.
pub fn collect(base: &str) -> Result<Vec<Row>, String> {
    debug_assert!(QUERIES[0].contains(LOOKBACK));
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(TIMEOUT))
        .http_status_as_error(false)
        .build()
        .into();
    let results: Vec<Result<Vec<Value>, String>> = std::thread::scope(|s| {
        let handles: Vec<_> = QUERIES.iter().map(|q| s.spawn(|| query(&agent, base, q))).collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err("query thread failed".to_string())))
            .collect()
    });
    let mut results = results.into_iter();
    let mut next = || results.next().unwrap_or_else(|| Ok(Vec::new()));
    let (known, state, since, reasons, up, last_cycle) =
        (next()?, next()?, next()?, next()?, next()?, next()?);
    Ok(assemble(&known, &state, &since, &reasons, &up, &last_cycle, Timestamp::now()))
}

/// The rows from the queries' results (pure: the tests feed it).
fn assemble(
    known: &[Value],
    state: &[Value],
    since: &[Value],
    reasons: &[Value],
    up: &[Value],
    last_cycle: &[Value],
    now: Timestamp,
) -> Vec<Row> {
    let key = |s: &Value| (target(s), label(s, "service").to_string());
    let states: BTreeMap<_, String> =
        state.iter().map(|s| (key(s), label(s, "state").to_string())).collect();
    let sinces: BTreeMap<_, f64> = since.iter().filter_map(|s| Some((key(s), value(s)?))).collect();
    // The first failing check's reason (by check index).
    let mut why: BTreeMap<_, (u64, String)> = BTreeMap::new();
    for s in reasons {
        let i = label(s, "check").parse().unwrap_or(u64::MAX);
        let text = format!("{} {}", label(s, "type"), label(s, "reason"));
        let e = why.entry(key(s)).or_insert((i, text.clone()));
        if i < e.0 {
            *e = (i, text);
        }
    }
    let ups: BTreeMap<Target, (f64, String)> = up
        .iter()
        .filter_map(|s| Some((target(s), (value(s)?, label(s, "host").to_string()))))
        .collect();
    let cycles: BTreeMap<Target, f64> =
        last_cycle.iter().filter_map(|s| Some((target(s), value(s)?))).collect();
    let now_s = now.as_secs_f64();
    let ts = |secs: f64| Timestamp((secs * 1000.0).round() as i64);
    // The agent's own state, when it is not answering.
    let agent_state = |t: &Target| -> Option<(String, Option<Timestamp>, String)> {
        let last = cycles.get(t).copied();
        match ups.get(t) {
            Some((v, _)) if *v == 0.0 => Some((
                "absent".to_string(),
                last.map(ts),
                "agent not answering scrapes (up 0)".to_string(),
            )),
            None if t.0 == "chatstack-status" => Some((
                "absent".to_string(),
                last.map(ts),
                "agent no longer scraped (no target)".to_string(),
            )),
            _ => match last {
                Some(l) if now_s - l > STALE_AFTER_S => Some((
                    "stale".to_string(),
                    Some(ts(l)),
                    format!("last cycle {:.0} s ago", now_s - l),
                )),
                _ => None,
            },
        }
    };
    let mut rows = Vec::new();
    let mut hosts_seen = std::collections::BTreeSet::new();
    for s in known {
        let (t, service) = key(s);
        hosts_seen.insert(t.clone());
        let host = match label(s, "host") {
            "" => t.1.clone(),
            h => h.to_string(),
        };
        let critical = Some(label(s, "critical") == "true");
        let row = match agent_state(&t) {
            Some((status, since, reason)) => Row {
                host,
                instance: t.1.clone(),
                service: Some(service),
                critical,
                status,
                since,
                reason: Some(reason),
            },
            None => {
                let k = (t.clone(), service.clone());
                let status = states.get(&k).cloned().unwrap_or_else(|| "unknown".to_string());
                let reason = (status != "up").then(|| why.get(&k).map(|w| w.1.clone())).flatten();
                Row {
                    host,
                    instance: t.1.clone(),
                    service: Some(service),
                    critical,
                    status,
                    since: sinces.get(&k).copied().map(ts),
                    reason,
                }
            }
        };
        rows.push(row);
    }
    // Targets with no service seen at all: an agent down since before the
    // lookback, or never scraped.
    for (t, (v, host)) in &ups {
        if hosts_seen.contains(t) {
            continue;
        }
        let host = if host.is_empty() { t.1.clone() } else { host.clone() };
        let (status, reason) = if *v == 0.0 {
            ("absent", "agent not answering scrapes (up 0)".to_string())
        } else {
            ("unknown", "scraped, but no chatstack_service_up: not an agent?".to_string())
        };
        rows.push(Row {
            host,
            instance: t.1.clone(),
            service: None,
            critical: None,
            status: status.to_string(),
            since: cycles.get(t).copied().map(ts),
            reason: Some(reason),
        });
    }
    rows.sort_by(|a, b| {
        (rank(a), &a.host, &a.service, &a.instance).cmp(&(
            rank(b),
            &b.host,
            &b.service,
            &b.instance,
        ))
    });
    rows
}

/// "3m ago", "2h ago", "4d ago".
fn ago(since: Timestamp, now: Timestamp) -> String {
    let s = (now.0 - since.0).max(0) / 1000;
    match s {
        0..60 => format!("{s}s ago"),
        60..3600 => format!("{}m ago", s / 60),
        3600..86_400 => format!("{}h{:02}m ago", s / 3600, s % 3600 / 60),
        _ => format!("{}d{:02}h ago", s / 86_400, s % 86_400 / 3600),
    }
}

/// The table: one row per host × service, worst first, and a summary line.
pub fn text(rows: &[Row], now: Timestamp) -> String {
    let cells: Vec<[String; 5]> = rows
        .iter()
        .map(|r| {
            let service = match (&r.service, r.critical) {
                (Some(s), Some(false)) => format!("{s} (non-critical)"),
                (Some(s), _) => s.clone(),
                (None, _) => "-".to_string(),
            };
            let since = r.since.map_or("-".to_string(), |t| format!("{t} ({})", ago(t, now)));
            [r.host.clone(), service, r.status.clone(), since, r.reason.clone().unwrap_or_default()]
        })
        .collect();
    let head = ["HOST", "SERVICE", "STATUS", "SINCE", "REASON"];
    let mut width = head.map(str::len);
    for c in &cells {
        for (w, cell) in width.iter_mut().zip(c) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |c: &[String]| {
        let mut l = String::new();
        for (i, cell) in c.iter().enumerate() {
            if i + 1 == c.len() {
                l.push_str(cell);
            } else {
                let _ = write!(l, "{cell:<w$}  ", w = width[i]);
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(&head.map(String::from));
    for c in &cells {
        line(c);
    }
    let hosts: std::collections::BTreeSet<&str> = rows.iter().map(|r| r.host.as_str()).collect();
    let count = |s: &str| rows.iter().filter(|r| r.status == s).count();
    let _ = writeln!(
        out,
        "{} hosts, {} rows: {} down, {} absent, {} stale, {} degraded, {} up",
        hosts.len(),
        rows.len(),
        count("down"),
        count("absent"),
        count("stale"),
        count("degraded"),
        count("up")
    );
    out
}

/// `fleet`: prints the table (or JSON) and returns the exit code.
pub fn run(prometheus: &str, json: bool) -> Result<u8, Error> {
    let rows = collect(prometheus).map_err(|e| Error::Other(format!("prometheus: {e}")))?;
    let now = Timestamp::now();
    let out = if json {
        let doc = FleetDoc { prometheus: prometheus.to_string(), generated_at: now, rows };
        let text = serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n";
        print(&text);
        return Ok(exit_code(&doc.rows));
    } else {
        text(&rows, now)
    };
    print(&out);
    Ok(exit_code(&rows))
}

fn print(s: &str) {
    use std::io::Write as _;
    let _ = std::io::stdout().lock().write_all(s.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample(labels: Value, v: f64) -> Value {
        json!({"metric": labels, "value": [0, v.to_string()]})
    }

    #[test]
    fn rows_are_worst_first_and_a_dead_agent_is_named_absent() {
        let now = Timestamp(10_000_000);
        let m = |inst: &str, host: &str, svc: &str, crit: &str| json!({"job": "chatstack-status", "instance": inst, "host": host, "service": svc, "critical": crit});
        let known = [
            sample(m("a:1", "a", "Web", "true"), 1.0),
            sample(m("a:1", "a", "Jobs", "false"), 0.0),
            sample(m("b:1", "b", "Web", "true"), 0.0),
            sample(m("c:1", "c", "Redis", "true"), 1.0),
        ];
        let st = |inst: &str, svc: &str, state: &str| {
            sample(
                json!({"job": "chatstack-status", "instance": inst, "service": svc, "state": state}),
                1.0,
            )
        };
        let state = [st("a:1", "Web", "up"), st("a:1", "Jobs", "down"), st("b:1", "Web", "down")];
        let since = [sample(
            json!({"job": "chatstack-status", "instance": "b:1", "service": "Web"}),
            9_000.0,
        )];
        let reasons = [
            sample(
                json!({"job": "chatstack-status", "instance": "b:1", "service": "Web", "check": "1", "type": "tcp", "reason": "refused"}),
                1.0,
            ),
            sample(
                json!({"job": "chatstack-status", "instance": "b:1", "service": "Web", "check": "0", "type": "http", "reason": "http_status"}),
                1.0,
            ),
        ];
        let up = |inst: &str, host: &str, v: f64| {
            sample(json!({"job": "chatstack-status", "instance": inst, "host": host}), v)
        };
        let ups =
            [up("a:1", "a", 1.0), up("b:1", "b", 1.0), up("c:1", "c", 0.0), up("d:1", "d", 0.0)];
        let cycles = [
            sample(json!({"job": "chatstack-status", "instance": "a:1"}), 9_999.0),
            sample(json!({"job": "chatstack-status", "instance": "c:1"}), 9_500.0),
        ];
        let rows = assemble(&known, &state, &since, &reasons, &ups, &cycles, now);
        let got: Vec<(&str, Option<&str>, &str)> = rows
            .iter()
            .map(|r| (r.host.as_str(), r.service.as_deref(), r.status.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("b", Some("Web"), "down"),
                ("a", Some("Jobs"), "down"),
                ("c", Some("Redis"), "absent"),
                ("d", None, "absent"),
                ("a", Some("Web"), "up"),
            ]
        );
        assert_eq!(rows[0].reason.as_deref(), Some("http http_status"), "the first check's reason");
        assert_eq!(rows[0].since, Some(Timestamp(9_000_000)));
        assert_eq!(rows[2].since, Some(Timestamp(9_500_000)), "absent since its last cycle");
        assert_eq!(rows[4].reason, None);
        assert_eq!(exit_code(&rows), 2);
        let table = text(&rows, now);
        assert!(table.starts_with("HOST  SERVICE"), "{table}");
        assert!(table.contains("Jobs (non-critical)"), "{table}");
        assert!(
            table.ends_with("4 hosts, 5 rows: 2 down, 2 absent, 0 stale, 0 degraded, 1 up\n"),
            "{table}"
        );
    }

    #[test]
    fn an_old_last_cycle_is_stale() {
        let now = Timestamp(1_000_000);
        let l = json!({"job": "chatstack-status", "instance": "a:1", "host": "a", "service": "Web", "critical": "true"});
        let rows = assemble(
            &[sample(l.clone(), 1.0)],
            &[sample(
                json!({"job": "chatstack-status", "instance": "a:1", "service": "Web", "state": "up"}),
                1.0,
            )],
            &[],
            &[],
            &[sample(json!({"job": "chatstack-status", "instance": "a:1", "host": "a"}), 1.0)],
            &[sample(
                json!({"job": "chatstack-status", "instance": "a:1"}),
                1000.0 - STALE_AFTER_S - 1.0,
            )],
            now,
        );
        assert_eq!(rows[0].status, "stale");
        assert_eq!(exit_code(&rows), 1);
    }
}
