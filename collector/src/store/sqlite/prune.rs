//! Retention on SQLite: per series, in steps of a few hundred series per transaction,
//! the windows before the horizon (summed up by hour into `rollup_hours` first), then
//! the hours, day summaries and daily sketches before theirs. A series whose every window goes has its open day summarised whole first (its
//! only day not yet summarised), so the assessment keeps it; from the first step on,
//! windows before the horizon are refused at ingest (`meta.windows_pruned_before`), so a
//! late one can never summarise a pruned day again from nothing.

use rusqlite::{params, Connection, Transaction};

use vscout_wire::batch::StatsRow;

use super::packs::{self, Starts};
use super::usage;
use crate::store::pack::Window;
use crate::store::{PruneStep, Pruned, Retention, StoreError};

/// Where the horizon and the counts live in `meta`.
const HORIZON: &str = "windows_pruned_before";
const COUNTS: [&str; 7] = [
    "pruned_rollups",
    "pruned_summaries",
    "pruned_sketches",
    "pruned_bytes",
    "pruned_hours",
    "packed_days",
    "pruned_batch_keys",
];
const REFUSED: &str = "refused_expired_windows";

/// Adds `n` to a count in `meta`.
fn count(tx: &Transaction<'_>, key: &str, n: u64) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO meta VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = CAST(value AS INTEGER) + excluded.value",
        params![key, n as i64],
    )?;
    Ok(())
}

/// Counts windows ingest refused for being older than the horizon (none: no write).
pub(super) fn count_refused(tx: &Transaction<'_>, n: u64) -> Result<(), StoreError> {
    if n == 0 {
        return Ok(());
    }
    count(tx, REFUSED, n)
}

/// The first window start still accepted (`i64::MIN` before any prune).
pub(super) fn horizon(conn: &Connection) -> Result<i64, StoreError> {
    Ok(conn
        .query_row(
            "SELECT CAST(value AS INTEGER) FROM meta WHERE key = ?1",
            [HORIZON],
            |r| r.get(0),
        )
        .or_else(|e| match e {
            rusqlite::Error::QueryReturnedNoRows => Ok(i64::MIN),
            e => Err(e),
        })?)
}

/// What retention deleted since the database was made.
pub(super) fn counted(conn: &Connection) -> Result<Pruned, StoreError> {
    let get = |key: &str| -> Result<u64, StoreError> {
        Ok(conn.query_row(
            "SELECT coalesce((SELECT CAST(value AS INTEGER) FROM meta WHERE key = ?1), 0)",
            [key],
            |r| r.get::<_, i64>(0),
        )? as u64)
    };
    Ok(Pruned {
        rollups: get(COUNTS[0])?,
        summaries: get(COUNTS[1])?,
        sketches: get(COUNTS[2])?,
        bytes: get(COUNTS[3])?,
        hours: get(COUNTS[4])?,
        packed_days: get(COUNTS[5])?,
        batch_keys: get(COUNTS[6])?,
        refused_windows: get(REFUSED)?,
    })
}

/// Forgets the keys of batches received before `before_s`, raising each agent's
/// `forgotten_seq` to the highest sequence forgotten (ingest treats sequences up to it
/// as duplicates). Returns the keys forgotten.
fn forget_batch_keys(tx: &Transaction<'_>, before_s: i64) -> Result<u64, StoreError> {
    let before_ms = before_s.saturating_mul(1000);
    tx.execute(
        "UPDATE agents SET forgotten_seq = max(forgotten_seq,
             (SELECT max(seq) FROM batches b WHERE b.agent_id = agents.agent_id
                                              AND b.received_ms < ?1))
         WHERE agent_id IN (SELECT agent_id FROM batches WHERE received_ms < ?1)",
        [before_ms],
    )?;
    Ok(tx.execute("DELETE FROM batches WHERE received_ms < ?1", [before_ms])? as u64)
}

fn free_bytes(tx: &Transaction<'_>) -> Result<i64, StoreError> {
    let pages: i64 = tx.query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
    let size: i64 = tx.query_row("PRAGMA page_size", [], |r| r.get(0))?;
    Ok(pages * size)
}

/// One step: see `Storage::prune_step`. Returns the step and the series whose windows
/// all went (the writer forgets their open hour once the transaction commits).
pub(super) fn step(
    tx: &Transaction<'_>,
    now_s: i64,
    r: &Retention,
    after: i64,
    series: usize,
) -> Result<(PruneStep, Vec<i64>), StoreError> {
    let (windows_from, summaries_from) = (r.windows_from(now_s), r.summaries_from(now_s));
    let free_before = free_bytes(tx)?;
    // The horizon first: from this transaction on no window before it is stored.
    tx.execute(
        "INSERT INTO meta VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = max(CAST(value AS INTEGER), excluded.value)",
        params![HORIZON, windows_from],
    )?;
    // And the days packed: from now on ingest looks in the packs for a window before.
    let today = crate::store::day_of(now_s);
    packs::set_packed_before(tx, today)?;
    let ids: Vec<(i64, bool)> = {
        let mut stmt = tx.prepare_cached(
            "SELECT id, entity_type, counter FROM series WHERE id > ?1 ORDER BY id LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![after, series as i64], |r| {
            let (id, kind, counter): (i64, String, String) = (r.get(0)?, r.get(1)?, r.get(2)?);
            Ok((id, crate::store::summarised(&kind, &counter)))
        })?;
        rows.collect::<Result<_, _>>()?
    };
    let mut p = Pruned {
        // Once a pass, with its first step.
        batch_keys: if after == 0 {
            forget_batch_keys(tx, windows_from)?
        } else {
            0
        },
        ..Pruned::default()
    };
    let mut forgotten = Vec::new();
    let mut starts = Starts::default();
    for &(id, summarised) in &ids {
        let spans = (windows_from, summaries_from, today);
        if series_step(tx, id, summarised, spans, &mut p, &mut starts)? {
            forgotten.push(id);
        }
    }
    p.bytes = (free_bytes(tx)? - free_before).max(0) as u64;
    super::stored::add(tx, -(p.rollups as i64), -(p.sketches as i64))?;
    for (key, n) in COUNTS.iter().zip([
        p.rollups,
        p.summaries,
        p.sketches,
        p.bytes,
        p.hours,
        p.packed_days,
        p.batch_keys,
    ]) {
        tx.execute(
            "INSERT INTO meta VALUES (?1, ?2)
             ON CONFLICT (key) DO UPDATE SET value = CAST(value AS INTEGER) + excluded.value",
            params![key, n as i64],
        )?;
    }
    let next = (ids.len() == series)
        .then(|| ids.last().map(|l| l.0))
        .flatten();
    Ok((PruneStep { pruned: p, next }, forgotten))
}

/// One series' share of a step; true when its windows all went (its open day closed).
fn series_step(
    tx: &Transaction<'_>,
    id: i64,
    summarised: bool,
    (windows_from, summaries_from, today): (i64, i64, i64),
    p: &mut Pruned,
    starts: &mut Starts,
) -> Result<bool, StoreError> {
    let mut closed = false;
    if summarised {
        let latest = packs::latest_before(tx, id, i64::MAX)?;
        if let Some(l) = latest.filter(|l| *l < windows_from) {
            usage::close_day(tx, id, l)?;
            closed = true;
        }
    }
    let delete = |sql: &str, from: i64| -> Result<u64, StoreError> {
        Ok(tx.prepare_cached(sql)?.execute(params![id, from])? as u64)
    };
    // The windows' hours stay, summed up, as long as the summaries.
    fold_hours(tx, id, (summaries_from, windows_from), starts)?;
    p.rollups += packs::delete_before(tx, id, windows_from, starts)?;
    p.hours += delete(
        "DELETE FROM rollup_hours WHERE series_id = ?1 AND hour_start < ?2",
        summaries_from,
    )?;
    p.summaries += delete(
        "DELETE FROM window_days WHERE series_id = ?1 AND day_start < ?2",
        summaries_from,
    )?;
    p.sketches += delete(
        "DELETE FROM daily WHERE series_id = ?1 AND day_start < ?2",
        summaries_from,
    )?;
    p.packed_days += packs::pack_days(tx, id, today, starts)?;
    Ok(closed)
}

/// Sums up the windows of `series` in `[from, to)` by hour into `rollup_hours`: counts
/// summed, the lowest min, the highest max and p95, the mean weighted by samples.
fn fold_hours(
    tx: &Transaction<'_>,
    series: i64,
    (from, to): (i64, i64),
    starts: &mut Starts,
) -> Result<(), StoreError> {
    let windows = packs::windows(tx, series, (from, to), starts)?;
    let mut stmt = tx.prepare_cached(
        "INSERT OR REPLACE INTO rollup_hours VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?;
    for hour in windows.chunk_by(|a, b| usage::hour_of(a.start) == usage::hour_of(b.start)) {
        let sum = |f: fn(&Window) -> u32| hour.iter().map(|w| i64::from(f(w))).sum::<i64>();
        let stats: Vec<StatsRow> = hour.iter().filter_map(|w| w.stats).collect();
        let fold =
            |f: fn(&StatsRow) -> f64, pick: fn(f64, f64) -> f64| stats.iter().map(f).reduce(pick);
        let samples: f64 = stats.iter().map(|s| f64::from(s.0)).sum();
        let mean = (samples > 0.0)
            .then(|| stats.iter().map(|s| s.3 * f64::from(s.0)).sum::<f64>() / samples);
        stmt.execute(params![
            series,
            usage::hour_of(hour[0].start),
            hour.len() as i64,
            sum(|w| w.expected),
            sum(|w| w.missing),
            sum(|w| w.stats.map_or(0, |s| s.0)),
            fold(|s| s.1, f64::min),
            fold(|s| s.2, f64::max),
            mean,
            fold(|s| s.5, f64::max),
        ])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
