//! The alert state machine as tables: health per cycle in, events out.

use super::*;
use crate::heal::HealNote;
use crate::state::Health::{Degraded as G, Down as D, Up as U};
use crate::status::StatusDoc;
use std::path::Path;

fn config(services: &str) -> Config {
    crate::config::parse(&format!("services:\n{services}"), Path::new("t.yml"))
        .expect("valid test config")
}

fn report(name: &str, h: Health, since: Timestamp) -> ServiceReport {
    let (status, detail) = match h {
        U => (CheckStatus::Up, "HTTP 200"),
        G => (CheckStatus::Degraded, "slow"),
        D => (CheckStatus::Down, "connection refused"),
    };
    ServiceReport {
        name: name.into(),
        status: h,
        critical: true,
        unit: None,
        since: Some(since),
        consecutive_failures: 0,
        heal_suspended: false,
        muted_until: None,
        mute_reason: None,
        restarts: Vec::new(),
        restarts_total: 0,
        incident: None,
        flapping: false,
        checks: vec![CheckReport {
            kind: "tcp".into(),
            target: "127.0.0.1:1".into(),
            status,
            reason: None,
            latency_ms: None,
            detail: detail.into(),
            cert_expires_at: None,
            cert_warn_s: None,
            cert_crit_s: None,
            last_ping: None,
            ping_due_by: None,
            values: None,
            thresholds: None,
        }],
        history: Vec::new(),
        uptime: None,
        maintenance: None,
        next_maintenance: None,
        resources: None,
    }
}

/// Runs cycles 10 s apart; each cycle gives every service's health, the
/// result is the events of each cycle as "service event" strings.
struct Sim {
    config: Config,
    state: StateFile,
    now: Timestamp,
}

impl Sim {
    fn new(services: &str) -> Self {
        Sim {
            config: config(services),
            state: StateFile::default(),
            now: Timestamp::from_secs(1_800_000_000),
        }
    }

    fn cycle(&mut self, healths: &[(&str, Health)], notes: Vec<HealNote>) -> Vec<Event> {
        self.now = self.now.plus(std::time::Duration::from_secs(10));
        let mut services = Vec::new();
        for (name, h) in healths {
            let st = self.state.services.entry(name.to_string()).or_default();
            if st.status != Some(*h) {
                st.since = Some(self.now);
            }
            st.status = Some(*h);
            services.push(report(name, *h, st.since.unwrap_or(self.now)));
        }
        let doc = StatusDoc {
            schema: 1,
            generated_at: self.now,
            host: "h".into(),
            overall: U,
            duration_ms: 1.0,
            flapping: false,
            services,
            history: None,
            system: None,
        };
        evaluate(&self.config, &mut self.state, &doc, &notes, self.now)
    }

    /// One service `s`: the events of each cycle.
    fn run(&mut self, seq: &[Health]) -> Vec<String> {
        seq.iter()
            .map(|h| {
                self.cycle(&[("s", *h)], Vec::new())
                    .iter()
                    .map(|e| event_str(e.event).to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .collect()
    }
}

const ONE: &str = "  - name: s\n    port: 1\n";

#[test]
fn transitions_only() {
    let mut sim = Sim::new(ONE);
    assert_eq!(sim.run(&[U, U, D, D, D, U, U]), ["", "", "down", "", "", "up", ""]);
}

#[test]
fn first_seen_down_alerts_first_seen_up_does_not() {
    assert_eq!(Sim::new(ONE).run(&[D, D]), ["down", ""]);
    assert_eq!(Sim::new(ONE).run(&[U]), [""]);
    assert_eq!(Sim::new(ONE).run(&[G, U]), ["degraded", "up"]);
}

#[test]
fn degraded_and_partial_recovery() {
    let mut sim = Sim::new(ONE);
    assert_eq!(sim.run(&[U, G, G, D, G, U]), ["", "degraded", "", "down", "up", "up"]);
}

#[test]
fn confirm_silences_a_blip_and_delays_the_real_thing() {
    let svc = "  - name: s\n    port: 1\n    confirm: 2\n";
    assert_eq!(Sim::new(svc).run(&[U, D, U, U]), ["", "", "", ""]);
    assert_eq!(
        Sim::new(svc).run(&[U, D, D, D, U, D, U, U]),
        ["", "", "down", "", "", "", "", "up"]
    );
}

#[test]
fn recovery_says_how_long_it_was_down() {
    let mut sim = Sim::new(ONE);
    sim.run(&[U, D, D, D]);
    let e = sim.cycle(&[("s", U)], Vec::new());
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].event, EventName::Up);
    assert_eq!(e[0].previous, Some(D));
    assert_eq!(e[0].down_for_s, Some(30));
    assert!(e[0].text.contains("after 30s down"), "{}", e[0].text);
}

#[test]
fn reminders_repeat_while_down() {
    let mut sim = Sim::new("  - name: s\n    port: 1\n    reminder: 25s\n");
    // Cycles are 10 s apart: a reminder once 25 s have passed, i.e. 30 s
    // after the down alert, then 30 s after that one.
    assert_eq!(
        sim.run(&[D, D, D, D, D, D, D, U]),
        ["down", "", "", "reminder", "", "", "reminder", "up"]
    );
}

#[test]
fn muted_raises_nothing_until_the_mute_ends_still_down() {
    let mut sim = Sim::new(ONE);
    sim.run(&[U]);
    let until = sim.now.plus(std::time::Duration::from_secs(25));
    sim.state.services.entry("s".into()).or_default().muted_until = Some(until);
    // Muted for the next two cycles; down all along; the third is unmuted.
    assert_eq!(sim.run(&[D, D, D, D]), ["", "", "down", ""]);
}

#[test]
fn a_mute_over_an_announced_down_pages_again_when_it_ends_down() {
    let mut sim = Sim::new(ONE);
    sim.run(&[D]);
    let until = sim.now.plus(std::time::Duration::from_secs(15));
    sim.state.services.entry("s".into()).or_default().muted_until = Some(until);
    assert_eq!(sim.run(&[D, D, D]), ["", "down", ""]);
}

#[test]
fn a_blip_during_a_mute_is_forgotten() {
    let mut sim = Sim::new(ONE);
    sim.run(&[U]);
    let until = sim.now.plus(std::time::Duration::from_secs(25));
    sim.state.services.entry("s".into()).or_default().muted_until = Some(until);
    assert_eq!(sim.run(&[D, U, U, U]), ["", "", "", ""]);
}

const DEPS: &str = "  - name: ChatStack\n    port: 1\n    depends_on: [AI-Memory]\n  - name: AI-Memory\n    port: 2\n";

#[test]
fn a_dependents_down_is_folded_into_its_dependency() {
    let mut sim = Sim::new(DEPS);
    sim.cycle(&[("ChatStack", U), ("AI-Memory", U)], Vec::new());
    let e = sim.cycle(&[("ChatStack", D), ("AI-Memory", D)], Vec::new());
    assert_eq!(e.len(), 1, "{e:#?}");
    assert_eq!((e[0].service.as_str(), e[0].event), ("AI-Memory", EventName::Down));
    assert_eq!(e[0].also_affected, ["ChatStack"]);
    assert!(e[0].text.contains("Also affected: ChatStack"), "{}", e[0].text);
    assert!(sim.cycle(&[("ChatStack", D), ("AI-Memory", D)], Vec::new()).is_empty());
    // Both recover: one recovery.
    let e = sim.cycle(&[("ChatStack", U), ("AI-Memory", U)], Vec::new());
    assert_eq!(e.iter().map(|e| e.service.as_str()).collect::<Vec<_>>(), ["AI-Memory"]);
}

#[test]
fn a_dependent_still_down_after_its_dependency_recovers_pages_then() {
    let mut sim = Sim::new(DEPS);
    sim.cycle(&[("ChatStack", D), ("AI-Memory", D)], Vec::new());
    let e = sim.cycle(&[("ChatStack", D), ("AI-Memory", U)], Vec::new());
    let got: Vec<_> = e.iter().map(|e| (e.service.as_str(), e.event)).collect();
    assert_eq!(got, [("ChatStack", EventName::Down), ("AI-Memory", EventName::Up)]);
}

#[test]
fn a_dependency_cycle_does_not_swallow_alerts() {
    let mut sim = Sim::new(
        "  - name: a\n    port: 1\n    depends_on: [b]\n  - name: b\n    port: 2\n    depends_on: [a]\n",
    );
    let e = sim.cycle(&[("a", D), ("b", D)], Vec::new());
    assert_eq!(e.len(), 2, "{e:#?}");
}

#[test]
fn chains_fold_into_the_root() {
    let mut sim = Sim::new(
        "  - name: web\n    port: 1\n    depends_on: [api]\n  - name: api\n    port: 2\n    depends_on: [db]\n  - name: db\n    port: 3\n",
    );
    let e = sim.cycle(&[("web", D), ("api", D), ("db", D)], Vec::new());
    assert_eq!(e.len(), 1, "{e:#?}");
    assert_eq!(e[0].service, "db");
    assert_eq!(e[0].also_affected, ["web", "api"]);
}

#[test]
fn healing_notes_become_events_unless_muted() {
    use crate::heal::HealNoteKind;
    let mut sim = Sim::new(ONE);
    sim.run(&[D]);
    let note = |kind| HealNote {
        service: "s".into(),
        text: "restarted s.service after 2 failed cycles".into(),
        kind,
    };
    let e = sim.cycle(
        &[("s", D)],
        vec![note(HealNoteKind::Restarted { ok: true }), note(HealNoteKind::Skipped)],
    );
    assert_eq!(e.len(), 1);
    assert_eq!((e[0].event, e[0].restart_ok), (EventName::Restart, Some(true)));
    let e = sim.cycle(&[("s", D)], vec![note(HealNoteKind::Suspended)]);
    assert_eq!(e[0].event, EventName::HealSuspended);
    sim.state.services.entry("s".into()).or_default().muted_until =
        Some(sim.now.plus(std::time::Duration::from_secs(60)));
    assert!(sim.cycle(&[("s", D)], vec![note(HealNoteKind::Restarted { ok: false })]).is_empty());
}

#[test]
fn events_serialize_with_every_key() {
    let mut sim = Sim::new(ONE);
    let e = sim.cycle(&[("s", D)], Vec::new());
    let v = serde_json::to_value(&e[0]).unwrap();
    for key in [
        "event", "service", "status", "previous", "since", "host", "detail", "checks", "text",
        "at", "id",
    ] {
        assert!(v.get(key).is_some(), "{key} missing in {v:#}");
    }
    assert_eq!(v["event"], "down");
    assert_eq!(v["previous"], serde_json::Value::Null);
    let back: Event = serde_json::from_value(v).unwrap();
    assert_eq!(back, e[0]);
}

#[test]
fn alerting_judges_a_mute_at_the_cycles_time_like_healing() {
    // Healing decided "muted" at the cycle's time; alerting, a moment later,
    // must not decide "mute over" and page for a cycle that was not healed.
    let config = config(ONE);
    let cycle_at = Timestamp(Timestamp::now().0 - 10_000);
    let mut state = StateFile::default();
    let st = state.services.entry("s".into()).or_default();
    st.status = Some(D);
    st.since = Some(cycle_at);
    st.muted_until = Some(Timestamp(cycle_at.0 + 1)); // over by now, not at the cycle
    let doc = StatusDoc {
        schema: 1,
        generated_at: cycle_at,
        host: "h".into(),
        overall: D,
        duration_ms: 1.0,
        flapping: false,
        services: vec![report("s", D, cycle_at)],
        history: None,
        system: None,
    };
    // `raise` is what both `check` and the daemon's cycle call.
    let raised = crate::notify::raise(&config, &mut state, &doc, &[]);
    assert!(raised.events.is_empty(), "{:?}", raised.events);
    let st = &state.services["s"];
    assert_eq!(st.alerted, None, "paged in a cycle that healing treated as muted");
    assert!(st.alert_muted);
}

#[test]
fn flapping_is_one_event_then_flapping_ended_then_transitions_again() {
    let svc = "  - name: s\n    port: 1\n    flap: { changes: 3, window: 4 }\n";
    let mut sim = Sim::new(svc);
    let cfg = sim.config.services[0].flap;
    let seq = [U, D, U, D, U, D, D, D, D, U];
    let got: Vec<String> = seq
        .iter()
        .map(|h| {
            let st = sim.state.services.entry("s".into()).or_default();
            crate::state::loops::observe_flap(st, *h, cfg);
            let events = sim.cycle(&[("s", *h)], Vec::new());
            events.iter().map(|e| event_str(e.event).to_string()).collect::<Vec<_>>().join(",")
        })
        .collect();
    assert_eq!(got, ["", "down", "up", "flapping", "", "", "", "", "flapping_ended", "up"]);
}

#[test]
fn a_detail_that_ends_its_own_sentence_gets_no_second_full_stop() {
    let mut plain = Sim::new(ONE);
    plain.run(&[U]);
    let e = plain.cycle(&[("s", D)], Vec::new());
    assert!(e[0].text.ends_with(": connection refused."), "{}", e[0].text);

    let mut sim = Sim::new(ONE);
    sim.run(&[U]);
    sim.now = sim.now.plus(std::time::Duration::from_secs(10));
    let mut r = report("s", D, sim.now);
    r.checks[0].detail = "System has not been booted with systemd. Can't operate.".into();
    let doc = StatusDoc {
        schema: 1,
        generated_at: sim.now,
        host: "h".into(),
        overall: D,
        duration_ms: 1.0,
        flapping: false,
        services: vec![r],
        history: None,
        system: None,
    };
    let e = evaluate(&sim.config, &mut sim.state, &doc, &[], sim.now);
    assert!(
        e[0].text.ends_with(": System has not been booted with systemd. Can't operate."),
        "{}",
        e[0].text
    );
}
