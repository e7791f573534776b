//! The collector's configuration: a TOML file (optional: every key has an embedded
//! default, so `vscout-collector serve` runs with none), validated once into
//! `CollectorConfig`. Unknown keys are errors.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The file as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Address and port to listen on. Default `127.0.0.1:8443` (loopback: expose it on
    /// purpose, e.g. `0.0.0.0:8443`).
    pub listen_addr: Option<String>,
    /// Directory for the SQLite database, the generated certificate and the first token.
    /// Default `/var/lib/vscout-collector`.
    pub data_dir: Option<PathBuf>,
    /// Server certificate chain (PEM). Without it (and `tls_key_file`) a self-signed
    /// certificate is generated in `data_dir` on first start and its thumbprint printed.
    pub tls_cert_file: Option<PathBuf>,
    /// Private key (PEM) of `tls_cert_file`.
    pub tls_key_file: Option<PathBuf>,
    /// CA (PEM) whose client certificates are accepted (mutual TLS). A verified client
    /// certificate authenticates an agent without a token.
    pub client_ca_file: Option<PathBuf>,
    /// Refuse TLS handshakes without a client certificate (needs `client_ca_file`).
    /// Default false: agents may use tokens instead.
    pub require_client_cert: Option<bool>,
    /// Largest request body accepted, in bytes (1024 to 1 GiB), compressed as sent.
    /// Default 67108864 (64 MiB).
    pub max_body_bytes: Option<u64>,
}

/// Validated configuration.
#[derive(Debug, Clone)]
pub struct CollectorConfig {
    pub listen_addr: SocketAddr,
    pub data_dir: PathBuf,
    pub tls_files: Option<(PathBuf, PathBuf)>,
    pub client_ca_file: Option<PathBuf>,
    pub require_client_cert: bool,
    pub max_body_bytes: usize,
}

/// Why the configuration is unusable (exit 64).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("invalid config: {0}")]
    Parse(String),
    #[error("invalid config: {key} = {value}: {reason}")]
    Invalid {
        key: &'static str,
        value: String,
        reason: String,
    },
}

impl ConfigError {
    /// Configuration errors need an operator.
    pub fn is_retryable(&self) -> bool {
        false
    }
}

/// Reads `path` (if given) and validates.
pub fn load(path: Option<&Path>) -> Result<CollectorConfig, ConfigError> {
    let raw = match path {
        None => RawConfig::default(),
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|e| ConfigError::Read {
                path: p.to_owned(),
                reason: e.to_string(),
            })?;
            parse(&text)?
        }
    };
    validate(raw)
}

pub fn parse(text: &str) -> Result<RawConfig, ConfigError> {
    config::Config::builder()
        .add_source(config::File::from_str(text, config::FileFormat::Toml))
        .build()
        .and_then(|c| c.try_deserialize())
        .map_err(|e| ConfigError::Parse(e.to_string()))
}

pub fn validate(raw: RawConfig) -> Result<CollectorConfig, ConfigError> {
    let listen = raw.listen_addr.unwrap_or_else(|| "127.0.0.1:8443".into());
    let listen_addr = listen.parse().map_err(|e| ConfigError::Invalid {
        key: "listen_addr",
        value: listen.clone(),
        reason: format!("not an address:port ({e})"),
    })?;
    let tls_files = match (raw.tls_cert_file, raw.tls_key_file) {
        (None, None) => None,
        (Some(c), Some(k)) => Some((c, k)),
        (c, _) => {
            return Err(ConfigError::Invalid {
                key: if c.is_some() {
                    "tls_key_file"
                } else {
                    "tls_cert_file"
                },
                value: "(missing)".into(),
                reason: "tls_cert_file and tls_key_file go together".into(),
            })
        }
    };
    let require_client_cert = raw.require_client_cert.unwrap_or(false);
    if require_client_cert && raw.client_ca_file.is_none() {
        return Err(ConfigError::Invalid {
            key: "require_client_cert",
            value: "true".into(),
            reason: "needs client_ca_file".into(),
        });
    }
    let max_body = raw.max_body_bytes.unwrap_or(64 << 20);
    if !(1024..=1 << 30).contains(&max_body) {
        return Err(ConfigError::Invalid {
            key: "max_body_bytes",
            value: max_body.to_string(),
            reason: "must be between 1024 and 1073741824".into(),
        });
    }
    Ok(CollectorConfig {
        listen_addr,
        data_dir: raw
            .data_dir
            .unwrap_or_else(|| PathBuf::from("/var/lib/vscout-collector")),
        tls_files,
        client_ca_file: raw.client_ca_file,
        require_client_cert,
        max_body_bytes: max_body as usize,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_errors() {
        let c = validate(RawConfig::default()).expect("defaults");
        assert_eq!(c.listen_addr.to_string(), "127.0.0.1:8443");
        let e = parse("listen = 1").expect_err("unknown key");
        assert!(e.to_string().contains("listen"), "{e}");
        let e = validate(parse("listen_addr = \"nowhere\"").expect("parse")).expect_err("bad");
        assert!(e.to_string().contains("nowhere"), "{e}");
        let e = validate(parse("require_client_cert = true").expect("parse")).expect_err("bad");
        assert!(e.to_string().contains("client_ca_file"), "{e}");
    }
}
