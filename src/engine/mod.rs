//! The engine: the one API the front ends (CLI, MCP, watch) call. It owns the
//! configuration, opens the store and vault on demand and holds one Docker
//! client per server; front ends build a request, call one method and render
//! the result.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use crate::apply::lock::ApplyLock;
use crate::apply::{self, ApplyOptions, ApplyReport, ApplySink, Journal, Outcome};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::manifest::{self, LoadOptions, Loaded, SecretCheck, Sources};
use crate::model::{Desired, Host, Name, Observed};
use crate::plan::spec::{NoSecrets, Secrets};
use crate::plan::{self, Action, Op, Plan, PlanOptions};
use crate::store::Store;
use crate::transport::docker::DockerClient;
use crate::transport::ssh::{Credential, HostKeyPolicy, SshError, SshSession};

/// Connection attempts to an SSH server before its failure is reported.
const CONNECT_ATTEMPTS: u32 = 3;

/// sshd drops handshakes beyond its MaxStartups; a few at once per host is safe.
const HANDSHAKES_PER_HOST: usize = 4;

/// Limits and identity shared by the connections of one operation.
struct Connector {
    installation: std::result::Result<String, String>,
    global: tokio::sync::Semaphore,
    per_host: BTreeMap<String, tokio::sync::Semaphore>,
    /// Each server's time to answer (`Engine::server_timeout`).
    timeout: Duration,
}

/// `~/x` → `$HOME/x`.
fn expand_home(p: &str) -> std::path::PathBuf {
    match (p.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => std::path::PathBuf::from(home).join(rest),
        _ => std::path::PathBuf::from(p),
    }
}
use crate::vault::{self, MasterKey, Vault, VaultSecrets};

mod changes;
mod guard;
pub mod mask;
mod ops;
mod reconcile;
mod recover;
mod reinit;
mod servers;
mod users;

pub use changes::{Change, DocKind, FileEdit, Submitted};
pub use ops::{AppContainer, ContainerLogs, PerServer};
pub use reconcile::{Reconciled, Trigger};
pub use reinit::{Adopted, Reinitialised};
pub use servers::{Check, ServerFacts};
pub use users::{ADDRESS_LOCK_AFTER, LOCK_AFTER, LOCK_FOR, Token};

pub struct Engine {
    config: Config,
    store: OnceLock<Arc<Store>>,
    clients: Mutex<BTreeMap<Name, DockerClient>>,
    /// One SSH connection per server, reused for everything while the engine lives.
    sessions: Mutex<BTreeMap<Name, Arc<SshSession>>>,
    /// The master key, derived (Argon2id, deliberately slow) once per engine.
    key: OnceLock<MasterKey>,
}

/// How an apply is carried out.
#[derive(Debug, Clone)]
pub struct ApplyRequest {
    /// Overrides `Settings.parallelism`.
    pub parallelism: Option<usize>,
    /// How long to wait for another apply to finish.
    pub lock_timeout: Duration,
    /// Who asked (recorded in history): a user name, `cli`, `watch`.
    pub actor: String,
    /// cli | mcp | watch | proposal
    pub source: String,
    /// Set to stop starting actions (a shutdown); running ones finish.
    pub stop: Option<Arc<std::sync::atomic::AtomicBool>>,
}

impl Engine {
    pub fn new(config: Config) -> Engine {
        Engine {
            config,
            store: OnceLock::new(),
            clients: Mutex::new(BTreeMap::new()),
            sessions: Mutex::new(BTreeMap::new()),
            key: OnceLock::new(),
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Reads the manifest folder.
    pub fn sources(&self) -> Result<Sources> {
        Ok(manifest::read_dir(&self.config.manifests)?)
    }

    /// Loads and checks every manifest (no network). Secret references are
    /// checked against the vault when it can be opened, else reported as a
    /// warning. Never creates the store.
    pub fn validate(&self) -> Result<Loaded> {
        let sources = self.sources()?;
        let secrets = self.secret_check();
        Ok(manifest::load(&sources, &LoadOptions { secrets: &secrets, inline_check: vault::check_inline_format }))
    }

    /// The desired state, or `Error::Invalid` with every problem.
    pub fn desired(&self) -> Result<Desired> {
        let loaded = self.validate()?;
        loaded.desired.ok_or(Error::Invalid(loaded.diagnostics))
    }

    /// What is known about the vault's secret names, for validation.
    pub fn secret_check(&self) -> SecretCheck {
        let db = self.config.data_dir.join("tomo.db");
        if !db.exists() {
            return SecretCheck::Unavailable(format!("there is no store yet at `{}`", db.display()));
        }
        match self.vault().and_then(|v| Ok(v.list()?)) {
            Ok(rows) => SecretCheck::Known(rows.into_iter().map(|r| r.name).collect()),
            Err(e) => SecretCheck::Unavailable(e.to_string()),
        }
    }

    /// The store, opened (and migrated) on first use. Once open, every use
    /// checks that the store file is still the one opened (`StoreError::Lost`
    /// when it was deleted or replaced).
    pub fn store(&self) -> Result<&Arc<Store>> {
        if let Some(s) = self.store.get() {
            s.check_file()?;
            return Ok(s);
        }
        let s = Arc::new(Store::open_in(&self.config.data_dir)?);
        Ok(self.store.get_or_init(|| s))
    }

    /// The master key from `TOMO_MASTER_PASSWORD` and `TOMO_SALT`.
    pub fn master_key(&self) -> Result<MasterKey> {
        if let Some(k) = self.key.get() {
            return Ok(k.clone());
        }
        let k = MasterKey::derive(self.config.master_password.as_ref(), self.config.salt.as_ref())?;
        Ok(self.key.get_or_init(|| k).clone())
    }

    /// The vault, after its key check passed.
    pub fn vault(&self) -> Result<Vault<'_>> {
        let key = self.master_key()?;
        Ok(Vault::open(self.store()?, key)?)
    }

    /// Secret values for planning and applying; errors surface only when a
    /// manifest actually uses a secret.
    pub fn secrets(&self) -> Arc<dyn Secrets> {
        let opened = self.master_key().and_then(|k| Ok(VaultSecrets::open(self.store()?.clone(), k)?));
        match opened {
            Ok(v) => Arc::new(v),
            Err(e) => Arc::new(NoSecrets(format!("the vault is not available: {e}"))),
        }
    }

    /// What connecting needs: this installation's id and the limits on
    /// connections at once (all servers, and handshakes per host).
    fn connector(&self, desired: &Desired, opts: &PlanOptions) -> Connector {
        let installation =
            self.store().and_then(|s| Ok(s.installation_id()?)).map_err(|e| format!("the store is not available: {e}"));
        self.connector_as(desired, opts, installation)
    }

    /// A connector that labels and recognises objects as `installation`'s.
    fn connector_as(
        &self,
        desired: &Desired,
        opts: &PlanOptions,
        installation: std::result::Result<String, String>,
    ) -> Connector {
        let per_host = desired
            .servers
            .values()
            .filter(|s| opts.scope.has_server(&s.name))
            .filter_map(|s| match &s.host {
                Host::Ssh(t) => Some((t.address.clone(), tokio::sync::Semaphore::new(HANDSHAKES_PER_HOST))),
                Host::Local => None,
            })
            .collect();
        Connector {
            installation,
            global: tokio::sync::Semaphore::new(self.config.max_concurrent_connections as usize),
            per_host,
            timeout: self.server_timeout(desired),
        }
    }

    /// How long a server may take to answer: connecting and being observed
    /// as a whole, and each Docker call of apply. `Settings.server_timeout`
    /// when the manifests declare it (one value for every process that
    /// reads them), else `SSH_TIMEOUT` (default 30s).
    pub fn server_timeout(&self, desired: &Desired) -> Duration {
        desired.settings.server_timeout.unwrap_or(self.config.ssh_timeout).to_std()
    }

    /// The Docker client of one server (connected over SSH when remote, and
    /// kept for the engine's life), or why there is none.
    async fn client(&self, server: &crate::model::Server, via: &Connector) -> Result<DockerClient, String> {
        if let Some(c) = self.cached(&server.name) {
            return Ok(c);
        }
        let installation = via.installation.as_deref().map_err(Clone::clone)?;
        let client = match &server.host {
            Host::Local => {
                DockerClient::local(&server.docker.socket, installation, via.timeout).map_err(|e| e.to_string())
            }
            Host::Ssh(t) => {
                let _g = via.global.acquire().await;
                let _h = match via.per_host.get(&t.address) {
                    Some(s) => Some(s.acquire().await),
                    None => None,
                };
                let session = self.ssh_session_with_retry(server, t, via.timeout).await?;
                DockerClient::over_ssh(session, &server.docker.socket, installation, via.timeout)
                    .map_err(|e| e.to_string())
            }
        };
        if let Ok(c) = &client {
            self.clients.lock().unwrap_or_else(|p| p.into_inner()).insert(server.name.clone(), c.clone());
        }
        client
    }

    /// A Docker client per declared server in scope, or why there is none;
    /// SSH servers are connected in parallel.
    async fn clients(&self, desired: &Desired, opts: &PlanOptions) -> BTreeMap<Name, Result<DockerClient, String>> {
        let via = self.connector(desired, opts);
        let connect = desired
            .servers
            .values()
            .filter(|s| opts.scope.has_server(&s.name))
            .map(|server| async { (server.name.clone(), self.client(server, &via).await) });
        futures_util::future::join_all(connect).await.into_iter().collect()
    }

    fn cached(&self, name: &Name) -> Option<DockerClient> {
        let alive = self.session(name).is_none_or(|s| !s.is_closed());
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        if !alive {
            // The SSH connection dropped: connect again on next use.
            clients.remove(name);
            self.sessions.lock().unwrap_or_else(|p| p.into_inner()).remove(name);
            return None;
        }
        clients.get(name).cloned()
    }

    /// Drops a server's kept connection (it is made again on next use).
    fn forget(&self, name: &Name) {
        self.clients.lock().unwrap_or_else(|p| p.into_inner()).remove(name);
        self.sessions.lock().unwrap_or_else(|p| p.into_inner()).remove(name);
    }

    /// The open SSH connection of a server, if any.
    fn session(&self, name: &Name) -> Option<Arc<SshSession>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner()).get(name).cloned()
    }

    /// The host key to accept for a server: pinned in its manifest, else
    /// recorded by `tomo server trust`.
    fn host_key_policy(&self, server: &Name, target: &crate::model::SshTarget) -> Result<HostKeyPolicy, String> {
        if let Some(fp) = &target.host_key {
            return Ok(HostKeyPolicy::Expect(fp.clone()));
        }
        let recorded =
            self.store().map_err(|e| e.to_string())?.trusted_host_key(server.as_str()).map_err(|e| e.to_string())?;
        match recorded {
            Some(fp) => Ok(HostKeyPolicy::Expect(fp)),
            None => Err(format!(
                "the host key of {} is not trusted yet; check it and run `tomo server trust {server}` (or pin `host_key:` in its manifest)",
                target.address
            )),
        }
    }

    fn credential(&self, auth: &crate::model::SshAuth) -> Result<Credential, String> {
        use crate::model::{EnvValue, SshAuth};
        Ok(match auth {
            SshAuth::Agent => Credential::Agent,
            SshAuth::KeyFile(p) => Credential::KeyFile(expand_home(p)),
            SshAuth::Password { secret } => {
                Credential::Password(self.secrets().reveal(&EnvValue::Secret(secret.clone()))?)
            }
            SshAuth::Key { secret } => Credential::Key(self.secrets().reveal(&EnvValue::Secret(secret.clone()))?),
        })
    }

    /// Connects, retrying transient failures (refused, dropped, timed out) with
    /// exponential backoff and jitter, all attempts within one `timeout`; a
    /// refused key or login is final.
    async fn ssh_session_with_retry(
        &self,
        server: &crate::model::Server,
        t: &crate::model::SshTarget,
        timeout: Duration,
    ) -> Result<Arc<SshSession>, String> {
        let deadline = crate::observe::Deadline::new(timeout);
        deadline.run("connecting", self.ssh_session_attempts(server, t, timeout)).await?
    }

    async fn ssh_session_attempts(
        &self,
        server: &crate::model::Server,
        t: &crate::model::SshTarget,
        timeout: Duration,
    ) -> Result<Arc<SshSession>, String> {
        let mut delay = Duration::from_millis(100);
        for attempt in 1..=CONNECT_ATTEMPTS {
            match self.ssh_session(server, t, timeout).await {
                Ok(s) => return Ok(s),
                Err((e, transient)) if transient && attempt < CONNECT_ATTEMPTS => {
                    let jitter = Duration::from_millis(u64::from(std::process::id() % 7) * 10);
                    tracing::debug!(server = %server.name, attempt, error = %e, "retrying the SSH connection");
                    tokio::time::sleep(delay + jitter).await;
                    delay *= 2;
                }
                Err((e, _)) => return Err(e),
            }
        }
        unreachable!("the loop returns")
    }

    async fn ssh_session(
        &self,
        server: &crate::model::Server,
        t: &crate::model::SshTarget,
        timeout: Duration,
    ) -> Result<Arc<SshSession>, (String, bool)> {
        let policy = self.host_key_policy(&server.name, t).map_err(|e| (e, false))?;
        let credential = self.credential(&t.auth).map_err(|e| (e, false))?;
        let session =
            SshSession::connect(&t.address, t.port, &t.user, &credential, policy, timeout).await.map_err(|e| {
                let transient = e.is_transient();
                if let SshError::HostKeyChanged { expected, got, .. } = &e
                    && let Ok(store) = self.store()
                {
                    let _ = store.record_activity(&crate::store::Activity {
                        category: "server",
                        action: "host-key-changed",
                        target: Some(server.name.as_str()),
                        result: "refused",
                        detail: Some(&format!("expected {expected}, got {got}")),
                        ..Default::default()
                    });
                }
                (e.to_string(), transient)
            })?;
        let session = Arc::new(session);
        self.sessions.lock().unwrap_or_else(|p| p.into_inner()).insert(server.name.clone(), session.clone());
        Ok(session)
    }

    fn check_scope(&self, desired: &Desired, opts: &PlanOptions) -> Result<()> {
        for s in &opts.scope.servers {
            if !desired.servers.contains_key(s) {
                return Err(Error::Usage(unknown("server", s, desired.servers.keys())));
            }
        }
        for a in &opts.scope.apps {
            if !desired.apps.contains_key(a) {
                return Err(Error::Usage(unknown("app", a, desired.apps.keys())));
            }
        }
        Ok(())
    }

    /// Observes the servers in scope of `desired`, all at once, each server
    /// connecting and being observed in one go within one deadline
    /// (`server_timeout`): a slow or silent server delays only itself, and at most that long. Images of `pull: always` services are pulled first (a
    /// failed pull is logged; the image already on the server is then used).
    pub async fn observe(&self, desired: &Desired, opts: &PlanOptions) -> Observed {
        let via = self.connector(desired, opts);
        let passes = desired.servers.values().filter(|s| opts.scope.has_server(&s.name)).map(|server| {
            let via = &via;
            async move {
                let mut deadline = crate::observe::Deadline::new(via.timeout);
                let reused = self.cached(&server.name).is_some();
                let client = deadline.run("connecting", self.client(server, via)).await.and_then(|c| c);
                let mut state =
                    crate::observe::observe_server(desired, &opts.scope, &server.name, client, &mut deadline).await;
                if reused && matches!(state, crate::model::ServerState::Unreachable(_)) && !deadline.passed() {
                    // A kept connection may have dropped unnoticed: connect afresh once.
                    self.forget(&server.name);
                    let client = deadline.run("connecting", self.client(server, via)).await.and_then(|c| c);
                    state =
                        crate::observe::observe_server(desired, &opts.scope, &server.name, client, &mut deadline).await;
                }
                (server.name.clone(), state)
            }
        });
        Observed { servers: futures_util::future::join_all(passes).await.into_iter().collect() }
    }

    /// Observes after opening the store, which says which objects are this
    /// installation's: a store that cannot be opened (missing, emptied,
    /// damaged) is the error, not every server unreachable; so is a store
    /// just made for a fleet that another, lost store managed.
    async fn observe_ours(&self, desired: &Desired, opts: &PlanOptions) -> Result<Observed> {
        let store = self.store()?.clone();
        let observed = self.observe(desired, opts).await;
        self.refuse_orphaned(&store, desired, &observed)?;
        Ok(observed)
    }

    /// Loads the manifests, observes the servers and builds the plan.
    pub async fn plan(&self, opts: &PlanOptions) -> Result<Plan> {
        let desired = self.desired()?;
        self.plan_for(&desired, opts).await
    }

    async fn plan_for(&self, desired: &Desired, opts: &PlanOptions) -> Result<Plan> {
        self.check_scope(desired, opts)?;
        let observed = self.observe_ours(desired, opts).await?;
        let secrets = self.secrets();
        Ok(plan::build(desired, &observed, opts, secrets.as_ref())?)
    }

    /// The observed state and the plan against it (`tomo status`): what runs
    /// where, and what apply would change.
    pub async fn status(&self, opts: &PlanOptions) -> Result<(Desired, Observed, Plan)> {
        let desired = self.desired()?;
        self.check_scope(&desired, opts)?;
        let observed = self.observe_ours(&desired, opts).await?;
        let secrets = self.secrets();
        let plan = plan::build(&desired, &observed, opts, secrets.as_ref())?;
        Ok((desired, observed, plan))
    }

    /// Plans after putting back or removing what interrupted recreates left
    /// (observing again when something was repaired).
    async fn plan_recovered(&self, desired: &Desired, opts: &PlanOptions) -> Result<Plan> {
        self.check_scope(desired, opts)?;
        let mut observed = self.observe_ours(desired, opts).await?;
        if !self.repair_leftovers(desired, opts, &observed).await.is_empty() {
            observed = self.observe(desired, opts).await;
        }
        let secrets = self.secrets();
        Ok(plan::build(desired, &observed, opts, secrets.as_ref())?)
    }

    /// Runs the journal shows as cut short (their process is gone).
    pub fn abandoned_runs(&self) -> Result<Vec<crate::store::RunRow>> {
        Ok(self.store()?.abandoned_runs()?)
    }

    /// Plans and applies under the lock; `confirm` sees the plan first and may decline.
    pub async fn apply_current(
        &self,
        opts: &PlanOptions,
        req: &ApplyRequest,
        confirm: impl FnOnce(&Plan) -> bool,
        sink: &dyn ApplySink,
    ) -> Result<Option<(Plan, ApplyReport)>> {
        let _lock = self.lock(req)?;
        let desired = self.desired()?;
        self.interrupted_runs()?;
        let plan = self.plan_recovered(&desired, opts).await?;
        if !confirm(&plan) {
            return Ok(None);
        }
        let report = self.execute(&desired, &plan, req, sink).await?;
        Ok(Some((plan, report)))
    }

    /// Applies a saved plan exactly, after checking that neither the manifests
    /// nor the servers changed since it was made; a stale plan changes nothing.
    pub async fn apply_saved(&self, plan: &Plan, req: &ApplyRequest, sink: &dyn ApplySink) -> Result<ApplyReport> {
        if plan.format != plan::PLAN_FORMAT {
            return Err(Error::StalePlan(format!(
                "the plan file has format {}, this tomo writes {}; run `tomo plan --out FILE` again",
                plan.format,
                plan::PLAN_FORMAT
            )));
        }
        let _lock = self.lock(req)?;
        let desired = self.desired()?;
        self.interrupted_runs()?;
        self.check_scope(&desired, &plan.options)?;
        let observed = self.observe_ours(&desired, &plan.options).await?;
        let now = plan::basis(&desired, &observed, &plan.options);
        let what = match (now.desired == plan.basis.desired, now.observed == plan.basis.observed) {
            (true, true) => None,
            (false, true) => Some("the manifests changed"),
            (true, false) => Some("the servers changed"),
            (false, false) => Some("the manifests and the servers changed"),
        };
        if let Some(what) = what {
            return Err(Error::StalePlan(format!(
                "{what} since this plan was made; nothing was applied. Run `tomo plan --out FILE` again and review it"
            )));
        }
        self.execute(&desired, plan, req, sink).await
    }

    /// Takes the apply lock in the data folder, after the store (which makes
    /// the folder, and notices one deleted under a long-running process).
    fn lock(&self, req: &ApplyRequest) -> Result<ApplyLock> {
        self.store()?;
        Ok(ApplyLock::acquire(&self.config.data_dir, req.lock_timeout, &format!("tomo apply ({})", req.source))?)
    }

    async fn execute(
        &self,
        desired: &Desired,
        plan: &Plan,
        req: &ApplyRequest,
        sink: &dyn ApplySink,
    ) -> Result<ApplyReport> {
        if plan.actions.is_empty() {
            return Ok(ApplyReport { run_id: None, results: Vec::new(), elapsed_ms: 0 });
        }
        let store = self.store()?.clone();
        let fingerprint = plan.fingerprint();
        let run = store.begin_run(&fingerprint, &req.actor, &req.source)?;
        // Losing the store mid-run stops the actions that have not started.
        let stop = req.stop.clone().unwrap_or_default();
        let journal = StoreJournal { store: store.clone(), run, stop: stop.clone() };
        let clients = self.clients(desired, &plan.options).await;
        let opts = ApplyOptions {
            parallelism: req.parallelism.unwrap_or(desired.settings.parallelism as usize),
            health_timeout: desired.settings.health_timeout.to_std(),
            stop: Some(stop),
        };
        let mut report = apply::run(plan, &clients, self.secrets(), &opts, sink, &journal).await;
        report.run_id = Some(run);
        store.check_file()?;
        let status = if report.succeeded() { "succeeded" } else { "failed" };
        let summary = serde_json::json!({
            "actions": plan.actions.len(),
            "succeeded": report.count("succeeded"),
            "failed": report.count("failed"),
            "skipped": report.count("skipped"),
            "elapsed_ms": report.elapsed_ms,
        });
        store.finish_run(run, status, &summary)?;
        self.record_revisions(plan, &report, run);
        Ok(report)
    }
}

impl Engine {
    /// Records the App document of every app an apply changed (for history
    /// and rollback). Failures are logged, never fatal.
    fn record_revisions(&self, plan: &Plan, report: &ApplyReport, run: i64) {
        let changed: std::collections::BTreeSet<&Name> = report
            .results
            .iter()
            .filter(|r| r.outcome == Outcome::Succeeded)
            .filter_map(|r| plan.actions[r.id].app.as_ref())
            .collect();
        for app in changed {
            let recorded = self.document(DocKind::App, app.as_str()).and_then(|d| match d {
                Some((_, _, doc)) => Ok(self.store()?.record_app_revision(app.as_str(), run, &doc)?),
                None => Ok(()),
            });
            if let Err(e) = recorded {
                tracing::warn!(app = %app, error = %e, "cannot record the app's revision");
            }
        }
    }
}

fn unknown<'a>(what: &str, given: &Name, known: impl Iterator<Item = &'a Name>) -> String {
    let known: Vec<&str> = known.map(Name::as_str).collect();
    match crate::diag::did_you_mean(given.as_str(), known.iter().copied()) {
        Some(s) => format!("there is no {what} `{given}`; did you mean `{s}`?"),
        None => format!("there is no {what} `{given}`; declared: {}", known.join(", ")),
    }
}

/// Journals actions in the store and keeps `installations` current.
struct StoreJournal {
    store: Arc<Store>,
    run: i64,
    /// Set when the store file is found deleted or replaced.
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl Journal for StoreJournal {
    fn started(&self, a: &Action) {
        if let Err(e) = self.store.check_file() {
            tracing::error!(error = %e, "the store is gone: no further action starts");
            self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        }
        let detail = serde_json::json!({"op": a.op.verb(), "object": a.op.object(), "reasons": a.reasons});
        if let Err(e) = self.store.action_started(
            self.run,
            a.id,
            a.server.as_str(),
            a.app.as_ref().map(Name::as_str),
            a.service.as_ref().map(Name::as_str),
            a.op.verb(),
            &detail,
        ) {
            tracing::warn!(error = %e, "cannot journal an action");
        }
    }

    fn finished(&self, a: &Action, outcome: &Outcome, container: Option<&str>) {
        let error = match outcome {
            Outcome::Failed(e) | Outcome::Skipped(e) => Some(e.as_str()),
            Outcome::Succeeded => None,
        };
        let mut result = self.store.action_finished(self.run, a.id, outcome.as_str(), error);
        if *outcome == Outcome::Succeeded
            && let (Some(app), Some(service)) = (&a.app, &a.service)
        {
            result = result.and_then(|_| match (&a.op, container) {
                (Op::Create { spec, hash, redacted, .. } | Op::Recreate { spec, hash, redacted, .. }, Some(id)) => {
                    self.store.set_installation(
                        a.server.as_str(),
                        app.as_str(),
                        service.as_str(),
                        id,
                        &spec.image,
                        hash,
                        redacted,
                        self.run,
                    )
                }
                (Op::Remove { .. }, _) => {
                    self.store.remove_installation(a.server.as_str(), app.as_str(), service.as_str())
                }
                _ => Ok(()),
            });
        }
        if let Err(e) = result {
            tracing::warn!(error = %e, "cannot journal an action");
        }
    }
}
