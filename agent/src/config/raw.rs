//! The configuration as written: a TOML file plus `VSCOUT_…` environment overrides, read
//! with the `config` crate into structs that reject unknown keys. These structs are the
//! user documentation of every key; `agent/examples/agent.toml` shows them in use.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{ConfigError, ENV_PREFIX};

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Settings of the agent itself.
    #[serde(default)]
    pub agent: RawAgent,
    /// The vCenters (or standalone ESXi hosts) to discover; at least one, at most 10.
    #[serde(default)]
    pub vcenter: Vec<RawVcenter>,
    /// Performance collection.
    #[serde(default)]
    pub perf: RawPerf,
    /// The local on-disk buffer.
    #[serde(default)]
    pub buffer: RawBuffer,
    /// Where records are shipped. Without it everything stays in the buffer (up to its cap).
    pub collector: Option<RawCollector>,
}

/// `[buffer]`: the durable local queue (`<state_dir>/buffer`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBuffer {
    /// Hard cap on the buffer's bytes on disk, metadata included (1048576 to 1 TiB).
    /// Batches are split to a quarter of it. When full the oldest data is evicted,
    /// counted and logged. Default 1073741824 (1 GiB).
    pub max_bytes: Option<u64>,
    /// `interval`: group commit, one fsync per `commit_interval_ms` (default); `always`:
    /// fsync after every record.
    pub fsync: Option<String>,
    /// Longest time a record waits for its fsync with `fsync = "interval"`, in
    /// milliseconds (1 to 5000). Default 500.
    pub commit_interval_ms: Option<u64>,
}

/// `[collector]`: the central collector that receives what the agent collects.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCollector {
    /// Base URL, e.g. `https://collector.example.com:8443`. Only `https` is accepted.
    pub url: Option<String>,
    /// File holding the bearer token the collector issued for this agent.
    pub token_file: Option<PathBuf>,
    /// Name of a systemd credential holding the token (`$CREDENTIALS_DIRECTORY/NAME`).
    pub token_credential: Option<String>,
    /// Client certificate (PEM) for mutual TLS; needs `client_key_file`.
    pub client_cert_file: Option<PathBuf>,
    /// Private key (PEM) of `client_cert_file`.
    pub client_key_file: Option<PathBuf>,
    /// How to trust the collector's certificate (default: the system roots).
    #[serde(default)]
    pub tls: RawTls,
    /// Request body compression: `zstd` (default) or `gzip`.
    pub compression: Option<String>,
    /// Records sent at once (1 to 16). Default 2.
    pub max_in_flight: Option<u64>,
    /// Deadline for one request, in seconds (1 to 600). Default 60.
    pub request_timeout_secs: Option<u64>,
    /// Longest wait between two attempts at a record, in seconds (1 to 3600). Waits
    /// start at 1 s and double (with full jitter) up to this. Default 60.
    pub retry_max_secs: Option<u64>,
}

/// `[perf]`: performance counter collection.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPerf {
    /// Collect performance counters in `vscout run`. Default true.
    pub enabled: Option<bool>,
    /// How often real-time counters are polled, in seconds (20 to 300). Default 60.
    pub interval_secs: Option<u64>,
    /// Rollup window, in seconds (60 to 86400, a multiple of 20). Default 300.
    pub window_secs: Option<u64>,
    /// Most entities in one QueryPerf request (1 to 256). Default 256.
    pub max_entities_per_query: Option<u64>,
    /// Most entity × counter pairs in one QueryPerf request (1 to 100000). Default 20000;
    /// vCenter refuses requests over about 500,000 XML elements.
    pub max_metrics_per_query: Option<u64>,
    /// QueryPerf requests in flight at once per vCenter (1 to 16). Default 4.
    pub concurrency: Option<u64>,
    /// Real-time VM counters by name (`group.name.rollup`); default: the built-in list.
    pub vm_counters: Option<Vec<String>>,
    /// Real-time host counters by name; default: the built-in list.
    pub host_counters: Option<Vec<String>>,
    /// Historical (300 s) cluster counters by name; default: the built-in list.
    pub cluster_counters: Option<Vec<String>>,
    /// Historical (300 s) datastore counters by name; default: the built-in list.
    pub datastore_counters: Option<Vec<String>>,
    /// How far back a cluster or datastore never polled before is asked for, in seconds
    /// (300 to 86400). vCenter publishes historical samples late, so a poll always looks
    /// back several intervals from the last sample it has. Default 1800.
    pub historical_lookback_secs: Option<u64>,
    /// Counters that also get a daily summary (a mergeable sketch, for month-long
    /// percentiles); default: CPU, memory, disk and network usage.
    pub daily_counters: Option<Vec<String>>,
}

/// `[agent]`: settings of the agent process.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAgent {
    /// Directory for the agent's state (identity, buffer). Default `/var/lib/vscout`.
    pub state_dir: Option<PathBuf>,
    /// How often `vscout run` takes a full inventory, in seconds (1 to 86400). Default 3600.
    pub inventory_interval_secs: Option<u64>,
    /// How often an idle vCenter session is kept alive with `CurrentTime`, in seconds
    /// (10 to 1500, safely inside vCenter's 30-minute idle timeout). Default 600.
    pub keepalive_interval_secs: Option<u64>,
    /// Bound on the whole shutdown (logout, flush), in seconds (1 to 300). Default 20.
    pub shutdown_timeout_secs: Option<u64>,
    /// Local address for self-monitoring over HTTP (`/metrics`, `/healthz`, `/status`),
    /// e.g. `127.0.0.1:9187`. Off when absent. Plain HTTP: keep it on loopback.
    pub metrics_listen: Option<String>,
    /// How often the agent stores a health record (its own CPU, memory, buffer depth,
    /// errors) for the collector, in seconds (5 to 3600). Default 60.
    pub health_interval_secs: Option<u64>,
}

/// `[[vcenter]]`: one vCenter Server (or standalone ESXi host).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawVcenter {
    /// A short label used in logs and output; defaults to the URL's host.
    pub name: Option<String>,
    /// The SDK endpoint, e.g. `https://vcenter.example.com/sdk` (`/sdk` is added when the
    /// URL has no path). Only `https` is accepted.
    pub url: Option<String>,
    /// Login user, e.g. `svc-vscout@vsphere.local`. A read-only role is enough.
    pub username: Option<String>,
    /// File holding the password (a trailing newline is ignored). Mode 0600 is advised.
    pub password_file: Option<PathBuf>,
    /// Name of a systemd credential (`LoadCredential=NAME:…`) holding the password, read
    /// from `$CREDENTIALS_DIRECTORY/NAME`. Use this or `password_file`, not both.
    pub password_credential: Option<String>,
    /// How to trust the vCenter's TLS certificate.
    #[serde(default)]
    pub tls: RawTls,
    /// Deadline for one SOAP request, in seconds (1 to 3600). Default 120.
    pub request_timeout_secs: Option<u64>,
    /// Largest SOAP response accepted, in mebibytes (1 to 4096). Default 512. Bigger
    /// answers are refused rather than read, so a broken server cannot exhaust memory.
    pub max_response_mib: Option<u64>,
    /// Objects asked for per RetrievePropertiesEx page (`maxObjects`, 1 to 10000).
    /// Default 500.
    pub page_size: Option<u32>,
}

/// `[vcenter.tls]`: certificate trust for one vCenter. By default the certificate must
/// chain to the system roots or to `ca_file`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    /// Extra PEM file of CA certificates to trust (e.g. the VMCA root of vCenter).
    pub ca_file: Option<PathBuf>,
    /// Pin the server certificate by its SHA-256 thumbprint (hex, colons optional) instead
    /// of verifying a chain: the usual choice for vCenter's self-signed certificates.
    pub thumbprint_sha256: Option<String>,
    /// Accept any certificate. For labs only: the agent warns at every start.
    pub insecure: Option<bool>,
}

/// Reads the file and the environment overrides into the raw structs.
pub(super) fn read(
    path: &Path,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<RawConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    // Only `VSCOUT_AGENT__…` are configuration: other `VSCOUT_` variables (VSCOUT_CONFIG,
    // VSCOUT_REPORT_RESOURCES …) belong to the command line and must not be read as keys.
    // vCenter entries are a list and come from the file only.
    let overrides: config::Map<String, String> = env
        .into_iter()
        .filter(|(k, _)| k.starts_with(&format!("{ENV_PREFIX}_AGENT__")))
        .collect();
    build(&text, Some(overrides))
}

/// Parses TOML text alone.
pub(super) fn parse_str(text: &str) -> Result<RawConfig, ConfigError> {
    build(text, None)
}

fn build(text: &str, env: Option<config::Map<String, String>>) -> Result<RawConfig, ConfigError> {
    let mut builder = config::Config::builder()
        .add_source(config::File::from_str(text, config::FileFormat::Toml));
    if let Some(env) = env {
        builder = builder.add_source(
            config::Environment::with_prefix(ENV_PREFIX)
                .prefix_separator("_")
                .separator("__")
                .try_parsing(true)
                .source(Some(env)),
        );
    }
    let cfg = builder
        .build()
        .map_err(|e| ConfigError::Parse(e.to_string()))?;
    cfg.try_deserialize()
        .map_err(|e| ConfigError::Parse(e.to_string()))
}
