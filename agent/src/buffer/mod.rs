//! The durable local queue between collection and shipping: the only code that writes it.
//!
//! # Design
//! Records (each a compressed batch, see `ship::batch`) are appended to segment files in
//! one directory (`<state_dir>/buffer`). A record is *stored* only once it is fsynced:
//! appends are group-committed (one fsync every `commit_interval`, default ≤ 500 ms, or
//! after every append with `fsync = "always"`), and only stored records are handed to
//! the shipper. Records leave the queue in two ways only: acknowledgement by the
//! collector, or eviction of the oldest segment when the byte cap is reached (counted and
//! logged). Sequence numbers start at 1, grow by one per record, and are never reused:
//! they are the idempotency keys the collector deduplicates on.
//!
//! # Files (format version 1)
//! - `NNNNNNNNNNNNNNNNNNNN.seg` (20 digits: the segment's first sequence number):
//!   a 16-byte header — `VSCOUTSG`, `u32` version, CRC32C of those 12 bytes — then
//!   records, each `u32 len | u64 seq | payload[len] | u32 crc32c(len, seq, payload) |
//!   u32 len`, little-endian. The repeated length lets a reader tell a torn tail from a
//!   damaged record. Sequences inside a segment are consecutive.
//! - `cursor`: `VSCOUTCR | u64 acknowledged seq | CRC32C`, replaced atomically (written to
//!   `cursor.tmp`, fsynced, renamed, directory fsynced).
//! - `*.corrupt`: quarantined segments, kept for inspection, evicted first when full.
//! - Anything else is ignored.
//!
//! The directory is fsynced after every create, rename and unlink that matters.
//!
//! # Recovery (`Buffer::open`)
//! Never refuses to start, never hangs: a zero-length segment or one with a torn header
//! is removed; a segment with a bad header is renamed `*.corrupt`; a torn tail (a record
//! that runs past the end of the file, or zeros to the end) is truncated; a record whose
//! framing is intact but whose CRC is not is skipped and counted; a damaged framing ends
//! that segment's readable data (counted); a missing segment is a gap, counted; an
//! unreadable cursor means everything still on disk is sent again (the collector drops
//! what it already has). Appending always starts a new segment after a restart, so no
//! file that was being written when the process died is appended to.
//!
//! # Invariants
//! - Appends go to the newest segment only; segments are never rewritten.
//! - The cursor only moves forward. A segment is deleted only when every record in it is
//!   acknowledged, or by eviction.
//! - The byte cap counts everything in the directory: segments, quarantined files, cursor.

mod error;
mod format;
pub mod fs;
mod handle;
mod queue;
mod recover;
#[cfg(test)]
mod simfs;
#[cfg(test)]
mod tests;

pub use error::BufferError;
pub use format::{MAX_PAYLOAD, RECORD_OVERHEAD, SEGMENT_HEADER_LEN};
pub use handle::{group_commit, BufferHandle, Snapshot};
pub use queue::{Buffer, BufferOptions, Record, Stats};
