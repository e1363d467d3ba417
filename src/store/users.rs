//! Users, their sessions (one row per issued token) and failed logins.

use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use super::{Store, StoreError};

/// A user as listed (never the password hash).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct UserRow {
    pub name: String,
    pub role: String,
    pub disabled: bool,
    pub created_at: String,
}

/// A session: an issued token's id and state.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SessionRow {
    pub jti: String,
    pub user: String,
    pub expires_at: String,
    pub revoked: bool,
}

/// What `admit_login` decided.
#[derive(Debug, Clone, PartialEq)]
pub enum Admission {
    /// A key is locked until the given Unix second: nothing was counted.
    Locked { key: String, until: i64 },
    /// Counted as a failure under every key: the highest count, and whether
    /// this attempt locked a key.
    Counted { worst: u32, locks: bool },
}

/// Failed logins counted under one key (`user:NAME@ADDRESS` or `addr:ADDRESS`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Failures {
    pub count: u32,
    /// Unix seconds until which logins are refused, if locked.
    pub locked_until: Option<i64>,
}

impl Store {
    /// Adds a user; false when the name is taken.
    pub fn add_user(&self, name: &str, role: &str, password_hash: &str) -> Result<bool, StoreError> {
        let n = self
            .conn()
            .execute(
                "INSERT INTO users (name, role, password_hash) VALUES (?1, ?2, ?3) ON CONFLICT(name) DO NOTHING",
                params![name, role, password_hash],
            )
            .map_err(|e| self.err(e))?;
        Ok(n == 1)
    }

    pub fn users(&self) -> Result<Vec<UserRow>, StoreError> {
        self.rows("SELECT name, role, disabled, created_at FROM users ORDER BY name", [], |r| {
            Ok(UserRow { name: r.get(0)?, role: r.get(1)?, disabled: r.get::<_, i64>(2)? != 0, created_at: r.get(3)? })
        })
    }

    /// `(role, password_hash)` of an enabled user.
    pub fn user_secret(&self, name: &str) -> Result<Option<(String, String)>, StoreError> {
        self.conn()
            .query_row("SELECT role, password_hash FROM users WHERE name = ?1 AND disabled = 0", [name], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Sets a password and revokes the user's sessions; false when there is no such user.
    pub fn set_password(&self, name: &str, password_hash: &str) -> Result<bool, StoreError> {
        let conn = self.conn();
        let n = conn
            .execute(
                "UPDATE users SET password_hash = ?2, updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE name = ?1",
                params![name, password_hash],
            )
            .map_err(|e| self.err(e))?;
        conn.execute(
            "UPDATE sessions SET revoked_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
             WHERE revoked_at IS NULL AND user_id = (SELECT id FROM users WHERE name = ?1)",
            [name],
        )
        .map_err(|e| self.err(e))?;
        Ok(n == 1)
    }

    /// Removes a user and their sessions; false when there is no such user.
    pub fn remove_user(&self, name: &str) -> Result<bool, StoreError> {
        let n = self.conn().execute("DELETE FROM users WHERE name = ?1", [name]).map_err(|e| self.err(e))?;
        Ok(n == 1)
    }

    /// Records an issued token.
    pub fn add_session(&self, jti: &str, user: &str, expires_unix: i64, client: &str) -> Result<(), StoreError> {
        self.conn()
            .execute(
                "INSERT INTO sessions (jti, user_id, expires_at, client)
                 SELECT ?1, id, strftime('%Y-%m-%dT%H:%M:%SZ', ?3, 'unixepoch'), ?4 FROM users WHERE name = ?2",
                params![jti, user, expires_unix, client],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// A session with its user's current role, if the token was issued here
    /// and its user still exists and is enabled.
    pub fn session(&self, jti: &str) -> Result<Option<(SessionRow, String)>, StoreError> {
        self.conn()
            .query_row(
                "SELECT s.jti, u.name, s.expires_at, s.revoked_at IS NOT NULL, u.role
                 FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.jti = ?1 AND u.disabled = 0",
                [jti],
                |r| {
                    Ok((
                        SessionRow { jti: r.get(0)?, user: r.get(1)?, expires_at: r.get(2)?, revoked: r.get(3)? },
                        r.get(4)?,
                    ))
                },
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Revokes a session; false when it was unknown or already revoked.
    pub fn revoke_session(&self, jti: &str) -> Result<bool, StoreError> {
        let n = self
            .conn()
            .execute(
                "UPDATE sessions SET revoked_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
                 WHERE jti = ?1 AND revoked_at IS NULL",
                [jti],
            )
            .map_err(|e| self.err(e))?;
        Ok(n == 1)
    }

    pub fn login_failures(&self, key: &str) -> Result<Failures, StoreError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT failures, CAST(strftime('%s', locked_until) AS INTEGER) FROM login_failures WHERE key = ?1",
                [key],
                |r| Ok(Failures { count: r.get(0)?, locked_until: r.get(1)? }),
            )
            .optional()
            .map_err(|e| self.err(e))?
            .unwrap_or_default())
    }

    /// Checks and counts one login attempt in one transaction, so that
    /// concurrent attempts cannot all pass the check before any is counted.
    /// Each key comes with its limit; a key whose lock has expired, or whose
    /// last failure is older than `window` seconds, starts again from zero.
    /// The attempt is counted as a failure up front (`login_succeeded` takes
    /// it back); a key reaching its limit is locked for `window` seconds.
    pub fn admit_login(&self, keys: &[(&str, u32)], now: i64, window: i64) -> Result<Admission, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(|e| self.err(e))?;
        let mut counts = Vec::with_capacity(keys.len());
        for (key, _) in keys {
            let row: Option<(u32, Option<i64>, Option<i64>)> = tx
                .query_row(
                    "SELECT failures, CAST(strftime('%s', locked_until) AS INTEGER),
                            CAST(strftime('%s', last_at) AS INTEGER)
                     FROM login_failures WHERE key = ?1",
                    [key],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()
                .map_err(|e| self.err(e))?;
            let (count, locked_until, last) = row.unwrap_or((0, None, None));
            if let Some(until) = locked_until.filter(|u| *u > now) {
                return Ok(Admission::Locked { key: key.to_string(), until });
            }
            let stale = locked_until.is_some() || last.is_none_or(|l| l + window < now);
            counts.push(if stale { 0 } else { count });
        }
        let mut admission = Admission::Counted { worst: 0, locks: false };
        for ((key, limit), count) in keys.iter().zip(counts) {
            let count = count + 1;
            let lock = (count >= *limit).then_some(now + window);
            tx.execute(
                "INSERT INTO login_failures (key, failures, last_at, locked_until)
                 VALUES (?1, ?2, strftime('%Y-%m-%dT%H:%M:%SZ', ?3, 'unixepoch'),
                         strftime('%Y-%m-%dT%H:%M:%SZ', ?4, 'unixepoch'))
                 ON CONFLICT(key) DO UPDATE SET failures = excluded.failures, last_at = excluded.last_at,
                     locked_until = excluded.locked_until",
                params![key, count, now, lock],
            )
            .map_err(|e| self.err(e))?;
            if let Admission::Counted { worst, locks } = &mut admission {
                *worst = (*worst).max(count);
                *locks |= lock.is_some();
            }
        }
        tx.commit().map_err(|e| self.err(e))?;
        Ok(admission)
    }

    /// Takes back the failure `admit_login` counted for an attempt that
    /// succeeded: `forget` keys are cleared, `take_back` keys lose one failure
    /// (and their lock, when they fall below their limit).
    pub fn login_succeeded(&self, forget: &[&str], take_back: &[(&str, u32)]) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        for key in forget {
            tx.execute("DELETE FROM login_failures WHERE key = ?1", [key]).map_err(|e| self.err(e))?;
        }
        for (key, limit) in take_back {
            tx.execute(
                "UPDATE login_failures SET failures = MAX(failures - 1, 0),
                     locked_until = CASE WHEN failures - 1 >= ?2 THEN locked_until END
                 WHERE key = ?1",
                params![key, limit],
            )
            .map_err(|e| self.err(e))?;
        }
        tx.commit().map_err(|e| self.err(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrent_attempts_are_admitted_up_to_the_limit_only() {
        let dir = tempfile::tempdir().unwrap();
        let store = std::sync::Arc::new(Store::open_in(dir.path()).unwrap());
        let admitted: usize = std::thread::scope(|s| {
            let handles: Vec<_> = (0..40)
                .map(|_| {
                    let store = &store;
                    s.spawn(move || {
                        matches!(
                            store.admit_login(&[("addr:a", 20), ("user:u@a", 5)], 1000, 900).unwrap(),
                            Admission::Counted { .. }
                        )
                    })
                })
                .collect();
            handles.into_iter().map(|h| usize::from(h.join().unwrap())).sum()
        });
        assert_eq!(admitted, 5);
        assert_eq!(store.login_failures("user:u@a").unwrap().locked_until, Some(1900));
        // Another user from that address is still admitted, up to the address's limit.
        let keys = [("addr:a", 20), ("user:v@a", 5)];
        assert!(matches!(store.admit_login(&keys, 1000, 900).unwrap(), Admission::Counted { worst: 6, .. }));
        // A success takes its failure back; an expired lock starts from zero.
        store.login_succeeded(&["user:v@a"], &[("addr:a", 20)]).unwrap();
        assert_eq!(store.login_failures("addr:a").unwrap().count, 5);
        assert!(matches!(
            store.admit_login(&[("user:u@a", 5)], 1901, 900).unwrap(),
            Admission::Counted { worst: 1, .. }
        ));
        // A lock reached by a success is lifted with its failure.
        for _ in 0..14 {
            store.admit_login(&[("addr:b", 15)], 1000, 900).unwrap();
        }
        assert!(matches!(
            store.admit_login(&[("addr:b", 15)], 1000, 900).unwrap(),
            Admission::Counted { locks: true, .. }
        ));
        store.login_succeeded(&[], &[("addr:b", 15)]).unwrap();
        assert_eq!(store.login_failures("addr:b").unwrap(), Failures { count: 14, locked_until: None });
    }
}
