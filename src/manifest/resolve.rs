//! Raw documents to the validated `model`: parses field values (ports, mounts,
//! durations, images…), checks names and references within and across
//! documents (servers, dependencies and their cycles, duplicate names, port
//! conflicts, secret references) and reports every problem at its field.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;

use super::raw::{self, RawDocument};
use super::yaml::Node;
use crate::diag::{Diagnostic, Diagnostics, FieldPath, SourceFile, Span};
use crate::model::ports::{MOUNT_RULE, PORT_RULE, check_container_path};
use crate::model::subnet::{NetworkPool, Subnet};
use crate::model::values::{DURATION_RULE, IMAGE_RULE, NAME_RULE, RESTART_RULE, SIZE_RULE};
use crate::model::*;

/// What is known about the vault when validating secret references.
#[derive(Debug, Clone)]
pub enum SecretCheck {
    /// The vault opened; these names exist.
    Known(BTreeSet<String>),
    /// The vault could not be opened (reason); references become warnings.
    Unavailable(String),
}

/// Checks whether an inline `enc:v1:` value is well-formed (not whether it decrypts).
pub type InlineCheck = fn(&str) -> Result<(), String>;

/// One parsed, schema-checked document and where it came from.
pub struct Doc {
    pub file: Arc<SourceFile>,
    /// Path relative to the manifest folder.
    pub rel: String,
    pub node: Node,
    pub raw: RawDocument,
}

/// A place in a document, for reporting.
#[derive(Clone, Copy)]
struct At<'a> {
    file: &'a Arc<SourceFile>,
    node: &'a Node,
}

impl<'a> At<'a> {
    fn span(&self, path: &FieldPath) -> Span {
        self.node.span_at(path)
    }
    fn key_span(&self, path: &FieldPath) -> Span {
        self.node.key_span_at(path)
    }
    fn err(&self, path: &FieldPath, code: &'static str, msg: impl Into<String>) -> Diagnostic {
        Diagnostic::error(code, msg).at(self.file, self.span(path)).field(path.clone())
    }
    fn err_at_key(&self, path: &FieldPath, code: &'static str, msg: impl Into<String>) -> Diagnostic {
        Diagnostic::error(code, msg).at(self.file, self.key_span(path)).field(path.clone())
    }
    fn origin(&self, rel: &str) -> Origin {
        Origin { file: rel.to_string(), line: self.node.span.line }
    }
}

/// A reference from an app to a server, checked once every document is read.
struct ServerRef<'a> {
    name: Name,
    at: At<'a>,
    path: FieldPath,
}

struct SecretUse<'a> {
    name: String,
    at: At<'a>,
    path: FieldPath,
}

struct Resolver<'a> {
    diags: &'a mut Diagnostics,
    secrets_used: Vec<SecretUse<'a>>,
    server_refs: Vec<ServerRef<'a>>,
    /// Names of every Server document, valid or not (so an app is not told a
    /// server with a problem of its own is undeclared).
    declared_servers: BTreeSet<Name>,
    inline_check: InlineCheck,
}

pub fn resolve(docs: &[Doc], secrets: &SecretCheck, inline_check: InlineCheck, diags: &mut Diagnostics) -> Desired {
    let mut r = Resolver {
        diags,
        secrets_used: Vec::new(),
        server_refs: Vec::new(),
        declared_servers: BTreeSet::new(),
        inline_check,
    };
    let mut desired = Desired::default();
    let mut first_seen: BTreeMap<(&str, String), (Arc<SourceFile>, Span)> = BTreeMap::new();
    let mut settings_seen: Option<(Arc<SourceFile>, Span)> = None;
    let mut app_ats: BTreeMap<Name, At<'_>> = BTreeMap::new();

    for doc in docs {
        let at = At { file: &doc.file, node: &doc.node };
        let name_path = FieldPath::root().key("name");
        let (kind, name) = match &doc.raw {
            RawDocument::Server(s) => ("Server", Some(s.name.as_str())),
            RawDocument::App(raw::RawApp::Multi(a)) => ("App", Some(a.name.as_str())),
            RawDocument::App(raw::RawApp::Single(a)) => ("App", Some(a.name.as_str())),
            RawDocument::Marketplace(m) => ("Marketplace", Some(m.name.as_str())),
            RawDocument::Settings(_) => ("Settings", None),
        };
        // An invalid name is reported; the document is still checked (under a
        // placeholder name) so that all its problems show at once.
        let (name, name_ok) = match name.map(|n| r.name(at, &name_path, n)) {
            Some(Some(n)) => (Some(n), true),
            Some(None) => (Some(Name::parse("invalid").expect("valid name")), false),
            None => (None, true),
        };
        if let Some(n) = name.as_ref().filter(|_| name_ok) {
            let key = (kind, n.to_string());
            if let Some((f, s)) = first_seen.get(&key) {
                let d = at
                    .err(&name_path, "duplicate-name", format!("{kind} `{n}` is declared twice"))
                    .related(f, *s, "first declared here")
                    .help(format!("rename one of them; {kind} names must be unique"));
                r.diags.push(d);
                continue;
            }
            first_seen.insert(key, (doc.file.clone(), at.span(&name_path)));
        }
        match (&doc.raw, name) {
            (RawDocument::Server(s), Some(n)) => {
                if name_ok {
                    r.declared_servers.insert(n.clone());
                }
                if let Some(server) = r.server(at, &doc.rel, n.clone(), s).filter(|_| name_ok) {
                    desired.servers.insert(n, server);
                }
            }
            (RawDocument::App(a), Some(n)) => {
                if let Some(app) = r.app(at, &doc.rel, n.clone(), a).filter(|_| name_ok) {
                    app_ats.insert(n.clone(), at);
                    desired.apps.insert(n, app);
                }
            }
            (RawDocument::Marketplace(m), Some(n)) => {
                if let Some(mk) = r.marketplace(at, &doc.rel, n.clone(), m).filter(|_| name_ok) {
                    desired.marketplaces.insert(n, mk);
                }
            }
            (RawDocument::Settings(s), _) => {
                if let Some((f, span)) = &settings_seen {
                    let d = Diagnostic::error("duplicate-settings", "more than one Settings document")
                        .at(&doc.file, at.key_span(&FieldPath::root().key("kind")))
                        .related(f, *span, "the first Settings document")
                        .help("merge them into one Settings document");
                    r.diags.push(d);
                    continue;
                }
                settings_seen = Some((doc.file.clone(), at.key_span(&FieldPath::root().key("kind"))));
                if let Some(settings) = r.settings(at, &doc.rel, s) {
                    desired.settings = settings;
                }
            }
            _ => {}
        }
    }

    r.check_app_servers(&mut desired);
    r.check_port_conflicts(&desired, &app_ats);
    r.check_secrets(secrets);
    desired
}

const LOCAL: &str = "local";

impl<'a> Resolver<'a> {
    fn push(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }

    fn name(&mut self, at: At<'a>, path: &FieldPath, s: &str) -> Option<Name> {
        match Name::parse(s) {
            Ok(n) => Some(n),
            Err(e) => {
                self.push(
                    at.err(path, "invalid-name", format!("invalid name: {e}")).help(format!("names are {NAME_RULE}")),
                );
                None
            }
        }
    }

    fn duration(&mut self, at: At<'a>, path: &FieldPath, s: Option<&String>) -> Option<Duration> {
        let s = s?;
        match Duration::parse(s) {
            Ok(d) => Some(d),
            Err(e) => {
                self.push(at.err(path, "invalid-duration", e).help(format!("write {DURATION_RULE}")));
                None
            }
        }
    }

    fn secret_ref(&mut self, at: At<'a>, path: &FieldPath, name: &str) -> Option<Name> {
        let n = self.name(at, path, name)?;
        self.secrets_used.push(SecretUse { name: name.to_string(), at, path: path.clone() });
        Some(n)
    }

    fn server(&mut self, at: At<'a>, rel: &str, name: Name, s: &raw::RawServer) -> Option<Server> {
        let root = FieldPath::root();
        let before = self.diags.error_count();
        if name.as_str() == LOCAL && s.host != LOCAL {
            self.push(
                at.err(
                    &root.key("name"),
                    "reserved-name",
                    "the Server name `local` is reserved for this machine (`host: local`)",
                )
                .help("give the server another name; apps on `local` run on this machine's Docker Engine"),
            );
        }
        let host = if s.host == LOCAL {
            for (field, set) in [
                ("port", s.port.is_some()),
                ("user", s.user.is_some()),
                ("auth", s.auth.is_some()),
                ("host_key", s.host_key.is_some()),
            ] {
                if set {
                    self.push(
                        Diagnostic::warning("ignored-field", format!("`{field}` is ignored for `host: local`"))
                            .at(at.file, at.key_span(&root.key(field)))
                            .field(root.key(field)),
                    );
                }
            }
            Host::Local
        } else {
            let host_path = root.key("host");
            let h = s.host.as_str();
            let ok = !h.is_empty()
                && !h.starts_with('-')
                && h.len() <= 253
                && h.chars().all(|c| c.is_ascii_alphanumeric() || ".-:_".contains(c));
            if !ok {
                self.push(
                    at.err(
                        &host_path,
                        "invalid-host",
                        format!("`{}` is not a host name or IP address", h.escape_default()),
                    )
                    .help("write a host name (`nas.lan`), an IP address (`10.0.0.5`, `fd00::5`) or `local`"),
                );
            }
            let port = s.port.unwrap_or(22);
            if port == 0 {
                self.push(
                    at.err(&root.key("port"), "invalid-port", "port 0 is not a valid SSH port")
                        .help("SSH listens on 22 unless configured otherwise"),
                );
            }
            let user = s.user.clone().unwrap_or_else(|| "root".into());
            let user_ok = !user.is_empty()
                && user.len() <= 32
                && user.chars().next().is_some_and(|c| c.is_ascii_lowercase() || c == '_')
                && user.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
            if !user_ok {
                self.push(
                    at.err(
                        &root.key("user"),
                        "invalid-user",
                        format!("`{}` is not a valid user name", user.escape_default()),
                    )
                    .help("user names start with a lowercase letter or '_' and hold letters, digits, '_', '.' and '-'"),
                );
            }
            let auth_path = root.key("auth");
            let auth = match &s.auth {
                None | Some(raw::RawAuth::Agent(true)) => SshAuth::Agent,
                Some(raw::RawAuth::Agent(false)) => {
                    self.push(at.err(&auth_path.key("agent"), "invalid-auth", "`agent: false` selects no way to log in").help("use `{agent: true}`, `{key_file: PATH}`, `{password: {secret: NAME}}` or `{key: {secret: NAME}}`"));
                    SshAuth::Agent
                }
                Some(raw::RawAuth::KeyFile(p)) => {
                    if p.trim().is_empty() {
                        self.push(
                            at.err(&auth_path.key("key_file"), "invalid-auth", "key_file is empty")
                                .help("write the path of a private key, e.g. `~/.ssh/id_ed25519`"),
                        );
                    }
                    SshAuth::KeyFile(p.clone())
                }
                Some(raw::RawAuth::Password(r)) => SshAuth::Password {
                    secret: self.secret_ref(at, &auth_path.key("password").key("secret"), &r.secret)?,
                },
                Some(raw::RawAuth::Key(r)) => {
                    SshAuth::Key { secret: self.secret_ref(at, &auth_path.key("key").key("secret"), &r.secret)? }
                }
            };
            if let Some(fp) = &s.host_key
                && !valid_fingerprint(fp)
            {
                self.push(
                    at.err(&root.key("host_key"), "invalid-host-key", format!("`{}` is not a SHA256 host key fingerprint", fp.escape_default()))
                        .help("write it as `ssh-keygen -lf` prints it, e.g. `SHA256:` and 43 base64 characters; `tomo server trust` records it for you"),
                );
            }
            Host::Ssh(SshTarget {
                address: s.host.clone(),
                port,
                user,
                auth,
                host_key: s.host_key.clone(),
                sudo: s.sudo.unwrap_or(false),
            })
        };
        let docker = s.docker.clone().unwrap_or(raw::RawDocker { socket: None, ensure: None });
        let socket = docker.socket.unwrap_or_else(|| DEFAULT_DOCKER_SOCKET.into());
        if !socket.starts_with('/') || socket.split('/').any(|c| c == "..") {
            self.push(
                at.err(
                    &root.key("docker").key("socket"),
                    "invalid-path",
                    format!("socket path `{}` must be absolute", socket.escape_default()),
                )
                .help("e.g. `/var/run/docker.sock`"),
            );
        }
        (self.diags.error_count() == before).then(|| Server {
            name,
            host,
            docker: DockerSettings { socket, ensure: docker.ensure.unwrap_or_default() },
            labels: s.labels.clone().unwrap_or_default(),
            origin: at.origin(rel),
            implicit: false,
        })
    }

    fn app(&mut self, at: At<'a>, rel: &str, name: Name, a: &raw::RawApp) -> Option<App> {
        let root = FieldPath::root();
        let before = self.diags.error_count();
        let (server, servers, state) = match a {
            raw::RawApp::Multi(m) => (&m.server, &m.servers, m.state),
            raw::RawApp::Single(s) => (&s.server, &s.servers, s.state),
        };
        let mut server_names = Vec::new();
        match (server, servers) {
            (Some(_), Some(_)) => self.push(
                at.err_at_key(&root.key("servers"), "conflicting-fields", "both `server` and `servers` are set")
                    .help("use `server: NAME` for one server or `servers: [A, B]` for several"),
            ),
            (None, None) => self.push(
                at.err(&root, "missing-field", "missing `server`: the app runs nowhere")
                    .help("add `server: local` to run it on this machine, or `servers: [A, B]`"),
            ),
            (Some(s), None) => {
                let p = root.key("server");
                if let Some(n) = self.name(at, &p, s) {
                    self.server_refs.push(ServerRef { name: n.clone(), at, path: p });
                    server_names.push(n);
                }
            }
            (None, Some(list)) => {
                if list.is_empty() {
                    self.push(
                        at.err(&root.key("servers"), "missing-field", "`servers` is empty")
                            .help("name at least one server"),
                    );
                }
                for (i, s) in list.iter().enumerate() {
                    let p = root.key("servers").index(i);
                    if let Some(n) = self.name(at, &p, s) {
                        if server_names.contains(&n) {
                            self.push(
                                at.err(&p, "duplicate-name", format!("server `{n}` is listed twice"))
                                    .help("list each server once"),
                            );
                        }
                        self.server_refs.push(ServerRef { name: n.clone(), at, path: p.clone() });
                        server_names.push(n);
                    }
                }
            }
        }

        let mut services = BTreeMap::new();
        let mut volumes = BTreeMap::new();
        let mut networks = BTreeMap::new();
        let single = matches!(a, raw::RawApp::Single(_));
        match a {
            raw::RawApp::Single(s) => {
                if let Some(svc) = self.service(at, &root, name.clone(), &s.service, ServiceState::Running) {
                    services.insert(name.clone(), svc);
                }
            }
            raw::RawApp::Multi(m) => {
                if m.services.is_empty() {
                    self.push(
                        at.err(&root.key("services"), "missing-field", "an app needs at least one service")
                            .help("add a service: `services: {web: {image: nginx:1.27}}`"),
                    );
                }
                for (sname, svc) in &m.services {
                    let p = root.key("services").key(sname);
                    let Some(sn) = self.name(at, &p, sname) else {
                        continue;
                    };
                    let state = svc.state.unwrap_or_default();
                    if let Some(s) = self.service(at, &p, sn.clone(), &svc.service, state) {
                        services.insert(sn, s);
                    }
                }
                for (field, decls, out) in
                    [("volumes", &m.volumes, &mut volumes), ("networks", &m.networks, &mut networks)]
                {
                    for (k, d) in decls.iter().flatten() {
                        let p = root.key(field).key(k);
                        if let Some(n) = self.name(at, &p, k) {
                            out.insert(n, resource_decl(d));
                        }
                    }
                }
            }
        }
        self.check_dependencies(at, single, &services);
        (self.diags.error_count() == before).then(|| App {
            name,
            servers: server_names,
            state: state.unwrap_or_default(),
            services,
            volumes,
            networks,
            origin: at.origin(rel),
            single,
        })
    }

    fn check_dependencies(&mut self, at: At<'a>, single: bool, services: &BTreeMap<Name, Service>) {
        let base = |svc: &Name| {
            if single { FieldPath::root() } else { FieldPath::root().key("services").key(svc.as_str()) }
        };
        for (name, svc) in services {
            for dep in svc.depends_on.keys() {
                let p = base(name).key("depends_on").key(dep.as_str());
                let p = if at.node.node_at(&p).is_some() {
                    p
                } else {
                    // list form: find the index
                    let list = base(name).key("depends_on");
                    let idx = at.node.node_at(&list).and_then(|n| match &n.value {
                        super::yaml::Value::Seq(items) => items.iter().position(|i| i.as_str() == Some(dep.as_str())),
                        _ => None,
                    });
                    idx.map_or(list.clone(), |i| list.index(i))
                };
                if dep == name {
                    self.push(
                        at.err(&p, "dependency-cycle", format!("service `{name}` depends on itself"))
                            .help("remove it from its own depends_on"),
                    );
                } else if !services.contains_key(dep) {
                    let known: Vec<&str> = services.keys().map(Name::as_str).filter(|s| *s != name.as_str()).collect();
                    let help = match crate::diag::did_you_mean(dep.as_str(), known.iter().copied()) {
                        Some(s) => format!("did you mean `{s}`?"),
                        None if known.is_empty() => {
                            "this app has no other services; depends_on names services of the same app".to_string()
                        }
                        None => format!("services of this app: {}", known.join(", ")),
                    };
                    self.push(
                        at.err(&p, "unknown-service", format!("`{dep}` is not a service of this app")).help(help),
                    );
                }
            }
        }
        // Cycles: depth-first search with colours.
        let mut state: BTreeMap<&Name, u8> = BTreeMap::new();
        let mut stack: Vec<&Name> = Vec::new();
        let mut reported: BTreeSet<Vec<&Name>> = BTreeSet::new();
        fn visit<'n>(
            n: &'n Name,
            services: &'n BTreeMap<Name, Service>,
            state: &mut BTreeMap<&'n Name, u8>,
            stack: &mut Vec<&'n Name>,
            cycles: &mut Vec<Vec<&'n Name>>,
        ) {
            state.insert(n, 1);
            stack.push(n);
            if let Some(svc) = services.get(n) {
                for dep in svc.depends_on.keys().filter(|d| *d != n) {
                    let Some((dep, _)) = services.get_key_value(dep) else {
                        continue;
                    };
                    match state.get(dep) {
                        Some(1) => {
                            let start = stack.iter().position(|s| *s == dep).unwrap_or(0);
                            cycles.push(stack[start..].to_vec());
                        }
                        Some(_) => {}
                        None => visit(dep, services, state, stack, cycles),
                    }
                }
            }
            stack.pop();
            state.insert(n, 2);
        }
        let mut cycles = Vec::new();
        for n in services.keys() {
            if !state.contains_key(n) {
                visit(n, services, &mut state, &mut stack, &mut cycles);
            }
        }
        for cycle in cycles {
            let mut canon = cycle.clone();
            canon.sort();
            if !reported.insert(canon) {
                continue;
            }
            let mut text: Vec<String> = cycle.iter().map(|n| n.to_string()).collect();
            text.push(cycle[0].to_string());
            let first = cycle[0];
            let mut d = at
                .err_at_key(
                    &base(first).key("depends_on"),
                    "dependency-cycle",
                    format!("dependency cycle: {}", text.join(" -> ")),
                )
                .help("services cannot wait for each other in a circle; remove one of these depends_on entries");
            for n in &cycle[1..] {
                d = d.related(at.file, at.key_span(&base(n).key("depends_on")), format!("`{n}` depends_on here"));
            }
            self.push(d);
        }
    }

    fn service(
        &mut self,
        at: At<'a>,
        base: &FieldPath,
        name: Name,
        s: &raw::RawService,
        state: ServiceState,
    ) -> Option<Service> {
        let before = self.diags.error_count();
        let image = match ImageRef::parse(&s.image) {
            Ok(i) => Some(i),
            Err(e) => {
                self.push(at.err(&base.key("image"), "invalid-image", e).help(format!("write {IMAGE_RULE}")));
                None
            }
        };
        let command = self.words(at, &base.key("command"), s.command.as_ref());
        let entrypoint = self.words(at, &base.key("entrypoint"), s.entrypoint.as_ref());

        let mut env = BTreeMap::new();
        for (k, v) in s.env.iter().flatten() {
            let p = base.key("env").key(k);
            if k.is_empty() || k.contains('=') || k.contains('\0') || k.chars().any(char::is_whitespace) {
                self.push(
                    at.err_at_key(
                        &p,
                        "invalid-env",
                        format!("`{}` is not a valid environment variable name", k.escape_default()),
                    )
                    .help("names hold no '=', spaces or NUL, e.g. `DATABASE_URL`"),
                );
                continue;
            }
            let value = match v {
                raw::EnvValue::Secret(r) => match self.secret_ref(at, &p.key("secret"), &r.secret) {
                    Some(n) => EnvValue::Secret(n),
                    None => continue,
                },
                raw::EnvValue::Plain(sc) => {
                    let text = scalar_text(sc);
                    if text.starts_with(crate::vault::INLINE_PREFIX) {
                        if let Err(e) = (self.inline_check)(&text) {
                            self.push(
                                at.err(&p, "invalid-secret", e).help("paste the whole output of `tomo secret encrypt`"),
                            );
                            continue;
                        }
                        EnvValue::Encrypted(text)
                    } else {
                        EnvValue::Plain(text)
                    }
                }
            };
            env.insert(k.clone(), value);
        }

        let mut ports = Vec::new();
        for (i, p) in s.ports.iter().flatten().enumerate() {
            let path = base.key("ports").index(i);
            let parsed = match p {
                raw::RawPort::Short(text) => PortMapping::parse(text),
                raw::RawPort::Number(n) => PortRange::parse(&n.to_string()).map(|c| PortMapping {
                    host_ip: None,
                    host: None,
                    container: c,
                    protocol: Protocol::Tcp,
                }),
                raw::RawPort::Long(l) => long_port(l),
            };
            match parsed {
                Ok(m) => ports.push(m),
                Err(e) => self.push(at.err(&path, "invalid-port", e).help(format!("write {PORT_RULE}"))),
            }
        }

        let mut mounts = Vec::new();
        for (i, m) in s.volumes.iter().flatten().enumerate() {
            let path = base.key("volumes").index(i);
            let parsed = match m {
                raw::RawMount::Short(text) => Mount::parse(text),
                raw::RawMount::Long(l) => long_mount(l),
            };
            match parsed {
                Ok(m) => {
                    if mounts.iter().any(|x: &Mount| x.target == m.target) {
                        self.push(
                            at.err(&path, "duplicate-mount", format!("two mounts target `{}`", m.target))
                                .help("each container path can be mounted once"),
                        );
                    }
                    mounts.push(m);
                }
                Err(e) => self.push(at.err(&path, "invalid-volume", e).help(format!("write {MOUNT_RULE}"))),
            }
        }

        let mut networks = Vec::new();
        for (i, n) in s.networks.iter().flatten().enumerate() {
            networks.extend(self.name(at, &base.key("networks").index(i), n));
        }

        let mut depends_on = BTreeMap::new();
        match &s.depends_on {
            None => {}
            Some(raw::RawDependsOn::List(list)) => {
                for (i, d) in list.iter().enumerate() {
                    if let Some(n) = self.name(at, &base.key("depends_on").index(i), d) {
                        depends_on.insert(n, DependencyCondition::Started);
                    }
                }
            }
            Some(raw::RawDependsOn::Map(map)) => {
                for (d, cond) in map {
                    if let Some(n) = self.name(at, &base.key("depends_on").key(d), d) {
                        let c = match cond {
                            raw::RawDependency::Condition(c) | raw::RawDependency::Long { condition: c } => *c,
                        };
                        depends_on.insert(n, c);
                    }
                }
            }
        }

        let healthcheck = s.healthcheck.as_ref().and_then(|h| self.healthcheck(at, &base.key("healthcheck"), h));

        let restart = match &s.restart {
            None => Restart::default(),
            Some(r) => match Restart::parse(r) {
                Ok(r) => r,
                Err(e) => {
                    self.push(at.err(&base.key("restart"), "invalid-restart", e).help(format!("write {RESTART_RULE}")));
                    Restart::default()
                }
            },
        };

        let labels = s.labels.clone().unwrap_or_default();
        for k in labels.keys() {
            if k.starts_with("tomo.") {
                self.push(
                    at.err_at_key(
                        &base.key("labels").key(k),
                        "reserved-label",
                        format!("label `{k}` uses the reserved prefix `tomo.`"),
                    )
                    .help("tomo sets `tomo.*` labels itself; choose another prefix"),
                );
            }
        }

        if let Some(w) = &s.working_dir
            && let Err(e) = check_container_path(w)
        {
            self.push(at.err(&base.key("working_dir"), "invalid-path", e));
        }
        if let Some(h) = &s.hostname
            && (h.is_empty()
                || h.len() > 63
                || !h.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
                || h.starts_with('-'))
        {
            self.push(
                at.err(
                    &base.key("hostname"),
                    "invalid-hostname",
                    format!("`{}` is not a valid host name", h.escape_default()),
                )
                .help("letters, digits, '-' and '.', at most 63 characters"),
            );
        }
        for field in ["cap_add", "cap_drop"] {
            let list = if field == "cap_add" { &s.cap_add } else { &s.cap_drop };
            for (i, c) in list.iter().flatten().enumerate() {
                let bare = c.strip_prefix("CAP_").unwrap_or(c);
                if bare.is_empty()
                    || !bare.chars().all(|ch| ch.is_ascii_uppercase() || ch.is_ascii_digit() || ch == '_')
                {
                    self.push(
                        at.err(
                            &base.key(field).index(i),
                            "invalid-capability",
                            format!("`{}` is not a capability name", c.escape_default()),
                        )
                        .help("capabilities are uppercase, e.g. `NET_ADMIN` or `ALL`"),
                    );
                }
            }
        }
        for (i, d) in s.devices.iter().flatten().enumerate() {
            if !d.starts_with('/') || d.split(':').count() > 3 {
                self.push(
                    at.err(
                        &base.key("devices").index(i),
                        "invalid-device",
                        format!("`{}` is not a device mapping", d.escape_default()),
                    )
                    .help("write `/dev/HOST[:/dev/CONTAINER[:rwm]]`"),
                );
            }
        }
        for (i, t) in s.tmpfs.iter().flatten().enumerate() {
            if let Err(e) = check_container_path(t.split(':').next().unwrap_or(t)) {
                self.push(at.err(&base.key("tmpfs").index(i), "invalid-path", e).help("write `/path[:options]`"));
            }
        }
        let sysctls = s.sysctls.iter().flatten().map(|(k, v)| (k.clone(), scalar_text(v))).collect();
        let mut ulimits = BTreeMap::new();
        for (k, u) in s.ulimits.iter().flatten() {
            let (soft, hard) = match u {
                raw::RawUlimit::Single(n) => (*n, *n),
                raw::RawUlimit::Pair { soft, hard } => (*soft, *hard),
            };
            if soft > hard {
                self.push(
                    at.err(
                        &base.key("ulimits").key(k),
                        "invalid-ulimit",
                        format!("soft limit {soft} is above hard limit {hard}"),
                    )
                    .help("soft must be at most hard"),
                );
            }
            ulimits.insert(k.clone(), Ulimit { soft, hard });
        }
        for (i, h) in s.extra_hosts.iter().flatten().enumerate() {
            let ok = h
                .split_once(['=', ':'])
                .is_some_and(|(name, ip)| !name.is_empty() && (ip.parse::<IpAddr>().is_ok() || ip == "host-gateway"));
            if !ok {
                self.push(
                    at.err(
                        &base.key("extra_hosts").index(i),
                        "invalid-host",
                        format!("`{}` is not a host entry", h.escape_default()),
                    )
                    .help("write `HOST:IP`, e.g. `db.lan:10.0.0.7`"),
                );
            }
        }
        let stop_grace_period = self.duration(at, &base.key("stop_grace_period"), s.stop_grace_period.as_ref());
        let mut memory = None;
        let mut cpus = None;
        if let Some(r) = &s.resources {
            if let Some(m) = &r.memory {
                match ByteSize::parse(m) {
                    Ok(b) => memory = Some(b),
                    Err(e) => self.push(
                        at.err(&base.key("resources").key("memory"), "invalid-size", e)
                            .help(format!("write {SIZE_RULE}")),
                    ),
                }
            }
            if let Some(c) = r.cpus {
                if c <= 0.0 || !c.is_finite() {
                    self.push(
                        at.err(
                            &base.key("resources").key("cpus"),
                            "invalid-value",
                            format!("cpus must be above 0, not {c}"),
                        )
                        .help("e.g. `cpus: 1.5`"),
                    );
                }
                cpus = Some(c);
            }
        }

        if s.update_order == Some(UpdateOrder::StartFirst) && ports.iter().any(|p| p.host.is_some()) {
            self.push(
                Diagnostic::warning(
                    "start-first-port",
                    "`update_order: start-first` cannot work with a published host port: the new container cannot bind it while the old one runs",
                )
                .at(at.file, at.span(&base.key("update_order")))
                .field(base.key("update_order"))
                .help("use `stop-first` (the default), or publish the port through a reverse proxy"),
            );
        }
        if self.diags.error_count() != before {
            return None;
        }
        Some(Service {
            name,
            image: image?,
            command,
            entrypoint,
            env,
            ports,
            mounts,
            networks,
            depends_on,
            healthcheck,
            restart,
            labels,
            user: s.user.clone(),
            working_dir: s.working_dir.clone(),
            hostname: s.hostname.clone(),
            privileged: s.privileged.unwrap_or(false),
            cap_add: s.cap_add.clone().unwrap_or_default(),
            cap_drop: s.cap_drop.clone().unwrap_or_default(),
            devices: s.devices.clone().unwrap_or_default(),
            tmpfs: s.tmpfs.clone().unwrap_or_default(),
            sysctls,
            ulimits,
            extra_hosts: s.extra_hosts.clone().unwrap_or_default(),
            init: s.init.unwrap_or(false),
            stop_grace_period,
            memory,
            cpus,
            pull: s.pull.unwrap_or_default(),
            update_order: s.update_order.unwrap_or_default(),
            state,
        })
    }

    fn words(&mut self, at: At<'a>, path: &FieldPath, v: Option<&raw::StringOrList>) -> Option<Vec<String>> {
        match v? {
            raw::StringOrList::List(l) => Some(l.clone()),
            raw::StringOrList::String(s) => match split_words(s) {
                Ok(w) => Some(w),
                Err(e) => {
                    self.push(
                        at.err(path, "invalid-command", e)
                            .help("close the quote, or write the command as a list: `[\"prog\", \"arg\"]`"),
                    );
                    None
                }
            },
        }
    }

    fn healthcheck(&mut self, at: At<'a>, path: &FieldPath, h: &raw::RawHealthcheck) -> Option<Healthcheck> {
        let test = if h.disable == Some(true) {
            vec!["NONE".to_string()]
        } else {
            match &h.test {
                None => {
                    self.push(at.err(path, "missing-field", "healthcheck has no `test`").help(
                        "e.g. `test: [\"CMD\", \"wget\", \"-q\", \"-O-\", \"http://127.0.0.1/\"]`, or `disable: true`",
                    ));
                    return None;
                }
                Some(raw::StringOrList::String(s)) => vec!["CMD-SHELL".to_string(), s.clone()],
                Some(raw::StringOrList::List(l)) => {
                    let ok = match l.first().map(String::as_str) {
                        Some("CMD") => l.len() >= 2,
                        Some("CMD-SHELL") => l.len() == 2,
                        Some("NONE") => l.len() == 1,
                        _ => false,
                    };
                    if !ok {
                        self.push(at.err(&path.key("test"), "invalid-healthcheck", "a healthcheck test list starts with `CMD` (then the program and its arguments), `CMD-SHELL` (then one command string) or is `[\"NONE\"]`").help("e.g. `[\"CMD\", \"pg_isready\"]`"));
                        return None;
                    }
                    l.clone()
                }
            }
        };
        Some(Healthcheck {
            test,
            interval: self.duration(at, &path.key("interval"), h.interval.as_ref()),
            timeout: self.duration(at, &path.key("timeout"), h.timeout.as_ref()),
            retries: h.retries,
            start_period: self.duration(at, &path.key("start_period"), h.start_period.as_ref()),
        })
    }

    fn settings(&mut self, at: At<'a>, rel: &str, s: &raw::RawSettings) -> Option<Settings> {
        let root = FieldPath::root();
        let before = self.diags.error_count();
        let d = Settings::default();
        let parallelism = s.parallelism.unwrap_or(d.parallelism);
        if parallelism == 0 || parallelism > 256 {
            self.push(
                at.err(&root.key("parallelism"), "out-of-range", format!("parallelism {parallelism} is out of range"))
                    .help("use a number from 1 to 256 (default 16)"),
            );
        }
        let health_timeout = self.duration(at, &root.key("health_timeout"), s.health_timeout.as_ref());
        let server_timeout = self.duration(at, &root.key("server_timeout"), s.server_timeout.as_ref());
        if server_timeout.is_some_and(|t| !(1000..=3_600_000).contains(&t.as_millis())) {
            self.push(
                at.err(&root.key("server_timeout"), "out-of-range", "server timeout must be from 1s to 1h")
                    .help("e.g. `30s`"),
            );
        }
        let w = s.watch.clone().unwrap_or_default();
        let watch_interval = self.duration(at, &root.key("watch").key("interval"), w.interval.as_ref());
        if watch_interval.is_some_and(|i| i.as_millis() < 1000) {
            self.push(
                at.err(&root.key("watch").key("interval"), "out-of-range", "watch interval must be at least 1s")
                    .help("e.g. `5m`"),
            );
        }
        let network_pool = self.network_pool(at, s.networks.as_ref());
        (self.diags.error_count() == before).then(|| Settings {
            prune: s.prune.unwrap_or(d.prune),
            parallelism,
            health_timeout: health_timeout.unwrap_or(d.health_timeout),
            server_timeout,
            watch_interval: watch_interval.unwrap_or(d.watch_interval),
            watch_self_heal: w.self_heal.unwrap_or(d.watch_self_heal),
            watch_destructive: w.destructive.unwrap_or(d.watch_destructive),
            require_approval: s.mcp.as_ref().and_then(|m| m.require_approval).unwrap_or(d.require_approval),
            network_pool: network_pool.unwrap_or(d.network_pool),
            origin: Some(at.origin(rel)),
        })
    }

    fn network_pool(&mut self, at: At<'a>, n: Option<&raw::RawNetworkSettings>) -> Option<NetworkPool> {
        let path = FieldPath::root().key("networks");
        let d = NetworkPool::default();
        let n = n?;
        let range = match n.pool.as_deref().map(Subnet::parse) {
            None => d.range,
            Some(Ok(r)) => r,
            Some(Err(why)) => {
                self.push(at.err(&path.key("pool"), "invalid-pool", why).help("an IPv4 range such as `10.213.0.0/16`"));
                return None;
            }
        };
        match NetworkPool::new(range, n.prefix.unwrap_or(d.block)) {
            Ok(p) => Some(p),
            Err(why) => {
                self.push(
                    at.err(&path.key("prefix"), "invalid-pool", why)
                        .help("e.g. `prefix: 27` (29 containers per network) with a `/16` pool"),
                );
                None
            }
        }
    }

    fn marketplace(&mut self, at: At<'a>, rel: &str, name: Name, m: &raw::RawMarketplace) -> Option<Marketplace> {
        let root = FieldPath::root();
        let before = self.diags.error_count();
        let url = m.url.trim();
        let scheme_ok = ["https://", "http://", "ssh://", "git://", "file://"].iter().any(|p| url.starts_with(p))
            || url.starts_with('/')
            || url.split_once(':').is_some_and(|(h, _)| h.contains('@') && !h.contains('/'));
        if !scheme_ok || url.starts_with('-') || url.chars().any(char::is_whitespace) {
            self.push(
                at.err(
                    &root.key("url"),
                    "invalid-url",
                    format!("`{}` is not a git repository URL", m.url.escape_default()),
                )
                .help("write an https://, ssh:// or git@host:path URL, or an absolute path"),
            );
        }
        let git_ref = m.git_ref.clone().unwrap_or_else(|| "main".into());
        if git_ref.is_empty()
            || git_ref.starts_with('-')
            || git_ref.contains("..")
            || git_ref.chars().any(|c| c.is_whitespace() || c.is_control() || "~^:?*[\\".contains(c))
        {
            self.push(
                at.err(
                    &root.key("ref"),
                    "invalid-ref",
                    format!("`{}` is not a valid git ref", git_ref.escape_default()),
                )
                .help("a branch, tag or commit, e.g. `main` or `v1.2`"),
            );
        }
        (self.diags.error_count() == before).then(|| Marketplace {
            name,
            url: url.to_string(),
            git_ref,
            format: m.format.unwrap_or_default(),
            origin: at.origin(rel),
        })
    }

    fn check_app_servers(&mut self, desired: &mut Desired) {
        let local = Name::parse(LOCAL).expect("valid name");
        let mut candidates: Vec<&str> = self.declared_servers.iter().map(Name::as_str).collect();
        if !candidates.contains(&LOCAL) {
            candidates.push(LOCAL);
        }
        let mut needs_local = false;
        let mut missing = Vec::new();
        for r in &self.server_refs {
            if self.declared_servers.contains(&r.name) {
                continue;
            }
            if r.name == local {
                needs_local = true;
                continue;
            }
            let help = match crate::diag::did_you_mean(r.name.as_str(), candidates.iter().copied()) {
                Some(c) => format!("did you mean `{c}`?"),
                None => format!("declared servers: {}", candidates.join(", ")),
            };
            missing
                .push(r.at.err(&r.path, "unknown-server", format!("server `{}` is not declared", r.name)).help(help));
        }
        for d in missing {
            self.push(d);
        }
        if needs_local {
            desired.servers.insert(
                local.clone(),
                Server {
                    name: local,
                    host: Host::Local,
                    docker: DockerSettings { socket: DEFAULT_DOCKER_SOCKET.into(), ensure: DockerEnsure::Unmanaged },
                    labels: BTreeMap::new(),
                    origin: Origin::default(),
                    implicit: true,
                },
            );
        }
    }

    fn check_port_conflicts(&mut self, desired: &Desired, app_ats: &BTreeMap<Name, At<'a>>) {
        struct Published<'x> {
            server: &'x Name,
            app: &'x App,
            service: &'x Service,
            index: usize,
            port: &'x PortMapping,
        }
        let mut seen: Vec<Published<'_>> = Vec::new();
        for app in desired.apps.values().filter(|a| a.state != AppState::Absent) {
            for server in &app.servers {
                for service in app.services.values() {
                    for (index, port) in service.ports.iter().enumerate() {
                        let Some(range) = port.host else { continue };
                        let clash = seen.iter().find(|p| {
                            p.server == server
                                && p.port.protocol == port.protocol
                                && p.port.host.is_some_and(|h| h.overlaps(&range))
                                && ips_overlap(p.port.host_ip, port.host_ip)
                        });
                        if let Some(first) = clash {
                            let at = app_ats[&app.name];
                            let path = port_path(app, service).index(index);
                            let fat = app_ats[&first.app.name];
                            let fpath = port_path(first.app, first.service).index(first.index);
                            let proto = if port.protocol == Protocol::Udp { "udp" } else { "tcp" };
                            self.push(
                                at.err(
                                    &path,
                                    "port-conflict",
                                    format!(
                                        "host port {range}/{proto} on server `{server}` is already published by `{}`",
                                        first.app.container_name(&first.service.name)
                                    ),
                                )
                                .related(fat.file, fat.span(&fpath), "first published here")
                                .help("choose another host port, or bind each to a different IP address"),
                            );
                        } else {
                            seen.push(Published { server, app, service, index, port });
                        }
                    }
                }
            }
        }
    }

    fn check_secrets(&mut self, secrets: &SecretCheck) {
        match secrets {
            SecretCheck::Known(names) => {
                let uses = std::mem::take(&mut self.secrets_used);
                for u in uses {
                    if !names.contains(&u.name) {
                        let known: Vec<&str> = names.iter().map(String::as_str).collect();
                        let help = match crate::diag::did_you_mean(&u.name, known.iter().copied()) {
                            Some(s) => format!("did you mean `{s}`? Otherwise add it: `tomo secret set {}`", u.name),
                            None => format!("add it: `tomo secret set {}`", u.name),
                        };
                        self.push(
                            u.at.err(&u.path, "unknown-secret", format!("secret `{}` is not in the vault", u.name))
                                .help(help),
                        );
                    }
                }
            }
            SecretCheck::Unavailable(reason) => {
                if let Some(u) = self.secrets_used.first() {
                    let n = self.secrets_used.len();
                    let d = Diagnostic::warning(
                        "secrets-unchecked",
                        format!("{n} secret reference(s) not checked: {reason}"),
                    )
                    .at(u.at.file, u.at.span(&u.path))
                    .field(u.path.clone())
                    .help("set TOMO_MASTER_PASSWORD and TOMO_SALT to check them against the vault");
                    self.push(d);
                }
            }
        }
    }
}

fn port_path(app: &App, service: &Service) -> FieldPath {
    if app.single {
        FieldPath::root().key("ports")
    } else {
        FieldPath::root().key("services").key(service.name.as_str()).key("ports")
    }
}

fn ips_overlap(a: Option<IpAddr>, b: Option<IpAddr>) -> bool {
    match (a, b) {
        (Some(x), Some(y)) => x == y || x.is_unspecified() || y.is_unspecified(),
        _ => true,
    }
}

fn resource_decl(d: &raw::RawResourceDecl) -> ResourceDecl {
    ResourceDecl { external: d.external.unwrap_or(false), name: d.name.clone() }
}

fn scalar_text(s: &raw::Scalar) -> String {
    match s {
        raw::Scalar::String(s) => s.clone(),
        raw::Scalar::Number(n) => n.to_string(),
        raw::Scalar::Bool(b) => b.to_string(),
    }
}

fn long_port(l: &raw::RawPortLong) -> Result<PortMapping, String> {
    let container = PortRange::parse(&l.target.to_string())?;
    let host = match &l.published {
        None => None,
        Some(raw::PortNumberOrRange::Number(n)) => Some(PortRange::parse(&n.to_string())?),
        Some(raw::PortNumberOrRange::Range(r)) => Some(PortRange::parse(r)?),
    };
    let host_ip = match &l.host_ip {
        None => None,
        Some(ip) => Some(ip.parse::<IpAddr>().map_err(|_| format!("`{}` is not an IP address", ip.escape_default()))?),
    };
    if let Some(h) = host
        && h.len() != container.len()
        && container.len() != 1
    {
        return Err(format!("host range {h} and container port {container} have different lengths"));
    }
    Ok(PortMapping { host_ip, host, container, protocol: l.protocol.unwrap_or(Protocol::Tcp) })
}

fn long_mount(l: &raw::RawMountLong) -> Result<Mount, String> {
    check_container_path(&l.target)?;
    let source = match (l.kind, &l.source) {
        (MountKind::Tmpfs, None) => MountSource::Tmpfs,
        (MountKind::Tmpfs, Some(_)) => return Err("a tmpfs mount has no `source`".into()),
        (MountKind::Volume, None) => MountSource::Anonymous,
        (MountKind::Volume, Some(s)) => MountSource::Volume(Name::parse(s).map_err(|e| format!("volume name: {e}"))?),
        (MountKind::Bind, Some(s)) if s.starts_with('/') && !s.split('/').any(|c| c == "..") => {
            MountSource::Bind(s.clone())
        }
        (MountKind::Bind, Some(s)) => {
            return Err(format!("bind source `{}` must be an absolute path without `..`", s.escape_default()));
        }
        (MountKind::Bind, None) => return Err("a bind mount needs a `source` path".into()),
    };
    Ok(Mount { source, target: l.target.clone(), read_only: l.read_only.unwrap_or(false) })
}

fn valid_fingerprint(fp: &str) -> bool {
    fp.strip_prefix("SHA256:").is_some_and(|b| {
        let b = b.trim_end_matches('=');
        b.len() == 43 && b.chars().all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '/')
    })
}

/// Splits a command string the way a POSIX shell splits words (quotes and
/// backslashes), without expanding anything.
pub fn split_words(s: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(x) => cur.push(x),
                        None => return Err(format!("unclosed `'` in `{}`", s.escape_default())),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(x @ ('"' | '\\' | '$' | '`')) => cur.push(x),
                            Some(x) => {
                                cur.push('\\');
                                cur.push(x);
                            }
                            None => {
                                return Err(format!("unclosed `\"` in `{}`", s.escape_default()));
                            }
                        },
                        Some(x) => cur.push(x),
                        None => return Err(format!("unclosed `\"` in `{}`", s.escape_default())),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(x) = chars.next() {
                    cur.push(x);
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words() {
        assert_eq!(split_words(r#"sh -c "echo 'hi there'" x\ y"#).unwrap(), ["sh", "-c", "echo 'hi there'", "x y"]);
        assert_eq!(split_words("  ").unwrap(), Vec::<String>::new());
        assert!(split_words("echo 'oops").is_err());
    }

    #[test]
    fn fingerprints() {
        assert!(valid_fingerprint("SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s"));
        assert!(!valid_fingerprint("MD5:aa"));
        assert!(!valid_fingerprint("SHA256:short"));
    }
}
