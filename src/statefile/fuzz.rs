//! Property tests: The state file loader: garbage moved aside, never a panic.

use crate::statefile;
use crate::testing::cases;
use proptest::prelude::*;

fn state_json() -> impl Strategy<Value = String> {
    let piece = prop::sample::select(vec![
        "{",
        "}",
        "[",
        "]",
        ",",
        ":",
        "\"schema\"",
        "\"services\"",
        "\"undelivered\"",
        "\"A\"",
        "\"status\"",
        "\"up\"",
        "\"down\"",
        "\"since\"",
        "\"2026-11-28T06:30:00Z\"",
        "\"2026-13-28T06:30:00Z\"",
        "\"consecutive_failures\"",
        "\"restarts\"",
        "\"at\"",
        "\"ok\"",
        "\"detail\"",
        "\"history\"",
        "\"latency_ms\"",
        "\"muted_until\"",
        "\"heal_suspended\"",
        "\"push\"",
        "\"first_seen\"",
        "\"last\"",
        "\"last_ok\"",
        "\"pings\"",
        "\"message\"",
        "\"exit_code\"",
        "1",
        "2",
        "-1",
        "4294967296",
        "1e400",
        "0.5",
        "true",
        "null",
        "\"\\ud800\"",
    ]);
    prop_oneof![
        4 => prop::collection::vec(piece, 0..40).prop_map(|v| v.concat()),
        1 => Just(r#"{"schema":1,"services":{"A":{"status":"down","consecutive_failures":3,"restarts":[{"at":"2026-11-28T06:30:00Z","ok":true,"detail":"x"}],"history":[{"at":"2026-11-28T06:30:00Z","status":"up","latency_ms":1.5}]}}}"#.to_string()),
        1 => Just(r#"{"schema":1,"services":{"backup":{"push":{"first_seen":"2026-11-28T06:30:00Z","last":{"at":"2026-11-28T06:31:00Z","ok":false,"message":"disk full","exit_code":3},"last_ok":null,"pings":7}}}}"#.to_string()),
    ]
}

proptest! {
    #![proptest_config(cases(1))]

    #[test]
    fn statefile_parse_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let _ = statefile::parse(&bytes);
    }

    #[test]
    fn statefile_parse_jsonish(text in state_json()) {
        if let Ok(s) = statefile::parse(text.as_bytes()) {
            prop_assert_eq!(s.schema, statefile::SCHEMA);
            // What parsed saves and parses back to the same state.
            let bytes = serde_json::to_vec(&s).expect("serialise");
            prop_assert_eq!(statefile::parse(&bytes).ok(), Some(s));
        }
    }
}

proptest! {
    // Each corrupt case logs a warning line on stderr (not captured by the
    // test harness): fewer cases keep `make test` readable.
    #![proptest_config(cases(8))]

    /// A corrupt file is moved aside and the run starts fresh.
    #[test]
    fn statefile_load_recovers(
        bytes in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..200),
            state_json().prop_map(String::into_bytes),
        ]
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state.json");
        std::fs::write(&path, &bytes).expect("write");
        let loaded = statefile::load(&path).expect("a regular file loads");
        match statefile::parse(&bytes) {
            Ok(s) => {
                prop_assert_eq!(loaded, s);
                prop_assert!(path.exists(), "a good state file was moved");
            }
            Err(_) => {
                prop_assert_eq!(loaded.schema, statefile::SCHEMA);
                prop_assert!(loaded.services.is_empty() && loaded.undelivered.is_empty());
                prop_assert!(!path.exists(), "the corrupt file is still in place");
                let aside: Vec<_> = std::fs::read_dir(dir.path())
                    .expect("read_dir")
                    .flatten()
                    .filter(|e| e.file_name().to_string_lossy().starts_with("state.json.corrupt-"))
                    .collect();
                prop_assert_eq!(aside.len(), 1);
                prop_assert_eq!(std::fs::read(aside[0].path()).expect("read aside"), bytes);
                // And the fresh state saves over it.
                prop_assert!(statefile::save(&path, &loaded).is_ok());
                prop_assert_eq!(statefile::load(&path).expect("loads"), loaded);
            }
        }
    }
}
