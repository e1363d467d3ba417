//! Compose files: tomo's interpolation agrees with docker-compose's on the
//! same file and environment.

use std::process::Command;

use tomo::compose::interpolate::interpolate;

/// Expressions docker-compose 1.29 understands (it has no `:+`/`+` and no
/// nesting; the spec's forms beyond it are pinned by unit tests).
const CASES: &[&str] = &[
    "${NOPE-d}",
    "${EMPTY-d}",
    "${EMPTY:-d}",
    "${NOPE:-a b:c}",
    "${SET:-d}",
    "${SET:?m}",
    "${EMPTY?m}",
    "$SET.y",
    "${SET}x",
    "/DATA/AppData/$AppID/config",
    "curl -f http://localhost/ || exit 1; echo $$HOME",
    "5$$",
    "é${SET}€",
    "${NOPE}",
    "${SET}}",
];

fn vars(name: &str) -> Option<String> {
    match name {
        "SET" => Some("v".into()),
        "EMPTY" => Some(String::new()),
        "AppID" => Some("jellyfin".into()),
        _ => None,
    }
}

/// `docker-compose config` of `file`, with exactly the variables `vars` gives.
fn compose_config(dir: &std::path::Path, file: &str) -> std::process::Output {
    std::fs::write(dir.join("docker-compose.yml"), file).unwrap();
    Command::new("docker-compose")
        .arg("config")
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs([("SET", "v"), ("EMPTY", ""), ("AppID", "jellyfin")])
        .output()
        .expect("docker-compose 1.29 is installed (tests/run.sh installs it)")
}

#[test]
fn interpolation_matches_docker_compose() {
    let dir = tempfile::tempdir().unwrap();
    let mut file = String::from("version: \"3.8\"\nservices:\n  a:\n    image: x\n    environment:\n");
    for (i, case) in CASES.iter().enumerate() {
        file.push_str(&format!("      A{i}: '{case}'\n"));
    }
    let out = compose_config(dir.path(), &file);
    assert!(out.status.success(), "docker-compose config: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let doc = &yaml_rust2::YamlLoader::load_from_str(&text).unwrap()[0];
    let env = &doc["services"]["a"]["environment"];
    for (i, case) in CASES.iter().enumerate() {
        // `config` writes a literal `$` doubled again.
        let theirs = env[format!("A{i}").as_str()].as_str().unwrap_or("").replace("$$", "$");
        let ours = interpolate(case, &vars).unwrap().value;
        assert_eq!(ours, theirs, "{case}");
    }
}

#[test]
fn a_required_variable_and_a_lone_dollar_are_refused_as_docker_compose_refuses_them() {
    for (case, ours_ok) in [("${NOPE:?need it}", false), ("${EMPTY:?m}", false), ("5$", false), ("$ {", false)] {
        let dir = tempfile::tempdir().unwrap();
        let file = format!("version: \"3.8\"\nservices:\n  a:\n    image: x\n    environment:\n      A: '{case}'\n");
        let out = compose_config(dir.path(), &file);
        assert!(!out.status.success(), "docker-compose accepted {case}");
        assert_eq!(interpolate(case, &vars).is_ok(), ours_ok, "{case}");
    }
}
