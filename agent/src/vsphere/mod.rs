//! The vSphere client: the only code in vscout that speaks SOAP to vCenter.
//!
//! - `transport`: HTTP over reqwest + rustls, body caps, streaming.
//! - `tls`: trust policies and the thumbprint shown when trust fails.
//! - `envelope`: request bodies.
//! - `xml`: streaming response parsing into small `Node` trees.
//! - `fault`: SOAP faults to typed errors.
//! - `client`: sessions (login, re-login, keepalive, logout), views and paged
//!   property retrieval.

mod client;
pub use vscout_wire::datetime;
mod envelope;
mod error;
mod fault;
mod objects;
mod perf;
mod retrieve;
mod transport;
pub mod xml;

pub use crate::tls::format_thumbprint;
pub use client::{About, Client, ServiceContent};
pub use envelope::{Objects, PropertySpec};
pub use error::{TimeoutKind, VsphereError};
pub use objects::{MoRef, ObjectContent};
pub use perf::{MetricId, PerfCounterInfo, PerfEntityMetric, PerfQuery, PerfSeries};
pub use retrieve::{CollectAll, ObjectSink, RetrieveStats};
pub use xml::Node;

/// Parses a captured RetrievePropertiesEx answer from memory, as the streaming path does
/// (values of a type in `prune` skipped); for benchmarks and fuzzing. Returns the
/// continuation token, if any.
pub fn parse_retrieve_response(
    body: &[u8],
    prune: &[&str],
    sink: impl ObjectSink,
) -> Result<Option<String>, VsphereError> {
    retrieve::parse_page(body, "RetrievePropertiesEx", prune, sink)
}
