//! What the assessment reads, on PostgreSQL: per VM series and UTC day, the day's
//! windows summed up (`window_days`, as on SQLite). Here retention's pass makes them, not
//! ingest, so that several collectors writing at once share no memory of open hours:
//! every window before `meta.summary_through` is summed up, a day at most per step; a
//! window arriving later than that (before `summary_mark`, which ingest reads under a
//! share lock) marks its day in `dirty_days`, read from its windows until the next step
//! sums it up again. Reads are the summaries, then the windows after `summary_through`.

use std::collections::HashMap;

use postgres::fallible_iterator::FallibleIterator;
use postgres::types::ToSql;
use postgres::Transaction;

use super::{meta, packs};
use crate::store::shape::{series_usage, Windows};
use crate::store::{day_of, DAY_SECS};
use crate::store::{SeriesUsage, StoreError, UsageQuery, USAGE_COUNTERS};

/// Dirty days summed up again per step, at most.
const DIRTY_PER_STEP: i64 = 2_000;

/// The VM series the summaries cover: `s` is `series`.
const SUMMARISED: &str = "s.entity_type = 'VirtualMachine' AND s.counter = ANY($1)";

fn usage_counters() -> Vec<&'static str> {
    USAGE_COUNTERS.to_vec()
}

/// One step of summing up: stale days first, then the windows from `summary_through` to
/// the mark, a day at most. False when there was nothing to do.
pub(super) fn summarise_step(tx: &mut Transaction<'_>) -> Result<bool, StoreError> {
    let (mark, through) = (meta(tx, "summary_mark")?, meta(tx, "summary_through")?);
    if resummarise_dirty(tx, through)? {
        return Ok(true);
    }
    if through >= mark {
        return Ok(false);
    }
    // A new database starts from its oldest partition, not from 1970.
    let oldest: Option<i64> = tx
        .query_one(
            "SELECT min(lower) FROM partitions WHERE parent = 'rollups'",
            &[],
        )?
        .get(0);
    let from = through.max(oldest.unwrap_or(mark));
    let to = mark.min(day_of(from) + DAY_SECS);
    if from < to {
        let mut sums = read_partial_day(tx, from)?;
        add_windows(tx, (from, to), None, &mut sums)?;
        write_days(tx, day_of(from), sums)?;
    }
    tx.execute(
        "UPDATE meta SET value = $1 WHERE key = 'summary_through'",
        &[&to],
    )?;
    Ok(true)
}

/// The rows of the day holding `from` summed up before `from` (a day summed up an hour at
/// a time), to be extended.
fn read_partial_day(
    tx: &mut Transaction<'_>,
    from: i64,
) -> Result<HashMap<i64, Windows>, StoreError> {
    let day = day_of(from);
    let mut out = HashMap::new();
    if from == day {
        return Ok(out);
    }
    for r in tx.query(
        "SELECT series_id, windows, covered_secs, received, expected, first_start, last_end,
                peaks FROM window_days WHERE day_start = $1",
        &[&day],
    )? {
        let mut w = Windows::default();
        w.count(r.get(1), r.get(2), r.get(3), r.get(4), r.get(5), r.get(6));
        w.peaks.add_bytes(r.get(7)).ok_or_else(|| {
            StoreError::Other(format!(
                "window peaks of series {}, day {day} unreadable",
                r.get::<_, i64>(0)
            ))
        })?;
        out.insert(r.get(0), w);
    }
    Ok(out)
}

/// Adds the summarised series' windows starting in `[from, to)` (of `only` those series,
/// if given) to `sums`, by series.
fn add_windows(
    tx: &mut Transaction<'_>,
    (from, to): (i64, i64),
    only: Option<&[i64]>,
    sums: &mut HashMap<i64, Windows>,
) -> Result<(), StoreError> {
    let counters = usage_counters();
    let packed = packs::RowsFrom::read(tx)?;
    let rows_from = from.max(packed.day);
    let mut params: Vec<&(dyn ToSql + Sync)> =
        vec![&counters, &rows_from, &to, &packed.day_end, &packed.below];
    // Two texts, not one with an OR: each lets the planner use the series key.
    let chosen = match &only {
        Some(ids) => {
            params.push(ids);
            "AND r.series_id = ANY($6)"
        }
        None => "",
    };
    let mut rows = tx.query_raw(
        &format!(
            "SELECT r.series_id, r.window_start, r.window_secs, r.expected, r.count, r.max
             FROM rollups r JOIN series s ON s.id = r.series_id
             WHERE {SUMMARISED} AND r.window_start >= $2 AND r.window_start < $3 AND {}
               {chosen}",
            packs::not_packed("r.", 4, 5)
        ),
        params,
    )?;
    while let Some(r) = rows.next()? {
        let (series, start, secs, expected, count): (i64, i64, i32, i32, i32) =
            (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4));
        sums.entry(series).or_default().add(
            start,
            secs.into(),
            expected.into(),
            count.into(),
            r.get(5),
        );
    }
    drop(rows);
    for (series, w) in packs::extra_windows(tx, only, (from, to))? {
        add_window(sums.entry(series).or_default(), &w);
    }
    Ok(())
}

/// Adds a packed or late window to a sum.
fn add_window(sum: &mut Windows, w: &crate::store::pack::Window) {
    let count = w.stats.map_or(0, |s| i64::from(s.0));
    sum.add(
        w.start,
        w.secs.into(),
        w.expected.into(),
        count,
        w.stats.map(|s| s.2),
    );
}

/// Writes the summaries of `day` (replacing what was there for those series); none for
/// a day past the summaries' horizon (retention would only delete them).
fn write_days(
    tx: &mut Transaction<'_>,
    day: i64,
    sums: HashMap<i64, Windows>,
) -> Result<(), StoreError> {
    let horizon = meta(tx, "summaries_horizon")?;
    if day < horizon || sums.is_empty() {
        return Ok(());
    }
    super::partitions::make(tx, super::partitions::Table::WindowDays, day)?;
    // Columns: series, windows, covered seconds, received, expected, first start, end.
    let mut cols: [Vec<i64>; 7] = Default::default();
    let mut peaks = Vec::new();
    for (series, w) in sums {
        let Some(f) = w.first_start else { continue };
        let row = [
            series,
            w.windows as i64,
            w.covered_secs as i64,
            w.received as i64,
            w.expected as i64,
            f,
            w.last_end,
        ];
        for (col, v) in cols.iter_mut().zip(row) {
            col.push(v);
        }
        peaks.push(w.peaks.finish().to_bytes());
    }
    tx.execute(
        "INSERT INTO window_days
         SELECT k.s, $1, k.w, k.c, k.r, k.e, k.f, k.l, k.p
         FROM unnest($2::int8[], $3::int8[], $4::int8[], $5::int8[], $6::int8[], $7::int8[],
                     $8::int8[], $9::bytea[]) AS k(s, w, c, r, e, f, l, p)
         ON CONFLICT (series_id, day_start) DO UPDATE SET windows = EXCLUDED.windows,
             covered_secs = EXCLUDED.covered_secs, received = EXCLUDED.received,
             expected = EXCLUDED.expected, first_start = EXCLUDED.first_start,
             last_end = EXCLUDED.last_end, peaks = EXCLUDED.peaks",
        &[
            &day, &cols[0], &cols[1], &cols[2], &cols[3], &cols[4], &cols[5], &cols[6], &peaks,
        ],
    )?;
    Ok(())
}

/// Sums up again the days a late window made stale (those before `through`; a mark at
/// or after it is only dropped: the next steps read those windows anyway). True if any.
fn resummarise_dirty(tx: &mut Transaction<'_>, through: i64) -> Result<bool, StoreError> {
    let dirty: Vec<(i64, i64)> = tx
        .query(
            "SELECT series_id, day_start FROM dirty_days ORDER BY day_start, series_id LIMIT $1",
            &[&DIRTY_PER_STEP],
        )?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    for group in dirty.chunk_by(|a, b| a.1 == b.1) {
        let day = group[0].1;
        let ids: Vec<i64> = group.iter().map(|d| d.0).collect();
        if day < through {
            let mut sums = HashMap::new();
            add_windows(
                tx,
                (day, through.min(day + DAY_SECS)),
                Some(&ids),
                &mut sums,
            )?;
            // A series whose windows of that day all went keeps its summary.
            write_days(tx, day, sums)?;
        }
        tx.execute(
            "DELETE FROM dirty_days WHERE day_start = $1 AND series_id = ANY($2)",
            &[&day, &ids],
        )?;
    }
    Ok(!dirty.is_empty())
}

/// One series as `vm_usage` answers it, being summed up.
#[derive(Debug, Default)]
struct Summed {
    total: Windows,
    sample_days: u32,
}

/// The series `vm_usage` reads, in the order it answers them.
type SeriesName = (i64, String, String, String, String);

/// Series read per round: their summaries and sketches are in memory at once.
const SERIES_PER_READ: usize = 1_000;

/// VM series of the asked counters over the history, in (vCenter, VM) order: the
/// summaries of their days (for `samples`, the agent's daily sketch of a whole day where
/// there is one), then the windows after `summary_through` and those of stale days.
pub(super) fn vm_usage(
    tx: &mut Transaction<'_>,
    q: &UsageQuery<'_>,
    each: &mut dyn FnMut(SeriesUsage),
) -> Result<(), StoreError> {
    let names: Vec<SeriesName> = tx
        .query(
            "SELECT id, vcenter, entity_id, counter, instance FROM series
             WHERE entity_type = 'VirtualMachine' AND counter = ANY($1)
               AND ($2::text IS NULL OR (vcenter = $2 AND entity_id = $3))
             ORDER BY vcenter, entity_id, counter, instance",
            &[&q.counters, &q.vm.map(|v| v.0), &q.vm.map(|v| v.1)],
        )?
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
        .collect();
    let through = meta(tx, "summary_through")?;
    let span = (day_of(q.from_s), q.to_s);
    for chunk in names.chunks(SERIES_PER_READ) {
        let ids: Vec<i64> = chunk.iter().map(|n| n.0).collect();
        let mut sums: HashMap<i64, Summed> = HashMap::new();
        read_summaries(tx, &ids, span, (through, q.samples), &mut sums)?;
        read_windows(tx, &ids, span, through, &mut sums)?;
        for (id, vcenter, vm_id, counter, instance) in chunk {
            let Some(s) = sums.remove(id) else { continue };
            let names = (
                vcenter.clone(),
                vm_id.clone(),
                counter.clone(),
                instance.clone(),
            );
            if let Some(u) = series_usage(names, s.total, s.sample_days) {
                each(u);
            }
        }
    }
    Ok(())
}

/// Adds the summaries of the days in `[from_day, to)` that are not stale.
fn read_summaries(
    tx: &mut Transaction<'_>,
    ids: &[i64],
    (from_day, to): (i64, i64),
    (through, samples): (i64, bool),
    sums: &mut HashMap<i64, Summed>,
) -> Result<(), StoreError> {
    let ids = ids.to_vec();
    let params: [&(dyn ToSql + Sync); 5] = [&ids, &from_day, &to, &samples, &through];
    let mut rows = tx.query_raw(
        "SELECT w.series_id, w.day_start, w.windows, w.covered_secs, w.received, w.expected,
                w.first_start, w.last_end, w.peaks,
                CASE WHEN $4 AND w.day_start + 86400 <= $5 THEN
                    (SELECT d.sketch FROM daily d
                     WHERE d.series_id = w.series_id AND d.day_start = w.day_start)
                END
         FROM window_days w
         WHERE w.series_id = ANY($1) AND w.day_start >= $2 AND w.day_start < $3
           AND NOT EXISTS (SELECT 1 FROM dirty_days x
                           WHERE x.series_id = w.series_id AND x.day_start = w.day_start)",
        params,
    )?;
    while let Some(r) = rows.next()? {
        let (series, day): (i64, i64) = (r.get(0), r.get(1));
        let s = sums.entry(series).or_default();
        s.total
            .count(r.get(2), r.get(3), r.get(4), r.get(5), r.get(6), r.get(7));
        let unreadable = |what: &str| {
            StoreError::Other(format!("{what} of series {series}, day {day} unreadable"))
        };
        match r.get::<_, Option<&[u8]>>(9) {
            Some(daily) => {
                s.total
                    .peaks
                    .add_bytes(daily)
                    .ok_or_else(|| unreadable("daily sketch"))?;
                s.sample_days += 1;
            }
            None => s
                .total
                .peaks
                .add_bytes(r.get(8))
                .ok_or_else(|| unreadable("window peaks"))?,
        }
    }
    Ok(())
}

/// Adds the windows not summed up: after `through`, and those of stale days.
fn read_windows(
    tx: &mut Transaction<'_>,
    ids: &[i64],
    (from_day, to): (i64, i64),
    through: i64,
    sums: &mut HashMap<i64, Summed>,
) -> Result<(), StoreError> {
    let ids = ids.to_vec();
    let packed = packs::RowsFrom::read(tx)?;
    let rows_from = from_day.max(packed.day);
    let params: [&(dyn ToSql + Sync); 6] = [
        &ids,
        &rows_from,
        &to,
        &through,
        &packed.day_end,
        &packed.below,
    ];
    let mut rows = tx.query_raw(
        &format!(
            "SELECT r.series_id, r.window_start, r.window_secs, r.expected, r.count, r.max
             FROM rollups r
             WHERE r.series_id = ANY($1) AND r.window_start >= $2 AND r.window_start < $3
               AND {}
               AND (r.window_start >= $4
                    OR EXISTS (SELECT 1 FROM dirty_days x WHERE x.series_id = r.series_id
                               AND x.day_start = r.window_start - r.window_start % 86400))",
            packs::not_packed("r.", 5, 6)
        ),
        params,
    )?;
    while let Some(r) = rows.next()? {
        let (secs, expected, count): (i32, i32, i32) = (r.get(2), r.get(3), r.get(4));
        sums.entry(r.get(0)).or_default().total.add(
            r.get(1),
            secs.into(),
            expected.into(),
            count.into(),
            r.get(5),
        );
    }
    drop(rows);
    // Stale days may hold packed and late windows (packs are all before `through`; a late
    // window marks its day stale).
    let stale: Vec<(i64, i64)> = tx
        .query(
            "SELECT day_start, series_id FROM dirty_days
             WHERE series_id = ANY($1) AND day_start >= $2 AND day_start < $3
             ORDER BY day_start",
            &[&ids, &from_day, &to],
        )?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    for group in stale.chunk_by(|a, b| a.0 == b.0) {
        let day = group[0].0;
        let of_day: Vec<i64> = group.iter().map(|g| g.1).collect();
        let span = (day, to.min(day + DAY_SECS));
        for (series, w) in packs::extra_windows(tx, Some(&of_day), span)? {
            add_window(&mut sums.entry(series).or_default().total, &w);
        }
    }
    Ok(())
}
