//! Files in a server's folder (backup archives on a `target: {server, path}`),
//! over its SSH connection (or on this machine for `local`): a file written
//! from a stream under a temporary name (`.NAME.partial`, mode 0600) and
//! renamed only once its size matches what was sent (`put_partial`, then
//! `finish_put`), read back as a stream (`read_file`), listed with the first
//! bytes of each file in one command (`list_files`), and removed. Bytes pass
//! through in bounded chunks (the SSH channel's window, a pipe locally):
//! nothing is staged whole. Paths are arguments of fixed scripts (`"$1"`),
//! never pasted into them.

use std::process::Stdio;

use base64::Engine as _;
use russh::ChannelMsg;
use tokio::io::{AsyncRead, AsyncWrite};

use super::datastream::{channel_out, copy_chunks, keep_stderr, local, local_out, read_capped};
use super::hostfs::HostFs;
use super::ssh::command_line;

/// stdin to `$1/.$2.partial` (0600, folder made when missing); refuses when
/// `$1/$2` exists.
const PUT: &str = r#"set -e; umask 077; mkdir -p -- "$1"; if [ -e "$1/$2" ]; then echo "$1/$2 exists" >&2; exit 17; fi; cat > "$1/.$2.partial""#;

/// Renames `$1/.$2.partial` to `$1/$2` when its size is `$3`.
const FINISH: &str = r#"set -e; t="$1/.$2.partial"; s=$(stat -c %s -- "$t"); if [ "$s" != "$3" ]; then echo "$t holds $s bytes, $3 were sent" >&2; rm -f -- "$t"; exit 18; fi; chmod 600 -- "$t"; mv -f -- "$t" "$1/$2""#;

/// Removes `$1/.$2.partial`.
const DROP: &str = r#"rm -f -- "$1/.$2.partial""#;

/// The file `$1` to stdout.
const READ: &str = r#"exec cat -- "$1""#;

/// Per regular file of `$1` named `*$2`: size, base64 name, base64 of its
/// first `$3` bytes, one line each. No folder: nothing.
const LIST: &str = r#"cd -- "$1" 2>/dev/null || exit 0; for f in *"$2"; do [ -f "$f" ] || continue; printf '%s %s ' "$(stat -c %s -- "$f")" "$(printf '%s' "$f" | base64 -w0)"; head -c "$3" -- "$f" | base64 -w0; echo; done"#;

/// Removes the files `$2...` of the folder `$1`.
const REMOVE: &str = r#"set -e; cd -- "$1"; shift; rm -f -- "$@""#;

/// A file of a listed folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedFile {
    pub name: String,
    pub size: u64,
    /// Its first bytes (as many as asked for, fewer when shorter).
    pub head: Vec<u8>,
}

impl HostFs {
    /// Streams `source` into `dir/.name.partial`; the bytes sent. The file is
    /// not visible under `name` until `finish_put`.
    pub async fn put_partial<R: AsyncRead + Unpin + Send>(
        &self,
        dir: &str,
        name: &str,
        source: &mut R,
    ) -> Result<u64, String> {
        let args = ["sh", "-c", PUT, "tomo-put", dir, name];
        let what = format!("write {}/{}", crate::term::field(dir), crate::term::field(name));
        match &self.session {
            Some(session) => {
                let command = command_line(&args, self.sudo);
                let mut channel = session.exec_channel(&command).await.map_err(|e| format!("{what}: {e}"))?;
                let mut counted = Counted { inner: source, n: 0 };
                let sent = channel.data(&mut counted).await;
                if sent.is_ok() {
                    let _ = channel.eof().await;
                } else {
                    let _ = channel.close().await;
                }
                let (mut stderr, mut status) = (Vec::new(), None);
                while let Some(msg) = channel.wait().await {
                    match msg {
                        ChannelMsg::ExtendedData { data, .. } | ChannelMsg::Data { data } => {
                            keep_stderr(&mut stderr, &data)
                        }
                        ChannelMsg::ExitStatus { exit_status } => status = Some(exit_status),
                        _ => {}
                    }
                }
                sent.map_err(|e| format!("{what}: sending: {e}"))?;
                done(&what, status, &stderr).map(|_| counted.n)
            }
            None => {
                let mut child = local(&args, self.sudo)
                    .stdin(Stdio::piped())
                    .stdout(Stdio::null())
                    .spawn()
                    .map_err(|e| format!("{what}: {e}"))?;
                let mut input = child.stdin.take().ok_or_else(|| format!("{what}: no pipe"))?;
                let mut err = child.stderr.take().ok_or_else(|| format!("{what}: no pipe"))?;
                let feed = async {
                    let r = copy_chunks(source, &mut input).await;
                    drop(input);
                    r
                };
                let mut stderr = Vec::new();
                let (fed, _) = tokio::join!(feed, read_capped(&mut err, &mut stderr));
                let status = child.wait().await.map_err(|e| format!("{what}: {e}"))?;
                let n = fed.map_err(|e| format!("{what}: sending: {e}"))?;
                done(&what, status.code().and_then(|c| u32::try_from(c).ok()), &stderr).map(|_| n)
            }
        }
    }

    /// Renames `dir/.name.partial` to `dir/name` (0600) when it holds `size` bytes.
    pub async fn finish_put(&self, dir: &str, name: &str, size: u64) -> Result<(), String> {
        let args = ["sh", "-c", FINISH, "tomo-put", dir, name, &size.to_string()].map(String::from);
        self.script(&format!("finish {}/{}", crate::term::field(dir), crate::term::field(name)), &args).await.map(drop)
    }

    /// Removes `dir/.name.partial` (after a failed write).
    pub async fn drop_partial(&self, dir: &str, name: &str) -> Result<(), String> {
        let args = ["sh", "-c", DROP, "tomo-put", dir, name].map(String::from);
        self.script("remove a partial archive", &args).await.map(drop)
    }

    /// Streams the file `path` (or `dir/.name.partial`, named so) into `sink`;
    /// the bytes written.
    pub async fn read_file<W: AsyncWrite + Unpin + Send>(&self, path: &str, sink: &mut W) -> Result<u64, String> {
        let args = ["sh", "-c", READ, "tomo-read", path];
        let what = format!("read {}", crate::term::field(path));
        let (written, status, stderr) = match &self.session {
            Some(session) => {
                let command = command_line(&args, self.sudo);
                let mut channel = session.exec_channel(&command).await.map_err(|e| format!("{what}: {e}"))?;
                channel_out(&mut channel, sink, &what).await?
            }
            None => local_out(&args, self.sudo, &what, sink).await?,
        };
        done(&what, status, &stderr).map(|_| written)
    }

    /// The regular files of `dir` whose names end in `suffix`, each with its
    /// first `head` bytes, in one command (none when the folder is missing).
    pub async fn list_files(&self, dir: &str, suffix: &str, head: usize) -> Result<Vec<ListedFile>, String> {
        let args = ["sh", "-c", LIST, "tomo-list", dir, suffix, &head.to_string()].map(String::from);
        let out = self.script(&format!("list {}", crate::term::field(dir)), &args).await?;
        Ok(parse_listing(&out))
    }

    /// Removes the files `names` (plain names) of `dir`.
    pub async fn remove_files(&self, dir: &str, names: &[String]) -> Result<(), String> {
        if names.is_empty() {
            return Ok(());
        }
        if let Some(bad) = names.iter().find(|n| n.is_empty() || n.contains('/')) {
            return Err(format!("`{}` is not a file name", crate::term::field(bad)));
        }
        let mut args: Vec<String> = ["sh", "-c", REMOVE, "tomo-remove", dir].map(String::from).to_vec();
        args.extend(names.iter().cloned());
        self.script(&format!("remove files of {}", crate::term::field(dir)), &args).await.map(drop)
    }

    async fn script(&self, what: &str, args: &[String]) -> Result<String, String> {
        let out = self.command(args, self.sudo, self.timeout).await.map_err(|e| format!("{what}: {e}"))?;
        if !out.success() {
            return Err(format!("{what}: exited with {:?}: {}", out.status, crate::term::line(out.stderr.trim())));
        }
        Ok(out.stdout)
    }
}

/// Lines of `size base64(name) base64(head)`; malformed lines are skipped.
fn parse_listing(out: &str) -> Vec<ListedFile> {
    let b64 = base64::engine::general_purpose::STANDARD;
    out.lines()
        .filter_map(|line| {
            let mut parts = line.split(' ');
            let size = parts.next()?.parse().ok()?;
            let name = String::from_utf8(b64.decode(parts.next()?).ok()?).ok()?;
            let head = b64.decode(parts.next().unwrap_or_default()).ok()?;
            Some(ListedFile { name, size, head })
        })
        .collect()
}

fn done(what: &str, status: Option<u32>, stderr: &[u8]) -> Result<(), String> {
    let text = String::from_utf8_lossy(stderr);
    match status {
        Some(0) => Ok(()),
        Some(code) => Err(format!("{what}: exited with {code}: {}", crate::term::line(text.trim()))),
        None => Err(format!("{what}: the stream ended without an exit status (connection lost or command killed)")),
    }
}

/// A reader counting the bytes read through it.
struct Counted<'a, R> {
    inner: &'a mut R,
    n: u64,
}

impl<R: AsyncRead + Unpin> AsyncRead for Counted<'_, R> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = std::pin::Pin::new(&mut *self.inner).poll_read(cx, buf);
        self.n += (buf.filled().len() - before) as u64;
        r
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;
    use std::time::Duration;

    use super::*;

    fn local_fs() -> HostFs {
        HostFs { session: None, sudo: false, timeout: Duration::from_secs(10) }
    }

    #[tokio::test]
    async fn a_file_is_written_under_a_partial_name_renamed_listed_read_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("sub folder").display().to_string();
        let fs = local_fs();
        let body = vec![9u8; 300_000];
        let n = fs.put_partial(&d, "a b.tomo-backup", &mut &body[..]).await.unwrap();
        assert_eq!(n, 300_000);
        assert!(fs.list_files(&d, ".tomo-backup", 16).await.unwrap().is_empty(), "the partial is not listed");
        // A size that does not match refuses the rename (and drops the partial).
        assert!(fs.finish_put(&d, "a b.tomo-backup", 5).await.is_err());
        fs.put_partial(&d, "a b.tomo-backup", &mut &body[..]).await.unwrap();
        fs.finish_put(&d, "a b.tomo-backup", n).await.unwrap();
        let path = format!("{d}/a b.tomo-backup");
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        // An existing archive is never overwritten.
        assert!(fs.put_partial(&d, "a b.tomo-backup", &mut &b"x"[..]).await.is_err());
        let listed = fs.list_files(&d, ".tomo-backup", 16).await.unwrap();
        assert_eq!(listed, vec![ListedFile { name: "a b.tomo-backup".into(), size: 300_000, head: vec![9u8; 16] }]);
        let mut back = Vec::new();
        assert_eq!(fs.read_file(&path, &mut back).await.unwrap(), 300_000);
        assert_eq!(back, body);
        fs.remove_files(&d, &["a b.tomo-backup".into()]).await.unwrap();
        assert!(fs.list_files(&d, ".tomo-backup", 16).await.unwrap().is_empty());
        assert!(fs.list_files(&format!("{d}/none"), ".tomo-backup", 16).await.unwrap().is_empty());
        assert!(fs.remove_files(&d, &["../x".into()]).await.is_err());
    }
}
