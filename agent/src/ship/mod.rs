//! Shipping: how collected records become batches in the buffer (`sink`), and how stored
//! batches reach the collector (`shipper`): HTTPS POST with rustls, a stable idempotency
//! key per record, retries with full-jitter backoff and no attempt limit, a dead-letter
//! directory for records the collector will never take, and a cursor that only moves
//! over a contiguous acknowledged prefix.
//!
//! **Invariant:** data leaves the buffer only through `Buffer::ack` (after the collector's
//! 2xx or a dead-letter write) or through cap eviction.

pub use vscout_wire::batch;
mod error;
mod shipper;
mod sink;

pub use batch::{AgentHealth, Batch, Record};
pub use error::ShipError;
pub use shipper::{backoff, ShipStats, Shipper};
pub use sink::{Batcher, Encoded, Sink};
