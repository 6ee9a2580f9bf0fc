//! The OpenAPI document (`GET /api/openapi.json`, src/server/openapi.json):
//! served by `run` and `serve` behind the same auth as the rest, the same
//! bytes as the file the .deb installs, and every example in it answers as
//! documented against a live `run` with history and a push check.
//! (That the document lists exactly the routes served is a unit test in
//! src/server/route.rs; schemathesis fuzzes it in tests/openapi/run.sh.)

use crate::util::{Daemon, Env, HttpFixture, Reply, TcpFixture, http_handler, request, wait_until};
use serde_json::{Value, json};
use std::time::Duration;

const DOCUMENT: &str = include_str!("../src/server/openapi.json");
/// admin:s3cret
const GOOD: (&str, &str) = ("Authorization", "Basic YWRtaW46czNjcmV0");

fn document() -> Value {
    serde_json::from_str(DOCUMENT).expect("openapi.json is JSON")
}

/// What the fake `systemctl` says of the `Down` service's unit: failed, its
/// main process exited 3 (every property the probe and the diagnosis read).
const FAILED_UNIT: &str = "LoadState=loaded\nActiveState=failed\nSubState=failed\nResult=exit-code\nExecMainCode=1\nExecMainStatus=3\nNRestarts=2\nInvocationID=0123456789abcdef0123456789abcdef\nMemoryCurrent=[not set]\n";

/// `HH:MM` UTC, `minutes` from now (wrapping at midnight).
fn utc_clock(minutes: i64) -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    let m = (now.as_secs() as i64 / 60 + minutes).rem_euclid(24 * 60);
    format!("{:02}:{:02}", m / 60, m % 60)
}

/// `run` with history and basic auth (with `auth`), every kind of answer the
/// document describes: a push check and a TCP service named as the
/// document's examples (`Job`, `Web`), the four host kinds and a process
/// check (`Host`, in a maintenance window open now), and a unit whose HTTP
/// check answers 502 (`Down`: healed once, its incident diagnosed through a
/// fake `systemctl` and `journalctl`, its next maintenance window hours
/// away). Returns once it has cycled.
fn live(env: &Env, auth: bool) -> (Daemon, TcpFixture, HttpFixture) {
    let tcp = TcpFixture::new();
    let bad_gateway = http_handler(|_| Reply::new(502, "<html>Bad Gateway</html>"));
    env.fake_systemctl();
    env.write("units/down.service", FAILED_UNIT);
    env.fake_program(
        "journalctl",
        "#!/bin/sh\n[ \"$1\" = __ready ] && exit 0\nprintf '%s\\n' '2026-12-07T03:12:01+0000 down[812]: MemoryError'\n",
    );
    env.write("password", "s3cret\n");
    let auth = if auth {
        format!("basic_auth: {{ user: admin, password_file: {:?} }}\n", env.path("password"))
    } else {
        String::new()
    };
    env.config(&format!(
        "interval: 200ms\ntimeout: 1s\nheal: {{ after_failures: 1, grace: 0s }}\n{auth}\
         maintenance:\n\
         \x20 - {{ name: now, every: [day], start: \"{open}\", duration: 2h, services: [Host] }}\n\
         \x20 - {{ name: later, every: [day], start: \"{later}\", duration: 1h, services: [Down] }}\n\
         services:\n\
         \x20 - name: Web\n    port: {port}\n\
         \x20 - name: Job\n    checks:\n      - {{ type: push, period: 1h, grace: 1h }}\n\
         \x20 - name: Host\n    checks:\n\
         \x20     - {{ type: disk, path: /, full_warn: 3d }}\n\
         \x20     - {{ type: memory, swap_warn: 50 }}\n\
         \x20     - {{ type: load }}\n\
         \x20     - {{ type: pressure, resource: memory }}\n\
         \x20     - {{ type: process, match: chatstack-status }}\n\
         \x20 - name: Down\n    unit: down.service\n    url: {url}\n",
        open = utc_clock(-1),
        later = utc_clock(180),
        port = tcp.port(),
        url = bad_gateway.url("/health"),
    ));
    let cfg = env.config_path().display().to_string();
    let d = Daemon::start(env, &["run", "-c", &cfg], &[]);
    wait_until(Duration::from_secs(10), || {
        request(d.port, "GET", "/api/uptime", &[GOOD]).status == 200
            && request(d.port, "GET", "/api/status", &[GOOD]).status == 200
    });
    (d, tcp, bad_gateway)
}

#[test]
fn run_and_serve_answer_the_document_behind_the_same_auth() {
    let env = Env::new();
    let (d, _t, _h) = live(&env, true);
    let bare = d.get("/api/openapi.json");
    assert_eq!(bare.status, 401, "behind basic auth like the rest");
    let r = request(d.port, "GET", "/api/openapi.json", &[GOOD]);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type").as_deref(), Some("application/json"));
    assert_eq!(r.body, DOCUMENT.as_bytes(), "the bytes of src/server/openapi.json");
    let head = request(d.port, "HEAD", "/api/openapi.json", &[GOOD]);
    assert_eq!((head.status, head.body.len()), (200, 0));
    drop(d);

    // `serve` (the status file the daemon left) answers it too.
    let cfg = env.config_path().display().to_string();
    let s = Daemon::start(&env, &["serve", "-c", &cfg], &[]);
    assert_eq!(s.get("/api/openapi.json").status, 401);
    let r = request(s.port, "GET", "/api/openapi.json", &[GOOD]);
    assert_eq!((r.status, r.body.as_slice()), (200, DOCUMENT.as_bytes()));
}

/// `v`, or what its `$ref` points at.
fn resolve<'a>(doc: &'a Value, v: &'a Value) -> &'a Value {
    match v.get("$ref").and_then(Value::as_str) {
        Some(r) => doc.pointer(r.trim_start_matches('#')).expect("a $ref that resolves"),
        None => v,
    }
}

/// A path with its template parameters filled from their examples and its
/// query from every query parameter's example.
fn example_request(doc: &Value, path: &str, item: &Value, op: &Value) -> String {
    let mut url = path.to_string();
    let mut query = Vec::new();
    let params = item["parameters"].as_array().into_iter().chain(op["parameters"].as_array());
    for p in params.flatten() {
        let p = resolve(doc, p);
        let name = p["name"].as_str().expect("name");
        let Some(example) = p.get("example") else {
            assert_ne!(p["required"], true, "{path}: required {name} has no example");
            continue;
        };
        let text = match example {
            Value::String(s) => s.clone(),
            v => v.to_string(),
        };
        let enc = percent_encoding::utf8_percent_encode(&text, percent_encoding::NON_ALPHANUMERIC)
            .to_string();
        match p["in"].as_str() {
            Some("path") => url = url.replace(&format!("{{{name}}}"), &enc),
            Some("query") => query.push(format!("{name}={enc}")),
            other => panic!("{path}: parameter {name} in {other:?}"),
        }
    }
    if !query.is_empty() {
        url = format!("{url}?{}", query.join("&"));
    }
    url
}

#[test]
fn every_example_in_the_document_answers_as_documented_field_by_field() {
    let doc = document();
    let env = Env::new();
    let (d, _t, _h) = live(&env, true);
    // The down service's restart judged and its incident diagnosed.
    wait_until(Duration::from_secs(10), || {
        let v = request(d.port, "GET", "/api/incidents?service=Down", &[GOOD]).json();
        v["incidents"].as_array().into_iter().flatten().any(|i| {
            i["service"] == "Down"
                && i["diagnosis"].is_object()
                && i["restarts"][0]["outcome"].as_str().is_some_and(|o| o != "pending")
        })
    });
    let mut answers = std::collections::BTreeMap::new();
    let mut tried = 0;
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            if !["get", "post"].contains(&method.as_str()) {
                continue;
            }
            let url = example_request(&doc, path, item, op);
            let r = request(
                d.port,
                &method.to_ascii_uppercase(),
                &url,
                &[GOOD, ("Content-Length", "0")],
            );
            let responses = &op["responses"];
            let documented = resolve(&doc, &responses[r.status.to_string()]);
            assert!(
                (200..300).contains(&r.status) && documented.is_object(),
                "{method} {url}: {} (documented: {:?})\n{}",
                r.status,
                responses.as_object().map(|m| m.keys().collect::<Vec<_>>()),
                String::from_utf8_lossy(&r.body)
            );
            let ctype = r.header("content-type").unwrap_or_default();
            let content = documented["content"].as_object().expect("content");
            assert!(
                content.keys().any(|k| k == "*/*" || *k == ctype),
                "{method} {url}: Content-Type {ctype:?}, documented {:?}",
                content.keys().collect::<Vec<_>>()
            );
            if ctype == "application/json" {
                let v: Value = serde_json::from_slice(&r.body).expect("JSON");
                let mut wrong = Vec::new();
                disagreements(&doc, &content[&ctype]["schema"], &v, "", &mut wrong);
                assert!(wrong.is_empty(), "{method} {url}: {wrong:#?}\n{v:#}");
                answers.insert(path.clone(), v);
            }
            tried += 1;
        }
    }
    assert!(tried >= 15, "only {tried} operations tried");
    // What the answers held, so the schemas above were really exercised.
    let status = &answers["/api/status"];
    let service = |name: &str| {
        status["services"].as_array().unwrap().iter().find(|s| s["name"] == name).unwrap().clone()
    };
    assert!(status["system"]["memory"]["total_bytes"].as_u64().unwrap() > 0, "{status:#}");
    let host = service("Host");
    let kinds: Vec<&str> =
        host["checks"].as_array().unwrap().iter().map(|c| c["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["disk", "memory", "load", "pressure", "process"]);
    assert!(host["checks"].as_array().unwrap().iter().all(|c| c["values"].is_object()));
    assert_eq!(host["maintenance"]["name"], "now", "{host:#}");
    let down = service("Down");
    assert_eq!(down["next_maintenance"]["name"], "later", "{down:#}");
    assert_eq!(down["incident"]["diagnosis"]["http"]["status"], 502, "{down:#}");
    assert_eq!(down["incident"]["diagnosis"]["unit"]["exit_code"], 3, "{down:#}");
    assert!(down["restarts"][0]["outcome"].is_string(), "{down:#}");
    assert!(down["resources"].is_object(), "{down:#}");
    let resources = &answers["/api/resources"];
    assert!(resources["services"]["Down"][0].is_array(), "{resources:#}");
    let incidents = request(d.port, "GET", "/api/incidents?service=Down", &[GOOD]).json();
    let mut wrong = Vec::new();
    let schema = json!({"$ref": "#/components/schemas/IncidentsDoc"});
    disagreements(&doc, &schema, &incidents, "", &mut wrong);
    assert!(wrong.is_empty(), "/api/incidents?service=Down: {wrong:#?}\n{incidents:#}");
    let open = &incidents["incidents"][0];
    assert_eq!(
        open["diagnosis"]["journal"][0].as_str().map(|l| l.ends_with("MemoryError")),
        Some(true),
        "{open:#}"
    );
    assert!(open["restarts"][0]["outcome"].is_string(), "{open:#}");
}

/// Every way `value` (at `at`) disagrees with `schema` of `doc`: a required
/// key missing, a type, enum, const or minimum not met, a `date-time` that is
/// not one, no alternative of a `oneOf` fitting — and, stricter than JSON
/// Schema, a key the schema does not list (unless it gives
/// `additionalProperties` a schema): the document must describe everything
/// the server says, field by field.
fn disagreements(doc: &Value, schema: &Value, value: &Value, at: &str, out: &mut Vec<String>) {
    let schema = resolve(doc, schema);
    if let Some(alternatives) = schema.get("oneOf").and_then(Value::as_array) {
        let fitting = alternatives
            .iter()
            .filter(|alt| {
                let mut wrong = Vec::new();
                disagreements(doc, alt, value, at, &mut wrong);
                wrong.is_empty()
            })
            .count();
        if fitting != 1 {
            out.push(format!("{at}: {fitting} of the oneOf alternatives fit {value}"));
        }
    }
    if let Some(types) = schema.get("type") {
        let types: Vec<&str> = match types {
            Value::String(t) => vec![t.as_str()],
            v => v.as_array().expect("type").iter().filter_map(Value::as_str).collect(),
        };
        let fits = |t: &str| match t {
            "null" => value.is_null(),
            "boolean" => value.is_boolean(),
            "integer" => value.is_i64() || value.is_u64(),
            "number" => value.is_number(),
            "string" => value.is_string(),
            "array" => value.is_array(),
            "object" => value.is_object(),
            other => panic!("{at}: type {other}"),
        };
        if !types.iter().any(|t| fits(t)) {
            out.push(format!("{at}: {value} is not {types:?}"));
            return;
        }
    }
    if schema.get("const").is_some_and(|c| c != value) {
        out.push(format!("{at}: {value} is not {}", schema["const"]));
    }
    if schema.get("enum").and_then(Value::as_array).is_some_and(|e| !e.contains(value)) {
        out.push(format!("{at}: {value} is not one of {}", schema["enum"]));
    }
    let min = schema.get("minimum").and_then(Value::as_f64);
    if let (Some(min), Some(n)) = (min, value.as_f64())
        && n < min
    {
        out.push(format!("{at}: {n} is below {min}"));
    }
    if let (Some("date-time"), Some(text)) = (schema["format"].as_str(), value.as_str()) {
        let b = text.as_bytes();
        let shaped = b.len() >= 20 && b[4] == b'-' && b[10] == b'T' && b[13] == b':';
        if !shaped || !(text.ends_with('Z') || text[19..].contains(['+', '-'])) {
            out.push(format!("{at}: {text:?} is not an RFC 3339 date-time"));
        }
    }
    match value {
        Value::Object(fields) => {
            for key in schema["required"].as_array().into_iter().flatten() {
                let key = key.as_str().expect("required key");
                if !fields.contains_key(key) {
                    out.push(format!("{at}: no {key:?}"));
                }
            }
            for (key, v) in fields {
                let here = format!("{at}/{key}");
                match (schema["properties"].get(key), schema.get("additionalProperties")) {
                    (Some(s), _) => disagreements(doc, s, v, &here, out),
                    (None, Some(Value::Bool(true))) => {}
                    (None, Some(s)) if s.is_object() => disagreements(doc, s, v, &here, out),
                    (None, _) if schema.get("oneOf").is_some() => {}
                    (None, _) => out.push(format!("{here}: not in the document")),
                }
            }
        }
        Value::Array(items) => {
            let counts = (schema["minItems"].as_u64(), schema["maxItems"].as_u64());
            if counts.0.is_some_and(|n| (items.len() as u64) < n)
                || counts.1.is_some_and(|n| items.len() as u64 > n)
            {
                out.push(format!("{at}: {} items, documented {counts:?}", items.len()));
            }
            if let Some(s) = schema.get("items") {
                for (i, v) in items.iter().enumerate() {
                    disagreements(doc, s, v, &format!("{at}/{i}"), out);
                }
            }
        }
        _ => {}
    }
}

#[test]
fn query_durations_take_exactly_the_documented_grammar() {
    // The document's pattern for `since`/`step` has no blanks; schemathesis's
    // negative cases (" 1h") were accepted, the config parser trimming them.
    let env = Env::new();
    let (d, _t, _h) = live(&env, false);
    for ok in ["/api/history?service=Web&since=1h&step=5m", "/api/incidents?since=1.5d"] {
        assert_eq!(d.get(ok).status, 200, "{ok}");
    }
    for bad in [
        "/api/history?service=Web&since=%201h",
        "/api/history?service=Web&step=5m%20",
        "/api/history?service=Web&since=1%20h",
        "/api/incidents?since=7d%0A",
        "/api/incidents?since=+7d",
    ] {
        let r = d.get(bad);
        assert_eq!(r.status, 400, "{bad}: {}", String::from_utf8_lossy(&r.body));
        assert!(r.json()["error"].as_str().is_some_and(|e| e.contains("expected a duration")));
    }
}

#[test]
fn a_missing_mistyped_or_undocumented_field_is_a_disagreement() {
    let doc = document();
    let schema = json!({"$ref": "#/components/schemas/Status"});
    let mut good = json!({
        "schema": 1, "generated_at": "2026-12-07T03:12:04.000Z", "host": "droplet-1",
        "overall": "up", "duration_ms": 4.2, "flapping": false, "services": [],
        "stale": false, "age_s": 1.5,
        "system": {"boot_id": "5a0e86fb", "booted_at": "2026-12-07T02:03:16Z", "uptime_s": 4354,
                   "cpus": 2, "load": [0.42, 0.35, 0.3],
                   "memory": {"total_bytes": 1000, "available_bytes": 800, "used_pct": 20.0,
                              "swap_total_bytes": 0, "swap_used_pct": null}}
    });
    let mut wrong = Vec::new();
    disagreements(&doc, &schema, &good, "", &mut wrong);
    assert_eq!(wrong, Vec::<String>::new());
    good["system"]["memory"]["total_bytes"] = json!("1000");
    good["system"]["load"] = json!([0.42, 0.35]);
    good["system"].as_object_mut().unwrap().remove("boot_id");
    good["system"]["uptime"] = json!(4354);
    good["generated_at"] = json!("yesterday");
    disagreements(&doc, &schema, &good, "", &mut wrong);
    wrong.sort();
    assert_eq!(
        wrong,
        [
            "/generated_at: \"yesterday\" is not an RFC 3339 date-time",
            "/system/load: 2 items, documented (Some(3), Some(3))",
            "/system/memory/total_bytes: \"1000\" is not [\"integer\"]",
            "/system/uptime: not in the document",
            "/system: no \"boot_id\"",
        ]
    );
}
