//! `limits:` of a service: `{memory: 800MB, cpu: 90, for: 3}`. Its unit's
//! figures over a limit for `for` consecutive cycles make the unit check
//! `down` (`memory_limit`, `cpu_limit`; see `state::resources`), and so a
//! budgeted restart like any other failure.

use super::Validator;
use super::owned::{found, typed};
use crate::probe::owned::{KeyType, Val};
use serde::Deserialize;
use serde_saphyr::{Location, Spanned};

/// `limits:` as written (typed at each value by `Validator::limits`, so a
/// wrong value is located and said in the words of the owned kinds' keys).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    pub memory: Option<Spanned<serde_json::Value>>,
    pub cpu: Option<Spanned<serde_json::Value>>,
    #[serde(rename = "for")]
    pub for_cycles: Option<Spanned<serde_json::Value>>,
}

/// A service's limits on its unit's cgroup figures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Bytes of `MemoryCurrent`.
    pub memory: Option<u64>,
    /// Percent of one CPU (may exceed 100 on a multi-core host).
    pub cpu: Option<f64>,
    /// Consecutive cycles over a limit before the unit check is down.
    pub for_cycles: u32,
}

impl Validator<'_> {
    /// `observed`: the service has a unit its own unit check observes (a
    /// push service's unit is only its heal target).
    pub(super) fn limits(
        &mut self,
        raw: Option<Spanned<RawLimits>>,
        has_unit: bool,
        observed: bool,
    ) -> Option<Limits> {
        let raw = raw?;
        let path = format!("services[{}].limits", self.service_index);
        let mut ok = true;
        let mut take = |v: &mut Validator<'_>,
                        key: &str,
                        t: KeyType,
                        given: Option<Spanned<serde_json::Value>>| {
            let given = given?;
            let got = typed(t, &given.value);
            if got.is_none() {
                ok = false;
                v.at(
                    &given.referenced,
                    format!(
                        "{path}.{key}: expected {}, found {}",
                        t.expected(),
                        found(&given.value)
                    ),
                );
            }
            got
        };
        let r = raw.value;
        let memory = match take(self, "memory", KeyType::Size, r.memory) {
            Some(Val::Bytes(b)) => Some(b),
            _ => None,
        };
        let cpu = match take(self, "cpu", KeyType::Number, r.cpu) {
            Some(Val::Number(n)) => Some(n),
            _ => None,
        };
        let for_cycles = match take(self, "for", KeyType::Count, r.for_cycles) {
            Some(Val::Count(n)) => n,
            _ => 1,
        };
        let at: Location = raw.referenced;
        if !has_unit {
            self.at(&at, format!("{path}: limits need the service's `unit` (its figures are the unit's cgroup's, from systemd)"));
            return None;
        }
        if !observed {
            self.at(&at, format!("{path}: a push service's unit is its heal target only, not observed: limits need a unit the service's checks observe"));
            return None;
        }
        if ok && memory.is_none() && cpu.is_none() {
            self.at(&at, format!("{path}: expected memory, cpu or both"));
            return None;
        }
        ok.then_some(Limits { memory, cpu, for_cycles })
    }
}
