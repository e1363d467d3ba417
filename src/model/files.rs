//! What tomo writes on a server's filesystem for a service: the host
//! folders of its bind mounts (created when missing, never deleted) and its
//! config files (`files:`), content-addressed under [`FILES_ROOT`] and
//! bind-mounted read-only.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::Name;

/// The tomo-owned folder on each server that holds config files.
pub const FILES_ROOT: &str = "/var/lib/tomo/files";

/// How a bind mount's host folder is made when it is missing (set on the
/// long form of a mount; a short-form bind is created with the defaults).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostFolder {
    /// Create it when missing (default); `false`: the plan refuses instead.
    pub create: bool,
    /// Owner of the folder tomo creates: uid and optional gid.
    pub owner: Option<(u32, Option<u32>)>,
    /// Mode of the folder tomo creates.
    pub mode: Option<u32>,
    /// Where the mount is declared, `file:line`, for the plan's refusal.
    pub declared_at: String,
}

impl Default for HostFolder {
    fn default() -> Self {
        HostFolder { create: true, owner: None, mode: None, declared_at: String::new() }
    }
}

/// `UID[:GID]`.
pub fn parse_owner(s: &str) -> Result<(u32, Option<u32>), String> {
    let num = |p: &str| p.parse::<u32>().map_err(|_| format!("`{}` is not a numeric id", p.escape_default()));
    match s.split_once(':') {
        None => Ok((num(s)?, None)),
        Some((u, g)) => Ok((num(u)?, Some(num(g)?))),
    }
}

/// An octal mode written as a string, e.g. `"0750"`.
pub fn parse_mode(s: &str) -> Result<u32, String> {
    let digits = s.strip_prefix("0o").unwrap_or(s);
    match u32::from_str_radix(digits, 8) {
        Ok(m) if !digits.is_empty() && m <= 0o7777 => Ok(m),
        _ => Err(format!("`{}` is not an octal mode such as `\"0750\"`", s.escape_default())),
    }
}

/// The content of a config file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileContent {
    Text(String),
    /// A vault secret's value.
    Secret(Name),
}

/// A config file of a service (and, resolved, of its container spec).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigFile {
    /// Absolute path inside the container.
    pub target: String,
    pub content: FileContent,
    pub mode: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<u32>,
    /// The file beside the manifests its text was read from (`source`,
    /// relative to the manifest folder), for the admin review of where a
    /// file's content is sent. Not serialised: it is no part of the spec.
    #[serde(skip)]
    pub source: Option<String>,
}

/// The default mode of a config file.
pub const DEFAULT_FILE_MODE: u32 = 0o444;

/// The SHA-256 of a text, in hex.
pub fn sha256_hex(text: &[u8]) -> String {
    super::spec::hex(&Sha256::digest(text))
}

/// The path on the server of a config file, from its entry in the redacted
/// spec (content hash or keyed hash, mode, owner): equal entries share one
/// file, and a changed file gets a new name, so a container being replaced
/// keeps its own until it is gone.
pub fn server_path(redacted_entry: &serde_json::Value) -> String {
    let mut entry = redacted_entry.clone();
    if let Some(m) = entry.as_object_mut() {
        m.remove("target");
    }
    let digest = Sha256::digest(entry.to_string().as_bytes());
    format!("{FILES_ROOT}/{}", super::spec::hex(&digest[..16]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_and_modes_parse() {
        assert_eq!(parse_owner("1000"), Ok((1000, None)));
        assert_eq!(parse_owner("1000:100"), Ok((1000, Some(100))));
        assert!(parse_owner("bob").is_err());
        assert!(parse_owner("1:").is_err());
        assert_eq!(parse_mode("0750"), Ok(0o750));
        assert_eq!(parse_mode("644"), Ok(0o644));
        assert!(parse_mode("0980").is_err());
        assert!(parse_mode("").is_err());
        assert!(parse_mode("77777").is_err());
    }

    #[test]
    fn server_paths_ignore_the_target_only() {
        let a = serde_json::json!({"target": "/a", "sha256": "x", "mode": 292});
        let b = serde_json::json!({"target": "/b", "sha256": "x", "mode": 292});
        let c = serde_json::json!({"target": "/a", "sha256": "y", "mode": 292});
        assert_eq!(server_path(&a), server_path(&b));
        assert_ne!(server_path(&a), server_path(&c));
        assert!(server_path(&a).starts_with(FILES_ROOT));
    }
}
