//! Random and mutated YAML never panics the loader: every input ends in a
//! desired state or diagnostics.

use tomo::manifest::{self, LoadOptions, SecretCheck, Sources};

use crate::harness::repo;

/// A small deterministic PRNG (xorshift64*), so failures reproduce by seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const ALPHABET: &[&str] = &[
    ":",
    "-",
    " ",
    "  ",
    "\n",
    "\t",
    "[",
    "]",
    "{",
    "}",
    ",",
    "&a",
    "*a",
    "!!str ",
    "!x ",
    "|",
    ">",
    "'",
    "\"",
    "#",
    "?",
    "<<: ",
    "---\n",
    "...",
    "%YAML 1.2\n",
    "\\",
    "é",
    "0x1F",
    "1e9",
    "~",
    "null",
    "true",
    "kind",
    "App",
    "Server",
    "services",
    "image",
    "ports",
    "depends_on",
    "8080:80",
    "${A}",
    "\u{feff}",
    "\r\n",
];

fn load(text: &str) -> manifest::Loaded {
    let sources = Sources::from_texts([("fuzz.yaml", text)]);
    let secrets = SecretCheck::Known(Default::default());
    let l =
        manifest::load(&sources, &LoadOptions { secrets: &secrets, inline_check: tomo::vault::check_inline_format });
    // Every diagnostic renders without panicking too.
    for d in l.diagnostics.iter() {
        let _ = d.to_string();
    }
    l
}

/// Asserts that `text` is refused (nothing loaded) with an error saying `why`.
fn assert_refused(text: &str, why: &str) {
    let l = load(text);
    let errors: Vec<String> = l.diagnostics.iter().filter(|d| d.is_error()).map(|d| d.to_string()).collect();
    assert!(l.desired.is_none(), "loaded although it should be refused ({why}): {errors:?}");
    assert!(errors.iter().any(|e| e.contains(why)), "no error says `{why}`: {errors:?}");
}

fn seeds() -> Vec<String> {
    let mut v = Vec::new();
    for dir in ["state", "examples/homelab", "tests/invalid"] {
        let s = manifest::read_dir(&repo().join(dir)).unwrap();
        v.extend(s.files.iter().map(|f| f.text.clone()));
    }
    v
}

#[test]
fn mutated_manifests_never_panic() {
    let seeds = seeds();
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    for i in 0..4000 {
        let mut text = seeds[rng.below(seeds.len())].clone();
        for _ in 0..1 + rng.below(6) {
            let mut at = rng.below(text.len() + 1);
            while !text.is_char_boundary(at) {
                at -= 1;
            }
            match rng.below(3) {
                0 => text.insert_str(at, ALPHABET[rng.below(ALPHABET.len())]),
                1 => {
                    let mut end = (at + 1 + rng.below(12)).min(text.len());
                    while !text.is_char_boundary(end) {
                        end += 1;
                    }
                    text.replace_range(at..end, "");
                }
                _ => {
                    let lines: Vec<&str> = text.lines().collect();
                    if lines.len() > 1 {
                        let l = lines[rng.below(lines.len())].to_string();
                        text.insert_str(at, &format!("{l}\n"));
                    }
                }
            }
        }
        let r = std::panic::catch_unwind(|| load(&text));
        assert!(r.is_ok(), "iteration {i} panicked on:\n{text}");
    }
}

#[test]
fn random_yaml_never_panics() {
    let mut rng = Rng(0xdead_beef_cafe_f00d);
    for i in 0..3000 {
        let mut text = String::new();
        for _ in 0..rng.below(40) {
            text.push_str(ALPHABET[rng.below(ALPHABET.len())]);
        }
        let r = std::panic::catch_unwind(|| load(&text));
        assert!(r.is_ok(), "iteration {i} panicked on: {text:?}");
    }
}

#[test]
fn deep_nesting_and_alias_bombs_are_refused() {
    // Past tomo's cap of 64 levels, and past the YAML parser's own limit.
    let deep = format!("{}{}", "[".repeat(100), "]".repeat(100));
    assert_refused(&deep, "nesting is deeper than 64 levels");
    let deeper = format!("{}{}", "[".repeat(500), "]".repeat(500));
    assert_refused(&deeper, "YAML syntax error: recursion limit exceeded");
    let mut bomb = String::from("a: &a [x,x,x,x,x,x,x,x,x,x]\n");
    for (p, c) in ('a'..='i').zip('b'..='j') {
        bomb.push_str(&format!("{c}: &{c} [*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p}]\n"));
    }
    assert_refused(&bomb, "document is too large (more than 200000 values after expanding aliases)");
}

// ---- property-based fuzzing of every parser that takes user text ----

use std::collections::BTreeMap;

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use serde_json::{Value, json};
use tomo::model::ports::{Mount, PortMapping, PortRange, check_container_path};
use tomo::model::values::{ByteSize, Duration, ImageRef, Name, Restart};

/// Pieces of the syntaxes tomo parses, mixed with multibyte, combining,
/// bidi and control characters.
const PIECES: &[&str] = &[
    "€",
    "é",
    "ß",
    "😀",
    "\u{301}",
    "\u{202e}",
    "\u{feff}",
    "\0",
    "\n",
    "\t",
    " ",
    ":",
    "/",
    "@",
    "-",
    "--",
    "_",
    "__",
    ".",
    "..",
    ",",
    "=",
    "[",
    "]",
    "{",
    "}",
    "'",
    "\"",
    "#",
    "*",
    "&",
    "!",
    "%",
    "$",
    "~",
    "\\",
    "ro",
    "rw",
    "z",
    "tcp",
    "udp",
    "sha256",
    "127.0.0.1",
    "[::1]",
    "::",
    "0",
    "1",
    "9",
    "80",
    "8080",
    "65535",
    "65536",
    "99999999999999999999",
    "1.5",
    "-1",
    "ms",
    "s",
    "m",
    "h",
    "d",
    "k",
    "g",
    "t",
    "b",
    "kib",
    "on-failure",
    "always",
    "a",
    "Z",
    "nginx",
    "localhost",
    "ghcr.io",
    "x-",
    "kind",
    "App",
    "Server",
    "secret",
    "enc:v1:",
];

/// Text made of syntax pieces and arbitrary characters.
fn text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![3 => prop::sample::select(PIECES).prop_map(String::from), 1 => any::<char>().prop_map(String::from)];
    prop_oneof![
        4 => prop::collection::vec(piece, 0..40).prop_map(|v| v.concat()),
        1 => "\\PC{0,80}",
        // One character, multibyte or not, repeated to every length around the limits.
        1 => (prop::sample::select(&["a", "é", "€", "😀", "\u{301}", "-", "0"][..]), 0usize..300)
            .prop_map(|(c, n)| c.repeat(n)),
    ]
}

/// 2000 cases a property; `PROPTEST_CASES` asks for more (a longer hunt).
fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(2000);
    ProptestConfig { cases, ..ProptestConfig::default() }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn value_parsers_never_panic(s in text()) {
        if let Ok(n) = Name::parse(&s) {
            prop_assert_eq!(n.as_str(), s.as_str());
        }
        if let Ok(d) = Duration::parse(&s) {
            prop_assert_eq!(Duration::parse(&d.to_string()), Ok(d));
        }
        if let Ok(b) = ByteSize::parse(&s) {
            let _ = b.to_string();
        }
        if let Ok(i) = ImageRef::parse(&s) {
            prop_assert_eq!(i.to_string(), s.clone());
        }
        let _ = Restart::parse(&s);
        let _ = PortRange::parse(&s).map(|r| r.to_string());
        let _ = PortMapping::parse(&s).map(|p| format!("{p:?}"));
        let _ = Mount::parse(&s);
        let _ = check_container_path(&s);
        let _ = s.parse::<Name>();
    }

    #[test]
    fn any_text_in_any_manifest_field_is_loaded_or_diagnosed(field in 0..FIELDS.len(), s in text(), quoted in any::<bool>()) {
        // A JSON string is a valid YAML double-quoted scalar; unquoted, the text also probes the YAML reader.
        let value = if quoted { serde_json::to_string(&s).unwrap() } else { s.clone() };
        load(&FIELDS[field].replace("X", &value));
    }

    #[test]
    fn arbitrary_bytes_in_a_manifest_file_are_loaded_or_diagnosed(
        bytes in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..300),
            (text(), prop::collection::vec(any::<u8>(), 0..4), any::<prop::sample::Index>()).prop_map(|(t, junk, at)| {
                let mut b = format!("kind: App\nname: {t}\nserver: local\nimage: nginx\n").into_bytes();
                let i = at.index(b.len() + 1);
                b.splice(i..i, junk);
                b
            }),
        ]
    ) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("m.yaml"), &bytes).unwrap();
        let sources = manifest::read_dir(dir.path());
        prop_assert!(sources.is_ok(), "{:?}", sources.err());
        let loaded = load_sources(&sources.unwrap());
        if std::str::from_utf8(&bytes).is_err() {
            let d = loaded.diagnostics.iter().find(|d| d.code == "not-utf8");
            prop_assert!(d.is_some(), "{:?}", loaded.diagnostics);
            let file = d.unwrap().file.as_ref().map(|f| f.path.clone()).unwrap_or_default();
            prop_assert_eq!(file, dir.path().join("m.yaml"));
        }
    }

    #[test]
    fn configuration_and_environment_values_never_panic(
        values in prop::collection::vec(text(), ENV_VARS.len()),
        field in 0..CONFIG_FIELDS.len(),
        value in text(),
        quoted in any::<bool>(),
        dotenv in text(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tomo.yaml");
        let value = if quoted { serde_json::to_string(&value).unwrap() } else { value };
        std::fs::write(&file, CONFIG_FIELDS[field].replace("X", &value)).unwrap();
        std::fs::write(dir.path().join(".env"), format!("SSH_TIMEOUT={dotenv}\n")).unwrap();
        let env: BTreeMap<String, String> =
            ENV_VARS.iter().zip(&values).map(|(k, v)| (k.to_string(), v.replace('\0', ""))).collect();
        let args = tomo::config::ConfigArgs { config: Some(file), dir: None };
        let _ = tomo::config::Config::load(&args, &env).map_err(|e| e.to_string());
        let _ = tomo::config::Config::load(&args, &BTreeMap::new()).map_err(|e| e.to_string());
    }
}

/// `tomo.yaml` with one field left as `X`.
const CONFIG_FIELDS: &[&str] = &[
    "ssh: {timeout: X, max_concurrent_connections: 4}\n",
    "ssh: {max_concurrent_connections: X}\n",
    "manifests: X\ndata_dir: X\n",
    "mcp: {http: X, allowed_origins: [X], allowed_hosts: [X]}\n",
    "log: {level: X, format: X}\n",
    "X",
];

const ENV_VARS: &[&str] = &[
    "DATA_DIRECTORY",
    "SSH_TIMEOUT",
    "MAX_CONCURRENT_CONNECTIONS",
    "ALLOWED_ORIGINS",
    "ALLOWED_HOSTS",
    "MCP_LOG_LEVEL",
    "APP_ENV",
    "JWT_SECRET_KEY",
    "TOMO_MASTER_PASSWORD",
    "TOMO_SALT",
];

/// Manifests with one field left as `X`, replaced by generated text.
const FIELDS: &[&str] = &[
    "kind: App\nname: X\nserver: local\nimage: nginx\n",
    "kind: App\nname: web\nserver: X\nimage: nginx\n",
    "kind: App\nname: web\nservers: [X]\nimage: nginx\n",
    "kind: App\nname: web\nserver: local\nimage: X\n",
    "kind: App\nname: web\nserver: local\nimage: nginx\nports: [X]\n",
    "kind: App\nname: web\nserver: local\nimage: nginx\nports: [{target: 80, published: X, host_ip: X}]\n",
    "kind: App\nname: web\nserver: local\nimage: nginx\nvolumes: [X]\n",
    "kind: App\nname: web\nserver: local\nimage: nginx\nvolumes: [{type: bind, source: X, target: X}]\n",
    "kind: App\nname: web\nserver: local\nimage: nginx\nenv: {X: v}\n",
    "kind: App\nname: web\nserver: local\nimage: nginx\nenv: {A: X}\n",
    "kind: App\nname: web\nserver: local\nimage: nginx\nenv: {A: {secret: X}}\n",
    "kind: App\nname: web\nserver: local\nimage: nginx\nrestart: X\n",
    "kind: App\nname: web\nserver: local\nimage: nginx\nhealthcheck: {test: X, interval: X, timeout: X, start_period: X}\n",
    "kind: App\nname: web\nserver: local\nimage: nginx\nresources: {memory: X}\n",
    "kind: App\nname: web\nserver: local\nimage: nginx\nstop_grace_period: X\n",
    "kind: App\nname: web\nserver: local\nimage: nginx\nlabels: {X: X}\n",
    "kind: App\nname: web\nserver: local\nimage: nginx\ncommand: X\nentrypoint: [X]\n",
    "kind: App\nname: web\nserver: local\nimage: nginx\nuser: X\nworking_dir: X\nhostname: X\n",
    "kind: App\nname: web\nserver: local\nimage: nginx\ncap_add: [X]\ndevices: [X]\ntmpfs: [X]\n",
    "kind: App\nname: web\nserver: local\nimage: nginx\nsysctls: {X: X}\nextra_hosts: [X]\n",
    "kind: App\nname: web\nserver: local\nimage: nginx\nulimits: {X: {soft: 1, hard: 2}}\n",
    "kind: App\nname: web\nserver: local\nservices: {X: {image: nginx}}\n",
    "kind: App\nname: web\nserver: local\nservices: {a: {image: nginx, depends_on: [X]}, b: {image: nginx}}\n",
    "kind: App\nname: web\nserver: local\nservices: {a: {image: nginx, networks: [X]}}\nnetworks: {X: {}}\n",
    "kind: App\nname: web\nserver: local\nservices: {a: {image: nginx, volumes: [X]}}\nvolumes: {X: {name: X}}\n",
    "kind: Server\nname: X\nhost: h.example\nauth: {agent: true}\n",
    "kind: Server\nname: s\nhost: X\nport: 22\nuser: X\nauth: {agent: true}\n",
    "kind: Server\nname: s\nhost: h.example\nauth: {key_file: X}\nhost_key: X\n",
    "kind: Server\nname: s\nhost: h.example\nauth: {password: {secret: X}}\ndocker: {socket: X}\n",
    "kind: Settings\nhealth_timeout: X\nwatch: {interval: X, destructive: X}\nmcp: {require_approval: X}\n",
    "kind: Marketplace\nname: X\nurl: X\nref: X\n",
    "X",
    "kind: X\n",
];

fn load_sources(sources: &Sources) -> manifest::Loaded {
    let secrets = SecretCheck::Known(["db".to_string()].into());
    let l = manifest::load(sources, &LoadOptions { secrets: &secrets, inline_check: tomo::vault::check_inline_format });
    for d in l.diagnostics.iter() {
        let _ = d.to_string();
    }
    l
}

/// A JSON value for a tool argument: text as above, numbers at the edges,
/// nested lists and objects.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        4 => text().prop_map(Value::String),
        1 => Just(Value::Null),
        1 => any::<bool>().prop_map(Value::Bool),
        1 => any::<i64>().prop_map(|n| json!(n)),
        1 => prop::sample::select(&[0u64, 1, 65535, 65536, u32::MAX as u64, u64::MAX][..]).prop_map(|n| json!(n)),
        1 => any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(text(), inner, 0..6).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Tools left out of argument fuzzing: they act on the shared Docker Engine
/// (apply, restart, prune) or connect to the network (server_test).
const NOT_FUZZED: &[&str] = &["apply", "app_restart", "docker_prune", "server_test"];

#[test]
fn generated_arguments_for_every_tool_never_panic_the_mcp_server() {
    let tomo = crate::harness::Tomo::new()
        .env("DATA_DIRECTORY", "data")
        .env("TOMO_LOG", "warn")
        .file("state/web.yaml", "kind: App\nname: fuzz-web\nserver: local\nimage: tomo-fuzz-absent:1\n");
    let mut c = crate::mcp_client::Stdio::start(&tomo, "agent");
    let tools = c.request("tools/list", json!({}));
    let tools = tools["result"]["tools"].as_array().expect("tools").clone();
    let mut runner = TestRunner::deterministic();
    let value = json_value();
    let key = text();
    let mut calls = 0;
    // About a dozen rounds; more with PROPTEST_CASES.
    for round in 0..config().cases.div_ceil(160).max(12) as usize {
        for tool in &tools {
            let name = tool["name"].as_str().unwrap();
            if NOT_FUZZED.contains(&name) {
                continue;
            }
            let props: Vec<String> =
                tool["inputSchema"]["properties"].as_object().map(|p| p.keys().cloned().collect()).unwrap_or_default();
            let mut args = serde_json::Map::new();
            for (i, p) in props.iter().enumerate() {
                // Every argument in the first round, then a varying subset.
                if round == 0 || (round + i) % 3 != 0 {
                    args.insert(p.clone(), value.new_tree(&mut runner).unwrap().current());
                }
            }
            // Every other round edits the app that exists (the manifest editor's paths).
            if round % 2 == 1 && props.iter().any(|p| p == "name") && name.starts_with("app_") {
                args.insert("name".into(), json!("fuzz-web"));
            }
            if round % 4 == 3 {
                args.insert(
                    key.new_tree(&mut runner).unwrap().current(),
                    value.new_tree(&mut runner).unwrap().current(),
                );
            }
            let args = Value::Object(args);
            let msg = c.request("tools/call", json!({"name": name, "arguments": args}));
            calls += 1;
            let internal = msg["error"]["code"] == json!(-32603)
                || msg["result"]["content"][0]["text"].as_str().is_some_and(|t| t.contains("internal error"));
            assert!(!internal, "{name} with {args} gave an internal error: {msg}");
            assert!(msg["result"].is_object() || msg["error"].is_object(), "{name} with {args}: {msg}");
        }
    }
    assert!(calls > 300, "{calls}");
    // Multibyte names at every length around the limit, for the tools that take a name.
    for n in [20, 21, 30, 62, 63, 64, 65, 100] {
        let name = "€".repeat(n);
        for (tool, args) in [
            ("app_deploy", json!({"name": name, "image": "nginx"})),
            ("app_get", json!({"name": name})),
            ("app_update", json!({"name": name, "image": "nginx"})),
            ("app_remove", json!({"name": name})),
            ("server_add", json!({"name": name, "host": "h.example"})),
        ] {
            let msg = c.request("tools/call", json!({"name": tool, "arguments": args}));
            let r = crate::mcp_client::called(msg);
            assert!(r.is_error && !r.text.contains("internal error"), "{tool} {n}: {r:?}");
        }
    }
    assert!(!c.call("app_list", json!({})).is_error, "the server still answers");
    // The tools an agent may not call are refused before their arguments are
    // read: an admin session reaches the arguments of the harmless ones.
    let mut admin = crate::mcp_client::Stdio::start(&tomo, "admin");
    for _ in 0..40 {
        for tool in ["proposal_approve", "proposal_reject"] {
            let args = json!({"id": value.new_tree(&mut runner).unwrap().current(),
                "reason": value.new_tree(&mut runner).unwrap().current()});
            let msg = admin.request("tools/call", json!({"name": tool, "arguments": args}));
            let r = crate::mcp_client::called(msg);
            assert!(r.is_error && !r.text.contains("internal error"), "{tool} with {args}: {r:?}");
        }
    }
}

#[test]
fn multibyte_names_of_every_length_are_diagnosed() {
    for c in ["é", "€", "😀"] {
        for n in 1..=70 {
            let text = format!("kind: App\nname: {}\nserver: local\nimage: nginx\n", c.repeat(n));
            let l = load_sources(&Sources::from_texts([("m.yaml", text.as_str())]));
            let d = l.diagnostics.iter().find(|d| d.field.to_string() == "name");
            assert!(
                d.is_some_and(|d| d.is_error() && d.span.is_some_and(|s| s.line == 2)),
                "{c} × {n}: {:?}",
                l.diagnostics
            );
        }
    }
}

/// 90,000 keys in one mapping (and 30,000 merged ones) take linear time: a
/// duplicate check that scanned the mapping per key took most of a minute.
#[test]
fn a_mapping_of_90k_keys_is_validated_in_linear_time() {
    let mut text = String::from("kind: App\nname: big\nserver: local\nimage: nginx\nlabels:\n");
    for i in 0..90_000 {
        text.push_str(&format!(" k{i}: v\n"));
    }
    text.push_str(" k17: again\n");
    assert!(text.len() <= 1 << 20, "within the size limit of one file");
    let started = std::time::Instant::now();
    let l = load_sources(&Sources::from_texts([("big.yaml", text.as_str())]));
    let took = started.elapsed();
    let errors: Vec<String> = l.diagnostics.iter().filter(|d| d.is_error()).map(|d| d.to_string()).collect();
    assert_eq!(errors, ["big.yaml:90006:2: duplicate key `k17` (`k17` is already set at line 23; keep only one)"]);
    eprintln!("validation of a 90k-key mapping: {} ms", took.as_millis());
    // A debug build among other tests (a release build takes a fraction);
    // the quadratic check took 48 s here.
    assert!(took < std::time::Duration::from_secs(4), "took {took:?}");

    // 30,000 merged keys, each then set again (within the limit of values per document).
    let mut merged = String::from("x-base: &b\n");
    for i in 0..30_000 {
        merged.push_str(&format!("  k{i}: v\n"));
    }
    merged.push_str("kind: App\nname: big\nserver: local\nimage: nginx\nlabels:\n  <<: *b\n");
    for i in 0..30_000 {
        merged.push_str(&format!("  k{i}: w\n"));
    }
    let started = std::time::Instant::now();
    let (docs, err) = manifest::yaml::parse(&merged);
    let took = started.elapsed();
    assert!(err.is_none() && docs[0].problems.is_empty(), "{err:?}");
    let labels = docs[0].root.get("labels").unwrap().as_map().unwrap();
    assert_eq!(labels.len(), 30_000);
    assert!(labels.iter().all(|(_, v)| v.as_str() == Some("w")));
    assert!(took < std::time::Duration::from_secs(4), "took {took:?}");
}
