//! Docker Engine methods per OS: the real `/etc/os-release` of every
//! supported release (tests/fixtures/os-release/) as the probe reports it,
//! detected, and the steps tomo would run for each `docker` block pinned in
//! tests/expect/docker/ (`UPDATE_EXPECT=1` rewrites them).

use std::collections::BTreeMap;

use tomo::model::host::{HostFacts, VersionConstraint};
use tomo::model::{DockerEnsure, DockerSettings, DockerSource, Host, Name, Origin, Server, SshAuth, SshTarget};
use tomo::plan::docker::{Family, engine_action, family};

use crate::harness::repo;

/// What the probe prints on a fresh server of that release, as user
/// `deploy` with `sudo -n`, `docker` installed when `installed` names a package.
fn probe(release: &str, os_release: &str, installed: Option<(&str, &str)>) -> String {
    let (init, pm) = match release {
        r if r.starts_with("alpine") => ("openrc", "apk"),
        r if r.starts_with("arch") => ("systemd", "pacman"),
        r if r.starts_with("debian") || r.starts_with("ubuntu") => ("systemd", "apt-get"),
        _ => ("systemd", "dnf"),
    };
    let mut out = format!(
        "tomo-facts 1\n[os-release]\n{os_release}\n[end]\narch=x86_64\nuid=1000\nuser=deploy\ninit={init}\npm={pm}\nsudo=yes\n"
    );
    if let Some((pkg, v)) = installed {
        out.push_str(&format!("dockerd=Docker version {v}, build 0000000\npkg=ii|{pkg}|{v}\nsocket=yes\n"));
    }
    out
}

fn server(ensure: DockerEnsure, version: Option<&str>, source: Option<DockerSource>, purge: bool) -> Server {
    Server {
        name: Name::parse("nas").unwrap(),
        host: Host::Ssh(SshTarget {
            address: "nas.lan".into(),
            port: 22,
            user: "deploy".into(),
            auth: SshAuth::Agent,
            host_key: None,
            sudo: true,
        }),
        docker: DockerSettings {
            socket: "/var/run/docker.sock".into(),
            ensure,
            version: version.map(|v| VersionConstraint::parse(v).unwrap()),
            source,
            purge,
        },
        labels: BTreeMap::new(),
        origin: Origin::default(),
        implicit: false,
    }
}

fn case(out: &mut String, title: &str, server: &Server, facts: &HostFacts) {
    out.push_str(&format!("## {title}\n"));
    match engine_action(server, facts) {
        Ok(None) => out.push_str("(nothing to do)\n"),
        Ok(Some(a)) => {
            out.push_str(&format!("{:?} {} ({})\n", a.change, a.version, a.method));
            for s in &a.steps {
                out.push_str(&format!("$ {}\n", s.line()));
            }
        }
        Err(e) => out.push_str(&format!("error: {e}\n")),
    }
}

fn releases() -> Vec<(String, String)> {
    let dir = repo().join("tests/fixtures/os-release");
    let mut out: Vec<(String, String)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().is_some_and(|n| n != "README"))
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read_to_string(&p).unwrap()))
        .collect();
    out.sort();
    out
}

#[test]
fn every_release_is_detected_as_its_family() {
    let want = [
        ("alma-9", Family::Rhel { repo: "centos" }),
        ("alpine-3.19", Family::Alpine),
        ("alpine-3.20", Family::Alpine),
        ("arch", Family::Arch),
        ("centos-stream-9", Family::Rhel { repo: "centos" }),
        ("debian-12", Family::Debian),
        ("debian-13", Family::Debian),
        ("fedora-40", Family::Fedora),
        ("fedora-41", Family::Fedora),
        ("rhel-9", Family::Rhel { repo: "rhel" }),
        ("rocky-9", Family::Rhel { repo: "centos" }),
        ("ubuntu-22.04", Family::Ubuntu),
        ("ubuntu-24.04", Family::Ubuntu),
    ];
    let found = releases();
    assert_eq!(found.len(), want.len(), "a fixture without an expected family");
    for ((name, text), (want_name, fam)) in found.iter().zip(want) {
        assert_eq!(name, want_name);
        let facts = HostFacts::parse(&probe(name, text, None));
        assert_eq!(family(&facts), Ok(fam), "{name}: {facts:?}");
    }
}

#[test]
fn each_release_has_its_commands_pinned() {
    let update = std::env::var_os("UPDATE_EXPECT").is_some();
    let dir = repo().join("tests/expect/docker");
    std::fs::create_dir_all(&dir).unwrap();
    let mut failures = Vec::new();
    for (name, text) in releases() {
        let fresh = HostFacts::parse(&probe(&name, &text, None));
        let pkg = match family(&fresh).unwrap() {
            Family::Debian | Family::Ubuntu => "docker.io",
            Family::Rhel { .. } => "docker-ce",
            Family::Fedora => "moby-engine",
            Family::Alpine | Family::Arch => "docker",
        };
        let old = HostFacts::parse(&probe(&name, &text, Some((pkg, "26.1.5"))));
        let mut got = format!("# {name}: {}\n", fresh.os_summary());
        case(&mut got, "present", &server(DockerEnsure::Present, None, None, false), &fresh);
        case(
            &mut got,
            "present, source: distro",
            &server(DockerEnsure::Present, None, Some(DockerSource::Distro), false),
            &fresh,
        );
        case(
            &mut got,
            "present, source: upstream, version: 27.*",
            &server(DockerEnsure::Present, Some("27.*"), Some(DockerSource::Upstream), false),
            &fresh,
        );
        case(
            &mut got,
            "present, version: 27.* over 26.1.5",
            &server(DockerEnsure::Present, Some("27.*"), None, false),
            &old,
        );
        case(
            &mut got,
            "present, version: 24.0.* over 26.1.5",
            &server(DockerEnsure::Present, Some("24.0.*"), None, false),
            &old,
        );
        case(&mut got, "absent over 26.1.5", &server(DockerEnsure::Absent, None, None, false), &old);
        case(&mut got, "absent, purge: true over 26.1.5", &server(DockerEnsure::Absent, None, None, true), &old);
        case(&mut got, "absent, not installed", &server(DockerEnsure::Absent, None, None, false), &fresh);
        let expect = dir.join(format!("{name}.txt"));
        if update {
            std::fs::write(&expect, &got).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&expect).unwrap_or_default();
        if want != got {
            let diff = similar::TextDiff::from_lines(&want, &got).unified_diff().header("expected", "got").to_string();
            failures.push(format!("{}:\n{diff}", expect.display()));
        }
    }
    assert!(failures.is_empty(), "commands differ (UPDATE_EXPECT=1 to accept):\n{}", failures.join("\n"));
}

#[test]
fn unsupported_systems_are_named_with_what_is_supported() {
    let facts = |id: &str, version: &str, arch: &str| {
        HostFacts::parse(&format!(
            "tomo-facts 1\n[os-release]\nID={id}\nVERSION_ID={version}\n[end]\narch={arch}\nuid=0\nuser=root\ninit=systemd\n"
        ))
    };
    let s = server(DockerEnsure::Present, None, None, false);
    let e = engine_action(&s, &facts("gentoo", "2.15", "x86_64")).unwrap_err().to_string();
    assert!(e.contains("gentoo 2.15 (x86_64)") && e.contains("supported are Debian 11+, Ubuntu 20.04+"), "{e}");
    let e = engine_action(&s, &facts("arch", "", "riscv64")).unwrap_err().to_string();
    assert!(e.contains("(riscv64)") && e.contains("Arch Linux is supported on x86_64"), "{e}");
    let e = engine_action(&s, &facts("debian", "10", "x86_64")).unwrap_err().to_string();
    assert!(e.contains("Debian 11 or later"), "{e}");
    let e = engine_action(&s, &facts("fedora", "39", "x86_64")).unwrap_err().to_string();
    assert!(e.contains("Fedora 40 or later"), "{e}");
    let e = engine_action(&s, &facts("alpine", "3.18.4", "x86_64")).unwrap_err().to_string();
    assert!(e.contains("Alpine 3.19 or later"), "{e}");
    // A derivative is known by its ID_LIKE.
    let mint = HostFacts::parse(
        "[os-release]\nID=linuxmint\nID_LIKE=\"ubuntu debian\"\nVERSION_ID=21.3\nVERSION_CODENAME=virginia\n[end]\narch=x86_64\nuid=0\ninit=systemd\npm=apt-get\n",
    );
    assert_eq!(family(&mint), Ok(Family::Ubuntu));
}
