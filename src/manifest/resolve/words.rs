//! Splitting a command string into words, as a POSIX shell does, for
//! `command` and `entrypoint` written as one string.

/// Splits a command string the way a POSIX shell splits words (quotes and
/// backslashes), without expanding anything.
pub fn split_words(s: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(x) => cur.push(x),
                        None => return Err(format!("unclosed `'` in `{}`", s.escape_default())),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(x @ ('"' | '\\' | '$' | '`')) => cur.push(x),
                            Some(x) => {
                                cur.push('\\');
                                cur.push(x);
                            }
                            None => {
                                return Err(format!("unclosed `\"` in `{}`", s.escape_default()));
                            }
                        },
                        Some(x) => cur.push(x),
                        None => return Err(format!("unclosed `\"` in `{}`", s.escape_default())),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(x) = chars.next() {
                    cur.push(x);
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words() {
        assert_eq!(split_words(r#"sh -c "echo 'hi there'" x\ y"#).unwrap(), ["sh", "-c", "echo 'hi there'", "x y"]);
        assert_eq!(split_words("  ").unwrap(), Vec::<String>::new());
        assert!(split_words("echo 'oops").is_err());
    }
}
