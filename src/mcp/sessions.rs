//! MCP sessions over HTTP: rmcp's local session manager, plus who opened
//! each session and how many each user holds.
//!
//! **Invariants:** a user holds at most `SESSIONS_PER_USER` sessions and the
//! server at most `SESSIONS_IN_ALL` (each session costs a task and ~100 KB);
//! a session idle for `SESSION_IDLE` is ended by rmcp; every session rmcp ends
//! (DELETE, idle, failure, shutdown) leaves the books in the same call. All
//! book-keeping is O(1) per session.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use futures_util::Stream;
use rmcp::model::{ClientJsonRpcMessage, ServerJsonRpcMessage};
use rmcp::transport::streamable_http_server::session::local::{LocalSessionManager, SessionConfig};
use rmcp::transport::streamable_http_server::session::{EventStore, ServerSseMessage, SessionId, SessionManager};

use super::subscriptions::{Hub, Key};

/// The MCP sessions one user may hold at once: a few clients (editor,
/// desktop app, inspector), each reconnecting now and then.
pub const SESSIONS_PER_USER: usize = 16;
/// The MCP sessions the server holds at once: 16 users at the per-user cap,
/// about 25 MB at ~100 KB a session.
pub const SESSIONS_IN_ALL: usize = 256;
/// A session without a request for this long is ended (its client gets 404
/// and initializes again).
pub const SESSION_IDLE: Duration = Duration::from_secs(30 * 60);

/// Why a new session was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Full {
    /// The user holds `SESSIONS_PER_USER`.
    User,
    /// The server holds `SESSIONS_IN_ALL`.
    Server,
}

impl Full {
    /// The message for the client.
    pub fn message(&self, user: &str) -> String {
        let idle = SESSION_IDLE.as_secs() / 60;
        match self {
            Full::User => format!(
                "`{user}` holds {SESSIONS_PER_USER} MCP sessions, the most one user may; end one (DELETE /mcp with its Mcp-Session-Id) or wait until one has been idle for {idle} minutes"
            ),
            Full::Server => format!(
                "the server holds {SESSIONS_IN_ALL} MCP sessions, the most it keeps; try again when one ends (sessions idle for {idle} minutes end)"
            ),
        }
    }
}

#[derive(Default)]
struct Books {
    /// Each session's user.
    owners: HashMap<String, String>,
    /// How many sessions each user holds (users holding none are absent).
    held: HashMap<String, usize>,
}

/// rmcp's `LocalSessionManager` with owners and caps.
pub struct OwnedSessions {
    inner: LocalSessionManager,
    books: Mutex<Books>,
    /// Told when a session ends, to end its resource subscriptions.
    hub: OnceLock<Arc<Hub>>,
}

impl OwnedSessions {
    pub fn new() -> Arc<OwnedSessions> {
        let mut inner = LocalSessionManager::default();
        let mut config = SessionConfig::default();
        config.keep_alive = Some(SESSION_IDLE);
        inner.session_config = config;
        Arc::new(OwnedSessions { inner, books: Mutex::default(), hub: OnceLock::new() })
    }

    /// Ends each session's resource subscriptions with the session.
    pub fn end_subscriptions_in(&self, hub: Arc<Hub>) {
        let _ = self.hub.set(hub);
    }

    fn books(&self) -> std::sync::MutexGuard<'_, Books> {
        self.books.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The user who opened session `sid`, if it is open.
    pub fn owner(&self, sid: &str) -> Option<String> {
        self.books().owners.get(sid).cloned()
    }

    /// Records `user` as the owner of the new session `sid`, or refuses when
    /// the user or the server already holds as many as allowed (checked and
    /// counted under one lock). The caller ends a refused session.
    pub async fn bind(&self, sid: &str, user: &str) -> Result<(), Full> {
        {
            let mut books = self.books();
            if books.owners.len() >= SESSIONS_IN_ALL {
                return Err(Full::Server);
            }
            let held = books.held.entry(user.to_string()).or_insert(0);
            if *held >= SESSIONS_PER_USER {
                return Err(Full::User);
            }
            *held += 1;
            books.owners.insert(sid.to_string(), user.to_string());
        }
        // rmcp may have ended the session before it was bound (its handshake
        // failed); `close_session` then found nothing to forget.
        if !self.inner.has_session(&SessionId::from(sid)).await.unwrap_or(false) {
            self.forget(sid);
        }
        Ok(())
    }

    /// Drops session `sid` from the books (nothing if it is not there).
    fn forget(&self, sid: &str) {
        let mut books = self.books();
        let Some(user) = books.owners.remove(sid) else { return };
        if let Some(held) = books.held.get_mut(&user) {
            *held = held.saturating_sub(1);
            if *held == 0 {
                books.held.remove(&user);
            }
        }
    }
}

impl SessionManager for OwnedSessions {
    type Error = <LocalSessionManager as SessionManager>::Error;
    type Transport = <LocalSessionManager as SessionManager>::Transport;

    async fn create_session(&self) -> Result<(SessionId, Self::Transport), Self::Error> {
        self.inner.create_session().await
    }

    async fn initialize_session(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<ServerJsonRpcMessage, Self::Error> {
        self.inner.initialize_session(id, message).await
    }

    async fn has_session(&self, id: &SessionId) -> Result<bool, Self::Error> {
        self.inner.has_session(id).await
    }

    /// Called by rmcp for a DELETE and whenever a session's worker ends.
    async fn close_session(&self, id: &SessionId) -> Result<(), Self::Error> {
        let closed = self.inner.close_session(id).await;
        self.forget(id);
        if let Some(hub) = self.hub.get() {
            hub.end(&Key::Session(id.to_string()));
        }
        closed
    }

    async fn create_stream(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        self.inner.create_stream(id, message).await
    }

    async fn accept_message(&self, id: &SessionId, message: ClientJsonRpcMessage) -> Result<(), Self::Error> {
        self.inner.accept_message(id, message).await
    }

    async fn create_standalone_stream(
        &self,
        id: &SessionId,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        self.inner.create_standalone_stream(id).await
    }

    async fn resume(
        &self,
        id: &SessionId,
        last_event_id: String,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        self.inner.resume(id, last_event_id).await
    }

    fn event_store(&self) -> Option<Arc<dyn EventStore>> {
        self.inner.event_store()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn caps_hold_and_closing_frees_a_slot() {
        let sessions = OwnedSessions::new();
        let mut ids = Vec::new();
        for _ in 0..SESSIONS_PER_USER {
            let (id, _transport) = sessions.create_session().await.unwrap();
            assert_eq!(sessions.bind(&id, "ann").await, Ok(()));
            ids.push(id);
        }
        let (extra, _t) = sessions.create_session().await.unwrap();
        assert_eq!(sessions.bind(&extra, "ann").await, Err(Full::User));
        assert_eq!(sessions.bind(&extra, "bob").await, Ok(()));
        assert_eq!(sessions.owner(&extra).as_deref(), Some("bob"));
        sessions.close_session(&ids[0]).await.unwrap();
        assert_eq!(sessions.owner(&ids[0]), None);
        let (again, _t) = sessions.create_session().await.unwrap();
        assert_eq!(sessions.bind(&again, "ann").await, Ok(()));
        // A session rmcp no longer holds is not counted.
        assert_eq!(sessions.bind("gone", "carl").await, Ok(()));
        assert_eq!(sessions.owner("gone"), None);
        assert!(!sessions.books().held.contains_key("carl"));
        // The server's cap holds across users.
        for i in 0.. {
            let (id, _t) = sessions.create_session().await.unwrap();
            if let Err(full) = sessions.bind(&id, &format!("user{}", i / SESSIONS_PER_USER)).await {
                assert_eq!(full, Full::Server);
                break;
            }
            assert!(i < SESSIONS_IN_ALL, "more than {SESSIONS_IN_ALL} sessions bound");
        }
        assert_eq!(sessions.books().owners.len(), SESSIONS_IN_ALL);
    }
}
