//! Compares the two sides' containers field by field; a difference passes
//! only when the conversion report lists a key of that field as `changed`
//! for that service (the report says what and why).

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;
use serde_json::Value;

use super::inspect::{Fields, keys_of};

/// One line of the conversion report (`tomo import compose --json`).
#[derive(Debug, Clone, Deserialize)]
pub struct Entry {
    /// The compose service; empty for the file's top-level keys.
    #[serde(default)]
    pub service: String,
    pub key: String,
    pub status: String,
    #[serde(default)]
    pub note: Option<String>,
}

/// What comparing one app found.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Differences the report does not explain, readable.
    pub failures: Vec<String>,
    /// Differences the report explains (`changed`), with its note.
    pub excused: Vec<String>,
}

/// Service names as both sides spell them (`ssrf_proxy` may become `ssrf-proxy`).
pub fn service_key(name: &str) -> String {
    name.to_lowercase().replace('_', "-")
}

/// The compose key an entry is about: `deploy.resources.limits.memory` → `deploy`.
fn key_root(key: &str) -> &str {
    key.split(['.', '[', ' ', ':', '/']).next().unwrap_or(key)
}

/// The report's `changed` entry for `field` of `service`, if any (an entry
/// of the file's top level, such as a network renamed, explains no
/// container's difference).
fn explained<'a>(report: &'a [Entry], service: &str, field: &str) -> Option<&'a Entry> {
    let keys = keys_of(field);
    report.iter().find(|e| {
        e.status == "changed"
            && !e.service.is_empty()
            && service_key(&e.service) == service
            && keys.contains(&key_root(&e.key))
    })
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 300 { format!("{}…", s.chars().take(300).collect::<String>()) } else { s }
}

/// What differs between two values, readably: for lists the items only one
/// side has, for maps the keys that differ, otherwise both values.
pub fn describe(compose: &Value, tomo: &Value) -> String {
    match (compose, tomo) {
        (Value::Array(a), Value::Array(b)) => {
            let (sa, sb): (BTreeSet<String>, BTreeSet<String>) =
                (a.iter().map(short).collect(), b.iter().map(short).collect());
            let only_a: Vec<&String> = sa.difference(&sb).collect();
            let only_b: Vec<&String> = sb.difference(&sa).collect();
            if only_a.is_empty() && only_b.is_empty() {
                return format!("same items, other order: compose {} / tomo {}", short(compose), short(tomo));
            }
            let mut out = String::new();
            for x in only_a {
                out.push_str(&format!("\n        - compose only: {x}"));
            }
            for x in only_b {
                out.push_str(&format!("\n        + tomo only:    {x}"));
            }
            out
        }
        (Value::Object(a), Value::Object(b)) => {
            let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            let mut out = String::new();
            for k in keys.into_iter().filter(|k| a.get(*k) != b.get(*k)) {
                let (x, y) = (a.get(k).map_or("(none)".into(), short), b.get(k).map_or("(none)".into(), short));
                out.push_str(&format!("\n        {k}: compose {x} / tomo {y}"));
            }
            out
        }
        _ => format!("compose {} / tomo {}", short(compose), short(tomo)),
    }
}

/// Compares every service's fields; `app` names the app in messages.
pub fn compare(
    app: &str,
    compose: &BTreeMap<String, Fields>,
    tomo: &BTreeMap<String, Fields>,
    report: &[Entry],
) -> Outcome {
    let mut out = Outcome::default();
    let services: BTreeSet<&String> = compose.keys().chain(tomo.keys()).collect();
    for svc in services {
        let (Some(c), Some(t)) = (compose.get(svc), tomo.get(svc)) else {
            let side = if compose.contains_key(svc) { "docker-compose only" } else { "tomo only" };
            out.failures.push(format!("{app}/{svc}: a container made by {side}"));
            continue;
        };
        for (field, cv) in c {
            let tv = &t[field];
            if cv == tv {
                continue;
            }
            let what = format!("{app}/{svc} {field}: {}", describe(cv, tv));
            match explained(report, svc, field) {
                Some(e) => out.excused.push(format!(
                    "{what}\n        (report: `{}` changed: {})",
                    e.key,
                    e.note.as_deref().unwrap_or("no note")
                )),
                None => out.failures.push(what),
            }
        }
    }
    out
}

#[test]
fn a_difference_is_excused_only_by_a_changed_entry_of_its_own_service_and_key() {
    let fields = |mem: i64| -> Fields { [("Memory", Value::from(mem)), ("Init", Value::from(false))].into() };
    let compose: BTreeMap<String, Fields> = [("db".to_string(), fields(1))].into();
    let tomo: BTreeMap<String, Fields> = [("db".to_string(), fields(2))].into();
    let entry = |svc: &str, key: &str, status: &str| Entry {
        service: svc.into(),
        key: key.into(),
        status: status.into(),
        note: Some("why".into()),
    };
    let others = [entry("web", "deploy", "changed"), entry("db", "deploy", "mapped"), entry("", "deploy", "changed")];
    let failed = compare("a", &compose, &tomo, &others);
    assert_eq!(failed.failures, vec!["a/db Memory: compose 1 / tomo 2"]);
    let ok = compare("a", &compose, &tomo, &[entry("db", "deploy.resources.limits.memory", "changed")]);
    assert!(ok.failures.is_empty() && ok.excused.len() == 1, "{ok:?}");
}
