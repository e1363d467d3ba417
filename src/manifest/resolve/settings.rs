//! Settings and Marketplace documents: the fleet-wide settings (parallelism,
//! timeouts, watch, approval, the network pool) and the git repositories
//! apps are offered from.

use std::sync::Arc;

use super::{At, Resolver};
use crate::diag::{Diagnostic, FieldPath, SourceFile};
use crate::manifest::raw;
use crate::model::backup::{self, BackupApps, BackupSchedule, Every, KeepRules};
use crate::model::subnet::{NetworkPool, Subnet};
use crate::model::*;

impl<'a> Resolver<'a> {
    pub(super) fn settings(&mut self, at: At<'a>, rel: &str, s: &raw::RawSettings) -> Option<Settings> {
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
        let max_downtime = self.duration(
            at,
            &root.key("rollout").key("max_downtime"),
            s.rollout.as_ref().and_then(|r| r.max_downtime.as_ref()),
        );
        let verify_path = root.key("rollout").key("verify");
        let verify = self.duration(at, &verify_path, s.rollout.as_ref().and_then(|r| r.verify.as_ref()));
        if let Some(v) = verify
            && v.as_millis() > health_timeout.unwrap_or(d.health_timeout).as_millis()
        {
            self.push(
                Diagnostic::warning("verify-over-health-timeout", "`rollout.verify` is longer than `health_timeout`")
                    .at(at.file, at.span(&verify_path))
                    .field(verify_path.clone())
                    .help("an apply waits for both; keep verify within health_timeout"),
            );
        }
        let network_pool = self.network_pool(at, s.networks.as_ref());
        let market_defaults = self.market_defaults(at, s.marketplace.as_ref().and_then(|m| m.defaults.as_ref()));
        let metrics = self.metrics_settings(at, s.metrics.as_ref());
        let backup = s.backup.as_ref().and_then(|b| self.backup_schedule(at, b));
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
            market_defaults,
            metrics,
            max_downtime,
            verify: verify.filter(|v| v.as_millis() > 0),
            backup,
            rollout_strategy: s.rollout.as_ref().and_then(|r| r.strategy).unwrap_or_default(),
            on_failure: s.rollout.as_ref().and_then(|r| r.on_failure).unwrap_or_default(),
            origin: Some(at.origin(rel)),
        })
    }

    fn backup_schedule(&mut self, at: At<'a>, b: &raw::RawBackupSettings) -> Option<BackupSchedule> {
        let path = FieldPath::root().key("backup");
        let before = self.diags.error_count();
        let every = if b.schedule.trim().starts_with("daily") {
            let at_time = backup::parse_daily(&b.schedule);
            if at_time.is_none() {
                self.push(
                    at.err(
                        &path.key("schedule"),
                        "invalid-schedule",
                        format!("`{}` is not a schedule", b.schedule.escape_default()),
                    )
                    .help("write `daily HH:MM` (UTC, e.g. `daily 03:00`) or an interval (e.g. `6h`)"),
                );
            }
            at_time.map(Every::Daily)
        } else {
            let d = self.duration(at, &path.key("schedule"), Some(&b.schedule));
            if d.is_some_and(|d| d.as_millis() < 1000) {
                self.push(
                    at.err(&path.key("schedule"), "out-of-range", "a backup interval must be at least 1s")
                        .help("e.g. `6h`, or `daily 03:00`"),
                );
            }
            d.map(Every::Interval)
        };
        let target = b.target.as_ref();
        let server_path = path.key("target").key("server");
        let server = target.and_then(|t| t.server.as_ref()).and_then(|s| self.name(at, &server_path, s));
        if let Some(n) = &server {
            self.server_refs.push(super::ServerRef { name: n.clone(), at, path: server_path });
        }
        let folder = target.map(|t| t.path.clone());
        if let Some(f) = &folder
            && (!f.starts_with('/') || f.chars().any(|c| c.is_control()))
        {
            self.push(
                at.err(
                    &path.key("target").key("path"),
                    "invalid-path",
                    format!("`{}` is not an absolute folder", f.escape_default()),
                )
                .help("e.g. `/var/backups/tomo`"),
            );
        }
        let k = b.keep.clone().unwrap_or_default();
        let keep = KeepRules {
            last: k.last.unwrap_or(0),
            daily: k.daily.unwrap_or(0),
            weekly: k.weekly.unwrap_or(0),
            monthly: k.monthly.unwrap_or(0),
        };
        if b.keep.is_some() && keep.is_none() {
            self.push(
                at.err(&path.key("keep"), "invalid-value", "keep rules that keep nothing")
                    .help("set at least one of `last`, `daily`, `weekly`, `monthly` above 0, or leave `keep` out to keep every archive"),
            );
        }
        let apps = match &b.apps {
            None => BackupApps::None,
            Some(raw::RawBackupApps::Word(raw::RawAllApps::All)) => BackupApps::All,
            Some(raw::RawBackupApps::List(list)) => BackupApps::List(
                list.iter().enumerate().filter_map(|(i, a)| self.name(at, &path.key("apps").index(i), a)).collect(),
            ),
        };
        (self.diags.error_count() == before).then_some(BackupSchedule {
            every: every?,
            path: folder,
            server: server.map(|n| n.to_string()),
            keep,
            apps,
            mode: b.mode,
        })
    }

    /// Each app `Settings.backup.apps` names is declared.
    pub(super) fn check_backup_apps(&mut self, settings: &Settings, at: Option<At<'a>>, declared: &[String]) {
        let (Some(at), Some(BackupApps::List(list))) = (at, settings.backup.as_ref().map(|b| &b.apps)) else {
            return;
        };
        for (i, a) in list.iter().enumerate() {
            if !declared.iter().any(|d| d == a.as_str()) {
                let p = FieldPath::root().key("backup").key("apps").index(i);
                self.push(
                    at.err(&p, "unknown-app", format!("no app `{a}` is declared"))
                        .help("name declared apps, or write `apps: all`"),
                );
            }
        }
    }

    fn market_defaults(&mut self, at: At<'a>, m: Option<&raw::RawMarketDefaults>) -> MarketDefaults {
        let d = MarketDefaults::default();
        let Some(m) = m else { return d };
        let path = FieldPath::root().key("marketplace").key("defaults");
        let data_root = m.data_root.clone().unwrap_or(d.data_root);
        let root_ok = data_root.starts_with('/')
            && !data_root.split('/').any(|c| c == "..")
            && !data_root.chars().any(|c| c.is_control());
        if !root_ok {
            self.push(
                at.err(
                    &path.key("data_root"),
                    "invalid-path",
                    format!("`{}` is not an absolute folder", data_root.escape_default()),
                )
                .help("e.g. `/srv/tomo/apps`"),
            );
        }
        let tz = m.tz.clone().unwrap_or(d.tz);
        if tz.is_empty() || tz.chars().any(|c| c.is_whitespace() || c.is_control() || c == '$') {
            self.push(
                at.err(&path.key("tz"), "invalid-value", format!("`{}` is not a time zone", tz.escape_default()))
                    .help("e.g. `Europe/Berlin` or `UTC`"),
            );
        }
        MarketDefaults {
            tz,
            puid: m.puid.unwrap_or(d.puid),
            pgid: m.pgid.unwrap_or(d.pgid),
            data_root: data_root.trim_end_matches('/').to_string(),
        }
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

    pub(super) fn marketplace(
        &mut self,
        at: At<'a>,
        rel: &str,
        name: Name,
        m: &raw::RawMarketplace,
    ) -> Option<Marketplace> {
        let root = FieldPath::root();
        let before = self.diags.error_count();
        let source = match (&m.url, &m.path) {
            (Some(url), None) => self.store_url(at, url).map(|url| StoreSource::Git { url }),
            (None, Some(path)) => self.store_path(at, path).map(|path| StoreSource::Path { path }),
            (url, _) => {
                let (path, msg) = match url {
                    Some(_) => (root.key("path"), "give either `url` or `path`, not both"),
                    None => (root.clone(), "a Marketplace needs `url` (a git repository) or `path` (a local folder)"),
                };
                self.push(
                    at.err(&path, "marketplace-source", msg)
                        .help("e.g. `url: https://github.com/IceWhaleTech/CasaOS-AppStore` or `path: /srv/my-store`"),
                );
                None
            }
        };
        let git_ref = m.git_ref.clone().unwrap_or_else(|| "main".into());
        if !valid_ref(&git_ref) {
            self.push(
                at.err(
                    &root.key("ref"),
                    "invalid-ref",
                    format!("`{}` is not a valid git ref", git_ref.escape_default()),
                )
                .help("a branch, tag or commit, e.g. `main` or `v1.2`"),
            );
        }
        let sync = self.duration(at, &root.key("sync"), m.sync.as_ref());
        if sync.is_some_and(|d| d.as_millis() < 60_000) {
            self.push(
                at.err(&root.key("sync"), "out-of-range", "a store is synced at most once a minute")
                    .help("e.g. `sync: 6h` (the default)"),
            );
        }
        let auth = m.auth.as_ref().and_then(|a| self.secret_ref(at, &root.key("auth").key("secret"), &a.secret));
        if m.auth.is_some() && matches!(source, Some(StoreSource::Path { .. })) {
            self.push(
                at.err(
                    &root.key("auth"),
                    "auth-without-url",
                    "`auth` is for fetching a git `url`; a `path` is read as it is",
                )
                .help("remove `auth`, or use `url`"),
            );
        }
        let source = source?;
        (self.diags.error_count() == before).then(|| Marketplace {
            name,
            source,
            git_ref,
            format: m.format.unwrap_or_default(),
            sync: sync.unwrap_or(MARKET_SYNC_DEFAULT),
            auth,
            origin: at.origin(rel),
        })
    }

    /// A store's git URL, checked: a known scheme (or `user@host:path`, or
    /// an absolute path), nothing git would read as an option, no
    /// whitespace, and no credentials (the message never repeats them, and
    /// the source line shown with it has them masked).
    fn store_url(&mut self, at: At<'a>, url: &str) -> Option<String> {
        let path = FieldPath::root().key("url");
        let trimmed = url.trim();
        if let Some(secret) = url_credentials(trimmed) {
            let masked = Arc::new(SourceFile { path: at.file.path.clone(), text: at.file.text.replace(secret, "***") });
            self.push(
                Diagnostic::error("url-credentials", "the store URL holds credentials; tomo does not keep them in manifests")
                    .at(&masked, at.span(&path))
                    .field(path.clone())
                    .help("remove them from the URL, store the token or key in the vault (`tomo secret set NAME`) and write `auth: {secret: NAME}`"),
            );
            return None;
        }
        let scheme_ok = ["https://", "http://", "ssh://", "git://", "file://"].iter().any(|p| trimmed.starts_with(p))
            || trimmed.starts_with('/')
            || trimmed.split_once(':').is_some_and(|(h, _)| h.contains('@') && !h.contains('/'));
        let host_is_option = trimmed.split_once("://").is_some_and(|(_, rest)| rest.starts_with('-'));
        if !scheme_ok
            || host_is_option
            || trimmed.starts_with('-')
            || trimmed.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            self.push(
                at.err(&path, "invalid-url", format!("`{}` is not a git repository URL", trimmed.escape_default()))
                    .help("write an https://, ssh:// or git@host:path URL, or an absolute path"),
            );
            return None;
        }
        Some(trimmed.to_string())
    }

    /// A store's local folder: not empty, not an option, no control characters.
    fn store_path(&mut self, at: At<'a>, p: &str) -> Option<String> {
        if p.trim().is_empty() || p.starts_with('-') || p.chars().any(char::is_control) {
            self.push(
                at.err(
                    &FieldPath::root().key("path"),
                    "invalid-path",
                    format!("`{}` is not a folder path", p.escape_default()),
                )
                .help("an absolute path, or one relative to the manifest folder, e.g. `stores/mine`"),
            );
            return None;
        }
        Some(p.to_string())
    }
}

/// Whether `r` may be passed to git as a ref.
fn valid_ref(r: &str) -> bool {
    !(r.is_empty()
        || r.starts_with('-')
        || r.contains("..")
        || r.chars().any(|c| c.is_whitespace() || c.is_control() || "~^:?*[\\".contains(c)))
}

/// The `user:password@` (or `token@`) part of a URL's authority, if any.
/// `ssh://git@host` and `git@host:path` name a user only, which is no secret.
pub fn url_credentials(url: &str) -> Option<&str> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = &rest[..rest.find('/').unwrap_or(rest.len())];
    let at = authority.rfind('@')?;
    let userinfo = &authority[..at];
    let ssh = scheme.eq_ignore_ascii_case("ssh") || scheme.ends_with("+ssh");
    (userinfo.contains(':') || !ssh).then_some(userinfo).filter(|u| !u.is_empty())
}
