//! Resource subscriptions and the notifications they bring, over both
//! protocol generations rmcp speaks:
//! - 2025-11-25 (stdio, HTTP sessions): `resources/subscribe` and
//!   `resources/unsubscribe` per session; `notifications/resources/updated`
//!   and `notifications/resources/list_changed` go to the session's peer
//!   (over HTTP, its standalone GET stream). A session is registered at
//!   `notifications/initialized` (for `list_changed`) and forgotten when it
//!   ends (`sessions.rs` tells), or, over stdio, when its peer is closed.
//! - 2026-07-28 (stateless HTTP): one `subscriptions/listen` request per
//!   subscriber, whose filter names the URIs and `resourcesListChanged`;
//!   notifications go down that request's stream, which ends the subscription.
//!
//! One monitor task per server (started at the first subscriber) notices:
//! manifest files changing (the engine's folder watch, debounced) → the file,
//! the apps declared in it and `tomo://status` are updated, files added or
//! removed → `list_changed`; proposals changing status (checked every second
//! while one is subscribed, and right after every tool call); and, every
//! `mcp.drift_interval`, the containers of the subscribed apps (all apps
//! when `tomo://status` is subscribed) compared with the last look.
//!
//! **Invariants:** a subscriber costs one map entry (its sink and URIs); a
//! slow or gone client never holds the monitor (each delivery is its own
//! task, bounded by `SEND_TIMEOUT`); nothing is sent to a client for a
//! resource it did not subscribe to.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use rmcp::model::ResourceUpdatedNotificationParam;
use rmcp::service::SubscriptionSink;
use rmcp::{Peer, RoleServer};
use tokio::sync::{Notify, mpsc};

use super::off_workers;
use super::resources::{self, Target};
use crate::engine::{Engine, FolderWatch, ManifestSnapshot};

/// How long one delivery to one client may take before it is dropped.
const SEND_TIMEOUT: Duration = Duration::from_secs(5);
/// Quiet time after a file event before the manifests are read again.
const DEBOUNCE: Duration = Duration::from_millis(50);
/// How often subscribed proposals are checked (they change in this process
/// or another: `tomo proposal approve`).
const PROPOSAL_EVERY: Duration = Duration::from_secs(1);

/// Who subscribes: a session (its id over HTTP, `stdio`) or one
/// `subscriptions/listen` request.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Key {
    Session(String),
    Listen(u64),
}

#[derive(Clone)]
enum Sink {
    Peer(Peer<RoleServer>),
    Listen(SubscriptionSink),
}

impl Sink {
    fn closed(&self) -> bool {
        match self {
            Sink::Peer(p) => p.is_transport_closed(),
            Sink::Listen(_) => false,
        }
    }

    async fn send(&self, updated: &[String], list_changed: bool) -> bool {
        for uri in updated {
            let sent = match self {
                Sink::Peer(p) => {
                    p.notify_resource_updated(ResourceUpdatedNotificationParam::new(uri.clone())).await.is_ok()
                }
                Sink::Listen(s) => s.notify_resource_updated(uri.clone()).await.is_ok(),
            };
            if !sent {
                return false;
            }
        }
        if list_changed {
            return match self {
                Sink::Peer(p) => p.notify_resource_list_changed().await.is_ok(),
                Sink::Listen(s) => s.notify_resource_list_changed().await.is_ok(),
            };
        }
        true
    }
}

struct Subscriber {
    sink: Sink,
    uris: BTreeSet<String>,
    list_changed: bool,
}

/// What the monitor last saw.
#[derive(Default)]
struct Seen {
    manifests: Option<ManifestSnapshot>,
    /// App → live fingerprint.
    live: BTreeMap<String, String>,
    /// Proposal id → status.
    proposals: BTreeMap<String, String>,
}

/// The subscribers of one server and what was last seen of what they watch.
pub struct Hub {
    engine: Arc<Engine>,
    subs: Mutex<HashMap<Key, Subscriber>>,
    seen: Mutex<Seen>,
    next: AtomicU64,
    started: OnceLock<()>,
    poke: Notify,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Hub {
    pub fn new(engine: Arc<Engine>) -> Arc<Hub> {
        Arc::new(Hub {
            engine,
            subs: Mutex::default(),
            seen: Mutex::default(),
            next: AtomicU64::new(1),
            started: OnceLock::new(),
            poke: Notify::new(),
        })
    }

    /// Starts the monitor once (within a Tokio runtime), the folder watch
    /// before returning: a change right after a subscription is seen.
    fn start(self: &Arc<Self>) {
        if self.started.set(()).is_err() {
            return;
        }
        let (tx, rx) = mpsc::unbounded_channel::<()>();
        let dir = self.engine.config().manifests.clone();
        let watch = crate::engine::watch_folder(&dir, move || {
            let _ = tx.send(());
        })
        .inspect_err(|e| tracing::warn!("resource subscriptions will not see manifest changes: {e}"))
        .ok();
        tokio::spawn(monitor(self.clone(), rx, watch));
    }

    /// A session that finished its handshake: it hears `list_changed`.
    pub fn register_session(self: &Arc<Self>, key: Key, peer: Peer<RoleServer>) {
        lock(&self.subs).entry(key).or_insert(Subscriber {
            sink: Sink::Peer(peer),
            uris: BTreeSet::new(),
            list_changed: true,
        });
        self.start();
    }

    /// `resources/subscribe` of a session (the resource exists: checked before).
    pub async fn subscribe(self: &Arc<Self>, key: Key, peer: Peer<RoleServer>, uri: String) {
        self.baseline(std::slice::from_ref(&uri)).await;
        lock(&self.subs)
            .entry(key)
            .or_insert(Subscriber { sink: Sink::Peer(peer), uris: BTreeSet::new(), list_changed: true })
            .uris
            .insert(uri);
        self.start();
    }

    /// `resources/unsubscribe`: a URI not subscribed is no error.
    pub fn unsubscribe(&self, key: &Key, uri: &str) {
        if let Some(s) = lock(&self.subs).get_mut(key) {
            s.uris.remove(uri);
        }
    }

    /// A `subscriptions/listen` request: its key, to `end` when it ends.
    pub async fn listen(self: &Arc<Self>, sink: SubscriptionSink, uris: Vec<String>, list_changed: bool) -> Key {
        self.baseline(&uris).await;
        let key = Key::Listen(self.next.fetch_add(1, Ordering::Relaxed));
        let sub = Subscriber { sink: Sink::Listen(sink), uris: uris.into_iter().collect(), list_changed };
        lock(&self.subs).insert(key.clone(), sub);
        self.start();
        key
    }

    /// A session or listen request ended: its subscriptions with it.
    pub fn end(&self, key: &Key) {
        lock(&self.subs).remove(key);
    }

    /// Something may have changed a proposal (a tool call ended).
    pub fn poke(&self) {
        if self.started.get().is_some() {
            self.poke.notify_one();
        }
    }

    /// The subscribed URIs, across subscribers.
    fn subscribed(&self) -> BTreeSet<String> {
        lock(&self.subs).values().flat_map(|s| s.uris.iter().cloned()).collect()
    }

    /// Records what the resources of `uris` are now, so that a change right
    /// after subscribing is noticed (not taken for the first look).
    async fn baseline(self: &Arc<Self>, uris: &[String]) {
        if lock(&self.seen).manifests.is_none() {
            let engine = self.engine.clone();
            if let Some(Ok(snap)) = off_workers(async move { engine.manifest_snapshot() }).await {
                lock(&self.seen).manifests.get_or_insert(snap);
            }
        }
        let mut apps = Vec::new();
        let mut ids = Vec::new();
        for uri in uris {
            match Target::parse(uri) {
                Some(Target::App(a)) => apps.push(a),
                Some(Target::Status) => apps.extend(self.declared_apps().await),
                Some(Target::Proposal(id)) => ids.push(id),
                _ => {}
            }
        }
        if !apps.is_empty() {
            let live = self.live(apps).await;
            lock(&self.seen).live.extend(live);
        }
        if !ids.is_empty() {
            let engine = self.engine.clone();
            let states = off_workers(async move { engine.proposal_states(&ids) }).await;
            if let Some(Ok(states)) = states {
                lock(&self.seen).proposals.extend(states);
            }
        }
    }

    async fn declared_apps(&self) -> Vec<String> {
        let engine = self.engine.clone();
        let snap = off_workers(async move { engine.manifest_snapshot() }).await;
        snap.and_then(Result::ok).map(|s| s.apps.into_keys().collect()).unwrap_or_default()
    }

    /// The live fingerprints of `apps` (none when the servers could not be asked).
    async fn live(&self, apps: Vec<String>) -> BTreeMap<String, String> {
        let engine = self.engine.clone();
        match off_workers(async move { engine.live_snapshot(&apps).await }).await {
            Some(Ok(s)) => s.apps,
            Some(Err(e)) => {
                tracing::debug!("drift check: {e}");
                BTreeMap::new()
            }
            None => BTreeMap::new(),
        }
    }

    /// Sends `updated` (each to its subscribers) and `list_changed` (to
    /// those who want it), one task per subscriber; forgets closed peers.
    fn deliver(&self, updated: &BTreeSet<String>, list_changed: bool) {
        if updated.is_empty() && !list_changed {
            return;
        }
        let mut subs = lock(&self.subs);
        subs.retain(|_, s| !s.sink.closed());
        for s in subs.values() {
            let mine: Vec<String> = updated.iter().filter(|u| s.uris.contains(*u)).cloned().collect();
            let lc = list_changed && s.list_changed;
            if mine.is_empty() && !lc {
                continue;
            }
            let sink = s.sink.clone();
            tokio::spawn(async move {
                if !matches!(tokio::time::timeout(SEND_TIMEOUT, sink.send(&mine, lc)).await, Ok(true)) {
                    tracing::debug!("a resource notification was not delivered");
                }
            });
        }
    }

    /// The manifests were read again: what changed, for whom.
    fn manifests_read(&self, new: ManifestSnapshot) {
        let old = lock(&self.seen).manifests.replace(new.clone());
        let Some(old) = old else { return };
        let (updated, list_changed) = manifest_changes(&old, &new);
        self.deliver(&updated, list_changed);
    }

    /// Compares the subscribed proposals' statuses with the last look.
    async fn check_proposals(&self) {
        let ids: Vec<String> = self
            .subscribed()
            .iter()
            .filter_map(|u| match Target::parse(u) {
                Some(Target::Proposal(id)) => Some(id),
                _ => None,
            })
            .collect();
        if ids.is_empty() {
            return;
        }
        let engine = self.engine.clone();
        let Some(Ok(now)) = off_workers(async move { engine.proposal_states(&ids) }).await else { return };
        let updated = {
            let mut seen = lock(&self.seen);
            let changed = changed_keys(&seen.proposals, &now);
            seen.proposals.extend(now);
            changed.into_iter().map(|id| format!("{}{id}", resources::PROPOSALS)).collect::<BTreeSet<_>>()
        };
        self.deliver(&updated, false);
    }

    /// Compares the subscribed apps' containers with the last look.
    async fn check_drift(&self) {
        let subscribed = self.subscribed();
        let status = subscribed.contains(resources::STATUS);
        let apps: Vec<String> = if status {
            self.declared_apps().await
        } else {
            subscribed
                .iter()
                .filter_map(|u| match Target::parse(u) {
                    Some(Target::App(a)) => Some(a),
                    _ => None,
                })
                .collect()
        };
        if apps.is_empty() {
            return;
        }
        let now = self.live(apps).await;
        let mut updated: BTreeSet<String> = {
            let mut seen = lock(&self.seen);
            let changed = changed_keys(&seen.live, &now);
            seen.live.extend(now);
            changed.into_iter().map(|a| format!("{}{a}", resources::APPS)).collect()
        };
        if status && !updated.is_empty() {
            updated.insert(resources::STATUS.to_string());
        }
        self.deliver(&updated, false);
    }
}

/// The subscriber key of a request or notification's session: the HTTP
/// session id, or `stdio` (one client per process there).
pub fn session_key(extensions: &rmcp::model::Extensions) -> Key {
    let sid = extensions
        .get::<::http::request::Parts>()
        .and_then(|p| p.headers.get("mcp-session-id"))
        .and_then(|v| v.to_str().ok());
    Key::Session(sid.unwrap_or("stdio").to_string())
}

/// The part of a `subscriptions/listen` filter this server honours: the
/// URIs that name an existing resource, and `resourcesListChanged`. A URI
/// that names nothing is left out of the acknowledged filter (the 2026-07-28
/// way of refusing it).
///
/// rmcp acknowledges the filter before `listen` runs, and a client may
/// change a manifest as soon as it has the acknowledgment: the manifests'
/// fingerprints are taken and the folder watched before that.
pub fn accepted_filter(hub: &Arc<Hub>, requested: &rmcp::model::SubscriptionFilter) -> rmcp::model::SubscriptionFilter {
    let engine = &hub.engine;
    if lock(&hub.seen).manifests.is_none()
        && let Ok(snap) = engine.manifest_snapshot()
    {
        lock(&hub.seen).manifests.get_or_insert(snap);
    }
    hub.start();
    let mut accepted = rmcp::model::SubscriptionFilter::builder();
    if requested.resources_list_changed == Some(true) {
        accepted = accepted.resources_list_changed();
    }
    let uris: Vec<String> = requested
        .resource_subscriptions
        .iter()
        .flatten()
        .filter(|u| resources::exists(engine, u).is_ok())
        .cloned()
        .collect();
    if !uris.is_empty() {
        accepted = accepted.resource_subscriptions(uris);
    }
    accepted.build()
}

/// The keys present in both maps whose values differ.
fn changed_keys(old: &BTreeMap<String, String>, new: &BTreeMap<String, String>) -> Vec<String> {
    new.iter().filter(|(k, v)| old.get(*k).is_some_and(|o| o != *v)).map(|(k, _)| k.clone()).collect()
}

/// The URIs a change of the manifests updates, and whether the list of
/// resources changed (a file added or removed).
fn manifest_changes(old: &ManifestSnapshot, new: &ManifestSnapshot) -> (BTreeSet<String>, bool) {
    let mut updated = BTreeSet::new();
    let files: BTreeSet<&String> = old.files.keys().chain(new.files.keys()).collect();
    let mut list_changed = false;
    for f in files {
        match (old.files.get(f), new.files.get(f)) {
            (Some(a), Some(b)) if a == b => continue,
            (Some(_), Some(_)) => {}
            _ => list_changed = true,
        }
        updated.insert(format!("{}{f}", resources::MANIFESTS));
    }
    let apps: BTreeSet<&String> = old.apps.keys().chain(new.apps.keys()).collect();
    for a in apps {
        if old.valid != new.valid || old.apps.get(a) != new.apps.get(a) {
            updated.insert(format!("{}{a}", resources::APPS));
        }
    }
    if !updated.is_empty() {
        updated.insert(resources::STATUS.to_string());
    }
    (updated, list_changed)
}

/// The one task that notices changes for every subscriber of this server.
async fn monitor(hub: Arc<Hub>, mut rx: mpsc::UnboundedReceiver<()>, _watch: Option<FolderWatch>) {
    let read = |hub: Arc<Hub>| async move {
        let engine = hub.engine.clone();
        if let Some(Ok(s)) = off_workers(async move { engine.manifest_snapshot() }).await {
            hub.manifests_read(s);
        }
    };
    read(hub.clone()).await;
    let drift_every = hub.engine.config().mcp_drift_interval.to_std().max(Duration::from_millis(50));
    let tick = drift_every.min(PROPOSAL_EVERY);
    let mut last_drift = Instant::now();
    loop {
        tokio::select! {
            Some(()) = rx.recv() => {
                tokio::time::sleep(DEBOUNCE).await;
                while rx.try_recv().is_ok() {}
                read(hub.clone()).await;
            }
            _ = hub.poke.notified() => hub.check_proposals().await,
            _ = tokio::time::sleep(tick) => {
                hub.check_proposals().await;
                if last_drift.elapsed() >= drift_every {
                    last_drift = Instant::now();
                    hub.check_drift().await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(files: &[(&str, &str)], apps: &[(&str, &str)], valid: bool) -> ManifestSnapshot {
        let m = |x: &[(&str, &str)]| x.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
        ManifestSnapshot { files: m(files), apps: m(apps), valid }
    }

    #[test]
    fn manifest_changes_name_files_apps_and_status() {
        let a = snap(&[("apps/web.yaml", "1"), ("apps/db.yaml", "1")], &[("web", "1"), ("db", "1")], true);
        let b = snap(&[("apps/web.yaml", "2"), ("apps/db.yaml", "1")], &[("web", "2"), ("db", "1")], true);
        let (u, lc) = manifest_changes(&a, &b);
        assert!(!lc);
        let u: Vec<&str> = u.iter().map(String::as_str).collect();
        assert_eq!(u, ["tomo://apps/web", "tomo://manifests/apps/web.yaml", "tomo://status"]);
        assert_eq!(manifest_changes(&a, &a), (BTreeSet::new(), false));
        let c = snap(&[("apps/web.yaml", "2")], &[("web", "2")], true);
        let (u, lc) = manifest_changes(&b, &c);
        assert!(lc && u.contains("tomo://manifests/apps/db.yaml") && u.contains("tomo://apps/db"));
        let broken = snap(&[("apps/web.yaml", "3")], &[], false);
        let (u, _) = manifest_changes(&c, &broken);
        assert!(u.contains("tomo://apps/web"));
    }

    #[test]
    fn only_changed_values_count() {
        let m = |x: &[(&str, &str)]| -> BTreeMap<String, String> {
            x.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
        };
        let old = m(&[("web", "1"), ("db", "1")]);
        let new = m(&[("web", "2"), ("db", "1"), ("new", "1")]);
        assert_eq!(changed_keys(&old, &new), ["web"]);
    }
}
