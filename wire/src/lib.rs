//! vscout's wire format: the records the agent collects and the collector stores, and the
//! batch that carries them (versioned JSON, zstd-compressed), shared by both sides so that
//! the collector does not depend on the agent.
//!
//! - [`batch`]: the batch document, its compact rollup sets, encoding and capped decoding.
//! - [`rollup`]: `Rollup` (one window of one series) and `DailySummary` (one day, as a
//!   sketch).
//! - [`sketch`]: the mergeable quantile sketch of daily summaries.
//! - [`inventory`]: an estate's VMs, hosts, clusters, datastores and networks.
//! - [`names`]: strings numbered in order of first use (a rollup set's names).
//! - [`datetime`]: `xsd:dateTime` text to and from Unix time.
#![forbid(unsafe_code)]

pub mod batch;
pub mod datetime;
pub mod inventory;
pub mod names;
pub mod rollup;
pub mod sketch;
