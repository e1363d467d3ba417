//! The Docker Engine API over SSH: bollard with a custom transport whose
//! connections are `direct-streamlocal` channels to the server's Docker socket,
//! opened on the server's one SSH connection. No local socket file, no
//! `docker` CLI on either side; hyper pools the channels.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bollard::{API_DEFAULT_VERSION, BollardRequest, Docker};
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::ssh::SshSession;

/// Opens one streamlocal channel per HTTP connection.
#[derive(Clone)]
struct StreamLocal {
    session: Arc<SshSession>,
    socket: String,
}

/// A channel stream that hyper can use as a connection.
struct ChannelIo(russh::ChannelStream<russh::client::Msg>);

impl Connection for ChannelIo {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

impl AsyncRead for ChannelIo {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for ChannelIo {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl tower_service::Service<http::Uri> for StreamLocal {
    type Response = TokioIo<ChannelIo>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: http::Uri) -> Self::Future {
        let (session, socket) = (self.session.clone(), self.socket.clone());
        Box::pin(async move {
            let stream = session.streamlocal(&socket).await.map_err(io::Error::other)?;
            Ok(TokioIo::new(ChannelIo(stream)))
        })
    }
}

/// A bollard client for the Docker Engine at `socket` on the other end of `session`.
pub fn docker_over_ssh(session: Arc<SshSession>, socket: &str) -> Result<Docker, bollard::errors::Error> {
    let client = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .build(StreamLocal { session, socket: socket.to_string() });
    let transport = move |req: BollardRequest| {
        let client = client.clone();
        async move { Ok(client.request(req).await?) }
    };
    Docker::connect_with_custom_transport(transport, Some("http://docker.ssh"), 120, API_DEFAULT_VERSION)
}
