//! YAML errors a user can act on: `file:line:column: KEY: expected WHAT, found WHAT-WAS-FOUND`.
//!
//! serde-saphyr reports a type error as a location and a message in Rust's
//! terms ("invalid u64", "expected string scalar"), and for values read
//! through `deserialize_any` (durations, ports) at the key rather than at the
//! value. So on such an error the document is read a second time as a plain
//! tree of located nodes: the node the error points at gives the key path
//! (`services[1].checks[0].timeout`) and what the file holds there, and
//! `schema::KEYS` says in plain English what that key takes. Messages our own
//! deserializers produce (invalid URL, unit name, regex, duration, port) keep
//! their words and gain the key. Every other error (syntax, unknown or
//! missing keys, duplicates, budget) is the crate's message at its location.

use super::schema::{self, Kind, Seg};
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::{Error as YamlError, Location, Options, Spanned};
use std::fmt;
use std::path::Path;

/// One `file:line:column: message` line for a failed parse of `text`.
pub fn describe(path: &Path, text: &str, options: &Options, e: &YamlError) -> String {
    if is_blank(text) {
        return format!(
            "{}: the config file is empty (nothing but blanks and comments): expected at least \
             `services:` with one service (see config/demo.yml or `man chatstack-status`)",
            path.display()
        );
    }
    if let YamlError::SerdeUnknownField { field, expected, .. } = e.without_snippet() {
        return unknown_key(path, text, options, e, field, expected);
    }
    let problem = classify(e);
    match (explain(text, options, e, &problem), problem) {
        (Some((at, msg)), _) => located(path, Some(at), &msg),
        // Not placed in the document (it should always be): still in words.
        (None, Problem::Type { fallback: Some(what), .. }) => {
            located(path, e.location(), &format!("expected {what}"))
        }
        (None, Problem::Ours(msg)) => located(path, e.location(), &msg),
        (None, _) => located(path, e.location(), &crate_message(e)),
    }
}

/// Nothing but blank lines and comments.
fn is_blank(text: &str) -> bool {
    text.lines().all(|l| {
        let l = l.trim_start_matches('\u{feff}').trim();
        l.is_empty() || l.starts_with('#') || l == "---" || l == "..."
    })
}

/// `services[0].checks[0]: unknown key `tiemout` (did you mean `timeout`?):
/// expected one of …`, at the key.
fn unknown_key(
    path: &Path,
    text: &str,
    options: &Options,
    e: &YamlError,
    field: &str,
    expected: &[&'static str],
) -> String {
    let at = e.location();
    let parent = at.and_then(|at| {
        // Only the text up to the key's line: what follows (an alias bomb
        // the crate stopped reading at this key) is not expanded here.
        let line = usize::try_from(at.line()).ok()?;
        let head: String = text.split_inclusive('\n').take(line).collect();
        let tree: Node = serde_saphyr::from_str_with_options(&head, options.clone()).ok()?;
        let chain = locate(&tree, &at)?;
        // The chain ends at the unknown key's value: its parent is the mapping.
        let path: Vec<Seg> = chain.iter().map(|(s, _)| s.clone()).collect();
        let n = path.iter().rposition(|s| matches!(s, Seg::Key(k) if k == field))?;
        Some(path[..n].to_vec())
    });
    let place = match &parent {
        Some(p) if p.is_empty() => "top level: ".to_string(),
        Some(p) => format!("{}: ", schema::display(p)),
        None => String::new(),
    };
    let hint = crate::suggest::closest(field, expected)
        .map(|c| format!(" (did you mean `{c}`?)"))
        .unwrap_or_default();
    located(
        path,
        at,
        &format!("{place}unknown key `{field}`{hint}: expected one of {}", expected.join(", ")),
    )
}

/// One error line: a key or value quoted in it may hold a newline or
/// another control character (a flow mapping cut by a stray line), which
/// is shown escaped so that the error stays one line.
fn located(path: &Path, at: Option<Location>, msg: &str) -> String {
    let msg = crate::probe::http::escape_controls(msg);
    match at {
        Some(l) if l.line() > 0 => format!("{}:{}:{}: {msg}", path.display(), l.line(), l.column()),
        _ => format!("{}: {msg}", path.display()),
    }
}

/// What kind of error the crate reported.
enum Problem {
    /// The value has the wrong type (or is not one of an enum's words);
    /// `fallback` is what was expected, in words, when the key has no row.
    Type { fallback: Option<String>, integer: Option<&'static str> },
    /// A message of our own deserializers: keep it, add the key.
    Ours(String),
    /// Syntax, unknown or missing keys, …: the crate's message is good.
    Other,
}

fn classify(e: &YamlError) -> Problem {
    let mut e = e.without_snippet();
    while let YamlError::AliasError { error, .. } = e {
        e = error.without_snippet();
    }
    let type_error = |fallback: Option<String>| Problem::Type { fallback, integer: None };
    match e {
        YamlError::InvalidScalar { ty, .. } => {
            Problem::Type { fallback: Some(plain_type(ty).to_string()), integer: integer_max(ty) }
        }
        YamlError::Unexpected { expected, .. } => type_error(Some(plain_type(expected).into())),
        YamlError::SerdeInvalidType { expected, .. }
        | YamlError::SerdeInvalidValue { expected, .. } => type_error(Some(expected.clone())),
        YamlError::SerdeUnknownVariant { expected, .. } => {
            type_error(Some(schema::one_of(expected)))
        }
        YamlError::InvalidBooleanStrict { .. } => type_error(Some("true or false".into())),
        YamlError::NullIntoString { .. }
        | YamlError::TaggedScalarCannotDeserializeIntoString { .. }
        | YamlError::BinaryNotUtf8 { .. } => type_error(Some("text".into())),
        YamlError::ExternallyTaggedEnumExpectedScalarOrMapping { .. }
        | YamlError::UnexpectedValueForUnitEnumVariant { .. }
        | YamlError::ExpectedStringKeyForExternallyTaggedEnum { .. } => type_error(None),
        YamlError::Message { msg, .. } => Problem::Ours(msg.clone()),
        _ => Problem::Other,
    }
}

/// The crate's names for what it wanted, in words.
fn plain_type(ty: &str) -> &str {
    match ty {
        "u8" | "u16" | "u32" | "u64" | "u128" | "usize" => "a whole number (0 or more)",
        "i8" | "i16" | "i32" | "i64" | "i128" | "isize" => "a whole number",
        "f32" | "f64" => "a number",
        "bool" | "boolean" => "true or false",
        "string scalar" | "scalar" | "char" | "string" => "text",
        "sequence start" => "a list",
        "mapping start" => "a mapping of `key: value` lines",
        other => other,
    }
}

fn integer_max(ty: &str) -> Option<&'static str> {
    Some(match ty {
        "u8" => "255",
        "u16" => "65535",
        "u32" => "4294967295",
        "u64" | "usize" => "18446744073709551615",
        _ => return None,
    })
}

/// The location and message of a type error or one of ours, said with its key.
fn explain(
    text: &str,
    options: &Options,
    e: &YamlError,
    problem: &Problem,
) -> Option<(Location, String)> {
    if matches!(problem, Problem::Other) {
        return None;
    }
    let at = e.location()?;
    // Well-formed YAML (the error is about types), so this parse succeeds;
    // if it does not, the crate's own message stands.
    let tree: Node = serde_saphyr::from_str_with_options(text, options.clone()).ok()?;
    let mut chain = locate(&tree, &at)?;
    // The deepest key with a row. A value inside a scalar key's value (`type:
    // {a: b}`) is that key's problem; one under no row at all keeps its
    // words without a key.
    let row = (0..=chain.len()).rev().find_map(|n| {
        let path: Vec<Seg> = chain[..n].iter().map(|(s, _)| s.clone()).collect();
        schema::lookup(&path).map(|kind| (n, kind))
    });
    let kind = match row {
        Some((n, kind)) if n == chain.len() || !kind.is_container() => {
            chain.truncate(n);
            Some(kind)
        }
        _ => None,
    };
    let node = chain.last().map_or(&tree, |(_, n)| *n);
    let path: Vec<Seg> = chain.iter().map(|(s, _)| s.clone()).collect();
    let key = if path.is_empty() { "top level".to_string() } else { schema::display(&path) };
    let msg = match problem {
        Problem::Ours(msg) => format!("{key}: {msg}"),
        Problem::Type { fallback, integer } => {
            let found = found(text, node, kind.is_some_and(Kind::is_secret));
            let expected = match (integer, &node.value) {
                // An integer too big for its type: say the range.
                (Some(max), Value::Scalar(s))
                    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) =>
                {
                    format!("a whole number from 0 to {max}")
                }
                _ => kind.map(Kind::expected).or_else(|| fallback.clone())?,
            };
            format!("{key}: expected {expected}, found {found}")
        }
        Problem::Other => return None,
    };
    Some((node.at, msg))
}

/// What the file holds at `node`, for "found …".
fn found(text: &str, node: &Node, secret: bool) -> String {
    match &node.value {
        Value::Null => "nothing".into(),
        Value::List(items) if items.is_empty() => "an empty list".into(),
        Value::List(_) => "a list".into(),
        Value::Map(entries) if entries.is_empty() => "an empty mapping".into(),
        Value::Map(_) => "a mapping".into(),
        Value::Scalar(_) if secret => "text (not shown: it may be a secret)".into(),
        Value::Scalar(value) => {
            format!("{:?}", schema::cut(&without_url_path(&source_text(text, node, value))))
        }
    }
}

/// A URL cut to its scheme and host: a webhook URL out of place (`- https://
/// hooks.slack.com/services/…` without `url:`) still carries its secret in
/// the path, and in a password before the `@`.
fn without_url_path(value: &str) -> String {
    let Some((scheme, rest)) = value.split_once("://") else { return value.to_string() };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let host = rest[..end].rsplit_once('@').map_or(&rest[..end], |(_, host)| host);
    let tail = if end < rest.len() { "/…" } else { "" };
    format!("{scheme}://{host}{tail}")
}

/// A plain scalar as written (`1.50`, not `1.5`); a quoted or block one by its value.
fn source_text(text: &str, node: &Node, value: &str) -> String {
    let span = node.at.span();
    let written = span.byte_offset().zip(span.byte_len()).and_then(|(start, len)| {
        let start = usize::try_from(start).ok()?;
        text.get(start..start.checked_add(usize::try_from(len).ok()?)?)
    });
    match written {
        Some(w)
            if !w.is_empty()
                && !w.contains('\n')
                && !w.starts_with(['"', '\'', '|', '>', '!', '&', '*']) =>
        {
            w.to_string()
        }
        _ => value.to_string(),
    }
}

/// A YAML node and where it stands (also read by `env`).
pub(super) struct Node {
    pub(super) at: Location,
    pub(super) value: Value,
}

pub(super) enum Value {
    Null,
    /// Every scalar, as text (numbers and booleans included).
    Scalar(String),
    List(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

/// The path to the node an error points at, each step with its node: the
/// value whose span is the error's, else the value of the key whose span it
/// is (the crate points at the key for errors of `deserialize_any`
/// visitors), else the same by line and column.
fn locate<'a>(root: &'a Node, at: &Location) -> Option<Vec<(Seg, &'a Node)>> {
    let mut best: Option<(u8, Vec<(Seg, &'a Node)>)> = None;
    let mut chain = Vec::new();
    visit(root, at, &mut chain, &mut best, 0);
    best.map(|(_, chain)| chain)
}

fn visit<'a>(
    node: &'a Node,
    at: &Location,
    chain: &mut Vec<(Seg, &'a Node)>,
    best: &mut Option<(u8, Vec<(Seg, &'a Node)>)>,
    key_score: u8,
) {
    let here = key_score.max(score(&node.at, at, 4, 2));
    // `>=`: of equal matches the deeper, visited later, wins.
    if here > 0 && best.as_ref().is_none_or(|(b, _)| here >= *b) {
        *best = Some((here, chain.clone()));
    }
    match &node.value {
        Value::List(items) => {
            for (i, item) in items.iter().enumerate() {
                chain.push((Seg::Index(i), item));
                visit(item, at, chain, best, 0);
                chain.pop();
            }
        }
        Value::Map(entries) => {
            for (key, value) in entries {
                let name = match &key.value {
                    Value::Scalar(s) => s.clone(),
                    Value::Null => String::new(),
                    _ => "?".to_string(),
                };
                chain.push((Seg::Key(name), value));
                visit(value, at, chain, best, score(&key.at, at, 3, 1));
                chain.pop();
            }
        }
        Value::Null | Value::Scalar(_) => {}
    }
}

/// `exact` if the spans are the same, `near` if only line and column are.
fn score(node: &Location, at: &Location, exact: u8, near: u8) -> u8 {
    if node.line() != at.line() || node.column() != at.column() {
        0
    } else if node.span().offset() == at.span().offset() && node.span().len() == at.span().len() {
        exact
    } else {
        near
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = Spanned::<Value>::deserialize(d)?;
        Ok(Node { at: s.referenced, value: s.value })
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Scalar(v.to_string()))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Scalar(v.to_string()))
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Value, E> {
        Ok(Value::Scalar(v.to_string()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Scalar(v.to_string()))
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Value, E> {
        Ok(Value::Scalar(v.to_string()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Scalar(v.to_string()))
    }
    fn visit_char<E: de::Error>(self, v: char) -> Result<Value, E> {
        Ok(Value::Scalar(v.to_string()))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::Scalar(v.to_string()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::Scalar(v))
    }
    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Value, E> {
        Ok(Value::Scalar(String::from_utf8_lossy(v).into_owned()))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Value::deserialize(d)
    }
    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Value::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Node>()? {
            items.push(item);
        }
        Ok(Value::List(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut entries = Vec::new();
        while let Some(entry) = map.next_entry::<Node, Node>()? {
            entries.push(entry);
        }
        Ok(Value::Map(entries))
    }
}

/// The crate's own message, one line, without the location it may repeat.
fn crate_message(e: &YamlError) -> String {
    use serde_saphyr::MessageFormatter;
    let full = serde_saphyr::UserMessageFormatter.format_message(e);
    let line = full
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with("-->") && !l.starts_with('|'))
        .unwrap_or("invalid YAML");
    // Drop a trailing " at line X, column Y" the crate may append: we print our own.
    let line = match line.find(" at line ") {
        Some(i) => &line[..i],
        None => line,
    };
    line.strip_prefix("error: ").unwrap_or(line).to_string()
}

#[cfg(test)]
mod tests;
