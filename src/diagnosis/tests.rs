//! The capture's bounds, without children (the fakes are in tests/why.rs).

use super::*;

fn sample(lines: usize, len: usize) -> Diagnosis {
    Diagnosis {
        captured_at: Timestamp(0),
        unit: None,
        unit_error: None,
        oom_kill: false,
        journal: Some((0..lines).map(|i| format!("{i:05} {}", "x".repeat(len))).collect()),
        journal_error: None,
        http: Some(HttpAnswer { status: Some(502), body: "b".repeat(512) }),
        system: SystemDiag::default(),
        top_memory: Vec::new(),
    }
}

#[test]
fn lines_are_cut_and_the_whole_fits_16_kib_keeping_the_newest() {
    let mut d = sample(200, 2000);
    cut_lines(&mut d);
    assert!(d.journal.iter().flatten().all(|l| l.len() <= MAX_LINE));
    fit(&mut d);
    let size = serde_json::to_vec(&d).unwrap().len();
    assert!(size <= MAX_BYTES, "{size}");
    let j = d.journal.as_ref().unwrap();
    assert!(j.len() >= 20, "{}", j.len());
    assert!(j.last().unwrap().starts_with("00199"), "the newest line stays");
}

#[test]
fn a_cut_never_splits_a_character() {
    let mut d = sample(1, 0);
    d.journal = Some(vec!["é".repeat(400)]);
    cut_lines(&mut d);
    assert_eq!(d.journal.unwrap()[0].len(), 512);
    let mut d = sample(1, 0);
    d.journal = Some(vec![format!("a{}", "é".repeat(400))]);
    cut_lines(&mut d);
    assert_eq!(d.journal.unwrap()[0].len(), 511);
}
