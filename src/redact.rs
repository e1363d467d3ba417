//! Redaction of secret values in text tomo did not write: what containers
//! log (`engine` masks `app_logs` with it) and what servers answer (apply
//! redacts every Docker error with the secrets of its plan, and the Docker
//! client its retry warnings, before anything is printed, logged, journalled
//! or returned). Pure: the caller reveals the values.
//!
//! **What is masked:** every secret value of at least `MIN_LEN` bytes, as
//! written and in its common encodings: base64 (standard and URL-safe, with
//! and without padding, alone or at any of the three alignments inside a
//! longer base64 stream, where the one or two characters at each end that
//! mix in neighbouring bytes stay visible), hex (lower and upper case), and
//! percent-encoding (unreserved characters kept or every byte encoded, hex
//! digits in either case; `+` for spaces as in forms).
//!
//! **What cannot be masked:** a value transformed in any other way: reversed,
//! spaced out, split across lines or log entries, re-cased, compressed,
//! hashed, encrypted, or encoded twice. A container or server that means to
//! reveal a secret it holds can always do so; masking catches accidents and
//! plain echoes, it is not a boundary. Who may change what a container runs
//! (image, command) is who can read its secrets; `engine::guard` keeps the
//! secrets' destinations an admin's decision.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};

/// Shorter values are not masked (they would mask ordinary text).
pub const MIN_LEN: usize = 4;

/// Shorter fragments of a value inside a longer base64 stream are not masked.
const MIN_FRAGMENT: usize = 6;

/// The text to replace a secret with.
pub const MASK: &str = "***";

/// Masks a set of secret values (never printed: `Debug` shows a count).
#[derive(Default)]
pub struct Redactor {
    /// Every form of every value, longest first.
    needles: Vec<String>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Redactor({} forms)", self.needles.len())
    }
}

impl Redactor {
    pub fn new<'a>(values: impl IntoIterator<Item = &'a str>) -> Redactor {
        let mut needles: Vec<String> =
            values.into_iter().filter(|v| v.len() >= MIN_LEN).flat_map(|v| forms(v.as_bytes())).collect();
        needles.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        needles.dedup();
        Redactor { needles }
    }

    /// Whether there is nothing to mask.
    pub fn is_empty(&self) -> bool {
        self.needles.is_empty()
    }

    /// `text` with every form of every value replaced by `***`.
    pub fn apply(&self, text: &str) -> String {
        let mut out = text.to_string();
        for n in &self.needles {
            if out.contains(n.as_str()) {
                out = out.replace(n.as_str(), MASK);
            }
        }
        out
    }
}

/// The forms of one value that are masked.
fn forms(v: &[u8]) -> Vec<String> {
    let mut out = vec![String::from_utf8_lossy(v).into_owned()];
    for engine in [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD] {
        out.push(engine.encode(v));
    }
    for engine in [&STANDARD_NO_PAD, &URL_SAFE_NO_PAD] {
        for offset in 0..3 {
            out.extend(base64_fragment(engine, v, offset));
        }
    }
    let hex: String = v.iter().map(|b| format!("{b:02x}")).collect();
    out.push(hex.to_ascii_uppercase());
    out.push(hex);
    for upper in [true, false] {
        let pct = |b: u8| if upper { format!("%{b:02X}") } else { format!("%{b:02x}") };
        let unreserved = |b: u8| b.is_ascii_alphanumeric() || b"-._~".contains(&b);
        out.push(v.iter().map(|&b| if unreserved(b) { (b as char).to_string() } else { pct(b) }).collect());
        out.push(
            v.iter()
                .map(|&b| {
                    if b == b' ' {
                        "+".into()
                    } else if unreserved(b) {
                        (b as char).to_string()
                    } else {
                        pct(b)
                    }
                })
                .collect(),
        );
        out.push(v.iter().map(|&b| pct(b)).collect());
    }
    out
}

/// The characters of the base64 of `v` that depend on `v` alone when `v`
/// starts `offset` bytes into a longer stream (the first and last characters
/// that share bits with neighbouring bytes are left out).
fn base64_fragment(engine: &impl base64::Engine, v: &[u8], offset: usize) -> Option<String> {
    let mut buf = vec![0u8; offset];
    buf.extend_from_slice(v);
    let enc = engine.encode(&buf);
    let first = (8 * offset).div_ceil(6);
    let end = (8 * (offset + v.len())) / 6;
    let fragment = enc.get(first..end)?;
    (fragment.len() >= MIN_FRAGMENT).then(|| fragment.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "p@ss/w0rd+Zq=9!x y";

    fn masked(text: &str) -> String {
        Redactor::new([SECRET, "ab"]).apply(text)
    }

    #[test]
    fn masks_the_value_and_its_common_encodings() {
        let b = SECRET.as_bytes();
        let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
        for shown in [
            SECRET.to_string(),
            STANDARD.encode(b),
            STANDARD_NO_PAD.encode(b),
            URL_SAFE.encode(b),
            URL_SAFE_NO_PAD.encode(b),
            hex.clone(),
            hex.to_uppercase(),
            "p%40ss%2Fw0rd%2BZq%3D9%21x%20y".into(),
            "p%40ss%2fw0rd%2bZq%3d9%21x%20y".into(),
            "p%40ss%2Fw0rd%2BZq%3D9%21x+y".into(),
            b.iter().map(|x| format!("%{x:02X}")).collect(),
        ] {
            let out = masked(&format!("before {shown} after"));
            assert_eq!(out, "before *** after", "{shown}");
        }
    }

    #[test]
    fn masks_the_value_inside_a_longer_base64_stream_at_every_alignment() {
        for prefix in ["", "k", "ke", "key", "key=1"] {
            for suffix in ["", "!", "!!", "!!!"] {
                let stream = STANDARD.encode(format!("{prefix}{SECRET}{suffix}"));
                let out = masked(&stream);
                assert!(out.contains(MASK), "{prefix:?} {suffix:?}: {out}");
                // The value's 24 characters are masked but for at most two at each end.
                assert!(out.len() + 24 - 4 - MASK.len() <= stream.len(), "{out}");
            }
        }
    }

    #[test]
    fn short_values_and_ordinary_text_are_left_alone() {
        assert_eq!(masked("ab abc a-b"), "ab abc a-b");
        assert_eq!(Redactor::new(["abcd"]).apply("xabcdx"), "x***x");
        // What it cannot do: reversed or spaced out values are not recognised.
        let reversed: String = SECRET.chars().rev().collect();
        assert_eq!(masked(&reversed), reversed);
    }
}
