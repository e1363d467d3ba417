//! Who may do what: roles and their permissions, password hashes (Argon2id)
//! and bearer tokens (JWT, HS256).
//!
//! **Invariants:**
//! - A token is accepted only with a valid signature made with
//!   `JWT_SECRET_KEY`, algorithm `HS256`, an `exp` in the future, and no
//!   `iat` or `nbf` in the future (beyond `CLOCK_LEEWAY`); the comparison of
//!   signatures is constant-time (`hmac::Mac::verify_slice`).
//!   Whether its session was revoked is the store's business (`engine`).
//! - Passwords are kept only as Argon2id PHC strings.

use std::time::{SystemTime, UNIX_EPOCH};

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{KeyInit, Mac};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// How far in the future a token's `iat` or `nbf` may lie (clock skew).
pub const CLOCK_LEEWAY: i64 = 60;

/// The shortest `JWT_SECRET_KEY` accepted.
pub const MIN_JWT_KEY_BYTES: usize = 32;

/// A user's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything, including users and approvals.
    Admin,
    /// Read, change manifests, plan, apply, act on containers.
    Operator,
    /// Read only.
    Viewer,
    /// Read, plan and propose changes; never applies or acts directly.
    Agent,
}

/// What a tool or command needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Permission {
    /// Read the fleet, manifests, history and audit log.
    Read,
    /// Compute plans (observes servers, changes nothing).
    Plan,
    /// Propose manifest changes (kept for a human's approval).
    Propose,
    /// Write manifest changes directly (subject to `mcp.require_approval`).
    Change,
    /// Apply a reviewed plan.
    Apply,
    /// Act on containers directly (restart) or prune images.
    Operate,
    /// Approve or reject proposals; manage users.
    Admin,
}

impl Permission {
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::Read => "read",
            Permission::Plan => "plan",
            Permission::Propose => "propose",
            Permission::Change => "change",
            Permission::Apply => "apply",
            Permission::Operate => "operate",
            Permission::Admin => "admin",
        }
    }
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Operator => "operator",
            Role::Viewer => "viewer",
            Role::Agent => "agent",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        [Role::Admin, Role::Operator, Role::Viewer, Role::Agent].into_iter().find(|r| r.as_str() == s)
    }

    /// Whether this role holds `p`.
    pub fn allows(self, p: Permission) -> bool {
        use Permission::*;
        match self {
            Role::Admin => true,
            Role::Operator => !matches!(p, Admin),
            Role::Agent => matches!(p, Read | Plan | Propose),
            Role::Viewer => matches!(p, Read),
        }
    }

    /// The permissions this role holds, for messages.
    pub fn permissions(self) -> Vec<&'static str> {
        use Permission::*;
        [Read, Plan, Propose, Change, Apply, Operate, Admin]
            .into_iter()
            .filter(|p| self.allows(*p))
            .map(Permission::as_str)
            .collect()
    }
}

/// Who is calling: a user and role, and the token's id when it came with one.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct Identity {
    pub user: String,
    pub role: Role,
    /// The session (token id), when authenticated by a token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
}

/// The claims of a tomo token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub role: Role,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token is malformed")]
    Malformed,
    #[error("the token's algorithm is not HS256")]
    Algorithm,
    #[error("the token's signature is not valid")]
    Signature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet (issued or valid from a time in the future)")]
    NotYetValid,
    #[error("the token was revoked")]
    Revoked,
    #[error("the token's user no longer exists or is disabled")]
    UnknownUser,
}

pub fn now_unix() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

fn mac(key: &[u8]) -> HmacSha256 {
    <HmacSha256 as KeyInit>::new_from_slice(key).expect("HMAC takes keys of any length")
}

/// Signs `claims` as a compact JWT (HS256).
pub fn sign(claims: &Claims, key: &[u8]) -> String {
    let header = B64.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = B64.encode(serde_json::to_vec(claims).expect("claims serialise"));
    let input = format!("{header}.{payload}");
    let mut m = mac(key);
    m.update(input.as_bytes());
    let sig = B64.encode(m.finalize().into_bytes());
    format!("{input}.{sig}")
}

/// Checks a compact JWT's form, algorithm, signature and expiry (at `now`).
pub fn verify(token: &str, key: &[u8], now: i64) -> Result<Claims, TokenError> {
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(TokenError::Malformed);
    };
    let header: serde_json::Value =
        B64.decode(h).ok().and_then(|b| serde_json::from_slice(&b).ok()).ok_or(TokenError::Malformed)?;
    if header.get("alg").and_then(|a| a.as_str()) != Some("HS256") {
        return Err(TokenError::Algorithm);
    }
    let sig = B64.decode(s).map_err(|_| TokenError::Malformed)?;
    let mut m = mac(key);
    m.update(h.as_bytes());
    m.update(b".");
    m.update(p.as_bytes());
    m.verify_slice(&sig).map_err(|_| TokenError::Signature)?;
    let payload = B64.decode(p).map_err(|_| TokenError::Malformed)?;
    let claims: Claims = serde_json::from_slice(&payload).map_err(|_| TokenError::Malformed)?;
    if claims.exp <= now {
        return Err(TokenError::Expired);
    }
    #[derive(Deserialize)]
    struct NotBefore {
        nbf: Option<i64>,
    }
    let nbf = serde_json::from_slice::<NotBefore>(&payload).map_err(|_| TokenError::Malformed)?.nbf;
    if claims.iat > now + CLOCK_LEEWAY || nbf.is_some_and(|nbf| nbf > now + CLOCK_LEEWAY) {
        return Err(TokenError::NotYetValid);
    }
    Ok(claims)
}

/// A fresh random id (128 bits, URL-safe).
pub fn random_id() -> String {
    use chacha20poly1305::aead::Generate;
    let bytes = chacha20poly1305::XNonce::generate();
    B64.encode(&bytes[..16])
}

/// The Argon2id PHC string of `password` (random salt).
pub fn hash_password(password: &str) -> String {
    argon2::Argon2::default().hash_password(password.as_bytes()).expect("argon2 with default params").to_string()
}

/// A hash of no one's password, verified for unknown users so that a login
/// takes as long whether the user exists or not.
pub fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| hash_password(&random_id()));
    &DUMMY
}

/// Whether `password` matches the PHC string `hash`.
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordVerifier::<str>::verify_password(&argon2::Argon2::default(), password.as_bytes(), hash).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn claims(exp: i64) -> Claims {
        Claims { sub: "ann".into(), role: Role::Operator, iat: 100, exp, jti: "j1".into() }
    }

    #[test]
    fn tokens_round_trip_and_refuse_tampering() {
        let t = sign(&claims(200), KEY);
        assert_eq!(verify(&t, KEY, 150), Ok(claims(200)));
        assert_eq!(verify(&t, KEY, 200), Err(TokenError::Expired));
        assert_eq!(verify(&t, b"another key of thirty-two bytes!", 150), Err(TokenError::Signature));
        let (head, rest) = t.split_once('.').unwrap();
        let (_, sig) = rest.split_once('.').unwrap();
        let forged = format!("{head}.{}.{sig}", B64.encode(serde_json::to_vec(&claims(999)).unwrap()));
        assert_eq!(verify(&forged, KEY, 150), Err(TokenError::Signature));
        let none = format!("{}.{}.", B64.encode(br#"{"alg":"none"}"#), B64.encode(b"{}"));
        assert_eq!(verify(&none, KEY, 150), Err(TokenError::Algorithm));
        assert_eq!(verify("abc", KEY, 150), Err(TokenError::Malformed));
        assert_eq!(verify("a.b.c", KEY, 150), Err(TokenError::Malformed));
    }

    #[test]
    fn tokens_from_the_future_are_refused() {
        let future = Claims { iat: 100 + CLOCK_LEEWAY + 1, ..claims(10_000) };
        assert_eq!(verify(&sign(&future, KEY), KEY, 100), Err(TokenError::NotYetValid));
        let skewed = Claims { iat: 100 + CLOCK_LEEWAY, ..claims(10_000) };
        assert!(verify(&sign(&skewed, KEY), KEY, 100).is_ok());
        let with_nbf = |nbf: i64| {
            let mut v = serde_json::to_value(claims(10_000)).unwrap();
            v["nbf"] = nbf.into();
            let input = format!("{}.{}", B64.encode(br#"{"alg":"HS256"}"#), B64.encode(v.to_string()));
            let mut m = mac(KEY);
            m.update(input.as_bytes());
            format!("{input}.{}", B64.encode(m.finalize().into_bytes()))
        };
        assert_eq!(verify(&with_nbf(100 + CLOCK_LEEWAY + 1), KEY, 100), Err(TokenError::NotYetValid));
        assert!(verify(&with_nbf(50), KEY, 100).is_ok());
    }

    #[test]
    fn roles_hold_what_the_docs_say() {
        assert!(Role::Agent.allows(Permission::Propose));
        assert!(!Role::Agent.allows(Permission::Apply));
        assert!(!Role::Agent.allows(Permission::Operate));
        assert!(!Role::Viewer.allows(Permission::Plan));
        assert!(Role::Operator.allows(Permission::Apply));
        assert!(!Role::Operator.allows(Permission::Admin));
        assert!(Role::Admin.allows(Permission::Admin));
    }

    #[test]
    fn passwords_hash_and_verify() {
        let h = hash_password("s3cret");
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("s3cret", &h));
        assert!(!verify_password("wrong", &h));
        assert!(!verify_password("s3cret", "not a hash"));
        assert!(dummy_hash().starts_with("$argon2id$") && std::ptr::eq(dummy_hash(), dummy_hash()));
    }
}
