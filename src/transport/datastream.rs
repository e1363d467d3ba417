//! App data streamed out of and into a server's folders as tar: a named
//! volume's mountpoint or a bind folder, read with `tar c` and written with
//! `tar x` on the server itself (over its SSH connection, or on this machine
//! for `local`). The bytes pass through in bounded chunks (the SSH channel's
//! window and message queue, a pipe locally): nothing is staged whole, in
//! memory or on the server's disk. The path is an argument of a fixed
//! script (`"$1"`, quoted by `ssh::command_line`), never pasted into it.
//!
//! GNU tar is used on the server for what a restore must keep: numeric
//! owners, modes, symlinks, hard links, sparse files, any file name (tar
//! headers carry names as bytes; newlines and spaces included).
//!
//! A copy is opened ahead of its use (`open_tar_out`, `open_tar_in`): on a
//! remote server its session starts at once, and with it the login shell,
//! whose rc files can take 100 ms and more of a core; the script then
//! waits for a line `go` on its input before it reads or writes any data.
//! So the shell's start overlaps other work (the copy before it, the
//! archive's check), and a copy opened but never started (dropped: the
//! caller gave up) ends having touched nothing.

use std::process::Stdio;

use russh::ChannelMsg;
use russh::client::Msg;
use tokio::io::{AsyncBufRead, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::hostfs::HostFs;
use super::ssh::{SshError, SshSession, command_line};

/// Waits for the line `go` on stdin; anything else (the input closed: the
/// caller dropped the copy) ends the script having done nothing.
const GATE: &str = r#"IFS= read -r go && [ "$go" = go ] || exit 0; "#;

/// Remote: enters the folder `$1` (exit status `NOT_A_FOLDER` when it is
/// not one; `cd`'s own failure, permissions say, is an error with its
/// message), then says so with one byte `R` on stdout.
const ENTER: &str = r#"[ -d "$1" ] || exit 3; cd -- "$1" || exit 4; printf R; "#;

/// The exit status of `ENTER` when `$1` is not a folder.
const NOT_A_FOLDER: u32 = 3;

/// The exit status of `ENTER` when `cd` into `$1` fails.
const CANNOT_ENTER: u32 = 4;

/// Local: enters the folder `$1`.
const ENTER_LOCAL: &str = r#"set -e; cd -- "$1"; "#;

/// Writes a tar stream of the current folder (its contents, as `./…`) to stdout.
const TAR_C: &str = "exec tar --create --file=- --numeric-owner --sparse --one-file-system .";

/// Empties the folder `$1` (made when missing), then extracts the tar stream
/// of stdin into it, owners and modes as recorded (the folder's own too).
const TAR_X: &str = r#"set -e; mkdir -p -- "$1"; cd -- "$1"; find . -mindepth 1 -maxdepth 1 -exec rm -rf -- {} +; exec tar --extract --file=- --numeric-owner --same-owner --preserve-permissions"#;

/// Prints each argument that is a folder, NUL-terminated.
const FOLDERS: &str = r#"for p in "$@"; do [ -d "$p" ] && printf '%s\0' "$p"; done; true"#;

/// Chunk size of local copies.
const CHUNK: usize = 256 * 1024;

/// The most of a tar's standard error kept for the error message.
const MAX_STDERR: usize = 16 * 1024;

/// A tar of a folder on the server, opened (`HostFs::open_tar_out`) and not
/// yet read.
pub struct TarOut {
    fs: HostFs,
    path: String,
    what: String,
    /// Remote: the session, and whether its shell said it is in the folder.
    channel: Option<(Session, bool)>,
    /// What the session wrote to standard error before it was in the
    /// folder (a login shell's warnings, say): kept for a later failure's message.
    stderr: Vec<u8>,
}

/// A restore into a folder on the server, opened (`HostFs::open_tar_in`)
/// and not yet started: nothing on the server is touched before `run`.
pub struct TarIn {
    fs: HostFs,
    path: String,
    what: String,
    channel: Option<Session>,
}

/// A copy's session channel, closed when dropped before its copy ended (the
/// copy dropped unstarted, or its future dropped mid-copy): its shell gets
/// the end of its input and exits, and sshd frees the session.
struct Session(Option<russh::Channel<Msg>>);

impl Session {
    /// A channel running `command`: held from its opening, so that a
    /// caller dropped before the command started closes it too.
    async fn exec(ssh: &SshSession, command: &str) -> Result<Session, SshError> {
        let session = Session(Some(ssh.session_channel().await?));
        if let Some(channel) = &session.0 {
            ssh.exec_on(channel, command).await?;
        }
        Ok(session)
    }

    fn get(&mut self) -> Result<&mut russh::Channel<Msg>, String> {
        self.0.as_mut().ok_or_else(|| "the copy's session is closed".to_string())
    }

    /// The copy ended: the server closes the channel itself.
    fn done(mut self) {
        self.0.take();
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Some(channel) = self.0.take()
            && let Ok(rt) = tokio::runtime::Handle::try_current()
        {
            rt.spawn(async move {
                let _ = channel.close().await;
            });
        }
    }
}

impl HostFs {
    /// Opens a tar of the folder `path` on the server (see the module).
    pub async fn open_tar_out(&self, path: &str) -> Result<TarOut, String> {
        let what = format!("read {}", crate::term::field(path));
        let channel = match &self.session {
            Some(session) => {
                let script = format!("{ENTER}{GATE}{TAR_C}");
                let command = command_line(&["sh", "-c", &script, "tomo-tar-out", path], self.sudo);
                Some((Session::exec(session, &command).await.map_err(|e| format!("{what}: {e}"))?, false))
            }
            None => None,
        };
        Ok(TarOut { fs: self.clone(), path: path.to_string(), what, channel, stderr: Vec::new() })
    }

    /// Opens a restore into the folder `path` on the server (see the module).
    pub async fn open_tar_in(&self, path: &str) -> Result<TarIn, String> {
        let what = format!("restore {}", crate::term::field(path));
        let channel = match &self.session {
            Some(session) => {
                let script = format!("{GATE}{TAR_X}");
                let command = command_line(&["sh", "-c", &script, "tomo-tar-in", path], self.sudo);
                Some(Session::exec(session, &command).await.map_err(|e| format!("{what}: {e}"))?)
            }
            None => None,
        };
        Ok(TarIn { fs: self.clone(), path: path.to_string(), what, channel })
    }

    /// Streams a tar of the folder `path` on the server into `sink`; the
    /// number of bytes written (`TarOut::run`). Fails when `path` is not a
    /// folder.
    pub async fn tar_out<W: AsyncWrite + Unpin + Send>(&self, path: &str, sink: &mut W) -> Result<u64, String> {
        self.open_tar_out(path).await?.run(sink).await
    }

    /// Replaces the contents of the folder `path` on the server (made when
    /// missing) with the tar stream of `source` (`TarIn::run`).
    pub async fn tar_in<R: AsyncBufRead + Unpin + Send>(&self, path: &str, source: &mut R) -> Result<(), String> {
        self.open_tar_in(path).await?.run(source).await
    }

    /// Which of `paths` are folders on the server.
    pub async fn folders(&self, paths: &[String]) -> Result<Vec<String>, String> {
        if paths.is_empty() {
            return Ok(Vec::new());
        }
        let mut args: Vec<String> = ["sh", "-c", FOLDERS, "tomo-folders"].map(String::from).to_vec();
        args.extend(paths.iter().cloned());
        let out = self.command(&args, self.sudo, self.timeout).await?;
        if !out.success() {
            return Err(format!("check folders: {}", crate::term::line(out.stderr.trim())));
        }
        Ok(out.stdout.split('\0').filter(|p| !p.is_empty()).map(String::from).collect())
    }
}

impl TarOut {
    /// Whether the path is a folder: on a remote server, once its shell is
    /// in it (or found it is not one), within the server's timeout.
    pub async fn is_folder(&mut self) -> Result<bool, String> {
        let Some((session, entered)) = &mut self.channel else {
            return Ok(!self.fs.folders(std::slice::from_ref(&self.path)).await?.is_empty());
        };
        if *entered {
            return Ok(true);
        }
        let channel = session.get()?;
        let (what, stderr) = (&self.what, &mut self.stderr);
        let waiting = async {
            while let Some(msg) = channel.wait().await {
                match msg {
                    ChannelMsg::Data { data } if data.as_ref() == b"R" => return Ok(true),
                    ChannelMsg::Data { .. } => return Err(format!("{what}: unexpected output before the copy")),
                    ChannelMsg::ExtendedData { data, .. } => keep_stderr(stderr, &data),
                    ChannelMsg::ExitStatus { exit_status } => return entering_ended(what, Some(exit_status), stderr),
                    _ => {}
                }
            }
            entering_ended(what, None, stderr)
        };
        let timeout = self.fs.timeout;
        let found = tokio::time::timeout(timeout, waiting)
            .await
            .map_err(|_| format!("{what}: no answer from the server in {} s", timeout.as_secs()))??;
        *entered = found;
        Ok(found)
    }

    /// Streams the tar into `sink`; the number of bytes written. Fails, with
    /// tar's message, if tar does, when the path is not a folder, and when
    /// the connection drops mid-stream.
    pub async fn run<W: AsyncWrite + Unpin + Send>(mut self, sink: &mut W) -> Result<u64, String> {
        if !self.is_folder().await? {
            return Err(format!("{}: not a folder", self.what));
        }
        let what = self.what;
        let Some((mut session, _)) = self.channel else {
            let script = format!("{ENTER_LOCAL}{TAR_C}");
            let args = ["sh", "-c", &script, "tomo-tar-out", &self.path];
            let (written, status, stderr) = local_out(&args, self.fs.sudo, &what, sink).await?;
            return finished(&what, status, &stderr).map(|_| written);
        };
        let channel = session.get()?;
        channel.data(&b"go\n"[..]).await.map_err(|e| format!("{what}: {e}"))?;
        let _ = channel.eof().await;
        let (written, status, stderr) = channel_out(channel, sink, &what).await?;
        session.done();
        let mut all = self.stderr;
        keep_stderr(&mut all, &stderr);
        finished(&what, status, &all).map(|_| written)
    }
}

impl TarIn {
    /// Replaces the folder's contents (made when missing) with the tar
    /// stream of `source`. The caller has verified the stream before.
    pub async fn run<R: AsyncBufRead + Unpin + Send>(self, source: &mut R) -> Result<(), String> {
        let what = self.what;
        let Some(mut session) = self.channel else {
            return local_in(&["sh", "-c", TAR_X, "tomo-tar-in", &self.path], self.fs.sudo, &what, source).await;
        };
        let channel = session.get()?;
        // Large writes, straight from the source's buffer: the channel's
        // writer cuts them into packets of the server's largest size
        // (`Channel::data` copies 8 KiB at a time).
        let sent = {
            let mut writer = channel.make_writer();
            match writer.write_all(b"go\n").await {
                Ok(()) => tokio::io::copy_buf(&mut *source, &mut writer).await,
                Err(e) => Err(e),
            }
        };
        let _ = channel.eof().await;
        let (mut stderr, mut status) = (Vec::new(), None);
        while let Some(msg) = channel.wait().await {
            match msg {
                ChannelMsg::ExtendedData { data, .. } | ChannelMsg::Data { data } => keep_stderr(&mut stderr, &data),
                ChannelMsg::ExitStatus { exit_status } => status = Some(exit_status),
                _ => {}
            }
        }
        session.done();
        finished(&what, status, &stderr)?;
        sent.map(|_| ()).map_err(|e| format!("{what}: sending: {e}"))
    }
}

/// A streaming command's end: the bytes it wrote, its exit status (none: the
/// connection dropped or it died of a signal) and its standard error (capped).
pub(super) type Ended = (u64, Option<u32>, Vec<u8>);

/// Copies the output of the command on `channel` into `sink` until it ends.
pub(super) async fn channel_out<W: AsyncWrite + Unpin + Send>(
    channel: &mut russh::Channel<Msg>,
    sink: &mut W,
    what: &str,
) -> Result<Ended, String> {
    let (mut written, mut stderr, mut status) = (0u64, Vec::new(), None);
    while let Some(msg) = channel.wait().await {
        match msg {
            ChannelMsg::Data { data } => {
                sink.write_all(&data).await.map_err(|e| format!("{what}: writing: {e}"))?;
                written += data.len() as u64;
            }
            ChannelMsg::ExtendedData { data, .. } => keep_stderr(&mut stderr, &data),
            ChannelMsg::ExitStatus { exit_status } => status = Some(exit_status),
            _ => {}
        }
    }
    sink.flush().await.map_err(|e| format!("{what}: writing: {e}"))?;
    Ok((written, status, stderr))
}

/// Runs `args` here, copying its standard output into `sink`.
pub(super) async fn local_out<W: AsyncWrite + Unpin + Send>(
    args: &[&str],
    sudo: bool,
    what: &str,
    sink: &mut W,
) -> Result<Ended, String> {
    let mut child = local(args, sudo).stdout(Stdio::piped()).spawn().map_err(|e| format!("{what}: {e}"))?;
    let mut out = child.stdout.take().ok_or_else(|| format!("{what}: no pipe"))?;
    let mut err = child.stderr.take().ok_or_else(|| format!("{what}: no pipe"))?;
    let copy = copy_chunks(&mut out, sink);
    let mut stderr = Vec::new();
    let (copied, _) = tokio::join!(copy, read_capped(&mut err, &mut stderr));
    let status = child.wait().await.map_err(|e| format!("{what}: {e}"))?;
    let written = copied.map_err(|e| format!("{what}: {e}"))?;
    Ok((written, status.code().and_then(|c| u32::try_from(c).ok()), stderr))
}

/// `args` run here, `source` copied into its stdin.
async fn local_in<R: AsyncBufRead + Unpin + Send>(
    args: &[&str],
    sudo: bool,
    what: &str,
    source: &mut R,
) -> Result<(), String> {
    let mut child =
        local(args, sudo).stdin(Stdio::piped()).stdout(Stdio::null()).spawn().map_err(|e| format!("{what}: {e}"))?;
    let mut input = child.stdin.take().ok_or_else(|| format!("{what}: no pipe"))?;
    let mut err = child.stderr.take().ok_or_else(|| format!("{what}: no pipe"))?;
    let feed = async {
        let r = tokio::io::copy_buf(source, &mut input).await;
        drop(input);
        r
    };
    let mut stderr = Vec::new();
    let (fed, _) = tokio::join!(feed, read_capped(&mut err, &mut stderr));
    let status = child.wait().await.map_err(|e| format!("{what}: {e}"))?;
    finished(what, status.code().and_then(|c| u32::try_from(c).ok()), &stderr)?;
    fed.map(|_| ()).map_err(|e| format!("{what}: sending: {e}"))
}

impl super::docker::DockerClient {
    /// Where a volume's data is on the server (`None`: no such volume).
    pub async fn volume_mountpoint(&self, name: &str) -> Result<Option<String>, super::docker::DockerError> {
        super::docker::segment("inspect volume", "name", name)?;
        match self.docker.inspect_volume(name).await {
            Ok(v) => Ok(Some(v.mountpoint)),
            Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => Ok(None),
            Err(e) => Err(super::docker::DockerError::api(format!("inspect volume {name}"), e)),
        }
    }
}

/// A local process for `args` (behind `sudo -n` when `sudo`), its standard
/// error piped, killed when dropped.
pub(super) fn local(args: &[&str], sudo: bool) -> tokio::process::Command {
    let mut full: Vec<&str> = if sudo { vec!["sudo", "-n", "--"] } else { Vec::new() };
    full.extend_from_slice(args);
    let mut cmd = tokio::process::Command::new(full[0]);
    cmd.args(&full[1..]).stdin(Stdio::null()).stderr(Stdio::piped()).kill_on_drop(true);
    cmd
}

pub(super) async fn copy_chunks<R, W>(from: &mut R, to: &mut W) -> std::io::Result<u64>
where
    R: AsyncRead + Unpin + ?Sized,
    W: AsyncWrite + Unpin + ?Sized,
{
    let mut buf = vec![0u8; CHUNK];
    let mut total = 0u64;
    loop {
        let n = from.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        to.write_all(&buf[..n]).await?;
        total += n as u64;
    }
    to.flush().await?;
    Ok(total)
}

pub(super) async fn read_capped<R: AsyncRead + Unpin>(from: &mut R, into: &mut Vec<u8>) {
    let mut buf = [0u8; 4096];
    while let Ok(n) = from.read(&mut buf).await {
        if n == 0 {
            break;
        }
        keep_stderr(into, &buf[..n]);
    }
}

pub(super) fn keep_stderr(into: &mut Vec<u8>, data: &[u8]) {
    let room = MAX_STDERR.saturating_sub(into.len());
    into.extend_from_slice(&data[..data.len().min(room)]);
}

/// How `ENTER` ended before it said `R`: `Ok(false)` when the path is not
/// a folder; else an error with the reason (`cd`'s message when it could
/// not enter the folder).
fn entering_ended(what: &str, status: Option<u32>, stderr: &[u8]) -> Result<bool, String> {
    match status {
        Some(NOT_A_FOLDER) => Ok(false),
        Some(CANNOT_ENTER) => Err(format!(
            "{what}: cannot enter the folder: {}",
            crate::term::line(String::from_utf8_lossy(stderr).trim())
        )),
        Some(0) => Err(format!("{what}: the copy ended before it started")),
        status => finished(what, status, stderr).map(|_| false),
    }
}

/// Ok when the command exited with 0; else its standard error as the reason
/// (no status: the connection dropped or the command died of a signal).
fn finished(what: &str, status: Option<u32>, stderr: &[u8]) -> Result<(), String> {
    let text = String::from_utf8_lossy(stderr);
    match status {
        Some(0) => Ok(()),
        Some(code) => Err(format!("{what}: tar exited with {code}: {}", crate::term::line(text.trim()))),
        None => Err(format!(
            "{what}: the stream ended without an exit status (connection lost or command killed){}",
            if text.trim().is_empty() { String::new() } else { format!(": {}", crate::term::line(text.trim())) }
        )),
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    use std::time::Duration;

    use super::*;

    fn local_fs() -> HostFs {
        HostFs { session: None, sudo: false, timeout: Duration::from_secs(10) }
    }

    #[tokio::test]
    async fn a_folder_goes_out_and_back_in_with_links_modes_and_odd_names() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        std::fs::create_dir_all(src.join("sub dir")).unwrap();
        std::fs::write(src.join("sub dir/a file\nwith newline"), b"hello").unwrap();
        std::fs::write(src.join("plain"), vec![7u8; 300_000]).unwrap();
        std::fs::set_permissions(src.join("plain"), std::fs::Permissions::from_mode(0o640)).unwrap();
        std::os::unix::fs::symlink("sub dir", src.join("link")).unwrap();
        let sparse = std::fs::File::create(src.join("sparse")).unwrap();
        sparse.set_len(64 * 1024 * 1024).unwrap();
        let fs = local_fs();
        let mut tar = Vec::new();
        let n = fs.tar_out(&src.display().to_string(), &mut tar).await.unwrap();
        assert_eq!(n as usize, tar.len());
        assert!(tar.len() < 8 * 1024 * 1024, "the sparse file was not kept sparse: {}", tar.len());
        let dst = dir.path().join("dst");
        std::fs::create_dir_all(&dst).unwrap();
        std::fs::write(dst.join("stale"), b"old").unwrap();
        std::fs::set_permissions(&src, std::fs::Permissions::from_mode(0o750)).unwrap();
        let mut tar = Vec::new();
        fs.tar_out(&src.display().to_string(), &mut tar).await.unwrap();
        fs.tar_in(&dst.display().to_string(), &mut tar.as_slice()).await.unwrap();
        assert!(!dst.join("stale").exists(), "what the restore replaces is removed");
        assert_eq!(std::fs::read(dst.join("sub dir/a file\nwith newline")).unwrap(), b"hello");
        assert_eq!(std::fs::metadata(dst.join("plain")).unwrap().permissions().mode() & 0o7777, 0o640);
        assert_eq!(std::fs::read_link(dst.join("link")).unwrap().to_str(), Some("sub dir"));
        let meta = std::fs::metadata(dst.join("sparse")).unwrap();
        assert_eq!(meta.len(), 64 * 1024 * 1024);
        assert!(meta.blocks() * 512 < 1024 * 1024, "restored sparse file is not sparse");
        assert_eq!(std::fs::metadata(&dst).unwrap().permissions().mode() & 0o7777, 0o750);
    }

    #[tokio::test]
    async fn a_missing_folder_or_a_broken_stream_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let fs = local_fs();
        let missing = dir.path().join("nope").display().to_string();
        let err = fs.tar_out(&missing, &mut Vec::new()).await.unwrap_err();
        assert!(err.contains("not a folder"), "{err}");
        assert!(!fs.open_tar_out(&missing).await.unwrap().is_folder().await.unwrap());
        let here = dir.path().display().to_string();
        assert!(fs.open_tar_out(&here).await.unwrap().is_folder().await.unwrap());
        let dst = dir.path().join("dst").display().to_string();
        let err = fs.tar_in(&dst, &mut &b"not a tar stream at all"[..]).await.unwrap_err();
        assert!(err.contains("tar exited with"), "{err}");
        let found = fs.folders(&[dir.path().display().to_string(), missing]).await.unwrap();
        assert_eq!(found, vec![dir.path().display().to_string()]);
    }

    /// `ENTER`'s exit statuses as the copy reads them: with a `cd` that
    /// fails (a function in its place: root enters any folder), with a path
    /// that is not a folder, and with no status (the connection lost).
    #[test]
    fn a_folder_that_cannot_be_entered_is_an_error_with_cds_message() {
        let dir = tempfile::tempdir().unwrap();
        let run = |prelude: &str, path: &str| {
            let script = format!("{prelude}{ENTER}");
            let out = std::process::Command::new("sh").args(["-c", &script, "tomo-tar-out", path]).output().unwrap();
            let status = out.status.code().and_then(|c| u32::try_from(c).ok());
            entering_ended("read /x", status, &out.stderr)
        };
        let here = dir.path().display().to_string();
        let err = run("cd() { echo 'cd: permission denied' >&2; return 1; }; ", &here).unwrap_err();
        assert_eq!(err, "read /x: cannot enter the folder: cd: permission denied");
        let file = dir.path().join("file");
        std::fs::write(&file, b"").unwrap();
        assert_eq!(run("", &file.display().to_string()), Ok(false));
        let lost = entering_ended("read /x", None, b"").unwrap_err();
        assert!(lost.contains("connection lost"), "{lost}");
        let other = entering_ended("read /x", Some(1), b"sh: 1: oops").unwrap_err();
        assert!(other.contains("exited with 1: sh: 1: oops"), "{other}");
    }
}
