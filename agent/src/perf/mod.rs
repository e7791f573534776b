//! Performance collection: real-time counters of VMs and hosts, polled with high-water
//! marks so that every 20-second sample is taken exactly once, and rolled up per window.
//!
//! - `catalog`: the configured counters, resolved by name against each vCenter's catalog.
//! - `poller`: one poll (targets, time range, batching, halving).
//! - `series`: the series table: each (entity, counter, instance) numbered once, when the
//!   poller first sees it; the number is its identity from the poll to the rollup set.
//! - `take`: which samples of an answer are new (per-series high-water marks on vCenter's
//!   grid): no I/O, tested on synthetic answers.
//! - `rollup`: windows and their exact statistics, drained as the wire's rollup sets.
//! - `once`: `vscout perf --once`.
//! - `sketch`: the mergeable quantile sketch of daily summaries (`vscout_wire`'s).

mod catalog;
mod once;
mod poller;
pub mod rollup;
pub mod series;
mod take;
pub use vscout_wire::sketch;
pub mod watermark;

pub use catalog::{resolve, Counter, Resolved};
pub use once::{last_window, RollupWriter};
pub use poller::{vcenter_now_ms, PollReport, Poller, REALTIME_SECS};
pub use rollup::Aggregator;
pub use series::{SeriesId, SeriesKey, SeriesTable};
pub use take::{grid_slot, SampleSink};
pub use vscout_wire::rollup::{DailySummary, Rollup, WindowStats, ROLLUP_SCHEMA_VERSION};
