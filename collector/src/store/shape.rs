//! What both stores answer alike, built from rows either reads: an agent's health as the
//! API serves it, an entity id split into vCenter and id, a series' daily sketches merged.

use serde_json::{json, Value};
use vscout_wire::batch::AgentHealth;
use vscout_wire::sketch::{Sketch, SketchSum};

/// An agent's health record as the API serves it: one unit per kind (Unix seconds,
/// seconds of CPU, bytes), whatever the wire record uses.
pub(crate) fn health_json(h: &AgentHealth) -> Value {
    json!({
        "at": h.at_ms / 1000,
        "version": h.version,
        "uptime_secs": h.uptime_secs,
        "buffer_depth": h.buffer_depth,
        "buffer_bytes": h.buffer_bytes,
        "buffer_fs_free_bytes": h.buffer_fs_free_bytes,
        "evicted_records": h.evicted_records,
        "dead_letters": h.dead_letters,
        "shipped_records": h.shipped_records,
        "ship_retries": h.ship_retries,
        "cpu_secs": h.cpu_ms.map(|ms| ms as f64 / 1000.0),
        "peak_rss_bytes": h.peak_rss_kib.map(|k| k * 1024),
        "errors": h.errors,
        "last_error": h.last_error,
    })
}

/// `vcenter:id`, or `id` with the vCenter from the query.
pub(crate) fn split_id(id: &str, vcenter: Option<&str>) -> (Option<String>, String) {
    match id.split_once(':') {
        Some((vc, e)) => (Some(vc.to_owned()), e.to_owned()),
        None => (vcenter.map(str::to_owned), id.to_owned()),
    }
}

/// One series' days, merged: the percentiles of every sample of those days, within the
/// sketch's 1% relative accuracy.
#[derive(Debug, Default)]
pub(crate) struct DailyMerge {
    head: Value,
    first_day: Option<i64>,
    last_day: i64,
    days: u64,
    samples: i64,
    expected: i64,
    max: Option<f64>,
    sketch: Sketch,
}

impl DailyMerge {
    /// A merge of no days yet, under the series' names.
    pub(crate) fn new(head: Value) -> Self {
        Self {
            head,
            ..Self::default()
        }
    }

    pub(crate) fn add(
        &mut self,
        day: i64,
        samples: i64,
        expected: i64,
        max: Option<f64>,
        s: &Sketch,
    ) {
        self.first_day.get_or_insert(day);
        self.last_day = day;
        self.days += 1;
        self.samples += samples;
        self.expected += expected;
        self.max = match (self.max, max) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        self.sketch.merge(s);
    }

    pub(crate) fn finish(self) -> Value {
        let mut v = self.head;
        let q = |p: f64| self.sketch.quantile(p);
        if let Some(o) = v.as_object_mut() {
            for (k, x) in [
                ("from", json!(self.first_day)),
                ("to", json!(self.last_day)),
                ("days", json!(self.days)),
                ("samples", json!(self.samples)),
                ("expected_samples", json!(self.expected)),
                ("p50", json!(q(0.50))),
                ("p90", json!(q(0.90))),
                ("p95", json!(q(0.95))),
                ("p99", json!(q(0.99))),
                ("max", json!(self.max)),
            ] {
                o.insert(k.into(), x);
            }
        }
        v
    }
}

/// The windows of some span summed up: what a summary row holds and what the open hour
/// adds at read time.
#[derive(Debug, Default, Clone)]
pub(crate) struct Windows {
    pub(crate) windows: u64,
    pub(crate) covered_secs: u64,
    pub(crate) received: u64,
    pub(crate) expected: u64,
    pub(crate) first_start: Option<i64>,
    pub(crate) last_end: i64,
    pub(crate) peaks: SketchSum,
}

impl Windows {
    pub(crate) fn add(
        &mut self,
        start: i64,
        secs: i64,
        expected: i64,
        count: i64,
        max: Option<f64>,
    ) {
        self.count(1, secs, count, expected, start, start + secs);
        if let Some(m) = max {
            self.peaks.add(m);
        }
    }

    /// Adds everything but the sketch of `windows` windows.
    pub(crate) fn count(
        &mut self,
        windows: i64,
        secs: i64,
        received: i64,
        expected: i64,
        first: i64,
        end: i64,
    ) {
        self.windows += windows.max(0) as u64;
        self.covered_secs += secs.max(0) as u64;
        self.received += received.max(0) as u64;
        self.expected += expected.max(0) as u64;
        self.first_start = Some(self.first_start.map_or(first, |f| f.min(first)));
        self.last_end = self.last_end.max(end);
    }
}

/// A series' usage as `Storage::vm_usage` answers it: its names (vCenter, VM, counter,
/// instance) and its windows summed up; `None` if it has none.
pub(crate) fn series_usage(
    (vcenter, vm_id, counter, instance): (String, String, String, String),
    w: Windows,
    sample_days: u32,
) -> Option<crate::store::SeriesUsage> {
    Some(crate::store::SeriesUsage {
        vcenter,
        vm_id,
        counter,
        instance,
        windows: w.windows,
        covered_secs: w.covered_secs,
        received: w.received,
        expected: w.expected,
        first_s: w.first_start?,
        end_s: w.last_end,
        sketch: w.peaks.finish(),
        sample_days,
    })
}

/// One window as a metrics row of its series (`head`).
pub(crate) fn window_row(
    head: &crate::store::MetricsRow,
    w: &crate::store::pack::Window,
) -> crate::store::MetricsRow {
    let s = w.stats;
    crate::store::MetricsRow {
        window_start: w.start,
        window_secs: w.secs.into(),
        expected_samples: w.expected.into(),
        missing_samples: w.missing.into(),
        count: s.map_or(0, |s| s.0.into()),
        min: s.map(|s| s.1),
        max: s.map(|s| s.2),
        mean: s.map(|s| s.3),
        p50: s.map(|s| s.4),
        p95: s.map(|s| s.5),
        p99: s.map(|s| s.6),
        ..head.clone()
    }
}
