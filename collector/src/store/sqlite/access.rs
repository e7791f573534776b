//! Who may come in, on SQLite: tokens with their role, people (`users`, argon2id PHC
//! strings) and their sessions (SHA-256 of the cookie only), each read on every request.

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use vscout_service::telemetry::unix_now_ms as now_ms;

use crate::store::{Role, StoreError, TokenInfo, UserInfo};

pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY, phc TEXT NOT NULL, created_ms INTEGER NOT NULL,
    last_login_ms INTEGER);
CREATE TABLE IF NOT EXISTS sessions (
    sha256 TEXT PRIMARY KEY, user TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    expires_s INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS sessions_by_user ON sessions (user);
";

/// Tokens had no role before viewers: every one was an agent's.
pub(super) fn migrate(conn: &Connection) -> Result<(), StoreError> {
    if !super::has_column(conn, "tokens", "role")? {
        conn.execute_batch("ALTER TABLE tokens ADD COLUMN role TEXT NOT NULL DEFAULT 'agent'")?;
    }
    Ok(())
}

pub(super) fn add_token(
    conn: &mut Connection,
    name: &str,
    sha256_hex: &str,
    role: Role,
) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let added = tx.execute(
        "INSERT OR IGNORE INTO tokens (name, sha256, created_ms, role) VALUES (?1, ?2, ?3, ?4)",
        params![name, sha256_hex, now_ms(), role.as_str()],
    )?;
    if added == 0 {
        return Err(StoreError::TokenExists(name.to_owned()));
    }
    tx.execute("INSERT OR IGNORE INTO meta VALUES ('tokens_made', '1')", [])?;
    tx.commit()?;
    Ok(())
}

pub(super) fn token(
    conn: &Connection,
    sha256_hex: &str,
) -> Result<Option<(String, Role)>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT name, role FROM tokens WHERE sha256 = ?1",
            params![sha256_hex],
            |r| Ok((r.get(0)?, Role::from_stored(&r.get::<_, String>(1)?))),
        )
        .optional()?)
}

pub(super) fn tokens(conn: &Connection) -> Result<Vec<TokenInfo>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT t.name, t.created_ms,
                (SELECT max(a.last_seen_ms) FROM agents a WHERE a.principal = 'token:' || t.name),
                t.role
         FROM tokens t ORDER BY t.name",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(TokenInfo {
            name: r.get(0)?,
            created: r.get::<_, i64>(1)? / 1000,
            last_used: r.get::<_, Option<i64>>(2)?.map(|ms| ms / 1000),
            role: Role::from_stored(&r.get::<_, String>(3)?),
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(super) fn add_user(conn: &Connection, name: &str, phc: &str) -> Result<(), StoreError> {
    let added = conn.execute(
        "INSERT OR IGNORE INTO users (name, phc, created_ms) VALUES (?1, ?2, ?3)",
        params![name, phc, now_ms()],
    )?;
    if added == 0 {
        return Err(StoreError::UserExists(name.to_owned()));
    }
    Ok(())
}

pub(super) fn user_hash(conn: &Connection, name: &str) -> Result<Option<String>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT phc FROM users WHERE name = ?1",
            params![name],
            |r| r.get(0),
        )
        .optional()?)
}

pub(super) fn remove_user(conn: &Connection, name: &str) -> Result<bool, StoreError> {
    // Sessions go with the user (ON DELETE CASCADE; foreign keys are on).
    Ok(conn.execute("DELETE FROM users WHERE name = ?1", params![name])? == 1)
}

pub(super) fn users(conn: &Connection) -> Result<Vec<UserInfo>, StoreError> {
    let mut stmt =
        conn.prepare("SELECT name, created_ms, last_login_ms FROM users ORDER BY name")?;
    let rows = stmt.query_map([], |r| {
        Ok(UserInfo {
            name: r.get(0)?,
            created: r.get::<_, i64>(1)? / 1000,
            last_login: r.get::<_, Option<i64>>(2)?.map(|ms| ms / 1000),
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(super) fn add_session(
    conn: &mut Connection,
    sha256_hex: &str,
    user: &str,
    expires_s: i64,
) -> Result<(), StoreError> {
    let now = now_ms();
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute(
        "DELETE FROM sessions WHERE expires_s <= ?1",
        params![now / 1000],
    )?;
    tx.execute(
        "INSERT INTO sessions VALUES (?1, ?2, ?3)",
        params![sha256_hex, user, expires_s],
    )?;
    tx.execute(
        "UPDATE users SET last_login_ms = ?2 WHERE name = ?1",
        params![user, now],
    )?;
    tx.commit()?;
    Ok(())
}

pub(super) fn session_user(
    conn: &Connection,
    sha256_hex: &str,
    now_s: i64,
) -> Result<Option<String>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT user FROM sessions WHERE sha256 = ?1 AND expires_s > ?2",
            params![sha256_hex, now_s],
            |r| r.get(0),
        )
        .optional()?)
}

pub(super) fn end_session(conn: &Connection, sha256_hex: &str) -> Result<(), StoreError> {
    conn.execute(
        "DELETE FROM sessions WHERE sha256 = ?1",
        params![sha256_hex],
    )?;
    Ok(())
}
