//! The host at the incident, read from /proc directly (no child): memory
//! used, load per CPU, and the five processes with the largest RSS.

use serde::{Deserialize, Serialize};
use std::io::Read;
use std::path::Path;

/// Processes listed in `top_memory`.
pub const TOP: usize = 5;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopProcess {
    pub pid: u32,
    pub name: String,
    pub rss_bytes: u64,
}

/// What the diagnoses of one cycle share.
#[derive(Debug, Clone, Default)]
pub struct HostNow {
    pub memory_used_pct: Option<f64>,
    pub load_per_cpu: Option<f64>,
    pub top_memory: Vec<TopProcess>,
}

impl HostNow {
    pub fn read() -> Self {
        Self::read_from(Path::new("/proc"), Path::new("/sys/devices/system/cpu/online"))
    }

    fn read_from(proc: &Path, online: &Path) -> Self {
        let cpus = std::fs::read_to_string(online)
            .ok()
            .and_then(|s| count_cpus(&s))
            .or_else(|| std::thread::available_parallelism().ok().map(|n| n.get()));
        let load = std::fs::read_to_string(proc.join("loadavg"))
            .ok()
            .and_then(|s| s.split_whitespace().next().and_then(|x| x.parse::<f64>().ok()));
        HostNow {
            memory_used_pct: std::fs::read_to_string(proc.join("meminfo"))
                .ok()
                .and_then(|s| memory_used_pct(&s)),
            load_per_cpu: match (load, cpus) {
                (Some(l), Some(c)) if c > 0 => Some(round2(l / c as f64)),
                _ => None,
            },
            top_memory: top_memory(proc),
        }
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// `0-3,6` → 5.
fn count_cpus(list: &str) -> Option<usize> {
    let mut n = 0;
    for part in list.trim().split(',').filter(|p| !p.is_empty()) {
        n += match part.split_once('-') {
            Some((a, b)) => b.parse::<usize>().ok()?.checked_sub(a.parse().ok()?)? + 1,
            None => {
                part.parse::<usize>().ok()?;
                1
            }
        };
    }
    (n > 0).then_some(n)
}

/// % of MemTotal that is not MemAvailable, to 0.1.
fn memory_used_pct(meminfo: &str) -> Option<f64> {
    let field = |name: &str| {
        meminfo.lines().find_map(|l| {
            l.strip_prefix(name)?.strip_prefix(':')?.split_whitespace().next()?.parse::<f64>().ok()
        })
    };
    let (total, avail) = (field("MemTotal")?, field("MemAvailable")?);
    (total > 0.0).then(|| ((total - avail) / total * 1000.0).round() / 10.0)
}

/// The `TOP` processes by RSS: one small read (`statm`) per process, the
/// name (`comm`) only for the winners.
fn top_memory(proc: &Path) -> Vec<TopProcess> {
    let page = rustix::param::page_size() as u64;
    let Ok(entries) = std::fs::read_dir(proc) else { return Vec::new() };
    let mut best: Vec<(u64, u32)> = Vec::with_capacity(TOP + 1);
    let mut buf = String::with_capacity(128);
    for e in entries.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        buf.clear();
        let read = std::fs::File::open(e.path().join("statm"))
            .and_then(|mut f| f.read_to_string(&mut buf));
        let Some(pages) =
            read.ok().and_then(|_| buf.split_whitespace().nth(1)?.parse::<u64>().ok())
        else {
            continue;
        };
        let rss = pages.saturating_mul(page);
        if rss == 0 || (best.len() == TOP && best.last().is_some_and(|(r, _)| *r >= rss)) {
            continue;
        }
        let at = best.partition_point(|(r, _)| *r >= rss);
        best.insert(at, (rss, pid));
        best.truncate(TOP);
    }
    best.into_iter()
        .map(|(rss_bytes, pid)| TopProcess {
            pid,
            name: std::fs::read_to_string(proc.join(pid.to_string()).join("comm"))
                .map(|s| s.trim_end().to_string())
                .unwrap_or_default(),
            rss_bytes,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpus_memory_and_the_largest_processes() {
        assert_eq!(count_cpus("0-1\n"), Some(2));
        assert_eq!(count_cpus("0-3,6"), Some(5));
        assert_eq!(count_cpus("x"), None);
        assert_eq!(
            memory_used_pct("MemTotal: 1000 kB\nMemFree: 10 kB\nMemAvailable: 29 kB\n"),
            Some(97.1)
        );
        assert_eq!(memory_used_pct("MemTotal: 1000 kB\n"), None);

        let dir = tempfile::tempdir().unwrap();
        for (pid, pages, comm) in [
            (1, 10, "init"),
            (2, 500, "big"),
            (3, 0, "kthread"),
            (4, 30, "mid"),
            (5, 20, "a"),
            (6, 5, "b"),
            (7, 7, "c"),
        ] {
            let p = dir.path().join(pid.to_string());
            std::fs::create_dir(&p).unwrap();
            std::fs::write(p.join("statm"), format!("1000 {pages} 3 4 0 5 0\n")).unwrap();
            std::fs::write(p.join("comm"), format!("{comm}\n")).unwrap();
        }
        std::fs::write(dir.path().join("loadavg"), "3.00 1.00 0.50 1/100 42\n").unwrap();
        std::fs::write(dir.path().join("meminfo"), "MemTotal: 100 kB\nMemAvailable: 50 kB\n")
            .unwrap();
        let online = dir.path().join("online");
        std::fs::write(&online, "0-1\n").unwrap();
        let h = HostNow::read_from(dir.path(), &online);
        let names: Vec<&str> = h.top_memory.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["big", "mid", "a", "init", "c"]);
        assert_eq!(h.top_memory[0].rss_bytes, 500 * rustix::param::page_size() as u64);
        assert_eq!((h.load_per_cpu, h.memory_used_pct), (Some(1.5), Some(50.0)));
    }
}
