//! YAML to a tree of nodes that keep their source position.
//!
//! This module is the single source of truth for positions in manifests: every
//! later stage (schema check, resolution) reports problems by field path and
//! looks the span up here. serde_yaml keeps no positions once a value is
//! deserialized, so the tree is built from yaml-rust2's marked events instead.
//!
//! Scalars are resolved by the YAML 1.2 core schema (`8080:80` and `yes` stay
//! strings). Anchors, aliases and `<<` merge keys are supported; duplicate
//! keys, non-string keys and unknown tags are reported. Parsing never panics.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser, Tag};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use crate::diag::{FieldPath, PathSeg, Span};

/// Upper bound on nodes per document after alias expansion ("billion laughs").
const MAX_NODES: usize = 200_000;
/// Upper bound on nesting depth.
const MAX_DEPTH: usize = 64;

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub value: Value,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    /// A number, kept as written (so `1.10` stays `1.10` where a string is wanted).
    Number(String),
    String(String),
    Seq(Vec<Node>),
    Map(Vec<(Key, Node)>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Key {
    pub name: String,
    pub span: Span,
}

impl Value {
    /// The JSON-schema type name of this value.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Number(n) if is_integer(n) => "integer",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::Seq(_) => "array",
            Value::Map(_) => "object",
        }
    }
}

fn is_integer(n: &str) -> bool {
    n.parse::<i64>().is_ok() || n.parse::<u64>().is_ok()
}

impl Node {
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::String(s) => Some(s),
            _ => None,
        }
    }
    pub fn as_map(&self) -> Option<&[(Key, Node)]> {
        match &self.value {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.as_map()?.iter().find(|(k, _)| k.name == key).map(|(_, v)| v)
    }
    pub fn key_span(&self, key: &str) -> Option<Span> {
        self.as_map()?.iter().find(|(k, _)| k.name == key).map(|(k, _)| k.span)
    }

    /// The node at `path`, if every step exists.
    pub fn node_at(&self, path: &FieldPath) -> Option<&Node> {
        path.segments().iter().try_fold(self, |n, seg| n.child(seg))
    }

    fn child(&self, seg: &PathSeg) -> Option<&Node> {
        match (seg, &self.value) {
            (PathSeg::Key(k), Value::Map(m)) => m.iter().find(|(key, _)| &key.name == k).map(|(_, v)| v),
            (PathSeg::Index(i), Value::Seq(s)) => s.get(*i),
            _ => None,
        }
    }

    /// The span of the node at `path`, or of the deepest existing ancestor.
    pub fn span_at(&self, path: &FieldPath) -> Span {
        let mut node = self;
        for seg in path.segments() {
            match node.child(seg) {
                Some(n) => node = n,
                None => break,
            }
        }
        node.span
    }

    /// The span of the key naming the field at `path` (for "unknown field" and
    /// the like), falling back to the value's span.
    pub fn key_span_at(&self, path: &FieldPath) -> Span {
        if let Some((PathSeg::Key(last), parent)) = path.segments().split_last() {
            let parent = parent.iter().try_fold(self, |n, seg| n.child(seg));
            if let Some(span) = parent.and_then(|n| n.key_span(last)) {
                return span;
            }
        }
        self.span_at(path)
    }

    /// Converts to JSON for serde. `x-` extension keys pass through: serde
    /// ignores fields it does not know, and the schema check has already
    /// refused every unknown key that is not an extension.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match &self.value {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Number(n) => parse_number(n).map(J::Number).unwrap_or_else(|| J::String(n.clone())),
            Value::String(s) => J::String(s.clone()),
            Value::Seq(items) => J::Array(items.iter().map(Node::to_json).collect()),
            Value::Map(entries) => J::Object(entries.iter().map(|(k, v)| (k.name.clone(), v.to_json())).collect()),
        }
    }
}

fn parse_number(n: &str) -> Option<serde_json::Number> {
    if let Ok(i) = n.parse::<i64>() {
        return Some(i.into());
    }
    if let Ok(u) = n.parse::<u64>() {
        return Some(u.into());
    }
    if let Some(h) = n.strip_prefix("0x") {
        return i64::from_str_radix(h, 16).ok().map(Into::into);
    }
    if let Some(o) = n.strip_prefix("0o") {
        return i64::from_str_radix(o, 8).ok().map(Into::into);
    }
    n.parse::<f64>().ok().and_then(serde_json::Number::from_f64)
}

/// A problem found while reading YAML. Positions are already resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct YamlError {
    pub message: String,
    pub span: Span,
    pub help: Option<String>,
}

/// One document of a file, or the reason it could not be read.
pub struct Document {
    pub root: Node,
    /// Problems that do not stop the document from being used (duplicate keys).
    pub problems: Vec<YamlError>,
}

/// Parses every document in `text`. A syntax error ends parsing: documents
/// before it are returned along with the error.
pub fn parse(text: &str) -> (Vec<Document>, Option<YamlError>) {
    let positions = Positions::new(text);
    let mut builder = Builder {
        positions: &positions,
        stack: Vec::new(),
        anchors: HashMap::new(),
        docs: Vec::new(),
        problems: Vec::new(),
        nodes: 0,
        fatal: None,
        quoted: false,
    };
    let mut parser = Parser::new_from_str(text);
    let result = parser.load(&mut builder, true);
    let mut err = builder.fatal.take();
    if let Err(e) = result {
        let m = e.marker();
        err.get_or_insert(YamlError {
            message: format!("YAML syntax error: {}", e.info()),
            span: positions.span(m, 1),
            help: None,
        });
    }
    (builder.docs, err)
}

/// Maps yaml-rust2 markers (character index, 0-based column) to byte spans.
struct Positions {
    char_to_byte: Vec<usize>,
    len: usize,
}

impl Positions {
    fn new(text: &str) -> Self {
        let mut char_to_byte: Vec<usize> = text.char_indices().map(|(b, _)| b).collect();
        char_to_byte.push(text.len());
        Self { char_to_byte, len: text.len() }
    }
    fn span(&self, m: &Marker, len_chars: usize) -> Span {
        let start = self.char_to_byte.get(m.index()).copied().unwrap_or(self.len);
        let end = self.char_to_byte.get(m.index() + len_chars).copied().unwrap_or(self.len);
        Span { offset: start, len: end.saturating_sub(start), line: m.line(), column: m.col() + 1 }
    }
}

enum Frame {
    Seq {
        items: Vec<Node>,
        span: Span,
        anchor: usize,
    },
    /// `key_quoted`: the pending key was written quoted (a quoted `<<` is a
    /// key like any other, not a merge).
    Map {
        entries: Entries,
        pending_key: Option<Node>,
        key_quoted: bool,
        span: Span,
        anchor: usize,
    },
}

struct Builder<'a> {
    positions: &'a Positions,
    stack: Vec<Frame>,
    anchors: HashMap<usize, Node>,
    docs: Vec<Document>,
    problems: Vec<YamlError>,
    nodes: usize,
    fatal: Option<YamlError>,
    /// The scalar being pushed was written quoted.
    quoted: bool,
}

impl Builder<'_> {
    fn fail(&mut self, message: String, span: Span) {
        if self.fatal.is_none() {
            self.fatal = Some(YamlError { message, span, help: None });
        }
    }

    fn count(&mut self, n: usize, span: Span) -> bool {
        self.nodes = self.nodes.saturating_add(n);
        if self.nodes > MAX_NODES {
            self.fail(format!("document is too large (more than {MAX_NODES} values after expanding aliases)"), span);
            return false;
        }
        true
    }

    fn push_value(&mut self, node: Node, anchor: usize) {
        if anchor != 0 {
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            None => {
                let problems = std::mem::take(&mut self.problems);
                self.docs.push(Document { root: node, problems });
            }
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map { pending_key, entries, key_quoted, .. }) => match pending_key.take() {
                None => {
                    *key_quoted = std::mem::take(&mut self.quoted);
                    *pending_key = Some(node);
                }
                Some(key) => {
                    let name = match key.value {
                        Value::String(s) => s,
                        Value::Number(n) => n,
                        Value::Bool(b) => b.to_string(),
                        Value::Null => {
                            self.problems.push(YamlError {
                                message: "a mapping key is empty".into(),
                                span: key.span,
                                help: Some("write a field name before the ':'".into()),
                            });
                            return;
                        }
                        _ => {
                            self.problems.push(YamlError {
                                message: "a mapping key must be a plain string".into(),
                                span: key.span,
                                help: None,
                            });
                            return;
                        }
                    };
                    if name == "<<" && !*key_quoted {
                        entries.merge(node);
                        return;
                    }
                    if let Err(first) = entries.insert(Key { name: name.clone(), span: key.span }, node) {
                        self.problems.push(YamlError {
                            message: format!("duplicate key `{name}`"),
                            span: key.span,
                            help: Some(format!("`{name}` is already set at line {}; keep only one", first.line)),
                        });
                    }
                }
            },
        }
    }
}

/// The entries of a mapping being read, indexed by key so that each key is
/// checked in constant time (a mapping of many keys stays linear).
#[derive(Default)]
struct Entries {
    list: Vec<(Key, Node)>,
    /// Key → its position in `list`; `true` when it came from a `<<` merge
    /// (an explicit key then replaces it).
    index: HashMap<String, (usize, bool)>,
}

impl Entries {
    /// Adds an explicit key, or returns the span of the explicit key it repeats.
    fn insert(&mut self, key: Key, node: Node) -> Result<(), Span> {
        match self.index.get_mut(&key.name) {
            Some((i, merged @ true)) => {
                *merged = false;
                self.list[*i] = (key, node);
                Ok(())
            }
            Some((i, false)) => Err(self.list[*i].0.span),
            None => {
                self.index.insert(key.name.clone(), (self.list.len(), false));
                self.list.push((key, node));
                Ok(())
            }
        }
    }

    /// `<<: *base` or `<<: [*a, *b]`: copy keys not already present.
    fn merge(&mut self, node: Node) {
        let sources = match node.value {
            Value::Map(m) => vec![m],
            Value::Seq(items) => items
                .into_iter()
                .filter_map(|n| match n.value {
                    Value::Map(m) => Some(m),
                    _ => None,
                })
                .collect(),
            _ => return,
        };
        for (k, v) in sources.into_iter().flatten() {
            if !self.index.contains_key(&k.name) {
                self.index.insert(k.name.clone(), (self.list.len(), true));
                self.list.push((k, v));
            }
        }
    }
}

impl MarkedEventReceiver for Builder<'_> {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        if self.fatal.is_some() {
            return;
        }
        let here = self.positions.span(&mark, 1);
        match ev {
            Event::DocumentStart => {
                self.anchors.clear();
                self.nodes = 0;
            }
            Event::Scalar(text, style, anchor, tag) => {
                if !self.count(1, here) {
                    return;
                }
                let quoted = style != TScalarStyle::Plain;
                let len = text.chars().count() + usize::from(quoted) * 2;
                let span = self.positions.span(&mark, len.max(1));
                let value = match resolve_scalar(text, style, tag.as_ref()) {
                    Ok(v) => v,
                    Err(msg) => {
                        self.fail(msg, span);
                        return;
                    }
                };
                self.quoted = quoted;
                self.push_value(Node { value, span }, anchor);
            }
            Event::SequenceStart(anchor, ref tag) | Event::MappingStart(anchor, ref tag) => {
                if let Some(t) = tag.as_ref().filter(|t| !is_core_collection_tag(t)) {
                    self.fail(format!("YAML tag `{}{}` is not supported", t.handle, t.suffix), here);
                    return;
                }
                if self.stack.len() >= MAX_DEPTH {
                    self.fail(format!("nesting is deeper than {MAX_DEPTH} levels"), here);
                    return;
                }
                if !self.count(1, here) {
                    return;
                }
                let is_seq = matches!(ev, Event::SequenceStart(..));
                self.stack.push(if is_seq {
                    Frame::Seq { items: Vec::new(), span: here, anchor }
                } else {
                    Frame::Map { entries: Entries::default(), pending_key: None, key_quoted: false, span: here, anchor }
                });
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let (node, anchor) = match self.stack.pop() {
                    Some(Frame::Seq { items, span, anchor }) => (Node { value: Value::Seq(items), span }, anchor),
                    Some(Frame::Map { entries: Entries { list: entries, .. }, span, anchor, .. }) => {
                        // A block mapping's marker points past its first key:
                        // start the mapping at that key instead.
                        let span = match entries.first() {
                            Some((k, _)) if k.span.offset < span.offset => k.span,
                            _ => span,
                        };
                        (Node { value: Value::Map(entries), span }, anchor)
                    }
                    None => return,
                };
                self.push_value(node, anchor);
            }
            Event::Alias(id) => match self.anchors.get(&id).cloned() {
                Some(mut node) => {
                    let size = count_nodes(&node);
                    if !self.count(size, here) {
                        return;
                    }
                    node.span = here;
                    self.push_value(node, 0);
                }
                None => self.fail("alias refers to an unknown anchor".into(), here),
            },
            Event::DocumentEnd | Event::StreamStart | Event::StreamEnd | Event::Nothing => {}
        }
    }
}

fn count_nodes(n: &Node) -> usize {
    1 + match &n.value {
        Value::Seq(items) => items.iter().map(count_nodes).sum(),
        Value::Map(entries) => entries.iter().map(|(_, v)| count_nodes(v)).sum(),
        _ => 0,
    }
}

fn is_core_collection_tag(t: &Tag) -> bool {
    t.handle == "tag:yaml.org,2002:" && matches!(t.suffix.as_str(), "map" | "seq" | "omap")
}

fn resolve_scalar(text: String, style: TScalarStyle, tag: Option<&Tag>) -> Result<Value, String> {
    if let Some(t) = tag {
        if t.handle == "tag:yaml.org,2002:" {
            return Ok(match t.suffix.as_str() {
                "str" => Value::String(text),
                "null" => Value::Null,
                "bool" | "int" | "float" => resolve_plain(text),
                other => return Err(format!("YAML tag `!!{other}` is not supported")),
            });
        }
        return Err(format!("YAML tag `{}{}` is not supported", t.handle, t.suffix));
    }
    if style != TScalarStyle::Plain {
        return Ok(Value::String(text));
    }
    Ok(resolve_plain(text))
}

/// YAML 1.2 core schema resolution of a plain scalar.
fn resolve_plain(text: String) -> Value {
    match text.as_str() {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "-.inf" | ".nan" | ".NaN" | ".NAN" => {
            return Value::Number(text);
        }
        _ => {}
    }
    if is_core_int(&text) || is_core_float(&text) { Value::Number(text) } else { Value::String(text) }
}

fn is_core_int(s: &str) -> bool {
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    if let Some(h) = s.strip_prefix("0x") {
        return !h.is_empty() && h.chars().all(|c| c.is_ascii_hexdigit());
    }
    if let Some(o) = s.strip_prefix("0o") {
        return !o.is_empty() && o.chars().all(|c| ('0'..='7').contains(&c));
    }
    !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit())
}

fn is_core_float(s: &str) -> bool {
    let body = s.strip_prefix(['-', '+']).unwrap_or(s);
    let (mantissa, exp) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let mant_ok = match mantissa.split_once('.') {
        Some((a, b)) => {
            (!a.is_empty() || !b.is_empty())
                && a.chars().all(|c| c.is_ascii_digit())
                && b.chars().all(|c| c.is_ascii_digit())
        }
        None => !mantissa.is_empty() && mantissa.chars().all(|c| c.is_ascii_digit()),
    };
    let exp_ok = exp.is_none_or(|e| {
        let d = e.strip_prefix(['-', '+']).unwrap_or(e);
        !d.is_empty() && d.chars().all(|c| c.is_ascii_digit())
    });
    mant_ok && exp_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> Node {
        let (mut docs, err) = parse(text);
        assert!(err.is_none(), "{err:?}");
        docs.remove(0).root
    }

    #[test]
    fn scalars_follow_yaml_1_2() {
        let n = one("a: 8080:80\nb: yes\nc: 1.10\nd: true\ne: ~\nf: '5'\ng: 0x1F\n");
        assert_eq!(n.get("a").unwrap().value, Value::String("8080:80".into()));
        assert_eq!(n.get("b").unwrap().value, Value::String("yes".into()));
        assert_eq!(n.get("c").unwrap().value, Value::Number("1.10".into()));
        assert_eq!(n.get("d").unwrap().value, Value::Bool(true));
        assert_eq!(n.get("e").unwrap().value, Value::Null);
        assert_eq!(n.get("f").unwrap().value, Value::String("5".into()));
        assert_eq!(n.get("g").unwrap().to_json(), serde_json::json!(31));
    }

    #[test]
    fn positions_are_one_based_and_bytes() {
        let n = one("name: é\nimage: 'x'\n");
        let s = n.get("image").unwrap().span;
        assert_eq!((s.line, s.column), (2, 8));
        assert_eq!(&"name: é\nimage: 'x'\n"[s.offset..s.offset + s.len], "'x'");
        assert_eq!(n.key_span("image").unwrap().column, 1);
    }

    #[test]
    fn multi_document_and_duplicates() {
        let (docs, err) = parse("a: 1\na: 2\n---\nb: 2\n");
        assert!(err.is_none());
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0].problems.len(), 1);
        assert_eq!(docs[0].problems[0].span.line, 2);
    }

    #[test]
    fn anchors_and_merge() {
        let n = one("base: &b {x: 1, y: 2}\nother:\n  <<: *b\n  y: 3\n");
        let o = n.get("other").unwrap();
        assert_eq!(o.get("x").unwrap().to_json(), serde_json::json!(1));
        assert_eq!(o.get("y").unwrap().to_json(), serde_json::json!(3));
    }

    /// Only a plain `<<` merges; a quoted one is a key like any other.
    #[test]
    fn a_quoted_merge_key_is_a_key() {
        let n = one("\"<<\": 1\nb: {'<<': x}\n");
        assert_eq!(n.get("<<").unwrap().to_json(), serde_json::json!(1));
        assert_eq!(n.get("b").unwrap().get("<<").unwrap().to_json(), serde_json::json!("x"));
    }

    #[test]
    fn billion_laughs_is_refused() {
        let mut text = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        let mut prev = 'a';
        for c in 'b'..='j' {
            text.push_str(&format!(
                "{c}: &{c} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"
            ));
            prev = c;
        }
        let (_, err) = parse(&text);
        assert!(err.unwrap().message.contains("too large"));
    }

    #[test]
    fn syntax_error_has_position() {
        let (_, err) = parse("a: [1, 2\nb: 3\n");
        let err = err.unwrap();
        assert!(err.message.starts_with("YAML syntax error"), "{}", err.message);
        assert!(err.span.line >= 1);
    }
}
