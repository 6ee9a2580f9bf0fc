//! Property tests: Nagios plugin output: never a panic, perfdata parsed.

use crate::probe::command::parse_plugin_output;
use crate::testing::cases;
use proptest::prelude::*;

fn plugin_output() -> impl Strategy<Value = String> {
    let label = prop_oneof![
        "[a-z/_ ]{0,8}",
        Just("'my disk'".to_string()),
        Just("'it''s'".to_string()),
        Just("'unterminated".to_string()),
        Just("".to_string()),
    ];
    let value = prop_oneof![
        "-?[0-9]{1,6}(\\.[0-9]{1,3})?",
        Just("1e999".to_string()),
        Just("-1e999".to_string()),
        Just("NaN".to_string()),
        Just("inf".to_string()),
        Just("1e-400".to_string()),
        Just("+.e".to_string()),
        Just("U".to_string()),
        "[0-9eE+.-]{0,6}",
    ];
    let uom = prop::sample::select(vec!["", "s", "ms", "%", "B", "KB", "MB", "c", "errors"]);
    let item = (label, value, uom, "(;[0-9.~@:-]{0,4}){0,4}")
        .prop_map(|(l, v, u, t)| format!("{l}={v}{u}{t}"));
    let perf = prop::collection::vec(item, 0..6).prop_map(|v| v.join(" "));
    let text = "\\PC{0,40}";
    prop_oneof![
        3 => (text, perf.clone(), prop::collection::vec((text, prop::option::of(perf)), 0..3))
            .prop_map(|(s, p, rest)| {
                let mut out = format!("{s} | {p}");
                for (t, p) in rest {
                    out.push('\n');
                    out.push_str(&t);
                    if let Some(p) = p {
                        out.push_str(" | ");
                        out.push_str(&p);
                    }
                }
                out
            }),
        1 => "(?s).{0,120}",
        1 => "[|=;' \n\r\t\u{0}a1.eE-]{0,60}",
    ]
}

proptest! {
    #![proptest_config(cases(1))]

    #[test]
    fn plugin_output_parses_safely(text in plugin_output()) {
        let o = parse_plugin_output(&text);
        prop_assert!(!o.summary.contains(['\n', '\r']), "{:?}", o.summary);
        prop_assert!(o.summary.chars().count() <= 201);
        prop_assert!(o.perfdata.len() <= 100);
        for p in &o.perfdata {
            prop_assert!(p.value.is_finite(), "{:?} from {:?}", p, text);
            prop_assert!(!p.label.is_empty());
        }
    }
}
