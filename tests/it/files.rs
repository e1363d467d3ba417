//! What tomo puts on a server's filesystem, against the real Docker Engine
//! (locally and over SSH): config files written and mounted read-only, the
//! missing host folders of bind mounts created by a plan action, and a
//! service declared `state: absent`.

use std::os::unix::fs::{MetadataExt, PermissionsExt};

use crate::fleet::{Fleet, docker};
use crate::hosts::TestHost;

/// A host folder unique to this fleet (removed on drop).
struct HostDir(String);

impl HostDir {
    fn new(f: &Fleet) -> HostDir {
        HostDir(format!("/tmp/tomo-it-{}", f.prefix))
    }
}

impl Drop for HostDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The permissions and owner uid of an `ls -ln` line.
fn perms(ls: &str) -> (&str, &str) {
    let f: Vec<&str> = ls.split_whitespace().collect();
    (f[0], f[2])
}

fn site(root: &str, conf: &str, extra: &str) -> String {
    format!(
        "kind: App\nname: {{p}}-site\nserver: local\nservices:\n  web:\n    image: {{image}}\n    init: true\n    command: [\"sleep\", \"600\"]\n    volumes:\n      - \"{root}/html:/html:ro\"\n      - {{type: bind, source: \"{root}/db\", target: /db, owner: \"4242:4343\", mode: \"0750\"}}\n    files:\n      - {{target: /etc/site.conf, content: \"{conf}\"}}\n      - {{target: /etc/extra.conf, source: extra.conf, mode: \"0440\", uid: 4242}}\n  side:\n    image: {{image}}\n    init: true\n    command: [\"sleep\", \"600\"]\n    volumes: [\"keep:/keep\"]\n{extra}"
    )
}

#[test]
fn files_and_host_folders_reach_the_container_and_a_changed_file_recreates_only_its_service() {
    let f = Fleet::new();
    let dir = HostDir::new(&f);
    f.manifest("extra.conf", "from beside the manifest\n");
    f.manifest("site.yaml", &site(&dir.0, "v = 1", ""));
    let plan = f.tomo(&["plan"]);
    assert_eq!(plan.code, 0, "{}", plan.all());
    assert!(plan.stdout.contains(&format!("+ dir {}/html on local: missing", dir.0)), "{}", plan.stdout);
    assert!(
        plan.stdout.contains(&format!("+ dir {}/db on local (owner 4242:4343) (mode 0750): missing", dir.0)),
        "{}",
        plan.stdout
    );
    f.apply();
    let web = format!("{}-web", f.app("site"));
    assert_eq!(docker(&["exec", &web, "cat", "/etc/site.conf"]), "v = 1");
    assert_eq!(docker(&["exec", &web, "cat", "/etc/extra.conf"]), "from beside the manifest");
    // Read-only, with the declared mode and owner.
    assert!(crate::fleet::docker_try(&["exec", &web, "sh", "-c", "echo x > /etc/site.conf"]).is_none());
    assert_eq!(perms(&docker(&["exec", &web, "ls", "-ln", "/etc/extra.conf"])), ("-r--r-----", "4242"));
    assert_eq!(perms(&docker(&["exec", &web, "ls", "-ln", "/etc/site.conf"])).0, "-r--r--r--");
    let db = std::fs::metadata(format!("{}/db", dir.0)).unwrap();
    assert_eq!((db.permissions().mode() & 0o7777, db.uid(), db.gid()), (0o750, 4242, 4343));
    assert!(std::fs::metadata(format!("{}/html", dir.0)).unwrap().is_dir());
    f.assert_converged();
    // A changed file: `web` is recreated, `side` keeps its container.
    let side = format!("{}-side", f.app("site"));
    let side_id = f.id(&side);
    f.manifest("site.yaml", &site(&dir.0, "v = 2", ""));
    let plan = f.tomo(&["plan"]);
    assert!(plan.stdout.contains("files[0].content.sha256 changed"), "{}", plan.stdout);
    assert!(plan.stdout.contains("Plan: 0 to create, 1 to recreate"), "{}", plan.stdout);
    f.apply();
    assert_eq!(docker(&["exec", &web, "cat", "/etc/site.conf"]), "v = 2");
    assert_eq!(f.id(&side), side_id);
    f.assert_converged();
    // `side` declared absent: removed, its volume kept, `web` untouched.
    let web_id = f.id(&web);
    f.manifest("site.yaml", &site(&dir.0, "v = 2", "    state: absent\n"));
    let plan = f.tomo(&["plan"]);
    assert!(plan.stdout.contains(&format!("- {side}")) && plan.stdout.contains("declared absent"), "{}", plan.stdout);
    f.apply();
    assert!(!f.exists(&side));
    assert_eq!(f.id(&web), web_id);
    let keep = format!("{}_keep", f.app("site"));
    assert_eq!(docker(&["volume", "inspect", "-f", "{{.Name}}", &keep]), keep);
    f.assert_converged();
    // The app gone: the host folders stay (tomo never deletes them).
    f.remove_manifest("site.yaml");
    f.tomo(&["apply", "--auto-approve", "--prune"]);
    assert!(std::fs::metadata(format!("{}/db", dir.0)).unwrap().is_dir());
}

#[test]
fn a_folder_that_may_not_be_created_and_a_source_outside_the_folder_are_refused_with_their_line() {
    let f = Fleet::new();
    let dir = HostDir::new(&f);
    f.manifest(
        "app.yaml",
        &format!(
            "kind: App\nname: {{p}}-strict\nserver: local\nimage: {{image}}\ninit: true\ncommand: [\"sleep\", \"600\"]\nvolumes:\n  - {{type: bind, source: \"{}/x\", target: /x, create_host_path: false}}\n",
            dir.0
        ),
    );
    let plan = f.tomo(&["plan"]);
    assert!(plan.stdout.contains("`create_host_path: false` is set (app.yaml:8)"), "{}", plan.all());
    assert!(!plan.stdout.contains("+ dir"), "{}", plan.stdout);
    f.tomo(&["apply", "--auto-approve"]);
    assert!(!f.exists(&f.app("strict")));
    assert!(std::fs::metadata(format!("{}/x", dir.0)).is_err(), "never created");
    // A `source` that leaves the manifest folder: refused at validation.
    std::fs::write(f.tomo.path().join("secret.txt"), "outside").unwrap();
    for source in ["../secret.txt", "/etc/passwd", "link.txt"] {
        if source == "link.txt" {
            let _ = std::os::unix::fs::symlink(f.tomo.path().join("secret.txt"), f.tomo.path().join("state/link.txt"));
        }
        f.manifest(
            "app.yaml",
            &format!(
                "kind: App\nname: {{p}}-strict\nserver: local\nimage: {{image}}\nfiles:\n  - target: /etc/x\n    source: {source}\n"
            ),
        );
        let r = f.tomo(&["validate"]);
        assert_eq!(r.code, 1, "{source}: {}", r.all());
        assert!(r.all().contains("path traversal") && r.all().contains("app.yaml:7"), "{source}: {}", r.all());
        assert!(!r.all().contains("outside"), "{}", r.all());
    }
}

#[test]
fn files_and_folders_are_written_over_ssh_on_a_remote_server() {
    let h = TestHost::new(true);
    let f = Fleet::new();
    let dir = HostDir::new(&f);
    f.manifest("servers.yaml", &h.server_yaml("h1"));
    f.manifest(
        "app.yaml",
        &format!(
            "kind: App\nname: {{p}}-far\nserver: h1\nimage: {{image}}\ninit: true\ncommand: [\"sleep\", \"600\"]\nvolumes: [\"{}/it's $(x):/data\"]\nfiles:\n  - {{target: /etc/far.conf, content: \"far away\\n\", mode: \"0400\"}}\n",
            dir.0
        ),
    );
    let plan = f.tomo(&["plan"]);
    assert!(plan.stdout.contains(&format!("+ dir {}/it's $(x) on h1", dir.0)), "{}", plan.all());
    f.apply();
    let name = f.app("far");
    assert_eq!(h.docker(&["exec", &name, "cat", "/etc/far.conf"]), "far away");
    assert_eq!(perms(&h.docker(&["exec", &name, "ls", "-ln", "/etc/far.conf"])).0, "-r--------");
    // The test server shares this machine's filesystem: the folder is there, named verbatim.
    assert!(std::fs::metadata(format!("{}/it's $(x)", dir.0)).unwrap().is_dir());
    f.assert_converged();
    let _ = h.docker(&["rm", "-f", &name]);
}
