//! Kinds that own their keys: a probe kind in one file.
//!
//! Such a kind (`disk`, `memory`, `load`, `pressure`, …) declares its YAML
//! keys with their types, so the config layer types, locates and documents
//! them (schema rows, `file:line:column` errors) without knowing the kind;
//! builds itself from the typed keys (its own cross-key checks, located
//! too); runs; and reports `values`, named numbers beside its `detail`.
//! Everything downstream reads `values` generically: the status JSON, the
//! text and Nagios outputs, the metrics the kind declares, the widget. A
//! value's name says its unit by its suffix: `_pct` percent, `_bytes`
//! bytes, `_s` seconds; anything else is a plain number.
//!
//! Adding a kind: its file, and one line in `probe::KINDS`.

use super::{CycleCtx, Outcome, Reason};
use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// What a key takes; the config layer parses a value of it, and says in
/// words what was expected when the value is wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    /// A number; a percentage may be written `"80%"`.
    Number,
    /// A whole number, 1 or more (`for: 3`).
    Count,
    Bool,
    /// `500ms`, `5s`, `2m`, `1h`, `1d` or bare seconds.
    Duration,
    Path,
    /// `512MB`, `1.5GiB`, `800KB`, `2TB` or a bare number of bytes.
    Size,
    /// One of these words.
    OneOf(&'static [&'static str]),
}

impl KeyType {
    /// "expected …", in the words of the config's other errors.
    pub fn expected(self) -> String {
        match self {
            KeyType::Number => "a number like 80 (a percentage may be written \"80%\")".into(),
            KeyType::Count => "a whole number, 1 or more".into(),
            KeyType::Bool => "true or false".into(),
            KeyType::Duration => "a duration like 500ms, 5s, 2m, 1h or 1d".into(),
            KeyType::Path => "a file path".into(),
            KeyType::Size => "a size like 512MB, 1.5GiB or a number of bytes".into(),
            KeyType::OneOf(words) => match words {
                [] => "nothing at all".into(),
                [one] => (*one).to_string(),
                [init @ .., last] => format!("one of {} or {last}", init.join(", ")),
            },
        }
    }
}

/// A typed key value, as the config layer parsed it.
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    Number(f64),
    Count(u32),
    Bool(bool),
    Duration(Duration),
    Path(PathBuf),
    Bytes(u64),
    Word(&'static str),
}

/// Where a key or value stands in the config file (1-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    pub line: u64,
    pub column: u64,
}

/// The typed keys of one check, for its kind's `build`; problems found
/// there are collected with their positions and reported by the config
/// layer as `file:line:column: …`.
#[derive(Debug, Default)]
pub struct Keys {
    /// The check's own position (for "needs `path`").
    pub at: Pos,
    /// The service's name, for messages.
    pub service: String,
    given: Vec<(&'static str, Val, Pos)>,
    problems: Vec<(Pos, String)>,
}

impl Keys {
    pub fn new(at: Pos, service: &str) -> Self {
        Keys { at, service: service.to_string(), ..Keys::default() }
    }

    pub fn insert(&mut self, key: &'static str, value: Val, at: Pos) {
        self.given.push((key, value, at));
    }

    fn get(&self, key: &str) -> Option<&Val> {
        self.given.iter().find(|(k, _, _)| *k == key).map(|(_, v, _)| v)
    }

    /// Where `key`'s value stands (the check's position when it is absent).
    pub fn pos(&self, key: &str) -> Pos {
        self.given.iter().find(|(k, _, _)| *k == key).map_or(self.at, |(_, _, p)| *p)
    }

    pub fn number(&self, key: &str) -> Option<f64> {
        match self.get(key) {
            Some(Val::Number(n)) => Some(*n),
            _ => None,
        }
    }

    pub fn count(&self, key: &str) -> Option<u32> {
        match self.get(key) {
            Some(Val::Count(n)) => Some(*n),
            _ => None,
        }
    }

    pub fn bool(&self, key: &str) -> Option<bool> {
        match self.get(key) {
            Some(Val::Bool(b)) => Some(*b),
            _ => None,
        }
    }

    pub fn duration(&self, key: &str) -> Option<Duration> {
        match self.get(key) {
            Some(Val::Duration(d)) => Some(*d),
            _ => None,
        }
    }

    pub fn path(&self, key: &str) -> Option<PathBuf> {
        match self.get(key) {
            Some(Val::Path(p)) => Some(p.clone()),
            _ => None,
        }
    }

    pub fn bytes(&self, key: &str) -> Option<u64> {
        match self.get(key) {
            Some(Val::Bytes(b)) => Some(*b),
            _ => None,
        }
    }

    pub fn word(&self, key: &str) -> Option<&'static str> {
        match self.get(key) {
            Some(Val::Word(w)) => Some(w),
            _ => None,
        }
    }

    /// A problem at `key`'s value (or at the check when it is absent).
    pub fn problem(&mut self, key: &str, msg: impl fmt::Display) {
        let at = self.pos(key);
        self.problems.push((at, format!("service {:?}: {msg}", self.service)));
    }

    /// A required key that is missing.
    pub fn require<T>(&mut self, kind: &str, key: &str, value: Option<T>) -> Option<T> {
        if value.is_none() {
            let at = self.at;
            self.problems
                .push((at, format!("service {:?}: a {kind} check needs `{key}`", self.service)));
        }
        value
    }

    /// `warn` and `crit` (with defaults), crit not below warn.
    pub fn warn_crit(&mut self, warn: &str, crit: &str, defaults: (f64, f64)) -> (f64, f64) {
        let w = self.number(warn).unwrap_or(defaults.0);
        let c = self.number(crit).unwrap_or(defaults.1);
        if c < w {
            self.problem(crit, format!("{crit} ({c}) is below {warn} ({w})"));
        }
        (w, c)
    }

    pub fn take_problems(&mut self) -> Vec<(Pos, String)> {
        std::mem::take(&mut self.problems)
    }
}

/// A kind's description: its keys, how it is built, what it exports.
pub struct KindDef {
    /// The `type:` word.
    pub name: &'static str,
    /// Its keys besides `type`, `timeout` and `degraded_after`.
    pub keys: &'static [(&'static str, KeyType)],
    /// Builds the probe and the `target` shown, or None with problems in `keys`.
    pub build: fn(&mut Keys) -> Option<Built>,
    /// The Prometheus families its values feed.
    pub metrics: &'static [MetricDef],
}

impl fmt::Debug for KindDef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

impl PartialEq for KindDef {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for KindDef {}

/// A built check: the probe and what the status shows as its `target`.
pub struct Built {
    pub probe: Arc<dyn OwnedProbe>,
    pub target: String,
}

/// One Prometheus gauge from one value of every check of a kind:
/// `NAME{service="…",LABEL="<target>"} value × scale`.
#[derive(Debug)]
pub struct MetricDef {
    pub name: &'static str,
    pub help: &'static str,
    /// The name in `values`.
    pub value: &'static str,
    pub scale: f64,
    /// The label that carries the check's target (`path` for a disk).
    pub target_label: &'static str,
}

/// A running kind.
pub trait OwnedProbe: fmt::Debug + Send + Sync {
    fn def(&self) -> &'static KindDef;
    fn run(&self, ctx: &CycleCtx) -> Outcome;
    /// `for: N`: a threshold must be crossed in N consecutive cycles
    /// before the check leaves up (counted in the state file).
    fn for_cycles(&self) -> u32 {
        1
    }
    /// Whether `for` applies to this reason (a threshold crossed), rather
    /// than being reported at once (a read-only file system).
    fn is_threshold(&self, reason: Reason) -> bool {
        reason != Reason::CheckError
    }
    /// A value to forecast from the history store's samples of it.
    fn forecast(&self) -> Option<Forecast> {
        None
    }
}

/// "When will this value reach zero?": a least-squares line over the
/// samples of the last `window`; the time left goes into `into`, and under
/// `warn` the check is degraded with `reason`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Forecast {
    /// The value that falls to zero (a disk's `available_bytes`).
    pub value: &'static str,
    /// Where the time left goes (`full_in_s`).
    pub into: &'static str,
    pub window: Duration,
    pub warn: Option<Duration>,
    pub reason: Reason,
}

/// What a kind measured: its values, and the one its `warn`/`crit` judge.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Measured {
    pub values: Values,
    pub thresholds: Option<Thresholds>,
}

/// The value the thresholds apply to, for perfdata and the dashboard's bars.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Thresholds {
    pub value: String,
    pub warn: Option<f64>,
    pub crit: Option<f64>,
}

/// Named numbers in the kind's order; null where not available.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Values(pub Vec<(String, Option<f64>)>);

impl Values {
    pub fn set(&mut self, name: &str, v: Option<f64>) {
        match self.0.iter_mut().find(|(n, _)| n == name) {
            Some(slot) => slot.1 = v,
            None => self.0.push((name.to_string(), v)),
        }
    }

    pub fn get(&self, name: &str) -> Option<f64> {
        self.0.iter().find(|(n, _)| n == name).and_then(|(_, v)| *v)
    }

    pub fn from_pairs(pairs: &[(&str, Option<f64>)]) -> Self {
        Values(pairs.iter().map(|(n, v)| (n.to_string(), v.filter(|x| x.is_finite()))).collect())
    }
}

impl Serialize for Values {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            // Whole numbers (bytes, counts) as JSON integers: `1024`, not `1024.0`.
            match v {
                Some(x) if x.fract() == 0.0 && x.abs() < 9.0e15 => {
                    m.serialize_entry(k, &(*x as i64))?
                }
                _ => m.serialize_entry(k, v)?,
            }
        }
        m.end()
    }
}

impl<'de> Deserialize<'de> for Values {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Values;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map of names to numbers or null")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Values, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, Option<f64>>()? {
                    out.push((k, v));
                }
                Ok(Values(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// How a value reads to a person: `85.2%`, `1.5 GB`, `3.0 d`, `0.42`.
pub fn show_value(name: &str, v: Option<f64>) -> String {
    let Some(v) = v else { return "n/a".into() };
    if name.ends_with("_pct") {
        format!("{v:.1}%")
    } else if name.ends_with("_bytes") {
        show_bytes(v)
    } else if name.ends_with("_s") {
        show_seconds(v)
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

/// `name` without its unit suffix, as words: `used_pct` → "used".
pub fn value_label(name: &str) -> String {
    let bare = ["_pct", "_bytes", "_s"].iter().find_map(|s| name.strip_suffix(s)).unwrap_or(name);
    bare.replace('_', " ")
}

/// Bytes in SI units, as `df -H` and the config's sizes count.
pub fn show_bytes(v: f64) -> String {
    const UNITS: [&str; 6] = ["B", "kB", "MB", "GB", "TB", "PB"];
    let mut v = v;
    let mut i = 0;
    while v.abs() >= 1000.0 && i + 1 < UNITS.len() {
        v /= 1000.0;
        i += 1;
    }
    if i == 0 { format!("{v:.0} B") } else { format!("{v:.1} {}", UNITS[i]) }
}

/// Seconds as the largest sensible unit: `45 s`, `12 min`, `5.0 h`, `3.0 d`.
pub fn show_seconds(v: f64) -> String {
    if v < 120.0 {
        format!("{v:.0} s")
    } else if v < 7_200.0 {
        format!("{:.0} min", v / 60.0)
    } else if v < 172_800.0 {
        format!("{:.1} h", v / 3_600.0)
    } else {
        format!("{:.1} d", v / 86_400.0)
    }
}

/// The Nagios perfdata unit of a value.
pub fn perf_unit(name: &str) -> &'static str {
    if name.ends_with("_pct") {
        "%"
    } else if name.ends_with("_bytes") {
        "B"
    } else if name.ends_with("_s") {
        "s"
    } else {
        ""
    }
}

/// Judges a value against `warn`/`crit` (above: degraded/down).
pub fn judge(value: f64, warn: f64, crit: f64) -> super::CheckStatus {
    if value > crit {
        super::CheckStatus::Down
    } else if value > warn {
        super::CheckStatus::Degraded
    } else {
        super::CheckStatus::Up
    }
}

/// Seconds until a falling value reaches zero, at the rate of the
/// least-squares line through `points` (unix seconds, value), from the last
/// point's value; None with fewer than 3 points or a rate that is not falling.
pub fn time_to_zero(points: &[(f64, f64)]) -> Option<f64> {
    if points.len() < 3 {
        return None;
    }
    let n = points.len() as f64;
    let (mt, mv) = points.iter().fold((0.0, 0.0), |(a, b), (t, v)| (a + t / n, b + v / n));
    let (mut num, mut den) = (0.0, 0.0);
    for (t, v) in points {
        num += (t - mt) * (v - mv);
        den += (t - mt) * (t - mt);
    }
    let slope = num / den;
    let last = points.last().map(|p| p.1)?;
    (den > 0.0 && slope < 0.0 && slope.is_finite()).then(|| (last.max(0.0) / -slope).round())
}

/// Every key any owned kind declares, each once, with its type. A key shared
/// by several kinds has one type in all of them (a test checks).
pub fn all_keys() -> Vec<(&'static str, KeyType)> {
    let mut out: Vec<(&'static str, KeyType)> = Vec::new();
    // `type: process` types its newer keys the same way (`process::KEYS`).
    let keys = super::KINDS.iter().map(|d| d.keys).chain([super::process::KEYS]);
    for keys in keys {
        for (k, t) in keys {
            if !out.iter().any(|(o, _)| o == k) {
                out.push((k, *t));
            }
        }
    }
    out
}

/// The kind of this `type:` word.
pub fn def(name: &str) -> Option<&'static KindDef> {
    super::KINDS.iter().copied().find(|d| d.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_has_one_type_in_every_kind() {
        let all = super::super::KINDS.iter().map(|d| (d.name, d.keys));
        let all: Vec<_> = all.chain([("process", super::super::process::KEYS)]).collect();
        for (a, a_keys) in &all {
            for (b, b_keys) in &all {
                for (k, t) in *a_keys {
                    if let Some((_, u)) = b_keys.iter().find(|(j, _)| j == k) {
                        assert_eq!(t, u, "{k} in {a} and {b}");
                    }
                }
            }
        }
    }

    #[test]
    fn values_keep_their_order_through_json() {
        let v = Values::from_pairs(&[("z_pct", Some(1.5)), ("a_bytes", None)]);
        let text = serde_json::to_string(&v).unwrap();
        assert_eq!(text, r#"{"z_pct":1.5,"a_bytes":null}"#);
        let back: Values = serde_json::from_str(&text).unwrap();
        assert_eq!(back, v);
    }

    #[test]
    fn a_falling_line_reaches_zero() {
        // 1000 → 700 in 30 s: 10 per second, 700 left: 70 s.
        let pts = [(0.0, 1000.0), (10.0, 900.0), (20.0, 800.0), (30.0, 700.0)];
        assert_eq!(time_to_zero(&pts), Some(70.0));
        assert_eq!(time_to_zero(&pts[..2]), None, "two samples are not a trend");
        let flat = [(0.0, 5.0), (10.0, 5.0), (20.0, 5.0)];
        assert_eq!(time_to_zero(&flat), None);
        let rising = [(0.0, 5.0), (10.0, 6.0), (20.0, 7.0)];
        assert_eq!(time_to_zero(&rising), None);
        let same_time = [(1.0, 5.0), (1.0, 4.0), (1.0, 3.0)];
        assert_eq!(time_to_zero(&same_time), None);
    }

    #[test]
    fn every_reason_has_its_word_once() {
        let words: Vec<String> = Reason::ALL
            .iter()
            .map(|r| serde_json::to_value(r).unwrap().as_str().unwrap().to_string())
            .collect();
        for (r, w) in Reason::ALL.iter().zip(&words) {
            assert_eq!(r.as_str(), w);
        }
        let mut unique = words.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), words.len());
    }

    #[test]
    fn values_read_as_people_do() {
        assert_eq!(show_value("used_pct", Some(85.24)), "85.2%");
        assert_eq!(show_value("total_bytes", Some(10_500_000_000.0)), "10.5 GB");
        assert_eq!(show_value("full_in_s", Some(3.0 * 86_400.0)), "3.0 d");
        assert_eq!(show_value("cpus", Some(2.0)), "2");
        assert_eq!(show_value("full_in_s", None), "n/a");
        assert_eq!(value_label("inodes_used_pct"), "inodes used");
    }
}
