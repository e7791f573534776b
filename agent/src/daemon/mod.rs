//! `vscout run`: the long-running agent, wired here; `vcenter.rs` is one vCenter's task
//! (session, inventory rounds), `perf.rs` its performance rounds, `supervise.rs` the
//! watchdog and health records.
//!
//! For each vCenter a task keeps one session, takes an inventory every `inventory_interval` (which also tells which VMs and hosts to poll),
//! polls real-time performance counters every `perf.interval`, keeps the session alive in
//! between, and reconnects with capped exponential backoff when vCenter is unreachable.
//! Inventories, closed windows, daily summaries and health records go to the on-disk
//! buffer through a `Sink`; the shipper sends what is stored to the collector.
//!
//! Shutdown, when `shutdown` resolves: collection stops (sessions are logged out), the
//! buffer is synced so nothing appended is left unstored, then the shipper gets what is
//! left of `shutdown_timeout` (at most 5 s) to finish records in flight. Anything not
//! acknowledged stays in the buffer for the next start.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::path::Path;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use tracing::{debug, error, info, warn};

use crate::buffer::{self, Buffer, BufferError, BufferHandle, BufferOptions};
use crate::config::{AgentConfig, VcenterConfig};
use crate::inventory::{self, Inventory, SCHEMA_VERSION};
use crate::notify::Notifier;
use crate::perf::{vcenter_now_ms, watermark, Aggregator, Poller, Rollup, REALTIME_SECS};
use crate::ship::{AgentHealth, Batcher, Record, ShipError, ShipStats, Shipper, Sink};
use crate::status::{AgentState, VcenterState};
use crate::vsphere::{Client, MoRef, VsphereError};

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

mod perf;
mod supervise;
mod vcenter;

use perf::stored_past_watermarks;
use supervise::health_loop;
use vcenter::vcenter_loop;

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
    let agent_id =
        crate::identity::load_or_create(&config.state_dir).map_err(|e| DaemonError::Identity {
            dir: config.state_dir.display().to_string(),
            reason: e.to_string(),
        })?;
    let opts = BufferOptions {
        dir: config.state_dir.join("buffer"),
        max_bytes: config.buffer.max_bytes,
        segment_bytes: config.buffer.segment_bytes,
        fsync_always: config.buffer.fsync_always,
    };
    let fs: Arc<dyn buffer::fs::Fs> = Arc::new(buffer::fs::StdFs::default());
    let buffer = BufferHandle::new(Buffer::open(fs, opts)?);
    info!(agent_id, version = crate::VERSION, "agent starting");

    let mut seeds = stored_past_watermarks(&buffer, &config.state_dir, &config.vcenters).await;
    for vc in &config.vcenters {
        let mut known = watermark::read_seeds(&config.state_dir, &vc.name);
        if known.is_empty() && !seeds.contains_key(&vc.name) {
            continue;
        }
        let list = seeds.entry(vc.name.clone()).or_default();
        list.append(&mut known);
        if let Err(e) = watermark::write_seeds(&config.state_dir, &vc.name, list) {
            warn!(vcenter = %vc.name, error = %e, "cannot keep the series stored past the watermark; a second crash may roll their windows up again");
        }
    }
    let (stop_tx, stop_rx) = watch::channel(false);
    let (ship_stop_tx, ship_stop_rx) = watch::channel(false);
    let commit = tokio::spawn(buffer::group_commit(
        buffer.clone(),
        config.buffer.commit_interval,
        ship_stop_rx.clone(),
    ));
    let ship_stats = Arc::new(ShipStats::default());
    let shipper = match config.collector.clone() {
        Some(c) => {
            let s = Shipper::new(
                c,
                agent_id.clone(),
                buffer.clone(),
                &config.state_dir,
                ship_stats.clone(),
            )?;
            let drain = config.shutdown_timeout.min(Duration::from_secs(5));
            Some(tokio::spawn(s.run(ship_stop_rx.clone(), drain)))
        }
        None => {
            warn!("no [collector] configured: records are kept in the buffer (up to its cap) and not shipped");
            None
        }
    };
    let sink = Sink::new(buffer.clone(), stop_rx.clone());
    let config = Arc::new(config);
    let state = Arc::new(AgentState::new());
    let notifier = Notifier::from_env();
    let mut tasks = tokio::task::JoinSet::new();
    let mut running: BTreeMap<String, (VcenterConfig, watch::Sender<bool>)> = BTreeMap::new();
    let mut spawn_vc = |tasks: &mut tokio::task::JoinSet<()>, vc: VcenterConfig| {
        let (tx, rx) = watch::channel(false);
        let (cfg, sink, agent) = (config.clone(), sink.clone(), state.clone());
        let me = state.add(&vc.name);
        let seeds = seeds.remove(&vc.name).unwrap_or_default();
        tasks.spawn(async move { vcenter_loop(cfg, vc, seeds, sink, agent, me, rx).await });
        tx
    };
    for vc in config.vcenters.clone() {
        let tx = spawn_vc(&mut tasks, vc.clone());
        running.insert(vc.name.clone(), (vc, tx));
    }
    tasks.spawn(supervise::supervise(
        notifier.clone(),
        state.clone(),
        buffer.clone(),
        stop_rx.clone(),
    ));
    if let Some(addr) = config.metrics_listen {
        match tokio::net::TcpListener::bind(addr).await {
            Ok(listener) => {
                if !addr.ip().is_loopback() {
                    warn!(%addr, "metrics endpoint on a non-loopback address: it is plain HTTP without authentication");
                }
                info!(%addr, "serving /metrics, /healthz and /status");
                let sources = Arc::new(crate::metrics::Sources {
                    agent_id: agent_id.clone(),
                    state: state.clone(),
                    buffer: buffer.clone(),
                    buffer_max_bytes: config.buffer.max_bytes,
                    ship: ship_stats.clone(),
                    state_dir: config.state_dir.clone(),
                    started,
                });
                tasks.spawn(crate::metrics::serve(listener, sources, stop_rx.clone()));
            }
            Err(e) => {
                error!(%addr, error = %e, "cannot listen for the metrics endpoint; going on without it")
            }
        }
    }
    tasks.spawn(health_loop(
        config.health_interval,
        config.buffer.max_bytes,
        config.state_dir.clone(),
        sink.clone(),
        buffer.clone(),
        ship_stats,
        started,
        stop_rx.clone(),
    ));
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            Some(new) = reloads.recv() => {
                if !same_but_vcenters(&config, &new) {
                    warn!("configuration reloaded: only [[vcenter]] changes take effect now; the other settings at the next start");
                }
                let wanted: BTreeMap<String, VcenterConfig> =
                    new.vcenters.into_iter().map(|v| (v.name.clone(), v)).collect();
                running.retain(|name, (old, tx)| {
                    let keep = wanted.get(name).is_some_and(|w| w == old);
                    if !keep {
                        let _ = tx.send(true);
                        state.remove(name);
                        info!(vcenter = %name, changed = wanted.contains_key(name), "vCenter removed or changed in the configuration; stopping its collection");
                    }
                    keep
                });
                for (name, vc) in wanted {
                    if let std::collections::btree_map::Entry::Vacant(slot) = running.entry(name) {
                        info!(vcenter = %slot.key(), url = %vc.url, "vCenter added to the configuration; starting its collection");
                        let tx = spawn_vc(&mut tasks, vc.clone());
                        slot.insert((vc, tx));
                    }
                }
            }
        }
    }
    notifier.stopping();
    for (_, tx) in running.values() {
        let _ = tx.send(true);
    }
    info!("shutting down: stopping polls and logging out");
    let _ = stop_tx.send(true);
    let deadline = tokio::time::Instant::now() + config.shutdown_timeout;
    let drained = tokio::time::timeout_at(deadline, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        warn!(
            timeout_secs = config.shutdown_timeout.as_secs(),
            "shutdown deadline passed; abandoning remaining work"
        );
        tasks.abort_all();
    }
    if let Err(e) = buffer.sync().await {
        error!(error = %e, "final buffer sync failed");
    }
    let _ = ship_stop_tx.send(true);
    let _ = tokio::time::timeout_at(deadline, async {
        if let Some(s) = shipper {
            let _ = s.await;
        }
        let _ = commit.await;
    })
    .await;
    let snap = buffer.snapshot();
    info!(
        depth = snap.depth,
        acked = snap.acked,
        stored = snap.stored,
        "stopped"
    );
    Ok(())
}

/// Whether two configurations differ in their vCenters only.
fn same_but_vcenters(a: &AgentConfig, b: &AgentConfig) -> bool {
    let strip = |c: &AgentConfig| AgentConfig {
        vcenters: Vec::new(),
        ..c.clone()
    };
    strip(a) == strip(b)
}

async fn sleep_or_stop(d: Duration, stop: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => false,
        _ = stop.wait_for(|s| *s) => true,
    }
}
