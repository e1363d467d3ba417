//! Settings and Marketplace documents: the fleet-wide settings (parallelism,
//! timeouts, watch, approval, the network pool) and the git repositories
//! apps are offered from.

use super::{At, Resolver};
use crate::diag::FieldPath;
use crate::manifest::raw;
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
        let network_pool = self.network_pool(at, s.networks.as_ref());
        let market_defaults = self.market_defaults(at, s.marketplace.as_ref().and_then(|m| m.defaults.as_ref()));
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
            origin: Some(at.origin(rel)),
        })
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
}
