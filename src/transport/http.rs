//! One HTTP/1.1 exchange with a Docker Engine over any byte stream (a local
//! Unix socket or an SSH channel), with the bytes read from the server capped
//! per kind of call: a server that sends an endless or huge answer costs at
//! most the cap, and the error says which limit it crossed.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bollard::BollardRequest;
use http::{Method, header::HOST};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// List calls (containers, images, networks, volumes): room for many
/// thousands of containers with tomo's labels.
pub const LIST_LIMIT: u64 = 32 * 1024 * 1024;
/// Streams (events, pull progress, logs, stats).
pub const STREAM_LIMIT: u64 = 64 * 1024 * 1024;
/// Every other call (version, inspect, create, errors).
pub const CALL_LIMIT: u64 = 4 * 1024 * 1024;

/// A server sent more than `limit` bytes for one call.
#[derive(Debug, thiserror::Error)]
#[error("the answer exceeded the limit of {} MiB for this kind of call", limit / (1024 * 1024))]
pub struct TooLarge {
    pub limit: u64,
}

/// The call a request path names: `/v1.41/containers/json` → `containers/json`.
fn api_tail(path: &str) -> &str {
    let path = path.trim_start_matches('/');
    match path.split_once('/') {
        Some((v, rest)) if v.starts_with('v') && v[1..].chars().all(|c| c.is_ascii_digit() || c == '.') => rest,
        _ => path,
    }
}

fn is_stream(tail: &str) -> bool {
    tail == "events"
        || tail == "images/create"
        || (tail.starts_with("containers/") && (tail.ends_with("/logs") || tail.ends_with("/stats")))
        // A command's output, for as long as it runs (its caller times it).
        || (tail.starts_with("exec/") && tail.ends_with("/start"))
}

/// The byte cap for a request to `path` (the Engine API path, version prefix included).
pub fn limit_for(method: &Method, path: &str) -> u64 {
    let tail = api_tail(path);
    let is_list = matches!(tail, "containers/json" | "images/json" | "networks" | "volumes");
    match () {
        _ if *method == Method::GET && is_list => LIST_LIMIT,
        _ if is_stream(tail) => STREAM_LIMIT,
        _ => CALL_LIMIT,
    }
}

/// A call got no complete answer in its time.
#[derive(Debug, thiserror::Error)]
#[error("no answer within the server timeout of {secs}s")]
pub struct Late {
    pub secs: u64,
}

/// The time for one call, from connecting to the end of its answer: the
/// server timeout, plus the grace a stop or restart asks the Engine to wait.
/// Streams (events, pulls, logs) and prunes, which rightly take long, have none.
pub fn time_for(method: &Method, uri: &http::Uri, base: Duration) -> Option<Duration> {
    let tail = api_tail(uri.path());
    if is_stream(tail) || tail.ends_with("/prune") {
        return None;
    }
    if *method == Method::POST && (tail.ends_with("/stop") || tail.ends_with("/restart")) {
        let grace = uri.query().and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("t=")?.parse::<u64>().ok()));
        return Some(base + Duration::from_secs(grace.unwrap_or(10)));
    }
    Some(base)
}

/// The first error of type `E` in the chain of `e` (looking inside I/O errors).
pub fn find<'a, E: std::error::Error + 'static>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a E> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(t) = err.downcast_ref::<E>() {
            return Some(t);
        }
        if let Some(t) = err.downcast_ref::<io::Error>().and_then(|io| io.get_ref()).and_then(|i| i.downcast_ref::<E>())
        {
            return Some(t);
        }
        cur = err.source();
    }
    None
}

/// The cap of the error chain of `e`, if a [`TooLarge`] is in it.
pub fn too_large(e: &(dyn std::error::Error + 'static)) -> Option<u64> {
    find::<TooLarge>(e).map(|t| t.limit)
}

/// A stream that fails reads once more than `limit` bytes came in.
struct Capped<T> {
    inner: T,
    read: u64,
    limit: u64,
    /// When reads fail (`Late`), for calls with a time.
    late: Option<(Pin<Box<tokio::time::Sleep>>, u64)>,
}

impl<T: AsyncRead + Unpin> AsyncRead for Capped<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if let Some((sleep, secs)) = &mut self.late
            && sleep.as_mut().poll(cx).is_ready()
        {
            return Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, Late { secs: *secs })));
        }
        if self.read > self.limit {
            return Poll::Ready(Err(io::Error::other(TooLarge { limit: self.limit })));
        }
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = r {
            self.read += (buf.filled().len() - before) as u64;
            if self.read > self.limit {
                return Poll::Ready(Err(io::Error::other(TooLarge { limit: self.limit })));
            }
        }
        r
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Capped<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Sends `req` over `io` (a fresh connection, used for this one exchange) and
/// returns the response, its body still to be read through the cap.
pub async fn exchange<I>(
    io: I,
    req: BollardRequest,
    base: Duration,
) -> Result<http::Response<Incoming>, bollard::errors::Error>
where
    I: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let limit = limit_for(req.method(), req.uri().path());
    let late = time_for(req.method(), req.uri(), base).map(|t| (Box::pin(tokio::time::sleep(t)), t.as_secs()));
    let (mut parts, body) = req.into_parts();
    // On a connection of its own the request line takes the origin form.
    let host = parts.uri.authority().map_or_else(|| "docker".to_string(), |a| a.to_string());
    parts.uri = parts.uri.path_and_query().map_or("/", |pq| pq.as_str()).parse::<http::Uri>()?;
    if let Ok(value) = host.parse() {
        parts.headers.insert(HOST, value);
    }
    let io = TokioIo::new(Capped { inner: io, read: 0, limit, late });
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await?;
    // Ends when the response (or its body) is dropped or fully read; an
    // upgraded connection (an exec's output) lives on in its reader.
    tokio::spawn(async move {
        let _ = conn.with_upgrades().await;
    });
    Ok(sender.send_request(http::Request::from_parts(parts, body)).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_follow_the_kind_of_call() {
        assert_eq!(limit_for(&Method::GET, "/v1.41/containers/json"), LIST_LIMIT);
        assert_eq!(limit_for(&Method::GET, "/containers/json"), LIST_LIMIT);
        assert_eq!(limit_for(&Method::GET, "/v1.41/volumes"), LIST_LIMIT);
        assert_eq!(limit_for(&Method::GET, "/v1.41/events"), STREAM_LIMIT);
        assert_eq!(limit_for(&Method::POST, "/v1.41/images/create"), STREAM_LIMIT);
        assert_eq!(limit_for(&Method::GET, "/v1.41/containers/abc/logs"), STREAM_LIMIT);
        assert_eq!(limit_for(&Method::GET, "/v1.41/version"), CALL_LIMIT);
        assert_eq!(limit_for(&Method::POST, "/v1.41/volumes/create"), CALL_LIMIT);
        assert_eq!(limit_for(&Method::POST, "/v1.41/exec/abc/start"), STREAM_LIMIT);
        assert_eq!(limit_for(&Method::POST, "/v1.41/exec/abc/json"), CALL_LIMIT);
    }

    #[test]
    fn calls_have_a_time_and_streams_none() {
        let base = Duration::from_secs(30);
        let t = |m: &Method, u: &str| time_for(m, &u.parse().unwrap(), base);
        assert_eq!(t(&Method::GET, "http://d/v1.41/containers/json?all=true"), Some(base));
        assert_eq!(t(&Method::POST, "http://d/containers/abc/stop?t=20"), Some(Duration::from_secs(50)));
        assert_eq!(t(&Method::GET, "http://d/events?filters=x"), None);
        assert_eq!(t(&Method::POST, "http://d/v1.41/images/create?fromImage=a"), None);
        assert_eq!(t(&Method::POST, "http://d/images/prune"), None);
        assert_eq!(t(&Method::POST, "http://d/v1.41/exec/abc/start"), None);
    }

    #[test]
    fn the_cap_is_found_in_an_error_chain() {
        let e = io::Error::other(TooLarge { limit: 7 });
        assert_eq!(too_large(&e), Some(7));
        assert_eq!(too_large(&io::Error::other("x")), None);
    }
}
