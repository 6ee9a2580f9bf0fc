//! Prometheus Alertmanager (`POST /api/v2/alerts`): unlike the other kinds,
//! level-triggered. Each cycle (`check` runs and the daemon alike), `sync`
//! compares what should be firing — a service whose alerted state is down
//! (`ChatstackServiceDown`), or whose healing is suspended
//! (`ChatstackHealSuspended`); never while muted, and a dependent folded
//! into its dependency's alert never fires on its own — with what this
//! notifier has firing (in the state file), and raises deliveries: new ones
//! now, firing ones again every `resend`, ended ones once more with
//! `endsAt`. Every URL (each member of an HA pair) gets every alert. The
//! labels are exactly `{alertname, service, host, severity}` plus the
//! configured ones, the same as the shipped Prometheus rules produce, so
//! Alertmanager folds both paths into one alert.

use super::events::{Event, problems, truncate};
use super::http::{Attempt, post, read_secret};
use super::{Delivery, wants};
use crate::config::{Alertmanager, Config, EventName, Notifier};
use crate::state::{FiringAlert, Health, StateFile};
use crate::status::{ServiceReport, StatusDoc};
use crate::time::Timestamp;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;

pub const SERVICE_DOWN: &str = "ChatstackServiceDown";
pub const HEAL_SUSPENDED: &str = "ChatstackHealSuspended";

/// What should be firing for one service.
struct Want<'a> {
    alertname: &'static str,
    report: &'a ServiceReport,
    starts_at: Timestamp,
}

/// The deliveries that bring this notifier's Alertmanagers up to date with
/// the cycle in `doc`, updating the firing memory in `state`.
pub fn sync(
    config: &Config,
    n: &Notifier,
    am: &Alertmanager,
    state: &mut StateFile,
    doc: &StatusDoc,
) -> Vec<Delivery> {
    let at = doc.generated_at;
    let mut want: BTreeMap<String, Want<'_>> = BTreeMap::new();
    for r in &doc.services {
        let Some(st) = state.services.get(&r.name) else { continue };
        if st.is_muted(at) {
            continue;
        }
        let takes = |event| wants(n, &probe_event(r, event, &doc.host, at));
        if st.alerted == Some(Health::Down) && takes(EventName::Down) {
            let starts_at = st.alerted_since.unwrap_or(at);
            want.insert(
                key(SERVICE_DOWN, &r.name),
                Want { alertname: SERVICE_DOWN, report: r, starts_at },
            );
        }
        if st.heal_suspended && takes(EventName::HealSuspended) {
            want.insert(
                key(HEAL_SUSPENDED, &r.name),
                Want { alertname: HEAL_SUSPENDED, report: r, starts_at: at },
            );
        }
    }
    let probed = |service: &str| doc.services.iter().any(|r| r.name == service);
    let known = |service: &str| config.service(service).is_some();
    let memory = state.alertmanager.entry(n.name.clone()).or_default();
    let mut out = Vec::new();
    for (k, w) in &want {
        let due = match memory.get(k) {
            None => true,
            Some(f) => at.since(f.last_sent) >= am.resend,
        };
        if !due {
            continue;
        }
        let starts_at = memory.get(k).map_or(w.starts_at, |f| f.starts_at);
        memory.insert(k.clone(), FiringAlert { starts_at, last_sent: at });
        out.extend(deliveries(config, n, am, w.alertname, w.report, starts_at, None, at));
    }
    // Ended: probed this cycle and no longer wanted, or gone from the config.
    let ended: Vec<String> = memory
        .keys()
        .filter(|k| !want.contains_key(*k))
        .filter(|k| {
            let service = k.split_once('|').map_or("", |(_, s)| s);
            probed(service) || !known(service)
        })
        .cloned()
        .collect();
    for k in ended {
        let Some(f) = memory.remove(&k) else { continue };
        let (alertname, service) = k.split_once('|').unwrap_or(("", ""));
        let alertname = if alertname == HEAL_SUSPENDED { HEAL_SUSPENDED } else { SERVICE_DOWN };
        let stand_in;
        let report = match doc.services.iter().find(|r| r.name == service) {
            Some(r) => r,
            None => {
                stand_in = gone(service);
                &stand_in
            }
        };
        out.extend(deliveries(config, n, am, alertname, report, f.starts_at, Some(at), at));
    }
    out
}

fn key(alertname: &str, service: &str) -> String {
    format!("{alertname}|{service}")
}

/// The alert key of an Alertmanager delivery ("alertname|service"), to let
/// a newer post of the same alert replace an older one still waiting.
pub fn alert_key(d: &Delivery) -> Option<String> {
    let labels = &d.alert.as_ref()?["labels"];
    Some(key(labels["alertname"].as_str()?, labels["service"].as_str()?))
}

/// A service removed from the config: its alert still ends properly.
fn gone(service: &str) -> ServiceReport {
    ServiceReport {
        name: service.to_string(),
        status: Health::Up,
        critical: false,
        unit: None,
        since: None,
        consecutive_failures: 0,
        heal_suspended: false,
        muted_until: None,
        mute_reason: None,
        restarts: Vec::new(),
        restarts_total: 0,
        checks: Vec::new(),
        incident: None,
        flapping: false,
        history: Vec::new(),
        uptime: None,
        maintenance: None,
        next_maintenance: None,
        resources: None,
    }
}

/// An event standing for an alert, for the notifier filters and the logs.
fn probe_event(r: &ServiceReport, event: EventName, host: &str, at: Timestamp) -> Event {
    Event {
        id: String::new(),
        event,
        service: r.name.clone(),
        status: r.status,
        previous: None,
        since: r.since,
        at,
        host: host.to_string(),
        critical: r.critical,
        detail: String::new(),
        text: String::new(),
        down_for_s: None,
        also_affected: Vec::new(),
        previous_boot_last_cycle_at: None,
        restart_ok: None,
        checks: Vec::new(),
        diagnosis: None,
    }
}

/// The most text the `diagnosis` annotation carries.
pub const MAX_DIAGNOSIS: usize = 1024;

/// Adds the `diagnosis` annotation (plain text, at most `MAX_DIAGNOSIS`
/// bytes) to a `service_down` alert.
pub fn annotate(alert: &mut serde_json::Value, d: &crate::diagnosis::Diagnosis) {
    if alert["labels"]["alertname"] != SERVICE_DOWN {
        return;
    }
    let text = super::diagnosis_text::cut(&super::diagnosis_text::plain_text(d), MAX_DIAGNOSIS);
    if let Some(a) = alert.get_mut("annotations").and_then(|a| a.as_object_mut()) {
        a.insert("diagnosis".into(), text.into());
    }
}

/// One delivery per URL of one alert, firing (`ends_at` None) or ended.
#[allow(clippy::too_many_arguments)]
fn deliveries(
    config: &Config,
    n: &Notifier,
    am: &Alertmanager,
    alertname: &'static str,
    r: &ServiceReport,
    starts_at: Timestamp,
    ends_at: Option<Timestamp>,
    at: Timestamp,
) -> Vec<Delivery> {
    let host = &config.host;
    let (summary, detail) = match alertname {
        SERVICE_DOWN => (format!("{} is down on {host}", r.name), problems(&r.checks)),
        _ => (
            format!("healing of {} is suspended on {host}", r.unit.as_deref().unwrap_or(&r.name)),
            format!(
                "{} restart(s) within the heal window already; waiting for it to stay up, or for `chatstack-status unmute {}`",
                r.restarts.len(),
                r.name
            ),
        ),
    };
    let mut labels = serde_json::Map::new();
    labels.insert("alertname".into(), alertname.into());
    labels.insert("service".into(), r.name.clone().into());
    labels.insert("host".into(), host.clone().into());
    labels.insert("severity".into(), if r.critical { "critical" } else { "warning" }.into());
    for (k, v) in &am.labels {
        labels.insert(k.clone(), v.clone().into());
    }
    let mut alert = json!({
        "labels": labels,
        "annotations": {"summary": summary, "detail": truncate(&detail, 1000)},
        "startsAt": starts_at.to_string(),
    });
    if let Some(end) = ends_at {
        alert["endsAt"] = end.to_string().into();
    }
    if let Some(u) = &config.public_url {
        alert["generatorURL"] = u.clone().into();
    }
    if let Some(d) = r.incident.as_ref().and_then(|i| i.diagnosis.as_ref()) {
        annotate(&mut alert, d);
    }
    let state = if ends_at.is_some() { "resolved" } else { "firing" };
    let event = Event {
        id: format!("{host}/{}/{alertname}/{state}/{}", r.name, at.0),
        event: match (alertname, ends_at) {
            (_, Some(_)) => EventName::Up,
            (SERVICE_DOWN, None) => EventName::Down,
            _ => EventName::HealSuspended,
        },
        detail: truncate(&detail, 400),
        text: format!("{summary} ({alertname} {state})"),
        ..probe_event(r, EventName::Down, host, at)
    };
    am.urls
        .iter()
        .map(|url| {
            let mut d = Delivery {
                id: String::new(),
                notifier: n.name.clone(),
                to: Some(url.clone()),
                event: event.clone(),
                alert: Some(alert.clone()),
                attempts: 0,
                last_error: None,
                next_attempt: None,
            };
            d.id = d.key();
            d
        })
        .collect()
}

/// Posts one alert to one Alertmanager (`url` is its base address).
pub fn send(
    am: &Alertmanager,
    url: &str,
    alert: &Value,
    timeout: Duration,
    secrets: &mut Vec<String>,
) -> Result<Attempt, Attempt> {
    let mut headers = vec![("Content-Type".to_string(), "application/json".to_string())];
    if let Some(file) = &am.bearer_token_file {
        let token = read_secret(file, "bearer_token_file")?;
        headers.push(("Authorization".into(), format!("Bearer {token}")));
        secrets.push(token);
    } else if let Some((user, file)) = &am.basic_auth {
        let password = read_secret(file, "basic_auth password_file")?;
        use base64::Engine as _;
        let creds = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        headers.push(("Authorization".into(), format!("Basic {creds}")));
        secrets.push(password);
        secrets.push(creds);
    }
    let body = serde_json::to_vec(&[alert])
        .map_err(|e| Attempt::Fail(format!("cannot encode the alert: {e}")))?;
    Ok(post(&format!("{url}/api/v2/alerts"), &headers, body, timeout))
}

/// `notify-test`: an alert that starts and ends at once.
pub fn test_alert(config: &Config, am: &Alertmanager, now: Timestamp) -> Value {
    let mut labels = serde_json::Map::new();
    labels.insert("alertname".into(), "ChatstackTest".into());
    labels.insert("service".into(), "chatstack-status".into());
    labels.insert("host".into(), config.host.clone().into());
    labels.insert("severity".into(), "warning".into());
    for (k, v) in &am.labels {
        labels.insert(k.clone(), v.clone().into());
    }
    json!({
        "labels": labels,
        "annotations": {"summary": format!("test alert from chatstack-status on {}", config.host)},
        "startsAt": now.to_string(),
        "endsAt": now.to_string(),
    })
}

/// The secrets in its config (files' contents are added by `send`).
pub fn secrets(am: &Alertmanager) -> Vec<String> {
    // URLs may carry credentials in their userinfo.
    am.urls.clone()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::CheckReport;
    use std::path::Path;

    fn config(extra: &str) -> Config {
        crate::config::parse(
            &format!(
                "host: h1\npublic_url: https://status.example/\nnotify:\n  - {{type: alertmanager, name: am, urls: ['http://127.0.0.1:1', 'http://127.0.0.1:2/'], labels: {{team: chat}}, resend: 1m{extra}}}\nservices:\n  - name: web\n    port: 1\n  - name: db\n    port: 2\n    critical: false\n"
            ),
            Path::new("t.yml"),
        )
        .expect("config")
    }

    fn report(name: &str, status: Health, critical: bool) -> ServiceReport {
        ServiceReport {
            checks: vec![CheckReport {
                kind: "tcp".into(),
                target: "127.0.0.1:1".into(),
                status: if status == Health::Down {
                    crate::probe::CheckStatus::Down
                } else {
                    crate::probe::CheckStatus::Up
                },
                reason: None,
                latency_ms: None,
                detail: "connection refused".into(),
                cert_expires_at: None,
                cert_warn_s: None,
                cert_crit_s: None,
                last_ping: None,
                ping_due_by: None,
                values: None,
                thresholds: None,
            }],
            critical,
            status,
            ..gone(name)
        }
    }

    /// One cycle at `secs`: services' alerted states set as the event
    /// machine would, then `sync`; returns "alertname service url firing|ended".
    fn cycle(
        c: &Config,
        state: &mut StateFile,
        secs: i64,
        down: &[&str],
        suspended: &[&str],
    ) -> Vec<String> {
        let at = Timestamp::from_secs(secs);
        let mut services = Vec::new();
        for (name, critical) in [("web", true), ("db", false)] {
            let st = state.services.entry(name.into()).or_default();
            let is_down = down.contains(&name);
            if is_down && st.alerted != Some(Health::Down) {
                st.alerted_since = Some(at);
            }
            st.alerted = Some(if is_down { Health::Down } else { Health::Up });
            st.heal_suspended = suspended.contains(&name);
            services.push(report(name, if is_down { Health::Down } else { Health::Up }, critical));
        }
        let doc = StatusDoc {
            schema: 1,
            generated_at: at,
            host: "h1".into(),
            overall: Health::Up,
            duration_ms: 1.0,
            flapping: false,
            services,
            history: None,
            system: None,
        };
        let n = &c.notify[0];
        let crate::config::NotifierKind::Alertmanager(am) = &n.kind else { panic!("am") };
        sync(c, n, am, state, &doc)
            .iter()
            .map(|d| {
                let a = d.alert.as_ref().expect("alert");
                format!(
                    "{} {} {} {}",
                    a["labels"]["alertname"].as_str().unwrap_or("?"),
                    a["labels"]["service"].as_str().unwrap_or("?"),
                    d.to.as_deref().unwrap_or("?"),
                    if a.get("endsAt").is_some() { "ended" } else { "firing" }
                )
            })
            .collect()
    }

    #[test]
    fn fires_to_every_member_resends_while_firing_and_ends_once() {
        let c = config("");
        let mut st = StateFile::default();
        let (a, b) = ("http://127.0.0.1:1", "http://127.0.0.1:2");
        assert!(cycle(&c, &mut st, 1000, &[], &[]).is_empty(), "nothing firing");
        assert_eq!(
            cycle(&c, &mut st, 1030, &["web"], &[]),
            [
                format!("ChatstackServiceDown web {a} firing"),
                format!("ChatstackServiceDown web {b} firing")
            ]
        );
        assert!(cycle(&c, &mut st, 1060, &["web"], &[]).is_empty(), "within resend");
        assert_eq!(cycle(&c, &mut st, 1090, &["web"], &[]).len(), 2, "resent after 1m");
        assert_eq!(
            cycle(&c, &mut st, 1120, &[], &[]),
            [
                format!("ChatstackServiceDown web {a} ended"),
                format!("ChatstackServiceDown web {b} ended")
            ]
        );
        assert!(cycle(&c, &mut st, 1150, &[], &[]).is_empty(), "ended once");
    }

    #[test]
    fn labels_annotations_and_times_are_alertmanagers() {
        let c = config("");
        let mut st = StateFile::default();
        cycle(&c, &mut st, 1000, &[], &[]);
        let at = Timestamp::from_secs(1030);
        let doc = StatusDoc {
            schema: 1,
            generated_at: at,
            host: "h1".into(),
            overall: Health::Degraded,
            duration_ms: 1.0,
            flapping: false,
            services: vec![report("db", Health::Down, false)],
            history: None,
            system: None,
        };
        let s = st.services.get_mut("db").expect("db");
        s.alerted = Some(Health::Down);
        s.alerted_since = Some(Timestamp::from_secs(1010));
        let n = &c.notify[0];
        let crate::config::NotifierKind::Alertmanager(am) = &n.kind else { panic!("am") };
        let d = sync(&c, n, am, &mut st, &doc).remove(0);
        let a = d.alert.expect("alert");
        assert_eq!(
            a["labels"],
            json!({"alertname": "ChatstackServiceDown", "service": "db", "host": "h1", "severity": "warning", "team": "chat"})
        );
        assert_eq!(a["startsAt"], Timestamp::from_secs(1010).to_string());
        assert_eq!(a["generatorURL"], "https://status.example/");
        assert!(a["annotations"]["summary"].as_str().unwrap().contains("db is down on h1"));
        assert!(a["annotations"]["detail"].as_str().unwrap().contains("connection refused"));
        assert!(a.get("endsAt").is_none());
    }

    #[test]
    fn heal_suspension_mutes_and_filters() {
        let c = config("");
        let mut st = StateFile::default();
        cycle(&c, &mut st, 1000, &[], &[]);
        let got = cycle(&c, &mut st, 1030, &["web"], &["web"]);
        assert!(got.iter().any(|g| g.starts_with("ChatstackHealSuspended web")), "{got:?}");
        // Muted: what fires ends, nothing new fires.
        st.services.get_mut("web").expect("web").muted_until = Some(Timestamp::from_secs(99_999));
        let got = cycle(&c, &mut st, 1060, &["web"], &["web"]);
        assert_eq!(got.len(), 4, "{got:?}");
        assert!(got.iter().all(|g| g.ends_with("ended")), "{got:?}");
        // A notifier for `db` only, and only down events.
        let c = config(", services: [db], events: [down]");
        let mut st = StateFile::default();
        cycle(&c, &mut st, 1000, &[], &[]);
        assert!(cycle(&c, &mut st, 1030, &["web"], &["web", "db"]).is_empty());
        assert_eq!(cycle(&c, &mut st, 1060, &["db"], &["db"]).len(), 2);
    }

    #[test]
    fn config_refuses_the_products_own_labels_and_a_missing_url() {
        let bad = |n: &str| {
            crate::config::parse(
                &format!("notify:\n  - {n}\nservices:\n  - name: a\n    port: 1\n"),
                Path::new("t.yml"),
            )
            .expect_err("refused")
            .join("\n")
        };
        assert!(
            bad("{type: alertmanager, urls: ['http://a:9093'], labels: {host: x}}")
                .contains("set by chatstack-status")
        );
        assert!(bad("{type: alertmanager}").contains("needs `urls`"));
        assert!(
            bad("{type: alertmanager, urls: ['http://a:9093'], to: ['+1']}")
                .contains("`to` is not valid")
        );
        assert!(
            bad("{type: webhook, url: 'http://a/', resend: 1m}").contains("`resend` is not valid")
        );
    }
}
