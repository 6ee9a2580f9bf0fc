//! Property tests: RFC 3339: never a panic, round trip.

use crate::testing::MAX_TS;
use crate::testing::MIN_TS;
use crate::testing::cases;
use crate::time::Timestamp;
use proptest::prelude::*;

fn rfc3339ish() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => (
            "[0-9]{4}", "[0-9]{2}", "[0-9]{2}",
            prop::sample::select(vec!["T", "t", " ", "x"]),
            "[0-9]{2}", "[0-9]{2}", "[0-9]{2}",
            prop::sample::select(vec!["", ".", ".5", ".123", ".123456789", ".1234567890123456789012"]),
            prop::sample::select(vec!["Z", "z", "+00:00", "-05:30", "+99:99", "+0100", "", "Zz", "+é:00"]),
        )
            .prop_map(|(y, mo, d, t, h, mi, s, f, z)| format!("{y}-{mo}-{d}{t}{h}:{mi}:{s}{f}{z}")),
        1 => "\\PC{0,32}",
    ]
}

proptest! {
    #![proptest_config(cases(1))]

    #[test]
    fn timestamp_format_parse_round_trip(ms in MIN_TS..=MAX_TS) {
        let t = Timestamp(ms);
        let text = t.to_string();
        prop_assert_eq!(Timestamp::parse(&text), Some(t), "{}", text);
        // Through serde too (what the status and state files use).
        let json = serde_json::to_string(&t).expect("serialise");
        prop_assert_eq!(serde_json::from_str::<Timestamp>(&json).ok(), Some(t));
    }

    #[test]
    fn timestamp_parse_never_panics(text in rfc3339ish()) {
        if let Some(t) = Timestamp::parse(&text) {
            // Whatever parses formats to a canonical form that parses back to it.
            prop_assert_eq!(Timestamp::parse(&t.to_string()), Some(t), "{:?}", text);
        }
    }
}
