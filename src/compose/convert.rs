//! The file as a whole: parse, interpolate, top-level keys, service names,
//! and the App document put together.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::interpolate::{InterpolateError, interpolate};
use super::report::{Entry, Status};
use super::service::Converted;
use super::{CASAOS_APP_ID, Imported, Options};
use crate::diag::{Diagnostic, Diagnostics, SourceFile, Span};
use crate::manifest::raw::{
    RawApp, RawDocument, RawMultiApp, RawMultiService, RawNetworkDecl, RawResourceDecl, RawSingleApp,
};
use crate::manifest::yaml::{self, Node, Value};
use crate::model::Name;
use crate::model::secret::SecretString;

/// The state of one conversion.
pub(super) struct Cx<'a> {
    pub file: &'a Arc<SourceFile>,
    pub opts: &'a Options<'a>,
    pub diags: Vec<Diagnostic>,
    pub report: Vec<Entry>,
    /// The app's name.
    pub app: String,
    /// Compose service name → tomo service name.
    pub names: BTreeMap<String, String>,
    /// Whether the app has one service (`container_name` is kept).
    pub single: bool,
    /// Top-level `configs` and `secrets`, by name.
    pub configs: BTreeMap<String, Node>,
    pub secret_files: BTreeMap<String, Node>,
    /// Declared top-level networks (compose names → tomo names).
    pub networks: BTreeMap<String, String>,
    /// Network aliases other services ask for (`links: [svc:alias]`), by compose service.
    pub link_aliases: BTreeMap<String, BTreeSet<String>>,
    /// `container_name`s seen, with where.
    pub container_names: BTreeMap<String, Span>,
    pub secrets: Vec<(String, String)>,
}

impl Cx<'_> {
    pub fn error(&mut self, span: Span, code: &'static str, message: impl Into<String>) -> &mut Diagnostic {
        self.diags.push(Diagnostic::error(code, message).at(self.file, span));
        let last = self.diags.len() - 1;
        &mut self.diags[last]
    }

    fn failed(&mut self) -> Option<Diagnostics> {
        if self.diags.is_empty() {
            return None;
        }
        let mut out = Diagnostics::new();
        for d in self.diags.drain(..) {
            out.push(d);
        }
        Some(out)
    }

    pub fn entry(&mut self, service: &str, key: &str, status: Status, note: impl Into<String>) {
        self.report.push(Entry { service: service.into(), key: key.into(), status, note: note.into() });
    }
}

const TOP_KEYS: [&str; 8] = ["version", "name", "services", "networks", "volumes", "configs", "secrets", "include"];

pub(super) fn run(file: &Arc<SourceFile>, opts: &Options<'_>) -> Result<Imported, Diagnostics> {
    let mut root = parse(file)?;
    let app = app_name(file, &root, opts)?;
    let mut cx = Cx {
        file,
        opts,
        diags: Vec::new(),
        report: Vec::new(),
        app: app.clone(),
        names: BTreeMap::new(),
        single: false,
        configs: BTreeMap::new(),
        secret_files: BTreeMap::new(),
        networks: BTreeMap::new(),
        link_aliases: BTreeMap::new(),
        container_names: BTreeMap::new(),
        secrets: Vec::new(),
    };
    interpolate_file(&mut cx, &mut root);
    if let Some(d) = cx.failed() {
        return Err(d);
    }
    let Some(entries) = root.as_map() else {
        cx.error(root.span, "compose-not-a-mapping", "a compose file is a mapping with `services`");
        return Err(cx.failed().unwrap_or_default());
    };
    let mut services = None;
    let mut networks = None;
    let mut volumes = None;
    for (k, v) in entries {
        match k.name.as_str() {
            "version" => cx.entry("", "version", Status::Ignored, "obsolete in the Compose Specification"),
            "name" => name_entry(&mut cx, v),
            "services" => services = Some(v),
            "networks" => networks = Some(v),
            "volumes" => volumes = Some(v),
            "configs" => collect(&mut cx, v, "configs"),
            "secrets" => collect(&mut cx, v, "secrets"),
            "include" => cx.entry("", "include", Status::Dropped, "other compose files are not read; import each"),
            x if x.starts_with("x-") => cx.entry("", x, Status::Ignored, "extension: no effect on containers"),
            other => {
                let help = crate::diag::did_you_mean(other, TOP_KEYS).map(|s| format!("did you mean `{s}`?"));
                cx.error(k.span, "compose-unknown-key", format!("unknown compose key `{other}`")).help = help;
            }
        }
    }
    let Some(services) = services else {
        cx.error(root.span, "compose-no-services", "the compose file has no `services`");
        return Err(cx.failed().unwrap_or_default());
    };
    let nets = networks.map(|n| super::network::top_networks(&mut cx, n)).unwrap_or_default();
    let vols = volumes.map(|v| top_volumes(&mut cx, v)).unwrap_or_default();
    let converted = services_of(&mut cx, services);
    if let Some(d) = cx.failed() {
        return Err(d);
    }
    let document = assemble(&cx, converted, nets, vols);
    let secrets = std::mem::take(&mut cx.secrets).into_iter().map(|(n, v)| (n, SecretString::new(v))).collect();
    Ok(Imported { document, report: cx.report, secrets, name: app })
}

fn parse(file: &Arc<SourceFile>) -> Result<Node, Diagnostics> {
    let mut diags = Diagnostics::new();
    let (mut docs, err) = yaml::parse(&file.text);
    if let Some(e) = err {
        let mut d = Diagnostic::error("compose-yaml", e.message).at(file, e.span);
        d.help = e.help;
        diags.push(d);
        return Err(diags);
    }
    if docs.len() != 1 {
        let d =
            Diagnostic::error("compose-documents", format!("a compose file is one YAML document, not {}", docs.len()));
        diags.push(d.in_file(file));
        return Err(diags);
    }
    let doc = docs.remove(0);
    for p in doc.problems {
        let mut d = Diagnostic::error("compose-yaml", p.message).at(file, p.span);
        d.help = p.help;
        diags.push(d);
    }
    if diags.has_errors() {
        return Err(diags);
    }
    if doc.root.as_map().is_none() {
        diags.push(
            Diagnostic::error("compose-not-a-mapping", "a compose file is a mapping with `services`")
                .at(file, doc.root.span),
        );
        return Err(diags);
    }
    Ok(doc.root)
}

/// `--name`, else the file's `name`, else its folder's name; made a tomo name.
fn app_name(file: &Arc<SourceFile>, root: &Node, opts: &Options<'_>) -> Result<String, Diagnostics> {
    let mut diags = Diagnostics::new();
    if let Some(n) = &opts.name {
        return match Name::parse(n) {
            Ok(_) => Ok(n.clone()),
            Err(e) => {
                diags.push(Diagnostic::error("invalid-name", format!("--name: {e}")).in_file(file));
                Err(diags)
            }
        };
    }
    let given = match root.get("name").and_then(Node::as_str) {
        Some(n) => interpolate(n, opts.vars).map(|i| i.value).unwrap_or_default(),
        None => {
            file.path.parent().and_then(|p| p.file_name()).map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()
        }
    };
    match tomo_name(&given) {
        Some(n) => Ok(n),
        None => {
            let span = root.get("name").map(|n| n.span).unwrap_or(root.span);
            diags.push(
                Diagnostic::error("compose-name", format!("cannot make an app name of `{given}`"))
                    .at(file, span)
                    .help("give one with --name"),
            );
            Err(diags)
        }
    }
}

/// `Ssrf_Proxy` → `ssrf-proxy`: lowercase, other characters to `-`, at most 63.
pub(super) fn tomo_name(s: &str) -> Option<String> {
    let mut out = String::new();
    for c in s.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let out: String = out.trim_matches('-').chars().take(63).collect();
    let out = out.trim_end_matches('-').to_string();
    Name::parse(&out).ok().map(|_| out)
}

fn name_entry(cx: &mut Cx<'_>, v: &Node) {
    let given = v.as_str().unwrap_or_default().to_string();
    if cx.opts.name.is_some() {
        let note = format!("the app is named `{}` (--name)", cx.app);
        cx.entry("", "name", Status::Changed, note);
    } else if given == cx.app {
        cx.entry("", "name", Status::Mapped, "the app's name");
    } else {
        let note = format!("`{given}` → `{}` (tomo names are {})", cx.app, crate::model::values::NAME_RULE);
        cx.entry("", "name", Status::Changed, note);
    }
}

/// Interpolates every string value (not keys; not `x-*` extensions, which
/// are left out anyway), as compose does; `AppID` defaults to the app name.
fn interpolate_file(cx: &mut Cx<'_>, root: &mut Node) {
    let app = cx.app.clone();
    let vars = cx.opts.vars;
    let lookup = |n: &str| vars(n).or_else(|| (n == CASAOS_APP_ID).then(|| app.clone()));
    let mut unset: BTreeMap<String, usize> = BTreeMap::new();
    let mut app_id_used = false;
    walk(cx, root, &lookup, &mut unset, &mut app_id_used);
    if app_id_used && vars(CASAOS_APP_ID).is_none() {
        let note =
            format!("CasaOS variable `$AppID` unset: the app's name `{app}` is used (set it with --set AppID=…)");
        cx.entry("", "${AppID}", Status::Changed, note);
    }
    for (name, line) in unset {
        let note = format!("unset (first at line {line}): empty, as compose does; set it with --set {name}=…");
        cx.entry("", &format!("${{{name}}}"), Status::Mapped, note);
    }
}

fn walk(
    cx: &mut Cx<'_>,
    node: &mut Node,
    lookup: &dyn Fn(&str) -> Option<String>,
    unset: &mut BTreeMap<String, usize>,
    app_id: &mut bool,
) {
    match &mut node.value {
        Value::String(s) if s.contains('$') => match interpolate(s, lookup) {
            Ok(r) => {
                *app_id |= s.contains(CASAOS_APP_ID);
                for n in r.unset {
                    unset.entry(n).or_insert(node.span.line);
                }
                *s = r.value;
            }
            Err(e) => {
                let at = match &e {
                    InterpolateError::Required { at, .. } | InterpolateError::Syntax { at, .. } => *at,
                };
                let mut span = node.span;
                span.line += s.get(..at).map(|t| t.matches('\n').count()).unwrap_or(0);
                cx.error(span, "compose-interpolation", e.to_string());
            }
        },
        Value::Seq(items) => items.iter_mut().for_each(|n| walk(cx, n, lookup, unset, app_id)),
        Value::Map(entries) => {
            for (k, v) in entries.iter_mut().filter(|(k, _)| !k.name.starts_with("x-")) {
                let _ = k;
                walk(cx, v, lookup, unset, app_id);
            }
        }
        _ => {}
    }
}

fn collect(cx: &mut Cx<'_>, v: &Node, what: &str) {
    let Some(m) = v.as_map() else {
        cx.error(v.span, "compose-type", format!("`{what}` is a mapping of names"));
        return;
    };
    for (k, n) in m {
        if what == "configs" {
            cx.configs.insert(k.name.clone(), n.clone());
        } else {
            cx.secret_files.insert(k.name.clone(), n.clone());
        }
    }
    let note = format!("{} item(s), written as `files` of the services that use them", m.len());
    cx.entry("", what, Status::Mapped, note);
}

fn top_volumes(cx: &mut Cx<'_>, v: &Node) -> BTreeMap<String, RawResourceDecl> {
    let mut out = BTreeMap::new();
    let Some(m) = v.as_map() else {
        cx.error(v.span, "compose-type", "`volumes` is a mapping of volume names");
        return out;
    };
    for (k, n) in m {
        let mut decl = RawResourceDecl::default();
        for (key, val) in n.as_map().unwrap_or_default() {
            let path = format!("volumes.{}.{}", k.name, key.name);
            match key.name.as_str() {
                "external" => {
                    decl.external = super::values::boolean(cx, val);
                    cx.entry("", &path, Status::Mapped, "");
                }
                "name" => {
                    decl.name = super::values::string(cx, val);
                    cx.entry("", &path, Status::Mapped, "");
                }
                "driver" if val.as_str() == Some("local") => {
                    cx.entry("", &path, Status::Mapped, "local is the default")
                }
                x if x.starts_with("x-") => cx.entry("", &path, Status::Ignored, "extension"),
                _ => cx.entry("", &path, Status::Dropped, "tomo creates volumes with the local driver and no options"),
            }
        }
        if decl != RawResourceDecl::default() {
            out.insert(k.name.clone(), decl);
        }
    }
    if out.is_empty() {
        cx.entry("", "volumes", Status::Mapped, "named volumes are created on first use");
    }
    out
}

/// Converts every service, in file order; names first, so references resolve.
fn services_of(cx: &mut Cx<'_>, services: &Node) -> Vec<(String, Converted)> {
    let Some(m) = services.as_map() else {
        cx.error(services.span, "compose-type", "`services` is a mapping of service names");
        return Vec::new();
    };
    cx.single = m.len() == 1;
    let mut taken = BTreeSet::new();
    for (k, _) in m {
        let Some(mut n) = tomo_name(&k.name) else {
            cx.error(k.span, "compose-service-name", format!("cannot make a service name of `{}`", k.name));
            continue;
        };
        while !taken.insert(n.clone()) {
            n.push('x');
        }
        cx.names.insert(k.name.clone(), n);
    }
    super::service::links(cx, m);
    let mut out = Vec::new();
    for (k, n) in m {
        if let Some(c) = super::service::convert(cx, &k.name, k.span, n) {
            out.push((k.name.clone(), c));
        }
    }
    super::service::share_ipc(cx, &mut out);
    out
}

fn assemble(
    cx: &Cx<'_>,
    services: Vec<(String, Converted)>,
    networks: BTreeMap<String, RawNetworkDecl>,
    volumes: BTreeMap<String, RawResourceDecl>,
) -> RawDocument {
    let server = cx.opts.server.clone();
    let networks = (!networks.is_empty()).then_some(networks);
    let volumes = (!volumes.is_empty()).then_some(volumes);
    if let [(_, one)] = services.as_slice()
        && networks.is_none()
        && volumes.is_none()
    {
        let state = one.absent.then_some(crate::model::AppState::Absent);
        return RawDocument::App(RawApp::Single(RawSingleApp {
            name: cx.app.clone(),
            server,
            servers: None,
            state,
            source: None,
            backup: None,
            rollout: None,
            service: one.service.clone(),
        }));
    }
    let services = services
        .into_iter()
        .map(|(compose, c)| {
            let state = c.absent.then_some(crate::model::ServiceState::Absent);
            (cx.names[&compose].clone(), RawMultiService { state, rollout: None, service: c.service })
        })
        .collect();
    RawDocument::App(RawApp::Multi(RawMultiApp {
        name: cx.app.clone(),
        server,
        servers: None,
        state: None,
        source: None,
        rollout: None,
        services,
        volumes,
        networks,
        backup: None,
    }))
}
