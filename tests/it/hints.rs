//! `tomo validate` on a hand-written manifest in Docker Compose spellings:
//! every problem is reported at its own line, with what tomo calls it.

use crate::harness::Tomo;

/// A multi-service app written as a compose user would; the comment on each
/// line that must be reported names it.
const APP: &str = "\
kind: App
name: shop
server: local
version: '3.8'
services:
  web:
    image: nginx:1.27
    environment:
      - TZ=UTC
      - API_TOKEN=hunter2
    depends_on:
      db:
        condition: service_healthy
    expose: ['80']
    mem_limit: 512m
    cpus: '0.5'
    links: [db]
  db:
    image: postgres:16
    deploy:
      resources:
        limits: {memory: 1g}
        reservations: {memory: 256m}
    healthcheck:
      test: [CMD-SHELL, pg_isready]
      retries: '3'
    restrat: always
    volumes_from: [web]
";

#[test]
fn validate_reports_each_compose_spelling_at_its_line_with_a_hint() {
    let t = Tomo::new().file("state/apps/shop.yaml", APP);
    let r = t.run(&["validate", "--json"]);
    assert_eq!(r.code, 1, "{}", r.all());
    let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("JSON");
    let got: Vec<(u64, String, String, String)> = v["diagnostics"]
        .as_array()
        .expect("diagnostics")
        .iter()
        .map(|d| {
            (
                d["span"]["line"].as_u64().unwrap_or(0),
                d["field"].as_str().unwrap_or("").to_string(),
                d["message"].as_str().unwrap_or("").to_string(),
                d["help"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    let want: [(u64, &str, &str, &str); 11] = [
        (4, "version", "unknown field `version`", "no `version`"),
        (8, "services.web.environment", "unknown field `environment`", "did you mean `env`?"),
        (13, "services.web.depends_on.db.condition", "`service_healthy` is not valid", "tomo calls this `healthy`"),
        (14, "services.web.expose", "unknown field `expose`", "reach each other on every port"),
        (15, "services.web.mem_limit", "unknown field `mem_limit`", "`resources: {memory: 512m}`"),
        (16, "services.web.cpus", "unknown field `cpus`", "`resources: {cpus: 0.5}`"),
        (17, "services.web.links", "unknown field `links`", "by service name"),
        (20, "services.db.deploy", "unknown field `deploy`", "`resources: {memory: 1g, memory_reservation: 256m}`"),
        (26, "services.db.healthcheck.retries", "expected an integer, found a string", "without quotes: `3`"),
        (27, "services.db.restrat", "unknown field `restrat`", "did you mean `restart`?"),
        (28, "services.db.volumes_from", "unknown field `volumes_from`", "list the volumes to share in `volumes`"),
    ];
    assert_eq!(got.len(), want.len(), "{got:#?}");
    for ((line, field, message, help), want) in got.iter().zip(want) {
        assert_eq!((*line, field.as_str()), (want.0, want.1), "{got:#?}");
        assert!(message.contains(want.2), "{field}: {message}");
        assert!(help.contains(want.3), "{field}: {help}");
    }
    assert!(!r.stdout.contains("hunter2"), "a value was echoed in a hint: {}", r.stdout);
    assert!(!r.stdout.contains("missing required field"), "{}", r.stdout);

    let human = t.run(&["validate"]);
    assert_eq!(human.code, 1);
    let e = &human.stderr;
    assert!(e.contains("state/apps/shop.yaml:13:"), "{e}");
    assert!(e.contains("help: tomo calls this `healthy`"), "{e}");
    assert!(e.contains("invalid: 11 errors in state"), "{e}");
}

#[test]
fn a_corrected_manifest_validates() {
    let fixed = "\
kind: App
name: shop
server: local
services:
  web:
    image: nginx:1.27
    env: {TZ: UTC}
    depends_on:
      db: {condition: healthy}
    ports: [80]
    resources: {memory: 512m, cpus: 0.5}
  db:
    image: postgres:16
    resources: {memory: 1g, memory_reservation: 256m}
    healthcheck:
      test: [CMD-SHELL, pg_isready]
      retries: 3
    restart: always
";
    let r = Tomo::new().file("state/apps/shop.yaml", fixed).run(&["validate"]);
    assert_eq!(r.code, 0, "{}", r.all());
}
