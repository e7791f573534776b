//! The summarised read equals the raw windows, however the days closed: in order, across
//! a restart, with a late window, and in a database from before the summaries.

use proptest::prelude::*;
use vscout_wire::batch::{Batch, Record, BATCH_VERSION};
use vscout_wire::rollup::{Rollup, WindowStats};
use vscout_wire::sketch::Sketch;

use super::*;
use crate::store::sqlite::SqliteStore;
use crate::store::{Principal, Storage};

/// A window of `vm`'s CPU whose peak is `max`, 14 samples of 15.
fn window(vm: &str, start: i64, max: f64) -> Record {
    let mut r = Rollup::example(vm, "cpu.usage.average", max / 1.91);
    r.window_start = start;
    r.missing_samples = 1;
    r.stats = r.stats.map(|s| WindowStats {
        count: 14,
        max,
        ..s
    });
    Record::Rollup(r)
}

fn ingest(store: &SqliteStore, seq: u64, records: Vec<Record>) {
    let b = Batch {
        batch_version: BATCH_VERSION,
        created_ms: 0,
        records,
    };
    store
        .ingest("a", seq, "v", &Principal::Token("t".into()), &b)
        .expect("ingest");
}

/// The estate's read (one pass over the summaries), checked against one VM's (a search
/// per series): both must answer the same.
fn usage(store: &SqliteStore, from_s: i64, to_s: i64) -> Vec<SeriesUsage> {
    read(store, from_s, to_s, false)
}

/// `usage`, with the agent's daily sketches for `samples`.
fn read(store: &SqliteStore, from_s: i64, to_s: i64, samples: bool) -> Vec<SeriesUsage> {
    let read = |vm: Option<(&'static str, &'static str)>| {
        let mut out = Vec::new();
        let q = UsageQuery {
            counters: &["cpu.usage.average", "mem.usage.average"],
            from_s,
            to_s,
            samples,
            vm,
        };
        store.vm_usage(&q, &mut |u| out.push(u)).expect("usage");
        out
    };
    let estate = read(None);
    assert_eq!(read(Some(("vc", "vm-1"))), estate, "one VM's read differs");
    estate
}

/// What the read must equal: every stored window of the history, summed up from scratch.
fn truth(windows: &[(i64, f64)], from_s: i64, to_s: i64) -> Option<(u64, u64, Sketch, i64, i64)> {
    let mut sketch = Sketch::default();
    let mut kept: Vec<i64> = Vec::new();
    for (start, max) in windows {
        if *start >= day_of(from_s) && *start < to_s && !kept.contains(start) {
            kept.push(*start);
            sketch.add(*max);
        }
    }
    let first = *kept.iter().min()?;
    let last = *kept.iter().max()? + 300;
    Some((
        kept.len() as u64,
        14 * kept.len() as u64,
        sketch,
        first,
        last,
    ))
}

fn summaries(store: &SqliteStore) -> i64 {
    store
        .reader()
        .query_row("SELECT COUNT(*) FROM window_days", [], |r| r.get(0))
        .expect("count")
}

/// How far the row of `day` reaches, if there is one.
fn through(store: &SqliteStore, day: i64) -> Option<i64> {
    store
        .reader()
        .query_row(
            "SELECT through FROM window_days WHERE day_start = ?1",
            [day],
            |r| r.get(0),
        )
        .ok()
}

#[test]
fn a_day_is_summarised_when_the_next_one_starts_and_read_with_the_open_day() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(&dir.path().join("db")).expect("open");
    // Day 0 (all 288 windows), then two windows of day 1.
    let mut seq = 0;
    let mut all = Vec::new();
    for chunk in (0..288).collect::<Vec<i64>>().chunks(100) {
        seq += 1;
        let recs: Vec<Record> = chunk
            .iter()
            .map(|i| {
                all.push((i * 300, (i % 50) as f64));
                window("vm-1", i * 300, (i % 50) as f64)
            })
            .collect();
        ingest(&store, seq, recs);
    }
    assert_eq!(
        through(&store, 0),
        Some(23 * 3600),
        "day 0 is open, summarised up to its last hour"
    );
    ingest(
        &store,
        10,
        vec![
            window("vm-1", DAY_SECS, 70.0),
            window("vm-1", DAY_SECS + 300, 80.0),
        ],
    );
    all.extend([(DAY_SECS, 70.0), (DAY_SECS + 300, 80.0)]);
    assert_eq!(
        through(&store, 0),
        Some(DAY_SECS),
        "day 0 closed when day 1 began"
    );
    assert_eq!(
        summaries(&store),
        1,
        "day 1 is in its first hour: no row yet"
    );
    let got = usage(&store, 0, 2 * DAY_SECS);
    assert_eq!(got.len(), 1);
    let u = &got[0];
    let (windows, received, sketch, first, end) = truth(&all, 0, 2 * DAY_SECS).expect("windows");
    assert_eq!(
        (u.windows, u.received, u.expected),
        (windows, received, 15 * windows)
    );
    assert_eq!(
        (u.first_s, u.end_s, u.covered_secs),
        (first, end, 300 * windows)
    );
    assert_eq!(u.sketch, sketch);
    assert_eq!(
        (u.vm_id.as_str(), u.instance.as_str(), u.sample_days),
        ("vm-1", "", 0)
    );
    // A history that starts on day 1 reads only the open day.
    let late = usage(&store, DAY_SECS + 10, 2 * DAY_SECS);
    assert_eq!(late[0].windows, 2);
    // Nothing of another counter, nothing before the data.
    assert!(usage(&store, 3 * DAY_SECS, 4 * DAY_SECS).is_empty());
}

#[test]
fn a_late_window_and_a_restart_across_midnight_keep_the_summaries_true() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db");
    let mut all = vec![(0, 5.0), (300, 6.0)];
    {
        let store = SqliteStore::open(&path).expect("open");
        ingest(
            &store,
            1,
            vec![window("vm-1", 0, 5.0), window("vm-1", 300, 6.0)],
        );
    }
    // Restarted: the first window of day 1 closes day 0 all the same.
    let store = SqliteStore::open(&path).expect("reopen");
    ingest(&store, 2, vec![window("vm-1", DAY_SECS, 7.0)]);
    all.push((DAY_SECS, 7.0));
    assert_eq!(summaries(&store), 1);
    // A late window for day 0: summarised again.
    ingest(&store, 3, vec![window("vm-1", 600, 99.0)]);
    all.push((600, 99.0));
    let u = &usage(&store, 0, 3 * DAY_SECS)[0];
    let (windows, _, sketch, _, _) = truth(&all, 0, 3 * DAY_SECS).expect("windows");
    assert_eq!((u.windows, &u.sketch), (windows, &sketch));
    assert_eq!(
        u.sketch.quantile(1.0).map(|v| (v - 99.0).abs() < 1.0),
        Some(true)
    );
}

#[test]
fn a_database_from_before_the_summaries_is_summarised_once_at_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db");
    {
        let store = SqliteStore::open(&path).expect("open");
        ingest(&store, 1, vec![window("vm-1", 0, 5.0)]);
        ingest(
            &store,
            2,
            vec![
                window("vm-1", DAY_SECS, 6.0),
                window("vm-1", 2 * DAY_SECS, 7.0),
            ],
        );
        // As an older collector left it: no summaries, no mark.
        let w = store.writer.lock().expect("lock");
        w.conn
            .execute_batch(
                "DELETE FROM window_days; DELETE FROM meta WHERE key = 'window_summaries_built';",
            )
            .expect("forget");
    }
    let store = SqliteStore::open(&path).expect("reopen");
    assert_eq!(summaries(&store), 2, "days 0 and 1 closed, day 2 open");
    let u = &usage(&store, 0, 3 * DAY_SECS)[0];
    assert_eq!((u.windows, u.received), (3, 42));
}

#[test]
fn samples_come_from_a_closed_days_daily_sketch_in_either_stored_form() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(&dir.path().join("db")).expect("open");
    // Day 0: two windows and the agent's sketch of its samples 1..=100; day 1 open.
    ingest(
        &store,
        1,
        vec![window("vm-1", 0, 5.0), window("vm-1", 300, 6.0)],
    );
    ingest(
        &store,
        2,
        vec![
            window("vm-1", DAY_SECS, 7.0),
            crate::store::sqlite::tests::day(0, 1..=100),
        ],
    );
    let mut want = Sketch::default();
    for v in 1..=100 {
        want.add(f64::from(v));
    }
    want.add(7.0); // the open day's peak
    let samples = read(&store, 0, 2 * DAY_SECS, true);
    assert_eq!((samples[0].sample_days, &samples[0].sketch), (1, &want));
    assert_eq!(samples[0].windows, 3, "coverage still counts the windows");
    let peaks = usage(&store, 0, 2 * DAY_SECS);
    assert_eq!((peaks[0].sample_days, peaks[0].sketch.count()), (0, 3));
    // The same day as a collector before the assessment stored it: JSON text.
    crate::store::sqlite::tests::daily_as_json(&store, 0);
    assert_eq!(read(&store, 0, 2 * DAY_SECS, true), samples);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    /// Windows in any order, over any days, in batches of any size, with repeats: the
    /// read equals the raw windows of the history.
    #[test]
    fn the_read_equals_the_raw_windows(
        windows in prop::collection::vec((0i64..(4 * 288), 0u32..1000), 1..120),
        late_in_a_day in prop::collection::vec((0i64..288, 0u32..1000), 0..30),
        batch in 1usize..40,
        from_day in 0i64..4,
        restart_at in 0usize..6,
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("db");
        // Windows anywhere in four days, then some in any order inside the last day (its
        // hours close and open again).
        let windows: Vec<(i64, f64)> = windows
            .into_iter()
            .chain(late_in_a_day.into_iter().map(|(w, m)| (3 * 288 + w, m)))
            .map(|(w, m)| (w * 300, f64::from(m)))
            .collect();
        let mut stored: Vec<(i64, f64)> = Vec::new();
        let mut store = Some(SqliteStore::open(&path).expect("open"));
        for (n, chunk) in windows.chunks(batch).enumerate() {
            if n == restart_at {
                drop(store.take());
                store = Some(SqliteStore::open(&path).expect("reopen"));
            }
            // The first copy of a window is the one kept.
            for w in chunk {
                if !stored.iter().any(|s| s.0 == w.0) {
                    stored.push(*w);
                }
            }
            let recs = chunk.iter().map(|(s, m)| window("vm-1", *s, *m)).collect();
            ingest(store.as_ref().expect("store"), n as u64 + 1, recs);
        }
        let store = store.expect("store");
        let (from, to) = (from_day * DAY_SECS + 7, 5 * DAY_SECS);
        let got = usage(&store, from, to);
        match truth(&stored, from, to) {
            None => prop_assert!(got.is_empty()),
            Some((n, received, sketch, first, end)) => {
                prop_assert_eq!(got.len(), 1);
                let u = &got[0];
                prop_assert_eq!((u.windows, u.received, u.first_s, u.end_s), (n, received, first, end));
                prop_assert_eq!(&u.sketch, &sketch);
            }
        }
    }
}
