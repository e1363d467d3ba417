//! Running a command in a running container through the Engine's exec API
//! (create, start attached, inspect), locally or over the SSH-forwarded
//! socket alike: the output kept is its last `OUTPUT_TAIL` bytes, and the
//! whole run has a time limit.

use std::time::Duration;

use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
use futures_util::StreamExt;

use super::docker::{DockerClient, DockerError, segment, short};
use super::engine::EngineApi;

/// The most output kept from one command (its end).
pub const OUTPUT_TAIL: usize = 16 * 1024;

/// How a command run in a container ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutcome {
    /// `None`: the Engine did not report one.
    pub exit_code: Option<i64>,
    /// The last `OUTPUT_TAIL` bytes of stdout and stderr, interleaved.
    pub output: String,
}

impl DockerClient {
    /// Runs `argv` in the running container `id` and waits for it to end,
    /// for up to `timeout` (past it: `DockerError::Late`; the command may go
    /// on in the container, as the Engine cannot stop an exec).
    pub async fn exec(&self, id: &str, argv: &[String], timeout: Duration) -> Result<ExecOutcome, DockerError> {
        segment("exec", "id", id)?;
        let op = format!("exec in {}", short(id));
        let create = CreateExecOptions {
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            attach_stdin: Some(false),
            tty: Some(false),
            cmd: Some(argv.to_vec()),
            ..Default::default()
        };
        let run = async {
            let exec = self.docker.create_exec(id, create).await.map_err(|e| DockerError::api(op.clone(), e))?;
            let start = StartExecOptions { detach: false, tty: false, output_capacity: None };
            let started =
                self.docker.start_exec(&exec.id, Some(start)).await.map_err(|e| DockerError::api(op.clone(), e))?;
            let mut tail: Vec<u8> = Vec::new();
            if let StartExecResults::Attached { mut output, .. } = started {
                while let Some(item) = output.next().await {
                    let chunk = item.map_err(|e| DockerError::api(op.clone(), e))?;
                    tail.extend_from_slice(&chunk.into_bytes());
                    if tail.len() > 2 * OUTPUT_TAIL {
                        tail.drain(..tail.len() - OUTPUT_TAIL);
                    }
                }
            }
            if tail.len() > OUTPUT_TAIL {
                tail.drain(..tail.len() - OUTPUT_TAIL);
            }
            let exit_code = self.exec_exit_code(&op, &exec.id).await?;
            Ok(ExecOutcome { exit_code, output: String::from_utf8_lossy(&tail).into_owned() })
        };
        match tokio::time::timeout(timeout, run).await {
            Ok(r) => r.map_err(|e: DockerError| e.redacted(self.redactor())),
            Err(_) => Err(DockerError::Late { op, secs: timeout.as_secs() }),
        }
    }

    /// The exit code of a finished exec; the Engine may report it running
    /// for a moment after its output ended.
    async fn exec_exit_code(&self, op: &str, exec: &str) -> Result<Option<i64>, DockerError> {
        for _ in 0..50 {
            let info = self.docker.inspect_exec(exec).await.map_err(|e| DockerError::api(op.to_string(), e))?;
            if info.running != Some(true) {
                return Ok(info.exit_code);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(None)
    }
}
