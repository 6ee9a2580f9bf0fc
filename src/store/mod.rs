//! The history store: one SQLite file that remembers every cycle, so the
//! dashboard, the API and the `history`/`incidents`/`report` commands can
//! answer over hours, days and a year.
//!
//! This module owns the database: schema and migrations (`schema`), the
//! writer (`write`: results, rollups, incidents, retention), the pure
//! time-weighted arithmetic (`accounting`), the readers (`query`) and the
//! renderings for the commands (`render`). Nothing outside it speaks SQL.
//!
//! It sits below `cycle`, `server` and `app`: it is handed plain data
//! (`CycleRecord`) and answers with serde structs whose JSON is the API's.
//! A history failure must never cost a status update: every fault is a
//! `StoreError` naming the file, which `Recorder` logs as one warning line
//! while monitoring goes on.

pub mod accounting;
mod diagnosis;
mod query;
pub mod render;
pub mod resources;
mod samples;
mod schema;
#[doc(hidden)]
pub mod seed;
mod write;

#[cfg(test)]
mod tests;

pub use query::{
    Bucket, Cause, HISTORY_MIN_STEP, HistoryDoc, Incident, IncidentsDoc, LatencyFigures,
    OrderedMap, REPORT_WINDOW_LIMIT, ReportDoc, RestartCounts, STATUS_WINDOWS, ServiceSla,
    ServiceUptime, UPTIME_WINDOWS, UptimeDoc, Window, WindowFigures, check_history_query,
};
pub use resources::{ResourceSample, ResourcesDoc};
pub use samples::series_name;
pub use write::{CheckProblem, CycleRecord, RestartRun, ServiceRecord};

use crate::config::{HistoryConfig, Retention};
use crate::time::Timestamp;
use rusqlite::{Connection, ErrorCode, OpenFlags};
use std::fmt;
use std::fs::{OpenOptions, Permissions};
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, PoisonError, TryLockError};
use std::time::Duration;

/// Why the store could not do what was asked. Each names the file.
#[derive(Debug, Clone, PartialEq)]
pub enum StoreError {
    /// `history_db: off`.
    Disabled,
    /// A reader found no database file.
    Missing {
        path: PathBuf,
    },
    /// Another connection held the lock for longer than the busy timeout.
    Locked {
        path: PathBuf,
        waited: Duration,
    },
    /// Not a database, or a damaged one (the `Recorder` moves it aside).
    Corrupt {
        path: PathBuf,
        detail: String,
    },
    DiskFull {
        path: PathBuf,
    },
    /// The file or its directory cannot be written.
    ReadOnly {
        path: PathBuf,
        detail: String,
    },
    /// Missing directory that cannot be created, permissions, and the like.
    CannotOpen {
        path: PathBuf,
        detail: String,
    },
    /// Written by a newer version: left untouched.
    NewerSchema {
        path: PathBuf,
        found: i64,
        supported: i64,
    },
    /// An older schema that a reader cannot migrate (the next writer does).
    OlderSchema {
        path: PathBuf,
        found: i64,
        supported: i64,
    },
    /// Some other program's SQLite file: left untouched.
    Foreign {
        path: PathBuf,
        detail: String,
    },
    /// Anything else SQLite reported.
    Sqlite {
        path: PathBuf,
        detail: String,
    },
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Disabled => f.write_str("history is disabled (history_db: off)"),
            StoreError::Missing { path } => write!(
                f,
                "{}: no history database yet: has `chatstack-status check` or `run` recorded a cycle?",
                path.display()
            ),
            StoreError::Locked { path, waited } => write!(
                f,
                "{}: history database locked by another process for more than {}",
                path.display(),
                crate::config::duration::format(*waited)
            ),
            StoreError::Corrupt { path, detail } => {
                write!(f, "{}: history database is corrupt ({detail})", path.display())
            }
            StoreError::DiskFull { path } => {
                write!(f, "{}: cannot write the history database: disk full", path.display())
            }
            StoreError::ReadOnly { path, detail } => write!(
                f,
                "{}: cannot write the history database: read-only ({detail})",
                path.display()
            ),
            StoreError::CannotOpen { path, detail } => {
                write!(f, "{}: cannot open the history database: {detail}", path.display())
            }
            StoreError::NewerSchema { path, found, supported } => write!(
                f,
                "{}: history database schema {found} is newer than this version understands ({supported}); left untouched",
                path.display()
            ),
            StoreError::OlderSchema { path, found, supported } => write!(
                f,
                "{}: history database schema {found} is older than this version reads ({supported}); the next `check` or `run` migrates it",
                path.display()
            ),
            StoreError::Foreign { path, detail } => write!(
                f,
                "{}: not a chatstack-status history database ({detail}); left untouched",
                path.display()
            ),
            StoreError::Sqlite { path, detail } => {
                write!(f, "{}: history database error: {detail}", path.display())
            }
        }
    }
}

impl std::error::Error for StoreError {}

impl StoreError {
    /// Faults after which the connection is still good (no reopen needed).
    fn keeps_connection(&self) -> bool {
        matches!(self, StoreError::Locked { .. } | StoreError::DiskFull { .. })
    }

    fn from_sqlite(path: &Path, busy: Duration, e: rusqlite::Error) -> StoreError {
        let path = path.to_path_buf();
        let detail = sqlite_text(&e);
        match e.sqlite_error_code() {
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
                StoreError::Locked { path, waited: busy }
            }
            Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => {
                StoreError::Corrupt { path, detail }
            }
            Some(ErrorCode::DiskFull) => StoreError::DiskFull { path },
            Some(ErrorCode::SystemIoFailure) if filesystem_full(&path) => {
                StoreError::DiskFull { path }
            }
            Some(ErrorCode::ReadOnly) => StoreError::ReadOnly { path, detail },
            Some(ErrorCode::CannotOpen | ErrorCode::PermissionDenied) => {
                StoreError::CannotOpen { path, detail }
            }
            _ => StoreError::Sqlite { path, detail },
        }
    }

    fn from_io(path: &Path, what: &str, e: &io::Error) -> StoreError {
        let path = path.to_path_buf();
        let detail = format!("{what}: {}", io_text(e));
        match e.kind() {
            io::ErrorKind::StorageFull => StoreError::DiskFull { path },
            io::ErrorKind::ReadOnlyFilesystem | io::ErrorKind::PermissionDenied => {
                StoreError::ReadOnly { path, detail }
            }
            _ => StoreError::CannotOpen { path, detail },
        }
    }
}

/// SQLite reports some writes on a full disk as a plain I/O error (growing
/// its shared-memory file, which a WAL database needs anew after the last
/// close removed it: SQLITE_IOERR_SHMSIZE), so an I/O error on a file system
/// with no room left is "disk full".
fn filesystem_full(path: &Path) -> bool {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    rustix::fs::statvfs(dir).is_ok_and(|s| s.f_bavail == 0 || s.f_bfree == 0)
}

/// SQLite's message, with its extended code when that says more.
fn sqlite_text(e: &rusqlite::Error) -> String {
    match e {
        rusqlite::Error::SqliteFailure(code, Some(msg)) => {
            format!("{msg} (code {})", code.extended_code)
        }
        rusqlite::Error::SqliteFailure(code, None) => {
            format!("{} (code {})", code, code.extended_code)
        }
        other => other.to_string(),
    }
}

fn io_text(e: &io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

type Result<T> = std::result::Result<T, StoreError>;

/// An open history database, for writing (`open`) or reading (`open_read`).
///
/// Not `Sync`: give each thread its own (see `ReaderPool`). Every call first
/// checks that the file on disk is still the one it opened (another process
/// may have moved a corrupt one aside) and reopens if not.
pub struct Store {
    conn: Connection,
    path: PathBuf,
    /// Some: a writer, with its retention.
    writer: Option<Retention>,
    busy: Duration,
    /// (device, inode) of the file opened.
    identity: (u64, u64),
    /// A reader on a file no writer has initialised yet: every answer is "no data".
    empty: bool,
    /// When this connection last deleted what retention no longer keeps
    /// (ms): the daemon does it once a minute, not every cycle.
    pruned_at: Option<i64>,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store").field("path", &self.path).field("writer", &self.writer).finish()
    }
}

impl Store {
    /// Opens (creating it and its directory if needed) and migrates the
    /// database for writing. A database of a newer schema is refused and
    /// left exactly as it is.
    pub fn open(cfg: &HistoryConfig) -> Result<Store> {
        let path = cfg.path.as_deref().ok_or(StoreError::Disabled)?;
        Self::open_writer(path, cfg.retention, cfg.busy_timeout)
    }

    fn open_writer(path: &Path, retention: Retention, busy: Duration) -> Result<Store> {
        Self::open_writer_inner(path, retention, busy).map_err(|e| explain_read_only(path, e))
    }

    fn open_writer_inner(path: &Path, retention: Retention, busy: Duration) -> Result<Store> {
        create_file(path)?;
        vet(path)?;
        give_back(path);
        let sql = |e| StoreError::from_sqlite(path, busy, e);
        let mut conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
                | OpenFlags::SQLITE_OPEN_NOFOLLOW,
        )
        .map_err(sql)?;
        conn.busy_timeout(busy).map_err(sql)?;
        let header = read_header(&conn).map_err(sql)?;
        header.check(path, true)?;
        let mode: String =
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0)).map_err(sql)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::ReadOnly {
                path: path.into(),
                detail: format!("could not switch to WAL mode (journal_mode stays {mode})"),
            });
        }
        conn.pragma_update(None, "synchronous", "NORMAL").map_err(sql)?;
        tune(&conn).map_err(sql)?;
        // SQLite checkpoints at the close of the file's last connection (a
        // `check` from cron, when no daemon has it open), and must: a process
        // that opens a WAL no one else has open rebuilds its index from the
        // WAL itself, forgetting what earlier checkpoints copied, so a WAL
        // left behind is read whole, copied whole and never rewound by every
        // later run. (Measured with SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE: +70 KB
        // of WAL and +14 ms of CPU per `check` of 4 services, growing.)
        if header.version < schema::LATEST {
            migrate(&mut conn).map_err(sql)?;
            // Migration may have raced another process: read again, as it left it.
            read_header(&conn).map_err(sql)?.check(path, true)?;
        }
        conn.set_prepared_statement_cache_capacity(64);
        Ok(Store {
            conn,
            path: path.into(),
            writer: Some(retention),
            busy,
            identity: identity(path)?,
            empty: false,
            pruned_at: None,
        })
    }

    /// Opens an existing database read-only (for `serve` and the commands).
    pub fn open_read(path: &Path) -> Result<Store> {
        Self::open_read_with(path, HistoryConfig::default().busy_timeout)
    }

    pub fn open_read_with(path: &Path, busy: Duration) -> Result<Store> {
        let sql = |e| StoreError::from_sqlite(path, busy, e);
        let id = vet(path)?;
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
                | OpenFlags::SQLITE_OPEN_NOFOLLOW,
        )
        .map_err(sql)?;
        conn.busy_timeout(busy).map_err(sql)?;
        tune(&conn).map_err(sql)?;
        let header = read_header(&conn).map_err(sql)?;
        header.check(path, false)?;
        conn.set_prepared_statement_cache_capacity(64);
        Ok(Store {
            conn,
            path: path.into(),
            writer: None,
            busy,
            identity: id,
            empty: header.version == 0,
            pruned_at: None,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reopens when the path now names another file (or none, for a writer),
    /// or, for a reader of a file no writer had initialised, until one has
    /// (else it would answer "no data" for as long as it lives).
    fn refresh(&mut self) -> Result<()> {
        let now = std::fs::metadata(&self.path).ok().map(|m| (m.dev(), m.ino()));
        if now == Some(self.identity) && !self.empty {
            return Ok(());
        }
        let fresh = match self.writer {
            Some(retention) => Self::open_writer(&self.path, retention, self.busy)?,
            None => Self::open_read_with(&self.path, self.busy)?,
        };
        *self = fresh;
        Ok(())
    }

    fn sql_err(&self, e: rusqlite::Error) -> StoreError {
        StoreError::from_sqlite(&self.path, self.busy, e)
    }

    /// `PRAGMA integrity_check`: "ok" for a sound file.
    pub fn integrity_check(&mut self) -> Result<String> {
        self.refresh()?;
        let rows: Vec<String> = {
            let mut st =
                self.conn.prepare("PRAGMA integrity_check").map_err(|e| self.sql_err(e))?;
            let it = st.query_map([], |r| r.get(0)).map_err(|e| self.sql_err(e))?;
            it.collect::<std::result::Result<_, _>>().map_err(|e| self.sql_err(e))?
        };
        Ok(rows.join("; "))
    }

    /// Raw results stored (per service, or all): for tests and diagnostics.
    pub fn result_count(&mut self, service: Option<&str>) -> Result<u64> {
        self.refresh()?;
        if self.empty {
            return Ok(0);
        }
        let n: i64 = self
            .conn
            .query_row(
                "SELECT count(*) FROM results r JOIN services s ON s.id = r.service_id
                 WHERE ?1 IS NULL OR s.name = ?1",
                [service],
                |r| r.get(0),
            )
            .map_err(|e| self.sql_err(e))?;
        Ok(n as u64)
    }
}

/// Every statement keeps the plan it was prepared with. Otherwise SQLite
/// re-prepares a statement whose range bounds are parameters (`start >= ?3
/// AND start < ?4`: every rollup query) each time new values are bound, in
/// case they suggest a better plan: the history endpoints spent 12 % of
/// their time in `sqlite3Reprepare`, for the same index range scan.
fn tune(conn: &Connection) -> rusqlite::Result<()> {
    conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
    // SQLite's default page cache is 2 MiB per connection, and the daemon
    // holds four (the writer and `server::history::READERS`): as the file
    // grows each cache fills towards it, which `make soak` saw as +1.5 MiB
    // of RSS over 2,000 cycles. The pages a cycle or a 90-day query touch
    // fit in far less; the rest comes from the kernel's page cache.
    conn.pragma_update(None, "cache_size", -CACHE_KIB)
}

/// Page cache per connection, KiB (`PRAGMA cache_size` takes it negated).
const CACHE_KIB: i64 = 512;

/// What the first pages of the file say about it.
struct Header {
    application_id: i64,
    version: i64,
    objects: i64,
}

fn read_header(conn: &Connection) -> rusqlite::Result<Header> {
    let application_id = conn.pragma_query_value(None, "application_id", |r| r.get(0))?;
    let version = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let objects = conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))?;
    Ok(Header { application_id, version, objects })
}

impl Header {
    fn check(&self, path: &Path, writer: bool) -> Result<()> {
        let path = path.to_path_buf();
        let fresh = self.application_id == 0 && self.version == 0 && self.objects == 0;
        if fresh {
            return Ok(());
        }
        if self.application_id != schema::APPLICATION_ID {
            return Err(StoreError::Foreign {
                path,
                detail: format!(
                    "application_id {}, user_version {}, {} schema objects",
                    self.application_id, self.version, self.objects
                ),
            });
        }
        if self.version > schema::LATEST {
            return Err(StoreError::NewerSchema {
                path,
                found: self.version,
                supported: schema::LATEST,
            });
        }
        if !writer && self.version < schema::LATEST && self.version > 0 {
            return Err(StoreError::OlderSchema {
                path,
                found: self.version,
                supported: schema::LATEST,
            });
        }
        Ok(())
    }
}

/// Applies the migrations the file lacks, each in its own write transaction.
fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    loop {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let version: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
        let Some(step) = usize::try_from(version).ok().and_then(|v| schema::MIGRATIONS.get(v))
        else {
            return Ok(()); // up to date (or newer: refused by the caller)
        };
        tx.execute_batch(step)?;
        tx.pragma_update(None, "application_id", schema::APPLICATION_ID)?;
        tx.pragma_update(None, "user_version", version + 1)?;
        tx.commit()?;
    }
}

/// `path`-wal, `path`-shm.
fn sidecar(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// The database must be a regular file, looked at without blocking and
/// without following a symlink, and so must its `-wal` and `-shm` where
/// they exist: a FIFO in its place would park every reader in `open()` for
/// good, and a symlink planted by the daemon's user would make a root run
/// turn whatever it points at into a database. SQLite is then told not to
/// follow one either (`SQLITE_OPEN_NOFOLLOW`; it opens `-wal` and `-shm`
/// with `O_NOFOLLOW`, and as root hands them to the database's owner).
/// Returns the file's (device, inode).
fn vet(path: &Path) -> Result<(u64, u64)> {
    let meta = match crate::fsutil::regular_file_meta(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(StoreError::Missing { path: path.into() });
        }
        Err(e) => return Err(StoreError::from_io(path, "cannot open it", &e)),
    };
    for suffix in ["-wal", "-shm"] {
        let side = sidecar(path, suffix);
        match std::fs::symlink_metadata(&side) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(StoreError::CannotOpen {
                    path: path.into(),
                    detail: format!("{} is a symbolic link, not followed", side.display()),
                });
            }
            Ok(m) if !m.is_file() => {
                return Err(StoreError::CannotOpen {
                    path: path.into(),
                    detail: format!("{} is not a regular file", side.display()),
                });
            }
            _ => {}
        }
    }
    Ok((meta.dev(), meta.ino()))
}

/// Root opening the writer: a database (and `-wal`, `-shm`) that an older
/// root run left root's in the daemon's directory goes back to the
/// directory's owner, or the daemon could neither write nor read it.
fn give_back(path: &Path) {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    for p in [path.to_path_buf(), sidecar(path, "-wal"), sidecar(path, "-shm")] {
        if let Ok(true) = crate::fsutil::return_to_dir_owner(&p, dir) {
            crate::info!(
                "{}: was root's; gave it back to the owner of {}",
                p.display(),
                dir.display()
            );
        }
    }
}

/// Creates the database file (mode 0640) and its directory (0750, like the
/// state file's) if missing, so SQLite never creates it with its own 0644;
/// when root creates it, it goes to the directory's owner (the daemon's
/// user), like the state and status files.
fn create_file(path: &Path) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if !dir.exists() {
        std::fs::create_dir_all(dir).map_err(|e| {
            StoreError::from_io(path, &format!("cannot create directory {}", dir.display()), &e)
        })?;
        let _ = std::fs::set_permissions(dir, Permissions::from_mode(0o750));
    }
    match OpenOptions::new().write(true).create_new(true).mode(0o640).open(path) {
        Ok(f) => {
            crate::fsutil::give_new_file(&f, dir)
                .map_err(|e| StoreError::from_io(path, "cannot give it to its owner", &e))?;
            // The umask may have taken bits away (and a chown set-id
            // bits): say exactly 0640.
            f.set_permissions(Permissions::from_mode(0o640))
                .map_err(|e| StoreError::from_io(path, "cannot set its mode", &e))?;
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(StoreError::from_io(path, "cannot create it", &e)),
    }
}

/// SQLite says only "unable to open" or "readonly database": a WAL database
/// needs the file and its directory (for -wal and -shm) writable, so say
/// which one is not.
fn explain_read_only(path: &Path, e: StoreError) -> StoreError {
    if !matches!(e, StoreError::CannotOpen { .. } | StoreError::ReadOnly { .. }) {
        return e;
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if !dir.exists() {
        return e;
    }
    if let Err(probe) = tempfile::tempfile_in(dir) {
        return StoreError::ReadOnly {
            path: path.into(),
            detail: format!("directory {} is not writable: {}", dir.display(), io_text(&probe)),
        };
    }
    // Only a regular file is tried (a FIFO would block this open).
    if !std::fs::symlink_metadata(path).is_ok_and(|m| m.is_file()) {
        return e;
    }
    match OpenOptions::new().write(true).open(path) {
        Err(probe) if path.exists() => StoreError::ReadOnly {
            path: path.into(),
            detail: format!("the file is not writable: {}", io_text(&probe)),
        },
        _ => e,
    }
}

fn identity(path: &Path) -> Result<(u64, u64)> {
    std::fs::metadata(path)
        .map(|m| (m.dev(), m.ino()))
        .map_err(|e| StoreError::from_io(path, "cannot stat it", &e))
}

/// Moves a corrupt database (and its WAL) aside as `<name>.corrupt-<time>`
/// and removes its shared-memory file, so a new one can start in its place.
pub fn move_aside(path: &Path) -> io::Result<PathBuf> {
    let stamp = Timestamp::now().to_string().replace(':', "");
    let with = |p: &Path, suffix: &str| {
        let mut s = p.as_os_str().to_owned();
        s.push(suffix);
        PathBuf::from(s)
    };
    let aside = with(path, &format!(".corrupt-{stamp}"));
    std::fs::rename(path, &aside)?;
    let wal = with(path, "-wal");
    if wal.exists() {
        let _ = std::fs::rename(&wal, with(&aside, "-wal"));
    }
    let _ = std::fs::remove_file(with(path, "-shm"));
    Ok(aside)
}

/// The writer as a cycle uses it: opens lazily, records, and on any fault
/// logs exactly one warning line naming the file and carries on (the next
/// cycle tries again). A corrupt database is moved aside and a new one
/// started, into which the same cycle records.
///
/// `check`: `Recorder::new(&config.history_store).record(&rec)`; the daemon
/// keeps one `Recorder` and calls `reconfigure` on SIGHUP.
#[derive(Debug)]
pub struct Recorder {
    cfg: HistoryConfig,
    store: Option<Store>,
    uptime: Option<KeptUptime>,
}

/// One service as its uptime figures depend on it: name, status, muted.
pub type UptimeKey = (String, crate::state::Health, bool);
/// A service's status-document uptime (`24h`, `7d`, `30d`), None on a fault.
pub type StatusUptime = Option<OrderedMap<Option<f64>>>;

/// The status document's uptime figures as last computed.
#[derive(Debug)]
struct KeptUptime {
    at: Timestamp,
    services: Vec<UptimeKey>,
    figures: Vec<StatusUptime>,
}

/// How long the status document's uptime figures are reused while no
/// service's status or mute changes: a 24 h figure moves by at most 0.07
/// points a minute, and its 13 queries a service were a twentieth of an
/// idle cycle (bench/NOTES.md).
pub const UPTIME_KEPT_FOR: i64 = 60_000;

impl Recorder {
    pub fn new(cfg: &HistoryConfig) -> Recorder {
        Recorder { cfg: cfg.clone(), store: None, uptime: None }
    }

    /// A reloaded config: reopen on the next cycle if anything changed.
    pub fn reconfigure(&mut self, cfg: &HistoryConfig) {
        if *cfg != self.cfg {
            self.cfg = cfg.clone();
            self.store = None;
            self.uptime = None;
        }
    }

    /// The status document's uptime figures of `services` at `now`, in
    /// their order: asked of the store when a service's status or mute
    /// changed, the last ones are a minute old (`UPTIME_KEPT_FOR`) or had
    /// no figure yet; else the last ones. None when the store is off or cannot be opened.
    pub fn status_uptimes(
        &mut self,
        services: Vec<UptimeKey>,
        now: Timestamp,
    ) -> Option<&[StatusUptime]> {
        // A figure not there yet (no data: the first cycles) is asked again.
        let complete =
            |f: &StatusUptime| f.as_ref().is_some_and(|m| m.0.iter().all(|w| w.1.is_some()));
        let fresh = self.uptime.as_ref().is_some_and(|k| {
            k.services == services
                && (0..UPTIME_KEPT_FOR).contains(&(now.0 - k.at.0))
                && k.figures.iter().all(complete)
        });
        if !fresh {
            let store = self.open()?;
            let figures = store.in_one_read(|store| {
                services.iter().map(|(name, ..)| store.status_uptime(name, now).ok()).collect()
            });
            self.uptime = Some(KeptUptime { at: now, services, figures });
        }
        self.uptime.as_ref().map(|k| k.figures.as_slice())
    }

    pub fn enabled(&self) -> bool {
        self.cfg.path.is_some()
    }

    /// Records one cycle (nothing when `history_db: off`). On a fault logs one
    /// warning and returns the error, which callers may ignore.
    pub fn record(&mut self, rec: &CycleRecord) -> Result<()> {
        if self.cfg.path.is_none() {
            return Ok(());
        }
        match self.record_recovering(rec) {
            Ok(None) => Ok(()),
            Ok(Some(notice)) => {
                crate::warn!("{notice}");
                Ok(())
            }
            Err(e) => {
                let tail = match e {
                    StoreError::NewerSchema { .. } | StoreError::Foreign { .. } => {
                        "no history is written"
                    }
                    _ => "this cycle is not in the history (the next cycle tries again)",
                };
                crate::warn!("{e}; {tail}");
                Err(e)
            }
        }
    }

    /// The open store, if the last cycle could open it.
    pub fn store(&mut self) -> Option<&mut Store> {
        self.store.as_mut()
    }

    /// The store, opened now if need be (for the status document's uptime
    /// figures before the cycle is recorded). None when off or when it
    /// cannot be opened: `record` then reports why, once.
    pub fn open(&mut self) -> Option<&mut Store> {
        if self.store.is_none() && self.cfg.path.is_some() {
            self.store = Store::open(&self.cfg).ok();
        }
        self.store.as_mut()
    }

    fn record_recovering(&mut self, rec: &CycleRecord) -> Result<Option<String>> {
        let why = match self.record_once(rec) {
            Err(StoreError::Corrupt { detail, .. }) => detail,
            other => return other.map(|()| None),
        };
        self.store = None;
        let path = self.cfg.path.clone().ok_or(StoreError::Disabled)?;
        let aside = move_aside(&path).map_err(|e| StoreError::Corrupt {
            path: path.clone(),
            detail: format!("{why}; and it could not be moved aside: {}", io_text(&e)),
        })?;
        let moved = format!(
            "{}: history database was corrupt ({why}); moved it to {} and started a new one",
            path.display(),
            aside.display()
        );
        match self.record_once(rec) {
            Ok(()) => Ok(Some(moved)),
            Err(e) => Err(StoreError::Sqlite {
                path,
                detail: format!("{moved}, but recording into it failed too: {e}"),
            }),
        }
    }

    fn record_once(&mut self, rec: &CycleRecord) -> Result<()> {
        let store = match &mut self.store {
            Some(s) => s,
            None => self.store.insert(Store::open(&self.cfg)?),
        };
        let result = store.record(rec);
        if let Err(e) = &result
            && !e.keeps_connection()
        {
            self.store = None;
        }
        result
    }
}

/// A few read-only connections shared by the HTTP threads: each call takes
/// an idle one, or opens one while fewer than the pool's size are open, or
/// waits for the first one given back (whichever it is: no caller queues
/// behind one busy connection while another is idle). A connection that
/// failed is closed, and opened anew by a later call.
/// `pool.with(|s| s.history(name, since, step, now))`.
pub struct ReaderPool {
    path: PathBuf,
    busy: Duration,
    size: usize,
    conns: Mutex<Conns>,
    given_back: Condvar,
    /// The last `/api/uptime` answer (see `uptime_doc`), and who computes
    /// the next one.
    uptime: Mutex<Option<CachedUptime>>,
    computing: Mutex<()>,
}

#[derive(Default)]
struct Conns {
    idle: Vec<Store>,
    open: usize,
}

/// A connection taken from the pool: given back (or, after a fault that
/// spoils it, closed) on drop.
struct Lease<'a> {
    pool: &'a ReaderPool,
    store: Option<Store>,
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        let mut c = self.pool.conns.lock().unwrap_or_else(PoisonError::into_inner);
        match self.store.take() {
            Some(s) => c.idle.push(s),
            None => c.open = c.open.saturating_sub(1),
        }
        self.pool.given_back.notify_one();
    }
}

/// `/api/uptime` is reused this long while the database file is unchanged.
/// Computing it reads ~570 rollup rows per service (4 ms for the 10
/// services of a seeded year on the bench machine: 250 answers a second,
/// where dashboards and badges poll it); once a second costs nothing, and a
/// cycle's write shows at once.
pub const UPTIME_REUSE: Duration = Duration::from_secs(1);

struct CachedUptime {
    services: Vec<String>,
    file: FileStamp,
    made: std::time::Instant,
    doc: UptimeDoc,
}

/// What changes on disk when a writer commits: the database file (written
/// at checkpoints) and its WAL (appended to, or rewritten from the start,
/// at every commit): identity, size and modification time of both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    db: (u64, u64, u64, i64, i64),
    wal: Option<(u64, u64, u64, i64, i64)>,
}

impl FileStamp {
    fn of(path: &Path) -> Option<FileStamp> {
        let key = |m: std::fs::Metadata| (m.dev(), m.ino(), m.size(), m.mtime(), m.mtime_nsec());
        let mut wal = path.as_os_str().to_owned();
        wal.push("-wal");
        Some(FileStamp {
            db: key(std::fs::metadata(path).ok()?),
            wal: std::fs::metadata(PathBuf::from(wal)).ok().map(key),
        })
    }
}

impl ReaderPool {
    pub fn new(path: &Path, size: usize) -> ReaderPool {
        ReaderPool {
            path: path.into(),
            busy: HistoryConfig::default().busy_timeout,
            size: size.max(1),
            conns: Mutex::new(Conns::default()),
            given_back: Condvar::new(),
            uptime: Mutex::new(None),
            computing: Mutex::new(()),
        }
    }

    /// `GET /api/uptime` for these services: the last answer while it is
    /// younger than `UPTIME_REUSE` and the file has not changed since (its
    /// `generated_at` says when it was computed), else a new one. One caller
    /// computes it; meanwhile the others get the last answer if only its age
    /// is against it, or wait for the new one if the file changed.
    pub fn uptime_doc(&self, services: &[String], now: Timestamp) -> Result<UptimeDoc> {
        let file = FileStamp::of(&self.path);
        // The last answer for this file and these services, and whether it is fresh.
        let last = |c: &Option<CachedUptime>| {
            c.as_ref()
                .filter(|c| Some(c.file) == file && c.services == services)
                .map(|c| (c.made.elapsed() < UPTIME_REUSE, c.doc.clone()))
        };
        let lock = || self.uptime.lock().unwrap_or_else(PoisonError::into_inner);
        let seen = last(&lock());
        match seen {
            Some((true, doc)) => return Ok(doc),
            // Someone is computing its successor.
            Some((false, doc))
                if matches!(self.computing.try_lock(), Err(TryLockError::WouldBlock)) =>
            {
                return Ok(doc);
            }
            _ => {}
        }
        let _computing = self.computing.lock().unwrap_or_else(PoisonError::into_inner);
        // Computed while we waited?
        let seen = last(&lock());
        if let Some((true, doc)) = seen {
            return Ok(doc);
        }
        let made = std::time::Instant::now();
        let doc = self.with(|s| s.uptime_doc(services, now))?;
        *lock() = file.map(|file| CachedUptime {
            services: services.to_vec(),
            file,
            made,
            doc: doc.clone(),
        });
        Ok(doc)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn with<T>(&self, f: impl FnOnce(&mut Store) -> Result<T>) -> Result<T> {
        let mut lease = self.take()?;
        let store = lease.store.as_mut().ok_or(StoreError::Disabled)?;
        let result = f(store);
        if let Err(e) = &result
            && !e.keeps_connection()
        {
            lease.store = None;
        }
        result
    }

    /// An idle connection, a new one, or the first given back within the
    /// busy timeout; after that `Locked` (a 503), so a request never parks
    /// its thread for good behind readers that are stuck.
    fn take(&self) -> Result<Lease<'_>> {
        let deadline = std::time::Instant::now() + self.busy;
        let mut c = self.conns.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if let Some(store) = c.idle.pop() {
                return Ok(Lease { pool: self, store: Some(store) });
            }
            if c.open < self.size {
                c.open += 1;
                drop(c);
                // Counted as open now: if opening fails, the lease's drop uncounts it.
                let mut lease = Lease { pool: self, store: None };
                lease.store = Some(Store::open_read_with(&self.path, self.busy)?);
                return Ok(lease);
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return Err(StoreError::Locked { path: self.path.clone(), waited: self.busy });
            }
            c = self
                .given_back
                .wait_timeout(c, left)
                .map(|(g, _)| g)
                .unwrap_or_else(|e| e.into_inner().0);
        }
    }
}
