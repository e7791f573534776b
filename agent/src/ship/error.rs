//! The shipping boundary's error type: why a request to the collector failed, and what
//! that means for the record (try again later, or move it aside for good).

use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ShipError {
    /// No answer: connection refused or reset, TLS failure, timeout.
    #[error("cannot reach the collector at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    /// 408, 429 or 5xx: the collector is busy or broken; try again.
    #[error("collector answered {status}: {message}")]
    Busy {
        status: u16,
        message: String,
        retry_after: Option<Duration>,
    },
    /// 401 or 403: the collector does not accept this agent's credentials. Retried
    /// (slowly): the data is fine, the token or certificate needs an operator.
    #[error("collector refused this agent's credentials ({status}): {message}")]
    Unauthorized { status: u16, message: String },
    /// Any other 4xx: the collector will never accept this record; it goes to the
    /// dead-letter directory.
    #[error("collector rejected the record ({status}): {message}")]
    Rejected { status: u16, message: String },
    /// The shipper could not be set up (TLS files, client).
    #[error("cannot set up shipping to the collector: {0}")]
    Setup(String),
}

impl ShipError {
    /// Whether the same record should be sent again.
    pub fn is_retryable(&self) -> bool {
        !matches!(self, Self::Rejected { .. } | Self::Setup(_))
    }

    /// The collector's `Retry-After`, if it gave one.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Busy { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}
