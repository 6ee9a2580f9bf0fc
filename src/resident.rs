//! Gives back the pages of the binary that only start-up ran.
//!
//! The kernel maps an executable's code and constants in 64 KiB blocks around
//! each page touched, and they stay mapped: reading the config (YAML, serde),
//! compiling its patterns, preparing the history's SQL and the first cycle
//! leave ~2.4 MB of text mapped, which PSS counts whole, although a resting
//! daemon runs ~1.5 MB of it (`link-order.txt` lays that out first and
//! together). Once its first cycle is done, and again after the cycle that
//! follows a reload (SIGHUP reads the config again), `run` drops its
//! mappings of the binary's pages that are the file's own; the cycles after
//! map back, from the page cache, only what they run (bench/NOTES.md, "cost").

/// One mapping of /proc/self/smaps and the figures this needs.
struct Mapping {
    start: usize,
    end: usize,
    perms: String,
    inode: u64,
    rss_kb: u64,
    anonymous_kb: u64,
}

fn mappings(smaps: &str) -> Vec<Mapping> {
    let mut out: Vec<Mapping> = Vec::new();
    for line in smaps.lines() {
        let mut f = line.split_whitespace();
        let first = f.next().unwrap_or("");
        if let Some((a, b)) = first.split_once('-') {
            let (Ok(start), Ok(end)) = (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16))
            else {
                continue;
            };
            let perms = f.next().unwrap_or("").to_string();
            let inode = f.nth(2).and_then(|i| i.parse().ok()).unwrap_or(0);
            out.push(Mapping {
                start,
                end,
                perms,
                inode,
                rss_kb: 0,
                // Unknown until read: never taken for the file's own.
                anonymous_kb: u64::MAX,
            });
            continue;
        }
        let Some(m) = out.last_mut() else { continue };
        let kb = || f.clone().next().and_then(|v| v.parse::<u64>().ok());
        match first {
            "Rss:" => m.rss_kb = kb().unwrap_or(0),
            // Unreadable: never taken for the file's own.
            "Anonymous:" => m.anonymous_kb = kb().unwrap_or(u64::MAX),
            _ => {}
        }
    }
    out
}

/// Whether every page of the mapping is the file's own: private, never
/// writable, and no copy-on-write copy (the relocated `.data.rel.ro` has
/// some, so it is never one of these). Not `Private_Dirty`: that also
/// counts page-cache pages not yet written back (a binary just built or
/// installed), which are the file's content all the same.
fn files_own(m: &Mapping) -> bool {
    let p = m.perms.as_bytes();
    p.len() == 4 && p[0] == b'r' && p[1] == b'-' && p[3] == b'p' && m.anonymous_kb == 0
}

/// Drops this process's mappings of its executable's pages that are the
/// file's own; returns the KiB that were mapped (0 when none or not Linux).
/// Whatever runs next maps its pages back from the page cache.
pub fn release_start_up() -> u64 {
    use std::os::unix::fs::MetadataExt;
    let Ok(exe) = std::fs::metadata("/proc/self/exe") else { return 0 };
    let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else { return 0 };
    let mut released: u64 = 0;
    for m in mappings(&smaps).iter().filter(|m| m.inode == exe.ino() && files_own(m)) {
        // SAFETY: MADV_DONTNEED on a private file mapping drops its page
        // table entries; the next access maps the page again from the file.
        // `files_own` holds: the mapping is not writable and has no
        // anonymous (copy-on-write) page, so every page is the file's content,
        // and no write can make one until someone changes its protection,
        // which nothing in this program does. The bytes any code or reference
        // sees there are the same before and after, as after the kernel
        // reclaims these clean pages under memory pressure, which it may do
        // at any time. Threads running code in the range meanwhile fault it
        // back in. The range is a whole mapping: page-aligned, and in the
        // address space (MADV_DONTNEED never unmaps it).
        #[allow(unsafe_code)]
        let done = unsafe {
            rustix::mm::madvise(
                m.start as *mut std::ffi::c_void,
                m.end - m.start,
                rustix::mm::Advice::LinuxDontNeed,
            )
        };
        if done.is_ok() {
            released = released.saturating_add(m.rss_kb);
        }
    }
    released
}

#[cfg(test)]
mod tests {
    use super::*;

    fn own_rss_kb() -> (u64, u64) {
        use std::os::unix::fs::MetadataExt;
        let ino = std::fs::metadata("/proc/self/exe").unwrap().ino();
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
        let ms = mappings(&smaps);
        let own = ms.iter().filter(|m| m.inode == ino);
        let (files, other): (Vec<_>, Vec<_>) = own.partition(|m| files_own(m));
        (files.iter().map(|m| m.rss_kb).sum(), other.iter().map(|m| m.rss_kb).sum())
    }

    #[test]
    fn the_binarys_own_pages_are_given_back_and_what_runs_next_still_works() {
        let (before, relocated) = own_rss_kb();
        assert!(before > 512, "only {before} KiB of the test binary mapped");
        assert!(relocated > 0, "no relocated (copy-on-write) mapping seen: the filter is untested");
        let released = release_start_up();
        let (after, relocated_after) = own_rss_kb();
        eprintln!("FIGURE test binary: {before} KiB of its own pages mapped, {after} KiB after");
        assert!(released >= before / 2, "released {released} of {before} KiB");
        assert!(after < before / 2, "{after} KiB still mapped of {before}");
        // The relocated pages were kept: dropping them would map the
        // unrelocated file back, and the trait objects and formatting below
        // (vtables and pointers in .data.rel.ro) would crash.
        assert!(relocated_after >= relocated, "relocated mappings dropped: {relocated_after} KiB");
        let shown: Vec<Box<dyn std::fmt::Display>> = vec![Box::new(42), Box::new("forty-two")];
        let text: Vec<String> = shown.iter().map(|d| format!("{d:>10}")).collect();
        assert_eq!(text, ["        42", " forty-two"]);
        let parsed: serde_json::Value = serde_json::from_str(r#"{"a": [1, 2.5, "x"]}"#).unwrap();
        assert_eq!(parsed["a"][1], 2.5);
    }

    #[test]
    fn a_mapping_with_a_private_copy_is_never_the_files_own() {
        let smaps = "5600-5700 r--p 00001000 fd:01 42 /usr/bin/x\nRss: 8 kB\nPrivate_Dirty: 4 kB\nAnonymous: 4 kB\n\
                     5700-5800 r-xp 00002000 fd:01 42 /usr/bin/x\nRss: 16 kB\nPrivate_Dirty: 16 kB\nAnonymous: 0 kB\n\
                     5800-5900 rw-p 00003000 fd:01 42 /usr/bin/x\nRss: 4 kB\nPrivate_Dirty: 0 kB\nAnonymous: 0 kB\n\
                     5900-5a00 r--s 00004000 fd:01 42 /usr/bin/x\nRss: 4 kB\nPrivate_Dirty: 0 kB\nAnonymous: 0 kB\n\
                     5a00-5b00 r--p 00005000 fd:01 42 /usr/bin/x\nRss: 4 kB\n";
        let ms = mappings(smaps);
        assert_eq!(ms.len(), 5);
        assert_eq!((ms[1].start, ms[1].end, ms[1].inode, ms[1].rss_kb), (0x5700, 0x5800, 42, 16));
        let own: Vec<bool> = ms.iter().map(files_own).collect();
        // copied, text, writable, shared, figures unknown
        assert_eq!(own, [false, true, false, false, false]);
    }
}
