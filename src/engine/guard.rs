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
//! - a new pair of (app, service, server, secret): a vault secret, inline
//!   encrypted value, credential of an env file (`env_file`) or a file read
//!   from beside the manifests (`files[].source`) added to a service, or a
//!   service holding one deployed to another server (an env file or source
//!   file another app uses can hold that app's passwords).
//!
//! - a store (`kind: Marketplace`) with `auth` that is new, or whose URL or
//!   secret changes (its token or key is sent to that URL).
//!
//! **Access to the host** (anything a service did not have before needs an
//! admin): a bind mount of a host path (reading it; writing it unless
//! `:ro`; the Docker socket is one), `privileged`, a `cap_add` capability,
//! a device, a host folder made with an `owner`, the host's network, PID or
//! IPC namespace (`network_mode`/`pid`/`ipc: host`), another container's
//! namespace (`container:NAME`, e.g. another app's), a `security_opt` entry
//! (`seccomp=unconfined`, `apparmor=unconfined`, `label=disable`, …), a
//! `runtime`, `gpus` — also a service holding one deployed to another server.
//! (`extra` in the MCP tools sets manifest fields only, so it is covered by
//! the same check.) A store read from a local folder (`path:`) that is new
//! or moved: tomo reads that folder of this machine into the catalog.
//!
//! Pure: compares two `Desired` values.

use std::collections::BTreeSet;

use crate::model::files::FileContent;
use crate::model::{
    Desired, EnvValue, Host, MountSource, Name, Namespace, NamespaceKind, RequireApproval, Server, Service, SshAuth,
    WatchDestructive,
};

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
        r.reasons.push(format!("send {secret} to server `{server}` (service `{service}` of app `{app}`)"));
    }
    stores(before, after, &mut r.reasons);
    let had = host_access(before);
    for (app, service, server, what) in host_access(after).difference(&had) {
        r.reasons.push(format!("give service `{service}` of app `{app}` on server `{server}` host access: {what}"));
    }
    r
}

/// Stores that send a vault secret somewhere new, or read a folder of this machine.
fn stores(before: &Desired, after: &Desired, out: &mut Vec<String>) {
    use crate::model::StoreSource;
    for m in after.marketplaces.values() {
        let old = before.marketplaces.get(&m.name);
        let same_source = old.is_some_and(|o| o.source == m.source);
        if let Some(secret) = &m.auth
            && !(same_source && old.is_some_and(|o| o.auth.as_ref() == Some(secret)))
        {
            out.push(format!("send vault secret `{secret}` to the repository of store `{}`", m.name));
        }
        if let StoreSource::Path { path } = &m.source
            && !same_source
        {
            out.push(format!("read the local folder `{path}` as store `{}`", m.name));
        }
    }
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
        if app
            .services
            .values()
            .any(|s| crate::model::spec::secret_values(&s.env, &s.files).iter().any(is_vault_secret))
        {
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

/// A vault secret or inline encrypted value (whose value the vault gives).
fn is_vault_secret(v: &EnvValue) -> bool {
    matches!(v, EnvValue::Secret(_) | EnvValue::Encrypted(_))
}

/// A vault secret, inline encrypted value or env-file credential, named for messages.
fn secret_of(v: &EnvValue) -> Option<String> {
    match v {
        EnvValue::Plain(_) => None,
        EnvValue::FromFile { file, .. } => Some(format!("the credentials of env file `{file}`")),
        EnvValue::Secret(name) => Some(format!("vault secret `{name}`")),
        EnvValue::Encrypted(c) => Some(format!("inline secret (encrypted {}…)", crate::term::head(c, 16))),
    }
}

/// Every (app, service, server, access to the host) the desired state gives:
/// a bind mount of a host path (read, and write unless read-only; the Docker
/// socket is one), a host folder made with an owner, `privileged`, an added
/// capability, a device, the host's network, PID or IPC namespace, another
/// container's namespace (`container:NAME`), a security option, a runtime, GPUs.
fn host_access(desired: &Desired) -> BTreeSet<Destination> {
    let mut out = BTreeSet::new();
    for app in desired.apps.values() {
        for svc in app.services.values() {
            for what in access_of(svc) {
                for server in &app.servers {
                    out.insert((app.name.clone(), svc.name.clone(), server.clone(), what.clone()));
                }
            }
        }
    }
    out
}

/// What access to the host one service has, one line each.
fn access_of(svc: &Service) -> Vec<String> {
    let mut given = Vec::new();
    for m in &svc.mounts {
        if let MountSource::Bind(path) = &m.source {
            given.push(format!("read host path `{path}`"));
            if !m.read_only {
                given.push(format!("write host path `{path}`"));
            }
        }
    }
    for (path, folder) in &svc.host_folders {
        if let Some((uid, gid)) = folder.owner {
            let gid = gid.map(|g| format!(":{g}")).unwrap_or_default();
            given.push(format!("host folder `{path}` made with owner `{uid}{gid}`"));
        }
    }
    if svc.privileged {
        given.push("`privileged`".into());
    }
    given.extend(svc.cap_add.iter().map(|c| format!("capability `{c}`")));
    given.extend(svc.devices.iter().map(|d| format!("device `{d}`")));
    for (kind, ns) in
        [(NamespaceKind::Network, &svc.network_mode), (NamespaceKind::Pid, &svc.pid), (NamespaceKind::Ipc, &svc.ipc)]
    {
        match ns {
            Some(Namespace::Host) => given.push(format!("`{}: host`", kind.field())),
            Some(Namespace::Container(c)) => {
                given.push(format!("`{}: container:{c}` (another container's)", kind.field()))
            }
            _ => {}
        }
    }
    given.extend(svc.run.security_opt.iter().map(|o| format!("security option `{o}`")));
    given.extend(svc.run.runtime.iter().map(|r| format!("runtime `{r}`")));
    if !svc.run.gpus.is_empty() {
        given.push("GPUs".into());
    }
    given
}

type Destination = (Name, Name, Name, String);

/// Every (app, service, server, secret) the desired state sends a secret to:
/// vault secrets, inline encrypted values, credentials of env files and
/// files read from beside the manifests (`files[].source`), by file.
fn destinations(desired: &Desired) -> BTreeSet<Destination> {
    let mut out = BTreeSet::new();
    for app in desired.apps.values() {
        for svc in app.services.values() {
            let mut sent: BTreeSet<String> = svc.env.values().filter_map(secret_of).collect();
            sent.extend(svc.files.iter().filter_map(|f| match (&f.content, &f.source) {
                (FileContent::Secret(n), _) => Some(format!("vault secret `{n}`")),
                (FileContent::Text(_), Some(src)) => Some(format!("the content of file `{src}`")),
                (FileContent::Text(_), None) => None,
            }));
            for secret in sent {
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

    /// Loads manifests and the files beside them from a folder.
    fn load_dir(files: &[(&str, &str)]) -> Desired {
        let dir = tempfile::tempdir().expect("temp dir");
        for (rel, text) in files {
            let path = dir.path().join(rel);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("folder");
            std::fs::write(path, text).expect("write");
        }
        let sources = crate::manifest::read_dir(dir.path()).expect("read");
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

    /// Env-file credentials and files read from beside the manifests are
    /// sent somewhere new like vault secrets: another app's env file or
    /// config file can hold that app's passwords.
    #[test]
    fn env_file_credentials_and_source_files_sent_somewhere_new_need_an_admin() {
        let other = NAS.replace("nas", "box").replace("auth: {password: {secret: pw}}\n", "");
        let db = "kind: App\nname: db\nserver: nas\nimage: postgres:16\nenv_file: [db.env]\nfiles:\n  - {target: /etc/db.conf, source: db.conf}\n";
        let base = [
            ("servers/nas.yaml", NAS),
            ("servers/box.yaml", other.as_str()),
            ("apps/db.yaml", db),
            ("apps/db.env", "DB_PASSWORD=hunter2\n"),
            ("apps/db.conf", "password = hunter2\n"),
        ];
        let web = |extra: &str| {
            let app = format!("kind: App\nname: web\nserver: box\nimage: nginx:1\n{extra}");
            let mut files = base.to_vec();
            files.push(("apps/web.yaml", &app));
            load_dir(&files)
        };
        let plain = web("");
        for (extra, what) in [
            ("env_file: [db.env]\n", "send the credentials of env file `apps/db.env` to server `box`"),
            (
                "files:\n  - {target: /x.conf, source: ./db.conf}\n",
                "send the content of file `apps/db.conf` to server `box`",
            ),
        ] {
            let r = review(&plain, &web(extra));
            assert!(r.why().contains(what), "{extra}: {}", r.why());
            assert!(!review(&web(extra), &web(extra)).needs_admin(), "keeping {extra}");
            assert!(!review(&web(extra), &plain).needs_admin(), "removing {extra}");
        }
        // Inline content is what its writer knows: no admin.
        assert!(!review(&plain, &web("files:\n  - {target: /x.conf, content: hi}\n")).needs_admin());
        // Moving a server whose apps hold only env-file credentials carries no vault secret.
        let db_on_box = db.replace("server: nas", "server: box");
        let moved_box = other.replace("10.0.0.5", "10.9.9.9");
        let mut files = base.to_vec();
        files[2] = ("apps/db.yaml", &db_on_box);
        let before = load_dir(&files);
        files[1] = ("servers/box.yaml", &moved_box);
        let r = review(&before, &load_dir(&files));
        assert!(!r.why().contains("vault secrets of app"), "{}", r.why());
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
            ("network_mode: host\n", "`network_mode: host`"),
            ("pid: host\n", "`pid: host`"),
            ("ipc: host\n", "`ipc: host`"),
            ("network_mode: container:bank_api\n", "`network_mode: container:bank_api`"),
            ("pid: container:bank_api\n", "`pid: container:bank_api`"),
            ("security_opt: [seccomp=unconfined]\n", "security option `seccomp=unconfined`"),
            ("security_opt: [\"label=disable\"]\n", "security option `label=disable`"),
            ("runtime: nvidia\n", "runtime `nvidia`"),
            ("resources: {gpus: all}\n", "GPUs"),
            (
                "volumes:\n  - {type: bind, source: /srv/w, target: /w, read_only: true, owner: \"0:0\"}\n",
                "host folder `/srv/w` made with owner `0:0`",
            ),
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
