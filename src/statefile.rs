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
use std::time::Instant;

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

/// The state file as the daemon keeps it between cycles. A cycle still
/// reads the state under the lock, but from memory while the file is as
/// the daemon last left it (a `mute`, `ping` or `check` replaces it, and it
/// is then read anew), and writes it when something that must survive a
/// crash changed (counts, budgets, alerts and the outbox, mutes, incidents:
/// all but `volatile`'s fields) or a minute after the last write. A healthy
/// cycle changes only the rings of recent results, the CPU and restart
/// samples and the boot's last cycle, of which a SIGKILL or a power cut may
/// cost the last minute. Reading, parsing, writing and syncing the file at
/// every cycle was a seventh of an idle cycle's CPU (bench/NOTES.md).
#[derive(Debug, Default)]
pub struct Kept {
    path: PathBuf,
    /// The state as the last cycle left it, and the file as it was then.
    last: Option<(StateFile, Option<FileId>)>,
    /// The durable part of what the file holds, and when it was written.
    written: Option<(StateFile, Instant)>,
    /// `last` has changes the file has not.
    pending: bool,
}

/// How long a change to the volatile fields alone may wait for a write.
pub const VOLATILE_FOR: std::time::Duration = std::time::Duration::from_secs(60);

/// What tells a file replaced or edited since it was seen: every writer
/// replaces it by a rename (a new inode) or edits it (a new mtime).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileId {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

fn file_id(path: &Path) -> Option<FileId> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::symlink_metadata(path).ok()?;
    Some(FileId {
        dev: m.dev(),
        ino: m.ino(),
        len: m.len(),
        mtime: (m.mtime(), m.mtime_nsec()),
        ctime: (m.ctime(), m.ctime_nsec()),
    })
}

/// The state without the fields every healthy cycle changes.
fn durable(state: &StateFile) -> StateFile {
    let mut d = state.clone();
    volatile(&mut d);
    d
}

/// Clears what may wait a minute for the disk: history and flap rings, CPU
/// and restart samples, the boot's last cycle.
fn volatile(state: &mut StateFile) {
    if let Some(b) = &mut state.boot {
        b.last_cycle_at = Timestamp(0);
    }
    for s in state.services.values_mut() {
        s.history.clear();
        s.recent.clear();
        s.proc_cpu.clear();
        s.unit_restarts.clear();
        s.cpu_sample = None;
    }
}

impl Kept {
    /// A reload that moved the state file: nothing kept holds for the new one.
    fn follow(&mut self, path: &Path) {
        if self.path != path {
            *self = Kept { path: path.to_path_buf(), ..Kept::default() };
        }
    }

    /// The state at `path`: the last cycle's when the file is as that cycle
    /// left it, else read anew (see `load`). The caller holds the lock.
    pub fn load(&mut self, path: &Path) -> Result<StateFile, Error> {
        self.follow(path);
        if let Some((state, seen)) = &self.last
            && seen.is_some()
            && file_id(path) == *seen
        {
            return Ok(state.clone());
        }
        let state = load(path)?;
        self.written = Some((durable(&state), Instant::now()));
        self.last = Some((state.clone(), file_id(path)));
        self.pending = false;
        Ok(state)
    }

    /// Keeps `state` and writes it when its durable part differs from the
    /// file's, or the file is a minute old (`now`: a write at once). The
    /// caller holds the lock.
    pub fn save(&mut self, path: &Path, state: &StateFile, now: bool) -> Result<(), Error> {
        self.follow(path);
        let d = durable(state);
        let due = now
            || match &self.written {
                Some((on_disk, at)) => *on_disk != d || at.elapsed() >= VOLATILE_FOR,
                None => true,
            };
        let seen = match &self.last {
            Some((kept, seen)) if !due => {
                self.pending |= kept != state;
                *seen
            }
            _ => {
                save(path, state)?;
                self.written = Some((d, Instant::now()));
                self.pending = false;
                file_id(path)
            }
        };
        self.last = Some((state.clone(), seen));
        Ok(())
    }

    /// The last state kept has changes the file has not (the daemon
    /// writes them at exit: only a SIGKILL or a power cut costs them).
    pub fn pending(&self) -> bool {
        self.pending
    }
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

    use super::*;
    use crate::state::{Health, HistoryEntry};

    fn one_cycle(state: &mut StateFile, at: i64) {
        let svc = state.services.entry("web".into()).or_default();
        svc.history.push_back(HistoryEntry {
            at: Timestamp(at),
            status: Health::Up,
            latency_ms: Some(1.0),
        });
        svc.recent.push_back(Health::Up);
    }

    #[test]
    fn kept_writes_what_must_survive_at_once_and_the_rings_not_every_cycle() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("state.json");
        let mut kept = Kept::default();
        let syncs = crate::fsutil::syncs_on_this_thread;
        let before = syncs();
        // The first cycle writes (no file yet).
        let mut state = kept.load(&path).unwrap();
        one_cycle(&mut state, 1);
        kept.save(&path, &state, false).unwrap();
        assert_eq!(syncs(), before + 1);
        // Healthy cycles: kept, not written; the next cycle gets them back.
        for at in 2..5 {
            let mut state = kept.load(&path).unwrap();
            assert_eq!(state.services["web"].history.len() as i64, at - 1);
            one_cycle(&mut state, at);
            kept.save(&path, &state, false).unwrap();
        }
        assert_eq!(syncs(), before + 1);
        assert!(kept.pending());
        assert_eq!(load(&path).unwrap().services["web"].history.len(), 1);
        // A failure count is written at once, rings and all.
        let mut state = kept.load(&path).unwrap();
        state.services.get_mut("web").unwrap().consecutive_failures = 1;
        kept.save(&path, &state, false).unwrap();
        assert_eq!(syncs(), before + 2);
        assert!(!kept.pending());
        assert_eq!(load(&path).unwrap(), state);
        // A minute after the last write, the rings are written too.
        one_cycle(&mut state, 9);
        kept.written.as_mut().unwrap().1 -= VOLATILE_FOR;
        kept.save(&path, &state, false).unwrap();
        assert_eq!(syncs(), before + 3);
        assert_eq!(load(&path).unwrap(), state);
    }

    #[test]
    fn kept_reads_a_file_another_writer_replaced_or_edited() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("state.json");
        let mut kept = Kept::default();
        let mut state = kept.load(&path).unwrap();
        one_cycle(&mut state, 1);
        kept.save(&path, &state, false).unwrap();
        let mut state = kept.load(&path).unwrap();
        one_cycle(&mut state, 2);
        kept.save(&path, &state, false).unwrap();
        // `mute` replaces the file (under the lock, between two cycles).
        let mut muted = load(&path).unwrap();
        muted.services.get_mut("web").unwrap().muted_until = Some(Timestamp(4_102_444_800_000));
        save(&path, &muted).unwrap();
        let state = kept.load(&path).unwrap();
        assert_eq!(state, muted, "the mute, not the copy kept");
        assert!(!kept.pending(), "what was kept is given up for it");
        kept.save(&path, &state, false).unwrap();
        // An edit in place (same inode, same size): seen by its times.
        let text = std::fs::read_to_string(&path).unwrap().replace("\"web\"", "\"wEb\"");
        std::fs::write(&path, text).unwrap();
        // (An editor's write lands a clock tick or more after ours.)
        let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000);
        std::fs::File::options().write(true).open(&path).unwrap().set_modified(at).unwrap();
        assert!(kept.load(&path).unwrap().services.contains_key("wEb"));
    }
}
