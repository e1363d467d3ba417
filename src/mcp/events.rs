//! The engine's warnings and errors during one MCP call (a transient Docker
//! failure retried, a leftover of an interrupted recreate put right, a pull
//! that failed) as that call's log messages. Each
//! call runs inside a `mcp_call` span naming its `Call`; this `tracing`
//! layer sends the `warn` and `error` events of tomo's modules inside one
//! to it. Apply's own per-action events are the `CallSink`'s, so the
//! `tomo::apply` target's (the process log's copy) are left out. The texts
//! are what the process log shows: Docker errors already masked (`redact`).
#![allow(deprecated)] // rmcp marks logging deprecated (SEP-2577); 2025-11-25 clients use it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, Weak};

use rmcp::model::LoggingLevel;
use serde_json::json;
use tracing::span::Attributes;
use tracing::{Event, Id, Level, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

use super::progress::Call;
use crate::engine::syslog::EventFields;

/// The name of the span a call runs in.
pub const SPAN: &str = "mcp_call";

static NEXT: AtomicU64 = AtomicU64::new(1);
static CALLS: LazyLock<Mutex<HashMap<u64, Weak<Call>>>> = LazyLock::new(Default::default);

/// Makes `call` reachable from its span; returns the span's `call` field.
pub fn register(call: &Arc<Call>) -> u64 {
    let id = NEXT.fetch_add(1, Ordering::Relaxed);
    let mut calls = CALLS.lock().unwrap_or_else(|e| e.into_inner());
    calls.retain(|_, c| c.strong_count() > 0);
    calls.insert(id, Arc::downgrade(call));
    id
}

pub fn unregister(id: u64) {
    CALLS.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
}

/// The layer, for the process's subscriber.
pub fn layer<S>() -> impl Layer<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let wanted = tracing_subscriber::filter::filter_fn(|m| {
        if m.is_span() {
            return m.name() == SPAN;
        }
        *m.level() <= Level::WARN && m.target().starts_with("tomo") && m.target() != "tomo::apply"
    });
    CallEvents.with_filter(wanted)
}

struct CallEvents;

/// A span's call id, kept in its extensions.
struct CallId(u64);

impl<S> Layer<S> for CallEvents
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut f = EventFields::default();
        attrs.record(&mut f);
        if let (Some(call), Some(span)) = (f.rest.get("call").and_then(|c| c.as_u64()), ctx.span(id)) {
            span.extensions_mut().insert(CallId(call));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let Some(scope) = ctx.event_scope(event) else { return };
        let Some(id) = scope.from_root().find_map(|s| s.extensions().get::<CallId>().map(|c| c.0)) else { return };
        let Some(call) = CALLS.lock().unwrap_or_else(|e| e.into_inner()).get(&id).and_then(Weak::upgrade) else {
            return;
        };
        let mut f = EventFields::default();
        event.record(&mut f);
        let level = if *event.metadata().level() == Level::ERROR { LoggingLevel::Error } else { LoggingLevel::Warning };
        let mut data = f.rest;
        data.remove("call");
        data.insert("message".into(), json!(f.message));
        call.log(level, serde_json::Value::Object(data));
    }
}
