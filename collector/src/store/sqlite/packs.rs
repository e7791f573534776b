//! Closed days packed: once a UTC day is over, the maintenance pass moves each series'
//! windows of that day from `rollups` rows into one `window_packs` row (the codec is
//! `store/pack.rs`), about a tenth of the bytes. Everything that reads windows reads them
//! here ([`windows`]: a series' packs and rows in a range, in order), so where a window
//! lives is this file's business alone.
//!
//! A window that arrives late for a packed day is stored as a row (unless the pack holds
//! it: then it is a duplicate, ignored as one) and merged into the pack by the next pass.

use std::collections::hash_map::Entry;
use std::collections::HashMap;

use rusqlite::{params, Connection, OptionalExtension, Row, Transaction};
use vscout_wire::batch::StatsRow;

use crate::store::day_of;
use crate::store::pack::{self, Window};
use crate::store::StoreError;

pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS window_packs (
    series_id INTEGER NOT NULL, day_start INTEGER NOT NULL, windows INTEGER NOT NULL,
    last_start INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY (series_id, day_start));
";

/// Where `meta` keeps the first day not packed: windows before it may be in a pack.
const PACKED_BEFORE: &str = "windows_packed_before";

/// The columns of `rollups` a window is read from, in `window_of`'s order.
const ROW_COLUMNS: &str =
    "window_start, window_secs, expected, missing, count, min, max, mean, p50, p95, p99";

fn window_of(r: &Row<'_>) -> rusqlite::Result<Window> {
    let min: Option<f64> = r.get(5)?;
    let stats = match min {
        None => None,
        Some(min) => Some(StatsRow(
            r.get(4)?,
            min,
            r.get(6)?,
            r.get(7)?,
            r.get(8)?,
            r.get(9)?,
            r.get(10)?,
        )),
    };
    Ok(Window {
        start: r.get(0)?,
        secs: r.get(1)?,
        expected: r.get(2)?,
        missing: r.get(3)?,
        stats,
    })
}

fn unpack(series: i64, day: i64, data: &[u8]) -> Result<Vec<Window>, StoreError> {
    pack::decode(day, data)
        .map_err(|e| StoreError::Other(format!("series {series}, day {day}: {e}")))
}

/// The window starts that have rows in a range, remembered per range: the rows are
/// keyed by time, so a series' rows are read by looking up each start, and the series
/// read together (one VM's, the assessment's, a transaction's) share the starts.
#[derive(Debug, Default)]
pub(super) struct Starts {
    ranges: HashMap<(i64, i64), Vec<i64>>,
    /// The first day not packed, read once: a range from it on has no packs to look in.
    packed_before: Option<i64>,
}

impl Starts {
    /// Whether a pack may hold windows starting at or after `from`.
    fn packs_from(&mut self, conn: &Connection, from: i64) -> Result<bool, StoreError> {
        let before = match self.packed_before {
            Some(b) => b,
            None => *self.packed_before.insert(packed_before(conn)?),
        };
        Ok(from < before)
    }

    /// The starts in `[from, to)`, ascending: a seek each.
    fn get(&mut self, conn: &Connection, from: i64, to: i64) -> Result<&[i64], StoreError> {
        if let Entry::Vacant(e) = self.ranges.entry((from, to)) {
            let mut stmt = conn.prepare_cached(
                "SELECT min(window_start) FROM rollups WHERE window_start >= ?1 AND window_start < ?2",
            )?;
            let (mut out, mut at) = (Vec::new(), from);
            while let Some(s) = stmt.query_row(params![at, to], |r| r.get::<_, Option<i64>>(0))? {
                out.push(s);
                at = s + 1;
            }
            e.insert(out);
        }
        Ok(&self.ranges[&(from, to)])
    }
}

/// The row of `series` at `start`, if any.
fn row_at(conn: &Connection, series: i64, start: i64) -> Result<Option<Window>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {ROW_COLUMNS} FROM rollups WHERE window_start = ?1 AND series_id = ?2"
    ))?;
    Ok(stmt
        .query_row(params![start, series], window_of)
        .optional()?)
}

/// Window starts per statement over a list of them.
const IN_LIST: usize = 500;

/// `starts` as the inside of an SQL `IN (…)`: integers, so written as they are.
fn in_list(starts: &[i64]) -> String {
    let list: Vec<String> = starts.iter().map(i64::to_string).collect();
    list.join(",")
}

/// Deletes the rows of `series` at `starts`; returns how many there were.
fn delete_rows(tx: &Transaction<'_>, series: i64, starts: &[i64]) -> Result<u64, StoreError> {
    let mut n = 0;
    for chunk in starts.chunks(IN_LIST) {
        n += tx
            .prepare_cached(&format!(
                "DELETE FROM rollups WHERE window_start IN ({}) AND series_id = ?1",
                in_list(chunk)
            ))?
            .execute(params![series])? as u64;
    }
    Ok(n)
}

/// The rows of `series` at `starts` (ascending), in order: one statement per few hundred
/// starts (`window_start IN (…)`, a seek each), which the series read together share
/// from the statement cache, where a statement per start cost four times the CPU.
fn rows_at(
    conn: &Connection,
    series: i64,
    starts: &[i64],
    out: &mut Vec<Window>,
) -> Result<(), StoreError> {
    for chunk in starts.chunks(IN_LIST) {
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {ROW_COLUMNS} FROM rollups
             WHERE window_start IN ({}) AND series_id = ?1 ORDER BY window_start",
            in_list(chunk)
        ))?;
        for w in stmt.query_map(params![series], window_of)? {
            out.push(w?);
        }
    }
    Ok(())
}

/// The windows of `series` starting in `[from, to)`, in order: packed days first, then
/// rows (a row and a pack never hold the same window; if they did, the pack's is read).
pub(super) fn windows(
    conn: &Connection,
    series: i64,
    (from, to): (i64, i64),
    starts: &mut Starts,
) -> Result<Vec<Window>, StoreError> {
    let mut out = Vec::new();
    if starts.packs_from(conn, from)? {
        let mut packs = conn.prepare_cached(
            "SELECT day_start, data FROM window_packs
             WHERE series_id = ?1 AND day_start >= ?2 AND day_start < ?3 ORDER BY day_start",
        )?;
        let mut rows = packs.query(params![series, day_of(from), to])?;
        while let Some(r) = rows.next()? {
            let day: i64 = r.get(0)?;
            let all = unpack(series, day, r.get_ref(1)?.as_blob()?)?;
            out.extend(all.into_iter().filter(|w| w.start >= from && w.start < to));
        }
    }
    let packed = out.len();
    rows_at(conn, series, starts.get(conn, from, to)?, &mut out)?;
    if packed > 0 && packed < out.len() {
        // Late rows of packed days, not yet merged: in order, the pack's first.
        out.sort_by_key(|w| w.start);
        out.dedup_by_key(|w| w.start);
    }
    Ok(out)
}

/// The latest window start of `series` before `below`, wherever it is.
pub(super) fn latest_before(
    conn: &Connection,
    series: i64,
    below: i64,
) -> Result<Option<i64>, StoreError> {
    // Rows hold the open day (and late windows): walk their starts down from `below`
    // until one is this series'.
    let mut stmt =
        conn.prepare_cached("SELECT max(window_start) FROM rollups WHERE window_start < ?1")?;
    let mut at = below;
    let mut row = None;
    while let Some(s) = stmt.query_row(params![at], |r| r.get::<_, Option<i64>>(0))? {
        if row_at(conn, series, s)?.is_some() {
            row = Some(s);
            break;
        }
        at = s;
    }
    // The latest pack before `below` holds the latest packed window unless `below` cuts
    // its day: then that day's windows before it, or else the pack before.
    let mut stmt = conn.prepare_cached(
        "SELECT day_start, last_start, data FROM window_packs
         WHERE series_id = ?1 AND day_start < ?2 ORDER BY day_start DESC LIMIT 2",
    )?;
    let mut rows = stmt.query(params![series, below])?;
    let mut packed = None;
    while let Some(r) = rows.next()? {
        let (day, last): (i64, i64) = (r.get(0)?, r.get(1)?);
        packed = if last < below {
            Some(last)
        } else {
            let all = unpack(series, day, r.get_ref(2)?.as_blob()?)?;
            all.iter().map(|w| w.start).filter(|s| *s < below).max()
        };
        if packed.is_some() {
            break;
        }
    }
    Ok(row.max(packed))
}

/// The windows of the pack of `series` and `day` (none without one).
fn pack_of(conn: &Connection, series: i64, day: i64) -> Result<Vec<Window>, StoreError> {
    let data: Option<Vec<u8>> = conn
        .prepare_cached("SELECT data FROM window_packs WHERE series_id = ?1 AND day_start = ?2")?
        .query_row(params![series, day], |r| r.get(0))
        .optional()?;
    data.map_or(Ok(Vec::new()), |d| unpack(series, day, &d))
}

/// Whether a pack holds the window of `series` starting at `start` (ingest asks only for
/// windows before [`packed_before`]).
pub(super) fn holds(tx: &Transaction<'_>, series: i64, start: i64) -> Result<bool, StoreError> {
    Ok(pack_of(tx, series, day_of(start))?
        .iter()
        .any(|w| w.start == start))
}

/// The first day not packed (`i64::MIN` before any pass).
pub(super) fn packed_before(conn: &Connection) -> Result<i64, StoreError> {
    Ok(conn
        .query_row(
            "SELECT CAST(value AS INTEGER) FROM meta WHERE key = ?1",
            [PACKED_BEFORE],
            |r| r.get(0),
        )
        .optional()?
        .unwrap_or(i64::MIN))
}

/// Sets the first day not packed; from this transaction on, ingest checks the packs for a
/// window before it.
pub(super) fn set_packed_before(tx: &Transaction<'_>, day: i64) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO meta VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = max(CAST(value AS INTEGER), excluded.value)",
        params![PACKED_BEFORE, day],
    )?;
    Ok(())
}

/// Packs the rows of `series` from days before `before` (a day start), merging them
/// into the day's pack if it has one; returns the days packed. `starts` are the pass's
/// (its rows before `before`).
pub(super) fn pack_days(
    tx: &Transaction<'_>,
    series: i64,
    before: i64,
    starts: &mut Starts,
) -> Result<u64, StoreError> {
    let mut rows: Vec<Window> = Vec::new();
    rows_at(tx, series, starts.get(tx, i64::MIN, before)?, &mut rows)?;
    let mut days = 0;
    for day_rows in rows.chunk_by(|a, b| day_of(a.start) == day_of(b.start)) {
        let day = day_of(day_rows[0].start);
        let mut all = pack_of(tx, series, day)?;
        let packed = all.len();
        all.extend_from_slice(day_rows);
        if packed > 0 {
            // Late rows into the day's pack; a window both hold keeps the pack's (and is
            // stored once less).
            all.sort_by_key(|w| w.start);
            all.dedup_by_key(|w| w.start);
            let twice = packed + day_rows.len() - all.len();
            super::stored::add(tx, -(twice as i64), 0)?;
        }
        let last = all.last().map_or(day, |w| w.start);
        tx.prepare_cached("INSERT OR REPLACE INTO window_packs VALUES (?1, ?2, ?3, ?4, ?5)")?
            .execute(params![
                series,
                day,
                all.len() as i64,
                last,
                pack::encode(day, &all)
            ])?;
        let packed_rows: Vec<i64> = day_rows.iter().map(|w| w.start).collect();
        delete_rows(tx, series, &packed_rows)?;
        days += 1;
    }
    Ok(days)
}

/// Deletes the windows of `series` before `horizon` (a day start), rows and packs;
/// returns how many windows went. `starts` are the pass's.
pub(super) fn delete_before(
    tx: &Transaction<'_>,
    series: i64,
    horizon: i64,
    starts: &mut Starts,
) -> Result<u64, StoreError> {
    // By start: a range on the key's first column would scan every series' rows.
    let rows = delete_rows(tx, series, starts.get(tx, i64::MIN, horizon)?)?;
    let packed: i64 = tx
        .prepare_cached(
            "SELECT coalesce(sum(windows), 0) FROM window_packs
             WHERE series_id = ?1 AND day_start < ?2",
        )?
        .query_row(params![series, horizon], |r| r.get(0))?;
    tx.prepare_cached("DELETE FROM window_packs WHERE series_id = ?1 AND day_start < ?2")?
        .execute(params![series, horizon])?;
    Ok(rows + packed as u64)
}
