//! The HTTP server of `run`: every endpoint and status code, auth, path
//! escapes, hostile clients, and a live `promtool check metrics`.

use crate::util::{Daemon, request, simple_config, started};
use crate::util::{Env, TcpFixture, promtool, promtool_lint, wait_until};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

#[test]
fn endpoints_answer_as_the_spec_says() {
    let env = Env::new();
    let (d, _t) = started(&env, "");
    let r = d.get("/api/status");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type").as_deref(), Some("application/json"));
    assert_eq!(r.header("cache-control").as_deref(), Some("no-store"));
    let v = r.json();
    assert_eq!(v["schema"], 1);
    assert_eq!(v["stale"], false);
    assert!(v["age_s"].as_f64().unwrap() >= 0.0);
    assert_eq!(v["services"][0]["name"], "Web");

    let m = d.get("/metrics");
    assert_eq!(m.status, 200);
    assert!(m.header("content-type").unwrap().starts_with("text/plain; version=0.0.4"));
    assert!(
        m.text().contains("chatstack_service_up{service=\"Web\",critical=\"true\"} 1"),
        "{}",
        m.text()
    );

    for p in ["/", "/static/admin_status.html"] {
        let r = d.get(p);
        assert_eq!(r.status, 200, "{p}");
        assert!(r.header("content-type").unwrap().starts_with("text/html"), "{p}");
        assert!(r.text().contains("status.js"), "{p}");
    }
    let js = d.get("/static/js/status.js");
    assert_eq!(js.status, 200);
    assert!(js.header("content-type").unwrap().starts_with("text/javascript"));
    assert!(js.text().contains("SystemStatus"));
    // A query string does not change the route.
    assert_eq!(d.get("/api/status?x=2").status, 200);

    assert_eq!(d.get("/nope").status, 404);
    assert_eq!(d.get("/static/nope.js").status, 404);
    for m in ["POST", "PUT", "DELETE", "OPTIONS"] {
        let r = request(d.port, m, "/api/status", &[("Content-Length", "0")]);
        assert_eq!(r.status, 405, "{m}");
        assert_eq!(r.header("allow").as_deref(), Some("GET, HEAD"), "{m}");
    }
    let head = request(d.port, "HEAD", "/api/status", &[]);
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
}

#[test]
fn api_is_503_json_before_the_first_cycle() {
    let env = Env::new();
    let hang = crate::util::http_fixture(crate::util::Behaviour::HangAfterAccept);
    env.config(&format!(
        "interval: 1s\ntimeout: 3s\nheal: {{ enabled: false }}\nservices:\n  - name: Hung\n    url: {}\n",
        hang.url("/")
    ));
    let cfg = env.config_path().display().to_string();
    let d = Daemon::start(&env, &["run", "-c", &cfg], &[]);
    let r = d.get("/api/status");
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(r.json()["error"].as_str().unwrap().contains("first"));
    assert_eq!(d.get("/healthz").status, 503);
}

#[test]
fn basic_auth_guards_everything_but_healthz() {
    let env = Env::new();
    env.write("password", "s3cret\n");
    let (d, _t) = started(
        &env,
        &format!("basic_auth: {{ user: admin, password_file: {:?} }}\n", env.path("password")),
    );
    for p in ["/api/status", "/metrics", "/", "/static/js/status.js"] {
        let r = d.get(p);
        assert_eq!(r.status, 401, "{p}");
        assert!(r.header("www-authenticate").unwrap().starts_with("Basic realm="), "{p}");
    }
    assert_eq!(d.get("/healthz").status, 200);
    let good = [("Authorization", "Basic YWRtaW46czNjcmV0")]; // admin:s3cret
    assert_eq!(request(d.port, "GET", "/api/status", &good).status, 200);
    assert_eq!(request(d.port, "GET", "/metrics", &good).status, 200);
    let bad = [("Authorization", "Basic YWRtaW46d3Jvbmc=")]; // admin:wrong
    assert_eq!(request(d.port, "GET", "/api/status", &bad).status, 401);
    assert_eq!(request(d.port, "GET", "/api/status", &[("Authorization", "Bearer x")]).status, 401);
}

#[test]
fn unreadable_password_file_is_a_start_up_error() {
    let env = Env::new();
    let tcp = TcpFixture::new();
    env.config(&format!(
        "basic_auth: {{ user: admin, password_file: /nonexistent/pw }}\nservices:\n  - name: Web\n    port: {}\n",
        tcp.port()
    ));
    let cfg = env.config_path().display().to_string();
    let out = env.cmd(&["run", "-c", &cfg, "--listen", "127.0.0.1:0"]);
    assert_eq!(out.code, 3);
    assert!(out.stderr.contains("/nonexistent/pw"), "{}", out.stderr);
}

#[test]
fn cors_only_for_configured_origins() {
    let env = Env::new();
    let (d, _t) = started(&env, "cors_origins: [\"https://admin.example\"]\n");
    let ok = request(d.port, "GET", "/api/status", &[("Origin", "https://admin.example")]);
    assert_eq!(ok.header("access-control-allow-origin").as_deref(), Some("https://admin.example"));
    let no = request(d.port, "GET", "/api/status", &[("Origin", "https://evil.example")]);
    assert_eq!(no.header("access-control-allow-origin"), None);
}

#[test]
fn cors_preflight_works_with_basic_auth() {
    let env = Env::new();
    env.write("password", "s3cret\n");
    let (d, _t) = started(
        &env,
        &format!(
            "cors_origins: [\"https://admin.example\"]\nbasic_auth: {{ user: admin, password_file: {:?} }}\n",
            env.path("password")
        ),
    );
    let pre = request(d.port, "OPTIONS", "/api/status", &[("Origin", "https://admin.example")]);
    assert_eq!(pre.status, 204, "{}", pre.head);
    assert_eq!(pre.header("access-control-allow-origin").as_deref(), Some("https://admin.example"));
    assert_eq!(pre.header("access-control-allow-credentials").as_deref(), Some("true"));
    assert!(pre.header("access-control-allow-headers").unwrap().contains("Authorization"));
    // Not for other origins, nor other paths.
    let evil = request(d.port, "OPTIONS", "/api/status", &[("Origin", "https://evil.example")]);
    assert_eq!(evil.status, 405);
    let other = request(d.port, "OPTIONS", "/metrics", &[("Origin", "https://admin.example")]);
    assert_eq!(other.status, 405);
    let get = request(
        d.port,
        "GET",
        "/api/status",
        &[("Origin", "https://admin.example"), ("Authorization", "Basic YWRtaW46czNjcmV0")],
    );
    assert_eq!(get.status, 200);
    assert_eq!(get.header("access-control-allow-credentials").as_deref(), Some("true"));
    // Without the login: a 401 the other origin's page can read, so it can
    // say "log in" rather than "cannot reach the server".
    let denied = request(d.port, "GET", "/api/status", &[("Origin", "https://admin.example")]);
    assert_eq!(denied.status, 401);
    assert_eq!(
        denied.header("access-control-allow-origin").as_deref(),
        Some("https://admin.example")
    );
}

#[test]
fn no_path_escapes_www_dir() {
    let env = Env::new();
    let www = env.path("www");
    std::fs::create_dir_all(www.join("js")).unwrap();
    std::fs::write(www.join("admin_status.html"), "<html>from disk status.js</html>").unwrap();
    std::fs::write(www.join("js/status.js"), "var SystemStatus = 1;").unwrap();
    std::fs::write(env.path("secret.txt"), "TOPSECRET").unwrap();
    std::os::unix::fs::symlink(env.path("secret.txt"), www.join("link.txt")).unwrap();
    let (d, _t) = started(&env, &format!("www_dir: {www:?}\n"));
    assert!(d.get("/").text().contains("from disk"));
    assert_eq!(d.get("/static/js/status.js").text(), "var SystemStatus = 1;");
    for p in [
        "/static/../secret.txt",
        "/static/%2e%2e/secret.txt",
        "/static/%2E%2E%2Fsecret.txt",
        "/static/%252e%252e/secret.txt",
        "/static/..%2fsecret.txt",
        "//etc/passwd",
        "/static//etc/passwd",
        "/static/%2fetc%2fpasswd",
        "/static/link.txt",
        "/static/js/../../secret.txt",
        "/../../../../etc/passwd",
        "/static/..\\secret.txt",
    ] {
        let r = d.get(p);
        assert_ne!(r.status, 200, "{p}");
        assert!(
            !r.text().contains("TOPSECRET") && !r.text().contains("root:"),
            "{p}: {}",
            r.text()
        );
    }
}

#[test]
fn a_huge_header_gets_431_or_a_closed_connection() {
    let env = Env::new();
    let (d, _t) = started(&env, "");
    let mut s = TcpStream::connect(("127.0.0.1", d.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = s.write_all(b"GET /api/status HTTP/1.1\r\nX-Big: ");
    let chunk = vec![b'a'; 64 * 1024];
    for _ in 0..16 {
        if s.write_all(&chunk).is_err() {
            break; // closed on us: fine
        }
    }
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    assert!(buf.is_empty() || text.starts_with("HTTP/1.1 431"), "{text}");
    // And the server still answers.
    assert_eq!(d.get("/api/status").status, 200);
}

#[test]
fn idle_connections_and_a_flood_do_not_starve_a_normal_client() {
    let env = Env::new();
    let (d, _t) = started(&env, "");
    // 200 idle half-open connections (slowloris: a partial request line).
    let mut idle = Vec::new();
    for _ in 0..200 {
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", d.port)) {
            let _ = s.write_all(b"GET /api/sta");
            idle.push(s);
        }
    }
    // A flood of requests from 8 threads, bounded in count and time.
    let port = d.port;
    let stop = Instant::now() + Duration::from_secs(3);
    let flood: Vec<_> = (0..8)
        .map(|_| {
            std::thread::spawn(move || {
                let mut n = 0;
                while Instant::now() < stop && n < 2000 {
                    if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
                        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                        let _ = s.write_all(
                            b"GET /api/status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                        );
                        let mut sink = Vec::new();
                        let _ = s.read_to_end(&mut sink);
                    }
                    n += 1;
                }
            })
        })
        .collect();
    // Meanwhile a normal client gets its answer promptly, every time.
    for _ in 0..5 {
        let t0 = Instant::now();
        let r = d.get("/api/status");
        assert!(r.status == 200, "status {}", r.status);
        assert!(t0.elapsed() < Duration::from_secs(2), "took {:?}", t0.elapsed());
    }
    for t in flood {
        t.join().unwrap();
    }
    drop(idle);
    assert_eq!(d.get("/api/status").status, 200);
}

#[test]
fn garbage_requests_do_not_hurt() {
    let env = Env::new();
    let (d, _t) = started(&env, "");
    for junk in [
        &b"\x00\x01\x02\xff\r\n\r\n"[..],
        b"GET\r\n\r\n",
        b"GET / HTTP/9.9\r\n\r\n",
        b"GET /api/status HTTP/1.1\r\nBad Header Line\r\n\r\n",
        b"\r\n\r\n\r\n\r\n",
    ] {
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", d.port)) {
            s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            let _ = s.write_all(junk);
            let _ = s.shutdown(std::net::Shutdown::Write);
            let mut sink = Vec::new();
            let _ = s.read_to_end(&mut sink);
        }
    }
    assert_eq!(d.get("/api/status").status, 200);
}

#[test]
fn promtool_accepts_a_live_scrape() {
    let env = Env::new();
    let (d, _t) = started(&env, "");
    let text = d.get("/metrics").body;
    promtool_lint(&text);
    for family in [
        "chatstack_service_up",
        "chatstack_service_state",
        "chatstack_check_up",
        "chatstack_check_duration_seconds",
        "chatstack_service_consecutive_failures",
        "chatstack_restarts_total",
        "chatstack_heal_suspended",
        "chatstack_status_age_seconds",
        "chatstack_cycle_duration_seconds",
        "chatstack_build_info",
    ] {
        assert!(String::from_utf8_lossy(&text).contains(&format!("# TYPE {family} ")), "{family}");
    }
}

#[test]
fn shipped_prometheus_config_and_rules_pass_promtool() {
    let Some(promtool) = promtool() else { return };
    let root = env!("CARGO_MANIFEST_DIR");
    for (verb, file) in [
        ("config", "packaging/prometheus/scrape.yml"),
        ("rules", "packaging/prometheus/alerts.yml"),
    ] {
        let out = std::process::Command::new(promtool)
            .args(["check", verb, &format!("{root}/{file}")])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{file}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn check_writes_the_prom_file_too() {
    let env = Env::new();
    let tcp = TcpFixture::new();
    env.config(&format!(
        "prom_file: {:?}\nservices:\n  - name: Web\n    port: {}\n",
        env.path("textfile/chatstack.prom"),
        tcp.port()
    ));
    env.check(&[]).code(0);
    let text = std::fs::read_to_string(env.path("textfile/chatstack.prom")).unwrap();
    assert!(text.contains("chatstack_service_up{service=\"Web\",critical=\"true\"} 1"), "{text}");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(env.path("textfile/chatstack.prom")).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o644);
}

#[test]
fn check_only_leaves_the_prom_file_to_full_runs() {
    // Per-service Nagios checks (`--only`) must not replace the host's
    // metrics with one service's: series would vanish between scrapes.
    let env = Env::new();
    let tcp = TcpFixture::new();
    let prom = env.path("textfile/chatstack.prom");
    env.config(&format!(
        "timeout: 1s\nprom_file: {prom:?}\nservices:\n  - name: Web\n    port: {}\n  - name: Db\n    port: {}\n",
        tcp.port(),
        crate::util::closed_port()
    ));
    env.check(&[]).code(2);
    let full = std::fs::read_to_string(&prom).unwrap();
    assert!(full.contains("chatstack_service_up{service=\"Db\",critical=\"true\"} 0"), "{full}");
    env.check(&["--only", "Web"]).code(0);
    let after = std::fs::read_to_string(&prom).unwrap();
    assert!(after.contains("service=\"Db\""), "--only dropped Db from the prom file:\n{after}");
    assert!(after.contains("chatstack_overall_state{state=\"down\"} 1"), "{after}");
    assert_eq!(env.status()["services"].as_array().map(Vec::len), Some(2), "status file");
}

#[test]
fn the_daemon_writes_the_status_file_each_cycle_and_serves_memory() {
    let env = Env::new();
    let tcp = TcpFixture::new();
    simple_config(&env, tcp.port(), "100ms");
    let cfg = env.config_path().display().to_string();
    let d = Daemon::start(&env, &["run", "-c", &cfg], &[]);
    wait_until(Duration::from_secs(10), || d.get("/api/status").status == 200);
    // Deleting the file does not break serving (the API serves memory), and
    // the next cycle writes it again.
    std::fs::remove_file(env.status_path()).unwrap();
    assert_eq!(d.get("/api/status").status, 200);
    wait_until(Duration::from_secs(5), || env.status_path().exists());
}

#[test]
fn keep_alive_and_pipelining_answer_in_order() {
    let env = Env::new();
    let (d, _t) = started(&env, "");
    let mut s = TcpStream::connect(("127.0.0.1", d.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    // Two fast-path requests, one tiny_http request, one more fast-path
    // request (now relayed too), all pipelined on one connection.
    s.write_all(
        b"GET /api/status HTTP/1.1\r\nHost: x\r\n\r\nGET /api/status?a=1 HTTP/1.1\r\nHost: x\r\n\r\n\
          GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /api/status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw);
    let statuses: Vec<&str> =
        text.match_indices("HTTP/1.1 ").map(|(i, _)| &text[i + 9..i + 12]).collect();
    assert_eq!(statuses, ["200", "200", "200", "200"], "{text}");
    let bodies: Vec<&str> = text.split("\r\n\r\n").skip(1).collect();
    assert!(bodies[0].starts_with("{\"schema\":1"), "{text}");
    assert!(bodies[2].starts_with("{\"detail\""), "healthz third: {text}");
    assert!(bodies[3].starts_with("{\"schema\":1"), "{text}");
}

#[test]
fn fast_path_answers_carry_the_api_headers_and_close_on_request() {
    let env = Env::new();
    let (d, _t) = started(&env, "");
    let r = request(d.port, "GET", "/api/status", &[]);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type").as_deref(), Some("application/json"));
    assert_eq!(r.header("cache-control").as_deref(), Some("no-store"));
    assert!(r.header("date").is_some_and(|d| d.ends_with(" GMT")), "{}", r.head);
    assert_eq!(r.header("content-length").unwrap().parse::<usize>().unwrap(), r.body.len());
    assert_eq!(r.json()["stale"], false);
}
