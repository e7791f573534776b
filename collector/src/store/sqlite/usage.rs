//! What the assessment reads, kept so that it reads little: per series, each closed UTC
//! day's windows summed up (`window_days`: windows, seconds covered, samples received
//! and expected, and a sketch of the windows' peaks), and each closed hour of the open
//! day likewise (`window_hours`); the read itself is whole days, then hours, then the
//! open hour's windows.
//!
//! An hour (a day) closes for a series when a window of a later hour (day) arrives (the
//! agent drains windows in order), so ingest summarises once per series and hour, reading
//! back the dozen rows it has just written, and once per series and day, when the day's
//! hours are replaced by the day. A late window summarises its hour or day again. Thirty
//! days of 10,000 VMs read at most 30 + 23 rows and 12 windows per series, not 8,640.

use std::collections::{HashMap, HashSet};

use rusqlite::{params, Connection, Transaction};
use vscout_wire::sketch::{Sketch, SketchSum};

use crate::store::{SeriesUsage, StoreError, UsageQuery};

pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS window_days (
    series_id INTEGER NOT NULL, day_start INTEGER NOT NULL, windows INTEGER NOT NULL,
    covered_secs INTEGER NOT NULL, received INTEGER NOT NULL, expected INTEGER NOT NULL,
    first_start INTEGER NOT NULL, last_end INTEGER NOT NULL, peaks BLOB NOT NULL,
    PRIMARY KEY (series_id, day_start)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS window_hours (
    series_id INTEGER NOT NULL, hour_start INTEGER NOT NULL, windows INTEGER NOT NULL,
    covered_secs INTEGER NOT NULL, received INTEGER NOT NULL, expected INTEGER NOT NULL,
    first_start INTEGER NOT NULL, last_end INTEGER NOT NULL, peaks BLOB NOT NULL,
    PRIMARY KEY (series_id, hour_start)) WITHOUT ROWID;
";

pub(super) const DAY_SECS: i64 = 86_400;
const HOUR_SECS: i64 = 3_600;

pub(super) fn day_of(t: i64) -> i64 {
    t.div_euclid(DAY_SECS) * DAY_SECS
}

pub(super) fn hour_of(t: i64) -> i64 {
    t.div_euclid(HOUR_SECS) * HOUR_SECS
}

/// A summary's length: a day or an hour, each with its table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Period {
    Day,
    Hour,
}

impl Period {
    fn secs(self) -> i64 {
        match self {
            Period::Day => DAY_SECS,
            Period::Hour => HOUR_SECS,
        }
    }
}

/// The windows of some span summed up: what a summary row holds and what the open hour
/// adds at read time.
#[derive(Debug, Default, Clone, PartialEq)]
struct Windows {
    windows: u64,
    covered_secs: u64,
    received: u64,
    expected: u64,
    first_start: Option<i64>,
    last_end: i64,
    peaks: SketchSum,
}

impl Windows {
    fn add(&mut self, start: i64, secs: i64, expected: i64, count: i64, max: Option<f64>) {
        self.count(1, secs, count, expected, start, start + secs);
        if let Some(m) = max {
            self.peaks.add(m);
        }
    }

    /// Adds everything but the sketch of `windows` windows.
    fn count(
        &mut self,
        windows: i64,
        secs: i64,
        received: i64,
        expected: i64,
        first: i64,
        end: i64,
    ) {
        self.windows += windows.max(0) as u64;
        self.covered_secs += secs.max(0) as u64;
        self.received += received.max(0) as u64;
        self.expected += expected.max(0) as u64;
        self.first_start = Some(self.first_start.map_or(first, |f| f.min(first)));
        self.last_end = self.last_end.max(end);
    }

    /// Adds the windows of `series` starting in `[from, to)`.
    fn read(
        &mut self,
        conn: &Connection,
        series: i64,
        from: i64,
        to: i64,
    ) -> Result<(), StoreError> {
        let mut stmt = conn.prepare_cached(
            "SELECT window_start, window_secs, expected, count, max FROM rollups
             WHERE series_id = ?1 AND window_start >= ?2 AND window_start < ?3",
        )?;
        let mut rows = stmt.query(params![series, from, to])?;
        while let Some(r) = rows.next()? {
            self.add(r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?);
        }
        Ok(())
    }
}

/// Writes (or rewrites, or with no windows left deletes) the summary of one series'
/// day or hour; a day's summary replaces its hours'.
fn summarise(
    tx: &Transaction<'_>,
    series: i64,
    start: i64,
    period: Period,
) -> Result<(), StoreError> {
    let mut w = Windows::default();
    w.read(tx, series, start, start + period.secs())?;
    let (replace, delete) = match period {
        Period::Day => (
            "INSERT OR REPLACE INTO window_days VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            "DELETE FROM window_days WHERE series_id = ?1 AND day_start = ?2",
        ),
        Period::Hour => (
            "INSERT OR REPLACE INTO window_hours VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            "DELETE FROM window_hours WHERE series_id = ?1 AND hour_start = ?2",
        ),
    };
    if period == Period::Day {
        tx.prepare_cached(
            "DELETE FROM window_hours WHERE series_id = ?1 AND hour_start >= ?2 AND hour_start < ?3",
        )?
        .execute(params![series, start, start + DAY_SECS])?;
    }
    let Some(first) = w.first_start else {
        tx.prepare_cached(delete)?.execute(params![series, start])?;
        return Ok(());
    };
    tx.prepare_cached(replace)?.execute(params![
        series,
        start,
        w.windows as i64,
        w.covered_secs as i64,
        w.received as i64,
        w.expected as i64,
        first,
        w.last_end,
        w.peaks.finish().to_bytes()
    ])?;
    Ok(())
}

/// What closes when a series' latest hour moves from `latest` past `hour`, or what a
/// late window in `hour` opens again: the older of the two, as a day if the two are on
/// different days, else as an hour.
fn close_older(
    tx: &Transaction<'_>,
    series: i64,
    latest: i64,
    hour: i64,
) -> Result<(), StoreError> {
    let older = latest.min(hour);
    if day_of(latest) != day_of(hour) {
        summarise(tx, series, day_of(older), Period::Day)
    } else {
        summarise(tx, series, older, Period::Hour)
    }
}

/// Per series, the latest hour a window was stored for: the writer's memory of which
/// hours and days are still open. Filled lazily (a series not seen since start is looked
/// up once).
#[derive(Debug, Default)]
pub(super) struct OpenDays {
    latest: HashMap<i64, i64>,
}

impl OpenDays {
    /// Closes what the windows stored in this transaction (`touched`: series and hour)
    /// closed, and returns the new latest hours, to remember once the transaction
    /// commits.
    ///
    /// The invariant kept: every day of a series that has windows is summarised but its
    /// latest, and every hour of that day but its latest.
    pub(super) fn close(
        &self,
        tx: &Transaction<'_>,
        touched: HashSet<(i64, i64)>,
    ) -> Result<Vec<(i64, i64)>, StoreError> {
        let mut touched: Vec<(i64, i64)> = touched.into_iter().collect();
        touched.sort_unstable();
        let mut out = Vec::new();
        for group in touched.chunk_by(|a, b| a.0 == b.0) {
            let series = group[0].0;
            let hours: Vec<i64> = group.iter().map(|t| t.1).collect();
            let mut latest = match self.latest.get(&series) {
                Some(l) => Some(*l),
                None => latest_before(tx, series, &hours)?,
            };
            for &hour in &hours {
                if let Some(l) = latest.filter(|l| *l != hour) {
                    close_older(tx, series, l, hour)?;
                }
                latest = Some(latest.map_or(hour, |l| l.max(hour)));
            }
            if let Some(l) = latest {
                out.push((series, l));
            }
        }
        Ok(out)
    }

    pub(super) fn remember(&mut self, latest: Vec<(i64, i64)>) {
        self.latest.extend(latest);
    }
}

/// For a series the writer has not seen since it started: its latest hour before this
/// transaction, the open one. The transaction's windows are already in the table, so
/// walk down from the latest hour with windows past the hours it touched (`touched`,
/// sorted): the first hour left is the old latest (or, when that was touched too, a
/// summarised hour or day, which summarising again leaves as it was).
fn latest_before(
    tx: &Transaction<'_>,
    series: i64,
    touched: &[i64],
) -> Result<Option<i64>, StoreError> {
    let mut stmt = tx.prepare_cached(
        "SELECT MAX(window_start) FROM rollups WHERE series_id = ?1 AND window_start < ?2",
    )?;
    let mut below = i64::MAX;
    loop {
        let last: Option<i64> = stmt.query_row(params![series, below], |r| r.get(0))?;
        let Some(hour) = last.map(hour_of) else {
            return Ok(None);
        };
        if touched.binary_search(&hour).is_err() {
            return Ok(Some(hour));
        }
        below = hour;
    }
}

/// Summarises every closed day and hour of a database made before the summaries, once.
pub(super) fn build_once(conn: &mut Connection) -> Result<(), StoreError> {
    let built: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM meta WHERE key = 'window_summaries_built')",
        [],
        |r| r.get(0),
    )?;
    if built {
        return Ok(());
    }
    let tx = conn.transaction()?;
    let hours: Vec<(i64, i64)> = {
        let mut stmt = tx.prepare(
            "SELECT series_id, window_start / 3600 * 3600 AS h FROM rollups
             GROUP BY series_id, h ORDER BY series_id, h",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect::<Result<_, _>>()?
    };
    for group in hours.chunk_by(|a, b| a.0 == b.0) {
        let series = group[0].0;
        // As if the hours arrived in order: each closes the one before.
        for pair in group.windows(2) {
            close_older(&tx, series, pair[0].1, pair[1].1)?;
        }
    }
    tx.execute(
        "INSERT INTO meta VALUES ('window_summaries_built', '1')",
        [],
    )?;
    tx.commit()?;
    Ok(())
}

/// Adds the summary rows of `series` in `[from, to)` of one table to `total`; returns
/// the start of the last row read, and the days whose sketch was of samples.
fn read_summaries(
    conn: &Connection,
    period: Period,
    series: i64,
    (from, to): (i64, i64),
    samples: bool,
    total: &mut Windows,
) -> Result<(Option<i64>, u32), StoreError> {
    let sql = match period {
        Period::Day => {
            "SELECT w.day_start, w.windows, w.covered_secs, w.received, w.expected,
                    w.first_start, w.last_end, w.peaks, d.sketch
             FROM window_days w LEFT JOIN daily d
                 ON ?4 AND d.series_id = w.series_id AND d.day_start = w.day_start
             WHERE w.series_id = ?1 AND w.day_start >= ?2 AND w.day_start < ?3
             ORDER BY w.day_start"
        }
        Period::Hour => {
            "SELECT hour_start, windows, covered_secs, received, expected, first_start,
                    last_end, peaks, NULL
             FROM window_hours WHERE series_id = ?1 AND hour_start >= ?2 AND hour_start < ?3
             ORDER BY hour_start"
        }
    };
    let mut stmt = conn.prepare_cached(sql)?;
    let mut rows = match period {
        Period::Day => stmt.query(params![series, from, to, samples])?,
        Period::Hour => stmt.query(params![series, from, to])?,
    };
    let (mut last, mut sample_days) = (None, 0u32);
    while let Some(row) = rows.next()? {
        let start: i64 = row.get(0)?;
        last = Some(start);
        total.count(
            row.get(1)?,
            row.get(2)?,
            row.get(3)?,
            row.get(4)?,
            row.get(5)?,
            row.get(6)?,
        );
        match row.get_ref(8)?.as_str_or_null()? {
            Some(text) => {
                let s: Sketch = serde_json::from_str(text).map_err(|e| {
                    StoreError::Other(format!("daily sketch of series {series}, day {start}: {e}"))
                })?;
                total.peaks.add_sketch(&s);
                sample_days += 1;
            }
            None => total
                .peaks
                .add_bytes(row.get_ref(7)?.as_blob()?)
                .ok_or_else(|| {
                    StoreError::Other(format!(
                        "window peaks of series {series} at {start} unreadable"
                    ))
                })?,
        }
    }
    Ok((last, sample_days))
}

/// One series over `[from_day, to)`: closed days, the open day's closed hours, the open
/// hour's windows.
fn series_usage(
    conn: &Connection,
    series: i64,
    (from_day, to): (i64, i64),
    samples: bool,
) -> Result<(Windows, u32), StoreError> {
    let mut total = Windows::default();
    let (last_day, sample_days) = read_summaries(
        conn,
        Period::Day,
        series,
        (from_day, to),
        samples,
        &mut total,
    )?;
    let days_to = match last_day {
        Some(day) => day + DAY_SECS,
        None => conn
            .prepare_cached("SELECT MAX(day_start) FROM window_days WHERE series_id = ?1")?
            .query_row(params![series], |r| r.get::<_, Option<i64>>(0))?
            .map_or(i64::MIN, |d| d + DAY_SECS),
    }
    .max(from_day);
    let (last_hour, _) =
        read_summaries(conn, Period::Hour, series, (days_to, to), false, &mut total)?;
    let open_from = last_hour.map_or(days_to, |h| h + HOUR_SECS);
    total.read(conn, series, open_from, to)?;
    Ok((total, sample_days))
}

/// VM series of the asked counters over the history, one at a time in (vCenter, VM)
/// order: summarised days (or, for `samples`, the daily sketch where the agent sent
/// one), the open day's summarised hours, then the open hour's windows.
pub(super) fn vm_usage(
    conn: &Connection,
    q: &UsageQuery<'_>,
    each: &mut dyn FnMut(SeriesUsage),
) -> Result<(), StoreError> {
    let mut series = conn.prepare(
        "SELECT id, vcenter, entity_id, counter, instance FROM series
         WHERE entity_type = 'VirtualMachine' AND counter IN (SELECT value FROM json_each(?1))
           AND (?2 IS NULL OR (vcenter = ?2 AND entity_id = ?3))
         ORDER BY vcenter, entity_id, counter, instance",
    )?;
    let counters =
        serde_json::to_string(q.counters).map_err(|e| StoreError::Other(e.to_string()))?;
    let mut rows = series.query(params![counters, q.vm.map(|v| v.0), q.vm.map(|v| v.1)])?;
    while let Some(r) = rows.next()? {
        let id: i64 = r.get(0)?;
        let (total, sample_days) = series_usage(conn, id, (day_of(q.from_s), q.to_s), q.samples)?;
        let Some(first_s) = total.first_start else {
            continue;
        };
        each(SeriesUsage {
            vcenter: r.get(1)?,
            vm_id: r.get(2)?,
            counter: r.get(3)?,
            instance: r.get(4)?,
            windows: total.windows,
            covered_secs: total.covered_secs,
            received: total.received,
            expected: total.expected,
            first_s,
            end_s: total.last_end,
            sketch: total.peaks.finish(),
            sample_days,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests;
