//! One batch into PostgreSQL in one transaction, whichever collector receives it: the
//! `batches` row is inserted first (`ON CONFLICT DO NOTHING`), so a second collector
//! given the same batch waits on the first's key and, once that commits, finds it a
//! duplicate. Rows go in as arrays (`unnest`), a statement per table per batch, not a
//! round trip per row.

use std::collections::HashMap;

use postgres::types::ToSql;
use postgres::{Client, Transaction};
use vscout_service::telemetry::unix_now_ms as now_ms;
use vscout_wire::batch::{Batch, Record, RollupView, StatsRow};
use vscout_wire::inventory::VcenterInventory;
use vscout_wire::rollup::{DailySummary, SeriesLabels};

use super::locks;
use super::partitions::{Known, Table};
use crate::store::{EntityKind, IngestOutcome, Principal, StoreError};

/// The writer's connection and what it remembers: series ids (stable, whoever numbered
/// them) and partitions that exist.
pub(super) struct Writer {
    pub(super) client: Client,
    pub(super) series: HashMap<String, i64>,
    pub(super) parts: Known,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("series", &self.series.len())
            .field("parts", &self.parts)
            .finish_non_exhaustive()
    }
}

/// Series are looked up by `vcenter 0x1f entity 0x1f counter 0x1f instance`.
fn series_key(l: &SeriesLabels<'_>) -> String {
    [l.vcenter, l.entity_id, l.counter, l.instance].join("\u{1f}")
}

/// The rollups of a batch, however they were sent.
fn rollups(batch: &Batch) -> Result<Vec<RollupView<'_>>, StoreError> {
    let mut out = Vec::new();
    for record in &batch.records {
        match record {
            Record::Rollup(r) => out.push(r.view()),
            Record::Rollups(set) => {
                for i in 0..set.rows.len() {
                    out.push(set.view(i).ok_or_else(|| {
                        StoreError::Other(format!("rollup row {i} has a bad name index"))
                    })?);
                }
            }
            _ => {}
        }
    }
    Ok(out)
}

fn dailies(batch: &Batch) -> Vec<&DailySummary> {
    batch
        .records
        .iter()
        .filter_map(|r| match r {
            Record::Daily(d) => Some(d),
            _ => None,
        })
        .collect()
}

/// The agent's counters for a stored batch: one more, its conflicting rows, and the end
/// of the latest window it carried.
fn count_batch(
    tx: &mut Transaction<'_>,
    agent_id: &str,
    ignored: i64,
    batch: &Batch,
) -> Result<(), StoreError> {
    tx.execute(
        "UPDATE agents SET batches = batches + 1, rows_ignored = rows_ignored + $2,
             last_window_end = greatest(last_window_end, $3)
         WHERE agent_id = $1",
        &[&agent_id, &ignored, &crate::store::last_window_end(batch)],
    )?;
    Ok(())
}

pub(super) fn ingest(
    w: &mut Writer,
    (agent_id, seq, agent_version): (&str, u64, &str),
    principal: &Principal,
    batch: &Batch,
) -> Result<IngestOutcome, StoreError> {
    let seq = i64::try_from(seq)
        .map_err(|_| StoreError::Other(format!("sequence {seq} out of range")))?;
    let views = rollups(batch)?;
    let days = dailies(batch);
    // Partitions first, in their own transaction; the limits read here only spare
    // making partitions for rows that will be refused or wait for their pack.
    let pre = Limits::read(&mut w.client, false)?;
    let from = pre.horizon.max(pre.packed_before);
    let starts = views.iter().map(|v| v.window_start);
    w.parts
        .ensure(&mut w.client, Table::Rollups, starts.filter(|s| *s >= from))?;
    let day_starts = days.iter().map(|d| d.day_start);
    w.parts.ensure(
        &mut w.client,
        Table::Daily,
        day_starts.filter(|d| *d >= pre.summaries),
    )?;
    let who = principal.name();
    let now = now_ms();
    let mut tx = w.client.transaction()?;
    let limits = Limits::read(&mut tx, true)?;
    claim_agent(&mut tx, agent_id, agent_version, &who, (now, seq))?;
    let records = batch.records.len() as i64;
    let key = (agent_id, seq, now, &who[..]);
    if !claim_batch(&mut tx, key, records, views.len() as i64)? {
        tx.execute(
            "UPDATE agents SET duplicate_batches = duplicate_batches + 1 WHERE agent_id = $1",
            &[&agent_id],
        )?;
        tx.commit()?;
        return Ok(IngestOutcome {
            duplicate: true,
            records: batch.records.len(),
            rows_ignored: 0,
        });
    }
    let labels = views
        .iter()
        .map(|v| v.labels)
        .chain(days.iter().map(|d| d.labels()));
    let new_series = number_series(&mut tx, &w.series, labels)?;
    let ids = |l: &SeriesLabels<'_>| {
        let key = series_key(l);
        w.series
            .get(&key)
            .or_else(|| new_series.get(&key))
            .copied()
            .unwrap_or_default()
    };
    let tally = store_rows(&mut tx, (&views, &days), &ids, &limits)?;
    store_records(&mut tx, agent_id, batch, now)?;
    count_batch(&mut tx, agent_id, tally.ignored, batch)?;
    // Last, so that the row lock the counters take is held for the commit only.
    tx.execute(
        "UPDATE meta SET value = value + CASE key WHEN 'stored_windows' THEN $1::int8
             WHEN 'stored_sketches' THEN $2::int8 ELSE $3::int8 END
         WHERE key IN ('stored_windows', 'stored_sketches', 'refused_windows')",
        &[&tally.stored, &tally.sketches, &tally.expired],
    )?;
    tx.commit()?;
    w.series.extend(new_series);
    Ok(IngestOutcome {
        duplicate: false,
        records: batch.records.len(),
        rows_ignored: tally.ignored as usize,
    })
}

/// What a batch's rows came to.
#[derive(Debug, Default)]
struct Tally {
    /// Windows and daily sketches stored.
    stored: i64,
    sketches: i64,
    /// Windows refused: older than retention keeps.
    expired: i64,
    /// Windows and sketches stored before, kept as they were (or of days deleted).
    ignored: i64,
}

/// The batch's windows (in time into `rollups`, of closed days into `late_windows`,
/// before the horizon refused) and daily sketches.
fn store_rows(
    tx: &mut Transaction<'_>,
    (views, days): (&[RollupView<'_>], &[&DailySummary]),
    ids: &dyn Fn(&SeriesLabels<'_>) -> i64,
    limits: &Limits,
) -> Result<Tally, StoreError> {
    let (kept, expired): (Vec<&RollupView<'_>>, _) =
        views.iter().partition(|v| v.window_start >= limits.horizon);
    let (in_time, late): (Vec<&RollupView<'_>>, _) = kept
        .iter()
        .partition(|v| v.window_start >= limits.packed_before);
    let stored = insert_rollups(tx, &in_time, ids, limits.mark)? + insert_late(tx, &late, ids)?;
    // Sketches of days retention deleted stay out (their month's partition is gone).
    let keep: Vec<&DailySummary> = days
        .iter()
        .copied()
        .filter(|d| d.day_start >= limits.summaries)
        .collect();
    let sketches = insert_dailies(tx, &keep, ids)?;
    Ok(Tally {
        stored,
        sketches,
        expired: expired.len() as i64,
        ignored: (kept.len() as i64 - stored) + (days.len() as i64 - sketches),
    })
}

/// The batch's inventories and health records.
fn store_records(
    tx: &mut Transaction<'_>,
    agent_id: &str,
    batch: &Batch,
    now: i64,
) -> Result<(), StoreError> {
    for record in &batch.records {
        match record {
            Record::Inventory(inv) => store_inventory(tx, agent_id, inv, now)?,
            Record::Health(h) => {
                tx.execute(
                    "UPDATE agents SET health = $2 WHERE agent_id = $1",
                    &[&agent_id, &to_json(h)?],
                )?;
            }
            _ => {}
        }
    }
    Ok(())
}

/// Inserts the batch's key (`agent, seq, received_ms, principal`) with its counts; false
/// if it was stored before: the key is there (another collector may just have stored
/// it: this waits for its transaction), or the sequence is at or below the agent's
/// `forgotten_seq` (retention forgot keys up to it).
fn claim_batch(
    tx: &mut Transaction<'_>,
    (agent_id, seq, now, who): (&str, i64, i64, &str),
    records: i64,
    rollups: i64,
) -> Result<bool, StoreError> {
    let added = tx.execute(
        "INSERT INTO batches SELECT $1::text, $2::int8, $3::int8, $4::int8, $5::int8, $6::text
         WHERE NOT EXISTS (SELECT 1 FROM agents WHERE agent_id = $1 AND forgotten_seq >= $2)
         ON CONFLICT DO NOTHING",
        &[&agent_id, &seq, &now, &records, &rollups, &who],
    )?;
    Ok(added == 1)
}

/// What retention has moved, read under a share lock in the batch's transaction.
#[derive(Debug, Default)]
struct Limits {
    /// Windows before it are refused.
    horizon: i64,
    /// Windows before it mark their day to be summed up again.
    mark: i64,
    /// Windows before it wait in `late_windows` for their day's pack.
    packed_before: i64,
    /// Daily sketches before it are not kept.
    summaries: i64,
}

impl Limits {
    /// Reads them; `share`: under the limits' lock, shared and held to the end of the
    /// transaction, so that retention moving one waits for the batches in flight (none
    /// stores a window it would have refused, that the summaries would miss, or into a
    /// day being packed).
    fn read(c: &mut impl postgres::GenericClient, share: bool) -> Result<Self, StoreError> {
        let mut limits = Limits::default();
        if share {
            locks::share(c, locks::LIMITS)?;
        }
        for r in c.query(
            "SELECT key, value FROM meta
             WHERE key IN ('horizon', 'summary_mark', 'packed_before', 'summaries_horizon')",
            &[],
        )? {
            let v: i64 = r.get(1);
            match r.get::<_, &str>(0) {
                "horizon" => limits.horizon = v,
                "summary_mark" => limits.mark = v,
                "packed_before" => limits.packed_before = v,
                _ => limits.summaries = v,
            }
        }
        Ok(limits)
    }
}

/// Stores windows of closed days in `late_windows` (one already there is kept as it
/// was) and marks their days to be summed up again; returns how many were new.
fn insert_late(
    tx: &mut Transaction<'_>,
    views: &[&RollupView<'_>],
    ids: &dyn Fn(&SeriesLabels<'_>) -> i64,
) -> Result<i64, StoreError> {
    let mut stored = 0;
    for v in views {
        let series = ids(&v.labels);
        let row = RowValues::of(series, v);
        let n = tx.execute(
            "INSERT INTO late_windows VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
             ON CONFLICT DO NOTHING",
            &row.params(),
        )?;
        if n == 1 {
            let day = crate::store::day_of(v.window_start);
            tx.execute(
                "INSERT INTO dirty_days VALUES ($1, $2) ON CONFLICT DO NOTHING",
                &[&series, &day],
            )?;
        }
        stored += n as i64;
    }
    Ok(stored)
}

/// Records the agent's visit; an agent id belongs to the principal that first used it.
fn claim_agent(
    tx: &mut Transaction<'_>,
    agent_id: &str,
    version: &str,
    who: &str,
    (now, seq): (i64, i64),
) -> Result<(), StoreError> {
    let owner = tx.query_opt(
        "INSERT INTO agents (agent_id, version, principal, first_seen_ms, last_seen_ms, last_seq)
         VALUES ($1, $2, $3, $4, $4, $5)
         ON CONFLICT (agent_id) DO UPDATE SET version = $2, last_seen_ms = $4,
             last_seq = greatest(agents.last_seq, $5)
             WHERE agents.principal = $3
         RETURNING principal",
        &[&agent_id, &version, &who, &now, &seq],
    )?;
    if owner.is_some() {
        return Ok(());
    }
    let owner: String = tx
        .query_one(
            "SELECT principal FROM agents WHERE agent_id = $1",
            &[&agent_id],
        )?
        .get(0);
    Err(StoreError::AgentOwned {
        agent_id: agent_id.to_owned(),
        owner,
        caller: who.to_owned(),
    })
}

/// Numbers the series of `labels` not in `known`: inserted in key order (two
/// collectors numbering overlapping series wait on each other instead of deadlocking),
/// then read back, whoever inserted them.
fn number_series<'a>(
    tx: &mut Transaction<'_>,
    known: &HashMap<String, i64>,
    labels: impl Iterator<Item = SeriesLabels<'a>>,
) -> Result<HashMap<String, i64>, StoreError> {
    let mut missing: Vec<(String, SeriesLabels<'a>)> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for l in labels {
        let key = series_key(&l);
        if !known.contains_key(&key) && seen.insert(key.clone()) {
            missing.push((key, l));
        }
    }
    if missing.is_empty() {
        return Ok(HashMap::new());
    }
    missing.sort_by(|a, b| a.0.cmp(&b.0));
    let col = |f: fn(&SeriesLabels<'a>) -> &'a str| -> Vec<&'a str> {
        missing.iter().map(|(_, l)| f(l)).collect()
    };
    let (v, t, e, c) = (
        col(|l| l.vcenter),
        col(|l| l.entity_type),
        col(|l| l.entity_id),
        col(|l| l.counter),
    );
    let (i, u, s) = (col(|l| l.instance), col(|l| l.unit), col(|l| l.stats_type));
    tx.execute(
        "INSERT INTO series (vcenter, entity_type, entity_id, counter, instance, unit, stats_type)
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                              $6::text[], $7::text[])
         ON CONFLICT DO NOTHING",
        &[&v, &t, &e, &c, &i, &u, &s],
    )?;
    let rows = tx.query(
        "SELECT s.id, s.vcenter, s.entity_id, s.counter, s.instance
         FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS k(v, e, c, i)
         JOIN series s ON s.vcenter = k.v AND s.entity_id = k.e AND s.counter = k.c
                      AND s.instance = k.i",
        &[&v, &e, &c, &i],
    )?;
    Ok(rows
        .iter()
        .map(|r| {
            let key = [r.get::<_, &str>(1), r.get(2), r.get(3), r.get(4)].join("\u{1f}");
            (key, r.get(0))
        })
        .collect())
}

/// Inserts the rollups (those already stored are kept as they were) and marks the days
/// of late ones (before the summaries' mark) to be summarised again. Returns how many
/// were new.
fn insert_rollups(
    tx: &mut Transaction<'_>,
    views: &[&RollupView<'_>],
    ids: &dyn Fn(&SeriesLabels<'_>) -> i64,
    mark: i64,
) -> Result<i64, StoreError> {
    if views.is_empty() {
        return Ok(0);
    }
    let int = |x: u32| i32::try_from(x).unwrap_or(i32::MAX);
    let series: Vec<i64> = views.iter().map(|v| ids(&v.labels)).collect();
    let start: Vec<i64> = views.iter().map(|v| v.window_start).collect();
    let secs: Vec<i32> = views.iter().map(|v| int(v.window_secs)).collect();
    let expected: Vec<i32> = views.iter().map(|v| int(v.expected_samples)).collect();
    let missing: Vec<i32> = views.iter().map(|v| int(v.missing_samples)).collect();
    let count: Vec<i32> = views
        .iter()
        .map(|v| v.stats.map_or(0, |s| int(s.0)))
        .collect();
    let stat = |f: fn(&StatsRow) -> f64| -> Vec<Option<f64>> {
        views.iter().map(|v| v.stats.as_ref().map(f)).collect()
    };
    let (min, max, mean) = (stat(|s| s.1), stat(|s| s.2), stat(|s| s.3));
    let (p50, p95, p99) = (stat(|s| s.4), stat(|s| s.5), stat(|s| s.6));
    let params: [&(dyn ToSql + Sync); 12] = [
        &series, &start, &secs, &expected, &missing, &count, &min, &max, &mean, &p50, &p95, &p99,
    ];
    const ROWS: &str = "INSERT INTO rollups
         SELECT * FROM unnest($1::int8[], $2::int8[], $3::int4[], $4::int4[], $5::int4[],
                              $6::int4[], $7::float8[], $8::float8[], $9::float8[],
                              $10::float8[], $11::float8[], $12::float8[])";
    // Windows in time, none stored before (the usual batch): a plain insert, 40 % less
    // of the server's CPU than one that checks each row for a conflict first. A row
    // stored before (a window resent in a new batch) fails it: rolled back to the
    // savepoint and inserted row by row below.
    if start.iter().all(|s| *s >= mark) {
        tx.batch_execute("SAVEPOINT rows")?;
        match copy_rollups(tx, views, ids) {
            Ok(n) => {
                tx.batch_execute("RELEASE SAVEPOINT rows")?;
                return Ok(n);
            }
            Err(e) if e.code() == Some(&postgres::error::SqlState::UNIQUE_VIOLATION) => {
                tx.batch_execute("ROLLBACK TO SAVEPOINT rows")?;
            }
            Err(e) => return Err(e.into()),
        }
    }
    let mut late: Vec<&(dyn ToSql + Sync)> = params.to_vec();
    late.push(&mark);
    let row = tx.query_one(
        &format!(
            "WITH ins AS ({ROWS} ON CONFLICT DO NOTHING RETURNING series_id, window_start),
             late AS (
                 INSERT INTO dirty_days
                 SELECT DISTINCT series_id, window_start - window_start % 86400 FROM ins
                 WHERE window_start < $13
                 ON CONFLICT DO NOTHING)
             SELECT count(*) FROM ins"
        ),
        &late,
    )?;
    Ok(row.get(0))
}

/// A window's row as statement parameters, in the column order of `rollups` and
/// `late_windows`.
struct RowValues {
    series: i64,
    start: i64,
    /// Seconds, expected and missing samples, count.
    ints: [i32; 4],
    /// Min, max, mean, p50, p95, p99.
    stats: [Option<f64>; 6],
}

impl RowValues {
    fn of(series: i64, v: &RollupView<'_>) -> Self {
        let int = |x: u32| i32::try_from(x).unwrap_or(i32::MAX);
        let s = v.stats;
        let f = |g: fn(&StatsRow) -> f64| s.as_ref().map(g);
        RowValues {
            series,
            start: v.window_start,
            ints: [
                int(v.window_secs),
                int(v.expected_samples),
                int(v.missing_samples),
                s.map_or(0, |s| int(s.0)),
            ],
            stats: [
                f(|s| s.1),
                f(|s| s.2),
                f(|s| s.3),
                f(|s| s.4),
                f(|s| s.5),
                f(|s| s.6),
            ],
        }
    }

    fn params(&self) -> [&(dyn ToSql + Sync); 12] {
        let (i, f) = (&self.ints, &self.stats);
        [
            &self.series,
            &self.start,
            &i[0],
            &i[1],
            &i[2],
            &i[3],
            &f[0],
            &f[1],
            &f[2],
            &f[3],
            &f[4],
            &f[5],
        ]
    }
}

/// The rollups by COPY (binary): the server's cheapest way in, for rows none of which
/// was stored before (a duplicate fails the whole copy).
fn copy_rollups(
    tx: &mut Transaction<'_>,
    views: &[&RollupView<'_>],
    ids: &dyn Fn(&SeriesLabels<'_>) -> i64,
) -> Result<i64, postgres::Error> {
    use postgres::binary_copy::BinaryCopyInWriter;
    use postgres::types::Type;
    let types = [
        Type::INT8,
        Type::INT8,
        Type::INT4,
        Type::INT4,
        Type::INT4,
        Type::INT4,
        Type::FLOAT8,
        Type::FLOAT8,
        Type::FLOAT8,
        Type::FLOAT8,
        Type::FLOAT8,
        Type::FLOAT8,
    ];
    let sink = tx.copy_in("COPY rollups FROM STDIN (FORMAT binary)")?;
    let mut w = BinaryCopyInWriter::new(sink, &types);
    for v in views {
        w.write(&RowValues::of(ids(&v.labels), v).params())?;
    }
    Ok(w.finish()? as i64)
}

/// Inserts the daily sketches not stored yet; returns how many were new.
fn insert_dailies(
    tx: &mut Transaction<'_>,
    days: &[&DailySummary],
    ids: &dyn Fn(&SeriesLabels<'_>) -> i64,
) -> Result<i64, StoreError> {
    if days.is_empty() {
        return Ok(0);
    }
    let series: Vec<i64> = days.iter().map(|d| ids(&d.labels())).collect();
    let day: Vec<i64> = days.iter().map(|d| d.day_start).collect();
    let samples: Vec<i64> = days.iter().map(|d| d.samples as i64).collect();
    let expected: Vec<i64> = days.iter().map(|d| d.expected_samples as i64).collect();
    let max: Vec<Option<f64>> = days.iter().map(|d| d.max).collect();
    let sketch: Vec<Vec<u8>> = days.iter().map(|d| d.sketch.to_bytes()).collect();
    Ok(tx.execute(
        "INSERT INTO daily
         SELECT * FROM unnest($1::int8[], $2::int8[], $3::int8[], $4::int8[], $5::float8[],
                              $6::bytea[])
         ON CONFLICT DO NOTHING",
        &[&series, &day, &samples, &expected, &max, &sketch],
    )? as i64)
}

/// Replaces a vCenter's VMs, hosts, clusters and datastores with those of its latest
/// inventory.
fn store_inventory(
    tx: &mut Transaction<'_>,
    agent_id: &str,
    inv: &VcenterInventory,
    now: i64,
) -> Result<(), StoreError> {
    let about = serde_json::to_string(&inv.about).map_err(|e| StoreError::Other(e.to_string()))?;
    let n = |x: usize| x as i64;
    tx.execute(
        "INSERT INTO vcenters VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
         ON CONFLICT (vcenter) DO UPDATE SET agent_id = $2, url = $3, about = $4,
             collected_at = $5, vms = $6, hosts = $7, clusters = $8, datastores = $9,
             networks = $10, warnings = $11, updated_ms = $12",
        &[
            &inv.name.as_str(),
            &agent_id,
            &inv.url.as_str(),
            &about,
            &inv.collected_at.as_str(),
            &n(inv.vms.len()),
            &n(inv.hosts.len()),
            &n(inv.clusters.len()),
            &n(inv.datastores.len()),
            &n(inv.networks.len()),
            &n(inv.warnings.len()),
            &now,
        ],
    )?;
    store_vms(tx, inv)?;
    store_entities(tx, inv)
}

/// The vCenter's VMs, replaced; the last record of a VM id wins, as a replace would have
/// it.
fn store_vms(tx: &mut Transaction<'_>, inv: &VcenterInventory) -> Result<(), StoreError> {
    let vc = inv.name.as_str();
    tx.execute("DELETE FROM vms WHERE vcenter = $1", &[&vc])?;
    let mut vms: Vec<&vscout_wire::inventory::Vm> = inv.vms.iter().rev().collect();
    let mut seen = std::collections::HashSet::new();
    vms.retain(|vm| seen.insert(vm.id.as_str()));
    let docs = vms
        .iter()
        .map(|vm| to_json(*vm))
        .collect::<Result<Vec<_>, _>>()?;
    let col = |f: fn(&vscout_wire::inventory::Vm) -> &str| -> Vec<&str> {
        vms.iter().map(|vm| f(vm)).collect()
    };
    let power: Vec<Option<&str>> = vms.iter().map(|vm| vm.power_state.as_deref()).collect();
    let guest: Vec<Option<&str>> = vms
        .iter()
        .map(|vm| {
            vm.tools_guest_full_name
                .as_deref()
                .or(vm.guest_full_name.as_deref())
        })
        .collect();
    let cpus: Vec<Option<i64>> = vms.iter().map(|vm| vm.num_cpu.map(i64::from)).collect();
    let memory: Vec<Option<i64>> = vms
        .iter()
        .map(|vm| vm.memory_bytes.map(|m| m as i64))
        .collect();
    tx.execute(
        "INSERT INTO vms SELECT $1, * FROM unnest($2::text[], $3::text[], $4::text[],
             $5::text[], $6::int8[], $7::int8[], $8::text[], $9::text[], $10::text[], $11::text[])",
        &[
            &vc,
            &col(|vm| vm.id.as_str()),
            &col(|vm| vm.name.as_str()),
            &power,
            &guest,
            &cpus,
            &memory,
            &col(|vm| vm.host.as_str()),
            &col(|vm| vm.cluster.as_str()),
            &col(|vm| vm.datacenter.as_str()),
            &docs,
        ],
    )?;
    Ok(())
}

/// The vCenter's hosts, clusters and datastores, replaced.
fn store_entities(tx: &mut Transaction<'_>, inv: &VcenterInventory) -> Result<(), StoreError> {
    let vc = inv.name.as_str();
    tx.execute("DELETE FROM entities WHERE vcenter = $1", &[&vc])?;
    let mut rows: Vec<(&str, &str, &str, String)> = Vec::new();
    for h in &inv.hosts {
        rows.push((EntityKind::Host.entity_type(), &h.id, &h.name, to_json(h)?));
    }
    for c in &inv.clusters {
        rows.push((
            EntityKind::Cluster.entity_type(),
            &c.id,
            &c.name,
            to_json(c)?,
        ));
    }
    for d in &inv.datastores {
        rows.push((
            EntityKind::Datastore.entity_type(),
            &d.id,
            &d.name,
            to_json(d)?,
        ));
    }
    let mut seen = std::collections::HashSet::new();
    rows.reverse();
    rows.retain(|r| seen.insert((r.0, r.1)));
    let kinds: Vec<&str> = rows.iter().map(|r| r.0).collect();
    let ids: Vec<&str> = rows.iter().map(|r| r.1).collect();
    let names: Vec<&str> = rows.iter().map(|r| r.2).collect();
    let docs: Vec<&str> = rows.iter().map(|r| r.3.as_str()).collect();
    tx.execute(
        "INSERT INTO entities SELECT $1, * FROM unnest($2::text[], $3::text[], $4::text[],
             $5::text[])",
        &[&vc, &kinds, &ids, &names, &docs],
    )?;
    Ok(())
}

/// An inventory record as JSON text.
fn to_json<T: serde::Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Other(e.to_string()))
}
