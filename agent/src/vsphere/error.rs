//! The vSphere boundary's error type. Each variant says what failed with the values an
//! operator needs (URL, user, fault type, thumbprint), and whether trying again later can
//! help (`is_retryable`). Secrets are never part of an error.

/// Which of the transport's deadlines fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeoutKind {
    /// TCP connect and TLS handshake.
    Connect,
    /// The whole request, from sending it to the end of the answer.
    Request,
}

impl TimeoutKind {
    fn explain(self) -> &'static str {
        match self {
            Self::Connect => "no TCP connection or TLS handshake completed in time (the server accepts but does not answer, or a firewall drops the traffic); the connect timeout is half of vcenter.request_timeout_secs, at most 30 s",
            Self::Request => "connected, but the answer did not complete in time (vcenter.request_timeout_secs; raise it for a slow vCenter)",
        }
    }
}

/// `30 s`, `0.5 s`.
fn seconds(d: std::time::Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

impl std::fmt::Display for TimeoutKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Connect => "connect",
            Self::Request => "request",
        })
    }
}

/// Why a call to vCenter failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum VsphereError {
    /// No TCP/TLS connection could be made (refused, unreachable, DNS).
    #[error("cannot connect to {url}: {reason}")]
    Connect { url: String, reason: String },
    /// A deadline fired: the connect timeout (no TCP connection or TLS handshake in
    /// time: a hung or filtered server) or the request timeout (connected, but the
    /// answer did not complete). The message names which, its value and its setting.
    #[error("{method} to {url}: the {which} timeout of {} fired: {}", seconds(*after), which.explain())]
    Timeout {
        method: &'static str,
        url: String,
        which: TimeoutKind,
        /// The timeout's value (zero until the client fills it in).
        after: std::time::Duration,
    },
    /// The server's certificate is not trusted under the configured TLS policy.
    #[error(
        "tls verification failed for {url}: {reason}; the server presented a certificate with SHA-256 thumbprint {thumbprint}. \
         If that is vCenter's certificate (check it out of band), pin it with tls.thumbprint_sha256 = \"{thumbprint}\", or set tls.ca_file to the CA that signed it"
    )]
    TlsUntrusted {
        url: String,
        thumbprint: String,
        reason: String,
    },
    /// The HTTP answer was not a SOAP answer (a proxy error page, 404, 503 …).
    #[error("{method} to {url}: HTTP {status}: {excerpt}")]
    Http {
        method: &'static str,
        url: String,
        status: u16,
        excerpt: String,
    },
    /// vCenter refused the user name or password.
    #[error("login to {url} as {user:?} was refused (InvalidLogin): check the user name and password file")]
    InvalidLogin { url: String, user: String },
    /// The session is not (or no longer) valid. (Which vCenter is the caller's to say: the
    /// parser that meets the fault does not know.)
    #[error("{method}: the session is not authenticated (expired, or ended by vCenter)")]
    NotAuthenticated { method: &'static str },
    /// vCenter answered with a SOAP fault.
    #[error("{method} failed with fault {fault_type}: {message}")]
    Fault {
        method: &'static str,
        fault_type: String,
        message: String,
    },
    /// The answer exceeded `max_response_mib`.
    #[error("{method}: response larger than the limit of {limit_bytes} bytes (raise vcenter.max_response_mib if this is expected)")]
    ResponseTooLarge {
        method: &'static str,
        limit_bytes: u64,
    },
    /// Answers held at once (over all calls in flight) would exceed the transport's
    /// memory budget: transient, the other answers are being parsed.
    #[error("{method}: answers in flight exceed the memory budget of {budget_bytes} bytes; the call will be tried again")]
    OverBudget {
        method: &'static str,
        budget_bytes: u64,
    },
    /// The answer ended before the SOAP envelope was complete.
    #[error("{method}: response ended before the SOAP envelope was complete")]
    Truncated { method: &'static str },
    /// The answer is not well-formed XML.
    #[error("{method}: malformed XML response: {reason}")]
    Malformed {
        method: &'static str,
        reason: String,
    },
    /// The answer is XML but not a SOAP envelope.
    #[error("{method}: not a SOAP response: {reason}")]
    NotSoap {
        method: &'static str,
        reason: String,
    },
    /// The answer is SOAP but lacks something the call needs.
    #[error("{method}: unexpected response: {reason}")]
    Protocol {
        method: &'static str,
        reason: String,
    },
}

/// Faults that say "try again later" rather than "this will never work".
const TRANSIENT_FAULTS: &[&str] = &[
    "SystemError",
    "HostCommunication",
    "HostNotConnected",
    "RequestCanceled",
    "TaskInProgress",
    "ResourceInUse",
    "ManagedObjectNotFound",
];

impl VsphereError {
    /// Whether the same call may succeed if tried again later (after a re-login for
    /// `NotAuthenticated`). Configuration and trust problems are not retryable.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Connect { .. }
            | Self::Timeout { .. }
            | Self::Truncated { .. }
            | Self::OverBudget { .. } => true,
            Self::NotAuthenticated { .. } => true,
            Self::Http { status, .. } => *status == 408 || *status == 429 || *status >= 500,
            Self::Fault { fault_type, .. } => TRANSIENT_FAULTS.contains(&fault_type.as_str()),
            Self::TlsUntrusted { .. }
            | Self::InvalidLogin { .. }
            | Self::ResponseTooLarge { .. }
            | Self::Malformed { .. }
            | Self::NotSoap { .. }
            | Self::Protocol { .. } => false,
        }
    }

    /// True for a lost or expired session, which a re-login repairs.
    pub fn is_not_authenticated(&self) -> bool {
        matches!(self, Self::NotAuthenticated { .. })
    }
}
