//! What each vscout process (the agent and the collector) needs to run unattended as a
//! service, kept apart from both so that neither pulls the other in.
//!
//! - [`exit`]: sysexits codes and command-line parsing that maps usage errors to 64.
//! - [`telemetry`]: logging set-up, error counts, this process's CPU time and peak RSS.
//! - [`notify`]: systemd's notify protocol (READY, WATCHDOG, STATUS, STOPPING).
//! - [`shutdown`]: SIGTERM / SIGINT as one future.
//! - [`fsio`]: small files written atomically with their final mode.
//! - [`thumbprint`]: certificate SHA-256 thumbprints as vCenter writes them.
#![forbid(unsafe_code)]

pub mod exit;
pub mod fsio;
pub mod notify;
pub mod shutdown;
pub mod telemetry;
pub mod thumbprint;

pub use shutdown::shutdown_signal;
