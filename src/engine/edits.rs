//! Typed edit requests: every change a front end makes to the manifests
//! (deploy or edit an app, add, change or remove a server, system settings)
//! and every decision on a proposal, as a value the engine turns into the
//! edit of one manifest document (`changes::edit_document`) and submits.
//! Front ends build these requests from their arguments; none of them
//! builds manifest JSON.
//!
//! **Invariant:** a request touches only the fields it names; the edit keeps
//! comments and the bytes of every other field (`manifest::edit`).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::Proposal;
use super::changes::DocKind;
use super::{Engine, Submitted};
use crate::apply::{ApplyReport, ApplySink};
use crate::auth::Identity;
use crate::error::{Error, Result, Usage};
use crate::manifest::raw::{RawAuth, SecretRef};
use crate::manifest::resolve::LOCAL;
use crate::model::{AppState, Name};
use crate::plan::Plan;

/// A usage error about one field of a request (the front end's argument of that name).
fn bad(field: &str, msg: impl std::fmt::Display) -> Error {
    Usage::NotApplicable { what: format!("argument `{field}`"), why: msg.to_string() }.into()
}

fn json<T: Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or_default()
}

/// An environment value: a plain string, or a secret from the vault.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum EnvInput {
    Plain(String),
    /// `{"secret": "NAME"}`: the value of vault secret NAME (`tomo secret set NAME`).
    Secret {
        secret: String,
    },
}

/// Fields of one service a request sets; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServiceEdit {
    /// Image reference, e.g. `nginx:1.27`.
    pub image: Option<String>,
    /// Published ports, `[IP:]HOST:CONTAINER[/udp]`.
    pub ports: Option<Vec<String>>,
    /// Environment variables: `AppEdit` sets these and keeps the others;
    /// `DeployApp` declares exactly these.
    pub env: Option<BTreeMap<String, EnvInput>>,
    /// Mounts: `VOLUME:/path`, `/host/path:/path[:ro]`.
    pub volumes: Option<Vec<String>>,
    pub command: Option<Vec<String>>,
    /// `no`, `always`, `unless-stopped` or `on-failure[:N]`.
    pub restart: Option<String>,
    pub labels: Option<BTreeMap<String, String>>,
    /// Any other service field, as the App manifest writes it; `None` removes it.
    pub extra: BTreeMap<String, Option<Value>>,
}

impl ServiceEdit {
    /// Fields `extra` may not set: they say what the document is.
    fn check(&self) -> Result<()> {
        match self.extra.keys().find(|k| matches!(k.as_str(), "kind" | "name" | "services")) {
            Some(k) => Err(bad("extra", format!("`{k}` cannot be set through `extra`"))),
            None => Ok(()),
        }
    }

    /// Writes the fields into a service's mapping; `merge_env` keeps the
    /// variables not named.
    fn write(self, obj: &mut Map<String, Value>, merge_env: bool) -> Result<()> {
        self.check()?;
        if let Some(v) = self.image {
            obj.insert("image".into(), Value::String(v));
        }
        if let Some(v) = self.ports {
            obj.insert("ports".into(), json(&v));
        }
        if let Some(env) = self.env {
            let mut current = match (merge_env, obj.remove("env")) {
                (true, Some(Value::Object(m))) => m,
                _ => Map::new(),
            };
            for (k, v) in env {
                current.insert(k, json(&v));
            }
            obj.insert("env".into(), Value::Object(current));
        }
        if let Some(v) = self.volumes {
            obj.insert("volumes".into(), json(&v));
        }
        if let Some(v) = self.command {
            obj.insert("command".into(), json(&v));
        }
        if let Some(v) = self.restart {
            obj.insert("restart".into(), Value::String(v));
        }
        if let Some(v) = self.labels {
            obj.insert("labels".into(), json(&v));
        }
        for (k, v) in self.extra {
            match v {
                Some(v) => obj.insert(k, v),
                None => obj.remove(&k),
            };
        }
        Ok(())
    }
}

/// What a deployed app runs.
#[derive(Debug, Clone, PartialEq)]
pub enum AppServices {
    /// One container, its fields at the top of the manifest.
    One(ServiceEdit),
    /// Several: each service's fields by name, as the App manifest's `services`.
    Several(Map<String, Value>),
}

/// Creates an App manifest (in `apps/<name>.yaml`) or replaces one; its
/// `state` is kept.
#[derive(Debug, Clone, PartialEq)]
pub struct DeployApp {
    pub name: String,
    /// The servers it runs on; none: the `local` server.
    pub servers: Vec<String>,
    pub services: AppServices,
}

impl DeployApp {
    /// A deploy from the fields of one service and, for an app of several,
    /// its `services`: these are given one way or the other, not both.
    pub fn new(
        name: String,
        servers: Vec<String>,
        one: ServiceEdit,
        several: Option<Map<String, Value>>,
    ) -> Result<Self> {
        let services = match several {
            Some(services) => {
                if one.image.is_some() || one.ports.is_some() || one.env.is_some() {
                    return Err(bad(
                        "services",
                        "give service fields inside `services`, not at the top, for an app of several services",
                    ));
                }
                AppServices::Several(services)
            }
            None if one.image.is_none() => {
                return Err(bad("image", "required (or give `services` for an app of several containers)"));
            }
            None => AppServices::One(one),
        };
        Ok(DeployApp { name, servers, services })
    }

    fn check(&self) -> Result<()> {
        match &self.services {
            AppServices::One(f) if f.image.is_none() => {
                Err(bad("image", "required (or give `services` for an app of several containers)"))
            }
            AppServices::One(f) => f.check(),
            AppServices::Several(_) => Ok(()),
        }
    }

    /// The new document, given the current one (whose `state` it keeps
    /// unless it sets one).
    fn document(self, old: Option<Value>) -> Result<Option<Value>> {
        let mut doc = Map::new();
        doc.insert("kind".into(), "App".into());
        doc.insert("name".into(), Value::String(self.name));
        match self.servers.as_slice() {
            [] => doc.insert("server".into(), LOCAL.into()),
            [one] => doc.insert("server".into(), Value::String(one.clone())),
            many => doc.insert("servers".into(), json(&many)),
        };
        match self.services {
            AppServices::Several(services) => {
                doc.insert("services".into(), Value::Object(services));
            }
            AppServices::One(fields) => fields.write(&mut doc, false)?,
        }
        if let Some(state) = old.as_ref().and_then(|o| o.get("state")).filter(|_| !doc.contains_key("state")) {
            doc.insert("state".into(), state.clone());
        }
        Ok(Some(Value::Object(doc)))
    }
}

/// Changes fields of an existing app.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AppEdit {
    pub name: String,
    /// Which service the fields are for, in an app of several services
    /// (ignored for a one-service app).
    pub service: Option<String>,
    /// Move the app to these servers.
    pub servers: Option<Vec<String>>,
    /// Declare the app running, stopped or absent.
    pub state: Option<AppState>,
    pub fields: ServiceEdit,
    /// Environment variables to remove.
    pub unset_env: Vec<String>,
}

impl AppEdit {
    /// Declares the app in `state`, nothing else.
    pub fn state(name: String, state: AppState) -> AppEdit {
        AppEdit { name, state: Some(state), ..AppEdit::default() }
    }

    fn title(&self) -> String {
        let only_state = AppEdit { name: self.name.clone(), state: self.state, ..AppEdit::default() };
        let verb = match self.state {
            Some(state) if *self == only_state => match state {
                AppState::Running => "start",
                AppState::Stopped => "stop",
                AppState::Absent => "remove",
            },
            _ => "update",
        };
        format!("{verb} app {}", self.name)
    }

    /// The service the fields go to (`None`: the top of a one-service app).
    fn target(&self, app: &crate::model::App) -> Result<Option<String>> {
        let known = || app.services.keys().map(Name::as_str).collect::<Vec<_>>().join(", ");
        match (&self.service, app.single) {
            (Some(s), false) if !app.services.contains_key(s.as_str()) => {
                Err(bad("service", format!("app `{}` has no service `{s}`; its services: {}", self.name, known())))
            }
            (None, false) => {
                let touches_service = self.fields != ServiceEdit::default() || !self.unset_env.is_empty();
                if touches_service {
                    Err(bad("service", format!("app `{}` has several services; name one of: {}", self.name, known())))
                } else {
                    Ok(None)
                }
            }
            (s, _) => Ok(s.clone().filter(|_| !app.single)),
        }
    }

    /// The edited document; `service` is the one `target` chose.
    fn document(self, service: Option<&str>, doc: Option<Value>) -> Result<Option<Value>> {
        let mut doc = doc.ok_or_else(|| {
            let hint = crate::error::Known::Hint("`app_list` shows the apps");
            Error::from(crate::error::NotFound::new(crate::error::Noun::App, self.name.clone(), hint))
        })?;
        let m = doc.as_object_mut().ok_or_else(|| Error::Edit {
            what: "the app".into(),
            problem: "the App document is not a mapping".into(),
        })?;
        if let Some(servers) = self.servers {
            m.remove("server");
            m.remove("servers");
            m.insert("servers".into(), json(&servers));
        }
        if let Some(state) = self.state {
            m.insert("state".into(), json(&state));
        }
        if self.fields == ServiceEdit::default() && self.unset_env.is_empty() {
            return Ok(Some(doc));
        }
        let target = match service {
            Some(s) => doc.pointer_mut(&format!("/services/{}", s.replace('~', "~0").replace('/', "~1"))),
            None => Some(&mut doc),
        };
        let obj = target
            .and_then(Value::as_object_mut)
            .ok_or_else(|| Error::Edit { what: "the app".into(), problem: "the service is not a mapping".into() })?;
        self.fields.write(obj, true)?;
        if !self.unset_env.is_empty()
            && let Some(Value::Object(env)) = obj.get_mut("env")
        {
            for k in &self.unset_env {
                env.remove(k);
            }
        }
        Ok(Some(doc))
    }
}

/// How tomo logs in to a server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerAuth {
    /// A private key file on this machine.
    KeyFile { path: String },
    /// The running ssh-agent.
    Agent,
    /// A password from the vault (the secret's name).
    Password { secret: String },
    /// A private key from the vault (the secret's name).
    Key { secret: String },
}

impl From<ServerAuth> for RawAuth {
    fn from(a: ServerAuth) -> RawAuth {
        match a {
            ServerAuth::KeyFile { path } => RawAuth::KeyFile(path),
            ServerAuth::Agent => RawAuth::Agent(true),
            ServerAuth::Password { secret } => RawAuth::Password(SecretRef { secret }),
            ServerAuth::Key { secret } => RawAuth::Key(SecretRef { secret }),
        }
    }
}

/// Fields of a Server manifest a request sets; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerFields {
    /// Address or host name (`local` for this machine).
    pub host: Option<String>,
    pub port: Option<u16>,
    pub user: Option<String>,
    pub auth: Option<ServerAuth>,
    /// Pinned host key fingerprint, `SHA256:…`.
    pub host_key: Option<String>,
    /// Run Docker through `sudo -n`.
    pub sudo: Option<bool>,
    /// The Docker socket path on the server (other `docker` fields are kept).
    pub docker_socket: Option<String>,
    /// What tomo ensures of Docker Engine there (other `docker` fields are kept).
    pub docker: Option<DockerEdit>,
}

/// Fields of a Server's `docker` block to set; `None` leaves one as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DockerEdit {
    pub ensure: Option<crate::model::DockerEnsure>,
    /// A version constraint (`27.*`); an empty text removes it.
    pub version: Option<String>,
    pub source: Option<crate::model::DockerSource>,
}

impl DockerEdit {
    fn write(self, d: &mut Map<String, Value>) {
        if let Some(e) = self.ensure {
            d.insert("ensure".into(), json(&e));
        }
        match self.version {
            Some(v) if v.is_empty() => {
                d.remove("version");
            }
            Some(v) => {
                d.insert("version".into(), v.into());
            }
            None => {}
        }
        if let Some(s) = self.source {
            d.insert("source".into(), json(&s));
        }
    }
}

impl ServerFields {
    fn write(self, doc: &mut Map<String, Value>) {
        if let Some(v) = self.host {
            doc.insert("host".into(), v.into());
        }
        if let Some(v) = self.port {
            doc.insert("port".into(), v.into());
        }
        if let Some(v) = self.user {
            doc.insert("user".into(), v.into());
        }
        if let Some(a) = self.auth {
            doc.insert("auth".into(), json(&RawAuth::from(a)));
        }
        if let Some(v) = self.host_key {
            doc.insert("host_key".into(), v.into());
        }
        if let Some(v) = self.sudo {
            doc.insert("sudo".into(), v.into());
        }
        if self.docker_socket.is_none() && self.docker.is_none() {
            return;
        }
        let docker = doc.entry("docker").or_insert_with(|| Value::Object(Map::new()));
        if !docker.is_object() {
            *docker = Value::Object(Map::new());
        }
        if let Some(d) = docker.as_object_mut() {
            if let Some(v) = self.docker_socket {
                d.insert("socket".into(), v.into());
            }
            if let Some(e) = self.docker {
                e.write(d);
            }
        }
    }
}

/// A change to the declared servers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerEdit {
    /// A new Server manifest in `servers/<name>.yaml` (`host` is required).
    Add { name: String, fields: ServerFields },
    /// Changes fields of a declared server.
    Update { name: String, fields: ServerFields },
    /// Removes a Server manifest; refused while apps run on the server.
    Remove { name: String },
}

impl ServerEdit {
    fn name(&self) -> &str {
        match self {
            ServerEdit::Add { name, .. } | ServerEdit::Update { name, .. } | ServerEdit::Remove { name } => name,
        }
    }

    fn title(&self) -> String {
        let verb = match self {
            ServerEdit::Add { .. } => "add",
            ServerEdit::Update { .. } => "update",
            ServerEdit::Remove { .. } => "remove",
        };
        format!("{verb} server {}", self.name())
    }

    fn document(self, doc: Option<Value>) -> Result<Option<Value>> {
        match self {
            ServerEdit::Add { name, fields } => {
                let mut doc = Map::new();
                doc.insert("kind".into(), "Server".into());
                doc.insert("name".into(), Value::String(name));
                fields.write(&mut doc);
                Ok(Some(Value::Object(doc)))
            }
            ServerEdit::Update { fields, .. } => {
                let mut doc = doc.unwrap_or_default();
                if let Some(m) = doc.as_object_mut() {
                    fields.write(m);
                }
                Ok(Some(doc))
            }
            ServerEdit::Remove { .. } => Ok(None),
        }
    }
}

/// Fields of the Settings manifest to set, as that manifest writes them
/// (`None` removes one), e.g. `parallelism` → `8`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SettingsEdit {
    pub fields: BTreeMap<String, Option<Value>>,
}

impl SettingsEdit {
    fn document(self, doc: Option<Value>) -> Result<Option<Value>> {
        if self.fields.contains_key("kind") {
            return Err(bad("system.kind", "cannot be changed"));
        }
        let mut doc = doc.unwrap_or_else(|| serde_json::json!({"kind": "Settings"}));
        if let Some(m) = doc.as_object_mut() {
            for (k, v) in self.fields {
                match v {
                    Some(v) => m.insert(k, v),
                    None => m.remove(&k),
                };
            }
        }
        Ok(Some(doc))
    }
}

/// An admin's decision on a pending proposal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProposalDecision {
    /// Write its edits and apply exactly its plan (refused when stale).
    Approve { id: String },
    /// Write nothing; the reason is recorded.
    Reject { id: String, reason: Option<String> },
}

/// What a decision did.
#[derive(Debug)]
#[allow(clippy::large_enum_variant, reason = "one short-lived value per decision")]
pub enum Decided {
    Approved {
        proposal: Proposal,
        plan: Plan,
        report: ApplyReport,
    },
    /// A restore proposal approved and carried out.
    Restored(Box<super::restore_proposal::RestoreApproved>),
    Rejected {
        proposal: Proposal,
    },
}

impl Engine {
    /// Creates or replaces an app's manifest; returns the plan, or a proposal.
    pub async fn deploy_app(&self, req: DeployApp, who: &Identity) -> Result<Submitted> {
        req.check()?;
        let name = req.name.clone();
        let exists = self.document(DocKind::App, &name)?.is_some();
        let title = format!("{} app {name}", if exists { "replace" } else { "deploy" });
        let change = self.edit_document(DocKind::App, &name, title, move |old| req.document(old))?;
        self.submit(change, who).await
    }

    /// Changes fields of an existing app; returns the plan, or a proposal.
    pub async fn edit_app(&self, req: AppEdit, who: &Identity) -> Result<Submitted> {
        let desired = self.desired()?;
        let app = self.app(&desired, &req.name)?;
        let service = req.target(&app)?;
        req.fields.check()?;
        let name = req.name.clone();
        let change =
            self.edit_document(DocKind::App, &name, req.title(), move |doc| req.document(service.as_deref(), doc))?;
        self.submit(change, who).await
    }

    /// Proposes an app's release back (always a proposal an admin
    /// approves): release `to`, else the newest successful one before the
    /// last, its images pinned by digest (`releases.rs`); for an app
    /// applied before releases were recorded, its previous document.
    pub async fn rollback_app(&self, name: &str, to: Option<i64>, who: &Identity) -> Result<Submitted> {
        let change = self.rollback_change(name, to).await?;
        self.submit_as(change, who, Some("a rollback is always reviewed by an admin".into())).await
    }

    /// Writes an app's release back (`tomo rollback`), or proposes it when
    /// the rules ask for review, as any other edit.
    pub async fn rollback_release(&self, name: &str, to: Option<i64>, who: &Identity) -> Result<Submitted> {
        let change = self.rollback_change(name, to).await?;
        self.submit(change, who).await
    }

    async fn rollback_change(&self, name: &str, to: Option<i64>) -> Result<super::Change> {
        let desired = self.desired()?;
        self.app(&desired, name)?;
        if let Some(change) = self.release_rollback(&desired, name, to).await? {
            return Ok(change);
        }
        let current = self.document(DocKind::App, name)?.map(|d| d.2);
        let revisions = self.store()?.app_revisions(name, 50)?;
        let previous = revisions
            .into_iter()
            .skip_while(|(_, _, doc)| Some(doc) == current.as_ref())
            .find(|(_, _, doc)| Some(doc) != current.as_ref());
        let Some((run, at, doc)) = previous else {
            return Err(Usage::NotApplicable {
                what: format!("app `{name}`"),
                why: "there is no earlier applied revision to roll back to (see `app_history`)".into(),
            }
            .into());
        };
        let run = run.map_or(String::new(), |r| format!(" (run {r})"));
        let title = format!("roll back app {name} to {at}{run}");
        self.edit_document(DocKind::App, name, title, move |_| Ok(Some(doc)))
    }

    /// Adds, changes or removes a Server manifest; returns the plan, or a proposal.
    pub async fn edit_server(&self, req: ServerEdit, who: &Identity) -> Result<Submitted> {
        let name = req.name().to_string();
        let declared = self.document(DocKind::Server, &name)?.is_some();
        match &req {
            ServerEdit::Add { fields, .. } => {
                if fields.host.is_none() {
                    return Err(bad("host", "required: the server's address, or `local`"));
                }
                if declared {
                    return Err(bad("name", format!("server `{name}` exists already; use `server_update`")));
                }
            }
            ServerEdit::Update { .. } if !declared => {
                return Err(bad("name", format!("there is no Server manifest `{name}`; use `server_add`")));
            }
            ServerEdit::Update { .. } => {}
            ServerEdit::Remove { .. } => {
                let desired = self.desired()?;
                let apps: Vec<&str> = desired
                    .apps
                    .values()
                    .filter(|x| x.servers.iter().any(|s| s.as_str() == name))
                    .map(|x| x.name.as_str())
                    .collect();
                if !apps.is_empty() {
                    return Err(bad(
                        "name",
                        format!(
                            "apps still run on `{name}`: {}; move them (`app_update` servers) or remove them first",
                            apps.join(", ")
                        ),
                    ));
                }
                if !declared {
                    return Err(bad("name", format!("there is no Server manifest `{name}`")));
                }
            }
        }
        let change = self.edit_document(DocKind::Server, &name, req.title(), move |doc| req.document(doc))?;
        self.submit(change, who).await
    }

    /// Changes the Settings manifest (made when there is none); returns the
    /// plan, or a proposal.
    pub async fn edit_settings(&self, req: SettingsEdit, who: &Identity) -> Result<Submitted> {
        if req.fields.contains_key("kind") {
            return Err(bad("system.kind", "cannot be changed"));
        }
        let change =
            self.edit_document(DocKind::Settings, "settings", "update settings".into(), move |doc| req.document(doc))?;
        self.submit(change, who).await
    }

    /// Approves or rejects a pending proposal (`approve`, `reject`).
    pub async fn decide(&self, decision: ProposalDecision, who: &Identity, sink: &dyn ApplySink) -> Result<Decided> {
        match decision {
            ProposalDecision::Approve { id } => {
                let (proposal, _, plan) = self.proposal(&id)?;
                if let Some(restore) = proposal.restore {
                    return Ok(Decided::Restored(Box::new(self.approve_restore(&id, restore, who).await?)));
                }
                let (proposal, report) = self.approve(&id, who, sink).await?;
                Ok(Decided::Approved { proposal, plan, report })
            }
            ProposalDecision::Reject { id, reason } => {
                Ok(Decided::Rejected { proposal: self.reject(&id, who, reason.as_deref())? })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::changes::edit_in_text;
    use super::*;

    const APP: &str = "# the web app\nkind: App # kind\nname: web\nserver: local\nimage: nginx:1 # pinned\nenv:\n  A: \"1\" # first\n  B: b\n\n# ports below\nports:\n  - \"8080:80\"\n---\n# another\nkind: App\nname: other\nimage: x # keep\n";

    fn edit(text: &str, line: usize, f: impl FnOnce(Option<Value>) -> Result<Option<Value>>) -> String {
        edit_in_text(text, line, f).unwrap().unwrap()
    }

    #[test]
    fn an_app_edit_sets_env_and_keeps_comments_and_untouched_fields() {
        let mut env = BTreeMap::new();
        env.insert("B".to_string(), EnvInput::Secret { secret: "db".into() });
        env.insert("C".to_string(), EnvInput::Plain("3".into()));
        let req = AppEdit {
            name: "web".into(),
            fields: ServiceEdit { env: Some(env), ..ServiceEdit::default() },
            unset_env: vec!["A".into()],
            ..AppEdit::default()
        };
        assert_eq!(req.title(), "update app web");
        let out = edit(APP, 2, |doc| req.document(None, doc));
        assert_eq!(
            out,
            "# the web app\nkind: App # kind\nname: web\nserver: local\nimage: nginx:1 # pinned\nenv:\n  B:\n    secret: db\n  C: \"3\"\n\n# ports below\nports:\n  - \"8080:80\"\n---\n# another\nkind: App\nname: other\nimage: x # keep\n"
        );
    }

    #[test]
    fn a_state_edit_adds_one_field_and_names_its_verb() {
        let req = AppEdit::state("web".into(), AppState::Stopped);
        assert_eq!(req.title(), "stop app web");
        let out = edit(APP, 2, |doc| req.document(None, doc));
        assert!(out.starts_with("# the web app\nkind: App # kind\nname: web\nserver: local\nimage: nginx:1 # pinned\nenv:\n  A: \"1\" # first\n"), "{out}");
        assert!(out.contains("  - \"8080:80\"\nstate: stopped\n---\n# another\n"), "{out}");
        assert_eq!(AppEdit::state("web".into(), AppState::Absent).title(), "remove app web");
    }

    #[test]
    fn an_app_edit_of_one_service_changes_only_that_service() {
        let text = "kind: App\nname: shop\nserver: local\nservices:\n  web:\n    image: nginx:1 # web\n  db:\n    image: postgres:16 # db\n";
        let req = AppEdit {
            name: "shop".into(),
            service: Some("db".into()),
            servers: Some(vec!["a".into(), "b".into()]),
            fields: ServiceEdit { image: Some("postgres:17".into()), ..ServiceEdit::default() },
            ..AppEdit::default()
        };
        let out = edit(text, 1, |doc| req.document(Some("db"), doc));
        let doc = crate::manifest::edit::document_json(&out, 1).unwrap();
        assert_eq!(doc["services"]["db"]["image"], "postgres:17");
        assert_eq!(doc["services"]["web"]["image"], "nginx:1");
        assert_eq!(doc["servers"], serde_json::json!(["a", "b"]));
        assert!(doc.get("server").is_none());
        assert!(out.starts_with("kind: App\nname: shop\n"), "{out}");
    }

    fn app(text: &str, name: &str) -> crate::model::App {
        use crate::manifest::{LoadOptions, SecretCheck, Sources};
        let sources = Sources::from_texts([("apps/a.yaml", text)]);
        let secrets = SecretCheck::Known(Default::default());
        let loaded = crate::manifest::load(
            &sources,
            &LoadOptions { secrets: &secrets, inline_check: crate::vault::check_inline_format },
        );
        let desired = loaded.desired.unwrap_or_else(|| panic!("{:?}", loaded.diagnostics));
        desired.apps.values().find(|a| a.name.as_str() == name).unwrap().clone()
    }

    #[test]
    fn an_edit_of_an_app_of_several_services_names_one_of_them() {
        let shop = app(
            "kind: App\nname: shop\nserver: local\nservices:\n  web: {image: nginx}\n  db: {image: postgres}\n",
            "shop",
        );
        let image = ServiceEdit { image: Some("x".into()), ..ServiceEdit::default() };
        let req = AppEdit { name: "shop".into(), fields: image.clone(), ..AppEdit::default() };
        let e = req.target(&shop).unwrap_err().to_string();
        assert!(e.contains("argument `service`: app `shop` has several services; name one of: db, web"), "{e}");
        let req = AppEdit { service: Some("cache".into()), ..req };
        let e = req.target(&shop).unwrap_err().to_string();
        assert!(e.contains("app `shop` has no service `cache`; its services: db, web"), "{e}");
        let req = AppEdit { service: Some("db".into()), ..req };
        assert_eq!(req.target(&shop).unwrap().as_deref(), Some("db"));
        // A state change needs no service; in a one-service app the service is the top.
        assert_eq!(AppEdit::state("shop".into(), AppState::Stopped).target(&shop).unwrap(), None);
        let web = app("kind: App\nname: web\nserver: local\nimage: nginx\n", "web");
        let req = AppEdit { name: "web".into(), service: Some("any".into()), fields: image, ..AppEdit::default() };
        assert_eq!(req.target(&web).unwrap(), None);
    }

    #[test]
    fn extra_cannot_say_what_the_document_is_and_null_removes() {
        let mut bad_extra = ServiceEdit { image: Some("x".into()), ..ServiceEdit::default() };
        bad_extra.extra.insert("kind".into(), Some("Server".into()));
        let e = DeployApp::new("a".into(), vec![], bad_extra, None).unwrap().check().unwrap_err();
        assert!(e.to_string().contains("argument `extra`: `kind` cannot be set"), "{e}");
        let mut fields = ServiceEdit::default();
        fields.extra.insert("ports".into(), None);
        fields.extra.insert("init".into(), Some(true.into()));
        let req = AppEdit { name: "web".into(), fields, ..AppEdit::default() };
        let out = edit(APP, 2, |doc| req.document(None, doc));
        assert!(!out.contains("8080"), "{out}");
        assert!(out.contains("image: nginx:1 # pinned\n") && out.contains("init: true\n"), "{out}");
    }

    #[test]
    fn a_deploy_defaults_to_the_local_server_and_keeps_the_state() {
        let one = ServiceEdit { image: Some("nginx:2".into()), ..ServiceEdit::default() };
        let req = DeployApp::new("web".into(), vec![], one.clone(), None).unwrap();
        let doc = req.document(Some(serde_json::json!({"state": "stopped"}))).unwrap().unwrap();
        assert_eq!(doc["server"], LOCAL);
        assert_eq!(doc["state"], "stopped");
        let req = DeployApp::new("web".into(), vec!["a".into(), "b".into()], one.clone(), None).unwrap();
        assert_eq!(req.document(None).unwrap().unwrap()["servers"], serde_json::json!(["a", "b"]));
        let e = DeployApp::new("web".into(), vec![], ServiceEdit::default(), None).unwrap_err();
        assert!(e.to_string().starts_with("argument `image`: required"), "{e}");
        let e = DeployApp::new("web".into(), vec![], one, Some(Map::new())).unwrap_err();
        assert!(e.to_string().starts_with("argument `services`:"), "{e}");
        // A replaced document keeps the comments outside it and the other documents.
        let req = DeployApp::new(
            "other".into(),
            vec![],
            ServiceEdit { image: Some("x".into()), ..ServiceEdit::default() },
            None,
        )
        .unwrap();
        let out = edit(APP, 15, |doc| req.document(doc));
        assert!(out.starts_with(&APP[..APP.find("---").unwrap()]), "{out}");
        assert!(out.ends_with("---\n# another\nkind: App\nname: other\nimage: x # keep\nserver: local\n"), "{out}");
    }

    #[test]
    fn a_server_edit_keeps_comments_and_other_docker_fields() {
        let text = "kind: Server # a NAS\nname: nas\nhost: 10.0.0.2\nuser: ops # who\ndocker:\n  ensure: present\n";
        let req = ServerEdit::Update {
            name: "nas".into(),
            fields: ServerFields {
                port: Some(2222),
                auth: Some(ServerAuth::Key { secret: "nas-key".into() }),
                docker_socket: Some("/run/docker.sock".into()),
                ..ServerFields::default()
            },
        };
        assert_eq!(req.title(), "update server nas");
        let out = edit(text, 1, |doc| req.document(doc));
        assert!(out.starts_with("kind: Server # a NAS\nname: nas\nhost: 10.0.0.2\nuser: ops # who\n"), "{out}");
        let doc = crate::manifest::edit::document_json(&out, 1).unwrap();
        assert_eq!(doc["docker"], serde_json::json!({"ensure": "present", "socket": "/run/docker.sock"}));
        assert_eq!(doc["auth"], serde_json::json!({"key": {"secret": "nas-key"}}));
        assert_eq!(doc["port"], 2222);
        let add = ServerEdit::Add {
            name: "pi".into(),
            fields: ServerFields {
                host: Some("pi.lan".into()),
                auth: Some(ServerAuth::Agent),
                ..ServerFields::default()
            },
        };
        let doc = add.document(None).unwrap().unwrap();
        assert_eq!(doc, serde_json::json!({"kind": "Server", "name": "pi", "host": "pi.lan", "auth": {"agent": true}}));
        assert_eq!(ServerEdit::Remove { name: "pi".into() }.document(Some(doc)).unwrap(), None);
    }

    #[test]
    fn a_settings_edit_sets_and_removes_fields_and_never_the_kind() {
        let text = "# system settings\nkind: Settings\nparallelism: 4 # cores\nprune: false\n";
        let mut fields = BTreeMap::new();
        fields.insert("prune".to_string(), None);
        fields.insert("mcp".to_string(), Some(serde_json::json!({"require_approval": "all"})));
        let out = edit(text, 2, |doc| SettingsEdit { fields }.document(doc));
        assert_eq!(out, "# system settings\nkind: Settings\nparallelism: 4 # cores\nmcp:\n  require_approval: all\n");
        let new = SettingsEdit::default().document(None).unwrap().unwrap();
        assert_eq!(new, serde_json::json!({"kind": "Settings"}));
        let mut kind = BTreeMap::new();
        kind.insert("kind".to_string(), Some("App".into()));
        let e = SettingsEdit { fields: kind }.document(None).unwrap_err();
        assert!(e.to_string().contains("argument `system.kind`"), "{e}");
    }
}
