//! `${NAME}`, `${NAME:-default}` and `$$` in every string value of a config
//! file, from the environment, before the file is deserialized.
//!
//! The file is read once as a tree of located nodes (`errors::Node`); each
//! scalar *value* (not a key) holding a reference is rewritten in the text as
//! its expansion — plain if it was plain and reads back the same (so numbers
//! and booleans stay so), else double-quoted — at the same place, with as
//! many line breaks after it as it spanned, so every line (and every column
//! before it) keeps its number and errors stay located. Any other `$` stays
//! as written (`^a$`, `$HOME`, `${1}`). An unset NAME without a default is an
//! error at that value; `${NAME:-default}` takes the default when NAME is
//! unset or empty.

use super::errors::{Node, Value};
use super::schema::{self, Seg};
use serde_saphyr::Options;
use std::path::Path;

/// The text with every reference expanded, or the problems (located).
pub fn expand(
    text: &str,
    path: &Path,
    options: &Options,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, Vec<String>> {
    if !text.contains('$') {
        return Ok(text.to_string());
    }
    // Not YAML: the real parse says so, with its location.
    let Ok(tree) = serde_saphyr::from_str_with_options::<Node>(text, options.clone()) else {
        return Ok(text.to_string());
    };
    let mut edits: Vec<(usize, usize, String)> = Vec::new();
    let mut problems = Vec::new();
    let mut chain = Vec::new();
    walk(&tree, text, &mut chain, lookup, &mut edits, &mut problems, path);
    if !problems.is_empty() {
        return Err(problems);
    }
    edits.sort_by_key(|e| e.0);
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for (start, end, with) in edits {
        if start < at {
            continue; // the same place reached twice (an alias): once is enough
        }
        out.push_str(&text[at..start]);
        out.push_str(&with);
        at = end;
    }
    out.push_str(&text[at..]);
    Ok(out)
}

fn walk(
    node: &Node,
    text: &str,
    chain: &mut Vec<Seg>,
    lookup: &dyn Fn(&str) -> Option<String>,
    edits: &mut Vec<(usize, usize, String)>,
    problems: &mut Vec<String>,
    path: &Path,
) {
    match &node.value {
        Value::List(items) => {
            for (i, item) in items.iter().enumerate() {
                chain.push(Seg::Index(i));
                walk(item, text, chain, lookup, edits, problems, path);
                chain.pop();
            }
        }
        Value::Map(entries) => {
            for (key, value) in entries {
                let name = match &key.value {
                    Value::Scalar(s) => s.clone(),
                    _ => "?".to_string(),
                };
                chain.push(Seg::Key(name));
                walk(value, text, chain, lookup, edits, problems, path);
                chain.pop();
            }
        }
        Value::Scalar(value) if value.contains('$') => match expand_str(value, lookup) {
            Ok(None) => {}
            Ok(Some(expanded)) => match edit(text, node, value, &expanded) {
                Some(edit) => edits.push(edit),
                // Never silently unexpanded.
                None => problems.push(format!(
                    "{}:{}:{}: {}: cannot expand ${{…}} in this value: write it on one line, plain or quoted",
                    path.display(),
                    node.at.line(),
                    node.at.column(),
                    if chain.is_empty() { "top level".into() } else { schema::display(chain) }
                )),
            },
            Err(name) => {
                let key = if chain.is_empty() { "top level".into() } else { schema::display(chain) };
                problems.push(format!(
                    "{}:{}:{}: {key}: ${{{name}}} is not set: expected the environment variable {name}, or ${{{name}:-default}} (and $$ for a literal $)",
                    path.display(),
                    node.at.line(),
                    node.at.column()
                ));
            }
        },
        Value::Scalar(_) | Value::Null => {}
    }
}

/// The replacement of one scalar in the text: its span, a double-quoted
/// string of `expanded`, and the line breaks it spanned.
fn edit(text: &str, node: &Node, value: &str, expanded: &str) -> Option<(usize, usize, String)> {
    let span = node.at.span();
    let start = usize::try_from(span.byte_offset()?).ok()?;
    let end = start.checked_add(usize::try_from(span.byte_len()?).ok()?)?;
    let mut start = start;
    let mut written = text.get(start..end)?;
    if written.starts_with(['*', '<']) {
        // An alias or merge site: the value is rewritten where it is defined.
        return Some((start, start, String::new()));
    }
    // A block scalar's span is its content: start at its `|` or `>` header.
    let before = text.get(..start)?.trim_end_matches([' ', '\n', '\r', '\t']);
    let header = before.trim_end_matches(|c: char| c == '+' || c == '-' || c.is_ascii_digit());
    if header.ends_with(['|', '>']) && before.len() < start {
        start = header.len() - 1;
        written = text.get(start..end)?;
    } else if !(written.starts_with(['"', '\'']) || written.trim_end() == value.trim_end()) {
        // A form we cannot place.
        return None;
    }
    // A plain scalar stays plain when it can, so `workers: ${N}` is still a
    // number and `enabled: ${B}` a boolean; anything else is double-quoted.
    let plain = !written.starts_with(['"', '\'', '|', '>']) && plain_safe(expanded);
    let shown = if plain { expanded.to_string() } else { serde_json::to_string(expanded).ok()? };
    let breaks = "\n".repeat(written.matches('\n').count());
    Some((start, end, format!("{shown}{breaks}")))
}

/// Text YAML reads back as the same plain scalar in any context (block or
/// flow): letters, digits and `_./@+=~:-`, not starting with an indicator,
/// no `:` at the end.
fn plain_safe(s: &str) -> bool {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || "_./+=~:-".contains(c);
    let first_ok = s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric() || "_./".contains(c))
        || (s.starts_with('-') && s[1..].starts_with(|c: char| c.is_ascii_digit()));
    first_ok && s.chars().all(ok_char) && !s.ends_with(':')
}

/// `${NAME}`, `${NAME:-default}` and `$$` in `s`: None if nothing changes,
/// Err(NAME) for an unset NAME without a default.
pub fn expand_str(
    s: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<String>, String> {
    let mut out = String::with_capacity(s.len());
    let mut changed = false;
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            changed = true;
            rest = tail;
            continue;
        }
        let reference = after.strip_prefix('{').and_then(|inner| {
            let close = inner.find('}')?;
            let body = &inner[..close];
            let (name, default) = match body.split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (body, None),
            };
            let valid = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            valid.then_some((name, default, &inner[close + 1..]))
        });
        match reference {
            Some((name, default, tail)) => {
                let value = lookup(name);
                match (value, default) {
                    (Some(v), Some(d)) if v.is_empty() => out.push_str(d),
                    (Some(v), _) => out.push_str(&v),
                    (None, Some(d)) => out.push_str(d),
                    (None, None) => return Err(name.to_string()),
                }
                changed = true;
                rest = tail;
            }
            None => {
                out.push('$');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    Ok(changed.then_some(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "HOST" => Some("web1".into()),
            "PORT" => Some("8080".into()),
            "EMPTY" => Some(String::new()),
            "QUOTE" => Some("a \"b\": #c".into()),
            _ => None,
        }
    }

    #[test]
    fn every_form_and_every_other_dollar() {
        let x = |s: &str| expand_str(s, &env);
        assert_eq!(x("${HOST}"), Ok(Some("web1".into())));
        assert_eq!(x("http://${HOST}:${PORT}/x"), Ok(Some("http://web1:8080/x".into())));
        assert_eq!(x("${NOPE:-fallback}"), Ok(Some("fallback".into())));
        assert_eq!(x("${HOST:-fallback}"), Ok(Some("web1".into())));
        assert_eq!(x("${EMPTY:-fallback}"), Ok(Some("fallback".into())));
        assert_eq!(x("${EMPTY}"), Ok(Some(String::new())));
        assert_eq!(x("${NOPE:-}"), Ok(Some(String::new())));
        assert_eq!(x("cost: $$5"), Ok(Some("cost: $5".into())));
        assert_eq!(x("$${HOST}"), Ok(Some("${HOST}".into())), "$$ escapes a reference");
        assert_eq!(x("${NOPE}"), Err("NOPE".into()));
        for same in ["^a$", "$HOME", "a$b", "${1}", "${}", "${HOST", "$", "${A B}"] {
            assert_eq!(x(same), Ok(None), "{same:?} stays as it is");
        }
    }

    fn run(text: &str) -> Result<String, Vec<String>> {
        expand(text, Path::new("m.yml"), &serde_saphyr::Options::default(), &env)
    }

    #[test]
    fn values_are_rewritten_in_place_and_keys_are_not() {
        let text = "x: &h ${HOST}\ny: *h\na: ${HOST}\n\"${HOST}\": x\nb: [\"${PORT}\", '^a$', plain$]\nc: |\n  ${HOST}\n  two\nd: ${QUOTE}\ne: 1\n";
        let out = run(text).expect("expands");
        assert_eq!(
            out,
            "x: &h web1\ny: *h\na: web1\n\"${HOST}\": x\nb: [\"8080\", '^a$', plain$]\nc: \"web1\\ntwo\\n\"\n\n\nd: \"a \\\"b\\\": #c\"\ne: 1\n"
        );
        assert_eq!(out.lines().count(), text.lines().count(), "lines keep their numbers");
    }

    #[test]
    fn an_unset_name_is_located_at_its_value() {
        let problems =
            run("services:\n  - name: x\n    url: http://${NOPE}/\n").expect_err("unset");
        assert_eq!(problems.len(), 1);
        assert!(
            problems[0].starts_with("m.yml:3:10: services[0].url: ${NOPE} is not set"),
            "{problems:?}"
        );
    }
}
