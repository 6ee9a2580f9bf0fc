//! Loading and saving the state file (failure counts, restart history,
//! history ring, mutes, undelivered alerts).
//!
//! A corrupt or truncated file is moved aside as `state.json.corrupt-<time>`
//! with a warning and the run goes on fresh: a monitor that refuses to
//! start because of its own scratch file helps nobody at 3 a.m. A file that
//! cannot be read (permissions, a FIFO or directory in its place) is an
//! error instead: starting fresh over it would forget mutes, counts and the
//! restart budget, and heal blind.

use crate::error::Error;
use crate::fsutil;
use crate::state::StateFile;
use crate::time::Timestamp;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

pub const SCHEMA: u32 = 1;
/// A state file bigger than this is not ours.
const MAX_STATE_BYTES: u64 = 64 << 20;

fn fresh() -> StateFile {
    StateFile { schema: SCHEMA, ..Default::default() }
}

/// The state in `path`: fresh when there is none yet or it is corrupt
/// (moved aside), an error when it cannot be read.
pub fn load(path: &Path) -> Result<StateFile, Error> {
    let parsed = match fsutil::read_regular(path, MAX_STATE_BYTES) {
        Ok(bytes) => parse(&bytes),
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(fresh()),
        Err(e) if e.kind() == ErrorKind::FileTooLarge => Err(e.to_string()),
        Err(source) => return Err(Error::StateRead { path: path.into(), source }),
    };
    match parsed {
        Ok(s) => Ok(s),
        Err(why) => {
            let aside = aside_name(path);
            match std::fs::rename(path, &aside) {
                Ok(()) => crate::warn!(
                    "{}: corrupt state file ({why}); moved it to {} and starting fresh",
                    path.display(),
                    aside.display()
                ),
                Err(e) => crate::warn!(
                    "{}: corrupt state file ({why}); could not move it aside ({e}); starting fresh",
                    path.display()
                ),
            }
            Ok(fresh())
        }
    }
}

/// Parses state-file bytes. Never panics, whatever the bytes.
pub fn parse(bytes: &[u8]) -> Result<StateFile, String> {
    if bytes.len() as u64 > MAX_STATE_BYTES {
        return Err("too large".into());
    }
    let mut s: StateFile = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    if s.schema > SCHEMA {
        return Err(format!("schema {} is newer than this version understands", s.schema));
    }
    s.schema = SCHEMA;
    Ok(s)
}

fn aside_name(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".corrupt-{}", Timestamp::now().to_string().replace(':', "")));
    PathBuf::from(name)
}

pub fn save(path: &Path, state: &StateFile) -> Result<(), Error> {
    let bytes =
        serde_json::to_vec(state).map_err(|e| Error::Other(format!("serialising state: {e}")))?;
    fsutil::write_atomic(path, &bytes, 0o640, fsutil::Durability::Synced)
        .map_err(|source| Error::StateWrite { path: path.into(), source })
}

/// Takes `<state_file>.lock`, waiting up to `wait` for another holder: every
/// reader-modify-writer of the state file holds it (`check`, the daemon's
/// cycle, `mute`, `unmute`, `ping`).
pub fn lock(path: &Path, wait: std::time::Duration) -> Result<fsutil::Lock, Error> {
    fsutil::lock(path, wait).map_err(|e| match e {
        fsutil::LockError::Busy(path) => Error::Locked { path },
        fsutil::LockError::Io(path, source) => Error::Lock { path, source },
    })
}

/// `run`'s claim on the state file for the daemon's life (`<state_file>.pid`):
/// a second daemon on the same file is refused, naming the first one's PID
/// (two daemons would heal twice). `check` from cron never takes it.
pub fn claim_daemon(path: &Path) -> Result<fsutil::Lock, Error> {
    fsutil::claim_daemon(path).map_err(|e| match e {
        fsutil::ClaimError::Running(pid_file, pid) => Error::Other(format!(
            "another `chatstack-status run` ({}) is already running on {} (it holds {}): two daemons would heal twice; stop it first",
            pid.map_or_else(|| "PID unknown".to_string(), |p| format!("PID {p}")),
            path.display(),
            pid_file.display()
        )),
        fsutil::ClaimError::Io(path, source) => Error::Lock { path, source },
    })
}

#[cfg(test)]
mod fuzz;

#[cfg(test)]
mod tests {
    /// Budgets and the outbox: whole after a power cut, so synced once
    /// (the file, not the directory: a lost rename leaves the old state).
    #[test]
    fn the_state_file_is_synced_once_per_save() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("state.json");
        let mut state = crate::state::StateFile::default();
        let before = crate::fsutil::syncs_on_this_thread();
        super::save(&path, &state).unwrap();
        state.schema = super::SCHEMA;
        super::save(&path, &state).unwrap();
        assert_eq!(crate::fsutil::syncs_on_this_thread(), before + 2);
        assert_eq!(super::load(&path).unwrap(), state);
    }
}
