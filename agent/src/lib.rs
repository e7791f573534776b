//! vscout: an on-premises discovery agent for VMware estates.
//!
//! # Layout
//! - [`config`]: the configuration file, read and validated once at start-up.
//! - [`vsphere`]: the only code that speaks SOAP to vCenter (sessions, views, paging).
//! - [`inventory`]: what the estate holds (VMs, hosts, clusters, datastores, networks),
//!   collected through `vsphere` and written as JSON or CSV.
//! - [`perf`]: real-time performance counters, polled exactly once per sample and rolled
//!   up per window.
//! - [`appliance`]: the appliance VM's first boot (OVF environment → configuration).
//! - [`buffer`]: the durable on-disk queue between collection and shipping.
//! - [`ship`]: batches of records into the buffer, and from the buffer to the collector.
//! - [`identity`]: the agent's UUID, kept in the state directory.
//! - [`status`]: what the running agent is doing, shared by its tasks.
//! - [`metrics`]: `/metrics`, `/healthz` and `/status` on a local address.
//! - [`check`]: `vscout check`, connectivity and prerequisite checks.
//! - [`commands`]: the one-off commands (`inventory`, `perf --once`, `status`, `firstboot`)
//!   and the SIGHUP reload.
//! - [`daemon`]: `vscout run`, the long-running loop and its shutdown.
//! - [`tls`]: rustls client trust (chain, pinned thumbprint, insecure) and client certificates,
//!   for vCenter and the collector alike.
//!
//! The records and the batch format are `vscout_wire`'s (re-exported by `inventory`, `perf`
//! and `ship`); exit codes, logging, sd_notify, the shutdown signal and atomic writes are
//! `vscout_service`'s (re-exported here as `exit`, `telemetry`, `notify` and `fsio`).
#![forbid(unsafe_code)]

pub mod appliance;
pub mod buffer;
pub mod check;
pub mod commands;
pub mod config;
pub mod daemon;
pub mod identity;
pub mod inventory;
pub mod metrics;
pub mod perf;
pub mod ship;
pub mod status;
pub mod tls;
pub mod vsphere;

// Shared with the collector, kept at their old paths.
pub use vscout_service::{exit, fsio, notify, telemetry};

/// The agent's version, as `vscout --version` prints it.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
