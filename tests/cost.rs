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

/// KiB of the daemon's own binary mapped now that are the file's pages (not
/// the relocated, copied ones): what `resident.rs` gives back.
fn binary_pages_kb(pid: u32) -> Option<u64> {
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok()?;
    let exe = exe.to_str()?.trim_end_matches(" (deleted)").to_string();
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).ok()?;
    let (mut total, mut ours, mut rss) = (0, false, 0);
    for line in smaps.lines() {
        let mut f = line.split_whitespace();
        let first = f.next().unwrap_or("");
        if first.contains('-') && !first.ends_with(':') {
            ours = line.ends_with(&exe) && f.next().is_some_and(|p| !p.contains('w'));
            continue;
        }
        let kb: u64 = f.next().and_then(|v| v.parse().ok()).unwrap_or(0);
        match first {
            "Rss:" => rss = kb,
            "Anonymous:" if ours && kb == 0 => total += rss,
            _ => {}
        }
    }
    Some(total)
}

#[test]
fn the_daemon_gives_back_the_pages_of_start_up_and_of_a_reload_once_a_cycle_is_done() {
    let env = Env::new();
    // The first cycle lasts 300 ms, so the pages start-up mapped can be
    // seen, and each cycle is followed by 700 ms of rest.
    env.config(
        "interval: 1s\ntimeout: 2s\nheal: {enabled: false}\n\
         services:\n\
           - {name: a, checks: [{type: command, argv: [sleep, '0.3']}]}\n",
    );
    let cfg = env.config_path().display().to_string();
    let d = Daemon::start(&env, &["run", "--no-http", "-c", &cfg], &[]);
    let mut start_up = 0;
    wait_until(Duration::from_secs(20), || {
        start_up = start_up.max(binary_pages_kb(d.pid()).unwrap_or(0));
        env.status_path().exists()
    });
    // Over the next three cycles: given back, pages come back only as the
    // cycles run (a daemon that kept them would never go below start-up's).
    let status = || std::fs::read_to_string(env.status_path()).unwrap_or_default();
    let (mut last, mut least) = (status(), u64::MAX);
    for _ in 0..3 {
        wait_until(Duration::from_secs(20), || {
            least = least.min(binary_pages_kb(d.pid()).unwrap_or(u64::MAX));
            status() != last
        });
        last = status();
    }
    eprintln!(
        "FIGURE daemon's own binary pages mapped: {start_up} KiB at start-up, {least} KiB at least over the next 3 cycles"
    );
    assert!(start_up > 1024, "only {start_up} KiB seen during start-up");
    assert!(least * 2 < start_up, "{least} KiB still mapped of {start_up}");
    // A reload reads the config again (YAML, serde, validation): given back
    // after the cycle that follows it too.
    let hup = std::process::Command::new("kill").args(["-HUP", &d.pid().to_string()]).status();
    assert!(hup.is_ok_and(|s| s.success()), "kill -HUP");
    let (mut reloaded, mut settled) = (0, u64::MAX);
    for phase in 0..2 {
        wait_until(Duration::from_secs(20), || {
            let now = binary_pages_kb(d.pid()).unwrap_or(0);
            if phase == 0 {
                reloaded = reloaded.max(now)
            } else {
                settled = settled.min(now)
            }
            status() != last
        });
        last = status();
    }
    eprintln!(
        "FIGURE after a reload: {reloaded} KiB mapped at most, {settled} KiB at least after its cycle"
    );
    assert!(settled + 1024 < reloaded, "{settled} KiB still mapped of {reloaded} after the reload");
}
