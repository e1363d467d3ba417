//! The `logging` capability: each session's level (`logging/setLevel`,
//! `warning` until the client sets one), or a request's own opt-in
//! (`_meta["io.modelcontextprotocol/logLevel"]`, protocol 2026-07-28, where
//! a request that does not opt in gets no log messages). Only the engine's
//! events of the caller's own call are sent (`progress.rs`), as
//! `notifications/message` with logger `tomo`.
#![allow(deprecated)] // rmcp marks logging deprecated (SEP-2577); 2025-11-25 clients use it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use rmcp::model::{LoggingLevel, RequestMetaObject};

/// The logger name of every message tomo sends.
pub const LOGGER: &str = "tomo";

/// The level a session starts with.
pub const DEFAULT: LoggingLevel = LoggingLevel::Warning;

/// The syslog order of the levels (RFC 5424, as the specification says):
/// higher is more severe.
pub fn rank(l: LoggingLevel) -> u8 {
    match l {
        LoggingLevel::Debug => 0,
        LoggingLevel::Info => 1,
        LoggingLevel::Notice => 2,
        LoggingLevel::Warning => 3,
        LoggingLevel::Error => 4,
        LoggingLevel::Critical => 5,
        LoggingLevel::Alert => 6,
        LoggingLevel::Emergency => 7,
    }
}

fn from_rank(r: u8) -> LoggingLevel {
    [
        LoggingLevel::Debug,
        LoggingLevel::Info,
        LoggingLevel::Notice,
        LoggingLevel::Warning,
        LoggingLevel::Error,
        LoggingLevel::Critical,
        LoggingLevel::Alert,
    ]
    .get(r as usize)
    .copied()
    .unwrap_or(LoggingLevel::Emergency)
}

/// One session's level; clones share it.
#[derive(Clone)]
pub struct SessionLevel(Arc<AtomicU8>);

impl Default for SessionLevel {
    fn default() -> Self {
        SessionLevel(Arc::new(AtomicU8::new(rank(DEFAULT))))
    }
}

impl SessionLevel {
    pub fn set(&self, level: LoggingLevel) {
        self.0.store(rank(level), Ordering::Relaxed);
    }

    pub fn get(&self) -> LoggingLevel {
        from_rank(self.0.load(Ordering::Relaxed))
    }

    /// The least severe level a call with `meta` is sent; `None`: no log
    /// messages. A request naming a protocol version in `_meta` (the
    /// stateless 2026-07-28 generation) opts in per request only.
    pub fn for_request(&self, meta: &RequestMetaObject) -> Option<LoggingLevel> {
        match (meta.log_level(), meta.protocol_version()) {
            (Some(level), _) => Some(level),
            (None, Some(_)) => None,
            (None, None) => Some(self.get()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_order_as_syslog_and_round_trip() {
        for r in 0..8 {
            assert_eq!(rank(from_rank(r)), r);
        }
        assert!(rank(LoggingLevel::Error) > rank(LoggingLevel::Warning));
        let s = SessionLevel::default();
        assert_eq!(s.get(), LoggingLevel::Warning);
        s.set(LoggingLevel::Debug);
        assert_eq!(s.clone().get(), LoggingLevel::Debug, "clones share the level");
        assert_eq!(SessionLevel::default().get(), LoggingLevel::Warning, "sessions do not");
    }

    #[test]
    fn a_request_opts_in_itself_on_the_stateless_protocol() {
        let s = SessionLevel::default();
        let mut meta = RequestMetaObject::new();
        assert_eq!(s.for_request(&meta), Some(LoggingLevel::Warning));
        meta.set_protocol_version(rmcp::model::ProtocolVersion::default());
        assert_eq!(s.for_request(&meta), None);
        meta.set_log_level(LoggingLevel::Info);
        assert_eq!(s.for_request(&meta), Some(LoggingLevel::Info));
    }
}
