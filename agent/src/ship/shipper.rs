//! `Shipper`: reads stored records in order, keeps up to `max_in_flight` of them in
//! flight, retries each until the collector acknowledges it (or rejects it for good), and
//! acknowledges the buffer over the contiguous prefix of finished records only.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use super::batch;
use super::error::ShipError;
use crate::buffer::{BufferHandle, Record};
use crate::config::{CollectorConfig, Compression};
use crate::tls::{self, SeenThumbprint};

/// Counters of the shipper, shared with the health reporter.
#[derive(Debug, Default)]
pub struct ShipStats {
    pub shipped: AtomicU64,
    pub duplicates: AtomicU64,
    pub retries: AtomicU64,
    pub dead_letters: AtomicU64,
    pub last_error: Mutex<Option<String>>,
}

impl ShipStats {
    fn failed(&self, e: &ShipError) {
        self.retries.fetch_add(1, Ordering::Relaxed);
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.to_string());
    }
}

/// Full-jitter exponential backoff: a uniformly random wait in `[0, min(max, 1 s × 2^n)]`
/// for the `n`th retry (AWS's "full jitter"), so that many agents coming back after an
/// outage do not all hit the collector at once.
pub fn backoff(attempt: u32, max: Duration) -> Duration {
    let ceiling = Duration::from_secs(1)
        .saturating_mul(1u32 << attempt.min(20))
        .min(max);
    ceiling.mul_f64(fastrand::f64())
}

#[derive(Debug)]
struct Inner {
    http: reqwest::Client,
    ingest: reqwest::Url,
    cfg: CollectorConfig,
    agent_id: String,
    dead_letter_dir: PathBuf,
    stats: Arc<ShipStats>,
}

/// Ships the buffer to the collector.
#[derive(Debug)]
pub struct Shipper {
    inner: Arc<Inner>,
    buffer: BufferHandle,
}

impl Shipper {
    pub fn new(
        cfg: CollectorConfig,
        agent_id: String,
        buffer: BufferHandle,
        state_dir: &std::path::Path,
        stats: Arc<ShipStats>,
    ) -> Result<Self, ShipError> {
        let tls = tls::client_config(&cfg.tls, SeenThumbprint::default(), cfg.identity.as_ref())
            .map_err(ShipError::Setup)?;
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .timeout(cfg.request_timeout)
            .connect_timeout(cfg.request_timeout.min(Duration::from_secs(15)))
            .pool_idle_timeout(Duration::from_secs(60))
            .no_proxy()
            .user_agent(concat!("vscout/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ShipError::Setup(e.to_string()))?;
        let ingest = cfg
            .url
            .join("v1/ingest")
            .map_err(|e| ShipError::Setup(format!("collector url {}: {e}", cfg.url)))?;
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                ingest,
                cfg,
                agent_id,
                dead_letter_dir: state_dir.join("dead-letter"),
                stats,
            }),
            buffer,
        })
    }

    /// Ships until `stop` is cancelled, then lets records in flight finish for at most
    /// `drain` (they stay in the buffer if they do not: at-least-once).
    pub async fn run(self, stop: CancellationToken, drain: Duration) {
        let max = self.inner.cfg.max_in_flight;
        let mut stored = self.buffer.stored();
        let mut read_after = self.buffer.snapshot().acked;
        // Sequences in flight in read order, and whether each has finished.
        let mut window: VecDeque<(u64, bool)> = VecDeque::new();
        let mut tasks: JoinSet<u64> = JoinSet::new();
        let mut deadline: Option<tokio::time::Instant> = None;
        info!(collector = %self.inner.ingest, from_seq = read_after + 1, "shipping to the collector");
        loop {
            while deadline.is_none() && tasks.len() < max {
                match self.buffer.read(read_after, 1, usize::MAX).await {
                    Ok(mut records) => match records.pop() {
                        Some(r) => {
                            read_after = r.seq;
                            window.push_back((r.seq, false));
                            let inner = self.inner.clone();
                            tasks.spawn(async move { inner.deliver(r).await });
                        }
                        None => break,
                    },
                    Err(e) => {
                        error!(error = %e, "cannot read the buffer; retrying");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        break;
                    }
                }
            }
            if deadline.is_some() && tasks.is_empty() {
                break;
            }
            let sleep_until =
                deadline.unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                Some(done) = tasks.join_next(), if !tasks.is_empty() => {
                    match done {
                        Ok(seq) => {
                            if let Some(slot) = window.iter_mut().find(|w| w.0 == seq) {
                                slot.1 = true;
                            }
                        }
                        Err(e) => error!(error = %e, "a delivery task failed"),
                    }
                    let mut upto = None;
                    while window.front().is_some_and(|w| w.1) {
                        upto = window.pop_front().map(|w| w.0);
                    }
                    if let Some(upto) = upto {
                        if let Err(e) = self.buffer.ack(upto).await {
                            warn!(error = %e, upto, "cannot record the acknowledgement; those records may be sent again after a restart");
                        }
                    }
                }
                r = stored.changed(), if tasks.len() < max && deadline.is_none() => {
                    if r.is_err() {
                        break;
                    }
                }
                _ = stop.cancelled(), if deadline.is_none() => {
                    deadline = Some(tokio::time::Instant::now() + drain);
                }
                _ = tokio::time::sleep_until(sleep_until), if deadline.is_some() => {
                    warn!(in_flight = tasks.len(), "shipping drain deadline passed; the rest stays in the buffer");
                    tasks.abort_all();
                    break;
                }
            }
        }
        debug!("shipper stopped");
    }
}

impl Inner {
    /// Sends one record until it is acknowledged or rejected for good; returns its seq.
    async fn deliver(&self, record: Record) -> u64 {
        let seq = record.seq;
        let body = match self.cfg.compression {
            Compression::Zstd => Bytes::from(record.payload),
            Compression::Gzip => match batch::zstd_to_gzip(&record.payload) {
                Ok(g) => Bytes::from(g),
                Err(e) => {
                    self.dead_letter(
                        seq,
                        &record.payload,
                        &format!("cannot re-encode as gzip: {e}"),
                    );
                    return seq;
                }
            },
        };
        let mut attempt: u32 = 0;
        loop {
            match self.post(seq, body.clone()).await {
                Ok(duplicate) => {
                    self.stats.shipped.fetch_add(1, Ordering::Relaxed);
                    if duplicate {
                        self.stats.duplicates.fetch_add(1, Ordering::Relaxed);
                    }
                    debug!(
                        seq,
                        duplicate,
                        attempts = attempt + 1,
                        "record acknowledged by the collector"
                    );
                    return seq;
                }
                Err(e) if !e.is_retryable() => {
                    // Kept as sent (zstd, or gzip with `compression = "gzip"`).
                    self.dead_letter(seq, &body, &e.to_string());
                    return seq;
                }
                Err(e) => {
                    self.stats.failed(&e);
                    let wait = match &e {
                        ShipError::Unauthorized { .. } => self.cfg.retry_max,
                        _ => e
                            .retry_after()
                            .map(|d| d.min(Duration::from_secs(3600)))
                            .unwrap_or_else(|| backoff(attempt, self.cfg.retry_max)),
                    };
                    warn!(seq, attempt = attempt + 1, error = %e, retry_in_ms = wait.as_millis() as u64, "shipping failed; will retry");
                    tokio::time::sleep(wait).await;
                    attempt = attempt.saturating_add(1);
                }
            }
        }
    }

    /// One POST. `Ok(true)` when the collector already had it.
    async fn post(&self, seq: u64, body: Bytes) -> Result<bool, ShipError> {
        let encoding = match self.cfg.compression {
            Compression::Zstd => "zstd",
            Compression::Gzip => "gzip",
        };
        let mut req = self
            .http
            .post(self.ingest.clone())
            .header("content-type", batch::CONTENT_TYPE)
            .header("content-encoding", encoding)
            .header("idempotency-key", format!("{}:{seq}", self.agent_id))
            .header("x-vscout-agent-id", &self.agent_id)
            .header("x-vscout-agent-version", crate::VERSION)
            .body(body);
        if let Some(token) = &self.cfg.token {
            req = req.bearer_auth(token.expose());
        }
        let resp = req.send().await.map_err(|e| ShipError::Unreachable {
            url: self.ingest.to_string(),
            reason: crate::telemetry::error_chain(&e).join(": "),
        })?;
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let duplicate = resp
            .headers()
            .get("x-vscout-duplicate")
            .is_some_and(|v| v == "true");
        if (200..300).contains(&status) {
            return Ok(duplicate);
        }
        // The collector's message, bounded: it goes into logs and dead-letter notes.
        let mut message = resp.text().await.unwrap_or_default();
        message.truncate(500);
        Err(match status {
            408 | 429 | 500..=599 => ShipError::Busy {
                status,
                message,
                retry_after,
            },
            401 | 403 => ShipError::Unauthorized { status, message },
            _ => ShipError::Rejected { status, message },
        })
    }

    /// Moves a record the collector will never take to `<state_dir>/dead-letter/`, with a
    /// note of why; the buffer then acknowledges it like any other.
    fn dead_letter(&self, seq: u64, payload: &[u8], reason: &str) {
        self.stats.dead_letters.fetch_add(1, Ordering::Relaxed);
        *self
            .stats
            .last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(reason.to_owned());
        let dir = &self.dead_letter_dir;
        let ext = match self.cfg.compression {
            Compression::Zstd => "zst",
            Compression::Gzip => "gz",
        };
        let data = dir.join(format!("{seq:020}.batch.{ext}"));
        let note = dir.join(format!("{seq:020}.reason.txt"));
        let result = std::fs::create_dir_all(dir)
            .and_then(|()| std::fs::write(&data, payload))
            .and_then(|()| std::fs::write(&note, format!("{reason}\n")));
        match result {
            Ok(()) => {
                error!(seq, reason, file = %data.display(), "collector rejected a record for good; moved it to the dead-letter directory")
            }
            Err(e) => {
                error!(seq, reason, error = %e, "collector rejected a record for good and it could not be saved aside; it is dropped")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_jittered_and_capped() {
        let max = Duration::from_secs(60);
        for attempt in 0..30 {
            let ceiling = Duration::from_secs(1u64 << attempt.min(6)).min(max);
            for _ in 0..50 {
                assert!(backoff(attempt, max) <= ceiling);
            }
        }
        let waits: Vec<Duration> = (0..50).map(|_| backoff(10, max)).collect();
        assert!(waits.iter().any(|w| *w != waits[0]), "jittered");
    }
}
