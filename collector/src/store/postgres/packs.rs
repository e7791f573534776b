//! Closed days packed on PostgreSQL, as on SQLite (`store/pack.rs` is the codec): a day's
//! windows are rows in that day's `rollups` partition while it is open; once retention's
//! pass has summed the day up, each series' windows become one row of `window_packs`
//! (partitioned by day too), a retention step's series at a time; readers take the day
//! from its packs (`rollups` rows before `meta.packs_through`, and those of the series
//! already packed of the day being packed, are not read: `RowsFrom`) and a later step
//! drops the day's partition. A window arriving for a closed day (before
//! `meta.packed_before`, which ingest reads under the limits' shared lock) goes to
//! `late_windows`, merged into its pack by a later step.
//! Where a window lives is this module's business: `extra_windows` gives back, beside
//! the rows a reader reads from `rollups`, the windows packed and late.

use std::collections::{BTreeMap, HashMap, HashSet};

use postgres::fallible_iterator::FallibleIterator;
use postgres::types::{ToSql, Type};
use postgres::{GenericClient, Row, Transaction};
use vscout_wire::batch::StatsRow;

use super::partitions::{self, Partition, Table};
use super::{locks, meta};
use crate::store::pack::{self, Window};
use crate::store::DAY_SECS;
use crate::store::{Pruned, StoreError};

/// The columns of a window row (`rollups`, `late_windows`) after `series_id`, in order.
pub(super) const WINDOW_COLUMNS: &str = "window_start, window_secs, expected, missing, count, \
     min, max, mean, p50, p95, p99";

/// A window from a row selected as `series_id, WINDOW_COLUMNS`.
pub(super) fn window_of(r: &Row) -> Window {
    let count: i32 = r.get(5);
    let stats = r.get::<_, Option<f64>>(7).map(|max| {
        let f = |i: usize| r.get::<_, Option<f64>>(i).unwrap_or(f64::NAN);
        StatsRow(count.max(0) as u32, f(6), max, f(8), f(9), f(10), f(11))
    });
    let u = |i: usize| r.get::<_, i32>(i).max(0) as u32;
    Window {
        start: r.get(1),
        secs: u(2),
        expected: u(3),
        missing: u(4),
        stats,
    }
}

fn unpack(series: i64, day: i64, data: &[u8]) -> Result<Vec<Window>, StoreError> {
    pack::decode(day, data)
        .map_err(|e| StoreError::Other(format!("series {series}, day {day}: {e}")))
}

/// The windows of `ids` (or, `None`, of every series the summaries cover) starting in
/// `[from, to)` that are not rows of `rollups`: packed ones, and late ones not already
/// in a pack or a row; in no particular order.
pub(super) fn extra_windows(
    c: &mut impl GenericClient,
    ids: Option<&[i64]>,
    (from, to): (i64, i64),
) -> Result<Vec<(i64, Window)>, StoreError> {
    let counters = crate::store::USAGE_COUNTERS.to_vec();
    // Two texts, not one with an OR: each lets the planner use the series key.
    let (chosen, which): (&str, (&(dyn ToSql + Sync), Type)) = match &ids {
        Some(list) => ("series_id = ANY($3)", (list, Type::INT8_ARRAY)),
        None => (
            "series_id IN (SELECT id FROM series s WHERE s.entity_type = 'VirtualMachine'
                                                    AND s.counter = ANY($3))",
            (&counters, Type::TEXT_ARRAY),
        ),
    };
    let first_day = first_pack(from);
    let mut out: Vec<(i64, Window)> = Vec::new();
    let params = [
        (&from as &(dyn ToSql + Sync), Type::INT8),
        (&to, Type::INT8),
        which,
        (&first_day, Type::INT8),
    ];
    let mut rows = c.query_typed_raw(
        &format!(
            "SELECT series_id, day_start, data FROM window_packs
             WHERE day_start >= $4 AND day_start < $2 AND $1::int8 < $2 AND {chosen}"
        ),
        params.clone(),
    )?;
    while let Some(r) = rows.next()? {
        add_pack(&mut out, &r, (from, to))?;
    }
    drop(rows);
    add_late(c, chosen, &params, out)
}

/// As `extra_windows` for `ids`, series after series in their order (packs in one
/// statement, sorted by the server), reading no series after the one at which `limit`
/// windows were reached.
pub(super) fn windows_in_order(
    c: &mut impl GenericClient,
    ids: &[i64],
    (from, to): (i64, i64),
    limit: usize,
) -> Result<Vec<(i64, Window)>, StoreError> {
    let first_day = first_pack(from);
    let mut out: Vec<(i64, Window)> = Vec::new();
    let params = [
        (&from as &(dyn ToSql + Sync), Type::INT8),
        (&to, Type::INT8),
        (&ids, Type::INT8_ARRAY),
        (&first_day, Type::INT8),
    ];
    let mut rows = c.query_typed_raw(
        "SELECT series_id, day_start, data FROM window_packs
         WHERE day_start >= $4 AND day_start < $2 AND $1::int8 < $2 AND series_id = ANY($3)
         ORDER BY array_position($3, series_id), day_start",
        params,
    )?;
    let mut read = ids.len();
    while let Some(r) = rows.next()? {
        let series: i64 = r.get(0);
        if out.len() >= limit && out.last().is_some_and(|(s, _)| *s != series) {
            read = ids.iter().position(|id| *id == series).unwrap_or(ids.len());
            break;
        }
        add_pack(&mut out, &r, (from, to))?;
    }
    drop(rows);
    let some = &ids[..read];
    let params = [
        (&from as &(dyn ToSql + Sync), Type::INT8),
        (&to, Type::INT8),
        (&some, Type::INT8_ARRAY),
        (&first_day, Type::INT8),
    ];
    add_late(c, "series_id = ANY($3)", &params, out)
}

/// The first day whose pack may hold a window from `from` on: a pack holds the day from
/// its start, so the one before `from` may hold `from`.
fn first_pack(from: i64) -> i64 {
    from.saturating_sub(DAY_SECS - 1)
}

/// The windows in `[from, to)` of a pack row (`series_id, day_start, data`).
fn add_pack(
    out: &mut Vec<(i64, Window)>,
    r: &Row,
    (from, to): (i64, i64),
) -> Result<(), StoreError> {
    let (series, day): (i64, i64) = (r.get(0), r.get(1));
    for w in unpack(series, day, r.get(2))? {
        if w.start >= from && w.start < to {
            out.push((series, w));
        }
    }
    Ok(())
}

/// `out` (packed windows) with the late windows of the series `chosen` selects
/// (`params`: from, to, the selection's value, the first pack's day) that are neither
/// packed nor rows.
fn add_late(
    c: &mut impl GenericClient,
    chosen: &str,
    params: &[(&(dyn ToSql + Sync), Type); 4],
    mut out: Vec<(i64, Window)>,
) -> Result<Vec<(i64, Window)>, StoreError> {
    let late: Vec<(i64, Window)> = c
        .query_typed(
            &format!(
                "SELECT series_id, {WINDOW_COLUMNS} FROM late_windows l
                 WHERE window_start >= $1 AND window_start < $2 AND {chosen}
                   AND $4::int8 <= $1
                   AND NOT EXISTS (SELECT 1 FROM rollups r WHERE r.series_id = l.series_id
                                   AND r.window_start = l.window_start)"
            ),
            params,
        )?
        .iter()
        .map(|r| (r.get(0), window_of(r)))
        .collect();
    if !late.is_empty() {
        // A pack's window is the one kept.
        let packed: HashSet<(i64, i64)> = out.iter().map(|(s, w)| (*s, w.start)).collect();
        out.extend(
            late.into_iter()
                .filter(|(s, w)| !packed.contains(&(*s, w.start))),
        );
    }
    Ok(out)
}

/// Which `rows` of `rollups` are read (the others are packed): from `day`
/// (`meta.packs_through`) on, less those of the day being packed (`day` to `day_end`)
/// whose series are numbered below `below` (`meta.packing_below`; 0 when no day is
/// being packed).
#[derive(Debug, Clone, Copy)]
pub(super) struct RowsFrom {
    pub(super) day: i64,
    pub(super) day_end: i64,
    pub(super) below: i64,
}

impl RowsFrom {
    /// From `meta.packs_through` and `meta.packing_below`.
    pub(super) fn new(day: i64, below: i64) -> Self {
        Self {
            day,
            day_end: day.saturating_add(DAY_SECS),
            below,
        }
    }

    /// As `meta` holds them now.
    pub(super) fn read(c: &mut impl GenericClient) -> Result<Self, StoreError> {
        let r = c.query_one(
            "SELECT (SELECT value FROM meta WHERE key = 'packs_through'),
                    (SELECT value FROM meta WHERE key = 'packing_below')",
            &[],
        )?;
        Ok(Self::new(r.get(0), r.get(1)))
    }
}

/// The SQL condition on a `rollups` row (`alias.`) that it is not packed yet, the
/// parameters `$day_end` and `$below` bound to a `RowsFrom`'s (beside a condition
/// `window_start >= ` its `day`).
pub(super) fn not_packed(alias: &str, day_end: usize, below: usize) -> String {
    format!("({alias}window_start >= ${day_end} OR {alias}series_id >= ${below})")
}

/// One packing step: the next `series` series of the oldest day of `rollups` that is closed and
/// summed up, packed with their late windows; else the late windows of one day already
/// packed merged into its packs. True if there was one.
pub(super) fn step(
    tx: &mut Transaction<'_>,
    series: i64,
    pruned: &mut Pruned,
) -> Result<bool, StoreError> {
    locks::take(tx, locks::PARTITIONS)?;
    let closed = meta(tx, "packed_before")?.min(meta(tx, "summary_through")?);
    let packed = meta(tx, "packs_through")?;
    if let Some(p) = partitions::before(tx, Table::Rollups, closed)?
        .into_iter()
        .find(|p| p.lower >= packed)
    {
        pack_series(tx, &p, series.max(1), pruned)?;
        return Ok(true);
    }
    let late_day: Option<i64> = tx
        .query_one(
            "SELECT min(window_start - window_start % 86400) FROM late_windows
             WHERE window_start < $1",
            &[&closed],
        )?
        .get(0);
    match late_day {
        Some(day) => {
            let groups = take_late(tx, day, (0, i64::MAX), None)?;
            write_packs(tx, day, groups, true, pruned)?;
            Ok(true)
        }
        None => Ok(false),
    }
}

/// The late windows of `day` and of the series numbered in `[first, end)`, taken out of
/// `late_windows`, by series; with `rows`, added to those (a row already there wins).
fn take_late(
    tx: &mut Transaction<'_>,
    day: i64,
    (first, end): (i64, i64),
    rows: Option<HashMap<i64, BTreeMap<i64, Window>>>,
) -> Result<HashMap<i64, BTreeMap<i64, Window>>, StoreError> {
    let mut groups = rows.unwrap_or_default();
    for r in tx.query(
        &format!(
            "DELETE FROM late_windows WHERE window_start >= $1 AND window_start < $2
               AND series_id >= $3 AND series_id < $4
             RETURNING series_id, {WINDOW_COLUMNS}"
        ),
        &[&day, &(day + DAY_SECS), &first, &end],
    )? {
        let w = window_of(&r);
        groups
            .entry(r.get(0))
            .or_default()
            .entry(w.start)
            .or_insert(w);
    }
    Ok(groups)
}

/// Packs the next `series` series (by number, from `meta.packing_below` on) of a day's
/// partition of `rollups`: a transaction each (a large estate's day in one would run for
/// minutes, hold back vacuum and start over after a crash). Readers skip the rows of the series packed
/// (`not_packed`); once the last are, they take the whole day from its packs
/// (`packs_through`) and a later step drops the partition. Retention's steps run in
/// order, so no later step (folding days into hours) sees a day half packed.
fn pack_series(
    tx: &mut Transaction<'_>,
    p: &Partition,
    series: i64,
    pruned: &mut Pruned,
) -> Result<(), StoreError> {
    // Days without a partition have nothing to pack: the day being packed is the one at
    // `packs_through`.
    tx.execute(
        "UPDATE meta SET value = $1 WHERE key = 'packs_through' AND value < $1",
        &[&p.lower],
    )?;
    let first = meta(tx, "packing_below")?;
    let end: i64 = tx
        .query_opt(
            "SELECT id FROM series WHERE id >= $1 ORDER BY id OFFSET $2 LIMIT 1",
            &[&first, &series],
        )?
        .map_or(i64::MAX, |r| r.get(0));
    let mut groups: HashMap<i64, BTreeMap<i64, Window>> = HashMap::new();
    let params: [&(dyn ToSql + Sync); 2] = [&first, &end];
    let mut rows = tx.query_raw(
        &format!(
            "SELECT series_id, {WINDOW_COLUMNS} FROM {}
             WHERE series_id >= $1 AND series_id < $2",
            p.name
        ),
        params,
    )?;
    while let Some(r) = rows.next()? {
        let w = window_of(&r);
        groups.entry(r.get(0)).or_default().insert(w.start, w);
    }
    drop(rows);
    let groups = take_late(tx, p.lower, (first, end), Some(groups))?;
    write_packs(tx, p.lower, groups, false, pruned)?;
    if end < i64::MAX {
        tx.execute(
            "UPDATE meta SET value = $1 WHERE key = 'packing_below'",
            &[&end],
        )?;
    } else {
        // From here on readers take the day from its packs; the partition is dropped by
        // a step of its own, which waits for no one else's transaction while holding
        // locks a batch in flight could wait for.
        tx.execute(
            "UPDATE meta SET value = CASE key WHEN 'packs_through' THEN $1::int8 ELSE 0 END
             WHERE key IN ('packs_through', 'packing_below')",
            &[&p.upper],
        )?;
    }
    Ok(())
}

/// Writes the packs of `day`; with `merge`, into the packs already there (a packed
/// window wins over a late one, which is then counted away from the windows stored).
fn write_packs(
    tx: &mut Transaction<'_>,
    day: i64,
    mut groups: HashMap<i64, BTreeMap<i64, Window>>,
    merge: bool,
    pruned: &mut Pruned,
) -> Result<(), StoreError> {
    partitions::make(tx, Table::WindowPacks, day)?;
    let mut dropped = 0i64;
    if merge {
        let ids: Vec<i64> = groups.keys().copied().collect();
        for r in tx.query(
            "SELECT series_id, data FROM window_packs WHERE day_start = $1 AND series_id = ANY($2)",
            &[&day, &ids],
        )? {
            let series: i64 = r.get(0);
            let group = groups.entry(series).or_default();
            let before = group.len();
            let packed = unpack(series, day, r.get(1))?;
            let held: HashSet<i64> = packed.iter().map(|w| w.start).collect();
            group.retain(|start, _| !held.contains(start));
            dropped += (before - group.len()) as i64;
            group.extend(packed.into_iter().map(|w| (w.start, w)));
        }
    }
    let (mut ids, mut data) = (Vec::new(), Vec::new());
    for (series, windows) in groups {
        let windows: Vec<Window> = windows.into_values().collect();
        ids.push(series);
        data.push(pack::encode(day, &windows));
    }
    pruned.packed_days += ids.len() as u64;
    tx.execute(
        "INSERT INTO window_packs SELECT k.s, $1, k.d FROM unnest($2::int8[], $3::bytea[]) AS k(s, d)
         ON CONFLICT (series_id, day_start) DO UPDATE SET data = EXCLUDED.data",
        &[&day, &ids, &data],
    )?;
    tx.execute(
        "UPDATE meta SET value = value + CASE key WHEN 'packed_days' THEN $1::int8
             ELSE $2::int8 END
         WHERE key IN ('packed_days', 'removed_windows')",
        &[&(ids.len() as i64), &dropped],
    )?;
    Ok(())
}

/// What an hour of windows keeps once they go: counts summed, the lowest min, the
/// highest max and p95, the mean weighted by samples. One row per series and hour,
/// as columns for `rollup_hours`.
#[derive(Debug, Default)]
pub(super) struct Hours {
    pub(super) series: Vec<i64>,
    pub(super) hour: Vec<i64>,
    pub(super) windows: Vec<i64>,
    pub(super) expected: Vec<i64>,
    pub(super) missing: Vec<i64>,
    pub(super) count: Vec<i64>,
    pub(super) min: Vec<Option<f64>>,
    pub(super) max: Vec<Option<f64>>,
    pub(super) mean: Vec<Option<f64>>,
    pub(super) p95: Vec<Option<f64>>,
}

impl Hours {
    /// Adds the hours of one series' windows (sorted by start) from `keep_from` on.
    fn add(&mut self, series: i64, windows: &[Window], keep_from: i64) {
        for hour in windows.chunk_by(|a, b| a.start.div_euclid(3600) == b.start.div_euclid(3600)) {
            let h = hour[0].start.div_euclid(3600) * 3600;
            if h < keep_from {
                continue;
            }
            let sum = |f: fn(&Window) -> u32| hour.iter().map(|w| i64::from(f(w))).sum::<i64>();
            let stats: Vec<StatsRow> = hour.iter().filter_map(|w| w.stats).collect();
            let fold = |f: fn(&StatsRow) -> f64, pick: fn(f64, f64) -> f64| {
                stats.iter().map(f).reduce(pick)
            };
            let samples: f64 = stats.iter().map(|s| f64::from(s.0)).sum();
            self.series.push(series);
            self.hour.push(h);
            self.windows.push(hour.len() as i64);
            self.expected.push(sum(|w| w.expected));
            self.missing.push(sum(|w| w.missing));
            self.count.push(sum(|w| w.stats.map_or(0, |s| s.0)));
            self.min.push(fold(|s| s.1, f64::min));
            self.max.push(fold(|s| s.2, f64::max));
            self.mean.push(
                (samples > 0.0)
                    .then(|| stats.iter().map(|s| s.3 * f64::from(s.0)).sum::<f64>() / samples),
            );
            self.p95.push(fold(|s| s.5, f64::max));
        }
    }
}

/// Folds a day partition of packs into hours (those from `keep_from` on) and drops it;
/// returns the windows that went.
pub(super) fn fold_packs(
    tx: &mut Transaction<'_>,
    p: &Partition,
    keep_from: i64,
) -> Result<i64, StoreError> {
    let mut hours = Hours::default();
    let mut windows = 0i64;
    for r in tx.query(&format!("SELECT series_id, data FROM {}", p.name), &[])? {
        let series: i64 = r.get(0);
        let day = unpack(series, p.lower, r.get(1))?;
        windows += day.len() as i64;
        hours.add(series, &day, keep_from);
    }
    partitions::make(tx, Table::RollupHours, p.lower)?;
    tx.execute(
        "INSERT INTO rollup_hours
         SELECT * FROM unnest($1::int8[], $2::int8[], $3::int8[], $4::int8[], $5::int8[],
                              $6::int8[], $7::float8[], $8::float8[], $9::float8[], $10::float8[])
         ON CONFLICT DO NOTHING",
        &[
            &hours.series,
            &hours.hour,
            &hours.windows,
            &hours.expected,
            &hours.missing,
            &hours.count,
            &hours.min,
            &hours.max,
            &hours.mean,
            &hours.p95,
        ],
    )?;
    Ok(windows)
}
