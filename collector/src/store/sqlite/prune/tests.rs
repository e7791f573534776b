//! Retention through a real store with time moved forward (`now_s` is the clock): what
//! is older than each horizon goes and is counted, the rest stays as it was; a series
//! that stopped keeps its last day whole; a late window of a pruned day stays out; a
//! prune stopped after one step and run again leaves what an uninterrupted one does.

use vscout_wire::batch::{Batch, Record, BATCH_VERSION};
use vscout_wire::rollup::{DailySummary, Rollup, ROLLUP_SCHEMA_VERSION};
use vscout_wire::sketch::Sketch;

use crate::store::retention::prune_pass;
use crate::store::sqlite::SqliteStore;
use crate::store::{EntityKind, MetricsQuery, Principal, Retention, Storage};

const DAY: i64 = 86_400;
/// A day start.
const T0: i64 = 1_796_083_200;

fn window(vm: &str, counter: &str, start: i64) -> Record {
    let mut r = Rollup::example(vm, counter, 10.0 + (start / 300 % 7) as f64);
    r.window_start = start;
    Record::Rollup(r)
}

fn sketch_of(vm: &str, day: i64) -> Record {
    let mut sketch = Sketch::default();
    sketch.add(12.0);
    Record::Daily(DailySummary {
        schema_version: ROLLUP_SCHEMA_VERSION,
        vcenter: "vc".into(),
        entity_type: "VirtualMachine".into(),
        entity_id: vm.into(),
        counter: "cpu.usage.average".into(),
        instance: "".into(),
        unit: "percent".into(),
        stats_type: "rate".into(),
        day_start: day,
        samples: 1,
        expected_samples: 4320,
        p50: Some(12.0),
        p95: Some(12.0),
        p99: Some(12.0),
        max: Some(12.0),
        sketch,
    })
}

fn ingest(store: &SqliteStore, seq: u64, records: Vec<Record>) -> usize {
    let who = Principal::Token("t".into());
    let b = Batch {
        batch_version: BATCH_VERSION,
        created_ms: 0,
        records,
    };
    store
        .ingest("a", seq, "v", &who, &b)
        .expect("ingest")
        .rows_ignored
}

/// `vm-1` (CPU, summarised) and a host series every hour for `days` days from T0, a
/// daily sketch per day; `vm-2` stopped after the first 3 days, its last hour open.
fn estate(dir: &std::path::Path) -> SqliteStore {
    let store = SqliteStore::open(&dir.join("db")).expect("open");
    let mut seq = 0;
    for day in 0..40 {
        let mut records = vec![sketch_of("vm-1", T0 + day * DAY)];
        for h in 0..24 {
            let start = T0 + day * DAY + h * 3600;
            records.push(window("vm-1", "cpu.usage.average", start));
            let mut host = Rollup::example("host-1", "cpu.usage.average", 5.0);
            (host.entity_type, host.window_start) = ("HostSystem".into(), start);
            records.push(Record::Rollup(host));
            if day < 3 {
                records.push(window("vm-2", "cpu.usage.average", start));
            }
        }
        seq += 1;
        ingest(&store, seq, records);
    }
    store
}

fn all(store: &SqliteStore, sql: &str) -> Vec<Vec<String>> {
    let conn = store.reader();
    let mut stmt = conn.prepare(sql).expect("prepare");
    let n = stmt.column_count();
    let rows = stmt
        .query_map([], |r| {
            (0..n)
                .map(|i| {
                    let v: rusqlite::types::Value = r.get(i)?;
                    Ok(format!("{v:?}"))
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .expect("query");
    rows.collect::<Result<_, _>>().expect("rows")
}

fn count(store: &SqliteStore, sql: &str) -> i64 {
    store
        .reader()
        .query_row(sql, [], |r| r.get(0))
        .expect("count")
}

const SUMMARIES: &str = "SELECT * FROM window_days ORDER BY series_id, day_start";

fn retention() -> Retention {
    Retention {
        windows_days: 35,
        summaries_days: 37,
        ..Retention::default()
    }
}

#[test]
fn what_is_older_than_each_horizon_goes_counted_and_the_rest_stays() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = estate(dir.path());
    let now = T0 + 40 * DAY + 3600;
    let r = retention();
    let (windows_from, summaries_from) = (r.windows_from(now), r.summaries_from(now));
    assert_eq!((windows_from, summaries_from), (T0 + 5 * DAY, T0 + 3 * DAY));
    let kept_rollups = count(
        &store,
        &format!("SELECT count(*) FROM rollups WHERE window_start >= {windows_from}"),
    );
    let kept_summaries: Vec<Vec<String>> = all(&store, SUMMARIES)
        .into_iter()
        .filter(|row| row[1] >= format!("Integer({summaries_from})"))
        .collect();
    let before = store.counts().expect("counts");
    let pruned = prune_pass(&store, &r, now).expect("prune");
    assert_eq!(pruned.rollups, before.rollups - kept_rollups as u64);
    assert_eq!(
        pruned.rollups,
        2 * 5 * 24 + 3 * 24,
        "vm-1 and the host 5 days, vm-2 all"
    );
    assert_eq!(pruned.sketches, 3, "vm-1's sketches of days 0, 1, 2");
    assert!(pruned.summaries >= 3 && pruned.bytes > 0, "{pruned:?}");
    assert_eq!(store.counts().expect("counts").rollups, kept_rollups as u64);
    // Every day kept is over: packed, a row per series and day.
    assert_eq!(count(&store, "SELECT count(*) FROM rollups"), 0);
    assert_eq!(
        count(&store, "SELECT min(day_start) FROM window_packs"),
        windows_from
    );
    assert_eq!(
        pruned.packed_days,
        2 * 35,
        "vm-1 and the host, days 5 to 39"
    );
    assert_eq!(
        all(&store, SUMMARIES),
        kept_summaries,
        "kept summaries unchanged"
    );
    assert_eq!(store.counts().expect("counts").pruned, pruned, "counted");
    // The hours between the two horizons stay, summed up (one window an hour here), and
    // the metrics read them before the windows.
    assert_eq!(
        count(&store, "SELECT count(*) FROM rollup_hours"),
        2 * 2 * 24,
        "vm-1 and the host, days 3 and 4"
    );
    let rows = store
        .metrics(EntityKind::Vm, "vc:vm-1", &MetricsQuery::default())
        .expect("metrics")
        .expect("known");
    assert_eq!(rows.len(), 2 * 24 + 35 * 24);
    assert_eq!(
        (rows[0].window_start, rows[0].window_secs),
        (summaries_from, 3600)
    );
    assert_eq!(rows[0].count, 15);
    assert!(rows[0].p50.is_none() && rows[0].max.is_some());
    assert_eq!(
        (rows[48].window_start, rows[48].window_secs),
        (windows_from, 300)
    );
    assert_eq!(pruned.refused_windows, 0);
    // A second pass at the same time finds nothing; the counts stay.
    let again = prune_pass(&store, &r, now).expect("prune");
    assert_eq!(
        (
            again.rollups,
            again.summaries,
            again.sketches,
            again.packed_days
        ),
        (0, 0, 0, 0)
    );
    assert_eq!(
        store.counts().expect("counts").pruned.rollups,
        pruned.rollups
    );

    // A late window of a day whose windows went (its summary kept) stays out.
    let summaries = all(&store, SUMMARIES);
    let late = T0 + 4 * DAY + 1800;
    assert_eq!(
        ingest(&store, 100, vec![window("vm-1", "cpu.usage.average", late)]),
        0,
        "refused, not a conflict"
    );
    assert_eq!(all(&store, SUMMARIES), summaries);
    assert_eq!(store.counts().expect("counts").pruned.refused_windows, 1);
    // After a restart too.
    drop(store);
    let store = SqliteStore::open(&dir.path().join("db")).expect("reopen");
    ingest(
        &store,
        101,
        vec![window("vm-1", "cpu.usage.average", late + 300)],
    );
    assert_eq!(store.counts().expect("counts").pruned.refused_windows, 2);
    assert_eq!(all(&store, SUMMARIES), summaries);
    assert_eq!(
        count(
            &store,
            &format!("SELECT count(*) FROM rollups WHERE window_start < {windows_from}")
        ),
        0
    );
    assert_eq!(store.counts().expect("counts").rollups, kept_rollups as u64);
    // Two days on: the hours of days 3 and 4 go, those of days 5 and 6 are made.
    let later = prune_pass(&store, &r, now + 2 * DAY).expect("prune");
    assert_eq!(later.hours, 2 * 2 * 24);
    assert_eq!(
        count(&store, "SELECT min(hour_start) FROM rollup_hours"),
        summaries_from + 2 * DAY
    );
    assert_eq!(
        count(&store, "SELECT count(*) FROM rollup_hours"),
        2 * 2 * 24
    );
}

#[test]
fn a_series_that_stopped_keeps_its_last_day_whole() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = estate(dir.path());
    let last_day = |store: &SqliteStore| {
        count(
            store,
            &format!(
                "SELECT w.windows FROM window_days w JOIN series s ON s.id = w.series_id
                 WHERE s.entity_id = 'vm-2' AND w.day_start = {}",
                T0 + 2 * DAY
            ),
        )
    };
    assert!(
        last_day(&store) < 24,
        "the open day's row stops at its open hour"
    );
    let r = Retention {
        windows_days: 35,
        summaries_days: 400,
        ..Retention::default()
    };
    prune_pass(&store, &r, T0 + 40 * DAY).expect("prune");
    let vm2 = MetricsQuery::default();
    let rows = store
        .metrics(EntityKind::Vm, "vc:vm-2", &vm2)
        .expect("metrics");
    let rows = rows.expect("known");
    assert_eq!(rows.len(), 3 * 24, "its hours");
    assert!(rows.iter().all(|r| r.window_secs == 3600), "no window left");
    assert_eq!(last_day(&store), 24, "closed whole before its windows went");
    // It comes back: the new window is stored, the old days stay as they were.
    let summaries = all(&store, SUMMARIES);
    assert_eq!(
        ingest(
            &store,
            100,
            vec![window("vm-2", "cpu.usage.average", T0 + 40 * DAY)]
        ),
        0
    );
    assert_eq!(all(&store, SUMMARIES), summaries);
    assert_eq!(last_day(&store), 24);
}

#[test]
fn a_prune_stopped_after_a_step_and_run_again_leaves_what_one_pass_does() {
    let (a, b) = (
        tempfile::tempdir().expect("tempdir"),
        tempfile::tempdir().expect("tempdir"),
    );
    let (one, stopped) = (estate(a.path()), estate(b.path()));
    let (r, now) = (retention(), T0 + 40 * DAY);
    prune_pass(&one, &r, now).expect("prune");
    let step = stopped.prune_step(now, &r, 0, 1).expect("step");
    assert_eq!(step.next, Some(1), "one series done, more to go");
    drop(stopped);
    let stopped = SqliteStore::open(&b.path().join("db")).expect("reopen");
    prune_pass(&stopped, &r, now).expect("prune");
    for sql in [
        "SELECT * FROM rollups ORDER BY series_id, window_start",
        "SELECT * FROM window_packs ORDER BY series_id, day_start",
        SUMMARIES,
        "SELECT series_id, day_start FROM daily ORDER BY series_id, day_start",
        "SELECT * FROM rollup_hours ORDER BY series_id, hour_start",
    ] {
        assert_eq!(all(&one, sql), all(&stopped, sql), "{sql}");
    }
    let (p1, p2) = (
        one.counts().expect("counts").pruned,
        stopped.counts().expect("counts").pruned,
    );
    assert_eq!(
        (
            p1.rollups,
            p1.summaries,
            p1.sketches,
            p1.hours,
            p1.packed_days
        ),
        (
            p2.rollups,
            p2.summaries,
            p2.sketches,
            p2.hours,
            p2.packed_days
        )
    );
}

mod packing;
