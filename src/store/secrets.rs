//! Vault rows: ciphertexts and the key check. The store never sees plaintext;
//! `vault` encrypts and decrypts.

use rusqlite::{OptionalExtension, params};

use super::{Store, StoreError};

/// A stored secret's metadata (never its value).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SecretRow {
    pub name: String,
    pub created_at: String,
    pub updated_at: String,
}

/// An encrypted value as stored: its nonce and ciphertext.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    pub nonce: Vec<u8>,
    pub ciphertext: Vec<u8>,
}

/// The vault's key check: a known value encrypted under the master key.
#[derive(Debug, Clone)]
pub struct VaultMeta {
    pub kdf: String,
    pub nonce: Vec<u8>,
    pub key_check: Vec<u8>,
}

impl Store {
    pub fn vault_meta(&self) -> Result<Option<VaultMeta>, StoreError> {
        self.conn()
            .query_row("SELECT kdf, nonce, key_check FROM vault_meta WHERE id = 1", [], |r| {
                Ok(VaultMeta { kdf: r.get(0)?, nonce: r.get(1)?, key_check: r.get(2)? })
            })
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Records the key check, unless one exists already (returns whether it was written).
    pub fn init_vault_meta(&self, meta: &VaultMeta) -> Result<bool, StoreError> {
        let n = self
            .conn()
            .execute(
                "INSERT OR IGNORE INTO vault_meta (id, kdf, nonce, key_check) VALUES (1, ?1, ?2, ?3)",
                params![meta.kdf, meta.nonce, meta.key_check],
            )
            .map_err(|e| self.err(e))?;
        Ok(n == 1)
    }

    pub fn secret_put(&self, name: &str, nonce: &[u8], ciphertext: &[u8]) -> Result<(), StoreError> {
        self.conn()
            .execute(
                "INSERT INTO secrets (name, nonce, ciphertext) VALUES (?1, ?2, ?3)
                 ON CONFLICT(name) DO UPDATE SET nonce = excluded.nonce, ciphertext = excluded.ciphertext,
                 updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
                params![name, nonce, ciphertext],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// The sealed value of a secret.
    pub fn secret_get(&self, name: &str) -> Result<Option<Sealed>, StoreError> {
        self.conn()
            .query_row("SELECT nonce, ciphertext FROM secrets WHERE name = ?1", [name], |r| {
                Ok(Sealed { nonce: r.get(0)?, ciphertext: r.get(1)? })
            })
            .optional()
            .map_err(|e| self.err(e))
    }

    pub fn secret_list(&self) -> Result<Vec<SecretRow>, StoreError> {
        self.rows("SELECT name, created_at, updated_at FROM secrets ORDER BY name", [], |r| {
            Ok(SecretRow { name: r.get(0)?, created_at: r.get(1)?, updated_at: r.get(2)? })
        })
    }

    /// Removes a secret; returns whether it existed.
    pub fn secret_remove(&self, name: &str) -> Result<bool, StoreError> {
        let n = self.conn().execute("DELETE FROM secrets WHERE name = ?1", [name]).map_err(|e| self.err(e))?;
        Ok(n == 1)
    }
}
