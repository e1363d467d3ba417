//! A small YAML writer for manifests tomo generates: block mappings and
//! sequences, plain scalars where YAML 1.1 and 1.2 read them back as the
//! same string, literal blocks for multi-line text, double quotes otherwise.
//! The tests read every output back with `manifest::yaml` and compare.

use serde_json::Value;

/// `value` as a YAML document (no leading `---`), ending in a newline.
pub fn to_yaml(value: &Value) -> String {
    let mut out = String::new();
    match value {
        Value::Object(m) if !m.is_empty() => map(&mut out, m, 0),
        Value::Array(a) if !a.is_empty() => seq(&mut out, a, 0),
        other => {
            out.push_str(&scalar(other, 0));
            out.push('\n');
        }
    }
    out
}

fn indent(out: &mut String, n: usize) {
    out.extend(std::iter::repeat_n(' ', n));
}

/// Field order of apps and services (the order of `manifest::raw`), for
/// readers; other maps keep their (sorted) order.
const ORDER: &[&str] = &[
    "kind",
    "name",
    "server",
    "servers",
    "state",
    "image",
    "command",
    "entrypoint",
    "env",
    "env_file",
    "ports",
    "volumes",
    "files",
    "networks",
    "app_network",
    "network_mode",
    "depends_on",
    "healthcheck",
    "restart",
    "labels",
    "user",
    "working_dir",
    "hostname",
    "container_name",
    "privileged",
    "cap_add",
    "cap_drop",
    "devices",
    "tmpfs",
    "sysctls",
    "ulimits",
    "extra_hosts",
    "init",
    "stop_grace_period",
    "resources",
    "runtime",
    "pid",
    "ipc",
    "security_opt",
    "logging",
    "shm_size",
    "stop_signal",
    "stdin_open",
    "tty",
    "pull",
    "update_order",
    "services",
];

fn ordered(m: &serde_json::Map<String, Value>) -> Vec<(&String, &Value)> {
    let mut entries: Vec<(&String, &Value)> = m.iter().collect();
    if m.contains_key("kind") || m.contains_key("image") {
        entries.sort_by_key(|(k, _)| ORDER.iter().position(|o| o == k).unwrap_or(ORDER.len()));
    }
    entries
}

fn map(out: &mut String, m: &serde_json::Map<String, Value>, ind: usize) {
    let mut first = true;
    for (k, v) in ordered(m) {
        if !first {
            indent(out, ind);
        }
        first = false;
        out.push_str(&string(k, ind, true));
        out.push(':');
        value_after(out, v, ind, true);
    }
}

fn seq(out: &mut String, a: &[Value], ind: usize) {
    let mut first = true;
    for v in a {
        if !first {
            indent(out, ind);
        }
        first = false;
        out.push('-');
        value_after(out, v, ind, false);
    }
}

/// A value after `key:` or `-`: nested collections on following lines
/// (a sequence in a mapping at the same indentation, as is usual).
fn value_after(out: &mut String, v: &Value, ind: usize, in_map: bool) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            if in_map {
                out.push('\n');
                indent(out, ind + 2);
            } else {
                out.push(' ');
            }
            map(out, m, ind + 2);
        }
        Value::Array(a) if !a.is_empty() => {
            if in_map {
                out.push('\n');
                indent(out, ind);
                seq(out, a, ind);
            } else {
                out.push(' ');
                seq(out, a, ind + 2);
            }
        }
        other => {
            out.push(' ');
            out.push_str(&scalar(other, ind + 2));
            out.push('\n');
        }
    }
}

fn scalar(v: &Value, ind: usize) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => string(s, ind, false),
        Value::Array(_) => "[]".into(),
        Value::Object(_) => "{}".into(),
    }
}

fn string(s: &str, ind: usize, key: bool) -> String {
    if is_plain_safe(s) {
        return s.to_string();
    }
    if !key && let Some(block) = literal_block(s, ind) {
        return block;
    }
    let quoted = serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into());
    // JSON leaves these raw; in YAML they are line breaks (or a BOM).
    if quoted.contains(is_odd_break) {
        return quoted
            .chars()
            .map(|c| if is_odd_break(c) { format!("\\u{:04x}", c as u32) } else { c.to_string() })
            .collect();
    }
    quoted
}

fn is_odd_break(c: char) -> bool {
    matches!(c, '\u{85}' | '\u{2028}' | '\u{2029}' | '\u{feff}')
}

/// Multi-line text as `|` / `|-` / `|+`, when every line can be written as is.
fn literal_block(s: &str, ind: usize) -> Option<String> {
    let body = s.strip_suffix('\n').unwrap_or(s);
    if !s.contains('\n') || body.is_empty() || body.ends_with('\n') && body.trim_end_matches('\n').is_empty() {
        return None;
    }
    let lines: Vec<&str> = body.split('\n').collect();
    let printable = |l: &str| l.chars().all(|c| !c.is_control() && !is_odd_break(c)) && !l.ends_with(' ');
    // The first line fixes the block's indentation: it may not start with a space.
    if !lines.iter().all(|l| printable(l)) || lines[0].starts_with([' ', '\t']) || lines[0].is_empty() {
        return None;
    }
    let trailing = s.len() - s.trim_end_matches('\n').len();
    let chomp = match trailing {
        0 => "-",
        1 => "",
        _ => "+",
    };
    let mut out = format!("|{chomp}");
    let body = s.trim_end_matches('\n');
    for l in body.split('\n') {
        out.push('\n');
        if !l.is_empty() {
            out.push_str(&" ".repeat(ind));
            out.push_str(l);
        }
    }
    for _ in 1..trailing {
        out.push('\n');
    }
    Some(out)
}

/// Whether `s` reads back as this same string when written plain, in YAML
/// 1.2 and in YAML 1.1 (editors' language servers use 1.1).
fn is_plain_safe(s: &str) -> bool {
    let Some(first) = s.chars().next() else { return false };
    if !(first.is_ascii_alphanumeric() || matches!(first, '/' | '_' | '.' | '$' | '(')) {
        return false;
    }
    if s.ends_with([' ', ':']) || s.contains(": ") || s.contains(" #") || s.contains(['\n', '\t', '\r']) {
        return false;
    }
    if !s.chars().all(|c| c.is_ascii_alphanumeric() || " _./:@+=,~%()-$^".contains(c)) {
        return false;
    }
    let lower = s.to_ascii_lowercase();
    let special = ["null", "~", "true", "false", "yes", "no", "on", "off", "y", "n", ".inf", "-.inf", "+.inf", ".nan"];
    if special.contains(&lower.as_str()) {
        return false;
    }
    // Anything that starts like a number (ints, floats, 0x/0o, 1_000, 1:30 sexagesimal) is quoted.
    let numeric_start = first.is_ascii_digit() || first == '.' && s[1..].starts_with(|c: char| c.is_ascii_digit());
    if numeric_start && s.chars().all(|c| c.is_ascii_alphanumeric() || "._:+-".contains(c)) {
        return false;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn back(text: &str) -> Value {
        let (docs, err) = crate::manifest::yaml::parse(text);
        assert!(err.is_none(), "{err:?}\n{text}");
        assert!(docs[0].problems.is_empty(), "{:?}\n{text}", docs[0].problems);
        docs[0].root.to_json()
    }

    fn round_trip(v: Value) {
        let text = to_yaml(&v);
        assert_eq!(back(&text), v, "{text}");
    }

    #[test]
    fn manifests_read_back_the_same() {
        round_trip(json!({
            "kind": "App",
            "name": "dify",
            "services": {
                "api": {
                    "image": "langgenius/dify-api:0.15.8",
                    "env": {"A": "", "B": "yes", "C": "1.10", "D": "a: b", "E": "#x", "F": "-x", "G": "x #y", "H": "0x1F"},
                    "ports": ["8080:80", 5000, {"target": 53, "protocol": "udp"}],
                    "command": ["sh", "-c", "echo $$HOME && exit 1"],
                    "files": [{"target": "/etc/x.conf", "content": "server {\n  listen 80;\n}\n"}],
                    "networks": {"default": {"aliases": ["ssrf_proxy"]}},
                    "empty": [], "none": {}, "n": null, "t": true, "f": 1.5,
                }
            }
        }));
    }

    /// A key `<<` is written quoted, and a quoted `<<` is not a merge.
    #[test]
    fn a_merge_like_key_reads_back() {
        round_trip(json!({"<<": "", "k": "<<"}));
    }

    #[test]
    fn text_blocks_keep_their_newlines() {
        for s in ["a\nb", "a\nb\n", "a\nb\n\n\n", "a\n\n  b\n", " lead\nx\n", "a \nb\n", "\n\nx", "a\n"] {
            round_trip(json!({"k": s, "l": [s]}));
        }
    }

    proptest::proptest! {
        #[test]
        fn any_string_reads_back(s in "\\PC{0,24}", t in "[ -~\\n]{0,24}") {
            let v = json!({"k": s, "l": [t.clone(), {"m": s}], t.clone(): 1});
            let text = to_yaml(&v);
            proptest::prop_assert_eq!(back(&text), v, "{}", text);
        }
    }
}
