//! Raw documents to the validated `model`: parses field values (ports, mounts,
//! durations, images…), checks names and references within and across
//! documents (servers, dependencies and their cycles, duplicate names, port
//! conflicts, secret references) and reports every problem at its field.

mod app;
mod appbackup;
mod checks;
mod envfile;
mod files;
mod metrics;
mod network;
mod rollout;
mod runopts;
mod runtime;
mod server;
mod service;
mod settings;
mod words;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::raw::{self, RawDocument};
use super::sources::{EnvFiles, Inside};
use super::yaml::Node;
use crate::diag::{Diagnostic, Diagnostics, FieldPath, SourceFile, Span};
use crate::model::values::{DURATION_RULE, NAME_RULE};
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
    /// The file's path relative to the manifest folder.
    rel: &'a str,
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

/// A `rollout.verify` of an app or service, checked against
/// `health_timeout` once the Settings are known.
struct VerifyUse<'a> {
    at: At<'a>,
    path: FieldPath,
    verify: Duration,
}

struct Resolver<'a> {
    diags: &'a mut Diagnostics,
    verify_uses: Vec<VerifyUse<'a>>,
    secrets_used: Vec<SecretUse<'a>>,
    server_refs: Vec<ServerRef<'a>>,
    /// Names of every Server document, valid or not (so an app is not told a
    /// server with a problem of its own is undeclared).
    declared_servers: BTreeSet<Name>,
    inline_check: InlineCheck,
    /// The env files the documents name, read by `sources`.
    env_files: &'a EnvFiles,
    /// Reads a file beside a manifest (`files[].source`): the manifest's
    /// relative path, the source as written.
    beside: &'a dyn Fn(&str, &str) -> Result<String, Inside>,
}

pub fn resolve<'a>(
    docs: &'a [Doc],
    secrets: &SecretCheck,
    inline_check: InlineCheck,
    env_files: &'a EnvFiles,
    beside: &'a dyn Fn(&str, &str) -> Result<String, Inside>,
    diags: &'a mut Diagnostics,
) -> Desired {
    let mut r = Resolver {
        diags,
        verify_uses: Vec::new(),
        secrets_used: Vec::new(),
        server_refs: Vec::new(),
        declared_servers: BTreeSet::new(),
        inline_check,
        env_files,
        beside,
    };
    let mut desired = Desired::default();
    let mut first_seen: BTreeMap<(&str, String), (Arc<SourceFile>, Span)> = BTreeMap::new();
    let mut settings_seen: Option<(Arc<SourceFile>, Span)> = None;
    let mut settings_at: Option<At<'_>> = None;
    let mut app_ats: BTreeMap<Name, At<'_>> = BTreeMap::new();

    for doc in docs {
        let at = At { file: &doc.file, node: &doc.node, rel: &doc.rel };
        let name_path = FieldPath::root().key("name");
        let (kind, name) = kind_and_name(&doc.raw);
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
                    settings_at = Some(at);
                }
            }
            _ => {}
        }
    }

    r.check_app_servers(&mut desired);
    let declared: Vec<String> = first_seen.keys().filter(|(k, _)| *k == "App").map(|(_, n)| n.clone()).collect();
    r.check_backup_apps(&desired.settings, settings_at, &declared);
    r.check_port_conflicts(&desired, &app_ats);
    r.check_container_names(&desired, &app_ats);
    r.check_secrets(secrets);
    r.check_verify_overrides(&desired.settings);
    desired
}

/// A document's kind and its `name` (Settings has none).
fn kind_and_name(raw: &RawDocument) -> (&'static str, Option<&str>) {
    match raw {
        RawDocument::Server(s) => ("Server", Some(s.name.as_str())),
        RawDocument::App(raw::RawApp::Multi(a)) => ("App", Some(a.name.as_str())),
        RawDocument::App(raw::RawApp::Single(a)) => ("App", Some(a.name.as_str())),
        RawDocument::Marketplace(m) => ("Marketplace", Some(m.name.as_str())),
        RawDocument::Settings(_) => ("Settings", None),
    }
}

/// The name of the server that is this machine.
pub const LOCAL: &str = "local";

impl<'a> Resolver<'a> {
    fn push(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }

    fn name(&mut self, at: At<'a>, path: &FieldPath, s: &str) -> Option<Name> {
        match Name::parse(s) {
            Ok(n) => Some(n),
            Err(e) => {
                let mut help = format!("names are {NAME_RULE}");
                let dashed = s.replace('_', "-");
                if dashed != s && Name::parse(&dashed).is_ok() {
                    help.push_str(&format!(": write `{dashed}` (compose allows `_`, tomo's names are DNS names)"));
                }
                self.push(at.err(path, "invalid-name", format!("invalid name: {e}")).help(help));
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
}

pub use envfile::wanted_env_files;
pub use words::split_words;
