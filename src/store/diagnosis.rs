//! The why, stored: an incident's diagnosis is captured after the cycle is
//! recorded (it must not delay the status), then attached to the incident
//! the record opened.

use super::{Result, Store};
use rusqlite::{OptionalExtension, params};

impl Store {
    /// The id of `service`'s open incident (None: none open, or no such service).
    pub fn open_incident(&mut self, service: &str) -> Result<Option<i64>> {
        self.refresh()?;
        self.conn
            .query_row("SELECT open_incident FROM services WHERE name = ?1", [service], |r| {
                r.get::<_, Option<i64>>(0)
            })
            .optional()
            .map(Option::flatten)
            .map_err(|e| self.sql_err(e))
    }

    /// Stores `diagnosis` (JSON text) with incident `id`.
    pub fn set_diagnosis(&mut self, id: i64, diagnosis: &str) -> Result<()> {
        self.refresh()?;
        self.conn
            .prepare_cached("UPDATE incidents SET diagnosis = ?2 WHERE id = ?1")
            .and_then(|mut st| st.execute(params![id, diagnosis]))
            .map(|_| ())
            .map_err(|e| self.sql_err(e))
    }
}
