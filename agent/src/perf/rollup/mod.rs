//! Window rollups: raw samples are held only until their window closes, then reduced to
//! count, min, max, mean and exact p50/p95/p99 per (entity, counter, instance).
//!
//! Percentiles are exact, by nearest rank over the window's samples: a 5-minute window
//! holds 15 real-time samples, so sorting them costs nothing and a sketch would only add
//! error. (Daily summaries across windows are where a mergeable sketch belongs.)
//!
//! A sample with timestamp `t` covers the interval that *ends* at `t` (vCenter's
//! convention), so it belongs to the window `(start, start + window]`.

use std::collections::{BTreeMap, HashMap, HashSet};

use compact_str::CompactString;

use vscout_wire::batch::{RollupSet, WindowFigures, ROLLUPS_PER_BATCH};
use vscout_wire::rollup::{DailySummary, Rollup, WindowStats, ROLLUP_SCHEMA_VERSION};
use vscout_wire::sketch::Sketch;

use super::series::{SeriesId, SeriesKey, SeriesTable};
use super::take::SampleSink;
use crate::vsphere::MoRef;

mod emit;
mod samples;
use emit::SetEmitter;
use samples::Samples;

const DAY_MS: i64 = 86_400_000;

/// How many slots of an `interval_secs` grid the window `(start, start + window_secs]`
/// holds: the most samples it can have. `window_secs / interval` when the interval divides
/// the window (15 real-time samples in 5 minutes); for 5-minute data in shorter windows,
/// 1 for the window that holds a 5-minute boundary and 0 for the others.
pub fn slots_in_window(window_start_secs: i64, window_secs: u32, interval_secs: u32) -> u32 {
    let i = i64::from(interval_secs.max(1));
    let end = window_start_secs + i64::from(window_secs);
    (end.div_euclid(i) - window_start_secs.div_euclid(i)) as u32
}

/// Exact statistics of `values` (any order); `None` for no values.
pub fn stats(values: &mut [f64]) -> Option<WindowStats> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    let sum: f64 = values.iter().sum();
    Some(WindowStats {
        count: n as u32,
        min: values[0],
        max: values[n - 1],
        mean: sum / n as f64,
        p50: nearest_rank(values, 50.0),
        p95: nearest_rank(values, 95.0),
        p99: nearest_rank(values, 99.0),
    })
}

/// The nearest-rank percentile of sorted values: the smallest value such that at least
/// `p` percent of the values are at or below it.
fn nearest_rank(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Collects samples into windows and hands out each window's rollups once it closes.
///
/// Memory is what bounds a 10,000-VM agent: each series is a 32-byte slot of the series
/// table, numbered once by the poller, and an open window is chunks of `(series id, raw
/// value)` pairs, 8 bytes a sample. When the window closes each chunk is sorted in place
/// and the chunks are merged series by series. Rollups come out in series-number order,
/// as rollup sets of the wire.
#[derive(Debug)]
pub struct Aggregator {
    vcenter: CompactString,
    window_ms: i64,
    series: SeriesTable,
    windows: BTreeMap<i64, Samples>,
    /// Counters that get daily summaries.
    daily_counters: Vec<CompactString>,
    /// Open days: day start (ms) → series id → sketch and max.
    days: BTreeMap<i64, HashMap<SeriesId, (Sketch, f64)>>,
    /// Windows ending at or before this (Unix ms) were already rolled up and stored by an
    /// earlier run: their samples are ignored, so a restart never makes a window twice.
    floor_ms: i64,
    /// Samples that arrived for a window already rolled up for their series.
    late: u64,
}

impl SampleSink for Aggregator {
    fn series(&mut self) -> &mut SeriesTable {
        &mut self.series
    }

    fn sample(&mut self, id: SeriesId, slot_ms: i64, raw: i64) {
        let start = self.window_of(slot_ms);
        let end = start.saturating_add(self.window_ms);
        if end <= self.floor_ms {
            return;
        }
        if self.series.get(id).is_none_or(|s| s.is_closed(end)) {
            self.late += 1;
            return;
        }
        self.windows.entry(start).or_default().push(id, raw);
    }
}

impl Aggregator {
    pub fn new(vcenter: &str, window_secs: u32) -> Self {
        Self {
            vcenter: vcenter.into(),
            window_ms: i64::from(window_secs) * 1000,
            series: SeriesTable::default(),
            windows: BTreeMap::new(),
            daily_counters: Vec::new(),
            days: BTreeMap::new(),
            floor_ms: i64::MIN,
            late: 0,
        }
    }

    /// Marks `(entity, counter, instance)` as rolled up until `until_ms` (Unix ms): its
    /// samples of windows ending then or before are late. For what an earlier run stored
    /// past its watermark (a crash between a window's batches).
    pub fn seed_closed(&mut self, key: &SeriesKey, until_ms: i64) {
        self.series.seed_closed(key, until_ms);
    }

    /// Samples dropped since the last call because their series' window was already
    /// rolled up (late data after a failed request, or an overlap after a restart).
    pub fn take_late(&mut self) -> u64 {
        std::mem::take(&mut self.late)
    }

    /// Ignores samples of windows that end at or before `closed_ms` (already stored).
    pub fn resume_after(&mut self, closed_ms: i64) {
        self.floor_ms = closed_ms;
    }

    /// Also keeps daily sketches of these counters (by name).
    pub fn with_daily(mut self, counters: &[String]) -> Self {
        self.daily_counters = counters
            .iter()
            .map(|c| CompactString::from(c.as_str()))
            .collect();
        self
    }

    /// Start (Unix ms) of the window a sample at `ts_ms` belongs to.
    pub fn window_of(&self, ts_ms: i64) -> i64 {
        (ts_ms - 1).div_euclid(self.window_ms) * self.window_ms
    }

    /// Adds one sample of a series named in words (tools and tests without a poller; the
    /// poller numbers series itself). `raw` is vCenter's integer value; -1 means "no
    /// data". Percent counters arrive in hundredths; they are scaled when the window
    /// closes.
    pub fn add(&mut self, key: &SeriesKey, unit: &str, interval_secs: u32, ts_ms: i64, raw: i64) {
        let e = self.series.entity(&MoRef::new(
            key.entity_type.as_str(),
            key.entity_id.as_str(),
        ));
        let labels = self.series.counter_labels(&key.counter, unit, "");
        let id = self
            .series
            .series_with(e, labels, &key.instance, interval_secs);
        self.sample(id, ts_ms, raw);
    }

    /// Samples held (not yet rolled up).
    pub fn pending_samples(&self) -> usize {
        self.windows.values().map(|w| w.len).sum()
    }

    /// Series known (until `retain` drops them).
    pub fn series_count(&self) -> usize {
        self.series.len()
    }

    /// Forgets the series of entities not in `targets` (deleted or powered off), unless
    /// an open window or day still holds their samples: memory follows the estate.
    pub fn retain(&mut self, targets: &[MoRef]) {
        let mut open: HashSet<SeriesId> = self.windows.values().flat_map(Samples::ids).collect();
        open.extend(self.days.values().flat_map(|d| d.keys().copied()));
        self.series.retain(targets, |id| open.contains(&id));
    }

    /// Rolls up and forgets every window that ends at or before `closed_before_ms`, as
    /// `Rollup`s (for `perf --once` and tests; the agent ships sets).
    pub fn drain_closed(&mut self, closed_before_ms: i64) -> Vec<Rollup> {
        let mut out = Vec::new();
        self.drain_closed_with(closed_before_ms, |set| {
            out.extend(set.views().map(|v| v.to_rollup()));
        });
        out
    }

    /// Rolls up and forgets every window that ends at or before `closed_before_ms`,
    /// handing the rollups to `each` as sets of at most `ROLLUPS_PER_BATCH` (a
    /// 10,000-VM window has over 100,000 of them: no more than a set is held).
    pub fn drain_closed_with(&mut self, closed_before_ms: i64, mut each: impl FnMut(RollupSet)) {
        let mut sets = SetEmitter::new(&self.vcenter, ROLLUPS_PER_BATCH);
        let percent = self.series.find_label("percent");
        let daily: Vec<u32> = self
            .daily_counters
            .iter()
            .filter_map(|c| self.series.find_label(c))
            .collect();
        let window_secs = (self.window_ms / 1000) as u32;
        let mut values: Vec<f64> = Vec::with_capacity(32);
        while let Some((&start, _)) = self.windows.first_key_value() {
            let end = start + self.window_ms;
            if end > closed_before_ms {
                break;
            }
            let Some((_, samples)) = self.windows.pop_first() else {
                break;
            };
            samples.for_each_series(|id, group| {
                let Some(slot) = self.series.get_mut(id) else {
                    return;
                };
                // The window is rolled up for this series: what comes for it later is late.
                slot.close_until(end);
                let slot = *slot;
                // Percent counters arrive in hundredths of a percent.
                let scale = if Some(slot.unit) == percent {
                    100.0
                } else {
                    1.0
                };
                values.clear();
                values.extend(
                    group
                        .iter()
                        .filter(|v| **v >= 0.0)
                        .map(|v| f64::from(*v) / scale),
                );
                if daily.contains(&slot.counter) {
                    let day = (end - 1).div_euclid(DAY_MS) * DAY_MS;
                    let (sketch, max) = self
                        .days
                        .entry(day)
                        .or_default()
                        .entry(id)
                        .or_insert((Sketch::default(), f64::MIN));
                    for v in &values {
                        sketch.add(*v);
                        *max = max.max(*v);
                    }
                }
                let row = WindowFigures {
                    window_start: start / 1000,
                    window_secs,
                    expected_samples: slots_in_window(
                        start / 1000,
                        window_secs,
                        slot.interval_secs,
                    ),
                    missing_samples: (group.len() - values.len()) as u32,
                    stats: stats(&mut values),
                };
                sets.push(&self.series, &slot, row, &mut each);
            });
        }
        sets.flush(&mut each);
    }

    /// Daily summaries of every day that ends at or before `closed_before_ms` (call after
    /// `drain_closed_with` for the same time, so that the day's windows are all in).
    pub fn drain_closed_days_with(
        &mut self,
        closed_before_ms: i64,
        mut each: impl FnMut(DailySummary),
    ) {
        while let Some((&day, _)) = self.days.first_key_value() {
            if day + DAY_MS > closed_before_ms {
                break;
            }
            let Some((_, series)) = self.days.pop_first() else {
                break;
            };
            let mut out: Vec<(SeriesId, Sketch, f64)> = series
                .into_iter()
                .map(|(id, (sketch, max))| (id, sketch, max))
                .collect();
            out.sort_by_key(|a| a.0);
            for (id, sketch, max) in out {
                let Some(slot) = self.series.get(id) else {
                    continue;
                };
                let Some((moref, _)) = self.series.entity_of(slot.entity) else {
                    continue;
                };
                let label = |n: u32| self.series.label(n).clone();
                each(DailySummary {
                    schema_version: ROLLUP_SCHEMA_VERSION,
                    vcenter: self.vcenter.clone(),
                    entity_type: moref.kind.clone(),
                    entity_id: moref.value.clone(),
                    counter: label(slot.counter),
                    instance: label(slot.instance),
                    unit: label(slot.unit),
                    stats_type: label(slot.stats_type),
                    day_start: day / 1000,
                    samples: sketch.count(),
                    expected_samples: 86_400 / u64::from(slot.interval_secs.max(1)),
                    p50: sketch.quantile(0.50),
                    p95: sketch.quantile(0.95),
                    p99: sketch.quantile(0.99),
                    max: (sketch.count() > 0).then_some(max),
                    sketch,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests;
