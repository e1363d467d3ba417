//! The further run options and `required: false` dependencies in the plan:
//! spec hashes of services that use none are unchanged, each option shows
//! in the diff of a recreate, optional dependencies order without holding.

use super::*;

const ALL_OPTIONS: &str = r#"kind: App
name: gpu
server: a
image: img:1
resources:
  memory: 1g
  memory_reservation: 256m
  cpu_shares: 512
  pids: 200
  gpus: [{driver: nvidia, count: 1, capabilities: [gpu, utility]}, {device_ids: ["0", "1"], options: {x: y}}]
runtime: runc
security_opt: ["no-new-privileges:true", "apparmor:unconfined"]
logging: {driver: json-file, options: {max-size: 10m, max-file: 3}}
shm_size: 64m
stop_signal: SIGINT
stdin_open: true
tty: true
"#;

fn spec_of(d: &Desired, app: &str) -> ContainerSpec {
    let app = &d.apps[app];
    let svc = app.services.values().next().unwrap();
    ContainerSpec::new(&Name::parse("a").unwrap(), app, svc)
}

/// Writing an option at its default (`stdin_open: false`, `tty: false`)
/// hashes as not writing it: the spec of such a service is what earlier
/// versions hashed (`the_spec_hash_of_runtime_options_is_unchanged` pins it).
#[test]
fn options_at_their_defaults_leave_the_spec_hash_alone() {
    let plain = spec_of(&desired(RUNTIME_OPTIONS), "edge");
    let explicit = spec_of(&desired(&format!("{RUNTIME_OPTIONS}stdin_open: false\ntty: false\n")), "edge");
    let secrets = NoSecrets("no secrets".into());
    assert_eq!(explicit.hash(&secrets).unwrap(), "d9533df187988e722add2fa48340e5d5");
    assert_eq!(explicit.redacted(&secrets).unwrap(), plain.redacted(&secrets).unwrap());
}

#[test]
fn every_option_is_in_the_spec_as_written() {
    let spec = spec_of(&desired(ALL_OPTIONS), "gpu");
    let v = spec.redacted(&NoSecrets(String::new())).unwrap();
    let got: BTreeMap<&str, String> = [
        "memory_reservation",
        "cpu_shares",
        "pids",
        "gpus",
        "runtime",
        "security_opt",
        "logging",
        "shm_size",
        "stop_signal",
        "stdin_open",
        "tty",
    ]
    .into_iter()
    .map(|k| (k, v[k].to_string()))
    .collect();
    let want = BTreeMap::from([
        ("memory_reservation", "268435456".to_string()),
        ("cpu_shares", "512".into()),
        ("pids", "200".into()),
        (
            "gpus",
            concat!(
                r#"[{"capabilities":[["gpu","utility"]],"count":1,"driver":"nvidia"},"#,
                r#"{"capabilities":[["gpu"]],"device_ids":["0","1"],"options":{"x":"y"}}]"#
            )
            .into(),
        ),
        ("runtime", "\"runc\"".into()),
        ("security_opt", r#"["no-new-privileges:true","apparmor:unconfined"]"#.into()),
        ("logging", r#"{"driver":"json-file","options":{"max-file":"3","max-size":"10m"}}"#.into()),
        ("shm_size", "67108864".into()),
        ("stop_signal", "\"SIGINT\"".into()),
        ("stdin_open", "true".into()),
        ("tty", "true".into()),
    ]);
    assert_eq!(got, want);
    // Round trip, as a saved plan holds it.
    let back: ContainerSpec = serde_json::from_value(serde_json::to_value(&spec).unwrap()).unwrap();
    assert_eq!(back, spec);
}

/// Each option, changed on a deployed container, recreates it and is named
/// in the reasons.
#[test]
fn a_changed_option_recreates_with_its_name_as_the_reason() {
    let before = desired(ALL_OPTIONS);
    let o = observed(&[("a", converged(&before, "a"))]);
    check(&before, &o, &PlanOptions::default(), "");
    for (from, to, reason) in [
        ("memory_reservation: 256m", "memory_reservation: 512m", "memory_reservation changed"),
        ("cpu_shares: 512", "cpu_shares: 1024", "cpu_shares changed"),
        ("pids: 200", "pids: 100", "pids changed"),
        ("count: 1, capabilities", "count: 2, capabilities", "gpus[0].count changed"),
        ("runtime: runc", "runtime: nvidia", "runtime changed"),
        ("apparmor:unconfined", "seccomp:unconfined", "security_opt changed"),
        ("max-file: 3", "max-file: 5", "logging.options.max-file changed"),
        ("shm_size: 64m", "shm_size: 128m", "shm_size changed"),
        ("stop_signal: SIGINT", "stop_signal: SIGQUIT", "stop_signal changed"),
        ("stdin_open: true\n", "", "stdin_open removed"),
        ("tty: true\n", "tty: false\n", "tty removed"),
    ] {
        assert!(ALL_OPTIONS.contains(from), "{from}");
        let after = desired(&ALL_OPTIONS.replace(from, to));
        let p = plan_with(&after, &o, &PlanOptions::default());
        assert_eq!(render(&p).trim(), "~ recreate gpu @a", "{from}");
        assert_eq!(p.actions[0].reasons, [reason], "{from}");
    }
}

#[test]
fn invalid_options_are_reported_at_their_field() {
    let base = "kind: App\nname: x\nserver: local\nimage: img:1\n";
    for (extra, code, line, field) in [
        ("stop_signal: SIGFOO\n", "invalid-signal", 5, "stop_signal"),
        ("shm_size: lots\n", "invalid-size", 5, "shm_size"),
        ("resources:\n  memory_reservation: 1x\n", "invalid-size", 6, "resources.memory_reservation"),
        ("resources:\n  pids: 0\n", "invalid-value", 6, "resources.pids"),
        ("resources:\n  gpus: some\n", "invalid-gpus", 6, "resources.gpus"),
        ("resources:\n  gpus: 0\n", "invalid-gpus", 6, "resources.gpus"),
        ("resources:\n  gpus: {count: 1, device_ids: [\"0\"]}\n", "invalid-gpus", 6, "resources.gpus.device_ids"),
        ("resources:\n  gpus:\n    - {count: -2}\n", "invalid-gpus", 7, "resources.gpus[0].count"),
        ("runtime: \"a b\"\n", "invalid-value", 5, "runtime"),
    ] {
        let sources = Sources::from_texts([("m.yaml", format!("{base}{extra}").as_str())]);
        let l = manifest::load(
            &sources,
            &LoadOptions { secrets: &SecretCheck::Known(Default::default()), inline_check: |_| Ok(()) },
        );
        let d: Vec<_> = l.diagnostics.iter().map(|d| (d.code, d.span.map(|s| s.line), d.field.to_string())).collect();
        assert_eq!(d, [(code, Some(line), field.to_string())], "{extra}");
    }
}

const OPTIONAL: &str = "kind: App\nname: shop\nserver: a\nservices:\n  db:\n    image: img:1\n  cache:\n    image: img:1\n  web:\n    image: img:1\n    depends_on:\n      db: started\n      cache: {condition: healthy, required: false}\n      search: {condition: started, required: false}\n";

/// An optional dependency orders the bring-up (`after_any`) but is not an
/// edge a failure travels along; one that names no service is a warning.
#[test]
fn optional_dependencies_order_without_holding() {
    let sources =
        Sources::from_texts([("m.yaml", format!("kind: Server\nname: a\nhost: local\n---\n{OPTIONAL}").as_str())]);
    let l = manifest::load(
        &sources,
        &LoadOptions { secrets: &SecretCheck::Known(Default::default()), inline_check: |_| Ok(()) },
    );
    let diags: Vec<_> = l.diagnostics.iter().map(|d| (d.severity, d.code, d.span.map(|s| s.line))).collect();
    assert_eq!(diags, [(crate::diag::Severity::Warning, "unknown-service", Some(18))]);
    let d = desired(OPTIONAL);
    let p = plan_with(&d, &observed(&[("a", empty())]), &PlanOptions::default());
    let id = |object: &str, verb: &str| {
        p.actions.iter().find(|a| a.op.object() == object && a.op.verb() == verb).map(|a| a.id).unwrap()
    };
    let web = &p.actions[id("shop-web", "create")];
    assert!(web.after.contains(&id("shop-db", "start")), "{web:?}");
    assert_eq!(web.after_any, [id("shop-cache", "start")]);
    assert!(!web.after.contains(&id("shop-cache", "start")));
    // The optional dependency is still waited for as asked (healthy).
    assert!(matches!(&p.actions[id("shop-cache", "start")].op, Op::Start { wait: Wait::Healthy, .. }));
    // Holding the optional dependency does not hold `web`.
    let (rest, held) = p.without(&[id("shop-cache", "start")].into());
    assert_eq!(held.len(), 1, "{held:?}");
    assert!(rest.actions.iter().all(|a| a.after_any.iter().all(|b| *b < rest.actions.len())));
    // DOT shows it dashed; a saved plan keeps it.
    assert!(to_dot(&p).contains("[style=dashed]"));
    let back: Plan = serde_json::from_str(&serde_json::to_string(&p).unwrap()).unwrap();
    assert_eq!(back.actions[web.id].after_any, web.after_any);
}
