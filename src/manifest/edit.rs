//! Edits of manifest text that keep every other byte as it was: a field is
//! replaced or inserted in one document (`set_host_key`), or one whole
//! document is replaced, added or removed (`replace_document`). Other
//! documents of the file and other files are never re-serialised.

use serde_json::Value;
use yaml_rust2::yaml::{Hash, Yaml};

use super::yaml;

/// The fields written first, in this order; the rest follow sorted.
const LEADING_KEYS: &[&str] = &["kind", "name", "server", "servers", "host", "image", "state"];

/// The document whose first key is on `doc_line` (1-based), as JSON.
pub fn document_json(text: &str, doc_line: usize) -> Option<Value> {
    let (docs, _) = yaml::parse(text);
    docs.into_iter().find(|d| d.root.span.line == doc_line).map(|d| d.root.to_json())
}

/// A manifest document as YAML text (block style, ending in a newline).
pub fn to_yaml(v: &Value) -> String {
    let mut out = String::new();
    let mut emitter = yaml_rust2::YamlEmitter::new(&mut out);
    emitter.dump(&to_yaml_value(v, true)).expect("writing to a String cannot fail");
    let body = out.strip_prefix("---\n").unwrap_or(&out);
    format!("{body}\n")
}

fn to_yaml_value(v: &Value, top: bool) -> Yaml {
    match v {
        Value::Null => Yaml::Null,
        Value::Bool(b) => Yaml::Boolean(*b),
        Value::Number(n) if n.is_f64() => Yaml::Real(n.to_string()),
        Value::Number(n) => n.as_i64().map_or_else(|| Yaml::String(n.to_string()), Yaml::Integer),
        Value::String(s) => Yaml::String(s.clone()),
        Value::Array(items) => Yaml::Array(items.iter().map(|i| to_yaml_value(i, false)).collect()),
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            if top {
                keys.sort_by_key(|k| (LEADING_KEYS.iter().position(|l| l == k).unwrap_or(LEADING_KEYS.len()), *k));
            }
            let mut h = Hash::new();
            for k in keys {
                h.insert(Yaml::String(k.clone()), to_yaml_value(&map[k], false));
            }
            Yaml::Hash(h)
        }
    }
}

/// Rewrites the document whose first key is on line `doc_line` (1-based) to
/// say `new`, touching only the top-level fields that change: an unchanged
/// field keeps its text and comments, a changed one is written anew in
/// place, a removed one goes, a new one is added at the end. Documents in
/// flow style or with merge keys are rewritten whole.
pub fn update_document(text: &str, doc_line: usize, new: &Value) -> Result<String, String> {
    let (docs, _) = yaml::parse(text);
    let doc = docs.into_iter().find(|d| d.root.span.line == doc_line).ok_or("no document starts at that line")?;
    let whole = || replace_document(text, doc_line, Some(&to_yaml(new)));
    let (Some(entries), Value::Object(wanted)) = (doc.root.as_map(), new) else { return whole() };
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let start = doc_line - 1;
    let end = lines[start..]
        .iter()
        .position(|l| l.starts_with("---") || l.starts_with("..."))
        .map_or(lines.len(), |i| start + i);
    let firsts: Vec<usize> = entries.iter().map(|(k, _)| k.span.line - 1).collect();
    let block = entries.iter().all(|(k, _)| k.span.column == 1) && firsts.windows(2).all(|w| w[0] < w[1]);
    if !block || lines[start..end].iter().any(|l| l.contains("<<:")) {
        return whole();
    }
    let mut out: Vec<String> = lines[..start].iter().map(|l| l.to_string()).collect();
    for (i, (key, node)) in entries.iter().enumerate() {
        let from = firsts[i];
        let to = firsts.get(i + 1).copied().unwrap_or(end);
        // The field's own lines: its key line and what is indented under it;
        // blank and comment lines after them stay where they are.
        let mut own = from
            + 1
            + lines[from + 1..to]
                .iter()
                .take_while(|l| l.starts_with([' ', '\t']) || (l.starts_with('-') && !l.starts_with("---")))
                .count();
        let trivia = |l: &str| l.trim().is_empty() || l.trim_start().starts_with('#');
        while own > from + 1 && trivia(lines[own - 1]) {
            own -= 1;
        }
        match wanted.get(&key.name) {
            Some(v) if *v == node.to_json() => out.extend(lines[from..own].iter().map(|l| l.to_string())),
            Some(v) => out.push(to_yaml(&serde_json::json!({ key.name.clone(): v }))),
            None => {}
        }
        out.extend(lines[own..to].iter().map(|l| l.to_string()));
    }
    for (k, v) in wanted {
        if !entries.iter().any(|(e, _)| e.name == *k) {
            if out.last().is_some_and(|l| !l.ends_with('\n')) {
                out.last_mut().expect("checked").push('\n');
            }
            out.push(to_yaml(&serde_json::json!({ k.clone(): v })));
        }
    }
    out.extend(lines[end..].iter().map(|l| l.to_string()));
    Ok(out.concat())
}

/// Replaces the document whose first key is on line `doc_line` (1-based)
/// with `new` (YAML text), or removes it (`None`) along with one `---`
/// separator next to it. The document runs to the next `---` line or the end
/// of the file; comment lines above its first key stay.
pub fn replace_document(text: &str, doc_line: usize, new: Option<&str>) -> Result<String, String> {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    if doc_line == 0 || doc_line > lines.len() {
        return Err(format!("line {doc_line} is outside the file"));
    }
    let start = doc_line - 1;
    let is_sep = |l: &str| l.starts_with("---") || l.starts_with("...");
    let end = lines[start..].iter().position(|l| is_sep(l)).map_or(lines.len(), |i| start + i);
    let mut out: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    match new {
        Some(doc) => {
            let mut doc = doc.to_string();
            if !doc.ends_with('\n') {
                doc.push('\n');
            }
            out.splice(start..end, [doc]);
        }
        None => {
            // Take the separator after the document, or else the one before
            // it (with the comments between it and the document).
            if end < lines.len() {
                out.drain(start..=end);
            } else {
                let sep = lines[..start].iter().rposition(|l| is_sep(l));
                out.drain(sep.unwrap_or(start)..end);
            }
        }
    }
    Ok(out.concat())
}

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
    fn replaces_and_removes_one_document_only() {
        let text = "# head\nkind: App\nname: a\nimage: x:1\n---\n# b\nkind: App\nname: b\nimage: y:1 # keep\n";
        let v = document_json(text, 2).unwrap();
        assert_eq!(v["image"], "x:1");
        let mut v2 = v.clone();
        v2["image"] = "x:2".into();
        v2["ports"] = serde_json::json!(["8080:80"]);
        let out = replace_document(text, 2, Some(&to_yaml(&v2))).unwrap();
        assert!(out.starts_with("# head\nkind: App\nname: a\nimage: \"x:2\"\nports:\n  - "), "{out}");
        assert!(out.ends_with("---\n# b\nkind: App\nname: b\nimage: y:1 # keep\n"), "{out}");
        assert_eq!(document_json(&out, 2).unwrap(), v2);
        let removed = replace_document(text, 7, None).unwrap();
        assert_eq!(removed, "# head\nkind: App\nname: a\nimage: x:1\n");
        let removed = replace_document(text, 2, None).unwrap();
        assert_eq!(removed, "# head\n# b\nkind: App\nname: b\nimage: y:1 # keep\n");
    }

    #[test]
    fn updates_touch_only_the_fields_that_change() {
        let text = "# $schema\nkind: App # the kind\nname: a\nimage: x:1\nenv:\n  A: \"1\" # keep?\n  B: b\n\n# ports below\nports:\n- 80\ninit: true\n---\nkind: App\nname: b\n";
        let mut v = document_json(text, 2).unwrap();
        v["env"]["A"] = "2".into();
        v.as_object_mut().unwrap().remove("init");
        v["state"] = "stopped".into();
        let out = update_document(text, 2, &v).unwrap();
        assert_eq!(
            out,
            "# $schema\nkind: App # the kind\nname: a\nimage: x:1\nenv:\n  A: \"2\"\n  B: b\n\n# ports below\nports:\n- 80\nstate: stopped\n---\nkind: App\nname: b\n"
        );
        assert_eq!(document_json(&out, 2).unwrap(), v);
        let flow = "{kind: App, name: a, image: x}\n";
        let mut f = document_json(flow, 1).unwrap();
        f["image"] = "y".into();
        assert_eq!(document_json(&update_document(flow, 1, &f).unwrap(), 1).unwrap(), f);
    }

    #[test]
    fn yaml_output_quotes_what_would_change_type() {
        let v = serde_json::json!({"name": "a", "kind": "App", "env": {"A": "yes", "B": "8080", "C": "x: y"}, "image": "i"});
        let text = to_yaml(&v);
        assert!(text.starts_with("kind: App\nname: a\nimage: i\nenv:"), "{text}");
        let (docs, err) = yaml::parse(&text);
        assert!(err.is_none());
        assert_eq!(docs[0].root.to_json(), v);
    }

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
