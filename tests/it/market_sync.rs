//! `tomo market sync` against real git repositories: the two fixture stores
//! (read in place, copied only into temporary repositories) fetched over
//! `file://` and over SSH from a test host; a second commit that changes
//! one app, removes one and breaks one; and bad input (an unknown store, an
//! option for a URL, credentials in a URL, a repository that does not
//! exist, a symlink out of the store).

use std::path::{Path, PathBuf};
use std::process::Command;

use tomo::store::Store;

use crate::harness::{Run, Tomo, fixtures_root};

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=tomo-test", "-c", "user.email=t@example.org", "-c", "init.defaultBranch=main"])
        .args(args)
        .output()
        .expect("git runs");
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let (src, dst) = (e.path(), to.join(e.file_name()));
        if e.file_type().unwrap().is_dir() {
            copy_dir(&src, &dst);
        } else {
            std::fs::copy(&src, &dst).unwrap();
        }
    }
}

/// A git repository in `root` holding a copy of fixture store `name`, committed on `main`.
fn store_repo(root: &Path, name: &str) -> PathBuf {
    let repo = root.join("repos").join(name);
    copy_dir(&fixtures_root().join(name), &repo);
    git(&repo, &["init", "-q"]);
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-qm", "the store"]);
    repo
}

fn commit(repo: &Path, msg: &str) {
    git(repo, &["add", "-A"]);
    git(repo, &["commit", "-qm", msg]);
}

fn tomo() -> Tomo {
    Tomo::new()
        .env("TOMO_MASTER_PASSWORD", "master pw")
        .env("TOMO_SALT", "salt-0123456789")
        .env("DATA_DIRECTORY", "data")
        .env("TOMO_LOG", "debug")
}

fn manifest(t: &Tomo, text: &str) {
    let p = t.path().join("state/stores.yaml");
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

fn store_yaml(name: &str, url: &str) -> String {
    format!("kind: Marketplace\nname: {name}\nurl: \"{url}\"\n")
}

fn sync(t: &Tomo, args: &[&str]) -> Run {
    let mut all = vec!["--dir", "state", "market", "sync"];
    all.extend_from_slice(args);
    t.run(&all)
}

fn catalog(t: &Tomo) -> Store {
    Store::open_in(&t.path().join("data")).expect("the store opens")
}

fn ids(s: &Store, store: &str) -> Vec<String> {
    let mut v = s.market_app_ids(Some(store)).unwrap();
    v.sort();
    v
}

fn list_json(t: &Tomo) -> serde_json::Value {
    let r = t.run(&["--dir", "state", "market", "list", "--json"]);
    assert_eq!(r.code, 0, "{}", r.all());
    serde_json::from_str(&r.stdout).unwrap()
}

fn row<'a>(list: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    list["stores"].as_array().unwrap().iter().find(|s| s["name"] == name).unwrap_or_else(|| panic!("{list}"))
}

#[test]
fn both_fixture_stores_sync_over_file_urls_and_a_second_commit_shows_exactly_its_changes() {
    let t = tomo();
    let casa = store_repo(t.path(), "casaos-appstore");
    let bigbear = store_repo(t.path(), "bigbear-casaos");
    manifest(
        &t,
        &format!(
            "{}---\n{}",
            store_yaml("casa", &format!("file://{}", casa.display())),
            store_yaml("bigbear", &format!("file://{}", bigbear.display()))
        ),
    );
    let r = sync(&t, &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    let s = catalog(&t);
    let before = ids(&s, "casa");
    assert_eq!(before.len(), 12, "{before:?}\n{}", r.all());
    assert_eq!(ids(&s, "bigbear").len(), 12, "{}", r.all());
    assert!(r.stdout.contains("casa: 12 apps, 0 invalid at "), "{}", r.stdout);
    let first = row(&list_json(&t), "casa")["last_commit"].as_str().unwrap().to_string();
    let jellyfin = s.market_app("casa", "Jellyfin").unwrap().expect("Jellyfin indexed");
    assert_eq!(jellyfin.entry.version, "10.11.10");

    // The second commit: Jellyfin's image changes, Netdata goes, Homebridge breaks.
    let compose = casa.join("Apps/Jellyfin/docker-compose.yml");
    let text = std::fs::read_to_string(&compose).unwrap();
    std::fs::write(&compose, text.replace("linuxserver/jellyfin:10.11.10", "linuxserver/jellyfin:10.12.0")).unwrap();
    std::fs::remove_dir_all(casa.join("Apps/Netdata")).unwrap();
    std::fs::write(casa.join("Apps/Homebridge/docker-compose.yml"), "services:\n  homebridge:\n    image: [oops\n")
        .unwrap();
    commit(&casa, "change one, remove one, break one");
    let r = sync(&t, &["casa"]);
    assert_eq!(r.code, 0, "{}", r.all());
    let after = ids(&s, "casa");
    let expected: Vec<String> = before.iter().filter(|i| *i != "Netdata" && *i != "Homebridge").cloned().collect();
    assert_eq!(after, expected);
    let invalid = s.market_invalid(Some("casa")).unwrap();
    assert_eq!(invalid.len(), 1, "{invalid:?}");
    assert_eq!(invalid[0].1.id, "Homebridge");
    assert!(invalid[0].1.reason.contains("docker-compose.yml:"), "{:?}", invalid[0].1);
    let changed = s.market_app("casa", "Jellyfin").unwrap().unwrap();
    assert_eq!(changed.entry.version, "10.12.0");
    assert_ne!(changed.entry.checksum, jellyfin.entry.checksum);
    // The other apps are as they were; the other store was not touched.
    let immich = s.market_app("casa", "Immich").unwrap().unwrap();
    assert_eq!(ids(&s, "bigbear").len(), 12);
    let list = list_json(&t);
    let casa_row = row(&list, "casa");
    assert_ne!(casa_row["last_commit"].as_str().unwrap(), first);
    assert_eq!((casa_row["apps"].as_i64(), casa_row["invalid"].as_i64()), (Some(10), Some(1)));
    assert!(casa_row.get("last_error").is_none(), "{casa_row}");
    assert!(!immich.entry.title.is_empty());
    // The checkout is the new commit, shallow, and nothing is left beside it.
    let checkout = t.path().join("data/market/casa");
    assert!(!checkout.join("Apps/Netdata").exists());
    let mut left: Vec<String> = std::fs::read_dir(t.path().join("data/market"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, ["bigbear", "casa"]);

    // A store no longer declared is forgotten by a full sync, with its checkout.
    manifest(&t, &store_yaml("casa", &format!("file://{}", casa.display())));
    let r = sync(&t, &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stdout.contains("bigbear: no longer declared, forgotten"), "{}", r.stdout);
    assert!(ids(&s, "bigbear").is_empty());
    assert!(!t.path().join("data/market/bigbear").exists());
}

#[test]
fn a_failed_fetch_keeps_the_previous_catalog_and_records_why() {
    let t = tomo();
    let casa = store_repo(t.path(), "casaos-appstore");
    manifest(&t, &store_yaml("casa", &format!("file://{}", casa.display())));
    assert_eq!(sync(&t, &[]).code, 0);
    let gone = t.path().join("repos/no-such-repository");
    manifest(&t, &store_yaml("casa", &format!("file://{}", gone.display())));
    let r = sync(&t, &[]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.stdout.contains("casa: sync failed, previous catalog kept: git fetch failed:"), "{}", r.stdout);
    assert_eq!(ids(&catalog(&t), "casa").len(), 12);
    let list = list_json(&t);
    let casa_row = row(&list, "casa");
    assert_eq!(casa_row["apps"], 12);
    assert!(casa_row["last_error"].as_str().unwrap().contains("git fetch failed"), "{casa_row}");
    assert!(t.path().join("data/market/casa/Apps/Jellyfin/docker-compose.yml").exists());
    // A store never synced that fails says so too.
    manifest(
        &t,
        &format!(
            "{}---\n{}",
            store_yaml("casa", &format!("file://{}", casa.display())),
            store_yaml("new", "file:///nonexistent/x")
        ),
    );
    let r = sync(&t, &[]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.stdout.contains("casa: 12 apps"), "{}", r.stdout);
    assert!(row(&list_json(&t), "new")["last_error"].as_str().is_some());
}

#[test]
fn an_unknown_store_and_option_like_urls_are_refused() {
    let t = tomo();
    let casa = store_repo(t.path(), "casaos-appstore");
    manifest(&t, &store_yaml("casa", &format!("file://{}", casa.display())));
    let r = sync(&t, &["nope"]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stderr.contains("there is no store `nope`"), "{}", r.stderr);
    assert!(r.stderr.contains("casa"), "{}", r.stderr);
    let pwned = t.path().join("pwned");
    manifest(&t, &store_yaml("evil", &format!("--upload-pack=touch {}", pwned.display())));
    let r = sync(&t, &[]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.stderr.contains("is not a git repository URL"), "{}", r.stderr);
    manifest(&t, &store_yaml("evil", &format!("ssh://-oProxyCommand=touch {}/x", pwned.display())));
    let r = sync(&t, &[]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(!pwned.exists());
}

#[test]
fn a_url_with_credentials_is_refused_and_never_shown_logged_audited_or_stored() {
    const TOKEN: &str = "ghp_Sup3rSecretTokenValue9";
    let t = tomo();
    let casa = store_repo(t.path(), "casaos-appstore");
    manifest(&t, &store_yaml("casa", &format!("file://{}", casa.display())));
    assert_eq!(sync(&t, &[]).code, 0);
    manifest(&t, &store_yaml("private", &format!("https://builder:{TOKEN}@git.example.org/store.git")));
    let runs = [
        sync(&t, &[]),
        t.run(&["--dir", "state", "market", "list"]),
        t.run(&["--dir", "state", "market", "list", "--json"]),
        t.run(&["--dir", "state", "validate"]),
        t.run(&["--dir", "state", "validate", "--json"]),
    ];
    for r in &runs {
        assert_ne!(r.code, 0, "{}", r.all());
        assert!(!r.all().contains(TOKEN), "credential shown: {}", r.all());
        assert!(!r.all().contains("Sup3rSecret"), "credential shown: {}", r.all());
    }
    assert!(runs[0].stderr.contains("the store URL holds credentials"), "{}", runs[0].stderr);
    assert!(runs[0].stderr.contains("auth: {secret: NAME}"), "{}", runs[0].stderr);
    // No row, audit entry or log line holds it: every file of the data folder.
    for e in std::fs::read_dir(t.path().join("data")).unwrap() {
        let p = e.unwrap().path();
        if p.is_file() {
            let bytes = std::fs::read(&p).unwrap();
            assert!(!String::from_utf8_lossy(&bytes).contains("Sup3rSecret"), "{} holds the credential", p.display());
        }
    }
    assert!(catalog(&t).market_repos().unwrap().iter().all(|r| r.name != "private"));
}

#[test]
fn a_symlink_out_of_the_store_makes_that_app_invalid() {
    let t = tomo();
    let casa = store_repo(t.path(), "casaos-appstore");
    std::os::unix::fs::symlink("/etc", casa.join("Apps/Etc")).unwrap();
    std::fs::create_dir_all(casa.join("Apps/Passwd")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", casa.join("Apps/Passwd/docker-compose.yml")).unwrap();
    commit(&casa, "links out");
    manifest(&t, &store_yaml("casa", &format!("file://{}", casa.display())));
    let r = sync(&t, &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    let s = catalog(&t);
    let apps = ids(&s, "casa");
    assert_eq!(apps.len(), 12, "{apps:?}");
    let invalid: Vec<String> = s.market_invalid(Some("casa")).unwrap().into_iter().map(|(_, i)| i.id).collect();
    assert!(invalid.contains(&"Passwd".to_string()), "{invalid:?}");
    assert!(!apps.contains(&"Etc".to_string()) && !apps.contains(&"Passwd".to_string()));
    let db = std::fs::read(t.path().join("data/tomo.db")).unwrap();
    assert!(!String::from_utf8_lossy(&db).contains("root:x:0:0"));
}

#[test]
fn a_store_is_fetched_over_ssh_with_a_vault_key_and_a_known_host_key() {
    let host = crate::hosts::TestHost::new(false);
    let t = tomo();
    let casa = store_repo(t.path(), "casaos-appstore");
    let key = std::fs::read_to_string(&host.key).unwrap();
    let set = t.run_with_stdin(&["secret", "set", "store-key"], Some(&key));
    assert_eq!(set.code, 0, "{}", set.all());
    let url = format!("ssh://root@{}{}", host.addr, casa.display());
    manifest(&t, &format!("{}auth: {{secret: store-key}}\n", store_yaml("casa", &url)));
    // The host key is not known yet: refused, never accepted on first use.
    let r = sync(&t, &[]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.stdout.contains("Host key verification failed"), "{}", r.all());
    let hostkey = std::fs::read_to_string(host.dir.path().join("hostkey.pub")).unwrap();
    std::fs::write(t.path().join("data/market/known_hosts"), format!("{} {hostkey}", host.addr)).unwrap();
    let r = sync(&t, &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stdout.contains("casa: 12 apps, 0 invalid"), "{}", r.stdout);
    assert_eq!(ids(&catalog(&t), "casa").len(), 12);
    // The key file is gone, and the key is in no output.
    let mut left: Vec<String> = std::fs::read_dir(t.path().join("data/market"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, ["casa", "known_hosts"]);
    let body = key.lines().nth(1).unwrap();
    assert!(!r.all().contains(body));
}

#[test]
fn store_tools_over_mcp_propose_for_agents_and_sync_for_operators() {
    let t = tomo();
    let casa = store_repo(t.path(), "casaos-appstore");
    std::fs::create_dir_all(t.path().join("state")).unwrap();
    let url = format!("file://{}", casa.display());
    let mut agent = crate::mcp_client::Stdio::start(&t, "agent");
    let added = agent.ok("market_repo_add", serde_json::json!({"name": "casa", "url": url}));
    assert_eq!(added["outcome"], "proposed", "{added}");
    assert!(!t.path().join("state/marketplaces/casa.yaml").exists());
    let refused = agent.call("market_sync", serde_json::json!({}));
    assert!(refused.is_error, "{}", refused.text);
    drop(agent);

    let mut op = crate::mcp_client::Stdio::start(&t, "operator");
    let added = op.ok("market_repo_add", serde_json::json!({"name": "casa", "url": url, "format": "auto"}));
    assert_eq!(added["outcome"], "written", "{added}");
    let text = std::fs::read_to_string(t.path().join("state/marketplaces/casa.yaml")).unwrap();
    assert!(text.contains("kind: Marketplace") && text.contains("format: auto"), "{text}");
    // A store read from a folder of this machine is an admin's to approve.
    let local = op.ok("market_repo_add", serde_json::json!({"name": "mine", "path": "/etc"}));
    assert_eq!(local["outcome"], "proposed", "{local}");
    assert!(local["why"].as_str().unwrap().contains("read the local folder `/etc`"), "{local}");
    let synced = op.ok("market_sync", serde_json::json!({"name": "casa"}));
    assert_eq!((synced["stores"][0]["ok"].as_bool(), synced["stores"][0]["apps"].as_u64()), (Some(true), Some(12)));
    let listed = op.ok("market_repo_list", serde_json::json!({}));
    assert_eq!(listed["stores"][0]["name"], "casa", "{listed}");
    assert_eq!(listed["stores"][0]["apps"], 12, "{listed}");
    let bad = op.call("market_sync", serde_json::json!({"name": "nope"}));
    assert!(bad.is_error && bad.text.contains("there is no store `nope`"), "{}", bad.text);
    let removed = op.ok("market_repo_remove", serde_json::json!({"name": "casa"}));
    assert_eq!(removed["outcome"], "written", "{removed}");
    assert!(!t.path().join("state/marketplaces/casa.yaml").exists());
}

#[test]
fn watch_syncs_the_declared_stores_when_it_starts_and_a_failing_one_does_not_stop_it() {
    let t = tomo();
    let casa = store_repo(t.path(), "casaos-appstore");
    manifest(
        &t,
        &format!(
            "{}---\n{}",
            store_yaml("casa", &format!("file://{}", casa.display())),
            store_yaml("gone", "file:///nonexistent/store")
        ),
    );
    let mut child = t.spawn(&["--dir", "state", "watch"]);
    let synced = crate::hosts::wait_until(std::time::Duration::from_secs(30), || {
        Store::open_in(&t.path().join("data")).ok().and_then(|s| s.market_repos().ok()).is_some_and(|rows| {
            rows.iter().any(|r| r.name == "casa" && r.apps == 12)
                && rows.iter().any(|r| r.name == "gone" && r.last_error.is_some())
        })
    });
    let alive = child.try_wait().unwrap().is_none();
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    assert!(synced.is_ok(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(alive, "watch stopped: {}", String::from_utf8_lossy(&out.stderr));
}
