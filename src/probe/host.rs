//! The host's own figures from /proc, read once per cycle (`CycleCtx::host`)
//! for the `memory` and `load` checks and the status's `system` block.

use std::time::Duration;

/// /proc/meminfo, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct MemInfo {
    pub total: u64,
    pub available: u64,
    pub swap_total: u64,
    pub swap_free: u64,
}

impl MemInfo {
    /// Percent of MemTotal not MemAvailable.
    pub fn used_pct(&self) -> Option<f64> {
        pct(self.total.saturating_sub(self.available), self.total)
    }

    /// Percent of swap in use; None without swap.
    pub fn swap_used_pct(&self) -> Option<f64> {
        pct(self.swap_total.saturating_sub(self.swap_free), self.swap_total)
    }
}

/// `part` of `whole` in percent, to 0.1; None when `whole` is 0.
pub fn pct(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| (part as f64 * 1000.0 / whole as f64).round() / 10.0)
}

/// What one cycle read about the host; a field is None when its file could
/// not be read (not Linux, a restricted /proc).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Figures {
    pub memory: Option<MemInfo>,
    /// 1, 5 and 15 minute load averages.
    pub load: Option<[f64; 3]>,
    /// Online CPUs.
    pub cpus: Option<u32>,
    pub uptime: Option<Duration>,
    pub boot_id: Option<String>,
}

impl Figures {
    pub fn read() -> Self {
        let text = |p: &'static str| kept::read(p);
        Figures {
            memory: text("/proc/meminfo").and_then(|t| parse_meminfo(&t)),
            load: text("/proc/loadavg").and_then(|t| parse_loadavg(&t)),
            cpus: text("/sys/devices/system/cpu/online")
                .and_then(|t| parse_cpu_list(&t))
                .or_else(|| std::thread::available_parallelism().ok().map(|n| n.get() as u32)),
            uptime: text("/proc/uptime").and_then(|t| {
                let s: f64 = t.split_whitespace().next()?.parse().ok()?;
                (s.is_finite() && s >= 0.0).then(|| Duration::from_secs_f64(s))
            }),
            boot_id: boot_id(),
        }
    }
}

/// The same for the life of the process: read until it has been read once
/// (a failed read is tried again next cycle: the `rebooted` event needs it).
fn boot_id() -> Option<String> {
    static BOOT_ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    if let Some(id) = BOOT_ID.get() {
        return Some(id.clone());
    }
    let path = std::path::Path::new("/proc/sys/kernel/random/boot_id");
    let bytes = crate::fsutil::read_regular(path, 4096).ok()?;
    let id = String::from_utf8(bytes).ok()?.trim().to_string();
    (!id.is_empty()).then(|| BOOT_ID.get_or_init(|| id).clone())
}

/// The host's /proc and /sys files, opened once per process and read again
/// from offset 0 each cycle (as procps does with /proc/meminfo): the kernel
/// makes their text anew at every read from the start. Open, fstat, read and
/// close of 5 files a cycle were a tenth of an idle daemon's own CPU.
///
/// Only files of procfs and sysfs are kept: in a container, lxcfs puts FUSE
/// files over /proc/meminfo and friends, whose text a kept descriptor may
/// serve from a cache; those are opened anew each time, as before.
mod kept {
    use std::collections::HashMap;
    use std::fs::File;
    use std::os::unix::fs::FileExt;
    use std::sync::{Mutex, OnceLock, PoisonError};

    /// The most a host file may hold: /proc/meminfo is ~1.5 KiB.
    const MAX: usize = 64 << 10;

    static FILES: OnceLock<Mutex<HashMap<&'static str, File>>> = OnceLock::new();

    pub fn read(path: &'static str) -> Option<String> {
        let files = FILES.get_or_init(Mutex::default);
        let mut files = files.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(file) = files.get(path) {
            if let Some(text) = read_from_start(file) {
                return Some(text);
            }
            files.remove(path);
        }
        let file = open(path)?;
        let Some(text) = read_from_start(&file) else {
            // A file that will not read at an offset (a FUSE file may refuse
            // `pread`): read from where it opened, as before.
            let bytes = crate::fsutil::read_regular(std::path::Path::new(path), MAX as u64).ok()?;
            return String::from_utf8(bytes).ok();
        };
        if is_kernels(&file) {
            files.insert(path, file);
        }
        Some(text)
    }

    /// procfs or sysfs: text the kernel makes at each read.
    fn is_kernels(file: &File) -> bool {
        const SYSFS_MAGIC: rustix::fs::FsWord = 0x6265_6572;
        rustix::fs::fstatfs(file)
            .is_ok_and(|s| s.f_type == rustix::fs::PROC_SUPER_MAGIC || s.f_type == SYSFS_MAGIC)
    }

    #[cfg(test)]
    pub fn is_kept(path: &str) -> bool {
        FILES
            .get()
            .is_some_and(|f| f.lock().unwrap_or_else(PoisonError::into_inner).contains_key(path))
    }

    /// As `fsutil::read_regular` opens: never blocking on a FIFO, and only
    /// a regular file.
    fn open(path: &str) -> Option<File> {
        use rustix::fs::{Mode, OFlags};
        let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOCTTY;
        let file = File::from(rustix::fs::open(path, flags, Mode::empty()).ok()?);
        file.metadata().ok()?.is_file().then_some(file)
    }

    fn read_from_start(file: &File) -> Option<String> {
        let mut buf = vec![0u8; 4096];
        let mut len = 0;
        loop {
            if len == buf.len() {
                if len >= MAX {
                    return None;
                }
                buf.resize(len * 2, 0);
            }
            match file.read_at(&mut buf[len..], len as u64) {
                Ok(0) => break,
                Ok(n) => len += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return None,
            }
        }
        buf.truncate(len);
        String::from_utf8(buf).ok()
    }
}

/// MemTotal, MemAvailable, SwapTotal, SwapFree (kB in the file).
pub fn parse_meminfo(text: &str) -> Option<MemInfo> {
    let field = |name: &str| {
        text.lines().find_map(|l| {
            let rest = l.strip_prefix(name)?.strip_prefix(':')?;
            let kb: u64 = rest.split_whitespace().next()?.parse().ok()?;
            Some(kb.saturating_mul(1024))
        })
    };
    Some(MemInfo {
        total: field("MemTotal")?,
        available: field("MemAvailable")?,
        swap_total: field("SwapTotal").unwrap_or(0),
        swap_free: field("SwapFree").unwrap_or(0),
    })
}

pub fn parse_loadavg(text: &str) -> Option<[f64; 3]> {
    let mut it = text.split_whitespace().map(|w| w.parse::<f64>().ok());
    Some([it.next()??, it.next()??, it.next()??])
}

/// `0-3,5,7-8` → 7.
pub fn parse_cpu_list(text: &str) -> Option<u32> {
    let mut n = 0u32;
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (a.parse::<u32>().ok()?, b.parse::<u32>().ok()?),
            None => {
                let a = part.parse::<u32>().ok()?;
                (a, a)
            }
        };
        n = n.checked_add(b.checked_sub(a)? + 1)?;
    }
    (n > 0).then_some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_host_file_reads_anew_each_time_and_whole() {
        let first = kept::read("/proc/uptime").expect("/proc/uptime");
        let parse = |t: &str| t.split_whitespace().next().unwrap().parse::<f64>().unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        let mut now = kept::read("/proc/uptime").expect("again");
        while parse(&now) <= parse(&first) && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
            now = kept::read("/proc/uptime").expect("again");
        }
        assert!(parse(&now) > parse(&first), "{first} then {now}: not read anew");
        let meminfo = kept::read("/proc/meminfo").expect("/proc/meminfo");
        assert!(parse_meminfo(&kept::read("/proc/meminfo").unwrap()).is_some());
        assert!(meminfo.ends_with('\n') && meminfo.contains("MemTotal:"), "{meminfo}");
        assert_eq!(kept::read("/proc/no-such-file"), None);
        assert!(kept::is_kept("/proc/uptime") && kept::is_kept("/proc/meminfo"));
        // A file of any other file system is read anew each time, not kept.
        let d = tempfile::tempdir().unwrap();
        let plain = d.path().join("meminfo");
        std::fs::write(&plain, "MemTotal: 1 kB\n").unwrap();
        let plain: &'static str = Box::leak(plain.to_str().unwrap().to_string().into_boxed_str());
        assert_eq!(kept::read(plain).as_deref(), Some("MemTotal: 1 kB\n"));
        assert!(!kept::is_kept(plain));
        std::fs::write(plain, "MemTotal: 2 kB\n").unwrap();
        assert_eq!(kept::read(plain).as_deref(), Some("MemTotal: 2 kB\n"));
        let fifo = d.path().join("fifo");
        assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
        let fifo: &'static str = Box::leak(fifo.to_str().unwrap().to_string().into_boxed_str());
        assert_eq!(kept::read(fifo), None, "a FIFO is refused at once, not waited on");
    }

    #[test]
    fn proc_files_parse() {
        let m = parse_meminfo(
            "MemTotal:        2000 kB\nMemFree: 1 kB\nMemAvailable:     500 kB\nSwapTotal: 1000 kB\nSwapFree: 250 kB\n",
        )
        .unwrap();
        assert_eq!(m.total, 2_048_000);
        assert_eq!(m.used_pct(), Some(75.0));
        assert_eq!(m.swap_used_pct(), Some(75.0));
        let no_swap = MemInfo { swap_total: 0, ..m };
        assert_eq!(no_swap.swap_used_pct(), None);
        assert_eq!(parse_meminfo("MemTotal: 5 kB\n"), None);
        assert_eq!(parse_loadavg("0.50 1.25 2.00 1/123 456\n"), Some([0.5, 1.25, 2.0]));
        assert_eq!(parse_loadavg("x"), None);
        assert_eq!(parse_cpu_list("0-3,5,7-8\n"), Some(7));
        assert_eq!(parse_cpu_list("0\n"), Some(1));
        assert_eq!(parse_cpu_list("3-1"), None);
    }

    #[test]
    fn this_host_has_figures() {
        let f = Figures::read();
        assert!(f.memory.is_some_and(|m| m.total > 0));
        assert!(f.load.is_some());
        assert!(f.cpus.is_some_and(|c| c > 0));
        assert!(f.boot_id.is_some());
    }
}
