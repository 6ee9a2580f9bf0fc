//! Property tests: Durations: never a panic, format and parse round trip.

use crate::config::duration;
use crate::testing::cases;
use proptest::prelude::*;
use std::time::Duration;

fn duration_text() -> impl Strategy<Value = String> {
    let num = prop_oneof![
        (0u64..100_000).prop_map(|n| n.to_string()),
        (0u64..10_000, 0u64..1000).prop_map(|(a, b)| format!("{a}.{b}")),
        "[0-9.]{0,8}",
        Just("1e3".to_string()),
        Just("99999999999999999999".to_string()),
    ];
    let unit =
        prop::sample::select(vec!["", "ms", "s", "m", "h", "d", " s", "S", "µs", "x", "ms "]);
    let space = prop::sample::select(vec!["", " ", "\t"]);
    prop_oneof![
        4 => (space.clone(), num, unit, space).prop_map(|(a, n, u, b)| format!("{a}{n}{u}{b}")),
        1 => "\\PC{0,16}",
    ]
}

proptest! {
    #![proptest_config(cases(1))]

    #[test]
    fn duration_parse_never_panics(text in duration_text()) {
        if let Ok(d) = duration::parse(&text) {
            // Whatever parses is within the documented bound and reads back
            // from its own formatting (to the millisecond we keep).
            prop_assert!(d <= Duration::from_secs(315_360_000));
            let again = duration::parse(&duration::format(d));
            prop_assert_eq!(again.map(|x| x.as_millis()), Ok(d.as_millis()), "{:?}", text);
        }
    }

    #[test]
    fn duration_format_parse_round_trip(ms in 0u64..315_360_000_000) {
        let d = Duration::from_millis(ms);
        let text = duration::format(d);
        prop_assert_eq!(duration::parse(&text), Ok(d), "{}", text);
    }

    #[test]
    fn duration_unit_forms_are_exact(n in 0u64..100_000) {
        prop_assert_eq!(duration::parse(&format!("{n}ms")), Ok(Duration::from_millis(n)));
        prop_assert_eq!(duration::parse(&format!("{n}s")), Ok(Duration::from_secs(n)));
        prop_assert_eq!(duration::parse(&format!("{n}m")), Ok(Duration::from_secs(n * 60)));
        prop_assert_eq!(duration::parse(&n.to_string()), Ok(Duration::from_secs(n)));
    }
}
