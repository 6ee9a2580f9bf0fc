//! Redaction: every text of a diagnosis passes `diagnosis.redact` before
//! the diagnosis is stored or sent; each match becomes `[redacted]`.

use super::Diagnosis;
use regex::Regex;

pub const MARK: &str = "[redacted]";

/// `text` with every match of every pattern replaced by `MARK`.
pub fn text(text: &str, patterns: &[Regex]) -> String {
    let mut out = std::borrow::Cow::Borrowed(text);
    for p in patterns {
        if p.is_match(&out) {
            out = std::borrow::Cow::Owned(p.replace_all(&out, MARK).into_owned());
        }
    }
    out.into_owned()
}

/// Redacts every text of `d` in place.
pub fn diagnosis(d: &mut Diagnosis, patterns: &[Regex]) {
    if patterns.is_empty() {
        return;
    }
    let r = |s: &mut String| *s = text(s, patterns);
    if let Some(u) = d.unit.as_mut() {
        for s in [&mut u.name, &mut u.active_state, &mut u.sub_state, &mut u.result] {
            r(s);
        }
        if let Some(sig) = u.exit_signal.as_mut() {
            r(sig);
        }
    }
    d.unit_error.iter_mut().for_each(r);
    d.journal.iter_mut().flatten().for_each(r);
    d.journal_error.iter_mut().for_each(r);
    if let Some(h) = d.http.as_mut() {
        r(&mut h.body);
    }
    d.system.disks_over_warn.iter_mut().for_each(r);
    for p in &mut d.top_memory {
        r(&mut p.name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DiagnosisSettings;

    #[test]
    fn the_default_list_covers_what_the_spec_names() {
        let p = DiagnosisSettings::default().redact;
        let cases = [
            ("login password=hunter2 ok", "login [redacted] ok"),
            ("db_password: hunter2", "db_[redacted]"),
            ("PASSWD=x1", "[redacted]"),
            ("client_secret=abc&x=1", "client_[redacted]&x=1"),
            ("token: \"a b c\" end", "[redacted] end"),
            ("api_key=K1 api-key: K2", "[redacted] [redacted]"),
            ("Authorization: Bearer abc.def", "[redacted]"),
            ("GET / authorization:basic Zm9v\nnext", "GET / [redacted]\nnext"),
            ("nothing to see", "nothing to see"),
        ];
        for (input, want) in cases {
            assert_eq!(text(input, &p), want, "{input}");
        }
    }
}
