//! The aggregator's tests: statistics, windows, late samples, seeds, memory shape.

use super::*;

fn key(counter: &str) -> SeriesKey {
    SeriesKey {
        entity_type: "VirtualMachine".into(),
        entity_id: "vm-1".into(),
        counter: counter.into(),
        instance: "".into(),
    }
}

#[test]
fn stats_by_hand() {
    // 1..=20: mean 10.5; nearest rank p50 = 10th = 10, p95 = 19th = 19, p99 = 20th = 20.
    let mut v: Vec<f64> = (1..=20).rev().map(f64::from).collect();
    let s = stats(&mut v).expect("stats");
    assert_eq!((s.count, s.min, s.max, s.mean), (20, 1.0, 20.0, 10.5));
    assert_eq!((s.p50, s.p95, s.p99), (10.0, 19.0, 20.0));
    assert_eq!(stats(&mut []), None);
    let one = stats(&mut [7.0]).expect("one");
    assert_eq!(
        (one.count, one.min, one.max, one.mean, one.p50, one.p95, one.p99),
        (1, 7.0, 7.0, 7.0, 7.0, 7.0, 7.0)
    );
    // 15 samples (a 5-minute window): p95 = ceil(14.25) = 15th, p50 = ceil(7.5) = 8th.
    let mut w: Vec<f64> = (1..=15).map(|x| f64::from(x) * 10.0).collect();
    let s = stats(&mut w).expect("stats");
    assert_eq!((s.p50, s.p95, s.p99, s.mean), (80.0, 150.0, 150.0, 80.0));
}

/// Issue 11: with 1-minute windows a cluster's 5-minute sample made `count 1` of
/// `expected 0` (60 / 300 rounded down).
#[test]
fn five_minute_data_in_one_minute_windows_expects_one_sample_where_a_boundary_falls() {
    let expected: Vec<u32> = (0..5).map(|w| slots_in_window(w * 60, 60, 300)).collect();
    assert_eq!(
        expected,
        vec![0, 0, 0, 0, 1],
        "(240, 300] holds the 300 s slot"
    );
    assert_eq!(slots_in_window(0, 300, 20), 15);
    assert_eq!(slots_in_window(300, 300, 300), 1);
    let mut agg = Aggregator::new("vc", 60);
    let k = SeriesKey {
        entity_type: "ClusterComputeResource".into(),
        ..key("cpu.usage.average")
    };
    agg.add(&k, "percent", 300, 300_000, 5000);
    let r = agg.drain_closed(1_000_000);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].window_start, 240);
    assert_eq!(r[0].expected_samples, 1);
    assert_eq!(r[0].stats.map(|s| s.count), Some(1));
}

/// (counter, window start) of each rollup.
fn counters_and_windows(r: &[Rollup]) -> Vec<(&str, i64)> {
    r.iter()
        .map(|r| (r.counter.as_str(), r.window_start))
        .collect()
}

/// Issue 12: after a failed request the next poll brought samples of a window already
/// rolled up, and the window was rolled up a second time (the collector kept the first
/// and lost the late samples silently). A late sample is counted, never re-emitted;
/// other series still get that window.
#[test]
fn a_sample_for_a_window_already_rolled_up_is_counted_as_late() {
    let mut agg = Aggregator::new("vc", 60);
    let cpu = key("cpu.usage.average");
    let mem = key("mem.usage.average");
    agg.add(&cpu, "percent", 20, 20_000, 100);
    assert_eq!(agg.drain_closed(60_000).len(), 1);
    agg.add(&cpu, "percent", 20, 40_000, 200);
    agg.add(&cpu, "percent", 20, 80_000, 300);
    // Another series' first samples for the closed window are not late.
    agg.add(&mem, "percent", 20, 40_000, 400);
    assert_eq!(agg.take_late(), 1);
    let r = agg.drain_closed(120_000);
    let got = counters_and_windows(&r);
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(got.contains(&("cpu.usage.average", 60)));
    assert!(got.contains(&("mem.usage.average", 0)));
    assert_eq!(agg.take_late(), 0);
}

/// What an earlier run stored past its watermark (a crash between a window's
/// batches) is seeded per series: those series skip the window, the others get it.
#[test]
fn seeded_series_skip_the_windows_an_earlier_run_stored() {
    let mut agg = Aggregator::new("vc", 60);
    let cpu = key("cpu.usage.average");
    let mem = key("mem.usage.average");
    agg.seed_closed(&cpu, 60_000);
    agg.add(&cpu, "percent", 20, 40_000, 1);
    agg.add(&mem, "percent", 20, 40_000, 2);
    agg.add(&cpu, "percent", 20, 80_000, 3);
    // Seeding a series already known works too.
    agg.seed_closed(&mem, 120_000);
    agg.add(&mem, "percent", 20, 100_000, 4);
    let r = agg.drain_closed(120_000);
    let got = counters_and_windows(&r);
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(got.contains(&("mem.usage.average", 0)));
    assert!(got.contains(&("cpu.usage.average", 60)));
    assert_eq!(agg.take_late(), 2);
}

#[test]
fn resume_after_ignores_windows_an_earlier_run_stored() {
    let mut agg = Aggregator::new("vc", 60);
    agg.resume_after(120_000);
    let k = key("cpu.usage.average");
    // 100 s is in (60, 120]: stored before the restart. 140 s is in (120, 180].
    agg.add(&k, "percent", 20, 100_000, 500);
    agg.add(&k, "percent", 20, 140_000, 500);
    let r = agg.drain_closed(1_000_000);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].window_start, 120);
}

#[test]
fn windows_close_in_order_and_count_missing_samples() {
    let mut agg = Aggregator::new("vc", 300);
    let k = key("cpu.usage.average");
    // Samples at 20 s ..= 300 s belong to window (0, 300]; 320 s to the next.
    for t in (20..=300).step_by(20) {
        agg.add(
            &k,
            "percent",
            20,
            t * 1000,
            if t == 100 { -1 } else { 1234 },
        );
    }
    agg.add(&k, "percent", 20, 320_000, 500);
    assert_eq!(agg.drain_closed(299_999), vec![], "window not closed yet");
    let out = agg.drain_closed(300_000);
    assert_eq!(out.len(), 1);
    let r = &out[0];
    assert_eq!(
        (
            r.window_start,
            r.window_secs,
            r.expected_samples,
            r.missing_samples
        ),
        (0, 300, 15, 1)
    );
    let s = r.stats.expect("stats");
    assert_eq!(
        (s.count, s.min, s.max),
        (14, 12.34, 12.34),
        "percent in hundredths is scaled"
    );
    assert_eq!(agg.pending_samples(), 1);
    let next = agg.drain_closed(600_000);
    assert_eq!(next[0].window_start, 300);
}

#[test]
fn series_of_vanished_entities_are_forgotten_once_their_windows_close() {
    let mut agg = Aggregator::new("vc", 60);
    let mut other = key("cpu.usage.average");
    other.entity_id = "vm-2".into();
    agg.add(&key("cpu.usage.average"), "percent", 20, 20_000, 1);
    agg.add(&other, "percent", 20, 20_000, 1);
    let keep = [MoRef::new("VirtualMachine", "vm-1")];
    agg.retain(&keep);
    assert_eq!(agg.series_count(), 2, "vm-2 still has an open window");
    assert_eq!(agg.drain_closed(60_000).len(), 2);
    agg.retain(&keep);
    assert_eq!(agg.series_count(), 1);
}

#[test]
fn a_day_of_windows_becomes_one_mergeable_daily_summary() {
    let mut agg = Aggregator::new("vc", 300).with_daily(&["cpu.usage.average".to_string()]);
    let k = key("cpu.usage.average");
    let other = key("mem.active.average");
    // One day of 20-second samples, values 1..=100 % repeating (in hundredths).
    for i in 1..=4320i64 {
        agg.add(&k, "percent", 20, i * 20_000, (i % 100 + 1) * 100);
        agg.add(&other, "kiloBytes", 20, i * 20_000, 5);
    }
    let mut rollups = 0;
    agg.drain_closed_with(DAY_MS, |set| rollups += set.rows.len());
    assert_eq!(rollups, 2 * 288, "288 windows of two series");
    let mut days = Vec::new();
    agg.drain_closed_days_with(DAY_MS, |d| days.push(d));
    assert_eq!(
        days.len(),
        1,
        "only the configured counter gets a daily summary"
    );
    let d = &days[0];
    assert_eq!(
        (d.day_start, d.samples, d.expected_samples),
        (0, 4320, 4320)
    );
    let p95 = d.p95.expect("p95");
    assert!((p95 - 95.0).abs() <= 95.0 * 0.01 + 1e-9, "{p95}");
    assert_eq!(d.max, Some(100.0));
    // Merging two days gives the same percentiles for identical days.
    let mut month = d.sketch.clone();
    month.merge(&d.sketch);
    assert_eq!(month.count(), 8640);
    assert_eq!(month.quantile(0.95), d.sketch.quantile(0.95));
}

#[test]
fn a_window_spanning_many_chunks_is_merged_series_by_series() {
    // 3 series x 40,000 samples in one window: four chunks, each series in all.
    let mut agg = Aggregator::new("vc", 86_400);
    let keys = [key("a.b.c"), key("d.e.f"), key("g.h.i")];
    for i in 0..40_000i64 {
        for (k, key) in keys.iter().enumerate() {
            agg.add(key, "number", 20, 1 + i, (k as i64 + 1) * 10 + i % 3);
        }
    }
    let out = agg.drain_closed(86_400_000);
    assert_eq!(out.len(), 3);
    for (k, r) in out.iter().enumerate() {
        let s = r.stats.expect("stats");
        let base = (k as f64 + 1.0) * 10.0;
        assert_eq!((s.count, s.min, s.max), (40_000, base, base + 2.0), "{r:?}");
    }
}

#[test]
fn interleaved_series_are_rolled_up_separately() {
    let mut agg = Aggregator::new("vc", 60);
    let (a, b) = (key("cpu.usage.average"), key("mem.consumed.average"));
    for (i, t) in [20, 40, 60].into_iter().enumerate() {
        agg.add(&a, "percent", 20, t * 1000, 100 * (i as i64 + 1));
        agg.add(&b, "kiloBytes", 20, t * 1000, 1000);
    }
    let out = agg.drain_closed(60_000);
    assert_eq!(out.len(), 2);
    let sa = out[0].stats.expect("a");
    assert_eq!(
        (out[0].counter.as_str(), sa.min, sa.max, sa.mean),
        ("cpu.usage.average", 1.0, 3.0, 2.0)
    );
    let sb = out[1].stats.expect("b");
    assert_eq!(
        (out[1].unit.as_str(), sb.count, sb.mean),
        ("kiloBytes", 3, 1000.0)
    );
}

#[test]
fn a_window_of_only_no_data_samples_has_no_stats() {
    let mut agg = Aggregator::new("vc", 60);
    let k = key("mem.usage.average");
    for t in [20, 40, 60] {
        agg.add(&k, "percent", 20, t * 1000, -1);
    }
    let out = agg.drain_closed(60_000);
    assert_eq!(out[0].stats, None);
    assert_eq!((out[0].missing_samples, out[0].expected_samples), (3, 3));
}

/// The drain numbers a set's labels from the series table: the sets are the ones the
/// wire's own builder makes from the same rollups, names in the same order, split at
/// `ROLLUPS_PER_BATCH` rows, each carrying only the labels its rows use.
#[test]
fn drained_sets_are_what_the_wire_builder_makes_of_the_same_rollups() {
    let fill = |agg: &mut Aggregator| {
        for vm in 0..(ROLLUPS_PER_BATCH as i64 / 2 + 10) {
            for (counter, instance, unit) in [
                ("cpu.usage.average", "", "percent"),
                ("disk.read.average", "scsi0:0", "kiloBytesPerSecond"),
            ] {
                let k = SeriesKey {
                    entity_type: "VirtualMachine".into(),
                    entity_id: format!("vm-{vm}").into(),
                    counter: counter.into(),
                    instance: instance.into(),
                };
                agg.add(&k, unit, 20, 20_000, vm * 10);
            }
        }
        // A label only the last set uses.
        let host = SeriesKey {
            entity_type: "HostSystem".into(),
            entity_id: "host-1".into(),
            counter: "mem.usage.average".into(),
            instance: "".into(),
        };
        agg.add(&host, "percent", 20, 40_000, 5);
    };
    let mut agg = Aggregator::new("vc", 60);
    fill(&mut agg);
    let mut sets = Vec::new();
    agg.drain_closed_with(60_000, |s| sets.push(s));
    let mut again = Aggregator::new("vc", 60);
    fill(&mut again);
    let mut expected = Vec::new();
    let mut builder = vscout_wire::batch::RollupSetBuilder::default();
    for r in again.drain_closed(60_000) {
        builder.push(r);
        if builder.len() == ROLLUPS_PER_BATCH {
            expected.push(builder.take());
        }
    }
    expected.push(builder.take());
    assert_eq!(sets.len(), 2);
    assert_eq!(sets, expected);
    assert_eq!(sets[0].rows.len(), ROLLUPS_PER_BATCH);
    assert!(!sets[0].names.iter().any(|n| n == "HostSystem"));
    assert!(sets[1].names.iter().any(|n| n == "HostSystem"));
}
