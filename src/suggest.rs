//! "Did you mean …?": the closest of a few known words to a mistyped one,
//! for unknown config keys and service names. Case is ignored first (a
//! service typed in the wrong case is the commonest slip), then an edit
//! distance small enough to be a typo (at most a third of the word).

/// The candidate equal to `word` ignoring case, if exactly one is.
pub fn case_insensitive<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let mut hits = candidates.iter().filter(|c| c.to_lowercase() == word.to_lowercase());
    match (hits.next(), hits.next()) {
        (Some(one), None) => Some(one),
        _ => None,
    }
}

/// The candidate closest to `word` that is plausibly a typo of it.
pub fn closest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    if let Some(c) = case_insensitive(word, candidates) {
        return Some(c);
    }
    let w = word.to_lowercase();
    let limit = (w.chars().count() / 3).max(1);
    candidates
        .iter()
        .map(|c| (distance(&w, &c.to_lowercase()), *c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Levenshtein distance in characters.
pub fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_and_case_are_recognised_and_strangers_are_not() {
        let keys = ["interval", "timeout", "services", "status_file", "state_file"];
        assert_eq!(closest("intervall", &keys), Some("interval"));
        assert_eq!(closest("servces", &keys), Some("services"));
        assert_eq!(closest("Timeout", &keys), Some("timeout"));
        assert_eq!(closest("colour", &keys), None);
        assert_eq!(distance("kitten", "sitting"), 3);
        let names = ["ChatStack", "chatstack", "Host"];
        assert_eq!(case_insensitive("CHATSTACK", &names), None, "ambiguous");
        assert_eq!(case_insensitive("host", &names), Some("Host"));
    }
}
