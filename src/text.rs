//! Untrusted text (a job's message, a receiver's answer, a probe's output,
//! a certificate's subject) made safe to show in a log line, an alert or
//! the status: which characters never get through.
//!
//! Used by every module that cleans such text, so they all agree.

/// A character untrusted text must not carry into what we show: a control
/// character (C0, DEL, C1), or an invisible format character that hides
/// text or reorders it on screen — zero-width space, joiners and marks
/// (U+200B–U+200F), bidi embeddings and overrides (U+202A–U+202E, so
/// "gnp.exe" cannot be shown as "exe.png"), the word joiner, invisible
/// operators and bidi isolates (U+2060–U+2069), and the BOM (U+FEFF).
pub fn is_control_or_format(c: char) -> bool {
    c.is_control() || is_format(c)
}

/// The invisible format characters of `is_control_or_format` (not the
/// controls): where controls become a space, these are simply removed.
pub fn is_format(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bidi_and_zero_width_are_caught_ordinary_text_is_not() {
        for c in
            ['\u{202E}', '\u{200B}', '\u{200F}', '\u{202A}', '\u{2060}', '\u{2069}', '\u{FEFF}']
        {
            assert!(is_control_or_format(c) && is_format(c), "{:04X}", u32::from(c));
        }
        for c in ['\n', '\u{1b}', '\u{7f}', '\u{85}'] {
            assert!(is_control_or_format(c) && !is_format(c), "{:04X}", u32::from(c));
        }
        for c in ['a', 'é', '→', '…', '\u{2010}', '\u{2070}', '\u{FEFE}', '\u{202F}', ' '] {
            assert!(!is_control_or_format(c), "{:04X}", u32::from(c));
        }
    }
}
