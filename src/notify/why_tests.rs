//! The diagnosis in every alert format: Slack, Twilio, Alertmanager, and
//! the outbox patched after the capture.

use super::*;
use crate::diagnosis::{Diagnosis, SystemDiag, UnitDiag};

fn diagnosis() -> Diagnosis {
    Diagnosis {
        captured_at: Timestamp(0),
        unit: Some(UnitDiag {
            name: "redis-server.service".into(),
            active_state: "failed".into(),
            sub_state: "failed".into(),
            result: "oom-kill".into(),
            exit_code: None,
            exit_signal: Some("KILL".into()),
            n_restarts: Some(0),
            memory_bytes: None,
        }),
        unit_error: None,
        oom_kill: true,
        journal: Some((1..=8).map(|i| format!("line {i} <b>&")).collect()),
        journal_error: None,
        http: None,
        system: SystemDiag::default(),
        top_memory: Vec::new(),
    }
}

fn down_event() -> Event {
    Event {
        id: "x".into(),
        event: EventName::Down,
        service: "AI-Memory".into(),
        status: Health::Down,
        previous: Some(Health::Up),
        since: None,
        at: Timestamp(5),
        host: "h".into(),
        critical: true,
        detail: "tcp 127.0.0.1:6379: connection refused".into(),
        text: "AI-Memory is DOWN on h: tcp 127.0.0.1:6379: connection refused.".into(),
        down_for_s: None,
        also_affected: Vec::new(),
        restart_ok: None,
        checks: Vec::new(),
        diagnosis: Some(diagnosis()),
    }
}

#[test]
fn slack_shows_the_result_and_five_journal_lines_escaped() {
    let t = slack::slack_text(&down_event());
    assert!(t.contains("result oom-kill, killed by SIGKILL"), "{t}");
    assert!(t.contains("```line 4 &lt;b&gt;&amp;\nline 5"), "{t}");
    assert!(t.contains("line 8 &lt;b&gt;&amp;```"), "{t}");
    assert!(!t.contains("line 3"), "only five lines: {t}");
    let mut plain = down_event();
    plain.diagnosis = None;
    assert!(!slack::slack_text(&plain).contains("```"));
}

#[test]
fn one_sms_names_the_result() {
    let t = twilio::sms_text(&down_event(), "sms");
    assert!(t.starts_with("AI-Memory DOWN on h: oom-kill, SIGKILL"), "{t}");
    assert!(t.chars().count() <= twilio::SMS_MAX);
}

#[test]
fn the_alertmanager_annotation_is_plain_text_within_1_kib() {
    let mut d = diagnosis();
    d.journal = Some((0..200).map(|i| format!("{i} {}", "x".repeat(400))).collect());
    let mut alert = serde_json::json!({
        "labels": {"alertname": alertmanager::SERVICE_DOWN, "service": "AI-Memory"},
        "annotations": {"summary": "s"}
    });
    alertmanager::annotate(&mut alert, &d);
    let text = alert["annotations"]["diagnosis"].as_str().unwrap();
    assert!(text.len() <= 1024, "{}", text.len());
    assert!(text.contains("result oom-kill"), "{text}");
    let mut other =
        serde_json::json!({"labels": {"alertname": "heal_suspended"}, "annotations": {}});
    alertmanager::annotate(&mut other, &d);
    assert!(other["annotations"].get("diagnosis").is_none());
}

#[test]
fn the_outbox_gets_the_diagnosis_of_this_cycle_only() {
    let mut e = down_event();
    e.diagnosis = None;
    let mut old = e.clone();
    old.at = Timestamp(1);
    let mut state = StateFile::default();
    for ev in [e, old] {
        let d = Delivery {
            id: String::new(),
            notifier: "hook".into(),
            to: None,
            event: ev,
            alert: None,
            attempts: 0,
            last_error: None,
            next_attempt: None,
        };
        state.undelivered.push(serde_json::to_value(d).unwrap());
    }
    let doc: StatusDoc = serde_json::from_value(serde_json::json!({
        "schema": 1, "generated_at": "1970-01-01T00:00:00.005Z", "host": "h", "overall": "down",
        "duration_ms": 1.0,
        "services": [{"name": "AI-Memory", "status": "down", "critical": true, "unit": null,
            "since": null, "consecutive_failures": 1, "heal_suspended": false, "muted_until": null,
            "restarts": [], "checks": [], "history": [],
            "incident": {"id": 1, "started_at": "1970-01-01T00:00:00.005Z",
                "diagnosis": serde_json::to_value(diagnosis()).unwrap()}}]
    }))
    .unwrap();
    attach_diagnoses(&mut state, &doc);
    let got: Vec<bool> = state
        .undelivered
        .iter()
        .map(|v| serde_json::from_value::<Delivery>(v.clone()).unwrap().event.diagnosis.is_some())
        .collect();
    assert_eq!(got, [true, false]);
}
