//! Retention on PostgreSQL, a unit of work per step under an advisory lock (several
//! collectors may run passes; their steps take turns and find done what another did):
//! raise the horizons, sum up the closed hours for the assessment, fold each day of
//! windows past `windows_days` into hours and drop its partition, drop the months of
//! summaries and sketches past `summaries_days` and delete the older rows of the month
//! the horizon falls in. Dropping a partition returns its space to the file system.

use postgres::Transaction;

use super::partitions::{self, Table};
use super::{locks, meta, packs, usage};
use crate::store::{PruneStep, Pruned, Retention, StoreError};

const HOUR_SECS: i64 = 3_600;

/// Adds `by` to a meta counter. Retention counts what it removes in counters of its
/// own (`removed_*`), never in those ingest adds to (`stored_*`): a pass and a batch
/// updating the same rows in turn deadlocked.
fn bump(tx: &mut Transaction<'_>, key: &str, by: i64) -> Result<(), StoreError> {
    tx.execute(
        "UPDATE meta SET value = value + $2 WHERE key = $1",
        &[&key, &by],
    )?;
    Ok(())
}

/// What retention deleted since the database was made, from `meta`.
pub(super) fn counted(client: &mut postgres::Client) -> Result<Pruned, StoreError> {
    let mut p = Pruned::default();
    for r in client.query(
        "SELECT key, value FROM meta
         WHERE key LIKE 'pruned_%' OR key IN ('refused_windows', 'packed_days')",
        &[],
    )? {
        let v = r.get::<_, i64>(1).max(0) as u64;
        match r.get::<_, &str>(0) {
            "pruned_rollups" => p.rollups = v,
            "pruned_summaries" => p.summaries = v,
            "pruned_sketches" => p.sketches = v,
            "pruned_bytes" => p.bytes = v,
            "pruned_hours" => p.hours = v,
            "refused_windows" => p.refused_windows = v,
            "packed_days" => p.packed_days = v,
            "pruned_batch_keys" => p.batch_keys = v,
            _ => {}
        }
    }
    Ok(p)
}

/// Raises the horizons ingest checks (windows, daily sketches) and the summaries' mark
/// to `now_s`'s. Ingest reads them under a share lock: this waits for the batches in
/// flight. True if any moved.
pub(super) fn raise_horizons(
    tx: &mut Transaction<'_>,
    now_s: i64,
    r: &Retention,
    mark: bool,
) -> Result<bool, StoreError> {
    let hour = now_s.div_euclid(HOUR_SECS) * HOUR_SECS;
    let wanted = [
        ("horizon", r.windows_from(now_s), true),
        ("summaries_horizon", r.summaries_from(now_s), true),
        ("summary_mark", hour, mark),
        // Closed days: their windows are packed, a late one waits in late_windows.
        ("packed_before", crate::store::day_of(now_s), mark),
    ];
    let mut raise = Vec::new();
    for (key, value, asked) in wanted {
        if asked && meta(tx, key)? < value {
            raise.push((key, value));
        }
    }
    if raise.is_empty() {
        // Most steps: no wait for the batches in flight.
        return Ok(false);
    }
    locks::take(tx, locks::LIMITS)?;
    let mut moved = 0;
    for (key, value) in raise {
        moved += tx.execute(
            "UPDATE meta SET value = $2 WHERE key = $1 AND value < $2",
            &[&key, &value],
        )?;
    }
    Ok(moved > 0)
}

/// One unit of retention's work as of `now_s` (packing at most `series` series of a day);
/// `next` is `None` once nothing is left.
pub(super) fn step(
    tx: &mut Transaction<'_>,
    now_s: i64,
    r: &Retention,
    after: i64,
    series: usize,
) -> Result<PruneStep, StoreError> {
    locks::take(tx, locks::PRUNE)?;
    let mut pruned = Pruned::default();
    let worked = raise_horizons(tx, now_s, r, true)?
        || usage::summarise_step(tx)?
        || packs::step(tx, series as i64, &mut pruned)?
        || drop_packed(tx, &mut pruned)?
        || drop_windows(tx, &mut pruned)?
        || drop_summaries(tx, &mut pruned)?
        || delete_summaries(tx, &mut pruned)?
        || forget_batch_keys(tx, &mut pruned)?;
    Ok(PruneStep {
        pruned,
        next: worked.then_some(after + 1),
    })
}

/// Forgets the keys of batches received before the windows' horizon (at most 10,000 a
/// step), raising each agent's `forgotten_seq` to the highest sequence forgotten first
/// (ingest treats sequences up to it as duplicates; the agents' rows are locked in the
/// order a batch locks them: its agent, then its key). True if any went.
fn forget_batch_keys(tx: &mut Transaction<'_>, pruned: &mut Pruned) -> Result<bool, StoreError> {
    let before_ms = meta(tx, "horizon")?.saturating_mul(1000);
    // The same keys in both statements: only retention deletes keys this old, one step
    // at a time (the PRUNE lock), and no batch is received in the past.
    const OLD: &str = "SELECT agent_id, seq FROM batches WHERE received_ms < $1
                       ORDER BY received_ms, agent_id, seq LIMIT 10000";
    tx.execute(
        &format!(
            "UPDATE agents a SET forgotten_seq = greatest(a.forgotten_seq, o.seq)
             FROM (SELECT agent_id, max(seq) AS seq FROM ({OLD}) x GROUP BY agent_id) o
             WHERE a.agent_id = o.agent_id"
        ),
        &[&before_ms],
    )?;
    let gone = tx.execute(
        &format!(
            "DELETE FROM batches b USING ({OLD}) old
             WHERE b.agent_id = old.agent_id AND b.seq = old.seq"
        ),
        &[&before_ms],
    )?;
    if gone == 0 {
        return Ok(false);
    }
    bump(tx, "pruned_batch_keys", gone as i64)?;
    pruned.batch_keys += gone;
    Ok(true)
}

/// Rows and bytes of a partition about to go.
fn size_of(tx: &mut Transaction<'_>, name: &str) -> Result<(i64, i64), StoreError> {
    let row = tx.query_one(
        &format!("SELECT count(*), pg_total_relation_size('{name}') FROM {name}"),
        &[],
    )?;
    Ok((row.get(0), row.get(1)))
}

/// Drops a partition; false if its table stayed busy for seconds (a long read): then
/// the next pass drops it. Dropping waits for every transaction using the table and
/// holds up those that come after, so a step drops before it writes anything a batch
/// in flight could wait for.
fn drop_partition(
    tx: &mut Transaction<'_>,
    table: Table,
    p: &partitions::Partition,
) -> Result<bool, StoreError> {
    locks::take(tx, locks::PARTITIONS)?;
    tx.batch_execute("SAVEPOINT drop_partition; SET LOCAL lock_timeout = '5s'")?;
    // The parent first, as every query locks it before its partitions: dropping a
    // partition locks the partition, then the parent, and a reader holding the parent
    // and waiting for the partition deadlocked with it.
    match tx.batch_execute(&format!(
        "LOCK TABLE ONLY {} IN ACCESS EXCLUSIVE MODE; DROP TABLE {}",
        table.name(),
        p.name
    )) {
        Ok(()) => {}
        Err(e) if e.code() == Some(&postgres::error::SqlState::LOCK_NOT_AVAILABLE) => {
            tx.batch_execute("ROLLBACK TO SAVEPOINT drop_partition")?;
            return Ok(false);
        }
        Err(e) => return Err(e.into()),
    }
    tx.batch_execute("RESET lock_timeout; RELEASE SAVEPOINT drop_partition")?;
    tx.execute(
        "DELETE FROM partitions WHERE parent = $1 AND lower = $2",
        &[&table.name(), &p.lower],
    )?;
    Ok(true)
}

/// The oldest partition of window rows already packed, dropped (its space goes back to
/// the file system). True if one went.
fn drop_packed(tx: &mut Transaction<'_>, pruned: &mut Pruned) -> Result<bool, StoreError> {
    locks::take(tx, locks::PARTITIONS)?;
    let packed = meta(tx, "packs_through")?;
    let Some(p) = partitions::before(tx, Table::Rollups, packed)?
        .into_iter()
        .next()
    else {
        return Ok(false);
    };
    let bytes: i64 = tx
        .query_one(
            "SELECT pg_total_relation_size($1::text::regclass)",
            &[&p.name],
        )?
        .get(0);
    if !drop_partition(tx, Table::Rollups, &p)? {
        return Ok(false);
    }
    bump(tx, "pruned_bytes", bytes)?;
    pruned.bytes += bytes as u64;
    Ok(true)
}

/// The oldest day of windows past the horizon (once summed up for the assessment), packed
/// or not: its hours kept in `rollup_hours`, its partition dropped; late windows before
/// the horizon deleted. True if there was one.
fn drop_windows(tx: &mut Transaction<'_>, pruned: &mut Pruned) -> Result<bool, StoreError> {
    // Before any table is touched: a collector making a partition holds this lock and
    // waits for the tables' locks.
    locks::take(tx, locks::PARTITIONS)?;
    let horizon = meta(tx, "horizon")?;
    let through = meta(tx, "summary_through")?;
    let keep_from = meta(tx, "summaries_horizon")?;
    // Rows not packed (the pass fell behind) and packs.
    let packs_through = meta(tx, "packs_through")?;
    let mut rows = partitions::before(tx, Table::Rollups, horizon.min(through))?;
    rows.retain(|p| p.lower >= packs_through);
    let packed = partitions::before(tx, Table::WindowPacks, horizon.min(through))?;
    let oldest = match (rows.first(), packed.first()) {
        (Some(r), Some(p)) if p.lower < r.lower => Some((Table::WindowPacks, p.clone())),
        (Some(r), _) => Some((Table::Rollups, r.clone())),
        (None, Some(p)) => Some((Table::WindowPacks, p.clone())),
        (None, None) => None,
    };
    let late = tx.execute(
        "DELETE FROM late_windows WHERE window_start < $1",
        &[&horizon.min(through)],
    )? as i64;
    let Some((table, p)) = oldest else {
        count_dropped(tx, pruned, late, 0)?;
        return Ok(late > 0);
    };
    let (windows, bytes) = if table == Table::Rollups {
        fold_rows(tx, &p, keep_from)?
    } else {
        let (_, bytes) = size_of(tx, &p.name)?;
        (packs::fold_packs(tx, &p, keep_from)?, bytes)
    };
    if !drop_partition(tx, table, &p)? {
        // Busy: folded again (the same hours) and dropped by the next pass.
        count_dropped(tx, pruned, late, 0)?;
        return Ok(false);
    }
    tx.execute(
        "DELETE FROM dirty_days WHERE day_start >= $1 AND day_start < $2",
        &[&p.lower, &p.upper],
    )?;
    count_dropped(tx, pruned, windows + late, bytes)?;
    Ok(true)
}

/// Windows and bytes retention deleted, counted.
fn count_dropped(
    tx: &mut Transaction<'_>,
    pruned: &mut Pruned,
    windows: i64,
    bytes: i64,
) -> Result<(), StoreError> {
    bump(tx, "pruned_rollups", windows)?;
    bump(tx, "pruned_bytes", bytes)?;
    bump(tx, "removed_windows", windows)?;
    pruned.rollups += windows as u64;
    pruned.bytes += bytes as u64;
    Ok(())
}

/// A day partition of window rows summed up by hour into `rollup_hours` (hours from
/// `keep_from` on); its rows and bytes.
fn fold_rows(
    tx: &mut Transaction<'_>,
    p: &partitions::Partition,
    keep_from: i64,
) -> Result<(i64, i64), StoreError> {
    partitions::make(tx, Table::RollupHours, p.lower)?;
    // What an hour keeps: counts summed, the lowest min, the highest max and p95, the
    // mean weighted by samples. Hours past the summaries' horizon are not made.
    tx.execute(
        &format!(
            "INSERT INTO rollup_hours
             SELECT series_id, window_start - window_start % 3600 AS h, count(*), sum(expected),
                    sum(missing), sum(count), min(min), max(max),
                    sum(mean * count) / nullif(sum(count) FILTER (WHERE mean IS NOT NULL), 0),
                    max(p95)
             FROM {} WHERE window_start >= $1 GROUP BY series_id, h
             ON CONFLICT DO NOTHING",
            p.name
        ),
        &[&keep_from],
    )?;
    size_of(tx, &p.name)
}

/// What each summary table's rows are counted as.
fn tally(table: Table, pruned: &mut Pruned, rows: u64) -> Result<&'static str, StoreError> {
    Ok(match table {
        Table::RollupHours => {
            pruned.hours += rows;
            "pruned_hours"
        }
        Table::WindowDays => {
            pruned.summaries += rows;
            "pruned_summaries"
        }
        Table::Daily => {
            pruned.sketches += rows;
            "pruned_sketches"
        }
        Table::Rollups | Table::WindowPacks => {
            return Err(StoreError::Other(format!(
                "{} is not a summary",
                table.name()
            )))
        }
    })
}

/// The oldest month of summaries or sketches wholly past `summaries_days`, dropped.
fn drop_summaries(tx: &mut Transaction<'_>, pruned: &mut Pruned) -> Result<bool, StoreError> {
    locks::take(tx, locks::PARTITIONS)?;
    let horizon = meta(tx, "summaries_horizon")?;
    for table in [Table::RollupHours, Table::WindowDays, Table::Daily] {
        let Some(p) = partitions::before(tx, table, horizon)?.into_iter().next() else {
            continue;
        };
        let (rows, bytes) = size_of(tx, &p.name)?;
        if !drop_partition(tx, table, &p)? {
            continue;
        }
        let key = tally(table, pruned, rows as u64)?;
        bump(tx, key, rows)?;
        bump(tx, "pruned_bytes", bytes)?;
        if table == Table::Daily {
            bump(tx, "removed_sketches", rows)?;
        }
        pruned.bytes += bytes as u64;
        return Ok(true);
    }
    Ok(false)
}

/// Rows before the summaries' horizon in the month it falls in, once per horizon (a
/// day's worth: the month's partition is dropped whole later).
fn delete_summaries(tx: &mut Transaction<'_>, pruned: &mut Pruned) -> Result<bool, StoreError> {
    let horizon = meta(tx, "summaries_horizon")?;
    if meta(tx, "summaries_deleted_to")? >= horizon {
        return Ok(false);
    }
    for (table, column) in [
        (Table::RollupHours, "hour_start"),
        (Table::WindowDays, "day_start"),
        (Table::Daily, "day_start"),
    ] {
        let rows = tx.execute(
            &format!("DELETE FROM {} WHERE {column} < $1", table.name()),
            &[&horizon],
        )? as i64;
        let key = tally(table, pruned, rows as u64)?;
        bump(tx, key, rows)?;
        if table == Table::Daily {
            bump(tx, "removed_sketches", rows)?;
        }
    }
    tx.execute(
        "UPDATE meta SET value = $1 WHERE key = 'summaries_deleted_to'",
        &[&horizon],
    )?;
    Ok(true)
}
