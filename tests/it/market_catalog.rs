//! The marketplace catalog: both fixture stores (read in place) scanned
//! into catalog entries with exactly the expected notes, a broken app and
//! an escaping symlink made invalid, and the 2,000-app index and search
//! benchmark.

use std::path::Path;

use crate::harness::fixtures_root;
use tomo::market::{self, Scan};
use tomo::model::MarketplaceFormat;

fn scan(store: &str) -> Scan {
    market::scan(&fixtures_root().join(store), MarketplaceFormat::Auto).unwrap()
}

/// (id, title, version, main, category, ports, number of notes) of an app.
type Summary = (String, String, String, String, String, Vec<u16>, usize);

fn summary(s: &Scan) -> Vec<Summary> {
    s.apps
        .iter()
        .map(|a| {
            (
                a.id.clone(),
                a.title.clone(),
                a.version.clone(),
                a.main.clone().unwrap_or_default(),
                a.category.clone(),
                a.ports.clone(),
                a.notes.len(),
            )
        })
        .collect()
}

fn row(id: &str, title: &str, version: &str, main: &str, category: &str, ports: &[u16], notes: usize) -> Summary {
    (id.into(), title.into(), version.into(), main.into(), category.into(), ports.to_vec(), notes)
}

#[test]
fn the_casaos_fixture_store_is_read_with_exact_entries_and_notes() {
    let s = scan("casaos-appstore");
    assert_eq!(
        summary(&s),
        vec![
            row("Dify", "Dify", "0.15.8", "web", "AI", &[3701], 0),
            row("EmulatorJS", "emulatorjs", "1.9.2", "emulatorjs", "Media", &[88, 3001, 4001], 2),
            row("Homebridge", "Homebridge", "latest", "homebridge", "Home", &[], 0),
            row("Immich", "Immich", "v2.7.2", "immich-server", "Media", &[2283], 0),
            row("Jellyfin", "Jellyfin", "10.11.10", "jellyfin", "Media", &[1901, 7359, 8097, 8921], 0),
            row("Linkwarden", "Linkwarden", "v2.14.1", "linkwarden", "Productivity", &[3428], 0),
            row("MineOS", "MineOS", "latest", "mineos", "Media", &[8444, 25565, 25566, 25567, 25568, 25569, 25570], 0),
            row("Netdata", "Netdata", "v2.10.3", "app", "Productivity", &[19999], 1),
            row(
                "StableDiffusionWebUI",
                "Stable Diffusion",
                "latest",
                "icewhale-stable-diffusion-webui",
                "AI",
                &[7860],
                0
            ),
            row("TaskingAI", "TaskingAI", "v0.3.0", "frontend", "AI", &[3080], 0),
            row("Twingate", "Twingate", "1", "twingate-connector", "Networking", &[], 0),
            row(
                "Unifi-Network-Application",
                "Unifi Network Application",
                "latest",
                "unifi-network-application",
                "Networking",
                &[3478, 8080, 8443, 10001, 27017],
                0
            ),
        ]
    );
    assert!(s.invalid.is_empty(), "{:?}", s.invalid);
    let emu = &s.apps[1];
    assert_eq!(
        emu.notes,
        [
            "Apps/EmulatorJS/docker-compose.yml: no `x-casaos.main`; the first service `emulatorjs` is the main one",
            "Apps/EmulatorJS/docker-compose.yml:66: `x-casaos.tagline` is empty and its locales (en_US, zh_CN, ar_SA, …) are indented as keys of `x-casaos`; read from there",
        ]
    );
    assert!(emu.tagline.starts_with("Unlock the power of emulation with EmulatorJS"), "{}", emu.tagline);
    assert_eq!(
        s.apps[7].notes,
        ["Apps/Netdata/docker-compose.yml: no `x-casaos.main`; the first service `app` is the main one"]
    );
    let jf = &s.apps[4];
    assert_eq!(jf.tagline, "The personal Media System");
    assert!(jf.description.starts_with("Jellyfin stands out among media server applications"));
    assert_eq!((jf.author.as_str(), jf.developer.as_str()), ("CasaOS Team", "Jellyfin"));
    assert_eq!(jf.architectures, ["amd64", "arm64"]);
    assert_eq!(jf.screenshots.len(), 3);
    assert_eq!(jf.source, "Apps/Jellyfin/docker-compose.yml");
    assert_eq!(jf.checksum.len(), 64);
    assert_eq!(s.categories.len(), 9);
    assert_eq!(s.categories[0].name, "Media");
    assert!(s.featured.iter().any(|f| f == "jellyfin"));
}

#[test]
fn the_bigbear_fixture_store_is_read_with_exact_entries() {
    let s = scan("bigbear-casaos");
    assert_eq!(
        summary(&s),
        vec![
            row("adguard-home", "AdGuard Home", "v0.107.78", "app", "Networking", &[53, 8080], 0),
            row("ayon", "Ayon", "1.3.6-20240823", "big-bear-ayon", "Developer", &[5000], 0),
            row("buzz", "Buzz", "main", "relay", "Developer", &[3000], 0),
            row("crafty", "Crafty Controller", "4.10.4", "big-bear-crafty", "Media", &[8123, 8443, 19132, 25500], 0),
            row("dozzle", "Dozzle", "v10.7.1", "app", "Developer", &[8888], 0),
            row("gluetun", "Gluetun", "v3.41.3", "gluetun", "Networking", &[8388, 8888], 0),
            row("guacamole", "Guacamole", "1.6.0", "app", "Others", &[8090], 0),
            row("netalertx-v26", "NetAlertX v26", "26.8.5", "big-bear-netalertx-v26", "Networking", &[], 0),
            row("nextcloud", "Nextcloud", "34.0.2", "nextcloud", "Media", &[7580], 0),
            row("plex-nvidia", "Plex with NVIDIA GPU", "1.43.3", "big-bear-plex-nvidia", "Media", &[], 0),
            row("pocketid", "Pocket ID", "v2.7", "big-bear-pocketid", "Others", &[1411], 0),
            row("storyteller", "Storyteller", "web-v2.6.0-experimental.14", "app", "Productivity", &[8015], 0),
        ]
    );
    assert!(s.invalid.is_empty(), "{:?}", s.invalid);
    assert_eq!(s.categories.len(), 1);
}

/// Copies `app` of the CasaOS fixture store into a new store at `to`.
pub fn copy_app(app: &str, to: &Path, as_id: &str) -> std::path::PathBuf {
    let dir = to.join("Apps").join(as_id);
    std::fs::create_dir_all(&dir).unwrap();
    let from = fixtures_root().join("casaos-appstore/Apps").join(app);
    for f in std::fs::read_dir(&from).unwrap().flatten() {
        std::fs::copy(f.path(), dir.join(f.file_name())).unwrap();
    }
    dir
}

#[test]
fn a_yaml_error_or_an_escaping_symlink_makes_only_that_app_invalid() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    copy_app("Jellyfin", root, "Jellyfin");
    let broken = copy_app("Netdata", root, "Broken");
    std::fs::write(broken.join("docker-compose.yml"), "services:\n  app:\n    image: x:1\n    ports: [\"80:80\"\n")
        .unwrap();
    // An app folder that is a symlink to /etc, and a compose file that is one.
    std::os::unix::fs::symlink("/etc", root.join("Apps/Etc")).unwrap();
    let link = root.join("Apps/Passwd");
    std::fs::create_dir_all(&link).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", link.join("docker-compose.yml")).unwrap();
    // A file inside an app that leads out (hashed for the checksum: refused).
    let sneaky = copy_app("Twingate", root, "Sneaky");
    std::os::unix::fs::symlink("/etc/shadow", sneaky.join("secret.json")).unwrap();
    std::fs::create_dir_all(root.join("Apps/Empty")).unwrap();

    let s = market::scan(root, MarketplaceFormat::Casaos).unwrap();
    assert_eq!(s.apps.iter().map(|a| a.id.as_str()).collect::<Vec<_>>(), ["Jellyfin"]);
    let reasons: Vec<(&str, &str)> = s.invalid.iter().map(|i| (i.id.as_str(), i.reason.as_str())).collect();
    assert_eq!(reasons.len(), 5, "{reasons:?}");
    assert_eq!(reasons[0].0, "Broken");
    assert!(reasons[0].1.starts_with("Apps/Broken/docker-compose.yml:5:1: YAML syntax error"), "{}", reasons[0].1);
    assert_eq!(reasons[1], ("Empty", "Apps/Empty: no docker-compose.yml"));
    assert_eq!(reasons[2].0, "Etc");
    assert!(
        reasons[2].1.starts_with("Apps/Etc is a symbolic link that leads outside the store folder (to `/etc`)"),
        "{}",
        reasons[2].1
    );
    assert_eq!(reasons[3].0, "Passwd");
    assert!(
        reasons[3].1.contains("leads outside the store folder (to `/etc/passwd`); it was not read"),
        "{}",
        reasons[3].1
    );
    assert_eq!(reasons[4].0, "Sneaky");
    assert!(
        reasons[4].1.contains("`secret.json` is a symbolic link that leads outside the store folder"),
        "{}",
        reasons[4].1
    );
}

#[test]
fn compose_folders_and_templates_are_read_and_auto_detected() {
    let tmp = tempfile::tempdir().unwrap();
    let compose = tmp.path().join("compose");
    std::fs::create_dir_all(compose.join("whoami")).unwrap();
    std::fs::create_dir_all(compose.join("docs")).unwrap();
    std::fs::write(
        compose.join("whoami/compose.yaml"),
        "services:\n  web:\n    image: traefik/whoami:v1.10\n    ports: [\"8000:80\"]\n",
    )
    .unwrap();
    assert_eq!(market::detect(&compose), MarketplaceFormat::Compose);
    let s = market::scan(&compose, MarketplaceFormat::Auto).unwrap();
    assert_eq!(s.apps.len(), 1);
    let a = &s.apps[0];
    assert_eq!(
        (a.id.as_str(), a.title.as_str(), a.version.as_str(), a.ports.as_slice()),
        ("whoami", "whoami", "v1.10", &[8000u16][..])
    );
    assert!(a.notes.is_empty(), "{:?}", a.notes);
    assert_eq!(a.source, "whoami/compose.yaml");

    let tomo = tmp.path().join("tomo");
    std::fs::create_dir_all(tomo.join("echo")).unwrap();
    std::fs::create_dir_all(tomo.join("bad")).unwrap();
    std::fs::write(
        tomo.join("echo/app.yaml"),
        "kind: App\nname: echo\nserver: nas\nservices:\n  web:\n    image: hashicorp/http-echo:1.0\n    ports: [\"5678:5678\"]\nx-tomo-template:\n  title: Echo\n  tagline: Says what it is told\n  category: Developer\n  parameters:\n    - {name: text, default: hello}\n",
    )
    .unwrap();
    std::fs::write(tomo.join("bad/app.yaml"), "kind: Server\nname: x\n").unwrap();
    assert_eq!(market::detect(&tomo), MarketplaceFormat::Tomo);
    let s = market::scan(&tomo, MarketplaceFormat::Auto).unwrap();
    let a = &s.apps[0];
    assert_eq!(
        (a.title.as_str(), a.tagline.as_str(), a.category.as_str(), a.version.as_str()),
        ("Echo", "Says what it is told", "Developer", "1.0")
    );
    assert_eq!(a.ports, [5678]);
    assert_eq!(s.invalid.len(), 1);
    assert_eq!(s.invalid[0].reason, "bad/app.yaml:1:1: a template is an App manifest (`kind: App`)");
    assert_eq!(market::detect(&fixtures_root().join("bigbear-casaos")), MarketplaceFormat::Casaos);
}

#[test]
fn the_checksum_changes_with_the_app_folder_only() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    copy_app("Jellyfin", root, "Jellyfin");
    let dozzle = copy_app("Twingate", root, "Twingate");
    let before = market::scan(root, MarketplaceFormat::Casaos).unwrap();
    std::fs::write(dozzle.join("README.md"), "x").unwrap();
    let after = market::scan(root, MarketplaceFormat::Casaos).unwrap();
    assert_eq!(before.apps[0].checksum, after.apps[0].checksum);
    assert_ne!(before.apps[1].checksum, after.apps[1].checksum);
}
