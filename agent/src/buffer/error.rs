//! The buffer boundary's error type: what went wrong with the queue on disk, and whether
//! waiting and trying again can help.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum BufferError {
    /// The filesystem is full: appending pauses and is retried; acknowledged data can
    /// still be deleted.
    #[error("buffer disk is full in {dir}: {reason}")]
    DiskFull { dir: PathBuf, reason: String },
    /// Any other I/O error on a buffer file.
    #[error("buffer i/o error on {path}: {reason}")]
    Io { path: PathBuf, reason: String },
    /// One record is larger than the buffer can ever hold.
    #[error("record of {bytes} bytes is larger than the buffer accepts ({limit} bytes)")]
    TooLarge { bytes: u64, limit: u64 },
    /// Sequence numbers are never reused (they are idempotency keys at the collector), so
    /// a buffer that has used them all stops accepting records.
    #[error("buffer sequence numbers are exhausted (next would be {next})")]
    SequenceExhausted { next: u64 },
}

impl BufferError {
    pub(crate) fn io(path: &std::path::Path, e: &std::io::Error) -> Self {
        if e.raw_os_error() == Some(28) || e.kind() == std::io::ErrorKind::StorageFull {
            // ENOSPC
            Self::DiskFull {
                dir: path.parent().unwrap_or(path).to_owned(),
                reason: e.to_string(),
            }
        } else {
            Self::Io {
                path: path.to_owned(),
                reason: e.to_string(),
            }
        }
    }

    /// Whether the same operation may succeed later without an operator.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::DiskFull { .. } | Self::Io { .. })
    }
}
