//! Test harness: runs the real `tomo` binary in a temporary folder with a
//! clean environment, and gives paths into the repository.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A temporary working folder and the environment `tomo` runs with there.
pub struct Tomo {
    pub dir: tempfile::TempDir,
    env: Vec<(String, String)>,
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }

    /// The whole output, then again its lines that tell of a failure (a
    /// failed action, an error or a warning), so that a failure message cut
    /// to its tail still shows why.
    pub fn all_and_failures(&self) -> String {
        let failures: Vec<&str> = self
            .all_lines()
            .filter(|l| l.contains("FAILED") || l.contains("ERROR") || l.contains("WARN") || l.contains("error:"))
            .collect();
        format!("{}\n--- the lines that tell of a failure ---\n{}", self.all(), failures.join("\n"))
    }

    fn all_lines(&self) -> impl Iterator<Item = &str> {
        self.stdout.lines().chain(self.stderr.lines())
    }
}

impl Tomo {
    pub fn new() -> Tomo {
        Tomo { dir: tempfile::tempdir().expect("temp dir"), env: Vec::new() }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn env(mut self, k: &str, v: &str) -> Tomo {
        self.set_env(k, v);
        self
    }

    pub fn set_env(&mut self, k: &str, v: &str) {
        self.env.push((k.into(), v.into()));
    }

    /// Writes a file below the working folder.
    pub fn file(self, rel: &str, text: &str) -> Tomo {
        let p = self.dir.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
        self
    }

    pub fn run(&self, args: &[&str]) -> Run {
        self.run_with_stdin(args, None)
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tomo"));
        cmd.args(args).current_dir(self.dir.path()).env_clear().env("PATH", std::env::var("PATH").unwrap_or_default());
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Starts tomo in the background, its output captured.
    pub fn spawn(&self, args: &[&str]) -> std::process::Child {
        let mut cmd = self.command(args);
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        cmd.spawn().expect("run tomo")
    }

    /// Runs tomo with extra environment variables for this run only.
    pub fn run_env(&self, args: &[&str], extra: &[(&str, &str)]) -> Run {
        let mut cmd = self.command(args);
        cmd.envs(extra.iter().copied()).stdin(Stdio::null());
        let Output { status, stdout, stderr } = cmd.output().expect("run tomo");
        Run {
            code: status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        }
    }

    /// Starts tomo in the background with extra environment variables, its
    /// standard error piped (standard output discarded).
    pub fn spawn_env(&self, args: &[&str], extra: &[(&str, &str)]) -> std::process::Child {
        let mut cmd = self.command(args);
        cmd.envs(extra.iter().copied()).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
        cmd.spawn().expect("run tomo")
    }

    /// Starts tomo with its standard input, output and error piped.
    pub fn spawn_piped(&self, args: &[&str]) -> std::process::Child {
        let mut cmd = self.command(args);
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        cmd.spawn().expect("run tomo")
    }

    /// Starts tomo on a terminal (a pseudo-terminal from util-linux
    /// `script`), its input, output and errors piped; standard output and
    /// error both arrive in `stdout`.
    pub fn spawn_on_terminal(&self, args: &[&str]) -> std::process::Child {
        let quote = |a: &str| format!("'{}'", a.replace('\'', "'\\''"));
        let line: Vec<String> =
            std::iter::once(env!("CARGO_BIN_EXE_tomo")).chain(args.iter().copied()).map(quote).collect();
        let mut cmd = Command::new("script");
        cmd.args(["-qec", &line.join(" "), "/dev/null"]).current_dir(self.dir.path()).env_clear();
        cmd.env("PATH", std::env::var("PATH").unwrap_or_default());
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        cmd.spawn().expect("run `script` (util-linux) for a terminal")
    }

    /// Runs tomo on a terminal (`spawn_on_terminal`), typing `input`.
    pub fn run_on_terminal(&self, args: &[&str], input: &str) -> Run {
        let mut child = self.spawn_on_terminal(args);
        {
            use std::io::Write;
            let _ = child.stdin.take().unwrap().write_all(input.as_bytes());
        }
        let Output { status, stdout, stderr } = child.wait_with_output().unwrap();
        Run {
            code: status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        }
    }

    pub fn run_with_stdin(&self, args: &[&str], stdin: Option<&str>) -> Run {
        let mut cmd = self.command(args);
        cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() });
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("run tomo");
        if let Some(input) = stdin {
            use std::io::Write;
            // tomo may rightly exit before reading its input (a refused
            // argument): a broken pipe here is not a test failure.
            let _ = child.stdin.take().unwrap().write_all(input.as_bytes());
        }
        let Output { status, stdout, stderr } = child.wait_with_output().unwrap();
        Run {
            code: status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        }
    }
}

/// The marketplace fixture stores: `$TOMO_FIXTURES`, else
/// `shared/fixtures/marketplace` in a folder above the repository (a missing
/// one fails the test, it never skips).
pub fn fixtures_root() -> PathBuf {
    if let Some(p) = std::env::var_os("TOMO_FIXTURES") {
        return PathBuf::from(p);
    }
    let repo = repo();
    repo.ancestors()
        .map(|a| a.join("shared/fixtures/marketplace"))
        .find(|p| p.is_dir())
        .unwrap_or_else(|| panic!("no shared/fixtures/marketplace above {}; set TOMO_FIXTURES", repo.display()))
}
