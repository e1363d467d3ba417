//! Releases against the real Engine and a local registry (Debian's
//! `docker-registry`): a tag moved in the registry shows in the plan with
//! both digests, every apply records the digest that ran, and `rollback`
//! runs a recorded digest again after the tag moved; an unknown release and
//! a digest gone from server and registry are refused with nothing changed.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::fleet::{Fleet, build_image, docker, docker_try};

/// A registry on 127.0.0.1 with its own storage, stopped on drop (the
/// Engine treats 127.0.0.0/8 registries as insecure-allowed).
pub struct Registry {
    child: Child,
    pub addr: String,
    _dir: tempfile::TempDir,
}

impl Registry {
    pub fn start() -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let addr = format!("127.0.0.1:{port}");
        let config = dir.path().join("config.yml");
        let storage = dir.path().join("storage");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n",
                storage.display()
            ),
        )
        .unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("docker-registry runs (tests/run.sh installs Debian's docker-registry)");
        let r = Registry { child, addr, _dir: dir };
        let start = Instant::now();
        while r.request("GET", "/v2/").is_none() {
            assert!(start.elapsed() < Duration::from_secs(20), "the registry at {} did not answer", r.addr);
            std::thread::sleep(Duration::from_millis(100));
        }
        r
    }

    /// One HTTP request; the status code.
    pub fn request(&self, method: &str, path: &str) -> Option<u16> {
        let mut s = TcpStream::connect(&self.addr).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
        let accept = "application/vnd.docker.distribution.manifest.v2+json";
        write!(s, "{method} {path} HTTP/1.1\r\nHost: {}\r\nAccept: {accept}\r\nConnection: close\r\n\r\n", self.addr)
            .ok()?;
        let mut out = String::new();
        s.read_to_string(&mut out).ok()?;
        out.split_whitespace().nth(1)?.parse().ok()
    }

    /// Deletes a manifest by digest (`repo@sha256:…` of this registry).
    pub fn delete(&self, reference: &str) {
        let (repo, digest) = reference.split_once('@').unwrap();
        let name = repo.strip_prefix(&format!("{}/", self.addr)).unwrap();
        let code = self.request("DELETE", &format!("/v2/{name}/manifests/{digest}"));
        assert_eq!(code, Some(202), "deleting {reference}");
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Builds an image under `tag`, pushes it; returns its `repo@sha256:…` and image id.
fn push(tag: &str, marker: &str) -> (String, String) {
    build_image(tag, marker);
    docker(&["push", "-q", tag]);
    let id = docker(&["image", "inspect", "-f", "{{.Id}}", tag]);
    let repo = tag.rsplit_once(':').unwrap().0;
    let digests = docker(&["image", "inspect", "-f", "{{range .RepoDigests}}{{println .}}{{end}}", tag]);
    let digest = digests.lines().find(|d| d.starts_with(&format!("{repo}@"))).expect("a digest after the push");
    (digest.to_string(), id)
}

fn short(digest: &str) -> String {
    let hex = digest.rsplit_once("sha256:").unwrap().1;
    format!("sha256:{}", &hex[..12])
}

fn history(f: &Fleet, app: &str) -> Vec<serde_json::Value> {
    let r = f.tomo(&["history", app, "--json"]);
    assert_eq!(r.code, 0, "{}", r.all());
    serde_json::from_str::<Vec<serde_json::Value>>(&r.stdout).unwrap()
}

/// Removes the test's images (by id: tags have moved).
struct Images(Vec<String>);

impl Drop for Images {
    fn drop(&mut self) {
        for id in &self.0 {
            let _ = docker_try(&["rmi", "-f", id]);
        }
    }
}

#[test]
fn a_moved_tag_is_planned_by_digest_and_rollback_runs_the_recorded_digest() {
    let registry = Registry::start();
    let f = Fleet::new();
    let app = f.app("rel");
    let repo = format!("{}/{}-rel", registry.addr, f.prefix);
    let tag = format!("{repo}:v");
    let (d1, id1) = push(&tag, "one");
    let mut images = Images(vec![id1.clone()]);
    f.manifest(
        "a.yaml",
        &format!("kind: App\nname: {app}\nserver: local\nimage: {tag}\npull: always\ninit: true\ncommand: [\"sleep\", \"600\"]\n"),
    );
    f.apply();
    f.assert_converged();
    let h = history(&f, &app);
    assert_eq!(h.len(), 1, "{h:?}");
    assert_eq!(
        (h[0]["number"].as_i64(), h[0]["outcome"].as_str(), h[0]["source"].as_str()),
        (Some(1), Some("succeeded"), Some("cli"))
    );
    assert_eq!(h[0]["services"][0]["digest"], d1.as_str(), "{h:?}");
    assert_eq!(h[0]["services"][0]["image"], tag.as_str());
    assert!(h[0]["changes"].as_str().unwrap().contains("create"), "{h:?}");

    // The tag moves in the registry; the server's copy still points to the old image.
    let (d2, id2) = push(&tag, "two");
    images.0.push(id2.clone());
    docker(&["tag", &id1, &tag]);
    let plan = f.tomo(&["plan"]);
    let moved = format!("moved: now {} (container runs {})", short(&d2), short(&d1));
    assert!(plan.stdout.contains(&moved), "{}", plan.all());
    let json = f.tomo(&["plan", "--json"]);
    let json: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    let img = json["images"].as_array().unwrap().iter().find(|i| i["app"] == app.as_str()).unwrap();
    assert_eq!((img["declared"].as_str(), img["running"].as_str()), (Some(d2.as_str()), Some(d1.as_str())), "{img}");
    f.apply();
    f.assert_converged();
    assert_eq!(f.inspect(&app, "{{.Image}}"), id2);
    let h = history(&f, &app);
    assert_eq!(h[0]["number"], 2);
    assert_eq!(h[0]["services"][0]["digest"], d2.as_str());
    assert!(h[0]["changes"].as_str().unwrap().contains(&moved), "{h:?}");
    // The human list says who and how it ended.
    let text = f.tomo(&["history", &app]);
    assert!(
        text.stdout.contains("#2 ") && text.stdout.contains(" succeeded by ") && text.stdout.contains(&d1),
        "{}",
        text.stdout
    );

    // The old image is gone from the server: rollback finds its digest in the registry.
    docker(&["rmi", &id1]);
    let file = f.tomo.path().join("state/a.yaml");
    let r = f.tomo(&["rollback", &app, "--to", "1"]);
    assert_eq!(r.code, 0, "{}", r.all());
    let written = std::fs::read_to_string(&file).unwrap();
    assert!(written.contains(&format!("image: \"{d1}\"")), "{written}");
    f.apply();
    f.assert_converged();
    assert_eq!(f.inspect(&app, "{{.Config.Image}}"), d1);
    assert_eq!(f.inspect(&app, "{{.Image}}"), id1, "the recorded digest runs, though the tag moved");
    let h = history(&f, &app);
    assert_eq!((h.len(), h[0]["services"][0]["digest"].as_str()), (3, Some(d1.as_str())));

    // An unknown release: NotFound, naming the releases there are.
    let r = f.tomo(&["rollback", &app, "--to", "9"]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        r.stderr.contains(&format!("there is no release `9` in app `{app}`; its releases: 1, 2, 3")),
        "{}",
        r.stderr
    );
    // A digest neither on the server nor in the registry: refused, nothing written.
    docker(&["rmi", "-f", &id2]);
    registry.delete(&d2);
    let before = std::fs::read_to_string(&file).unwrap();
    let r = f.tomo(&["rollback", &app, "--to", "2"]);
    assert_ne!(r.code, 0, "{}", r.all());
    assert!(r.stderr.contains("release 2 of app") && r.stderr.contains(&d2), "{}", r.stderr);
    assert!(r.stderr.contains("Nothing was changed"), "{}", r.stderr);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), before);
    // Without `--to`: the newest successful release before the last (2), refused alike.
    let r = f.tomo(&["rollback", &app]);
    assert!(r.stderr.contains("release 2 of app"), "{}", r.all());
    f.assert_converged();
}
