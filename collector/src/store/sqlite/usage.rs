//! What the assessment reads, kept so that it reads little: per series and UTC day, the
//! day's windows summed up (`window_days`: windows, seconds covered, samples received and
//! expected, and a sketch of the windows' peaks), written when the day closes for that
//! series; and the read itself, whole summarised days plus the open day's windows.
//!
//! A day closes for a series when a window of a later day arrives (the agent drains
//! windows in order), so ingest summarises once per series and day, reading back that
//! day's 288 rows it has just written. A late window for a closed day summarises the day
//! again. Thirty days of 10,000 VMs are 30 rows per series instead of 8,640.

use std::collections::{HashMap, HashSet};

use rusqlite::{params, Connection, Transaction};
use vscout_wire::sketch::Sketch;

use crate::store::{SeriesUsage, StoreError, UsageQuery};

pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS window_days (
    series_id INTEGER NOT NULL, day_start INTEGER NOT NULL, windows INTEGER NOT NULL,
    covered_secs INTEGER NOT NULL, received INTEGER NOT NULL, expected INTEGER NOT NULL,
    first_start INTEGER NOT NULL, last_end INTEGER NOT NULL, peaks BLOB NOT NULL,
    PRIMARY KEY (series_id, day_start)) WITHOUT ROWID;
";

pub(super) const DAY_SECS: i64 = 86_400;

pub(super) fn day_of(window_start: i64) -> i64 {
    window_start.div_euclid(DAY_SECS) * DAY_SECS
}

/// The windows of some span summed up: what `window_days` holds per day and what the
/// open day adds at read time.
#[derive(Debug, Default, Clone, PartialEq)]
struct Windows {
    windows: u64,
    covered_secs: u64,
    received: u64,
    expected: u64,
    first_start: Option<i64>,
    last_end: i64,
    peaks: Sketch,
}

impl Windows {
    fn add(&mut self, start: i64, secs: i64, expected: i64, count: i64, max: Option<f64>) {
        self.windows += 1;
        self.covered_secs += secs.max(0) as u64;
        self.expected += expected.max(0) as u64;
        self.received += count.max(0) as u64;
        self.first_start = Some(self.first_start.map_or(start, |f| f.min(start)));
        self.last_end = self.last_end.max(start + secs);
        if let Some(m) = max {
            self.peaks.add(m);
        }
    }

    fn merge(&mut self, o: &Windows) {
        self.windows += o.windows;
        self.covered_secs += o.covered_secs;
        self.received += o.received;
        self.expected += o.expected;
        self.first_start = match (self.first_start, o.first_start) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.last_end = self.last_end.max(o.last_end);
        self.peaks.merge(&o.peaks);
    }

    /// Reads the windows of `series` starting in `[from, to)`.
    fn read(conn: &Connection, series: i64, from: i64, to: i64) -> Result<Self, StoreError> {
        let mut stmt = conn.prepare_cached(
            "SELECT window_start, window_secs, expected, count, max FROM rollups
             WHERE series_id = ?1 AND window_start >= ?2 AND window_start < ?3",
        )?;
        let mut rows = stmt.query(params![series, from, to])?;
        let mut w = Windows::default();
        while let Some(r) = rows.next()? {
            w.add(r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?);
        }
        Ok(w)
    }
}

/// Writes (or rewrites, or with no windows left deletes) the summary of one series' day.
fn summarise(tx: &Transaction<'_>, series: i64, day: i64) -> Result<(), StoreError> {
    let w = Windows::read(tx, series, day, day + DAY_SECS)?;
    let Some(first) = w.first_start else {
        tx.execute(
            "DELETE FROM window_days WHERE series_id = ?1 AND day_start = ?2",
            params![series, day],
        )?;
        return Ok(());
    };
    let mut stmt = tx.prepare_cached(
        "INSERT OR REPLACE INTO window_days VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?;
    stmt.execute(params![
        series,
        day,
        w.windows as i64,
        w.covered_secs as i64,
        w.received as i64,
        w.expected as i64,
        first,
        w.last_end,
        w.peaks.to_bytes()
    ])?;
    Ok(())
}

/// Per series, the latest day a window was stored for: the writer's memory of which days
/// are still open. Filled lazily (a series not seen since start is looked up once).
#[derive(Debug, Default)]
pub(super) struct OpenDays {
    latest: HashMap<i64, i64>,
}

impl OpenDays {
    /// Closes what the windows stored in this transaction (`touched`: series and day)
    /// closed, and returns the new latest days, to remember once the transaction commits.
    ///
    /// The invariant kept: every day of a series that has windows is summarised but its
    /// latest. So the days to summarise are the old latest day and each touched day, but
    /// the new latest.
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
            let days: Vec<i64> = group.iter().map(|t| t.1).collect();
            let mut latest = match self.latest.get(&series) {
                Some(l) => Some(*l),
                None => latest_before(tx, series, &days)?,
            };
            for &day in &days {
                match latest {
                    Some(l) if l < day => summarise(tx, series, l)?,
                    Some(l) if l > day => summarise(tx, series, day)?,
                    _ => {}
                }
                latest = Some(latest.map_or(day, |l| l.max(day)));
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

/// For a series the writer has not seen since it started: its latest day before this
/// transaction, the open one. The transaction's windows are already in the table, so
/// walk down from the latest day with windows past the days it touched (`touched`,
/// sorted): the first day left is the old latest (or, when that was touched too, a
/// summarised day, which summarising again leaves as it was).
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
        let Some(day) = last.map(day_of) else {
            return Ok(None);
        };
        if touched.binary_search(&day).is_err() {
            return Ok(Some(day));
        }
        below = day;
    }
}

/// Summarises every closed day of a database made before `window_days` existed, once.
pub(super) fn build_once(conn: &mut Connection) -> Result<(), StoreError> {
    let built: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM meta WHERE key = 'window_days_built')",
        [],
        |r| r.get(0),
    )?;
    if built {
        return Ok(());
    }
    let tx = conn.transaction()?;
    let days: Vec<(i64, i64)> = {
        let mut stmt = tx.prepare(
            "SELECT series_id, window_start / 86400 * 86400 AS d FROM rollups
             GROUP BY series_id, d ORDER BY series_id, d",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect::<Result<_, _>>()?
    };
    // Each series' last day stays open: its windows are read as they are.
    for (i, (series, day)) in days.iter().enumerate() {
        if days.get(i + 1).is_some_and(|(s, _)| s == series) {
            summarise(&tx, *series, *day)?;
        }
    }
    tx.execute("INSERT INTO meta VALUES ('window_days_built', '1')", [])?;
    tx.commit()?;
    Ok(())
}

/// One `window_days` row (joined with the day's daily sketch, when samples were asked
/// for): its day, its windows, and whether the sketch is of samples.
fn day_row(row: &rusqlite::Row<'_>, id: i64) -> Result<(i64, Windows, bool), StoreError> {
    let day: i64 = row.get(0)?;
    let sampled = match row.get_ref(8)?.as_str_or_null()? {
        Some(text) => Some(serde_json::from_str::<Sketch>(text).map_err(|e| {
            StoreError::Other(format!("daily sketch of series {id}, day {day}: {e}"))
        })?),
        None => None,
    };
    let from_samples = sampled.is_some();
    let peaks = match sampled {
        Some(s) => s,
        None => Sketch::from_bytes(row.get_ref(7)?.as_blob()?).ok_or_else(|| {
            StoreError::Other(format!("window peaks of series {id}, day {day} unreadable"))
        })?,
    };
    let w = Windows {
        windows: row.get::<_, i64>(1)? as u64,
        covered_secs: row.get::<_, i64>(2)? as u64,
        received: row.get::<_, i64>(3)? as u64,
        expected: row.get::<_, i64>(4)? as u64,
        first_start: Some(row.get(5)?),
        last_end: row.get(6)?,
        peaks,
    };
    Ok((day, w, from_samples))
}

/// VM series of the asked counters over the history, one at a time in (vCenter, VM)
/// order: summarised days from `window_days` (or, for `samples`, the daily sketch where
/// the agent sent one), then the windows after the last summarised day.
pub(super) fn vm_usage(
    conn: &Connection,
    q: &UsageQuery<'_>,
    each: &mut dyn FnMut(SeriesUsage),
) -> Result<(), StoreError> {
    let from_day = day_of(q.from_s);
    let mut series = conn.prepare(
        "SELECT id, vcenter, entity_id, counter, instance FROM series
         WHERE entity_type = 'VirtualMachine' AND counter IN (SELECT value FROM json_each(?1))
           AND (?2 IS NULL OR (vcenter = ?2 AND entity_id = ?3))
         ORDER BY vcenter, entity_id, counter, instance",
    )?;
    let counters =
        serde_json::to_string(q.counters).map_err(|e| StoreError::Other(e.to_string()))?;
    let mut rows = series.query(params![counters, q.vm.map(|v| v.0), q.vm.map(|v| v.1)])?;
    let mut days = conn.prepare_cached(
        "SELECT w.day_start, w.windows, w.covered_secs, w.received, w.expected, w.first_start,
                w.last_end, w.peaks, d.sketch
         FROM window_days w LEFT JOIN daily d
             ON ?4 AND d.series_id = w.series_id AND d.day_start = w.day_start
         WHERE w.series_id = ?1 AND w.day_start >= ?2 AND w.day_start < ?3
         ORDER BY w.day_start",
    )?;
    while let Some(r) = rows.next()? {
        let id: i64 = r.get(0)?;
        let mut total = Windows::default();
        let mut sample_days = 0u32;
        let mut last_day: Option<i64> = None;
        let mut d = days.query(params![id, from_day, q.to_s, q.samples])?;
        while let Some(row) = d.next()? {
            let (day, w, sampled) = day_row(row, id)?;
            last_day = Some(day);
            sample_days += u32::from(sampled);
            total.merge(&w);
        }
        let summarised_to = match last_day {
            Some(day) => day + DAY_SECS,
            None => conn
                .query_row(
                    "SELECT MAX(day_start) FROM window_days WHERE series_id = ?1",
                    params![id],
                    |r| r.get::<_, Option<i64>>(0),
                )?
                .map_or(i64::MIN, |d| d + DAY_SECS),
        };
        total.merge(&Windows::read(
            conn,
            id,
            summarised_to.max(from_day),
            q.to_s,
        )?);
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
            sketch: total.peaks,
            sample_days,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests;
