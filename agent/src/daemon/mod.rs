//! `vscout run`: the long-running agent, wired here; `vcenter.rs` is one vCenter's task
//! (session, inventory rounds) and the set of them, `perf.rs` its performance rounds,
//! `supervise.rs` the watchdog, the health records and the metrics endpoint.
//!
//! For each vCenter a task keeps one session, takes an inventory every `inventory_interval` (which also tells which VMs and hosts to poll),
//! polls real-time performance counters every `perf.interval`, keeps the session alive in
//! between, and reconnects with capped exponential backoff when vCenter is unreachable.
//! Inventories, closed windows, daily summaries and health records go to the on-disk
//! buffer through a `Sink`; the shipper sends what is stored to the collector.
//!
//! Shutdown, when `shutdown` resolves, is one cancellation tree: the `collect` token (a
//! child of `ship`, with a child per vCenter) stops collection (sessions are logged out),
//! the buffer is synced so nothing appended is left unstored, then `ship` gives the
//! shipper what is left of `shutdown_timeout` (at most 5 s) to finish records in flight.
//! Anything not acknowledged stays in the buffer for the next start.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::buffer::{self, BufferError};
use crate::config::AgentConfig;
use crate::metrics::Sources;
use crate::notify::Notifier;
use crate::ship::{ShipError, ShipStats, Sink};
use crate::status::AgentState;

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("cannot read or create the agent identity in {dir}: {reason}")]
    Identity { dir: String, reason: String },
    #[error(transparent)]
    Buffer(#[from] BufferError),
    #[error(transparent)]
    Ship(#[from] ShipError),
}

pub use vscout_service::shutdown_signal;

mod lifecycle;
mod perf;
mod supervise;
mod vcenter;

/// Runs until `shutdown` resolves, then drains and returns.
pub async fn run(
    config: AgentConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), DaemonError> {
    let (_keep, reloads) = tokio::sync::mpsc::channel(1);
    run_with_reload(config, shutdown, reloads).await
}

/// As `run`, and applies each configuration received on `reloads` (SIGHUP): vCenters
/// added, removed or changed are started, stopped (logged out) or reconnected without a
/// restart; other settings take effect at the next start, and the log says so.
pub async fn run_with_reload(
    config: AgentConfig,
    shutdown: impl Future<Output = ()>,
    mut reloads: tokio::sync::mpsc::Receiver<AgentConfig>,
) -> Result<(), DaemonError> {
    let started = Instant::now();
    let dir = &config.state_dir;
    let agent_id = crate::identity::load_or_create(dir).map_err(|e| DaemonError::Identity {
        dir: dir.display().to_string(),
        reason: e.to_string(),
    })?;
    let buffer = lifecycle::open_buffer(&config)?;
    info!(agent_id, version = crate::VERSION, "agent starting");
    let seeds = perf::load_seeds(&buffer, dir, &config.vcenters).await;
    let ship = CancellationToken::new();
    let collect = ship.child_token();
    let interval = config.buffer.commit_interval;
    let commit = tokio::spawn(buffer::group_commit(buffer.clone(), interval, ship.clone()));
    let ship_stats = Arc::new(ShipStats::default());
    let shipper = lifecycle::start_shipper(&config, &agent_id, &buffer, &ship_stats, &ship)?;
    let sink = Sink::new(buffer.clone(), collect.clone());
    let config = Arc::new(config);
    let state = Arc::new(AgentState::new());
    let sources = Arc::new(Sources {
        agent_id,
        state: state.clone(),
        buffer: buffer.clone(),
        buffer_max_bytes: config.buffer.max_bytes,
        ship: ship_stats,
        state_dir: config.state_dir.clone(),
        started,
    });
    let notifier = Notifier::from_env();
    let mut tasks = JoinSet::new();
    let mut vcenters = vcenter::VcenterTasks::new(
        config.clone(),
        sink.clone(),
        state.clone(),
        collect.clone(),
        seeds,
    );
    for vc in config.vcenters.clone() {
        vcenters.start(&mut tasks, vc);
    }
    let supervisor = supervise::supervise(notifier.clone(), state, buffer.clone(), collect.clone());
    tasks.spawn(supervisor);
    if let Some(addr) = config.metrics_listen {
        supervise::serve_metrics(&mut tasks, addr, sources.clone(), collect.clone()).await;
    }
    tasks.spawn(supervise::health_loop(
        config.health_interval,
        sources,
        sink,
        collect.clone(),
    ));
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            Some(new) = reloads.recv() => vcenters.reload(&mut tasks, new),
        }
    }
    notifier.stopping();
    info!("shutting down: stopping polls and logging out");
    collect.cancel();
    lifecycle::drain(
        tasks,
        config.shutdown_timeout,
        buffer,
        ship,
        shipper,
        commit,
    )
    .await;
    Ok(())
}

async fn sleep_or_stop(d: Duration, stop: &CancellationToken) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => false,
        _ = stop.cancelled() => true,
    }
}
