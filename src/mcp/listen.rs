//! Accepting HTTP connections with limits: at most `MAX_CONNECTIONS` open at
//! once and `MAX_PER_ADDRESS` from one client address (connections beyond are
//! closed as soon as they are accepted), and hyper's header-read timeout,
//! which also closes a keep-alive connection idle for that long.
//!
//! hyper bounds the time to read headers (`header_read_timeout`), their size
//! and count; neither hyper nor tower counts connections, so the caps are
//! kept here.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};

/// Connections open at once (each holds a file descriptor).
pub const MAX_CONNECTIONS: usize = 512;
/// Connections open at once from one address.
pub const MAX_PER_ADDRESS: usize = 64;
/// Time to send a request's headers, and the longest a kept-alive connection
/// may sit idle between requests.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// The most bytes of request headers read.
const MAX_HEADER_BYTES: usize = 64 * 1024;
/// How long open requests may finish after a shutdown was requested.
const DRAIN: Duration = Duration::from_secs(5);

/// Open connections, in all and per address.
#[derive(Default)]
struct Counts {
    total: usize,
    per_address: HashMap<IpAddr, usize>,
}

/// The connection caps.
#[derive(Default, Clone)]
struct Caps(Arc<Mutex<Counts>>);

/// A connection's place under the caps, given back when dropped.
struct Slot {
    caps: Caps,
    ip: IpAddr,
}

impl Caps {
    fn admit(&self, ip: IpAddr, total: usize, per_address: usize) -> Option<Slot> {
        let mut c = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let mine = c.per_address.get(&ip).copied().unwrap_or(0);
        if c.total >= total || mine >= per_address {
            return None;
        }
        c.total += 1;
        c.per_address.insert(ip, mine + 1);
        Some(Slot { caps: self.clone(), ip })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut c = self.caps.0.lock().unwrap_or_else(|p| p.into_inner());
        c.total -= 1;
        if let Some(n) = c.per_address.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                c.per_address.remove(&self.ip);
            }
        }
    }
}

/// Serves `app` on `listener` until `shutdown` completes, then lets open
/// requests finish for a few seconds. Each request carries the client's
/// address as `ConnectInfo<SocketAddr>`.
pub async fn serve(listener: tokio::net::TcpListener, app: Router, shutdown: impl Future<Output = ()>) {
    let caps = Caps::default();
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors, or a connection reset before
                    // it was accepted: wait a moment rather than spin.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Some(slot) = caps.admit(peer.ip(), MAX_CONNECTIONS, MAX_PER_ADDRESS) else {
            tracing::debug!(peer = %peer, "connection refused: too many open connections");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let service = hyper::service::service_fn(move |mut req: http::Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            tower_service::Service::call(&mut app.clone(), req)
        });
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_TIMEOUT)
            .max_buf_size(MAX_HEADER_BYTES.max(8192))
            .serve_connection(TokioIo::new(stream), service);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            let _ = conn.await;
            drop(slot);
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(DRAIN, graceful.shutdown()).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_count_in_all_and_per_address_and_free_on_drop() {
        let caps = Caps::default();
        let (a, b): (IpAddr, IpAddr) = ("127.0.0.2".parse().unwrap(), "127.0.0.3".parse().unwrap());
        let first: Vec<Slot> = (0..2).filter_map(|_| caps.admit(a, 3, 2)).collect();
        assert_eq!(first.len(), 2);
        assert!(caps.admit(a, 3, 2).is_none(), "per-address cap");
        let other = caps.admit(b, 3, 2).unwrap();
        assert!(caps.admit(b, 3, 2).is_none(), "total cap");
        drop(first);
        assert!(caps.admit(a, 3, 2).is_some());
        drop(other);
        assert_eq!(caps.0.lock().unwrap().total, 0);
        assert!(caps.0.lock().unwrap().per_address.is_empty());
    }
}
