//! Users, tokens and logins: the engine side of authentication. Front ends
//! call `login` or `authenticate` and get an `Identity`, or `Error::Denied`
//! whose message says why without revealing whether a user exists.

use std::time::Duration;

use super::Engine;
use crate::auth::{self, Claims, Identity, MIN_JWT_KEY_BYTES, Role, TokenError};
use crate::error::{Error, Result};
use crate::store::{Activity, UserRow};
use crate::vault::SecretString;

/// Failed logins (per user or per address) before logins are locked.
pub const LOCK_AFTER: u32 = 5;
/// How long a lock lasts.
pub const LOCK_FOR: Duration = Duration::from_secs(15 * 60);
/// Each failed login is answered this much later per failure so far (capped).
const SLOWDOWN_STEP: Duration = Duration::from_millis(150);

/// An issued token.
#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema)]
pub struct Token {
    pub token: String,
    /// Unix seconds.
    pub expires_at: i64,
    pub user: String,
    pub role: Role,
}

fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@'));
    if ok {
        Ok(())
    } else {
        Err(Error::Usage(format!("user name `{name}` is not valid: use 1 to 64 letters, digits, `-`, `_`, `.` or `@`")))
    }
}

fn check_password(p: &str) -> Result<()> {
    if p.chars().count() < 8 {
        return Err(Error::Usage("the password is too short: use at least 8 characters".into()));
    }
    Ok(())
}

impl Engine {
    /// The signing key, or why the HTTP server cannot use tokens.
    pub fn jwt_key(&self) -> Result<&SecretString> {
        match &self.config().jwt_secret_key {
            None => Err(Error::Usage(
                "JWT_SECRET_KEY is not set: tokens cannot be signed. Set it (in the environment, .env or \
                 tomo.yaml's folder .env) to a random value of at least 32 bytes, e.g. `openssl rand -hex 32`"
                    .into(),
            )),
            Some(k) if k.expose().len() < MIN_JWT_KEY_BYTES => Err(Error::Usage(format!(
                "JWT_SECRET_KEY is {} bytes long; it must be at least {MIN_JWT_KEY_BYTES} bytes \
                 (e.g. `openssl rand -hex 32`)",
                k.expose().len()
            ))),
            Some(k) => Ok(k),
        }
    }

    pub fn add_user(&self, name: &str, role: Role, password: &SecretString) -> Result<()> {
        check_name(name)?;
        check_password(password.expose())?;
        if !self.store()?.add_user(name, role.as_str(), &auth::hash_password(password.expose()))? {
            return Err(Error::Usage(format!("user `{name}` already exists; use `tomo user passwd {name}`")));
        }
        Ok(())
    }

    pub fn users(&self) -> Result<Vec<UserRow>> {
        Ok(self.store()?.users()?)
    }

    pub fn set_password(&self, name: &str, password: &SecretString) -> Result<()> {
        check_password(password.expose())?;
        if !self.store()?.set_password(name, &auth::hash_password(password.expose()))? {
            return Err(self.no_user(name));
        }
        Ok(())
    }

    pub fn remove_user(&self, name: &str) -> Result<()> {
        if !self.store()?.remove_user(name)? {
            return Err(self.no_user(name));
        }
        Ok(())
    }

    fn no_user(&self, name: &str) -> Error {
        let known: Vec<String> = self.users().map(|u| u.into_iter().map(|u| u.name).collect()).unwrap_or_default();
        Error::Usage(format!(
            "there is no user `{name}`; users: {}",
            if known.is_empty() { "none".into() } else { known.join(", ") }
        ))
    }

    /// Mints a token for `user` valid for `ttl`, recorded as a session.
    pub fn issue_token(&self, user: &str, ttl: Duration, client: &str) -> Result<Token> {
        let key = self.jwt_key()?;
        let store = self.store()?;
        let Some((role, _)) = store.user_secret(user)? else {
            return Err(self.no_user(user));
        };
        let role = Role::parse(&role).unwrap_or(Role::Viewer);
        let iat = auth::now_unix();
        let claims = Claims { sub: user.into(), role, iat, exp: iat + ttl.as_secs() as i64, jti: auth::random_id() };
        store.add_session(&claims.jti, user, claims.exp, client)?;
        Ok(Token {
            token: auth::sign(&claims, key.expose().as_bytes()),
            expires_at: claims.exp,
            user: user.into(),
            role,
        })
    }

    /// The identity a bearer token stands for: valid signature, not expired,
    /// its session known and not revoked, its user present. The role is the
    /// user's current one (lowering a role takes effect at once).
    pub fn authenticate(&self, token: &str) -> std::result::Result<Identity, TokenError> {
        let key = self.jwt_key().map_err(|_| TokenError::Signature)?;
        let claims = auth::verify(token, key.expose().as_bytes(), auth::now_unix())?;
        let store = self.store().map_err(|_| TokenError::Revoked)?;
        match store.session(&claims.jti) {
            Ok(Some((s, _))) if s.revoked => Err(TokenError::Revoked),
            Ok(Some((s, role))) if s.user == claims.sub => {
                Ok(Identity { user: s.user, role: Role::parse(&role).unwrap_or(Role::Viewer), session: Some(s.jti) })
            }
            Ok(_) => Err(TokenError::UnknownUser),
            Err(_) => Err(TokenError::Revoked),
        }
    }

    /// Checks a password and issues a token. Failures are counted per user
    /// and per address: each is answered a little later than the last, and
    /// after `LOCK_AFTER` of them logins are refused for `LOCK_FOR`.
    pub async fn login(&self, user: &str, password: &SecretString, addr: &str, ttl: Duration) -> Result<Token> {
        let store = self.store()?.clone();
        let keys = [format!("user:{user}"), format!("addr:{addr}")];
        let now = auth::now_unix();
        for k in &keys {
            if let Some(until) = store.login_failures(k)?.locked_until.filter(|u| *u > now) {
                self.audit_auth(user, None, "login", "refused", &format!("locked for {} s more ({k})", until - now));
                return Err(Error::Locked(format!("too many failed logins: try again in {} seconds", until - now)));
            }
        }
        let record = store.user_secret(user)?;
        let ok = match &record {
            Some((_, hash)) => {
                let (pw, hash) = (password.expose().to_string(), hash.clone());
                tokio::task::spawn_blocking(move || auth::verify_password(&pw, &hash)).await.unwrap_or(false)
            }
            None => false,
        };
        if !ok {
            let mut worst = 0;
            for k in &keys {
                let count = store.login_failures(k)?.count + 1;
                let lock = (count >= LOCK_AFTER).then(|| now + LOCK_FOR.as_secs() as i64);
                worst = worst.max(store.record_login_failure(k, lock)?);
            }
            self.audit_auth(user, None, "login", "error", &format!("wrong user or password (failure {worst})"));
            tokio::time::sleep(SLOWDOWN_STEP * worst.min(LOCK_AFTER)).await;
            return Err(Error::Denied("wrong user name or password".into()));
        }
        for k in &keys {
            store.clear_login_failures(k)?;
        }
        let token = self.issue_token(user, ttl, addr)?;
        self.audit_auth(user, Some(token.role), "login", "ok", addr);
        Ok(token)
    }

    /// Revokes the session `jti`.
    pub fn logout(&self, who: &Identity) -> Result<()> {
        let Some(jti) = &who.session else {
            return Err(Error::Usage(
                "this connection did not log in with a token; there is nothing to log out".into(),
            ));
        };
        self.store()?.revoke_session(jti)?;
        self.audit_auth(&who.user, Some(who.role), "logout", "ok", "");
        Ok(())
    }

    /// Records an authentication event in the audit log (never fails the caller).
    pub fn audit_auth(&self, user: &str, role: Option<Role>, action: &str, result: &str, detail: &str) {
        let entry = Activity {
            actor: Some(user),
            role: role.map(Role::as_str),
            category: "auth",
            action,
            result,
            detail: (!detail.is_empty()).then_some(detail),
            ..Activity::default()
        };
        if let Err(e) = self.store().and_then(|s| Ok(s.record_activity(&entry)?)) {
            tracing::warn!(error = %e, "cannot write the audit log");
        }
    }
}
