//! Command-line arguments (clap). Parsing only: no I/O here.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// tomo keeps self-hosted servers in the state written in YAML manifests.
#[derive(Debug, Parser)]
#[command(name = "tomo", version, about, propagate_version = true, arg_required_else_help = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args, Clone)]
pub struct Global {
    /// Configuration file [default: ./tomo.yaml when it exists]
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Manifest folder [default: `manifests` from tomo.yaml, else ./state]
    #[arg(long, global = true, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// When the data folder's store is missing or empty: make a new one that
    /// adopts the installation id found on the declared servers' containers
    /// (what was there is set aside), then run the command
    #[arg(long, global = true)]
    pub reinit: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check every manifest without touching any server; exit 1 on errors
    Validate(ValidateArgs),
    /// Show what apply would change on the servers, and why
    Plan(PlanArgs),
    /// Make the servers match the manifests (or carry out a saved plan)
    Apply(ApplyArgs),
    /// Print the plan's action graph in Graphviz DOT
    Graph(ScopeArgs),
    /// Show what is deployed on each server, and drift from the manifests
    Status(StatusArgs),
    /// Servers: reachability, checks, host keys
    #[command(subcommand)]
    Server(ServerCommand),
    /// Write the JSON Schemas of the manifest kinds
    Schema(SchemaArgs),
    /// Manage the encrypted secret vault
    #[command(subcommand)]
    Secret(SecretCommand),
    /// Keep the servers in line: apply on every manifest change and repair drift
    Watch(WatchArgs),
    /// Serve MCP (Model Context Protocol) to AI agents, over stdio or HTTP
    Serve(ServeArgs),
    /// Manage users of the MCP server
    #[command(subcommand)]
    User(UserCommand),
    /// Mint bearer tokens for the MCP HTTP server
    #[command(subcommand)]
    Token(TokenCommand),
    /// Review manifest changes proposed through MCP
    #[command(subcommand)]
    Proposal(ProposalCommand),
    /// Change an app's manifest (the edits the MCP app tools make)
    #[command(subcommand)]
    App(AppCommand),
    /// An app's releases: who applied, the outcome, what changed, the image digests that ran
    History(super::releases::HistoryArgs),
    /// Write an app's earlier release back, images pinned by digest, and show the plan
    Rollback(super::releases::RollbackArgs),
    /// Convert files of other tools to tomo manifests
    #[command(subcommand)]
    Import(ImportCommand),
    /// App stores (`kind: Marketplace`): sync, search, show, install
    #[command(subcommand)]
    Market(MarketCommand),
    /// Encrypted backups of tomo's state: create, restore, list, prune
    #[command(subcommand)]
    Backup(BackupCommand),
    /// Fleet figures: a table with sparklines of the period, JSON series, or a chart; `collect` samples now
    Metrics(super::metrics::MetricsArgs),
    /// tomo's own events (`--system`), an app's container logs, or purge stored rows
    Logs(LogsArgs),
    /// Print a shell completion script
    Completions(CompletionsArgs),
}

/// `tomo market`: one variant per subcommand, each with its own args struct.
#[derive(Debug, Subcommand)]
pub enum MarketCommand {
    /// The declared stores: apps, invalid apps, last sync, errors
    List(MarketListArgs),
    /// Fetch every declared store (or one) and index it into the catalog
    Sync(MarketSyncArgs),
    /// Search the synced stores' apps (title, tagline, description)
    Search(super::market_catalog::MarketSearchArgs),
    /// One app: description, services, ports, volumes, environment, tips
    Show(super::market_catalog::MarketShowArgs),
    #[command(flatten)]
    Install(super::market_install::InstallCommand),
}

#[derive(Debug, Args)]
pub struct MarketListArgs {
    /// Print the list as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct MarketSyncArgs {
    /// Only this store
    pub name: Option<String>,
    /// Print the result as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// Convert a Docker Compose file to an App manifest, with a report of
    /// every key (mapped, changed, dropped, ignored); exit 1 when a key
    /// would be dropped, unless --lossy
    Compose(ImportComposeArgs),
}

#[derive(Debug, Args)]
pub struct ImportComposeArgs {
    /// The compose file
    pub path: PathBuf,
    /// The app's name [default: the file's `name`, else its folder's name]
    #[arg(long)]
    pub name: Option<String>,
    /// The server the app runs on
    #[arg(long)]
    pub server: Option<String>,
    /// A variable for interpolation, before the environment and `.env` (repeatable)
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = key_value)]
    pub set: Vec<(String, String)>,
    /// A file of KEY=VALUE variables, after --set (repeatable)
    #[arg(long = "env-file", value_name = "FILE")]
    pub env_file: Vec<PathBuf>,
    /// Write the manifest to FILE instead of standard output
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Print `{manifest, report}` as JSON
    #[arg(long)]
    pub json: bool,
    /// Write the manifest even when keys are dropped
    #[arg(long)]
    pub lossy: bool,
    /// `vault`: store values of keys matching PASSWORD, SECRET, TOKEN or KEY
    /// in the vault and refer to them as `{secret: APP-KEY}`
    #[arg(long, value_enum, value_name = "WHERE")]
    pub secrets: Option<ImportSecrets>,
    /// Run the services of this compose profile (repeatable); others get `state: absent`
    #[arg(long = "profile", value_name = "P")]
    pub profile: Vec<String>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ImportSecrets {
    Vault,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Print the result as JSON
    #[arg(long)]
    pub json: bool,
}

/// Which servers and apps a command covers, and what it may remove.
#[derive(Debug, Args, Clone, Default)]
pub struct ScopeArgs {
    /// Only this server (repeatable)
    #[arg(long = "server", value_name = "NAME")]
    pub servers: Vec<String>,
    /// Only this app (repeatable; orphans are then not considered)
    #[arg(long = "app", value_name = "NAME")]
    pub apps: Vec<String>,
    /// Remove tomo-managed containers whose app is no longer declared
    #[arg(long)]
    pub prune: bool,
    /// Remove this named volume, by its Docker name (repeatable; never implied)
    #[arg(long = "prune-volumes", value_name = "VOLUME")]
    pub prune_volumes: Vec<String>,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub scope: ScopeArgs,
    /// Save the plan to FILE for `tomo apply FILE`
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Print the plan as JSON
    #[arg(long)]
    pub json: bool,
    /// Exit 0 when there is nothing to do, 2 when there are changes, 1 on errors
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Show the commands of server-level actions (Docker Engine installs)
    #[arg(long, short = 'v')]
    pub verbose: bool,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// A plan saved with `tomo plan --out FILE` (applied without asking)
    pub plan_file: Option<PathBuf>,
    #[command(flatten)]
    pub scope: ScopeArgs,
    /// Apply without asking (required when standard input is not a terminal)
    #[arg(long)]
    pub auto_approve: bool,
    /// Apply even when a service would be down longer than `Settings.rollout.max_downtime`
    #[arg(long)]
    pub allow_downtime: bool,
    /// Print the result as JSON
    #[arg(long)]
    pub json: bool,
    /// Actions run at once [default: Settings.parallelism]
    #[arg(long, value_name = "N")]
    pub parallelism: Option<usize>,
    /// How long to wait for another apply to finish, e.g. `30s` [default: fail at once]
    #[arg(long, value_name = "DURATION", default_value = "0s")]
    pub lock_timeout: String,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub scope: ScopeArgs,
    /// Print the status as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum ServerCommand {
    /// Declared servers with reachability, Docker version, OS and uptime (one quick probe each)
    List(ServerListArgs),
    /// Check one server step by step: SSH, login, sudo, Docker socket, Docker version, free disk
    Test(ServerNameArg),
    /// Show a server's SSH host key and trust it (recorded in the store)
    Trust(ServerTrustArgs),
}

#[derive(Debug, Args)]
pub struct ServerListArgs {
    /// Print the list as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ServerNameArg {
    pub name: String,
}

#[derive(Debug, Args)]
pub struct ServerTrustArgs {
    pub name: String,
    /// Trust without asking
    #[arg(long)]
    pub yes: bool,
    /// Also pin the key in the server's manifest (`host_key:`)
    #[arg(long)]
    pub write: bool,
}

#[derive(Debug, Args)]
pub struct SchemaArgs {
    /// Folder to write the schemas to (one per kind plus manifest.json)
    #[arg(long, value_name = "DIR", default_value = "schemas")]
    pub out: PathBuf,
    /// Write nothing; exit 1 when the files in --out differ from the current schemas
    #[arg(long)]
    pub check: bool,
}

#[derive(Debug, Subcommand)]
pub enum SecretCommand {
    /// Store a secret (value from standard input, or --from-file)
    Set(SecretSetArgs),
    /// List secret names and when they were last set (never values)
    List(SecretListArgs),
    /// Remove a secret
    Rm(SecretNameArg),
    /// Print an `enc:v1:…` value that can stand in a manifest in place of a plain value
    Encrypt(SecretEncryptArgs),
}

#[derive(Debug, Args)]
pub struct SecretSetArgs {
    /// Secret name: lowercase letters, digits and '-'
    pub name: String,
    /// Read the value from this file instead of standard input
    #[arg(long, value_name = "FILE")]
    pub from_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct SecretListArgs {
    /// Print the list as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct SecretNameArg {
    pub name: String,
}

#[derive(Debug, Args)]
pub struct SecretEncryptArgs {
    /// Read the value from this file instead of standard input
    #[arg(long, value_name = "FILE")]
    pub from_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Quiet time after the last file change before a run
    #[arg(long, value_name = "DURATION", default_value = "500ms")]
    pub debounce: String,
    /// Fast-forward the manifest repository from this remote or URL (`git pull --ff-only`)
    #[arg(long, value_name = "REMOTE")]
    pub git_pull: Option<String>,
    /// How often to pull with --git-pull
    #[arg(long, value_name = "DURATION", default_value = "1m")]
    pub git_interval: String,
    /// Serve Prometheus metrics (/metrics) and /healthz at ADDR, e.g. 127.0.0.1:9100
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<String>,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("transport").required(true).args(["stdio", "http"])))]
pub struct ServeArgs {
    /// Speak MCP on standard input and output (for a client that starts tomo)
    #[arg(long)]
    pub stdio: bool,
    /// Serve MCP over Streamable HTTP at ADDR [default: `mcp.http` from tomo.yaml, 127.0.0.1:8000]
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = "")]
    pub http: Option<String>,
    /// The role a stdio client acts as
    #[arg(long, value_enum, default_value = "agent")]
    pub role: crate::auth::Role,
    /// Serve Prometheus metrics (/metrics: the newest fleet figures) and /healthz at ADDR, e.g. 127.0.0.1:9100
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user (password from standard input, or asked on a terminal)
    Add(UserAddArgs),
    /// List users and their roles
    List(UserListArgs),
    /// Set a user's password (their tokens are revoked)
    Passwd(UserNameArg),
    /// Remove a user (their tokens stop working)
    Rm(UserNameArg),
}

#[derive(Debug, Args)]
pub struct UserAddArgs {
    pub name: String,
    /// admin, operator, viewer or agent
    #[arg(long, value_enum)]
    pub role: crate::auth::Role,
}

#[derive(Debug, Args)]
pub struct UserListArgs {
    /// Print the list as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct UserNameArg {
    pub name: String,
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Mint a token for a user (printed on standard output)
    Create(TokenCreateArgs),
}

#[derive(Debug, Args)]
pub struct TokenCreateArgs {
    /// The user the token stands for
    #[arg(long, value_name = "NAME")]
    pub user: String,
    /// How long it is valid, e.g. `12h`, `30d`
    #[arg(long, value_name = "DURATION", default_value = "12h")]
    pub ttl: String,
}

#[derive(Debug, Subcommand)]
pub enum AppCommand {
    /// Set or remove environment variables of an app (the others are kept); prints the diff and the plan
    SetEnv(AppSetEnvArgs),
}

#[derive(Debug, Args)]
pub struct AppSetEnvArgs {
    /// The app's name
    pub app: String,
    /// Variables to set, as KEY=VALUE
    #[arg(value_name = "KEY=VALUE", value_parser = key_value)]
    pub vars: Vec<(String, String)>,
    /// Set KEY to the value of vault secret NAME (repeatable)
    #[arg(long = "secret", value_name = "KEY=NAME", value_parser = key_value)]
    pub secrets: Vec<(String, String)>,
    /// Remove this variable (repeatable)
    #[arg(long = "unset", value_name = "KEY")]
    pub unset: Vec<String>,
    /// The service to change, in an app of several services
    #[arg(long)]
    pub service: Option<String>,
}

/// `KEY=VALUE` → (KEY, VALUE).
fn key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("`{s}` is not KEY=VALUE")),
    }
}

#[derive(Debug, Subcommand)]
pub enum ProposalCommand {
    /// List proposals, newest first
    List(ProposalListArgs),
    /// Show a proposal's diff and plan
    Show(ProposalShowArgs),
    /// Write a proposal's edits and apply exactly its plan (refused when stale)
    Approve(ProposalApproveArgs),
    /// Reject a proposal; nothing is written
    Reject(ProposalRejectArgs),
}

#[derive(Debug, Args)]
pub struct ProposalListArgs {
    /// Only proposals with this status (pending, approved, rejected, applied, failed, stale)
    #[arg(long)]
    pub status: Option<String>,
    /// Print the list as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ProposalShowArgs {
    pub id: String,
    /// Print the proposal as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ProposalApproveArgs {
    pub id: String,
    /// Approve without asking
    #[arg(long)]
    pub yes: bool,
    /// Print the result as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ProposalRejectArgs {
    pub id: String,
    /// Why (shown to whoever proposed it)
    #[arg(long)]
    pub reason: Option<String>,
}

/// `tomo logs`: `tomo logs APP`, `tomo logs --system`, `tomo logs purge`.
#[derive(Debug, Args)]
#[command(
    args_conflicts_with_subcommands = true,
    after_help = "Examples:\n  tomo logs web --follow --since 10m\n  tomo logs --system --level warn --since 1h\n  tomo logs purge --before 7d --system\n\nAn app named `purge`: `tomo logs --app purge`."
)]
pub struct LogsArgs {
    #[command(subcommand)]
    pub command: Option<LogsCommand>,
    /// The app whose containers' logs to show (interleaved by time, `service | line`)
    #[arg(value_name = "APP", conflicts_with_all = ["app_flag", "system"])]
    pub app: Option<String>,
    /// The app, as a flag (for an app named like a subcommand, e.g. `purge`)
    #[arg(long = "app", value_name = "APP", conflicts_with = "system")]
    pub app_flag: Option<String>,
    /// tomo's own events (runs, actions, syncs, daemons, alerts, warnings)
    #[arg(long)]
    pub system: bool,
    /// Only this service's containers
    #[arg(long, value_name = "SERVICE", conflicts_with = "system")]
    pub service: Option<String>,
    /// Only what was logged in this last span, e.g. 10m, 1h, 2d
    #[arg(long, value_name = "DURATION")]
    pub since: Option<String>,
    /// The last N lines of each container
    #[arg(long, value_name = "N", conflicts_with = "system")]
    pub tail: Option<u32>,
    /// Keep showing new lines until the containers stop (or Ctrl-C)
    #[arg(long, short = 'f', conflicts_with = "system")]
    pub follow: bool,
    /// Only lines matching this regular expression (matched after secrets are masked)
    #[arg(long, value_name = "REGEX")]
    pub grep: Option<String>,
    /// Show each line's timestamp
    #[arg(long, short = 't')]
    pub timestamps: bool,
    /// With --system: only events at least this serious (debug, info, warn, error)
    #[arg(long, value_name = "LEVEL", requires = "system")]
    pub level: Option<String>,
    /// Print JSON: with --system an array of events; an app's lines one object per line
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum LogsCommand {
    /// Delete stored rows: tomo's events (--system) and metric samples (--metrics); audited
    Purge(PurgeArgs),
}

#[derive(Debug, Args)]
pub struct PurgeArgs {
    /// Only rows older than this, e.g. 7d (all when absent)
    #[arg(long, value_name = "DURATION")]
    pub before: Option<String>,
    /// Delete tomo's stored events
    #[arg(long)]
    pub system: bool,
    /// Delete stored metric samples and rollups
    #[arg(long)]
    pub metrics: bool,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    pub shell: Shell,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

#[derive(Debug, Subcommand)]
pub enum BackupCommand {
    /// Write an encrypted archive of the store (vault, host keys, history) and the manifest folder
    Create(BackupCreateArgs),
    /// Verify an archive whole, show what it replaces, then restore it
    Restore(BackupRestoreArgs),
    /// List the archives in the backup folder
    List(BackupListArgs),
    /// Delete archives the keep rules do not keep
    Prune(BackupPruneArgs),
}

#[derive(Debug, Clone, Args)]
pub struct BackupPassphrase {
    /// Read the passphrase from this file [default: TOMO_MASTER_PASSWORD]
    #[arg(long, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct BackupCreateArgs {
    /// The archive to write [default: <time>.tomo-backup in the backup folder: Settings.backup.target, else <data>/backups]
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Add this app's data (named volumes, bind folders) to the archive (repeatable)
    #[arg(long = "app", value_name = "APP")]
    pub apps: Vec<String>,
    /// Add every declared app's data to the archive
    #[arg(long, conflicts_with = "apps")]
    pub all_apps: bool,
    /// How app data is kept consistent: stop (the app is stopped during the copy) or live, over each app's own `backup.mode` [default: the app's `backup.mode`, else live]
    #[arg(long, value_name = "MODE", value_parser = ["stop", "live"])]
    pub mode: Option<String>,
    #[command(flatten)]
    pub passphrase: BackupPassphrase,
    /// Print the result as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Args)]
pub struct BackupRestoreArgs {
    /// The archive (`server:NAME:/PATH` for one in a server's folder)
    pub file: PathBuf,
    /// Restore only this part: store, vault, manifests or app:APP (repeatable)
    #[arg(long, value_name = "PART")]
    pub only: Vec<String>,
    /// Put restored app data on this declared server instead of the one it came from
    #[arg(long, value_name = "SERVER")]
    pub to_server: Option<String>,
    /// Verify and show what would be replaced; change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Restore without asking
    #[arg(long, short = 'y')]
    pub yes: bool,
    #[command(flatten)]
    pub passphrase: BackupPassphrase,
    /// Print the plan and result as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct BackupListArgs {
    /// The backup folder (`server:NAME:/DIR` for a server's) [default: Settings.backup.target, else <data>/backups]
    #[arg(long, value_name = "DIR")]
    pub folder: Option<PathBuf>,
    /// Read every archive back whole (needs the passphrase)
    #[arg(long)]
    pub verify: bool,
    #[command(flatten)]
    pub passphrase: BackupPassphrase,
    /// Print the list as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct BackupPruneArgs {
    /// The backup folder (`server:NAME:/DIR` for a server's) [default: Settings.backup.target, else <data>/backups]
    #[arg(long, value_name = "DIR")]
    pub folder: Option<PathBuf>,
    /// Keep the newest N archives
    #[arg(long, default_value_t = 0)]
    pub keep_last: u32,
    /// Keep the newest archive of each of the last N days that have one
    #[arg(long, default_value_t = 0)]
    pub keep_daily: u32,
    /// Keep the newest archive of each of the last N weeks that have one
    #[arg(long, default_value_t = 0)]
    pub keep_weekly: u32,
    /// Keep the newest archive of each of the last N months that have one
    #[arg(long, default_value_t = 0)]
    pub keep_monthly: u32,
}
