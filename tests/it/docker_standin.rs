//! Docker Engine installed by `tomo apply` on the stand-in Alpine, Fedora
//! and Arch servers (`standin`): the commands really go over SSH, in order,
//! behind `sudo -n`; once the (stand-in) Engine is up, the server's apps are
//! deployed on its real Engine; a failing or locked package step, a missing
//! sudo right, a daemon that does not come up and `ensure: absent` under
//! running apps each end as they should.

use crate::docker_install::{actions_on, commands, plan_json};
use crate::fleet::Fleet;
use crate::hosts::{PW_USER, TestHost};
use crate::standin::{Distro, REGISTRY_IMAGE, StandinHost};

/// An app on `server`, its image pulled from the stand-in's registry (a
/// fresh Engine has no images).
fn app(name: &str, server: &str) -> String {
    crate::docker_install::app(name, server).replace("{image}", REGISTRY_IMAGE)
}

/// The commands an install runs on `distro`, as the stand-ins record them (all behind sudo).
fn install_calls(distro: Distro) -> Vec<String> {
    let u = PW_USER;
    let calls: Vec<String> = match distro {
        Distro::Alpine => vec![
            "apk\tupdate".into(),
            "apk\tadd docker".into(),
            "rc-update\tadd docker default".into(),
            "rc-service\tdocker start".into(),
            format!("addgroup\t{u} docker"),
        ],
        Distro::Fedora => vec![
            "dnf\t-y install moby-engine".into(),
            "systemctl\tenable --now docker.service".into(),
            format!("usermod\t-aG docker {u}"),
        ],
        Distro::Arch => vec![
            "pacman\t-S --noconfirm --needed docker".into(),
            "systemctl\tenable --now docker.service".into(),
            format!("usermod\t-aG docker {u}"),
        ],
    };
    calls.into_iter().map(|c| c.replacen('\t', &format!("\troot sudo:{u}\t"), 1)).collect()
}

/// The calls made through sudo (the probe's own, as the user, left out).
fn sudo_calls(h: &StandinHost) -> Vec<String> {
    h.calls().into_iter().filter(|c| c.contains("\troot sudo:")).collect()
}

#[test]
fn alpine_fedora_and_arch_get_docker_over_ssh_with_sudo_then_their_apps() {
    for distro in [Distro::Alpine, Distro::Fedora, Distro::Arch] {
        let h = StandinHost::new(distro).with_registry();
        let f = Fleet::new();
        f.manifest("servers.yaml", &h.server_yaml("s", "ensure: present"));
        f.manifest("apps.yaml", &app("web", "s"));
        let json = plan_json(&f);
        let on = actions_on(&json, "s");
        let engine = on.iter().find(|a| a["op"] == "docker_engine").unwrap_or_else(|| panic!("{distro:?}: {json:#}"));
        let planned: Vec<String> = commands(engine);
        let recorded: Vec<String> = install_calls(distro)
            .iter()
            .map(|c| format!("sudo -n -- {}", c.replace(&format!("\troot sudo:{PW_USER}\t"), " ")))
            .collect();
        assert_eq!(planned, recorded, "{distro:?}: the plan shows what will run");
        assert!(
            on.iter()
                .filter(|a| a["op"] != "docker_engine")
                .all(|a| a["after"].as_array().unwrap().contains(&engine["id"]))
        );
        let r = f.tomo(&["apply", "--auto-approve"]);
        assert_eq!(r.code, 0, "{distro:?}: {}", r.all());
        assert_eq!(sudo_calls(&h), install_calls(distro), "{distro:?}: {}", r.all());
        // The app runs on the server's Engine, reached after the install.
        let names = h.host.docker(&["ps", "--format", "{{.Names}}"]);
        assert!(names.contains(&f.app("web")), "{distro:?}: {names}\n{}", r.all());
        f.assert_converged();
        assert_eq!(sudo_calls(&h), install_calls(distro), "{distro:?}: nothing more ran");
    }
}

#[test]
fn a_failing_package_step_fails_the_engine_and_skips_only_that_servers_apps() {
    let h = StandinHost::new(Distro::Alpine).with_registry();
    let other = TestHost::new(true);
    h.fail("apk", "ERROR: unable to select packages:\n  docker (no such package):\n    required by: world[docker]\n");
    let f = Fleet::new();
    f.manifest(
        "servers.yaml",
        &format!("{}---\n{}", h.server_yaml("alp", "ensure: present"), other.server_yaml("other")),
    );
    f.manifest("apps.yaml", &format!("{}---\n{}", app("a1", "alp"), crate::docker_install::app("a2", "other")));
    let r = f.tomo(&["apply", "--auto-approve"]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.all().contains("`sudo -n -- apk update` failed with status 1"), "{}", r.all());
    assert!(r.all().contains("unable to select packages"), "{}", r.all());
    // Only the first step ran; the other server's app is deployed, this one's is not.
    assert_eq!(sudo_calls(&h), vec![format!("apk\troot sudo:{PW_USER}\tupdate")]);
    assert!(other.docker(&["ps", "--format", "{{.Names}}"]).contains(&f.app("a2")));
    assert!(!h.host.docker(&["ps", "-a", "--format", "{{.Names}}"]).contains(&f.app("a1")));
    // Once the package manager works, the next apply finishes the job.
    std::fs::remove_file(h.dir.join("fail-apk")).unwrap();
    f.apply();
    assert!(h.host.docker(&["ps", "--format", "{{.Names}}"]).contains(&f.app("a1")));
}

#[test]
fn a_locked_package_manager_is_waited_for_then_reported() {
    let h = StandinHost::new(Distro::Arch);
    let mut f = Fleet::new();
    f.tomo.set_env("TOMO_FAULT_BACKOFF_MS", "20");
    f.manifest("servers.yaml", &h.server_yaml("arch", "ensure: present"));
    // Locked for two tries: waited for, then installed.
    h.lock("pacman", 2);
    f.apply();
    let pacman: Vec<_> = sudo_calls(&h).into_iter().filter(|c| c.starts_with("pacman")).collect();
    assert_eq!(pacman.len(), 3, "{pacman:?}");
    // Locked for good: a clear failure after the tries.
    let h = StandinHost::new(Distro::Arch);
    f.manifest("servers.yaml", &h.server_yaml("arch", "ensure: present"));
    h.lock("pacman", 100);
    let r = f.tomo(&["apply", "--auto-approve"]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.all().contains("the package manager stayed locked by another process (6 tries"), "{}", r.all());
    assert!(r.all().contains("could not lock database"), "{}", r.all());
}

#[test]
fn a_user_without_the_sudo_right_is_told_so_at_plan_time() {
    let h = StandinHost::without_sudo(Distro::Fedora);
    let f = Fleet::new();
    f.manifest("servers.yaml", &h.server_yaml("fed", "ensure: present"));
    let r = f.tomo(&["plan"]);
    assert_ne!(r.code, 0, "{}", r.all());
    assert!(
        r.all().contains(&format!("the SSH user `{PW_USER}` has no right to run `sudo -n` (without a password)")),
        "{}",
        r.all()
    );
    let r = f.tomo(&["apply", "--auto-approve"]);
    assert_ne!(r.code, 0, "{}", r.all());
    assert!(sudo_calls(&h).is_empty(), "{:?}", h.calls());
}

#[test]
fn a_daemon_that_does_not_come_up_fails_naming_the_units_status() {
    let h = StandinHost::new(Distro::Fedora);
    h.no_start();
    let f = Fleet::new();
    f.manifest("servers.yaml", &h.server_yaml("fed", "ensure: present"));
    let r = f.tomo(&["apply", "--auto-approve"]);
    assert_eq!(r.code, 1, "{}", r.all());
    let all = r.all();
    assert!(all.contains("the Docker daemon did not come up"), "{all}");
    assert!(all.contains("sudo -n -- systemctl status docker.service"), "{all}");
    assert!(all.contains("Active: failed (Result: exit-code)"), "{all}");
}

#[test]
fn ensure_absent_is_refused_under_running_apps() {
    let h = StandinHost::new(Distro::Alpine).with_registry();
    let f = Fleet::new();
    f.manifest("servers.yaml", &h.server_yaml("alp", "ensure: present"));
    f.manifest("apps.yaml", &app("web", "alp"));
    f.apply();
    f.manifest("servers.yaml", &h.server_yaml("alp", "ensure: absent"));
    let r = f.tomo(&["plan"]);
    assert_ne!(r.code, 0, "{}", r.all());
    assert!(r.all().contains("`ensure: absent` would remove Docker under running apps"), "{}", r.all());
    assert!(r.all().contains(&f.app("web")), "{}", r.all());
    let before = sudo_calls(&h).len();
    let r = f.tomo(&["apply", "--auto-approve"]);
    assert_ne!(r.code, 0, "{}", r.all());
    assert_eq!(sudo_calls(&h).len(), before, "nothing ran");
    // Removed in the same change: the apps go first, then the Engine.
    f.remove_manifest("apps.yaml");
    let json = crate::docker_install::plan_json_with(&f, &["--prune"]);
    let on = actions_on(&json, "alp");
    let engine = on.iter().find(|a| a["op"] == "docker_engine").unwrap_or_else(|| panic!("{json:#}"));
    assert_eq!(engine["change"]["kind"], "remove", "{json:#}");
    let removal = on.iter().find(|a| a["op"] == "remove").unwrap_or_else(|| panic!("{json:#}"));
    assert!(engine["after"].as_array().unwrap().contains(&removal["id"]), "the apps go first: {json:#}");
    let r = f.tomo(&["apply", "--auto-approve", "--prune"]);
    assert_eq!(r.code, 0, "{}", r.all());
    let calls = sudo_calls(&h);
    assert_eq!(
        calls[before..],
        [
            format!("rc-service\troot sudo:{PW_USER}\tdocker stop"),
            format!("rc-update\troot sudo:{PW_USER}\tdel docker default"),
            format!("apk\troot sudo:{PW_USER}\tdel docker"),
        ],
        "{}",
        r.all()
    );
}
