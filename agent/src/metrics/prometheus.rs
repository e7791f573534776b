//! `/metrics` in Prometheus' text format: the build, one row per vCenter of each
//! per-vCenter figure, then the agent's own figures (one that cannot be read is left out).

use std::fmt::Write;
use std::sync::atomic::Ordering::Relaxed;

use super::{AgentCounters, Sources};
use crate::status::VcenterState;

/// A per-vCenter metric: name, kind, help, and how to read it.
type PerVcenter = (
    &'static str,
    &'static str,
    &'static str,
    fn(&VcenterState) -> f64,
);

/// An agent-wide metric: name, kind, help, value (`None`: cannot be read here).
type Whole = (&'static str, &'static str, &'static str, Option<f64>);

const PER_VCENTER: [PerVcenter; 17] = [
        (
            "vscout_vcenter_connected",
            "gauge",
            "1 if the last round against this vCenter succeeded.",
            |v| f64::from(u8::from(v.is_connected())),
        ),
        (
            "vscout_vcenter_vms",
            "gauge",
            "VMs in the latest inventory.",
            |v| v.vms() as f64,
        ),
        (
            "vscout_vcenter_logins_total",
            "counter",
            "Logins to this vCenter (the first and every re-login).",
            |v| v.counters.logins.load(Relaxed) as f64,
        ),
        (
            "vscout_inventory_rounds_total",
            "counter",
            "Inventory rounds.",
            |v| v.counters.inventory_rounds.load(Relaxed) as f64,
        ),
        (
            "vscout_inventory_failures_total",
            "counter",
            "Inventory rounds that failed or overran.",
            |v| v.counters.inventory_failures.load(Relaxed) as f64,
        ),
        (
            "vscout_inventory_last_duration_seconds",
            "gauge",
            "Duration of the last inventory round.",
            |v| v.counters.last_inventory_ms.load(Relaxed) as f64 / 1000.0,
        ),
        (
            "vscout_inventory_last_success_timestamp_seconds",
            "gauge",
            "When the last inventory round succeeded.",
            |v| v.counters.last_inventory_ok_ms.load(Relaxed) as f64 / 1000.0,
        ),
        (
            "vscout_perf_polls_total",
            "counter",
            "Performance polls.",
            |v| v.counters.perf_polls.load(Relaxed) as f64,
        ),
        (
            "vscout_perf_failures_total",
            "counter",
            "Performance polls that failed or overran.",
            |v| v.counters.perf_failures.load(Relaxed) as f64,
        ),
        (
            "vscout_perf_overruns_total",
            "counter",
            "Performance polls abandoned at their deadline.",
            |v| v.counters.perf_overruns.load(Relaxed) as f64,
        ),
        (
            "vscout_perf_last_duration_seconds",
            "gauge",
            "Duration of the last performance poll.",
            |v| v.counters.last_perf_ms.load(Relaxed) as f64 / 1000.0,
        ),
        (
            "vscout_perf_last_success_timestamp_seconds",
            "gauge",
            "When the last performance poll succeeded.",
            |v| v.counters.last_perf_ok_ms.load(Relaxed) as f64 / 1000.0,
        ),
        (
            "vscout_perf_samples_total",
            "counter",
            "Samples taken.",
            |v| v.counters.samples.load(Relaxed) as f64,
        ),
        (
            "vscout_perf_samples_off_grid_total",
            "counter",
            "Samples stamped off vCenter's 20-second (or 5-minute) grid, placed on their slot.",
            |v| v.counters.samples_off_grid.load(Relaxed) as f64,
        ),
        (
            "vscout_perf_samples_set_aside_total",
            "counter",
            "Samples set aside because their grid slot was already taken.",
            |v| v.counters.samples_set_aside.load(Relaxed) as f64,
        ),
        (
            "vscout_perf_samples_late_total",
            "counter",
            "Samples that came for a window already rolled up for their series (after its grace): dropped, never a second rollup.",
            |v| v.counters.samples_late.load(Relaxed) as f64,
        ),
        (
            "vscout_perf_rollups_total",
            "counter",
            "Rollups made from closed windows.",
            |v| v.counters.rollups.load(Relaxed) as f64,
        ),
];

pub(super) fn render(s: &Sources) -> String {
    let c = s.counters();
    let mut out = String::new();
    let version = format!("{{version=\"{}\"}}", crate::VERSION);
    metric(
        &mut out,
        ("vscout_build_info", "gauge", "Agent version."),
        &[(version, 1.0)],
    );
    let vcs = s.state.list();
    for (name, kind, help, get) in PER_VCENTER {
        let rows: Vec<(String, f64)> = vcs
            .iter()
            .map(|v| (format!("{{vcenter=\"{}\"}}", escape(&v.name)), get(v)))
            .collect();
        metric(&mut out, (name, kind, help), &rows);
    }
    for (name, kind, help, value) in whole(s, &c).into_iter().chain(shipping_and_process(&c)) {
        if let Some(v) = value {
            metric(&mut out, (name, kind, help), &[(String::new(), v)]);
        }
    }
    out
}

/// Writes one metric: its help and type lines, then a line per (labels, value).
fn metric(out: &mut String, (name, kind, help): (&str, &str, &str), rows: &[(String, f64)]) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    for (labels, v) in rows {
        let _ = writeln!(out, "{name}{labels} {v}");
    }
}

/// The agent as a whole: its windows and its buffer.
fn whole(s: &Sources, c: &AgentCounters) -> [Whole; 10] {
    let secs = |ms: i64| ms as f64 / 1000.0;
    [
        (
            "vscout_uptime_seconds",
            "gauge",
            "Seconds since the agent started.",
            Some(c.uptime.as_secs_f64()),
        ),
        (
            "vscout_last_window_stored_timestamp_seconds",
            "gauge",
            "End of the last window stored in the buffer.",
            Some(secs(s.state.last_window_ms())),
        ),
        (
            "vscout_last_window_shipped_timestamp_seconds",
            "gauge",
            "End of the last window the collector acknowledged.",
            Some(secs(s.state.last_window_shipped_ms(c.buffer.acked))),
        ),
        (
            "vscout_buffer_records_stored_total",
            "counter",
            "Records appended to the buffer.",
            Some(c.buffer.stats.appended_records as f64),
        ),
        (
            "vscout_buffer_records_evicted_total",
            "counter",
            "Records evicted at the byte cap before delivery.",
            Some(c.buffer.stats.evicted_records as f64),
        ),
        (
            "vscout_buffer_bad_crc_records_total",
            "counter",
            "Damaged records skipped.",
            Some(c.buffer.stats.bad_crc_records as f64),
        ),
        (
            "vscout_buffer_depth_records",
            "gauge",
            "Records not yet acknowledged by the collector.",
            Some(c.buffer.depth as f64),
        ),
        (
            "vscout_buffer_bytes",
            "gauge",
            "Bytes the buffer holds on disk.",
            Some(c.buffer.disk_bytes as f64),
        ),
        (
            "vscout_buffer_max_bytes",
            "gauge",
            "The buffer's byte cap.",
            Some(s.buffer_max_bytes as f64),
        ),
        (
            "vscout_buffer_fs_free_bytes",
            "gauge",
            "Free bytes on the buffer's filesystem.",
            c.buffer_fs_free_bytes.map(|f| f as f64),
        ),
    ]
}

/// The agent as a whole: shipping, errors, the process.
fn shipping_and_process(c: &AgentCounters) -> [Whole; 7] {
    [
        (
            "vscout_ship_records_total",
            "counter",
            "Records the collector acknowledged.",
            Some(c.shipped as f64),
        ),
        (
            "vscout_ship_duplicates_total",
            "counter",
            "Records the collector already had.",
            Some(c.ship_duplicates as f64),
        ),
        (
            "vscout_ship_retries_total",
            "counter",
            "Failed attempts that will be retried.",
            Some(c.ship_retries as f64),
        ),
        (
            "vscout_ship_dead_letters_total",
            "counter",
            "Records the collector refused for good.",
            Some(c.dead_letters as f64),
        ),
        (
            "vscout_errors_total",
            "counter",
            "Error events logged.",
            Some(c.errors as f64),
        ),
        (
            "vscout_process_cpu_seconds_total",
            "counter",
            "CPU time of the agent.",
            c.usage.map(|u| u.cpu_ms as f64 / 1000.0),
        ),
        (
            "vscout_process_resident_memory_bytes",
            "gauge",
            "Resident memory of the agent.",
            rss_bytes().map(|r| r as f64),
        ),
    ]
}

pub(super) fn escape(label: &str) -> String {
    label
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Resident memory now, from /proc.
fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(kib * 1024)
}
