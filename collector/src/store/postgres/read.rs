//! The reads of the API and the assessment on PostgreSQL, each in one statement or one
//! read-only snapshot; answers shaped as the SQLite store shapes them (`store/shape.rs`).

use postgres::fallible_iterator::FallibleIterator;
use postgres::types::{ToSql, Type};
use postgres::{Client, GenericClient};
use serde_json::{json, Value};
use vscout_wire::batch::AgentHealth;
use vscout_wire::inventory::{VcenterInventory, Vm};
use vscout_wire::sketch::Sketch;

use std::collections::HashMap;

use super::packs;
use crate::store::pack::Window;
use crate::store::shape::{health_json, split_id, window_row, DailyMerge};
use crate::store::{
    DailyQuery, EntityFilter, EntityKind, MetricsQuery, MetricsRow, StoreError, VmFilter,
};

fn page(limit: Option<u32>, offset: Option<u32>) -> (i64, i64) {
    (
        i64::from(limit.unwrap_or(10_000).min(100_000)),
        i64::from(offset.unwrap_or(0)),
    )
}

fn parsed(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::Null)
}

pub(super) fn vcenters(c: &mut Client) -> Result<Vec<Value>, StoreError> {
    let rows = c.query(
        "SELECT vcenter, agent_id, url, about, collected_at, vms, hosts, clusters, datastores,
                networks, warnings, updated_ms FROM vcenters ORDER BY vcenter",
        &[],
    )?;
    Ok(rows
        .iter()
        .map(|r| {
            json!({
                "vcenter": r.get::<_, &str>(0), "agent_id": r.get::<_, &str>(1),
                "url": r.get::<_, &str>(2), "about": parsed(r.get(3)),
                "collected_at": vscout_wire::datetime::parse_unix_secs(r.get(4)),
                "vms": r.get::<_, i64>(5), "hosts": r.get::<_, i64>(6),
                "clusters": r.get::<_, i64>(7), "datastores": r.get::<_, i64>(8),
                "networks": r.get::<_, i64>(9), "warnings": r.get::<_, i64>(10),
                "updated_at": r.get::<_, i64>(11) / 1000,
            })
        })
        .collect())
}

pub(super) fn vms(c: &mut Client, f: &VmFilter) -> Result<Vec<Value>, StoreError> {
    let (limit, offset) = page(f.limit, f.offset);
    let rows = c.query(
        "SELECT vcenter, vm_id, name, power_state, guest_os, num_cpu, memory_bytes, host,
                cluster, datacenter, CASE WHEN $5 THEN doc END
         FROM vms
         WHERE ($1::text IS NULL OR vcenter = $1) AND ($2::text IS NULL OR strpos(name, $2) > 0)
           AND ($3::text IS NULL OR power_state = $3) AND ($4::text IS NULL OR cluster = $4)
         ORDER BY vcenter, name, vm_id LIMIT $6 OFFSET $7",
        &[
            &f.vcenter,
            &f.name,
            &f.power_state,
            &f.cluster,
            &f.full.unwrap_or(false),
            &limit,
            &offset,
        ],
    )?;
    Ok(rows
        .iter()
        .map(|r| {
            let (vcenter, vm_id): (&str, &str) = (r.get(0), r.get(1));
            let mut v = json!({
                "id": format!("{vcenter}:{vm_id}"), "vcenter": vcenter, "vm_id": vm_id,
                "name": r.get::<_, &str>(2), "power_state": r.get::<_, Option<&str>>(3),
                "guest_os": r.get::<_, Option<&str>>(4), "num_cpu": r.get::<_, Option<i64>>(5),
                "memory_bytes": r.get::<_, Option<i64>>(6), "host": r.get::<_, &str>(7),
                "cluster": r.get::<_, &str>(8), "datacenter": r.get::<_, &str>(9),
            });
            if let Some(doc) = r.get::<_, Option<&str>>(10) {
                v["inventory"] = parsed(doc);
            }
            v
        })
        .collect())
}

pub(super) fn entities(
    c: &mut Client,
    kind: EntityKind,
    f: &EntityFilter,
) -> Result<Vec<Value>, StoreError> {
    let (limit, offset) = page(f.limit, f.offset);
    let rows = c.query(
        "SELECT vcenter, entity_id, doc FROM entities
         WHERE kind = $1 AND ($2::text IS NULL OR vcenter = $2)
           AND ($3::text IS NULL OR strpos(name, $3) > 0)
         ORDER BY vcenter, name, entity_id LIMIT $4 OFFSET $5",
        &[&kind.entity_type(), &f.vcenter, &f.name, &limit, &offset],
    )?;
    Ok(rows
        .iter()
        .map(|r| {
            let (vcenter, id): (&str, &str) = (r.get(0), r.get(1));
            let mut v = parsed(r.get(2));
            if let Some(o) = v.as_object_mut() {
                o.insert("id".into(), json!(format!("{vcenter}:{id}")));
                o.insert("vcenter".into(), json!(vcenter));
                o.insert("entity_id".into(), json!(id));
            }
            v
        })
        .collect())
}

/// The hours retention kept and the windows of one entity's series, by counter,
/// instance and time: four statements in one snapshot (the series, their hours and
/// rows, their packs, their late windows), each sent with its parameters' types so that
/// it takes one round trip (no prepare), the series' names sent once.
pub(super) fn metrics(
    c: &mut Client,
    kind: EntityKind,
    id: &str,
    q: &MetricsQuery,
) -> Result<Option<Vec<MetricsRow>>, StoreError> {
    let (vcenter, entity) = split_id(id, q.vcenter.as_deref());
    let (from, to) = (q.from.unwrap_or(i64::MIN), q.to.unwrap_or(i64::MAX));
    // One snapshot: a day's series packed between the reads of rows and packs would be
    // read twice.
    let mut tx = c
        .build_transaction()
        .isolation_level(postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()?;
    let named = tx.query_typed(
        "SELECT id, vcenter, counter, instance, unit, stats_type,
                (SELECT value FROM meta WHERE key = 'packs_through'),
                (SELECT value FROM meta WHERE key = 'packing_below')
         FROM series
         WHERE entity_id = $1 AND entity_type = $4 AND ($2::text IS NULL OR vcenter = $2)
           AND ($3::text IS NULL OR counter = $3)
         ORDER BY counter, instance, id",
        &[
            (&entity, Type::TEXT),
            (&vcenter, Type::TEXT),
            (&q.counter, Type::TEXT),
            (&kind.entity_type(), Type::TEXT),
        ],
    )?;
    let Some(first) = named.first() else {
        return found(&mut tx, kind, vcenter.as_deref(), &entity, Vec::new());
    };
    let packed = packs::RowsFrom::new(first.get(6), first.get(7));
    let heads = ranked(&named);
    let ids: Vec<i64> = named.iter().map(|r| r.get(0)).collect();
    let mut rows: Vec<(u32, MetricsRow)> = Vec::new();
    hours_and_rows(&mut tx, &ids, (from, to), packed, &heads, &mut rows)?;
    // Closed days' windows are packed, late ones wait for their pack. Read in the
    // answer's order: once 100,000 rows are read, the series after cannot be in the
    // answer (it is cut there).
    let span = (from, to.saturating_add(1));
    let packed = packs::windows_in_order(&mut tx, &ids, span, 100_000)?;
    let answer = in_order(&heads, rows, &packed, 100_000);
    let out = found(&mut tx, kind, vcenter.as_deref(), &entity, answer)?;
    tx.commit()?;
    Ok(out)
}

/// The series (rows of `id, vcenter, counter, instance, unit, stats_type` in the answer's
/// order) by id: each one's rank in that order (series of one counter and instance in
/// several vCenters share one: rows are sorted on it and their start, not on names) and
/// names as a row without figures.
fn ranked(named: &[postgres::Row]) -> HashMap<i64, (u32, MetricsRow)> {
    let mut heads = HashMap::new();
    let mut rank = 0u32;
    for (i, r) in named.iter().enumerate() {
        let head = MetricsRow {
            vcenter: r.get::<_, &str>(1).into(),
            counter: r.get::<_, &str>(2).into(),
            instance: r.get::<_, &str>(3).into(),
            unit: r.get::<_, &str>(4).into(),
            stats_type: r.get::<_, &str>(5).into(),
            ..MetricsRow::empty()
        };
        if i > 0 && (head.counter.as_str(), head.instance.as_str()) != names(&named[i - 1]) {
            rank += 1;
        }
        heads.insert(r.get(0), (rank, head));
    }
    heads
}

/// The first `limit` of `rows` (hours and rows, ranked) and `packed` windows in the
/// answer's order, sorted as keys (rank, start, where the window is), not as rows of 256
/// bytes; stable: windows of one rank and start (several vCenters') keep the order read.
/// Rows are made once, for the windows in the answer.
fn in_order(
    heads: &HashMap<i64, (u32, MetricsRow)>,
    rows: Vec<(u32, MetricsRow)>,
    packed: &[(i64, Window)],
    limit: usize,
) -> Vec<MetricsRow> {
    let mut order: Vec<(u32, i64, usize)> = rows
        .iter()
        .enumerate()
        .map(|(at, (rank, r))| (*rank, r.window_start, at))
        .collect();
    for (at, (series, w)) in packed.iter().enumerate() {
        if let Some((rank, _)) = heads.get(series) {
            order.push((*rank, w.start, rows.len() + at));
        }
    }
    order.sort_by_key(|(rank, start, _)| (*rank, *start));
    order.truncate(limit);
    let mut answer = Vec::with_capacity(order.len());
    for (_, _, at) in order {
        match at.checked_sub(rows.len()) {
            None => answer.push(rows[at].1.clone()),
            Some(p) => {
                let (series, w) = &packed[p];
                if let Some((_, head)) = heads.get(series) {
                    answer.push(window_row(head, w));
                }
            }
        }
    }
    answer
}

/// A series row's counter and instance (columns 2 and 3).
fn names(r: &postgres::Row) -> (&str, &str) {
    (r.get(2), r.get(3))
}

/// Adds the hours retention kept and the rows not packed of the series `ids` in
/// `[from, to]` to `out`, with their series' rank.
fn hours_and_rows(
    tx: &mut postgres::Transaction<'_>,
    ids: &[i64],
    (from, to): (i64, i64),
    packed: packs::RowsFrom,
    heads: &HashMap<i64, (u32, MetricsRow)>,
    out: &mut Vec<(u32, MetricsRow)>,
) -> Result<(), StoreError> {
    let rows_from = from.max(packed.day);
    let params: [(&(dyn ToSql + Sync), Type); 6] = [
        (&ids, Type::INT8_ARRAY),
        (&from, Type::INT8),
        (&to, Type::INT8),
        (&rows_from, Type::INT8),
        (&packed.day_end, Type::INT8),
        (&packed.below, Type::INT8),
    ];
    let mut it = tx.query_typed_raw(
        &format!(
            "SELECT series_id, hour_start, 3600::int8, expected, missing, count, min, max,
                    mean, NULL::float8, p95, NULL::float8
             FROM rollup_hours
             WHERE series_id = ANY($1) AND hour_start >= $2 AND hour_start <= $3
             UNION ALL
             SELECT series_id, window_start, window_secs::int8, expected::int8, missing::int8,
                    count::int8, min, max, mean, p50, p95, p99
             FROM rollups
             WHERE series_id = ANY($1) AND window_start >= $4 AND window_start <= $3 AND {}",
            packs::not_packed("", 5, 6)
        ),
        params,
    )?;
    while let Some(r) = it.next()? {
        let Some((rank, head)) = heads.get(&r.get::<_, i64>(0)) else {
            continue;
        };
        let row = MetricsRow {
            window_start: r.get(1),
            window_secs: r.get(2),
            expected_samples: r.get(3),
            missing_samples: r.get(4),
            count: r.get(5),
            min: r.get(6),
            max: r.get(7),
            mean: r.get(8),
            p50: r.get(9),
            p95: r.get(10),
            p99: r.get(11),
            ..head.clone()
        };
        out.push((*rank, row));
    }
    Ok(())
}

/// Daily sketches of one entity merged per series over a range of days.
pub(super) fn daily(
    c: &mut Client,
    kind: EntityKind,
    id: &str,
    q: &DailyQuery,
) -> Result<Option<Vec<Value>>, StoreError> {
    let (vcenter, entity) = split_id(id, q.vcenter.as_deref());
    let rows = c.query(
        "SELECT s.id, s.vcenter, s.counter, s.instance, s.unit, s.stats_type, d.day_start,
                d.samples, d.expected, d.max, d.sketch
         FROM series s JOIN daily d ON d.series_id = s.id
         WHERE s.entity_id = $1 AND s.entity_type = $6 AND ($2::text IS NULL OR s.vcenter = $2)
           AND ($3::text IS NULL OR s.counter = $3)
           AND ($4::int8 IS NULL OR d.day_start >= $4) AND ($5::int8 IS NULL OR d.day_start <= $5)
         ORDER BY s.counter, s.instance, s.id, d.day_start",
        &[
            &entity,
            &vcenter,
            &q.counter,
            &q.from,
            &q.to,
            &kind.entity_type(),
        ],
    )?;
    let mut merged: Vec<(i64, DailyMerge)> = Vec::new();
    for r in &rows {
        let series: i64 = r.get(0);
        let sketch = Sketch::from_bytes(r.get(10)).ok_or_else(|| {
            StoreError::Other(format!("daily sketch of series {series} unreadable"))
        })?;
        if merged.last().is_none_or(|(id, _)| *id != series) {
            let head = json!({
                "vcenter": r.get::<_, &str>(1), "counter": r.get::<_, &str>(2),
                "instance": r.get::<_, &str>(3), "unit": r.get::<_, &str>(4),
                "stats_type": r.get::<_, &str>(5),
            });
            merged.push((series, DailyMerge::new(head)));
        }
        if let Some((_, m)) = merged.last_mut() {
            m.add(r.get(6), r.get(7), r.get(8), r.get(9), &sketch);
        }
    }
    let out = merged.into_iter().map(|(_, m)| m.finish()).collect();
    found(c, kind, vcenter.as_deref(), &entity, out)
}

/// `rows`, or `None` when there are none and no inventory or series knows the entity.
fn found<T>(
    c: &mut impl GenericClient,
    kind: EntityKind,
    vcenter: Option<&str>,
    entity: &str,
    rows: Vec<T>,
) -> Result<Option<Vec<T>>, StoreError> {
    if !rows.is_empty() {
        return Ok(Some(rows));
    }
    let table = if kind == EntityKind::Vm {
        "SELECT 1 FROM vms WHERE vm_id = $1 AND ($2::text IS NULL OR vcenter = $2)"
    } else {
        "SELECT 1 FROM entities WHERE entity_id = $1 AND kind = $3
             AND ($2::text IS NULL OR vcenter = $2)"
    };
    let known: bool = c
        .query_one(
            &format!(
                "SELECT EXISTS ({table})
                     OR EXISTS (SELECT 1 FROM series WHERE entity_id = $1 AND entity_type = $3
                                AND ($2::text IS NULL OR vcenter = $2))"
            ),
            &[&entity, &vcenter, &kind.entity_type()],
        )?
        .get(0);
    Ok(known.then_some(rows))
}

pub(super) fn vm_records(
    c: &mut Client,
    only: Option<(Option<&str>, &str)>,
    each: &mut dyn FnMut(&str, Vm),
) -> Result<(), StoreError> {
    let (id, vcenter) = (only.map(|o| o.1), only.and_then(|o| o.0));
    let params: [&(dyn ToSql + Sync); 2] = [&id, &vcenter];
    let mut rows = c.query_raw(
        "SELECT vcenter, vm_id, doc FROM vms
         WHERE ($1::text IS NULL OR vm_id = $1) AND ($2::text IS NULL OR vcenter = $2)
         ORDER BY vcenter, vm_id",
        params,
    )?;
    while let Some(r) = rows.next()? {
        let vm: Vm = serde_json::from_str(r.get(2)).map_err(|e| {
            StoreError::Other(format!(
                "inventory record of VM {:?}: {e}",
                r.get::<_, &str>(1)
            ))
        })?;
        each(r.get(0), vm);
    }
    Ok(())
}

pub(super) fn inventories(c: &mut Client) -> Result<Vec<VcenterInventory>, StoreError> {
    let mut out: Vec<VcenterInventory> = Vec::new();
    for r in c.query(
        "SELECT vcenter, url, about, collected_at FROM vcenters ORDER BY vcenter",
        &[],
    )? {
        let name: &str = r.get(0);
        let about = serde_json::from_str(r.get(2))
            .map_err(|e| StoreError::Other(format!("about of vCenter {name:?}: {e}")))?;
        out.push(VcenterInventory {
            name: name.into(),
            url: r.get::<_, &str>(1).into(),
            about,
            collected_at: r.get::<_, &str>(3).into(),
            ..VcenterInventory::default()
        });
    }
    for r in c.query(
        "SELECT vcenter, kind, entity_id, doc FROM entities
         ORDER BY vcenter, kind, name, entity_id",
        &[],
    )? {
        let vcenter: &str = r.get(0);
        let Some(vc) = out.iter_mut().find(|v| v.name == vcenter) else {
            continue;
        };
        let doc: &str = r.get(3);
        let bad = |e: serde_json::Error| {
            StoreError::Other(format!(
                "inventory record of {:?}: {e}",
                r.get::<_, &str>(2)
            ))
        };
        match r.get::<_, &str>(1) {
            "HostSystem" => vc.hosts.push(serde_json::from_str(doc).map_err(bad)?),
            "ClusterComputeResource" => vc.clusters.push(serde_json::from_str(doc).map_err(bad)?),
            "Datastore" => vc.datastores.push(serde_json::from_str(doc).map_err(bad)?),
            _ => {}
        }
    }
    Ok(out)
}

pub(super) fn agents(c: &mut Client, only: Option<&str>) -> Result<Vec<Value>, StoreError> {
    let rows = c.query(
        "SELECT agent_id, version, principal, first_seen_ms, last_seen_ms, last_seq, batches,
                duplicate_batches, rows_ignored, health, last_window_end FROM agents
         WHERE $1::text IS NULL OR principal = $1 ORDER BY agent_id",
        &[&only],
    )?;
    Ok(rows
        .iter()
        .map(|r| {
            let health = r
                .get::<_, Option<&str>>(9)
                .and_then(|h| serde_json::from_str::<AgentHealth>(h).ok())
                .map_or(Value::Null, |h| health_json(&h));
            json!({
                "agent_id": r.get::<_, &str>(0), "version": r.get::<_, &str>(1),
                "principal": r.get::<_, &str>(2), "first_seen_at": r.get::<_, i64>(3) / 1000,
                "last_seen_at": r.get::<_, i64>(4) / 1000, "last_seq": r.get::<_, i64>(5),
                "batches": r.get::<_, i64>(6), "duplicate_batches": r.get::<_, i64>(7),
                "rows_ignored": r.get::<_, i64>(8),
                "last_window_end": r.get::<_, Option<i64>>(10),
                "buffer_depth": health.get("buffer_depth").cloned().unwrap_or(Value::Null),
                "errors": health.get("errors").cloned().unwrap_or(Value::Null),
                "last_error": health.get("last_error").cloned().unwrap_or(Value::Null),
                "health": health,
            })
        })
        .collect())
}
