//! systemd, asked once per cycle about every unit the cycle's checks observe,
//! for every property they and the per-service resources need: over D-Bus
//! (`systemd_bus.rs`: the system bus kept open, no process per cycle), or
//! where no bus can be reached, one `systemctl show -p P1,P2,…
//! U1 U2 …`. Either way the answer is one block of `KEY=VALUE` lines per
//! unit, as `systemctl show` prints them (a unit that does not exist gets a
//! block too, with `LoadState=not-found`).
//!
//! The first systemd check of a cycle that needs the answer runs the query
//! (bounded in time by its deadline and in bytes); the others wait for it
//! and read their unit's block. When `systemctl` itself fails, every unit
//! of the cycle gets the same failure: `unknown`, never `down`, so the
//! monitor's own tool never triggers a heal. A call that systemctl refuses
//! as a whole (one unit name it rejects, e.g. `foo@.service`) is asked again
//! unit by unit, so one bad name does not blind the others.

use super::child::{RunError, run_bounded};
use super::systemd_bus;
use super::{CheckStatus, Outcome, Reason, UnitInfo, clean_detail};
use crate::time::Timestamp;
use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::Instant;

/// Every property a cycle reads: the unit check's, an incident's
/// diagnosis's (exit status, invocation, memory) and the resources'.
pub const PROPERTIES: &str = "LoadState,ActiveState,SubState,Result,NRestarts,Id,ExecMainCode,ExecMainStatus,ExecMainPID,InvocationID,MemoryCurrent,CPUUsageNSec,TasksCurrent";

/// Bytes kept of systemctl's answer: a block is ~250 bytes.
fn byte_cap(units: usize) -> usize {
    16 * 1024 + 2 * 1024 * units
}

/// Why systemd's view of a unit could not be had (the unit check's outcome).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub reason: Reason,
    pub detail: String,
}

impl Failure {
    fn new(reason: Reason, detail: impl Into<String>) -> Self {
        Failure { reason, detail: detail.into() }
    }

    pub fn outcome(&self) -> Outcome {
        Outcome::not_up(CheckStatus::Unknown, self.reason, self.detail.clone())
    }
}

/// The cycle's question to systemd and, once asked, its answer per unit.
#[derive(Debug, Default)]
pub struct UnitQuery {
    units: Vec<String>,
    answer: OnceLock<HashMap<String, Result<UnitInfo, Failure>>>,
}

impl UnitQuery {
    /// The query for these units (duplicates asked once).
    pub fn new<I: IntoIterator<Item = String>>(units: I) -> Self {
        let mut list: Vec<String> = Vec::new();
        for u in units {
            if !list.contains(&u) {
                list.push(u);
            }
        }
        UnitQuery { units: list, answer: OnceLock::new() }
    }

    pub fn covers(&self, unit: &str) -> bool {
        self.units.iter().any(|u| u == unit)
    }

    pub fn is_empty(&self) -> bool {
        self.units.is_empty()
    }

    /// `unit`'s view: asks systemd (once per query, bounded by `deadline`)
    /// unless someone already did.
    pub fn get(&self, unit: &str, deadline: Instant) -> Result<UnitInfo, Failure> {
        let answer = self.answer.get_or_init(|| ask(&self.units, deadline));
        answer.get(unit).cloned().unwrap_or_else(|| {
            Err(Failure::new(Reason::CheckError, format!("{unit} was not asked for")))
        })
    }

    /// Asks systemd now unless a check already did.
    pub fn ask(&self, deadline: Instant) {
        self.answer.get_or_init(|| ask(&self.units, deadline));
    }

    /// The answer if the query ran (None: no check needed it yet).
    pub fn answered(&self, unit: &str) -> Option<&UnitInfo> {
        self.answer.get()?.get(unit)?.as_ref().ok()
    }
}

/// systemd's answer for `units`: over the kept D-Bus connection
/// (`systemd_bus.rs`) when there is one, else one `systemctl show`; on a
/// refusal of the whole call, one per unit.
fn ask(units: &[String], deadline: Instant) -> HashMap<String, Result<UnitInfo, Failure>> {
    let at = Timestamp::now();
    let properties: Vec<&str> = PROPERTIES.split(',').collect();
    match systemd_bus::show_kept(units, &properties, deadline) {
        Some(Ok(blocks)) => {
            let answer = blocks.into_iter().map(|b| match b {
                Ok(text) => unit_info(&text, at),
                Err(e) => Err(Failure::new(
                    Reason::CheckError,
                    format!("systemd: {}", clean_detail(&e, 160)),
                )),
            });
            return units.iter().cloned().zip(answer).collect();
        }
        Some(Err(_)) => {
            let f = Failure::new(Reason::Timeout, "systemd did not answer over D-Bus in time");
            return units.iter().map(|u| (u.clone(), Err(f.clone()))).collect();
        }
        None => {}
    }
    match show(units, deadline) {
        Ok(blocks) => units.iter().cloned().zip(blocks).collect(),
        Err((refused, f)) if refused && units.len() > 1 => units
            .iter()
            .map(|u| {
                let one = show(std::slice::from_ref(u), deadline)
                    .map_err(|(_, f)| f)
                    .and_then(|mut b| b.pop().unwrap_or_else(|| Err(f.clone())));
                (u.clone(), one)
            })
            .collect(),
        Err((_, f)) => units.iter().map(|u| (u.clone(), Err(f.clone()))).collect(),
    }
}

type Blocks = Vec<Result<UnitInfo, Failure>>;

/// Runs one `systemctl show`; each unit's block in order. The error says
/// whether systemctl refused the call (ran and exited non-zero).
fn show(units: &[String], deadline: Instant) -> Result<Blocks, (bool, Failure)> {
    let mut argv: Vec<String> =
        ["systemctl", "show", "-p", PROPERTIES].iter().map(|s| s.to_string()).collect();
    argv.extend(units.iter().cloned());
    let fail = |r, d: String| Err((false, Failure::new(r, d)));
    let at = Timestamp::now();
    let out = match run_bounded(&argv, deadline, byte_cap(units.len())) {
        Ok(o) => o,
        Err(RunError::Spawn(e)) if e.kind() == std::io::ErrorKind::NotFound => {
            return fail(Reason::CheckError, "systemctl not found on PATH".into());
        }
        Err(RunError::Spawn(e)) => {
            return fail(Reason::CheckError, format!("cannot run systemctl: {e}"));
        }
        Err(RunError::Timeout) => {
            return fail(Reason::Timeout, "systemctl did not answer in time".into());
        }
    };
    if out.code != Some(0) {
        let msg = clean_detail(&String::from_utf8_lossy(&out.stderr), 160);
        let msg = match (msg.is_empty(), out.code, out.signal) {
            (false, ..) => msg,
            (true, Some(c), _) => format!("exited with {c}"),
            (true, None, Some(sig)) => format!("killed by signal {sig}"),
            (true, None, None) => "ended without an exit status".into(),
        };
        let refused = out.code.is_some();
        return Err((refused, Failure::new(Reason::CheckError, format!("systemctl: {msg}"))));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let blocks = split_blocks(&text);
    if blocks.len() != units.len() {
        let said = clean_detail(&text, 120);
        let detail = if said.is_empty() {
            "systemctl show answered nothing".to_string()
        } else if blocks.len() <= 1 && units.len() == 1 {
            format!("not an answer of systemctl show: {said}")
        } else {
            format!(
                "systemctl show answered {} blocks for {} units: {said}",
                blocks.len(),
                units.len()
            )
        };
        return fail(Reason::CheckError, detail);
    }
    Ok(blocks.into_iter().map(|b| unit_info(b, at)).collect())
}

/// One unit's block read, or why it is not an answer.
fn unit_info(block: &str, at: Timestamp) -> Result<UnitInfo, Failure> {
    if !answers_show(block) {
        let said = clean_detail(block, 120);
        return Err(Failure::new(
            Reason::CheckError,
            format!("not an answer of systemctl show: {said}"),
        ));
    }
    let mut u = parse_show(block);
    u.sampled_at = Some(at);
    u.answer = block.to_string();
    Ok(u)
}

/// The blocks of a multi-unit answer: runs of non-empty lines.
fn split_blocks(text: &str) -> Vec<&str> {
    let mut blocks = Vec::new();
    let mut start: Option<usize> = None;
    let mut end = 0;
    let mut pos = 0;
    for line in text.split_inclusive('\n') {
        let blank = line.trim().is_empty();
        match (blank, start) {
            (false, None) => start = Some(pos),
            (true, Some(s)) => {
                blocks.push(&text[s..end]);
                start = None;
            }
            _ => {}
        }
        pos += line.len();
        if !blank {
            end = pos;
        }
    }
    if let Some(s) = start {
        blocks.push(&text[s..end]);
    }
    blocks
}

/// Whether `text` carries the properties a verdict needs: `systemctl show`
/// prints every property asked for, so one missing means someone else spoke.
fn answers_show(text: &str) -> bool {
    ["LoadState", "ActiveState", "SubState"].iter().all(|key| {
        text.lines().any(|l| {
            l.split_once('=').is_some_and(|(k, v)| k.trim() == *key && !v.trim().is_empty())
        })
    })
}

/// A figure of systemd's: None for `[not set]`, empty, or `UINT64_MAX`
/// (systemd's "no figure" on the wire).
fn figure(v: &str) -> Option<u64> {
    v.parse().ok().filter(|n| *n != u64::MAX)
}

/// Reads the `KEY=VALUE` lines of one unit's block.
pub fn parse_show(text: &str) -> UnitInfo {
    let mut u = UnitInfo::default();
    for line in text.lines() {
        let Some((k, v)) = line.split_once('=') else { continue };
        let v = v.trim();
        match k.trim() {
            "LoadState" => u.load_state = v.to_string(),
            "ActiveState" => u.active_state = v.to_string(),
            "SubState" => u.sub_state = v.to_string(),
            "Result" => u.result = v.to_string(),
            "NRestarts" => u.n_restarts = v.parse().ok(),
            "MemoryCurrent" => u.memory_bytes = figure(v),
            "CPUUsageNSec" => u.cpu_usage_ns = figure(v),
            "TasksCurrent" => u.tasks = figure(v),
            _ => {}
        }
    }
    u
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_runs_of_lines() {
        let text = "A=1\nB=2\n\nA=3\n\n\nA=4\n";
        assert_eq!(split_blocks(text), vec!["A=1\nB=2\n", "A=3\n", "A=4\n"]);
        assert_eq!(split_blocks(""), Vec::<&str>::new());
        assert_eq!(split_blocks("\n\n"), Vec::<&str>::new());
        assert_eq!(split_blocks("A=1"), vec!["A=1"]);
    }

    #[test]
    fn figures_systemd_has_none_of_are_null() {
        let u = parse_show(
            "LoadState=loaded\nMemoryCurrent=[not set]\nCPUUsageNSec=18446744073709551615\nTasksCurrent=7\n",
        );
        assert_eq!((u.memory_bytes, u.cpu_usage_ns, u.tasks), (None, None, Some(7)));
        let u = parse_show("MemoryCurrent=734003200\nCPUUsageNSec=12345\nTasksCurrent=\n");
        assert_eq!(
            (u.memory_bytes, u.cpu_usage_ns, u.tasks),
            (Some(734_003_200), Some(12_345), None)
        );
    }

    #[test]
    fn only_a_full_answer_is_one() {
        assert!(answers_show("LoadState=loaded\nActiveState=active\nSubState=running\n"));
        assert!(!answers_show("ActiveState=inactive\nSubState=dead\n"));
        assert!(!answers_show("LoadState=\nActiveState=inactive\nSubState=dead\n"));
        assert!(!answers_show("Failed to connect to bus: No such file or directory\n"));
        assert!(!answers_show(""));
    }

    #[test]
    fn duplicates_are_asked_once() {
        let q = UnitQuery::new(["a.service", "b.service", "a.service"].map(String::from));
        assert_eq!(q.units, vec!["a.service", "b.service"]);
        assert!(q.covers("b.service") && !q.covers("c.service"));
    }
}
