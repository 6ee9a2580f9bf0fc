//! Every key of `schema::KEYS`, given wrong values and right ones.
//!
//! The documents are generated: a base config that the YAML layer accepts,
//! with one key set to a sample of its kind, so a new key is one row in
//! `schema::KEYS` and a new kind one arm in `samples`. Each wrong value must
//! give exactly `m.yml:LINE:COL: KEY: expected WHAT, found FOUND` at the
//! value; each right one must be accepted (which proves the row's kind is the
//! field's); and the rows under every struct must be the keys serde knows.

use crate::config::parse;
use crate::config::raw::RawConfig;
use crate::config::schema::{Kind, rows};
use crate::probe::owned::KeyType;
use serde_saphyr::Error as YamlError;
use std::path::Path;

/// A YAML document to render in block style; `Target` marks the value under test.
#[derive(Clone, Debug)]
enum Y {
    /// Written inline as is: `5s`, `[1]`, `{a: 1}`, `'quoted'`.
    S(&'static str),
    L(Vec<Y>),
    M(Vec<(String, Y)>),
    Target(Box<Y>),
}

fn s(v: &'static str) -> Y {
    Y::S(v)
}

fn m(entries: &[(&str, Y)]) -> Y {
    Y::M(entries.iter().map(|(k, v)| (k.to_string(), v.clone())).collect())
}

/// A config the YAML layer accepts, with every struct present.
fn base() -> Y {
    m(&[
        (
            "services",
            Y::L(vec![m(&[
                ("name", s("a")),
                ("port", s("1")),
                ("checks", Y::L(vec![m(&[("type", s("tcp")), ("address", s("h:1"))])])),
            ])]),
        ),
        (
            "notify",
            Y::L(vec![m(&[
                ("type", s("webhook")),
                ("url", s("http://127.0.0.1:1/")),
                ("basic_auth", m(&[("user", s("u")), ("password_file", s("/p"))])),
                ("smtp", m(&[("host", s("h"))])),
            ])]),
        ),
        ("heal", m(&[])),
        (
            "maintenance",
            Y::L(vec![m(&[
                ("name", s("w")),
                ("every", Y::L(vec![s("sun")])),
                ("start", s("'03:00'")),
                ("duration", s("1h")),
            ])]),
        ),
        ("basic_auth", m(&[("user", s("u")), ("password_file", s("/p"))])),
        ("heartbeat", m(&[("url", s("http://127.0.0.1:1/"))])),
        ("tls", m(&[("cert_file", s("/c.pem")), ("key_file", s("/k.pem"))])),
        ("retention", m(&[])),
    ])
}

/// `services[].checks[].timeout` → `services`, `[]`, `checks`, `[]`, `timeout`.
fn segments(pattern: &str) -> Vec<&str> {
    let mut out = Vec::new();
    for part in pattern.split('.') {
        let key = part.trim_end_matches("[]");
        out.push(key);
        out.extend(std::iter::repeat_n("[]", (part.len() - key.len()) / 2));
    }
    out
}

/// The concrete path a message shows for a pattern: the first entry of each
/// list, `X-Test` for any key.
fn concrete(pattern: &str) -> String {
    pattern.replace("[]", "[0]").replace('*', "X-Test")
}

/// Sets the value at `segs`, making the lists and mappings on the way.
fn set(y: &mut Y, segs: &[&str], value: Y) {
    let Some((first, rest)) = segs.split_first() else {
        *y = value;
        return;
    };
    if *first == "[]" {
        if !matches!(y, Y::L(_)) {
            *y = Y::L(Vec::new());
        }
        let Y::L(items) = y else { unreachable!() };
        if items.is_empty() {
            items.push(m(&[]));
        }
        set(&mut items[0], rest, value);
    } else {
        let key = if *first == "*" { "X-Test" } else { first };
        if !matches!(y, Y::M(_)) {
            *y = m(&[]);
        }
        let Y::M(entries) = y else { unreachable!() };
        let i = match entries.iter().position(|(k, _)| k == key) {
            Some(i) => i,
            None => {
                entries.push((key.to_string(), m(&[])));
                entries.len() - 1
            }
        };
        set(&mut entries[i].1, rest, value);
    }
}

/// Block YAML, and the line and column where the `Target` starts.
#[derive(Default)]
struct Out {
    text: String,
    mark_next: bool,
    at: Option<(usize, usize)>,
}

impl Out {
    fn raw(&mut self, t: &str) {
        self.text.push_str(t);
    }
    /// A token the target may start with.
    fn token(&mut self, t: &str) {
        if std::mem::take(&mut self.mark_next) {
            let line = self.text.matches('\n').count() + 1;
            let col = self.text.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            self.at = Some((line, col));
        }
        self.text.push_str(t);
    }
    fn indent(&mut self, n: usize) {
        self.raw(&" ".repeat(n));
    }
}

fn inline(y: &Y) -> Option<&'static str> {
    match y {
        Y::S(v) => Some(v),
        Y::L(items) if items.is_empty() => Some("[]"),
        Y::M(entries) if entries.is_empty() => Some("{}"),
        _ => None,
    }
}

/// After `key:`.
fn entry_value(y: &Y, indent: usize, out: &mut Out) {
    if let Y::Target(inner) = y {
        out.mark_next = true;
        return entry_value(inner, indent, out);
    }
    if let Some(v) = inline(y) {
        out.raw(" ");
        out.token(v);
        out.raw("\n");
        return;
    }
    out.raw("\n");
    match y {
        Y::L(items) => {
            for item in items {
                out.indent(indent + 2);
                list_item(item, indent + 2, out);
            }
        }
        Y::M(entries) => map(entries, indent + 2, out, false),
        _ => unreachable!(),
    }
}

/// At `indent`, after the indentation.
fn list_item(y: &Y, indent: usize, out: &mut Out) {
    out.token("-");
    let y = match y {
        Y::Target(inner) => {
            out.mark_next = true;
            inner
        }
        y => y,
    };
    if let Some(v) = inline(y) {
        out.raw(" ");
        out.token(v);
        out.raw("\n");
        return;
    }
    match y {
        Y::M(entries) => {
            out.raw(" ");
            map(entries, indent + 2, out, true);
        }
        Y::L(items) => {
            out.raw("\n");
            for item in items {
                out.indent(indent + 2);
                list_item(item, indent + 2, out);
            }
        }
        _ => unreachable!(),
    }
}

fn map(entries: &[(String, Y)], indent: usize, out: &mut Out, first_inline: bool) {
    for (i, (k, v)) in entries.iter().enumerate() {
        if i > 0 || !first_inline {
            out.indent(indent);
        }
        out.token(k);
        out.raw(":");
        entry_value(v, indent, out);
    }
}

/// The base config with `pattern` set to `value`: the text and where the value is.
fn doc(pattern: &str, value: &Y) -> (String, (usize, usize)) {
    let mut y = base();
    set(&mut y, &segments(pattern), Y::Target(Box::new(value.clone())));
    let Y::M(entries) = &y else { unreachable!() };
    let mut out = Out::default();
    map(entries, 0, &mut out, false);
    let at = out.at.unwrap_or_else(|| panic!("{pattern}: target not rendered:\n{}", out.text));
    (out.text, at)
}

/// What one kind accepts and refuses.
struct Samples {
    /// What the message says was expected.
    expected: String,
    /// Values of the wrong type, each with what the message says was found.
    wrong: Vec<(Y, &'static str)>,
    /// Values of the right type that our deserializers refuse, each with a
    /// fragment of the message (which keeps its words and gains the key).
    refused: Vec<(Y, &'static str)>,
    right: Vec<Y>,
}

const A_LIST: (&str, &str) = ("[1]", "a list");
const A_MAPPING: (&str, &str) = ("{a: 1}", "a mapping");

fn block_list() -> (Y, &'static str) {
    (Y::L(vec![s("1"), s("2")]), "a list")
}

fn block_map() -> (Y, &'static str) {
    (m(&[("a", s("1"))]), "a mapping")
}

/// Flow and block lists and mappings: wrong for every scalar kind.
fn not_scalars() -> Vec<(Y, &'static str)> {
    vec![(s(A_LIST.0), A_LIST.1), (s(A_MAPPING.0), A_MAPPING.1), block_list(), block_map()]
}

fn samples(pattern: &str, kind: Kind) -> Samples {
    let text_like = |expected: &str, refused: Vec<(Y, &'static str)>, right: Vec<Y>| Samples {
        expected: expected.into(),
        wrong: not_scalars(),
        refused,
        right,
    };
    match kind {
        Kind::Whole => Samples {
            expected: "a whole number (0 or more)".into(),
            wrong: [
                vec![(s("many"), "\"many\""), (s("-1"), "\"-1\""), (s("1.50"), "\"1.50\"")],
                vec![(s("true"), "\"true\""), (s("'x y'"), "\"x y\"")],
                not_scalars(),
            ]
            .concat(),
            refused: vec![],
            right: vec![s("0"), s("3"), s("'7'")],
        },
        Kind::Bool => Samples {
            expected: "true or false".into(),
            wrong: [
                vec![(s("maybe"), "\"maybe\""), (s("yes please"), "\"yes please\"")],
                not_scalars(),
            ]
            .concat(),
            refused: vec![],
            right: vec![s("true"), s("false")],
        },
        Kind::Duration => Samples {
            expected: "a duration like 500ms, 5s, 2m, 1h or 1d".into(),
            wrong: not_scalars(),
            refused: vec![
                (s("soon"), "invalid duration \"soon\""),
                (s("-1s"), "invalid duration \"-1s\""),
            ],
            right: vec![s("500ms"), s("5s"), s("2m"), s("1h"), s("1d"), s("30"), s("1.5")],
        },
        Kind::Text => text_like("text", vec![], vec![s("abc"), s("5"), s("'quoted'")]),
        Kind::Path => text_like("a file path", vec![], vec![s("/tmp/x")]),
        Kind::Url => text_like(
            "an http:// or https:// URL",
            vec![(s("ftp://x/"), "invalid URL \"ftp://x/\"")],
            vec![s("http://127.0.0.1:1/")],
        ),
        Kind::SecretUrl => text_like(
            "an http:// or https:// URL",
            vec![(s("ftp://sekrit/"), "invalid URL (not quoted: it is a secret)")],
            vec![s("https://hooks.example/x")],
        ),
        Kind::Unit => text_like(
            "a systemd unit name like nginx.service",
            vec![(s("'a b'"), "invalid unit name \"a b\""), (s("-a"), "invalid unit name")],
            vec![s("a.service")],
        ),
        Kind::Regex => text_like(
            "a regular expression",
            vec![(s("'(('"), "invalid regex \"((\"")],
            vec![s("'a.*b'")],
        ),
        Kind::Method => text_like(
            "an HTTP method like GET or HEAD",
            vec![(s("BREW"), "invalid method \"BREW\"")],
            vec![s("head"), s("POST")],
        ),
        Kind::Address => Samples {
            expected: "a port number or \"host:port\"".into(),
            wrong: [vec![(s("true"), "\"true\""), (s("1.5"), "\"1.5\"")], not_scalars()].concat(),
            refused: vec![
                (s("0"), "invalid port 0: expected 1-65535"),
                (s("70000"), "invalid port 70000"),
                (s("nohost"), "invalid address \"nohost\""),
            ],
            right: vec![s("80"), s("'6380'"), s("'h:1'"), s("'[::1]:22'")],
        },
        Kind::Status => Samples {
            expected: "a status code like 200, a list of codes, or a class like \"2xx\"".into(),
            wrong: vec![(s("true"), "\"true\""), (s(A_MAPPING.0), A_MAPPING.1), block_map()],
            refused: vec![
                (s("99"), "invalid HTTP status 99: expected 100-599"),
                (s("'6xx'"), "invalid expect_status \"6xx\""),
                (s("[]"), "expected at least one status code, found an empty list"),
            ],
            right: vec![s("200"), s("'2xx'"), s("[200, 204]")],
        },
        Kind::StatusCode => Samples {
            expected: "a status code like 200".into(),
            wrong: [vec![(s("a"), "\"a\"")], not_scalars()].concat(),
            refused: vec![(s("600"), "invalid HTTP status 600")],
            right: vec![s("204")],
        },
        Kind::OneOf(words) => Samples {
            expected: crate::config::schema::one_of(words),
            wrong: vec![
                (s("pager"), "\"pager\""),
                (s(A_LIST.0), A_LIST.1),
                (s(A_MAPPING.0), A_MAPPING.1),
                block_list(),
            ],
            refused: vec![],
            right: words.iter().map(|w| Y::S(w)).collect(),
        },
        Kind::List => {
            let entry = format!("{pattern}[]");
            let entry_kind = rows().iter().find(|(p, _)| *p == entry).map(|(_, k)| *k);
            let entry_kind = entry_kind.unwrap_or_else(|| panic!("{pattern}: no row {entry}"));
            // A list of structs is right in the base already.
            let right = match samples(&entry, entry_kind).right.first() {
                Some(one) => vec![Y::L(vec![one.clone()]), Y::L(vec![one.clone(), one.clone()])],
                None => vec![],
            };
            Samples {
                expected: "a list".into(),
                wrong: vec![(s("foo"), "\"foo\""), (s(A_MAPPING.0), A_MAPPING.1), block_map()],
                refused: vec![],
                right,
            }
        }
        Kind::Struct => Samples {
            expected: "a mapping of `key: value` lines".into(),
            wrong: vec![(s("x"), "\"x\""), (s(A_LIST.0), A_LIST.1), block_list()],
            refused: vec![],
            // The base holds every struct: right as it is.
            right: vec![],
        },
        Kind::ServerName => text_like(
            "a DNS name or an IP address",
            vec![(s("'a b'"), "\"a b\"")],
            vec![s("api.example.com"), s("127.0.0.1")],
        ),
        Kind::Pointers => Samples {
            expected: "a mapping of JSON pointers to values, like \"/status\": ok".into(),
            wrong: vec![(s("ok"), "\"ok\""), (s(A_LIST.0), A_LIST.1), block_list()],
            refused: vec![],
            right: vec![m(&[("'/status'", s("ok"))])],
        },
        Kind::CheckType => samples(pattern, Kind::OneOf(crate::config::raw::CheckKind::names())),
        Kind::Owned(t) => owned_samples(t),
        Kind::Headers => Samples {
            expected: "a mapping of `Header-Name: value` lines".into(),
            wrong: vec![
                (s("'Bearer sekrit'"), "text (not shown: it may be a secret)"),
                (s(A_LIST.0), A_LIST.1),
                block_list(),
            ],
            refused: vec![],
            right: vec![s("{X-A: b}"), m(&[("Authorization", s("Bearer x"))])],
        },
    }
}

/// The keys of owned kinds (`probe::owned`), typed by the validator.
fn owned_samples(t: KeyType) -> Samples {
    let wrong = |scalars: Vec<(Y, &'static str)>| [scalars, not_scalars()].concat();
    let (wrong, right) = match t {
        KeyType::Number => (
            wrong(vec![(s("lots"), "\"lots\""), (s("true"), "\"true\""), (s("'-5'"), "\"-5\"")]),
            vec![s("80"), s("'80%'"), s("1.5")],
        ),
        KeyType::Count => {
            (wrong(vec![(s("0"), "\"0\""), (s("many"), "\"many\"")]), vec![s("1"), s("3")])
        }
        KeyType::Bool => (wrong(vec![(s("maybe"), "\"maybe\"")]), vec![s("true"), s("false")]),
        KeyType::Duration => {
            (wrong(vec![(s("soon"), "\"soon\"")]), vec![s("5s"), s("1d"), s("30")])
        }
        KeyType::Path => (wrong(vec![(s("''"), "\"\"")]), vec![s("/tmp/x")]),
        KeyType::Size => (
            wrong(vec![(s("lots"), "\"lots\""), (s("12 parsecs"), "\"12 parsecs\"")]),
            vec![s("512MB"), s("'1.5GiB'"), s("1000")],
        ),
        KeyType::OneOf(words) => (
            wrong(vec![(s("zz_unknown"), "\"zz_unknown\"")]),
            words.iter().map(|w| Y::S(w)).collect(),
        ),
    };
    Samples { expected: t.expected(), wrong, refused: vec![], right }
}

/// Words of Rust, not of the user's file.
fn rust_words(msg: &str) -> Vec<&str> {
    const RUST: &[&str] = &[
        "u8", "u16", "u32", "u64", "u128", "usize", "i8", "i16", "i32", "i64", "isize", "f32",
        "f64", "bool", "map", "seq", "sequence", "string", "scalar", "option", "vec", "struct",
        "enum", "variant", "tagged", "newtype",
    ];
    msg.split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|w| RUST.iter().any(|r| r.eq_ignore_ascii_case(w)))
        .collect()
}

fn problems(text: &str) -> Vec<String> {
    match parse(text, Path::new("m.yml")) {
        Ok(_) => vec![],
        Err(problems) => problems,
    }
}

#[test]
fn every_key_refuses_wrong_types_in_words_at_the_value() {
    let mut failures = Vec::new();
    let mut cases = 0;
    for (pattern, kind) in rows() {
        let want = samples(pattern, *kind);
        for (value, found) in &want.wrong {
            cases += 1;
            let (text, (line, col)) = doc(pattern, value);
            let expected = format!(
                "m.yml:{line}:{col}: {}: expected {}, found {found}",
                concrete(pattern),
                want.expected
            );
            let mut got = problems(&text);
            if matches!(kind, Kind::Owned(_)) {
                // Typed by the validator, which also judges the rest of the
                // base document: only the messages about this key count.
                got.retain(|m| m.contains(&concrete(pattern)));
            }
            if got != [expected.clone()] {
                failures.push(format!("{pattern} = {value:?}\n  want {expected}\n  got  {got:?}"));
            }
            for msg in &got {
                let rust = rust_words(msg);
                assert!(rust.is_empty(), "{rust:?} in {msg}");
            }
        }
    }
    assert!(failures.is_empty(), "{} of {cases}:\n{}", failures.len(), failures.join("\n"));
    assert!(cases > 3 * rows().len(), "{cases}");
}

#[test]
fn our_own_value_errors_keep_their_words_and_gain_the_key() {
    let mut failures = Vec::new();
    for (pattern, kind) in rows() {
        for (value, fragment) in samples(pattern, *kind).refused {
            let (text, (line, col)) = doc(pattern, &value);
            let prefix = format!("m.yml:{line}:{col}: {}: ", concrete(pattern));
            let got = problems(&text);
            let ok = matches!(got.as_slice(), [one] if one.starts_with(&prefix) && one.contains(fragment));
            if !ok {
                failures.push(format!(
                    "{pattern} = {value:?}\n  want {prefix}…{fragment}…\n  got  {got:?}"
                ));
            }
            if matches!(kind, Kind::SecretUrl) {
                assert!(!got.concat().contains("sekrit"), "a secret quoted: {got:?}");
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_key_accepts_right_values() {
    for (pattern, kind) in rows() {
        for value in samples(pattern, *kind).right {
            let (text, _) = doc(pattern, &value);
            let raw = serde_saphyr::from_str::<RawConfig>(&text);
            assert!(raw.is_ok(), "{pattern} = {value:?} refused:\n{text}\n{:?}", problems(&text));
        }
    }
    let (text, _) = doc("heal", &m(&[]));
    assert!(serde_saphyr::from_str::<RawConfig>(&text).is_ok(), "the base is refused:\n{text}");
}

/// serde's own list of a struct's keys, from the error for an unknown one.
fn serde_keys(struct_pattern: &str) -> Vec<&'static str> {
    let pattern = if struct_pattern.is_empty() {
        "zz_unknown".into()
    } else {
        format!("{struct_pattern}.zz_unknown")
    };
    let (text, _) = doc(&pattern, &s("1"));
    match serde_saphyr::from_str::<RawConfig>(&text) {
        Err(e) => match e.without_snippet() {
            YamlError::SerdeUnknownField { expected, .. } => expected.clone(),
            other => panic!("{pattern}: {other:?}"),
        },
        Ok(_) => panic!("{pattern}: an unknown key accepted"),
    }
}

#[test]
fn the_rows_under_every_struct_are_the_keys_serde_knows() {
    let structs = std::iter::once("")
        .chain(rows().iter().filter(|(_, k)| *k == Kind::Struct).map(|(p, _)| *p));
    for prefix in structs {
        let mut keys: Vec<&str> = rows()
            .iter()
            .filter_map(|(p, _)| {
                if prefix.is_empty() { Some(*p) } else { p.strip_prefix(prefix)?.strip_prefix('.') }
            })
            .filter(|rest| !rest.contains(['.', '[']))
            .collect();
        let mut known = serde_keys(prefix);
        keys.sort_unstable();
        known.sort_unstable();
        assert_eq!(keys, known, "rows under {prefix:?} (left) against raw.rs (right)");
    }
}

#[test]
fn the_words_of_each_choice_are_the_ones_serde_knows() {
    for (pattern, kind) in rows() {
        let words = match kind {
            Kind::OneOf(words) => *words,
            Kind::CheckType => crate::config::raw::CheckKind::names(),
            _ => continue,
        };
        let (text, _) = doc(pattern, &s("zz_unknown"));
        let e = serde_saphyr::from_str::<RawConfig>(&text).expect_err(pattern);
        match e.without_snippet() {
            YamlError::SerdeUnknownVariant { expected, .. } => {
                assert_eq!(expected, words, "{pattern}")
            }
            other => panic!("{pattern}: {other:?}"),
        }
    }
}

/// Written by hand: flow style, block lists, nothing, the top level, the
/// samples of the issue.
#[test]
fn hand_written_documents() {
    let svc = "services:\n  - name: a\n    port: 1\n";
    let cases: Vec<(String, &str)> = vec![
        (format!("workers: many\n{svc}"), "m.yml:1:10: workers: expected a whole number (0 or more), found \"many\""),
        (
            format!("heal:\n  enabled: yes please\n{svc}"),
            "m.yml:2:12: heal.enabled: expected true or false, found \"yes please\"",
        ),
        (
            format!("interval: [1]\n{svc}"),
            "m.yml:1:11: interval: expected a duration like 500ms, 5s, 2m, 1h or 1d, found a list",
        ),
        (format!("history: {{a: 1}}\n{svc}"), "m.yml:1:10: history: expected a whole number (0 or more), found a mapping"),
        (format!("cors_origins: foo\n{svc}"), "m.yml:1:15: cors_origins: expected a list, found \"foo\""),
        // Flow style all the way down.
        (
            "services: [{name: a, port: [1]}]\n".into(),
            "m.yml:1:28: services[0].port: expected a port number or \"host:port\", found a list",
        ),
        (
            "services: [{name: a, checks: [{type: tcp, address: 'h:1', timeout: {a: 1}}]}]\n".into(),
            "m.yml:1:68: services[0].checks[0].timeout: expected a duration like 500ms, 5s, 2m, 1h or 1d, found a mapping",
        ),
        (
            "services:\n  - name: a\n    port: 1\n    checks:\n      - {type: command, argv: x}\n".into(),
            "m.yml:5:31: services[0].checks[0].argv: expected a list, found \"x\"",
        ),
        // The second service, the second check.
        (
            format!("{svc}  - name: b\n    checks:\n      - type: tcp\n        address: h:1\n      - type: http\n        url: http://x/\n        follow_redirects: sometimes\n"),
            "m.yml:10:27: services[1].checks[1].follow_redirects: expected true or false, found \"sometimes\"",
        ),
        // A block list where a scalar belongs: at its first `-`.
        (
            format!("heal:\n  grace:\n    - 1s\n    - 2s\n{svc}"),
            "m.yml:3:5: heal.grace: expected a duration like 500ms, 5s, 2m, 1h or 1d, found a list",
        ),
        // Nothing where something is required.
        ("services:\n".into(), "m.yml:1:9: services: expected a list, found nothing"),
        ("services:\n  - name:\n    port: 1\n".into(), "m.yml:2:9: services[0].name: expected text, found nothing"),
        (format!("cors_origins: [~]\n{svc}"), "m.yml:1:16: cors_origins[0]: expected text, found nothing"),
        // The top level.
        ("- a\n- b\n".into(), "m.yml:1:1: top level: expected a mapping of `key: value` lines, found a list"),
        // An anchored value, a block scalar, a long value.
        (
            format!("heal:\n  enabled: &e yes please\n{svc}"),
            "m.yml:2:15: heal.enabled: expected true or false, found \"yes please\"",
        ),
        (
            format!("heal:\n  enabled: |\n    one\n    two\n{svc}"),
            "m.yml:3:5: heal.enabled: expected true or false, found \"one\\ntwo\\n\"",
        ),
        (
            format!("workers: {}\n{svc}", "x".repeat(100)),
            "m.yml:1:10: workers: expected a whole number (0 or more), found \"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx…\"",
        ),
        // Too big for its type: say the range.
        (
            format!("heal:\n  after_failures: 99999999999\n{svc}"),
            "m.yml:2:19: heal.after_failures: expected a whole number from 0 to 4294967295, found \"99999999999\"",
        ),
        // A mapping where a word of a choice belongs.
        (
            "services:\n  - name: a\n    checks:\n      - type: {http: x}\n".into(),
            // The words are every kind's, the built-in ones first.
            Box::leak(
                format!(
                    "m.yml:4:15: services[0].checks[0].type: expected {}, found a mapping",
                    crate::config::schema::one_of(crate::config::raw::CheckKind::names())
                )
                .into_boxed_str(),
            ),
        ),
        // A webhook URL out of place is not echoed past its host.
        (
            format!("notify:\n  - https://hooks.slack.com/services/T0/B0/XSECRETX\n{svc}"),
            "m.yml:2:5: notify[0]: expected a mapping of `key: value` lines, found \"https://hooks.slack.com/…\"",
        ),
        (
            format!("notify:\n  - http://user:XSECRETX@hook.example\n{svc}"),
            "m.yml:2:5: notify[0]: expected a mapping of `key: value` lines, found \"http://hook.example\"",
        ),
        // A key that holds a line break (a flow mapping cut by a stray
        // line, found by the fuzzer): escaped, the error stays one line.
        (
            "services:\n  - name: a\n    checks:\n      - { type: command, argv: [true] }\n      - { t\n\nhistory: 5s, argv: [x] }\n".into(),
            "m.yml:5:11: unknown key `t\\nhistory`: expected one of type, timeout, degraded_after, url, method, expect_status, body_contains, headers, follow_redirects, body_regex, json, address, cert_warn, cert_crit, ca_file, server_name, unit, match, min, max, argv, period, grace, token_file, path, warn, crit, inodes_warn, inodes_crit, read_only_ok, full_warn, forecast_window, for, swap_warn, swap_crit, window, resource, full, max_rss, max_cpu",
        ),
        // A header name that needs quoting is quoted in the key.
        (
            "services:\n  - name: a\n    checks:\n      - type: http\n        url: http://x/\n        headers: {'X A': [1]}\n".into(),
            "m.yml:6:26: services[0].checks[0].headers.\"X A\": expected text, found a list",
        ),
    ];
    for (text, want) in cases {
        assert_eq!(problems(&text), [want], "{text}");
    }
}

#[test]
fn other_errors_keep_the_crates_words() {
    let svc = "services:\n  - name: a\n    port: 1\n";
    let unknown = problems(&format!("{svc}    urll: x\n"));
    assert!(
        matches!(unknown.as_slice(), [one] if one.starts_with("m.yml:4:5: ") && one.contains("urll")),
        "{unknown:?}"
    );
    let missing = problems("services:\n  - port: 1\n");
    assert!(
        matches!(missing.as_slice(), [one] if one.starts_with("m.yml:2:") && one.contains("name")),
        "{missing:?}"
    );
    let syntax = problems("services:\n  - name: a\n    port: [80\n");
    assert!(matches!(syntax.as_slice(), [one] if one.starts_with("m.yml:")), "{syntax:?}");
}
