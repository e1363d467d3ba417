//! The MCP front end (rmcp): tools, resources and prompts over stdio or
//! Streamable HTTP, each tool a thin wrapper of one engine method. Only this
//! module knows rmcp, JSON-RPC and the tools' JSON shapes.
//!
//! **Invariants:**
//! - Every call passes `call_tool` here: the caller's identity (the token's,
//!   or `--role` over stdio) is checked against the tool's permission
//!   (`policy.rs`) before the tool runs; a refusal is an `isError` result and
//!   an audit entry. Calls that change anything are audited with their
//!   arguments, secrets redacted.
//! - Failures the model should read are `isError` results saying what would
//!   be valid; protocol errors are for malformed requests only. A panic in a
//!   tool is caught and reported as an internal error; the server lives on.
//! - The tool router is built once; the per-request handler is an `Arc` clone.
//! - Tools run on the blocking pool (`off_workers`), never on the async
//!   workers: parsing, validating and planning a large manifest must not
//!   stall `/healthz` or other clients.

mod completion;
mod events;
mod http;
mod listen;
mod logging;
mod output;
mod policy;
mod progress;
mod prompts;
mod resources;
mod schema;
mod sessions;
mod subscriptions;
mod tools;

use std::sync::Arc;

use futures_util::FutureExt;
use rmcp::handler::server::tool::{ToolCallContext, ToolRouter};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, CompleteRequestParams, CompleteResult, ContentBlock,
    GetPromptRequestParams, GetPromptResponse, ListPromptsResult, ListResourceTemplatesResult, ListResourcesResult,
    ListToolsResult, PaginatedRequestParams, ReadResourceRequestParams, ReadResourceResponse, ServerCapabilities,
    ServerConfig, SubscribeRequestParams, SubscriptionFilter, UnsubscribeRequestParams,
};
use rmcp::service::{NotificationContext, RequestContext, SubscriptionContext};
use rmcp::{ErrorData, RoleServer, ServerHandler, ServiceExt};

use crate::auth::Identity;
use crate::engine::{AuditEvent, AuditResult, Engine};
use crate::error::{Error, Result};

pub use events::layer as call_events;
pub use http::BODY_TIMEOUT;
pub use http::serve_http;
pub use listen::{HEADER_TIMEOUT, MAX_CONNECTIONS, MAX_PER_ADDRESS};

/// State shared by every request.
struct Shared {
    engine: Arc<Engine>,
    router: ToolRouter<Tomo>,
    /// Who a stdio client is (no tokens there).
    stdio: Option<Identity>,
    /// Resource subscriptions of every session (`subscriptions.rs`).
    hub: Arc<subscriptions::Hub>,
}

/// Where a call comes from: the client's IP address over HTTP, `stdio`
/// otherwise (failed logins are counted by it).
#[derive(Debug, Clone)]
pub struct Peer(pub String);

/// Runs `fut` to completion on the blocking pool, keeping its CPU work off
/// the async workers; `None` when it panicked.
async fn off_workers<F>(fut: F) -> Option<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || handle.block_on(fut)).await.ok()
}

/// The MCP handler: cheap to clone, one per session or request.
#[derive(Clone)]
pub struct Tomo {
    shared: Arc<Shared>,
    /// This session's `logging/setLevel`.
    log: logging::SessionLevel,
}

impl Tomo {
    fn new(engine: Arc<Engine>, stdio: Option<Identity>) -> Tomo {
        let mut router = tools::router();
        schema::make_portable(&mut router);
        let hub = subscriptions::Hub::new(engine.clone());
        Tomo { shared: Arc::new(Shared { engine, router, stdio, hub }), log: Default::default() }
    }

    /// The handler of a new session: shared state, its own log level.
    fn for_session(&self) -> Tomo {
        Tomo { shared: self.shared.clone(), log: Default::default() }
    }

    fn engine(&self) -> &Engine {
        &self.shared.engine
    }

    /// How this server is reached: `stdio` or `http`.
    fn serving(&self) -> &'static str {
        if self.shared.stdio.is_some() { "stdio" } else { "http" }
    }

    /// The permission check, the call (a panic caught) and its audit.
    async fn gated_call(
        &self,
        who: Identity,
        peer: Peer,
        request: CallToolRequestParams,
        mut context: RequestContext<RoleServer>,
    ) -> std::result::Result<CallToolResponse, ErrorData> {
        let name = request.name.to_string();
        let args = request.arguments.clone().map(serde_json::Value::Object).unwrap_or_default();
        let Some(rule) = policy::rule(&name) else {
            // Unknown tools: let the router answer as the protocol says.
            let tcc = ToolCallContext::new(self, request, context);
            return self.shared.router.call(tcc).await;
        };
        if !who.role.allows(rule.permission) {
            let msg = format!(
                "permission denied: `{name}` needs the `{}` permission; your role `{}` has: {}",
                rule.permission.as_str(),
                who.role.as_str(),
                who.role.permissions().join(", ")
            );
            let event = AuditEvent::new("auth", "refused").target(&name).arguments(policy::redact(&args));
            self.engine().audit(&who, event.result(AuditResult::Refused).detail(&msg));
            return Ok(CallToolResult::error(vec![ContentBlock::text(msg)]).into());
        }
        context.extensions.insert(who.clone());
        context.extensions.insert(peer);
        let (notes, sender) = progress::Call::begin(&context, &self.log)?;
        context.extensions.insert(notes.clone());
        let tcc = ToolCallContext::new(self, request, context);
        // A panic is a bug: the model gets an error result, the server lives on.
        let call = std::panic::AssertUnwindSafe(self.shared.router.call(tcc)).catch_unwind();
        let call = progress::around(notes, sender, &name, call);
        let result = match call.await.unwrap_or_else(|_| {
            Ok(CallToolResult::error(vec![ContentBlock::text(format!(
                "internal error in `{name}` (a bug in tomo; please report it); nothing further was done"
            ))])
            .into())
        }) {
            // Arguments that do not fit the schema: the model should read why.
            Err(e) if e.code == rmcp::model::ErrorCode::INVALID_PARAMS => {
                Ok(CallToolResult::error(vec![ContentBlock::text(format!(
                    "invalid arguments for `{name}`: {} (see the tool's input schema)",
                    e.message
                ))])
                .into())
            }
            other => other,
        };
        if rule.audit {
            let failed = match &result {
                Ok(CallToolResponse::Complete(r)) => r.is_error == Some(true),
                _ => true,
            };
            let outcome = if failed { AuditResult::Error } else { AuditResult::Ok };
            self.engine().audit(&who, AuditEvent::new("tool", &name).arguments(policy::redact(&args)).result(outcome));
        }
        result
    }

    /// The names of every tool, for tests and docs.
    pub fn tool_names() -> Vec<String> {
        let mut names: Vec<String> = tools::router().list_all().into_iter().map(|t| t.name.to_string()).collect();
        names.sort();
        names
    }
}

/// Serves MCP on stdin/stdout as `who` until the client closes the stream.
pub async fn serve_stdio(engine: Arc<Engine>, who: Identity) -> Result<()> {
    let _stores = keep_stores_synced(&engine);
    let service = Tomo::new(engine, Some(who))
        .serve(rmcp::transport::stdio())
        .await
        .map_err(|e| Error::Handshake(Box::new(e)))?;
    let _ = service.waiting().await;
    Ok(())
}

/// Re-syncs the app stores on their intervals while serving; stopped when
/// the returned guard drops.
fn keep_stores_synced(engine: &Arc<Engine>) -> AbortOnDrop {
    let engine = engine.clone();
    AbortOnDrop(tokio::spawn(async move { engine.market_keep_synced().await }))
}

/// A background task, stopped when this is dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl ServerHandler for Tomo {
    #[allow(deprecated)] // `enable_logging`: deprecated in 2026-07-28 (SEP-2577); 2025-11-25 clients use it
    fn get_info(&self) -> ServerConfig {
        let capabilities = ServerCapabilities::builder()
            .enable_completions()
            .enable_prompts()
            .enable_resources()
            .enable_resources_subscribe()
            .enable_resources_list_changed()
            .enable_tools()
            .enable_logging()
            .build();
        ServerConfig::new(capabilities)
            .with_server_info(rmcp::model::Implementation::new("tomo", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "tomo keeps self-hosted servers in the state their manifests declare. Read with app_list, \
                 status, server_list; change apps with app_deploy/app_update/app_start/app_stop/app_remove \
                 (they edit manifests and return the plan, or a proposal a human approves); carry out a \
                 reviewed plan with apply and the plan's fingerprint.",
            )
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> std::result::Result<CallToolResponse, ErrorData> {
        let parts = context.extensions.get::<::http::request::Parts>();
        let who = parts.and_then(|p| p.extensions.get::<Identity>().cloned()).or_else(|| self.shared.stdio.clone());
        let peer = parts.and_then(http::client_ip).map_or_else(|| Peer("stdio".into()), Peer);
        let Some(who) = who else {
            return Ok(CallToolResult::error(vec![ContentBlock::text("not authenticated")]).into());
        };
        // From here on (the audit's copy of large arguments included), off the async workers.
        let this = self.clone();
        let name = request.name.to_string();
        let result = off_workers(async move { this.gated_call(who, peer, request, context).await }).await;
        // A tool may have changed a proposal someone subscribed to.
        self.shared.hub.poke();
        result.unwrap_or_else(|| {
            Ok(CallToolResult::error(vec![ContentBlock::text(format!("internal error in `{name}`"))]).into())
        })
    }

    #[allow(deprecated)] // logging is deprecated in 2026-07-28 (SEP-2577); 2025-11-25 clients use it
    async fn set_level(
        &self,
        request: rmcp::model::SetLevelRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> std::result::Result<(), ErrorData> {
        self.log.set(request.level);
        Ok(())
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> std::result::Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(self.shared.router.list_all()))
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> std::result::Result<ListResourcesResult, ErrorData> {
        let engine = self.shared.engine.clone();
        off_workers(async move { resources::list(&engine) })
            .await
            .unwrap_or_else(|| Err(ErrorData::internal_error("internal error listing resources", None)))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> std::result::Result<ReadResourceResponse, ErrorData> {
        let engine = self.shared.engine.clone();
        off_workers(async move { resources::read(&engine, &request.uri).await.map(Into::into) })
            .await
            .unwrap_or_else(|| Err(ErrorData::internal_error("internal error reading a resource", None)))
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> std::result::Result<ListPromptsResult, ErrorData> {
        Ok(ListPromptsResult::with_all_items(prompts::list()))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> std::result::Result<GetPromptResponse, ErrorData> {
        prompts::get(&request.name, request.arguments.as_ref()).map(Into::into)
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> std::result::Result<ListResourceTemplatesResult, ErrorData> {
        Ok(ListResourceTemplatesResult::with_all_items(resources::templates()))
    }

    async fn complete(
        &self,
        request: CompleteRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> std::result::Result<CompleteResult, ErrorData> {
        let engine = self.shared.engine.clone();
        off_workers(async move { completion::complete(&engine, &request) })
            .await
            .unwrap_or_else(|| Err(ErrorData::internal_error("internal error completing", None)))
    }

    async fn on_initialized(&self, context: NotificationContext<RoleServer>) {
        self.shared.hub.register_session(subscriptions::session_key(&context.extensions), context.peer);
    }

    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> std::result::Result<(), ErrorData> {
        let engine = self.shared.engine.clone();
        let uri = request.uri.clone();
        off_workers(async move { resources::exists(&engine, &uri) })
            .await
            .unwrap_or_else(|| Err(ErrorData::internal_error("internal error subscribing", None)))?;
        let key = subscriptions::session_key(&context.extensions);
        self.shared.hub.subscribe(key, context.peer, request.uri).await;
        Ok(())
    }

    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> std::result::Result<(), ErrorData> {
        self.shared.hub.unsubscribe(&subscriptions::session_key(&context.extensions), &request.uri);
        Ok(())
    }

    fn accepted_subscription_filter(&self, requested: &SubscriptionFilter) -> Option<SubscriptionFilter> {
        Some(subscriptions::accepted_filter(&self.shared.hub, requested))
    }

    async fn listen(&self, context: SubscriptionContext) -> std::result::Result<(), ErrorData> {
        let accepted = context.accepted();
        let uris = accepted.resource_subscriptions.clone().unwrap_or_default();
        let list_changed = accepted.resources_list_changed == Some(true);
        let key = self.shared.hub.listen(context.sink().clone(), uris, list_changed).await;
        context.cancelled().await;
        self.shared.hub.end(&key);
        Ok(())
    }
}
