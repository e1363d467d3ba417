//! What only an admin may decide: the one list of the safety settings, of
//! the changes that move where a vault secret is sent, and of host access. `engine::submit`
//! asks `review` about every change, from every front end; what it finds
//! turns a non-admin's change into a proposal that only an admin approves.
//!
//! **Safety settings** (relaxing one needs an admin; tightening does not):
//! - `mcp.require_approval`: `all` → `destructive` → `none`;
//! - `watch.destructive`: `hold` → `apply`;
//! - `prune`: `false` → `true` (orphans are removed by every apply);
//! - a Server's pinned `host_key` added, replaced or removed (a key is
//!   accepted by a human, as with `tomo server trust`); the server is not
//!   contacted until an admin approved, whatever else changed with it.
//!
//! **Where a secret is sent** (any change needs an admin):
//! - a Server whose connection (host, port, user, auth, host key, Docker
//!   socket) changes while its auth, before or after, is a vault secret, or
//!   while apps on it use vault secrets (a connection carries their values);
//! - a new pair of (app, service, server, secret): a secret or inline
//!   encrypted value added to a service, or a service holding one deployed
//!   to another server.
//!
//! **Access to the host** (anything a service did not have before needs an
//! admin): a bind mount of a host path (reading it; writing it unless
//! `:ro`; the Docker socket is one), `privileged`, a `cap_add` capability,
//! a device — also a service holding one deployed to another server.
//! (The manifest has no host network, PID or IPC mode; `extra` in the MCP
//! tools sets manifest fields only, so it is covered by the same check.)
//!
//! Pure: compares two `Desired` values.

use std::collections::BTreeSet;

use crate::model::{Desired, EnvValue, Host, MountSource, Name, RequireApproval, Server, SshAuth, WatchDestructive};

/// What a change asks of an admin.
#[derive(Debug, Default, PartialEq)]
pub struct Review {
    /// One line per reason, for the proposal's `why`.
    pub reasons: Vec<String>,
    /// Servers whose new connection would send a vault secret: not contacted
    /// until an admin approved the change.
    pub hold: BTreeSet<Name>,
}

impl Review {
    pub fn needs_admin(&self) -> bool {
        !self.reasons.is_empty()
    }

    /// The reasons as one sentence.
    pub fn why(&self) -> String {
        format!("only an admin may {}", self.reasons.join("; "))
    }
}

/// What in the change from `before` to `after` is an admin's to decide.
pub fn review(before: &Desired, after: &Desired) -> Review {
    let mut r = Review::default();
    relaxed_settings(before, after, &mut r.reasons);
    for server in after.servers.values() {
        changed_host_key(before, server, &mut r);
        moved_connection(before, after, server, &mut r);
    }
    let old = destinations(before);
    for (app, service, server, secret) in destinations(after).difference(&old) {
        r.reasons.push(format!("send vault secret {secret} to server `{server}` (service `{service}` of app `{app}`)"));
    }
    let had = host_access(before);
    for (app, service, server, what) in host_access(after).difference(&had) {
        r.reasons.push(format!("give service `{service}` of app `{app}` on server `{server}` host access: {what}"));
    }
    r
}

fn relaxed_settings(before: &Desired, after: &Desired, out: &mut Vec<String>) {
    let (b, a) = (&before.settings, &after.settings);
    let strictness = |r: RequireApproval| match r {
        RequireApproval::None => 0,
        RequireApproval::Destructive => 1,
        RequireApproval::All => 2,
    };
    let name = |r: RequireApproval| match r {
        RequireApproval::None => "none",
        RequireApproval::Destructive => "destructive",
        RequireApproval::All => "all",
    };
    if strictness(a.require_approval) < strictness(b.require_approval) {
        out.push(format!(
            "relax the approval rules: `mcp.require_approval` from {} to {}",
            name(b.require_approval),
            name(a.require_approval)
        ));
    }
    if b.watch_destructive == WatchDestructive::Hold && a.watch_destructive == WatchDestructive::Apply {
        out.push("relax a safety setting: `watch.destructive` from hold to apply".into());
    }
    if !b.prune && a.prune {
        out.push("relax a safety setting: `prune` from false to true (orphans removed by every apply)".into());
    }
}

/// The pinned `host_key` of a server (none for `host: local`).
fn pinned_key(server: &Server) -> Option<&str> {
    match &server.host {
        Host::Ssh(t) => t.host_key.as_deref(),
        Host::Local => None,
    }
}

/// A pin added, replaced or removed: it overrides the key a human accepted
/// (`tomo server trust`), so the server is not contacted before an admin approved.
fn changed_host_key(before: &Desired, server: &Server, r: &mut Review) {
    let old = before.servers.get(&server.name).and_then(pinned_key);
    let new = pinned_key(server);
    if old == new {
        return;
    }
    let what = match (old, new) {
        (None, _) => "pin",
        (_, None) => "remove the pinned",
        _ => "replace the pinned",
    };
    r.reasons.push(format!("{what} `host_key` of server `{}` (whom tomo trusts to be that server)", server.name));
    r.hold.insert(server.name.clone());
}

/// Secrets a connection to `server` carries: its login, and the apps on it.
fn secrets_carried(desired: &Desired, server: &Server) -> Vec<String> {
    let mut out = Vec::new();
    if let Host::Ssh(t) = &server.host
        && let Some(s) = auth_secret(&t.auth)
    {
        out.push(format!("vault secret `{s}` (its login)"));
    }
    for app in desired.apps.values().filter(|a| a.servers.contains(&server.name)) {
        if app.services.values().any(|s| s.env.values().any(|v| secret_of(v).is_some())) {
            out.push(format!("the vault secrets of app `{}`", app.name));
        }
    }
    out
}

fn moved_connection(before: &Desired, after: &Desired, server: &Server, r: &mut Review) {
    let old = before.servers.get(&server.name);
    if old.is_some_and(|o| connection(o) == connection(server)) {
        return;
    }
    let mut carried = secrets_carried(after, server);
    if let Some(o) = old {
        for c in secrets_carried(before, o).into_iter().filter(|c| c.contains("(its login)")) {
            if !carried.contains(&c) {
                carried.push(c);
            }
        }
    }
    if carried.is_empty() {
        return;
    }
    let what = if old.is_some() { "change where server" } else { "add server" };
    r.reasons.push(format!("{what} `{}` connects, which carries {}", server.name, carried.join(" and ")));
    if matches!(&server.host, Host::Ssh(t) if auth_secret(&t.auth).is_some()) {
        r.hold.insert(server.name.clone());
    }
}

/// SSH address, port, user, login and pinned key.
type SshEnd<'a> = (&'a str, u16, &'a str, &'a SshAuth, Option<&'a str>);

/// Where a connection to the server goes and how it logs in (not `sudo`, not labels).
fn connection(s: &Server) -> (Option<SshEnd<'_>>, &str) {
    let ssh = match &s.host {
        Host::Local => None,
        Host::Ssh(t) => Some((t.address.as_str(), t.port, t.user.as_str(), &t.auth, t.host_key.as_deref())),
    };
    (ssh, s.docker.socket.as_str())
}

fn auth_secret(auth: &SshAuth) -> Option<&Name> {
    match auth {
        SshAuth::Password { secret } | SshAuth::Key { secret } => Some(secret),
        SshAuth::KeyFile(_) | SshAuth::Agent => None,
    }
}

/// A vault secret or inline encrypted value, named for messages.
fn secret_of(v: &EnvValue) -> Option<String> {
    match v {
        EnvValue::Plain(_) | EnvValue::FromFile { .. } => None,
        EnvValue::Secret(name) => Some(format!("`{name}`")),
        EnvValue::Encrypted(c) => Some(format!("(encrypted {}…)", crate::term::head(c, 16))),
    }
}

/// Every (app, service, server, access to the host) the desired state gives:
/// a bind mount of a host path (read, and write unless read-only; the Docker
/// socket is one), `privileged`, an added capability, a device.
fn host_access(desired: &Desired) -> BTreeSet<Destination> {
    let mut out = BTreeSet::new();
    for app in desired.apps.values() {
        for svc in app.services.values() {
            let mut given = Vec::new();
            for m in &svc.mounts {
                if let MountSource::Bind(path) = &m.source {
                    given.push(format!("read host path `{path}`"));
                    if !m.read_only {
                        given.push(format!("write host path `{path}`"));
                    }
                }
            }
            if svc.privileged {
                given.push("`privileged`".into());
            }
            given.extend(svc.cap_add.iter().map(|c| format!("capability `{c}`")));
            given.extend(svc.devices.iter().map(|d| format!("device `{d}`")));
            for what in given {
                for server in &app.servers {
                    out.insert((app.name.clone(), svc.name.clone(), server.clone(), what.clone()));
                }
            }
        }
    }
    out
}

type Destination = (Name, Name, Name, String);

/// Every (app, service, server, secret) the desired state sends a secret to.
fn destinations(desired: &Desired) -> BTreeSet<Destination> {
    let mut out = BTreeSet::new();
    for app in desired.apps.values() {
        for svc in app.services.values() {
            for secret in svc.env.values().filter_map(secret_of) {
                for server in &app.servers {
                    out.insert((app.name.clone(), svc.name.clone(), server.clone(), secret.clone()));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{LoadOptions, SecretCheck, Sources};

    fn load(files: &[(&str, &str)]) -> Desired {
        let sources = Sources::from_texts(files.iter().copied());
        let secrets = SecretCheck::Known(["pw".to_string(), "db".to_string()].into());
        let loaded = crate::manifest::load(
            &sources,
            &LoadOptions { secrets: &secrets, inline_check: crate::vault::check_inline_format },
        );
        loaded.desired.unwrap_or_else(|| panic!("{:?}", loaded.diagnostics))
    }

    const NAS: &str = "kind: Server\nname: nas\nhost: 10.0.0.5\nuser: tomo\nauth: {password: {secret: pw}}\n";
    const APP: &str = "kind: App\nname: web\nserver: nas\nimage: nginx:1\nenv: {P: {secret: db}}\n";

    #[test]
    fn moving_a_server_that_logs_in_with_a_secret_needs_an_admin_and_holds_it() {
        let before = load(&[("servers/nas.yaml", NAS)]);
        for moved in [
            NAS.replace("10.0.0.5", "10.0.0.6"),
            NAS.replace("user: tomo", "user: evil"),
            format!("{NAS}port: 2222\n"),
            NAS.replace("secret: pw", "secret: db"),
        ] {
            let r = review(&before, &load(&[("servers/nas.yaml", &moved)]));
            assert!(r.needs_admin(), "{moved}");
            assert_eq!(r.hold.iter().map(Name::as_str).collect::<Vec<_>>(), ["nas"], "{moved}");
        }
        let new = review(&Desired::default(), &before);
        assert!(new.why().contains("add server `nas`"), "{}", new.why());
        // Labels or sudo move nothing.
        let r = review(&before, &load(&[("servers/nas.yaml", &format!("{NAS}sudo: true\n"))]));
        assert_eq!(r, Review::default());
    }

    #[test]
    fn apps_sending_a_secret_somewhere_new_need_an_admin() {
        let other = NAS.replace("nas", "box").replace("auth: {password: {secret: pw}}\n", "");
        let servers = [("servers/nas.yaml", NAS), ("servers/box.yaml", other.as_str())];
        let plain = APP.replace("{secret: db}", "x");
        let before = load(&[servers[0], servers[1], ("apps/web.yaml", &plain)]);
        let added = load(&[servers[0], servers[1], ("apps/web.yaml", APP)]);
        assert!(review(&before, &added).why().contains("send vault secret `db` to server `nas`"));
        let moved = load(&[servers[0], servers[1], ("apps/web.yaml", &APP.replace("server: nas", "server: box"))]);
        assert!(review(&added, &moved).why().contains("to server `box`"));
        // Changing an app in place, or removing a secret, is not a new destination.
        let bumped = load(&[servers[0], servers[1], ("apps/web.yaml", &APP.replace("nginx:1", "nginx:2"))]);
        assert!(!review(&added, &bumped).needs_admin());
        assert!(!review(&added, &before).needs_admin());
        // A server without a secret login that runs such an app: moving it needs an admin, observing it sends nothing.
        let boxed = load(&[servers[0], servers[1], ("apps/web.yaml", &APP.replace("server: nas", "server: box"))]);
        let box_moved = load(&[
            servers[0],
            ("servers/box.yaml", &other.replace("10.0.0.5", "10.9.9.9")),
            ("apps/web.yaml", &APP.replace("server: nas", "server: box")),
        ]);
        let r = review(&boxed, &box_moved);
        assert!(r.why().contains("the vault secrets of app `web`"), "{}", r.why());
        assert!(r.hold.is_empty());
    }

    #[test]
    fn relaxing_a_safety_setting_needs_an_admin_and_tightening_does_not() {
        let settings = |s: &str| load(&[("settings.yaml", &format!("kind: Settings\n{s}"))]);
        let base = settings("mcp: {require_approval: destructive}\n");
        for (s, what) in [
            ("mcp: {require_approval: none}\n", "mcp.require_approval"),
            ("watch: {destructive: apply}\n", "watch.destructive"),
            ("prune: true\n", "prune"),
        ] {
            let r = review(&base, &settings(s));
            assert!(r.why().contains(what), "{s}: {}", r.why());
            assert!(!review(&settings(s), &base).needs_admin(), "tightening {what}");
        }
        assert!(!review(&base, &settings("mcp: {require_approval: all}\nparallelism: 2\n")).needs_admin());
        let pinned = |k: char| {
            load(&[(
                "servers/b.yaml",
                &format!("kind: Server\nname: b\nhost: 10.0.0.1\nhost_key: SHA256:{}\n", k.to_string().repeat(43)),
            )])
        };
        assert!(review(&pinned('A'), &pinned('B')).why().contains("pinned `host_key` of server `b`"));
    }

    #[test]
    fn giving_a_service_host_access_needs_an_admin_and_taking_it_away_does_not() {
        let base = "kind: App\nname: web\nserver: nas\nimage: nginx:1\n";
        let app = |extra: &str| load(&[("servers/nas.yaml", NAS), ("apps/web.yaml", &format!("{base}{extra}"))]);
        let plain = app("volumes: [data:/d]\n");
        for (extra, what) in [
            ("volumes: [\"/proc:/hp:ro\"]\n", "read host path `/proc`"),
            ("volumes: [\"/var/run/docker.sock:/s\"]\n", "write host path `/var/run/docker.sock`"),
            ("privileged: true\n", "`privileged`"),
            ("cap_add: [SYS_ADMIN]\n", "capability `SYS_ADMIN`"),
            ("devices: [/dev/sda]\n", "device `/dev/sda`"),
        ] {
            let r = review(&plain, &app(extra));
            assert!(r.why().contains(what), "{extra}: {}", r.why());
            assert!(!review(&app(extra), &plain).needs_admin(), "removing {extra}");
            assert!(!review(&app(extra), &app(extra)).needs_admin(), "keeping {extra}");
        }
        // Writing where it only read is new; reading where it wrote is not.
        let (ro, rw) = (app("volumes: [\"/srv:/s:ro\"]\n"), app("volumes: [\"/srv:/s\"]\n"));
        assert!(review(&ro, &rw).why().contains("write host path `/srv`"));
        assert!(!review(&rw, &ro).needs_admin());
    }

    #[test]
    fn pinning_or_removing_a_host_key_needs_an_admin_and_holds_the_server() {
        let plain = "kind: Server\nname: b\nhost: 10.0.0.1\nauth: {key_file: /k}\n";
        let pinned = format!("{plain}port: 2298\nhost_key: SHA256:{}\n", "B".repeat(43));
        let (plain, pinned) = (load(&[("servers/b.yaml", plain)]), load(&[("servers/b.yaml", &pinned)]));
        for (before, after, what) in [
            (&plain, &pinned, "pin `host_key` of server `b`"),
            (&pinned, &plain, "remove the pinned `host_key` of server `b`"),
            (&Desired::default(), &pinned, "pin `host_key` of server `b`"),
        ] {
            let r = review(before, after);
            assert!(r.why().contains(what), "{}", r.why());
            assert_eq!(r.hold.iter().map(Name::as_str).collect::<Vec<_>>(), ["b"]);
        }
        assert_eq!(review(&pinned, &pinned), Review::default());
    }
}
