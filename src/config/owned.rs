//! The keys of the kinds that own theirs (`probe::owned`): typed here, at
//! their values, in the words of every other config error
//! (`KEY: expected WHAT, found WHAT-WAS-FOUND`); then the kind builds
//! itself from them and its own problems come back located too.

use super::Validator;
use super::duration;
use crate::probe::owned::{self, KeyType, Keys, Pos, Val};
use crate::probe::{Check, Probe};
use serde_saphyr::{Location, Spanned};
use std::time::Duration;

/// A location as the probe layer keeps it.
pub fn pos(l: &Location) -> Pos {
    Pos { line: l.line(), column: l.column() }
}

impl Validator<'_> {
    pub(super) fn at_pos(&mut self, p: Pos, msg: impl std::fmt::Display) {
        self.problems.push(format!("{}:{}:{}: {msg}", self.path.display(), p.line, p.column));
    }

    /// Types every owned key of a check (`path` is the check's, like
    /// `services[0].checks[1]`); None when one is wrong.
    pub(super) fn owned_keys(
        &mut self,
        path: &str,
        service: &str,
        at: &Location,
        given: Vec<(Spanned<String>, Spanned<serde_json::Value>)>,
    ) -> Option<Keys> {
        let mut keys = Keys::new(pos(at), service);
        let mut ok = true;
        for (key, value) in given {
            let Some((name, t)) = owned::all_keys().into_iter().find(|(k, _)| *k == key.value)
            else {
                continue;
            };
            match typed(t, &value.value) {
                Some(v) => keys.insert(name, v, pos(&value.referenced)),
                None => {
                    ok = false;
                    self.at(
                        &value.referenced,
                        format!(
                            "{path}.{name}: expected {}, found {}",
                            t.expected(),
                            found(&value.value)
                        ),
                    );
                }
            }
        }
        ok.then_some(keys)
    }

    /// Builds a check of an owned kind from its typed keys.
    pub(super) fn owned_check(
        &mut self,
        def: &'static owned::KindDef,
        mut keys: Keys,
        timeout: Duration,
        degraded_after: Option<Duration>,
    ) -> Option<Check> {
        let built = (def.build)(&mut keys);
        for (p, msg) in keys.take_problems() {
            self.at_pos(p, msg);
        }
        let built = built?;
        Some(Check {
            probe: Probe::Owned(built.probe),
            timeout,
            degraded_after,
            target: built.target,
        })
    }
}

/// A value of type `t`, or None.
pub(super) fn typed(t: KeyType, v: &serde_json::Value) -> Option<Val> {
    use serde_json::Value as J;
    let text = match v {
        J::String(s) => Some(s.trim().to_string()),
        J::Number(n) => Some(n.to_string()),
        _ => None,
    };
    match t {
        KeyType::Number => {
            let t = text?;
            let n: f64 = t.strip_suffix('%').unwrap_or(&t).trim().parse().ok()?;
            (n.is_finite() && n >= 0.0).then_some(Val::Number(n))
        }
        KeyType::Count => match v {
            J::Number(n) => {
                n.as_u64().filter(|n| (1..=1_000_000).contains(n)).map(|n| Val::Count(n as u32))
            }
            _ => None,
        },
        KeyType::Bool => v.as_bool().map(Val::Bool),
        KeyType::Duration => duration::parse(&text?).ok().map(Val::Duration),
        KeyType::Path => text.filter(|t| !t.is_empty()).map(|t| Val::Path(t.into())),
        KeyType::Size => size(&text?).map(Val::Bytes),
        KeyType::OneOf(words) => {
            let t = text?;
            words.iter().find(|w| **w == t).map(|w| Val::Word(w))
        }
    }
}

/// `512MB` (10^6), `1.5GiB` (2^30), `800KB`, `2TB`, or bytes.
pub fn size(text: &str) -> Option<u64> {
    let t = text.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().ok()?;
    let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kb" | "k" => 1e3,
        "mb" | "m" => 1e6,
        "gb" | "g" => 1e9,
        "tb" | "t" => 1e12,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        "tib" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    let bytes = n * mult;
    (0.0..1.8e19).contains(&bytes).then_some(bytes.round() as u64)
}

/// What the file holds, for "found …" (as `errors.rs` says it).
pub(super) fn found(v: &serde_json::Value) -> String {
    use serde_json::Value as J;
    match v {
        J::Null => "nothing".into(),
        J::Array(a) if a.is_empty() => "an empty list".into(),
        J::Array(_) => "a list".into(),
        J::Object(o) if o.is_empty() => "an empty mapping".into(),
        J::Object(_) => "a mapping".into(),
        J::String(s) => format!("{:?}", super::schema::cut(s)),
        J::Number(n) => format!("\"{n}\""),
        J::Bool(b) => format!("\"{b}\""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_as_the_spec_writes_them() {
        assert_eq!(size("512MB"), Some(512_000_000));
        assert_eq!(size("1.5GiB"), Some(1_610_612_736));
        assert_eq!(size("800KB"), Some(800_000));
        assert_eq!(size("2TB"), Some(2_000_000_000_000));
        assert_eq!(size("1234"), Some(1234));
        assert_eq!(size("12 parsecs"), None);
        assert_eq!(size(""), None);
    }

    #[test]
    fn numbers_and_percentages() {
        let j = |s: &str| serde_json::from_str::<serde_json::Value>(s).unwrap();
        assert_eq!(typed(KeyType::Number, &j("80")), Some(Val::Number(80.0)));
        assert_eq!(typed(KeyType::Number, &j("\"80%\"")), Some(Val::Number(80.0)));
        assert_eq!(typed(KeyType::Number, &j("1.5")), Some(Val::Number(1.5)));
        assert_eq!(typed(KeyType::Number, &j("\"lots\"")), None);
        assert_eq!(typed(KeyType::Count, &j("0")), None);
        assert_eq!(typed(KeyType::Count, &j("3")), Some(Val::Count(3)));
    }
}
