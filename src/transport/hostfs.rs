//! The server's own filesystem, for what tomo puts there besides Docker
//! objects: missing host folders of bind mounts, and config files. Locally
//! through `std::fs`; on a remote server through one `sh -c` per call over
//! its SSH connection, each path passed as an argument (`"$1"`, quoted by
//! `ssh::command_line`), never written into the script: a path cannot
//! inject shell code. Folders are created, never deleted.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::ssh::{ExecOptions, SshSession};

/// Where a call runs: this machine, or a server over SSH (`sudo` as its
/// manifest says).
#[derive(Clone)]
pub struct HostFs {
    pub session: Option<Arc<SshSession>>,
    pub sudo: bool,
    pub timeout: Duration,
}

/// Prints each argument that names nothing (not even a dangling link), NUL-terminated.
const MISSING: &str = r#"for p in "$@"; do [ -e "$p" ] || [ -L "$p" ] || printf '%s\0' "$p"; done"#;

/// `$1` path, `$2` mode (may be empty), `$3` owner `UID[:GID]` (may be empty).
const MKDIR: &str =
    r#"set -e; mkdir -p "$1"; if [ -n "$2" ]; then chmod "$2" "$1"; fi; if [ -n "$3" ]; then chown "$3" "$1"; fi"#;

/// stdin to `$1` atomically (a temporary file beside it, renamed), with
/// mode `$2` and owner `$3`; its folder is made private (0700).
const WRITE: &str = r#"set -e; umask 077; d="${1%/*}"; mkdir -p "$d"; chmod 700 "$d"; t="$1.tmp.$$"; cat > "$t"; chmod "$2" "$t"; if [ -n "$3" ]; then chown "$3" "$t"; fi; mv -f "$t" "$1""#;

impl HostFs {
    /// Which of `paths` do not exist.
    pub async fn missing(&self, paths: &[String]) -> Result<Vec<String>, String> {
        if paths.is_empty() {
            return Ok(Vec::new());
        }
        match &self.session {
            None => Ok(paths.iter().filter(|p| matches!(Path::new(p).try_exists(), Ok(false))).cloned().collect()),
            Some(_) => {
                let mut args = vec!["sh", "-c", MISSING, "tomo-check"];
                args.extend(paths.iter().map(String::as_str));
                let out = self.run("check host folders", &args, None).await?;
                Ok(out.split('\0').filter(|p| !p.is_empty()).map(String::from).collect())
            }
        }
    }

    /// Creates `path` and its missing parents; `mode` and `owner` apply to `path`.
    pub async fn create_dir(
        &self,
        path: &str,
        owner: Option<(u32, Option<u32>)>,
        mode: Option<u32>,
    ) -> Result<(), String> {
        if self.session.is_none() {
            let owned = path.to_string();
            return blocking(move || {
                let p = Path::new(&owned);
                std::fs::DirBuilder::new().recursive(true).mode(mode.unwrap_or(0o755)).create(p)?;
                if let Some(m) = mode {
                    std::fs::set_permissions(p, std::fs::Permissions::from_mode(m))?;
                }
                if let Some((u, g)) = owner {
                    std::os::unix::fs::chown(p, Some(u), g)?;
                }
                Ok(())
            })
            .await
            .map_err(|e| format!("create folder {path}: {e}"));
        }
        let mode = mode.map(|m| format!("{m:o}")).unwrap_or_default();
        let owner = owner_arg(owner);
        self.run("create folder", &["sh", "-c", MKDIR, "tomo-mkdir", path, &mode, &owner], None).await.map(|_| ())
    }

    /// Writes `content` to `path` atomically (temporary file, then rename),
    /// with `mode` and owner; the folder holding it is private.
    pub async fn write_file(
        &self,
        path: &str,
        content: &[u8],
        mode: u32,
        uid: Option<u32>,
        gid: Option<u32>,
    ) -> Result<(), String> {
        if self.session.is_none() {
            let (path, content) = (path.to_string(), content.to_vec());
            return blocking(move || write_local(Path::new(&path), &content, mode, (uid, gid)))
                .await
                .map_err(|e| format!("write file: {e}"));
        }
        let mode = format!("{mode:o}");
        let owner = match (uid, gid) {
            (None, Some(g)) => format!(":{g}"),
            _ => owner_arg(uid.map(|u| (u, gid))),
        };
        self.run("write file", &["sh", "-c", WRITE, "tomo-write", path, &mode, &owner], Some(content)).await.map(|_| ())
    }

    /// Runs one argument list on the server (behind `sudo -n` when `sudo`),
    /// within `timeout`; its output and status, whatever the status.
    pub async fn command(
        &self,
        args: &[String],
        sudo: bool,
        timeout: Duration,
    ) -> Result<super::ssh::ExecOutput, String> {
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let first = argv.first().copied().unwrap_or_default().to_string();
        match &self.session {
            Some(session) => session
                .exec(&argv, ExecOptions { sudo, timeout })
                .await
                .map_err(|e| format!("`{}`: {e}", crate::term::field(&first))),
            None => {
                local_command(&argv, sudo, timeout).await.map_err(|e| format!("`{}`: {e}", crate::term::field(&first)))
            }
        }
    }

    /// Runs `script` with `args` in the connection's resident shell (see
    /// `SshSession::run_resident`): its standard output. Remote servers only.
    pub async fn resident_script(
        &self,
        script: &str,
        args: &[String],
        timeout: Duration,
    ) -> Result<String, ResidentError> {
        let Some(session) = &self.session else { return Err(ResidentError::Failed("no connection".into())) };
        session.run_resident(script, args, timeout).await.map_err(|e| match e {
            super::ssh::SshError::CommandTimeout { .. } | super::ssh::SshError::OutputTooLarge { .. } => {
                ResidentError::Unanswered(e.to_string())
            }
            e => ResidentError::Failed(e.to_string()),
        })
    }

    async fn run(&self, what: &str, args: &[&str], input: Option<&[u8]>) -> Result<String, String> {
        let Some(session) = &self.session else { return Err(format!("{what}: no connection")) };
        let opts = ExecOptions { sudo: self.sudo, timeout: self.timeout };
        match session.exec_with_input(args, input, opts).await {
            Ok(out) if out.success() => Ok(out.stdout),
            Ok(out) => Err(format!("{what}: exited with {:?}: {}", out.status, crate::term::line(out.stderr.trim()))),
            Err(e) => Err(format!("{what}: {e}")),
        }
    }
}

/// Why a script in the resident shell gave no output.
#[derive(Debug)]
pub enum ResidentError {
    /// The script ran but did not answer in time, or answered too much (no
    /// use running it another way now).
    Unanswered(String),
    /// The shell could not be started or ended.
    Failed(String),
}

fn owner_arg(owner: Option<(u32, Option<u32>)>) -> String {
    match owner {
        None => String::new(),
        Some((u, None)) => u.to_string(),
        Some((u, Some(g))) => format!("{u}:{g}"),
    }
}

/// One command on this machine, as `HostFs::command` runs it on a server.
async fn local_command(argv: &[&str], sudo: bool, timeout: Duration) -> std::io::Result<super::ssh::ExecOutput> {
    let mut full: Vec<&str> = if sudo { vec!["sudo", "-n", "--"] } else { Vec::new() };
    full.extend_from_slice(argv);
    let (program, rest) = full.split_first().ok_or_else(|| std::io::Error::other("empty command"))?;
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(rest).stdin(std::process::Stdio::null()).kill_on_drop(true);
    let out = tokio::time::timeout(timeout, cmd.output())
        .await
        .map_err(|_| std::io::Error::other(format!("timed out after {}s", timeout.as_secs())))??;
    let cap = |b: &[u8]| String::from_utf8_lossy(&b[..b.len().min(super::ssh::MAX_EXEC_OUTPUT)]).into_owned();
    Ok(super::ssh::ExecOutput {
        stdout: cap(&out.stdout),
        stderr: cap(&out.stderr),
        status: out.status.code().and_then(|c| u32::try_from(c).ok()),
    })
}

async fn blocking(f: impl FnOnce() -> std::io::Result<()> + Send + 'static) -> std::io::Result<()> {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| Err(std::io::Error::other(e.to_string())))
}

fn write_local(path: &Path, content: &[u8], mode: u32, (uid, gid): (Option<u32>, Option<u32>)) -> std::io::Result<()> {
    let dir = path.parent().ok_or_else(|| std::io::Error::other("no folder"))?;
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    let tmp = dir.join(format!(
        "{}.tmp.{}.{nanos}",
        path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
        std::process::id()
    ));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
        f.write_all(content)?;
        f.sync_all()?;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode))?;
        if uid.is_some() || gid.is_some() {
            std::os::unix::fs::chown(&tmp, uid, gid)?;
        }
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local() -> HostFs {
        HostFs { session: None, sudo: false, timeout: Duration::from_secs(5) }
    }

    #[tokio::test]
    async fn local_folders_and_files() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().to_string_lossy().into_owned();
        let (a, b) = (format!("{base}/a/b"), format!("{base}/c"));
        std::fs::create_dir(&b).unwrap();
        let fs = local();
        let found = fs.missing(&[a.clone(), b]).await.unwrap();
        assert_eq!(found, std::slice::from_ref(&a));
        fs.create_dir(&a, None, Some(0o750)).await.unwrap();
        let meta = std::fs::metadata(&a).unwrap();
        assert!(meta.is_dir());
        assert_eq!(meta.permissions().mode() & 0o7777, 0o750);
        assert!(fs.missing(std::slice::from_ref(&a)).await.unwrap().is_empty());
        let file = format!("{base}/files/x");
        fs.write_file(&file, b"hello", 0o440, None, None).await.unwrap();
        fs.write_file(&file, b"hello", 0o440, None, None).await.unwrap();
        assert_eq!(std::fs::read(&file).unwrap(), b"hello");
        assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o7777, 0o440);
        assert_eq!(std::fs::metadata(format!("{base}/files")).unwrap().permissions().mode() & 0o7777, 0o700);
        // Nothing but the file is left in its folder (no temporary files).
        assert_eq!(std::fs::read_dir(format!("{base}/files")).unwrap().count(), 1);
    }

    #[test]
    fn scripts_take_paths_as_arguments_only() {
        for script in [MISSING, MKDIR, WRITE] {
            assert!(!script.contains("{}"), "{script}");
        }
        let line =
            crate::transport::ssh::command_line(&["sh", "-c", MKDIR, "tomo-mkdir", "/srv/$(reboot)'x", "", ""], false);
        assert!(line.contains(r#"'/srv/$(reboot)'\''x'"#), "{line}");
    }
}
