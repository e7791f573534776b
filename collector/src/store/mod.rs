//! Storage behind a trait, so that the HTTP layer does not know which database: the
//! embedded default is `sqlite::SqliteStore`; `postgres::PgStore` serves estates that
//! outgrow one file and several collector processes sharing one database. Every call is synchronous (the server runs them on
//! blocking threads) and every ingest is one transaction.

pub mod pack;
pub mod postgres;
pub mod retention;
mod shape;
pub mod sqlite;

pub use retention::{PruneStep, Pruned, Retention};

use compact_str::CompactString;
use serde::Serialize;
use vscout_wire::batch::Batch;
use vscout_wire::inventory::{VcenterInventory, Vm};
use vscout_wire::sketch::Sketch;

/// Seconds in a UTC day: the stores' days (summaries, packs, partitions) are UTC days.
pub(crate) const DAY_SECS: i64 = 86_400;

/// The start of the UTC day holding time `t` (seconds; saturating: an open range's
/// `i64::MIN` stays the first day).
pub(crate) fn day_of(t: i64) -> i64 {
    t.div_euclid(DAY_SECS).saturating_mul(DAY_SECS)
}

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
    Postgres(#[from] ::postgres::Error),
    #[error("storage error: {0}")]
    Other(String),
    #[error("agent id {agent_id:?} belongs to {owner}, not {caller}: an agent id is bound to the token or client certificate that first used it")]
    AgentOwned {
        agent_id: String,
        owner: String,
        caller: String,
    },
    #[error("a token named {0:?} already exists (see `vscout-collector token list`); revoke it first or choose another name")]
    TokenExists(String),
    #[error("a user named {0:?} already exists (see `vscout-collector user list`); remove it first or choose another name")]
    UserExists(String),
}

impl From<rusqlite::types::FromSqlError> for StoreError {
    fn from(e: rusqlite::types::FromSqlError) -> Self {
        Self::Other(e.to_string())
    }
}

impl StoreError {
    /// Storage errors (a locked or full disk) may pass: the agent retries on a 503. A
    /// token name that is taken stays taken.
    pub fn is_retryable(&self) -> bool {
        !matches!(
            self,
            Self::TokenExists(_) | Self::UserExists(_) | Self::AgentOwned { .. }
        )
    }
}

/// An agent token as `token list` shows it (never the token itself: only its hash is
/// stored).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenInfo {
    pub name: String,
    pub role: Role,
    /// Unix seconds.
    pub created: i64,
    /// When an agent authenticated with it last sent a batch (Unix seconds), if ever.
    pub last_used: Option<i64>,
}

/// What a token may do: an agent's sends batches (and reads the API, as before viewers
/// existed); a viewer's reads the API and the pages and cannot send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Agent,
    Viewer,
}

impl Role {
    /// The stored and printed name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Agent => "agent",
            Role::Viewer => "viewer",
        }
    }

    /// A stored name; anything unknown is an agent's (the role before roles existed).
    pub fn from_stored(s: &str) -> Role {
        if s == "viewer" {
            Role::Viewer
        } else {
            Role::Agent
        }
    }
}

/// A person who may log in to the pages, as `user list` shows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserInfo {
    pub name: String,
    /// Unix seconds.
    pub created: i64,
    /// The last successful log-in (Unix seconds), if any.
    pub last_login: Option<i64>,
}

/// The identity a request was authenticated as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// An agent's token.
    Token(String),
    ClientCert(String),
    /// A viewer's token: reads, never sends.
    Viewer(String),
    /// A person logged in to the pages (a session cookie).
    User(String),
}

impl Principal {
    pub fn name(&self) -> String {
        match self {
            // Token names are unique whatever their role.
            Principal::Token(n) | Principal::Viewer(n) => format!("token:{n}"),
            Principal::ClientCert(n) => format!("cert:{n}"),
            Principal::User(n) => format!("user:{n}"),
        }
    }

    /// Agents send batches; viewers and people do not.
    pub fn may_ingest(&self) -> bool {
        matches!(self, Principal::Token(_) | Principal::ClientCert(_))
    }

    /// People and viewer tokens open the pages; an agent's credentials do not (they sit
    /// on the agent's host, beside vCenter's password, and are not a log-in).
    pub fn may_view_pages(&self) -> bool {
        matches!(self, Principal::Viewer(_) | Principal::User(_))
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

/// The kinds of entity the API serves, by their path segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntityKind {
    Vm,
    Host,
    Cluster,
    Datastore,
}

impl EntityKind {
    /// `vms`, `hosts`, `clusters`, `datastores`.
    pub fn from_path(segment: &str) -> Option<Self> {
        match segment {
            "vms" => Some(Self::Vm),
            "hosts" => Some(Self::Host),
            "clusters" => Some(Self::Cluster),
            "datastores" => Some(Self::Datastore),
            _ => None,
        }
    }

    /// vSphere's managed object type, as series record it.
    pub fn entity_type(self) -> &'static str {
        match self {
            Self::Vm => "VirtualMachine",
            Self::Host => "HostSystem",
            Self::Cluster => "ClusterComputeResource",
            Self::Datastore => "Datastore",
        }
    }

    /// Singular, for messages.
    pub fn noun(self) -> &'static str {
        match self {
            Self::Vm => "VM",
            Self::Host => "host",
            Self::Cluster => "cluster",
            Self::Datastore => "datastore",
        }
    }
}

/// Filters of `GET /v1/hosts`, `/v1/clusters`, `/v1/datastores`.
#[derive(Debug, Default, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntityFilter {
    pub vcenter: Option<String>,
    /// Substring of the name.
    pub name: Option<String>,
    pub limit: Option<u32>,
    pub offset: Option<u32>,
}

/// Query of `GET /v1/{kind}/{id}/daily`: daily sketches merged over the days whose start
/// is in `[from, to]`.
#[derive(Debug, Default, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DailyQuery {
    pub counter: Option<String>,
    /// Unix seconds, inclusive day starts.
    pub from: Option<i64>,
    pub to: Option<i64>,
    pub vcenter: Option<String>,
}

/// Query of `GET /v1/{kind}/{id}/metrics`.
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
    /// What retention deleted since the database was made.
    #[serde(default)]
    pub pruned: Pruned,
}

/// The VM counters the assessment reads. The store sums their windows up by day as they
/// arrive (and no other series'), so that a month of them reads as 30 rows per series;
/// `vm_usage` of another counter reads its windows one by one.
pub const USAGE_COUNTERS: [&str; 9] = [
    "cpu.usage.average",
    "mem.usage.average",
    "mem.consumed.average",
    "virtualDisk.numberReadAveraged.average",
    "virtualDisk.numberWriteAveraged.average",
    "virtualDisk.read.average",
    "virtualDisk.write.average",
    "net.received.average",
    "net.transmitted.average",
];

/// The end of the latest window a batch carries (Unix seconds), if it carries any: what
/// an agent last shipped, shown beside it.
pub fn last_window_end(batch: &Batch) -> Option<i64> {
    use vscout_wire::batch::Record;
    batch
        .records
        .iter()
        .filter_map(|r| match r {
            Record::Rollup(r) => Some(r.window_start + i64::from(r.window_secs)),
            Record::Rollups(set) => set.rows.iter().map(|row| row.6 + i64::from(row.7)).max(),
            _ => None,
        })
        .max()
}

/// Whether the store sums up this series' windows by day.
pub fn summarised(entity_type: &str, counter: &str) -> bool {
    entity_type == "VirtualMachine" && USAGE_COUNTERS.contains(&counter)
}

/// What `Storage::vm_usage` reads: the VM series of some counters over a history.
#[derive(Debug, Clone)]
pub struct UsageQuery<'a> {
    /// Counter names (`cpu.usage.average` …).
    pub counters: &'a [&'a str],
    /// Unix seconds: whole UTC days from the one holding `from_s`, windows starting
    /// before `to_s`.
    pub from_s: i64,
    pub to_s: i64,
    /// Sketch every sample (the agent's daily sketches, for the days it sent one) instead
    /// of the windows' peaks.
    pub samples: bool,
    /// Only this VM (vCenter, VM id).
    pub vm: Option<(&'a str, &'a str)>,
}

/// One row of an entity's metrics: a window, or an hour retention kept of windows that
/// went (`window_secs` 3600, no p50 or p99). Typed, so that 100,000 rows are written out
/// as JSON without building a map for each. The series' names are small strings kept
/// inline (no allocation for each of 100,000 rows).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricsRow {
    pub vcenter: CompactString,
    pub counter: CompactString,
    pub instance: CompactString,
    pub unit: CompactString,
    pub stats_type: CompactString,
    /// Unix seconds.
    pub window_start: i64,
    pub window_secs: i64,
    pub expected_samples: i64,
    pub missing_samples: i64,
    pub count: i64,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub mean: Option<f64>,
    pub p50: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
}

impl MetricsRow {
    /// A row of no series and no figures, to fill in.
    pub(crate) fn empty() -> Self {
        MetricsRow {
            vcenter: CompactString::default(),
            counter: CompactString::default(),
            instance: CompactString::default(),
            unit: CompactString::default(),
            stats_type: CompactString::default(),
            window_start: 0,
            window_secs: 0,
            expected_samples: 0,
            missing_samples: 0,
            count: 0,
            min: None,
            max: None,
            mean: None,
            p50: None,
            p95: None,
            p99: None,
        }
    }
}

/// One VM series over a history: its windows summed up and a sketch of their peaks (or
/// samples).
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesUsage {
    pub vcenter: String,
    pub vm_id: String,
    pub counter: String,
    pub instance: String,
    /// Windows held, the seconds they cover, samples received and expected in them.
    pub windows: u64,
    pub covered_secs: u64,
    pub received: u64,
    pub expected: u64,
    /// Start of the first window and end of the last (Unix seconds).
    pub first_s: i64,
    pub end_s: i64,
    /// Window peaks; for `samples`, every sample of the days with a daily sketch.
    pub sketch: Sketch,
    /// Days whose samples (not peaks) are in the sketch.
    pub sample_days: u32,
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
    /// Hosts, clusters or datastores of the latest inventories.
    fn entities(
        &self,
        kind: EntityKind,
        filter: &EntityFilter,
    ) -> Result<Vec<serde_json::Value>, StoreError>;
    /// Rollups of one entity (`vcenter:id`, or `id` with `q.vcenter`); `None` if no
    /// inventory or series knows it.
    fn metrics(
        &self,
        kind: EntityKind,
        id: &str,
        q: &MetricsQuery,
    ) -> Result<Option<Vec<MetricsRow>>, StoreError>;
    /// Daily sketches of one entity merged per series over a range of days: percentiles
    /// of every sample of those days; `None` if no inventory or series knows it.
    fn daily(
        &self,
        kind: EntityKind,
        id: &str,
        q: &DailyQuery,
    ) -> Result<Option<Vec<serde_json::Value>>, StoreError>;
    /// Agents that sent batches: all, or only those bound to the principal `only`
    /// (`token:NAME`, `cert:SHA256`).
    /// The VM series of `q.counters` over `q`'s history, one call of `each` per series
    /// that has windows there, ordered by vCenter and VM.
    fn vm_usage(
        &self,
        q: &UsageQuery<'_>,
        each: &mut dyn FnMut(SeriesUsage),
    ) -> Result<(), StoreError>;
    /// Every VM of the latest inventories, with its vCenter, by vCenter and VM id; or
    /// only those with the id `only.1` (in the vCenter `only.0`, if given).
    fn vm_records(
        &self,
        only: Option<(Option<&str>, &str)>,
        each: &mut dyn FnMut(&str, Vm),
    ) -> Result<(), StoreError>;
    /// The latest inventory of every vCenter, by name, for the export: what the endpoint
    /// is, when it was read, its hosts, clusters and datastores. `vms` is left empty (read
    /// them with `vm_records`); datacenters, networks and warnings are not kept.
    fn inventories(&self) -> Result<Vec<VcenterInventory>, StoreError>;
    fn agents(&self, only: Option<&str>) -> Result<Vec<serde_json::Value>, StoreError>;
    fn counts(&self) -> Result<Counts, StoreError>;
    /// One step of retention as of `now_s`: for the series numbered after `after` (at
    /// most `series` of them, in one transaction), deletes the windows, summaries and
    /// sketches `r` no longer keeps; windows older than what was pruned are refused from
    /// then on (a step over no series sets only that). A stopped prune loses nothing
    /// that should stay: start again at 0.
    fn prune_step(
        &self,
        now_s: i64,
        r: &Retention,
        after: i64,
        series: usize,
    ) -> Result<PruneStep, StoreError>;
    /// Adds a token under `name` (its SHA-256 only is stored); `TokenExists` if the name
    /// is taken.
    fn add_token(&self, name: &str, sha256_hex: &str, role: Role) -> Result<(), StoreError>;
    /// The token's name and role if a token with this SHA-256 exists (checked on every
    /// request, so a revoked token is refused at once).
    fn token(&self, sha256_hex: &str) -> Result<Option<(String, Role)>, StoreError>;
    fn token_count(&self) -> Result<u64, StoreError>;
    /// Every token, by name.
    fn tokens(&self) -> Result<Vec<TokenInfo>, StoreError>;
    /// Deletes the token `name`; false if there was none.
    fn revoke_token(&self, name: &str) -> Result<bool, StoreError>;
    /// True until the first token was ever made: a collector whose tokens were all
    /// revoked does not make a new first token on its next start.
    fn first_token_needed(&self) -> Result<bool, StoreError>;
    /// Adds a person who may log in, with the password's PHC string (argon2id);
    /// `UserExists` if the name is taken.
    fn add_user(&self, name: &str, phc: &str) -> Result<(), StoreError>;
    /// The stored password hash of `name`, if there is such a user.
    fn user_hash(&self, name: &str) -> Result<Option<String>, StoreError>;
    /// Deletes the user and every session of theirs; false if there was none.
    fn remove_user(&self, name: &str) -> Result<bool, StoreError>;
    fn users(&self) -> Result<Vec<UserInfo>, StoreError>;
    /// Records a session (its SHA-256 only) for `user` until `expires_s`, notes the
    /// log-in, and deletes sessions that expired.
    fn add_session(&self, sha256_hex: &str, user: &str, expires_s: i64) -> Result<(), StoreError>;
    /// The user of an unexpired session (checked on every request: a removed user's
    /// sessions end at once).
    fn session_user(&self, sha256_hex: &str, now_s: i64) -> Result<Option<String>, StoreError>;
    fn end_session(&self, sha256_hex: &str) -> Result<(), StoreError>;
}
