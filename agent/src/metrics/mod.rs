//! Self-monitoring over plain HTTP on a local address (`[agent] metrics_listen`, off by
//! default): `GET /metrics` in Prometheus' text format, `GET /healthz` (200 `ok`, or 503
//! with the reason), and `GET /status` (JSON: what `vscout status` prints).

use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use tokio::time::Instant;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::buffer::{BufferHandle, Snapshot};
use crate::ship::ShipStats;
use crate::status::AgentState;

mod prometheus;

/// Below this much free space on the buffer's filesystem the agent reports unhealthy.
pub const LOW_FREE_BYTES: u64 = 64 << 20;

/// The agent as a whole at one moment: what the health record, `/status` and `/metrics`
/// all report, read once per use so the three never disagree on where a figure comes
/// from.
#[derive(Debug, Clone)]
pub struct AgentCounters {
    pub uptime: std::time::Duration,
    pub buffer: Snapshot,
    /// Free bytes on the buffer's filesystem, if they can be read.
    pub buffer_fs_free_bytes: Option<u64>,
    pub shipped: u64,
    pub ship_duplicates: u64,
    pub ship_retries: u64,
    pub dead_letters: u64,
    pub ship_last_error: Option<String>,
    /// Error events logged, and the last one.
    pub errors: u64,
    pub last_error: Option<String>,
    pub usage: Option<crate::telemetry::ResourceUsage>,
}

/// Everything the endpoints read.
#[derive(Debug)]
pub struct Sources {
    pub agent_id: String,
    pub state: Arc<AgentState>,
    pub buffer: BufferHandle,
    pub buffer_max_bytes: u64,
    pub ship: Arc<ShipStats>,
    pub state_dir: PathBuf,
    pub started: Instant,
}

/// Free bytes on the filesystem holding `dir`: sysinfo's disk with the longest matching
/// mount point, or statvfs(2) when sysinfo sees no disks (under the unit's
/// `ProcSubset=pid`, /proc/mounts is hidden).
pub fn free_bytes(dir: &Path) -> Option<u64> {
    let dir = dir.canonicalize().ok()?;
    let from_sysinfo = sysinfo::Disks::new_with_refreshed_list()
        .ok()
        .and_then(|disks| {
            disks
                .iter()
                .filter(|d| dir.starts_with(d.mount_point()))
                .max_by_key(|d| d.mount_point().as_os_str().len())
                .map(sysinfo::Disk::available_space)
        });
    from_sysinfo.or_else(|| {
        rustix::fs::statvfs(&dir)
            .ok()
            .map(|s| s.f_bavail.saturating_mul(s.f_frsize))
    })
}

/// One vCenter in `/status`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VcenterStatus {
    pub name: String,
    pub connected: bool,
    pub vms: u64,
    pub inventory_rounds: u64,
    pub perf_polls: u64,
    pub last_inventory_ok_ms: i64,
    pub last_perf_ok_ms: i64,
    pub last_error: Option<String>,
}

/// `/status`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Status {
    pub agent_id: String,
    pub version: String,
    pub uptime_secs: u64,
    pub healthy: bool,
    pub unhealthy_reason: Option<String>,
    pub vcenters: Vec<VcenterStatus>,
    pub last_window_stored_ms: i64,
    pub last_window_shipped_ms: i64,
    pub buffer_depth: u64,
    pub buffer_bytes: u64,
    pub buffer_max_bytes: u64,
    pub buffer_evicted: u64,
    pub buffer_fs_free_bytes: Option<u64>,
    pub shipped: u64,
    pub ship_retries: u64,
    pub dead_letters: u64,
    pub ship_last_error: Option<String>,
    pub errors: u64,
    pub last_error: Option<String>,
}

impl Sources {
    /// The agent's counters now. Reads the filesystem's free space: call off the async
    /// threads where that may block for long.
    pub fn counters(&self) -> AgentCounters {
        AgentCounters {
            uptime: self.started.elapsed(),
            buffer: self.buffer.snapshot(),
            buffer_fs_free_bytes: free_bytes(&self.state_dir),
            shipped: self.ship.shipped.load(Relaxed),
            ship_duplicates: self.ship.duplicates.load(Relaxed),
            ship_retries: self.ship.retries.load(Relaxed),
            dead_letters: self.ship.dead_letters.load(Relaxed),
            ship_last_error: self
                .ship
                .last_error
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
            errors: crate::telemetry::error_count(),
            last_error: crate::telemetry::last_error(),
            usage: crate::telemetry::resource_usage(),
        }
    }

    /// Why the agent is unhealthy, if it is.
    pub fn unhealthy(&self, free: Option<u64>) -> Option<String> {
        let hung = self.state.hung(crate::telemetry::unix_now_ms());
        if !hung.is_empty() {
            return Some(format!(
                "vCenter round hung past its deadline: {}",
                hung.join(", ")
            ));
        }
        let list = self.state.list();
        if self.state.all_tried() && !list.is_empty() && !list.iter().any(|v| v.is_connected()) {
            return Some("no vCenter is connected".into());
        }
        if let Some(f) = free.filter(|f| *f < LOW_FREE_BYTES) {
            return Some(format!("the buffer's filesystem has {} MiB free", f >> 20));
        }
        None
    }

    pub fn status(&self) -> Status {
        let c = self.counters();
        let snap = c.buffer;
        let free = c.buffer_fs_free_bytes;
        let reason = self.unhealthy(free);
        Status {
            agent_id: self.agent_id.clone(),
            version: crate::VERSION.into(),
            uptime_secs: c.uptime.as_secs(),
            healthy: reason.is_none(),
            unhealthy_reason: reason,
            vcenters: self
                .state
                .list()
                .iter()
                .map(|v| {
                    let c = &v.counters;
                    VcenterStatus {
                        name: v.name.clone(),
                        connected: v.is_connected(),
                        vms: v.vms(),
                        inventory_rounds: c.inventory_rounds.load(Relaxed),
                        perf_polls: c.perf_polls.load(Relaxed),
                        last_inventory_ok_ms: c.last_inventory_ok_ms.load(Relaxed),
                        last_perf_ok_ms: c.last_perf_ok_ms.load(Relaxed),
                        last_error: c
                            .last_error
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .clone(),
                    }
                })
                .collect(),
            last_window_stored_ms: self.state.last_window_ms(),
            last_window_shipped_ms: self.state.last_window_shipped_ms(snap.acked),
            buffer_depth: snap.depth,
            buffer_bytes: snap.disk_bytes,
            buffer_max_bytes: self.buffer_max_bytes,
            buffer_evicted: snap.stats.evicted_records,
            buffer_fs_free_bytes: free,
            shipped: c.shipped,
            ship_retries: c.ship_retries,
            dead_letters: c.dead_letters,
            ship_last_error: c.ship_last_error,
            errors: c.errors,
            last_error: c.last_error,
        }
    }

    /// The Prometheus text exposition.
    pub fn prometheus(&self) -> String {
        prometheus::render(self)
    }
}

/// `vscout status`'s text.
pub fn render(s: &Status) -> String {
    let when = |ms: i64| {
        if ms == 0 {
            "never".to_owned()
        } else {
            crate::vsphere::datetime::format_unix_millis(ms)
        }
    };
    let mut out = format!(
        "agent {} (vscout {}), up {} s: {}\n\n",
        s.agent_id,
        s.version,
        s.uptime_secs,
        match &s.unhealthy_reason {
            None => "HEALTHY".to_owned(),
            Some(r) => format!("UNHEALTHY: {r}"),
        }
    );
    let w = s
        .vcenters
        .iter()
        .map(|v| v.name.len())
        .max()
        .unwrap_or(7)
        .max(7);
    let _ = writeln!(
        out,
        "{:<w$}  {:<9}  {:>6}  {:<32}  {:<32}  LAST ERROR",
        "VCENTER", "CONNECTED", "VMS", "INVENTORY (LAST OK)", "PERF (LAST OK)"
    );
    for v in &s.vcenters {
        let _ = writeln!(
            out,
            "{:<w$}  {:<9}  {:>6}  {:<32}  {:<32}  {}",
            v.name,
            if v.connected { "yes" } else { "no" },
            v.vms,
            format!("{} ({})", v.inventory_rounds, when(v.last_inventory_ok_ms)),
            format!("{} ({})", v.perf_polls, when(v.last_perf_ok_ms)),
            v.last_error.as_deref().unwrap_or("-")
        );
    }
    let _ = writeln!(
        out,
        "\nlast window stored: {}, shipped: {}",
        when(s.last_window_stored_ms),
        when(s.last_window_shipped_ms)
    );
    let _ = writeln!(
        out,
        "buffer: {} records waiting, {} KiB of {} KiB, {} evicted, {}",
        s.buffer_depth,
        s.buffer_bytes / 1024,
        s.buffer_max_bytes / 1024,
        s.buffer_evicted,
        s.buffer_fs_free_bytes
            .map_or("free space unknown".to_owned(), |f| format!(
                "{} MiB free on its filesystem",
                f >> 20
            ))
    );
    let _ = writeln!(
        out,
        "shipping: {} acknowledged, {} retries, {} dead letters, last error: {}",
        s.shipped,
        s.ship_retries,
        s.dead_letters,
        s.ship_last_error.as_deref().unwrap_or("-")
    );
    let _ = writeln!(
        out,
        "errors logged: {} (last: {})",
        s.errors,
        s.last_error.as_deref().unwrap_or("-")
    );
    out
}

async fn metrics(State(s): State<Arc<Sources>>) -> impl IntoResponse {
    let body = tokio::task::spawn_blocking(move || s.prometheus())
        .await
        .unwrap_or_default();
    ([("content-type", "text/plain; version=0.0.4")], body)
}

async fn healthz(State(s): State<Arc<Sources>>) -> impl IntoResponse {
    let reason = tokio::task::spawn_blocking(move || {
        let free = free_bytes(&s.state_dir);
        s.unhealthy(free)
    })
    .await
    .unwrap_or_else(|e| Some(e.to_string()));
    match reason {
        None => (StatusCode::OK, "ok\n".to_owned()),
        Some(r) => (StatusCode::SERVICE_UNAVAILABLE, format!("unhealthy: {r}\n")),
    }
}

async fn status(State(s): State<Arc<Sources>>) -> impl IntoResponse {
    let st = tokio::task::spawn_blocking(move || s.status()).await;
    match st {
        Ok(st) => Json(st).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

/// Serves the endpoints on `listener` until `stop` is cancelled.
pub async fn serve(
    listener: tokio::net::TcpListener,
    sources: Arc<Sources>,
    stop: CancellationToken,
) {
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/status", get(status))
        .with_state(sources);
    let shutdown = async move {
        stop.cancelled().await;
    };
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
    {
        tracing::warn!(error = %e, "metrics endpoint stopped");
    }
}

#[cfg(test)]
mod tests {
    use super::prometheus::escape;
    use super::*;

    #[test]
    fn unhealthy_says_why() {
        let dir = tempfile::tempdir().expect("tempdir");
        let fs: Arc<dyn crate::buffer::fs::Fs> = Arc::new(crate::buffer::fs::StdFs::default());
        let buffer = crate::buffer::Buffer::open(
            fs,
            crate::buffer::BufferOptions {
                dir: dir.path().join("buffer"),
                max_bytes: 1 << 20,
                segment_bytes: 1 << 16,
                fsync_always: false,
            },
        )
        .expect("buffer");
        let s = Sources {
            agent_id: "a".into(),
            state: Arc::new(AgentState::new()),
            buffer: BufferHandle::new(buffer),
            buffer_max_bytes: 1 << 20,
            ship: Arc::default(),
            state_dir: dir.path().to_owned(),
            started: Instant::now(),
        };
        let vc = s.state.add("vc1");
        assert_eq!(s.unhealthy(Some(1 << 30)), None, "not tried yet");
        vc.tried(false);
        assert_eq!(
            s.unhealthy(Some(1 << 30)).as_deref(),
            Some("no vCenter is connected")
        );
        vc.set_connected(true);
        assert_eq!(s.unhealthy(Some(1 << 30)), None);
        assert!(s
            .unhealthy(Some(1 << 20))
            .is_some_and(|r| r.contains("1 MiB free")));
        vc.begin(std::time::Duration::ZERO);
        // A round that began at the epoch is long past its deadline.
        assert!(s.state.hung(i64::MAX / 2).contains(&"vc1".to_owned()));
        let st = s.status();
        assert_eq!(st.vcenters.len(), 1);
        assert!(render(&st).contains("vc1"));
        assert!(s
            .prometheus()
            .contains("vscout_vcenter_connected{vcenter=\"vc1\"} 1"));
    }

    #[test]
    fn labels_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
