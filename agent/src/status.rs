//! What the running agent is doing, shared by its tasks through atomics: per vCenter,
//! whether its first login was tried, whether it is connected, how many VMs it has and
//! whether a round is running past its deadline; for the agent, the last stored window.
//! The watchdog and the `STATUS=` line read it.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::buffer::Snapshot;

/// A round may overrun its own deadline by this much before the agent counts as hung
/// (the deadline's timeout fires first in every healthy case).
pub const HANG_GRACE: Duration = Duration::from_secs(60);

/// One vCenter task's state.
#[derive(Debug, Default)]
pub struct VcenterState {
    pub name: String,
    tried: AtomicBool,
    connected: AtomicBool,
    vms: AtomicU64,
    /// Unix ms when the running round started (0: idle) and its deadline in ms.
    busy_since_ms: AtomicI64,
    busy_deadline_ms: AtomicI64,
    /// Counters for `/metrics`.
    pub counters: VcenterCounters,
}

/// What one vCenter task has done, for `/metrics` and `vscout status`.
#[derive(Debug, Default)]
pub struct VcenterCounters {
    pub inventory_rounds: AtomicU64,
    pub inventory_failures: AtomicU64,
    pub perf_polls: AtomicU64,
    pub perf_failures: AtomicU64,
    pub perf_overruns: AtomicU64,
    pub samples: AtomicU64,
    /// Samples stamped off vCenter's grid, placed on their slot.
    pub samples_off_grid: AtomicU64,
    /// Samples set aside: their slot was already taken.
    pub samples_set_aside: AtomicU64,
    /// Samples that came for a window already rolled up for their series: dropped.
    pub samples_late: AtomicU64,
    pub rollups: AtomicU64,
    pub logins: AtomicU64,
    /// Duration of the last round, milliseconds.
    pub last_inventory_ms: AtomicU64,
    pub last_perf_ms: AtomicU64,
    /// Unix ms of the last successful round.
    pub last_inventory_ok_ms: AtomicI64,
    pub last_perf_ok_ms: AtomicI64,
    /// The last error, for `vscout status`.
    pub last_error: std::sync::Mutex<Option<String>>,
}

impl VcenterCounters {
    pub fn error(&self, e: &impl std::fmt::Display) {
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.to_string());
    }
}

impl VcenterState {
    pub fn new(name: &str) -> Self {
        Self {
            name: name.into(),
            ..Self::default()
        }
    }

    /// A login was attempted (whatever its outcome).
    pub fn tried(&self, connected: bool) {
        self.tried.store(true, Relaxed);
        self.connected.store(connected, Relaxed);
    }

    pub fn set_connected(&self, connected: bool) {
        self.connected.store(connected, Relaxed);
    }

    pub fn is_connected(&self) -> bool {
        self.connected.load(Relaxed)
    }

    pub fn vms(&self) -> u64 {
        self.vms.load(Relaxed)
    }

    pub fn set_vms(&self, n: usize) {
        self.vms.store(n as u64, Relaxed);
    }

    /// A round starts; it should end within `deadline`.
    pub fn begin(&self, deadline: Duration) {
        self.busy_deadline_ms
            .store(deadline.as_millis() as i64, Relaxed);
        self.busy_since_ms
            .store(crate::telemetry::unix_now_ms(), Relaxed);
    }

    pub fn end(&self) {
        self.busy_since_ms.store(0, Relaxed);
    }

    /// Whether a round has run past its deadline plus `HANG_GRACE` at `now_ms`.
    pub fn hung(&self, now_ms: i64) -> bool {
        hung(
            now_ms,
            self.busy_since_ms.load(Relaxed),
            self.busy_deadline_ms.load(Relaxed),
        )
    }
}

fn hung(now_ms: i64, since_ms: i64, deadline_ms: i64) -> bool {
    since_ms > 0 && now_ms - since_ms > deadline_ms + HANG_GRACE.as_millis() as i64
}

/// The whole agent's state. vCenters come and go with configuration reloads.
#[derive(Debug, Default)]
pub struct AgentState {
    vcenters: RwLock<Vec<Arc<VcenterState>>>,
    /// End (Unix ms) of the last window stored in the buffer, 0 if none yet.
    last_window_ms: AtomicI64,
    /// Windows stored but not yet known to be shipped: last record's sequence → end.
    unshipped: std::sync::Mutex<std::collections::BTreeMap<u64, i64>>,
    /// End (Unix ms) of the last window the collector acknowledged, 0 if none yet.
    last_shipped_ms: AtomicI64,
}

impl AgentState {
    pub fn new() -> Self {
        Self::default()
    }

    /// The vCenters now configured.
    pub fn list(&self) -> Vec<Arc<VcenterState>> {
        self.vcenters
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Adds a vCenter (replacing one of the same name) and returns its state.
    pub fn add(&self, name: &str) -> Arc<VcenterState> {
        let v = Arc::new(VcenterState::new(name));
        let mut list = self.vcenters.write().unwrap_or_else(|e| e.into_inner());
        list.retain(|x| x.name != name);
        list.push(v.clone());
        v
    }

    pub fn remove(&self, name: &str) {
        self.vcenters
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|x| x.name != name);
    }

    /// End (Unix ms) of the last stored window, 0 if none.
    pub fn last_window_ms(&self) -> i64 {
        self.last_window_ms.load(Relaxed)
    }

    /// A window ending at `end_ms` is stored, its last record under sequence `seq`.
    pub fn window_stored(&self, seq: u64, end_ms: i64) {
        self.last_window_ms.fetch_max(end_ms, Relaxed);
        self.unshipped
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(seq, end_ms);
    }

    /// End (Unix ms) of the last window shipped, given the buffer's acknowledged sequence.
    pub fn last_window_shipped_ms(&self, acked: u64) -> i64 {
        let mut pending = self.unshipped.lock().unwrap_or_else(|e| e.into_inner());
        let rest = pending.split_off(&acked.saturating_add(1));
        if let Some(end) = pending.values().max() {
            self.last_shipped_ms.fetch_max(*end, Relaxed);
        }
        *pending = rest;
        self.last_shipped_ms.load(Relaxed)
    }

    /// Every vCenter's first login has been tried.
    pub fn all_tried(&self) -> bool {
        self.list().iter().all(|v| v.tried.load(Relaxed))
    }

    /// Names of vCenters whose round is hung.
    pub fn hung(&self, now_ms: i64) -> Vec<String> {
        self.list()
            .iter()
            .filter(|v| v.hung(now_ms))
            .map(|v| v.name.clone())
            .collect()
    }

    /// The `systemctl status` line.
    pub fn status_line(&self, buffer: &Snapshot) -> String {
        let list = self.list();
        let connected = list.iter().filter(|v| v.connected.load(Relaxed)).count();
        let vms: u64 = list.iter().map(|v| v.vms.load(Relaxed)).sum();
        let when = |ms: i64| {
            if ms == 0 {
                "none yet".to_owned()
            } else {
                crate::vsphere::datetime::format_unix_millis(ms)
            }
        };
        let window = when(self.last_window_ms.load(Relaxed));
        let shipped = when(self.last_window_shipped_ms(buffer.acked));
        format!(
            "vCenters connected {connected}/{}, VMs {vms}, last window stored {window}, shipped {shipped}, buffer {} records ({} KiB)",
            list.len(),
            buffer.depth,
            buffer.disk_bytes / 1024
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_round_hangs_only_past_its_deadline_and_the_grace() {
        let grace = HANG_GRACE.as_millis() as i64;
        assert!(!hung(1_000_000, 0, 10_000), "idle");
        assert!(!hung(100_000 + 10_000 + grace, 100_000, 10_000));
        assert!(hung(100_000 + 10_000 + grace + 1, 100_000, 10_000));
    }

    #[test]
    fn status_line_counts() {
        let s = AgentState::new();
        let (a, b) = (s.add("a"), s.add("b"));
        assert!(!s.all_tried());
        a.tried(true);
        a.set_vms(210);
        b.tried(false);
        assert!(s.all_tried());
        let snap = Snapshot {
            stats: Default::default(),
            depth: 3,
            disk_bytes: 4096,
            acked: 0,
            stored: 3,
        };
        let line = s.status_line(&snap);
        assert!(line.starts_with("vCenters connected 1/2, VMs 210, last window stored none yet, shipped none yet, buffer 3 records (4 KiB)"), "{line}");
        s.window_stored(5, 1_700_000_100_000);
        assert!(s.status_line(&snap).contains("shipped none yet"));
        let acked = Snapshot { acked: 5, ..snap };
        assert!(
            s.status_line(&acked)
                .contains("shipped 2023-11-14T22:15:00"),
            "{}",
            s.status_line(&acked)
        );
        assert!(
            s.status_line(&snap).contains("2023-11-14T22:15:00"),
            "{}",
            s.status_line(&snap)
        );
        s.remove("b");
        assert!(s.status_line(&snap).starts_with("vCenters connected 1/1"));
    }
}
