//! What an HTTP body must hold: `body_contains`, `body_regex`, and `json:`
//! assertions (RFC 6901 pointers mapped to a literal or one operator).
//!
//! Pure functions over the body bytes the HTTP probe read (at most
//! `MAX_BODY`), so every rule is unit-tested without a server. Numbers compare
//! as numbers (`3`, `3.0` and `3e0` are equal; `2 < 10`), never as text.
//! Everything shown back from the body is cut to one short line.

use super::clean_detail;
use serde_json::{Number, Value};
use std::cmp::Ordering;
use std::fmt;

/// How much of a found value a detail quotes.
pub const MAX_FOUND: usize = 80;

/// An RFC 6901 JSON Pointer: `""` is the whole document, `/a/0/b~1c` walks
/// key `a`, index 0, key `b/c`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pointer {
    text: String,
    tokens: Vec<String>,
}

impl Pointer {
    pub fn parse(text: &str) -> Result<Pointer, String> {
        if text.is_empty() {
            return Ok(Pointer { text: String::new(), tokens: Vec::new() });
        }
        let Some(rest) = text.strip_prefix('/') else {
            return Err(format!(
                "invalid JSON pointer {text:?}: expected \"\" or a path starting with '/', like \"/db/ok\""
            ));
        };
        let mut tokens = Vec::new();
        for raw in rest.split('/') {
            let mut token = String::with_capacity(raw.len());
            let mut chars = raw.chars();
            while let Some(c) = chars.next() {
                match c {
                    '~' => match chars.next() {
                        Some('0') => token.push('~'),
                        Some('1') => token.push('/'),
                        _ => {
                            return Err(format!(
                                "invalid JSON pointer {text:?}: '~' must be followed by 0 (for ~) or 1 (for /)"
                            ));
                        }
                    },
                    c => token.push(c),
                }
            }
            tokens.push(token);
        }
        Ok(Pointer { text: text.to_string(), tokens })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The value it points at, or why there is none.
    pub fn resolve<'a>(&self, doc: &'a Value) -> Result<&'a Value, String> {
        let mut at = doc;
        for (depth, token) in self.tokens.iter().enumerate() {
            let next = match at {
                Value::Object(map) => map.get(token),
                Value::Array(items) => array_index(token).and_then(|i| items.get(i)),
                _ => None,
            };
            at = next.ok_or_else(|| {
                let parent = self.prefix(depth);
                let parent = if parent.is_empty() { "the document" } else { parent };
                match at {
                    Value::Object(_) => format!("{parent} has no key {token:?}"),
                    Value::Array(a) => {
                        format!("{parent} has no index {token:?} (an array of {})", a.len())
                    }
                    other => format!("{parent} is {}, not an object or array", kind(other)),
                }
            })?;
        }
        Ok(at)
    }

    /// The pointer text of its first `n` tokens.
    fn prefix(&self, n: usize) -> &str {
        let end = self.text.match_indices('/').nth(n).map_or(self.text.len(), |(i, _)| i);
        &self.text[..end]
    }
}

impl fmt::Display for Pointer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.text)
    }
}

/// RFC 6901 array indices: `0` or digits without a leading zero (`-`, the
/// element after the last, never exists).
fn array_index(token: &str) -> Option<usize> {
    let ok = !token.is_empty()
        && token.bytes().all(|b| b.is_ascii_digit())
        && (token == "0" || !token.starts_with('0'));
    if ok { token.parse().ok() } else { None }
}

/// What must hold at a pointer.
#[derive(Debug, Clone)]
pub enum Expect {
    /// A literal: equal (numbers as numbers).
    Equals(Value),
    NotEquals(Value),
    Less(Number),
    LessOrEqual(Number),
    Greater(Number),
    GreaterOrEqual(Number),
    /// `{exists: true}` / `{exists: false}`.
    Exists(bool),
    /// A regex over a string (other scalars: their JSON text).
    Matches(regex::Regex),
}

/// The operators of `{op: operand}`, as written.
pub const OPERATORS: &[&str] = &["<", "<=", ">", ">=", "!=", "exists", "matches"];

impl Expect {
    /// A `json:` value as written: a mapping is one operator, anything else
    /// a literal (to test an object, test its members).
    pub fn from_value(v: Value) -> Result<Expect, String> {
        match v {
            Value::Object(map) => {
                let mut ops = map.into_iter();
                match (ops.next(), ops.next()) {
                    (Some((op, operand)), None) => Expect::operator(&op, operand),
                    (None, _) => Err(
                        "empty mapping: expected one operator like {\"<\": 1000} (to test an object, test its members)"
                            .to_string(),
                    ),
                    (Some((a, _)), Some((b, _))) => Err(format!(
                        "expected one operator per pointer, found {a:?} and {b:?} (to test an object, test its members)"
                    )),
                }
            }
            literal => Ok(Expect::Equals(literal)),
        }
    }

    /// The operator object `{op: operand}`; errors name the operator.
    pub fn operator(op: &str, operand: Value) -> Result<Expect, String> {
        let number = |v: &Value| match v {
            Value::Number(n) => Ok(n.clone()),
            other => Err(format!("operator {op:?} needs a number, not {}", kind(other))),
        };
        Ok(match op {
            "<" => Expect::Less(number(&operand)?),
            "<=" => Expect::LessOrEqual(number(&operand)?),
            ">" => Expect::Greater(number(&operand)?),
            ">=" => Expect::GreaterOrEqual(number(&operand)?),
            "!=" => Expect::NotEquals(operand),
            "exists" => match operand {
                Value::Bool(b) => Expect::Exists(b),
                other => {
                    return Err(format!(
                        "operator \"exists\" needs true or false, not {}",
                        kind(&other)
                    ));
                }
            },
            "matches" => match operand {
                Value::String(s) => Expect::Matches(
                    regex::RegexBuilder::new(&s).size_limit(1 << 20).build().map_err(|e| {
                        format!("invalid regex {s:?}: {}", e.to_string().replace('\n', " "))
                    })?,
                ),
                other => {
                    return Err(format!(
                        "operator \"matches\" needs a regex string, not {}",
                        kind(&other)
                    ));
                }
            },
            other => {
                return Err(format!(
                    "unknown operator {other:?}: expected one of {}",
                    OPERATORS.join(", ")
                ));
            }
        })
    }
}

impl fmt::Display for Expect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expect::Equals(v) => write!(f, "{}", shown(v)),
            Expect::NotEquals(v) => write!(f, "!= {}", shown(v)),
            Expect::Less(n) => write!(f, "< {n}"),
            Expect::LessOrEqual(n) => write!(f, "<= {n}"),
            Expect::Greater(n) => write!(f, "> {n}"),
            Expect::GreaterOrEqual(n) => write!(f, ">= {n}"),
            Expect::Exists(true) => f.write_str("to exist"),
            Expect::Exists(false) => f.write_str("to be absent"),
            Expect::Matches(r) => write!(f, "a match for /{}/", r.as_str()),
        }
    }
}

/// One `json:` entry.
#[derive(Debug, Clone)]
pub struct JsonAssertion {
    pub pointer: Pointer,
    pub expect: Expect,
}

impl JsonAssertion {
    /// Ok, or the detail of the failure: pointer, expected, found.
    pub fn test(&self, doc: &Value) -> Result<(), String> {
        let p = &self.pointer;
        let found = match (p.resolve(doc), &self.expect) {
            (Ok(_), Expect::Exists(true)) | (Err(_), Expect::Exists(false)) => return Ok(()),
            (Ok(v), Expect::Exists(false)) => {
                return Err(format!("json {p}: expected to be absent, found {}", shown(v)));
            }
            (Err(why), e) => return Err(format!("json {p}: expected {e}, found nothing ({why})")),
            (Ok(v), _) => v,
        };
        let ok = match &self.expect {
            Expect::Equals(want) => json_eq(found, want),
            Expect::NotEquals(want) => !json_eq(found, want),
            Expect::Less(n) => num_cmp_value(found, n) == Some(Ordering::Less),
            Expect::LessOrEqual(n) => {
                matches!(num_cmp_value(found, n), Some(Ordering::Less | Ordering::Equal))
            }
            Expect::Greater(n) => num_cmp_value(found, n) == Some(Ordering::Greater),
            Expect::GreaterOrEqual(n) => {
                matches!(num_cmp_value(found, n), Some(Ordering::Greater | Ordering::Equal))
            }
            Expect::Matches(re) => match found {
                Value::String(s) => re.is_match(s),
                Value::Number(_) | Value::Bool(_) | Value::Null => re.is_match(&found.to_string()),
                Value::Array(_) | Value::Object(_) => false,
            },
            Expect::Exists(_) => true,
        };
        if ok {
            Ok(())
        } else {
            Err(format!("json {p}: expected {}, found {}", self.expect, shown(found)))
        }
    }
}

/// Tests every assertion against a body; the first failure is the detail.
/// `capped`: the body was longer than what was read, so it is not parsed.
pub fn check_json(body: &[u8], capped: bool, asserts: &[JsonAssertion]) -> Result<(), String> {
    if asserts.is_empty() {
        return Ok(());
    }
    if capped {
        return Err(format!(
            "body is over {} MiB: not parsed as JSON",
            super::http::MAX_BODY >> 20
        ));
    }
    let doc: Value = serde_json::from_slice(body).map_err(|e| {
        let start = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
        let start = if start.trim().is_empty() {
            "an empty body".to_string()
        } else {
            format!("{:?}", clean_detail(&start, 40))
        };
        format!("body is not JSON ({e}): starts with {start}")
    })?;
    asserts.iter().try_for_each(|a| a.test(&doc))
}

/// A found value as a detail shows it: compact JSON, cut to `MAX_FOUND`.
fn shown(v: &Value) -> String {
    clean_detail(&v.to_string(), MAX_FOUND)
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Equality with numbers compared by value, recursively.
pub fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => num_cmp(x, y) == Some(Ordering::Equal),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_eq(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

fn num_cmp_value(found: &Value, n: &Number) -> Option<Ordering> {
    match found {
        Value::Number(f) => num_cmp(f, n),
        _ => None,
    }
}

/// Integers exactly (i64 and u64 ranges alike), anything else as f64.
pub fn num_cmp(a: &Number, b: &Number) -> Option<Ordering> {
    let int = |n: &Number| n.as_i64().map(i128::from).or_else(|| n.as_u64().map(i128::from));
    match (int(a), int(b)) {
        (Some(x), Some(y)) => Some(x.cmp(&y)),
        _ => a.as_f64()?.partial_cmp(&b.as_f64()?),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn a(pointer: &str, expect: Expect) -> JsonAssertion {
        JsonAssertion { pointer: Pointer::parse(pointer).unwrap(), expect }
    }

    fn op(name: &str, operand: Value) -> Expect {
        Expect::operator(name, operand).unwrap()
    }

    #[test]
    fn pointers_follow_rfc_6901() {
        let doc =
            json!({"a/b": 1, "m~n": 2, "": 3, "items": [{"name": "x"}], "c": {"d": [10, 20]}});
        let at = |p: &str| Pointer::parse(p).unwrap().resolve(&doc).cloned();
        assert_eq!(at("/a~1b"), Ok(json!(1)));
        assert_eq!(at("/m~0n"), Ok(json!(2)));
        assert_eq!(at("/"), Ok(json!(3)));
        assert_eq!(at("/items/0/name"), Ok(json!("x")));
        assert_eq!(at("/c/d/1"), Ok(json!(20)));
        assert_eq!(at(""), Ok(doc.clone()));
        assert!(at("/c/d/01").unwrap_err().contains("no index \"01\""));
        assert!(at("/c/d/-").is_err());
        assert_eq!(at("/c/x").unwrap_err(), "/c has no key \"x\"");
        assert_eq!(at("/c/d/0/z").unwrap_err(), "/c/d/0 is a number, not an object or array");
        assert_eq!(at("/nope").unwrap_err(), "the document has no key \"nope\"");
        for bad in ["status", "/a~2", "/a~"] {
            assert!(Pointer::parse(bad).is_err(), "{bad}");
        }
        // ~01 is "~1" literally (the ~0 is decoded first, once).
        assert_eq!(Pointer::parse("/~01").unwrap().tokens, ["~1"]);
    }

    #[test]
    fn every_operator_true_and_false() {
        let doc = json!({"n": 12, "f": 2.5, "s": "ok-3.1", "b": true, "z": null});
        let cases: Vec<(JsonAssertion, bool)> = vec![
            (a("/n", Expect::Equals(json!(12))), true),
            (a("/n", Expect::Equals(json!(13))), false),
            (a("/n", op("<", json!(13))), true),
            (a("/n", op("<", json!(12))), false),
            (a("/n", op("<=", json!(12))), true),
            (a("/n", op("<=", json!(11.9))), false),
            (a("/f", op(">", json!(2))), true),
            (a("/f", op(">", json!(2.5))), false),
            (a("/f", op(">=", json!(2.5))), true),
            (a("/f", op(">=", json!(3))), false),
            (a("/s", op("!=", json!("down"))), true),
            (a("/s", op("!=", json!("ok-3.1"))), false),
            (a("/b", op("exists", json!(true))), true),
            (a("/q", op("exists", json!(true))), false),
            (a("/q", op("exists", json!(false))), true),
            (a("/z", op("exists", json!(false))), false),
            (a("/s", op("matches", json!("^ok-\\d"))), true),
            (a("/s", op("matches", json!("^down"))), false),
            (a("/f", op("matches", json!("^2\\.5$"))), true),
            (a("/b", Expect::Equals(json!(true))), true),
            (a("/z", Expect::Equals(Value::Null)), true),
        ];
        for (assertion, want) in cases {
            assert_eq!(assertion.test(&doc).is_ok(), want, "{assertion:?}");
        }
    }

    #[test]
    fn numbers_compare_as_numbers() {
        let doc: Value = serde_json::from_str(
            r#"{"v": 3.0, "big": 18446744073709551615, "neg": -1, "t": "10"}"#,
        )
        .unwrap();
        assert!(a("/v", Expect::Equals(json!(3))).test(&doc).is_ok());
        assert!(a("/v", op("<", json!(10))).test(&doc).is_ok(), "3 < 10, though \"3\" > \"10\"");
        assert!(a("/big", op(">", json!(-1))).test(&doc).is_ok());
        assert!(a("/neg", op("<", json!(u64::MAX))).test(&doc).is_ok());
        assert!(a("/big", Expect::Equals(json!(u64::MAX))).test(&doc).is_ok());
        // A string is not a number: "10" > 5 is a mismatch.
        let e = a("/t", op(">", json!(5))).test(&doc).unwrap_err();
        assert_eq!(e, "json \"/t\": expected > 5, found \"10\"");
        assert!(json_eq(&json!([1, {"a": 2.0}]), &json!([1.0, {"a": 2}])));
        assert!(!json_eq(&json!({"a": 1}), &json!({"a": 1, "b": 2})));
    }

    #[test]
    fn failures_name_pointer_expected_and_found_cut_short() {
        let long = "x".repeat(500);
        let doc = json!({"db": {"ok": false}, "msg": long});
        let e = a("/db/ok", Expect::Equals(json!(true))).test(&doc).unwrap_err();
        assert_eq!(e, "json \"/db/ok\": expected true, found false");
        let e = a("/msg", Expect::Equals(json!("ok"))).test(&doc).unwrap_err();
        assert!(e.chars().count() < 140 && e.ends_with('…'), "{e}");
        let e = a("/db/gone", op("<", json!(5))).test(&doc).unwrap_err();
        assert_eq!(e, "json \"/db/gone\": expected < 5, found nothing (/db has no key \"gone\")");
    }

    #[test]
    fn bodies_that_are_not_json_or_too_big_fail() {
        let asserts = [a("/status", Expect::Equals(json!("ok")))];
        assert!(check_json(br#"{"status":"ok"}"#, false, &asserts).is_ok());
        let e = check_json(b"<html>oops</html>", false, &asserts).unwrap_err();
        assert!(e.starts_with("body is not JSON") && e.contains("<html>"), "{e}");
        assert!(check_json(b"", false, &asserts).unwrap_err().contains("an empty body"));
        assert!(
            check_json(br#"{"status":"ok"}"#, true, &asserts).unwrap_err().contains("over 1 MiB")
        );
        assert!(check_json(b"not json", false, &[]).is_ok(), "no assertions, no parse");
    }

    #[test]
    fn operator_errors_are_clear() {
        let e = |o: &str, v: Value| Expect::operator(o, v).unwrap_err();
        assert!(e("~=", json!(1)).starts_with("unknown operator \"~=\": expected one of <, <=,"));
        assert_eq!(e("<", json!("5")), "operator \"<\" needs a number, not a string");
        assert!(e("exists", json!(1)).contains("true or false"));
        assert!(e("matches", json!("(")).starts_with("invalid regex \"(\""));
    }
}

#[cfg(test)]
mod fuzz;
