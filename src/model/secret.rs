//! Secret values and the access to them: `SecretString` (plaintext that never
//! prints) and the `Secrets` trait through which the plan hashes and apply
//! reveals vault references. The vault implements the trait; everything below
//! it (spec, transport) sees only these types.

use std::fmt;

use super::EnvValue;

/// Prefix of inline encrypted values that may stand in manifests.
pub const INLINE_PREFIX: &str = "enc:v1:";

/// A secret value. Never printed: `Debug` and `Display` show `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(String);

impl SecretString {
    pub fn new(s: impl Into<String>) -> Self {
        SecretString(s.into())
    }
    /// The plaintext. Call sites are the few places a value must leave tomo
    /// (a container's environment, an SSH password).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl Drop for SecretString {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

/// Access to secret values, for hashing and (at apply) for creating containers.
pub trait Secrets: Send + Sync {
    /// The plaintext of a vault reference (`Secret` or `Encrypted`).
    fn reveal(&self, value: &EnvValue) -> Result<SecretString, String>;
    /// The key of the keyed hash that stands for secret values in labels.
    fn hash_key(&self) -> Result<[u8; 32], String>;
}

/// Secrets for a fleet that uses none: any use is an error.
pub struct NoSecrets(pub String);

impl Secrets for NoSecrets {
    fn reveal(&self, _: &EnvValue) -> Result<SecretString, String> {
        Err(self.0.clone())
    }
    fn hash_key(&self) -> Result<[u8; 32], String> {
        Err(self.0.clone())
    }
}
