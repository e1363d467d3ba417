//! Compose's variable interpolation, as the Compose Specification defines it:
//! `$VAR`, `${VAR}`, `${VAR:-default}` / `${VAR-default}`,
//! `${VAR:?message}` / `${VAR?message}`, `${VAR:+alt}` / `${VAR+alt}`, and
//! `$$` for a literal `$`. Defaults and alternatives may themselves hold
//! interpolations (`${A:-${B:-x}}`), as Compose v2 allows.
//!
//! Pure: variables come from a lookup the caller builds (command line, the
//! process environment, `.env`, in that order). Work is linear in the input;
//! nesting is capped so a hostile file cannot recurse deeply.

use std::fmt;

/// How deep `${A:-${B:-...}}` may nest.
pub const MAX_NESTING: usize = 16;

/// Why a string could not be interpolated; `at` is a byte offset into it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InterpolateError {
    /// `${VAR:?message}` (or `?`) with VAR unset (or empty).
    Required { name: String, message: String, at: usize },
    /// `${` with no closing `}`, a bad name, or an unknown operator.
    Syntax { reason: &'static str, at: usize },
}

impl fmt::Display for InterpolateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InterpolateError::Required { name, message, .. } if message.is_empty() => {
                write!(f, "required variable `{name}` is missing a value")
            }
            InterpolateError::Required { name, message, .. } => {
                write!(f, "required variable `{name}` is missing a value: {message}")
            }
            InterpolateError::Syntax { reason, .. } => write!(f, "invalid interpolation: {reason}"),
        }
    }
}

impl std::error::Error for InterpolateError {}

/// A string after interpolation, and the variables it used that had no value
/// (Compose substitutes an empty string and warns).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Interpolated {
    pub value: String,
    pub unset: Vec<String>,
}

/// Interpolates `text`; `lookup` gives a variable's value, `None` when unset.
pub fn interpolate(text: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<Interpolated, InterpolateError> {
    let mut out = Interpolated::default();
    let mut p = Parser { text, pos: 0, lookup, unset: &mut out.unset };
    out.value = p.until(None, 0)?;
    Ok(out)
}

struct Parser<'a> {
    text: &'a str,
    pos: usize,
    lookup: &'a dyn Fn(&str) -> Option<String>,
    unset: &'a mut Vec<String>,
}

impl Parser<'_> {
    fn rest(&self) -> &str {
        &self.text[self.pos..]
    }

    /// Text up to `end` (a `}` closing a default) or the end of input.
    fn until(&mut self, end: Option<char>, depth: usize) -> Result<String, InterpolateError> {
        let mut out = String::new();
        while let Some(c) = self.rest().chars().next() {
            if Some(c) == end {
                return Ok(out);
            }
            if c != '$' {
                out.push(c);
                self.pos += c.len_utf8();
                continue;
            }
            let at = self.pos;
            self.pos += 1;
            match self.rest().chars().next() {
                Some('$') => {
                    out.push('$');
                    self.pos += 1;
                }
                Some('{') => {
                    self.pos += 1;
                    out.push_str(&self.braced(at, depth)?);
                }
                Some(c) if c == '_' || c.is_ascii_alphabetic() => {
                    let name = self.name();
                    out.push_str(&self.value_of(name));
                }
                // A lone `$` is refused, as Compose refuses it.
                _ => {
                    return Err(InterpolateError::Syntax {
                        reason: "a `$` starts a variable (`$NAME`, `${NAME}`) or is doubled (`$$`)",
                        at,
                    });
                }
            }
        }
        match end {
            Some(_) => Err(InterpolateError::Syntax { reason: "`${` is never closed with `}`", at: self.text.len() }),
            None => Ok(out),
        }
    }

    fn name(&mut self) -> String {
        let len = self.rest().find(|c: char| !(c == '_' || c.is_ascii_alphanumeric())).unwrap_or(self.rest().len());
        let name = self.rest()[..len].to_string();
        self.pos += len;
        name
    }

    fn value_of(&mut self, name: String) -> String {
        match (self.lookup)(&name) {
            Some(v) => v,
            None => {
                if !self.unset.contains(&name) {
                    self.unset.push(name);
                }
                String::new()
            }
        }
    }

    /// After `${`: a name, then `}` or an operator and its word.
    fn braced(&mut self, at: usize, depth: usize) -> Result<String, InterpolateError> {
        if depth >= MAX_NESTING {
            return Err(InterpolateError::Syntax { reason: "interpolations nest too deeply", at });
        }
        let name = self.name();
        if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
            return Err(InterpolateError::Syntax { reason: "a variable name must start with a letter or `_`", at });
        }
        let rest = self.rest();
        let op = if rest.starts_with('}') {
            self.pos += 1;
            return Ok(self.value_of(name));
        } else if let Some(op) = [":-", ":?", ":+", "-", "?", "+"].into_iter().find(|op| rest.starts_with(op)) {
            op
        } else if rest.is_empty() {
            return Err(InterpolateError::Syntax { reason: "`${` is never closed with `}`", at });
        } else {
            return Err(InterpolateError::Syntax { reason: "expected `}`, `:-`, `-`, `:?`, `?`, `:+` or `+`", at });
        };
        self.pos += op.len();
        let word = self.until(Some('}'), depth + 1)?;
        self.pos += 1; // the closing `}`
        let value = (self.lookup)(&name);
        let empty_counts = op.starts_with(':');
        let present = match &value {
            Some(v) => !(empty_counts && v.is_empty()),
            None => false,
        };
        Ok(match op.chars().last() {
            Some('-') if present => value.unwrap_or_default(),
            Some('-') => word,
            Some('+') if present => word,
            Some('+') => String::new(),
            _ if present => value.unwrap_or_default(),
            _ => return Err(InterpolateError::Required { name, message: word, at }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(text: &str) -> Result<Interpolated, InterpolateError> {
        let vars = |n: &str| match n {
            "SET" => Some("v".to_string()),
            "EMPTY" => Some(String::new()),
            "AppID" => Some("jellyfin".to_string()),
            _ => None,
        };
        interpolate(text, &vars)
    }

    fn value(text: &str) -> String {
        env(text).unwrap().value
    }

    #[test]
    fn plain_and_braced_variables() {
        assert_eq!(value("a $SET b ${SET}c"), "a v b vc");
        assert_eq!(value("/DATA/AppData/$AppID/config"), "/DATA/AppData/jellyfin/config");
        assert_eq!(value("$SET-x $SET.y"), "v-x v.y");
        let r = env("x${NOPE}y$NOPE").unwrap();
        assert_eq!(r.value, "xy");
        assert_eq!(r.unset, ["NOPE"]);
    }

    #[test]
    fn defaults_tell_unset_from_empty() {
        assert_eq!(value("${NOPE:-d}"), "d");
        assert_eq!(value("${EMPTY:-d}"), "d");
        assert_eq!(value("${EMPTY-d}"), "");
        assert_eq!(value("${NOPE-d}"), "d");
        assert_eq!(value("${SET:-d}"), "v");
        assert_eq!(value("${NOPE:-a b:c}"), "a b:c");
        assert_eq!(value("${NOPE:-}"), "");
    }

    #[test]
    fn alternatives() {
        assert_eq!(value("${SET:+alt}"), "alt");
        assert_eq!(value("${EMPTY:+alt}"), "");
        assert_eq!(value("${EMPTY+alt}"), "alt");
        assert_eq!(value("${NOPE+alt}"), "");
    }

    #[test]
    fn required_variables_fail_with_their_message() {
        assert_eq!(
            env("x ${NOPE:?set NOPE: it is the admin password}"),
            Err(InterpolateError::Required {
                name: "NOPE".into(),
                message: "set NOPE: it is the admin password".into(),
                at: 2
            })
        );
        assert!(env("${EMPTY:?m}").is_err());
        assert_eq!(value("${EMPTY?m}"), "");
        assert_eq!(value("${SET:?m}"), "v");
        let e = env("${NOPE?}").unwrap_err();
        assert_eq!(e.to_string(), "required variable `NOPE` is missing a value");
    }

    #[test]
    fn dollar_dollar_is_a_literal_dollar() {
        assert_eq!(
            value("curl -f http://x || exit 1; echo $$HOME $${SET}"),
            "curl -f http://x || exit 1; echo $HOME ${SET}"
        );
        assert_eq!(value("price: 5$$"), "price: 5$");
        for lone in ["price: 5$", "$1", "$ {", "a$-b"] {
            assert!(matches!(env(lone), Err(InterpolateError::Syntax { .. })), "{lone}");
        }
    }

    #[test]
    fn defaults_nest() {
        assert_eq!(value("${NOPE:-${SET}}"), "v");
        assert_eq!(value("${NOPE:-${ALSO:-deep}/x}"), "deep/x");
        let deep = format!("{}x{}", "${A:-".repeat(MAX_NESTING + 1), "}".repeat(MAX_NESTING + 1));
        assert!(matches!(env(&deep), Err(InterpolateError::Syntax { .. })));
    }

    #[test]
    fn bad_syntax_is_an_error_with_its_offset() {
        assert_eq!(env("ab ${SET"), Err(InterpolateError::Syntax { reason: "`${` is never closed with `}`", at: 3 }));
        assert!(env("${}").is_err());
        assert!(env("${1A}").is_err());
        assert!(env("${SET!x}").is_err());
        assert!(env("${NOPE:-never closed").is_err());
    }

    #[test]
    fn multibyte_text_passes_through() {
        assert_eq!(value("é${SET}€$SET😀"), "év€v😀");
        assert_eq!(value("${NOPE:-ünïcode}"), "ünïcode");
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in ".{0,64}") {
            let _ = env(&s);
        }

        #[test]
        fn text_without_dollars_is_unchanged(s in "[^$]{0,64}") {
            proptest::prop_assert_eq!(value(&s), s);
        }

        #[test]
        fn doubled_dollars_are_literal(s in "[^$]{0,16}", t in "[^$]{0,16}") {
            proptest::prop_assert_eq!(value(&format!("{s}$${t}")), format!("{s}${t}"));
        }
    }
}
