//! Who may come in, on PostgreSQL: tokens with their role, people (`users`, argon2id PHC
//! strings) and their sessions (SHA-256 of the cookie only), each read on every request,
//! so that every collector sharing the database sees a log-in or a removal at once.

use postgres::Client;
use vscout_service::telemetry::unix_now_ms as now_ms;

use crate::store::{Role, StoreError, TokenInfo, UserInfo};

pub(super) fn add_token(
    c: &mut Client,
    name: &str,
    sha256_hex: &str,
    role: Role,
) -> Result<(), StoreError> {
    let mut tx = c.transaction()?;
    let added = tx.execute(
        "INSERT INTO tokens (name, sha256, created_ms, role) VALUES ($1, $2, $3, $4)
         ON CONFLICT (name) DO NOTHING",
        &[&name, &sha256_hex, &now_ms(), &role.as_str()],
    )?;
    if added == 0 {
        return Err(StoreError::TokenExists(name.to_owned()));
    }
    tx.execute(
        "INSERT INTO meta VALUES ('tokens_made', 1) ON CONFLICT DO NOTHING",
        &[],
    )?;
    tx.commit()?;
    Ok(())
}

pub(super) fn token(
    c: &mut Client,
    sha256_hex: &str,
) -> Result<Option<(String, Role)>, StoreError> {
    Ok(c.query_opt(
        "SELECT name, role FROM tokens WHERE sha256 = $1",
        &[&sha256_hex],
    )?
    .map(|r| (r.get(0), Role::from_stored(r.get(1)))))
}

pub(super) fn tokens(c: &mut Client) -> Result<Vec<TokenInfo>, StoreError> {
    let rows = c.query(
        "SELECT t.name, t.created_ms,
                (SELECT max(a.last_seen_ms) FROM agents a WHERE a.principal = 'token:' || t.name),
                t.role
         FROM tokens t ORDER BY t.name",
        &[],
    )?;
    Ok(rows
        .iter()
        .map(|r| TokenInfo {
            name: r.get(0),
            created: r.get::<_, i64>(1) / 1000,
            last_used: r.get::<_, Option<i64>>(2).map(|ms| ms / 1000),
            role: Role::from_stored(r.get(3)),
        })
        .collect())
}

pub(super) fn add_user(c: &mut Client, name: &str, phc: &str) -> Result<(), StoreError> {
    let added = c.execute(
        "INSERT INTO users (name, phc, created_ms) VALUES ($1, $2, $3)
         ON CONFLICT (name) DO NOTHING",
        &[&name, &phc, &now_ms()],
    )?;
    if added == 0 {
        return Err(StoreError::UserExists(name.to_owned()));
    }
    Ok(())
}

pub(super) fn user_hash(c: &mut Client, name: &str) -> Result<Option<String>, StoreError> {
    Ok(
        c.query_opt("SELECT phc FROM users WHERE name = $1", &[&name])?
            .map(|r| r.get(0)),
    )
}

pub(super) fn remove_user(c: &mut Client, name: &str) -> Result<bool, StoreError> {
    // Sessions go with the user (ON DELETE CASCADE).
    Ok(c.execute("DELETE FROM users WHERE name = $1", &[&name])? == 1)
}

pub(super) fn users(c: &mut Client) -> Result<Vec<UserInfo>, StoreError> {
    let rows = c.query(
        "SELECT name, created_ms, last_login_ms FROM users ORDER BY name",
        &[],
    )?;
    Ok(rows
        .iter()
        .map(|r| UserInfo {
            name: r.get(0),
            created: r.get::<_, i64>(1) / 1000,
            last_login: r.get::<_, Option<i64>>(2).map(|ms| ms / 1000),
        })
        .collect())
}

pub(super) fn add_session(
    c: &mut Client,
    sha256_hex: &str,
    user: &str,
    expires_s: i64,
) -> Result<(), StoreError> {
    let now = now_ms();
    let mut tx = c.transaction()?;
    tx.execute(
        "DELETE FROM sessions WHERE expires_s <= $1",
        &[&(now / 1000)],
    )?;
    tx.execute(
        "INSERT INTO sessions VALUES ($1, $2, $3)",
        &[&sha256_hex, &user, &expires_s],
    )?;
    tx.execute(
        "UPDATE users SET last_login_ms = $2 WHERE name = $1",
        &[&user, &now],
    )?;
    tx.commit()?;
    Ok(())
}

pub(super) fn session_user(
    c: &mut Client,
    sha256_hex: &str,
    now_s: i64,
) -> Result<Option<String>, StoreError> {
    Ok(c.query_opt(
        "SELECT username FROM sessions WHERE sha256 = $1 AND expires_s > $2",
        &[&sha256_hex, &now_s],
    )?
    .map(|r| r.get(0)))
}

pub(super) fn end_session(c: &mut Client, sha256_hex: &str) -> Result<(), StoreError> {
    c.execute("DELETE FROM sessions WHERE sha256 = $1", &[&sha256_hex])?;
    Ok(())
}
