//! vscout-collector: the reference collector. Agents POST batches over HTTPS; the
//! collector authenticates them (bearer token or client certificate), stores each batch
//! exactly once in one transaction, and serves the latest inventory and the rollups.
//!
//! # Layout
//! - [`assess`]: right-sizing for Azure and AWS: the catalog and the sizing rules.
//! - [`config`]: the TOML file (optional) validated into `CollectorConfig`.
//! - [`tls`]: server certificate (from files, or self-signed on first start), client CA.
//! - [`auth`]: tokens (stored as SHA-256) and bearer parsing.
//! - [`store`]: the `Storage` trait and its SQLite implementation.
//! - [`server`]: the accept loop and the axum routes.
#![forbid(unsafe_code)]

pub mod assess;
pub mod auth;
pub mod config;
pub mod export;
pub mod server;
pub mod store;
pub mod tls;
pub mod web;

use std::future::Future;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use tracing::info;

use crate::config::{CollectorConfig, StorageChoice};
use crate::store::postgres::{PgStore, PgTarget};
use crate::store::sqlite::SqliteStore;
use crate::store::Storage;

/// Why the collector could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot use data directory {dir}: {reason}")]
    DataDir { dir: String, reason: String },
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error("tls: {0}")]
    Tls(String),
    #[error("cannot listen on {addr}: {reason}")]
    Listen { addr: String, reason: String },
}

/// Opens the store the configuration names: SQLite in the data directory (made if
/// needed: the certificate and first token live there either way), or PostgreSQL.
pub fn open_store(cfg: &CollectorConfig) -> Result<Arc<dyn Storage>, StartError> {
    std::fs::create_dir_all(&cfg.data_dir).map_err(|e| StartError::DataDir {
        dir: cfg.data_dir.display().to_string(),
        reason: e.to_string(),
    })?;
    Ok(match &cfg.storage {
        StorageChoice::Sqlite => Arc::new(SqliteStore::open(&cfg.data_dir.join("collector.db"))?),
        StorageChoice::Postgres { url, password_file } => {
            let target = PgTarget::new(url, password_file.as_deref())?;
            info!(url = %url, "storage: PostgreSQL");
            Arc::new(PgStore::open(&target)?)
        }
    })
}

/// Creates a token named `name` for `role`, stores its hash, and returns the token itself.
pub fn add_token(store: &dyn Storage, name: &str, role: store::Role) -> Result<String, StartError> {
    let token = auth::new_token();
    store.add_token(name, &auth::token_hash(&token), role)?;
    Ok(token)
}

/// Makes the first agent token: its file is written (atomically, 0600) before its hash is
/// stored, so that a crash in between leaves no token in the database without its file
/// (the next start simply makes another).
fn first_token(
    store: &dyn Storage,
    data_dir: &std::path::Path,
) -> Result<std::path::PathBuf, StartError> {
    let token = auth::new_token();
    let file = data_dir.join("first-agent.token");
    tls::write_private(&file, format!("{token}\n").as_bytes()).map_err(|reason| {
        StartError::DataDir {
            dir: data_dir.display().to_string(),
            reason,
        }
    })?;
    store.add_token("first-agent", &auth::token_hash(&token), store::Role::Agent)?;
    Ok(file)
}

/// Prints where the collector is, its certificate's thumbprint, the first token's file
/// (on first start) and last `COLLECTOR_READY=1`, which scripts and tests wait for.
fn announce(
    addr: std::net::SocketAddr,
    thumbprint: &str,
    generated: Option<&std::path::Path>,
    first_token: Option<&std::path::Path>,
) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "COLLECTOR_URL=https://{addr}");
    let _ = writeln!(out, "COLLECTOR_THUMBPRINT_SHA256={}", thumbprint);
    if let Some(cert) = generated {
        let _ = writeln!(
            out,
            "generated a self-signed certificate: {}",
            cert.display()
        );
    }
    if let Some(file) = first_token {
        // Only where the token is: under systemd stdout goes to the journal, which more
        // people read than the collector's data directory.
        let _ = writeln!(out, "FIRST_AGENT_TOKEN_FILE={}", file.display());
    }
    let _ = writeln!(out, "COLLECTOR_READY=1");
    let _ = out.flush();
    drop(out);
}

/// Feeds systemd's watchdog while the runtime runs and the database answers.
fn spawn_watchdog(
    notifier: &vscout_service::notify::Notifier,
    store: &Arc<dyn Storage>,
) -> Option<tokio::task::JoinHandle<()>> {
    notifier.watchdog_timeout().map(|t| {
        let (notifier, store) = (notifier.clone(), store.clone());
        tokio::spawn(async move {
            loop {
                let db = store.clone();
                let alive = tokio::task::spawn_blocking(move || db.token_count().is_ok())
                    .await
                    .unwrap_or(false);
                if alive {
                    notifier.watchdog();
                } else {
                    tracing::error!("the database does not answer; no longer feeding the watchdog");
                }
                tokio::time::sleep(t / 3).await;
            }
        })
    })
}

/// What the collector needs from its database before it listens, on a blocking thread
/// (the PostgreSQL client blocks): the store opened, the first token made on first start
/// (its file's path), and retention's horizon set (a step over no series: windows older
/// than it are refused from the first request on).
fn prepare_store(
    cfg: &CollectorConfig,
) -> Result<(Arc<dyn Storage>, Option<std::path::PathBuf>), StartError> {
    let store = open_store(cfg)?;
    let first = if cfg.client_ca_file.is_none() && store.first_token_needed()? {
        Some(first_token(store.as_ref(), &cfg.data_dir)?)
    } else {
        None
    };
    store.prune_step(
        vscout_service::telemetry::unix_now_ms() / 1000,
        &cfg.retention,
        0,
        0,
    )?;
    Ok((store, first))
}

/// Starts the collector and serves until `shutdown` resolves. Once listening (and, on
/// first start, with the first token's file written) it prints to stdout the listening
/// URL, the certificate thumbprint, on first start the first token's file, and last
/// `COLLECTOR_READY=1`.
pub async fn run(
    cfg: CollectorConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), StartError> {
    let setup = cfg.clone();
    let (store, first_token) = tokio::task::spawn_blocking(move || prepare_store(&setup))
        .await
        .map_err(|e| StartError::Store(store::StoreError::Other(e.to_string())))??;
    let tls = tls::server_tls(&cfg).map_err(StartError::Tls)?;
    let listener = tokio::net::TcpListener::bind(cfg.listen_addr)
        .await
        .map_err(|e| StartError::Listen {
            addr: cfg.listen_addr.to_string(),
            reason: e.to_string(),
        })?;
    let addr = listener.local_addr().map_err(|e| StartError::Listen {
        addr: cfg.listen_addr.to_string(),
        reason: e.to_string(),
    })?;
    // Everything an agent needs exists before the collector says where it is: the
    // listener, the certificate and the first token's file. The announcement ends with
    // COLLECTOR_READY, which scripts and tests wait for. Retention's passes start beside
    // the server: one now, then every `prune_interval_secs`.
    let pruner = tokio::spawn(store::retention::run(store.clone(), cfg.retention));
    announce(
        addr,
        &tls.thumbprint,
        tls.generated.as_deref(),
        first_token.as_deref(),
    );
    info!(%addr, thumbprint = %tls.thumbprint, "collector listening");
    // Under systemd (Type=notify): ready once listening; the watchdog is fed while the
    // runtime runs and the database answers.
    let notifier = vscout_service::notify::Notifier::from_env();
    notifier.ready();
    notifier.status(&format!("listening on https://{addr}"));
    let watchdog = spawn_watchdog(&notifier, &store);
    let state = server::AppState::new(
        store.clone(),
        cfg.max_concurrent_ingests,
        cfg.operators.clone(),
        cfg.assessment.clone(),
        cfg.session_ttl,
    );
    let counters = state.counters.clone();
    let app = server::router(state, cfg.max_body_bytes);
    let limits = server::ConnLimits {
        max_connections: cfg.max_connections,
        header_read_timeout: cfg.header_read_timeout,
        request_timeout: cfg.request_timeout,
    };
    let shutdown = async {
        shutdown.await;
        notifier.stopping();
    };
    server::serve(
        listener,
        tls.config,
        app,
        counters,
        limits,
        shutdown,
        Duration::from_secs(10),
    )
    .await;
    if let Some(w) = watchdog {
        w.abort();
    }
    // A step in flight finishes on its blocking thread (one transaction); no pass
    // starts after this.
    pruner.abort();
    info!("collector stopped");
    Ok(())
}
