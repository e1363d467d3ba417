//! Edits of manifest text that keep every other byte as it was: a field is
//! replaced or inserted in one document, never re-serialised.

/// Sets `host_key: "FP"` in the Server document whose first key is on line
/// `doc_line` (1-based): replaces an existing `host_key:` line of that
/// document, or inserts one after its `host:` line.
pub fn set_host_key(text: &str, doc_line: usize, fingerprint: &str) -> Result<String, String> {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    if doc_line == 0 || doc_line > lines.len() {
        return Err(format!("line {doc_line} is outside the file"));
    }
    let start = doc_line - 1;
    let end = lines[start..]
        .iter()
        .position(|l| l.starts_with("---") || l.starts_with("..."))
        .map_or(lines.len(), |i| start + i);
    let new_line = format!("host_key: \"{fingerprint}\"\n");
    let mut out: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    if let Some(i) = (start..end).find(|i| lines[*i].starts_with("host_key:")) {
        out[i] = new_line;
    } else if let Some(i) = (start..end).find(|i| lines[*i].starts_with("host:")) {
        if !out[i].ends_with('\n') {
            out[i].push('\n');
        }
        out.insert(i + 1, new_line);
    } else {
        return Err("the Server document has no top-level `host:` line to put `host_key:` after".into());
    }
    Ok(out.concat())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inserts_after_host_and_replaces_existing() {
        let text =
            "# fleet\nkind: Server\nname: a\nhost: 10.0.0.1 # lan\nuser: x\n---\nkind: Server\nname: b\nhost: h\n";
        let out = set_host_key(text, 2, "SHA256:abc").unwrap();
        assert_eq!(
            out,
            "# fleet\nkind: Server\nname: a\nhost: 10.0.0.1 # lan\nhost_key: \"SHA256:abc\"\nuser: x\n---\nkind: Server\nname: b\nhost: h\n"
        );
        let again = set_host_key(&out, 2, "SHA256:new").unwrap();
        assert_eq!(again.matches("host_key").count(), 1);
        assert!(again.contains("host_key: \"SHA256:new\"\nuser: x"));
        let second = set_host_key(text, 7, "SHA256:b").unwrap();
        assert!(second.ends_with("host: h\nhost_key: \"SHA256:b\"\n"));
        assert!(second.starts_with("# fleet\nkind: Server\nname: a\nhost: 10.0.0.1 # lan\nuser: x\n"));
        assert!(set_host_key("kind: Server\nname: a\n", 1, "x").is_err());
    }
}
