//! The store's behaviour, one suite run against both backends: SQLite in a temporary
//! directory and PostgreSQL on a real server (`scripts/pg-scratch`: initdb into a
//! temporary directory, `pg_ctl start` on loopback as an unprivileged user), a new
//! database per test. Each test states what any store must do through the `Storage`
//! trait, so that the two cannot drift apart; retention runs with an injected clock.

use std::sync::Arc;
use std::time::Duration;

use vscout_collector::store::postgres::{PgStore, PgTarget};
use vscout_collector::store::retention::prune_pass;
use vscout_collector::store::sqlite::SqliteStore;
use vscout_collector::store::{
    DailyQuery, EntityKind, MetricsQuery, Principal, Retention, Role, SeriesUsage, Storage,
    StoreError, UsageQuery, VmFilter,
};
use vscout_wire::batch::{Batch, Record, BATCH_VERSION};
use vscout_wire::inventory::{VcenterInventory, Vm};
use vscout_wire::rollup::{DailySummary, Rollup, WindowStats, ROLLUP_SCHEMA_VERSION};
use vscout_wire::sketch::Sketch;

const DAY: i64 = 86_400;
/// 2026-11-01T00:00:00Z: the tests' day 0.
const T0: i64 = 1_793_491_200;

/// One backend, reopenable (a restart keeps what was stored).
enum Backend {
    Sqlite(tempfile::TempDir),
    Postgres(PgTarget),
}

impl Backend {
    fn name(&self) -> &'static str {
        match self {
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres(_) => "postgresql",
        }
    }

    fn open(&self) -> Arc<dyn Storage> {
        match self {
            Backend::Sqlite(dir) => {
                Arc::new(SqliteStore::open(&dir.path().join("collector.db")).expect("sqlite"))
            }
            Backend::Postgres(t) => Arc::new(PgStore::open(t).expect("postgresql")),
        }
    }
}

fn backends() -> Vec<Backend> {
    let (url, password_file) = vscout_e2e::postgres::database().expect("test PostgreSQL");
    vec![
        Backend::Sqlite(tempfile::tempdir().expect("tempdir")),
        Backend::Postgres(PgTarget::new(&url, Some(&password_file)).expect("target")),
    ]
}

/// Runs `test` on a fresh store of each backend, naming the backend if it fails.
fn on_each(mut test: impl FnMut(&Backend)) {
    for b in backends() {
        let name = b.name();
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| test(&b)));
        if let Err(e) = outcome {
            eprintln!("failed on the {name} backend");
            std::panic::resume_unwind(e);
        }
    }
}

fn who() -> Principal {
    Principal::Token("t".into())
}

fn stats(max: f64) -> WindowStats {
    WindowStats {
        count: 15,
        min: 1.0,
        max,
        mean: max / 2.0,
        p50: max / 2.0,
        p95: max * 0.9,
        p99: max,
    }
}

fn rollup(vm: &str, counter: &str, start: i64, max: f64) -> Record {
    Record::Rollup(Rollup {
        schema_version: ROLLUP_SCHEMA_VERSION,
        vcenter: "vc".into(),
        entity_type: "VirtualMachine".into(),
        entity_id: vm.into(),
        counter: counter.into(),
        instance: "".into(),
        unit: "percent".into(),
        stats_type: "rate".into(),
        window_start: start,
        window_secs: 300,
        expected_samples: 15,
        missing_samples: 0,
        stats: Some(stats(max)),
    })
}

fn cpu(vm: &str, start: i64, max: f64) -> Record {
    rollup(vm, "cpu.usage.average", start, max)
}

fn daily(vm: &str, day_start: i64, values: std::ops::RangeInclusive<u32>) -> Record {
    let mut sketch = Sketch::default();
    for v in values.clone() {
        sketch.add(f64::from(v));
    }
    Record::Daily(DailySummary {
        schema_version: ROLLUP_SCHEMA_VERSION,
        vcenter: "vc".into(),
        entity_type: "VirtualMachine".into(),
        entity_id: vm.into(),
        counter: "cpu.usage.average".into(),
        instance: "".into(),
        unit: "percent".into(),
        stats_type: "rate".into(),
        day_start,
        samples: values.clone().count() as u64,
        expected_samples: 4320,
        p50: None,
        p95: None,
        p99: None,
        max: values.last().map(f64::from),
        sketch,
    })
}

fn inventory(vms: &[&str]) -> Record {
    Record::Inventory(Box::new(VcenterInventory {
        name: "vc".into(),
        url: "https://vc/sdk".into(),
        collected_at: "2026-11-01T00:00:00Z".into(),
        vms: vms
            .iter()
            .map(|id| Vm {
                id: (*id).into(),
                name: format!("name-{id}").into(),
                num_cpu: Some(2),
                power_state: Some("poweredOn".into()),
                ..Vm::default()
            })
            .collect(),
        ..VcenterInventory::default()
    }))
}

fn batch(records: Vec<Record>) -> Batch {
    Batch {
        batch_version: BATCH_VERSION,
        created_ms: 0,
        records,
    }
}

/// A day of windows for `vms` (every 5 minutes, the peak rising through the day).
fn day_of_windows(vms: &[&str], day: i64) -> Vec<Record> {
    let mut out = Vec::new();
    for w in 0..288 {
        for vm in vms {
            out.push(cpu(vm, day + w * 300, 1.0 + w as f64));
        }
    }
    out
}

fn usage(store: &dyn Storage, from_s: i64, to_s: i64, samples: bool) -> Vec<SeriesUsage> {
    let mut out = Vec::new();
    store
        .vm_usage(
            &UsageQuery {
                counters: &["cpu.usage.average"],
                from_s,
                to_s,
                samples,
                vm: None,
            },
            &mut |u| out.push(u),
        )
        .expect("usage");
    out
}

/// A series' usage as compared: VM, windows, received, expected, first start, end,
/// sample days, and the sketch's quantiles (equal sketches answer alike).
type Figures = (String, u64, u64, u64, i64, i64, u32, Vec<f64>);

fn usage_figures(u: &[SeriesUsage]) -> Vec<Figures> {
    u.iter()
        .map(|s| {
            let q = [0.5, 0.95, 0.99, 1.0]
                .iter()
                .map(|q| s.sketch.quantile(*q).unwrap_or(f64::NAN))
                .collect();
            (
                s.vm_id.clone(),
                s.windows,
                s.received,
                s.expected,
                s.first_s,
                s.end_s,
                s.sample_days,
                q,
            )
        })
        .collect()
}

#[test]
fn a_batch_is_stored_once_and_series_are_numbered_once() {
    on_each(|b| {
        let store = b.open();
        let first = batch(vec![
            inventory(&["vm-1", "vm-2"]),
            cpu("vm-1", T0, 5.0),
            cpu("vm-2", T0, 6.0),
            cpu("vm-1", T0 + 300, 7.0),
        ]);
        let o = store.ingest("a", 1, "v", &who(), &first).expect("ingest");
        assert!(!o.duplicate);
        assert!(
            store
                .ingest("a", 1, "v", &who(), &first)
                .expect("again")
                .duplicate
        );
        // Another agent's batch with the same sequence is its own; a window stored
        // before, sent again under a new sequence, is counted and kept as it was.
        store
            .ingest("b", 1, "v", &who(), &batch(vec![cpu("vm-3", T0, 1.0)]))
            .expect("b");
        let o = store
            .ingest("a", 2, "v", &who(), &batch(vec![cpu("vm-1", T0, 99.0)]))
            .expect("a2");
        assert_eq!(o.rows_ignored, 1);
        let c = store.counts().expect("counts");
        assert_eq!(
            (c.agents, c.batches, c.rollups, c.series, c.vms),
            (2, 3, 4, 3, 2)
        );
        assert_eq!((c.duplicate_batches, c.rows_ignored), (1, 1));
        // A restart numbers no series twice.
        drop(store);
        let store = b.open();
        store
            .ingest(
                "a",
                3,
                "v",
                &who(),
                &batch(vec![cpu("vm-1", T0 + 600, 1.0)]),
            )
            .expect("after restart");
        assert_eq!(store.counts().expect("counts").series, 3);
        let rows = store
            .metrics(EntityKind::Vm, "vc:vm-1", &MetricsQuery::default())
            .expect("metrics")
            .expect("known");
        let maxes: Vec<Option<f64>> = rows.iter().map(|r| r.max).collect();
        assert_eq!(maxes, [Some(5.0), Some(7.0), Some(1.0)], "{}", b.name());
        // What each agent last shipped: the end of its latest window (an older window
        // sent later does not move it back; a batch without windows leaves it).
        store
            .ingest("b", 2, "v", &who(), &batch(vec![inventory(&["vm-3"])]))
            .expect("b2");
        let ends: Vec<(String, Option<i64>)> = store
            .agents(None)
            .expect("agents")
            .iter()
            .map(|a| {
                (
                    a["agent_id"].as_str().unwrap_or("").to_owned(),
                    a["last_window_end"].as_i64(),
                )
            })
            .collect();
        assert_eq!(
            ends,
            [
                ("a".to_owned(), Some(T0 + 900)),
                ("b".to_owned(), Some(T0 + 300))
            ],
            "{}",
            b.name()
        );
    });
}

#[test]
fn an_agent_id_belongs_to_its_first_principal() {
    on_each(|b| {
        let store = b.open();
        let one = batch(vec![cpu("vm-1", T0, 1.0)]);
        store.ingest("a", 1, "v", &who(), &one).expect("owner");
        let err = store
            .ingest("a", 2, "v", &Principal::Token("other".into()), &one)
            .expect_err("another principal");
        assert!(matches!(err, StoreError::AgentOwned { .. }), "{err}");
        assert!(!err.is_retryable());
        assert_eq!(store.counts().expect("counts").batches, 1);
    });
}

#[test]
fn tokens_are_named_once_and_revoked_at_once() {
    on_each(|b| {
        let store = b.open();
        assert!(store.first_token_needed().expect("first"));
        store
            .add_token("one", &"a".repeat(64), Role::Agent)
            .expect("add");
        let err = store
            .add_token("one", &"b".repeat(64), Role::Viewer)
            .expect_err("taken");
        assert!(matches!(err, StoreError::TokenExists(_)));
        store
            .add_token("eyes", &"c".repeat(64), Role::Viewer)
            .expect("viewer");
        assert_eq!(
            store.token(&"a".repeat(64)).expect("name"),
            Some(("one".into(), Role::Agent))
        );
        assert_eq!(
            store.token(&"c".repeat(64)).expect("name"),
            Some(("eyes".into(), Role::Viewer))
        );
        let roles: Vec<Role> = store
            .tokens()
            .expect("list")
            .iter()
            .map(|t| t.role)
            .collect();
        assert_eq!(roles, [Role::Viewer, Role::Agent], "by name: eyes, one");
        assert_eq!(store.token_count().expect("count"), 2);
        assert!(store.revoke_token("one").expect("revoke"));
        assert!(!store.revoke_token("one").expect("revoke again"));
        assert_eq!(store.token(&"a".repeat(64)).expect("name"), None);
        // All revoked is not never made.
        assert!(!store.first_token_needed().expect("first"));
    });
}

/// Issue 17: people and their sessions, on both stores: a name once, a session until it
/// expires or ends, and none left once the user is removed.
#[test]
fn users_and_sessions_end_when_they_should() {
    on_each(|b| {
        let store = b.open();
        store.add_user("ann", "$argon2id$x").expect("add");
        let err = store.add_user("ann", "$argon2id$y").expect_err("taken");
        assert!(matches!(err, StoreError::UserExists(_)) && !err.is_retryable());
        assert_eq!(
            store.user_hash("ann").expect("hash").as_deref(),
            Some("$argon2id$x")
        );
        assert_eq!(store.user_hash("bob").expect("hash"), None);
        let (s1, s2) = ("1".repeat(64), "2".repeat(64));
        store
            .add_session(&s1, "ann", 2_000_000_000)
            .expect("session");
        store
            .add_session(&s2, "ann", 1_000)
            .expect("expired session");
        assert_eq!(
            store
                .session_user(&s1, 1_900_000_000)
                .expect("read")
                .as_deref(),
            Some("ann")
        );
        assert_eq!(
            store.session_user(&s1, 2_000_000_000).expect("read"),
            None,
            "expired"
        );
        assert_eq!(
            store.session_user(&s2, 999).expect("read").as_deref(),
            Some("ann")
        );
        let users = store.users().expect("users");
        assert_eq!(users.len(), 1);
        assert!(users[0].last_login.is_some(), "a session notes the log-in");
        store.end_session(&s2).expect("end");
        assert_eq!(store.session_user(&s2, 999).expect("read"), None, "ended");
        assert!(store.remove_user("ann").expect("remove"));
        assert!(!store.remove_user("ann").expect("remove again"));
        assert_eq!(
            store.session_user(&s1, 1_900_000_000).expect("read"),
            None,
            "a removed user's sessions end with them"
        );
    });
}

#[test]
fn reads_filter_and_unknown_entities_are_none() {
    on_each(|b| {
        let store = b.open();
        let mut records = vec![inventory(&["vm-1", "vm-2", "vm-3"])];
        for w in 0..6 {
            records.push(cpu("vm-1", T0 + w * 300, w as f64));
            records.push(rollup("vm-1", "mem.usage.average", T0 + w * 300, 10.0));
        }
        store
            .ingest("a", 1, "v", &who(), &batch(records))
            .expect("ingest");
        let vms = store
            .vms(&VmFilter {
                name: Some("vm-2".into()),
                ..VmFilter::default()
            })
            .expect("vms");
        assert_eq!(vms.len(), 1);
        assert_eq!(vms[0]["id"], "vc:vm-2");
        assert_eq!(store.vms(&VmFilter::default()).expect("all").len(), 3);
        let q = MetricsQuery {
            counter: Some("cpu.usage.average".into()),
            from: Some(T0 + 300),
            to: Some(T0 + 900),
            ..MetricsQuery::default()
        };
        let rows = store
            .metrics(EntityKind::Vm, "vc:vm-1", &q)
            .expect("metrics")
            .expect("known");
        let starts: Vec<i64> = rows.iter().map(|r| r.window_start - T0).collect();
        assert_eq!(starts, [300, 600, 900]);
        // Known without windows: empty; unknown: none.
        let none = store
            .metrics(EntityKind::Vm, "vc:vm-3", &MetricsQuery::default())
            .expect("metrics");
        assert_eq!(none.map(|r| r.len()), Some(0));
        assert!(store
            .metrics(EntityKind::Vm, "vc:vm-404", &MetricsQuery::default())
            .expect("metrics")
            .is_none());
        assert_eq!(store.inventories().expect("inventories").len(), 1);
        let mut seen = Vec::new();
        store
            .vm_records(None, &mut |vc, vm| seen.push(format!("{vc}:{}", vm.id)))
            .expect("records");
        assert_eq!(seen, ["vc:vm-1", "vc:vm-2", "vc:vm-3"]);
    });
}

#[test]
fn daily_sketches_merge_over_a_range_of_days() {
    on_each(|b| {
        let store = b.open();
        let records = vec![
            daily("vm-1", T0, 1..=100),
            daily("vm-1", T0 + DAY, 101..=200),
            daily("vm-1", T0 + 2 * DAY, 1000..=1000),
        ];
        store
            .ingest("a", 1, "v", &who(), &batch(records))
            .expect("ingest");
        let q = DailyQuery {
            to: Some(T0 + DAY),
            ..DailyQuery::default()
        };
        let merged = store
            .daily(EntityKind::Vm, "vc:vm-1", &q)
            .expect("daily")
            .expect("known");
        assert_eq!(merged.len(), 1);
        assert_eq!(merged[0]["days"], 2);
        assert_eq!(merged[0]["samples"], 200);
        assert_eq!(merged[0]["max"], 200.0);
        let p50 = merged[0]["p50"].as_f64().expect("p50");
        assert!((p50 - 100.0).abs() <= 2.0, "{p50}");
        assert_eq!(store.counts().expect("counts").daily, 3);
    });
}

/// The assessment's read: the same answer whichever backend, and the answer the windows
/// say, before and after the summaries are made and when a window comes late.
#[test]
fn usage_sums_up_windows_and_late_windows_count() {
    let mut answers = Vec::new();
    on_each(|b| {
        let store = b.open();
        let mut records = day_of_windows(&["vm-1", "vm-2"], T0);
        // The second day without its 10:00 window, which comes later.
        let late = T0 + DAY + 10 * 3600;
        records.extend(
            day_of_windows(&["vm-1", "vm-2"], T0 + DAY)
                .into_iter()
                .filter(|r| !matches!(r, Record::Rollup(x) if x.window_start == late && x.entity_id == "vm-1")),
        );
        records.push(daily("vm-1", T0, 1..=288));
        store
            .ingest("a", 1, "v", &who(), &batch(records))
            .expect("ingest");
        let to = T0 + 2 * DAY;
        let before = usage_figures(&usage(store.as_ref(), T0, to, false));
        assert_eq!(before.len(), 2);
        assert_eq!((before[0].1, before[1].1), (575, 576), "{}", b.name());
        assert_eq!(before[0].2, 575 * 15);
        // The pass sums up closed days and packs them a series a step; the answers do
        // not change after any step (a day half packed is read once).
        let now = T0 + 2 * DAY + 3600;
        let windows = |s: &dyn Storage| {
            let q = MetricsQuery::default();
            let rows = s.metrics(EntityKind::Vm, "vc:vm-1", &q).expect("metrics");
            rows.expect("known")
                .iter()
                .map(|r| r.window_start)
                .collect::<Vec<_>>()
        };
        let all_windows = windows(store.as_ref());
        assert_eq!(all_windows.len(), 575);
        let (mut after, mut steps, mut most_packed) = (0, 0, 0);
        loop {
            let step = store
                .prune_step(now, &Retention::default(), after, 1)
                .expect("step");
            most_packed = most_packed.max(step.pruned.packed_days);
            let Some(next) = step.next else { break };
            (after, steps) = (next, steps + 1);
            let now_usage = usage_figures(&usage(store.as_ref(), T0, to, false));
            assert_eq!(now_usage, before, "{} after step {steps}", b.name());
            let now_windows = windows(store.as_ref());
            assert!(
                now_windows == all_windows,
                "after step {steps}: {} windows read, not the {} stored",
                now_windows.len(),
                all_windows.len()
            );
        }
        // Raising horizons, summing up, two days of two series packed, the first
        // day's partition dropped at least.
        // PostgreSQL packs a day a series at a time when asked to (SQLite a day at once).
        if matches!(b, Backend::Postgres(_)) {
            assert_eq!(most_packed, 1, "packed in one step");
        }
        // Both closed days were packed (a row per series and day).
        assert_eq!(store.counts().expect("counts").pruned.packed_days, 4);
        // The late window counts at once, and after the next pass.
        store
            .ingest("a", 2, "v", &who(), &batch(vec![cpu("vm-1", late, 121.0)]))
            .expect("late");
        let with_late = usage_figures(&usage(store.as_ref(), T0, to, false));
        assert_eq!(with_late[0].1, 576);
        prune_pass(store.as_ref(), &Retention::default(), now).expect("pass");
        assert_eq!(
            usage_figures(&usage(store.as_ref(), T0, to, false)),
            with_late
        );
        // With samples: the first day's sketch is the agent's.
        let samples = usage(store.as_ref(), T0, to, true);
        assert_eq!(samples[0].sample_days, 1);
        // The windows as the API serves them, packed and late alike.
        let rows = store
            .metrics(EntityKind::Vm, "vc:vm-1", &MetricsQuery::default())
            .expect("metrics")
            .expect("known");
        assert_eq!(rows.len(), 576);
        assert!(rows
            .windows(2)
            .all(|w| w[0].window_start < w[1].window_start));
        answers.push((with_late, usage_figures(&samples), rows));
    });
    assert_eq!(answers.len(), 2);
    assert_eq!(answers[0], answers[1], "sqlite and postgresql answer alike");
}

/// Retention with the clock moved forward: windows past `windows_days` go (their hours
/// stay), summaries and sketches past `summaries_days` go, all counted; what stays
/// answers as before.
#[test]
fn retention_deletes_what_is_past_the_horizons_and_counts_it() {
    on_each(|b| {
        let store = b.open();
        let r = Retention {
            windows_days: 2,
            summaries_days: 4,
            interval: Duration::from_secs(3600),
        };
        for d in 0..3 {
            let mut records = day_of_windows(&["vm-1"], T0 + d * DAY);
            records.push(daily("vm-1", T0 + d * DAY, 1..=10));
            store
                .ingest("a", d as u64 + 1, "v", &who(), &batch(records))
                .expect("ingest");
        }
        let all = (T0, T0 + 3 * DAY);
        let before = usage_figures(&usage(store.as_ref(), all.0, all.1, false));
        // Day 3: windows of days 0 go (days 1 and 2 are kept).
        let p = prune_pass(store.as_ref(), &r, T0 + 3 * DAY + 60).expect("pass");
        assert_eq!(p.rollups, 288, "{}", b.name());
        let c = store.counts().expect("counts");
        assert_eq!((c.rollups, c.pruned.rollups), (2 * 288, 288));
        // Day 0 reads as hours now; the assessment's summaries still hold it.
        let rows = store
            .metrics(EntityKind::Vm, "vc:vm-1", &MetricsQuery::default())
            .expect("metrics")
            .expect("known");
        let hours = rows.iter().filter(|r| r.window_secs == 3600).count();
        assert_eq!((hours, rows.len()), (24, 24 + 2 * 288));
        let hour0 = rows.iter().find(|r| r.window_start == T0).expect("hour 0");
        assert_eq!((hour0.count, hour0.max), (12 * 15, Some(12.0)));
        assert_eq!(
            usage_figures(&usage(store.as_ref(), all.0, all.1, false)),
            before
        );
        // A window of a deleted day is refused and counted.
        store
            .ingest(
                "a",
                9,
                "v",
                &who(),
                &batch(vec![cpu("vm-1", T0 + 600, 1.0)]),
            )
            .expect("old window");
        assert_eq!(store.counts().expect("counts").pruned.refused_windows, 1);
        // Day 8: everything of days 0 to 3 goes, summaries and sketches too.
        prune_pass(store.as_ref(), &r, T0 + 8 * DAY).expect("pass");
        let c = store.counts().expect("counts");
        assert_eq!((c.rollups, c.daily), (0, 0));
        assert_eq!((c.pruned.rollups, c.pruned.sketches), (3 * 288, 3));
        // Day 0's hours, made at day 3; the windows of days 1 and 2 were past both
        // horizons and went without becoming hours.
        assert_eq!(c.pruned.hours, 24);
        assert_eq!(c.pruned.summaries, 3);
        assert!(usage(store.as_ref(), all.0, all.1, false).is_empty());
    });
}

/// Batch keys older than the windows kept are forgotten (the table stops growing), and
/// a batch resent after that is still a duplicate.
#[test]
fn old_batch_keys_are_forgotten_and_a_resend_is_still_a_duplicate() {
    on_each(|b| {
        let store = b.open();
        let window = |seq: u64| batch(vec![cpu("vm-1", T0 + seq as i64 * 300, 1.0)]);
        for seq in 1..=3 {
            let out = store
                .ingest("a", seq, "v", &who(), &window(seq))
                .expect("ingest");
            assert!(!out.duplicate);
        }
        // Keys are received now (the wall clock); a pass 40 days on forgets them.
        let now_s = i64::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("clock")
                .as_secs(),
        )
        .expect("seconds");
        let later = now_s + 40 * DAY;
        let p = prune_pass(store.as_ref(), &Retention::default(), later).expect("pass");
        assert_eq!(p.batch_keys, 3, "{}", b.name());
        let c = store.counts().expect("counts");
        assert_eq!((c.batches, c.pruned.batch_keys), (3, 3));
        // A resend of a forgotten batch: a duplicate, not stored again.
        let again = store
            .ingest("a", 2, "v", &who(), &window(2))
            .expect("resend");
        assert!(
            again.duplicate,
            "{}: a forgotten batch stored again",
            b.name()
        );
        // The next batch is new; another agent's first is too.
        assert!(
            !store
                .ingest("a", 4, "v", &who(), &window(4))
                .expect("4")
                .duplicate
        );
        assert!(
            !store
                .ingest("b", 1, "v", &who(), &window(1))
                .expect("b1")
                .duplicate
        );
        let c = store.counts().expect("counts");
        assert_eq!((c.batches, c.duplicate_batches), (5, 1));
        let p = prune_pass(store.as_ref(), &Retention::default(), later).expect("pass");
        assert_eq!(p.batch_keys, 2);
    });
}

/// A pass stopped part-way (the collector restarted) and run again leaves what one
/// whole pass leaves.
#[test]
fn a_restart_mid_prune_loses_nothing_that_should_stay() {
    let r = Retention {
        windows_days: 1,
        summaries_days: 3,
        interval: Duration::from_secs(3600),
    };
    on_each(|b| {
        let fill = |store: &dyn Storage| {
            for d in 0..4 {
                store
                    .ingest(
                        "a",
                        d as u64 + 1,
                        "v",
                        &who(),
                        &batch(day_of_windows(&["vm-1", "vm-2"], T0 + d * DAY)),
                    )
                    .expect("ingest");
            }
        };
        let now = T0 + 4 * DAY + 60;
        // What stays: windows counted, a VM's metrics, the assessment's read.
        let state = |store: &dyn Storage| {
            (
                store.counts().expect("counts").rollups,
                store
                    .metrics(EntityKind::Vm, "vc:vm-2", &MetricsQuery::default())
                    .expect("metrics")
                    .expect("known"),
                usage_figures(&usage(store, T0, now, false)),
            )
        };
        let store = b.open();
        fill(store.as_ref());
        // Two steps, then a restart.
        let mut after = 0;
        for _ in 0..2 {
            match store.prune_step(now, &r, after, 1).expect("step").next {
                Some(n) => after = n,
                None => break,
            }
        }
        drop(store);
        let store = b.open();
        prune_pass(store.as_ref(), &r, now).expect("pass after restart");
        let restarted = state(store.as_ref());
        // A twin store pruned in one pass.
        let twin = match b {
            Backend::Sqlite(_) => Backend::Sqlite(tempfile::tempdir().expect("tempdir")),
            Backend::Postgres(_) => {
                let (url, pw) = vscout_e2e::postgres::database().expect("database");
                Backend::Postgres(PgTarget::new(&url, Some(&pw)).expect("target"))
            }
        };
        let other = twin.open();
        fill(other.as_ref());
        prune_pass(other.as_ref(), &r, now).expect("one pass");
        let whole = state(other.as_ref());
        assert_eq!(restarted.0, 2 * 288);
        assert_eq!(restarted, whole);
        // Days 1 and 2 as hours, day 3 as windows (day 0 is past the summaries'
        // horizon); days 1 to 3 summed up.
        assert_eq!(restarted.1.len(), 2 * 24 + 288);
        assert_eq!(restarted.2[0].1, 3 * 288);
    });
}

/// Two stores on one database (two collectors behind a load balancer) given the same
/// batches at the same moment: each batch is stored once and acknowledged to both, a
/// retryable error retried as an agent would.
#[test]
fn two_stores_on_one_database_take_each_batch_once() {
    on_each(|b| {
        let (one, two) = (b.open(), b.open());
        let batches: Vec<Batch> = (0..20)
            .map(|i| {
                let vms = ["vm-1", "vm-2", "vm-3"];
                let mut records = vec![inventory(&vms)];
                for vm in vms {
                    records.push(cpu(vm, T0 + i * 300, i as f64));
                    records.push(rollup(vm, "mem.usage.average", T0 + i * 300, 1.0));
                }
                batch(records)
            })
            .collect();
        let send = |store: &Arc<dyn Storage>| {
            let mut stored = 0;
            for (seq, batch) in batches.iter().enumerate() {
                let mut tries = 0;
                let outcome = loop {
                    tries += 1;
                    match store.ingest("a", seq as u64 + 1, "v", &who(), batch) {
                        Ok(o) => break o,
                        Err(e) if e.is_retryable() && tries < 100 => continue,
                        Err(e) => panic!("batch {seq} after {tries} tries: {e}"),
                    }
                };
                stored += usize::from(!outcome.duplicate);
            }
            stored
        };
        let (a, c) = std::thread::scope(|s| {
            let a = s.spawn(|| send(&one));
            let c = s.spawn(|| send(&two));
            (a.join().expect("one"), c.join().expect("two"))
        });
        assert_eq!(a + c, 20, "{}: {a} + {c} batches stored", b.name());
        let counts = one.counts().expect("counts");
        assert_eq!((counts.batches, counts.duplicate_batches), (20, 20));
        assert_eq!(
            (counts.rollups, counts.series, counts.rows_ignored),
            (120, 6, 0)
        );
    });
}

/// PostgreSQL: connections cut under a running store (the server restarted, a failover,
/// an administrator) are made again: the request that found one gone may fail, the next
/// one works, and nothing stored is lost.
#[test]
fn a_postgresql_store_reconnects_after_its_connections_are_cut() {
    let (url, password_file) = vscout_e2e::postgres::database().expect("test PostgreSQL");
    let target = PgTarget::new(&url, Some(&password_file)).expect("target");
    let store = PgStore::open(&target).expect("open");
    let day = |d: i64| batch(day_of_windows(&["vm-1"], T0 + d * DAY));
    assert!(
        !store
            .ingest("a", 1, "v", &who(), &day(0))
            .expect("1")
            .duplicate
    );
    // Every connection of the store, cut by the server.
    let mut cfg: postgres::Config = url.parse().expect("url");
    let password = std::fs::read_to_string(&password_file).expect("password");
    cfg.password(password.trim());
    let mut admin = cfg.connect(postgres::NoTls).expect("admin");
    let cut = admin
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE application_name LIKE 'vscout-collector %' AND datname = current_database()",
            &[],
        )
        .expect("terminate");
    assert_eq!(cut, 3, "writer, reader and retention");
    // At most one failure for each connection, then answers.
    let twice = |what: &str, f: &mut dyn FnMut() -> Result<(), StoreError>| {
        if let Err(first) = f() {
            f().unwrap_or_else(|e| panic!("{what} after a reconnect: {e} (first: {first})"));
        }
    };
    twice("ingest", &mut || {
        store.ingest("a", 2, "v", &who(), &day(1)).map(|_| ())
    });
    twice("metrics", &mut || {
        let q = MetricsQuery::default();
        store.metrics(EntityKind::Vm, "vc:vm-1", &q).map(|_| ())
    });
    twice("retention", &mut || {
        prune_pass(&store, &Retention::default(), T0 + 2 * DAY + 60).map(|_| ())
    });
    let rows = store
        .metrics(EntityKind::Vm, "vc:vm-1", &MetricsQuery::default())
        .expect("metrics")
        .expect("known");
    assert_eq!(rows.len(), 2 * 288, "both days, the second stored once");
    let c = store.counts().expect("counts");
    assert_eq!((c.batches, c.duplicate_batches), (2, 0));
}
