//! Routing (filters) and the undelivered list.

use super::*;
use std::path::Path;

fn config(notify: &str) -> Config {
    crate::config::parse(
        &format!(
            "notify:\n{notify}services:\n  - name: a\n    port: 1\n  - name: b\n    port: 2\n"
        ),
        Path::new("t.yml"),
    )
    .expect("valid test config")
}

fn event(service: &str, event: EventName, previous: Option<Health>) -> Event {
    Event {
        id: "x".into(),
        event,
        service: service.into(),
        status: Health::Up,
        previous,
        since: None,
        at: Timestamp::now(),
        host: "h".into(),
        critical: true,
        detail: String::new(),
        text: "t".into(),
        down_for_s: None,
        also_affected: Vec::new(),
        restart_ok: None,
        checks: Vec::new(),
        diagnosis: None,
    }
}

#[test]
fn filters_by_service_and_event() {
    let c = config(
        "  - {type: webhook, name: all, url: 'http://127.0.0.1:1/'}\n  - {type: webhook, name: onlyb, url: 'http://127.0.0.1:1/', services: [b], events: [down, up]}\n",
    );
    let names = |e: &Event| {
        route(&c, std::slice::from_ref(e)).into_iter().map(|d| d.notifier).collect::<Vec<_>>()
    };
    assert_eq!(names(&event("a", EventName::Down, None)), ["all"]);
    assert_eq!(names(&event("b", EventName::Down, None)), ["all", "onlyb"]);
    assert_eq!(names(&event("b", EventName::Restart, None)), ["all"]);
    assert_eq!(names(&event("b", EventName::Up, Some(Health::Down))), ["all", "onlyb"]);
    // The end of a degraded goes only where the degraded went.
    assert_eq!(names(&event("b", EventName::Up, Some(Health::Degraded))), ["all"]);
    // A folded dependent counts for the service filter.
    let mut e = event("a", EventName::Down, None);
    e.also_affected.push("b".into());
    assert_eq!(names(&e), ["all", "onlyb"]);
}

#[test]
fn twilio_sends_one_delivery_per_recipient() {
    let c = config(
        "  - {type: twilio, account_sid: AC1, auth_token_file: /nonexistent, from: '+1', to: ['+2', '+3']}\n",
    );
    let ds = route(&c, &[event("a", EventName::Down, None)]);
    assert_eq!(
        ds.iter().map(|d| d.to.clone().unwrap_or_default()).collect::<Vec<_>>(),
        ["+2", "+3"]
    );
    assert_eq!(ds[0].notifier, "twilio-1");
}

#[test]
fn undelivered_round_trips_and_drops_what_cannot_be_sent() {
    let c = config("  - {type: slack, name: s, url: 'http://127.0.0.1:1/'}\n");
    let mut state = StateFile::default();
    let mut ds = route(&c, &[event("a", EventName::Down, None)]);
    let mut orphan = ds[0].clone();
    orphan.notifier = "gone".into();
    orphan.id = orphan.key();
    let mut old = ds[0].clone();
    old.event.at = Timestamp(old.event.at.0 - 2 * 24 * 3600 * 1000);
    old.event.id = "old".into();
    old.id = old.key();
    ds.push(orphan);
    ds.push(old);
    set_outbox(&mut state, ds.clone());
    state.undelivered.push(serde_json::json!({"garbage": true}));
    let back = outbox(&c, &state, Timestamp::now());
    assert_eq!(back, ds[..1]);
    // Done reports take deliveries out; a retry keeps its count and time.
    let next = Timestamp::now().plus(Duration::from_secs(60));
    apply_done(
        &mut state,
        &[
            Done { id: ds[1].id.clone(), outcome: DoneOutcome::Finished },
            Done {
                id: ds[0].id.clone(),
                outcome: DoneOutcome::Retry {
                    attempts: 4,
                    last_error: "HTTP 500".into(),
                    next_attempt: Some(next),
                },
            },
        ],
    );
    let left = outbox(&c, &state, Timestamp::now());
    assert_eq!(left.len(), 1);
    assert_eq!((left[0].attempts, left[0].next_attempt), (4, Some(next)));
    assert_eq!(state.undelivered.len(), 3, "the old one and the garbage stay until pruned");
}

#[test]
fn the_undelivered_list_is_bounded() {
    let c = config("  - {type: slack, name: s, url: 'http://127.0.0.1:1/'}\n");
    let mut state = StateFile::default();
    let one = route(&c, &[event("a", EventName::Down, None)]).remove(0);
    assert_eq!(set_outbox(&mut state, std::iter::repeat_n(one, MAX_KEPT + 7).collect()), 7);
    assert_eq!(state.undelivered.len(), MAX_KEPT);
}

#[test]
fn sms_fits_one_segment() {
    let mut e = event(&"x".repeat(100), EventName::Down, None);
    e.also_affected = vec!["y".repeat(100)];
    assert!(twilio::sms_text(&e, "n").chars().count() <= twilio::SMS_MAX);
}

/// Outbox entries written before destinations were delivered on their own
/// (and before deliveries carried an `id`) still load, and split per member
/// and per recipient: the shape did not change, only how it is worked off.
#[test]
fn old_outbox_entries_load_and_split_by_destination() {
    let c = config(
        "  - {type: alertmanager, name: am, urls: ['http://127.0.0.1:1', 'http://127.0.0.1:2']}\n  - {type: twilio, name: sms, account_sid: AC1, auth_token_file: /nonexistent, from: '+1', to: ['+2', '+3']}\n",
    );
    let e = serde_json::to_value(event("a", EventName::Down, None)).expect("event");
    let mut state = StateFile::default();
    for (notifier, to) in
        [("am", "http://127.0.0.1:1"), ("am", "http://127.0.0.1:2"), ("sms", "+2"), ("sms", "+3")]
    {
        state.undelivered.push(serde_json::json!({
            "notifier": notifier, "to": to, "event": e, "attempts": 7,
            "last_error": "connection refused",
        }));
    }
    let back = outbox(&c, &state, Timestamp::now());
    assert_eq!(back.len(), 4);
    let destinations: std::collections::BTreeSet<String> =
        back.iter().map(Delivery::destination).collect();
    assert_eq!(destinations.len(), 4, "{destinations:?}");
    assert!(back.iter().all(|d| !d.id.is_empty() && d.attempts == 7));
    let n = &c.notify[0];
    assert_eq!(destination_label(n, &back[1]), "am (member 2)");
    assert_eq!(by_destination(back).len(), 4);
}
