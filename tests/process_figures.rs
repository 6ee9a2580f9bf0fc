//! Process checks' figures against real child processes: `count`,
//! `rss_bytes` and `cpu_pct` summed over the matching processes,
//! `max_rss`/`max_cpu` with `for` counted across `check` runs, and the
//! daemon's `run`.

use crate::util::{Daemon, Env, check_of, unique, wait_until};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A child process killed (by its PID) on drop.
struct Kid(Child);

impl Drop for Kid {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A python3 child holding `mb` MB it has written to (so it is resident),
/// with `marker` in its command line; returns once it holds it.
fn hog(mb: usize, marker: &str) -> Kid {
    let script = format!(
        "import sys, time\nb = bytearray(b'x') * ({mb} * 1000 * 1000)\nprint('ready', flush=True)\ntime.sleep(120)\n"
    );
    let mut child = Command::new("python3")
        .args(["-c", &script, marker])
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 (scripts/test-deps.sh installs it)");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("read");
    assert_eq!(line.trim(), "ready");
    Kid(child)
}

/// A shell spinning on one CPU (or sleeping, with `spin` false), `marker` as its $0.
fn shell(spin: bool, marker: &str) -> Kid {
    let body = if spin { "while :; do :; done" } else { "sleep 120" };
    let kid = Kid(Command::new("sh").args(["-c", body, marker]).spawn().expect("sh"));
    // Seen in /proc once its arguments are set (spawn returns inside execve).
    let me = format!("/proc/{}/cmdline", kid.0.id());
    wait_until(Duration::from_secs(5), || {
        std::fs::read(&me).is_ok_and(|c| String::from_utf8_lossy(&c).contains(marker))
    });
    kid
}

fn checks_yaml(checks: &[String]) -> String {
    let mut y = String::from("timeout: 2s\nhistory_db: off\nheal: {enabled: false}\nservices:\n");
    for (i, c) in checks.iter().enumerate() {
        y.push_str(&format!("  - name: s{i}\n    checks: [{c}]\n"));
    }
    y
}

fn value(c: &Value, name: &str) -> Option<f64> {
    c["values"][name].as_f64()
}

#[test]
fn memory_is_summed_over_the_matching_processes_and_max_rss_is_down() {
    let env = Env::new();
    let marker = unique("hog");
    let _a = hog(40, &marker);
    let _b = hog(40, &marker);
    env.config(&checks_yaml(&[
        format!("{{type: process, match: '{marker}'}}"),
        format!("{{type: process, match: '{marker}', max_rss: 50MB}}"),
        format!("{{type: process, match: '{marker}', max_rss: 1GB}}"),
        "{type: process, match: 'no such process anywhere 123', min: 0}".into(),
    ]));
    let doc = env.check(&["--format", "json"]).json();
    let all = check_of(&doc, "s0");
    eprintln!("FIGURE two 40 MB hogs: {}", all["values"]);
    assert_eq!(all["status"], "up", "{all:#}");
    assert_eq!(value(&all, "count"), Some(2.0), "{all:#}");
    let rss = value(&all, "rss_bytes").unwrap();
    assert!((80e6..140e6).contains(&rss), "rss {rss}");
    assert!(all["values"]["cpu_pct"].is_null(), "no earlier sample: {all:#}");
    let over = check_of(&doc, "s1");
    assert_eq!(over["status"], "down", "{over:#}");
    assert_eq!(over["reason"], "process_memory", "{over:#}");
    assert!(over["detail"].as_str().unwrap().contains("max_rss 50.0 MB"), "{over:#}");
    assert_eq!(over["thresholds"]["crit"], 50e6, "{over:#}");
    assert_eq!(check_of(&doc, "s2")["status"], "up");
    let none = check_of(&doc, "s3");
    assert_eq!((value(&none, "count"), value(&none, "rss_bytes")), (Some(0.0), Some(0.0)));
}

#[test]
fn the_figures_are_metrics() {
    let env = Env::new();
    let marker = unique("hog");
    let _a = hog(20, &marker);
    let prom = env.path("metrics.prom");
    env.config(&format!(
        "prom_file: {}\n{}",
        prom.display(),
        checks_yaml(&[format!("{{type: process, match: '{marker}'}}")])
    ));
    env.check(&[]).code(0);
    env.check(&[]).code(0); // a second sample: cpu_pct is known
    let text = std::fs::read_to_string(&prom).expect("prom_file");
    let series = format!("{{service=\"s0\",match=\"{marker}\"}}");
    assert!(text.contains(&format!("chatstack_processes{series} 1\n")), "{text}");
    let rss = text
        .lines()
        .find_map(|l| l.strip_prefix(&format!("chatstack_process_rss_bytes{series} ")))
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no rss sample:\n{text}"));
    assert!(rss > 20e6, "{rss}");
    assert!(text.contains(&format!("chatstack_process_cpu_ratio{series} ")), "{text}");
    crate::util::promtool_lint(text.as_bytes());
}

#[test]
fn max_rss_with_for_waits_its_cycles_across_check_runs() {
    let env = Env::new();
    let marker = unique("hog");
    let _a = hog(30, &marker);
    env.config(&checks_yaml(&[format!(
        "{{type: process, match: '{marker}', max_rss: 10MB, for: 2}}"
    )]));
    let first = env.check(&["--format", "json"]);
    first.code(0);
    let c = check_of(&first.json(), "s0");
    assert_eq!(c["status"], "up", "{c:#}");
    assert!(c["detail"].as_str().unwrap().contains("over 1 of the 2 cycles"), "{c:#}");
    let second = env.check(&["--format", "json"]);
    second.code(2);
    let c = check_of(&second.json(), "s0");
    assert_eq!(
        (c["status"].as_str(), c["reason"].as_str()),
        (Some("down"), Some("process_memory"))
    );
}

#[test]
fn cpu_is_measured_between_check_runs_and_max_cpu_is_down() {
    let env = Env::new();
    let (spin, idle) = (unique("spin"), unique("idle"));
    let _s = shell(true, &spin);
    let _i = shell(false, &idle);
    env.config(&checks_yaml(&[
        format!("{{type: process, match: '{spin}', max_cpu: 10}}"),
        format!("{{type: process, match: '{idle}', max_cpu: 10}}"),
    ]));
    let doc = env.check(&["--format", "json"]).json();
    // No earlier sample: no rate, so nothing to judge yet.
    assert!(check_of(&doc, "s0")["values"]["cpu_pct"].is_null(), "{doc:#}");
    assert_eq!(check_of(&doc, "s0")["status"], "up");
    assert!(env.state()["services"]["s0"]["proc_cpu"].is_object(), "{:#}", env.state());
    // The spinner's share of a CPU since the last run, however busy the host is.
    let mut last = Value::Null;
    wait_until(Duration::from_secs(20), || {
        last = env.check(&["--format", "json"]).json();
        check_of(&last, "s0")["reason"] == "process_cpu"
    });
    let (s, i) = (check_of(&last, "s0"), check_of(&last, "s1"));
    eprintln!("FIGURE spinner {} / sleeper {}", s["values"], i["values"]);
    assert!(value(&s, "cpu_pct").unwrap() > 10.0, "{s:#}");
    assert!(s["detail"].as_str().unwrap().contains("over max_cpu 10.0%"), "{s:#}");
    assert_eq!(i["status"], "up", "{i:#}");
    assert!(value(&i, "cpu_pct").unwrap() < 10.0, "{i:#}");
    // Nagios perfdata: a share of one CPU has no maximum of 100.
    let nagios = env.check(&["--format", "nagios"]).stdout;
    let at = nagios.find("'s0 process cpu_pct'=").unwrap_or_else(|| panic!("{nagios}"));
    let item = nagios[at..].split_whitespace().nth(2).unwrap_or_default();
    assert!(item.ends_with(";;;0"), "{item} in {nagios}");
}

#[test]
fn the_daemon_reports_cpu_and_a_hog_goes_down_after_for_cycles() {
    let env = Env::new();
    let spin = unique("spin");
    let _s = shell(true, &spin);
    env.config(&format!(
        "interval: 200ms\n{}",
        checks_yaml(&[format!("{{type: process, match: '{spin}', max_cpu: 5, for: 3}}")])
    ));
    let cfg = env.config_path().display().to_string();
    let _d = Daemon::start(&env, &["run", "--no-http", "-c", &cfg], &[]);
    let mut c = Value::Null;
    wait_until(Duration::from_secs(20), || {
        if env.status_path().exists() {
            c = check_of(&env.status(), "s0");
        }
        c["reason"] == "process_cpu"
    });
    assert_eq!(c["status"], "down", "{c:#}");
    assert!(value(&c, "cpu_pct").unwrap() > 5.0, "{c:#}");
    assert_eq!(value(&c, "count"), Some(1.0));
}

#[test]
fn a_removed_process_check_leaves_no_sample_behind() {
    let env = Env::new();
    env.config(&checks_yaml(&["{type: process, match: 'no such process 4711', min: 0}".into()]));
    env.check(&[]).code(0);
    assert!(env.state()["services"]["s0"]["proc_cpu"].is_object(), "{:#}", env.state());
    env.config(&checks_yaml(&["{type: disk, path: /, warn: 100, crit: 100}".into()]));
    env.check(&[]);
    assert!(env.state()["services"]["s0"]["proc_cpu"].is_null(), "{:#}", env.state());
}
