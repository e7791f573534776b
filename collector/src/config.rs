//! The collector's configuration: a TOML file (optional: every key has an embedded
//! default, so `vscout-collector serve` runs with none), validated once into
//! `CollectorConfig`. Unknown keys are errors.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::assess::settings::{RawAssessment, Setup, SetupError};
use crate::store::Retention;

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
    /// Batches decoded and stored at once (1 to 64); a request past it is answered 503
    /// with `Retry-After`, before its body is read. Each takes up to the decoded-size cap
    /// in memory. Default 4.
    pub max_concurrent_ingests: Option<u32>,
    /// Open connections at once (1 to 65536); past it the collector stops accepting
    /// until one closes. Default 512.
    pub max_connections: Option<u32>,
    /// Seconds a client has to send a request's headers, counted from the connection's
    /// start or from the end of the previous answer (the idle timeout), 1 to 3600.
    /// Default 30.
    pub header_read_timeout_secs: Option<u64>,
    /// Seconds a request may take from its headers to its answer, body included (1 to
    /// 3600): a body dripped slower than this is cut off with 408. Default 300.
    pub request_timeout_secs: Option<u64>,
    /// Principals that may list every agent in `GET /v1/agents`: `token:NAME` (a token
    /// made with `token add NAME`) or `cert:SHA256` (a client certificate's thumbprint,
    /// lowercase hex). Everyone else sees only the agents bound to themselves. Default
    /// none.
    pub operators: Option<Vec<String>>,
    /// Defaults of the assessment (`vscout-collector assess`, `GET /v1/assessment`).
    pub assessment: Option<RawAssessment>,
    /// How long what is stored is kept.
    pub retention: Option<RawRetention>,
    /// Where what agents send is stored: `sqlite` (the default: `collector.db` in
    /// `data_dir`) or a PostgreSQL URL, `postgresql://USER@HOST:PORT/DATABASE`, which
    /// several collectors may share. The password goes in `storage_password_file`, never
    /// in the URL.
    pub storage: Option<String>,
    /// File whose first line is the PostgreSQL password. Default: the systemd credential
    /// `vscout-postgres-password` when the unit passes one (`LoadCredential=`), else
    /// none (trust or peer authentication).
    pub storage_password_file: Option<PathBuf>,
    /// Hours a log-in to the pages lasts (1 to 720); the session cookie expires then and
    /// the collector forgets it. Default 12.
    pub session_hours: Option<u64>,
}

/// `[retention]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRetention {
    /// Whole UTC days of 5-minute windows kept before today (1 to 3650). Default 35:
    /// the assessment's default month and a few days' margin.
    pub windows_days: Option<u32>,
    /// Whole UTC days of hourly summaries of the windows that went, day summaries (what
    /// the assessment reads) and the agents' daily sketches kept (at least
    /// `windows_days`, at most 3650). Default 400, the longest
    /// history an assessment asks for.
    pub summaries_days: Option<u32>,
    /// Seconds between prune passes (60 to 86400). Default 3600.
    pub prune_interval_secs: Option<u64>,
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
    pub max_concurrent_ingests: usize,
    pub max_connections: usize,
    pub header_read_timeout: Duration,
    pub request_timeout: Duration,
    pub operators: Vec<String>,
    /// The catalog and the assessment's defaults, checked.
    pub assessment: std::sync::Arc<Setup>,
    pub retention: Retention,
    pub storage: StorageChoice,
    /// How long a log-in to the pages lasts.
    pub session_ttl: Duration,
}

/// Which database, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageChoice {
    /// `collector.db` in `data_dir`.
    Sqlite,
    /// A PostgreSQL database; the password (if any) is read from the file at start.
    Postgres {
        url: String,
        password_file: Option<PathBuf>,
    },
}

/// The systemd credential read as the PostgreSQL password when no file is named.
const PG_CREDENTIAL: &str = "vscout-postgres-password";

/// Why the configuration is unusable (exit 64).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("invalid config: {0}")]
    Parse(String),
    #[error("invalid config: {0}")]
    Assessment(#[from] SetupError),
    #[error("invalid config: {key} = {value}: {reason}")]
    Invalid {
        key: &'static str,
        value: String,
        reason: String,
    },
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
    let ingests = within(
        "max_concurrent_ingests",
        raw.max_concurrent_ingests,
        4,
        1..=64,
    )?;
    let connections = within("max_connections", raw.max_connections, 512, 1..=65536)?;
    let header_read_timeout = secs("header_read_timeout_secs", raw.header_read_timeout_secs, 30)?;
    let request_timeout = secs("request_timeout_secs", raw.request_timeout_secs, 300)?;
    let session_hours = within("session_hours", raw.session_hours, 12, 1..=720)?;
    let operators = operators(raw.operators.unwrap_or_default())?;
    let retention = retention(raw.retention.unwrap_or_default())?;
    let storage = storage(raw.storage.as_deref(), raw.storage_password_file)?;
    let assessment = std::sync::Arc::new(Setup::load(raw.assessment.unwrap_or_default(), None)?);
    Ok(CollectorConfig {
        assessment,
        listen_addr,
        data_dir: raw
            .data_dir
            .unwrap_or_else(|| PathBuf::from("/var/lib/vscout-collector")),
        tls_files,
        client_ca_file: raw.client_ca_file,
        require_client_cert,
        max_body_bytes: max_body as usize,
        max_concurrent_ingests: ingests as usize,
        max_connections: connections as usize,
        header_read_timeout,
        request_timeout,
        operators,
        retention,
        storage,
        session_ttl: Duration::from_secs(session_hours * 3600),
    })
}

/// `storage` checked: `sqlite`, or a PostgreSQL URL without a password in it (URLs are
/// logged; passwords are not).
fn storage(
    value: Option<&str>,
    password_file: Option<PathBuf>,
) -> Result<StorageChoice, ConfigError> {
    let url = match value {
        None | Some("sqlite") => {
            if let Some(f) = password_file {
                return Err(ConfigError::Invalid {
                    key: "storage_password_file",
                    value: f.display().to_string(),
                    reason: "only a PostgreSQL storage takes a password".into(),
                });
            }
            return Ok(StorageChoice::Sqlite);
        }
        Some(url) => url,
    };
    let bad = |reason: String| ConfigError::Invalid {
        key: "storage",
        value: format!("{url:?}"),
        reason,
    };
    if !(url.starts_with("postgresql://") || url.starts_with("postgres://")) {
        return Err(bad(
            "expected sqlite or postgresql://USER@HOST:PORT/DATABASE".into(),
        ));
    }
    let parsed: postgres::Config = url.parse().map_err(|e| bad(format!("{e}")))?;
    if let Some(pw) = parsed.get_password() {
        // Said without the password itself.
        let shown = url.replacen(&format!(":{}@", String::from_utf8_lossy(pw)), ":***@", 1);
        return Err(ConfigError::Invalid {
            key: "storage",
            value: format!("{shown:?}"),
            reason: "a password in the URL would be logged: put it in storage_password_file".into(),
        });
    }
    let credential = std::env::var_os("CREDENTIALS_DIRECTORY")
        .map(|d| PathBuf::from(d).join(PG_CREDENTIAL))
        .filter(|p| p.is_file());
    Ok(StorageChoice::Postgres {
        url: url.to_owned(),
        password_file: password_file.or(credential),
    })
}

/// `[retention]` checked: summaries outlive windows (the summaries are made from them).
fn retention(raw: RawRetention) -> Result<Retention, ConfigError> {
    let d = Retention::default();
    let windows = within(
        "retention.windows_days",
        raw.windows_days.map(u64::from),
        u64::from(d.windows_days),
        1..=3650,
    )?;
    let summaries = within(
        "retention.summaries_days",
        raw.summaries_days.map(u64::from),
        u64::from(d.summaries_days).max(windows),
        windows..=3650,
    )?;
    let interval = within(
        "retention.prune_interval_secs",
        raw.prune_interval_secs,
        d.interval.as_secs(),
        60..=86_400,
    )?;
    Ok(Retention {
        windows_days: windows as u32,
        summaries_days: summaries as u32,
        interval: Duration::from_secs(interval),
    })
}

/// Operators are `token:NAME` or `cert:SHA256`.
fn operators(operators: Vec<String>) -> Result<Vec<String>, ConfigError> {
    if let Some(bad) = operators.iter().find(|o| {
        !(o.starts_with("token:") && o.len() > 6 || o.starts_with("cert:") && o.len() == 69)
    }) {
        return Err(ConfigError::Invalid {
            key: "operators",
            value: format!("{bad:?}"),
            reason: "expected token:NAME or cert:SHA256 (64 hex digits)".into(),
        });
    }
    Ok(operators)
}

/// `value` (or `default`) if it lies in `range`, else an error naming the key.
/// A timeout of 1 to 3600 seconds.
fn secs(key: &'static str, value: Option<u64>, default: u64) -> Result<Duration, ConfigError> {
    within(key, value, default, 1..=3600).map(Duration::from_secs)
}

fn within<T>(
    key: &'static str,
    value: Option<T>,
    default: T,
    range: std::ops::RangeInclusive<T>,
) -> Result<T, ConfigError>
where
    T: PartialOrd + Copy + std::fmt::Display,
{
    let v = value.unwrap_or(default);
    if range.contains(&v) {
        Ok(v)
    } else {
        Err(ConfigError::Invalid {
            key,
            value: v.to_string(),
            reason: format!("must be between {} and {}", range.start(), range.end()),
        })
    }
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

    #[test]
    fn the_shipped_example_is_valid_and_a_bad_assessment_default_stops_the_start() {
        let example = include_str!("../examples/collector.toml");
        let c = validate(parse(example).expect("parse")).expect("valid");
        assert_eq!(c.assessment.defaults.percentile, Some(95));
        assert_eq!(c.retention, Retention::default());
        let bad = example.replace("comfort = 1.3", "comfort = -1.0");
        let e = validate(parse(&bad).expect("parse")).expect_err("negative comfort");
        assert!(e.to_string().contains("comfort \"-1\""), "{e}");
        let short = example.replace("summaries_days = 400", "summaries_days = 10");
        let e = validate(parse(&short).expect("parse")).expect_err("summaries before windows");
        assert!(
            e.to_string()
                .contains("retention.summaries_days = 10: must be between 35 and 3650"),
            "{e}"
        );
        let e = parse("[retention]\nkeep = 1").expect_err("unknown key");
        assert!(e.to_string().contains("keep"), "{e}");
        let e = parse("[assessment]\ncolour = \"blue\"").expect_err("unknown key");
        assert!(e.to_string().contains("colour"), "{e}");
        let missing = "[assessment]\ncatalog_file = \"/nonexistent/catalog.json\"";
        let e = validate(parse(missing).expect("parse")).expect_err("no catalog");
        assert!(e.to_string().contains("/nonexistent/catalog.json"), "{e}");
    }

    #[test]
    fn storage_is_sqlite_or_a_postgresql_url_without_its_password() {
        let c = validate(RawConfig::default()).expect("defaults");
        assert_eq!(c.storage, StorageChoice::Sqlite);
        let pg = "storage = \"postgresql://vscout@db.example:5432/vscout\"\n\
                  storage_password_file = \"/etc/vscout/pg-password\"";
        let c = validate(parse(pg).expect("parse")).expect("postgresql");
        assert_eq!(
            c.storage,
            StorageChoice::Postgres {
                url: "postgresql://vscout@db.example:5432/vscout".into(),
                password_file: Some("/etc/vscout/pg-password".into()),
            }
        );
        let inline = "storage = \"postgresql://vscout:hunter2@db/vscout\"";
        let e = validate(parse(inline).expect("parse")).expect_err("password in the URL");
        assert!(e.to_string().contains("storage_password_file"), "{e}");
        assert!(!e.to_string().contains("hunter2"), "{e}");
        let e = validate(parse("storage = \"mysql://db\"").expect("parse")).expect_err("mysql");
        assert!(e.to_string().contains("mysql://db"), "{e}");
        let stray = "storage_password_file = \"/etc/pw\"";
        let e = validate(parse(stray).expect("parse")).expect_err("password for sqlite");
        assert!(e.to_string().contains("storage_password_file"), "{e}");
    }
}
