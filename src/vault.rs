//! The secret vault: values encrypted with XChaCha20-Poly1305 under a master
//! key derived with Argon2id from `TOMO_MASTER_PASSWORD` and `TOMO_SALT`.
//!
//! **Invariants:**
//! - A wrong password or salt is detected by the key check before any secret
//!   is read or written; decryption never yields garbage (AEAD).
//! - Each ciphertext is bound to its name (associated data), so rows cannot be
//!   swapped. Inline `enc:v1:` values are bound to the inline context.
//! - Plaintext lives only in `SecretString`, whose `Debug`/`Display` print `***`.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use chacha20poly1305::aead::{Aead, Generate, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};

use crate::model::Name;
use crate::model::secret::{INLINE_PREFIX, SecretString, Secrets};
use crate::store::{SecretRow, Store, StoreError, VaultMeta};

const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
const KDF: &str = "argon2id-v19-m19456-t2-p1";
const KEY_CHECK_PLAINTEXT: &[u8] = b"tomo vault key check v1";
const AAD_KEY_CHECK: &[u8] = b"tomo:keycheck";
const AAD_INLINE: &[u8] = b"tomo:inline:v1";

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("TOMO_MASTER_PASSWORD is not set; the vault needs it to encrypt and decrypt secrets")]
    NoPassword,
    #[error(
        "TOMO_SALT is not set; the vault derives its key from TOMO_MASTER_PASSWORD and TOMO_SALT (e.g. `openssl rand -hex 16`)"
    )]
    NoSalt,
    #[error("TOMO_SALT is too short ({0} bytes); use at least 8 (e.g. `openssl rand -hex 16`)")]
    SaltTooShort(usize),
    #[error(
        "the master password or salt is wrong: the vault's key check does not match. Nothing was read or written; set the TOMO_MASTER_PASSWORD and TOMO_SALT the vault was created with"
    )]
    WrongKey,
    #[error("the vault was created with `{0}`, which this tomo does not support")]
    UnknownKdf(String),
    #[error("secret `{0}` is not in the vault")]
    NotFound(String),
    #[error("secret `{0}` cannot be decrypted: its stored value was altered or damaged")]
    Tampered(String),
    #[error("{0}")]
    Inline(String),
    #[error("key derivation failed: {0}")]
    Kdf(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The key every vault value is encrypted under.
#[derive(Clone)]
pub struct MasterKey(Key);

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(***)")
    }
}

impl MasterKey {
    /// Derives the key with Argon2id. Refuses a missing password or a short salt.
    pub fn derive(password: Option<&SecretString>, salt: Option<&SecretString>) -> Result<MasterKey, VaultError> {
        let password = password.filter(|p| !p.expose().is_empty()).ok_or(VaultError::NoPassword)?;
        let salt = salt.filter(|s| !s.expose().is_empty()).ok_or(VaultError::NoSalt)?;
        if salt.expose().len() < 8 {
            return Err(VaultError::SaltTooShort(salt.expose().len()));
        }
        tracing::debug!("deriving the vault key (Argon2id)");
        let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, argon2::Params::DEFAULT);
        let mut out = [0u8; 32];
        argon
            .hash_password_into(password.expose().as_bytes(), salt.expose().as_bytes(), &mut out)
            .map_err(|e| VaultError::Kdf(e.to_string()))?;
        let key = Key::from(out);
        zeroize::Zeroize::zeroize(&mut out);
        Ok(MasterKey(key))
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(&self.0)
    }

    fn seal(&self, plaintext: &[u8], aad: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let nonce = XNonce::generate();
        let ct = self
            .cipher()
            .encrypt(&nonce, Payload { msg: plaintext, aad })
            .expect("XChaCha20-Poly1305 encryption of an in-memory buffer cannot fail");
        (nonce.to_vec(), ct)
    }

    fn open(&self, nonce: &[u8], ciphertext: &[u8], aad: &[u8]) -> Option<Vec<u8>> {
        let nonce = XNonce::try_from(nonce).ok()?;
        self.cipher().decrypt(&nonce, Payload { msg: ciphertext, aad }).ok()
    }

    /// Encrypts a value for use inline in a manifest: `enc:v1:<base64>`.
    pub fn encrypt_inline(&self, value: &SecretString) -> String {
        let (nonce, ct) = self.seal(value.expose().as_bytes(), AAD_INLINE);
        let mut blob = nonce;
        blob.extend(ct);
        format!("{INLINE_PREFIX}{}", B64.encode(blob))
    }

    /// Decrypts an `enc:v1:` value.
    pub fn decrypt_inline(&self, text: &str) -> Result<SecretString, VaultError> {
        let blob = inline_blob(text).map_err(VaultError::Inline)?;
        let (nonce, ct) = blob.split_at(NONCE_LEN);
        let plain = self.open(nonce, ct, AAD_INLINE).ok_or_else(|| {
            VaultError::Inline("an `enc:v1:` value cannot be decrypted with this master password and salt".into())
        })?;
        String::from_utf8(plain)
            .map(SecretString::new)
            .map_err(|_| VaultError::Inline("an `enc:v1:` value does not hold text".into()))
    }
}

/// Checks the form of an `enc:v1:` value without decrypting it.
pub fn check_inline_format(text: &str) -> Result<(), String> {
    inline_blob(text).map(|_| ())
}

fn inline_blob(text: &str) -> Result<Vec<u8>, String> {
    let body =
        text.strip_prefix(INLINE_PREFIX).ok_or_else(|| format!("an inline secret starts with `{INLINE_PREFIX}`"))?;
    let blob =
        B64.decode(body).map_err(|_| "the `enc:v1:` value is not valid base64 (was it cut short?)".to_string())?;
    if blob.len() < NONCE_LEN + TAG_LEN {
        return Err("the `enc:v1:` value is too short to be an encrypted value".into());
    }
    Ok(blob)
}

/// An open vault: the store plus a master key that passed the key check.
pub struct Vault<'s> {
    store: &'s Store,
    key: MasterKey,
}

impl<'s> Vault<'s> {
    /// Opens the vault, creating its key check on first use. Fails with
    /// `WrongKey` before touching any secret when the key does not match.
    pub fn open(store: &'s Store, key: MasterKey) -> Result<Vault<'s>, VaultError> {
        match store.vault_meta()? {
            Some(meta) => verify(&key, &meta)?,
            None => {
                let (nonce, key_check) = key.seal(KEY_CHECK_PLAINTEXT, AAD_KEY_CHECK);
                let written = store.init_vault_meta(&VaultMeta { kdf: KDF.into(), nonce, key_check })?;
                if !written {
                    // Another process created it first: check against theirs.
                    let meta = store.vault_meta()?.ok_or(VaultError::WrongKey)?;
                    verify(&key, &meta)?;
                }
            }
        }
        Ok(Vault { store, key })
    }

    pub fn key(&self) -> &MasterKey {
        &self.key
    }

    pub fn set(&self, name: &Name, value: &SecretString) -> Result<(), VaultError> {
        let (nonce, ct) = self.key.seal(value.expose().as_bytes(), &aad_for(name.as_str()));
        self.store.secret_put(name.as_str(), &nonce, &ct)?;
        Ok(())
    }

    pub fn get(&self, name: &str) -> Result<SecretString, VaultError> {
        let sealed = self.store.secret_get(name)?.ok_or_else(|| VaultError::NotFound(name.to_string()))?;
        let plain = self
            .key
            .open(&sealed.nonce, &sealed.ciphertext, &aad_for(name))
            .ok_or_else(|| VaultError::Tampered(name.to_string()))?;
        String::from_utf8(plain).map(SecretString::new).map_err(|_| VaultError::Tampered(name.to_string()))
    }

    pub fn list(&self) -> Result<Vec<SecretRow>, VaultError> {
        Ok(self.store.secret_list()?)
    }

    pub fn remove(&self, name: &str) -> Result<bool, VaultError> {
        Ok(self.store.secret_remove(name)?)
    }
}

fn verify(key: &MasterKey, meta: &VaultMeta) -> Result<(), VaultError> {
    if meta.kdf != KDF {
        return Err(VaultError::UnknownKdf(meta.kdf.clone()));
    }
    match key.open(&meta.nonce, &meta.key_check, AAD_KEY_CHECK) {
        Some(p) if p == KEY_CHECK_PLAINTEXT => Ok(()),
        _ => Err(VaultError::WrongKey),
    }
}

fn aad_for(name: &str) -> Vec<u8> {
    format!("tomo:secret:{name}").into_bytes()
}

/// The vault as the planner and applier see it: secret values on demand, and
/// the key of the keyed hash that stands for them in labels. Owns its store
/// handle so it can be shared across tasks.
pub struct VaultSecrets {
    store: std::sync::Arc<Store>,
    key: MasterKey,
}

impl VaultSecrets {
    /// Checks the key against the vault once.
    pub fn open(store: std::sync::Arc<Store>, key: MasterKey) -> Result<VaultSecrets, VaultError> {
        Vault::open(&store, key.clone())?;
        Ok(VaultSecrets { store, key })
    }
}

/// The master key of a process, derived at most once (Argon2id is slow on
/// purpose), when first asked for.
#[derive(Default)]
pub struct KeyCell(std::sync::OnceLock<MasterKey>);

impl KeyCell {
    pub fn get(&self, password: Option<&SecretString>, salt: Option<&SecretString>) -> Result<MasterKey, VaultError> {
        if let Some(k) = self.0.get() {
            return Ok(k.clone());
        }
        let k = MasterKey::derive(password, salt)?;
        Ok(self.0.get_or_init(|| k).clone())
    }
}

/// The vault as plan and apply see it, opened on first use: a command that
/// reveals no secret (and hashes none) never derives the key, so neither
/// pays for Argon2id nor depends on the master password being right.
pub struct LazySecrets {
    store: std::sync::Arc<Store>,
    password: Option<SecretString>,
    salt: Option<SecretString>,
    key: std::sync::Arc<KeyCell>,
    opened: std::sync::OnceLock<Result<VaultSecrets, String>>,
}

impl LazySecrets {
    pub fn new(
        store: std::sync::Arc<Store>,
        key: std::sync::Arc<KeyCell>,
        password: Option<SecretString>,
        salt: Option<SecretString>,
    ) -> LazySecrets {
        LazySecrets { store, password, salt, key, opened: std::sync::OnceLock::new() }
    }

    fn vault(&self) -> Result<&VaultSecrets, String> {
        self.opened
            .get_or_init(|| {
                let key = self.key.get(self.password.as_ref(), self.salt.as_ref());
                key.and_then(|k| VaultSecrets::open(self.store.clone(), k))
                    .map_err(|e| format!("the vault is not available: {e}"))
            })
            .as_ref()
            .map_err(Clone::clone)
    }
}

impl Secrets for LazySecrets {
    fn reveal(&self, value: &crate::model::EnvValue) -> Result<SecretString, String> {
        match value {
            crate::model::EnvValue::Plain(p) => Ok(SecretString::new(p.clone())),
            crate::model::EnvValue::FromFile { value, .. } => Ok(value.clone()),
            _ => self.vault()?.reveal(value),
        }
    }

    fn hash_key(&self) -> Result<[u8; 32], String> {
        self.vault()?.hash_key()
    }
}

impl Secrets for VaultSecrets {
    fn reveal(&self, value: &crate::model::EnvValue) -> Result<SecretString, String> {
        use crate::model::EnvValue;
        let vault = Vault { store: &self.store, key: self.key.clone() };
        match value {
            EnvValue::Secret(name) => vault.get(name.as_str()).map_err(|e| e.to_string()),
            EnvValue::Encrypted(text) => self.key.decrypt_inline(text).map_err(|e| e.to_string()),
            EnvValue::Plain(p) => Ok(SecretString::new(p.clone())),
            EnvValue::FromFile { value, .. } => Ok(value.clone()),
        }
    }

    fn hash_key(&self) -> Result<[u8; 32], String> {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(b"tomo:spec-hash:v1");
        h.update(self.key.0.as_slice());
        Ok(h.finalize().into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(pw: &str) -> MasterKey {
        MasterKey::derive(Some(&SecretString::new(pw)), Some(&SecretString::new("salt-for-tests"))).unwrap()
    }

    #[test]
    fn round_trip_and_wrong_key() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_in(dir.path()).unwrap();
        let v = Vault::open(&store, key("right")).unwrap();
        let name = Name::parse("db").unwrap();
        v.set(&name, &SecretString::new("hunter2")).unwrap();
        assert_eq!(v.get("db").unwrap().expose(), "hunter2");
        assert!(matches!(Vault::open(&store, key("wrong")), Err(VaultError::WrongKey)));
        assert!(matches!(v.get("nope"), Err(VaultError::NotFound(_))));
        assert!(v.remove("db").unwrap());
        assert!(!v.remove("db").unwrap());
    }

    #[test]
    fn tampered_ciphertext_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_in(dir.path()).unwrap();
        let v = Vault::open(&store, key("pw")).unwrap();
        v.set(&Name::parse("a").unwrap(), &SecretString::new("value-a")).unwrap();
        let mut sealed = store.secret_get("a").unwrap().unwrap();
        sealed.ciphertext[0] ^= 1;
        store.secret_put("a", &sealed.nonce, &sealed.ciphertext).unwrap();
        assert!(matches!(v.get("a"), Err(VaultError::Tampered(_))));
        // a row copied under another name does not decrypt either
        v.set(&Name::parse("b").unwrap(), &SecretString::new("value-b")).unwrap();
        let sealed = store.secret_get("b").unwrap().unwrap();
        store.secret_put("c", &sealed.nonce, &sealed.ciphertext).unwrap();
        assert!(matches!(v.get("c"), Err(VaultError::Tampered(_))));
    }

    #[test]
    fn inline_values() {
        let k = key("pw");
        let enc = k.encrypt_inline(&SecretString::new("s3cret"));
        assert!(enc.starts_with(INLINE_PREFIX));
        assert!(!enc.contains("s3cret"));
        assert_eq!(k.decrypt_inline(&enc).unwrap().expose(), "s3cret");
        assert!(key("other").decrypt_inline(&enc).is_err());
        assert!(check_inline_format(&enc).is_ok());
        assert!(check_inline_format("enc:v1:abc").is_err());
        assert!(check_inline_format("enc:v1:!!!").is_err());
    }

    #[test]
    fn secrets_never_print() {
        let s = SecretString::new("hunter2");
        assert_eq!(format!("{s} {s:?}"), "*** ***");
        assert!(!format!("{:?}", key("pw")).contains("pw"));
    }

    #[test]
    fn missing_or_short_inputs() {
        let salt = SecretString::new("12345678");
        assert!(matches!(MasterKey::derive(None, Some(&salt)), Err(VaultError::NoPassword)));
        assert!(matches!(MasterKey::derive(Some(&salt), None), Err(VaultError::NoSalt)));
        let short = SecretString::new("abc");
        assert!(matches!(MasterKey::derive(Some(&salt), Some(&short)), Err(VaultError::SaltTooShort(3))));
    }
}
