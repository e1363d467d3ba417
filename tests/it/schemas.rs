//! The committed JSON Schemas: fresh, and accepted by an independent validator
//! (Python `jsonschema`, Draft 2020-12) for every example, rejecting unknown fields.

use std::process::Command;

use crate::harness::{Tomo, repo};

#[test]
fn committed_schemas_are_current() {
    let out = repo().join("schemas");
    let r = Tomo::new().run(&["schema", "--check", "--out", out.to_str().unwrap()]);
    assert_eq!(r.code, 0, "schemas/ is stale: run `cargo run -- schema --out schemas`\n{}", r.all());
}

#[test]
fn schema_check_notices_a_stale_folder() {
    let t = Tomo::new();
    assert_eq!(t.run(&["schema", "--out", "s"]).code, 0);
    assert_eq!(t.run(&["schema", "--check", "--out", "s"]).code, 0);
    std::fs::write(t.path().join("s/app.json"), "{}").unwrap();
    let r = t.run(&["schema", "--check", "--out", "s"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("s/app.json"), "{}", r.stderr);
}

const CHECK: &str = r#"
import glob, json, sys, yaml
from jsonschema import Draft202012Validator
root = sys.argv[1]
for name in ["manifest", "server", "app", "settings", "marketplace"]:
    Draft202012Validator.check_schema(json.load(open(f"{root}/schemas/{name}.json")))
v = Draft202012Validator(json.load(open(f"{root}/schemas/manifest.json")))
app = Draft202012Validator(json.load(open(f"{root}/schemas/app.json")))
n = 0
for f in sorted(glob.glob(f"{root}/state/**/*.yaml", recursive=True) + glob.glob(f"{root}/examples/**/*.yaml", recursive=True)):
    for doc in yaml.safe_load_all(open(f)):
        if doc is None:
            continue
        n += 1
        errors = [e.message for e in v.iter_errors(doc)]
        assert not errors, (f, errors)
        if doc["kind"] == "App":
            assert app.is_valid(doc), f
bad = [
    {"kind": "App", "name": "a", "server": "local", "image": "x", "imgae": "y"},
    {"kind": "App", "name": "a", "server": "local", "services": {"w": {"image": "x", "portz": []}}},
    {"kind": "Server", "name": "a", "host": "h", "auth": {"agent": True, "key_file": "k"}},
    {"kind": "Nope"},
]
for b in bad:
    assert not v.is_valid(b), b
assert v.is_valid({"kind": "App", "name": "a", "server": "local", "image": "x", "x-note": 1})
print(f"checked {n} documents")
"#;

#[test]
fn an_independent_validator_agrees() {
    let py = std::env::var("TOMO_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let out = Command::new(&py).args(["-c", CHECK, repo().to_str().unwrap()]).output();
    let out = match out {
        Ok(o) => o,
        Err(e) => panic!("cannot run {py} ({e}); tests/run.sh installs it"),
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("ModuleNotFoundError"),
        "{py} lacks jsonschema or pyyaml; tests/run.sh installs them:\n{stderr}"
    );
    assert!(out.status.success(), "{stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("checked "));
}
