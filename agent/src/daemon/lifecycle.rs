//! The daemon's start-up pieces (the buffer, the shipper) and its bounded drain.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::buffer::{self, Buffer, BufferError, BufferHandle, BufferOptions};
use crate::config::AgentConfig;
use crate::ship::{ShipError, ShipStats, Shipper};

pub(super) fn open_buffer(config: &AgentConfig) -> Result<BufferHandle, BufferError> {
    let opts = BufferOptions {
        dir: config.state_dir.join("buffer"),
        max_bytes: config.buffer.max_bytes,
        segment_bytes: config.buffer.segment_bytes,
        fsync_always: config.buffer.fsync_always,
    };
    let fs: Arc<dyn buffer::fs::Fs> = Arc::new(buffer::fs::StdFs::default());
    Ok(BufferHandle::new(Buffer::open(fs, opts)?))
}

/// Starts the shipper, if a collector is configured; it runs until `ship` is cancelled.
pub(super) fn start_shipper(
    config: &AgentConfig,
    agent_id: &str,
    buffer: &BufferHandle,
    stats: &Arc<ShipStats>,
    ship: &CancellationToken,
) -> Result<Option<JoinHandle<()>>, ShipError> {
    let Some(c) = config.collector.clone() else {
        warn!("no [collector] configured: records are kept in the buffer (up to its cap) and not shipped");
        return Ok(None);
    };
    let s = Shipper::new(
        c,
        agent_id.to_owned(),
        buffer.clone(),
        &config.state_dir,
        stats.clone(),
    )?;
    let drain = config.shutdown_timeout.min(Duration::from_secs(5));
    Ok(Some(tokio::spawn(s.run(ship.clone(), drain))))
}

/// After collection was cancelled: waits for its tasks (sessions log out), syncs the
/// buffer so nothing appended is left unstored, then cancels `ship` and lets the shipper
/// and the group commit finish, all within `timeout`.
pub(super) async fn drain(
    mut tasks: JoinSet<()>,
    timeout: Duration,
    buffer: BufferHandle,
    ship: CancellationToken,
    shipper: Option<JoinHandle<()>>,
    commit: JoinHandle<()>,
) {
    let deadline = tokio::time::Instant::now() + timeout;
    let joined = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout_at(deadline, joined).await.is_err() {
        let timeout_secs = timeout.as_secs();
        warn!(
            timeout_secs,
            "shutdown deadline passed; abandoning remaining work"
        );
        tasks.abort_all();
    }
    if let Err(e) = buffer.sync().await {
        error!(error = %e, "final buffer sync failed");
    }
    ship.cancel();
    let finish = async {
        if let Some(s) = shipper {
            let _ = s.await;
        }
        let _ = commit.await;
    };
    let _ = tokio::time::timeout_at(deadline, finish).await;
    let snap = buffer.snapshot();
    info!(
        depth = snap.depth,
        acked = snap.acked,
        stored = snap.stored,
        "stopped"
    );
}
