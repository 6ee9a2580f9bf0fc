//! What the property tests beside each parser share: how many cases a
//! property runs, and strategies for values several parsers take.
//!
//! `cargo test` runs each property with a bounded number of cases (the
//! `PROPTEST_CASES` environment variable, else `DEFAULT_CASES`); `make fuzz`
//! runs every `fuzz` module deep in release mode. Inputs are either
//! arbitrary (bytes, strings) or built from the grammar's own pieces, so the
//! interesting paths (nested YAML, percent escapes, perfdata, RFC 3339) are
//! reached often.

use crate::probe::Reason;
use crate::state::Health;
use crate::time::Timestamp;
use proptest::prelude::*;
use proptest::test_runner::Config as PtConfig;

/// Cases per property under a plain `cargo test`.
const DEFAULT_CASES: u32 = 256;

pub fn cases(divisor: u32) -> PtConfig {
    let n = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
        .unwrap_or(DEFAULT_CASES);
    PtConfig {
        cases: (n / divisor).max(16),
        // No regression files written into src/ by a failing run: the
        // failing input is printed, and a fixed bug gets a unit test.
        failure_persistence: None,
        ..PtConfig::default()
    }
}

pub const MIN_TS: i64 = -62_167_219_200_000; // 0000-01-01T00:00:00Z
pub const MAX_TS: i64 = 253_402_300_799_999; // 9999-12-31T23:59:59.999Z

pub fn timestamp() -> impl Strategy<Value = Timestamp> {
    prop_oneof![
        3 => (1_500_000_000_000i64..2_500_000_000_000).prop_map(Timestamp),
        1 => (MIN_TS..=MAX_TS).prop_map(Timestamp),
        1 => (0i64..10_000).prop_map(|s| Timestamp(s * 1000)),
    ]
}

/// Latencies as the product rounds them: tenths of a millisecond.
pub fn tenths() -> impl Strategy<Value = f64> {
    (0u64..100_000_000).prop_map(|n| n as f64 / 10.0)
}

pub fn health() -> impl Strategy<Value = Health> {
    prop::sample::select(vec![Health::Up, Health::Degraded, Health::Down])
}

pub fn reason() -> impl Strategy<Value = Reason> {
    prop::sample::select(Reason::ALL.to_vec())
}
