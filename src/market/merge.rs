//! The three-way merge of an installed app's manifest: the store's old
//! manifest (`base`, as installed), the store's new one (`theirs`) and the
//! user's file (`ours`), at the level of the YAML tree (as JSON values).
//!
//! A mapping is merged key by key; anything else (a scalar, a list) is one
//! value. Per value: unchanged by one side → the other side's; changed alike
//! by both → that; changed differently by both → a [`Conflict`], and the
//! user's value stays. Pure.

use serde::Serialize;
use serde_json::{Map, Value};

/// A value both the store and the user changed, differently.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Conflict {
    /// Dotted path of the value, e.g. `services.web.image`.
    pub path: String,
    /// The store's old value (`null`: absent).
    pub base: Value,
    /// The user's.
    pub ours: Value,
    /// The store's new one.
    pub theirs: Value,
}

/// A merge: the document to write (the user's value where they conflict) and the conflicts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Merged {
    pub value: Value,
    pub conflicts: Vec<Conflict>,
}

/// Merges `theirs`'s changes from `base` into `ours`.
pub fn merge(base: &Value, ours: &Value, theirs: &Value) -> Merged {
    let mut conflicts = Vec::new();
    let value = walk("", Some(base), Some(ours), Some(theirs), &mut conflicts).unwrap_or(Value::Null);
    Merged { value, conflicts }
}

fn walk(
    path: &str,
    base: Option<&Value>,
    ours: Option<&Value>,
    theirs: Option<&Value>,
    conflicts: &mut Vec<Conflict>,
) -> Option<Value> {
    if ours == theirs || base == theirs {
        return ours.cloned();
    }
    if base == ours {
        return theirs.cloned();
    }
    if let (Some(Value::Object(o)), Some(Value::Object(t))) = (ours, theirs) {
        let empty = Map::new();
        let b = match base {
            Some(Value::Object(b)) => b,
            _ => &empty,
        };
        let mut out = Map::new();
        // The user's key order first, then keys the store added.
        let keys = o.keys().chain(t.keys().filter(|k| !o.contains_key(*k))).chain(b.keys());
        let mut seen = std::collections::BTreeSet::new();
        for k in keys {
            if !seen.insert(k.clone()) {
                continue;
            }
            let p = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
            if let Some(v) = walk(&p, b.get(k), o.get(k), t.get(k), conflicts) {
                out.insert(k.clone(), v);
            }
        }
        return Some(Value::Object(out));
    }
    let or_null = |v: Option<&Value>| v.cloned().unwrap_or(Value::Null);
    conflicts.push(Conflict {
        path: path.to_string(),
        base: or_null(base),
        ours: or_null(ours),
        theirs: or_null(theirs),
    });
    ours.cloned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keeps_the_users_edit_and_takes_the_stores() {
        let base = json!({"image": "a:1", "ports": ["8080:80"], "env": {"A": "1"}});
        let ours = json!({"image": "a:1", "ports": ["9090:80"], "env": {"A": "1", "MINE": "x"}});
        let theirs = json!({"image": "a:2", "ports": ["8080:80"], "env": {"A": "1", "NEW": "y"}});
        let m = merge(&base, &ours, &theirs);
        assert!(m.conflicts.is_empty());
        assert_eq!(m.value, json!({"image": "a:2", "ports": ["9090:80"], "env": {"A": "1", "MINE": "x", "NEW": "y"}}));
    }

    #[test]
    fn a_conflict_keeps_the_users_value_and_reports_both() {
        let base = json!({"image": "a:1"});
        let ours = json!({"image": "a:1-custom"});
        let theirs = json!({"image": "a:2"});
        let m = merge(&base, &ours, &theirs);
        assert_eq!(m.value, ours);
        assert_eq!(
            m.conflicts,
            vec![Conflict {
                path: "image".into(),
                base: json!("a:1"),
                ours: json!("a:1-custom"),
                theirs: json!("a:2")
            }]
        );
    }

    #[test]
    fn removals_on_either_side() {
        let base = json!({"a": 1, "b": 2, "c": 3});
        let ours = json!({"a": 1, "c": 3});
        let theirs = json!({"a": 1, "b": 2});
        assert_eq!(merge(&base, &ours, &theirs).value, json!({"a": 1}));
        // The store removes what the user changed: a conflict.
        let ours = json!({"a": 1, "b": 5, "c": 3});
        let m = merge(&base, &ours, &json!({"a": 1, "c": 3}));
        assert_eq!(m.conflicts.len(), 1);
        assert_eq!(m.conflicts[0].theirs, Value::Null);
    }

    #[test]
    fn no_change_in_the_store_is_the_users_file() {
        let base = json!({"x": {"y": [1, 2]}});
        let ours = json!({"x": {"y": [3]}, "z": true});
        assert_eq!(merge(&base, &ours, &base).value, ours);
    }
}
