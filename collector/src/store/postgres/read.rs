//! The reads of the API and the assessment on PostgreSQL, each in one statement or one
//! read-only snapshot; answers shaped as the SQLite store shapes them (`store/shape.rs`).

use postgres::fallible_iterator::FallibleIterator;
use postgres::types::ToSql;
use postgres::{Client, GenericClient};
use serde_json::{json, Value};
use vscout_wire::batch::AgentHealth;
use vscout_wire::inventory::{VcenterInventory, Vm};
use vscout_wire::sketch::Sketch;

use std::collections::HashMap;

use super::packs;
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
/// instance and time.
pub(super) fn metrics(
    c: &mut Client,
    kind: EntityKind,
    id: &str,
    q: &MetricsQuery,
) -> Result<Option<Vec<MetricsRow>>, StoreError> {
    let (vcenter, entity) = split_id(id, q.vcenter.as_deref());
    let from = q.from.unwrap_or(i64::MIN);
    let to = q.to.unwrap_or(i64::MAX);
    let mut tx = c.build_transaction().read_only(true).start()?;
    // Rows of packed days are read from their packs.
    let rows_from = from.max(packs::packs_through(&mut tx)?);
    let params: [&(dyn ToSql + Sync); 7] = [
        &entity,
        &vcenter,
        &q.counter,
        &from,
        &to,
        &kind.entity_type(),
        &rows_from,
    ];
    let mut rows = Vec::new();
    let mut it = tx.query_raw(
        "SELECT s.vcenter, s.counter, s.instance, s.unit, s.stats_type, t.*
         FROM series s CROSS JOIN LATERAL (
             SELECT h.hour_start AS start, 3600::int8 AS secs, h.expected, h.missing, h.count,
                    h.min, h.max, h.mean, NULL::float8 AS p50, h.p95, NULL::float8 AS p99
             FROM rollup_hours h
             WHERE h.series_id = s.id AND h.hour_start >= $4 AND h.hour_start <= $5
             UNION ALL
             SELECT r.window_start, r.window_secs::int8, r.expected::int8, r.missing::int8,
                    r.count::int8, r.min, r.max, r.mean, r.p50, r.p95, r.p99
             FROM rollups r
             WHERE r.series_id = s.id AND r.window_start >= $7 AND r.window_start <= $5) t
         WHERE s.entity_id = $1 AND s.entity_type = $6 AND ($2::text IS NULL OR s.vcenter = $2)
           AND ($3::text IS NULL OR s.counter = $3)
         ORDER BY s.counter, s.instance, t.start LIMIT 100000",
        params,
    )?;
    while let Some(r) = it.next()? {
        rows.push(MetricsRow {
            vcenter: r.get(0),
            counter: r.get(1),
            instance: r.get(2),
            unit: r.get(3),
            stats_type: r.get(4),
            window_start: r.get(5),
            window_secs: r.get(6),
            expected_samples: r.get(7),
            missing_samples: r.get(8),
            count: r.get(9),
            min: r.get(10),
            max: r.get(11),
            mean: r.get(12),
            p50: r.get(13),
            p95: r.get(14),
            p99: r.get(15),
        });
    }
    drop(it);
    // Closed days' windows are packed, late ones wait for their pack.
    let series = (
        entity.as_str(),
        vcenter.as_deref(),
        q.counter.as_deref(),
        kind,
    );
    rows.extend(packed_rows(&mut tx, series, (from, to))?);
    rows.sort_by(|a, b| {
        (&a.counter, &a.instance, a.window_start).cmp(&(&b.counter, &b.instance, b.window_start))
    });
    rows.truncate(100_000);
    let out = found(&mut tx, kind, vcenter.as_deref(), &entity, rows)?;
    tx.commit()?;
    Ok(out)
}

/// The packed and late windows of one entity's series (`entity`, vCenter, counter if
/// given, kind) starting in `[from, to]`, as metrics rows.
fn packed_rows(
    tx: &mut postgres::Transaction<'_>,
    (entity, vcenter, counter, kind): (&str, Option<&str>, Option<&str>, EntityKind),
    (from, to): (i64, i64),
) -> Result<Vec<MetricsRow>, StoreError> {
    let heads: HashMap<i64, MetricsRow> = tx
        .query(
            "SELECT id, vcenter, counter, instance, unit, stats_type FROM series
             WHERE entity_id = $1 AND entity_type = $4 AND ($2::text IS NULL OR vcenter = $2)
               AND ($3::text IS NULL OR counter = $3)",
            &[&entity, &vcenter, &counter, &kind.entity_type()],
        )?
        .iter()
        .map(|r| {
            let head = MetricsRow {
                vcenter: r.get(1),
                counter: r.get(2),
                instance: r.get(3),
                unit: r.get(4),
                stats_type: r.get(5),
                ..MetricsRow::empty()
            };
            (r.get(0), head)
        })
        .collect();
    // In the answer's order, a few series at a time: once 100,000 rows are read, the
    // series after cannot be in the answer (it is cut there).
    let mut ids: Vec<(&MetricsRow, i64)> = heads.iter().map(|(id, h)| (h, *id)).collect();
    ids.sort_by(|a, b| (&a.0.counter, &a.0.instance).cmp(&(&b.0.counter, &b.0.instance)));
    let mut out = Vec::new();
    for chunk in ids.chunks(4) {
        let some: Vec<i64> = chunk.iter().map(|c| c.1).collect();
        let span = (from, to.saturating_add(1));
        for (series, w) in packs::extra_windows(tx, Some(&some), span)? {
            if let Some(head) = heads.get(&series) {
                out.push(window_row(head, &w));
            }
        }
        if out.len() >= 100_000 {
            break;
        }
    }
    Ok(out)
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
                duplicate_batches, rows_ignored, health FROM agents
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
                "buffer_depth": health.get("buffer_depth").cloned().unwrap_or(Value::Null),
                "errors": health.get("errors").cloned().unwrap_or(Value::Null),
                "last_error": health.get("last_error").cloned().unwrap_or(Value::Null),
                "health": health,
            })
        })
        .collect())
}
