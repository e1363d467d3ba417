//! The engine: the one API the front ends (CLI, MCP, watch) call. It owns the
//! configuration, opens the store and vault on demand and holds one Docker
//! client per server (`connect.rs`); front ends build a request, call one
//! method and render the result.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use crate::apply::lock::ApplyLock;
use crate::apply::{self, ApplyOptions};
use crate::config::Config;
use crate::error::{Changed, Error, NotFound, Noun, Result, Stale};
use crate::manifest::{self, LoadOptions, Loaded, SecretCheck, Sources};
use crate::model::secret::{NoSecrets, Secrets};
use crate::model::{Desired, Name, Observed};
use crate::plan;
use crate::store::Store;
use crate::transport::docker::DockerClient;
use crate::transport::ssh::SshSession;
use crate::vault::{self, KeyCell, LazySecrets, MasterKey, Vault};

pub mod appdata;
mod appdata_hook;
pub mod appdata_restore;
mod backup;
pub mod backup_remote;
mod backup_schedule;
mod batchpipe;
mod changes;
mod connect;
mod daemon;
mod docker;
mod edits;
mod guard;
mod import;
mod journal;
mod logs;
mod market;
mod market_catalog;
mod market_install;
mod market_repo;
mod market_updates;
mod metrics;
mod metrics_system;
mod names;
mod notice;
mod ops;
mod reconcile;
mod recover;
mod reinit;
mod releases;
pub mod restore_proposal;
mod rows;
mod servers;
pub mod syslog;
mod users;

pub use crate::apply::{ApplyEvent, ApplyReport, ApplySink, Both, Outcome, TracingSink};
pub use crate::backup::{
    Keep as BackupKeep, MemberKind as BackupMemberKind, Part as BackupPart, Replaces, RestorePlan, Restored,
};
pub use crate::model::logs::{AppLogLine, LogLevel, LogRow};
pub use crate::plan::risk;
pub use crate::plan::status::{StatusRow, rows as status_rows};
pub use crate::plan::text::{plan as plan_text, plan_with as plan_text_with, status as status_text};
pub use crate::plan::{Action, Op, Plan, PlanOptions, Scope, to_dot};
pub use crate::store::Newer;
pub use backup::{BackupMade, BackupRequest, BackupRow, RestoreRequest};
pub use backup_schedule::ScheduledBackup;
pub use changes::{AuditEvent, AuditResult, Change, DocKind, FileEdit, Submitted};
pub use daemon::{WatchMark, WatchState, mark_process_start, process_uptime};
pub use edits::{
    AppEdit, AppServices, Decided, DeployApp, DockerEdit, EnvInput, ProposalDecision, ServerAuth, ServerEdit,
    ServerFields, ServiceEdit, SettingsEdit,
};
pub use import::{ImportRequest, ImportResult};
pub use logs::{AppLogsRequest, PurgeRequest, Purged, SystemLogsRequest, log_filter};
pub use market::{StoreRow, StoreSynced, SyncOptions, SyncReport};
pub use market_catalog::{
    AppShown, CatalogRow, CategoryRow, DEFAULT_LIMIT as MARKET_SEARCH_LIMIT, SearchRequest, split_app,
};
pub use market_install::{Install, InstallRequest, InstalledApp, Update};
pub use market_repo::{MarketplaceEdit, MarketplaceFields};
pub use metrics::{CollectScope, Collected};
pub use metrics_system::SystemFigures;
pub use names::NameKind;
pub use notice::{FolderWatch, LiveSnapshot, ManifestSnapshot, relevant, watch_failed, watch_folder};
pub use ops::{AppContainer, ContainerLogs, PerServer};
pub use reconcile::{Reconciled, Trigger};
pub use reinit::{Adopted, Reinitialised};
pub use releases::{Release, ReleaseImage};
pub use rows::{
    ActionStatus, AppAction, AppRevision, AuditRecord, ContainerRow, EngineFacts, ImageRow, Proposal, ProposalStatus,
    Pruned, RunStatus, Stats,
};
pub use servers::{Check, ServerFacts};
pub use users::{ADDRESS_LOCK_AFTER, LOCK_AFTER, LOCK_FOR, Token};

pub struct Engine {
    config: Config,
    store: OnceLock<Arc<Store>>,
    clients: Mutex<BTreeMap<Name, DockerClient>>,
    /// One SSH connection per server, reused for everything while the engine lives.
    sessions: Mutex<BTreeMap<Name, Arc<SshSession>>>,
    /// The master key, derived (Argon2id, deliberately slow) at most once
    /// per engine, and only when a secret is needed.
    key: Arc<KeyCell>,
    /// The collector's counters from the previous metrics round.
    metrics: Mutex<metrics::Memory>,
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
            key: Arc::default(),
            metrics: Mutex::default(),
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
    /// warning. Never creates the store. The vault (and so its slow key) is
    /// opened only when a manifest refers to a secret: the folder is loaded
    /// first without it, and again with it when that load reports references
    /// it could not check.
    pub fn validate(&self) -> Result<Loaded> {
        let sources = self.sources()?;
        let load = |secrets: &SecretCheck| {
            manifest::load(&sources, &LoadOptions { secrets, inline_check: vault::check_inline_format })
        };
        let loaded = load(&SecretCheck::Unavailable("the vault was not opened".into()));
        // The code of the warning for references not checked (`manifest::resolve`).
        if !loaded.diagnostics.iter().any(|d| d.code == "secrets-unchecked") {
            return Ok(loaded);
        }
        Ok(load(&self.secret_check()))
    }

    /// The JSON Schemas of the manifest kinds as (file name, text), for `tomo schema`.
    pub fn schema_files() -> Vec<(String, String)> {
        manifest::schema::schemas().files()
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
        let s = self.store.get_or_init(|| s);
        syslog::attach(s);
        Ok(s)
    }

    /// The master key from `TOMO_MASTER_PASSWORD` and `TOMO_SALT`.
    pub fn master_key(&self) -> Result<MasterKey> {
        Ok(self.key.get(self.config.master_password.as_ref(), self.config.salt.as_ref())?)
    }

    /// The vault, after its key check passed.
    pub fn vault(&self) -> Result<Vault<'_>> {
        let key = self.master_key()?;
        Ok(Vault::open(self.store()?, key)?)
    }

    /// Secret values for planning and applying; the vault is opened (and
    /// the key derived) on first use, so errors surface, and the cost is
    /// paid, only when a manifest actually uses a secret.
    pub fn secrets(&self) -> Arc<dyn Secrets> {
        match self.store() {
            Ok(store) => Arc::new(LazySecrets::new(
                store.clone(),
                self.key.clone(),
                self.config.master_password.clone(),
                self.config.salt.clone(),
            )),
            Err(e) => Arc::new(NoSecrets(format!("the vault is not available: {e}"))),
        }
    }

    fn check_scope(&self, desired: &Desired, opts: &PlanOptions) -> Result<()> {
        for s in &opts.scope.servers {
            if !desired.servers.contains_key(s) {
                return Err(unknown(Noun::Server, s, desired.servers.keys()).into());
            }
        }
        for a in &opts.scope.apps {
            if !desired.apps.contains_key(a) {
                return Err(unknown(Noun::App, a, desired.apps.keys()).into());
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
                let client =
                    deadline.run("connecting", self.client(server, via)).await.unwrap_or_else(|e| Err(e.into()));
                let (state, facts) = self.observe_one(desired, opts, server, client, &mut deadline).await;
                if reused && matches!(state, crate::model::ServerState::Unreachable(_)) && !deadline.passed() {
                    // A kept connection may have dropped unnoticed: connect afresh once.
                    self.forget(&server.name);
                    let client =
                        deadline.run("connecting", self.client(server, via)).await.unwrap_or_else(|e| Err(e.into()));
                    return (server.name.clone(), self.observe_one(desired, opts, server, client, &mut deadline).await);
                }
                (server.name.clone(), (state, facts))
            }
        });
        let mut observed = Observed::default();
        for (name, (state, facts)) in futures_util::future::join_all(passes).await {
            observed.servers.insert(name.clone(), state);
            if let Some(f) = facts {
                observed.hosts.insert(name, f);
            }
        }
        observed
    }

    /// Observes the servers in scope (a scope naming an undeclared server
    /// or app is refused first) after opening the store, which says which
    /// objects are this installation's: a store that cannot be opened
    /// (missing, emptied, damaged) is the error, not every server
    /// unreachable; so is a store just made for a fleet that another, lost
    /// store managed.
    async fn observe_ours(&self, desired: &Desired, opts: &PlanOptions) -> Result<Observed> {
        self.check_scope(desired, opts)?;
        let store = self.store()?.clone();
        let mut observed = self.observe(desired, opts).await;
        self.refuse_orphaned(&store, desired, &observed)?;
        observed.interrupted = self.interrupted_recreates(&store, &observed);
        Ok(observed)
    }

    /// Loads the manifests, observes the servers and builds the plan.
    pub async fn plan(&self, opts: &PlanOptions) -> Result<Plan> {
        let desired = self.desired()?;
        self.plan_for(&desired, opts).await
    }

    async fn plan_for(&self, desired: &Desired, opts: &PlanOptions) -> Result<Plan> {
        Ok(self.observe_and_plan(desired, opts).await?.1)
    }

    /// The observed state and the plan against it (`tomo status`): what runs
    /// where, and what apply would change.
    pub async fn status(&self, opts: &PlanOptions) -> Result<(Desired, Observed, Plan)> {
        let desired = self.desired()?;
        let (observed, plan) = self.observe_and_plan(&desired, opts).await?;
        Ok((desired, observed, plan))
    }

    /// The one way from declarations to a plan: observe the servers in
    /// scope (`observe_ours`), then diff against what they hold.
    async fn observe_and_plan(&self, desired: &Desired, opts: &PlanOptions) -> Result<(Observed, Plan)> {
        let observed = self.observe_ours(desired, opts).await?;
        let plan = self.plan_against(desired, &observed, opts)?;
        Ok((observed, plan))
    }

    fn plan_against(&self, desired: &Desired, observed: &Observed, opts: &PlanOptions) -> Result<Plan> {
        let secrets = self.secrets();
        let mut plan = plan::build(desired, observed, opts, secrets.as_ref())?;
        let history = self.store().and_then(|s| Ok(s.recreate_durations()?)).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "cannot read recorded recreate durations; downtime estimates use the default");
            Default::default()
        });
        plan::risk::assess(&mut plan, &history, &plan::risk::DowntimeLimits::of(desired));
        Ok(plan)
    }

    /// What every apply begins with: the apply lock, the manifests, and the
    /// runs cut short marked as interrupted.
    fn begin_apply(&self, req: &ApplyRequest) -> Result<(ApplyLock, Desired)> {
        let lock = self.lock(req)?;
        let desired = self.desired()?;
        self.interrupted_runs()?;
        Ok((lock, desired))
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
        let (_lock, desired) = self.begin_apply(req)?;
        let plan = self.plan_for(&desired, opts).await?;
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
            return Err(Stale::Format { found: plan.format, expected: plan::PLAN_FORMAT }.into());
        }
        let (_lock, desired) = self.begin_apply(req)?;
        let observed = self.observe_ours(&desired, &plan.options).await?;
        let now = plan::basis(&desired, &observed, &plan.options);
        let what = match (now.desired == plan.basis.desired, now.observed == plan.basis.observed) {
            (true, true) => None,
            (false, true) => Some(Changed::Manifests),
            (true, false) => Some(Changed::Servers),
            (false, false) => Some(Changed::Both),
        };
        if let Some(what) = what {
            return Err(Stale::Plan(what).into());
        }
        let mut plan = plan.clone();
        if !plan::fill_env_files(&mut plan, &desired, self.secrets().as_ref()) {
            return Err(Stale::Plan(Changed::Manifests).into());
        }
        self.execute(&desired, &plan, req, sink).await
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
            return Ok(ApplyReport {
                run_id: None,
                results: Vec::new(),
                elapsed_ms: 0,
                cancelled: false,
                rolling: Vec::new(),
            });
        }
        let store = self.store()?.clone();
        let fingerprint = plan.fingerprint();
        let run = store.begin_run(&fingerprint, &req.actor, &req.source)?;
        syslog::record(
            LogLevel::Info,
            "apply",
            &format!("run {run} started: {} action(s), by {} ({})", plan.actions.len(), req.actor, req.source),
            serde_json::json!({ "run": run, "actions": plan.actions.len(), "actor": req.actor, "source": req.source }),
        );
        // Losing the store mid-run stops the actions that have not started.
        let stop = req.stop.clone().unwrap_or_default();
        let journal = journal::StoreJournal::new(store.clone(), run, stop.clone());
        let clients = self.clients(desired, &plan.options).await;
        let opts = ApplyOptions {
            parallelism: req.parallelism.unwrap_or(desired.settings.parallelism as usize),
            health_timeout: desired.settings.health_timeout.to_std(),
            verify: crate::model::VerifyPolicies::of(desired),
            stop: Some(stop),
        };
        let mut report = apply::run(plan, &clients, self.secrets(), &opts, sink, &journal).await;
        report.run_id = Some(run);
        store.check_file()?;
        let status = match (report.succeeded(), report.cancelled) {
            (_, true) => crate::store::RunStatus::Cancelled,
            (true, false) => crate::store::RunStatus::Succeeded,
            (false, false) => crate::store::RunStatus::Failed,
        };
        let summary = serde_json::json!({
            "actions": plan.actions.len(),
            "succeeded": report.count("succeeded"),
            "failed": report.count("failed"),
            "skipped": report.count("skipped"),
            "cancelled": report.cancelled,
            "elapsed_ms": report.elapsed_ms,
        });
        store.finish_run(run, status, &summary)?;
        let level = if status == crate::store::RunStatus::Failed { LogLevel::Error } else { LogLevel::Info };
        let mut fields = summary.clone();
        fields["run"] = run.into();
        syslog::record(level, "apply", &format!("run {run} {}", status.as_str()), fields);
        self.record_revisions(plan, &report, run);
        let who = releases::Applier { actor: &req.actor, source: &req.source };
        self.record_releases(desired, plan, &report, run, who).await;
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

fn unknown<'a>(what: Noun, given: &Name, known: impl Iterator<Item = &'a Name>) -> NotFound {
    NotFound::among(what, given.as_str(), "declared", known.map(Name::as_str))
}
