//! Makes the tools' JSON Schemas portable: schemars writes `Option<T>` as
//! `"type": ["T", "null"]` and integers with formats such as `uint32`, which
//! strict clients reject. An optional field is already optional by not
//! being `required`, so the `null` is dropped; integer formats go. A free
//! JSON value (`serde_json::Value`: a manifest, a plan) comes out as `true`,
//! which constrains nothing; every such value tomo returns is an object, and
//! says so.

use rmcp::handler::server::tool::ToolRouter;
use serde_json::{Map, Value};

pub fn make_portable<S>(router: &mut ToolRouter<S>) {
    for route in router.map.values_mut() {
        let mut input = Value::Object((*route.attr.input_schema).clone());
        clean(&mut input);
        if let Value::Object(m) = input {
            route.attr.input_schema = std::sync::Arc::new(m);
        }
        if let Some(out) = &route.attr.output_schema {
            let mut output = Value::Object((**out).clone());
            clean(&mut output);
            if let Value::Object(m) = output {
                route.attr.output_schema = Some(std::sync::Arc::new(m));
            }
        }
    }
}

/// Keywords that make a schema say something.
const CONSTRAINING: &[&str] =
    &["type", "$ref", "anyOf", "oneOf", "allOf", "enum", "const", "properties", "items", "not"];

fn free_object() -> Value {
    serde_json::json!({"type": "object", "additionalProperties": true})
}

fn clean(v: &mut Value) {
    match v {
        Value::Object(m) => {
            fix_object(m);
            for (key, child) in m.iter_mut() {
                // Schemas sit under `properties`, `$defs` and `additionalProperties`.
                if matches!(key.as_str(), "properties" | "$defs")
                    && let Value::Object(children) = child
                {
                    for schema in children.values_mut() {
                        let empty = match &*schema {
                            Value::Bool(true) => true,
                            Value::Object(s) => !CONSTRAINING.iter().any(|k| s.contains_key(*k)),
                            _ => false,
                        };
                        if empty {
                            let description = schema.get("description").cloned();
                            *schema = free_object();
                            if let Some(d) = description {
                                schema["description"] = d;
                            }
                        }
                    }
                }
                clean(child);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(clean),
        _ => {}
    }
}

fn fix_object(m: &mut Map<String, Value>) {
    if let Some(Value::Array(types)) = m.get("type") {
        let rest: Vec<Value> = types.iter().filter(|t| *t != "null").cloned().collect();
        if rest.len() == 1 {
            m.insert("type".into(), rest[0].clone());
        } else if rest.len() < types.len() {
            m.insert("type".into(), Value::Array(rest));
        }
    }
    if let Some(Value::Array(any)) = m.get("anyOf") {
        let rest: Vec<Value> = any.iter().filter(|s| s.get("type") != Some(&Value::from("null"))).cloned().collect();
        if rest.len() == 1 && rest.len() < any.len() {
            m.remove("anyOf");
            if let Value::Object(only) = &rest[0] {
                for (k, v) in only {
                    m.entry(k.clone()).or_insert_with(|| v.clone());
                }
            }
        }
    }
    if let Some(Value::Array(e)) = m.get_mut("enum") {
        e.retain(|v| !v.is_null());
    }
    if matches!(m.get("format").and_then(Value::as_str), Some(f) if f.starts_with("int") || f.starts_with("uint")) {
        m.remove("format");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_values_become_free_objects() {
        let mut v = serde_json::json!({"type": "object", "properties": {"plan": true, "doc": {"description": "d"}}});
        clean(&mut v);
        assert_eq!(v["properties"]["plan"], free_object());
        assert_eq!(v["properties"]["doc"]["type"], "object");
        assert_eq!(v["properties"]["doc"]["description"], "d");
    }

    #[test]
    fn drops_null_types_and_integer_formats() {
        let mut v = serde_json::json!({
            "type": "object",
            "properties": {
                "a": {"type": ["string", "null"]},
                "b": {"type": ["integer", "null"], "format": "uint32", "minimum": 0},
                "c": {"anyOf": [{"$ref": "#/$defs/X"}, {"type": "null"}], "description": "d"},
                "d": {"type": ["string", "null"], "enum": ["x", null]}
            }
        });
        clean(&mut v);
        assert_eq!(
            v,
            serde_json::json!({
                "type": "object",
                "properties": {
                    "a": {"type": "string"},
                    "b": {"type": "integer", "minimum": 0},
                    "c": {"$ref": "#/$defs/X", "description": "d"},
                    "d": {"type": "string", "enum": ["x"]}
                }
            })
        );
    }
}
