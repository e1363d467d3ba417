//! Fetching a store's git repository with the git CLI: one shallow fetch of
//! one ref into a fresh folder, which then replaces the previous checkout.
//!
//! **Invariants:**
//! - git runs from an argument list, never a shell; positional URLs and refs
//!   follow `--`, so nothing a manifest says is read as an option.
//! - Credentials never reach argv, a URL, a log or an error: a token goes to
//!   git as an `http.extraHeader` through the environment
//!   (`GIT_CONFIG_COUNT/KEY/VALUE`), an SSH key as a 0600 file in a private
//!   temporary folder named by `GIT_SSH_COMMAND` and removed afterwards;
//!   git's own output is masked with `redact::Redactor` before it is returned.
//! - git never asks (`GIT_TERMINAL_PROMPT=0`, ssh `BatchMode=yes`) and is
//!   killed after `timeout`.
//! - A failed fetch leaves the previous checkout as it was: the new one is
//!   made in a temporary folder beside it and renamed into place.
//! - SSH host keys are verified (`StrictHostKeyChecking=yes`) against the
//!   user's `~/.ssh/known_hosts` and tomo's own list,
//!   `<data>/market/known_hosts`: as for servers, a new host key is accepted
//!   by a human (who adds it there), never on first use.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use base64::Engine as _;
use tokio::io::AsyncReadExt;

use crate::model::secret::SecretString;
use crate::redact::Redactor;

/// How long a fetch may take unless told otherwise.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(300);

/// The most of git's error output kept (the end of it).
const STDERR_MAX: usize = 64 * 1024;

/// A credential for a private repository, from the vault.
pub enum GitAuth {
    /// A token for an https URL (sent as HTTP Basic `x-access-token:TOKEN`).
    Token(SecretString),
    /// An SSH private key (OpenSSH or PEM text) for an ssh URL.
    SshKey(SecretString),
}

/// One fetch of `git_ref` from `url` into `dest`.
pub struct FetchRequest<'a> {
    pub url: &'a str,
    pub git_ref: &'a str,
    /// The checkout; replaced only when the fetch succeeded.
    pub dest: &'a Path,
    pub auth: Option<&'a GitAuth>,
    pub timeout: Duration,
    /// Known-hosts files besides the user's (tomo's own list).
    pub known_hosts: Option<PathBuf>,
    /// Let git show its progress on standard error (a terminal).
    pub progress: bool,
}

/// Why a fetch failed (texts already masked).
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("`{0}` would be read by git as an option; refused")]
    Option(String),
    #[error("cannot run git: {0}")]
    Spawn(String),
    #[error("git {step} failed: {message}")]
    Failed { step: &'static str, message: String },
    #[error("git {step} took longer than {}s and was stopped", secs)]
    Timeout { step: &'static str, secs: u64 },
    #[error("cannot {what} `{path}`: {message}")]
    Io { what: &'static str, path: String, message: String },
}

/// What was fetched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// The commit checked out (40 hex digits).
    pub commit: String,
}

/// The environment and cleanup of one fetch.
struct Session {
    /// Private folder holding the key file, removed when dropped.
    key_dir: Option<PathBuf>,
    envs: Vec<(String, String)>,
    redactor: Redactor,
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Some(d) = &self.key_dir {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> GitError {
    let path = path.display().to_string();
    move |e| GitError::Io { what, path, message: e.to_string() }
}

/// Whether `url` is fetched over ssh (`ssh://`, `git+ssh://`, `user@host:path`).
pub fn is_ssh(url: &str) -> bool {
    match url.split_once("://") {
        Some((scheme, _)) => scheme.eq_ignore_ascii_case("ssh") || scheme.ends_with("+ssh"),
        None => url.split_once(':').is_some_and(|(h, _)| h.contains('@') && !h.contains('/')),
    }
}

fn is_http(url: &str) -> bool {
    let l = url.to_ascii_lowercase();
    l.starts_with("https://") || l.starts_with("http://")
}

/// A random suffix for temporary names.
fn nonce() -> String {
    crate::auth::random_id().chars().filter(char::is_ascii_alphanumeric).take(12).collect()
}

impl Session {
    fn new(req: &FetchRequest<'_>, work: &Path) -> Result<Session, GitError> {
        let mut s = Session { key_dir: None, envs: Vec::new(), redactor: Redactor::default() };
        s.envs.push(("GIT_TERMINAL_PROMPT".into(), "0".into()));
        s.envs.push(("GIT_ASKPASS".into(), "true".into()));
        s.envs.push(("SSH_ASKPASS".into(), "true".into()));
        let mut ssh = vec![
            "ssh".to_string(),
            "-o".into(),
            "BatchMode=yes".into(),
            "-o".into(),
            "StrictHostKeyChecking=yes".into(),
        ];
        let mut known = vec!["~/.ssh/known_hosts".to_string()];
        if let Some(k) = &req.known_hosts {
            known.push(std::path::absolute(k).map_err(io("use", k))?.display().to_string());
        }
        ssh.push("-o".into());
        ssh.push(format!("UserKnownHostsFile={}", known.join(" ")));
        match req.auth {
            Some(GitAuth::Token(t)) if is_http(req.url) => {
                let basic = base64::engine::general_purpose::STANDARD.encode(format!("x-access-token:{}", t.expose()));
                s.envs.push(("GIT_CONFIG_COUNT".into(), "1".into()));
                s.envs.push(("GIT_CONFIG_KEY_0".into(), "http.extraHeader".into()));
                s.envs.push(("GIT_CONFIG_VALUE_0".into(), format!("Authorization: Basic {basic}")));
                s.redactor = Redactor::new([t.expose(), basic.as_str()]);
            }
            Some(GitAuth::SshKey(k)) if is_ssh(req.url) => {
                // git runs ssh in the new checkout: every path it is given is absolute.
                let dir = std::path::absolute(work.join(format!(".key-{}", nonce()))).map_err(io("use", work))?;
                make_private_dir(&dir)?;
                s.key_dir = Some(dir.clone());
                let file = dir.join("id");
                let mut text = k.expose().replace("\r\n", "\n");
                if !text.ends_with('\n') {
                    text.push('\n');
                }
                write_private(&file, &text)?;
                ssh.extend(["-o".into(), "IdentitiesOnly=yes".into(), "-i".into(), file.display().to_string()]);
                s.redactor = Redactor::new(k.expose().lines().filter(|l| l.len() >= 16));
            }
            Some(_) => {
                return Err(GitError::Failed {
                    step: "fetch",
                    message: "`auth` holds a token for https URLs or an SSH key for ssh URLs; this URL is neither"
                        .into(),
                });
            }
            None => {}
        }
        // GIT_SSH_COMMAND is read by a shell: every word quoted.
        let words: Vec<&str> = ssh.iter().map(String::as_str).collect();
        s.envs.push(("GIT_SSH_COMMAND".into(), crate::transport::ssh::command_line(&words, false)));
        Ok(s)
    }

    /// Runs `git ARGS` in `dir`; its standard output on success.
    async fn git(
        &self,
        dir: &Path,
        step: &'static str,
        args: &[&str],
        progress: bool,
        timeout: Duration,
    ) -> Result<String, GitError> {
        let mut cmd = tokio::process::Command::new("git");
        cmd.arg("-C").arg(dir).args(args).stdin(Stdio::null()).stdout(Stdio::piped()).kill_on_drop(true);
        cmd.stderr(if progress { Stdio::inherit() } else { Stdio::piped() });
        // Tracing variables would print the headers (the token) to stderr.
        for v in ["GIT_TRACE", "GIT_TRACE_CURL", "GIT_TRACE_PACKET", "GIT_CURL_VERBOSE", "GIT_TRACE2", "GIT_DIR"] {
            cmd.env_remove(v);
        }
        cmd.env("GIT_CONFIG_NOSYSTEM", "1");
        for (k, v) in &self.envs {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().map_err(|e| GitError::Spawn(e.to_string()))?;
        let mut out = child.stdout.take();
        let mut err = child.stderr.take();
        let run = async {
            let (mut o, mut e) = (Vec::new(), Vec::new());
            let read_out = async {
                if let Some(s) = out.as_mut() {
                    let _ = s.read_to_end(&mut o).await;
                }
            };
            let read_err = async {
                if let Some(s) = err.as_mut() {
                    let _ = s.take(STDERR_MAX as u64 * 4).read_to_end(&mut e).await;
                }
            };
            tokio::join!(read_out, read_err);
            let status = child.wait().await;
            (status, o, e)
        };
        let (status, o, e) = tokio::time::timeout(timeout, run)
            .await
            .map_err(|_| GitError::Timeout { step, secs: timeout.as_secs() })?;
        let status = status.map_err(|e| GitError::Spawn(e.to_string()))?;
        if status.success() {
            return Ok(String::from_utf8_lossy(&o).trim().to_string());
        }
        let text = String::from_utf8_lossy(&e[e.len().saturating_sub(STDERR_MAX)..]).into_owned();
        let mut message = self.redactor.apply(text.trim());
        if message.is_empty() {
            message = match status.code() {
                Some(c) => format!("exit status {c}{}", if progress { " (its output is above)" } else { "" }),
                None => "killed by a signal".into(),
            };
        }
        Err(GitError::Failed { step, message })
    }
}

fn make_private_dir(dir: &Path) -> Result<(), GitError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new().mode(0o700).create(dir).map_err(io("create", dir))
}

fn write_private(file: &Path, text: &str) -> Result<(), GitError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f =
        std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(file).map_err(io("write", file))?;
    f.write_all(text.as_bytes()).map_err(io("write", file))
}

/// Fetches `req.git_ref` of `req.url` (depth 1) into a new folder beside
/// `req.dest` and, once checked out, puts it in place of the old checkout.
pub async fn fetch(req: &FetchRequest<'_>) -> Result<Fetched, GitError> {
    for v in [req.url, req.git_ref] {
        if v.starts_with('-') || v.is_empty() {
            return Err(GitError::Option(v.to_string()));
        }
    }
    let parent = req.dest.parent().ok_or_else(|| GitError::Io {
        what: "use",
        path: req.dest.display().to_string(),
        message: "it has no parent folder".into(),
    })?;
    std::fs::create_dir_all(parent).map_err(io("create", parent))?;
    let leaf = req.dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = parent.join(format!(".{leaf}.fetch-{}", nonce()));
    make_private_dir(&tmp)?;
    let result = fetch_into(req, parent, &tmp).await;
    match result {
        Ok(commit) => {
            replace(&tmp, req.dest)?;
            Ok(Fetched { commit })
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            Err(e)
        }
    }
}

async fn fetch_into(req: &FetchRequest<'_>, work: &Path, tmp: &Path) -> Result<String, GitError> {
    let session = Session::new(req, work)?;
    let t = req.timeout;
    session.git(tmp, "init", &["init", "--quiet"], false, t).await?;
    let verbosity = if req.progress { "--progress" } else { "--quiet" };
    let args = ["-c", "protocol.ext.allow=never", "fetch", "--depth", "1", "--no-tags", verbosity, "--", req.url];
    let mut args: Vec<&str> = args.to_vec();
    args.push(req.git_ref);
    session.git(tmp, "fetch", &args, req.progress, t).await?;
    let checkout = ["-c", "advice.detachedHead=false", "checkout", "--quiet", "--detach", "FETCH_HEAD"];
    session.git(tmp, "checkout", &checkout, false, t).await?;
    let commit = session.git(tmp, "rev-parse", &["rev-parse", "HEAD"], false, t).await?;
    if commit.len() != 40 || !commit.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(GitError::Failed { step: "rev-parse", message: "no commit was checked out".into() });
    }
    Ok(commit)
}

/// Puts `new` in place of `dest`: the old checkout is renamed aside, the new
/// one renamed in, then the old one removed.
fn replace(new: &Path, dest: &Path) -> Result<(), GitError> {
    let aside = dest.with_file_name(format!(
        ".{}.old-{}",
        dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
        nonce()
    ));
    let had = match std::fs::symlink_metadata(dest) {
        Ok(_) => {
            std::fs::rename(dest, &aside).map_err(io("move aside", dest))?;
            true
        }
        Err(_) => false,
    };
    if let Err(e) = std::fs::rename(new, dest) {
        if had {
            let _ = std::fs::rename(&aside, dest);
        }
        let _ = std::fs::remove_dir_all(new);
        return Err(io("replace", dest)(e));
    }
    if had {
        let _ = std::fs::remove_dir_all(&aside);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(dir: &Path, args: &[&str]) {
        let out = std::process::Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(["-c", "user.name=t", "-c", "user.email=t@t", "-c", "init.defaultBranch=main"])
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// A repository with `app/a.yml` holding `text`, committed on `main`.
    fn repo(root: &Path, text: &str) -> PathBuf {
        let r = root.join("origin");
        if !r.exists() {
            std::fs::create_dir_all(&r).unwrap();
            sh(&r, &["init", "-q"]);
        }
        std::fs::create_dir_all(r.join("app")).unwrap();
        std::fs::write(r.join("app/a.yml"), text).unwrap();
        sh(&r, &["add", "-A"]);
        sh(&r, &["commit", "-qm", "c"]);
        r
    }

    fn req<'a>(url: &'a str, dest: &'a Path) -> FetchRequest<'a> {
        FetchRequest {
            url,
            git_ref: "main",
            dest,
            auth: None,
            timeout: Duration::from_secs(30),
            known_hosts: None,
            progress: false,
        }
    }

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
    }

    #[test]
    fn a_fetch_checks_out_the_ref_and_a_later_one_replaces_it() {
        let t = tempfile::tempdir().unwrap();
        let origin = repo(t.path(), "one\n");
        let url = format!("file://{}", origin.display());
        let dest = t.path().join("market/store");
        let first = rt().block_on(fetch(&req(&url, &dest))).unwrap();
        assert_eq!(std::fs::read_to_string(dest.join("app/a.yml")).unwrap(), "one\n");
        repo(t.path(), "two\n");
        let second = rt().block_on(fetch(&req(&url, &dest))).unwrap();
        assert_ne!(first, second);
        assert_eq!(std::fs::read_to_string(dest.join("app/a.yml")).unwrap(), "two\n");
        // Shallow: one commit only.
        let n = std::process::Command::new("git").arg("-C").arg(&dest).args(["rev-list", "--count", "HEAD"]).output();
        assert_eq!(String::from_utf8_lossy(&n.unwrap().stdout).trim(), "1");
        // Nothing left beside the checkout.
        let left: Vec<_> =
            std::fs::read_dir(t.path().join("market")).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(left, vec![std::ffi::OsString::from("store")]);
    }

    #[test]
    fn a_failed_fetch_keeps_the_previous_checkout() {
        let t = tempfile::tempdir().unwrap();
        let origin = repo(t.path(), "one\n");
        let url = format!("file://{}", origin.display());
        let dest = t.path().join("market/store");
        rt().block_on(fetch(&req(&url, &dest))).unwrap();
        let missing = format!("file://{}/nothing-here", t.path().display());
        let e = rt().block_on(fetch(&req(&missing, &dest))).unwrap_err().to_string();
        assert!(e.starts_with("git fetch failed:"), "{e}");
        let mut bad_ref = req(&url, &dest);
        bad_ref.git_ref = "no-such-branch";
        assert!(rt().block_on(fetch(&bad_ref)).is_err());
        assert_eq!(std::fs::read_to_string(dest.join("app/a.yml")).unwrap(), "one\n");
        assert_eq!(std::fs::read_dir(t.path().join("market")).unwrap().count(), 1);
    }

    #[test]
    fn option_like_urls_and_refs_are_refused_before_git_runs() {
        let t = tempfile::tempdir().unwrap();
        let dest = t.path().join("market/store");
        let e = rt().block_on(fetch(&req("--upload-pack=touch /tmp/x", &dest))).unwrap_err();
        assert!(matches!(e, GitError::Option(_)), "{e}");
        let mut r = req("file:///x", &dest);
        r.git_ref = "--output=/tmp/x";
        assert!(matches!(rt().block_on(fetch(&r)).unwrap_err(), GitError::Option(_)));
        assert!(!t.path().join("market").exists());
    }

    #[test]
    fn a_token_goes_to_git_through_the_environment_only_and_is_masked() {
        let t = tempfile::tempdir().unwrap();
        let token = GitAuth::Token(SecretString::new("ghp_tokenvalue123"));
        let dest = t.path().join("s");
        let mut r = req("https://git.example/store.git", &dest);
        r.auth = Some(&token);
        let s = Session::new(&r, t.path()).unwrap();
        let header = s.envs.iter().find(|(k, _)| k == "GIT_CONFIG_VALUE_0").unwrap();
        assert!(header.1.starts_with("Authorization: Basic "));
        assert!(s.envs.iter().all(|(_, v)| !v.contains("ghp_tokenvalue123")));
        assert_eq!(s.redactor.apply(&format!("echo {}", header.1)), "echo Authorization: Basic ***");
        assert_eq!(s.redactor.apply("x ghp_tokenvalue123 y"), "x *** y");
    }

    #[test]
    fn an_ssh_key_is_a_private_file_removed_afterwards() {
        let t = tempfile::tempdir().unwrap();
        let key = GitAuth::SshKey(SecretString::new(
            "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAAkeymaterialkeymaterial\n-----END OPENSSH PRIVATE KEY-----",
        ));
        let dest = t.path().join("s");
        let mut r = req("ssh://git@10.0.0.1/srv/store.git", &dest);
        r.auth = Some(&key);
        let s = Session::new(&r, t.path()).unwrap();
        let dir = s.key_dir.clone().unwrap();
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("id")).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let cmd = &s.envs.iter().find(|(k, _)| k == "GIT_SSH_COMMAND").unwrap().1;
        assert!(
            cmd.contains("StrictHostKeyChecking=yes") && cmd.contains("BatchMode=yes") && cmd.contains(" -i "),
            "{cmd}"
        );
        drop(s);
        assert!(!dir.exists());
        // A key for an https URL is a mistake, said so.
        let mut r = req("https://git.example/x.git", &dest);
        r.auth = Some(&key);
        assert!(Session::new(&r, t.path()).is_err());
    }

    #[test]
    fn ssh_urls_are_recognised() {
        assert!(is_ssh("ssh://root@10.1.2.2/srv/x.git"));
        assert!(is_ssh("git@github.com:me/x.git"));
        assert!(!is_ssh("https://github.com/me/x.git"));
        assert!(!is_ssh("/srv/x.git"));
        assert!(!is_ssh("file:///srv/x.git"));
    }
}
