//! Which samples of an answer are new: every (entity, counter, instance) series has a
//! high-water mark in the series table, the grid slot of its newest sample taken, and
//! only later slots are taken. No I/O: the poller hands each answer here, and the tests
//! below hand synthetic ones (gaps, repeats, late data, instances that come and go,
//! vCenter's -1).

use tracing::debug;

use super::catalog::Resolved;
use super::poller::{is_historical, PollReport, HISTORICAL_SECS, REALTIME_SECS};
use super::series::{SeriesId, SeriesTable, Slot};
use crate::vsphere::PerfEntityMetric;

/// Receives every new sample of a poll, and holds the table in which the poller numbers
/// each series when it first sees it and keeps its mark.
pub trait SampleSink {
    /// The series table: numbers, marks, labels.
    fn series(&mut self) -> &mut SeriesTable;
    /// A new sample of series `id`, on grid slot `slot_ms` (Unix ms); `raw` is vCenter's
    /// value (-1: no data).
    fn sample(&mut self, id: SeriesId, slot_ms: i64, raw: i64);
}

/// Keeps the new samples of one entity's answer (asked from `start`, Unix ms) and moves
/// its marks: each series' samples newer than its mark go to `sink`, the rest are counted
/// in `report`. Only counters in `counters` are taken.
pub(super) fn take_answer(
    sink: &mut impl SampleSink,
    counters: &Resolved,
    answer: &PerfEntityMetric,
    start: i64,
    report: &mut PollReport,
) {
    let Some(entity) = answer.entity.as_ref() else {
        return;
    };
    let interval = if is_historical(entity) {
        HISTORICAL_SECS
    } else {
        REALTIME_SECS
    };
    let e = sink.series().entity(entity);
    let mut oldest_new_mark: Option<i64> = None;
    for series in &answer.series {
        if series.values.len() != answer.timestamps_ms.len() {
            report.misaligned_series += 1;
            debug!(entity = %entity, counter = series.id.counter, values = series.values.len(), timestamps = answer.timestamps_ms.len(), "series length differs from its timestamps; dropped");
            continue;
        }
        let Some(counter) = counters.by_key(series.id.counter) else {
            continue;
        };
        let table = sink.series();
        let id = table.series(e, counter, &series.id.instance, interval);
        let mark = table.get(id).and_then(Slot::mark_ms).unwrap_or(start);
        let newest = take_series(
            &answer.timestamps_ms,
            &series.values,
            mark,
            interval,
            report,
            |slot, v| sink.sample(id, slot, v),
        );
        if newest > mark {
            sink.series().set_mark(id, newest);
        }
        oldest_new_mark = Some(oldest_new_mark.map_or(newest, |o| o.min(newest)));
    }
    // The entity's next start is the oldest of its series' marks: no series can miss a
    // sample, and the per-series marks drop the repeats.
    if let Some(m) = oldest_new_mark.filter(|m| *m > i64::MIN) {
        sink.series().set_entity_start(e, m);
    }
}

/// The grid slot of a sample stamped `ts_ms`: vCenter stamps each sample with the end of
/// its interval, on a grid of `interval_secs` (…:00, …:20, …:40 for real-time data). A
/// timestamp off the grid is placed on the first slot at or after it, so the sample
/// counts in the window that holds the end of its interval.
pub fn grid_slot(ts_ms: i64, interval_secs: u32) -> i64 {
    let step = i64::from(interval_secs.max(1)) * 1000;
    let floor = ts_ms.div_euclid(step) * step;
    if floor == ts_ms {
        ts_ms
    } else {
        floor.saturating_add(step)
    }
}

/// Takes the new samples of one series: each sample is placed on its grid slot and taken
/// only if that slot is later than `mark` and than every slot taken before it, so a
/// series holds at most one sample per slot — a window can never hold more samples than
/// it has slots, however a server stamps them. `take` receives (slot, raw value); the new
/// mark (the last slot taken, or `mark`) is returned. Off-grid and set-aside samples are
/// counted in `report`.
pub(super) fn take_series(
    timestamps_ms: &[i64],
    values: &[i64],
    mark: i64,
    interval_secs: u32,
    report: &mut PollReport,
    mut take: impl FnMut(i64, i64),
) -> i64 {
    let n = timestamps_ms.len().min(values.len());
    // vCenter lists samples oldest first; vcsim newest first. Any other order is taken
    // in time order too (a stable sort by slot, so the first-listed sample of a slot
    // wins); the common, ascending case allocates nothing.
    let order: Option<Vec<usize>> = if timestamps_ms[..n].windows(2).all(|w| w[0] < w[1]) {
        None
    } else {
        let mut o: Vec<usize> = (0..n).collect();
        o.sort_by_key(|&i| grid_slot(timestamps_ms[i], interval_secs));
        Some(o)
    };
    let mut newest = mark;
    for i in (0..n).map(|k| order.as_ref().map_or(k, |o| o[k])) {
        let (ts, v) = (timestamps_ms[i], values[i]);
        let slot = grid_slot(ts, interval_secs);
        if slot != ts {
            report.off_grid += 1;
        }
        if slot <= newest {
            report.repeated += 1;
            continue;
        }
        take(slot, v);
        report.samples += 1;
        newest = slot;
    }
    newest
}

#[cfg(test)]
mod tests {
    use super::super::catalog::Counter;
    use super::*;
    use crate::vsphere::{MetricId, MoRef, PerfSeries};

    /// A series table and (instance, slot, raw) of every sample handed over.
    #[derive(Default)]
    struct Taken {
        table: SeriesTable,
        got: Vec<(String, i64, i64)>,
    }

    impl SampleSink for Taken {
        fn series(&mut self) -> &mut SeriesTable {
            &mut self.table
        }

        fn sample(&mut self, id: SeriesId, slot_ms: i64, raw: i64) {
            let instance = self.table.key(id).map(|k| k.instance.to_string());
            self.got.push((instance.unwrap_or_default(), slot_ms, raw));
        }
    }

    fn counters() -> Resolved {
        Resolved {
            counters: vec![Counter {
                key: 6,
                name: "cpu.usage.average".into(),
                unit: "percent".into(),
                stats_type: "rate".into(),
            }],
            missing: Vec::new(),
        }
    }

    fn vm() -> MoRef {
        MoRef {
            kind: "VirtualMachine".into(),
            value: "vm-1".into(),
        }
    }

    /// An answer for vm-1: `timestamps` (seconds) and one series per (instance, values).
    fn answer(timestamps: &[i64], series: &[(&str, &[i64])]) -> PerfEntityMetric {
        PerfEntityMetric {
            entity: Some(vm()),
            timestamps_ms: timestamps.iter().map(|t| t * 1000).collect(),
            series: series
                .iter()
                .map(|(instance, values)| PerfSeries {
                    id: MetricId {
                        counter: 6,
                        instance: (*instance).into(),
                    },
                    values: values.to_vec(),
                })
                .collect(),
        }
    }

    /// Takes one answer asked from `start` seconds; returns what went to the sink.
    fn poll(
        sink: &mut Taken,
        a: PerfEntityMetric,
        start: i64,
    ) -> (Vec<(String, i64, i64)>, PollReport) {
        let mut report = PollReport::default();
        take_answer(sink, &counters(), &a, start * 1000, &mut report);
        (std::mem::take(&mut sink.got), report)
    }

    fn slots(taken: &[(String, i64, i64)]) -> Vec<i64> {
        taken.iter().map(|(_, slot, _)| slot / 1000).collect()
    }

    /// Overlapping polls (a poll that ran early, then one that ran late) hand each slot
    /// over once; the entity's next request starts at its newest slot.
    #[test]
    fn overlapping_answers_give_each_sample_once() {
        let mut m = Taken::default();
        let (t, r) = poll(&mut m, answer(&[20, 40, 60], &[("", &[1, 2, 3])]), 0);
        assert_eq!((slots(&t), r.samples, r.repeated), (vec![20, 40, 60], 3, 0));
        assert_eq!(m.table.entity_start(&vm()), Some(60_000));
        let (t, r) = poll(
            &mut m,
            answer(&[40, 60, 80, 100], &[("", &[2, 3, 4, 5])]),
            60,
        );
        assert_eq!((slots(&t), r.samples, r.repeated), (vec![80, 100], 2, 2));
        assert_eq!(m.table.entity_start(&vm()), Some(100_000));
    }

    /// A gap in vCenter's data is skipped, not waited for; samples that come later for
    /// slots before the mark (late data) are set aside and counted, never taken twice or
    /// out of order.
    #[test]
    fn gaps_are_skipped_and_late_samples_set_aside() {
        let mut m = Taken::default();
        let (t, _) = poll(&mut m, answer(&[20, 40, 100], &[("", &[1, 2, 5])]), 0);
        assert_eq!(slots(&t), vec![20, 40, 100]);
        let (t, r) = poll(&mut m, answer(&[60, 80, 120], &[("", &[3, 4, 6])]), 100);
        assert_eq!(slots(&t), vec![120]);
        assert_eq!(r.repeated, 2, "the gap's late samples are counted");
    }

    /// vCenter's -1 ("no data") is handed over as it is: the slot is used, and the
    /// rollup counts it as missing rather than as a value.
    #[test]
    fn no_data_values_are_handed_over_as_minus_one() {
        let mut m = Taken::default();
        let (t, r) = poll(&mut m, answer(&[20, 40], &[("", &[-1, 7])]), 0);
        assert_eq!(
            t,
            vec![(String::new(), 20_000, -1), (String::new(), 40_000, 7)]
        );
        assert_eq!(r.samples, 2);
    }

    /// An instance (a disk added to a VM) that appears later is taken from the entity's
    /// range start; one that vanishes does not hold the entity's next start back.
    #[test]
    fn an_instance_that_appears_and_vanishes_keeps_its_own_mark() {
        let mut m = Taken::default();
        poll(&mut m, answer(&[20, 40], &[("", &[1, 2])]), 0);
        let (t, _) = poll(
            &mut m,
            answer(&[20, 40, 60], &[("", &[1, 2, 3]), ("scsi0:1", &[9, 8, 7])]),
            0,
        );
        let new: Vec<(&str, i64)> = t.iter().map(|(i, s, _)| (i.as_str(), s / 1000)).collect();
        assert_eq!(
            new,
            vec![("", 60), ("scsi0:1", 20), ("scsi0:1", 40), ("scsi0:1", 60)]
        );
        // The disk is gone: its mark stays at 60 but the entity moves on.
        let (t, _) = poll(&mut m, answer(&[80, 100], &[("", &[4, 5])]), 60);
        assert_eq!(slots(&t), vec![80, 100]);
        assert_eq!(m.table.entity_start(&vm()), Some(100_000));
        // It comes back: only what is newer than its own mark.
        let (t, r) = poll(
            &mut m,
            answer(&[40, 60, 80, 120], &[("scsi0:1", &[1, 2, 3, 4])]),
            40,
        );
        assert_eq!(slots(&t), vec![80, 120]);
        assert_eq!(r.repeated, 2);
    }

    /// A series whose values do not match its timestamps (vcsim drops zeros) is dropped
    /// and counted; a counter that was not asked for is ignored.
    #[test]
    fn misaligned_and_unknown_series_are_not_taken() {
        let mut m = Taken::default();
        let mut a = answer(&[20, 40, 60], &[("", &[1, 2]), ("*", &[1, 2, 3])]);
        a.series[1].id.counter = 99;
        let (t, r) = poll(&mut m, a, 0);
        assert!(t.is_empty());
        assert_eq!((r.misaligned_series, r.samples), (1, 0));
        assert_eq!(m.table.entity_start(&vm()), None);
    }

    /// Entities no longer polled are forgotten: a returning one starts over from its
    /// range start.
    #[test]
    fn retain_forgets_entities_no_longer_polled() {
        let mut m = Taken::default();
        poll(&mut m, answer(&[20, 40], &[("", &[1, 2])]), 0);
        m.table.retain(&[], |_| false);
        assert_eq!(m.table.entity_start(&vm()), None);
        let (t, _) = poll(&mut m, answer(&[20, 40], &[("", &[1, 2])]), 0);
        assert_eq!(slots(&t), vec![20, 40]);
    }

    fn take(ts: &[i64], mark: i64, interval: u32) -> (Vec<(i64, i64)>, i64, PollReport) {
        let values: Vec<i64> = (0..ts.len() as i64).collect();
        let mut report = PollReport::default();
        let mut got = Vec::new();
        let newest = take_series(ts, &values, mark, interval, &mut report, |slot, v| {
            got.push((slot, v))
        });
        (got, newest, report)
    }

    #[test]
    fn on_grid_samples_are_taken_as_they_are() {
        let (got, newest, report) = take(&[20_000, 40_000, 60_000], 0, 20);
        assert_eq!(got, vec![(20_000, 0), (40_000, 1), (60_000, 2)]);
        assert_eq!(newest, 60_000);
        assert_eq!(
            (report.samples, report.off_grid, report.repeated),
            (3, 0, 0)
        );
    }

    /// Issue 11: vcsim stamps samples back from each request's end (…:13, …:33, …:53),
    /// and two overlapping requests gave a 60-second window five samples of three slots.
    #[test]
    fn off_grid_answers_fill_each_slot_once_across_overlapping_polls() {
        // First poll ends at 100:13 (three samples), the second at 100:25 and overlaps it.
        let base = 6_000_000; // 100:00, on the grid
        let first = [base - 47_000, base - 27_000, base - 7_000, base + 13_000];
        let (got, mark, report) = take(&first, i64::MIN, 20);
        let slots: Vec<i64> = got.iter().map(|(s, _)| *s).collect();
        assert_eq!(
            slots,
            vec![base - 40_000, base - 20_000, base, base + 20_000]
        );
        assert_eq!(report.off_grid, 4);
        let second = [base - 35_000, base - 15_000, base + 5_000, base + 25_000];
        let (got2, mark2, report2) = take(&second, mark, 20);
        assert_eq!(
            got2.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
            vec![base + 40_000]
        );
        assert_eq!(
            report2.repeated, 3,
            "three samples fell on slots already taken"
        );
        assert_eq!(mark2, base + 40_000);
        // Every slot at most once, every slot on the grid.
        let mut all: Vec<i64> = slots.into_iter().chain([base + 40_000]).collect();
        all.dedup();
        assert_eq!(all.len(), 5);
        assert!(all.iter().all(|s| s % 20_000 == 0));
    }

    #[test]
    fn two_samples_in_one_slot_of_one_answer_keep_the_first() {
        // 21 s and 39 s both end in the slot of 40 s, as does 40 s itself.
        let (got, _, report) = take(&[20_000, 21_000, 39_000, 40_000], 0, 20);
        assert_eq!(got, vec![(20_000, 0), (40_000, 1)]);
        assert_eq!(report.repeated, 2);
        assert_eq!(report.off_grid, 2);
    }

    /// vcsim lists samples newest first: every one is still taken, in time order.
    #[test]
    fn samples_listed_newest_first_are_all_taken() {
        let (got, newest, report) = take(&[73_000, 53_000, 33_000, 13_000], 0, 20);
        assert_eq!(
            got,
            vec![(20_000, 3), (40_000, 2), (60_000, 1), (80_000, 0)]
        );
        assert_eq!((newest, report.samples, report.repeated), (80_000, 4, 0));
        // Out of order with a repeat: one per slot, and the mark still set aside.
        let (got, _, report) = take(&[60_000, 20_000, 40_000, 59_000, 10_000], 20_000, 20);
        assert_eq!(got, vec![(40_000, 2), (60_000, 0)]);
        assert_eq!(report.repeated, 3);
    }

    #[test]
    fn historical_samples_use_the_five_minute_grid() {
        assert_eq!(grid_slot(300_000, 300), 300_000);
        assert_eq!(grid_slot(300_001, 300), 600_000);
        assert_eq!(grid_slot(-1, 300), 0);
        let (got, _, _) = take(&[290_000, 310_000, 600_000], 0, 300);
        assert_eq!(got, vec![(300_000, 0), (600_000, 1)]);
    }

    #[test]
    fn samples_at_or_before_the_mark_are_set_aside() {
        let (got, newest, report) = take(&[20_000, 40_000, 60_000], 40_000, 20);
        assert_eq!(got, vec![(60_000, 2)]);
        assert_eq!(newest, 60_000);
        assert_eq!(report.repeated, 2);
        let (none, same, _) = take(&[], 40_000, 20);
        assert!(none.is_empty());
        assert_eq!(same, 40_000);
    }
}
