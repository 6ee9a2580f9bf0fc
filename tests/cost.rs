//! What the daemon costs its host: probe threads kept across cycles.

use crate::util::{Daemon, Env, wait_until};
use std::collections::HashSet;
use std::time::{Duration, Instant};

/// The thread ids of the daemon's probe threads alive now.
fn probe_threads(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return Vec::new() };
    tasks
        .flatten()
        .filter(|t| {
            std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim() == "probe")
        })
        .filter_map(|t| t.file_name().to_str()?.parse().ok())
        .collect()
}

#[test]
fn the_daemon_keeps_its_probe_threads_across_cycles() {
    let env = Env::new();
    // Probes that last half the interval, so their threads can be seen.
    env.config(
        "interval: 100ms\ntimeout: 2s\nworkers: 2\nheal: {enabled: false}\nhistory_db: off\n\
         services:\n\
           - {name: a, checks: [{type: command, argv: [sleep, '0.05']}]}\n\
           - {name: b, checks: [{type: command, argv: [sleep, '0.05']}]}\n",
    );
    let cfg = env.config_path().display().to_string();
    let d = Daemon::start(&env, &["run", "--no-http", "-c", &cfg], &[]);
    wait_until(Duration::from_secs(10), || env.status_path().exists());
    let (mut seen, mut samples_with_probes) = (HashSet::new(), 0);
    let until = Instant::now() + Duration::from_millis(2500);
    while Instant::now() < until {
        let now = probe_threads(d.pid());
        samples_with_probes += usize::from(!now.is_empty());
        seen.extend(now);
        std::thread::sleep(Duration::from_millis(7));
    }
    eprintln!(
        "FIGURE probe threads over ~25 cycles: {} distinct, seen in {samples_with_probes} samples",
        seen.len()
    );
    assert!(samples_with_probes >= 20, "probe threads seen in only {samples_with_probes} samples");
    // Threads started per cycle would show ~50 distinct ids here.
    assert!(seen.len() <= 2, "{} distinct probe threads: {seen:?}", seen.len());
}
