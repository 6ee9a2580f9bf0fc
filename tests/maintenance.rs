//! Maintenance windows through the real binary: a window open now mutes a
//! down service (no restart, no alert, `maintenance` in the status, the time
//! counted as maintenance), its end while the service is still down raises
//! one alert then, `maintenance --format json` lists each window, and bad
//! windows are located config errors.

use crate::util::{Env, Reply, http_handler, wait_until};
use serde_json::Value;
use std::time::Duration;

/// `HH:MM:SS` UTC, `back_s` seconds ago.
fn utc_clock(back_s: i64) -> String {
    let t = jiff::Timestamp::now() - jiff::SignedDuration::from_secs(back_s);
    t.to_zoned_datetime(jiff::tz::TimeZone::UTC).strftime("%H:%M:%S").to_string()
}

fn ms(v: &Value) -> i64 {
    let s = v.as_str().unwrap_or_else(|| panic!("not a time: {v}"));
    s.parse::<jiff::Timestamp>().unwrap_or_else(|e| panic!("{s}: {e}")).as_millisecond()
}

#[test]
fn an_open_window_mutes_and_its_end_while_still_down_alerts_once() {
    let hook = http_handler(|_| Reply::new(200, "ok"));
    let env = Env::new();
    env.fake_systemctl();
    env.unit("web.service", "failed", "failed", "exit-code");
    // Open since a second ago, for 6 s: every day, so midnight UTC is no edge.
    env.config(&format!(
        "timeout: 2s\nheal: {{after_failures: 1, grace: 0s}}\nnotify:\n  - {{type: webhook, url: \"{}\"}}\nmaintenance:\n  - name: deploy\n    every: [day]\n    start: \"{}\"\n    duration: 6s\n    services: [web]\nservices:\n  - name: web\n    unit: web.service\n  - name: other\n    port: 1\n    critical: false\n",
        hook.url("/hook"),
        utc_clock(1)
    ));
    env.check(&[]).code(2);
    env.check(&[]).code(2);
    let web = env.service("web");
    assert_eq!(web["maintenance"]["name"], "deploy", "{web:#}");
    let until = ms(&web["maintenance"]["until"]);
    assert!(env.service("other")["maintenance"].is_null(), "the window covers web only");
    assert!(env.systemctl_actions().is_empty(), "healed in a window: {:?}", env.systemctl_calls());
    let about_web = |hook: &crate::util::HttpFixture| {
        hook.requests()
            .iter()
            .filter(|r| r.body.contains("\"service\":\"web\""))
            .map(|r| serde_json::from_str::<Value>(&r.body).expect("JSON")["event"].clone())
            .collect::<Vec<_>>()
    };
    assert!(about_web(&hook).is_empty(), "paged in a window: {:?}", hook.requests());
    assert_eq!(hook.requests().len(), 1, "the other service still pages: {:?}", hook.requests());

    // The window closes with web still down: one down alert then, and healing.
    wait_until(Duration::from_secs(10), || jiff::Timestamp::now().as_millisecond() > until);
    env.check(&[]).code(2);
    assert!(env.service("web")["maintenance"].is_null());
    let downs =
        |hook: &crate::util::HttpFixture| about_web(hook).iter().filter(|e| *e == "down").count();
    assert_eq!(downs(&hook), 1, "{:?}", about_web(&hook));
    assert_eq!(env.systemctl_actions(), ["restart web.service"]);
    env.check(&[]).code(2);
    assert_eq!(downs(&hook), 1, "once: {:?}", about_web(&hook));

    // The history counted the window as maintenance, not as down time.
    let out =
        env.cmd(&["report", "-c", &env.config_path().display().to_string(), "--format", "json"]);
    out.code(0);
    let doc = out.json();
    let of = |name: &str| {
        doc["services"].as_array().and_then(|s| s.iter().find(|s| s["name"] == name).cloned())
    };
    let (web, other) = (of("web").expect("web"), of("other").expect("other"));
    let down = |s: &Value| s["downtime_s"].as_f64().unwrap_or(f64::NAN);
    // Both were down the whole time; only web's window was maintenance.
    assert!(down(&other) > 4.0 && down(&web) < down(&other) - 3.0, "{doc:#}");
    let incident =
        doc["incidents"].as_array().and_then(|i| i.iter().find(|i| i["service"] == "web").cloned());
    assert_eq!(incident.expect("web's incident")["muted"], true, "it began in the window");
}

#[test]
fn maintenance_json_lists_next_start_next_end_and_active() {
    let env = Env::new();
    env.config(&format!(
        "maintenance:\n  - name: now\n    every: [day]\n    start: \"{}\"\n    duration: 1h\n  - name: weekly-deploy\n    every: [sun]\n    start: \"03:00\"\n    duration: 1h\n    timezone: Europe/Berlin\n    services: [web]\nservices:\n  - name: web\n    port: 1\n",
        utc_clock(60)
    ));
    let before = jiff::Timestamp::now().as_millisecond();
    let out = env.cmd(&[
        "maintenance",
        "-c",
        &env.config_path().display().to_string(),
        "--format",
        "json",
    ]);
    out.code(0);
    let v = out.json();
    let open = &v[0];
    assert_eq!(open["name"], "now");
    assert_eq!(open["active"], true, "{v:#}");
    assert!(ms(&open["next_start"]) <= before && ms(&open["next_end"]) > before, "{v:#}");
    assert_eq!(ms(&open["next_end"]) - ms(&open["next_start"]), 3_600_000);
    assert_eq!(open["services"], serde_json::json!([]));

    let weekly = &v[1];
    assert_eq!(
        (weekly["name"].as_str(), weekly["timezone"].as_str()),
        (Some("weekly-deploy"), Some("Europe/Berlin"))
    );
    assert_eq!(weekly["services"], serde_json::json!(["web"]));
    let start = ms(&weekly["next_start"]);
    let local = jiff::Timestamp::from_millisecond(start)
        .expect("ts")
        .to_zoned_datetime(jiff::tz::db().get("Europe/Berlin").expect("tz"));
    assert_eq!(local.weekday(), jiff::civil::Weekday::Sunday, "{local}");
    assert_eq!((local.hour(), local.minute()), (3, 0), "{local}");
    let active = weekly["active"].as_bool().expect("active");
    assert!(active || start > before, "{v:#}");
    assert!(start <= before + 7 * 86_400_000, "{v:#}");
    assert!(weekly["next_start"].as_str().is_some_and(|s| s.ends_with('Z')), "RFC 3339 UTC");

    let text = env.cmd(&["maintenance", "-c", &env.config_path().display().to_string()]);
    text.code(0);
    assert!(
        text.stdout.contains("now: every day") && text.stdout.contains("OPEN until"),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout.contains("weekly-deploy: sun 03:00 Europe/Berlin for 1h (web)"),
        "{}",
        text.stdout
    );

    // Status: null outside a window.
    env.config("maintenance:\n  - {name: later, every: [sun], start: \"03:00\", duration: 1m, timezone: Pacific/Chatham}\nservices:\n  - name: web\n    port: 1\n");
    env.check(&[]).code(2);
    let web = env.service("web");
    assert!(
        web.get("maintenance").is_some_and(Value::is_null) || web["maintenance"]["name"] == "later",
        "{web:#}"
    );
    assert_eq!(web["next_maintenance"]["timezone"], "Pacific/Chatham", "{web:#}");
}

#[test]
fn an_unknown_time_zone_day_or_service_is_a_located_error() {
    let env = Env::new();
    env.config("maintenance:\n  - name: w\n    every: [sun, funday]\n    start: \"25:00\"\n    duration: 1h\n    timezone: Mars/Olympus_Mons\n    services: [web, nosuch]\nservices:\n  - name: web\n    port: 1\n");
    let out = env.cmd(&["validate", "-c", &env.config_path().display().to_string()]);
    out.code(3);
    let text = std::fs::read_to_string(env.config_path()).expect("config");
    let line_of = |needle: &str| 1 + text.lines().position(|l| l.contains(needle)).expect(needle);
    for (needle, col, msg) in [
        ("funday", 18, "unknown day \"funday\""),
        ("25:00", 12, "start \"25:00\": expected a 24-hour time"),
        ("Mars", 15, "unknown time zone \"Mars/Olympus_Mons\""),
        ("nosuch", 21, "unknown service \"nosuch\""),
    ] {
        let at = format!("monitor.yml:{}:{col}: maintenance \"w\": {msg}", line_of(needle));
        assert!(out.stderr.contains(&at), "{at}\n{}", out.stderr);
    }
}
