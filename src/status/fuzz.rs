//! Property tests: The status JSON: round trip through the file and the API.

use crate::probe::CheckStatus;
use crate::probe::owned::{Thresholds, Values};
use crate::probe::push::Ping;
use crate::state::HistoryEntry;
use crate::state::RestartRecord;
use crate::status::CheckReport;
use crate::status::ServiceReport;
use crate::status::StatusDoc;
use crate::status::{System, SystemMemory};
use crate::testing::cases;
use crate::testing::health;
use crate::testing::reason;
use crate::testing::tenths;
use crate::testing::timestamp;
use crate::time::Timestamp;
use proptest::prelude::*;

/// Inside the range RFC 3339 with a four-digit year can express.
fn check_report() -> impl Strategy<Value = CheckReport> {
    (
        prop::sample::select(vec!["http", "tcp", "tls", "systemd", "process", "command", "push"]),
        "\\PC{0,30}",
        prop::sample::select(vec![
            CheckStatus::Up,
            CheckStatus::Degraded,
            CheckStatus::Unknown,
            CheckStatus::Down,
        ]),
        prop::option::of(reason()),
        prop::option::of(tenths()),
        "(?s).{0,40}",
        prop::option::of((timestamp(), any::<u64>(), prop::option::of(1..u64::MAX))),
        prop::option::of((ping(), timestamp())),
        prop::option::of(values()),
    )
        .prop_map(|(kind, target, status, reason, latency_ms, detail, cert, push, values)| {
            CheckReport {
                kind: kind.to_string(),
                target,
                status,
                reason,
                latency_ms,
                detail,
                cert_expires_at: cert.map(|c| c.0),
                cert_warn_s: cert.map(|c| c.1),
                cert_crit_s: cert.and_then(|c| c.2),
                last_ping: push.as_ref().map(|p| p.0.clone()),
                ping_due_by: push.map(|p| p.1),
                thresholds: values.as_ref().map(|v: &Values| Thresholds {
                    value: v.0.first().map(|(n, _)| n.clone()).unwrap_or_default(),
                    warn: Some(80.0),
                    crit: None,
                }),
                values,
            }
        })
}

/// A kind's `values`: named numbers (as the kinds round them) or null.
fn values() -> impl Strategy<Value = Values> {
    let value = prop::option::of(tenths());
    prop::collection::vec(("[a-z_]{1,12}", value), 0..5).prop_map(|pairs| {
        let mut v = Values::default();
        for (name, x) in pairs {
            v.set(&name, x);
        }
        v
    })
}

/// A push check's ping as the state and status files hold it.
fn ping() -> impl Strategy<Value = Ping> {
    (timestamp(), any::<bool>(), "\\PC{0,30}", prop::option::of(any::<i32>()))
        .prop_map(|(at, ok, message, exit_code)| Ping { at, ok, message, exit_code })
}

fn service_report() -> impl Strategy<Value = ServiceReport> {
    let restart = (timestamp(), any::<bool>(), "\\PC{0,20}", prop::option::of(any::<u64>()))
        .prop_map(|(at, ok, detail, n_restarts)| RestartRecord {
            at,
            ok,
            detail,
            n_restarts,
            outcome: Default::default(),
        });
    let history = (timestamp(), health(), prop::option::of(tenths()))
        .prop_map(|(at, status, latency_ms)| HistoryEntry { at, status, latency_ms });
    (
        ("\\PC{1,20}", health(), any::<bool>(), prop::option::of("[a-z.@-]{1,20}")),
        (prop::option::of(timestamp()), any::<u32>(), any::<bool>(), prop::option::of(timestamp())),
        prop::collection::vec(restart, 0..3),
        any::<u64>(),
        prop::collection::vec(check_report(), 0..5),
        prop::collection::vec(history, 0..5),
        prop::option::of((
            prop::option::of(tenths()),
            prop::option::of(tenths()),
            prop::option::of(tenths()),
        )),
    )
        .prop_map(
            |(
                (name, status, critical, unit),
                (since, consecutive_failures, heal_suspended, muted_until),
                restarts,
                restarts_total,
                checks,
                history,
                uptime,
            )| ServiceReport {
                mute_reason: muted_until.map(|_| format!("deploy of {name}")),
                name,
                status,
                critical,
                unit,
                since,
                consecutive_failures,
                heal_suspended,
                muted_until,
                restarts,
                restarts_total,
                checks,
                incident: None,
                flapping: false,
                history,
                uptime: uptime.map(|(day, week, month)| crate::status::Uptime { day, week, month }),
                maintenance: None,
                next_maintenance: None,
                resources: None,
            },
        )
}

fn status_doc() -> impl Strategy<Value = StatusDoc> {
    let system = (
        prop::option::of("[0-9a-f-]{36}"),
        prop::option::of(0..10_000_000u64),
        prop::option::of(1..64u32),
        prop::option::of((tenths(), tenths(), tenths())),
        prop::option::of((any::<u32>(), any::<u32>(), prop::option::of(tenths()))),
    )
        .prop_map(|(boot_id, uptime_s, cpus, load, memory)| System {
            boot_id,
            booted_at: uptime_s.map(|s| Timestamp(1_700_000_000_000 - s as i64 * 1000)),
            uptime_s,
            cpus,
            load: load.map(|(a, b, c)| [a, b, c]),
            memory: memory.map(|(t, a, p)| SystemMemory {
                total_bytes: u64::from(t),
                available_bytes: u64::from(a),
                used_pct: p,
                swap_total_bytes: 0,
                swap_used_pct: None,
            }),
        });
    (
        timestamp(),
        "\\PC{0,30}",
        health(),
        tenths(),
        prop::collection::vec(service_report(), 0..5),
        prop::option::of(system),
    )
        .prop_map(|(generated_at, host, overall, duration_ms, services, system)| StatusDoc {
            schema: crate::status::SCHEMA,
            generated_at,
            host,
            overall,
            duration_ms,
            flapping: false,
            services,
            history: None,
            system: system.map(Box::new),
        })
}

/// Rounds every float to the tenth of a millisecond the product keeps, so
/// the comparison does not depend on the last bit of a float parse.
fn normalise(mut doc: StatusDoc) -> StatusDoc {
    fn r(x: f64) -> f64 {
        (x * 10.0).round() / 10.0
    }
    doc.duration_ms = r(doc.duration_ms);
    for s in &mut doc.services {
        for c in &mut s.checks {
            c.latency_ms = c.latency_ms.map(r);
        }
        for h in &mut s.history {
            h.latency_ms = h.latency_ms.map(r);
        }
    }
    doc
}

proptest! {
    #![proptest_config(cases(2))]

    #[test]
    fn status_json_round_trips(doc in status_doc()) {
        // The file form (pretty, what `check` writes) and the compact form (the API).
        let pretty = doc.to_json();
        let back: StatusDoc = serde_json::from_slice(&pretty).expect("status file parses");
        prop_assert_eq!(normalise(back), normalise(doc.clone()));
        let compact = serde_json::to_vec(&doc).expect("serialise");
        let back: StatusDoc = serde_json::from_slice(&compact).expect("API JSON parses");
        prop_assert_eq!(normalise(back), normalise(doc));
    }

    #[test]
    fn status_json_garbage_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = serde_json::from_slice::<StatusDoc>(&bytes);
    }
}
