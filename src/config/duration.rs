//! Durations as operators write them: `500ms`, `5s`, `2m`, `1h`, `14d`, or bare seconds.

use serde::de::{self, Deserializer, Visitor};
use std::fmt;
use std::time::Duration;

/// Parses `500ms`, `5s`, `1.5s`, `2m`, `1h`, `1d` or a bare number of seconds.
pub fn parse(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    // Nanoseconds per unit: scaling up (not `n * 0.001`) keeps `4097ms`
    // exactly 4097 ms, so durations round-trip through `format`.
    let scale_ns = match unit.trim() {
        "ms" => 1e6,
        "" | "s" => 1e9,
        "m" => 6e10,
        "h" => 3.6e12,
        "d" => 8.64e13,
        _ => return Err(expected(text)),
    };
    if num.is_empty() || num.starts_with('.') || num.ends_with('.') {
        return Err(expected(text));
    }
    let n: f64 = num.parse().map_err(|_| expected(text))?;
    from_nanos(n * scale_ns).ok_or_else(|| expected(text))
}

fn from_secs(secs: f64) -> Option<Duration> {
    from_nanos(secs * 1e9)
}

fn from_nanos(ns: f64) -> Option<Duration> {
    // Ten years is far beyond any sensible interval and keeps arithmetic safe.
    (ns.is_finite() && (0.0..=315_360_000e9).contains(&ns))
        .then(|| Duration::from_nanos(ns.round() as u64))
}

fn expected(text: &str) -> String {
    format!(
        "invalid duration {text:?}: expected a number with ms, s, m, h or d (e.g. 500ms, 5s, 2m, 1d) or a number of seconds"
    )
}

/// Formats a duration the way `parse` reads it back.
pub fn format(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(86_400_000) && ms > 0 {
        format!("{}d", ms / 86_400_000)
    } else if ms.is_multiple_of(3_600_000) && ms > 0 {
        format!("{}h", ms / 3_600_000)
    } else if ms.is_multiple_of(60_000) && ms > 0 {
        format!("{}m", ms / 60_000)
    } else if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

/// A `Duration` read from YAML, with the error located at the value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dur(pub Duration);

impl<'de> serde::Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Dur;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a duration like 500ms, 5s, 2m, 1h or 1d")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Dur, E> {
                from_secs(v as f64).map(Dur).ok_or_else(|| E::custom(expected(&v.to_string())))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Dur, E> {
                from_secs(v as f64).map(Dur).ok_or_else(|| E::custom(expected(&v.to_string())))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Dur, E> {
                from_secs(v).map(Dur).ok_or_else(|| E::custom(expected(&v.to_string())))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Dur, E> {
                parse(v).map(Dur).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// A timeout: a duration greater than zero (a zero timeout would fail
/// every check at once, and healing would then restart a healthy unit).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeout(pub Duration);

impl<'de> serde::Deserialize<'de> for Timeout {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let Dur(v) = Dur::deserialize(d)?;
        if v.is_zero() {
            return Err(de::Error::custom(
                "expected a duration greater than 0 (a zero timeout fails every check)",
            ));
        }
        Ok(Timeout(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_forms() {
        assert_eq!(parse("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse("14d"), Ok(Duration::from_secs(14 * 86_400)));
        assert_eq!(parse("1.5d"), Ok(Duration::from_secs(36 * 3600)));
        assert_eq!(parse(" 10 s "), Ok(Duration::from_secs(10)));
    }

    #[test]
    fn errors_name_every_unit() {
        let e = parse("5w").unwrap_err();
        assert!(e.contains("ms, s, m, h or d"), "{e}");
    }

    #[test]
    fn rejects_nonsense() {
        for bad in ["", "s", "5x", "-1s", "1e9h", ".5s", "5.s", "five", "5 minutes", "NaN"] {
            assert!(parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn format_round_trips() {
        for d in [0, 1, 500, 1000, 1500, 60_000, 3_600_000, 90_000, 86_400_000, 90_000_000] {
            let d = Duration::from_millis(d);
            assert_eq!(parse(&format(d)), Ok(d));
        }
    }
}

#[cfg(test)]
mod fuzz;
