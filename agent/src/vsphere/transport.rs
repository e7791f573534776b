//! HTTP for SOAP: one reqwest client per vCenter (rustls, our verifier), POSTs with the
//! right SOAPAction and session cookie, and response bodies that are capped in size and
//! either read whole (small calls) or streamed chunk by chunk to a blocking parser.

use std::fmt;
use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{HeaderMap, CONTENT_TYPE};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};

use super::error::{TimeoutKind, VsphereError};
use crate::config::VcenterConfig;
use crate::tls::{self, SeenThumbprint};

/// Speaks HTTP to one vCenter.
#[derive(Debug)]
pub(super) struct Transport {
    http: reqwest::Client,
    url: reqwest::Url,
    seen: SeenThumbprint,
    timeout: Duration,
    connect_timeout: Duration,
    max_bytes: u64,
    /// Cap of an answer read whole (`read_all`): `max_bytes`, at most
    /// `MAX_BUFFERED_BYTES`.
    max_buffered: u64,
    /// KiB of answers read whole that may be held at once, over all calls in flight.
    budget: Arc<Semaphore>,
    /// The pinned thumbprint, if the policy pins one.
    pinned: Option<[u8; 32]>,
}

/// Largest answer read whole. The biggest real ones are QueryPerf answers: about 2.5 MB
/// for 256 VMs and one poll, about 10 MB after an hour's look-back; a hostile or broken
/// server's endless answer stops here instead of at `max_response_mib` (512 MiB) times
/// the requests in flight.
pub(super) const MAX_BUFFERED_BYTES: u64 = 64 << 20;
/// All answers read whole and held at once, per vCenter (four QueryPerf in flight hold
/// about 10 MB): past it a call fails, and is retried like any failed request.
pub(super) const BUFFERED_BUDGET_BYTES: u64 = 128 << 20;

/// An answer read whole, holding its share of the transport's memory budget until it
/// is dropped (after parsing).
#[derive(Debug, Default)]
pub(super) struct Answer {
    pub bytes: Vec<u8>,
    _held: Option<OwnedSemaphorePermit>,
}

impl std::ops::Deref for Answer {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.bytes
    }
}

/// A failure while reading a body, carried through `std::io::Error` to the parser.
#[derive(Debug, Clone)]
pub(super) enum BodyError {
    TooLarge {
        limit: u64,
    },
    /// The request's timeout ran out while the body streamed in.
    Timeout {
        url: String,
        after: Duration,
    },
    Read(String),
}

impl fmt::Display for BodyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLarge { limit } => write!(f, "response larger than {limit} bytes"),
            Self::Timeout { .. } => f.write_str("timed out reading the response"),
            Self::Read(r) => write!(f, "reading the response: {r}"),
        }
    }
}

impl std::error::Error for BodyError {}

impl BodyError {
    pub(crate) fn into_vsphere(self, method: &'static str) -> VsphereError {
        match self {
            Self::TooLarge { limit } => VsphereError::ResponseTooLarge {
                method,
                limit_bytes: limit,
            },
            Self::Timeout { url, after } => VsphereError::Timeout {
                method,
                url,
                which: TimeoutKind::Request,
                after,
            },
            // A connection that drops mid-body leaves an incomplete envelope.
            Self::Read(_) => VsphereError::Truncated { method },
        }
    }
}

impl Transport {
    pub(super) fn new(cfg: &VcenterConfig) -> Result<Self, VsphereError> {
        let seen = SeenThumbprint::default();
        let tls = tls::client_config(&cfg.tls, seen.clone(), None).map_err(|reason| {
            VsphereError::Connect {
                url: cfg.url.to_string(),
                reason,
            }
        })?;
        // Shorter than the request timeout, so that a server that never completes the
        // handshake is reported as such (with equal values the request timeout won the
        // race and the message blamed the answer).
        let connect_timeout = (cfg.request_timeout / 2).min(Duration::from_secs(30));
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .timeout(cfg.request_timeout)
            .connect_timeout(connect_timeout)
            .pool_idle_timeout(Duration::from_secs(90))
            .tcp_keepalive(Duration::from_secs(60))
            .http1_only()
            .no_proxy()
            .user_agent(concat!("vscout/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| VsphereError::Connect {
                url: cfg.url.to_string(),
                reason: e.to_string(),
            })?;
        Ok(Self {
            http,
            url: cfg.url.clone(),
            seen,
            timeout: cfg.request_timeout,
            connect_timeout,
            max_bytes: cfg.max_response_bytes,
            max_buffered: cfg.max_response_bytes.min(MAX_BUFFERED_BYTES),
            budget: Arc::new(Semaphore::new((BUFFERED_BUDGET_BYTES / 1024) as usize)),
            pinned: match &cfg.tls {
                crate::config::TlsPolicy::Pinned { sha256 } => Some(*sha256),
                _ => None,
            },
        })
    }

    pub(super) fn url(&self) -> &str {
        self.url.as_str()
    }

    /// GETs a small document next to the SDK endpoint (`vimServiceVersions.xml`).
    pub(super) async fn get_sibling(&self, file: &'static str) -> Result<Vec<u8>, VsphereError> {
        let mut url = self.url.clone();
        let path = format!("{}/{file}", url.path().trim_end_matches('/'));
        url.set_path(&path);
        let resp = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| self.map_send_error(file, e))?;
        let status = resp.status();
        let body = self.read_all(resp, file).await?;
        if !status.is_success() {
            return Err(VsphereError::Http {
                method: file,
                url: self.url.to_string(),
                status: status.as_u16(),
                excerpt: excerpt(&body),
            });
        }
        Ok(body.bytes)
    }

    /// POSTs a SOAP envelope. Returns the response once its status says it carries SOAP
    /// (200, or 500 for a fault); anything else becomes `VsphereError::Http`.
    pub(super) async fn post(
        &self,
        method: &'static str,
        soap_action: &str,
        cookie: Option<&str>,
        envelope: String,
    ) -> Result<reqwest::Response, VsphereError> {
        let mut req = self
            .http
            .post(self.url.clone())
            .header(CONTENT_TYPE, "text/xml; charset=utf-8")
            .header("SOAPAction", soap_action)
            .body(envelope);
        if let Some(c) = cookie {
            req = req.header(reqwest::header::COOKIE, c);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| self.map_send_error(method, e))?;
        let status = resp.status().as_u16();
        if let Some(len) = resp.content_length() {
            if len > self.max_bytes {
                return Err(VsphereError::ResponseTooLarge {
                    method,
                    limit_bytes: self.max_bytes,
                });
            }
        }
        let is_xml = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("xml"));
        if status == 200 || (status == 500 && is_xml) {
            return Ok(resp);
        }
        let body = self.read_all(resp, method).await.unwrap_or_default();
        Err(VsphereError::Http {
            method,
            url: self.url.to_string(),
            status,
            excerpt: excerpt(&body),
        })
    }

    /// Reads a whole (small) body, refusing more than `max_buffered` bytes, and more than
    /// the transport's budget for all answers held at once.
    pub(super) async fn read_all(
        &self,
        mut resp: reqwest::Response,
        method: &'static str,
    ) -> Result<Answer, VsphereError> {
        let mut out = Vec::new();
        let mut held: Option<OwnedSemaphorePermit> = None;
        loop {
            match resp.chunk().await {
                Ok(Some(chunk)) => {
                    if (out.len() + chunk.len()) as u64 > self.max_buffered {
                        return Err(VsphereError::ResponseTooLarge {
                            method,
                            limit_bytes: self.max_buffered,
                        });
                    }
                    // KiB held so far, rounded up; take what this chunk adds.
                    let want = (out.len() + chunk.len()).div_ceil(1024) as u32;
                    let have = held.as_ref().map_or(0, |p| p.num_permits() as u32);
                    if want > have {
                        let more = self
                            .budget
                            .clone()
                            .try_acquire_many_owned(want - have)
                            .map_err(|_| VsphereError::OverBudget {
                                method,
                                budget_bytes: BUFFERED_BUDGET_BYTES,
                            })?;
                        match held.as_mut() {
                            Some(p) => p.merge(more),
                            None => held = Some(more),
                        }
                    }
                    out.extend_from_slice(&chunk);
                }
                Ok(None) => {
                    return Ok(Answer {
                        bytes: out,
                        _held: held,
                    })
                }
                Err(e) if e.is_timeout() => return Err(self.timeout_error(method)),
                Err(_) => return Err(VsphereError::Truncated { method }),
            }
        }
    }

    /// Streams a body to a blocking reader: a task pulls chunks (counting them against the
    /// cap) into a small bounded channel, so at most a few chunks are in memory at once.
    pub(super) fn stream(&self, mut resp: reqwest::Response) -> ChunkReader {
        let (tx, rx) = mpsc::channel::<Result<Bytes, BodyError>>(8);
        let limit = self.max_bytes;
        let (url, after) = (self.url.to_string(), self.timeout);
        let task = tokio::spawn(async move {
            let mut total = 0u64;
            loop {
                let item = match resp.chunk().await {
                    Ok(Some(chunk)) => {
                        total += chunk.len() as u64;
                        if total > limit {
                            Err(BodyError::TooLarge { limit })
                        } else {
                            Ok(chunk)
                        }
                    }
                    Ok(None) => return,
                    Err(e) if e.is_timeout() => Err(BodyError::Timeout {
                        url: url.clone(),
                        after,
                    }),
                    Err(e) => Err(BodyError::Read(e.to_string())),
                };
                let stop = item.is_err();
                if tx.send(item).await.is_err() || stop {
                    return;
                }
            }
        });
        ChunkReader {
            rx,
            current: Bytes::new(),
            task,
        }
    }

    /// The request timeout fired (connected; the answer did not complete in time).
    pub(super) fn timeout_error(&self, method: &'static str) -> VsphereError {
        VsphereError::Timeout {
            method,
            url: self.url.to_string(),
            which: TimeoutKind::Request,
            after: self.timeout,
        }
    }

    fn map_send_error(&self, method: &'static str, e: reqwest::Error) -> VsphereError {
        // A hung server (accepts, never answers the handshake) fires the connect timeout,
        // not the request timeout: say which, with its own value.
        if e.is_timeout() && e.is_connect() {
            return VsphereError::Timeout {
                method,
                url: self.url.to_string(),
                which: TimeoutKind::Connect,
                after: self.connect_timeout,
            };
        }
        if e.is_timeout() {
            return self.timeout_error(method);
        }
        let chain = crate::telemetry::error_chain(&e);
        let reason = chain.last().cloned().unwrap_or_else(|| e.to_string());
        let tls_failure = chain
            .iter()
            .any(|m| m.contains("certificate") || m.contains("thumbprint"));
        if tls_failure {
            let seen = self.seen.lock().ok().and_then(|s| *s);
            // The pinned certificate itself was presented: advising to pin it would send
            // the operator in a circle; the handshake failed for another reason.
            if seen.is_some() && seen == self.pinned {
                return VsphereError::Connect {
                    url: self.url.to_string(),
                    reason: format!("the server presented the pinned certificate, but the TLS handshake failed: {reason}"),
                };
            }
            if let Some(digest) = seen {
                return VsphereError::TlsUntrusted {
                    url: self.url.to_string(),
                    thumbprint: tls::format_thumbprint(&digest),
                    reason,
                };
            }
        }
        VsphereError::Connect {
            url: self.url.to_string(),
            reason,
        }
    }
}

/// The first 300 characters of a body, on one line, for error messages.
fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(300)]);
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A blocking `Read` over the chunks that `Transport::stream` delivers. Use it only from a
/// blocking thread (`spawn_blocking`).
#[derive(Debug)]
pub(super) struct ChunkReader {
    rx: mpsc::Receiver<Result<Bytes, BodyError>>,
    current: Bytes,
    task: tokio::task::JoinHandle<()>,
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(chunk)) => self.current = chunk,
                Some(Err(e)) => return Err(std::io::Error::other(e)),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        bytes::Buf::advance(&mut self.current, n);
        Ok(n)
    }
}

impl Drop for ChunkReader {
    fn drop(&mut self) {
        // The parser stopped (done or failed): stop reading the socket too.
        self.task.abort();
    }
}

/// The `Set-Cookie` of a Login answer reduced to the `name=value` to send back.
pub(super) fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("vmware_soap_session"))
        .or_else(|| {
            headers
                .get(reqwest::header::SET_COOKIE)
                .and_then(|v| v.to_str().ok())
        })
        .map(|v| v.split(';').next().unwrap_or(v).trim().to_owned())
}
