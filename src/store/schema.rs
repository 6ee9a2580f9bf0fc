//! The database's schema and its forward migrations (`PRAGMA user_version`).
//!
//! Times are integer milliseconds since the Unix epoch (UTC); statuses are
//! 0 up, 1 degraded, 2 down. Each migration runs in its own `BEGIN IMMEDIATE`
//! transaction that re-reads the version, so two processes opening a fresh
//! file at once migrate it once.

use crate::state::Health;

/// `PRAGMA application_id`: "CSHD", so that a foreign SQLite file pointed at
/// by `history_db` is refused instead of altered.
pub const APPLICATION_ID: i64 = 0x4353_4844;

/// Migration `i` takes the database from version `i` to `i + 1`.
pub const MIGRATIONS: &[&str] = &[V1, V2, V3, V4];

/// The schema version this build writes and reads.
pub const LATEST: i64 = MIGRATIONS.len() as i64;

const V1: &str = "
CREATE TABLE services (
    id            INTEGER PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    -- The last result, whose span stays open until the next one arrives.
    last_at       INTEGER,
    last_status   INTEGER,
    last_muted    INTEGER,
    last_interval INTEGER,
    -- Time before this is already in the rollups (never counted twice).
    covered_until INTEGER,
    open_incident INTEGER
);
CREATE TABLE results (
    at          INTEGER NOT NULL,
    service_id  INTEGER NOT NULL,
    status      INTEGER NOT NULL,
    latency_us  INTEGER,
    muted       INTEGER NOT NULL,
    interval_ms INTEGER NOT NULL,
    -- JSON list of the checks that were not up: {type, target, status, reason, detail}.
    problems    TEXT,
    PRIMARY KEY (at, service_id)
) WITHOUT ROWID;
CREATE TABLE rollups (
    service_id  INTEGER NOT NULL,
    res         INTEGER NOT NULL,
    start       INTEGER NOT NULL,
    up          INTEGER NOT NULL DEFAULT 0,
    degraded    INTEGER NOT NULL DEFAULT 0,
    down        INTEGER NOT NULL DEFAULT 0,
    maintenance INTEGER NOT NULL DEFAULT 0,
    samples     INTEGER NOT NULL DEFAULT 0,
    lat_n       INTEGER NOT NULL DEFAULT 0,
    lat_sum     REAL NOT NULL DEFAULT 0,
    lat_min     REAL,
    lat_max     REAL,
    PRIMARY KEY (service_id, res, start)
) WITHOUT ROWID;
CREATE TABLE incidents (
    id           INTEGER PRIMARY KEY,
    service_id   INTEGER NOT NULL,
    started_at   INTEGER NOT NULL,
    ended_at     INTEGER,
    cause_type   TEXT,
    cause_target TEXT,
    cause_reason TEXT,
    cause_detail TEXT,
    alerts       INTEGER NOT NULL DEFAULT 0,
    muted        INTEGER NOT NULL
);
CREATE INDEX incidents_by_start ON incidents (started_at);
CREATE INDEX incidents_by_service ON incidents (service_id, started_at);
CREATE INDEX incidents_by_end ON incidents (ended_at);
CREATE TABLE restarts (
    id          INTEGER PRIMARY KEY,
    incident_id INTEGER NOT NULL,
    service_id  INTEGER NOT NULL,
    at          INTEGER NOT NULL,
    ok          INTEGER NOT NULL
);
CREATE INDEX restarts_by_incident ON restarts (incident_id);
CREATE INDEX restarts_by_service ON restarts (service_id, at);
";

/// The why: an incident's diagnosis (JSON, redacted, at most 16 KiB) and
/// whether each restart helped (`pending`, `recovered`, `still_down`).
const V2: &str = "
ALTER TABLE incidents ADD COLUMN diagnosis TEXT;
ALTER TABLE restarts ADD COLUMN outcome TEXT;
";

/// Version 3: measured values over time (`samples.rs`), for forecasts.
const V3: &str = "
CREATE TABLE samples (
    series TEXT NOT NULL,
    at     INTEGER NOT NULL,
    value  REAL NOT NULL
);
CREATE INDEX samples_by_series ON samples (series, at);
CREATE INDEX samples_by_time ON samples (at);
";

/// Version 4: the services' unit figures (`resources.rs`), one row per
/// service and minute (sums and counts of its cycles), kept 48 h.
const V4: &str = "
CREATE TABLE resource_minutes (
    service_id INTEGER NOT NULL,
    start      INTEGER NOT NULL,
    mem_n      INTEGER NOT NULL DEFAULT 0,
    mem_sum    REAL NOT NULL DEFAULT 0,
    cpu_n      INTEGER NOT NULL DEFAULT 0,
    cpu_sum    REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (service_id, start)
);
CREATE INDEX resource_minutes_by_start ON resource_minutes (start);
";

pub fn status_code(h: Health) -> i64 {
    match h {
        Health::Up => 0,
        Health::Degraded => 1,
        Health::Down => 2,
    }
}

pub fn status_of(code: i64) -> Health {
    match code {
        0 => Health::Up,
        1 => Health::Degraded,
        _ => Health::Down,
    }
}
