//! Property tests: JSON assertions and pointers over arbitrary bodies.

use crate::probe::body::Expect;
use crate::probe::body::JsonAssertion;
use crate::probe::body::Pointer;
use crate::probe::body::check_json;
use crate::testing::cases;
use proptest::prelude::*;

/// JSON-ish bodies: valid documents built from pieces, and near misses.
fn json_body() -> impl Strategy<Value = Vec<u8>> {
    let leaf = prop_oneof![
        Just("null".to_string()),
        Just("true".to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|f| f.to_string()),
        Just("18446744073709551616".to_string()),
        Just("1e400".to_string()),
        "\\PC{0,8}".prop_map(|s| format!("{s:?}")),
    ];
    let doc = leaf.prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(|v| format!("[{}]", v.join(","))),
            prop::collection::vec(("[a-z~/]{0,3}", inner), 0..4).prop_map(|v| {
                let members: Vec<String> =
                    v.into_iter().map(|(k, v)| format!("{k:?}:{v}")).collect();
                format!("{{{}}}", members.join(","))
            }),
        ]
    });
    prop_oneof![
        4 => doc.prop_map(String::into_bytes),
        1 => prop::collection::vec(any::<u8>(), 0..100),
    ]
}

fn pointer_text() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            Just("/".to_string()),
            Just("~0".to_string()),
            Just("~1".to_string()),
            Just("~".to_string()),
            Just("0".to_string()),
            Just("01".to_string()),
            Just("-".to_string()),
            "[a-z]{0,2}",
        ],
        0..8,
    )
    .prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(cases(1))]

    /// Pointers from pieces, resolved in JSON-ish bodies under every
    /// operator: a verdict or a one-line detail, never a panic.
    #[test]
    fn json_assertions_never_panic(body in json_body(), pointer in pointer_text(), op in 0usize..8) {
        let Ok(pointer) = Pointer::parse(&pointer) else { return Ok(()) };
        let expect = match op {
            0 => Ok(Expect::Equals(serde_json::json!(1))),
            1 => Ok(Expect::NotEquals(serde_json::json!([1, {"a": null}]))),
            2 => Expect::operator("<", serde_json::json!(1.5)),
            3 => Expect::operator(">=", serde_json::json!(u64::MAX)),
            4 => Expect::operator("exists", serde_json::json!(true)),
            5 => Expect::operator("exists", serde_json::json!(false)),
            6 => Expect::operator("matches", serde_json::json!("^a")),
            _ => Expect::operator("<=", serde_json::json!(-3)),
        };
        let Ok(expect) = expect else { return Ok(()) };
        if let Err(detail) = check_json(&body, false, &[JsonAssertion { pointer, expect }]) {
            prop_assert!(!detail.contains('\n'), "multi-line detail {:?}", detail);
            prop_assert!(detail.chars().count() < 600, "long detail {:?}", detail);
        }
    }
}
