//! SSH to a server (russh): one authenticated connection, reused for every
//! command and Docker API channel; host keys verified against a pinned or
//! recorded SHA256 fingerprint; commands given as argument lists and quoted
//! here, never pasted into a shell string.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use russh::ChannelMsg;
use russh::client::{self, AuthResult, Handle};
use russh::keys::{HashAlg, PrivateKeyWithHashAlg, PublicKeyOrCertificate};
use tokio::sync::Semaphore;

use crate::model::secret::SecretString;

mod resident;

/// Channel opens refused by sshd are tried this often, waiting this long
/// before the second try and twice as long before each further one.
const CHANNEL_ATTEMPTS: u32 = 5;
const CHANNEL_RETRY_DELAY: Duration = Duration::from_millis(20);

/// How to log in.
#[derive(Clone)]
pub enum Credential {
    KeyFile(PathBuf),
    Agent,
    Password(SecretString),
    /// An OpenSSH private key (text), from the vault.
    Key(SecretString),
}

/// What host key to accept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostKeyPolicy {
    /// Only this fingerprint (`SHA256:…`), pinned in the manifest or recorded by `tomo server trust`.
    Expect(String),
    /// Accept any key, reporting it (`tomo server trust` only).
    Learn,
}

#[derive(Debug, thiserror::Error)]
pub enum SshError {
    #[error("cannot reach {addr}: {detail}")]
    Unreachable { addr: String, detail: String },
    #[error("timed out after {secs}s connecting to {addr}")]
    Timeout { addr: String, secs: u64 },
    #[error(
        "the host key of {addr} changed: expected {expected}, got {got}. Refusing to connect; if the server was reinstalled, check the new key and run `tomo server trust`"
    )]
    HostKeyChanged { addr: String, expected: String, got: String },
    #[error("{user}@{addr} refused the {method}")]
    AuthFailed { addr: String, user: String, method: &'static str },
    #[error("cannot use the private key {path}: {detail}")]
    KeyFile { path: String, detail: String },
    #[error("ssh-agent: {0}")]
    Agent(String),
    #[error("{addr}: {detail}")]
    Protocol { addr: String, detail: String },
    #[error("`{command}` on {addr} timed out after {secs}s")]
    CommandTimeout { addr: String, command: String, secs: u64 },
    #[error("`{command}` on {addr} wrote more than the limit of {} MiB; stopped reading", limit / (1024 * 1024))]
    OutputTooLarge { addr: String, command: String, limit: usize },
}

/// The most a remote command may write (stdout and stderr together).
pub const MAX_EXEC_OUTPUT: usize = 8 * 1024 * 1024;

impl SshError {
    /// Whether trying again may help (a dropped connection, a refused channel).
    pub fn is_transient(&self) -> bool {
        matches!(self, SshError::Unreachable { .. } | SshError::Timeout { .. } | SshError::Protocol { .. })
    }
}

/// The result of a remote command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutput {
    pub stdout: String,
    pub stderr: String,
    /// The exit status; `None` when the command died of a signal.
    pub status: Option<u32>,
}

impl ExecOutput {
    pub fn success(&self) -> bool {
        self.status == Some(0)
    }
}

/// Options of one remote command.
#[derive(Debug, Clone, Copy)]
pub struct ExecOptions {
    pub sudo: bool,
    pub timeout: Duration,
}

struct KeyCheck {
    policy: HostKeyPolicy,
    seen: Arc<Mutex<Option<String>>>,
}

impl client::Handler for KeyCheck {
    type Error = russh::Error;

    async fn check_server_key(&mut self, key: &PublicKeyOrCertificate) -> Result<bool, Self::Error> {
        let fp = match key {
            PublicKeyOrCertificate::PublicKey { key, .. } => key.fingerprint(HashAlg::Sha256).to_string(),
            PublicKeyOrCertificate::Certificate(cert) => {
                russh::keys::PublicKey::from(cert.public_key().clone()).fingerprint(HashAlg::Sha256).to_string()
            }
        };
        let ok = match &self.policy {
            HostKeyPolicy::Expect(want) => same_fingerprint(want, &fp),
            HostKeyPolicy::Learn => true,
        };
        *self.seen.lock().unwrap_or_else(|p| p.into_inner()) = Some(fp);
        Ok(ok)
    }
}

/// A TCP stream that acknowledges every read at once (TCP_QUICKACK, which
/// Linux clears again after use). sshd keeps Nagle on until a session channel
/// starts, and tomo's Docker calls use none (only streamlocal channels):
/// without quick ACKs each small reply would wait for the client's delayed
/// ACK, about 40 ms. This replaces running a command just to switch Nagle
/// off, which costs a login shell on every server.
struct QuickAck(tokio::net::TcpStream);

impl tokio::io::AsyncRead for QuickAck {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let r = std::pin::Pin::new(&mut self.0).poll_read(cx, buf);
        if r.is_ready() {
            let _ = socket2::SockRef::from(&self.0).set_tcp_quickack(true);
        }
        r
    }
}

impl tokio::io::AsyncWrite for QuickAck {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.0).poll_write(cx, buf)
    }
    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_flush(cx)
    }
    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

fn same_fingerprint(a: &str, b: &str) -> bool {
    a.trim_end_matches('=') == b.trim_end_matches('=')
}

/// One authenticated SSH connection; cheap to share (`Arc`).
pub struct SshSession {
    handle: Handle<KeyCheck>,
    addr: String,
    host_key: String,
    /// sshd refuses more concurrent session channels than its MaxSessions (10).
    exec_slots: Semaphore,
    resident: resident::Resident,
}

impl std::fmt::Debug for SshSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SshSession").field("addr", &self.addr).finish()
    }
}

/// The ciphers offered, best first: AES-GCM before ChaCha20-Poly1305 (russh's
/// default first choice), as AES-GCM runs on the CPU's AES instructions and
/// is several times faster here on the bulk transfers of backups and
/// restores; both are authenticated ciphers of the same strength.
const CIPHERS: &[russh::cipher::Name] = &[
    russh::cipher::AES_128_GCM,
    russh::cipher::AES_256_GCM,
    russh::cipher::CHACHA20_POLY1305,
    russh::cipher::AES_256_CTR,
    russh::cipher::AES_192_CTR,
    russh::cipher::AES_128_CTR,
];

impl SshSession {
    /// Connects, verifies the host key, and logs in.
    pub async fn connect(
        host: &str,
        port: u16,
        user: &str,
        credential: &Credential,
        policy: HostKeyPolicy,
        timeout: Duration,
    ) -> Result<SshSession, SshError> {
        let addr = format!("{host}:{port}");
        let started = std::time::Instant::now();
        let seen = Arc::new(Mutex::new(None));
        let config = Arc::new(client::Config {
            nodelay: true,
            keepalive_interval: Some(Duration::from_secs(15)),
            keepalive_max: 3,
            inactivity_timeout: None,
            preferred: russh::Preferred { cipher: std::borrow::Cow::Borrowed(CIPHERS), ..Default::default() },
            ..client::Config::default()
        });
        let expected = match &policy {
            HostKeyPolicy::Expect(fp) => Some(fp.clone()),
            HostKeyPolicy::Learn => None,
        };
        let handler = KeyCheck { policy, seen: seen.clone() };
        let connecting = async {
            let tcp = tokio::net::TcpStream::connect((host, port)).await.map_err(russh::Error::from)?;
            tcp.set_nodelay(true).map_err(russh::Error::from)?;
            client::connect_stream(config, QuickAck(tcp), handler).await
        };
        let mut handle = match tokio::time::timeout(timeout, connecting).await {
            Err(_) => return Err(SshError::Timeout { addr, secs: timeout.as_secs() }),
            Ok(Ok(h)) => h,
            Ok(Err(e)) => {
                let got = seen.lock().unwrap_or_else(|p| p.into_inner()).clone();
                return Err(match (expected, got) {
                    (Some(expected), Some(got)) if !same_fingerprint(&expected, &got) => {
                        SshError::HostKeyChanged { addr, expected, got }
                    }
                    _ => SshError::Unreachable { addr, detail: e.to_string() },
                });
            }
        };
        let host_key = seen.lock().unwrap_or_else(|p| p.into_inner()).clone().unwrap_or_default();
        let handshake = started.elapsed();
        let login = authenticate(&mut handle, user, credential, &addr);
        match tokio::time::timeout(timeout, login).await {
            Err(_) => return Err(SshError::Timeout { addr, secs: timeout.as_secs() }),
            Ok(r) => r?,
        }
        let logged_in = started.elapsed();
        let session =
            SshSession { handle, addr, host_key, exec_slots: Semaphore::new(8), resident: Default::default() };
        tracing::debug!(
            addr = %session.addr,
            handshake_ms = handshake.as_millis() as u64,
            login_ms = (logged_in - handshake).as_millis() as u64,
            "ssh connected"
        );
        Ok(session)
    }

    /// Connects far enough to see the server's host key (key exchange only, no
    /// login) and returns its SHA256 fingerprint.
    pub async fn fetch_host_key(host: &str, port: u16, timeout: Duration) -> Result<String, SshError> {
        let addr = format!("{host}:{port}");
        let seen = Arc::new(Mutex::new(None));
        let handler = KeyCheck { policy: HostKeyPolicy::Learn, seen: seen.clone() };
        let config = Arc::new(client::Config { nodelay: true, ..client::Config::default() });
        match tokio::time::timeout(timeout, client::connect(config, (host, port), handler)).await {
            Err(_) => Err(SshError::Timeout { addr, secs: timeout.as_secs() }),
            Ok(Err(e)) => Err(SshError::Unreachable { addr, detail: e.to_string() }),
            Ok(Ok(_handle)) => seen
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone()
                .ok_or(SshError::Protocol { addr, detail: "the server showed no host key".into() }),
        }
    }

    /// The server's host key fingerprint, as verified.
    pub fn host_key(&self) -> &str {
        &self.host_key
    }

    pub fn addr(&self) -> &str {
        &self.addr
    }

    pub fn is_closed(&self) -> bool {
        self.handle.is_closed()
    }

    /// Runs `args` (quoted here) and collects stdout, stderr and the status.
    pub async fn exec(&self, args: &[&str], opts: ExecOptions) -> Result<ExecOutput, SshError> {
        self.exec_with_input(args, None, opts).await
    }

    /// Runs `args` (quoted here) with `input` as its stdin (then end of
    /// file), and collects stdout, stderr and the status.
    pub async fn exec_with_input(
        &self,
        args: &[&str],
        input: Option<&[u8]>,
        opts: ExecOptions,
    ) -> Result<ExecOutput, SshError> {
        let command = command_line(args, opts.sudo);
        let _slot = self.exec_slots.acquire().await.map_err(|e| self.protocol(e.to_string()))?;
        let run = async {
            let mut channel = self.open_session_channel().await?;
            channel.exec(true, command.as_bytes()).await.map_err(|e| self.protocol(e.to_string()))?;
            if let Some(bytes) = input {
                channel.data(bytes).await.map_err(|e| self.protocol(e.to_string()))?;
                channel.eof().await.map_err(|e| self.protocol(e.to_string()))?;
            }
            let (mut stdout, mut stderr, mut status) = (Vec::new(), Vec::new(), None);
            while let Some(msg) = channel.wait().await {
                match msg {
                    ChannelMsg::Data { data } => stdout.extend_from_slice(&data),
                    ChannelMsg::ExtendedData { data, ext: 1 } => stderr.extend_from_slice(&data),
                    ChannelMsg::ExitStatus { exit_status } => status = Some(exit_status),
                    _ => {}
                }
                if stdout.len() + stderr.len() > MAX_EXEC_OUTPUT {
                    let _ = channel.close().await;
                    return Err(SshError::OutputTooLarge {
                        addr: self.addr.clone(),
                        command: args.first().copied().unwrap_or_default().to_string(),
                        limit: MAX_EXEC_OUTPUT,
                    });
                }
            }
            Ok(ExecOutput {
                stdout: String::from_utf8_lossy(&stdout).into_owned(),
                stderr: String::from_utf8_lossy(&stderr).into_owned(),
                status,
            })
        };
        match tokio::time::timeout(opts.timeout, run).await {
            Ok(r) => r,
            Err(_) => Err(SshError::CommandTimeout {
                addr: self.addr.clone(),
                command: args.first().copied().unwrap_or_default().to_string(),
                secs: opts.timeout.as_secs(),
            }),
        }
    }

    /// A session channel running `command` (already quoted), for a caller
    /// that streams its input or output itself (`datastream`).
    pub async fn exec_channel(&self, command: &str) -> Result<russh::Channel<client::Msg>, SshError> {
        let channel = self.open_session_channel().await?;
        self.exec_on(&channel, command).await?;
        Ok(channel)
    }

    /// A session channel with no command yet (`exec_on` starts one): a
    /// caller that must close it if dropped meanwhile holds it first.
    pub async fn session_channel(&self) -> Result<russh::Channel<client::Msg>, SshError> {
        self.open_session_channel().await
    }

    /// Starts `command` (already quoted) on a channel of `session_channel`.
    pub async fn exec_on(&self, channel: &russh::Channel<client::Msg>, command: &str) -> Result<(), SshError> {
        channel.exec(true, command.as_bytes()).await.map_err(|e| self.protocol(e.to_string()))
    }

    /// A stream to a Unix socket on the server (the Docker Engine's).
    pub async fn streamlocal(&self, path: &str) -> Result<russh::ChannelStream<client::Msg>, SshError> {
        let mut delay = CHANNEL_RETRY_DELAY;
        for attempt in 1.. {
            match self.handle.channel_open_direct_streamlocal(path).await {
                Ok(channel) => return Ok(channel.into_stream()),
                Err(russh::Error::ChannelOpenFailure(_)) if attempt < CHANNEL_ATTEMPTS => {}
                Err(e) => return Err(self.protocol(e.to_string())),
            }
            tokio::time::sleep(delay).await;
            delay *= 2;
        }
        unreachable!("the loop returns")
    }

    /// A session channel; sshd refuses one beyond MaxSessions until a slot
    /// frees, so a refusal is retried a few times with growing delays.
    async fn open_session_channel(&self) -> Result<russh::Channel<client::Msg>, SshError> {
        let mut delay = CHANNEL_RETRY_DELAY;
        for attempt in 1.. {
            match self.handle.channel_open_session().await {
                Ok(c) => return Ok(c),
                Err(russh::Error::ChannelOpenFailure(_)) if attempt < CHANNEL_ATTEMPTS => {}
                Err(e) => return Err(self.protocol(e.to_string())),
            }
            tokio::time::sleep(delay).await;
            delay *= 2;
        }
        unreachable!("the loop returns")
    }

    fn protocol(&self, detail: String) -> SshError {
        SshError::Protocol { addr: self.addr.clone(), detail }
    }
}

async fn authenticate(
    handle: &mut Handle<KeyCheck>,
    user: &str,
    credential: &Credential,
    addr: &str,
) -> Result<(), SshError> {
    let proto = |e: russh::Error| SshError::Protocol { addr: addr.to_string(), detail: e.to_string() };
    let (result, method) = match credential {
        Credential::Password(p) => (handle.authenticate_password(user, p.expose()).await.map_err(proto)?, "password"),
        Credential::KeyFile(path) => {
            let key = russh::keys::load_secret_key(path, None)
                .map_err(|e| SshError::KeyFile { path: path.display().to_string(), detail: e.to_string() })?;
            let hash = handle.best_supported_rsa_hash().await.map_err(proto)?.flatten();
            let key = PrivateKeyWithHashAlg::new(Arc::new(key), hash);
            (handle.authenticate_publickey(user, key).await.map_err(proto)?, "key")
        }
        Credential::Key(text) => {
            let key = russh::keys::decode_secret_key(text.expose(), None)
                .map_err(|e| SshError::KeyFile { path: "the key from the vault".into(), detail: e.to_string() })?;
            let hash = handle.best_supported_rsa_hash().await.map_err(proto)?.flatten();
            let key = PrivateKeyWithHashAlg::new(Arc::new(key), hash);
            (handle.authenticate_publickey(user, key).await.map_err(proto)?, "key")
        }
        Credential::Agent => {
            let mut agent = russh::keys::agent::client::AgentClient::connect_env()
                .await
                .map_err(|e| SshError::Agent(format!("cannot reach the agent (is SSH_AUTH_SOCK set?): {e}")))?;
            let keys = agent.request_identities().await.map_err(|e| SshError::Agent(e.to_string()))?;
            let hash = handle.best_supported_rsa_hash().await.map_err(proto)?.flatten();
            let mut ok = false;
            for key in keys {
                let key = key.public_key().into_owned();
                match handle.authenticate_publickey_with(user, key, hash, &mut agent).await {
                    Ok(AuthResult::Success) => {
                        ok = true;
                        break;
                    }
                    Ok(_) => continue,
                    Err(e) => return Err(SshError::Agent(e.to_string())),
                }
            }
            if ok {
                return Ok(());
            }
            return Err(SshError::AuthFailed { addr: addr.into(), user: user.into(), method: "keys of the ssh-agent" });
        }
    };
    match result {
        AuthResult::Success => Ok(()),
        _ => Err(SshError::AuthFailed { addr: addr.into(), user: user.into(), method }),
    }
}

/// Quoting lives with the argument lists it quotes (`model::host`, pure).
pub use crate::model::host::{command_line, quote};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_keeps_arguments_verbatim() {
        assert_eq!(quote("plain-arg_1.2"), "plain-arg_1.2");
        assert_eq!(quote("two words"), "'two words'");
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote("$(rm -rf /); `x`"), "'$(rm -rf /); `x`'");
        assert_eq!(quote(""), "''");
        assert_eq!(command_line(&["echo", "a b"], true), "sudo -n -- echo 'a b'");
    }

    #[test]
    fn fingerprints_compare_without_padding() {
        assert!(same_fingerprint("SHA256:abc=", "SHA256:abc"));
        assert!(!same_fingerprint("SHA256:abc", "SHA256:abd"));
    }
}
