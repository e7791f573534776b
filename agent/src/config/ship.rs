//! Validation of `[buffer]` and `[collector]`: how collected data is kept and where it goes.

use std::time::Duration;

use super::raw::{RawBuffer, RawCollector};
use super::validate::{parse_url, ranged, read_secret, tls_policy, Context};
use super::{ConfigError, Secret, TlsPolicy};
use crate::tls::ClientIdentity;

/// Validated `[buffer]`.
#[derive(Debug, Clone, PartialEq)]
pub struct BufferConfig {
    /// Hard cap on the buffer directory, in bytes.
    pub max_bytes: u64,
    /// Size at which a segment is closed: a sixteenth of the cap, between 4 KiB and
    /// 64 MiB, so that eviction drops a small share of the buffer at a time.
    pub segment_bytes: u64,
    /// fsync after every record instead of group commit.
    pub fsync_always: bool,
    /// Group commit interval.
    pub commit_interval: Duration,
}

/// Request body compression on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    Zstd,
    Gzip,
}

/// Validated `[collector]`.
#[derive(Debug, Clone, PartialEq)]
pub struct CollectorConfig {
    /// Base URL (`https://host:port`); the ingest endpoint is `/v1/ingest` under it.
    pub url: reqwest::Url,
    /// Bearer token, if the collector uses tokens.
    pub token: Option<Secret>,
    /// How the collector's certificate is trusted.
    pub tls: TlsPolicy,
    /// Client certificate for mutual TLS.
    pub identity: Option<ClientIdentity>,
    pub compression: Compression,
    pub max_in_flight: usize,
    pub request_timeout: Duration,
    pub retry_max: Duration,
}

pub(super) fn validate_buffer(b: RawBuffer) -> Result<BufferConfig, ConfigError> {
    // At least 1 MiB: batches are split to a quarter of the cap, and a quarter must hold
    // the largest record that cannot be split, an inventory (about 70 KB compressed per
    // 1,000 VMs). At 64 KiB every window batch and the inventory were refused, uncounted.
    let max_bytes = ranged("buffer.max_bytes", b.max_bytes, 1 << 30, 1 << 20, 1 << 40)?;
    let fsync_always = match b.fsync.as_deref() {
        None | Some("interval") => false,
        Some("always") => true,
        Some(other) => {
            return Err(ConfigError::invalid(
                "buffer.fsync",
                other,
                "must be \"interval\" or \"always\"",
            ))
        }
    };
    let commit = ranged(
        "buffer.commit_interval_ms",
        b.commit_interval_ms,
        500,
        1,
        5000,
    )?;
    Ok(BufferConfig {
        max_bytes,
        segment_bytes: (max_bytes / 16).clamp(4 * 1024, 64 << 20),
        fsync_always,
        commit_interval: Duration::from_millis(commit),
    })
}

pub(super) fn validate_collector(
    c: RawCollector,
    ctx: &Context,
) -> Result<CollectorConfig, ConfigError> {
    let text = c.url.ok_or_else(|| ConfigError::Missing {
        key: "collector.url".into(),
        reason: "e.g. url = \"https://collector.example.com:8443\"".into(),
    })?;
    let mut url =
        parse_url(&text).map_err(|reason| ConfigError::invalid("collector.url", &text, reason))?;
    // parse_url adds vCenter's /sdk to a bare host; the collector's API lives at the root.
    if url.path() == "/sdk" && !text.trim_end_matches('/').ends_with("/sdk") {
        url.set_path("/");
    }
    let token = read_secret("collector", "token", c.token_file, c.token_credential, ctx)?;
    let identity = match (c.client_cert_file, c.client_key_file) {
        (None, None) => None,
        (Some(cert), Some(key)) => {
            for (k, p) in [("client_cert_file", &cert), ("client_key_file", &key)] {
                if !p.is_file() {
                    return Err(ConfigError::invalid(
                        format!("collector.{k}"),
                        p.display(),
                        "no such file",
                    ));
                }
            }
            Some(ClientIdentity {
                cert_file: cert,
                key_file: key,
            })
        }
        (Some(_), None) | (None, Some(_)) => {
            return Err(ConfigError::invalid(
                "collector.client_cert_file",
                "only one of client_cert_file and client_key_file",
                "mutual TLS needs both",
            ))
        }
    };
    if token.is_none() && identity.is_none() {
        return Err(ConfigError::Missing {
            key: "collector.token_file".into(),
            reason: "the collector needs a token (token_file or token_credential) or a client certificate".into(),
        });
    }
    let compression = match c.compression.as_deref() {
        None | Some("zstd") => Compression::Zstd,
        Some("gzip") => Compression::Gzip,
        Some(other) => {
            return Err(ConfigError::invalid(
                "collector.compression",
                other,
                "must be \"zstd\" or \"gzip\"",
            ))
        }
    };
    Ok(CollectorConfig {
        url,
        token,
        tls: tls_policy("collector.tls", c.tls)?,
        identity,
        compression,
        max_in_flight: ranged("collector.max_in_flight", c.max_in_flight, 2, 1, 16)? as usize,
        request_timeout: Duration::from_secs(ranged(
            "collector.request_timeout_secs",
            c.request_timeout_secs,
            60,
            1,
            600,
        )?),
        retry_max: Duration::from_secs(ranged(
            "collector.retry_max_secs",
            c.retry_max_secs,
            60,
            1,
            3600,
        )?),
    })
}
