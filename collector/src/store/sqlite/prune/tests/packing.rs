//! Packing through a real store: the pass that prunes packs each closed day, and every
//! reader (metrics, the assessment's usage) answers exactly as it did from rows; a late
//! window of a packed day counts as if it had come in time, a resent one is a
//! duplicate, and the next pass merges the late one into its day's pack.

use super::{count, ingest, window, DAY, T0};
use crate::store::retention::prune_pass;
use crate::store::sqlite::SqliteStore;
use crate::store::{
    EntityKind, MetricsQuery, MetricsRow, Retention, SeriesUsage, Storage, UsageQuery,
    USAGE_COUNTERS,
};

/// Three days of `vm-1`'s CPU and memory every 5 minutes (values varied, a few windows
/// left out), `skip` left out too; then the fourth day's first hour.
fn store_with(dir: &std::path::Path, skip: Option<i64>) -> SqliteStore {
    let store = SqliteStore::open(&dir.join("db")).expect("open");
    let mut seq = 0;
    for day in 0..4 {
        let hours = if day == 3 { 1 } else { 24 };
        for h in 0..hours {
            let mut records = Vec::new();
            for w in 0..12 {
                let start = T0 + day * DAY + h * 3600 + w * 300;
                if Some(start) == skip || (day < 3 && (start / 300) % 97 == 0) {
                    continue;
                }
                for counter in ["cpu.usage.average", "mem.usage.average"] {
                    records.push(window("vm-1", counter, start));
                }
            }
            seq += 1;
            ingest(&store, seq, records);
        }
    }
    store
}

fn metrics(store: &SqliteStore) -> Vec<MetricsRow> {
    store
        .metrics(EntityKind::Vm, "vc:vm-1", &MetricsQuery::default())
        .expect("metrics")
        .expect("known")
}

fn usage(store: &SqliteStore) -> Vec<SeriesUsage> {
    let mut out = Vec::new();
    let q = UsageQuery {
        counters: &USAGE_COUNTERS,
        from_s: T0,
        to_s: T0 + 4 * DAY,
        samples: false,
        vm: None,
    };
    store.vm_usage(&q, &mut |u| out.push(u)).expect("usage");
    out
}

const NOW: i64 = T0 + 3 * DAY + 4000;

#[test]
fn packed_days_read_exactly_as_their_rows_did() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = store_with(dir.path(), None);
    let (rows_before, usage_before) = (metrics(&store), usage(&store));
    let windows = store.counts().expect("counts").rollups;
    let p = prune_pass(&store, &Retention::default(), NOW).expect("pass");
    assert_eq!(p.packed_days, 2 * 3, "two series, three closed days");
    assert_eq!((p.rollups, p.hours), (0, 0), "nothing old enough to go");
    assert_eq!(count(&store, "SELECT count(*) FROM window_packs"), 6);
    assert_eq!(
        count(&store, "SELECT count(*) FROM rollups"),
        2 * 12,
        "the open day's hour stays as rows"
    );
    assert_eq!(store.counts().expect("counts").rollups, windows);
    assert_eq!(metrics(&store), rows_before, "every window, every figure");
    assert_eq!(usage(&store), usage_before);
    let q = MetricsQuery {
        from: Some(T0 + DAY + 600),
        to: Some(T0 + DAY + 1200),
        ..MetricsQuery::default()
    };
    let some = store.metrics(EntityKind::Vm, "vc:vm-1", &q).expect("range");
    assert_eq!(
        some.map(|r| r.len()),
        Some(2 * 3),
        "a range inside a packed day"
    );
    // Smaller: a pack of a day is a fraction of its rows.
    let packed: i64 = count(&store, "SELECT sum(length(data)) FROM window_packs");
    assert!(packed < 6 * 285 * 12, "{packed} bytes for 6 series-days");
}

#[test]
fn a_late_window_of_a_packed_day_counts_as_if_in_time_and_a_resent_one_is_ignored() {
    let (a, b) = (
        tempfile::tempdir().expect("tempdir"),
        tempfile::tempdir().expect("tempdir"),
    );
    let late = T0 + DAY + 7 * 3600 + 600;
    let (in_time, later) = (store_with(a.path(), None), store_with(b.path(), Some(late)));
    for s in [&in_time, &later] {
        prune_pass(s, &Retention::default(), NOW).expect("pass");
    }
    assert_ne!(usage(&in_time), usage(&later));
    let records = ["cpu.usage.average", "mem.usage.average"].map(|c| window("vm-1", c, late));
    assert_eq!(ingest(&later, 1000, records.to_vec()), 0, "stored");
    assert_eq!(count(&later, "SELECT count(*) FROM rollups"), 2 * 12 + 2);
    assert_eq!(
        metrics(&later),
        metrics(&in_time),
        "read in order with its pack"
    );
    assert_eq!(usage(&later), usage(&in_time), "its day summarised again");
    // Resent: the row is there; once merged, the pack has it.
    assert_eq!(ingest(&later, 1001, records.to_vec()), 2, "a duplicate row");
    let p = prune_pass(&later, &Retention::default(), NOW).expect("pass");
    assert_eq!(p.packed_days, 2, "the late rows merged into their packs");
    assert_eq!(count(&later, "SELECT count(*) FROM rollups"), 2 * 12);
    assert_eq!(ingest(&later, 1002, records.to_vec()), 2, "the pack has it");
    assert_eq!(metrics(&later), metrics(&in_time));
    let old = ["cpu.usage.average"].map(|c| window("vm-1", c, T0 + 300));
    assert_eq!(
        ingest(&later, 1003, old.to_vec()),
        1,
        "in a pack from the start"
    );
    // A restart forgets nothing: the packs are still looked in.
    drop(later);
    let later = SqliteStore::open(&b.path().join("db")).expect("reopen");
    assert_eq!(ingest(&later, 1004, records.to_vec()), 2);
    // The counts kept as the store changes are what it holds.
    let held = count(
        &later,
        "SELECT (SELECT count(*) FROM rollups) + (SELECT sum(windows) FROM window_packs)",
    );
    assert_eq!(later.counts().expect("counts").rollups as i64, held);
    assert_eq!(
        held,
        count(&in_time, "SELECT count(*) FROM rollups")
            + count(&in_time, "SELECT sum(windows) FROM window_packs")
    );
    assert_eq!(usage(&later), usage(&in_time));
}

#[test]
fn rollups_keyed_by_series_first_are_rewritten_keyed_by_time_on_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let before = {
        let store = store_with(dir.path(), None);
        let rows = metrics(&store);
        // As a collector before packing left it.
        let w = store.writer.lock().expect("lock");
        w.conn
            .execute_batch(
                "ALTER TABLE rollups RENAME TO r;
                 CREATE TABLE rollups (
                     series_id INTEGER NOT NULL, window_start INTEGER NOT NULL,
                     window_secs INTEGER NOT NULL, expected INTEGER NOT NULL,
                     missing INTEGER NOT NULL, count INTEGER NOT NULL,
                     min REAL, max REAL, mean REAL, p50 REAL, p95 REAL, p99 REAL,
                     PRIMARY KEY (series_id, window_start)) WITHOUT ROWID;
                 INSERT INTO rollups SELECT * FROM r; DROP TABLE r;
                 DELETE FROM meta WHERE key IN ('stored_windows', 'stored_sketches');",
            )
            .expect("old layout, not yet counting what it holds");
        rows
    };
    let store = SqliteStore::open(&dir.path().join("db")).expect("reopen");
    let first_key: String = store
        .reader()
        .query_row(
            "SELECT name FROM pragma_table_info('rollups') WHERE pk = 1",
            [],
            |r| r.get(0),
        )
        .expect("key");
    assert_eq!(first_key, "window_start");
    assert_eq!(metrics(&store), before);
    let c = store.counts().expect("counts");
    assert_eq!(c.rollups as usize, before.len(), "counted once on open");
    prune_pass(&store, &Retention::default(), NOW).expect("pass");
    assert_eq!(metrics(&store), before, "and packed");
}
