//! Bounded malloc arenas for the long-running commands (`run`, `serve`).
//!
//! glibc gives every thread that allocates its own malloc arena, up to 8 per
//! core, and keeps each arena's free memory. The daemon starts short-lived
//! threads every cycle (probe workers, plugin pipe readers) and per HTTP
//! connection, so with the default its RSS creeps, bounded but for hours:
//! +1.5 MiB over the 2,000 cycles of `make soak`. Two arenas hold it to
//! +0.5 MiB and the daemon 0.5-1.5 MiB smaller (docs/BENCHMARKS.md). The limit
//! can only be set before the process's first allocation, through the
//! environment, so the daemon re-executes itself once with
//! `MALLOC_ARENA_MAX=2`, unless the operator chose a value (or
//! `GLIBC_TUNABLES`). Same PID, same arguments and environment otherwise:
//! systemd, sd_notify and signals see no difference. Harmless on other libcs.

use std::os::unix::process::CommandExt;

pub const ENV: &str = "MALLOC_ARENA_MAX";
/// Set with it: allocations over 128 KiB (large HTTP answers) are mapped
/// alone and unmapped when freed. By default glibc raises this threshold to
/// the largest block freed, after which megabyte answers came from the
/// arenas, whose freed memory stayed: RSS held hundreds of megabytes after
/// the clients of a history flood had left.
const MMAP_ENV: &str = "MALLOC_MMAP_THRESHOLD_";
const MMAP_THRESHOLD: &str = "131072";

/// Re-executes this program with `MALLOC_ARENA_MAX=2` unless it is set
/// already; returns only when that is not done or not possible.
pub fn limit() {
    if std::env::var_os(ENV).is_some() || std::env::var_os("GLIBC_TUNABLES").is_some() {
        return;
    }
    // A binary replaced or deleted since start (package upgrade) cannot be
    // re-executed: carry on with the default arenas.
    let Ok(exe) = std::env::current_exe() else { return };
    if !exe.is_file() {
        return;
    }
    let mut args = std::env::args_os();
    let arg0 = args.next().unwrap_or_else(|| exe.clone().into_os_string());
    let mut cmd = std::process::Command::new(&exe);
    cmd.arg0(arg0).args(args).env(ENV, "2");
    if std::env::var_os(MMAP_ENV).is_none() {
        cmd.env(MMAP_ENV, MMAP_THRESHOLD);
    }
    let err = cmd.exec();
    crate::warn!("cannot re-execute {} with {ENV}=2 ({err}); continuing", exe.display());
}
