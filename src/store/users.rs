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

/// Failed logins counted under one key (`user:NAME` or `addr:IP`).
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

    /// Counts one more failure; locks until `lock_until_unix` when given.
    pub fn record_login_failure(&self, key: &str, lock_until_unix: Option<i64>) -> Result<u32, StoreError> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO login_failures (key, failures, last_at, locked_until)
             VALUES (?1, 1, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), strftime('%Y-%m-%dT%H:%M:%SZ', ?2, 'unixepoch'))
             ON CONFLICT(key) DO UPDATE SET failures = failures + 1, last_at = excluded.last_at,
                 locked_until = excluded.locked_until",
            params![key, lock_until_unix],
        )
        .map_err(|e| self.err(e))?;
        conn.query_row("SELECT failures FROM login_failures WHERE key = ?1", [key], |r| r.get(0))
            .map_err(|e| self.err(e))
    }

    pub fn clear_login_failures(&self, key: &str) -> Result<(), StoreError> {
        self.conn().execute("DELETE FROM login_failures WHERE key = ?1", [key]).map_err(|e| self.err(e))?;
        Ok(())
    }
}
