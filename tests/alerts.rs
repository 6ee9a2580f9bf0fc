//! Alerts end to end: the real binary (`check` runs and the `run` daemon)
//! against a local receiver that records every request (method, path,
//! headers, body) and can answer 2xx, 500, hang, or close the connection.
//!
//! One receiver plays all three notifiers: the webhook at `/hook`, Slack at
//! `/slack/...`, Twilio at `/twilio/2010-04-01/...`, the heartbeat at `/hb`.
//! Services are command checks whose exit code a file decides, so a test
//! flips a service up or down by writing one file.

use crate::util::Daemon;
use crate::util::{Env, wait_until};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

// ----- the receiver --------------------------------------------------------

/// How the receiver answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Status(u16),
    /// Reads the request, never answers.
    Hang,
    /// Reads the request, closes the connection.
    Close,
    /// Answers this status with a body quoting the request's Authorization
    /// header after 81 characters of text (so a cut at 120 characters of
    /// the answer would keep most of a 36-character token).
    QuoteAuth(u16),
}

/// One request the receiver read.
#[derive(Debug, Clone)]
struct Req {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: String,
    /// The status it was answered with (None: hung up or hung).
    answered: Option<u16>,
}

impl Req {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    #[track_caller]
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    /// A form field (application/x-www-form-urlencoded).
    fn form(&self, key: &str) -> Option<String> {
        self.body.split('&').find_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            (url_decode(k) == key).then(|| url_decode(v))
        })
    }

    fn ok(&self) -> bool {
        self.answered.is_some_and(|s| (200..300).contains(&s))
    }

    /// "down", "up" or another event name, whichever notifier sent it.
    fn kind(&self) -> String {
        let text = if self.path.starts_with("/hook") {
            return self.json()["event"].as_str().unwrap_or("?").to_string();
        } else if self.path.starts_with("/slack") {
            self.json()["text"].as_str().unwrap_or("").to_string()
        } else {
            self.form("Body").unwrap_or_default()
        };
        if text.contains(" DOWN") && !text.contains("still DOWN") {
            "down".into()
        } else if text.contains("back UP") || text.contains("UP again") {
            "up".into()
        } else {
            "other".into()
        }
    }
}

fn url_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("");
                out.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A hand-rolled HTTP/1.1 receiver on 127.0.0.1 (so it can hang and close
/// as well as answer); one thread per connection; stopped on Drop.
struct Receiver {
    addr: SocketAddr,
    mode: Arc<Mutex<Mode>>,
    seen: Arc<Mutex<Vec<Req>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Receiver {
    fn new(mode: Mode) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let mode = Arc::new(Mutex::new(mode));
        let seen: Arc<Mutex<Vec<Req>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (mode, seen, stop) = (Arc::clone(&mode), Arc::clone(&seen), Arc::clone(&stop));
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let (mode, seen, stop) =
                        (Arc::clone(&mode), Arc::clone(&seen), Arc::clone(&stop));
                    std::thread::spawn(move || serve(stream, &mode, &seen, &stop));
                }
            })
        };
        Receiver { addr, mode, seen, stop, thread: Some(thread) }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }

    fn requests(&self) -> Vec<Req> {
        self.seen.lock().unwrap().clone()
    }

    /// Requests under `prefix` that were answered 2xx.
    fn delivered(&self, prefix: &str) -> Vec<Req> {
        self.requests().into_iter().filter(|r| r.path.starts_with(prefix) && r.ok()).collect()
    }

    /// The kinds ("down", "up", ...) delivered under `prefix`, in order.
    fn kinds(&self, prefix: &str) -> Vec<String> {
        self.delivered(prefix).iter().map(Req::kind).collect()
    }

    /// The webhook events delivered, as "service event".
    fn hook_events(&self) -> Vec<String> {
        self.delivered("/hook")
            .iter()
            .map(|r| {
                let v = r.json();
                format!(
                    "{} {}",
                    v["service"].as_str().unwrap_or("?"),
                    v["event"].as_str().unwrap_or("?")
                )
            })
            .collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(mut stream: TcpStream, mode: &Mutex<Mode>, seen: &Mutex<Vec<Req>>, stop: &AtomicBool) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        if buf.len() > 1 << 20 {
            return;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or("").split(' ');
    let method = first.next().unwrap_or("").to_string();
    let path = first.next().unwrap_or("").to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let len = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0);
    while buf.len() < head_end + len {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let body = String::from_utf8_lossy(&buf[head_end..]).into_owned();
    let m = *mode.lock().unwrap();
    let auth = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("authorization"))
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let answered = match m {
        Mode::Status(code) | Mode::QuoteAuth(code) => Some(code),
        _ => None,
    };
    seen.lock().unwrap().push(Req { method, path, headers, body, answered });
    match m {
        Mode::Status(code) => {
            let text = if (200..300).contains(&code) { "ok" } else { "nope" };
            let _ = write!(
                stream,
                "HTTP/1.1 {code} X\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                text.len()
            );
        }
        Mode::QuoteAuth(code) => {
            let text = format!("{} {auth}", "x".repeat(80));
            let _ = write!(
                stream,
                "HTTP/1.1 {code} X\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                text.len()
            );
        }
        Mode::Close => {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
        Mode::Hang => crate::util::hold_silently(&stream, stop),
    }
}

// ----- the monitored services ----------------------------------------------

/// A command check `bin/probe-<name>` exiting with the code in `<name>.rc`
/// (0 up, 2 down; default up).
fn probe(env: &Env, name: &str) -> String {
    let d = env.root().display();
    let script = format!(
        "#!/bin/sh\n[ \"$1\" = __ready ] && exit 0\nexit \"$(cat '{d}/{name}.rc' 2>/dev/null || echo 0)\"\n"
    );
    env.fake_program(&format!("probe-{name}"), &script).display().to_string()
}

fn set_up(env: &Env, name: &str, up: bool) {
    env.write(&format!("{name}.rc"), if up { "0\n" } else { "2\n" });
}

const SLACK_SECRET: &str = "T0SLACK/B0SLACK/slacksecretXYZ123";
const BEARER: &str = "bearer-secret-4f9a";
const TWILIO_TOKEN: &str = "twilio-secret-77c2";
const SID: &str = "AC0123456789abcdef";

/// All three notifiers on `r`, plus any extra YAML keys for each.
fn notifiers(env: &Env, r: &Receiver, timeout: &str) -> String {
    let bearer = env.write("hook-token", &format!("{BEARER}\n"));
    let twilio = env.write("twilio-token", &format!("{TWILIO_TOKEN}\n"));
    format!(
        "notify:
  - {{type: webhook, name: hook, url: \"{hook}\", bearer_token_file: \"{bearer}\", timeout: {timeout}, headers: {{X-Env: test}}}}
  - {{type: slack, name: chat, url: \"{slack}\", timeout: {timeout}}}
  - {{type: twilio, name: sms, account_sid: {SID}, auth_token_file: \"{twilio}\", from: \"+15550000000\", to: [\"+15551111111\"], api_base: \"{api}\", timeout: {timeout}}}
",
        hook = r.url("/hook"),
        slack = r.url(&format!("/slack/{SLACK_SECRET}")),
        api = r.url("/twilio"),
        bearer = bearer.display(),
        twilio = twilio.display(),
    )
}

/// An env with service `web` (a command check), `extra` service keys, and
/// the three notifiers on `r`.
fn web_env(r: &Receiver, service_extra: &str, top: &str) -> Env {
    let env = Env::new();
    let probe = probe(&env, "web");
    let yaml = format!(
        "interval: 100ms\ntimeout: 2s\n{top}{}services:\n  - name: web\n    checks: [{{type: command, argv: [\"{probe}\"]}}]\n{service_extra}",
        notifiers(&env, r, "1s")
    );
    env.config(&yaml);
    env
}

fn cfg(env: &Env) -> String {
    env.config_path().display().to_string()
}

/// Waits until the daemon has written `n` more status files.
#[track_caller]
fn wait_cycles(env: &Env, n: usize) {
    let mut last = std::fs::read_to_string(env.status_path()).unwrap_or_default();
    let mut seen = 0;
    wait_until(Duration::from_secs(10), || {
        let now = std::fs::read_to_string(env.status_path()).unwrap_or_default();
        if now != last && !now.is_empty() {
            last = now;
            seen += 1;
        }
        seen >= n
    });
}

// ----- tests ----------------------------------------------------------------

#[test]
fn down_then_up_over_check_runs_gives_one_message_of_each_per_notifier() {
    let r = Receiver::new(Mode::Status(200));
    let env = web_env(&r, "", "");
    set_up(&env, "web", true);
    env.check(&[]).code(0);
    env.check(&[]).code(0);
    assert!(r.requests().is_empty(), "first seen up raises nothing: {:?}", r.requests());

    set_up(&env, "web", false);
    for _ in 0..3 {
        env.check(&[]).code(2);
    }
    set_up(&env, "web", true);
    for _ in 0..3 {
        env.check(&[]).code(0);
    }
    for prefix in ["/hook", "/slack", "/twilio"] {
        assert_eq!(r.kinds(prefix), ["down", "up"], "{prefix}: {:#?}", r.requests());
    }
    assert_eq!(r.requests().len(), 6, "{:#?}", r.requests());
    let state = env.state();
    assert_eq!(state["undelivered"], serde_json::json!([]), "{state:#}");

    // The webhook body.
    let hooks = r.delivered("/hook");
    let down = hooks[0].json();
    assert_eq!(down["service"], "web");
    assert_eq!(down["status"], "down");
    assert_eq!(down["previous"], "up");
    assert!(down["since"].is_string() && down["host"].is_string(), "{down:#}");
    assert_eq!(down["checks"][0]["type"], "command");
    assert!(down["detail"].as_str().is_some_and(|d| !d.is_empty()), "{down:#}");
    let up = hooks[1].json();
    assert_eq!((up["event"].as_str(), up["previous"].as_str()), (Some("up"), Some("down")));
    assert!(up["down_for_s"].is_u64(), "{up:#}");
    assert_eq!(hooks[0].header("authorization"), Some(format!("Bearer {BEARER}").as_str()));
    assert_eq!(hooks[0].header("x-env"), Some("test"));
    assert!(hooks[0].header("content-type").is_some_and(|c| c.starts_with("application/json")));
}

#[test]
fn slack_gets_readable_text() {
    let r = Receiver::new(Mode::Status(200));
    let env = web_env(&r, "", "");
    set_up(&env, "web", false);
    env.check(&[]).code(2);
    let slack = r.delivered("/slack");
    assert_eq!(slack.len(), 1, "{:#?}", r.requests());
    assert_eq!(slack[0].method, "POST");
    assert_eq!(slack[0].path, format!("/slack/{SLACK_SECRET}"));
    let v = slack[0].json();
    let text = v["text"].as_str().expect("text");
    assert!(text.contains("web") && text.contains("DOWN"), "{text}");
}

#[test]
fn twilio_gets_form_fields_basic_auth_and_one_request_per_recipient() {
    let r = Receiver::new(Mode::Status(201));
    let env = Env::new();
    let probe = probe(&env, "web");
    let token = env.write("twilio-token", &format!("{TWILIO_TOKEN}\n"));
    env.config(&format!(
        "notify:
  - type: twilio
    account_sid: {SID}
    auth_token_file: \"{}\"
    from: \"+15550000000\"
    to: [\"+15551111111\", \"+15552222222\"]
    api_base: \"{}\"
services:
  - name: {}
    checks: [{{type: command, argv: [\"{probe}\"]}}]
",
        token.display(),
        r.url("/twilio/"),
        "A very long service name that goes on and on to make the SMS longer than one segment allows"
    ));
    set_up(&env, "web", false);
    env.check(&[]).code(2);
    let reqs = r.delivered("/twilio");
    assert_eq!(reqs.len(), 2, "{:#?}", r.requests());
    let expected_auth = format!("Basic {}", b64(format!("{SID}:{TWILIO_TOKEN}").as_bytes()));
    let mut to = Vec::new();
    for q in &reqs {
        assert_eq!(q.method, "POST");
        assert_eq!(q.path, format!("/twilio/2010-04-01/Accounts/{SID}/Messages.json"));
        assert_eq!(q.header("authorization"), Some(expected_auth.as_str()));
        assert!(
            q.header("content-type")
                .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"))
        );
        assert_eq!(q.form("From").as_deref(), Some("+15550000000"));
        let body = q.form("Body").expect("Body");
        assert!(body.contains("DOWN") && body.chars().count() <= 160, "{body:?}");
        to.push(q.form("To").expect("To"));
    }
    to.sort();
    assert_eq!(to, ["+15551111111", "+15552222222"]);
}

fn b64(input: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in input.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            out.push(if i <= c.len() { A[(n >> (18 - 6 * i) & 63) as usize] as char } else { '=' });
        }
    }
    out
}

#[test]
fn confirm_2_silences_a_one_cycle_blip() {
    let r = Receiver::new(Mode::Status(200));
    let env = web_env(&r, "    confirm: 2\n", "");
    set_up(&env, "web", true);
    env.check(&[]).code(0);
    set_up(&env, "web", false);
    env.check(&[]).code(2);
    set_up(&env, "web", true);
    env.check(&[]).code(0);
    env.check(&[]).code(0);
    assert!(r.requests().is_empty(), "a blip pages nobody: {:#?}", r.requests());

    set_up(&env, "web", false);
    env.check(&[]).code(2);
    assert!(r.requests().is_empty());
    env.check(&[]).code(2);
    assert_eq!(r.hook_events(), ["web down"]);
    set_up(&env, "web", true);
    env.check(&[]).code(0);
    assert_eq!(r.hook_events(), ["web down"], "recovery needs 2 cycles too");
    env.check(&[]).code(0);
    assert_eq!(r.hook_events(), ["web down", "web up"]);
}

/// A receiver that fails (500), hangs or closes the connection costs a
/// `check` run at most its timeout; the event is kept and delivered by the
/// next run once the receiver is back.
#[test]
fn a_failing_receiver_costs_check_at_most_its_timeout_and_nothing_is_lost() {
    for mode in [Mode::Hang, Mode::Status(500), Mode::Close, Mode::Status(429)] {
        let r = Receiver::new(mode);
        let env = web_env(&r, "", "");
        set_up(&env, "web", true);
        let baseline = env.check(&[]).elapsed;
        set_up(&env, "web", false);
        let out = env.check(&[]);
        out.code(2);
        // Notifiers run in parallel, each within its 1 s timeout.
        assert!(
            out.elapsed < baseline + Duration::from_millis(1900),
            "{mode:?}: check took {:?} (baseline {baseline:?})\n{}",
            out.elapsed,
            out.stderr
        );
        assert!(out.stderr.contains("kept for the next run"), "{mode:?}: {}", out.stderr);
        assert!(!r.requests().is_empty(), "{mode:?}: it was tried");
        let state = env.state();
        assert_eq!(state["undelivered"].as_array().map(Vec::len), Some(3), "{mode:?}: {state:#}");

        r.set(Mode::Status(200));
        env.check(&[]).code(2);
        for prefix in ["/hook", "/slack", "/twilio"] {
            assert_eq!(r.kinds(prefix), ["down"], "{mode:?} {prefix}: {:#?}", r.requests());
        }
        assert_eq!(env.state()["undelivered"], serde_json::json!([]));
        // Delivered means done: no repeat on the next run.
        env.check(&[]).code(2);
        assert_eq!(r.delivered("/hook").len(), 1, "{mode:?}");
    }
}

#[test]
fn a_4xx_answer_is_not_retried_forever() {
    let r = Receiver::new(Mode::Status(404));
    let env = web_env(&r, "", "");
    set_up(&env, "web", false);
    let out = env.check(&[]);
    assert!(out.stderr.contains("HTTP 404"), "{}", out.stderr);
    assert_eq!(env.state()["undelivered"], serde_json::json!([]));
    let n = r.requests().len();
    env.check(&[]);
    assert_eq!(r.requests().len(), n, "no retry of a 404");
}

#[test]
fn no_secret_in_output_state_or_status() {
    let r = Receiver::new(Mode::Status(500));
    let env = web_env(&r, "", "");
    set_up(&env, "web", false);
    let out1 = env.check(&[]);
    r.set(Mode::Close);
    let out2 = env.check(&[]);
    let test = env.cmd(&["notify-test", "-c", &cfg(&env)]);
    test.code(1);
    let texts = [
        out1.stderr,
        out1.stdout,
        out2.stderr,
        out2.stdout,
        test.stdout,
        test.stderr,
        env.read("status.json"),
        env.read("state.json"),
    ];
    for secret in [SLACK_SECRET, "slacksecretXYZ123", BEARER, TWILIO_TOKEN, &r.url("/slack")] {
        for t in &texts {
            assert!(!t.contains(secret), "{secret:?} leaked in:\n{t}");
        }
    }
    // The errors still say which notifier and what went wrong.
    assert!(texts[0].contains("chat") && texts[0].contains("HTTP 500"), "{}", texts[0]);
}

#[test]
fn a_huge_retry_after_does_not_crash_check_nor_lose_its_state() {
    // A receiver answering 429 with an absurd Retry-After must cost no more
    // than a retry later: not a crash that skips saving the state (which
    // would lose restart records and re-page every run).
    let hook = crate::util::http_handler(|_| {
        crate::util::Reply::new(429, "slow down").header("Retry-After", "18446744073709551615")
    });
    let env = Env::new();
    let probe = probe(&env, "web");
    env.config(&format!(
        "notify:\n  - {{type: webhook, name: hook, url: \"{}\", timeout: 1s}}\nservices:\n  - name: web\n    checks: [{{type: command, argv: [\"{probe}\"]}}]\n",
        hook.url("/hook")
    ));
    set_up(&env, "web", false);
    let out = env.check(&[]);
    crate::util::assert_no_panic(&out);
    out.code(2);
    assert!(!hook.requests().is_empty(), "the receiver was never asked");
    let state = env.state();
    assert_eq!(state["services"]["web"]["alerted"], "down", "{state:#}");
    let kept = state["undelivered"].as_array().cloned().unwrap_or_default();
    assert_eq!(kept.len(), 1, "{state:#}");
}

#[test]
fn a_malformed_secret_url_is_reported_without_echoing_it() {
    // A typo in a Slack/webhook/heartbeat URL is a config error; the error
    // must still locate it but never print the URL (its path is the secret).
    let secret = "XSECRETX0123456789";
    for (yaml, line) in [
        (
            format!(
                "notify:\n  - type: slack\n    url: \"https://hooks.slack.com/services/T0/{secret} x\"\n"
            ),
            3,
        ),
        (format!("notify:\n  - type: webhook\n    url: \"htps://example.internal/{secret}\"\n"), 3),
        (format!("heartbeat: {{url: \"https://hc-ping.com/{secret}\\n\"}}\n"), 1),
    ] {
        let env = Env::new();
        env.write("monitor.yml", &format!("{yaml}services:\n  - name: web\n    port: 1\n"));
        let out = env.cmd(&["validate", "-c", &cfg(&env)]);
        out.code(3);
        assert!(!out.stderr.contains(secret), "secret echoed:\n{}", out.stderr);
        assert!(out.stderr.contains(&format!("monitor.yml:{line}:")), "{}", out.stderr);
        assert!(out.stderr.contains("URL"), "{}", out.stderr);
    }
}

#[test]
fn heartbeat_pings_ok_and_fail_from_check() {
    let r = Receiver::new(Mode::Status(200));
    let env = Env::new();
    let probe = probe(&env, "web");
    env.config(&format!(
        "heartbeat: {{url: \"{}\", timeout: 1s}}\nservices:\n  - name: web\n    checks: [{{type: command, argv: [\"{probe}\"]}}]\n",
        r.url("/hb")
    ));
    set_up(&env, "web", true);
    env.check(&[]).code(0);
    set_up(&env, "web", false);
    env.check(&[]).code(2);
    let paths: Vec<String> =
        r.requests().into_iter().map(|q| format!("{} {}", q.method, q.path)).collect();
    assert_eq!(paths, ["GET /hb", "GET /hb/fail"]);

    // A dead heartbeat receiver costs at most its timeout.
    r.set(Mode::Hang);
    let out = env.check(&[]);
    // Generous for a loaded 2-core machine; without the timeout it would hang.
    assert!(out.elapsed < Duration::from_secs(4), "{:?}", out.elapsed);
    assert!(out.stderr.contains("heartbeat"), "{}", out.stderr);
}

#[test]
fn muted_service_is_neither_restarted_nor_paged_until_the_mute_ends() {
    let r = Receiver::new(Mode::Status(200));
    let env = Env::new();
    env.fake_systemctl();
    env.unit("web.service", "failed", "failed", "exit-code");
    env.config(&format!(
        "heal: {{after_failures: 1, grace: 0s}}\n{}services:\n  - name: web\n    unit: web.service\n",
        notifiers(&env, &r, "1s")
    ));
    // Long enough for two checks even on a loaded 2-core CI machine (1.5 s
    // was not: the mute expired before the second check's assertion).
    env.cmd(&["mute", "-c", &cfg(&env), "web", "--for", "3s", "--reason", "deploy"]).code(0);
    let muted_at = Instant::now();
    env.check(&[]).code(2);
    env.check(&[]).code(2);
    assert!(env.service("web")["muted_until"].is_string());
    assert!(
        !env.systemctl_actions().iter().any(|a| a.starts_with("restart")),
        "{:?}",
        env.systemctl_calls()
    );
    assert!(r.requests().is_empty(), "{:#?}", r.requests());

    // Once the mute has expired: paged once and restarted.
    wait_until(Duration::from_secs(15), || {
        env.check(&[]);
        !r.hook_events().is_empty()
    });
    assert!(muted_at.elapsed() >= Duration::from_millis(2900));
    assert_eq!(r.hook_events()[0], "web down");
    assert!(
        env.systemctl_actions().iter().any(|a| a == "restart web.service"),
        "{:?}",
        env.systemctl_calls()
    );
    env.check(&[]);
    let downs = r.hook_events().iter().filter(|e| *e == "web down").count();
    assert_eq!(downs, 1, "{:?}", r.hook_events());
}

#[test]
fn a_dependency_down_pages_once_naming_the_cause_and_the_dependent_is_not_restarted() {
    let r = Receiver::new(Mode::Status(200));
    let env = Env::new();
    env.fake_systemctl();
    env.unit("chatstack.service", "failed", "failed", "exit-code");
    env.unit("ai-memory.service", "failed", "failed", "exit-code");
    env.config(&format!(
        "heal: {{after_failures: 1, grace: 0s}}\n{}services:
  - name: ChatStack
    unit: chatstack.service
    depends_on: [AI-Memory]
  - name: AI-Memory
    unit: ai-memory.service
",
        notifiers(&env, &r, "1s")
    ));
    env.check(&[]).code(2);
    env.check(&[]).code(2);
    let downs: Vec<Req> =
        r.delivered("/hook").into_iter().filter(|q| q.json()["event"] == "down").collect();
    assert_eq!(downs.len(), 1, "{:#?}", r.hook_events());
    let v = downs[0].json();
    assert_eq!(v["service"], "AI-Memory");
    assert_eq!(v["also_affected"], serde_json::json!(["ChatStack"]));
    let slack = r
        .delivered("/slack")
        .into_iter()
        .map(|q| q.json()["text"].as_str().unwrap_or("").to_string());
    let slack_down: Vec<String> = slack.filter(|t| t.contains("DOWN")).collect();
    assert_eq!(slack_down.len(), 1, "{slack_down:?}");
    assert!(
        slack_down[0].contains("AI-Memory") && slack_down[0].contains("ChatStack"),
        "{slack_down:?}"
    );
    let sms: Vec<String> = r
        .delivered("/twilio")
        .iter()
        .filter_map(|q| q.form("Body"))
        .filter(|b| b.contains("DOWN"))
        .collect();
    assert_eq!(sms.len(), 1, "{sms:?}");
    assert!(sms[0].contains("AI-Memory") && sms[0].contains("ChatStack"), "{sms:?}");

    let actions = env.systemctl_actions();
    assert!(actions.iter().any(|a| a == "restart ai-memory.service"), "{actions:?}");
    assert!(!actions.iter().any(|a| a.contains("chatstack.service")), "{actions:?}");
    assert!(r.hook_events().iter().all(|e| !e.starts_with("ChatStack")), "{:?}", r.hook_events());

    // The dependency recovers, the dependent does not: now it pages for itself.
    env.unit("ai-memory.service", "active", "running", "success");
    env.check(&[]).code(2);
    let events = r.hook_events();
    assert!(events.contains(&"ChatStack down".to_string()), "{events:?}");
    assert!(events.contains(&"AI-Memory up".to_string()), "{events:?}");
}

#[test]
fn notify_test_reports_each_notifier_and_exits_0_only_if_all_worked() {
    let r = Receiver::new(Mode::Status(200));
    let env = web_env(&r, "", "");
    let out = env.cmd(&["notify-test", "-c", &cfg(&env)]);
    out.code(0);
    for name in ["hook: ok", "chat (slack): ok", "sms (twilio): ok"] {
        let name = name.replace("hook: ok", "hook (webhook): ok");
        assert!(out.stdout.contains(&name), "{name}: {}", out.stdout);
    }
    assert_eq!(r.delivered("/hook").len(), 1);
    assert_eq!(r.delivered("/hook")[0].json()["event"], "test");
    assert!(r.delivered("/slack")[0].json()["text"].is_string());
    assert!(r.delivered("/twilio")[0].form("Body").is_some_and(|b| b.contains("test")));

    r.set(Mode::Status(500));
    let out = env.cmd(&["notify-test", "-c", &cfg(&env)]);
    out.code(1);
    assert!(out.stdout.contains("hook (webhook): error: HTTP 500"), "{}", out.stdout);

    let none = Env::new();
    none.config("services:\n  - name: x\n    port: 1\n");
    let out = none.cmd(&["notify-test", "-c", &cfg(&none)]);
    out.code(1);
    assert!(out.stderr.contains("no notifiers"), "{}", out.stderr);
}

#[test]
fn the_daemon_alerts_once_per_transition_and_pings_the_heartbeat() {
    let r = Receiver::new(Mode::Status(200));
    let top = format!("heartbeat: {{url: \"{}\", timeout: 1s}}\n", r.url("/hb"));
    let env = web_env(&r, "", &top);
    set_up(&env, "web", true);
    let d = Daemon::start(&env, &["run", "-c", &cfg(&env)], &[]);
    wait_cycles(&env, 2);
    set_up(&env, "web", false);
    wait_until(Duration::from_secs(10), || {
        ["/hook", "/slack", "/twilio"].iter().all(|p| !r.kinds(p).is_empty())
    });
    wait_cycles(&env, 5);
    set_up(&env, "web", true);
    wait_until(Duration::from_secs(10), || {
        ["/hook", "/slack", "/twilio"].iter().all(|p| r.kinds(p).len() >= 2)
    });
    wait_cycles(&env, 5);
    for prefix in ["/hook", "/slack", "/twilio"] {
        assert_eq!(r.kinds(prefix), ["down", "up"], "{prefix}: {:?}", d.log());
    }
    let pings: Vec<String> =
        r.requests().into_iter().filter(|q| q.path.starts_with("/hb")).map(|q| q.path).collect();
    assert!(
        pings.contains(&"/hb".to_string()) && pings.contains(&"/hb/fail".to_string()),
        "{pings:?}"
    );

    let metrics = d.get("/metrics").text();
    assert!(
        metrics.contains("chatstack_notifications_total{notifier=\"hook\",result=\"sent\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("chatstack_notifications_total{notifier=\"sms\",result=\"failed\"} 0"),
        "{metrics}"
    );
    for secret in [SLACK_SECRET, BEARER, TWILIO_TOKEN] {
        assert!(!d.log().join("\n").contains(secret), "{secret} in the daemon's log");
        assert!(!metrics.contains(secret));
    }
}

#[test]
fn check_and_the_daemon_share_the_alert_state() {
    let r = Receiver::new(Mode::Status(200));
    let env = web_env(&r, "", "");
    set_up(&env, "web", false);
    env.check(&[]).code(2);
    assert_eq!(r.hook_events(), ["web down"]);
    let _d = Daemon::start(&env, &["run", "-c", &cfg(&env)], &[]);
    wait_cycles(&env, 5);
    assert_eq!(r.hook_events(), ["web down"], "the daemon knows it was announced");
    set_up(&env, "web", true);
    wait_until(Duration::from_secs(10), || r.hook_events().len() >= 2);
    wait_cycles(&env, 3);
    assert_eq!(r.hook_events(), ["web down", "web up"]);
}

#[test]
fn a_hanging_receiver_does_not_slow_the_daemons_cycles() {
    let r = Receiver::new(Mode::Hang);
    let env = Env::new();
    let probe = probe(&env, "web");
    env.config(&format!(
        "interval: 100ms\nnotify:\n  - {{type: webhook, name: hook, url: \"{}\", timeout: 5s}}\nservices:\n  - name: web\n    checks: [{{type: command, argv: [\"{probe}\"]}}]\n",
        r.url("/hook")
    ));
    set_up(&env, "web", false);
    let mut d = Daemon::start(&env, &["run", "-c", &cfg(&env)], &[]);
    wait_until(Duration::from_secs(10), || !r.requests().is_empty());
    // While the sender is stuck on the receiver (for up to 5 s), cycles
    // go on at their pace.
    let started = Instant::now();
    wait_cycles(&env, 8);
    assert!(started.elapsed() < Duration::from_secs(3), "8 cycles took {:?}", started.elapsed());
    let doc = env.status();
    assert!(doc["duration_ms"].as_f64().is_some_and(|ms| ms < 500.0), "{doc:#}");
    assert!(d.exited().is_none(), "the daemon keeps running");

    // The receiver comes back: the retry delivers the event.
    r.set(Mode::Status(200));
    wait_until(Duration::from_secs(20), || !r.delivered("/hook").is_empty());
    assert_eq!(r.hook_events(), ["web down"]);
    assert!(d.logged("retry").is_some(), "{:?}", d.log());
}

#[test]
fn at_shutdown_the_daemon_keeps_what_it_could_not_deliver() {
    let r = Receiver::new(Mode::Hang);
    let env = Env::new();
    let probe = probe(&env, "web");
    env.config(&format!(
        "interval: 100ms\nnotify:\n  - {{type: webhook, name: hook, url: \"{}\", timeout: 5s}}\nservices:\n  - name: web\n    checks: [{{type: command, argv: [\"{probe}\"]}}]\n",
        r.url("/hook")
    ));
    set_up(&env, "web", false);
    let mut d = Daemon::start(&env, &["run", "-c", &cfg(&env)], &[]);
    wait_until(Duration::from_secs(10), || !r.requests().is_empty());
    d.signal(rustix::process::Signal::TERM);
    let (code, took) = d.wait_exit(Duration::from_secs(10));
    assert_eq!(code, Some(0), "{:?}", d.log());
    // Typically ~2 s (the sender's grace); generous for a loaded machine.
    assert!(took < Duration::from_secs(6), "shutdown took {took:?}");
    let state = env.state();
    let kept = state["undelivered"].as_array().cloned().unwrap_or_default();
    assert_eq!(kept.len(), 1, "{state:#}");
    assert_eq!(kept[0]["notifier"], "hook");
    assert_eq!(kept[0]["event"]["event"], "down");

    // The next run, a `check` here, delivers it.
    r.set(Mode::Status(200));
    env.check(&[]).code(2);
    assert_eq!(r.hook_events(), ["web down"]);
    assert_eq!(env.state()["undelivered"], serde_json::json!([]));
}

#[test]
fn a_daemon_killed_with_sigkill_loses_no_alert() {
    // Durable delivery: the cycle that raises an event saves it in the
    // state file's outbox before it ends; a SIGKILL at any moment after
    // that (here: while the receiver hangs on the delivery) loses nothing,
    // and the next daemon delivers it (same id).
    let r = Receiver::new(Mode::Hang);
    let env = web_env(&r, "", "");
    set_up(&env, "web", false);
    let mut d = Daemon::start(&env, &["run", "-c", &cfg(&env), "--no-http"], &[]);
    wait_until(Duration::from_secs(10), || !r.requests().is_empty());
    let kept = env.state()["undelivered"].as_array().cloned().unwrap_or_default();
    let ids: Vec<String> = kept
        .iter()
        .filter(|d| d["notifier"] == "hook")
        .map(|d| d["event"]["id"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(ids.len(), 1, "the down event is in the outbox: {kept:#?}");
    d.signal(rustix::process::Signal::KILL);
    let _ = d.wait_exit(Duration::from_secs(5));
    assert!(r.hook_events().is_empty(), "nothing was delivered before the kill");

    r.set(Mode::Status(200));
    let _d = Daemon::start(&env, &["run", "-c", &cfg(&env), "--no-http"], &[]);
    wait_until(Duration::from_secs(15), || r.hook_events() == ["web down"]);
    let delivered = r.delivered("/hook");
    assert_eq!(delivered[0].json()["id"].as_str(), Some(ids[0].as_str()));
    // Once delivered, the next cycles forget it.
    wait_until(Duration::from_secs(10), || {
        !env.state()["undelivered"]
            .as_array()
            .is_some_and(|a| a.iter().any(|d| d["notifier"] == "hook"))
    });
    assert_eq!(r.hook_events(), ["web down"], "delivered once");
}

#[test]
fn a_kill_right_after_the_raising_cycle_is_delivered_by_the_next_check() {
    // The same outbox serves both modes: a daemon killed before its sender
    // even tried leaves the event for a cron `check` to deliver.
    let r = Receiver::new(Mode::Status(200));
    let env = web_env(&r, "", "");
    set_up(&env, "web", false);
    // The notifiers point at a closed port first: nothing can be sent.
    let closed = format!("127.0.0.1:{}", crate::util::closed_port());
    let yaml =
        std::fs::read_to_string(env.config_path()).unwrap().replace(&r.addr.to_string(), &closed);
    std::fs::write(env.config_path(), &yaml).unwrap();
    let mut d = Daemon::start(&env, &["run", "-c", &cfg(&env), "--no-http"], &[]);
    wait_until(Duration::from_secs(10), || {
        let text = std::fs::read_to_string(env.state_path()).unwrap_or_default();
        let state: Value = serde_json::from_str(&text).unwrap_or_default();
        state["undelivered"].as_array().is_some_and(|a| a.len() >= 3)
    });
    d.signal(rustix::process::Signal::KILL);
    let _ = d.wait_exit(Duration::from_secs(5));
    let yaml = yaml.replace(&closed, &r.addr.to_string());
    std::fs::write(env.config_path(), yaml).unwrap();
    env.check(&[]).code(2);
    assert_eq!(r.kinds("/hook"), ["down"]);
    assert_eq!(r.kinds("/slack"), ["down"]);
    assert_eq!(r.kinds("/twilio"), ["down"]);
    assert_eq!(env.state()["undelivered"], serde_json::json!([]));
}

/// An env with service `web` and an Alertmanager notifier whose two
/// members are `/am1` and `/am2` of `r`.
fn am_env(r: &Receiver, resend: &str) -> Env {
    let env = Env::new();
    let probe = probe(&env, "web");
    env.config(&format!(
        "interval: 100ms\ntimeout: 2s\nhost: droplet-9\npublic_url: https://status.example/\nnotify:\n  - {{type: alertmanager, name: am, urls: [\"{}\", \"{}\"], labels: {{team: chat}}, resend: {resend}, timeout: 1s}}\nservices:\n  - name: web\n    checks: [{{type: command, argv: [\"{probe}\"]}}]\n",
        r.url("/am1"),
        r.url("/am2")
    ));
    env
}

/// The alerts posted to `/amN/api/v2/alerts`, as (alertname, firing?).
fn posted(r: &Receiver, member: &str) -> Vec<(String, bool)> {
    r.delivered(&format!("/{member}/api/v2/alerts"))
        .iter()
        .flat_map(|q| q.json().as_array().cloned().unwrap_or_default())
        .map(|a| {
            (
                a["labels"]["alertname"].as_str().unwrap_or("?").to_string(),
                a.get("endsAt").is_none(),
            )
        })
        .collect()
}

#[test]
fn alertmanager_gets_firing_resent_and_resolved_alerts_from_check_runs() {
    let r = Receiver::new(Mode::Status(200));
    let env = am_env(&r, "1s");
    set_up(&env, "web", true);
    env.check(&[]).code(0);
    assert!(r.requests().is_empty());
    set_up(&env, "web", false);
    env.check(&[]).code(2);
    let down = ("ChatstackServiceDown".to_string(), true);
    assert_eq!(posted(&r, "am1"), std::slice::from_ref(&down));
    assert_eq!(posted(&r, "am2"), std::slice::from_ref(&down), "every member of the pair");
    let first = r.delivered("/am1/")[0].json()[0].clone();
    assert_eq!(
        first["labels"],
        serde_json::json!({"alertname": "ChatstackServiceDown", "service": "web", "host": "droplet-9", "severity": "critical", "team": "chat"})
    );
    assert_eq!(first["generatorURL"], "https://status.example/");
    assert!(first["annotations"]["summary"].as_str().unwrap().contains("web is down"));
    // Within `resend`: not again; after it: again, with the same startsAt.
    env.check(&[]).code(2);
    assert_eq!(posted(&r, "am1").len(), 1);
    let t0 = Instant::now();
    wait_until(Duration::from_secs(10), || {
        if t0.elapsed() > Duration::from_millis(1100) {
            env.check(&[]).code(2);
        }
        posted(&r, "am1").len() == 2
    });
    let again = r.delivered("/am1/")[1].json()[0].clone();
    assert_eq!(again["startsAt"], first["startsAt"]);
    set_up(&env, "web", true);
    env.check(&[]).code(0);
    let last = r.delivered("/am1/").last().unwrap().json()[0].clone();
    assert!(last["endsAt"].is_string(), "{last}");
    assert_eq!(posted(&r, "am2").last(), Some(&("ChatstackServiceDown".to_string(), false)));
    env.check(&[]).code(0);
    assert_eq!(posted(&r, "am1").len(), 3, "resolved once");
}

#[test]
fn alertmanager_resends_from_the_daemon_and_notify_test_ends_at_once() {
    let r = Receiver::new(Mode::Status(200));
    let env = am_env(&r, "1s");
    set_up(&env, "web", false);
    let _d = Daemon::start(&env, &["run", "-c", &cfg(&env), "--no-http"], &[]);
    wait_until(Duration::from_secs(15), || posted(&r, "am1").len() >= 3);
    assert!(posted(&r, "am1").iter().all(|(n, firing)| n == "ChatstackServiceDown" && *firing));
    let out = env.cmd(&["notify-test", "-c", &cfg(&env)]);
    out.code(0);
    assert!(out.stdout.contains("am (alertmanager): ok (2 messages)"), "{}", out.stdout);
    let test = r
        .delivered("/am2/")
        .into_iter()
        .map(|q| q.json()[0].clone())
        .find(|a| a["labels"]["alertname"] == "ChatstackTest")
        .expect("a test alert");
    assert_eq!(test["startsAt"], test["endsAt"], "a test alert ends at once");
}

/// The dead member of an HA pair, as the tests play it.
#[derive(Debug, Clone, Copy)]
enum DeadMember {
    /// Nothing listens: connections are refused at once.
    Refused,
    /// A listener that reads the request and never answers.
    Hanging,
}

/// An env with service `web` (down) and an Alertmanager pair whose member 1
/// is `dead` and member 2 is `/am2` of `live`; returns the hanging
/// listener too, to keep it alive.
fn ha_env(dead: DeadMember, live: &Receiver, timeout: &str) -> (Env, Option<Receiver>) {
    let (first, hanging) = match dead {
        DeadMember::Refused => {
            (format!("http://127.0.0.1:{}/am1", crate::util::closed_port()), None)
        }
        DeadMember::Hanging => {
            let h = Receiver::new(Mode::Hang);
            (h.url("/am1"), Some(h))
        }
    };
    let env = Env::new();
    let probe = probe(&env, "web");
    env.config(&format!(
        "interval: 100ms\ntimeout: 2s\nnotify:\n  - {{type: alertmanager, name: am, urls: [\"{first}\", \"{}\"], resend: 10m, timeout: {timeout}}}\nservices:\n  - name: web\n    checks: [{{type: command, argv: [\"{probe}\"]}}]\n",
        live.url("/am2")
    ));
    set_up(&env, "web", false);
    (env, hanging)
}

/// SPEC Part 3, small promises: an Alertmanager HA member that is down or
/// hangs never delays or prevents delivery to the other (`check` runs:
/// each member has its own time budget; the dead one's alert waits in the
/// outbox for the next run).
#[test]
fn a_dead_or_hanging_alertmanager_member_never_holds_back_the_other_in_check() {
    for dead in [DeadMember::Refused, DeadMember::Hanging] {
        let live = Receiver::new(Mode::Status(200));
        let (env, hanging) = ha_env(dead, &live, "2s");
        let out = env.check(&[]);
        out.code(2);
        let down = ("ChatstackServiceDown".to_string(), true);
        assert_eq!(posted(&live, "am2"), std::slice::from_ref(&down), "{dead:?}: {}", out.stderr);
        // The dead member costs the run at most its own timeout.
        assert!(out.elapsed < Duration::from_millis(3500), "{dead:?}: took {:?}", out.elapsed);
        assert!(out.stderr.contains("am (member 1)"), "{dead:?}: {}", out.stderr);
        let kept = env.state()["undelivered"].as_array().cloned().unwrap_or_default();
        assert_eq!(kept.len(), 1, "{dead:?}: only member 1's post waits: {kept:#?}");
        assert!(kept[0]["to"].as_str().is_some_and(|u| u.ends_with("/am1")), "{kept:#?}");
        if let Some(h) = &hanging {
            assert_eq!(h.requests().len(), 1, "member 1 was tried");
        }
        // Later runs keep trying member 1 and never post twice to member 2.
        env.check(&[]).code(2);
        assert_eq!(posted(&live, "am2").len(), 1, "{dead:?}");
    }
}

/// The same in the daemon: member 2 gets the alert at once while member 1
/// refuses every connection (and waits for its retries) or hangs on the
/// first attempt (a 10 s timeout, so the post to member 2 lands while
/// member 1's first attempt is still hanging).
#[test]
fn a_dead_or_hanging_alertmanager_member_never_holds_back_the_other_in_run() {
    for dead in [DeadMember::Refused, DeadMember::Hanging] {
        let live = Receiver::new(Mode::Status(200));
        let (env, hanging) = ha_env(dead, &live, "10s");
        let d = Daemon::start(&env, &["run", "-c", &cfg(&env), "--no-http"], &[]);
        // Each member is delivered on its own thread: member 2 may be posted
        // before member 1's request has even arrived, so wait for both (within
        // 8 s, before member 1's 10 s timeout: member 2 is not held behind it).
        wait_until(Duration::from_secs(8), || {
            !posted(&live, "am2").is_empty()
                && hanging.as_ref().is_none_or(|h| !h.requests().is_empty())
        });
        if let Some(h) = &hanging {
            assert_eq!(h.requests().len(), 1, "posted while member 1 still hangs");
        }
        assert_eq!(posted(&live, "am2").len(), 1, "{dead:?}: {:?}", d.log());
        // The daemon's cycles forget member 2's delivery; member 1's stays.
        wait_until(Duration::from_secs(10), || {
            let kept = env.state()["undelivered"].as_array().cloned().unwrap_or_default();
            kept.len() == 1 && kept[0]["to"].as_str().is_some_and(|u| u.ends_with("/am1"))
        });
        if matches!(dead, DeadMember::Refused) {
            assert!(d.logged("am (member 1)").is_some(), "{:?}", d.log());
        }
    }
}

#[test]
fn a_new_boot_id_raises_one_rebooted_event_with_the_previous_boots_last_cycle() {
    let r = Receiver::new(Mode::Status(200));
    // The webhook takes only service `other`'s events: a reboot is the host's news, so it comes anyway.
    let env = web_env(&r, "", "");
    let text = std::fs::read_to_string(env.config_path()).unwrap();
    env.write(
        "monitor.yml",
        &text.replace("headers: {X-Env: test}}", "headers: {X-Env: test}, services: [other]}"),
    );
    set_up(&env, "web", true);
    env.check(&[]).code(0);
    let boot_id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
    let state = env.state();
    assert_eq!(state["boot"]["id"], boot_id.trim(), "{state:#}");
    assert!(r.requests().is_empty(), "the first boot seen is no news: {:?}", r.requests());

    // As if the last cycle had run in another boot, at a known time.
    let mut state = env.state();
    state["boot"] = serde_json::json!({"id": "0e0e0e0e-previous-boot", "last_cycle_at": "2026-11-28T03:00:00Z"});
    std::fs::write(env.state_path(), serde_json::to_vec(&state).unwrap()).unwrap();
    env.check(&[]).code(0);
    env.check(&[]).code(0);
    assert_eq!(r.kinds("/hook"), ["rebooted"], "{:#?}", r.requests());
    for prefix in ["/slack", "/twilio"] {
        let got = r.delivered(prefix);
        assert_eq!(got.len(), 1, "{prefix}: {got:#?}");
        let text = if prefix == "/slack" {
            got[0].json()["text"].as_str().unwrap_or_default().to_string()
        } else {
            got[0].form("Body").unwrap_or_default()
        };
        assert!(
            text.contains("rebooted") && text.contains("2026-11-28T03:00:00Z"),
            "{prefix}: {text}"
        );
    }
    let e = r.delivered("/hook")[0].json();
    assert_eq!(e["event"], "rebooted");
    assert_eq!(e["previous_boot_last_cycle_at"], "2026-11-28T03:00:00Z");
    assert!(e["since"].as_str().is_some_and(|s| s.ends_with('Z')), "booted at: {e:#}");
    assert!(e["text"].as_str().unwrap().contains("rebooted"), "{e:#}");
    assert!(e["text"].as_str().unwrap().contains("2026-11-28T03:00:00Z"), "{e:#}");
    assert_eq!(env.state()["boot"]["id"], boot_id.trim());
}

/// Issue 18 #11: a receiver answering 500 that quotes the bearer token
/// right where the answer used to be cut (31 of its 36 characters survived
/// the cut, and so the scrubbing): no 6 characters of it reach the log or
/// `last_error` in the state file.
#[test]
fn a_token_quoted_in_an_error_answer_is_scrubbed_before_the_answer_is_cut() {
    const TOKEN: &str = "tok-0123456789abcdefghijklmnopqrstuv";
    assert_eq!(TOKEN.len(), 36);
    let r = Receiver::new(Mode::QuoteAuth(500));
    let env = Env::new();
    let probe = probe(&env, "web");
    let token = env.write("hook-token", &format!("{TOKEN}\n"));
    env.config(&format!(
        "interval: 100ms\nnotify:\n  - {{type: webhook, name: hook, url: \"{}\", bearer_token_file: \"{}\", timeout: 1s}}\nservices:\n  - name: web\n    checks: [{{type: command, argv: [\"{probe}\"]}}]\n",
        r.url("/hook"),
        token.display()
    ));
    set_up(&env, "web", false);
    let out = env.check(&[]);
    out.code(2);
    assert!(out.stderr.contains("HTTP 500: xxxx"), "{}", out.stderr);
    let state = std::fs::read_to_string(env.state_path()).expect("state file");
    assert!(state.contains("HTTP 500: xxxx"), "{state}");
    for i in 0..=TOKEN.len() - 6 {
        let piece = &TOKEN[i..i + 6];
        assert!(!out.stderr.contains(piece), "{piece:?} of the token in the log: {}", out.stderr);
        assert!(!state.contains(piece), "{piece:?} of the token in the state file: {state}");
    }
    assert!(out.stderr.contains("Bearer <secret>"), "{}", out.stderr);
}
