//! Users, tokens and logins: the engine side of authentication. Front ends
//! call `login` or `authenticate` and get an `Identity`, or `Error::Denied`
//! whose message says why without revealing whether a user exists.

use std::time::Duration;

use super::Engine;
use crate::auth::{self, Claims, Identity, MIN_JWT_KEY_BYTES, Role, TokenError};
use crate::config::ConfigError;
use crate::error::{Denied, Error, Known, Locked, NotFound, Noun, Result, Usage};
use crate::model::secret::SecretString;
use crate::store::{Activity, Admission, UserRow};

/// Failed logins of one user from one address before that pair is locked.
pub const LOCK_AFTER: u32 = 5;
/// Failed logins from one address (whatever the user names) before the
/// address is locked.
pub const ADDRESS_LOCK_AFTER: u32 = 20;
/// How long a lock lasts, and how long a failure is remembered.
pub const LOCK_FOR: Duration = Duration::from_secs(15 * 60);
/// Password verifications (Argon2id, 19 MiB each) running at once; logins
/// beyond are refused at once rather than queued.
pub const CONCURRENT_VERIFICATIONS: usize = 2;
/// The longest password a login checks (longer ones are wrong).
pub const MAX_PASSWORD_BYTES: usize = 1024;

static VERIFYING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(CONCURRENT_VERIFICATIONS);
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
        Err(Usage::invalid("user name", name, "use 1 to 64 letters, digits, `-`, `_`, `.` or `@`").into())
    }
}

/// The address failures are counted under: an IPv6 address by its /64
/// (one host usually holds the whole prefix), anything else as given.
fn address_key(addr: &str) -> String {
    match addr.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V6(v6)) if v6.to_ipv4_mapped().is_none() => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        Ok(std::net::IpAddr::V6(v6)) => v6.to_ipv4_mapped().map(|v4| v4.to_string()).unwrap_or_default(),
        _ => addr.to_string(),
    }
}

fn check_password(p: &str) -> Result<()> {
    if p.chars().count() < 8 {
        return Err(Usage::Invalid {
            arg: "password".into(),
            value: None,
            problem: "it is too short: use at least 8 characters".into(),
        }
        .into());
    }
    Ok(())
}

type Verification = (SecretString, Option<String>, tokio::sync::oneshot::Sender<bool>);

/// Whether `password` matches `hash`; without a hash, it is checked against
/// a dummy one (and is wrong). Runs on one of `CONCURRENT_VERIFICATIONS`
/// threads kept for this: the 19 MiB Argon2 takes are then reused by those
/// few, not kept by every thread of the blocking pool that ever verified one.
async fn verify(password: SecretString, hash: Option<String>) -> bool {
    static VERIFIERS: std::sync::LazyLock<std::sync::mpsc::Sender<Verification>> = std::sync::LazyLock::new(|| {
        let (tx, rx) = std::sync::mpsc::channel::<Verification>();
        let rx = std::sync::Arc::new(std::sync::Mutex::new(rx));
        for i in 0..CONCURRENT_VERIFICATIONS {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new().name(format!("tomo-verify-{i}")).spawn(move || {
                loop {
                    let job = rx.lock().unwrap_or_else(|p| p.into_inner()).recv();
                    let Ok((password, hash, reply)) = job else { return };
                    let checked = hash.as_deref().unwrap_or_else(|| auth::dummy_hash());
                    let ok = auth::verify_password(password.expose(), checked) && hash.is_some();
                    let _ = reply.send(ok);
                }
            });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start a password verifier thread");
            }
        }
        tx
    });
    let (reply, answer) = tokio::sync::oneshot::channel();
    VERIFIERS.send((password, hash, reply)).is_ok() && answer.await.unwrap_or(false)
}

impl Engine {
    /// The signing key, or why the HTTP server cannot use tokens.
    pub fn jwt_key(&self) -> Result<&SecretString> {
        match &self.config().jwt_secret_key {
            None => Err(ConfigError::Unset {
                var: "JWT_SECRET_KEY",
                needed_for: "tokens cannot be signed",
                help: "Set it (in the environment, .env or tomo.yaml's folder .env) to a random value of at least \
                       32 bytes, e.g. `openssl rand -hex 32`",
            }
            .into()),
            Some(k) if k.expose().len() < MIN_JWT_KEY_BYTES => Err(ConfigError::TooShort {
                var: "JWT_SECRET_KEY",
                len: k.expose().len(),
                min: MIN_JWT_KEY_BYTES,
                help: "e.g. `openssl rand -hex 32`",
            }
            .into()),
            Some(k) => Ok(k),
        }
    }

    pub fn add_user(&self, name: &str, role: Role, password: &SecretString) -> Result<()> {
        check_name(name)?;
        check_password(password.expose())?;
        if !self.store()?.add_user(name, role.as_str(), &auth::hash_password(password.expose()))? {
            return Err(Usage::Exists {
                what: format!("user `{name}`"),
                help: format!("use `tomo user passwd {name}`"),
            }
            .into());
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
        NotFound::new(Noun::User, name, Known::List { label: "users", names: known }).into()
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

    /// Checks a password and issues a token. At most
    /// `CONCURRENT_VERIFICATIONS` run at once (others are refused at once).
    /// Each attempt is checked against the locks and counted as a failure in
    /// one store transaction before the password is verified, per (user,
    /// address) and per address: after `LOCK_AFTER` failures of a user from an
    /// address, or `ADDRESS_LOCK_AFTER` from an address, that pair or address
    /// is locked for `LOCK_FOR`. Unknown users are verified against a dummy
    /// hash, so that both take as long. Only bounded values are stored: a
    /// user name that is not a valid name is never written.
    pub async fn login(&self, user: &str, password: &SecretString, addr: &str, ttl: Duration) -> Result<Token> {
        let Ok(permit) = VERIFYING.try_acquire() else {
            return Err(Locked::Busy.into());
        };
        let store = self.store()?.clone();
        let valid_name = check_name(user).is_ok();
        let shown = if valid_name { user.to_string() } else { format!("(not a user name: {} bytes)", user.len()) };
        let addr = address_key(addr);
        let addr_key = format!("addr:{addr}");
        let pair_key = valid_name.then(|| format!("user:{user}@{addr}"));
        let mut keys = vec![(addr_key.as_str(), ADDRESS_LOCK_AFTER)];
        keys.extend(pair_key.as_deref().map(|k| (k, LOCK_AFTER)));
        let now = auth::now_unix();
        let (worst, locks) = match store.admit_login(&keys, now, LOCK_FOR.as_secs() as i64)? {
            Admission::Locked { key, until } => {
                tracing::debug!(target: "tomo::login", key, "login refused: locked");
                return Err(Locked::Failures { seconds: until - now }.into());
            }
            Admission::Counted { worst, locks } => (worst, locks),
        };
        let hash = if valid_name { store.user_secret(user)?.map(|(_, hash)| hash) } else { None };
        let known = hash.is_some();
        let ok = password.expose().len() <= MAX_PASSWORD_BYTES && verify(password.clone(), hash).await;
        drop(permit);
        tracing::debug!(target: "tomo::login", known, "password verified");
        if !ok {
            let lock = if locks { format!("; locked for {} s", LOCK_FOR.as_secs()) } else { String::new() };
            let detail = format!("wrong user or password from {addr} (failure {worst}){lock}");
            self.audit_auth(&shown, None, "login", "error", &detail);
            tokio::time::sleep(SLOWDOWN_STEP * worst.min(LOCK_AFTER)).await;
            return Err(Denied::Login.into());
        }
        store.login_succeeded(&[pair_key.as_deref().unwrap_or_default()], &[(&addr_key, ADDRESS_LOCK_AFTER)])?;
        let token = self.issue_token(user, ttl, &addr)?;
        self.audit_auth(user, Some(token.role), "login", "ok", &addr);
        Ok(token)
    }

    /// Revokes the session `jti`.
    pub fn logout(&self, who: &Identity) -> Result<()> {
        let Some(jti) = &who.session else {
            return Err(Usage::NotApplicable {
                what: "logout".into(),
                why: "this connection did not log in with a token; there is nothing to log out".into(),
            }
            .into());
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_counted_by_address_and_ipv6_by_its_prefix() {
        assert_eq!(address_key("192.0.2.7"), "192.0.2.7");
        assert_eq!(address_key("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
        assert_eq!(address_key("2001:db8:1:2:bbbb::9"), address_key("2001:db8:1:2:aaaa::1"));
        assert_eq!(address_key("::ffff:192.0.2.7"), "192.0.2.7");
        assert_eq!(address_key("stdio"), "stdio");
    }
}
