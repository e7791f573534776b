//! The performance records: one window of one series (`Rollup`), one day of one series
//! as a mergeable sketch (`DailySummary`), and the statistics they carry. What the agent
//! rolls up and the collector stores; their layout is versioned by `ROLLUP_SCHEMA_VERSION`.

use compact_str::CompactString;
use serde::{Deserialize, Serialize};

use crate::sketch::Sketch;

/// Version of the `Rollup` record layout.
pub const ROLLUP_SCHEMA_VERSION: u32 = 1;

/// What a series is, in words, borrowed from the record that carries it: a `Rollup`, a
/// `DailySummary` or a row of a `RollupSet` (its names shared). The collector numbers
/// series by these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SeriesLabels<'a> {
    pub vcenter: &'a str,
    pub entity_type: &'a str,
    pub entity_id: &'a str,
    pub counter: &'a str,
    pub instance: &'a str,
    pub unit: &'a str,
    pub stats_type: &'a str,
}

/// The `SeriesLabels` of a record that carries the seven label fields itself (`Rollup`,
/// `DailySummary`: their JSON keeps the fields flat, so they are fields, not a struct).
macro_rules! labels_of {
    ($r:expr) => {
        SeriesLabels {
            vcenter: &$r.vcenter,
            entity_type: &$r.entity_type,
            entity_id: &$r.entity_id,
            counter: &$r.counter,
            instance: &$r.instance,
            unit: &$r.unit,
            stats_type: &$r.stats_type,
        }
    };
}

/// Statistics of one window's samples.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct WindowStats {
    pub count: u32,
    pub min: f64,
    pub max: f64,
    pub mean: f64,
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
}

/// One rolled-up window of one series: the record the agent keeps and ships.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rollup {
    pub schema_version: u32,
    pub vcenter: CompactString,
    pub entity_type: CompactString,
    pub entity_id: CompactString,
    pub counter: CompactString,
    pub instance: CompactString,
    /// Unit after scaling (`percent` values are in percent, not hundredths).
    pub unit: CompactString,
    /// vCenter's statsType: `rate`, `absolute` or `delta`.
    pub stats_type: CompactString,
    /// Window start, Unix seconds (the window is `(start, start + window_secs]`).
    pub window_start: i64,
    pub window_secs: u32,
    /// Samples the window should hold (`window_secs / interval`), so completeness is known.
    pub expected_samples: u32,
    /// Samples vCenter reported as "no data" (-1), not counted in `stats`.
    pub missing_samples: u32,
    /// `None` when the window had no valid sample.
    pub stats: Option<WindowStats>,
}

impl Rollup {
    pub fn labels(&self) -> SeriesLabels<'_> {
        labels_of!(self)
    }

    /// A plausible 5-minute rollup of a VM's `counter` whose statistics are all derived
    /// from `value`: for tests and benchmarks (of this crate and the collector's).
    pub fn example(entity_id: &str, counter: &str, value: f64) -> Self {
        Self {
            schema_version: ROLLUP_SCHEMA_VERSION,
            vcenter: "vc".into(),
            entity_type: "VirtualMachine".into(),
            entity_id: entity_id.into(),
            counter: counter.into(),
            instance: "".into(),
            unit: "percent".into(),
            stats_type: "rate".into(),
            window_start: 1_700_000_100,
            window_secs: 300,
            expected_samples: 15,
            missing_samples: 0,
            stats: Some(WindowStats {
                count: 15,
                min: value * 0.37,
                max: value * 1.91,
                mean: value,
                p50: value * 0.97,
                p95: value * 1.77,
                p99: value * 1.89,
            }),
        }
    }
}

/// One day (UTC) of one series, as a mergeable sketch: thirty of them merged give a
/// month's percentiles without raw data (within `sketch::RELATIVE_ACCURACY`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DailySummary {
    pub schema_version: u32,
    pub vcenter: CompactString,
    pub entity_type: CompactString,
    pub entity_id: CompactString,
    pub counter: CompactString,
    pub instance: CompactString,
    pub unit: CompactString,
    /// vCenter's statsType: `rate`, `absolute` or `delta`.
    pub stats_type: CompactString,
    /// Day start, Unix seconds (the day is `(start, start + 86400]`).
    pub day_start: i64,
    /// Valid samples in the sketch, and how many the day should hold.
    pub samples: u64,
    pub expected_samples: u64,
    /// Read from the sketch, for convenience.
    pub p50: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
    pub max: Option<f64>,
    pub sketch: Sketch,
}

impl DailySummary {
    pub fn labels(&self) -> SeriesLabels<'_> {
        labels_of!(self)
    }
}
