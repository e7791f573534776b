//! What the store holds, counted as it changes (windows, daily sketches) and kept in
//! `meta`: `/metrics` and `/v1/stats` are scraped every few seconds, and counting the
//! rows of 10,000 VMs (80 million windows of an open day, 100 million sketches of a
//! year) took seconds each time.

use rusqlite::{params, Connection, OptionalExtension, Transaction};

use crate::store::StoreError;

const WINDOWS: &str = "stored_windows";
const SKETCHES: &str = "stored_sketches";

/// Adds (or with negative numbers takes away) windows and sketches.
pub(super) fn add(tx: &Transaction<'_>, windows: i64, sketches: i64) -> Result<(), StoreError> {
    for (key, n) in [(WINDOWS, windows), (SKETCHES, sketches)] {
        if n != 0 {
            tx.prepare_cached(
                "UPDATE meta SET value = CAST(value AS INTEGER) + ?2 WHERE key = ?1",
            )?
            .execute(params![key, n])?;
        }
    }
    Ok(())
}

/// Windows and sketches stored.
pub(super) fn read(conn: &Connection) -> Result<(u64, u64), StoreError> {
    let get = |key: &str| -> Result<u64, StoreError> {
        let v: Option<i64> = conn
            .query_row(
                "SELECT CAST(value AS INTEGER) FROM meta WHERE key = ?1",
                [key],
                |r| r.get(0),
            )
            .optional()?;
        Ok(v.unwrap_or(0).max(0) as u64)
    };
    Ok((get(WINDOWS)?, get(SKETCHES)?))
}

/// Counts once what a database made before these counts holds.
pub(super) fn prepare(conn: &mut Connection) -> Result<(), StoreError> {
    let tx = conn.transaction()?;
    tx.execute(
        "INSERT OR IGNORE INTO meta SELECT ?1, (SELECT count(*) FROM rollups)
             + (SELECT coalesce(sum(windows), 0) FROM window_packs)",
        [WINDOWS],
    )?;
    tx.execute(
        "INSERT OR IGNORE INTO meta SELECT ?1, (SELECT count(*) FROM daily)",
        [SKETCHES],
    )?;
    tx.commit()?;
    Ok(())
}
