//! Retention (`[retention]`) and packing: 5-minute windows are kept `windows_days` whole
//! UTC days, then their hours summed up, the day summaries the assessment reads and the
//! agents' daily sketches `summaries_days`; older rows are deleted in the background, a
//! few hundred series per transaction so that ingest waits at most one short step. The
//! same pass packs each series' closed days (rows into one compressed row a day). What
//! went is counted (rows and the bytes SQLite freed, which it reuses: the file stops
//! growing at the horizon).

use crate::store::{day_of, DAY_SECS};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use super::{Storage, StoreError};

/// How long what is stored is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Whole UTC days of 5-minute windows (rollups) kept before today.
    pub windows_days: u32,
    /// Whole UTC days of hourly and day summaries and daily sketches kept before today.
    pub summaries_days: u32,
    /// How often a prune pass runs.
    pub interval: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            windows_days: 35,
            summaries_days: 400,
            interval: Duration::from_secs(3600),
        }
    }
}

impl Retention {
    /// The first window start kept at `now_s`: a UTC day start, so a day is kept or
    /// deleted whole.
    pub fn windows_from(&self, now_s: i64) -> i64 {
        day_of(now_s) - i64::from(self.windows_days) * DAY_SECS
    }

    /// The first day of summaries and sketches kept at `now_s`.
    pub fn summaries_from(&self, now_s: i64) -> i64 {
        day_of(now_s) - i64::from(self.summaries_days) * DAY_SECS
    }
}

/// Rows deleted and bytes freed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pruned {
    pub rollups: u64,
    /// Day summaries (`window_days`).
    pub summaries: u64,
    /// The agents' daily sketches (`daily`).
    pub sketches: u64,
    /// Pages the deletes freed, in bytes.
    pub bytes: u64,
    /// Hourly summaries (`rollup_hours`) past `summaries_days`.
    #[serde(default)]
    pub hours: u64,
    /// Windows that arrived older than the windows kept, refused at ingest (an agent
    /// back after an outage longer than `windows_days`; its daily sketches still count).
    #[serde(default)]
    pub refused_windows: u64,
    /// Days of a series whose windows were packed (closed days: rows into one packed
    /// row each; not deleted, counted to show the pass working).
    #[serde(default)]
    pub packed_days: u64,
    /// Batch keys (agent, sequence) older than `windows_days`, forgotten: the table of
    /// keys stops growing; a batch resent after that is still a duplicate (an agent's
    /// sequences below the highest one forgotten are).
    #[serde(default)]
    pub batch_keys: u64,
}

impl Pruned {
    pub fn add(&mut self, o: &Pruned) {
        self.rollups += o.rollups;
        self.summaries += o.summaries;
        self.sketches += o.sketches;
        self.bytes += o.bytes;
        self.hours += o.hours;
        self.refused_windows += o.refused_windows;
        self.packed_days += o.packed_days;
        self.batch_keys += o.batch_keys;
    }
}

/// What one step did, and the series to go on after (`None`: the pass is done).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PruneStep {
    pub pruned: Pruned,
    pub next: Option<i64>,
}

/// Series per step: a step of 200 series packs a day of 57,600 windows and deletes at
/// most a few hundred thousand rows, so ingest waits a few hundred milliseconds at most.
pub const STEP_SERIES: usize = 200;

/// One whole pass as of `now_s`, step after step.
pub fn prune_pass(store: &dyn Storage, r: &Retention, now_s: i64) -> Result<Pruned, StoreError> {
    let mut total = Pruned::default();
    let mut after = 0;
    loop {
        let step = store.prune_step(now_s, r, after, STEP_SERIES)?;
        total.add(&step.pruned);
        match step.next {
            Some(n) => after = n,
            None => return Ok(total),
        }
    }
}

/// Prunes at start and every `r.interval`, on blocking threads, until the task is
/// dropped; a failed pass is logged and tried again at the next interval.
pub async fn run(store: Arc<dyn Storage>, r: Retention) {
    loop {
        let now_s = vscout_service::telemetry::unix_now_ms() / 1000;
        let s = store.clone();
        match tokio::task::spawn_blocking(move || prune_pass(s.as_ref(), &r, now_s)).await {
            Ok(Ok(p)) if p != Pruned::default() => info!(
                rollups = p.rollups,
                summaries = p.summaries,
                sketches = p.sketches,
                bytes = p.bytes,
                packed_days = p.packed_days,
                batch_keys = p.batch_keys,
                "retention pruned"
            ),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                warn!(error = %e, "retention pass failed; trying again at the next interval")
            }
            Err(e) => warn!(error = %e, "retention pass stopped"),
        }
        tokio::time::sleep(r.interval).await;
    }
}
