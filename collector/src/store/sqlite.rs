//! The embedded store: one SQLite file in WAL mode (readers never wait for the writer),
//! `synchronous = FULL` so that an acknowledged batch survives a power cut, one
//! transaction per batch, and a `batches` table keyed by (agent, seq) so that a resent
//! batch is acknowledged without being stored twice.
//!
//! Series (vCenter, entity, counter, instance) are numbered once and cached in memory, so
//! a rollup row is a few integers and floats keyed by (window start, series); closed days
//! are packed a row per series and day (`sqlite/packs.rs`).

mod access;
mod packs;
mod prune;
mod stored;
mod usage;

use compact_str::CompactString;
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Mutex;

use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};
use serde_json::{json, Value};
use vscout_service::telemetry::unix_now_ms as now_ms;
use vscout_wire::batch::{AgentHealth, RollupView};
use vscout_wire::batch::{Batch, Record};
use vscout_wire::inventory::{VcenterInventory, Vm};
use vscout_wire::rollup::SeriesLabels;
use vscout_wire::sketch::{Sketch, SketchSum};

use super::shape::{health_json, split_id, window_row, DailyMerge};
use super::{
    Counts, DailyQuery, EntityFilter, EntityKind, IngestOutcome, MetricsQuery, MetricsRow,
    Principal, PruneStep, Retention, Role, SeriesUsage, Storage, StoreError, TokenInfo, UsageQuery,
    UserInfo, VmFilter,
};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS batches (
    agent_id TEXT NOT NULL, seq INTEGER NOT NULL, received_ms INTEGER NOT NULL,
    records INTEGER NOT NULL, rollups INTEGER NOT NULL, principal TEXT NOT NULL,
    PRIMARY KEY (agent_id, seq)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS agents (
    agent_id TEXT PRIMARY KEY, version TEXT NOT NULL, principal TEXT NOT NULL,
    first_seen_ms INTEGER NOT NULL, last_seen_ms INTEGER NOT NULL, last_seq INTEGER NOT NULL,
    batches INTEGER NOT NULL DEFAULT 0, duplicate_batches INTEGER NOT NULL DEFAULT 0,
    rows_ignored INTEGER NOT NULL DEFAULT 0, health TEXT,
    forgotten_seq INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS vcenters (
    vcenter TEXT PRIMARY KEY, agent_id TEXT NOT NULL, url TEXT NOT NULL, about TEXT NOT NULL,
    collected_at TEXT NOT NULL, vms INTEGER NOT NULL, hosts INTEGER NOT NULL,
    clusters INTEGER NOT NULL, datastores INTEGER NOT NULL, networks INTEGER NOT NULL,
    warnings INTEGER NOT NULL, updated_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS vms (
    vcenter TEXT NOT NULL, vm_id TEXT NOT NULL, name TEXT NOT NULL, power_state TEXT,
    guest_os TEXT, num_cpu INTEGER, memory_bytes INTEGER, host TEXT NOT NULL,
    cluster TEXT NOT NULL, datacenter TEXT NOT NULL, doc TEXT NOT NULL,
    PRIMARY KEY (vcenter, vm_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS entities (
    vcenter TEXT NOT NULL, kind TEXT NOT NULL, entity_id TEXT NOT NULL, name TEXT NOT NULL,
    doc TEXT NOT NULL, PRIMARY KEY (vcenter, kind, entity_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS series (
    id INTEGER PRIMARY KEY, vcenter TEXT NOT NULL, entity_type TEXT NOT NULL,
    entity_id TEXT NOT NULL, counter TEXT NOT NULL, instance TEXT NOT NULL,
    unit TEXT NOT NULL, stats_type TEXT NOT NULL,
    UNIQUE (vcenter, entity_id, counter, instance));
-- What retention keeps of an hour of windows once they go: counts summed, the lowest
-- min, the highest max and p95, the mean weighted by samples.
CREATE TABLE IF NOT EXISTS rollup_hours (
    series_id INTEGER NOT NULL, hour_start INTEGER NOT NULL, windows INTEGER NOT NULL,
    expected INTEGER NOT NULL, missing INTEGER NOT NULL, count INTEGER NOT NULL,
    min REAL, max REAL, mean REAL, p95 REAL,
    PRIMARY KEY (series_id, hour_start)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS daily (
    series_id INTEGER NOT NULL, day_start INTEGER NOT NULL, samples INTEGER NOT NULL,
    expected INTEGER NOT NULL, max REAL, sketch TEXT NOT NULL,
    PRIMARY KEY (series_id, day_start)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tokens (
    name TEXT PRIMARY KEY, sha256 TEXT NOT NULL UNIQUE, created_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
-- Databases from before the meta table: tokens there means tokens were made.
INSERT OR IGNORE INTO meta SELECT 'tokens_made', '1' WHERE EXISTS (SELECT 1 FROM tokens);
";

/// The open day's windows (closed days are packed, see `window_packs`), keyed by time so
/// that a batch of one window's rollups appends to a few pages instead of touching a page
/// per series; a series' windows are read by looking each window start up. Made with
/// `SCHEMA`, and by `migrate` for a table keyed by series first.
const ROLLUPS: &str = "
CREATE TABLE IF NOT EXISTS rollups (
    series_id INTEGER NOT NULL, window_start INTEGER NOT NULL, window_secs INTEGER NOT NULL,
    expected INTEGER NOT NULL, missing INTEGER NOT NULL, count INTEGER NOT NULL,
    min REAL, max REAL, mean REAL, p50 REAL, p95 REAL, p99 REAL,
    PRIMARY KEY (window_start, series_id)) WITHOUT ROWID;
";

/// Series are looked up by `vcenter 0x1f entity 0x1f counter 0x1f instance`, built in a
/// reused buffer: a hit costs no allocation (130,000 lookups per 10,000-VM window).
fn series_key(buf: &mut String, vcenter: &str, entity_id: &str, counter: &str, instance: &str) {
    buf.clear();
    for (i, part) in [vcenter, entity_id, counter, instance].iter().enumerate() {
        if i > 0 {
            buf.push('\u{1f}');
        }
        buf.push_str(part);
    }
}

#[derive(Debug)]
struct Writer {
    conn: Connection,
    series: HashMap<String, i64>,
    days: usage::OpenDays,
    /// Windows starting before it are refused: retention deleted their days.
    horizon: i64,
    /// Windows starting before it may be in a pack: ingest looks there first.
    packed_before: i64,
}

/// SQLite storage: one writer connection and one reader connection.
#[derive(Debug)]
pub struct SqliteStore {
    writer: Mutex<Writer>,
    reader: Mutex<Connection>,
}

fn open_conn(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // Statements over a list of window starts (packs.rs) join the usual dozen.
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let mut conn = open_conn(path)?;
        conn.execute_batch(SCHEMA)?;
        conn.execute_batch(ROLLUPS)?;
        conn.execute_batch(packs::SCHEMA)?;
        conn.execute_batch(access::SCHEMA)?;
        migrate(&conn)?;
        access::migrate(&conn)?;
        stored::prepare(&mut conn)?;
        usage::prepare(&mut conn)?;
        let mut series = HashMap::new();
        {
            let mut stmt =
                conn.prepare("SELECT id, vcenter, entity_id, counter, instance FROM series")?;
            let mut rows = stmt.query([])?;
            let mut key = String::new();
            while let Some(r) = rows.next()? {
                let (v, e, c, i): (String, String, String, String) =
                    (r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?);
                series_key(&mut key, &v, &e, &c, &i);
                series.insert(key.clone(), r.get::<_, i64>(0)?);
            }
        }
        let reader = open_conn(path)?;
        let horizon = prune::horizon(&conn)?;
        let packed_before = packs::packed_before(&conn)?;
        Ok(Self {
            writer: Mutex::new(Writer {
                conn,
                series,
                days: usage::OpenDays::default(),
                horizon,
                packed_before,
            }),
            reader: Mutex::new(reader),
        })
    }

    fn reader(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.reader.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn writer(&self) -> std::sync::MutexGuard<'_, Writer> {
        self.writer.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Series numbered inside the current transaction: merged into the cache only on commit.
struct TxSeries<'a> {
    cache: &'a HashMap<String, i64>,
    new: HashMap<String, i64>,
    /// Those of `new` this transaction inserted (the rest another writer had numbered).
    created: HashSet<i64>,
    key: String,
}

impl TxSeries<'_> {
    fn id(&mut self, tx: &Transaction<'_>, v: &SeriesLabels<'_>) -> Result<i64, StoreError> {
        series_key(&mut self.key, v.vcenter, v.entity_id, v.counter, v.instance);
        if let Some(id) = self
            .cache
            .get(self.key.as_str())
            .or_else(|| self.new.get(self.key.as_str()))
        {
            return Ok(*id);
        }
        // Another writer on the same file (a second store opened on it) may have
        // numbered it since this one's cache was filled.
        let mut stmt = tx.prepare_cached(
            "INSERT OR IGNORE INTO series (vcenter, entity_type, entity_id, counter, instance, unit, stats_type)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?;
        let added = stmt.execute(params![
            v.vcenter,
            v.entity_type,
            v.entity_id,
            v.counter,
            v.instance,
            v.unit,
            v.stats_type
        ])?;
        let id = if added == 1 {
            let id = tx.last_insert_rowid();
            self.created.insert(id);
            id
        } else {
            tx.prepare_cached(
                "SELECT id FROM series
                 WHERE vcenter = ?1 AND entity_id = ?2 AND counter = ?3 AND instance = ?4",
            )?
            .query_row(
                params![v.vcenter, v.entity_id, v.counter, v.instance],
                |r| r.get(0),
            )?
        };
        self.new.insert(self.key.clone(), id);
        Ok(id)
    }
}

/// Inserts one rollup, noting its series and day in `touched`; false if that series and
/// window was already there.
fn insert_rollup(
    tx: &Transaction<'_>,
    ids: &mut TxSeries<'_>,
    touched: &mut HashSet<(i64, i64)>,
    v: &RollupView<'_>,
    (horizon, packed_before): (i64, i64),
    tally: &mut Tally,
) -> Result<(), StoreError> {
    // A window of a day retention deleted stays out: storing it would summarise that
    // day again from this one window.
    if v.window_start < horizon {
        tally.expired += 1;
        return Ok(());
    }
    let id = ids.id(tx, &v.labels)?;
    // A late window of a packed day: stored as a row unless the pack has it already.
    if v.window_start < packed_before && packs::holds(tx, id, v.window_start)? {
        tally.ignored += 1;
        return Ok(());
    }
    let mut stmt = tx.prepare_cached(
        "INSERT OR IGNORE INTO rollups VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )?;
    let s = v.stats;
    let n = stmt.execute(params![
        id,
        v.window_start,
        v.window_secs,
        v.expected_samples,
        v.missing_samples,
        s.map_or(0, |s| s.0),
        s.map(|s| s.1),
        s.map(|s| s.2),
        s.map(|s| s.3),
        s.map(|s| s.4),
        s.map(|s| s.5),
        s.map(|s| s.6),
    ])?;
    tally.stored += n as u64;
    if n == 1 && super::summarised(v.labels.entity_type, v.labels.counter) {
        touched.insert((id, usage::hour_of(v.window_start)));
    }
    if n == 0 {
        tally.ignored += 1;
    }
    Ok(())
}

/// Whether the agent's batch `seq` was stored before: its key is kept, or it is at or
/// below the agent's `forgotten_seq` (retention forgot keys up to it).
fn stored_before(tx: &Connection, agent_id: &str, seq: i64) -> Result<bool, StoreError> {
    let seen: Option<i64> = tx
        .query_row(
            "SELECT 1 FROM batches WHERE agent_id = ?1 AND seq = ?2
             UNION ALL
             SELECT 1 FROM agents WHERE agent_id = ?1 AND forgotten_seq >= ?2",
            params![agent_id, seq],
            |r| r.get(0),
        )
        .optional()?;
    Ok(seen.is_some())
}

/// Rows of a batch not stored.
#[derive(Debug, Default)]
struct Tally {
    /// Their series and window were stored before: the stored row is kept.
    ignored: usize,
    /// Older than what retention keeps: refused, counted apart.
    expired: u64,
    /// Windows and daily sketches stored.
    stored: u64,
    sketches: u64,
}

impl Storage for SqliteStore {
    fn ingest(
        &self,
        agent_id: &str,
        seq: u64,
        agent_version: &str,
        principal: &Principal,
        batch: &Batch,
    ) -> Result<IngestOutcome, StoreError> {
        let mut guard = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let Writer {
            conn,
            series,
            days,
            horizon,
            packed_before,
        } = &mut *guard;
        let limits = (*horizon, *packed_before);
        let now = now_ms();
        let seq = i64::try_from(seq)
            .map_err(|_| StoreError::Other(format!("sequence {seq} out of range")))?;
        let who = principal.name();
        // Write-locked from the start: a writer that began reading and must then upgrade
        // its lock fails at once when another writer (`token add`, a second store on the
        // file) holds it, where waiting for the lock (busy_timeout) succeeds.
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        // An agent id belongs to the principal that first used it: another token holder
        // who learnt the id must not post in its name (and so have its real batches
        // answered as duplicates).
        let owner: Option<String> = tx
            .query_row(
                "SELECT principal FROM agents WHERE agent_id = ?1",
                params![agent_id],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(owner) = owner.filter(|o| *o != who) {
            return Err(StoreError::AgentOwned {
                agent_id: agent_id.to_owned(),
                owner,
                caller: who,
            });
        }
        tx.execute(
            "INSERT INTO agents (agent_id, version, principal, first_seen_ms, last_seen_ms, last_seq)
             VALUES (?1, ?2, ?3, ?4, ?4, ?5)
             ON CONFLICT (agent_id) DO UPDATE SET version = ?2, last_seen_ms = ?4,
                 last_seq = max(last_seq, ?5)",
            params![agent_id, agent_version, who, now, seq],
        )?;
        if stored_before(&tx, agent_id, seq)? {
            tx.execute(
                "UPDATE agents SET duplicate_batches = duplicate_batches + 1 WHERE agent_id = ?1",
                params![agent_id],
            )?;
            tx.commit()?;
            return Ok(IngestOutcome {
                duplicate: true,
                records: batch.records.len(),
                rows_ignored: 0,
            });
        }
        let mut ids = TxSeries {
            cache: series,
            new: HashMap::new(),
            created: HashSet::new(),
            key: String::new(),
        };
        let mut touched = HashSet::new();
        let mut tally = Tally::default();
        let mut rollups = 0usize;
        for record in &batch.records {
            match record {
                Record::Rollup(r) => {
                    rollups += 1;
                    insert_rollup(&tx, &mut ids, &mut touched, &r.view(), limits, &mut tally)?;
                }
                Record::Rollups(set) => {
                    for i in 0..set.rows.len() {
                        // Indexes were checked when the batch was decoded.
                        let Some(v) = set.view(i) else {
                            return Err(StoreError::Other(format!(
                                "rollup row {i} has a bad name index"
                            )));
                        };
                        rollups += 1;
                        insert_rollup(&tx, &mut ids, &mut touched, &v, limits, &mut tally)?;
                    }
                }
                Record::Daily(d) => {
                    let id = ids.id(&tx, &d.labels())?;
                    // Bytes, a quarter of the JSON and read without parsing; rows
                    // written as JSON by earlier collectors are read as they are.
                    let sketch = d.sketch.to_bytes();
                    let mut stmt = tx.prepare_cached(
                        "INSERT OR IGNORE INTO daily VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    )?;
                    let n = stmt.execute(params![
                        id,
                        d.day_start,
                        d.samples as i64,
                        d.expected_samples as i64,
                        d.max,
                        sketch
                    ])?;
                    if n == 0 {
                        tally.ignored += 1;
                    }
                    tally.sketches += n as u64;
                }
                Record::Inventory(inv) => store_inventory(&tx, agent_id, inv, now)?,
                Record::Health(h) => {
                    let text =
                        serde_json::to_string(h).map_err(|e| StoreError::Other(e.to_string()))?;
                    tx.execute(
                        "UPDATE agents SET health = ?2 WHERE agent_id = ?1",
                        params![agent_id, text],
                    )?;
                }
            }
        }
        tx.execute(
            "INSERT INTO batches VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                agent_id,
                seq,
                now,
                batch.records.len() as i64,
                rollups as i64,
                who
            ],
        )?;
        tx.execute(
            "UPDATE agents SET batches = batches + 1, rows_ignored = rows_ignored + ?2,
                 last_window_end = max(coalesce(last_window_end, 0), coalesce(?3, 0))
             WHERE agent_id = ?1",
            params![
                agent_id,
                tally.ignored as i64,
                super::last_window_end(batch)
            ],
        )?;
        prune::count_refused(&tx, tally.expired)?;
        stored::add(&tx, tally.stored as i64, tally.sketches as i64)?;
        let new = std::mem::take(&mut ids.new);
        let created = std::mem::take(&mut ids.created);
        let latest = days.close(&tx, touched, &created)?;
        tx.commit()?;
        series.extend(new);
        days.remember(latest);
        Ok(IngestOutcome {
            duplicate: false,
            records: batch.records.len(),
            rows_ignored: tally.ignored,
        })
    }

    fn vcenters(&self) -> Result<Vec<Value>, StoreError> {
        let conn = self.reader();
        let mut stmt = conn.prepare(
            "SELECT vcenter, agent_id, url, about, collected_at, vms, hosts, clusters, datastores,
                    networks, warnings, updated_ms FROM vcenters ORDER BY vcenter",
        )?;
        let rows = stmt.query_map([], |r| {
            let about: String = r.get(3)?;
            Ok(json!({
                "vcenter": r.get::<_, String>(0)?, "agent_id": r.get::<_, String>(1)?,
                "url": r.get::<_, String>(2)?,
                "about": serde_json::from_str::<Value>(&about).unwrap_or(Value::Null),
                "collected_at": vscout_wire::datetime::parse_unix_secs(&r.get::<_, String>(4)?),
                "vms": r.get::<_, i64>(5)?,
                "hosts": r.get::<_, i64>(6)?, "clusters": r.get::<_, i64>(7)?,
                "datastores": r.get::<_, i64>(8)?, "networks": r.get::<_, i64>(9)?,
                "warnings": r.get::<_, i64>(10)?, "updated_at": r.get::<_, i64>(11)? / 1000,
            }))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn vms(&self, f: &VmFilter) -> Result<Vec<Value>, StoreError> {
        let conn = self.reader();
        let mut stmt = conn.prepare_cached(
            "SELECT vcenter, vm_id, name, power_state, guest_os, num_cpu, memory_bytes, host, cluster,
                    datacenter, CASE WHEN ?5 THEN doc ELSE NULL END
             FROM vms
             WHERE (?1 IS NULL OR vcenter = ?1) AND (?2 IS NULL OR instr(name, ?2) > 0)
               AND (?3 IS NULL OR power_state = ?3) AND (?4 IS NULL OR cluster = ?4)
             ORDER BY vcenter, name, vm_id LIMIT ?6 OFFSET ?7",
        )?;
        let rows = stmt.query_map(
            params![
                f.vcenter,
                f.name,
                f.power_state,
                f.cluster,
                f.full.unwrap_or(false),
                i64::from(f.limit.unwrap_or(10_000).min(100_000)),
                i64::from(f.offset.unwrap_or(0)),
            ],
            |r| {
                let vcenter: String = r.get(0)?;
                let vm_id: String = r.get(1)?;
                let mut v = json!({
                    "id": format!("{vcenter}:{vm_id}"), "vcenter": vcenter, "vm_id": vm_id,
                    "name": r.get::<_, String>(2)?, "power_state": r.get::<_, Option<String>>(3)?,
                    "guest_os": r.get::<_, Option<String>>(4)?, "num_cpu": r.get::<_, Option<i64>>(5)?,
                    "memory_bytes": r.get::<_, Option<i64>>(6)?, "host": r.get::<_, String>(7)?,
                    "cluster": r.get::<_, String>(8)?, "datacenter": r.get::<_, String>(9)?,
                });
                if let Some(doc) = r.get::<_, Option<String>>(10)? {
                    v["inventory"] = serde_json::from_str(&doc).unwrap_or(Value::Null);
                }
                Ok(v)
            },
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn entities(&self, kind: EntityKind, f: &EntityFilter) -> Result<Vec<Value>, StoreError> {
        let conn = self.reader();
        let mut stmt = conn.prepare_cached(
            "SELECT vcenter, entity_id, doc FROM entities
             WHERE kind = ?1 AND (?2 IS NULL OR vcenter = ?2) AND (?3 IS NULL OR instr(name, ?3) > 0)
             ORDER BY vcenter, name, entity_id LIMIT ?4 OFFSET ?5",
        )?;
        let rows = stmt.query_map(
            params![
                kind.entity_type(),
                f.vcenter,
                f.name,
                i64::from(f.limit.unwrap_or(10_000).min(100_000)),
                i64::from(f.offset.unwrap_or(0)),
            ],
            |r| {
                let (vcenter, id, doc): (String, String, String) =
                    (r.get(0)?, r.get(1)?, r.get(2)?);
                let mut v = serde_json::from_str::<Value>(&doc).unwrap_or(Value::Null);
                if let Some(o) = v.as_object_mut() {
                    // The record's own `id` (`host-12`) becomes `entity_id`; `id` is the
                    // API's `vcenter:host-12`.
                    o.insert("id".into(), json!(format!("{vcenter}:{id}")));
                    o.insert("vcenter".into(), json!(vcenter));
                    o.insert("entity_id".into(), json!(id));
                }
                Ok(v)
            },
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn metrics(
        &self,
        kind: EntityKind,
        id: &str,
        q: &MetricsQuery,
    ) -> Result<Option<Vec<MetricsRow>>, StoreError> {
        let (vcenter, entity) = split_id(id, q.vcenter.as_deref());
        // One snapshot: a day packed between reading its pack and its rows would be missed.
        let mut reader = self.reader();
        let conn = reader.transaction()?;
        // The hours retention kept of windows that went, then the windows.
        let mut stmt = conn.prepare_cached(
            "SELECT s.vcenter, s.counter, s.instance, s.unit, s.stats_type, r.hour_start,
                    3600, r.expected, r.missing, r.count, r.min, r.max, r.mean, NULL,
                    r.p95, NULL
             FROM series s JOIN rollup_hours r ON r.series_id = s.id
             WHERE s.entity_id = ?1 AND s.entity_type = ?6 AND (?2 IS NULL OR s.vcenter = ?2)
               AND (?3 IS NULL OR s.counter = ?3)
               AND (?4 IS NULL OR r.hour_start >= ?4) AND (?5 IS NULL OR r.hour_start <= ?5)
             ORDER BY s.counter, s.instance, r.hour_start LIMIT 100000",
        )?;
        let args = params![entity, vcenter, q.counter, q.from, q.to, kind.entity_type()];
        let mut rows = stmt
            .query_map(args, metrics_row)?
            .collect::<Result<Vec<_>, _>>()?;
        let mut stmt = conn.prepare_cached(
            "SELECT s.id, s.vcenter, s.counter, s.instance, s.unit, s.stats_type FROM series s
             WHERE s.entity_id = ?1 AND s.entity_type = ?4 AND (?2 IS NULL OR s.vcenter = ?2)
               AND (?3 IS NULL OR s.counter = ?3)
             ORDER BY s.counter, s.instance",
        )?;
        let named = params![entity, vcenter, q.counter, kind.entity_type()];
        let series = stmt
            .query_map(named, |r| Ok((r.get::<_, i64>(0)?, series_head(r)?)))?
            .collect::<Result<Vec<_>, _>>()?;
        let span = (
            q.from.unwrap_or(i64::MIN),
            q.to.map_or(i64::MAX, |t| t.saturating_add(1)),
        );
        let mut starts = packs::Starts::default();
        for (id, head) in series {
            if rows.len() >= 100_000 {
                break;
            }
            for w in packs::windows(&conn, id, span, &mut starts)? {
                rows.push(window_row(&head, &w));
            }
        }
        rows.sort_by(|a, b| {
            (&a.counter, &a.instance, a.window_start).cmp(&(
                &b.counter,
                &b.instance,
                b.window_start,
            ))
        });
        rows.truncate(100_000);
        found(&conn, kind, vcenter.as_deref(), &entity, rows)
    }

    fn daily(
        &self,
        kind: EntityKind,
        id: &str,
        q: &DailyQuery,
    ) -> Result<Option<Vec<Value>>, StoreError> {
        let (vcenter, entity) = split_id(id, q.vcenter.as_deref());
        let conn = self.reader();
        let mut stmt = conn.prepare_cached(
            "SELECT s.id, s.vcenter, s.counter, s.instance, s.unit, s.stats_type, d.day_start,
                    d.samples, d.expected, d.max, d.sketch
             FROM series s JOIN daily d ON d.series_id = s.id
             WHERE s.entity_id = ?1 AND s.entity_type = ?6 AND (?2 IS NULL OR s.vcenter = ?2)
               AND (?3 IS NULL OR s.counter = ?3)
               AND (?4 IS NULL OR d.day_start >= ?4) AND (?5 IS NULL OR d.day_start <= ?5)
             ORDER BY s.counter, s.instance, s.id, d.day_start",
        )?;
        let mut rows = stmt.query(params![
            entity,
            vcenter,
            q.counter,
            q.from,
            q.to,
            kind.entity_type()
        ])?;
        // Rows come ordered by series: each series' days are merged into its own entry.
        let mut merged: Vec<(i64, DailyMerge)> = Vec::new();
        while let Some(r) = rows.next()? {
            let series: i64 = r.get(0)?;
            let sketch = stored_sketch(r.get_ref(10)?).ok_or_else(|| {
                StoreError::Other(format!("daily sketch of series {series} unreadable"))
            })?;
            if merged.last().is_none_or(|(id, _)| *id != series) {
                let head = json!({
                    "vcenter": r.get::<_, String>(1)?,
                    "counter": r.get::<_, String>(2)?,
                    "instance": r.get::<_, String>(3)?,
                    "unit": r.get::<_, String>(4)?,
                    "stats_type": r.get::<_, String>(5)?,
                });
                merged.push((series, DailyMerge::new(head)));
            }
            if let Some((_, m)) = merged.last_mut() {
                m.add(
                    r.get(6)?,
                    r.get(7)?,
                    r.get(8)?,
                    r.get::<_, Option<f64>>(9)?,
                    &sketch,
                );
            }
        }
        let out = merged.into_iter().map(|(_, m)| m.finish()).collect();
        found(&conn, kind, vcenter.as_deref(), &entity, out)
    }

    fn vm_usage(
        &self,
        q: &UsageQuery<'_>,
        each: &mut dyn FnMut(SeriesUsage),
    ) -> Result<(), StoreError> {
        // One snapshot, as for metrics.
        let mut reader = self.reader();
        let tx = reader.transaction()?;
        usage::vm_usage(&tx, q, each)
    }

    fn vm_records(
        &self,
        only: Option<(Option<&str>, &str)>,
        each: &mut dyn FnMut(&str, Vm),
    ) -> Result<(), StoreError> {
        let conn = self.reader();
        let mut stmt = conn.prepare(
            "SELECT vcenter, vm_id, doc FROM vms
             WHERE (?1 IS NULL OR vm_id = ?1) AND (?2 IS NULL OR vcenter = ?2)
             ORDER BY vcenter, vm_id",
        )?;
        let mut rows = stmt.query(params![only.map(|o| o.1), only.and_then(|o| o.0)])?;
        while let Some(r) = rows.next()? {
            let vcenter = r.get_ref(0)?.as_str()?;
            let vm: Vm = serde_json::from_str(r.get_ref(2)?.as_str()?).map_err(|e| {
                StoreError::Other(format!("inventory record of VM {:?}: {e}", r.get_ref(1)))
            })?;
            each(vcenter, vm);
        }
        Ok(())
    }

    fn inventories(&self) -> Result<Vec<VcenterInventory>, StoreError> {
        let conn = self.reader();
        let mut out: Vec<VcenterInventory> = Vec::new();
        let mut stmt = conn
            .prepare("SELECT vcenter, url, about, collected_at FROM vcenters ORDER BY vcenter")?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let name: String = r.get(0)?;
            let about = serde_json::from_str(r.get_ref(2)?.as_str()?)
                .map_err(|e| StoreError::Other(format!("about of vCenter {name:?}: {e}")))?;
            out.push(VcenterInventory {
                name: name.as_str().into(),
                url: r.get_ref(1)?.as_str()?.into(),
                about,
                collected_at: r.get_ref(3)?.as_str()?.into(),
                ..VcenterInventory::default()
            });
        }
        let mut stmt = conn.prepare(
            "SELECT vcenter, kind, entity_id, doc FROM entities ORDER BY vcenter, kind, name, entity_id",
        )?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let vcenter = r.get_ref(0)?.as_str()?;
            let Some(vc) = out.iter_mut().find(|v| v.name == vcenter) else {
                continue;
            };
            let doc = r.get_ref(3)?.as_str()?;
            let bad = |e: serde_json::Error| {
                StoreError::Other(format!("inventory record of {:?}: {e}", r.get_ref(2)))
            };
            match r.get_ref(1)?.as_str()? {
                "HostSystem" => vc.hosts.push(serde_json::from_str(doc).map_err(bad)?),
                "ClusterComputeResource" => {
                    vc.clusters.push(serde_json::from_str(doc).map_err(bad)?)
                }
                "Datastore" => vc.datastores.push(serde_json::from_str(doc).map_err(bad)?),
                _ => {}
            }
        }
        Ok(out)
    }

    fn agents(&self, only: Option<&str>) -> Result<Vec<Value>, StoreError> {
        let conn = self.reader();
        let mut stmt = conn.prepare(
            "SELECT agent_id, version, principal, first_seen_ms, last_seen_ms, last_seq, batches,
                    duplicate_batches, rows_ignored, health, nullif(last_window_end, 0) FROM agents
             WHERE ?1 IS NULL OR principal = ?1 ORDER BY agent_id",
        )?;
        let rows = stmt.query_map(params![only], |r| {
            let health: Option<String> = r.get(9)?;
            let health = health
                .and_then(|h| serde_json::from_str::<AgentHealth>(&h).ok())
                .map_or(Value::Null, |h| health_json(&h));
            Ok(json!({
                "agent_id": r.get::<_, String>(0)?, "version": r.get::<_, String>(1)?,
                "principal": r.get::<_, String>(2)?, "first_seen_at": r.get::<_, i64>(3)? / 1000,
                "last_seen_at": r.get::<_, i64>(4)? / 1000, "last_seq": r.get::<_, i64>(5)?,
                "batches": r.get::<_, i64>(6)?, "duplicate_batches": r.get::<_, i64>(7)?,
                "rows_ignored": r.get::<_, i64>(8)?,
                "last_window_end": r.get::<_, Option<i64>>(10)?,
                "buffer_depth": health.get("buffer_depth").cloned().unwrap_or(Value::Null),
                "errors": health.get("errors").cloned().unwrap_or(Value::Null),
                "last_error": health.get("last_error").cloned().unwrap_or(Value::Null),
                "health": health,
            }))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn counts(&self) -> Result<Counts, StoreError> {
        let conn = self.reader();
        let (windows, sketches) = stored::read(&conn)?;
        let one = |sql: &str| -> Result<u64, StoreError> {
            Ok(conn.query_row(sql, [], |r| r.get::<_, i64>(0))? as u64)
        };
        Ok(Counts {
            agents: one("SELECT count(*) FROM agents")?,
            // Stored, not kept: retention forgets old batch keys.
            batches: one("SELECT coalesce(sum(batches), 0) FROM agents")?,
            vcenters: one("SELECT count(*) FROM vcenters")?,
            vms: one("SELECT count(*) FROM vms")?,
            series: one("SELECT count(*) FROM series")?,
            rollups: windows,
            daily: sketches,
            duplicate_batches: one("SELECT coalesce(sum(duplicate_batches), 0) FROM agents")?,
            rows_ignored: one("SELECT coalesce(sum(rows_ignored), 0) FROM agents")?,
            pruned: prune::counted(&conn)?,
        })
    }

    fn prune_step(
        &self,
        now_s: i64,
        r: &Retention,
        after: i64,
        series: usize,
    ) -> Result<PruneStep, StoreError> {
        let mut guard = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let w = &mut *guard;
        let tx = w
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let (step, forgotten) = prune::step(&tx, now_s, r, after, series)?;
        tx.commit()?;
        w.horizon = w.horizon.max(r.windows_from(now_s));
        w.packed_before = w.packed_before.max(crate::store::day_of(now_s));
        w.days.forget(&forgotten);
        Ok(step)
    }

    fn add_token(&self, name: &str, sha256_hex: &str, role: Role) -> Result<(), StoreError> {
        let mut guard = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        access::add_token(&mut guard.conn, name, sha256_hex, role)
    }

    fn tokens(&self) -> Result<Vec<TokenInfo>, StoreError> {
        access::tokens(&self.reader())
    }

    fn revoke_token(&self, name: &str) -> Result<bool, StoreError> {
        let guard = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        Ok(guard
            .conn
            .execute("DELETE FROM tokens WHERE name = ?1", params![name])?
            == 1)
    }

    fn first_token_needed(&self) -> Result<bool, StoreError> {
        let conn = self.reader();
        Ok(conn.query_row(
            "SELECT NOT EXISTS (SELECT 1 FROM tokens) AND NOT EXISTS (SELECT 1 FROM meta WHERE key = 'tokens_made')",
            [],
            |r| r.get(0),
        )?)
    }

    fn token(&self, sha256_hex: &str) -> Result<Option<(String, Role)>, StoreError> {
        access::token(&self.reader(), sha256_hex)
    }

    fn add_user(&self, name: &str, phc: &str) -> Result<(), StoreError> {
        access::add_user(&self.writer().conn, name, phc)
    }

    fn user_hash(&self, name: &str) -> Result<Option<String>, StoreError> {
        access::user_hash(&self.reader(), name)
    }

    fn remove_user(&self, name: &str) -> Result<bool, StoreError> {
        access::remove_user(&self.writer().conn, name)
    }

    fn users(&self) -> Result<Vec<UserInfo>, StoreError> {
        access::users(&self.reader())
    }

    fn add_session(&self, sha256_hex: &str, user: &str, expires_s: i64) -> Result<(), StoreError> {
        access::add_session(&mut self.writer().conn, sha256_hex, user, expires_s)
    }

    fn session_user(&self, sha256_hex: &str, now_s: i64) -> Result<Option<String>, StoreError> {
        access::session_user(&self.reader(), sha256_hex, now_s)
    }

    fn end_session(&self, sha256_hex: &str) -> Result<(), StoreError> {
        access::end_session(&self.writer().conn, sha256_hex)
    }

    fn token_count(&self) -> Result<u64, StoreError> {
        let conn = self.reader();
        Ok(conn.query_row("SELECT count(*) FROM tokens", [], |r| r.get::<_, i64>(0))? as u64)
    }
}

/// Adds a daily sketch as stored to `sum`: bytes (`Sketch::to_bytes`, added without
/// building the sketch), or JSON text as collectors before the assessment wrote it.
/// `None` for anything else or what does not read.
fn add_stored_sketch(sum: &mut SketchSum, v: rusqlite::types::ValueRef<'_>) -> Option<()> {
    match v {
        rusqlite::types::ValueRef::Blob(b) => sum.add_bytes(b),
        rusqlite::types::ValueRef::Text(t) => {
            sum.add_sketch(&serde_json::from_slice(t).ok()?);
            Some(())
        }
        _ => None,
    }
}

/// A daily sketch as stored, in either form `add_stored_sketch` reads.
fn stored_sketch(v: rusqlite::types::ValueRef<'_>) -> Option<Sketch> {
    let mut sum = SketchSum::default();
    add_stored_sketch(&mut sum, v)?;
    Some(sum.finish())
}

/// Brings a database made by an earlier collector up to `SCHEMA`.
fn migrate(conn: &Connection) -> Result<(), StoreError> {
    // Rollups were keyed by series first until windows were packed: every batch then
    // touched a page per series. Rewritten once, keyed by time.
    let by_series: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM pragma_table_info('rollups')
                        WHERE name = 'series_id' AND pk = 1)",
        [],
        |r| r.get(0),
    )?;
    if by_series {
        conn.execute_batch(&format!(
            "BEGIN;
             ALTER TABLE rollups RENAME TO rollups_by_series;
             {ROLLUPS}
             INSERT INTO rollups SELECT * FROM rollups_by_series ORDER BY window_start, series_id;
             DROP TABLE rollups_by_series;
             COMMIT;"
        ))?;
    }
    // Sizes are bytes everywhere since inventory schema 2: `vms.memory_mb` became
    // `memory_bytes`.
    if has_column(conn, "vms", "memory_mb")? {
        conn.execute_batch(
            "BEGIN;
             ALTER TABLE vms RENAME COLUMN memory_mb TO memory_bytes;
             UPDATE vms SET memory_bytes = memory_bytes * 1048576;
             COMMIT;",
        )?;
    }
    // Retention forgets old batch keys since the collector kept a month: an agent's
    // sequences up to `forgotten_seq` are duplicates.
    if !has_column(conn, "agents", "forgotten_seq")? {
        conn.execute_batch(
            "ALTER TABLE agents ADD COLUMN forgotten_seq INTEGER NOT NULL DEFAULT 0",
        )?;
    }
    // The end of the latest window each agent shipped (the pages show it), since issue 17.
    if !has_column(conn, "agents", "last_window_end")? {
        conn.execute_batch("ALTER TABLE agents ADD COLUMN last_window_end INTEGER")?;
    }
    Ok(())
}

/// Whether `table` has `column` (what an earlier collector's schema lacked or named
/// otherwise).
fn has_column(conn: &Connection, table: &str, column: &str) -> Result<bool, StoreError> {
    Ok(conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM pragma_table_info(?1) WHERE name = ?2)",
        params![table, column],
        |r| r.get(0),
    )?)
}

/// One row of `metrics` from `rollup_hours` (columns 0 to 15).
fn metrics_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<MetricsRow> {
    Ok(MetricsRow {
        vcenter: CompactString::new(r.get::<_, String>(0)?),
        counter: CompactString::new(r.get::<_, String>(1)?),
        instance: CompactString::new(r.get::<_, String>(2)?),
        unit: CompactString::new(r.get::<_, String>(3)?),
        stats_type: CompactString::new(r.get::<_, String>(4)?),
        window_start: r.get(5)?,
        window_secs: r.get(6)?,
        expected_samples: r.get(7)?,
        missing_samples: r.get(8)?,
        count: r.get(9)?,
        min: r.get(10)?,
        max: r.get(11)?,
        mean: r.get(12)?,
        p50: r.get(13)?,
        p95: r.get(14)?,
        p99: r.get(15)?,
    })
}

/// A series' names (columns 1 to 5 of the series query): a metrics row without figures.
fn series_head(r: &rusqlite::Row<'_>) -> rusqlite::Result<MetricsRow> {
    Ok(MetricsRow {
        vcenter: CompactString::new(r.get::<_, String>(1)?),
        counter: CompactString::new(r.get::<_, String>(2)?),
        instance: CompactString::new(r.get::<_, String>(3)?),
        unit: CompactString::new(r.get::<_, String>(4)?),
        stats_type: CompactString::new(r.get::<_, String>(5)?),
        ..MetricsRow::empty()
    })
}

/// `rows` of an entity, or `None` when it has none and no inventory or series knows it
/// (an unknown entity is a 404, not an empty list). Rows prove the entity known, so the
/// extra lookup runs only for an empty answer.
fn found<T>(
    conn: &Connection,
    kind: EntityKind,
    vcenter: Option<&str>,
    entity: &str,
    rows: Vec<T>,
) -> Result<Option<Vec<T>>, StoreError> {
    if rows.is_empty() && !known(conn, kind, vcenter, entity)? {
        return Ok(None);
    }
    Ok(Some(rows))
}

/// Whether an inventory or a series knows this entity.
fn known(
    conn: &Connection,
    kind: EntityKind,
    vcenter: Option<&str>,
    entity: &str,
) -> Result<bool, StoreError> {
    let sql = if kind == EntityKind::Vm {
        "SELECT EXISTS (SELECT 1 FROM vms WHERE vm_id = ?1 AND (?2 IS NULL OR vcenter = ?2))
             OR EXISTS (SELECT 1 FROM series WHERE entity_id = ?1 AND entity_type = ?3
                        AND (?2 IS NULL OR vcenter = ?2))"
    } else {
        "SELECT EXISTS (SELECT 1 FROM entities WHERE entity_id = ?1 AND kind = ?3
                        AND (?2 IS NULL OR vcenter = ?2))
             OR EXISTS (SELECT 1 FROM series WHERE entity_id = ?1 AND entity_type = ?3
                        AND (?2 IS NULL OR vcenter = ?2))"
    };
    Ok(conn
        .prepare_cached(sql)?
        .query_row(params![entity, vcenter, kind.entity_type()], |r| r.get(0))?)
}

/// Replaces a vCenter's VMs with those of its latest inventory.
fn store_inventory(
    tx: &Transaction<'_>,
    agent_id: &str,
    inv: &VcenterInventory,
    now: i64,
) -> Result<(), StoreError> {
    let about = serde_json::to_string(&inv.about).map_err(|e| StoreError::Other(e.to_string()))?;
    tx.execute(
        "INSERT OR REPLACE INTO vcenters VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        params![
            inv.name.as_str(),
            agent_id,
            inv.url.as_str(),
            about,
            inv.collected_at.as_str(),
            inv.vms.len() as i64,
            inv.hosts.len() as i64,
            inv.clusters.len() as i64,
            inv.datastores.len() as i64,
            inv.networks.len() as i64,
            inv.warnings.len() as i64,
            now,
        ],
    )?;
    tx.execute(
        "DELETE FROM vms WHERE vcenter = ?1",
        params![inv.name.as_str()],
    )?;
    let mut stmt = tx.prepare_cached(
        "INSERT OR REPLACE INTO vms VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?;
    for vm in &inv.vms {
        let doc = serde_json::to_string(vm).map_err(|e| StoreError::Other(e.to_string()))?;
        let guest = vm
            .tools_guest_full_name
            .as_ref()
            .or(vm.guest_full_name.as_ref())
            .map(|s| s.as_str());
        stmt.execute(params![
            inv.name.as_str(),
            vm.id.as_str(),
            vm.name.as_str(),
            vm.power_state.as_deref(),
            guest,
            vm.num_cpu,
            vm.memory_bytes.map(|m| m as i64),
            vm.host.as_str(),
            vm.cluster.as_str(),
            vm.datacenter.as_str(),
            doc,
        ])?;
    }
    tx.execute(
        "DELETE FROM entities WHERE vcenter = ?1",
        params![inv.name.as_str()],
    )?;
    let mut stmt =
        tx.prepare_cached("INSERT OR REPLACE INTO entities VALUES (?1, ?2, ?3, ?4, ?5)")?;
    let mut put =
        |kind: EntityKind, id: &str, name: &str, doc: Result<String, serde_json::Error>| {
            let doc = doc.map_err(|e| StoreError::Other(e.to_string()))?;
            stmt.execute(params![
                inv.name.as_str(),
                kind.entity_type(),
                id,
                name,
                doc
            ])?;
            Ok::<_, StoreError>(())
        };
    for h in &inv.hosts {
        put(EntityKind::Host, &h.id, &h.name, serde_json::to_string(h))?;
    }
    for c in &inv.clusters {
        put(
            EntityKind::Cluster,
            &c.id,
            &c.name,
            serde_json::to_string(c),
        )?;
    }
    for d in &inv.datastores {
        put(
            EntityKind::Datastore,
            &d.id,
            &d.name,
            serde_json::to_string(d),
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use vscout_wire::batch::BATCH_VERSION;
    use vscout_wire::rollup::{Rollup, WindowStats, ROLLUP_SCHEMA_VERSION};

    fn rollup(vm: &str, window_start: i64) -> Record {
        Record::Rollup(Rollup {
            schema_version: ROLLUP_SCHEMA_VERSION,
            vcenter: "vc".into(),
            entity_type: "VirtualMachine".into(),
            entity_id: vm.into(),
            counter: "cpu.usage.average".into(),
            instance: "".into(),
            unit: "percent".into(),
            stats_type: "rate".into(),
            window_start,
            window_secs: 300,
            expected_samples: 15,
            missing_samples: 0,
            stats: Some(WindowStats {
                count: 15,
                min: 1.0,
                max: 9.0,
                mean: 5.0,
                p50: 5.0,
                p95: 9.0,
                p99: 9.0,
            }),
        })
    }

    fn batch(records: Vec<Record>) -> Batch {
        Batch {
            batch_version: BATCH_VERSION,
            created_ms: 0,
            records,
        }
    }

    /// A database an earlier collector made (agents without `forgotten_seq`, VMs sized
    /// in MB) opens, upgraded: its agent's stored batch is still a duplicate.
    #[test]
    fn an_earlier_collectors_database_is_upgraded() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("db");
        {
            let conn = Connection::open(&path).expect("open");
            conn.execute_batch(
                "CREATE TABLE agents (
                     agent_id TEXT PRIMARY KEY, version TEXT NOT NULL, principal TEXT NOT NULL,
                     first_seen_ms INTEGER NOT NULL, last_seen_ms INTEGER NOT NULL,
                     last_seq INTEGER NOT NULL, batches INTEGER NOT NULL DEFAULT 0,
                     duplicate_batches INTEGER NOT NULL DEFAULT 0,
                     rows_ignored INTEGER NOT NULL DEFAULT 0, health TEXT);
                 INSERT INTO agents VALUES ('a', 'v', 'token:t', 0, 0, 1, 1, 0, 0, NULL);
                 CREATE TABLE vms (
                     vcenter TEXT NOT NULL, vm_id TEXT NOT NULL, name TEXT NOT NULL,
                     power_state TEXT, guest_os TEXT, num_cpu INTEGER, memory_mb INTEGER,
                     host TEXT NOT NULL, cluster TEXT NOT NULL, datacenter TEXT NOT NULL,
                     doc TEXT NOT NULL, PRIMARY KEY (vcenter, vm_id)) WITHOUT ROWID;
                 INSERT INTO vms VALUES ('vc', 'vm-1', 'one', NULL, NULL, 1, 2, 'h', 'c', 'd', '{}');",
            )
            .expect("old schema");
        }
        let store = SqliteStore::open(&path).expect("upgrade");
        let conn = Connection::open(&path).expect("open");
        assert!(has_column(&conn, "agents", "forgotten_seq").expect("agents"));
        assert!(has_column(&conn, "agents", "last_window_end").expect("agents"));
        let bytes: i64 = conn
            .query_row("SELECT memory_bytes FROM vms", [], |r| r.get(0))
            .expect("vms");
        assert_eq!(bytes, 2 * 1_048_576);
        assert_eq!(store.counts().expect("counts").batches, 1);
    }

    #[test]
    fn a_batch_is_stored_once_and_series_are_reused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteStore::open(&dir.path().join("db")).expect("open");
        let who = Principal::Token("t".into());
        let b = batch(vec![
            rollup("vm-1", 0),
            rollup("vm-2", 0),
            rollup("vm-1", 300),
        ]);
        let first = store.ingest("a", 1, "v", &who, &b).expect("ingest");
        assert!(!first.duplicate);
        let again = store.ingest("a", 1, "v", &who, &b).expect("ingest again");
        assert!(again.duplicate);
        let c = store.counts().expect("counts");
        assert_eq!(
            (c.batches, c.rollups, c.series, c.duplicate_batches),
            (1, 3, 2, 1)
        );
        // Another agent's batch with the same sequence is its own.
        store
            .ingest("b", 1, "v", &who, &batch(vec![rollup("vm-3", 0)]))
            .expect("b");
        // The same window again under a new sequence is counted, not stored twice.
        let o = store
            .ingest("a", 2, "v", &who, &batch(vec![rollup("vm-1", 0)]))
            .expect("a2");
        assert_eq!(o.rows_ignored, 1);
        let c = store.counts().expect("counts");
        assert_eq!(
            (c.batches, c.rollups, c.series, c.rows_ignored),
            (3, 4, 3, 1)
        );
        // Reopened: the series cache is rebuilt from the table.
        drop(store);
        let store = SqliteStore::open(&dir.path().join("db")).expect("reopen");
        store
            .ingest("a", 3, "v", &who, &batch(vec![rollup("vm-1", 600)]))
            .expect("a3");
        assert_eq!(store.counts().expect("counts").series, 3);
        let m = store
            .metrics(EntityKind::Vm, "vc:vm-1", &MetricsQuery::default())
            .expect("metrics")
            .expect("a known VM");
        assert_eq!(m.len(), 3);
        // Issue 11: an unknown VM was `[]`; it is now "not found".
        assert_eq!(
            store
                .metrics(EntityKind::Vm, "vc:vm-404", &MetricsQuery::default())
                .expect("metrics"),
            None
        );
        assert_eq!(
            store
                .metrics(EntityKind::Host, "vc:vm-1", &MetricsQuery::default())
                .expect("metrics"),
            None,
            "a VM is not a host"
        );
        // The compact form the agent ships lands in the same rows.
        let mut set = vscout_wire::batch::RollupSetBuilder::default();
        for (vm, w) in [("vm-1", 900), ("vm-9", 900), ("vm-1", 0)] {
            if let Record::Rollup(r) = rollup(vm, w) {
                set.push(r);
            }
        }
        let o = store
            .ingest("a", 4, "v", &who, &batch(vec![Record::Rollups(set.take())]))
            .expect("a4");
        assert_eq!((o.records, o.rows_ignored), (1, 1));
        let c = store.counts().expect("counts");
        assert_eq!((c.rollups, c.series), (7, 4));
        let m = store
            .metrics(
                EntityKind::Vm,
                "vm-1",
                &MetricsQuery {
                    counter: Some("cpu.usage.average".into()),
                    from: Some(600),
                    ..MetricsQuery::default()
                },
            )
            .expect("metrics")
            .expect("a known VM");
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].p95, Some(9.0));
    }

    /// Rewrites the daily sketch of `day_start` as collectors before the assessment
    /// stored it: JSON text.
    pub(super) fn daily_as_json(store: &SqliteStore, day_start: i64) {
        let w = store.writer.lock().expect("lock");
        let blob: Vec<u8> = w
            .conn
            .query_row(
                "SELECT sketch FROM daily WHERE day_start = ?1",
                [day_start],
                |r| r.get(0),
            )
            .expect("blob");
        let text = serde_json::to_string(&Sketch::from_bytes(&blob).expect("bytes")).expect("json");
        w.conn
            .execute(
                "UPDATE daily SET sketch = ?1 WHERE day_start = ?2",
                params![text, day_start],
            )
            .expect("as text");
    }

    pub(super) fn day(day_start: i64, values: std::ops::RangeInclusive<u32>) -> Record {
        let mut sketch = Sketch::default();
        let mut max = f64::MIN;
        for v in values.clone() {
            sketch.add(f64::from(v));
            max = max.max(f64::from(v));
        }
        Record::Daily(vscout_wire::rollup::DailySummary {
            schema_version: ROLLUP_SCHEMA_VERSION,
            vcenter: "vc".into(),
            entity_type: "VirtualMachine".into(),
            entity_id: "vm-1".into(),
            counter: "cpu.usage.average".into(),
            instance: "".into(),
            unit: "percent".into(),
            stats_type: "rate".into(),
            day_start,
            samples: values.count() as u64,
            expected_samples: 4320,
            p50: None,
            p95: None,
            p99: None,
            max: Some(max),
            sketch,
        })
    }

    /// The reason the sketches exist: percentiles over any range of days without raw
    /// samples.
    #[test]
    fn daily_sketches_merge_over_a_range_of_days() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = SqliteStore::open(&dir.path().join("db")).expect("open");
        let who = Principal::Token("t".into());
        // Day one holds 1..=100, day two 101..=200, day three 1000..=1000.
        let records = vec![
            day(0, 1..=100),
            day(86_400, 101..=200),
            day(172_800, 1000..=1000),
        ];
        store
            .ingest("a", 1, "v", &who, &batch(records))
            .expect("ingest");
        // Day two as a collector before the assessment stored it: JSON text. It reads
        // the same.
        daily_as_json(&store, 86_400);
        let q = |from, to| DailyQuery {
            from,
            to,
            ..DailyQuery::default()
        };
        let two = store
            .daily(EntityKind::Vm, "vc:vm-1", &q(Some(0), Some(86_400)))
            .expect("daily")
            .expect("known");
        assert_eq!(two.len(), 1);
        let d = &two[0];
        assert_eq!(
            (d["days"].as_u64(), d["samples"].as_u64()),
            (Some(2), Some(200))
        );
        assert_eq!(
            (d["from"].as_i64(), d["to"].as_i64()),
            (Some(0), Some(86_400))
        );
        assert_eq!(d["expected_samples"].as_u64(), Some(8640));
        // The p95 of 1..=200 is 190, within the sketch's 1%.
        let p95 = d["p95"].as_f64().expect("p95");
        assert!((p95 - 190.0).abs() <= 1.9, "{p95}");
        assert_eq!(d["max"].as_f64(), Some(200.0));
        let all = store
            .daily(EntityKind::Vm, "vm-1", &q(None, None))
            .expect("daily")
            .expect("known");
        assert_eq!(all[0]["days"].as_u64(), Some(3));
        assert_eq!(all[0]["max"].as_f64(), Some(1000.0));
        let none = store
            .daily(EntityKind::Vm, "vc:vm-1", &q(Some(999_999), None))
            .expect("daily")
            .expect("known");
        assert!(none.is_empty());
        assert_eq!(
            store
                .daily(EntityKind::Vm, "vc:vm-2", &q(None, None))
                .expect("daily"),
            None
        );
    }
}
