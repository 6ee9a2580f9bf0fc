//! The OpenAPI document (`GET /api/openapi.json`, src/server/openapi.json):
//! served by `run` and `serve` behind the same auth as the rest, the same
//! bytes as the file the .deb installs, and every example in it answers as
//! documented against a live `run` with history and a push check.
//! (That the document lists exactly the routes served is a unit test in
//! src/server/route.rs; schemathesis fuzzes it in tests/openapi/run.sh.)

use crate::util::{Daemon, Env, TcpFixture, request, wait_until};
use serde_json::Value;
use std::time::Duration;

const DOCUMENT: &str = include_str!("../src/server/openapi.json");
/// admin:s3cret
const GOOD: (&str, &str) = ("Authorization", "Basic YWRtaW46czNjcmV0");

fn document() -> Value {
    serde_json::from_str(DOCUMENT).expect("openapi.json is JSON")
}

/// `run` with history, a push check named as the document's examples
/// (`Web`, `Job`) and, with `auth`, basic auth; returns once it has cycled.
fn live(env: &Env, auth: bool) -> (Daemon, TcpFixture) {
    let tcp = TcpFixture::new();
    env.write("password", "s3cret\n");
    let auth = if auth {
        format!("basic_auth: {{ user: admin, password_file: {:?} }}\n", env.path("password"))
    } else {
        String::new()
    };
    env.config(&format!(
        "interval: 200ms\ntimeout: 1s\nheal: {{ enabled: false }}\n{auth}services:\n  - name: Web\n    port: {}\n  - name: Job\n    checks:\n      - type: push\n        period: 1h\n        grace: 1h\n",
        tcp.port()
    ));
    let cfg = env.config_path().display().to_string();
    let d = Daemon::start(env, &["run", "-c", &cfg], &[]);
    wait_until(Duration::from_secs(10), || {
        request(d.port, "GET", "/api/uptime", &[GOOD]).status == 200
            && request(d.port, "GET", "/api/status", &[GOOD]).status == 200
    });
    (d, tcp)
}

#[test]
fn run_and_serve_answer_the_document_behind_the_same_auth() {
    let env = Env::new();
    let (d, _t) = live(&env, true);
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
fn every_example_in_the_document_answers_as_documented() {
    let doc = document();
    let env = Env::new();
    let (d, _t) = live(&env, true);
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
                // The schema's required keys are there (the full schema check
                // is schemathesis's, in tests/openapi/run.sh).
                if let Some(r) = content[&ctype]["schema"]["$ref"].as_str() {
                    let schema = doc.pointer(r.trim_start_matches('#')).expect("schema");
                    for key in schema["required"].as_array().into_iter().flatten() {
                        let key = key.as_str().expect("key");
                        assert!(v.get(key).is_some(), "{method} {url}: no {key:?} in {v}");
                    }
                }
            }
            tried += 1;
        }
    }
    assert!(tried >= 15, "only {tried} operations tried");
}

#[test]
fn query_durations_take_exactly_the_documented_grammar() {
    // The document's pattern for `since`/`step` has no blanks; schemathesis's
    // negative cases (" 1h") were accepted, the config parser trimming them.
    let env = Env::new();
    let (d, _t) = live(&env, false);
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
