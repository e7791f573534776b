//! Turns the raw configuration into typed, checked values. This is the only place that
//! judges a value; everything downstream takes `AgentConfig` as true.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::raw::{RawConfig, RawPerf, RawTls, RawVcenter};
use super::{ConfigError, Secret};
use crate::tls::TlsPolicy;

/// At most this many vCenters per agent: one appliance, one estate's worth of vCenters.
pub(super) const MAX_VCENTERS: usize = 10;

/// The validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentConfig {
    /// Directory for the agent's state.
    pub state_dir: PathBuf,
    /// Time between inventory rounds in `vscout run`.
    pub inventory_interval: Duration,
    /// Time between keepalive calls on an idle session.
    pub keepalive_interval: Duration,
    /// Bound on the whole shutdown.
    pub shutdown_timeout: Duration,
    /// Time between two health records.
    pub health_interval: Duration,
    /// Where `/metrics`, `/healthz` and `/status` are served, if anywhere.
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// The vCenters, in file order; names are unique.
    pub vcenters: Vec<VcenterConfig>,
    /// Performance collection.
    pub perf: PerfConfig,
    /// The on-disk buffer.
    pub buffer: super::BufferConfig,
    /// Where to ship; `None` keeps everything in the buffer.
    pub collector: Option<super::CollectorConfig>,
}

/// Validated `[perf]`.
#[derive(Debug, Clone, PartialEq)]
pub struct PerfConfig {
    pub enabled: bool,
    pub interval: Duration,
    pub window_secs: u32,
    pub max_entities_per_query: usize,
    pub max_metrics_per_query: usize,
    pub concurrency: usize,
    pub vm_counters: Vec<String>,
    pub host_counters: Vec<String>,
    pub daily_counters: Vec<String>,
    pub cluster_counters: Vec<String>,
    pub datastore_counters: Vec<String>,
    pub historical_lookback_secs: u32,
}

fn validate_perf(p: RawPerf) -> Result<PerfConfig, ConfigError> {
    let interval = ranged("perf.interval_secs", p.interval_secs, 60, 20, 300)?;
    let window = ranged("perf.window_secs", p.window_secs, 300, 60, 86_400)?;
    if window % 20 != 0 {
        return Err(ConfigError::invalid(
            "perf.window_secs",
            window,
            "must be a multiple of 20 (the real-time interval)",
        ));
    }
    let entities = ranged(
        "perf.max_entities_per_query",
        p.max_entities_per_query,
        256,
        1,
        256,
    )?;
    let metrics = ranged(
        "perf.max_metrics_per_query",
        p.max_metrics_per_query,
        20_000,
        1,
        100_000,
    )?;
    let concurrency = ranged("perf.concurrency", p.concurrency, 4, 1, 16)?;
    let names =
        |key: &str, v: Option<Vec<String>>, default: &[&str]| -> Result<Vec<String>, ConfigError> {
            let list = v.unwrap_or_else(|| default.iter().map(|s| (*s).to_owned()).collect());
            for name in &list {
                if name.split('.').count() != 3 || name.split('.').any(str::is_empty) {
                    return Err(ConfigError::invalid(
                        key,
                        name,
                        "counter names are group.name.rollup, e.g. cpu.usage.average",
                    ));
                }
            }
            Ok(list)
        };
    Ok(PerfConfig {
        enabled: p.enabled.unwrap_or(true),
        interval: Duration::from_secs(interval),
        window_secs: window as u32,
        max_entities_per_query: entities as usize,
        max_metrics_per_query: metrics as usize,
        concurrency: concurrency as usize,
        vm_counters: names(
            "perf.vm_counters",
            p.vm_counters,
            super::counters::DEFAULT_VM_COUNTERS,
        )?,
        host_counters: names(
            "perf.host_counters",
            p.host_counters,
            super::counters::DEFAULT_HOST_COUNTERS,
        )?,
        daily_counters: names(
            "perf.daily_counters",
            p.daily_counters,
            super::counters::DEFAULT_DAILY_COUNTERS,
        )?,
        cluster_counters: names(
            "perf.cluster_counters",
            p.cluster_counters,
            super::counters::DEFAULT_CLUSTER_COUNTERS,
        )?,
        datastore_counters: names(
            "perf.datastore_counters",
            p.datastore_counters,
            super::counters::DEFAULT_DATASTORE_COUNTERS,
        )?,
        historical_lookback_secs: ranged(
            "perf.historical_lookback_secs",
            p.historical_lookback_secs,
            1800,
            300,
            86_400,
        )? as u32,
    })
}

/// One validated vCenter entry.
#[derive(Debug, Clone, PartialEq)]
pub struct VcenterConfig {
    /// Label for logs and output.
    pub name: String,
    /// SDK endpoint (`https://host[:port]/sdk`).
    pub url: reqwest::Url,
    /// Login user.
    pub username: String,
    /// Login password.
    pub password: Secret,
    /// How the server certificate is trusted.
    pub tls: TlsPolicy,
    /// Deadline for one request.
    pub request_timeout: Duration,
    /// Largest response body accepted, in bytes.
    pub max_response_bytes: u64,
    /// `maxObjects` for RetrievePropertiesEx.
    pub page_size: u32,
}

/// What validation needs from the process (kept apart so tests set it explicitly).
#[derive(Debug, Clone, Default)]
pub(super) struct Context {
    /// `$CREDENTIALS_DIRECTORY`, set by systemd's `LoadCredential=`.
    pub credentials_dir: Option<PathBuf>,
}

impl Context {
    pub(super) fn from_process() -> Self {
        Self {
            credentials_dir: std::env::var_os("CREDENTIALS_DIRECTORY").map(PathBuf::from),
        }
    }
}

pub(super) fn ranged(
    key: &str,
    value: Option<u64>,
    default: u64,
    min: u64,
    max: u64,
) -> Result<u64, ConfigError> {
    let v = value.unwrap_or(default);
    if v < min || v > max {
        return Err(ConfigError::invalid(
            key,
            v,
            format!("must be between {min} and {max}"),
        ));
    }
    Ok(v)
}

/// Validates `raw` into an `AgentConfig`.
pub(super) fn validate(raw: RawConfig, ctx: &Context) -> Result<AgentConfig, ConfigError> {
    let a = raw.agent;
    let inventory_interval = ranged(
        "agent.inventory_interval_secs",
        a.inventory_interval_secs,
        3600,
        1,
        86_400,
    )?;
    let keepalive = ranged(
        "agent.keepalive_interval_secs",
        a.keepalive_interval_secs,
        600,
        10,
        1500,
    )?;
    let shutdown = ranged(
        "agent.shutdown_timeout_secs",
        a.shutdown_timeout_secs,
        20,
        1,
        300,
    )?;
    let state_dir = a
        .state_dir
        .unwrap_or_else(|| PathBuf::from("/var/lib/vscout"));
    if state_dir.as_os_str().is_empty() {
        return Err(ConfigError::invalid(
            "agent.state_dir",
            "\"\"",
            "must not be empty",
        ));
    }

    let vcenters = validate_vcenters(raw.vcenter, ctx)?;
    let perf = validate_perf(raw.perf)?;
    let buffer = super::ship::validate_buffer(raw.buffer)?;
    let collector = raw
        .collector
        .map(|c| super::ship::validate_collector(c, ctx))
        .transpose()?;
    Ok(AgentConfig {
        perf,
        buffer,
        collector,
        state_dir,
        inventory_interval: Duration::from_secs(inventory_interval),
        keepalive_interval: Duration::from_secs(keepalive),
        shutdown_timeout: Duration::from_secs(shutdown),
        metrics_listen: match a.metrics_listen {
            None => None,
            Some(text) => Some(text.parse().map_err(|e| {
                ConfigError::invalid(
                    "agent.metrics_listen",
                    &text,
                    format!("not an address:port ({e})"),
                )
            })?),
        },
        health_interval: Duration::from_secs(ranged(
            "agent.health_interval_secs",
            a.health_interval_secs,
            60,
            5,
            3600,
        )?),
        vcenters,
    })
}

/// At least one vCenter, at most `MAX_VCENTERS`, each valid and with its own name.
fn validate_vcenters(
    raw: Vec<RawVcenter>,
    ctx: &Context,
) -> Result<Vec<VcenterConfig>, ConfigError> {
    if raw.is_empty() {
        return Err(ConfigError::Missing {
            key: "vcenter".into(),
            reason: "add at least one [[vcenter]] entry".into(),
        });
    }
    if raw.len() > MAX_VCENTERS {
        return Err(ConfigError::invalid(
            "vcenter",
            format!("{} entries", raw.len()),
            format!("at most {MAX_VCENTERS} vCenters per agent"),
        ));
    }
    let mut vcenters = Vec::with_capacity(raw.len());
    let mut names = HashSet::new();
    for (i, v) in raw.into_iter().enumerate() {
        let vc = validate_vcenter(i, v, ctx)?;
        if !names.insert(vc.name.clone()) {
            return Err(ConfigError::invalid(
                format!("vcenter[{i}].name"),
                &vc.name,
                "two vCenters have this name; give each a unique name",
            ));
        }
        vcenters.push(vc);
    }
    Ok(vcenters)
}

fn validate_vcenter(i: usize, v: RawVcenter, ctx: &Context) -> Result<VcenterConfig, ConfigError> {
    let key = |k: &str| format!("vcenter[{i}].{k}");
    let url_text = v.url.ok_or_else(|| ConfigError::Missing {
        key: key("url"),
        reason: "e.g. url = \"https://vcenter.example.com/sdk\"".into(),
    })?;
    let url = parse_url(&url_text)
        .map_err(|reason| ConfigError::invalid(key("url"), &url_text, reason))?;
    let username = v
        .username
        .filter(|u| !u.is_empty())
        .ok_or_else(|| ConfigError::Missing {
            key: key("username"),
            reason: "the vCenter login user".into(),
        })?;
    let password = read_secret(
        &format!("vcenter[{i}]"),
        "password",
        v.password_file,
        v.password_credential,
        ctx,
    )?
    .ok_or_else(|| ConfigError::Missing {
        key: key("password_file"),
        reason: "set password_file or password_credential".into(),
    })?;
    let tls = tls_policy(&key("tls"), v.tls)?;
    let timeout = ranged(
        &key("request_timeout_secs"),
        v.request_timeout_secs,
        120,
        1,
        3600,
    )?;
    let mib = ranged(&key("max_response_mib"), v.max_response_mib, 512, 1, 4096)?;
    let page = ranged(
        &key("page_size"),
        v.page_size.map(u64::from),
        500,
        1,
        10_000,
    )?;
    let name = match v.name {
        Some(n) if n.trim().is_empty() => {
            return Err(ConfigError::invalid(
                key("name"),
                "\"\"",
                "must not be empty",
            ))
        }
        Some(n) => n,
        None => url.host_str().unwrap_or("vcenter").to_owned(),
    };
    Ok(VcenterConfig {
        name,
        url,
        username,
        password,
        tls,
        request_timeout: Duration::from_secs(timeout),
        max_response_bytes: mib * 1024 * 1024,
        page_size: page as u32,
    })
}

pub(super) fn parse_url(text: &str) -> Result<reqwest::Url, String> {
    let mut url = reqwest::Url::parse(text).map_err(|e| format!("not a URL ({e})"))?;
    if url.scheme() != "https" {
        return Err(format!("scheme must be https, not {}", url.scheme()));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("URL has no host".into());
    }
    if url.path() == "/" || url.path().is_empty() {
        url.set_path("/sdk");
    }
    Ok(url)
}

/// Reads a secret given as `<section>.<name>_file` or `<section>.<name>_credential` (a
/// systemd credential). `None` when neither is set.
pub(super) fn read_secret(
    section: &str,
    name: &str,
    file: Option<PathBuf>,
    credential: Option<String>,
    ctx: &Context,
) -> Result<Option<Secret>, ConfigError> {
    let file_key = format!("{section}.{name}_file");
    let cred_key = format!("{section}.{name}_credential");
    let path = match (file, credential) {
        (Some(_), Some(_)) => {
            return Err(ConfigError::invalid(
                &file_key,
                format!("{name}_file and {name}_credential"),
                "set one of them, not both",
            ))
        }
        (Some(f), None) => f,
        (None, Some(cred)) => {
            if cred.is_empty() || cred.contains('/') || cred == "." || cred == ".." {
                return Err(ConfigError::invalid(
                    cred_key,
                    &cred,
                    "a credential name is a plain file name",
                ));
            }
            let dir = ctx.credentials_dir.as_ref().ok_or_else(|| ConfigError::Missing {
                key: "CREDENTIALS_DIRECTORY".into(),
                reason: format!(
                    "{cred_key} = {cred:?} needs systemd's LoadCredential= (no credentials directory is set)"
                ),
            })?;
            dir.join(cred)
        }
        (None, None) => return Ok(None),
    };
    let text = read_secret_file(&file_key, &path)?;
    Ok(Some(Secret::new(text)))
}

pub(super) fn read_secret_file(key: &str, path: &Path) -> Result<String, ConfigError> {
    let mut text = std::fs::read_to_string(path).map_err(|e| ConfigError::Secret {
        key: key.into(),
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    while text.ends_with('\n') || text.ends_with('\r') {
        text.pop();
    }
    if text.is_empty() {
        return Err(ConfigError::Secret {
            key: key.into(),
            path: path.to_owned(),
            reason: "the file is empty".into(),
        });
    }
    Ok(text)
}

pub(super) fn tls_policy(key: &str, t: RawTls) -> Result<TlsPolicy, ConfigError> {
    let insecure = t.insecure.unwrap_or(false);
    match (t.ca_file, t.thumbprint_sha256, insecure) {
        (None, None, false) => Ok(TlsPolicy::Verify { ca_file: None }),
        (Some(ca), None, false) => {
            if !ca.is_file() {
                return Err(ConfigError::invalid(
                    format!("{key}.ca_file"),
                    ca.display(),
                    "no such file",
                ));
            }
            Ok(TlsPolicy::Verify { ca_file: Some(ca) })
        }
        (None, Some(tp), false) => parse_thumbprint(&tp)
            .map(|sha256| TlsPolicy::Pinned { sha256 })
            .map_err(|reason| {
                ConfigError::invalid(format!("{key}.thumbprint_sha256"), &tp, reason)
            }),
        (None, None, true) => Ok(TlsPolicy::Insecure),
        _ => Err(ConfigError::invalid(
            key,
            "more than one of ca_file, thumbprint_sha256, insecure",
            "choose one way to trust the certificate",
        )),
    }
}

/// Parses a SHA-256 thumbprint written as 64 hex digits, with or without colons.
pub fn parse_thumbprint(text: &str) -> Result<[u8; 32], String> {
    let hex: String = text
        .chars()
        .filter(|c| *c != ':' && !c.is_whitespace())
        .collect();
    // Checked before slicing by bytes: a multi-byte character would split.
    if !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err("not hexadecimal".to_string());
    }
    if hex.len() != 64 {
        return Err(format!(
            "expected 64 hex digits (SHA-256), found {}",
            hex.len()
        ));
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16)
            .map_err(|_| "not hexadecimal".to_string())?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
