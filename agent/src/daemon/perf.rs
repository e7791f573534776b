//! One vCenter's performance rounds: the counter catalog, the poll, closing and draining
//! windows, encoding and storing them, the watermark; and, on start, what an earlier run
//! stored past its watermark.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::atomic::Ordering::Relaxed;
use tokio::time::Instant;

use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use crate::buffer::BufferHandle;
use crate::config::VcenterConfig;
use crate::perf::{vcenter_now_ms, watermark, Aggregator, PollReport, Poller, REALTIME_SECS};
use crate::ship::{Batcher, Record};
use crate::vsphere::{Client, MoRef, VsphereError};
use vscout_wire::batch::RollupSet;

use super::vcenter::VcenterTask;

/// vCenter keeps one hour of real-time samples: a restarted agent looks back at most that.
const REALTIME_RETENTION_MS: i64 = 3_600_000;

/// Performance state of one vCenter: the poller (counters, marks) and open windows.
pub(super) struct PerfState {
    pub(super) poller: Poller,
    pub(super) agg: Aggregator,
    /// End of the last window stored by an earlier run, until the first poll has used it.
    pub(super) stored_until: Option<i64>,
    /// Earliest range start of real-time requests that failed and were not yet made
    /// good by a poll without failures: windows after it stay open (within their grace).
    pub(super) hold_since: Option<i64>,
}

impl PerfState {
    /// Polls every target up to vCenter's now; returns that now and the poll's report.
    async fn poll(
        &mut self,
        client: &Client,
        targets: &[MoRef],
        window_ms: i64,
    ) -> Result<(i64, PollReport), VsphereError> {
        let resume = self.stored_until.take();
        let end = vcenter_now_ms(client).await?;
        // After a restart, look back to the last stored window (no gap), at most as far
        // as vCenter keeps real-time samples.
        let lookback_ms = match resume {
            Some(w) => (end - w).clamp(window_ms, REALTIME_RETENTION_MS),
            None => first_lookback_ms(end, window_ms),
        };
        let report = self
            .poller
            .poll(client, targets, end, lookback_ms, &mut self.agg)
            .await?;
        Ok((end, report))
    }
}

impl VcenterTask {
    /// One real-time performance poll with its deadline; closed windows are summarised.
    /// False if the agent is stopping.
    pub(super) async fn perf_round(&mut self, stop: &CancellationToken) -> bool {
        if self.perf.is_none() {
            self.perf = self.start_perf().await;
        }
        let Some(perf) = self.perf.as_mut() else {
            return true;
        };
        let window_ms = i64::from(self.cfg.perf.window_secs) * 1000;
        let started = Instant::now();
        let deadline = self.cfg.perf.interval;
        let me = self.me.clone();
        me.begin(deadline);
        let result = tokio::select! {
            r = tokio::time::timeout(deadline, perf.poll(&self.client, &self.targets, window_ms)) => Some(r),
            _ = stop.cancelled() => None,
        };
        me.end();
        me.counters.perf_polls.fetch_add(1, Relaxed);
        let elapsed_ms = started.elapsed().as_millis() as u64;
        me.counters.last_perf_ms.store(elapsed_ms, Relaxed);
        me.counters.logins.store(self.client.logins(), Relaxed);
        let vc_name = &self.vc.name;
        match result {
            None => return false,
            Some(Err(_)) => {
                self.perf_overruns += 1;
                me.counters.perf_overruns.fetch_add(1, Relaxed);
                me.counters.perf_failures.fetch_add(1, Relaxed);
                error!(vcenter = %vc_name, deadline_secs = deadline.as_secs(), overruns = self.perf_overruns, "performance poll overran its interval and was abandoned");
            }
            Some(Ok(Err(e))) => {
                me.counters.perf_failures.fetch_add(1, Relaxed);
                me.counters.error(&e);
                if matches!(
                    e,
                    VsphereError::Connect { .. } | VsphereError::Timeout { .. }
                ) {
                    me.set_connected(false);
                }
                warn!(vcenter = %vc_name, error = %e, retryable = e.is_retryable(), "performance poll failed")
            }
            Some(Ok(Ok((end, report)))) => {
                debug!(vcenter = %vc_name, entities = report.entities, samples = report.samples, requests = report.requests, misaligned = report.misaligned_series, off_grid = report.off_grid, set_aside = report.repeated, elapsed_ms, "performance poll complete");
                self.close_windows(end, &report).await;
            }
        }
        true
    }

    /// The poller (the counter catalog read, the counters probed) and an aggregator that
    /// resumes after the last stored window; `None` if the catalog cannot be read.
    async fn start_perf(&mut self) -> Option<PerfState> {
        let vc_name = self.vc.name.clone();
        let poller = match Poller::new(&self.client, &self.cfg.perf).await {
            Ok(p) => p,
            Err(e) => {
                warn!(vcenter = %vc_name, error = %e, "cannot read the performance counter catalog; retrying next interval");
                return None;
            }
        };
        match poller.unavailable(&self.client, &self.targets).await {
            Ok(m) if !m.is_empty() => {
                warn!(vcenter = %vc_name, unavailable = ?m, "counters vCenter has no data for on sampled entities (statistics level or hardware); they will be empty")
            }
            Ok(_) => {}
            Err(e) => {
                debug!(vcenter = %vc_name, error = %e, "the counter probe (one QueryPerf) failed")
            }
        }
        let mut agg = Aggregator::new(&vc_name, self.cfg.perf.window_secs)
            .with_daily(&self.cfg.perf.daily_counters);
        let mark = watermark::read(&self.cfg.state_dir, &vc_name);
        let seeded = self.seeds.len();
        for (key, end_ms) in std::mem::take(&mut self.seeds) {
            agg.seed_closed(&key, end_ms);
        }
        if let Some(w) = mark {
            agg.resume_after(w.closed_ms);
        }
        if mark.is_some() || seeded > 0 {
            info!(vcenter = %vc_name, stored_until_ms = mark.map(|w| w.closed_ms), series_stored_past_it = seeded, "resuming performance collection after the last stored window");
        }
        Some(PerfState {
            poller,
            agg,
            stored_until: mark.map(|w| w.closed_ms),
            hold_since: None,
        })
    }

    /// After a good poll: counts it, closes the windows it completed (or whose grace ran
    /// out), rolls them up on a blocking thread, stores the batches and the watermark.
    async fn close_windows(&mut self, end: i64, report: &PollReport) {
        let vc_name = self.vc.name.clone();
        let me = self.me.clone();
        let Some(perf) = self.perf.as_mut() else {
            return;
        };
        // Connected is what the last call said, inventory or poll alike.
        me.set_connected(true);
        let c = &me.counters;
        c.samples.fetch_add(report.samples, Relaxed);
        c.samples_off_grid.fetch_add(report.off_grid, Relaxed);
        c.samples_set_aside.fetch_add(report.repeated, Relaxed);
        c.last_perf_ok_ms
            .store(crate::telemetry::unix_now_ms(), Relaxed);
        c.samples_late.fetch_add(perf.agg.take_late(), Relaxed);
        // A window is closed once vCenter's clock is one interval past its end (samples
        // are published a little late), and every request for it succeeded, or its grace
        // (one window) ran out.
        perf.hold_since = match (
            report.failed_requests,
            perf.hold_since,
            report.failed_since_ms,
        ) {
            (0, _, _) => None,
            (_, Some(a), Some(b)) => Some(a.min(b)),
            (_, a, b) => a.or(b),
        };
        let window_secs = self.cfg.perf.window_secs;
        let closed = closing_point(end, perf.hold_since, i64::from(window_secs) * 1000);
        // Draining and encoding 150,000 rollups is CPU work: the aggregator moves to a
        // blocking thread for it and comes back.
        let batch_limit = self.sink.batch_limit();
        let mut agg = std::mem::replace(&mut perf.agg, Aggregator::new(&vc_name, window_secs));
        let drained = tokio::task::spawn_blocking(move || {
            let mut windows = WindowLog::default();
            let mut batcher = Batcher::new(batch_limit);
            agg.drain_closed_with(closed, |set| {
                windows.add(&set);
                batcher.push(Record::Rollups(set));
            });
            agg.drain_closed_days_with(closed, |d| batcher.push(Record::Daily(d)));
            (agg, windows, batcher.finish())
        })
        .await;
        let (agg, windows, encoded) = match drained {
            Ok(x) => x,
            Err(e) => {
                error!(vcenter = %vc_name, error = %e, "rolling up closed windows failed");
                return;
            }
        };
        perf.agg = agg;
        windows.log(&vc_name);
        c.rollups.fetch_add(windows.rollups(), Relaxed);
        let encoded = match encoded {
            Ok(e) => e,
            Err(e) => {
                error!(vcenter = %vc_name, error = %e, "cannot encode closed windows");
                return;
            }
        };
        let mut last_seq = 0;
        for batch in encoded {
            match self.sink.store_encoded(batch).await {
                Ok(seq) => last_seq = seq,
                Err(e) => {
                    error!(vcenter = %vc_name, error = %e, "cannot store closed windows in the buffer");
                    return;
                }
            }
        }
        if let Some(w) = windows.last_end_ms() {
            self.window_stored(w, last_seq);
        }
    }

    /// The window ending at `end_ms` is stored, its last batch at `seq`: the watermark
    /// moves, and a seeds file it now covers goes.
    fn window_stored(&mut self, end_ms: i64, seq: u64) {
        let vc_name = &self.vc.name;
        self.agent.window_stored(seq, end_ms);
        let mark = watermark::Watermark {
            closed_ms: end_ms,
            seq: Some(seq),
        };
        match watermark::write(&self.cfg.state_dir, vc_name, mark) {
            // An earlier run's seeds are of windows up to this one at most: the watermark
            // covers them now.
            Ok(()) if self.seeds_kept => {
                self.seeds_kept = false;
                if let Err(e) = watermark::write_seeds(&self.cfg.state_dir, vc_name, &[]) {
                    warn!(vcenter = %vc_name, error = %e, "cannot remove the seeds file");
                }
            }
            Ok(()) => {}
            Err(e) => {
                warn!(vcenter = %vc_name, error = %e, "cannot record the last stored window; a restart may roll it up again")
            }
        }
    }
}

/// Per closed window: how many series, samples and how complete; one log line each.
#[derive(Debug, Default)]
struct WindowLog {
    by_window: BTreeMap<i64, (usize, u64, u64, u32)>,
}

impl WindowLog {
    fn add(&mut self, set: &RollupSet) {
        for r in &set.rows {
            let e = self.by_window.entry(r.6).or_default();
            e.0 += 1;
            e.1 += u64::from(r.10.map_or(0, |s| s.0));
            e.2 += u64::from(r.8);
            e.3 = r.7;
        }
    }

    /// Rollups in all windows.
    fn rollups(&self) -> u64 {
        self.by_window.values().map(|e| e.0 as u64).sum()
    }

    /// End (Unix ms) of the last window seen.
    fn last_end_ms(&self) -> Option<i64> {
        self.by_window
            .iter()
            .next_back()
            .map(|(start, e)| (start + i64::from(e.3)) * 1000)
    }

    fn log(&self, vcenter: &str) {
        for (start, (series, samples, expected, _)) in &self.by_window {
            let completeness = if *expected == 0 {
                0.0
            } else {
                100.0 * *samples as f64 / *expected as f64
            };
            info!(vcenter = %vcenter, window_start = start, series, samples, completeness_pct = format!("{completeness:.1}"), "performance window closed");
        }
    }
}

/// Where windows close: one real-time interval before vCenter's `end` (samples are
/// published a little late), held back to `hold_since` while requests for data after it
/// failed, but never more than one window: a vCenter that keeps failing some requests
/// delays its windows by a window, not forever. Samples that come later still are late.
fn closing_point(end_ms: i64, hold_since: Option<i64>, window_ms: i64) -> i64 {
    let closed = end_ms - i64::from(REALTIME_SECS) * 1000;
    match hold_since {
        Some(h) => h.clamp(closed - window_ms, closed),
        None => closed,
    }
}

/// Series each vCenter stored past its watermark, with the end of their window.
type Seeds = HashMap<String, Vec<watermark::Seed>>;

/// The series each vCenter stored past its watermark, from the buffer (a crash between a
/// window's batches) and from the seeds files of earlier starts; kept in the seeds files
/// until a new watermark covers them, so a second crash still knows them.
pub(super) async fn load_seeds(
    buffer: &BufferHandle,
    state_dir: &Path,
    vcenters: &[VcenterConfig],
) -> HashMap<String, Vec<watermark::Seed>> {
    let mut seeds = stored_past_watermarks(buffer, state_dir, vcenters).await;
    for vc in vcenters {
        let mut known = watermark::read_seeds(state_dir, &vc.name);
        if known.is_empty() && !seeds.contains_key(&vc.name) {
            continue;
        }
        let list = seeds.entry(vc.name.clone()).or_default();
        list.append(&mut known);
        if let Err(e) = watermark::write_seeds(state_dir, &vc.name, list) {
            warn!(vcenter = %vc.name, error = %e, "cannot keep the series stored past the watermark; a second crash may roll their windows up again");
        }
    }
    seeds
}

/// Reads the buffer's records after each vCenter's watermark (what was stored after the
/// watermark was last written: a crash came between a window's batches and the file) and
/// returns, per vCenter, the series they hold with their window's end. Read before the
/// shipper starts, so that nothing of it has been acknowledged and deleted yet.
async fn stored_past_watermarks(
    buffer: &BufferHandle,
    state_dir: &Path,
    vcenters: &[VcenterConfig],
) -> Seeds {
    // No file yet: no window was ever stored whole, so whatever the buffer holds may be
    // part of one (the first window's batches, then a crash). A file without a sequence
    // is an older agent's: nothing to go by.
    let marks: HashMap<&str, u64> = vcenters
        .iter()
        .filter_map(|v| match watermark::read(state_dir, &v.name) {
            None => Some((v.name.as_str(), 0)),
            Some(w) => Some((v.name.as_str(), w.seq?)),
        })
        .collect();
    let mut seeds = Seeds::new();
    let Some(mut after) = marks.values().min().copied() else {
        return seeds;
    };
    loop {
        let records = match buffer.read(after, 64, 64 << 20).await {
            Ok(r) if !r.is_empty() => r,
            Ok(_) => return seeds,
            Err(e) => {
                warn!(error = %e, "cannot read the buffer past the watermarks; windows stored there may be rolled up again");
                return seeds;
            }
        };
        for r in records {
            after = r.seq;
            let Ok(batch) = crate::ship::batch::decode(&r.payload, "zstd") else {
                continue;
            };
            for record in &batch.records {
                let Record::Rollups(set) = record else {
                    continue;
                };
                if marks.get(set.vcenter.as_str()).is_none_or(|m| r.seq <= *m) {
                    continue;
                }
                let list = seeds.entry(set.vcenter.to_string()).or_default();
                for v in set.views() {
                    let key = crate::perf::SeriesKey {
                        entity_type: v.labels.entity_type.into(),
                        entity_id: v.labels.entity_id.into(),
                        counter: v.labels.counter.into(),
                        instance: v.labels.instance.into(),
                    };
                    list.push((key, (v.window_start + i64::from(v.window_secs)) * 1000));
                }
            }
        }
    }
}

/// How far a fresh agent's first poll looks back: to the start of the last window that
/// is already closed, so that the first window it stores is whole (looking back one
/// window length from a moment inside a window stored a first window of 1 sample of 3).
fn first_lookback_ms(end_ms: i64, window_ms: i64) -> i64 {
    let closed_before = end_ms - i64::from(REALTIME_SECS) * 1000;
    let start = closed_before.div_euclid(window_ms) * window_ms - window_ms;
    (end_ms - start).max(window_ms).min(REALTIME_RETENTION_MS)
}

#[cfg(test)]
mod tests {
    use super::{closing_point, first_lookback_ms};

    #[test]
    fn windows_wait_for_failed_requests_within_one_window() {
        let (end, w) = (1_000_000, 60_000);
        assert_eq!(closing_point(end, None, w), 980_000);
        // A failed request's range began at 950 s: windows after it stay open.
        assert_eq!(closing_point(end, Some(950_000), w), 950_000);
        // Never more than a window behind.
        assert_eq!(closing_point(end, Some(100_000), w), 920_000);
        // A hold newer than the usual closing point changes nothing.
        assert_eq!(closing_point(end, Some(999_000), w), 980_000);
    }

    #[test]
    fn the_first_poll_reaches_back_to_the_start_of_the_last_closed_window() {
        // At 100:13 with 1-minute windows: (99:00, 100:00] is not closed until 100:20,
        // so the last closed window is (98:00, 99:00] and the look-back reaches 98:00.
        let end = 6_013_000;
        assert_eq!(first_lookback_ms(end, 60_000), end - 5_880_000);
        // At 100:25 the window (99:00, 100:00] is closed: back to 99:00.
        assert_eq!(first_lookback_ms(6_025_000, 60_000), 6_025_000 - 5_940_000);
        // Never less than a window, never beyond vCenter's hour.
        assert!(first_lookback_ms(6_025_000, 300_000) >= 300_000);
        assert_eq!(first_lookback_ms(10_000_000, 3_600_000 * 2), 3_600_000);
    }
}
