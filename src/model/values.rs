//! Small validated value types written as strings in manifests: names,
//! durations, sizes, image references, restart policies.
//!
//! Each `parse` returns the value or a message saying what would be valid; the
//! caller attaches file and position.

use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A name of a server, app, service, volume, network or secret: lowercase
/// letters, digits and '-', 1-63 characters, starting and ending with a letter
/// or digit. Safe to use in container names, labels and shell arguments.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, JsonSchema)]
#[serde(transparent)]
pub struct Name(String);

/// Maps keyed by `Name` can be looked up with a `&str` (same order and hash).
impl std::borrow::Borrow<str> for Name {
    fn borrow(&self) -> &str {
        &self.0
    }
}

pub const NAME_RULE: &str =
    "lowercase letters, digits and '-', 1-63 characters, starting and ending with a letter or digit";

impl Name {
    pub fn parse(s: &str) -> Result<Name, String> {
        if s.is_empty() {
            return Err("a name cannot be empty".into());
        }
        let chars = s.chars().count();
        if chars > 63 {
            let head: String = s.chars().take(20).collect();
            return Err(format!("`{}…` is {chars} characters long; names have at most 63", head.escape_default()));
        }
        if let Some(bad) = s.chars().find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-')) {
            let what = match bad {
                c if c.is_ascii_uppercase() => format!("uppercase `{c}` (write it in lowercase)"),
                ' ' | '\t' => "a space".into(),
                '/' | '.' => format!("`{bad}` (names are not paths)"),
                c => format!("`{}`", c.escape_default()),
            };
            return Err(format!("`{}` contains {what}", s.escape_default()));
        }
        if s.starts_with('-') || s.ends_with('-') {
            return Err(format!("`{s}` starts or ends with '-'"));
        }
        Ok(Name(s.to_string()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Name {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Name::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl FromStr for Name {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Name::parse(s)
    }
}

/// A duration written like `30s`, `5m`, `1h30m` or `500ms`; stored in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct Duration(u64);

pub const DURATION_RULE: &str = "a number and a unit (ms, s, m, h, d), e.g. `30s`, `5m`, `1h30m`";

impl Duration {
    pub const fn from_millis(ms: u64) -> Self {
        Duration(ms)
    }
    pub const fn from_secs(s: u64) -> Self {
        Duration(s * 1000)
    }
    pub fn as_millis(self) -> u64 {
        self.0
    }
    pub fn to_std(self) -> std::time::Duration {
        std::time::Duration::from_millis(self.0)
    }
    pub fn parse(s: &str) -> Result<Duration, String> {
        let t = s.trim();
        if t.is_empty() {
            return Err(format!("empty duration; write {DURATION_RULE}"));
        }
        if t.chars().all(|c| c.is_ascii_digit()) {
            return Err(format!("`{t}` has no unit; write e.g. `{t}s`"));
        }
        let mut total: u64 = 0;
        let mut rest = t;
        while !rest.is_empty() {
            let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
            if digits == 0 {
                return Err(format!("`{t}` is not a duration; write {DURATION_RULE}"));
            }
            let n: u64 = rest[..digits].parse().map_err(|_| format!("`{t}` is too large"))?;
            rest = &rest[digits..];
            let unit_len = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
            let factor = match &rest[..unit_len] {
                "ms" => 1,
                "s" => 1000,
                "m" => 60_000,
                "h" => 3_600_000,
                "d" => 86_400_000,
                u => {
                    return Err(format!("`{t}` has unknown unit `{u}`; write {DURATION_RULE}"));
                }
            };
            rest = &rest[unit_len..];
            total = n
                .checked_mul(factor)
                .and_then(|v| total.checked_add(v))
                .ok_or_else(|| format!("`{t}` is too large"))?;
        }
        Ok(Duration(total))
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0;
        if ms == 0 {
            return f.write_str("0s");
        }
        let mut rest = ms;
        for (unit, size) in [("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)] {
            if rest >= size {
                write!(f, "{}{unit}", rest / size)?;
                rest %= size;
            }
        }
        Ok(())
    }
}

/// A size in bytes, written like `512m`, `2g`, `100k` or a plain number of bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct ByteSize(u64);

pub const SIZE_RULE: &str = "a number with an optional unit (b, k, m, g, t), e.g. `512m`, `2g`";

impl ByteSize {
    pub fn bytes(self) -> u64 {
        self.0
    }
    pub fn parse(s: &str) -> Result<ByteSize, String> {
        let t = s.trim();
        let lower = t.to_ascii_lowercase();
        let digits_end = lower.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(lower.len());
        let (num, unit) = lower.split_at(digits_end);
        let n: f64 = num.parse().map_err(|_| format!("`{t}` is not a size; write {SIZE_RULE}"))?;
        let factor: u64 = match unit.trim() {
            "" | "b" => 1,
            "k" | "kb" | "kib" => 1 << 10,
            "m" | "mb" | "mib" => 1 << 20,
            "g" | "gb" | "gib" => 1 << 30,
            "t" | "tb" | "tib" => 1 << 40,
            u => return Err(format!("`{t}` has unknown unit `{u}`; write {SIZE_RULE}")),
        };
        let bytes = n * factor as f64;
        if !bytes.is_finite() || bytes > u64::MAX as f64 {
            return Err(format!("`{t}` is too large"));
        }
        Ok(ByteSize(bytes as u64))
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        for (unit, size) in [("t", 1u64 << 40), ("g", 1 << 30), ("m", 1 << 20), ("k", 1 << 10)] {
            if b >= size && b.is_multiple_of(size) {
                return write!(f, "{}{unit}", b / size);
            }
        }
        write!(f, "{b}")
    }
}

/// A parsed image reference: `[registry/]repository[:tag][@digest]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub struct ImageRef {
    /// As written, normalised only by adding nothing: what the user declared.
    pub reference: String,
    pub registry: Option<String>,
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

pub const IMAGE_RULE: &str =
    "`[registry/]name[:tag][@sha256:…]` with a lowercase name, e.g. `nginx:1.27` or `ghcr.io/owner/app:v2`";

impl ImageRef {
    pub fn parse(s: &str) -> Result<ImageRef, String> {
        let bad = |why: &str| Err(format!("`{}` is not a valid image reference: {why}", s.escape_default()));
        if s.is_empty() {
            return bad("it is empty");
        }
        if s.len() > 512 {
            return bad("it is too long");
        }
        if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return bad("it contains white space");
        }
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => (r, Some(d)),
            None => (s, None),
        };
        if let Some(d) = digest {
            let Some((algo, hex)) = d.split_once(':') else {
                return bad("the digest must look like `sha256:<64 hex digits>`");
            };
            let algo_ok = !algo.is_empty()
                && algo.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+.-_".contains(c));
            if !algo_ok || hex.len() < 32 || !hex.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()) {
                return bad("the digest must look like `sha256:<64 hex digits>`");
            }
        }
        // A tag is after the last ':' that follows the last '/'.
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
            None => (rest, None),
        };
        if let Some(t) = tag {
            let ok = !t.is_empty()
                && t.len() <= 128
                && t.chars().next().is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
                && t.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
            if !ok {
                return bad("the tag may hold letters, digits, '_', '.' and '-' (at most 128)");
            }
        }
        let mut parts: Vec<&str> = name.split('/').collect();
        let registry = if parts.len() > 1 && (parts[0].contains(['.', ':']) || parts[0] == "localhost") {
            let r = parts.remove(0);
            let (host, port) = match r.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (r, None),
            };
            let host_ok = !host.is_empty() && host.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
            if !host_ok || port.is_some_and(|p| p.parse::<u16>().is_err()) {
                return bad("the registry must be `host[:port]`");
            }
            Some(r.to_string())
        } else {
            None
        };
        for comp in &parts {
            if !valid_path_component(comp) {
                return bad(if comp.chars().any(|c| c.is_ascii_uppercase()) {
                    "repository names must be lowercase"
                } else {
                    "each part of the name is lowercase letters and digits, separated by '.', '_', '__' or '-'"
                });
            }
        }
        Ok(ImageRef {
            reference: s.to_string(),
            registry,
            repository: parts.join("/"),
            tag: tag.map(String::from),
            digest: digest.map(String::from),
        })
    }
}

fn valid_path_component(c: &str) -> bool {
    let b = c.as_bytes();
    if b.is_empty() || !b[0].is_ascii_alphanumeric() || !b[b.len() - 1].is_ascii_alphanumeric() {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        let ch = b[i];
        if ch.is_ascii_lowercase() || ch.is_ascii_digit() {
            i += 1;
            continue;
        }
        // separators: '.', '_', '__', or any run of '-'
        let start = i;
        while i < b.len() && matches!(b[i], b'.' | b'_' | b'-') {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || (!sep.is_empty() && sep.chars().all(|x| x == '-'));
        if !ok || i == b.len() {
            return false;
        }
    }
    true
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reference)
    }
}

/// The container restart policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Restart {
    No,
    Always,
    #[default]
    UnlessStopped,
    OnFailure {
        max_retries: Option<u32>,
    },
}

pub const RESTART_RULE: &str = "`no`, `always`, `unless-stopped` or `on-failure[:N]`";

impl Restart {
    pub fn parse(s: &str) -> Result<Restart, String> {
        match s {
            "no" => Ok(Restart::No),
            "always" => Ok(Restart::Always),
            "unless-stopped" => Ok(Restart::UnlessStopped),
            "on-failure" => Ok(Restart::OnFailure { max_retries: None }),
            other => match other.strip_prefix("on-failure:").map(str::parse::<u32>) {
                Some(Ok(n)) => Ok(Restart::OnFailure { max_retries: Some(n) }),
                _ => Err(format!("`{}` is not a restart policy; write {RESTART_RULE}", other.escape_default())),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(Name::parse("web-1").is_ok());
        assert!(Name::parse("a").is_ok());
        for bad in ["", "Web", "a b", "a/b", "..", "a;rm", "-a", "a-", "$(x)", &"a".repeat(64)] {
            assert!(Name::parse(bad).is_err(), "{bad}");
        }
        assert!(Name::parse("Web").unwrap_err().contains("uppercase"));
    }

    #[test]
    fn multibyte_names_of_every_length_around_the_limits_are_refused_without_panicking() {
        for c in ['é', '€', '😀', 'ß', '\u{301}'] {
            for n in (1..=70).chain([126, 127, 128, 200, 253, 254, 255, 256]) {
                for text in
                    [c.to_string().repeat(n), format!("a{}", c.to_string().repeat(n)), format!("{}a", "b".repeat(n))]
                {
                    let r = std::panic::catch_unwind(|| Name::parse(&text));
                    assert!(r.is_ok(), "Name::parse panicked on {text:?}");
                }
            }
        }
        assert_eq!(
            Name::parse(&"€".repeat(30)).unwrap_err(),
            format!("`{}` contains `\\u{{20ac}}`", "\\u{20ac}".repeat(30))
        );
        assert_eq!(
            Name::parse(&"€".repeat(64)).unwrap_err(),
            format!("`{}…` is 64 characters long; names have at most 63", "\\u{20ac}".repeat(20))
        );
    }

    #[test]
    fn durations() {
        assert_eq!(Duration::parse("30s").unwrap().as_millis(), 30_000);
        assert_eq!(Duration::parse("1h30m").unwrap().as_millis(), 5_400_000);
        assert_eq!(Duration::parse("500ms").unwrap().as_millis(), 500);
        assert_eq!(Duration::parse("1h30m").unwrap().to_string(), "1h30m");
        assert!(Duration::parse("30").unwrap_err().contains("no unit"));
        assert!(Duration::parse("5x").unwrap_err().contains("unknown unit"));
        assert!(Duration::parse("s").is_err());
        assert!(Duration::parse("99999999999999999999d").is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(ByteSize::parse("512m").unwrap().bytes(), 512 << 20);
        assert_eq!(ByteSize::parse("2G").unwrap().bytes(), 2 << 30);
        assert_eq!(ByteSize::parse("1.5g").unwrap().bytes(), 3 << 29);
        assert_eq!(ByteSize::parse("100").unwrap().bytes(), 100);
        assert_eq!(ByteSize::parse("512m").unwrap().to_string(), "512m");
        assert!(ByteSize::parse("lots").is_err());
        assert!(ByteSize::parse("5q").is_err());
    }

    #[test]
    fn images() {
        let i = ImageRef::parse("traefik/whoami:v1.10.3").unwrap();
        assert_eq!((i.registry, i.repository.as_str(), i.tag.as_deref()), (None, "traefik/whoami", Some("v1.10.3")));
        let i = ImageRef::parse("localhost:5000/tomo/app:1").unwrap();
        assert_eq!(i.registry.as_deref(), Some("localhost:5000"));
        assert_eq!(i.tag.as_deref(), Some("1"));
        let d = format!("postgres@sha256:{}", "a".repeat(64));
        assert!(ImageRef::parse(&d).unwrap().digest.is_some());
        assert!(ImageRef::parse("nginx").unwrap().tag.is_none());
        for bad in [
            "",
            "Nginx",
            "nginx:",
            "nginx:bad tag",
            "ngi nx",
            "nginx@sha256:xyz",
            "a//b",
            "-a",
            "nginx:-x",
            "reg:abc/x",
        ] {
            assert!(ImageRef::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn restart() {
        assert_eq!(Restart::parse("on-failure:3").unwrap(), Restart::OnFailure { max_retries: Some(3) });
        assert!(Restart::parse("sometimes").is_err());
        assert!(Restart::parse("on-failure:x").is_err());
    }
}
