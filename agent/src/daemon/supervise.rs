//! The supervisor (systemd readiness, status and watchdog) and the health records.

use super::*;

/// Tells systemd the agent is ready once every vCenter's first login was tried (or after
/// a minute), then every few seconds updates `STATUS=` and feeds the watchdog — unless a
/// vCenter round is hung past its deadline, in which case systemd's watchdog restarts
/// the agent.
pub(super) async fn supervise(
    notifier: Notifier,
    state: Arc<AgentState>,
    buffer: BufferHandle,
    mut stop: watch::Receiver<bool>,
) {
    let waited = Instant::now();
    while !state.all_tried() && waited.elapsed() < Duration::from_secs(60) {
        if sleep_or_stop(Duration::from_millis(100), &mut stop).await {
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
        if sleep_or_stop(tick, &mut stop).await {
            return;
        }
    }
}

/// Stores a health record every `interval`.
#[allow(clippy::too_many_arguments)]
pub(super) async fn health_loop(
    interval: Duration,
    max_bytes: u64,
    state_dir: std::path::PathBuf,
    sink: Sink,
    buffer: BufferHandle,
    ship: Arc<ShipStats>,
    started: Instant,
    mut stop: watch::Receiver<bool>,
) {
    use std::sync::atomic::Ordering::Relaxed;
    loop {
        if sleep_or_stop(interval, &mut stop).await {
            return;
        }
        let snap = buffer.snapshot();
        let usage = crate::telemetry::resource_usage();
        let dir = state_dir.clone();
        let free = tokio::task::spawn_blocking(move || crate::metrics::free_bytes(&dir))
            .await
            .ok()
            .flatten();
        // The disk would fill before the buffer reaches its cap: say so while there is time.
        if let Some(f) = free {
            let room = max_bytes.saturating_sub(snap.disk_bytes);
            if f < room {
                warn!(free_bytes = f, cap_room_bytes = room, dir = %state_dir.display(), "the buffer's filesystem will fill before the buffer reaches its cap; free space or lower buffer.max_bytes");
            }
        }
        let health = AgentHealth {
            schema_version: crate::ship::batch::HEALTH_SCHEMA_VERSION,
            at_ms: crate::telemetry::unix_now_ms(),
            version: crate::VERSION.into(),
            uptime_secs: started.elapsed().as_secs(),
            buffer_depth: snap.depth,
            buffer_bytes: snap.disk_bytes,
            evicted_records: snap.stats.evicted_records,
            dead_letters: ship.dead_letters.load(Relaxed),
            shipped_records: ship.shipped.load(Relaxed),
            ship_retries: ship.retries.load(Relaxed),
            cpu_ms: usage.map(|u| u.cpu_ms),
            peak_rss_kib: usage.map(|u| u.peak_rss_kib),
            errors: crate::telemetry::error_count(),
            last_error: crate::telemetry::last_error(),
            buffer_fs_free_bytes: free,
        };
        if let Err(e) = sink.store(vec![Record::Health(health)]).await {
            warn!(error = %e, "cannot store a health record");
        }
    }
}
