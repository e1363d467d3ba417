//! MCP over Streamable HTTP (rmcp's tower service on axum), with bearer-token
//! auth, a login endpoint, `/healthz`, CORS and Host checks.
//!
//! Routes: `GET /healthz` (no auth), `POST /auth/login` (JSON
//! `{"username", "password"}` → `{"token", "expires_at", …}`),
//! `POST /auth/logout` (bearer), and `/mcp` (bearer; both the 2025-11-25
//! session protocol and the stateless 2026-07-28 one).
//!
//! **Invariants:** every route but `/healthz` checks the Host header
//! (against DNS rebinding); request bodies are bounded (`LOGIN_BODY_LIMIT`,
//! `MCP_BODY_LIMIT`); an MCP session is used or ended only by the user who
//! opened it (others get 404, as for an unknown session), and an `initialize`
//! past the session caps of `sessions.rs` is answered 429; connections are
//! capped and timed out in `listen.rs`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use rmcp::transport::streamable_http_server::session::SessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use serde::Deserialize;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;

use super::Tomo;
use super::sessions::OwnedSessions;
use crate::auth::Identity;
use crate::engine::Engine;
use crate::error::{Error, IoOp, Result, Usage};
use crate::model::secret::SecretString;

/// How long a token from `/auth/login` lasts.
const LOGIN_TTL: Duration = Duration::from_secs(12 * 3600);
/// The largest body of `/auth/login` (a user name and a password).
pub const LOGIN_BODY_LIMIT: usize = 16 * 1024;
/// The largest body of any other request (an MCP message and its arguments).
pub const MCP_BODY_LIMIT: usize = 2 * 1024 * 1024;
/// How long a request's body may take to arrive in full (a body trickled
/// byte by byte would otherwise hold its connection for ever); answered 408.
/// tower-http's body timeout restarts at every frame, so a trickle passes
/// it: `whole_body_in_time` reads the (capped) body under one deadline.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// A refused token is audited at most this often per client address and
/// reason (anyone can send tokens: the audit log must not grow with each).
const REFUSAL_AUDIT_EVERY: Duration = Duration::from_secs(60);

#[derive(Clone)]
struct AppState {
    engine: Arc<Engine>,
    origins: Arc<Vec<String>>,
    /// The Host names accepted; `None`: any.
    hosts: Option<Arc<Vec<String>>>,
    /// The open MCP sessions and their users.
    sessions: Arc<OwnedSessions>,
    /// When a token refused for each reason from each address was last audited.
    refusals: Arc<Mutex<HashMap<(std::net::IpAddr, String), std::time::Instant>>>,
}

impl AppState {
    /// Whether a token refused from `ip` for `why` is audited now (at most
    /// once per `REFUSAL_AUDIT_EVERY`; the map forgets what was silent as long).
    fn audit_refusal_now(&self, ip: std::net::IpAddr, why: &str) -> bool {
        let now = std::time::Instant::now();
        let mut last = self.refusals.lock().unwrap_or_else(|p| p.into_inner());
        let key = (ip, why.to_string());
        if last.get(&key).is_some_and(|t| now.duration_since(*t) < REFUSAL_AUDIT_EVERY) {
            return false;
        }
        if last.len() >= 4096 {
            last.retain(|_, t| now.duration_since(*t) < REFUSAL_AUDIT_EVERY);
        }
        last.insert(key, now);
        true
    }
}

/// Serves until SIGINT or SIGTERM. Refuses to start without a usable
/// `JWT_SECRET_KEY`, or when `addr` cannot be bound.
pub async fn serve_http(engine: Arc<Engine>, addr: &str) -> Result<()> {
    engine.jwt_key()?;
    let _stores = super::keep_stores_synced(&engine);
    let bind: SocketAddr = tokio::net::lookup_host(addr)
        .await
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| Usage::invalid("address to listen on", addr, "give HOST:PORT, e.g. 127.0.0.1:8000"))?;
    let listen = |source| Error::Io { op: IoOp::Listen, path: bind.to_string(), source };
    let listener = tokio::net::TcpListener::bind(bind).await.map_err(listen)?;
    let local = listener.local_addr().map_err(listen)?;
    let config = engine.config();
    let mut mcp_config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(true)
        .with_json_response(true)
        .with_sse_keep_alive(Some(Duration::from_secs(15)));
    let hosts = allowed_hosts(local, &config.allowed_hosts);
    mcp_config = match hosts.clone() {
        Some(hosts) => mcp_config.with_allowed_hosts(hosts),
        None => {
            tracing::warn!(
                "listening on all interfaces without `mcp.allowed_hosts`: any Host header is accepted; set ALLOWED_HOSTS to the names clients use"
            );
            mcp_config.disable_allowed_hosts()
        }
    };
    // The server's own origin is always allowed; others only when listed.
    let mut origins = config.allowed_origins.clone();
    origins.extend(own_origins(local, hosts.as_deref().unwrap_or(&[])));
    mcp_config = if origins.iter().any(|o| o == "*") {
        mcp_config.disable_allowed_origins()
    } else {
        mcp_config.with_allowed_origins(origins.clone())
    };
    let cancel = mcp_config.cancellation_token.clone();
    let tomo = Tomo::new(engine.clone(), None);
    let sessions = OwnedSessions::new();
    sessions.end_subscriptions_in(tomo.shared.hub.clone());
    let mcp = StreamableHttpService::new(move || Ok(tomo.for_session()), sessions.clone(), mcp_config);
    let state = AppState {
        engine: engine.clone(),
        origins: Arc::new(origins),
        hosts: hosts.map(Arc::new),
        sessions,
        refusals: Arc::default(),
    };
    let protected = Router::new()
        .nest_service("/mcp", mcp)
        .route("/auth/logout", post(logout))
        .layer(middleware::from_fn_with_state(state.clone(), own_sessions))
        .layer(middleware::from_fn_with_state(state.clone(), require_token));
    let app = Router::new()
        .route("/auth/login", post(login).layer(DefaultBodyLimit::max(LOGIN_BODY_LIMIT)))
        .merge(protected)
        .layer(middleware::from_fn_with_state(state.clone(), check_host))
        .route("/healthz", get(healthz))
        .layer(middleware::from_fn(whole_body_in_time))
        .layer(RequestBodyLimitLayer::new(MCP_BODY_LIMIT))
        .layer(cors_layer(&config.allowed_origins))
        .layer(middleware::from_fn_with_state(state.clone(), refuse_other_origins))
        .with_state(state);
    tracing::info!(address = %local, "tomo MCP server listening (POST /mcp, /auth/login, GET /healthz)");
    super::listen::serve(listener, app, async move {
        crate::shutdown::requested().await;
        tracing::info!("shutting down");
        cancel.cancel();
    })
    .await;
    Ok(())
}

/// Refuses a Host header not in the accepted list (403), as rmcp does for
/// `/mcp`: the host part is compared, case-insensitively, without the port.
async fn check_host(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let Some(hosts) = &state.hosts else { return next.run(req).await };
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.parse::<http::uri::Authority>().ok())
        .map(|a| a.host().trim_matches(['[', ']']).to_ascii_lowercase());
    match host {
        Some(h) if hosts.iter().any(|a| a.trim_matches(['[', ']']).eq_ignore_ascii_case(&h)) => next.run(req).await,
        _ => (
            StatusCode::FORBIDDEN,
            axum::Json(serde_json::json!({"error": "the Host header is not allowed; add it to ALLOWED_HOSTS"})),
        )
            .into_response(),
    }
}

/// Binds each MCP session to the user who opened it: a request naming
/// another user's session (or one this server did not open) is answered 404;
/// a new session past the caps is ended at once and answered 429.
async fn own_sessions(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let user = req.extensions().get::<Identity>().map(|who| who.user.clone()).unwrap_or_default();
    let sid = req.headers().get("mcp-session-id").and_then(|v| v.to_str().ok()).map(str::to_string);
    if let Some(sid) = &sid
        && state.sessions.owner(sid).as_deref() != Some(user.as_str())
    {
        return (StatusCode::NOT_FOUND, axum::Json(serde_json::json!({"error": "no such session"}))).into_response();
    }
    let resp = next.run(req).await;
    let new = resp.headers().get("mcp-session-id").and_then(|v| v.to_str().ok()).map(str::to_string);
    if let (None, Some(new)) = (&sid, new)
        && let Err(full) = state.sessions.bind(&new, &user).await
    {
        let _ = state.sessions.close_session(&new.as_str().into()).await;
        tracing::debug!(user, "MCP session refused: {}", full.message(&user));
        return (StatusCode::TOO_MANY_REQUESTS, axum::Json(serde_json::json!({"error": full.message(&user)})))
            .into_response();
    }
    resp
}

/// The Host names to accept: loopback names for a loopback bind; the bind
/// address, loopback and configured names for a specific address; `None`
/// (any) for a wildcard bind without configured names.
fn allowed_hosts(local: SocketAddr, configured: &[String]) -> Option<Vec<String>> {
    let mut hosts: Vec<String> = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
    let ip = local.ip();
    if ip.is_unspecified() && configured.is_empty() {
        return None;
    }
    if !ip.is_loopback() && !ip.is_unspecified() {
        hosts.push(ip.to_string());
    }
    hosts.extend(configured.iter().cloned());
    Some(hosts)
}

/// The server's own origins: `http://` and `https://` with each name it
/// answers to (the accepted Host names, or loopback and the bind address
/// when any Host is accepted) and its port. A page the server itself serves
/// may call it; DNS rebinding cannot forge these (the Host check stands).
fn own_origins(local: SocketAddr, hosts: &[String]) -> Vec<String> {
    let mut names: Vec<String> =
        if hosts.is_empty() { vec!["localhost".into(), "127.0.0.1".into(), "::1".into()] } else { hosts.to_vec() };
    if !local.ip().is_unspecified() {
        names.push(local.ip().to_string());
    }
    let port = local.port();
    let mut out = Vec::new();
    for name in names {
        let name = name.trim_matches(['[', ']']).to_ascii_lowercase();
        let host = if name.contains(':') { format!("[{name}]") } else { name };
        for scheme in ["http", "https"] {
            let origin = format!("{scheme}://{host}:{port}");
            if !out.contains(&origin) {
                out.push(origin);
            }
        }
    }
    out
}

async fn healthz() -> impl IntoResponse {
    axum::Json(serde_json::json!({"status": "ok", "version": env!("CARGO_PKG_VERSION")}))
}

fn unauthorized(reason: &str) -> Response {
    let challenge = format!("Bearer realm=\"tomo\", error=\"invalid_token\", error_description=\"{reason}\"");
    let mut r = (StatusCode::UNAUTHORIZED, axum::Json(serde_json::json!({"error": reason}))).into_response();
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_str(&challenge).unwrap_or(HeaderValue::from_static("Bearer realm=\"tomo\"")),
    );
    r
}

/// Checks `Authorization: Bearer <JWT>` and puts the caller's `Identity`
/// into the request; 401 with `WWW-Authenticate` otherwise.
async fn require_token(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let header = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).map(str::to_string);
    let Some(header) = header else {
        let mut r = (
            StatusCode::UNAUTHORIZED,
            axum::Json(
                serde_json::json!({"error": "missing bearer token; POST /auth/login or run `tomo token create`"}),
            ),
        )
            .into_response();
        r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"tomo\""));
        return r;
    };
    // The scheme is case-insensitive (RFC 7235).
    let token =
        header.split_once(' ').filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer")).map(|(_, t)| t.trim());
    let Some(token) = token else {
        return unauthorized("the Authorization header must be `Bearer <token>`");
    };
    match state.engine.authenticate(token) {
        Ok(who) => {
            req.extensions_mut().insert(who);
            next.run(req).await
        }
        Err(e) => {
            let (why, peer) = (e.to_string(), req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip()));
            if peer.is_none_or(|ip| state.audit_refusal_now(ip, &why)) {
                let from = peer.map(|ip| format!(" (from {ip}; the same from there within a minute is not audited)"));
                state.engine.audit_auth("-", None, "token", "refused", &format!("{why}{}", from.unwrap_or_default()));
            }
            unauthorized(&e.to_string())
        }
    }
}

#[derive(Deserialize)]
struct LoginBody {
    username: String,
    password: String,
}

async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    body: axum::body::Bytes,
) -> Response {
    let Ok(body) = serde_json::from_slice::<LoginBody>(&body) else {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(serde_json::json!({"error": "send JSON {\"username\": \"…\", \"password\": \"…\"}"})),
        )
            .into_response();
    };
    let password = SecretString::new(body.password);
    match state.engine.login(&body.username, &password, &peer.ip().to_string(), LOGIN_TTL).await {
        Ok(token) => axum::Json(token).into_response(),
        Err(Error::Locked(why)) => {
            (StatusCode::TOO_MANY_REQUESTS, axum::Json(serde_json::json!({"error": why.to_string()}))).into_response()
        }
        Err(Error::Denied(why)) => unauthorized(&why.to_string()),
        Err(e) => {
            (StatusCode::INTERNAL_SERVER_ERROR, axum::Json(serde_json::json!({"error": e.to_string()}))).into_response()
        }
    }
}

/// The client's address of a request, as the listener recorded it.
pub(super) fn client_ip(parts: &::http::request::Parts) -> Option<String> {
    parts.extensions.get::<ConnectInfo<std::net::SocketAddr>>().map(|c| c.0.ip().to_string())
}

async fn logout(State(state): State<AppState>, axum::Extension(who): axum::Extension<Identity>) -> Response {
    match state.engine.logout(&who) {
        Ok(()) => axum::Json(serde_json::json!({"logged_out": true})).into_response(),
        Err(e) => (StatusCode::BAD_REQUEST, axum::Json(serde_json::json!({"error": e.to_string()}))).into_response(),
    }
}

/// CORS for the origins in `ALLOWED_ORIGINS` (`*`: any), by tower-http:
/// preflights answered, the CORS headers on the responses to allowed origins.
fn cors_layer(origins: &[String]) -> CorsLayer {
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::mirror_request()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
    let name = HeaderName::from_static;
    CorsLayer::new()
        .allow_origin(allow)
        .allow_methods([Method::GET, Method::POST, Method::DELETE, Method::OPTIONS])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::ACCEPT,
            name("mcp-session-id"),
            name("mcp-protocol-version"),
            name("last-event-id"),
        ])
        .expose_headers([name("mcp-session-id"), header::WWW_AUTHENTICATE])
}

/// Refuses (403) a request from an origin not in `ALLOWED_ORIGINS`, which
/// `CorsLayer` alone would only leave without CORS headers; an allowed
/// preflight is answered 204 No Content.
async fn refuse_other_origins(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let origin = req.headers().get(header::ORIGIN).and_then(|v| v.to_str().ok()).map(str::to_string);
    let Some(origin) = origin else { return next.run(req).await };
    if !state.origins.iter().any(|o| o.eq_ignore_ascii_case(&origin) || o == "*") {
        return (
            StatusCode::FORBIDDEN,
            axum::Json(
                serde_json::json!({"error": format!("origin `{origin}` is not allowed; add it to ALLOWED_ORIGINS")}),
            ),
        )
            .into_response();
    }
    let preflight = req.method() == Method::OPTIONS;
    let mut resp = next.run(req).await;
    if preflight && resp.status() == StatusCode::OK {
        *resp.status_mut() = StatusCode::NO_CONTENT;
    }
    resp
}

/// Reads the request's body in full within `BODY_TIMEOUT` (408 past it), so
/// a client trickling its body cannot hold a connection; the body is capped
/// by the layer outside (413).
async fn whole_body_in_time(request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    match tokio::time::timeout(BODY_TIMEOUT, axum::body::to_bytes(body, MCP_BODY_LIMIT)).await {
        Ok(Ok(bytes)) => next.run(Request::from_parts(parts, axum::body::Body::from(bytes))).await,
        Ok(Err(_)) => (StatusCode::PAYLOAD_TOO_LARGE, "the request body is too large or was cut off\n").into_response(),
        Err(_) => (StatusCode::REQUEST_TIMEOUT, "the request body did not arrive in time\n").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_list_follows_the_bind_address() {
        let lo: SocketAddr = "127.0.0.1:8000".parse().unwrap();
        assert_eq!(allowed_hosts(lo, &[]).unwrap(), ["localhost", "127.0.0.1", "::1"]);
        let lan: SocketAddr = "192.168.1.5:8000".parse().unwrap();
        assert!(allowed_hosts(lan, &["tomo.lan".into()]).unwrap().contains(&"192.168.1.5".to_string()));
        let any: SocketAddr = "0.0.0.0:8000".parse().unwrap();
        assert_eq!(allowed_hosts(any, &[]), None);
        assert!(allowed_hosts(any, &["tomo.lan".into()]).unwrap().contains(&"tomo.lan".to_string()));
    }

    #[test]
    fn own_origins_are_the_accepted_hosts_with_the_port() {
        let lo: SocketAddr = "127.0.0.1:8123".parse().unwrap();
        let own = own_origins(lo, &allowed_hosts(lo, &[]).unwrap());
        for o in ["http://localhost:8123", "http://127.0.0.1:8123", "http://[::1]:8123", "https://localhost:8123"] {
            assert!(own.contains(&o.to_string()), "{o} missing from {own:?}");
        }
        assert!(!own.iter().any(|o| o.ends_with(":8000") || o.contains("evil")));
        let lan: SocketAddr = "192.168.1.5:8000".parse().unwrap();
        let own = own_origins(lan, &allowed_hosts(lan, &["tomo.lan".into()]).unwrap());
        assert!(own.contains(&"http://tomo.lan:8000".to_string()));
        assert!(own.contains(&"http://192.168.1.5:8000".to_string()));
        let any: SocketAddr = "0.0.0.0:9000".parse().unwrap();
        assert!(own_origins(any, &[]).contains(&"http://localhost:9000".to_string()));
    }
}
