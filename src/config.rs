//! Installation configuration: `tomo.yaml` (see `tomo.yaml.example`), then a
//! `.env` file beside it, then environment variables, each overriding the last.
//!
//! Relative paths in `tomo.yaml` are relative to the folder holding it (or to
//! the working directory when there is no file). Secrets read here
//! (`JWT_SECRET_KEY`, `TOMO_MASTER_PASSWORD`, `TOMO_SALT`) are `SecretString`s.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::diag::{Diagnostic, Diagnostics, FieldPath, SourceFile};
use crate::manifest::{schema, yaml};
use crate::model::Duration;
use crate::model::secret::SecretString;
use crate::model::values::DURATION_RULE;

/// `tomo.yaml` as written.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
pub struct RawConfig {
    /// Folder of manifests (default `state`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifests: Option<String>,
    /// Folder of tomo's own data: the store `tomo.db` (default `data`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh: Option<RawSshConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mcp: Option<RawMcpConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<RawLogConfig>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
pub struct RawSshConfig {
    /// Connection and command timeout (default `30s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    /// SSH connections open at once across all servers (default 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrent_connections: Option<u32>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
pub struct RawMcpConfig {
    /// Address `tomo serve --http` binds (default `127.0.0.1:8000`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<String>,
    /// Origins allowed to call the HTTP server from a browser.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_origins: Option<Vec<String>>,
    /// Host names clients may use to reach the HTTP server besides the bind
    /// address and loopback (`Host` header check against DNS rebinding).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_hosts: Option<Vec<String>>,
    /// How often the MCP server checks the containers of apps a client
    /// subscribed to (`tomo://apps/NAME`, `tomo://status`) for changes
    /// (default `30s`; env `MCP_DRIFT_INTERVAL`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drift_interval: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
pub struct RawLogConfig {
    /// `error`, `warn`, `info` (default), `debug` or `trace`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<LogLevel>,
    /// `text` (default) or `json`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<LogFormat>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Error,
    Warn,
    #[default]
    Info,
    Debug,
    Trace,
}

impl LogLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// The resolved configuration every command runs with.
#[derive(Debug, Clone)]
pub struct Config {
    /// The `tomo.yaml` read, if any.
    pub file: Option<PathBuf>,
    pub manifests: PathBuf,
    pub data_dir: PathBuf,
    pub ssh_timeout: Duration,
    pub max_concurrent_connections: u32,
    pub mcp_http: String,
    pub allowed_origins: Vec<String>,
    pub allowed_hosts: Vec<String>,
    /// How often subscribed apps' containers are checked (`mcp.drift_interval`).
    pub mcp_drift_interval: Duration,
    pub log_level: LogLevel,
    pub log_format: LogFormat,
    pub app_env: String,
    pub jwt_secret_key: Option<SecretString>,
    pub master_password: Option<SecretString>,
    pub salt: Option<SecretString>,
}

/// Where to look, from the command line.
#[derive(Debug, Clone, Default)]
pub struct ConfigArgs {
    /// `--config FILE`; default `./tomo.yaml` when it exists.
    pub config: Option<PathBuf>,
    /// `--dir DIR`: the manifest folder, overriding `manifests`.
    pub dir: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file `{}` does not exist", .0.display())]
    Missing(PathBuf),
    #[error("cannot read `{}`: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("`{}` is invalid", file.display())]
    Invalid { file: PathBuf, diagnostics: Diagnostics },
    #[error("cannot read `{}`: {detail}", path.display())]
    DotEnv { path: PathBuf, detail: String },
    #[error("environment variable {var} is invalid: {why}")]
    Env { var: &'static str, why: String },
    /// A setting a command needs is not set: what it is for and how to set it.
    #[error("{var} is not set: {needed_for}. {help}")]
    Unset { var: &'static str, needed_for: &'static str, help: &'static str },
    /// A key setting shorter than it must be.
    #[error("{var} is {len} bytes long; it must be at least {min} bytes ({help})")]
    TooShort { var: &'static str, len: usize, min: usize, help: &'static str },
}

/// Environment lookup, injectable for tests.
pub trait Env {
    fn var(&self, name: &str) -> Option<String>;
}

/// The process environment.
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl Env for BTreeMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

impl Config {
    /// Loads configuration for `args` with environment `env`.
    pub fn load(args: &ConfigArgs, env: &dyn Env) -> Result<Config, ConfigError> {
        let file = match &args.config {
            Some(p) if !p.exists() => return Err(ConfigError::Missing(p.clone())),
            Some(p) => Some(p.clone()),
            None => Some(PathBuf::from("tomo.yaml")).filter(|p| p.exists()),
        };
        let base = file.as_deref().and_then(Path::parent).map(Path::to_path_buf).unwrap_or_default();
        let raw = match &file {
            Some(p) => read_raw(p)?,
            None => RawConfig::default(),
        };
        let dotenv = read_dotenv(&base.join(".env"))?;
        let lookup = |name: &str| env.var(name).or_else(|| dotenv.get(name).cloned()).filter(|v| !v.is_empty());
        let rel = |p: &str| {
            let p = PathBuf::from(p);
            if p.is_absolute() { p } else { base.join(p) }
        };

        let manifests = match &args.dir {
            Some(d) => d.clone(),
            None => rel(raw.manifests.as_deref().unwrap_or("state")),
        };
        let data_dir = match lookup("DATA_DIRECTORY") {
            Some(d) => PathBuf::from(d),
            None => rel(raw.data_dir.as_deref().unwrap_or("data")),
        };
        let ssh = raw.ssh.clone().unwrap_or_default();
        let ssh_timeout = match lookup("SSH_TIMEOUT") {
            Some(v) => parse_env_duration("SSH_TIMEOUT", &v)?,
            None => match &ssh.timeout {
                Some(t) => Duration::parse(t).map_err(|why| invalid_field(&file, &["ssh", "timeout"], why))?,
                None => Duration::from_secs(30),
            },
        };
        let max_concurrent_connections = match lookup("MAX_CONCURRENT_CONNECTIONS") {
            Some(v) => v.parse::<u32>().ok().filter(|n| *n > 0).ok_or(ConfigError::Env {
                var: "MAX_CONCURRENT_CONNECTIONS",
                why: format!("`{v}` is not a whole number above 0"),
            })?,
            None => ssh.max_concurrent_connections.unwrap_or(10),
        };
        if max_concurrent_connections == 0 {
            return Err(invalid_field(&file, &["ssh", "max_concurrent_connections"], "must be at least 1".into()));
        }
        let mcp = raw.mcp.clone().unwrap_or_default();
        let allowed_origins = match lookup("ALLOWED_ORIGINS") {
            Some(v) => v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect(),
            None => mcp.allowed_origins.clone().unwrap_or_default(),
        };
        let allowed_hosts = match lookup("ALLOWED_HOSTS") {
            Some(v) => v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect(),
            None => mcp.allowed_hosts.clone().unwrap_or_default(),
        };
        let mcp_drift_interval = match lookup("MCP_DRIFT_INTERVAL") {
            Some(v) => parse_env_duration("MCP_DRIFT_INTERVAL", &v)?,
            None => match &mcp.drift_interval {
                Some(t) => Duration::parse(t).map_err(|why| invalid_field(&file, &["mcp", "drift_interval"], why))?,
                None => Duration::from_secs(30),
            },
        };
        let log = raw.log.clone().unwrap_or_default();
        let log_level =
            match lookup("MCP_LOG_LEVEL") {
                Some(v) => serde_json::from_value::<LogLevel>(serde_json::Value::String(v.to_ascii_lowercase()))
                    .map_err(|_| ConfigError::Env {
                        var: "MCP_LOG_LEVEL",
                        why: format!("`{v}` is not one of error, warn, info, debug, trace"),
                    })?,
                None => log.level.unwrap_or_default(),
            };
        Ok(Config {
            file,
            manifests,
            data_dir,
            ssh_timeout,
            max_concurrent_connections,
            mcp_http: mcp.http.unwrap_or_else(|| "127.0.0.1:8000".into()),
            allowed_origins,
            allowed_hosts,
            mcp_drift_interval,
            log_level,
            log_format: log.format.unwrap_or_default(),
            app_env: lookup("APP_ENV").unwrap_or_else(|| "production".into()),
            jwt_secret_key: lookup("JWT_SECRET_KEY").map(SecretString::new),
            master_password: lookup("TOMO_MASTER_PASSWORD").map(SecretString::new),
            salt: lookup("TOMO_SALT").map(SecretString::new),
        })
    }
}

fn parse_env_duration(var: &'static str, v: &str) -> Result<Duration, ConfigError> {
    Duration::parse(v).map_err(|why| ConfigError::Env { var, why: format!("{why}; write {DURATION_RULE}") })
}

fn invalid_field(file: &Option<PathBuf>, path: &[&str], why: String) -> ConfigError {
    let file = file.clone().unwrap_or_else(|| PathBuf::from("tomo.yaml"));
    let text = std::fs::read_to_string(&file).unwrap_or_default();
    let source = Arc::new(SourceFile { path: file.clone(), text: text.clone() });
    let field = path.iter().fold(FieldPath::root(), |p, k| p.key(*k));
    let (docs, _) = yaml::parse(&text);
    let span = docs.first().map(|d| d.root.span_at(&field)).unwrap_or_default();
    let mut diagnostics = Diagnostics::new();
    diagnostics.push(Diagnostic::error("invalid-value", why).at(&source, span).field(field));
    ConfigError::Invalid { file, diagnostics }
}

fn read_raw(path: &Path) -> Result<RawConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io { path: path.to_path_buf(), source })?;
    let file = Arc::new(SourceFile { path: path.to_path_buf(), text });
    let mut diagnostics = Diagnostics::new();
    let (docs, fatal) = yaml::parse(&file.text);
    if let Some(e) = fatal {
        diagnostics.push(Diagnostic::error("yaml-syntax", e.message).at(&file, e.span));
    }
    let invalid = |diagnostics| ConfigError::Invalid { file: path.to_path_buf(), diagnostics };
    let Some(doc) = docs.into_iter().next() else {
        return if diagnostics.has_errors() { Err(invalid(diagnostics)) } else { Ok(RawConfig::default()) };
    };
    if matches!(doc.root.value, yaml::Value::Null) && !diagnostics.has_errors() {
        return Ok(RawConfig::default());
    }
    let schema = schema::closed_schema_for::<RawConfig>();
    for e in schema::check_against(&schema, &doc.root) {
        let span = if e.at_key { doc.root.key_span_at(&e.path) } else { doc.root.span_at(&e.path) };
        let mut d = Diagnostic::error(e.code, e.message).at(&file, span).field(e.path);
        if let Some(h) = e.help {
            d = d.help(h);
        }
        diagnostics.push(d);
    }
    if diagnostics.has_errors() {
        return Err(invalid(diagnostics));
    }
    serde_json::from_value(doc.root.to_json()).map_err(|e| {
        let mut d = Diagnostics::new();
        d.push(Diagnostic::error("invalid-document", e.to_string()).at(&file, doc.root.span));
        invalid(d)
    })
}

fn read_dotenv(path: &Path) -> Result<BTreeMap<String, String>, ConfigError> {
    if !path.exists() {
        return Ok(BTreeMap::new());
    }
    let iter = dotenvy::from_path_iter(path)
        .map_err(|e| ConfigError::DotEnv { path: path.to_path_buf(), detail: e.to_string() })?;
    iter.map(|item| {
        item.map_err(|e| ConfigError::DotEnv {
            path: path.to_path_buf(),
            // dotenvy's errors quote the offending line, which may hold a secret.
            detail: match e {
                dotenvy::Error::LineParse(_, idx) => {
                    format!("syntax error at character {idx} of a line (values with spaces need quotes)")
                }
                other => other.to_string(),
            },
        })
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn defaults_without_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let args = ConfigArgs { config: Some(dir.path().join("tomo.yaml")), dir: None };
        assert!(matches!(Config::load(&args, &env(&[])), Err(ConfigError::Missing(_))));
        std::fs::write(dir.path().join("tomo.yaml"), "").unwrap();
        let c = Config::load(&args, &env(&[])).unwrap();
        assert_eq!(c.manifests, dir.path().join("state"));
        assert_eq!(c.data_dir, dir.path().join("data"));
        assert_eq!(c.ssh_timeout, Duration::from_secs(30));
        assert_eq!(c.max_concurrent_connections, 10);
        assert_eq!(c.mcp_http, "127.0.0.1:8000");
    }

    #[test]
    fn file_then_dotenv_then_environment() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("tomo.yaml"),
            "manifests: fleet\ndata_dir: /var/lib/tomo\nssh: {timeout: 5s, max_concurrent_connections: 3}\nlog: {level: debug, format: json}\nmcp: {allowed_origins: [a]}\n",
        )
        .unwrap();
        std::fs::write(dir.path().join(".env"), "SSH_TIMEOUT=7s\nTOMO_SALT=from-dotenv\nALLOWED_ORIGINS=\"x, y\"\n")
            .unwrap();
        let args = ConfigArgs { config: Some(dir.path().join("tomo.yaml")), dir: None };
        let c = Config::load(&args, &env(&[("SSH_TIMEOUT", "9s"), ("MAX_CONCURRENT_CONNECTIONS", "4")])).unwrap();
        assert_eq!(c.manifests, dir.path().join("fleet"));
        assert_eq!(c.data_dir, PathBuf::from("/var/lib/tomo"));
        assert_eq!(c.ssh_timeout, Duration::from_secs(9));
        assert_eq!(c.max_concurrent_connections, 4);
        assert_eq!(c.allowed_origins, ["x", "y"]);
        assert_eq!(c.log_level, LogLevel::Debug);
        assert_eq!(c.log_format, LogFormat::Json);
        assert_eq!(c.salt.unwrap().expose(), "from-dotenv");
        let c = Config::load(
            &ConfigArgs { dir: Some("elsewhere".into()), ..args.clone() },
            &env(&[("DATA_DIRECTORY", "/d")]),
        )
        .unwrap();
        assert_eq!(c.manifests, PathBuf::from("elsewhere"));
        assert_eq!(c.data_dir, PathBuf::from("/d"));
    }

    #[test]
    fn invalid_file_points_at_the_field() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("tomo.yaml"), "manifests: state\nssh:\n  timout: 5s\n").unwrap();
        let args = ConfigArgs { config: Some(dir.path().join("tomo.yaml")), dir: None };
        let Err(ConfigError::Invalid { diagnostics, .. }) = Config::load(&args, &env(&[])) else { panic!() };
        let d = diagnostics.iter().next().unwrap();
        assert_eq!(d.span.unwrap().line, 3);
        assert_eq!(d.field.to_string(), "ssh.timout");
        assert!(d.help.as_deref().unwrap().contains("timeout"));
        std::fs::write(dir.path().join("tomo.yaml"), "ssh:\n  timeout: 5\n").unwrap();
        assert!(Config::load(&args, &env(&[])).is_err());
        std::fs::write(dir.path().join("tomo.yaml"), "ssh:\n  timeout: 5 parsecs\n").unwrap();
        let Err(ConfigError::Invalid { diagnostics, .. }) = Config::load(&args, &env(&[])) else { panic!() };
        assert_eq!(diagnostics.iter().next().unwrap().span.unwrap().line, 2);
        let e = Config::load(&args, &env(&[("SSH_TIMEOUT", "soon")])).unwrap_err();
        assert!(e.to_string().contains("SSH_TIMEOUT"), "{e}");
    }
}
