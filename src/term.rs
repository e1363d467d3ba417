//! The one sanitizer for text that reaches a terminal: control characters
//! (C0, DEL, C1, so ESC and every ANSI sequence) and bidirectional controls
//! (U+202A–U+202E, U+2066–U+2069, U+200E, U+200F, U+061C) are written
//! visibly as `\u{…}`, so text from manifests, proposals or servers can
//! neither drive the terminal nor reorder what a reviewer reads. Lines are
//! never split: `line` escapes line breaks too, `text` keeps `\n` as the
//! only break. Every string shown to a person goes through here.

use std::borrow::Cow;

/// Whether `c` is shown escaped.
fn unsafe_char(c: char, keep_newline: bool) -> bool {
    match c {
        '\n' => !keep_newline,
        '\t' => false,
        '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}' => true,
        '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}' | '\u{61c}' => true,
        _ => false,
    }
}

fn escape(s: &str, keep_newline: bool) -> Cow<'_, str> {
    if !s.chars().any(|c| unsafe_char(c, keep_newline)) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        if unsafe_char(c, keep_newline) {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// One line's worth of text: every control and bidi character escaped, line breaks included.
pub fn line(s: &str) -> Cow<'_, str> {
    escape(s, false)
}

/// At most the first `n` characters of `s` (never cut inside a character:
/// ids and names from manifests and servers may be multibyte).
pub fn head(s: &str, n: usize) -> &str {
    s.char_indices().nth(n).map_or(s, |(i, _)| &s[..i])
}

/// Text of several lines: as `line`, but `\n` stays a line break.
pub fn text(s: &str) -> Cow<'_, str> {
    escape(s, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_control_and_bidi_characters_visibly() {
        assert_eq!(line("a\u{1b}[31mb"), "a\\u{1b}[31mb");
        assert_eq!(line("x\u{202e}gnp.exe"), "x\\u{202e}gnp.exe");
        assert_eq!(
            line("\u{2066}\u{2069}\u{200e}\u{200f}\u{61c}\u{85}\u{7f}\r"),
            "\\u{2066}\\u{2069}\\u{200e}\\u{200f}\\u{61c}\\u{85}\\u{7f}\\u{d}"
        );
        assert_eq!(line("one\ntwo"), "one\\u{a}two");
        assert_eq!(head("€€€€", 2), "€€");
        assert_eq!(head("ab", 12), "ab");
        assert_eq!(head(&"é".repeat(20), 12).chars().count(), 12);
        assert_eq!(text("one\u{202d}\ntwo\t3"), "one\\u{202d}\ntwo\t3");
        assert!(matches!(text("plain ünïcode ✓\n"), Cow::Borrowed(_)));
    }

    #[test]
    fn escaping_twice_changes_nothing_more() {
        let once = text("a\u{202e}\u{1b}b\n").into_owned();
        assert_eq!(text(&once), once);
    }
}
