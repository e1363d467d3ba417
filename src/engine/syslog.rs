//! tomo's own events into the store's `logs` table, besides stderr: a
//! `tracing` layer takes the `warn` and `error` events of tomo's modules, and
//! `record` the explicit ones (runs, daemon starts and stops, syncs, alerts,
//! purges). Neither ever waits: entries go through a bounded queue to one
//! writer thread that inserts them in batches once the engine has opened its
//! store; when the queue is full an entry is dropped and counted, and the
//! count is written as a warning with the next batch. Texts are those the
//! process log shows (Docker errors already masked by `redact`).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context;

use crate::model::logs::LogLevel;
use crate::store::{LogEntry, Store};

/// The target of `record`'s copies on stderr (the layer skips it).
pub const TARGET: &str = "tomo::events";
/// Entries waiting for the writer at most.
const QUEUE: usize = 4096;
/// Entries per insert at most.
const BATCH: usize = 256;

enum Msg {
    Entry(LogEntry),
    Flush(SyncSender<()>),
}

struct Queue {
    tx: SyncSender<Msg>,
    rx: Mutex<Option<Receiver<Msg>>>,
    dropped: AtomicU64,
    /// The layer is installed: this process keeps its events.
    on: AtomicBool,
    /// The writer runs.
    writing: AtomicBool,
}

static QUEUE_: LazyLock<Queue> = LazyLock::new(|| {
    let (tx, rx) = std::sync::mpsc::sync_channel(QUEUE);
    Queue {
        tx,
        rx: Mutex::new(Some(rx)),
        dropped: AtomicU64::new(0),
        on: AtomicBool::new(false),
        writing: AtomicBool::new(false),
    }
});

fn push(entry: LogEntry) {
    let q = &*QUEUE_;
    if !q.on.load(Ordering::Relaxed) {
        return;
    }
    if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) = q.tx.try_send(Msg::Entry(entry)) {
        q.dropped.fetch_add(1, Ordering::Relaxed);
    }
}

/// Records one of tomo's events (and shows it on stderr at its level).
pub fn record(level: LogLevel, source: &str, message: &str, fields: serde_json::Value) {
    match level {
        LogLevel::Error => tracing::error!(target: TARGET, source, fields = %fields, "{message}"),
        LogLevel::Warn => tracing::warn!(target: TARGET, source, fields = %fields, "{message}"),
        LogLevel::Info => tracing::info!(target: TARGET, source, fields = %fields, "{message}"),
        LogLevel::Debug => tracing::debug!(target: TARGET, source, fields = %fields, "{message}"),
    }
    push(LogEntry { level, source: source.to_string(), message: message.to_string(), fields });
}

/// Starts the writer into `store` (the first store this process opens; later
/// calls do nothing). Only when the layer is installed.
pub(super) fn attach(store: &Arc<Store>) {
    let q = &*QUEUE_;
    if !q.on.load(Ordering::Relaxed) {
        return;
    }
    let Some(rx) = q.rx.lock().unwrap_or_else(|e| e.into_inner()).take() else { return };
    let store = store.clone();
    let started = std::thread::Builder::new().name("tomo-log-writer".into()).spawn(move || write_loop(&store, &rx));
    q.writing.store(started.is_ok(), Ordering::Relaxed);
}

fn write_loop(store: &Store, rx: &Receiver<Msg>) {
    let q = &*QUEUE_;
    while let Ok(first) = rx.recv() {
        let mut batch = Vec::new();
        let mut acks = Vec::new();
        let mut next = Some(first);
        while let Some(msg) = next.take() {
            match msg {
                Msg::Entry(e) => batch.push(e),
                Msg::Flush(ack) => acks.push(ack),
            }
            if batch.len() < BATCH {
                next = rx.try_recv().ok();
            }
        }
        let dropped = q.dropped.swap(0, Ordering::Relaxed);
        if dropped > 0 {
            batch.push(LogEntry {
                level: LogLevel::Warn,
                source: "logs".into(),
                message: format!("{dropped} event(s) were not kept: the log queue was full"),
                fields: json!({ "dropped": dropped }),
            });
        }
        if store.log_events(&batch).is_err() {
            q.dropped.fetch_add(batch.len() as u64, Ordering::Relaxed);
        }
        for ack in acks {
            let _ = ack.try_send(());
        }
    }
}

/// Waits (at most `timeout`) until what was recorded so far is written; for
/// a process about to exit.
pub fn flush(timeout: Duration) {
    let q = &*QUEUE_;
    if !q.writing.load(Ordering::Relaxed) {
        return;
    }
    let deadline = Instant::now() + timeout;
    let (ack_tx, ack_rx) = std::sync::mpsc::sync_channel(1);
    let mut msg = Msg::Flush(ack_tx);
    loop {
        match q.tx.try_send(msg) {
            Ok(()) => break,
            Err(TrySendError::Full(m)) if Instant::now() < deadline => {
                msg = m;
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(_) => return,
        }
    }
    let _ = ack_rx.recv_timeout(deadline.saturating_duration_since(Instant::now()));
}

/// The layer, for the process's subscriber: installing it turns recording on.
pub fn layer<S>() -> impl Layer<S>
where
    S: Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    QUEUE_.on.store(true, Ordering::Relaxed);
    let wanted = tracing_subscriber::filter::filter_fn(|m| {
        *m.level() <= Level::WARN && m.target().starts_with("tomo") && m.target() != TARGET
    });
    Events.with_filter(wanted)
}

struct Events;

/// A `tracing` event's or span's fields: its message, and the others as JSON
/// (numbers and booleans as such, anything else as its text). Shared by
/// this layer and the MCP call-log layer (`mcp::events`).
#[derive(Debug, Default)]
pub struct EventFields {
    pub message: String,
    pub rest: serde_json::Map<String, serde_json::Value>,
}

impl Visit for EventFields {
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.rest.insert(field.name().into(), json!(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.rest.insert(field.name().into(), json!(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.rest.insert(field.name().into(), json!(value));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.record(field, value.to_string());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let mut text = String::new();
        let _ = write!(text, "{value:?}");
        self.record(field, text);
    }
}

impl EventFields {
    fn record(&mut self, field: &Field, value: String) {
        if field.name() == "message" {
            self.message = value;
        } else {
            self.rest.insert(field.name().into(), json!(value));
        }
    }
}

impl<S: Subscriber> Layer<S> for Events {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut f = EventFields::default();
        event.record(&mut f);
        let level = if *event.metadata().level() == Level::ERROR { LogLevel::Error } else { LogLevel::Warn };
        push(LogEntry {
            level,
            source: event.metadata().target().to_string(),
            message: f.message,
            fields: serde_json::Value::Object(f.rest),
        });
    }
}
