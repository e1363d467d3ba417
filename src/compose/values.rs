//! Reading compose values off the YAML tree: compose is lenient about
//! scalars (`retries: "3"`, `published: "8080"`), so these accept a number
//! or a string where either makes sense, and report anything else at its line.

use super::convert::Cx;
use crate::manifest::yaml::{Node, Value};

/// A scalar as text: strings, numbers (as written) and booleans.
pub(super) fn scalar_text(node: &Node) -> Option<String> {
    match &node.value {
        Value::String(s) | Value::Number(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

pub(super) fn string(cx: &mut Cx<'_>, node: &Node) -> Option<String> {
    let s = scalar_text(node);
    if s.is_none() {
        cx.error(node.span, "compose-type", format!("expected a string, found {}", node.value.type_name()));
    }
    s
}

pub(super) fn boolean(cx: &mut Cx<'_>, node: &Node) -> Option<bool> {
    match &node.value {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s == "true" => Some(true),
        Value::String(s) if s == "false" => Some(false),
        other => {
            cx.error(node.span, "compose-type", format!("expected true or false, found {}", other.type_name()));
            None
        }
    }
}

/// A whole number, written as a number or a string of digits.
pub(super) fn uint(cx: &mut Cx<'_>, node: &Node) -> Option<u64> {
    let n = scalar_text(node).and_then(|s| s.trim().parse::<u64>().ok());
    if n.is_none() {
        cx.error(node.span, "compose-type", "expected a whole number");
    }
    n
}

pub(super) fn int(cx: &mut Cx<'_>, node: &Node) -> Option<i64> {
    let n = scalar_text(node).and_then(|s| s.trim().parse::<i64>().ok());
    if n.is_none() {
        cx.error(node.span, "compose-type", "expected a whole number");
    }
    n
}

pub(super) fn float(cx: &mut Cx<'_>, node: &Node) -> Option<f64> {
    let n = scalar_text(node).and_then(|s| s.trim().parse::<f64>().ok()).filter(|f| f.is_finite());
    if n.is_none() {
        cx.error(node.span, "compose-type", "expected a number");
    }
    n
}

/// A list of strings; a single string counts as a list of one.
pub(super) fn strings(cx: &mut Cx<'_>, node: &Node) -> Option<Vec<String>> {
    match &node.value {
        Value::Seq(items) => items.iter().map(|n| string(cx, n)).collect(),
        _ => string(cx, node).map(|s| vec![s]),
    }
}

/// `KEY: value` mapping or `KEY=value` list (`sep`); a key without a value
/// (`KEY:` or a bare `KEY`) has `None`.
pub(super) fn pairs(cx: &mut Cx<'_>, node: &Node, sep: char) -> Option<Vec<(String, Option<String>)>> {
    match &node.value {
        Value::Map(m) => m
            .iter()
            .map(|(k, v)| match &v.value {
                Value::Null => Some((k.name.clone(), None)),
                _ => string(cx, v).map(|s| (k.name.clone(), Some(s))),
            })
            .collect(),
        Value::Seq(items) => items
            .iter()
            .map(|n| {
                let s = string(cx, n)?;
                Some(match s.split_once(sep) {
                    Some((k, v)) => (k.trim().to_string(), Some(v.to_string())),
                    None => (s.trim().to_string(), None),
                })
            })
            .collect(),
        other => {
            cx.error(node.span, "compose-type", format!("expected a mapping or a list, found {}", other.type_name()));
            None
        }
    }
}

/// The entries of a mapping, or an error at its line.
pub(super) fn map<'n>(cx: &mut Cx<'_>, node: &'n Node, what: &str) -> &'n [(crate::manifest::yaml::Key, Node)] {
    match node.as_map() {
        Some(m) => m,
        None => {
            cx.error(node.span, "compose-type", format!("`{what}` is a mapping, found {}", node.value.type_name()));
            &[]
        }
    }
}
