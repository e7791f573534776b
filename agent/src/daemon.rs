//! `vscout run`: the long-running agent. For each vCenter a task keeps one session, takes
//! an inventory every `inventory_interval` (which also tells which VMs and hosts to poll),
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

/// Resolves on SIGTERM or SIGINT: the shutdown trigger of `vscout run` and of the
/// collector.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// vCenter keeps one hour of real-time samples: a restarted agent looks back at most that.
const REALTIME_RETENTION_MS: i64 = 3_600_000;

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
    tasks.spawn(supervise(
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

/// Tells systemd the agent is ready once every vCenter's first login was tried (or after
/// a minute), then every few seconds updates `STATUS=` and feeds the watchdog — unless a
/// vCenter round is hung past its deadline, in which case systemd's watchdog restarts
/// the agent.
async fn supervise(
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
async fn health_loop(
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

async fn sleep_or_stop(d: Duration, stop: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => false,
        _ = stop.wait_for(|s| *s) => true,
    }
}

async fn vcenter_loop(
    cfg: Arc<AgentConfig>,
    vc: VcenterConfig,
    seeds: Vec<watermark::Seed>,
    sink: Sink,
    agent: Arc<AgentState>,
    me: Arc<VcenterState>,
    mut stop: watch::Receiver<bool>,
) {
    let mut backoff = Duration::from_secs(1);
    let client = loop {
        if *stop.borrow() {
            return;
        }
        let attempt = tokio::select! {
            r = Client::connect(&vc) => r,
            _ = stop.wait_for(|s| *s) => return,
        };
        me.tried(attempt.is_ok());
        match attempt {
            Ok(c) => break c,
            Err(e) => {
                let retry = e.is_retryable();
                error!(vcenter = %vc.name, error = %e, retryable = retry, "cannot connect to vCenter; retrying in {} s", backoff.as_secs());
                if sleep_or_stop(backoff, &mut stop).await {
                    return;
                }
                // Non-retryable errors (bad password, untrusted certificate) need an
                // operator; retry slowly so the log says so without flooding it.
                backoff = if retry {
                    (backoff * 2).min(Duration::from_secs(300))
                } else {
                    Duration::from_secs(300)
                };
            }
        }
    };
    // Until the first inventory of this run succeeds, poll what the last stored one
    // found: a vCenter that fails the first inventory still gets its performance data.
    let targets = seed_targets(&cfg.state_dir, &vc.name);
    let mut task = VcenterTask {
        cfg: cfg.clone(),
        vc: vc.clone(),
        client,
        sink,
        agent,
        me,
        round: 0,
        perf: None,
        targets,
        perf_overruns: 0,
        inventory_ok: false,
        seeds_kept: !seeds.is_empty(),
        seeds,
    };
    let mut next_inventory = Instant::now();
    let mut next_perf = Instant::now();
    let mut last_call = Instant::now();
    let mut retry = InventoryRetry::new(cfg.inventory_interval);
    loop {
        if Instant::now() >= next_inventory {
            let started = Instant::now();
            if !task.inventory_round(&mut stop).await {
                break;
            }
            last_call = Instant::now();
            next_inventory = if task.inventory_ok {
                retry.reset();
                started + cfg.inventory_interval
            } else {
                // A failed round is tried again in seconds, not at the next interval (an
                // hour by default) with no targets meanwhile.
                let wait = retry.next();
                warn!(vcenter = %vc.name, retry_in_secs = wait.as_secs(), "inventory round failed; trying again soon");
                Instant::now() + wait
            };
        }
        if cfg.perf.enabled && Instant::now() >= next_perf && !task.targets.is_empty() {
            let started = Instant::now();
            if !task.perf_round(&mut stop).await {
                break;
            }
            last_call = Instant::now();
            // Never piled up: the next run is one interval after this one started, or
            // right away if it overran (and that was logged).
            next_perf = started + cfg.perf.interval;
        }
        let keepalive_at = last_call + cfg.keepalive_interval;
        let mut wake = next_inventory.min(keepalive_at);
        if cfg.perf.enabled && !task.targets.is_empty() {
            wake = wake.min(next_perf);
        }
        if sleep_or_stop(wake.saturating_duration_since(Instant::now()), &mut stop).await {
            break;
        }
        if Instant::now() >= keepalive_at && Instant::now() < next_inventory.min(next_perf) {
            match task.client.current_time().await {
                Ok(_) => task.me.set_connected(true),
                Err(e) => {
                    task.me.set_connected(false);
                    warn!(vcenter = %vc.name, error = %e, "keepalive failed");
                }
            }
            last_call = Instant::now();
        }
    }
    match task.client.logout().await {
        Ok(()) => info!(vcenter = %vc.name, "logged out"),
        Err(e) => warn!(vcenter = %vc.name, error = %e, "logout failed"),
    }
}

/// Performance state of one vCenter: the poller (counters, marks) and open windows.
struct PerfState {
    poller: Poller,
    agg: Aggregator,
    /// End of the last window stored by an earlier run, until the first poll has used it.
    stored_until: Option<i64>,
    /// Earliest range start of real-time requests that failed and were not yet made
    /// good by a poll without failures: windows after it stay open (within their grace).
    hold_since: Option<i64>,
}

/// Everything one vCenter's task keeps between rounds.
struct VcenterTask {
    cfg: Arc<AgentConfig>,
    vc: VcenterConfig,
    client: Client,
    sink: Sink,
    /// The agent's shared state, and this task's part of it (liveness, counts).
    agent: Arc<AgentState>,
    me: Arc<VcenterState>,
    round: u64,
    perf: Option<PerfState>,
    /// What to poll, from the latest inventory.
    targets: Vec<MoRef>,
    perf_overruns: u64,
    /// Whether the last inventory round succeeded.
    inventory_ok: bool,
    /// Series stored past the watermark by an earlier run, for the aggregator.
    seeds: Vec<watermark::Seed>,
    /// Whether a seeds file is kept (until a watermark covers it).
    seeds_kept: bool,
}

impl VcenterTask {
    fn me(&self) -> &VcenterState {
        &self.me
    }

    /// One inventory round; false if the agent is stopping.
    async fn inventory_round(&mut self, stop: &mut watch::Receiver<bool>) -> bool {
        self.round += 1;
        let round = self.round;
        let vc = &self.vc;
        let started = Instant::now();
        let deadline = round_deadline(self.cfg.inventory_interval);
        self.me().begin(deadline);
        let result = tokio::select! {
            r = tokio::time::timeout(deadline, inventory::collect(&self.client)) => Some(r),
            _ = stop.wait_for(|s| *s) => None,
        };
        self.me().end();
        self.inventory_ok = matches!(result, Some(Ok(Ok(_))));
        self.me().set_connected(self.inventory_ok);
        let me = self.me.clone();
        let c = &me.counters;
        c.inventory_rounds.fetch_add(1, Relaxed);
        c.last_inventory_ms
            .store(started.elapsed().as_millis() as u64, Relaxed);
        c.logins.store(self.client.logins(), Relaxed);
        match result.map(|r| r.map_err(|_| deadline)) {
            None => return false,
            Some(Err(deadline)) => {
                c.inventory_failures.fetch_add(1, Relaxed);
                c.error(&format!(
                    "inventory round overran its deadline of {} s",
                    deadline.as_secs()
                ));
                error!(vcenter = %vc.name, round, deadline_secs = deadline.as_secs(), "inventory round overran its deadline and was abandoned");
                self.fresh_session().await;
            }
            Some(Ok(Ok(inv))) => {
                c.last_inventory_ok_ms
                    .store(crate::telemetry::unix_now_ms(), Relaxed);
                info!(
                    vcenter = %vc.name, round, vms = inv.vms.len(), hosts = inv.hosts.len(),
                    clusters = inv.clusters.len(), datastores = inv.datastores.len(),
                    warnings = inv.warnings.len(), elapsed_ms = started.elapsed().as_millis() as u64,
                    "inventory round complete"
                );
                self.me().set_vms(inv.vms.len());
                // VMs that appeared, vanished or changed power state are followed from here.
                self.targets = Poller::targets(&inv);
                if let Some(p) = self.perf.as_mut() {
                    p.poller.retain(&self.targets);
                    let ids = self.targets.iter().map(|t| t.value.clone()).collect();
                    p.agg.retain_entities(&ids);
                }
                let inv = save_latest(&self.cfg.state_dir, inv);
                if let Err(e) = self
                    .sink
                    .store(vec![Record::Inventory(Box::new(inv))])
                    .await
                {
                    error!(vcenter = %vc.name, round, error = %e, "cannot store the inventory in the buffer");
                }
            }
            Some(Ok(Err(e))) => {
                c.inventory_failures.fetch_add(1, Relaxed);
                c.error(&e);
                log_round_error(vc, round, &e)
            }
        }
        true
    }

    /// One real-time performance poll with its deadline; closed windows are summarised.
    /// False if the agent is stopping.
    async fn perf_round(&mut self, stop: &mut watch::Receiver<bool>) -> bool {
        let vc_name = self.vc.name.clone();
        if self.perf.is_none() {
            match Poller::new(&self.client, &self.cfg.perf).await {
                Ok(poller) => {
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
                    self.perf = Some(PerfState {
                        poller,
                        agg,
                        stored_until: mark.map(|w| w.closed_ms),
                        hold_since: None,
                    });
                }
                Err(e) => {
                    warn!(vcenter = %vc_name, error = %e, "cannot read the performance counter catalog; retrying next interval");
                    return true;
                }
            }
        }
        let Some(perf) = self.perf.as_mut() else {
            return true;
        };
        let deadline = self.cfg.perf.interval;
        let window_ms = i64::from(self.cfg.perf.window_secs) * 1000;
        let resume = perf.stored_until.take();
        let client = &self.client;
        let targets = &self.targets;
        let run = async {
            let end = vcenter_now_ms(client).await?;
            // After a restart, look back to the last stored window (no gap), at most as
            // far as vCenter keeps real-time samples.
            let lookback_ms = match resume {
                Some(w) => (end - w).clamp(window_ms, REALTIME_RETENTION_MS),
                None => first_lookback_ms(end, window_ms),
            };
            let report = perf
                .poller
                .poll(client, targets, end, lookback_ms, &mut perf.agg)
                .await?;
            Ok::<_, VsphereError>((end, report))
        };
        let started = Instant::now();
        let me = self.me.clone();
        me.begin(deadline);
        let result = tokio::select! {
            r = tokio::time::timeout(deadline, run) => Some(r),
            _ = stop.wait_for(|s| *s) => None,
        };
        me.end();
        me.counters.perf_polls.fetch_add(1, Relaxed);
        me.counters
            .last_perf_ms
            .store(started.elapsed().as_millis() as u64, Relaxed);
        me.counters.logins.store(self.client.logins(), Relaxed);
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
                // Connected is what the last call said, inventory or poll alike.
                me.set_connected(true);
                me.counters.samples.fetch_add(report.samples, Relaxed);
                me.counters
                    .samples_off_grid
                    .fetch_add(report.off_grid, Relaxed);
                me.counters
                    .samples_set_aside
                    .fetch_add(report.repeated, Relaxed);
                me.counters
                    .last_perf_ok_ms
                    .store(crate::telemetry::unix_now_ms(), Relaxed);
                debug!(vcenter = %vc_name, entities = report.entities, samples = report.samples, requests = report.requests, misaligned = report.misaligned_series, off_grid = report.off_grid, set_aside = report.repeated, elapsed_ms = started.elapsed().as_millis() as u64, "performance poll complete");
                me.counters
                    .samples_late
                    .fetch_add(perf.agg.take_late(), Relaxed);
                // A window is closed once vCenter's clock is one interval past its end
                // (samples are published a little late), and every request for it
                // succeeded, or its grace (one window) ran out.
                perf.hold_since = match (
                    report.failed_requests,
                    perf.hold_since,
                    report.failed_since_ms,
                ) {
                    (0, _, _) => None,
                    (_, Some(a), Some(b)) => Some(a.min(b)),
                    (_, a, b) => a.or(b),
                };
                let closed = closing_point(end, perf.hold_since, window_ms);
                // Draining and encoding 150,000 rollups is CPU work: the aggregator moves
                // to a blocking thread for it and comes back.
                let window_secs = self.cfg.perf.window_secs;
                let batch_limit = self.sink.batch_limit();
                let mut agg =
                    std::mem::replace(&mut perf.agg, Aggregator::new(&vc_name, window_secs));
                let drained = tokio::task::spawn_blocking(move || {
                    let mut windows = WindowLog::default();
                    let mut batcher = Batcher::new(batch_limit);
                    agg.drain_closed_with(closed, |r| {
                        windows.add(&r);
                        batcher.push(Record::Rollup(r));
                    });
                    agg.drain_closed_days_with(closed, |d| batcher.push(Record::Daily(d)));
                    (agg, windows, batcher.finish())
                })
                .await;
                let (agg, windows, encoded) = match drained {
                    Ok(x) => x,
                    Err(e) => {
                        error!(vcenter = %vc_name, error = %e, "rolling up closed windows failed");
                        return true;
                    }
                };
                perf.agg = agg;
                windows.log(&vc_name);
                me.counters.rollups.fetch_add(windows.rollups(), Relaxed);
                let last_window_end = windows.last_end_ms();
                let encoded = match encoded {
                    Ok(e) => e,
                    Err(e) => {
                        error!(vcenter = %vc_name, error = %e, "cannot encode closed windows");
                        return true;
                    }
                };
                let mut stored = Ok(0);
                for batch in encoded {
                    match self.sink.store_encoded(batch).await {
                        Ok(seq) => stored = Ok(seq),
                        Err(e) => {
                            stored = Err(e);
                            break;
                        }
                    }
                }
                match stored {
                    Ok(last_seq) => {
                        if let Some(w) = last_window_end {
                            self.agent.window_stored(last_seq, w);
                            let mark = watermark::Watermark {
                                closed_ms: w,
                                seq: Some(last_seq),
                            };
                            match watermark::write(&self.cfg.state_dir, &vc_name, mark) {
                                // An earlier run's seeds are of windows up to this one at
                                // most: the watermark covers them now.
                                Ok(()) if self.seeds_kept => {
                                    self.seeds_kept = false;
                                    if let Err(e) =
                                        watermark::write_seeds(&self.cfg.state_dir, &vc_name, &[])
                                    {
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
                    Err(e) => {
                        error!(vcenter = %vc_name, error = %e, "cannot store closed windows in the buffer")
                    }
                }
            }
        }
        true
    }

    /// Logs out and in again: a session's views go with it.
    async fn fresh_session(&self) {
        let _ = self.client.logout().await;
        if let Err(e) = self.client.login().await {
            warn!(vcenter = %self.vc.name, error = %e, "cannot log in again after an abandoned round");
        }
    }
}

/// Per closed window: how many series, samples and how complete; one log line each.
#[derive(Debug, Default)]
struct WindowLog {
    by_window: BTreeMap<i64, (usize, u64, u64, u32)>,
}

impl WindowLog {
    fn add(&mut self, r: &Rollup) {
        let e = self.by_window.entry(r.window_start).or_default();
        e.0 += 1;
        e.1 += u64::from(r.stats.map_or(0, |s| s.count));
        e.2 += u64::from(r.expected_samples);
        e.3 = r.window_secs;
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
                for v in (0..set.rows.len()).filter_map(|i| set.view(i)) {
                    let key = crate::perf::SeriesKey {
                        entity_type: v.entity_type.into(),
                        entity_id: v.entity_id.into(),
                        counter: v.counter.into(),
                        instance: v.instance.into(),
                    };
                    list.push((key, (v.window_start + i64::from(v.window_secs)) * 1000));
                }
            }
        }
    }
}

/// Backoff between failed inventory rounds: 5 s doubling, capped at a quarter of the
/// interval (at most 5 minutes), so a failure costs minutes, not an interval.
#[derive(Debug)]
struct InventoryRetry {
    next: Duration,
    cap: Duration,
}

impl InventoryRetry {
    const FIRST: Duration = Duration::from_secs(5);

    fn new(interval: Duration) -> Self {
        Self {
            next: Self::FIRST,
            cap: (interval / 4).clamp(Self::FIRST, Duration::from_secs(300)),
        }
    }

    fn next(&mut self) -> Duration {
        let now = self.next;
        self.next = (self.next * 2).min(self.cap);
        now
    }

    fn reset(&mut self) {
        self.next = Self::FIRST;
    }
}

/// Targets from the inventory the last run stored for `vcenter`, if any.
fn seed_targets(state_dir: &Path, vcenter: &str) -> Vec<MoRef> {
    let file = state_dir
        .join("inventory")
        .join(sanitize(vcenter))
        .join("inventory.json");
    let Ok(text) = std::fs::read(&file) else {
        return Vec::new();
    };
    match serde_json::from_slice::<Inventory>(&text) {
        Ok(doc) => {
            let targets: Vec<MoRef> = doc.vcenters.iter().flat_map(Poller::targets).collect();
            info!(vcenter, targets = targets.len(), file = %file.display(), "polling what the stored inventory found until a new inventory is taken");
            targets
        }
        Err(e) => {
            warn!(vcenter, file = %file.display(), error = %e, "cannot read the stored inventory; waiting for a new one");
            Vec::new()
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

/// How long one inventory round may take: its interval, but at least a minute (large
/// estates on slow vCenters) and at most 30 minutes (a hung round must not block the
/// next for hours).
fn round_deadline(interval: Duration) -> Duration {
    interval.clamp(Duration::from_secs(60), Duration::from_secs(1800))
}

fn log_round_error(vc: &VcenterConfig, round: u64, e: &VsphereError) {
    error!(vcenter = %vc.name, round, error = %e, retryable = e.is_retryable(), "inventory round failed");
}

/// Keeps the latest inventory of each vCenter in the state directory (best effort: the
/// daemon goes on if the directory is not writable), and hands it back.
fn save_latest(state_dir: &Path, inv: inventory::VcenterInventory) -> inventory::VcenterInventory {
    let dir = state_dir.join("inventory").join(sanitize(&inv.name));
    let doc = Inventory {
        schema_version: SCHEMA_VERSION,
        agent_version: crate::VERSION.into(),
        vcenters: vec![inv],
    };
    let result = std::fs::create_dir_all(&dir).and_then(|()| inventory::write_json(&doc, &dir));
    if let Err(e) = result {
        warn!(dir = %dir.display(), error = %e, "cannot save the latest inventory");
    }
    let mut doc = doc;
    doc.vcenters.pop().unwrap_or_default()
}

fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod first_poll_tests {
    use super::{closing_point, first_lookback_ms, InventoryRetry};

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
    use std::time::Duration;

    #[test]
    fn a_failed_inventory_is_retried_in_seconds_capped_under_the_interval() {
        let mut r = InventoryRetry::new(Duration::from_secs(3600));
        let waits: Vec<u64> = (0..9).map(|_| r.next().as_secs()).collect();
        assert_eq!(waits, [5, 10, 20, 40, 80, 160, 300, 300, 300]);
        r.reset();
        assert_eq!(r.next().as_secs(), 5);
        // A short interval caps the backoff at a quarter of it.
        let mut r = InventoryRetry::new(Duration::from_secs(60));
        let waits: Vec<u64> = (0..4).map(|_| r.next().as_secs()).collect();
        assert_eq!(waits, [5, 10, 15, 15]);
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
