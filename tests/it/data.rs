//! Data is never lost by a recreate or a removal: anonymous volumes (declared
//! or from the image's `VOLUME`) are carried over to the new container as
//! docker-compose does, no volume the user did not name is deleted, and a
//! change that drops a mount of data is destructive and says which data:
//! in the plan and in a proposal (watch's hold: `watch.rs`).

use std::process::Command;

use serde_json::json;

use crate::fleet::{Fleet, IMAGE, docker, docker_try, httpd};
use crate::mcp_client::Stdio;

/// An image with a `VOLUME /cache` of its own (built locally, no registry).
const VOLUME_IMAGE: &str = "tomo-test/busybox-volume:1";

fn ensure_volume_image() {
    if docker_try(&["image", "inspect", VOLUME_IMAGE]).is_some() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("Dockerfile"), format!("FROM {IMAGE}\nVOLUME /cache\n")).unwrap();
    let out = Command::new("docker")
        .args(["build", "-q", "-t", VOLUME_IMAGE])
        .arg(dir.path())
        .env("DOCKER_BUILDKIT", "0")
        .output()
        .unwrap();
    assert!(out.status.success(), "cannot build {VOLUME_IMAGE}: {}", String::from_utf8_lossy(&out.stderr));
}

/// The volume mounted at `target` in `container`.
fn volume_at(container: &str, target: &str) -> String {
    let format =
        format!("{{{{range .Mounts}}}}{{{{if eq .Destination \"{target}\"}}}}{{{{.Name}}}}{{{{end}}}}{{{{end}}}}");
    docker(&["inspect", "-f", &format, container])
}

fn write_file(container: &str, path: &str, text: &str) {
    docker(&["exec", container, "sh", "-c", &format!("echo {text} > {path}")]);
}

fn read_file(container: &str, path: &str) -> String {
    docker_try(&["exec", container, "cat", path]).unwrap_or_else(|| "(missing)".into())
}

/// Removes volumes this test made (anonymous ones carry no prefix).
struct Volumes(Vec<String>);

impl Drop for Volumes {
    fn drop(&mut self) {
        for v in &self.0 {
            let _ = docker_try(&["volume", "rm", "-f", v]);
        }
    }
}

fn keep_app(f: &Fleet, env: &str, volumes: &str) {
    f.manifest(
        "apps/keep.yaml",
        &format!(
            "kind: App\nname: {{p}}-keep\nserver: local\nimage: {VOLUME_IMAGE}\ninit: true\ncommand: {}\nenv: {{A: \"{env}\"}}\nvolumes: {volumes}\n",
            httpd("keep")
        ),
    );
}

/// docker-compose 1.29 on the same change: which volume holds `/data` after
/// `up` with a changed env, and whether the file is still there.
fn compose_keeps(prefix: &str, volumes: &mut Volumes) -> (bool, bool) {
    let dir = tempfile::tempdir().unwrap();
    let project = format!("{prefix}compose");
    let write = |env: &str| {
        let text = format!(
            "version: \"3\"\nservices:\n  web:\n    image: {VOLUME_IMAGE}\n    init: true\n    command: [\"httpd\", \"-f\", \"-p\", \"80\"]\n    environment: {{A: \"{env}\"}}\n    volumes: [\"/data\"]\n"
        );
        std::fs::write(dir.path().join("docker-compose.yml"), text).unwrap();
    };
    let up = || {
        let out = Command::new("docker-compose")
            .args(["-p", &project, "up", "-d"])
            .current_dir(dir.path())
            .output()
            .expect("docker-compose 1.29 is installed");
        assert!(out.status.success(), "docker-compose up: {}", String::from_utf8_lossy(&out.stderr));
    };
    let c = format!("{project}_web_1");
    write("1");
    up();
    let (data, cache) = (volume_at(&c, "/data"), volume_at(&c, "/cache"));
    volumes.0.extend([data.clone(), cache.clone()]);
    write_file(&c, "/data/f", "kept");
    write_file(&c, "/cache/f", "cached");
    write("2");
    up();
    let same = volume_at(&c, "/data") == data && volume_at(&c, "/cache") == cache;
    let files = read_file(&c, "/data/f") == "kept" && read_file(&c, "/cache/f") == "cached";
    let _ = Command::new("docker-compose").args(["-p", &project, "down"]).current_dir(dir.path()).output();
    (same, files)
}

#[test]
fn an_env_change_keeps_anonymous_volumes_and_their_files_as_compose_does() {
    ensure_volume_image();
    let f = Fleet::new();
    let mut made = Volumes(Vec::new());
    let c = f.app("keep");
    keep_app(&f, "1", "[\"/data\"]");
    f.apply();
    let (data, cache) = (volume_at(&c, "/data"), volume_at(&c, "/cache"));
    made.0.extend([data.clone(), cache.clone()]);
    write_file(&c, "/data/f", "kept");
    write_file(&c, "/cache/f", "cached");
    let old = f.id(&c);
    keep_app(&f, "2", "[\"/data\"]");
    let plan = f.tomo(&["plan"]);
    f.apply();
    assert_ne!(f.id(&c), old, "recreated");
    assert_eq!(read_file(&c, "/data/f"), "kept");
    assert_eq!(read_file(&c, "/cache/f"), "cached");
    assert_eq!(volume_at(&c, "/data"), data, "the declared anonymous volume is carried over");
    assert_eq!(volume_at(&c, "/cache"), cache, "the image's VOLUME is carried over");
    assert!(plan.stdout.contains(&format!("keeps anonymous volume at /data ({}", &data[..12])), "{}", plan.stdout);
    f.assert_converged();
    // docker-compose 1.29 does the same on the same change.
    assert_eq!(compose_keeps(&f.prefix, &mut made), (true, true), "docker-compose keeps them too");
    // Declared absent: the container goes, its anonymous volumes stay.
    f.manifest(
        "apps/keep.yaml",
        &format!("kind: App\nname: {{p}}-keep\nserver: local\nimage: {VOLUME_IMAGE}\nstate: absent\n"),
    );
    let plan = f.tomo(&["plan"]);
    assert!(plan.stdout.contains(&format!("drops anonymous volume at /data ({}", &data[..12])), "{}", plan.stdout);
    f.apply();
    assert!(!f.exists(&c));
    for v in [&data, &cache] {
        assert!(docker_try(&["volume", "inspect", v]).is_some(), "volume {v} was deleted");
    }
}

#[test]
fn an_operator_dropping_a_volume_makes_a_proposal_that_names_the_data() {
    let f = Fleet::new();
    let mut made = Volumes(Vec::new());
    let name = f.app("drop");
    f.manifest(
        "apps/drop.yaml",
        &format!(
            "kind: App\nname: {{p}}-drop\nserver: local\nimage: {{image}}\ninit: true\ncommand: {}\nvolumes: [\"/data\"]\n",
            httpd("drop")
        ),
    );
    f.apply();
    let data = volume_at(&name, "/data");
    made.0.push(data.clone());
    write_file(&name, "/data/f", "kept");
    let mut op = Stdio::start(&f.tomo, "operator");
    let r = op.ok("app_update", json!({"name": name, "volumes": []}));
    assert_eq!(r["outcome"], "proposed", "{r}");
    assert_eq!(r["plan"]["destructive"], true, "{r}");
    let text = r["plan"]["text"].as_str().unwrap();
    assert!(text.contains(&format!("drops anonymous volume at /data ({}", &data[..12])), "{text}");
    assert_eq!(volume_at(&name, "/data"), data, "nothing was applied");
    assert_eq!(read_file(&name, "/data/f"), "kept");
}
