//! The Docker Engine API over SSH: bollard with a custom transport whose
//! connections are `direct-streamlocal` channels to the server's Docker socket,
//! opened on the server's one SSH connection, one per request. No local socket
//! file, no `docker` CLI on either side.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use bollard::{API_DEFAULT_VERSION, BollardRequest, Docker};

use super::ssh::SshSession;

/// A bollard client for the Docker Engine at `socket` on the other end of
/// `session`: each request opens its own streamlocal channel (cheap on the one
/// connection) and reads its answer through the cap and in the time of its
/// kind of call (`timeout`, the server's).
pub fn docker_over_ssh(
    session: Arc<SshSession>,
    socket: &str,
    timeout: Duration,
) -> Result<Docker, bollard::errors::Error> {
    let socket = socket.to_string();
    let transport = move |req: BollardRequest| {
        let (session, socket) = (session.clone(), socket.clone());
        async move {
            let stream = session.streamlocal(&socket).await.map_err(io::Error::other)?;
            super::http::exchange(stream, req, timeout).await
        }
    };
    Docker::connect_with_custom_transport(transport, Some("http://docker.ssh"), 120, API_DEFAULT_VERSION)
}
