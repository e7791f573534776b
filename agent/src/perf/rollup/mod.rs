//! Window rollups: raw samples are held only until their window closes, then reduced to
//! count, min, max, mean and exact p50/p95/p99 per (entity, counter, instance).
//!
//! Percentiles are exact, by nearest rank over the window's samples: a 5-minute window
//! holds 15 real-time samples, so sorting them costs nothing and a sketch would only add
//! error. (Daily summaries across windows are where a mergeable sketch belongs.)
//!
//! A sample with timestamp `t` covers the interval that *ends* at `t` (vCenter's
//! convention), so it belongs to the window `(start, start + window]`.

use std::collections::{BTreeMap, HashMap};

use compact_str::CompactString;

use vscout_wire::rollup::{DailySummary, Rollup, WindowStats, ROLLUP_SCHEMA_VERSION};
use vscout_wire::sketch::Sketch;

use super::series::{CompactKey, SeriesTable, Slot};

mod samples;
use samples::Samples;

/// What a series is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeriesKey {
    pub entity_type: CompactString,
    pub entity_id: CompactString,
    /// `group.name.rollup`.
    pub counter: CompactString,
    /// Instance (`""` is the aggregate).
    pub instance: CompactString,
}

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

/// Instance names (`""`, `"*"`, `scsi0:0`, `4000` …), numbered: a few per estate, repeated
/// across thousands of entities.
#[derive(Debug, Default)]
pub(crate) struct Interner {
    index: HashMap<CompactString, u32>,
    names: Vec<CompactString>,
}

impl Interner {
    /// The number of `name`, if it has one.
    pub(crate) fn find(&self, name: &CompactString) -> Option<u32> {
        self.index.get(name).copied()
    }

    pub(crate) fn id(&mut self, name: &CompactString) -> u32 {
        if let Some(i) = self.index.get(name) {
            return *i;
        }
        let i = self.names.len() as u32;
        self.names.push(name.clone());
        self.index.insert(name.clone(), i);
        i
    }

    pub(crate) fn name(&self, id: u32) -> CompactString {
        self.names.get(id as usize).cloned().unwrap_or_default()
    }
}

/// What the numbers in a series' `Slot` stand for.
#[derive(Debug, Default)]
struct Names {
    /// (type, id) of each numbered entity.
    entity_names: HashMap<u32, (CompactString, CompactString)>,
    /// Counter names, numbered by position.
    counters: Vec<CompactString>,
    instances: Interner,
    /// (unit, statsType) pairs, numbered by position.
    units: Vec<(CompactString, CompactString)>,
}

/// A series' identity in words, as records carry it.
#[derive(Debug, Default)]
struct SeriesNames {
    entity_type: CompactString,
    entity_id: CompactString,
    counter: CompactString,
    instance: CompactString,
    unit: CompactString,
    stats_type: CompactString,
}

impl Names {
    fn describe(&self, slot: &Slot) -> SeriesNames {
        let key = slot.key();
        let (entity_type, entity_id) = self.entity_names.get(&key.0).cloned().unwrap_or_default();
        let (unit, stats_type) = self
            .units
            .get(usize::from(slot.unit))
            .cloned()
            .unwrap_or_default();
        SeriesNames {
            entity_type,
            entity_id,
            counter: self
                .counters
                .get(usize::from(key.1))
                .cloned()
                .unwrap_or_default(),
            instance: self.instances.name(key.2),
            unit,
            stats_type,
        }
    }
}

/// Collects samples into windows and hands out each window's rollups once it closes.
///
/// Memory is what bounds a 10,000-VM agent: entities and counters are numbered, each series
/// is a 20-byte slot stored once, and an open window is chunks of `(series id, raw value)`
/// pairs, 8 bytes a sample. When the window closes each chunk is sorted in place and the
/// chunks are merged series by series. Rollups come out in series-number order.
#[derive(Debug)]
pub struct Aggregator {
    vcenter: CompactString,
    window_ms: i64,
    series: SeriesTable,
    /// Entities by id (`vm-42`), numbered; and the numbers' (type, id).
    entity_index: HashMap<CompactString, u32>,
    next_entity: u32,
    names: Names,
    windows: BTreeMap<i64, Samples>,
    /// Counters that get daily summaries.
    daily_counters: Vec<CompactString>,
    /// Open days: day start (ms) → series id → sketch and max.
    days: BTreeMap<i64, HashMap<u32, (Sketch, f64)>>,
    /// Windows ending at or before this (Unix ms) were already rolled up and stored by an
    /// earlier run: their samples are ignored, so a restart never makes a window twice.
    floor_ms: i64,
    /// Per-series floors learnt before the series was seen (`seed_closed`: what an
    /// earlier run stored past its watermark), applied when the series first appears.
    pending_floors: HashMap<(CompactString, CompactString, CompactString), i64>,
    /// Samples that arrived for a window already rolled up for their series.
    late: u64,
}

impl Aggregator {
    pub fn new(vcenter: &str, window_secs: u32) -> Self {
        Self {
            vcenter: vcenter.into(),
            window_ms: i64::from(window_secs) * 1000,
            series: SeriesTable::default(),
            entity_index: HashMap::new(),
            next_entity: 0,
            names: Names::default(),
            windows: BTreeMap::new(),
            daily_counters: Vec::new(),
            days: BTreeMap::new(),
            floor_ms: i64::MIN,
            pending_floors: HashMap::new(),
            late: 0,
        }
    }

    /// Marks `(entity, counter, instance)` as rolled up until `until_ms` (Unix ms): its
    /// samples of windows ending then or before are late. For what an earlier run stored
    /// past its watermark (a crash between a window's batches).
    pub fn seed_closed(&mut self, key: &SeriesKey, until_ms: i64) {
        if let Some(&e) = self.entity_index.get(&key.entity_id) {
            let counter = self.names.counters.iter().position(|c| *c == key.counter);
            let instance = self.names.instances.find(&key.instance);
            if let (Some(c), Some(i)) = (counter, instance) {
                let compact: CompactKey = (e, u16::try_from(c).unwrap_or(u16::MAX), i);
                if let Some(slot) = self
                    .series
                    .id_of(&compact)
                    .and_then(|id| self.series.get_mut(id))
                {
                    slot.close_until(until_ms);
                    return;
                }
            }
        }
        let floor = self
            .pending_floors
            .entry((
                key.entity_id.clone(),
                key.counter.clone(),
                key.instance.clone(),
            ))
            .or_insert(i64::MIN);
        *floor = (*floor).max(until_ms);
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

    /// Adds one sample. `raw` is vCenter's integer value; -1 means "no data". Percent
    /// counters arrive in hundredths; they are scaled to percent when the window closes.
    pub fn add(&mut self, key: &SeriesKey, unit: &str, interval_secs: u32, ts_ms: i64, raw: i64) {
        self.add_typed(key, unit, "", interval_secs, ts_ms, raw);
    }

    /// As `add`, with the counter's statsType.
    pub fn add_typed(
        &mut self,
        key: &SeriesKey,
        unit: &str,
        stats_type: &str,
        interval_secs: u32,
        ts_ms: i64,
        raw: i64,
    ) {
        let start = self.window_of(ts_ms);
        if start.saturating_add(self.window_ms) <= self.floor_ms {
            return;
        }
        let entity = match self.entity_index.get(&key.entity_id) {
            Some(e) => *e,
            None => {
                let e = self.next_entity;
                self.next_entity = self.next_entity.wrapping_add(1);
                self.entity_index.insert(key.entity_id.clone(), e);
                self.names
                    .entity_names
                    .insert(e, (key.entity_type.clone(), key.entity_id.clone()));
                e
            }
        };
        let counter = match self.names.counters.iter().position(|c| *c == key.counter) {
            Some(c) => c,
            None => {
                self.names.counters.push(key.counter.clone());
                self.names.counters.len() - 1
            }
        };
        let instance = self.names.instances.id(&key.instance);
        let compact: CompactKey = (entity, u16::try_from(counter).unwrap_or(u16::MAX), instance);
        let end = start + self.window_ms;
        let id = match self.series.id_of(&compact) {
            Some(id) => {
                if self.series.get(id).is_some_and(|s| s.is_closed(end)) {
                    self.late += 1;
                    return;
                }
                id
            }
            None => {
                let unit_idx = match self
                    .names
                    .units
                    .iter()
                    .position(|(u, t)| u == unit && t == stats_type)
                {
                    Some(i) => i,
                    None => {
                        self.names.units.push((unit.into(), stats_type.into()));
                        self.names.units.len() - 1
                    }
                };
                let unit = u8::try_from(unit_idx).unwrap_or(u8::MAX);
                let id = self.series.insert(compact, unit, interval_secs);
                if !self.pending_floors.is_empty() {
                    let floor = self.pending_floors.remove(&(
                        key.entity_id.clone(),
                        key.counter.clone(),
                        key.instance.clone(),
                    ));
                    if let (Some(floor), Some(slot)) = (floor, self.series.get_mut(id)) {
                        slot.close_until(floor);
                        if slot.is_closed(end) {
                            self.late += 1;
                            return;
                        }
                    }
                }
                id
            }
        };
        self.windows.entry(start).or_default().push(id, raw);
    }

    /// Samples held (not yet rolled up).
    pub fn pending_samples(&self) -> usize {
        self.windows.values().map(|w| w.len).sum()
    }

    /// Series known (their keys are kept until `retain_entities` drops them).
    pub fn series_count(&self) -> usize {
        self.series.len()
    }

    /// Forgets the series of entities not in `entity_ids` (deleted or powered off), unless
    /// an open window still holds their samples: memory follows the estate.
    pub fn retain_entities(&mut self, entity_ids: &std::collections::HashSet<CompactString>) {
        let mut open: std::collections::HashSet<u32> =
            self.windows.values().flat_map(Samples::ids).collect();
        open.extend(self.days.values().flat_map(|d| d.keys().copied()));
        let names = &self.names.entity_names;
        self.series.retain(|id, slot| {
            open.contains(&id)
                || names
                    .get(&slot.key().0)
                    .is_some_and(|(_, e)| entity_ids.contains(e))
        });
        let used: std::collections::HashSet<u32> = self.series.keys().map(|k| k.0).collect();
        self.names.entity_names.retain(|e, _| used.contains(e));
        self.entity_index.retain(|_, e| used.contains(e));
    }

    /// Rolls up and forgets every window that ends at or before `closed_before_ms`.
    pub fn drain_closed(&mut self, closed_before_ms: i64) -> Vec<Rollup> {
        let mut out = Vec::new();
        self.drain_closed_with(closed_before_ms, |r| out.push(r));
        out
    }

    /// As `drain_closed`, handing each rollup to `each` as it is made (a 10,000-VM window
    /// has over 100,000 of them: the caller may write them out instead of collecting).
    pub fn drain_closed_with(&mut self, closed_before_ms: i64, mut each: impl FnMut(Rollup)) {
        while let Some((&start, _)) = self.windows.first_key_value() {
            if start + self.window_ms > closed_before_ms {
                break;
            }
            let Some((_, samples)) = self.windows.pop_first() else {
                break;
            };
            let end = start + self.window_ms;
            let window_secs = (self.window_ms / 1000) as u32;
            let mut values: Vec<f64> = Vec::with_capacity(32);
            samples.for_each_series(|id, group| {
                let Some(slot) = self.series.get_mut(id) else {
                    return;
                };
                // The window is rolled up for this series: what comes for it later is late.
                slot.close_until(end);
                let meta = *slot;
                let names = self.names.describe(&meta);
                // Percent counters arrive in hundredths of a percent.
                let scale = if names.unit == "percent" { 100.0 } else { 1.0 };
                values.clear();
                values.extend(
                    group
                        .iter()
                        .filter(|v| **v >= 0.0)
                        .map(|v| f64::from(*v) / scale),
                );
                let missing = (group.len() - values.len()) as u32;
                if self.daily_counters.contains(&names.counter) {
                    let day = (start + self.window_ms - 1).div_euclid(DAY_MS) * DAY_MS;
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
                each(Rollup {
                    schema_version: ROLLUP_SCHEMA_VERSION,
                    vcenter: self.vcenter.clone(),
                    entity_type: names.entity_type,
                    entity_id: names.entity_id,
                    counter: names.counter,
                    instance: names.instance,
                    unit: names.unit,
                    stats_type: names.stats_type,
                    window_start: start / 1000,
                    window_secs,
                    expected_samples: slots_in_window(
                        start / 1000,
                        window_secs,
                        meta.interval_secs,
                    ),
                    missing_samples: missing,
                    stats: stats(&mut values),
                });
            });
        }
    }
}

impl Aggregator {
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
            let mut out: Vec<(u32, Slot, Sketch, f64)> = series
                .into_iter()
                .filter_map(|(id, (sk, max))| self.series.get(id).map(|s| (id, *s, sk, max)))
                .collect();
            out.sort_by_key(|a| a.0);
            for (_, meta, sketch, max) in out {
                let names = self.names.describe(&meta);
                each(DailySummary {
                    schema_version: ROLLUP_SCHEMA_VERSION,
                    vcenter: self.vcenter.clone(),
                    entity_type: names.entity_type,
                    entity_id: names.entity_id,
                    counter: names.counter,
                    instance: names.instance,
                    unit: names.unit,
                    stats_type: names.stats_type,
                    day_start: day / 1000,
                    samples: sketch.count(),
                    expected_samples: 86_400 / u64::from(meta.interval_secs.max(1)),
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
