//! Storage behind a trait, so that the HTTP layer does not know SQLite: the embedded
//! default is `sqlite::SqliteStore`; a PostgreSQL store for several collector instances
//! would implement the same trait. Every call is synchronous (the server runs them on
//! blocking threads) and every ingest is one transaction.

pub mod sqlite;

use serde::Serialize;
use vscout::ship::Batch;

/// What an ingest did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct IngestOutcome {
    /// The batch (agent, seq) was already stored: acknowledged, nothing written.
    pub duplicate: bool,
    pub records: usize,
    /// Rollups and daily rows that already existed (same series and window) and were
    /// kept as they were.
    pub rows_ignored: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("storage error: {0}")]
    Other(String),
}

impl StoreError {
    /// Storage errors (a locked or full disk) may pass: the agent retries on a 503.
    pub fn is_retryable(&self) -> bool {
        true
    }
}

/// The identity a request was authenticated as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    Token(String),
    ClientCert(String),
}

impl Principal {
    pub fn name(&self) -> String {
        match self {
            Principal::Token(n) => format!("token:{n}"),
            Principal::ClientCert(n) => format!("cert:{n}"),
        }
    }
}

/// Filters of `GET /v1/vms`.
#[derive(Debug, Default, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VmFilter {
    pub vcenter: Option<String>,
    /// Substring of the VM name.
    pub name: Option<String>,
    pub power_state: Option<String>,
    pub cluster: Option<String>,
    /// Include the whole inventory record of each VM.
    pub full: Option<bool>,
    pub limit: Option<u32>,
    pub offset: Option<u32>,
}

/// Query of `GET /v1/vms/{id}/metrics`.
#[derive(Debug, Default, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsQuery {
    pub counter: Option<String>,
    /// Unix seconds, inclusive window starts.
    pub from: Option<i64>,
    pub to: Option<i64>,
    pub vcenter: Option<String>,
}

/// Row counts, for operators and tests.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Counts {
    pub agents: u64,
    pub batches: u64,
    pub vcenters: u64,
    pub vms: u64,
    pub series: u64,
    pub rollups: u64,
    pub daily: u64,
    pub duplicate_batches: u64,
    pub rows_ignored: u64,
}

pub trait Storage: Send + Sync + std::fmt::Debug {
    /// Stores one decoded batch atomically, once per (agent, seq).
    fn ingest(
        &self,
        agent_id: &str,
        seq: u64,
        agent_version: &str,
        principal: &Principal,
        batch: &Batch,
    ) -> Result<IngestOutcome, StoreError>;
    fn vcenters(&self) -> Result<Vec<serde_json::Value>, StoreError>;
    fn vms(&self, filter: &VmFilter) -> Result<Vec<serde_json::Value>, StoreError>;
    fn metrics(&self, vm: &str, q: &MetricsQuery) -> Result<Vec<serde_json::Value>, StoreError>;
    fn agents(&self) -> Result<Vec<serde_json::Value>, StoreError>;
    fn counts(&self) -> Result<Counts, StoreError>;
    /// Adds a token under `name` (its SHA-256 only is stored).
    fn add_token(&self, name: &str, sha256_hex: &str) -> Result<(), StoreError>;
    /// The token's name if a token with this SHA-256 exists.
    fn token_name(&self, sha256_hex: &str) -> Result<Option<String>, StoreError>;
    fn token_count(&self) -> Result<u64, StoreError>;
}
