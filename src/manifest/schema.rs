//! JSON Schemas for manifests, and the structural check that enforces them.
//!
//! The schemas are generated from the `raw` types (schemars), post-processed so
//! that every object refuses unknown keys except `x-…` extensions, and each
//! document kind requires its `kind`. `tomo schema` writes them for editors;
//! `check` walks a YAML node against the same schema and reports *every*
//! structural problem (unknown field with a suggestion, wrong type, missing
//! field, value not in an enum) by field path, so the committed schemas and
//! `tomo validate` can never disagree.

use std::collections::BTreeSet;
use std::sync::LazyLock;

use schemars::generate::SchemaSettings;
use serde_json::{Map, Value as J, json};

use super::hints;
use super::raw;
use super::yaml::{Node, Value};
use crate::diag::{FieldPath, PathSeg, did_you_mean};

/// Base URL the schemas name themselves by (`$id`); editors use the relative
/// `$schema` comment in manifests instead.
const ID_BASE: &str = "https://tomo.dev/schemas/";

/// The generated schemas: one per kind, plus one that accepts any kind.
pub struct Schemas {
    /// `(kind, file stem, schema)`.
    pub kinds: Vec<(&'static str, &'static str, J)>,
    pub any: J,
}

impl Schemas {
    /// File name and pretty JSON text of every schema, as `tomo schema` writes them.
    pub fn files(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> =
            self.kinds.iter().map(|(_, stem, s)| (format!("{stem}.json"), pretty(s))).collect();
        out.push(("manifest.json".into(), pretty(&self.any)));
        out
    }

    pub fn for_kind(&self, kind: &str) -> Option<&J> {
        self.kinds.iter().find(|(k, _, _)| *k == kind).map(|(_, _, s)| s)
    }
}

fn pretty(v: &J) -> String {
    let mut s = serde_json::to_string_pretty(v).expect("schema serializes");
    s.push('\n');
    s
}

/// The schemas, generated once per process (pure data).
pub fn schemas() -> &'static Schemas {
    static SCHEMAS: LazyLock<Schemas> = LazyLock::new(generate);
    &SCHEMAS
}

/// Document-level definitions and the kind each belongs to.
const DOC_DEFS: [(&str, &str); 5] = [
    ("RawServer", "Server"),
    ("RawMultiApp", "App"),
    ("RawSingleApp", "App"),
    ("RawSettings", "Settings"),
    ("RawMarketplace", "Marketplace"),
];

fn generate() -> Schemas {
    let mut generator = SchemaSettings::draft2020_12().into_generator();
    let roots = [
        ("Server", "server", generator.subschema_for::<raw::RawServer>()),
        ("App", "app", generator.subschema_for::<raw::RawApp>()),
        ("Settings", "settings", generator.subschema_for::<raw::RawSettings>()),
        ("Marketplace", "marketplace", generator.subschema_for::<raw::RawMarketplace>()),
    ];
    let mut defs: Map<String, J> = generator.take_definitions(true);
    for def in defs.values_mut() {
        close_objects(def);
    }
    for (def, kind) in DOC_DEFS {
        if let Some(J::Object(obj)) = defs.get_mut(def) {
            inject_kind(obj, kind);
        }
    }

    let kinds = roots
        .into_iter()
        .map(|(kind, stem, root)| {
            let root = root.to_value();
            let mut schema = Map::new();
            schema.insert("$schema".into(), json!("https://json-schema.org/draft/2020-12/schema"));
            schema.insert("$id".into(), json!(format!("{ID_BASE}{stem}.json")));
            schema.insert("title".into(), json!(format!("tomo {kind} manifest")));
            if let J::Object(r) = root {
                schema.extend(r);
            }
            schema.insert("$defs".into(), J::Object(reachable_defs(&J::Object(schema.clone()), &defs)));
            (kind, stem, J::Object(schema))
        })
        .collect::<Vec<_>>();

    let branches: Vec<J> = kinds
        .iter()
        .map(|(kind, _, s)| {
            let mut then = s.as_object().cloned().unwrap_or_default();
            for k in ["$schema", "$id", "title", "$defs"] {
                then.remove(k);
            }
            json!({"if": {"properties": {"kind": {"const": kind}}, "required": ["kind"]}, "then": then})
        })
        .collect();
    let any = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": format!("{ID_BASE}manifest.json"),
        "title": "tomo manifest (any kind)",
        "description": "One tomo manifest document: a Server, App, Settings or Marketplace.",
        "type": "object",
        "required": ["kind"],
        "properties": {"kind": {"enum": raw::KINDS}},
        "allOf": branches,
        "$defs": defs,
    });
    Schemas { kinds, any }
}

/// Every object schema with properties refuses unknown keys but `x-…`.
fn close_objects(schema: &mut J) {
    match schema {
        J::Object(obj) => {
            if obj.contains_key("properties") {
                obj.entry("additionalProperties").or_insert(J::Bool(false));
                obj.insert("patternProperties".into(), json!({"^x-": {}}));
            }
            for v in obj.values_mut() {
                close_objects(v);
            }
        }
        J::Array(items) => items.iter_mut().for_each(close_objects),
        _ => {}
    }
}

fn inject_kind(obj: &mut Map<String, J>, kind: &str) {
    if let Some(J::Object(props)) = obj.get_mut("properties") {
        let mut with_kind = Map::new();
        with_kind
            .insert("kind".into(), json!({"description": "The document's kind.", "type": "string", "const": kind}));
        with_kind.extend(std::mem::take(props));
        *props = with_kind;
    }
    match obj.get_mut("required") {
        Some(J::Array(req)) => req.insert(0, json!("kind")),
        _ => {
            obj.insert("required".into(), json!(["kind"]));
        }
    }
}

fn reachable_defs(root: &J, defs: &Map<String, J>) -> Map<String, J> {
    let mut seen = BTreeSet::new();
    let mut todo = Vec::new();
    collect_refs(root, &mut todo);
    while let Some(name) = todo.pop() {
        if seen.insert(name.clone())
            && let Some(d) = defs.get(&name)
        {
            collect_refs(d, &mut todo);
        }
    }
    seen.into_iter().filter_map(|n| defs.get(&n).map(|d| (n, d.clone()))).collect()
}

fn collect_refs(v: &J, out: &mut Vec<String>) {
    match v {
        J::Object(obj) => {
            for (k, v) in obj {
                if k == "$ref"
                    && let Some(name) = v.as_str().and_then(|r| r.strip_prefix("#/$defs/"))
                {
                    out.push(name.to_string());
                } else if k != "$defs" {
                    collect_refs(v, out);
                }
            }
        }
        J::Array(items) => items.iter().for_each(|i| collect_refs(i, out)),
        _ => {}
    }
}

/// A structural problem found by `check`.
#[derive(Debug, Clone, PartialEq)]
pub struct SchemaError {
    pub path: FieldPath,
    /// Point at the key rather than the value (unknown fields).
    pub at_key: bool,
    pub code: &'static str,
    pub message: String,
    pub help: Option<String>,
}

/// Checks `node` against the schema of `kind`, returning every problem found.
pub fn check(kind: &str, node: &Node) -> Vec<SchemaError> {
    match schemas().for_kind(kind) {
        Some(schema) => check_against(schema, node),
        None => Vec::new(),
    }
}

/// A self-contained schema for `T` whose objects refuse unknown keys but `x-…`
/// (used for files other than manifests, such as `tomo.yaml`).
pub fn closed_schema_for<T: schemars::JsonSchema>() -> J {
    let mut schema = SchemaSettings::draft2020_12().into_generator().into_root_schema_for::<T>().to_value();
    close_objects(&mut schema);
    schema
}

/// Checks `node` against a self-contained `schema` (with its own `$defs`).
pub fn check_against(schema: &J, node: &Node) -> Vec<SchemaError> {
    let mut w = Walker { defs: schema.get("$defs").and_then(J::as_object), errors: Vec::new() };
    w.check(node, schema, &FieldPath::root());
    w.errors
}

struct Walker<'s> {
    defs: Option<&'s Map<String, J>>,
    errors: Vec<SchemaError>,
}

impl<'s> Walker<'s> {
    fn resolve(&self, schema: &'s J) -> &'s J {
        let mut s = schema;
        for _ in 0..16 {
            match s.get("$ref").and_then(J::as_str).and_then(|r| r.strip_prefix("#/$defs/")) {
                Some(name) if s.as_object().is_some_and(|o| o.len() == 1 || !o.contains_key("type")) => {
                    match self.defs.and_then(|d| d.get(name)) {
                        Some(d) => s = d,
                        None => return s,
                    }
                }
                _ => return s,
            }
        }
        s
    }

    fn err(&mut self, path: &FieldPath, code: &'static str, message: String, help: Option<String>) {
        self.errors.push(SchemaError { path: path.clone(), at_key: false, code, message, help });
    }

    fn check(&mut self, node: &Node, schema: &'s J, path: &FieldPath) {
        let schema = self.resolve(schema);
        if let Some(variants) = schema.get("anyOf").or_else(|| schema.get("oneOf")).and_then(J::as_array) {
            self.check_variants(node, variants, path);
            return;
        }
        if let Some(allowed) = schema.get("enum").and_then(J::as_array) {
            self.check_enum(node, allowed, path);
            return;
        }
        if let Some(c) = schema.get("const") {
            self.check_enum(node, std::slice::from_ref(c), path);
            return;
        }
        let types = schema_types(schema);
        if !types.is_empty() && !types.iter().any(|t| type_matches(t, &node.value)) {
            let expected = describe_types(&types);
            let found = with_article(node.value.type_name());
            let help = match (&node.value, types.contains(&"string")) {
                (Value::Number(n), true) => Some(format!("quote it to make it a string: \"{n}\"")),
                (Value::Bool(b), true) => Some(format!("quote it to make it a string: \"{b}\"")),
                _ => hints::wrong_type(node, &types)
                    .or_else(|| schema.get("description").and_then(J::as_str).map(first_sentence)),
            };
            self.err(path, "wrong-type", format!("expected {expected}, found {found}"), help);
            return;
        }
        match &node.value {
            Value::Map(entries) => self.check_object(node, entries, schema, path),
            Value::Seq(items) => {
                if let Some(item_schema) = schema.get("items") {
                    for (i, item) in items.iter().enumerate() {
                        self.check(item, item_schema, &path.index(i));
                    }
                }
            }
            Value::Number(n) => self.check_range(n, schema, path),
            _ => {}
        }
    }

    fn check_object(&mut self, node: &Node, entries: &[(super::yaml::Key, Node)], schema: &'s J, path: &FieldPath) {
        let props = schema.get("properties").and_then(J::as_object);
        let additional = schema.get("additionalProperties");
        for (key, value) in entries {
            let child = path.key(&key.name);
            if let Some(s) = props.and_then(|p| p.get(&key.name)) {
                self.check(value, s, &child);
            } else if key.name.starts_with("x-") && schema.get("patternProperties").is_some() {
                // extension field: ignored
            } else {
                match additional {
                    Some(J::Bool(false)) => {
                        let known: Vec<&str> =
                            props.map(|p| p.keys().map(String::as_str).collect()).unwrap_or_default();
                        let help = hints::unknown_field(&key.name, value, &known);
                        self.errors.push(SchemaError {
                            path: child,
                            at_key: true,
                            code: "unknown-field",
                            message: format!("unknown field `{}`", key.name),
                            help: Some(help),
                        });
                    }
                    Some(s @ J::Object(_)) => self.check(value, s, &child),
                    _ => {}
                }
            }
        }
        if let Some(required) = schema.get("required").and_then(J::as_array) {
            for r in required.iter().filter_map(J::as_str) {
                if node.get(r).is_none() {
                    let help = props
                        .and_then(|p| p.get(r))
                        .and_then(|s| self.resolve(s).get("description").or_else(|| s.get("description")))
                        .and_then(J::as_str)
                        .map(first_sentence);
                    self.errors.push(SchemaError {
                        path: path.clone(),
                        at_key: !path.is_root(),
                        code: "missing-field",
                        message: format!("missing required field `{r}`"),
                        help,
                    });
                }
            }
        }
    }

    fn check_range(&mut self, n: &str, schema: &J, path: &FieldPath) {
        let Ok(v) = n.parse::<f64>() else { return };
        let min = schema.get("minimum").and_then(J::as_f64);
        let max = schema.get("maximum").and_then(J::as_f64);
        if min.is_some_and(|m| v < m) || max.is_some_and(|m| v > m) {
            let range = match (min, max) {
                (Some(a), Some(b)) => format!("between {a} and {b}"),
                (Some(a), None) => format!("at least {a}"),
                (None, Some(b)) => format!("at most {b}"),
                _ => unreachable!(),
            };
            self.err(path, "out-of-range", format!("{n} is out of range: must be {range}"), None);
        }
    }

    fn check_enum(&mut self, node: &Node, allowed: &[J], path: &FieldPath) {
        let ok = allowed.iter().any(|a| match (a, &node.value) {
            (J::String(a), Value::String(s)) => a == s,
            (J::Bool(a), Value::Bool(b)) => a == b,
            _ => false,
        });
        if ok {
            return;
        }
        let names: Vec<&str> = allowed.iter().filter_map(J::as_str).collect();
        let shown = match &node.value {
            Value::String(s) => format!("`{s}`"),
            other => format!("a {}", other.type_name()),
        };
        let help = node.as_str().and_then(|s| hints::enum_value(s, &names));
        self.err(
            path,
            "invalid-value",
            format!("{shown} is not valid here; expected one of: {}", names.join(", ")),
            help,
        );
    }

    fn check_variants(&mut self, node: &Node, variants: &'s [J], path: &FieldPath) {
        let resolved: Vec<&'s J> = variants.iter().map(|v| self.resolve(v)).collect();
        // A null stands for "not set" where a variant allows it.
        if matches!(node.value, Value::Null) && resolved.iter().any(|v| schema_types(v).contains(&"null")) {
            return;
        }
        // Plain enumerations written as oneOf-of-consts.
        if resolved.iter().all(|v| v.get("const").is_some()) {
            let consts: Vec<J> = resolved.iter().filter_map(|v| v.get("const").cloned()).collect();
            self.check_enum(node, &consts, path);
            return;
        }
        if let Some(tags) = single_key_tags(&resolved)
            && let Value::Map(entries) = &node.value
        {
            // Externally tagged choice: `{key_file: …}` or `{agent: …}` …
            let given: Vec<&str> =
                entries.iter().map(|(k, _)| k.name.as_str()).filter(|k| !k.starts_with("x-")).collect();
            if let [one] = given.as_slice()
                && let Some(i) = tags.iter().position(|t| t == one)
            {
                self.check(node, resolved[i], path);
                return;
            }
            let help = given
                .iter()
                .find_map(|g| did_you_mean(g, tags.iter().copied()))
                .map(|s| format!("did you mean `{s}`?"));
            self.err(path, "invalid-value", format!("expected exactly one of `{}`", tags.join("`, `")), help);
            return;
        }
        let mut best: Option<(i64, usize, Vec<SchemaError>)> = None;
        let mut matching_type = false;
        for (i, v) in resolved.iter().enumerate() {
            if !variant_accepts_type(self, v, &node.value) {
                continue;
            }
            matching_type = true;
            let mut sub = Walker { defs: self.defs, errors: Vec::new() };
            sub.check(node, v, path);
            if sub.errors.is_empty() {
                return;
            }
            let score = shape_score(&sub.errors, v, &resolved, node);
            if best.as_ref().is_none_or(|(s, _, _)| score < *s) {
                best = Some((score, i, sub.errors));
            }
        }
        match (matching_type, best) {
            (true, Some((_, chosen, mut errors))) => {
                name_other_forms(&mut errors, chosen, &resolved, path);
                self.errors.extend(errors);
            }
            _ => {
                let mut kinds: Vec<String> = Vec::new();
                for v in &resolved {
                    let d = describe_variant(self, v);
                    if !kinds.contains(&d) && d != "null" {
                        kinds.push(d);
                    }
                }
                let help = resolved
                    .iter()
                    .filter_map(|v| v.get("description").and_then(J::as_str))
                    .map(first_sentence)
                    .collect::<Vec<_>>();
                let types: Vec<&str> = resolved.iter().flat_map(|v| schema_types(v)).collect();
                let help = match node.value {
                    Value::Null => Some("write a value here (`\"\"` for an empty string)".to_string()),
                    _ => hints::wrong_type(node, &types).or_else(|| (!help.is_empty()).then(|| help.join("; "))),
                };
                self.err(
                    path,
                    "wrong-type",
                    format!("expected {}, found {}", or_list(&kinds), with_article(node.value.type_name())),
                    help,
                );
            }
        }
    }
}

/// How badly a node fits a variant, lower is better; ties go to the earlier
/// variant. A mapping is judged by its own keys only, so that the form it
/// clearly means is chosen and every problem deeper down is reported in that
/// form. A mapping with every required key that only this variant has (an
/// app's `services`) means this variant, as serde would read it. Otherwise a
/// key only another variant has weighs most, a key no variant has little
/// (less still if it looks like a misspelling of one of this variant's
/// fields, `imgae` for `image`), a missing required key some. Anything else
/// is judged by its number of errors.
fn shape_score(errors: &[SchemaError], variant: &J, all: &[&J], node: &Node) -> i64 {
    let Value::Map(entries) = &node.value else { return errors.len() as i64 };
    let required = |v: &J| -> Vec<String> {
        v.get("required")
            .and_then(J::as_array)
            .map(|r| r.iter().filter_map(J::as_str).map(String::from).collect())
            .unwrap_or_default()
    };
    let (distinctive, shared): (Vec<String>, Vec<String>) =
        required(variant).into_iter().partition(|r| !all.iter().all(|v| required(v).contains(r)));
    if !distinctive.is_empty() && distinctive.iter().all(|r| node.get(r).is_some()) {
        return -1000;
    }
    let props = variant.get("properties").and_then(J::as_object);
    let knows = |v: &J, k: &str| v.get("properties").and_then(J::as_object).is_some_and(|p| p.contains_key(k));
    let mut score = 0;
    for (key, _) in entries.iter().filter(|(k, _)| !k.name.starts_with("x-")) {
        score += if knows(variant, &key.name) {
            0
        } else if all.iter().any(|v| knows(v, &key.name)) {
            20
        } else if props.is_some_and(|p| did_you_mean(&key.name, p.keys().map(String::as_str)).is_some()) {
            1
        } else {
            3
        };
    }
    let missing = distinctive.iter().chain(&shared).filter(|r| node.get(r).is_none()).count() as i64;
    score + 4 * missing
}

/// An unknown field of the chosen variant that another variant has gets a
/// help saying so (`image` at the top of an app with `services`).
fn name_other_forms(errors: &mut [SchemaError], chosen: usize, all: &[&J], path: &FieldPath) {
    let props = |v: &J| -> Vec<String> {
        v.get("properties").and_then(J::as_object).map(|p| p.keys().cloned().collect()).unwrap_or_default()
    };
    let known = props(all[chosen]);
    let known: Vec<&str> = known.iter().map(String::as_str).collect();
    for e in errors.iter_mut().filter(|e| e.code == "unknown-field") {
        let [.., PathSeg::Key(k)] = e.path.segments() else { continue };
        if e.path != path.key(k.as_str()) {
            continue;
        }
        let other = all.iter().enumerate().find(|(i, v)| *i != chosen && props(v).contains(k));
        if let Some((_, v)) = other {
            let description = v.get("description").and_then(J::as_str).map(first_sentence);
            e.help = Some(hints::other_form(k, &known, description.as_deref()));
        }
    }
}

/// The tag names of an externally tagged enum: every variant an object with a
/// single required key.
fn single_key_tags<'a>(variants: &[&'a J]) -> Option<Vec<&'a str>> {
    variants
        .iter()
        .map(|v| match v.get("required").and_then(J::as_array).map(Vec::as_slice) {
            Some([J::String(k)]) if v.get("properties").and_then(J::as_object).is_some_and(|p| p.len() == 1) => {
                Some(k.as_str())
            }
            _ => None,
        })
        .collect()
}

fn schema_types(schema: &J) -> Vec<&str> {
    match schema.get("type") {
        Some(J::String(t)) => vec![t.as_str()],
        Some(J::Array(ts)) => ts.iter().filter_map(J::as_str).collect(),
        _ => Vec::new(),
    }
}

fn type_matches(t: &str, v: &Value) -> bool {
    matches!(
        (t, v),
        ("null", Value::Null)
            | ("boolean", Value::Bool(_))
            | ("string", Value::String(_))
            | ("array", Value::Seq(_))
            | ("object", Value::Map(_))
            | ("number", Value::Number(_))
    ) || (t == "integer" && v.type_name() == "integer")
}

fn variant_accepts_type(w: &Walker<'_>, schema: &J, v: &Value) -> bool {
    let schema = w.resolve(schema);
    if let Some(vs) = schema.get("anyOf").or_else(|| schema.get("oneOf")).and_then(J::as_array) {
        return vs.iter().any(|s| variant_accepts_type(w, s, v));
    }
    if schema.get("const").is_some() || schema.get("enum").is_some() {
        return matches!(v, Value::String(_) | Value::Bool(_));
    }
    let types = schema_types(schema);
    types.is_empty() || types.iter().any(|t| type_matches(t, v))
}

fn describe_types(types: &[&str]) -> String {
    let names: Vec<&str> = types
        .iter()
        .filter(|t| **t != "null")
        .map(|t| match *t {
            "object" => "a mapping",
            "array" => "a list",
            "string" => "a string",
            "integer" => "an integer",
            "number" => "a number",
            "boolean" => "true or false",
            other => other,
        })
        .collect();
    or_list(&names)
}

fn or_list<S: AsRef<str>>(items: &[S]) -> String {
    match items {
        [] => String::new(),
        [one] => one.as_ref().to_string(),
        [init @ .., last] => {
            let init: Vec<&str> = init.iter().map(AsRef::as_ref).collect();
            format!("{} or {}", init.join(", "), last.as_ref())
        }
    }
}

fn with_article(type_name: &str) -> String {
    match type_name {
        "integer" | "array" | "object" => format!("an {type_name}"),
        "null" => "nothing (null)".into(),
        other => format!("a {other}"),
    }
}

fn describe_variant(w: &Walker<'_>, schema: &J) -> String {
    let schema = w.resolve(schema);
    if let Some(vs) = schema.get("anyOf").or_else(|| schema.get("oneOf")).and_then(J::as_array) {
        let mut parts: Vec<String> = Vec::new();
        for v in vs {
            let d = describe_variant(w, v);
            if !parts.contains(&d) && d != "null" {
                parts.push(d);
            }
        }
        return or_list(&parts);
    }
    if schema.get("const").is_some() || schema.get("enum").is_some() {
        return "a string".into();
    }
    if let Some(props) = schema.get("properties").and_then(J::as_object)
        && props.len() <= 2
    {
        let keys: Vec<&str> = props.keys().map(String::as_str).collect();
        return format!("a mapping with `{}`", keys.join("`/`"));
    }
    describe_types(&schema_types(schema))
}

fn first_sentence(s: &str) -> String {
    let s = s.split("\n\n").next().unwrap_or(s).replace('\n', " ");
    s.trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::yaml;

    fn errs(kind: &str, text: &str) -> Vec<String> {
        let (docs, e) = yaml::parse(text);
        assert!(e.is_none());
        check(kind, &docs[0].root)
            .into_iter()
            .map(|e| format!("{}: {} ({})", e.path, e.message, e.help.unwrap_or_default()))
            .collect()
    }

    #[test]
    fn valid_documents_pass() {
        assert!(
            errs("App", "kind: App\nname: a\nimage: x\nports: ['80:80', 81, {target: 82}]\nx-note: hi\n").is_empty()
        );
        assert!(errs("App", "kind: App\nname: a\nservices:\n  web: {image: x, state: stopped}\n").is_empty());
        assert!(errs("Server", "kind: Server\nname: s\nhost: local\nauth: {agent: true}\n").is_empty());
    }

    #[test]
    fn collects_every_problem() {
        let e =
            errs("App", "kind: App\nname: a\nimgae: x\nports: [true]\nrestart: 5\nstate: runing\npull: sometimes\n");
        let all = e.join("\n");
        assert!(all.contains("imgae: unknown field `imgae` (did you mean `image`?)"), "{all}");
        assert!(all.contains("missing required field `image`"), "{all}");
        assert!(all.contains("ports[0]: expected"), "{all}");
        assert!(all.contains("restart: expected a string, found an integer"), "{all}");
        assert!(all.contains("state: `runing` is not valid here"), "{all}");
        assert!(all.contains("did you mean `running`?"), "{all}");
        assert!(all.contains("pull: `sometimes`"), "{all}");
    }

    #[test]
    fn a_misspelt_image_in_the_one_service_form_is_named_as_such() {
        let e = errs("App", "kind: App\nname: web\nserver: local\nimgae: nginx:1.27\n");
        assert_eq!(
            e,
            [
                "imgae: unknown field `imgae` (did you mean `image`?)",
                ": missing required field `image` (Image reference, e.g. `nginx:1.27` or `ghcr.io/owner/app@sha256:…`)"
            ]
        );
    }

    #[test]
    fn multi_service_form_is_chosen_by_services() {
        let e = errs("App", "kind: App\nname: a\nservices:\n  web: {imag: x}\n");
        assert!(e.iter().any(|m| m.starts_with("services.web.imag: unknown field")), "{e:?}");
        assert!(e.iter().any(|m| m.starts_with("services.web: missing required field `image`")), "{e:?}");
    }

    const COMPOSE_APP: &str = "kind: App
name: shop
server: local
version: '3.8'
services:
  web:
    image: nginx
    environment:
      - A=1
    depends_on:
      db:
        condition: service_healthy
    expose: ['80']
    mem_limit: 512m
  db:
    image: postgres
    deploy:
      resources:
        limits: {memory: 1g}
    healthcheck:
      test: [CMD-SHELL, pg_isready]
      retries: '3'
    restrat: always
";

    #[test]
    fn a_multi_service_app_reports_every_unknown_field_with_its_hint() {
        let e = errs("App", COMPOSE_APP);
        assert_eq!(
            e,
            [
                "version: unknown field `version` (tomo manifests have no `version`: remove it)",
                "services.web.environment: unknown field `environment` (did you mean `env`? tomo's `env` is a mapping, \
                 one `KEY: value` per line, e.g. `A: …` for `- A=…`)",
                "services.web.depends_on.db.condition: `service_healthy` is not valid here; expected one of: started, \
                 healthy, completed (tomo calls this `healthy`)",
                "services.web.expose: unknown field `expose` (not needed: services of an app reach each other on every \
                 port over the app's network; a container port can be noted unpublished in `ports` as a bare number, \
                 e.g. `ports: [80]`)",
                "services.web.mem_limit: unknown field `mem_limit` (tomo sets this in `resources`: `resources: {memory: 512m}`)",
                "services.db.deploy: unknown field `deploy` (tomo sets these in `resources`: `resources: {memory: 1g}`)",
                "services.db.healthcheck.retries: expected an integer, found a string (write the number without quotes: `3`)",
                "services.db.restrat: unknown field `restrat` (did you mean `restart`?)",
            ]
        );
    }

    #[test]
    fn a_service_field_at_the_top_of_a_multi_service_app_is_named_as_such() {
        let e = errs("App", "kind: App\nname: a\nimage: x\nenvironment: {A: 1}\nservices:\n  web: {image: x}\n");
        assert_eq!(
            e,
            [
                "image: unknown field `image` (an app with `services` sets `image` per service: move it under `services.NAME`)",
                "environment: unknown field `environment` (valid fields here: backup, kind, name, networks, rollout, server, servers, services, state, volumes)",
            ]
        );
        // Without `services`, the one-service form is meant.
        let e = errs("App", "kind: App\nname: a\nimage: x\nenvironment: {A: 1}\ncpus: 2\n");
        assert_eq!(
            e,
            [
                "environment: unknown field `environment` (did you mean `env`? (compose's `environment`))",
                "cpus: unknown field `cpus` (tomo sets this in `resources`: `resources: {cpus: 2}`)",
            ]
        );
    }

    #[test]
    fn a_misspelt_services_is_named_as_such() {
        let e = errs("App", "kind: App\nname: a\nservces:\n  web: {image: x}\n");
        assert_eq!(
            e,
            [
                "servces: unknown field `servces` (did you mean `services`?)",
                ": missing required field `services` (The app's containers, by service name)",
            ]
        );
    }

    #[test]
    fn every_untagged_union_reports_each_unknown_field_in_the_form_meant() {
        let e = errs(
            "App",
            "kind: App\nname: a\nimage: x\n\
             ports: [{target: 80, published: 8080, mode: host}]\n\
             volumes: [{type: bind, source: /a, target: /b, bind: {create_host_path: true}}]\n\
             depends_on: {db: {condition: service_started, restart: true}}\n\
             env: {A: {secrt: db}, B: [1]}\n\
             networks: {front: {aliases: [w], ipv6_address: '::1'}}\n\
             env_file: [{path: a.env, requird: false}]\n\
             resources: {gpus: {count: all, capabilites: [gpu]}}\n\
             files: [{target: /etc/a, content: {secrte: k}}]\n",
        );
        let want = [
            "ports[0].mode: unknown field `mode` (tomo publishes ports on the server itself (compose's `mode: host`): remove `mode`)",
            "volumes[0].bind: unknown field `bind` (write it on the mount itself: `create_host_path: true`)",
            "depends_on.db.condition: `service_started` is not valid here; expected one of: started, healthy, completed (tomo calls this `started`)",
            "depends_on.db.restart: unknown field `restart` (valid fields here: condition, required)",
            "env.A.secrt: unknown field `secrt` (did you mean `secret`?)",
            "env.A: missing required field `secret` (Name of the secret (`tomo secret set NAME`))",
            "env.B: expected a mapping with `secret` or a string, a number or true or false, found an array \
             (A reference to a value in tomo's secret vault; A string, number or boolean)",
            "networks.front.ipv6_address: unknown field `ipv6_address` (did you mean `ipv4_address`?)",
            "env_file[0].requird: unknown field `requird` (did you mean `required`?)",
            "resources.gpus.capabilites: unknown field `capabilites` (did you mean `capabilities`?)",
            "files[0].content.secrte: unknown field `secrte` (did you mean `secret`?)",
            "files[0].content: missing required field `secret` (Name of the secret (`tomo secret set NAME`))",
        ];
        for w in want {
            assert!(e.iter().any(|m| m == w), "missing {w:?} in\n{}", e.join("\n"));
        }
        assert!(!e.iter().any(|m| m.starts_with(": ")), "{e:?}");
    }

    #[test]
    fn compose_list_forms_get_the_mapping_form() {
        let e = errs(
            "App",
            "kind: App\nname: a\nimage: x\nenv: [TZ=UTC, PUID=1000]\nlabels: [a=b]\ntmpfs: /run\nulimits: {nofile: '65535'}\n",
        );
        assert_eq!(
            e,
            [
                "env: expected a mapping, found an array (write a mapping, one `KEY: value` per line, not a list of \
                 `KEY=VALUE` items: `TZ: …` for `- TZ=…`)",
                "labels: expected a mapping, found an array (write a mapping, one `KEY: value` per line, not a list of \
                 `KEY=VALUE` items: `a: …` for `- a=…`)",
                "tmpfs: expected a list, found a string (write a list: `[/run]`)",
                "ulimits.nofile: expected an integer or a mapping with `hard`/`soft`, found a string (write the number \
                 without quotes: `65535`)",
            ]
        );
    }

    #[test]
    fn schemas_close_objects_and_require_kind() {
        let s = schemas();
        let server = s.for_kind("Server").unwrap();
        let def = &server["$defs"]["RawServer"];
        assert_eq!(def["additionalProperties"], json!(false));
        assert_eq!(def["required"][0], json!("kind"));
        assert_eq!(server["$ref"], json!("#/$defs/RawServer"));
        assert_eq!(s.files().len(), 5);
    }
}
