//! The supervisor (systemd readiness, status and watchdog) and the health records.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::buffer::BufferHandle;
use crate::metrics::{AgentCounters, Sources};
use crate::notify::Notifier;
use crate::ship::{AgentHealth, Record, Sink};
use crate::status::AgentState;

use super::sleep_or_stop;

/// Tells systemd the agent is ready once every vCenter's first login was tried (or after
/// a minute), then every few seconds updates `STATUS=` and feeds the watchdog — unless a
/// vCenter round is hung past its deadline, in which case systemd's watchdog restarts
/// the agent.
pub(super) async fn supervise(
    notifier: Notifier,
    state: Arc<AgentState>,
    buffer: BufferHandle,
    stop: CancellationToken,
) {
    let waited = Instant::now();
    while !state.all_tried() && waited.elapsed() < Duration::from_secs(60) {
        if sleep_or_stop(Duration::from_millis(100), &stop).await {
            return;
        }
    }
    notifier.ready();
    info!("agent ready");
    let tick = notifier
        .watchdog_timeout()
        .map_or(Duration::from_secs(10), |t| {
            (t / 3).min(Duration::from_secs(10))
        });
    let mut reported_hung = false;
    loop {
        notifier.status(&state.status_line(&buffer.snapshot()));
        let hung = state.hung(crate::telemetry::unix_now_ms());
        if hung.is_empty() {
            notifier.watchdog();
            reported_hung = false;
        } else if !reported_hung {
            error!(vcenters = ?hung, "a vCenter round is hung past its deadline; no longer feeding the watchdog");
            reported_hung = true;
        }
        if sleep_or_stop(tick, &stop).await {
            return;
        }
    }
}

/// Stores a health record every `interval`, from the same counters as `/status` and
/// `/metrics`.
pub(super) async fn health_loop(
    interval: Duration,
    sources: Arc<Sources>,
    sink: Sink,
    stop: CancellationToken,
) {
    loop {
        if sleep_or_stop(interval, &stop).await {
            return;
        }
        // The free-space read may block on a slow filesystem: off the async threads.
        let s = sources.clone();
        let Ok(c) = tokio::task::spawn_blocking(move || s.counters()).await else {
            continue;
        };
        // The disk would fill before the buffer reaches its cap: say so while there is time.
        if let Some(f) = c.buffer_fs_free_bytes {
            let room = sources.buffer_max_bytes.saturating_sub(c.buffer.disk_bytes);
            if f < room {
                warn!(free_bytes = f, cap_room_bytes = room, dir = %sources.state_dir.display(), "the buffer's filesystem will fill before the buffer reaches its cap; free space or lower buffer.max_bytes");
            }
        }
        if let Err(e) = sink.store(vec![Record::Health(health_record(c))]).await {
            warn!(error = %e, "cannot store a health record");
        }
    }
}

fn health_record(c: AgentCounters) -> AgentHealth {
    AgentHealth {
        schema_version: crate::ship::batch::HEALTH_SCHEMA_VERSION,
        at_ms: crate::telemetry::unix_now_ms(),
        version: crate::VERSION.into(),
        uptime_secs: c.uptime.as_secs(),
        buffer_depth: c.buffer.depth,
        buffer_bytes: c.buffer.disk_bytes,
        evicted_records: c.buffer.stats.evicted_records,
        dead_letters: c.dead_letters,
        shipped_records: c.shipped,
        ship_retries: c.ship_retries,
        cpu_ms: c.usage.map(|u| u.cpu_ms),
        peak_rss_kib: c.usage.map(|u| u.peak_rss_kib),
        errors: c.errors,
        last_error: c.last_error,
        buffer_fs_free_bytes: c.buffer_fs_free_bytes,
    }
}

/// Serves `/metrics`, `/healthz` and `/status` on `addr` until `stop`; without a
/// listener the agent goes on without them.
pub(super) async fn serve_metrics(
    tasks: &mut JoinSet<()>,
    addr: std::net::SocketAddr,
    sources: Arc<Sources>,
    stop: CancellationToken,
) {
    match tokio::net::TcpListener::bind(addr).await {
        Ok(listener) => {
            if !addr.ip().is_loopback() {
                warn!(%addr, "metrics endpoint on a non-loopback address: it is plain HTTP without authentication");
            }
            info!(%addr, "serving /metrics, /healthz and /status");
            tasks.spawn(crate::metrics::serve(listener, sources, stop));
        }
        Err(e) => {
            error!(%addr, error = %e, "cannot listen for the metrics endpoint; going on without it")
        }
    }
}
