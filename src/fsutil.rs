//! Atomic file writes and the state-file lock.

use std::fs::{File, OpenOptions, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Writes `bytes` to `path` so that readers see the old file or the new one,
/// never a mix: temp file in the same directory, fsync, chmod, rename, fsync
/// of the directory. Creates the directory if missing.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if !dir.exists() {
        std::fs::create_dir_all(dir)?;
        let _ = std::fs::set_permissions(dir, Permissions::from_mode(0o750));
    }
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let mut tmp =
        tempfile::Builder::new().prefix(&format!(".{name}.")).suffix(".tmp").tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    // tempfile creates 0600 and rename keeps the mode: set ours first.
    tmp.as_file().set_permissions(Permissions::from_mode(mode))?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
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

/// Takes `<state_file>.lock`, waiting up to `wait` for another holder.
///
/// A separate lock file, because the state file itself is replaced by rename
/// (a lock on the old inode would protect nothing).
pub fn lock(state_file: &Path, wait: Duration) -> Result<Lock, LockError> {
    let mut name = state_file.as_os_str().to_owned();
    name.push(".lock");
    let path = PathBuf::from(name);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty() && !d.exists()) {
        std::fs::create_dir_all(dir).map_err(|e| LockError::Io(path.clone(), e))?;
        let _ = std::fs::set_permissions(dir, Permissions::from_mode(0o750));
    }
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| LockError::Io(path.clone(), e))?;
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
