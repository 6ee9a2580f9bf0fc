//! Atomic file writes, bounded reads of regular files, and the state-file lock.
//!
//! The daemon runs as its own user, while an admin may run `sudo
//! chatstack-status mute` (or `check`) on the same files. So whatever we
//! write keeps the existing file's owner and mode; a file root creates goes
//! to the owner of its directory (the daemon's state directory); the lock
//! stays usable by that owner whoever created it, and by nobody else but
//! root: it is 0600, so a member of the daemon's group (who may read the
//! state) cannot hold it and stop the daemon. A read never blocks on a
//! FIFO, never follows into a directory or device, and never takes more
//! than its caller allows.

use rustix::fs::{Mode, OFlags};
use std::fs::{File, Permissions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

/// A temp file of ours older than this is a leftover of a killed write.
const STALE_TEMP: Duration = Duration::from_secs(60);
const TEMP_SUFFIX: &str = ".tmp";

/// What a power cut may do to a file written by [`write_atomic`]. Either
/// way readers see the old file or the new one, never a mix: the rename is
/// atomic whether or not anything reached the disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// fsync before the rename: after a power cut the file is the old one
    /// or the new one, both whole (the state file: budgets, the outbox).
    Synced,
    /// No fsync: a snapshot the daemon rewrites every cycle (the status and
    /// prom files). A power cut may leave the one before or, on some file
    /// systems, an empty file, until the first cycle after boot; syncing it
    /// would cost two disk flushes a cycle to keep a figure that is stale
    /// by then anyway (measured in bench/NOTES.md, "cost"). Written into the
    /// file the previous write replaced, which then trades places with the
    /// target (`write_swapped`).
    Snapshot,
}

/// Writes `bytes` to `path` so that readers see the old file or the new one,
/// never a mix: temp file in the same directory, fsync (when `durability`
/// asks), owner and mode, rename. Creates the directory if missing.
///
/// The directory is not synced: a rename lost to a power cut leaves the old
/// file, whole, which is what the rename promised readers anyway.
///
/// An existing file keeps its owner and mode (the daemon's user must still
/// read what root rewrote); a new file gets `mode`, and when root creates
/// it, the owner of its directory. Temp files that a killed write left
/// behind for the same target are removed afterwards (at the process's
/// first write of the target, then once a minute).
pub fn write_atomic(
    path: &Path,
    bytes: &[u8],
    mode: u32,
    durability: Durability,
) -> io::Result<()> {
    let dir = parent_dir(path);
    if !dir.exists() {
        std::fs::create_dir_all(dir)?;
        let _ = std::fs::set_permissions(dir, Permissions::from_mode(0o750));
    }
    if !(durability == Durability::Snapshot && write_swapped(path, bytes, mode)?) {
        write_through_temp(path, bytes, mode, durability)?;
    }
    if sweep_due(path) {
        remove_stale_temps(dir, &temp_prefix(path));
    }
    Ok(())
}

/// The temp file, then the rename over the target.
fn write_through_temp(
    path: &Path,
    bytes: &[u8],
    mode: u32,
    durability: Durability,
) -> io::Result<()> {
    let dir = parent_dir(path);
    let prefix = temp_prefix(path);
    let mut tmp = tempfile::Builder::new().prefix(&prefix).suffix(TEMP_SUFFIX).tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    let (owner, mode) = match std::fs::metadata(path) {
        Ok(m) if m.is_file() => (Some((m.uid(), m.gid())), m.mode() & 0o7777),
        _ => (owner_for_new_file(dir), mode),
    };
    if let Some((uid, gid)) = owner {
        give(tmp.as_file(), uid, gid)?;
    }
    // tempfile creates 0600 and rename keeps the mode: set ours first (after
    // the chown, which clears set-id bits).
    tmp.as_file().set_permissions(Permissions::from_mode(mode))?;
    if durability == Durability::Synced {
        sync(tmp.as_file())?;
    }
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Where the file system cannot exchange two names (`RENAME_EXCHANGE`):
/// snapshots go through a temp file from then on.
static NO_EXCHANGE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The sibling a snapshot's next write goes into: `.NAME.spare`.
pub fn spare_path(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    parent_dir(path).join(format!(".{name}.spare"))
}

/// A `Durability::Snapshot` write without a new inode each time: the bytes
/// go into `.NAME.spare` (the file the previous write replaced), which then
/// trades places with the target in one `renameat2(RENAME_EXCHANGE)`, so a
/// reader still opens the old file or the new one, never a mix. Replacing
/// the target by a rename made ext4 allocate an inode, free the old one and
/// start writing the new data back at once (`auto_da_alloc`): a tenth of an
/// idle cycle's CPU for the status file alone (bench/NOTES.md). The spare
/// is opened without following a symlink or blocking on a FIFO, and used
/// only as a plain file with no other name, owned by us or the target's
/// owner; anything else in its place is removed. False: not here (the target is not a plain file, or the file
/// system cannot exchange), and the caller writes through a temp file.
fn write_swapped(path: &Path, bytes: &[u8], mode: u32) -> io::Result<bool> {
    use rustix::fs::{CWD, RenameFlags};
    use std::os::unix::fs::FileExt;
    use std::sync::atomic::Ordering::Relaxed;
    if NO_EXCHANGE.load(Relaxed) {
        return Ok(false);
    }
    let dir = parent_dir(path);
    let (owner, mode) = match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_file() => (Some((m.uid(), m.gid())), m.mode() & 0o7777),
        Ok(_) => return Ok(false),
        Err(e) if e.kind() == io::ErrorKind::NotFound => (owner_for_new_file(dir), mode),
        Err(e) => return Err(e),
    };
    let spare = spare_path(path);
    let flags = OFlags::WRONLY
        | OFlags::CREATE
        | OFlags::NOFOLLOW
        | OFlags::NONBLOCK
        | OFlags::CLOEXEC
        | OFlags::NOCTTY;
    let usable = rustix::fs::open(&spare, flags, Mode::from_raw_mode(0o600))
        .map(File::from)
        .ok()
        .and_then(|f| f.metadata().ok().map(|m| (f, m)))
        .filter(|(_, m)| {
            // Another user's file (planted in a world-writable directory,
            // its owner may hold it open) would let them edit the target.
            let ours = m.uid() == rustix::process::geteuid().as_raw()
                || owner.is_some_and(|(uid, _)| uid == m.uid());
            m.is_file() && m.nlink() == 1 && ours
        });
    let Some((file, meta)) = usable else {
        let _ = std::fs::remove_file(&spare);
        return Ok(false);
    };
    if let Some((uid, gid)) = owner {
        give(&file, uid, gid)?;
    }
    if meta.mode() & 0o7777 != mode {
        file.set_permissions(Permissions::from_mode(mode))?;
    }
    file.write_all_at(bytes, 0)?;
    file.set_len(bytes.len() as u64)?;
    drop(file);
    match rustix::fs::renameat_with(CWD, &spare, CWD, path, RenameFlags::EXCHANGE) {
        Ok(()) => Ok(true),
        // No target yet: the spare becomes it.
        Err(rustix::io::Errno::NOENT) => std::fs::rename(&spare, path).map(|()| true),
        Err(rustix::io::Errno::INVAL | rustix::io::Errno::NOSYS) => {
            NO_EXCHANGE.store(true, Relaxed);
            let _ = std::fs::remove_file(&spare);
            Ok(false)
        }
        Err(e) => Err(e.into()),
    }
}

/// fsync, counted per thread so a test can see which writes pay for one.
fn sync(file: &File) -> io::Result<()> {
    SYNCS.with(|n| n.set(n.get() + 1));
    file.sync_all()
}

thread_local! {
    static SYNCS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// How many fsyncs this thread's writes made (tests).
pub fn syncs_on_this_thread() -> u64 {
    SYNCS.with(std::cell::Cell::get)
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

/// `.state.json.`: tempfile adds random letters and digits, then `.tmp`.
fn temp_prefix(path: &Path) -> String {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    format!(".{name}.")
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Who should own a file we create in `dir`: when we are root, the
/// directory's owner (root editing the daemon's directory must not leave it
/// files it cannot read); otherwise ourselves (None: nothing to change).
fn owner_for_new_file(dir: &Path) -> Option<(u32, u32)> {
    if !is_root() {
        return None;
    }
    std::fs::metadata(dir).ok().map(|m| (m.uid(), m.gid()))
}

/// Hands `file` to `uid:gid` unless it has them already. Only root can give
/// a file away; anyone else keeps writing as themselves (the file is then
/// theirs, which is what they could do by rename anyway).
fn give(file: &File, uid: u32, gid: u32) -> io::Result<()> {
    let m = file.metadata()?;
    if (m.uid(), m.gid()) == (uid, gid) {
        return Ok(());
    }
    match std::os::unix::fs::fchown(file, Some(uid), Some(gid)) {
        Err(e) if !is_root() && e.kind() == io::ErrorKind::PermissionDenied => Ok(()),
        r => r,
    }
}

/// Whether this process should look for `path`'s leftover temp files now:
/// at its first write of it, then once per [`STALE_TEMP`] (a leftover is
/// that old before it counts). Reading the directory at each of the
/// daemon's writes, twice a cycle, only ever found nothing.
fn sweep_due(path: &Path) -> bool {
    static SWEPT: std::sync::Mutex<Vec<(PathBuf, Instant)>> = std::sync::Mutex::new(Vec::new());
    let mut swept = SWEPT.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let now = Instant::now();
    match swept.iter_mut().find(|(p, _)| p == path) {
        Some((_, at)) if now.duration_since(*at) < STALE_TEMP => false,
        Some((_, at)) => {
            *at = now;
            true
        }
        None => {
            // Bounded: a process writes a handful of files.
            if swept.len() >= 64 {
                swept.remove(0);
            }
            swept.push((path.to_path_buf(), now));
            true
        }
    }
}

/// Removes `dir/<prefix><random>.tmp` files older than `STALE_TEMP`: what a
/// write killed between create and rename leaves behind. A younger one may
/// be another writer's, still at work.
fn remove_stale_temps(dir: &Path, prefix: &str) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let now = SystemTime::now();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let random = name.strip_prefix(prefix).and_then(|r| r.strip_suffix(TEMP_SUFFIX));
        if !random.is_some_and(|r| !r.is_empty() && r.bytes().all(|b| b.is_ascii_alphanumeric())) {
            continue;
        }
        let Ok(meta) = entry.metadata() else { continue };
        let old = meta
            .modified()
            .ok()
            .and_then(|t| now.duration_since(t).ok())
            .is_some_and(|age| age > STALE_TEMP);
        if meta.is_file() && old && std::fs::remove_file(entry.path()).is_ok() {
            crate::info!("removed {}, left behind by an interrupted write", entry.path().display());
        }
    }
}

/// Reads a small /proc or /sys file whole into `buf`: open, read, close.
///
/// Not `std::fs::read` or `read_to_end`: they ask a file's size first
/// (`statx`, `lseek`) and then probe with a 32-byte read, and a /proc file
/// says its size is 0, so reading one cost 6 system calls instead of 4;
/// a process scan reads one per process every cycle.
pub fn read_proc(path: &Path, buf: &mut Vec<u8>) -> io::Result<()> {
    read_chunks(path, buf, false)
}

/// Reads a `/proc/PID/cmdline` whole into `buf`: open, read, close. The
/// kernel copies a command line until the reader's buffer is full or the
/// line ends, so a short read is its end and needs no second read to see
/// it (`read_proc` cannot assume that of every /proc file: a `seq_file`
/// returns short reads mid-file); a scan reads one per process per cycle.
pub fn read_cmdline(path: &Path, buf: &mut Vec<u8>) -> io::Result<()> {
    read_chunks(path, buf, true)
}

/// Open, read 4 KiB at a time into `buf` until EOF (or, when `short_is_end`,
/// until a read returns less than asked), close.
fn read_chunks(path: &Path, buf: &mut Vec<u8>, short_is_end: bool) -> io::Result<()> {
    let mut file = File::open(path)?;
    let mut chunk = [0u8; 4096];
    loop {
        match file.read(&mut chunk) {
            Ok(0) => return Ok(()),
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                if short_is_end && n < chunk.len() {
                    return Ok(());
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Reads the whole of a regular file of at most `max_bytes`.
///
/// Opened non-blocking, so a FIFO in its place fails at once instead of
/// waiting for a writer; anything but a regular file (FIFO, directory,
/// socket, device) is an `InvalidInput` error saying what it is; a larger
/// file is `FileTooLarge`. Other errors are the `open`/`read` ones
/// (`NotFound`, `PermissionDenied`, …).
pub fn read_regular(path: &Path, max_bytes: u64) -> io::Result<Vec<u8>> {
    let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOCTTY;
    let file = File::from(rustix::fs::open(path, flags, Mode::empty())?);
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(not_regular(&meta.file_type()));
    }
    let too_large = |len: u64| {
        io::Error::new(
            io::ErrorKind::FileTooLarge,
            format!("{len} bytes, more than the {max_bytes} allowed"),
        )
    };
    if meta.len() > max_bytes {
        return Err(too_large(meta.len()));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    // It may grow while we read: never past the bound.
    file.take(max_bytes.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max_bytes {
        return Err(too_large(bytes.len() as u64));
    }
    Ok(bytes)
}

/// The metadata of the regular file at `path`, looked at through an open
/// that never blocks (a FIFO) and never follows a symlink: a symlink is an
/// `InvalidInput` error ("a symbolic link, not followed"), anything but a
/// regular file one saying what it is. For files another library opens
/// itself (the history database), checked just before it does.
pub fn regular_file_meta(path: &Path) -> io::Result<std::fs::Metadata> {
    let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOCTTY;
    let fd = match rustix::fs::open(path, flags | OFlags::NOFOLLOW, Mode::empty()) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::LOOP) => return Err(symlink_refused()),
        // No read permission: still say what it is, from its name alone.
        Err(rustix::io::Errno::ACCESS) => {
            let meta = std::fs::symlink_metadata(path)?;
            if meta.file_type().is_symlink() {
                return Err(symlink_refused());
            }
            if !meta.is_file() {
                return Err(not_regular(&meta.file_type()));
            }
            return Ok(meta);
        }
        Err(e) => return Err(e.into()),
    };
    let meta = File::from(fd).metadata()?;
    if !meta.is_file() {
        return Err(not_regular(&meta.file_type()));
    }
    Ok(meta)
}

fn symlink_refused() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, "a symbolic link, not followed")
}

/// Root created `file` in `dir`: it goes to the directory's owner, as every
/// file we create there does (see `write_atomic`). Nothing for anyone else.
pub fn give_new_file(file: &File, dir: &Path) -> io::Result<()> {
    match owner_for_new_file(dir) {
        Some((uid, gid)) => give(file, uid, gid),
        None => Ok(()),
    }
}

/// Root found `path` (not a symlink) owned by root in a directory someone
/// else owns: what an older root run created there by mistake goes back to
/// the directory's owner, who must read and write it. True when it did.
pub fn return_to_dir_owner(path: &Path, dir: &Path) -> io::Result<bool> {
    let Some((uid, gid)) = owner_for_new_file(dir) else { return Ok(false) };
    let meta = std::fs::symlink_metadata(path)?;
    if uid == 0 || meta.uid() != 0 || !meta.is_file() {
        return Ok(false);
    }
    std::os::unix::fs::lchown(path, Some(uid), Some(gid))?;
    Ok(true)
}

fn not_regular(t: &std::fs::FileType) -> io::Error {
    use std::os::unix::fs::FileTypeExt;
    let what = if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_block_device() || t.is_char_device() {
        "a device"
    } else {
        "something else"
    };
    io::Error::new(io::ErrorKind::InvalidInput, format!("not a regular file ({what})"))
}

/// An exclusive lock held for the life of the value (released on drop).
pub struct Lock {
    _file: File,
    pub path: PathBuf,
}

pub enum LockError {
    Busy(PathBuf),
    Io(PathBuf, io::Error),
}

/// The lock files' mode: only their owner (the daemon's user) and root
/// may open them, so only they can hold them.
const LOCK_MODE: u32 = 0o600;

/// `<state_file><suffix>`.
fn beside(state_file: &Path, suffix: &str) -> PathBuf {
    let mut name = state_file.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Takes `<state_file>.lock`, waiting up to `wait` for another holder.
///
/// A separate lock file, because the state file itself is replaced by rename
/// (a lock on the old inode would protect nothing).
pub fn lock(state_file: &Path, wait: Duration) -> Result<Lock, LockError> {
    let path = beside(state_file, ".lock");
    let file = open_lock(&path, state_file, false).map_err(|e| LockError::Io(path.clone(), e))?;
    let deadline = Instant::now() + wait;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(Lock { _file: file, path }),
            Err(std::fs::TryLockError::WouldBlock) if Instant::now() < deadline => {
                // Polling a flock is the only portable wait with a bound.
                std::thread::sleep(Duration::from_millis(25));
            }
            Err(std::fs::TryLockError::WouldBlock) => return Err(LockError::Busy(path)),
            Err(std::fs::TryLockError::Error(e)) => return Err(LockError::Io(path, e)),
        }
    }
}

/// Why `claim_daemon` failed.
pub enum ClaimError {
    /// Another daemon holds the claim; its PID as it wrote it (None: unreadable).
    Running(PathBuf, Option<u32>),
    Io(PathBuf, io::Error),
}

/// `run`'s claim on a state file for its whole life: `<state_file>.pid`,
/// locked (never waited for) and holding the daemon's PID, so a second
/// daemon on the same state file can say which one runs instead of healing
/// twice. `check`, `mute` and the others never look at it.
pub fn claim_daemon(state_file: &Path) -> Result<Lock, ClaimError> {
    let path = beside(state_file, ".pid");
    let io_err = |e| ClaimError::Io(path.clone(), e);
    let mut file = open_lock(&path, state_file, true).map_err(io_err)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut text = String::new();
            let _ = (&file).take(32).read_to_string(&mut text);
            return Err(ClaimError::Running(path, text.trim().parse().ok()));
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(io_err(e)),
    }
    file.set_len(0).map_err(io_err)?;
    file.write_all(format!("{}\n", std::process::id()).as_bytes()).map_err(io_err)?;
    Ok(Lock { _file: file, path })
}

/// Opens a lock file (read-only unless `write`: flock needs no write
/// access), creating it 0600 if missing, never through a symlink. One that
/// root creates goes to the owner of the state file, or of its directory,
/// so the daemon's user can always open it; one found open to others (the
/// 0640 of older versions) is tightened to 0600 — by root, also handed to
/// that owner.
fn open_lock(path: &Path, state_file: &Path, write: bool) -> io::Result<File> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty() && !d.exists()) {
        std::fs::create_dir_all(dir)?;
        let _ = std::fs::set_permissions(dir, Permissions::from_mode(0o750));
    }
    let access = if write { OFlags::RDWR } else { OFlags::RDONLY };
    let flags = access | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOCTTY | OFlags::NOFOLLOW;
    let owner = || {
        std::fs::metadata(state_file)
            .ok()
            .filter(|m| m.is_file())
            .map(|m| (m.uid(), m.gid()))
            .or_else(|| owner_for_new_file(parent_dir(path)))
    };
    // Created or opened: two tries cover a lock removed between the two calls.
    for _ in 0..2 {
        match rustix::fs::open(
            path,
            flags | OFlags::CREATE | OFlags::EXCL,
            Mode::from_raw_mode(LOCK_MODE),
        ) {
            Ok(fd) => {
                let file = File::from(fd);
                if is_root()
                    && let Some((uid, gid)) = owner()
                {
                    give(&file, uid, gid)?;
                }
                return Ok(file);
            }
            Err(rustix::io::Errno::EXIST) => match rustix::fs::open(path, flags, Mode::empty()) {
                Ok(fd) => {
                    let file = File::from(fd);
                    let meta = file.metadata()?;
                    if !meta.is_file() {
                        return Err(not_regular(&meta.file_type()));
                    }
                    if meta.mode() & 0o077 != 0 {
                        tighten(&file, meta.uid(), owner())?;
                    }
                    return Ok(file);
                }
                Err(rustix::io::Errno::NOENT) => continue,
                Err(rustix::io::Errno::LOOP) => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        "a symbolic link, not followed",
                    ));
                }
                Err(e) => return Err(e.into()),
            },
            Err(e) => return Err(e.into()),
        }
    }
    Err(io::Error::new(io::ErrorKind::NotFound, "the lock file keeps disappearing"))
}

/// A lock file others may open: made 0600 (by its owner or root; root also
/// hands it to `owner`, who must still open it). Anyone else leaves it: it
/// is not theirs to fix, and their lock works as before.
fn tighten(file: &File, file_uid: u32, owner: Option<(u32, u32)>) -> io::Result<()> {
    let me = rustix::process::geteuid().as_raw();
    if is_root() {
        if let Some((uid, gid)) = owner {
            give(file, uid, gid)?;
        }
    } else if me != file_uid {
        return Ok(());
    }
    file.set_permissions(Permissions::from_mode(LOCK_MODE))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> tempfile::TempDir {
        tempfile::tempdir().expect("tempdir")
    }

    #[test]
    fn read_regular_refuses_fifos_directories_and_oversize_files_at_once() {
        let d = dir();
        let fifo = d.path().join("fifo");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
        assert!(made.success());
        let started = Instant::now();
        let e = read_regular(&fifo, 100).unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(1), "blocked on a FIFO");
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert_eq!(e.to_string(), "not a regular file (a FIFO)");
        let e = read_regular(d.path(), 100).unwrap_err();
        assert_eq!(e.to_string(), "not a regular file (a directory)");
        let e = read_regular(Path::new("/dev/null"), 100).unwrap_err();
        assert_eq!(e.to_string(), "not a regular file (a device)");

        let f = d.path().join("f");
        std::fs::write(&f, b"12345").unwrap();
        assert_eq!(read_regular(&f, 5).unwrap(), b"12345");
        let e = read_regular(&f, 4).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::FileTooLarge);
        assert_eq!(e.to_string(), "5 bytes, more than the 4 allowed");
        assert_eq!(
            read_regular(&d.path().join("none"), 4).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
    }

    #[test]
    fn write_atomic_keeps_the_mode_of_an_existing_file_and_sets_it_on_a_new_one() {
        let d = dir();
        let f = d.path().join("status.json");
        write_atomic(&f, b"1", 0o640, Durability::Synced).unwrap();
        assert_eq!(std::fs::metadata(&f).unwrap().mode() & 0o7777, 0o640);
        std::fs::set_permissions(&f, Permissions::from_mode(0o604)).unwrap();
        write_atomic(&f, b"2", 0o640, Durability::Snapshot).unwrap();
        assert_eq!(std::fs::metadata(&f).unwrap().mode() & 0o7777, 0o604);
        assert_eq!(std::fs::read(&f).unwrap(), b"2");
    }

    #[test]
    fn read_proc_reads_a_file_of_several_chunks_and_a_proc_file_of_size_0_whole() {
        let d = dir();
        let f = d.path().join("big");
        let bytes: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&f, &bytes).unwrap();
        let mut buf = b"kept ".to_vec();
        read_proc(&f, &mut buf).unwrap();
        assert_eq!(&buf[..5], b"kept ");
        assert_eq!(&buf[5..], &bytes[..]);
        assert_eq!(std::fs::metadata("/proc/self/status").unwrap().len(), 0);
        let mut status = Vec::new();
        read_proc(Path::new("/proc/self/status"), &mut status).unwrap();
        let text = String::from_utf8(status).unwrap();
        assert!(text.starts_with("Name:") && text.contains("\nVmRSS:"), "{text}");
        let gone = read_proc(&d.path().join("none"), &mut buf).unwrap_err();
        assert_eq!(gone.kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn read_cmdline_reads_a_command_line_of_any_length_whole() {
        // 4096 bytes (one chunk exactly, so a second read sees the end),
        // one byte less and more, and several chunks.
        for len in [16, 4095, 4096, 4097, 10_000] {
            // `sleep 60 00…0` (sleep adds its arguments up: still 60 s):
            // "sleep\0" + "60\0" + the filler and its NUL.
            let filler = "0".repeat(len - "sleep 60 ".len() - 1);
            let mut child =
                std::process::Command::new("sleep").args(["60", &filler]).spawn().expect("sleep");
            let mut buf = Vec::new();
            let path = PathBuf::from(format!("/proc/{}/cmdline", child.id()));
            // Until the child has exec'd (its command line is then sleep's).
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            loop {
                buf.clear();
                read_cmdline(&path, &mut buf).unwrap();
                if buf.starts_with(b"sleep\0") || std::time::Instant::now() > deadline {
                    break;
                }
                std::thread::yield_now();
            }
            let _ = child.kill();
            let _ = child.wait();
            assert_eq!(buf.len(), len, "a command line of {len} bytes");
            assert_eq!(buf, format!("sleep\0{}\0{filler}\0", 60).into_bytes());
        }
    }

    #[test]
    fn a_synced_write_makes_one_fsync_and_a_snapshot_none() {
        let d = dir();
        let f = d.path().join("s.json");
        let before = syncs_on_this_thread();
        write_atomic(&f, b"1", 0o640, Durability::Synced).unwrap();
        assert_eq!(syncs_on_this_thread() - before, 1);
        write_atomic(&f, b"2", 0o640, Durability::Snapshot).unwrap();
        assert_eq!(syncs_on_this_thread() - before, 1);
        assert_eq!(std::fs::read(&f).unwrap(), b"2");
    }

    #[test]
    fn a_snapshot_trades_places_with_its_spare_and_allocates_no_inode() {
        let d = dir();
        let f = d.path().join("s.json");
        let spare = spare_path(&f);
        assert_eq!(spare, d.path().join(".s.json.spare"));
        write_atomic(&f, b"first, long", 0o640, Durability::Snapshot).unwrap();
        assert!(!spare.exists(), "no target yet: the spare became it");
        std::fs::set_permissions(&f, Permissions::from_mode(0o644)).unwrap();
        let a = std::fs::metadata(&f).unwrap().ino();
        write_atomic(&f, b"second", 0o640, Durability::Snapshot).unwrap();
        let b = std::fs::metadata(&f).unwrap().ino();
        assert_ne!(a, b);
        assert_eq!(std::fs::read(&f).unwrap(), b"second");
        assert_eq!(std::fs::read(&spare).unwrap(), b"first, long", "the file replaced");
        assert_eq!(std::fs::metadata(&f).unwrap().mode() & 0o7777, 0o644, "mode kept");
        for n in 0..4 {
            write_atomic(&f, format!("{n}").as_bytes(), 0o640, Durability::Snapshot).unwrap();
            assert!([a, b].contains(&std::fs::metadata(&f).unwrap().ino()), "a new inode");
            assert_eq!(std::fs::read(&f).unwrap(), format!("{n}").as_bytes());
        }
        // A reader's open file is the old one or the new one, whole.
        let before = File::open(&f).unwrap();
        write_atomic(&f, b"after", 0o640, Durability::Snapshot).unwrap();
        let mut old = String::new();
        (&before).read_to_string(&mut old).unwrap();
        assert_eq!(old, "3");
        // The state file still goes through a synced temp file.
        let state = d.path().join("state.json");
        write_atomic(&state, b"1", 0o640, Durability::Synced).unwrap();
        write_atomic(&state, b"2", 0o640, Durability::Synced).unwrap();
        assert!(!spare_path(&state).exists());
    }

    #[test]
    fn a_spare_that_is_a_symlink_a_fifo_or_another_files_name_is_never_written_through() {
        let d = dir();
        let f = d.path().join("s.json");
        write_atomic(&f, b"0", 0o640, Durability::Snapshot).unwrap();
        let spare = spare_path(&f);
        let victim = d.path().join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        // A symlink, then a hard link, planted as the spare.
        std::os::unix::fs::symlink(&victim, &spare).unwrap();
        write_atomic(&f, b"1", 0o640, Durability::Snapshot).unwrap();
        std::fs::hard_link(&victim, &spare).unwrap_or_else(|_| {
            let _ = std::fs::remove_file(&spare);
            std::fs::hard_link(&victim, &spare).unwrap();
        });
        write_atomic(&f, b"2", 0o640, Durability::Snapshot).unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        assert_eq!(std::fs::read(&f).unwrap(), b"2");
        // A FIFO: no wait for a reader.
        let _ = std::fs::remove_file(&spare);
        let made = std::process::Command::new("mkfifo").arg(&spare).status().expect("mkfifo");
        assert!(made.success());
        write_atomic(&f, b"3", 0o640, Durability::Snapshot).unwrap();
        assert_eq!(std::fs::read(&f).unwrap(), b"3");
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        // Another user's file (they could keep it open and edit the target).
        if is_root() {
            let _ = std::fs::remove_file(&spare);
            std::fs::write(&spare, b"theirs").unwrap();
            std::os::unix::fs::chown(&spare, Some(54321), Some(54321)).unwrap();
            let planted = File::open(&spare).unwrap();
            write_atomic(&f, b"4", 0o640, Durability::Snapshot).unwrap();
            assert_eq!(std::fs::read(&f).unwrap(), b"4");
            let mut left = String::new();
            (&planted).read_to_string(&mut left).unwrap();
            assert_eq!(left, "theirs", "written through another user's file");
        }
    }

    #[test]
    fn stale_temp_files_of_the_same_target_only_are_removed() {
        let d = dir();
        let old = SystemTime::now() - Duration::from_secs(120);
        let names = [
            (".s.json.aB3dE9.tmp", true),
            (".s.json.young1.tmp", false),
            (".s.json.x.aB3dE9.tmp", false),
            (".s.json..tmp", false),
            (".t.json.aB3dE9.tmp", false),
        ];
        for (name, _) in names {
            let f = File::create(d.path().join(name)).unwrap();
            if !name.contains("young") {
                f.set_modified(old).unwrap();
            }
        }
        write_atomic(&d.path().join("s.json"), b"{}", 0o640, Durability::Snapshot).unwrap();
        for (name, removed) in names {
            assert_eq!(!d.path().join(name).exists(), removed, "{name}");
        }
        // Looked for once a minute per target, not at every write.
        let later = d.path().join(".s.json.later1.tmp");
        File::create(&later).unwrap().set_modified(old).unwrap();
        write_atomic(&d.path().join("s.json"), b"{}", 0o640, Durability::Snapshot).unwrap();
        assert!(later.exists(), "swept again within a minute");
    }

    #[test]
    fn a_lock_taken_twice_is_busy_and_a_fifo_lock_is_refused() {
        let d = dir();
        let state = d.path().join("state.json");
        let held = lock(&state, Duration::ZERO).ok().expect("first lock");
        assert!(matches!(lock(&state, Duration::from_millis(50)), Err(LockError::Busy(_))));
        drop(held);
        assert!(lock(&state, Duration::ZERO).is_ok());

        let other = d.path().join("other.json");
        let made = std::process::Command::new("mkfifo")
            .arg(d.path().join("other.json.lock"))
            .status()
            .expect("mkfifo");
        assert!(made.success());
        match lock(&other, Duration::ZERO) {
            Err(LockError::Io(_, e)) => assert_eq!(e.to_string(), "not a regular file (a FIFO)"),
            _ => panic!("a FIFO lock was accepted"),
        }
    }
}
