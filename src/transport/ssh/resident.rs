//! A shell kept open on the server for a script run every round (the
//! metrics collector's), so that a round opens no session: a new session
//! costs sshd's setup and the login shell's start, which runs the user's rc
//! files (100 ms and more of a core on some hosts, where `~/.bashrc` sets
//! up a language toolchain). One script at a time per connection; a shell
//! that fails or overruns is dropped and the next call starts another.

use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use russh::ChannelMsg;

use super::{MAX_EXEC_OUTPUT, SshError, SshSession, quote};

/// The resident shell of a connection, once started.
pub(super) type Resident = tokio::sync::Mutex<Option<russh::Channel<russh::client::Msg>>>;

/// A marker no output of the script contains: random per call.
fn nonce() -> String {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos()));
    format!("{:016x}", h.finish())
}

/// What the shell is sent: the script in a subshell (its `set`, `shift`
/// and functions stay there), its input closed (so nothing reads the
/// lines that follow), between two marker lines.
fn framed(script: &str, args: &[String], nonce: &str) -> String {
    let args: Vec<String> = args.iter().map(|a| quote(a).to_string()).collect();
    format!(
        "echo '== begin-{nonce}'\n( set -- {}\n{script}\n) </dev/null 2>/dev/null\necho; echo '== end-{nonce}'\n",
        args.join(" ")
    )
}

/// The script's output between the markers, once the end marker is in
/// (the newline `echo` printed before it left out).
fn between<'a>(out: &'a str, nonce: &str) -> Option<&'a str> {
    let begin = format!("== begin-{nonce}\n");
    let end = format!("\n== end-{nonce}\n");
    let start = out.find(&begin)? + begin.len();
    let stop = out[start..].find(&end)? + start;
    Some(&out[start..stop])
}

/// The shell while a round uses it, out of the connection's slot: put back
/// only when the round ends well. Dropped otherwise (an error, a timeout,
/// the round's future dropped by a caller's own timeout), it closes the
/// channel, so no output piles up unread on the connection, and gives its
/// session slot back.
struct InUse<'a> {
    channel: Option<russh::Channel<russh::client::Msg>>,
    slots: &'a tokio::sync::Semaphore,
}

impl Drop for InUse<'_> {
    fn drop(&mut self) {
        if let Some(channel) = self.channel.take() {
            self.slots.add_permits(1);
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(async move {
                    let _ = channel.close().await;
                });
            }
        }
    }
}

impl SshSession {
    /// Runs `script` with `args` as its positional parameters in the
    /// connection's resident shell (started on first use; it holds one of
    /// the connection's session slots while open), and gives its standard
    /// output; its standard error is dropped.
    pub async fn run_resident(&self, script: &str, args: &[String], timeout: Duration) -> Result<String, SshError> {
        let mut shell = self.resident.lock().await;
        let nonce = nonce();
        let input = framed(script, args, &nonce);
        let mut taken = InUse { channel: shell.take(), slots: &self.exec_slots };
        let run = async {
            if taken.channel.is_none() {
                let slot = self.exec_slots.acquire().await.map_err(|e| self.protocol(e.to_string()))?;
                let channel = self.open_session_channel().await?;
                slot.forget();
                taken.channel = Some(channel);
                let Some(channel) = taken.channel.as_ref() else { unreachable!("just set") };
                channel.exec(true, "exec sh".as_bytes()).await.map_err(|e| self.protocol(e.to_string()))?;
            }
            let Some(channel) = taken.channel.as_mut() else { unreachable!("started above") };
            channel.data(input.as_bytes()).await.map_err(|e| self.protocol(e.to_string()))?;
            read_until_end(self, channel, &nonce).await
        };
        let result = match tokio::time::timeout(timeout, run).await {
            Ok(r) => r,
            Err(_) => {
                Err(SshError::CommandTimeout { addr: self.addr.clone(), command: "sh".into(), secs: timeout.as_secs() })
            }
        };
        if result.is_ok() {
            *shell = taken.channel.take();
        }
        result
    }
}

/// The shell's output up to the end marker of this round.
async fn read_until_end(
    session: &SshSession,
    channel: &mut russh::Channel<russh::client::Msg>,
    nonce: &str,
) -> Result<String, SshError> {
    let (mut out, end) = (Vec::new(), format!("\n== end-{nonce}\n"));
    loop {
        let scan_from = out.len().saturating_sub(end.len());
        match channel.wait().await {
            Some(ChannelMsg::Data { data }) => out.extend_from_slice(&data),
            Some(ChannelMsg::Failure) => return Err(session.protocol("the server refused to start a shell".into())),
            Some(ChannelMsg::Eof | ChannelMsg::Close | ChannelMsg::ExitStatus { .. }) | None => {
                return Err(session.protocol("the resident shell ended".into()));
            }
            Some(_) => continue,
        }
        if out.len() > MAX_EXEC_OUTPUT {
            let command = "sh".into();
            return Err(SshError::OutputTooLarge { addr: session.addr.clone(), command, limit: MAX_EXEC_OUTPUT });
        }
        // Only the new bytes are searched: a long output costs one pass.
        if out[scan_from..].windows(end.len()).any(|w| w == end.as_bytes()) {
            let text = String::from_utf8_lossy(&out);
            return between(&text, nonce)
                .map(str::to_string)
                .ok_or_else(|| session.protocol("the resident shell's output has no start marker".into()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_output_is_what_lies_between_the_markers() {
        let out = "motd noise\n== begin-ab\nline 1\nline 2\n\n== end-ab\n";
        assert_eq!(between(out, "ab"), Some("line 1\nline 2\n"));
        assert_eq!(between("== begin-ab\npartial", "ab"), None);
        assert_eq!(between("== begin-ab\n\n== end-ab\n", "ab"), Some(""));
        assert_eq!(between("== begin-ab\nno newline at the end\n== end-ab\n", "ab"), Some("no newline at the end"));
    }

    #[test]
    fn arguments_are_quoted_and_the_input_closed() {
        let f = framed("echo \"$1\"", &["a b".into(), "'x".into()], "n1");
        assert!(f.starts_with("echo '== begin-n1'\n( set -- "), "{f}");
        assert!(f.contains("</dev/null"), "{f}");
        assert!(f.ends_with("echo; echo '== end-n1'\n"), "{f}");
        assert_ne!(nonce(), nonce());
    }
}
