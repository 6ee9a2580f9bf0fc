//! Process probe: counts processes whose full command line matches, and
//! sums their memory (`rss_bytes`) and CPU (`cpu_pct`).
//!
//! All process checks of a cycle share one scan of the process table
//! (`CycleCtx::processes`), which reads only what matching needs: one
//! `/proc/PID/cmdline` per process. Reading /proc is the expensive part on a
//! busy host (a general process library also reads `stat`, `status` and every
//! thread's directory: 8 times the system calls, see docs/BENCHMARKS.md).
//! The kernel's own threads, two thirds of /proc on a droplet, are not read
//! at all: one read of kthreadd's `children` names them (`kernel_threads`).
//! The figures come from one `/proc/PID/stat` per *matching* process, read
//! at most once per cycle however many checks match it.
//!
//! `cpu_pct` is a rate: the CPU time the matching processes used since the
//! previous sample, which the state file keeps (`state::cpu`), so it works
//! from cron too. The probe reports the sample; the cycle turns it into
//! `cpu_pct` and judges `max_cpu`.

use super::owned::{KeyType, Keys, Measured, MetricDef, Thresholds, Values, show_bytes};
use super::{CycleCtx, Outcome, ProcessProbe, Reason};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The keys a `type: process` check takes beside `match`, `min` and
/// `max`, typed as the kinds that own their keys type theirs
/// (`probe::owned`), so they are located and documented the same way.
pub static KEYS: &[(&str, KeyType)] =
    &[("max_rss", KeyType::Size), ("max_cpu", KeyType::Number), ("for", KeyType::Count)];

/// The Prometheus families process checks' values feed (labelled by the
/// check's `match`), as the kinds that own their keys declare theirs.
pub static METRICS: &[MetricDef] = &[
    MetricDef {
        name: "chatstack_processes",
        help: "Processes a process check matches.",
        value: "count",
        scale: 1.0,
        target_label: "match",
    },
    MetricDef {
        name: "chatstack_process_rss_bytes",
        help: "Resident memory of a process check's matching processes, summed.",
        value: "rss_bytes",
        scale: 1.0,
        target_label: "match",
    },
    MetricDef {
        name: "chatstack_process_cpu_ratio",
        help: "CPU a process check's matching processes used since the previous sample (1 = one CPU).",
        value: "cpu_pct",
        scale: 0.01,
        target_label: "match",
    },
];

/// `max_rss`, `max_cpu` (percent of one CPU) and `for` of a process check.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Limits {
    pub max_rss: Option<u64>,
    pub max_cpu: Option<f64>,
    /// Consecutive cycles over a limit before the check is down (1: at once).
    pub for_cycles: u32,
}

impl Limits {
    /// From a check's typed keys (problems go into `keys`, located).
    pub fn from_keys(keys: &mut Keys) -> Limits {
        let max_rss = keys.bytes("max_rss");
        if max_rss == Some(0) {
            keys.problem("max_rss", "max_rss must be greater than 0");
        }
        let max_cpu = keys.number("max_cpu");
        if max_cpu == Some(0.0) {
            keys.problem("max_cpu", "max_cpu must be greater than 0 (percent of one CPU)");
        }
        let for_cycles = keys.count("for").unwrap_or(1);
        if for_cycles > 1 && max_rss.is_none() && max_cpu.is_none() {
            keys.problem("for", "`for` counts cycles over `max_rss` or `max_cpu`: set one of them");
        }
        Limits { max_rss, max_cpu, for_cycles }
    }

    /// Whether `for` holds this reason back (a limit crossed); a missing
    /// process is reported at once.
    pub fn holds(reason: Reason) -> bool {
        matches!(reason, Reason::ProcessMemory | Reason::ProcessCpu)
    }
}

/// Clock ticks per second of `/proc/PID/stat`'s times (`USER_HZ`).
fn ticks_per_second() -> f64 {
    rustix::param::clock_ticks_per_second() as f64
}

/// One process, as matching needs it.
pub struct Proc {
    pub pid: u32,
    pub cmdline: String,
    /// Its `/proc/PID/stat` figures, read the first time a check matches it.
    stat: OnceLock<Option<Stat>>,
}

/// What one `/proc/PID/stat` says.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Stat {
    /// Since boot, in clock ticks: with the pid, it names the process (pids are reused).
    start: u64,
    /// utime + stime, in clock ticks.
    cpu: u64,
    rss_bytes: u64,
}

/// Command lines of the host's processes (not threads, not kernel threads,
/// not this monitor), arguments joined with spaces.
pub struct ProcessTable {
    proc: PathBuf,
    pub procs: Vec<Proc>,
    /// How many `stat` files this table read (tests hold it to the matches).
    stat_reads: AtomicUsize,
}

impl ProcessTable {
    pub fn scan() -> Self {
        Self::scan_dir(Path::new("/proc"))
    }

    fn scan_dir(proc: &Path) -> Self {
        let me = std::process::id();
        let mut procs = Vec::new();
        let table = |procs| ProcessTable {
            proc: proc.to_path_buf(),
            procs,
            stat_reads: AtomicUsize::new(0),
        };
        // Only thread-group leaders are listed in /proc: threads are not.
        let Ok(entries) = std::fs::read_dir(proc) else {
            return table(procs);
        };
        let mut buf = Vec::with_capacity(4096);
        let kernel = kernel_threads(proc, &mut buf);
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(pid) = name.to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
            if pid == me || kernel.binary_search(&pid).is_ok() {
                continue;
            }
            buf.clear();
            let path = entry.path().join("cmdline");
            // A process that exited since the listing is simply not there.
            if crate::fsutil::read_cmdline(&path, &mut buf).is_err() {
                continue;
            }
            if let Some(cmdline) = join_cmdline(&buf) {
                procs.push(Proc { pid, cmdline, stat: OnceLock::new() });
            }
        }
        table(procs)
    }

    /// A process's `stat` figures (read once per table; None if it is gone).
    fn stat(&self, p: &Proc) -> Option<Stat> {
        *p.stat.get_or_init(|| {
            self.stat_reads.fetch_add(1, Ordering::Relaxed);
            let mut buf = Vec::with_capacity(512);
            crate::fsutil::read_proc(&self.proc.join(p.pid.to_string()).join("stat"), &mut buf)
                .ok()?;
            // A command name (field 2) may be any bytes: not a reason to lose the figures.
            parse_stat(&String::from_utf8_lossy(&buf), rustix::param::page_size() as u64)
        })
    }
}

/// `PF_KTHREAD` in `/proc/PID/stat`'s flags (field 9): set by the kernel on
/// its own threads only, so no process can pretend to be one.
const PF_KTHREAD: u64 = 0x0020_0000;

/// The pids of the kernel's threads, sorted: the children of kthreadd,
/// from its `task/2/children` (one read instead of one `cmdline` each;
/// they all read empty). Only when pid 2 is kthreadd, told by the flag
/// the kernel sets on its threads: in a container's pid namespace pid 2 is
/// any process, whose children are to be matched. Empty where the kernel
/// has no `children` files (`CONFIG_PROC_CHILDREN`): every cmdline is read.
/// The kernel's user-mode helpers (modprobe, a core-dump handler) are
/// kthreadd's children too, and so are not matched either.
fn kernel_threads(proc: &Path, buf: &mut Vec<u8>) -> Vec<u32> {
    let kthreadd = proc.join("2");
    buf.clear();
    if crate::fsutil::read_proc(&kthreadd.join("stat"), buf).is_err() {
        return Vec::new();
    }
    let text = String::from_utf8_lossy(buf);
    let flags = text.rfind(')').and_then(|at| {
        // Field 9 is the 7th after the command name (fields 3 to 9).
        text[at + 1..].split_whitespace().nth(6)?.parse::<u64>().ok()
    });
    if flags.is_none_or(|f| f & PF_KTHREAD == 0) {
        return Vec::new();
    }
    buf.clear();
    if crate::fsutil::read_proc(&kthreadd.join("task/2/children"), buf).is_err() {
        return Vec::new();
    }
    let mut pids: Vec<u32> =
        String::from_utf8_lossy(buf).split_whitespace().filter_map(|p| p.parse().ok()).collect();
    pids.sort_unstable();
    pids
}

/// `/proc/PID/stat`: starttime (field 22), utime + stime (14, 15) and rss
/// (24, in pages). The command name (field 2) may hold spaces and
/// parentheses: fields are counted after its last `)`.
fn parse_stat(text: &str, page: u64) -> Option<Stat> {
    let rest = &text[text.rfind(')')? + 1..];
    // `rest` starts at field 3 (state): field N is at index N - 3.
    let f: Vec<&str> = rest.split_whitespace().collect();
    let num = |n: usize| f.get(n - 3)?.parse::<u64>().ok();
    let rss_pages = f.get(24 - 3)?.parse::<i64>().ok()?.max(0) as u64;
    Some(Stat {
        start: num(22)?,
        cpu: num(14)?.saturating_add(num(15)?),
        rss_bytes: rss_pages.saturating_mul(page),
    })
}

/// `/proc/PID/cmdline` (arguments each ended by NUL) as one line, arguments
/// joined by spaces; None when empty (kernel threads, zombies).
fn join_cmdline(raw: &[u8]) -> Option<String> {
    let end = raw.iter().rposition(|&b| b != 0)? + 1;
    let joined: Vec<u8> = raw[..end].iter().map(|&b| if b == 0 { b' ' } else { b }).collect();
    Some(match String::from_utf8(joined) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    })
}

/// The CPU time of a check's matching processes at one moment, for
/// `cpu_pct` against the next one (kept in the state file).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CpuSample {
    /// Seconds since boot when taken (`/proc/uptime`, read once per cycle).
    pub at_s: f64,
    /// (pid, start tick, utime + stime ticks) of each matching process.
    pub procs: Vec<(u32, u64, u64)>,
}

impl CpuSample {
    /// Percent of one CPU the processes used between `prev` and `self`,
    /// to 0.1: a process in both counts what it used since; one started
    /// since `prev` counts all it used. None when `prev` is not earlier
    /// (a reboot, or the first sample).
    pub fn pct_since(&self, prev: &CpuSample) -> Option<f64> {
        let secs = self.at_s - prev.at_s;
        if !secs.is_finite() || secs <= 0.0 {
            return None;
        }
        let hz = ticks_per_second();
        let mut ticks = 0u64;
        for &(pid, start, cpu) in &self.procs {
            match prev.procs.iter().find(|(p, s, _)| *p == pid && *s == start) {
                Some(&(_, _, before)) => ticks += cpu.saturating_sub(before),
                // Started since the previous sample: all its time is new.
                None if start as f64 / hz >= prev.at_s => ticks += cpu,
                // Older, but not matched then (its command line changed):
                // its time since is unknown; leave it out.
                None => {}
            }
        }
        let pct = ticks as f64 / hz / secs * 100.0;
        Some((pct * 10.0).round() / 10.0)
    }
}

pub fn check(p: &ProcessProbe, ctx: &CycleCtx) -> Outcome {
    let table = ctx.processes.get_or_init(ProcessTable::scan);
    let matching: Vec<&Proc> =
        table.procs.iter().filter(|c| p.matcher.is_match(&c.cmdline)).collect();
    let n = matching.len() as u32;
    let mut rss = 0u64;
    let mut sample = CpuSample {
        at_s: ctx.host.as_ref().and_then(|h| h.uptime).map_or(f64::NAN, |u| u.as_secs_f64()),
        procs: Vec::with_capacity(matching.len()),
    };
    for proc in &matching {
        // Gone since the scan: it no longer counts for memory or CPU.
        if let Some(s) = table.stat(proc) {
            rss = rss.saturating_add(s.rss_bytes);
            sample.procs.push((proc.pid, s.start, s.cpu));
        }
    }
    let values = Values::from_pairs(&[
        ("count", Some(f64::from(n))),
        ("rss_bytes", Some(rss as f64)),
        // Set by the cycle from the previous sample (`state::cpu`).
        ("cpu_pct", None),
    ]);
    let measured = Measured {
        values,
        thresholds: p.limits.max_rss.map(|m| Thresholds {
            value: "rss_bytes".into(),
            warn: None,
            crit: Some(m as f64),
        }),
    };
    let range = match p.max {
        Some(max) => format!("{}..{}", p.min, max),
        None => format!(">= {}", p.min),
    };
    let plural = if n == 1 { "" } else { "es" };
    let out = if n == 0 && p.min > 0 {
        Outcome::down(Reason::ProcessMissing, "no matching process")
    } else if n < p.min || p.max.is_some_and(|m| n > m) {
        Outcome::down(Reason::ProcessCount, format!("{n} matching processes, expected {range}"))
    } else if let Some(max) = p.limits.max_rss.filter(|m| rss > *m) {
        Outcome::down(
            Reason::ProcessMemory,
            format!(
                "{n} matching process{plural}, {} resident (over max_rss {})",
                show_bytes(rss as f64),
                show_bytes(max as f64)
            ),
        )
    } else if matching.is_empty() {
        Outcome::up(format!("{n} matching process{plural}"))
    } else {
        Outcome::up(format!("{n} matching process{plural}, {} resident", show_bytes(rss as f64)))
    };
    let mut out = out.with_values(measured);
    out.cpu = (sample.at_s.is_finite()).then_some(sample);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_arguments_like_a_command_line() {
        assert_eq!(
            join_cmdline(b"python3\0app.py\0--port\x005000\0").as_deref(),
            Some("python3 app.py --port 5000")
        );
        assert_eq!(join_cmdline(b"a\0\0b\0").as_deref(), Some("a  b"));
        // Rewritten titles (nginx, postgres) have no NUL or trailing padding.
        assert_eq!(
            join_cmdline(b"nginx: master process\0\0\0").as_deref(),
            Some("nginx: master process")
        );
        assert_eq!(join_cmdline(b""), None);
        assert_eq!(join_cmdline(b"\0\0"), None);
        assert_eq!(join_cmdline(b"caf\xe9\0").as_deref(), Some("caf\u{fffd}"));
    }

    fn cmdlines(t: &ProcessTable) -> Vec<&str> {
        let mut got: Vec<&str> = t.procs.iter().map(|p| p.cmdline.as_str()).collect();
        got.sort();
        got
    }

    #[test]
    fn scan_skips_itself_kernel_threads_and_non_pids() {
        let dir = tempfile::tempdir().expect("tempdir");
        let me = std::process::id().to_string();
        for (name, cmdline) in [
            ("1", &b"init\0"[..]),
            ("42", b"python3\0app.py\0"),
            ("43", b""), // kernel thread
            (me.as_str(), b"chatstack-status\0run\0"),
            ("self", b"not a pid\0"),
        ] {
            std::fs::create_dir(dir.path().join(name)).expect("mkdir");
            std::fs::write(dir.path().join(name).join("cmdline"), cmdline).expect("write");
        }
        std::fs::create_dir(dir.path().join("44")).expect("mkdir"); // exited meanwhile
        assert_eq!(cmdlines(&ProcessTable::scan_dir(dir.path())), ["init", "python3 app.py"]);
    }

    /// A `/proc` with pid 2 as `stat` says (`flags`), listing `children`.
    fn proc_with_pid_2(flags: u64, children: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        for (name, cmdline) in
            [("1", &b"init\0"[..]), ("2", b""), ("3", b""), ("40", b"python3\0app.py\0")]
        {
            std::fs::create_dir(root.join(name)).expect("mkdir");
            std::fs::write(root.join(name).join("cmdline"), cmdline).expect("write");
        }
        std::fs::write(
            root.join("2/stat"),
            format!("2 (kthreadd) S 0 0 0 0 -1 {flags} 0 0 0 0 0 0 0 0 20 0 1 0 1"),
        )
        .unwrap();
        std::fs::create_dir_all(root.join("2/task/2")).unwrap();
        std::fs::write(root.join("2/task/2/children"), children).unwrap();
        dir
    }

    #[test]
    fn kthreadds_children_are_not_read_and_a_process_named_kthreadd_changes_nothing() {
        // 40 a child of the real kthreadd (a user-mode helper): skipped,
        // as its listing says, without its cmdline being read.
        let dir = proc_with_pid_2(0x0020_8040, "3 40 ");
        assert_eq!(kernel_threads(dir.path(), &mut Vec::new()), [3, 40]);
        assert_eq!(cmdlines(&ProcessTable::scan_dir(dir.path())), ["init"]);
        // Pid 2 without PF_KTHREAD (a container's): its children are matched.
        let dir = proc_with_pid_2(0x0040_0100, "3 40 ");
        assert_eq!(kernel_threads(dir.path(), &mut Vec::new()), Vec::<u32>::new());
        assert_eq!(cmdlines(&ProcessTable::scan_dir(dir.path())), ["init", "python3 app.py"]);
        // No children file (a kernel without CONFIG_PROC_CHILDREN): all are read.
        let dir = proc_with_pid_2(0x0020_8040, "");
        std::fs::remove_file(dir.path().join("2/task/2/children")).unwrap();
        assert_eq!(cmdlines(&ProcessTable::scan_dir(dir.path())), ["init", "python3 app.py"]);
    }

    #[test]
    fn on_this_host_kthreadds_children_are_kernel_threads() {
        let kernel = kernel_threads(Path::new("/proc"), &mut Vec::new());
        if std::fs::read_to_string("/proc/2/stat").is_ok_and(|s| s.contains("(kthreadd)")) {
            assert!(kernel.len() > 1, "kthreadd lists {kernel:?}");
        }
        // Each is a kernel thread (or, for a moment, a user-mode helper the
        // kernel started: kthreadd's child without the flag).
        for pid in &kernel {
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
            let f: Vec<&str> = stat[stat.rfind(')').unwrap() + 1..].split_whitespace().collect();
            let flags: u64 = f[6].parse().unwrap();
            assert!(flags & PF_KTHREAD != 0 || f[1] == "2", "{pid}: {stat}");
        }
    }

    #[test]
    fn scan_sees_a_child() {
        let mut child =
            std::process::Command::new("sleep").arg("31.4159").spawn().expect("spawn sleep");
        // spawn() returns while the child is still inside execve: until the
        // kernel has set up its arguments its cmdline reads empty. Poll.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let mut table = ProcessTable::scan();
        while !table.procs.iter().any(|c| c.cmdline == "sleep 31.4159")
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(std::time::Duration::from_millis(5));
            table = ProcessTable::scan();
        }
        let _ = child.kill();
        let _ = child.wait();
        assert!(table.procs.iter().any(|c| c.cmdline == "sleep 31.4159"), "{:?}", cmdlines(&table));
    }

    #[test]
    fn stat_fields_count_after_the_command_name() {
        // A name with spaces and a parenthesis, as a process may set it.
        let line = "812 (gun icorn) w) S 1 812 812 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 3 0 \
                    12345 900000000 1000 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0";
        let s = parse_stat(line, 4096).unwrap();
        assert_eq!(s, Stat { start: 12345, cpu: 300, rss_bytes: 1000 * 4096 });
        assert_eq!(parse_stat("812 (x) S 1 2", 4096), None);
        assert_eq!(parse_stat("no parenthesis", 4096), None);
    }

    #[test]
    fn only_matching_processes_are_read_and_each_once_per_cycle() {
        let dir = tempfile::tempdir().expect("tempdir");
        let stat = |start: u64, rss: u64| {
            format!(
                "1 (x) S 1 1 1 0 -1 0 0 0 0 0 10 5 0 0 20 0 1 0 {start} 0 {rss} 0 0 0 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0"
            )
        };
        for (pid, cmd) in [("101", "worker --a"), ("102", "worker --b"), ("103", "other")] {
            let d = dir.path().join(pid);
            std::fs::create_dir(&d).unwrap();
            std::fs::write(d.join("cmdline"), format!("{cmd}\0")).unwrap();
            std::fs::write(d.join("stat"), stat(100, 3)).unwrap();
        }
        let ctx = CycleCtx::default();
        let _ = ctx.processes.set(ProcessTable::scan_dir(dir.path()));
        let probe = |m: &str| ProcessProbe {
            matcher: super::super::Matcher::Substring(m.into()),
            min: 1,
            max: None,
            limits: Limits::default(),
        };
        let page = rustix::param::page_size() as f64;
        let all = check(&probe("worker"), &ctx);
        let b = check(&probe("--b"), &ctx);
        let values = |o: &Outcome| o.measured.as_ref().unwrap().values.clone();
        assert_eq!(values(&all).get("count"), Some(2.0));
        assert_eq!(values(&all).get("rss_bytes"), Some(6.0 * page));
        assert_eq!(values(&b).get("rss_bytes"), Some(3.0 * page));
        let table = ctx.processes.get().unwrap();
        // 101 and 102 once each, though "--b" matched 102 again; 103 never.
        assert_eq!(table.stat_reads.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn cpu_counts_each_process_since_the_last_sample() {
        let hz = ticks_per_second();
        let prev = CpuSample { at_s: 100.0, procs: vec![(1, 10, 500), (2, 20, 100), (9, 30, 7)] };
        let next = CpuSample {
            at_s: 110.0,
            procs: vec![
                (1, 10, 500 + hz as u64 * 5),        // 5 s of CPU in 10 s
                (2, 21, 50),                         // pid 2 reused, started before: unknown
                (3, (105.0 * hz) as u64, hz as u64), // new since: 1 s
            ],
        };
        assert_eq!(next.pct_since(&prev), Some(60.0));
        assert_eq!(prev.pct_since(&next), None, "time went backwards (a reboot)");
        assert_eq!(next.pct_since(&next), None);
    }
}
