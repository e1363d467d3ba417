//! The crate's error type: one variant per cause, context kept as typed
//! fields. Front ends render it once (`cli::render`, `mcp::output`);
//! `Error::exit_code` is the one map from causes to exit codes. Problems in
//! user input are `Diagnostics` (carried by `Error::Invalid`). Nothing
//! matches on an error's text: callers match on variants.
//!
//! Exit codes: 0 success; 1 a failure (I/O, a server, Docker, manifests, a
//! stale plan, a lock, a refusal); 2 a bad argument (`Usage`, and a name
//! given on the command line that does not exist, `NotFound`); 3 the store
//! needs a human (lost, missing, emptied, or made for a fleet another store
//! managed).

use std::fmt;
use std::sync::Arc;

use crate::config::ConfigError;
use crate::diag::Diagnostics;
use crate::manifest::ReadError;
use crate::store::StoreError;
use crate::transport::docker::DockerError;
use crate::transport::ssh::SshError;
use crate::vault::VaultError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Manifests(#[from] ReadError),
    /// The manifests have errors; nothing was done.
    #[error("the manifests have {} error(s); nothing was changed", .0.error_count())]
    Invalid(Diagnostics),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Vault(#[from] VaultError),
    /// A bad argument: which one, what was given and what would be valid.
    #[error(transparent)]
    Usage(#[from] Usage),
    /// Something named in the arguments does not exist.
    #[error(transparent)]
    NotFound(#[from] NotFound),
    /// Reading, writing, listening on or watching `path` failed.
    #[error("cannot {op} `{path}`: {source}")]
    Io { op: IoOp, path: String, source: std::io::Error },
    /// The async runtime could not be built (threads, file descriptors).
    #[error("cannot start the async runtime: {0}")]
    Runtime(#[source] std::io::Error),
    #[error(transparent)]
    Plan(#[from] crate::plan::PlanError),
    /// A saved plan, prepared change or proposal no longer matches the
    /// manifests or the servers; nothing was changed.
    #[error(transparent)]
    StalePlan(#[from] Stale),
    /// The apply lock is held by another process.
    #[error(transparent)]
    Lock(#[from] crate::apply::lock::LockError),
    /// Authentication failed.
    #[error(transparent)]
    Denied(#[from] Denied),
    /// Logins for this user or address are locked for a while after failures.
    #[error(transparent)]
    Locked(#[from] Locked),
    /// A proposal could not be decided or applied as asked.
    #[error(transparent)]
    Proposal(#[from] ProposalError),
    /// `--reinit` cannot tell which installation to adopt; nothing was changed.
    #[error(transparent)]
    Reinit(#[from] ReinitError),
    /// A server could not be reached or refused us.
    #[error("server `{server}`: {source}")]
    Transport { server: String, source: ConnectError },
    /// A server's Docker Engine refused or failed a call.
    #[error("server `{server}`: {source}")]
    Docker { server: String, source: DockerError },
    /// A manifest's text cannot be edited as asked (its form is one the
    /// editor keeps its hands off); nothing was written.
    #[error("cannot edit {what}: {problem}")]
    Edit { what: String, problem: String },
    /// An app's data could not be copied out of or into its server.
    #[error("app `{app}` on server `{server}`: {problem}")]
    AppData { app: String, server: String, problem: String },
    /// The MCP client on standard input did not complete its handshake.
    #[error("the MCP client did not start a session: {0}")]
    Handshake(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A backup could not be written, read or restored.
    #[error(transparent)]
    Backup(#[from] crate::backup::BackupError),
}

/// What an I/O failure was doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoOp {
    Read,
    Write,
    Listen,
    Watch,
}

impl fmt::Display for IoOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IoOp::Read => "read",
            IoOp::Write => "write",
            IoOp::Listen => "listen on",
            IoOp::Watch => "watch",
        })
    }
}

/// A bad argument.
#[derive(Debug, thiserror::Error)]
pub enum Usage {
    /// The value given for `arg` is not valid (`value` is `None` where it
    /// must not be shown, e.g. a password).
    #[error("invalid {arg}{}: {problem}", value.as_ref().map(|v| format!(" `{v}`")).unwrap_or_default())]
    Invalid { arg: String, value: Option<String>, problem: String },
    /// Standard input is no terminal, so tomo cannot ask; `flag` says yes.
    #[error("standard input is not a terminal, so tomo cannot ask: {review}, then pass {flag}")]
    NeedsFlag { flag: &'static str, review: String },
    /// The plan is over a limit of the settings; `flag` applies it anyway.
    #[error("{why}; tomo changed nothing. Pass {flag} to apply it anyway")]
    OverLimit { flag: &'static str, why: String },
    /// What the arguments would create exists already.
    #[error("{what} already exists; {help}")]
    Exists { what: String, help: String },
    /// The request does not apply to what it names.
    #[error("{what}: {why}")]
    NotApplicable { what: String, why: String },
}

impl Usage {
    /// `arg`'s `value` is not valid because of `problem`.
    pub fn invalid(arg: impl Into<String>, value: impl Into<String>, problem: impl fmt::Display) -> Usage {
        Usage::Invalid { arg: arg.into(), value: Some(value.into()), problem: problem.to_string() }
    }
}

/// A kind of named thing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Noun {
    App,
    Server,
    Service,
    User,
    Secret,
    Proposal,
    Settings,
    /// A marketplace (app store).
    MarketStore,
    /// An app of a marketplace.
    MarketApp,
    /// A recorded release of an app (`tomo history`).
    Release,
}

impl fmt::Display for Noun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Noun::App => "app",
            Noun::Server => "server",
            Noun::Service => "service",
            Noun::User => "user",
            Noun::Secret => "secret",
            Noun::Proposal => "proposal",
            Noun::Settings => "settings",
            Noun::MarketStore => "store",
            Noun::MarketApp => "app",
            Noun::Release => "release",
        })
    }
}

/// A name that names nothing, with what would.
#[derive(Debug, thiserror::Error)]
#[error("there is no {kind} `{name}`{}{known}", within.as_ref().map(|w| format!(" in {w}")).unwrap_or_default())]
pub struct NotFound {
    pub kind: Noun,
    pub name: String,
    /// Where it was looked for, when not the whole fleet (e.g. "app `web`").
    pub within: Option<String>,
    pub known: Known,
}

impl NotFound {
    pub fn new(kind: Noun, name: impl Into<String>, known: Known) -> NotFound {
        NotFound { kind, name: name.into(), within: None, known }
    }

    /// `name` among the `known` names of `kind`: a suggestion when one is
    /// close, else the list (`label: a, b`).
    pub fn among<'a>(
        kind: Noun,
        name: &str,
        label: &'static str,
        known: impl IntoIterator<Item = &'a str>,
    ) -> NotFound {
        let known: Vec<&str> = known.into_iter().collect();
        let known = match crate::diag::did_you_mean(name, known.iter().copied()) {
            Some(s) => Known::DidYouMean(s.to_string()),
            None => Known::List { label, names: known.into_iter().map(str::to_string).collect() },
        };
        NotFound::new(kind, name, known)
    }
}

/// What exists instead of a name that was not found.
#[derive(Debug)]
pub enum Known {
    DidYouMean(String),
    /// `label: a, b` (or `label: none`).
    List {
        label: &'static str,
        names: Vec<String>,
    },
    /// A hint where to look.
    Hint(&'static str),
    Nothing,
}

impl fmt::Display for Known {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Known::DidYouMean(s) => write!(f, "; did you mean `{s}`?"),
            Known::List { label, names } if names.is_empty() => write!(f, "; {label}: none"),
            Known::List { label, names } => write!(f, "; {label}: {}", names.join(", ")),
            Known::Hint(h) => write!(f, "; {h}"),
            Known::Nothing => Ok(()),
        }
    }
}

/// What changed under a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Changed {
    Manifests,
    Servers,
    Both,
}

impl fmt::Display for Changed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Changed::Manifests => "the manifests",
            Changed::Servers => "the servers",
            Changed::Both => "the manifests and the servers",
        })
    }
}

/// A plan, change or proposal made against a state that is gone.
#[derive(Debug, thiserror::Error)]
pub enum Stale {
    #[error("the plan file has format {found}, this tomo writes {expected}; run `tomo plan --out FILE` again")]
    Format { found: u32, expected: u32 },
    #[error(
        "{0} changed since this plan was made; nothing was applied. Run `tomo plan --out FILE` again and review it"
    )]
    Plan(Changed),
    /// A file changed between reading and editing it.
    #[error("`{path}` changed while it was being edited; try again")]
    Editing { path: String },
    /// A file changed since a change or proposal was prepared.
    #[error("`{path}` changed since this change was prepared; nothing was written. Make the change again")]
    File { path: String },
    #[error("the manifests no longer accept this proposal ({0}); nothing was written")]
    NotAccepted(Box<Error>),
    #[error(
        "{what} changed since proposal `{id}` was made, so its plan is stale; nothing was written or applied. \
         Reject it and propose the change again to get a fresh plan"
    )]
    Proposal { id: String, what: Changed },
    /// The archive of a restore proposal is gone or another.
    #[error(
        "the archive `{location}` is not the one restore proposal `{id}` was made with ({why}); nothing was restored. \
         Reject it and propose the restore again"
    )]
    Archive { id: String, location: String, why: String },
}

/// A refused login.
#[derive(Debug, thiserror::Error)]
pub enum Denied {
    #[error("wrong user name or password")]
    Login,
}

/// Logins refused for a while.
#[derive(Debug, thiserror::Error)]
pub enum Locked {
    #[error("too many logins at once: try again in a second")]
    Busy,
    #[error("too many failed logins: try again in {seconds} seconds")]
    Failures { seconds: i64 },
}

/// A proposal that cannot be decided as asked.
#[derive(Debug, thiserror::Error)]
pub enum ProposalError {
    #[error("proposal `{id}` is damaged: {source}")]
    Damaged { id: String, source: serde_json::Error },
    #[error("proposal `{id}` has no usable plan: {source}")]
    NoPlan { id: String, source: serde_json::Error },
    #[error("proposal `{id}` is {status}, not pending; nothing was done")]
    NotPending { id: String, status: crate::store::ProposalStatus },
    /// A restore proposal restored some parts, then failed on another.
    #[error("proposal `{id}`: {done} restored first; then {failed}: {source}")]
    PartlyDone { id: String, done: String, failed: String, source: Box<Error> },
}

/// Why `--reinit` cannot choose the installation to adopt.
#[derive(Debug, thiserror::Error)]
pub enum ReinitError {
    #[error(
        "the fleet's containers carry {} installation ids, so `--reinit` cannot tell which one this store was; nothing was changed:\n{}\n  Restore the store from a backup, or remove the containers of the installation that is not this one.",
        .ids.len(),
        .ids.iter().map(|(id, cs)| format!("  {id}: {}", cs.join(", "))).collect::<Vec<_>>().join("\n")
    )]
    SeveralIds { ids: std::collections::BTreeMap<String, Vec<String>> },
    #[error(
        "`--reinit` must see every declared server to adopt the right installation, and these were not reached; nothing was changed:\n{}",
        .servers.iter().map(|(s, why)| format!("  {s}: {why}")).collect::<Vec<_>>().join("\n")
    )]
    Unreached { servers: Vec<(String, ConnectError)> },
}

/// Why a server's Docker Engine could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// Without the store tomo cannot tell its own objects.
    #[error("the store is not available: {0}")]
    Store(Arc<Error>),
    #[error(
        "the host key of {address} is not trusted yet; check it and run `tomo server trust {server}` (or pin `host_key:` in its manifest)"
    )]
    Untrusted { server: String, address: String },
    #[error(
        "it pins a different host key ({pinned}) in {file}; if the server was reinstalled, update `host_key:` there"
    )]
    PinDiffers { pinned: String, file: String },
    /// The secret its login uses cannot be revealed.
    #[error("{0}")]
    Credential(String),
    #[error(transparent)]
    Ssh(#[from] SshError),
    #[error(transparent)]
    Docker(#[from] DockerError),
    #[error(transparent)]
    Overdue(#[from] crate::observe::Overdue),
}

impl Error {
    /// Reading `path` failed.
    pub fn read(path: impl fmt::Display, source: std::io::Error) -> Error {
        Error::Io { op: IoOp::Read, path: path.to_string(), source }
    }

    /// Writing `path` failed.
    pub fn write(path: impl fmt::Display, source: std::io::Error) -> Error {
        Error::Io { op: IoOp::Write, path: path.to_string(), source }
    }

    /// The process exit code of this error: the one map from causes to
    /// codes (see the module's documentation). Every variant is named, so a
    /// new one must be given its code here.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_) | Error::NotFound(_) => 2,
            e if e.store_needs_recovery() => 3,
            Error::Config(_)
            | Error::Manifests(_)
            | Error::Invalid(_)
            | Error::Store(_)
            | Error::Vault(_)
            | Error::Io { .. }
            | Error::Runtime(_)
            | Error::Plan(_)
            | Error::StalePlan(_)
            | Error::Lock(_)
            | Error::Denied(_)
            | Error::Locked(_)
            | Error::Proposal(_)
            | Error::Reinit(_)
            | Error::Transport { .. }
            | Error::Docker { .. }
            | Error::Edit { .. }
            | Error::AppData { .. }
            | Error::Handshake(_)
            | Error::Backup(_) => 1,
        }
    }

    /// The store file was deleted or replaced under this process, or a store
    /// just made found the fleet another, lost store managed: a daemon stops
    /// rather than go on.
    pub fn is_store_lost(&self) -> bool {
        matches!(self, Error::Store(StoreError::Lost { .. } | StoreError::Orphaned { .. }))
    }

    /// The store is not there as the data folder had it (lost under this
    /// process, missing, emptied, or the whole folder gone while the fleet
    /// runs): a human restores it or runs `--reinit`.
    pub fn store_needs_recovery(&self) -> bool {
        matches!(
            self,
            Error::Store(
                StoreError::Lost { .. }
                    | StoreError::Missing { .. }
                    | StoreError::Empty { .. }
                    | StoreError::Orphaned { .. }
            )
        )
    }

    /// The diagnostics to show with this error, if any.
    pub fn diagnostics(&self) -> Option<&Diagnostics> {
        match self {
            Error::Invalid(d) | Error::Config(ConfigError::Invalid { diagnostics: d, .. }) => Some(d),
            _ => None,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    fn io() -> std::io::Error {
        std::io::Error::other("x")
    }

    /// Every variant's exit code: 2 only for bad arguments (and names given
    /// that do not exist), 3 for a store that needs a human, 1 otherwise.
    #[test]
    fn each_variant_has_its_exit_code() {
        let json_err = || serde_json::from_str::<u8>("x").unwrap_err();
        let cases: Vec<(Error, i32)> = vec![
            (ConfigError::Missing("tomo.yaml".into()).into(), 1),
            (Error::Invalid(Diagnostics::default()), 1),
            (StoreError::Lost { path: "d/tomo.db".into(), how: "deleted" }.into(), 3),
            (StoreError::Missing { dir: "d".into(), path: "d/tomo.db".into(), previous: None }.into(), 3),
            (StoreError::Empty { path: "d/tomo.db".into(), previous: None }.into(), 3),
            (VaultError::NoPassword.into(), 1),
            (Usage::invalid("--ttl", "1x", "not a duration").into(), 2),
            (Usage::NeedsFlag { flag: "--yes", review: "review it".into() }.into(), 2),
            (Usage::Exists { what: "user `a`".into(), help: "pick another".into() }.into(), 2),
            (Usage::NotApplicable { what: "`--reinit`".into(), why: "the store is there".into() }.into(), 2),
            (NotFound::among(Noun::App, "wbe", "declared", ["web"]).into(), 2),
            (Error::read("a.yaml", io()), 1),
            (Error::write("a.yaml", io()), 1),
            (Error::Io { op: IoOp::Listen, path: "127.0.0.1:80".into(), source: io() }, 1),
            (Error::Io { op: IoOp::Watch, path: "state".into(), source: io() }, 1),
            (Error::Runtime(io()), 1),
            (Stale::Plan(Changed::Servers).into(), 1),
            (Stale::Format { found: 0, expected: 1 }.into(), 1),
            (Denied::Login.into(), 1),
            (Locked::Busy.into(), 1),
            (ProposalError::NotPending { id: "p1".into(), status: crate::store::ProposalStatus::Applied }.into(), 1),
            (ProposalError::Damaged { id: "p1".into(), source: json_err() }.into(), 1),
            (ReinitError::SeveralIds { ids: Default::default() }.into(), 1),
            (Error::Transport { server: "h".into(), source: ConnectError::Credential("no vault".into()) }, 1),
            (
                Error::Docker {
                    server: "h".into(),
                    source: DockerError::Api { op: "start".into(), detail: "no".into(), status: Some(404) },
                },
                1,
            ),
            (Error::Edit { what: "`a.yaml`".into(), problem: "anchors".into() }, 1),
            (Error::Handshake("closed".into()), 1),
            (crate::apply::lock::LockError::Held { path: "d/lock".into(), holder: "pid 1".into() }.into(), 1),
        ];
        for (e, code) in cases {
            assert_eq!(e.exit_code(), code, "{e:?}");
        }
    }

    #[test]
    fn not_found_suggests_or_lists() {
        let e = NotFound::among(Noun::App, "shopp", "declared", ["shop", "db"]);
        assert_eq!(e.to_string(), "there is no app `shopp`; did you mean `shop`?");
        let e = NotFound::among(Noun::Server, "zzz", "declared", ["a", "b"]);
        assert_eq!(e.to_string(), "there is no server `zzz`; declared: a, b");
        let e = NotFound::among(Noun::User, "x", "users", []);
        assert_eq!(e.to_string(), "there is no user `x`; users: none");
    }
}
