//! The one sanitizer for text that reaches a terminal: control characters
//! (C0, DEL, C1, so ESC and every ANSI sequence) and bidirectional controls
//! (U+202A–U+202E, U+2066–U+2069, U+200E, U+200F, U+061C) are written
//! visibly as `\u{…}`, so text from manifests, proposals or servers can
//! neither drive the terminal nor reorder what a reviewer reads. Lines are
//! never split: `line` escapes line breaks too, `text` keeps `\n` as the
//! only break. Lines are bounded: past [`LINE_MAX`] bytes (a value from a
//! server in a table or warning: [`FIELD_MAX`], through `field`) the rest is
//! left out with a marker `…[+K chars]`. `json` makes JSON text safe to
//! print without changing its value. Every string shown to a person goes
//! through here.

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

/// The most bytes a line shown to a person takes, escapes counted: past it
/// (and its marker's room) the rest of the line is left out, with a marker
/// `…[+K chars]`. A server can name things at any length; a terminal shows
/// a bounded line.
pub const LINE_MAX: usize = 2000;

/// The most bytes one value from a server (a name, label, version, OS)
/// takes in a table or a warning, so that the rest of its line is seen.
pub const FIELD_MAX: usize = 200;

/// Room for the marker: a line at most this much over its limit is kept
/// whole, so escaping text twice changes nothing more.
const MARKER_ROOM: usize = 32;

/// The bytes `c` takes once escaped.
fn width(c: char, keep_newline: bool) -> usize {
    if unsafe_char(c, keep_newline) {
        let digits = (32 - (c as u32).leading_zeros()).div_ceil(4).max(1) as usize;
        digits + 4 // `\u{` and `}`
    } else {
        c.len_utf8()
    }
}

fn escape(s: &str, keep_newline: bool, max: usize) -> Cow<'_, str> {
    // Without a character to escape, a line's bytes are its escaped width.
    let long = |l: &str| l.len() > max + MARKER_ROOM;
    let any_long = if keep_newline { s.split('\n').any(long) } else { long(s) };
    if !any_long && !s.chars().any(|c| unsafe_char(c, keep_newline)) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len().min(4 * max) + 16);
    if keep_newline {
        for (i, l) in s.split('\n').enumerate() {
            if i > 0 {
                out.push('\n');
            }
            escape_line(l, keep_newline, max, &mut out);
        }
    } else {
        escape_line(s, keep_newline, max, &mut out);
    }
    Cow::Owned(out)
}

fn escaped_len(l: &str, keep_newline: bool) -> usize {
    l.chars().map(|c| width(c, keep_newline)).sum()
}

/// One line of `s`, escaped; cut at `max` bytes with a marker when it is
/// longer than `max` and the marker's room.
fn escape_line(l: &str, keep_newline: bool, max: usize, out: &mut String) {
    let limit = if escaped_len(l, keep_newline) <= max + MARKER_ROOM { usize::MAX } else { max };
    let mut len = 0;
    for (i, c) in l.chars().enumerate() {
        let w = width(c, keep_newline);
        if len + w > limit {
            out.push_str(&format!("…[+{} chars]", l.chars().count() - i));
            return;
        }
        len += w;
        if unsafe_char(c, keep_newline) {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
}

/// One line's worth of text: every control and bidi character escaped, line
/// breaks included; at most [`LINE_MAX`] bytes and a marker.
pub fn line(s: &str) -> Cow<'_, str> {
    escape(s, false, LINE_MAX)
}

/// One value from a server (a name, label, version, OS, an error's detail)
/// inside a line: as `line`, at most [`FIELD_MAX`] bytes and a marker.
pub fn field(s: &str) -> Cow<'_, str> {
    escape(s, false, FIELD_MAX)
}

/// At most the first `n` characters of `s` (never cut inside a character:
/// ids and names from manifests and servers may be multibyte).
pub fn head(s: &str, n: usize) -> &str {
    s.char_indices().nth(n).map_or(s, |(i, _)| &s[..i])
}

/// Text of several lines: as `line`, but `\n` stays a line break (each
/// line bounded by itself).
pub fn text(s: &str) -> Cow<'_, str> {
    escape(s, true, LINE_MAX)
}

/// JSON text made safe to print: the characters JSON leaves raw but a
/// terminal acts on (DEL, C1, bidi controls) written as `\uXXXX`, which
/// decodes to the very same value. Only for JSON text, where such a
/// character can only stand inside a string (serde escapes C0 itself).
pub fn json(s: &str) -> Cow<'_, str> {
    if !s.chars().any(|c| unsafe_char(c, true)) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        if unsafe_char(c, true) {
            out.push_str(&format!("\\u{:04x}", c as u32));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
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
    fn long_lines_are_cut_with_a_marker() {
        let long = format!("{}\u{1b}", "é".repeat(5000));
        let one = line(&long);
        assert!(one.len() <= LINE_MAX + MARKER_ROOM, "{}", one.len());
        assert!(one.ends_with("…[+4001 chars]"), "{}", &one[one.floor_char_boundary(one.len() - 40)..]);
        assert_eq!(field(&"\u{1b}".repeat(1000)).len(), 198 + "…[+967 chars]".len());
        assert_eq!(line(&"a".repeat(LINE_MAX + MARKER_ROOM)).len(), LINE_MAX + MARKER_ROOM);
        let three = format!("{long}\nshort\n{long}");
        let two = text(&three);
        assert_eq!(two.lines().count(), 3);
        assert_eq!(two.lines().nth(1), Some("short"));
        assert!(two.lines().all(|l| l.len() <= LINE_MAX + MARKER_ROOM));
        assert_eq!(text(&two), two);
    }

    #[test]
    fn json_keeps_its_value_and_loses_its_controls() {
        let v = serde_json::json!({"name": "a\u{9b}b\u{202e}c\u{7f}\u{1b}\n"});
        let printed = serde_json::to_string_pretty(&v).unwrap();
        let safe = json(&printed);
        assert!(safe.chars().all(|c| !unsafe_char(c, true)), "{safe}");
        assert_eq!(serde_json::from_str::<serde_json::Value>(&safe).unwrap(), v);
    }

    #[test]
    fn escaping_twice_changes_nothing_more() {
        let once = text("a\u{202e}\u{1b}b\n").into_owned();
        assert_eq!(text(&once), once);
    }
}
