//! `vscout run`: the long-running agent. For each vCenter a task keeps one session, takes
//! an inventory every `inventory_interval` (which also tells which VMs and hosts to poll),
//! polls real-time performance counters every `perf.interval` and logs each closed
//! window, keeps the session alive in between, and
//! reconnects with capped exponential backoff when vCenter is unreachable. `shutdown`
//! resolving stops every task; sessions are logged out within `shutdown_timeout`.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use tracing::{debug, error, info, warn};

use crate::config::{AgentConfig, VcenterConfig};
use crate::inventory::{self, Inventory, SCHEMA_VERSION};
use crate::perf::{vcenter_now_ms, Aggregator, Poller, Rollup, REALTIME_SECS};
use crate::vsphere::{Client, MoRef, VsphereError};

/// Runs until `shutdown` resolves, then logs out and returns.
pub async fn run(config: AgentConfig, shutdown: impl Future<Output = ()>) {
    let (stop_tx, stop_rx) = watch::channel(false);
    let config = Arc::new(config);
    let mut tasks = tokio::task::JoinSet::new();
    for vc in config.vcenters.clone() {
        let cfg = config.clone();
        let rx = stop_rx.clone();
        tasks.spawn(async move { vcenter_loop(cfg, vc, rx).await });
    }
    shutdown.await;
    info!("shutting down: stopping polls and logging out");
    let _ = stop_tx.send(true);
    let deadline = config.shutdown_timeout;
    let drained = tokio::time::timeout(deadline, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        warn!(
            timeout_secs = deadline.as_secs(),
            "shutdown deadline passed; abandoning remaining work"
        );
        tasks.abort_all();
    }
    info!("stopped");
}

async fn sleep_or_stop(d: Duration, stop: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => false,
        _ = stop.wait_for(|s| *s) => true,
    }
}

async fn vcenter_loop(cfg: Arc<AgentConfig>, vc: VcenterConfig, mut stop: watch::Receiver<bool>) {
    let mut backoff = Duration::from_secs(1);
    let client = loop {
        if *stop.borrow() {
            return;
        }
        let attempt = tokio::select! {
            r = Client::connect(&vc) => r,
            _ = stop.wait_for(|s| *s) => return,
        };
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
    let mut task = VcenterTask {
        cfg: cfg.clone(),
        vc: vc.clone(),
        client,
        round: 0,
        perf: None,
        targets: Vec::new(),
        perf_overruns: 0,
    };
    let mut next_inventory = Instant::now();
    let mut next_perf = Instant::now();
    let mut last_call = Instant::now();
    loop {
        if Instant::now() >= next_inventory {
            let started = Instant::now();
            if !task.inventory_round(&mut stop).await {
                break;
            }
            last_call = Instant::now();
            next_inventory = started + cfg.inventory_interval;
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
            if let Err(e) = task.client.current_time().await {
                warn!(vcenter = %vc.name, error = %e, "keepalive failed");
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
}

/// Everything one vCenter's task keeps between rounds.
struct VcenterTask {
    cfg: Arc<AgentConfig>,
    vc: VcenterConfig,
    client: Client,
    round: u64,
    perf: Option<PerfState>,
    /// What to poll, from the latest inventory.
    targets: Vec<MoRef>,
    perf_overruns: u64,
}

impl VcenterTask {
    /// One inventory round; false if the agent is stopping.
    async fn inventory_round(&mut self, stop: &mut watch::Receiver<bool>) -> bool {
        self.round += 1;
        let round = self.round;
        let vc = &self.vc;
        let started = Instant::now();
        let deadline = round_deadline(self.cfg.inventory_interval);
        let result = tokio::select! {
            r = tokio::time::timeout(deadline, inventory::collect(&self.client)) => Some(r),
            _ = stop.wait_for(|s| *s) => None,
        };
        match result.map(|r| r.map_err(|_| deadline)) {
            None => return false,
            Some(Err(deadline)) => {
                error!(vcenter = %vc.name, round, deadline_secs = deadline.as_secs(), "inventory round overran its deadline and was abandoned");
                self.fresh_session().await;
            }
            Some(Ok(Ok(inv))) => {
                info!(
                    vcenter = %vc.name, round, vms = inv.vms.len(), hosts = inv.hosts.len(),
                    clusters = inv.clusters.len(), datastores = inv.datastores.len(),
                    warnings = inv.warnings.len(), elapsed_ms = started.elapsed().as_millis() as u64,
                    "inventory round complete"
                );
                // VMs that appeared, vanished or changed power state are followed from here.
                self.targets = Poller::targets(&inv);
                if let Some(p) = self.perf.as_mut() {
                    p.poller.retain(&self.targets);
                    let ids = self.targets.iter().map(|t| t.value.clone()).collect();
                    p.agg.retain_entities(&ids);
                }
                save_latest(&self.cfg.state_dir, inv);
            }
            Some(Ok(Err(e))) => log_round_error(vc, round, &e),
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
                            debug!(vcenter = %vc_name, error = %e, "QueryAvailablePerfMetric failed")
                        }
                    }
                    self.perf = Some(PerfState {
                        poller,
                        agg: Aggregator::new(&vc_name, self.cfg.perf.window_secs),
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
        let lookback_ms = i64::from(self.cfg.perf.window_secs) * 1000;
        let client = &self.client;
        let targets = &self.targets;
        let run = async {
            let end = vcenter_now_ms(client).await?;
            let report = perf
                .poller
                .poll(client, targets, end, lookback_ms, &mut perf.agg)
                .await?;
            Ok::<_, VsphereError>((end, report))
        };
        let started = Instant::now();
        let result = tokio::select! {
            r = tokio::time::timeout(deadline, run) => Some(r),
            _ = stop.wait_for(|s| *s) => None,
        };
        match result {
            None => return false,
            Some(Err(_)) => {
                self.perf_overruns += 1;
                error!(vcenter = %vc_name, deadline_secs = deadline.as_secs(), overruns = self.perf_overruns, "performance poll overran its interval and was abandoned");
            }
            Some(Ok(Err(e))) => {
                warn!(vcenter = %vc_name, error = %e, retryable = e.is_retryable(), "performance poll failed")
            }
            Some(Ok(Ok((end, report)))) => {
                debug!(vcenter = %vc_name, entities = report.entities, samples = report.samples, requests = report.requests, misaligned = report.misaligned_series, elapsed_ms = started.elapsed().as_millis() as u64, "performance poll complete");
                // A window is closed once vCenter's clock is one interval past its end
                // (samples are published a little late).
                let closed = end - i64::from(REALTIME_SECS) * 1000;
                let rollups = perf.agg.drain_closed(closed);
                log_windows(&vc_name, &rollups);
                let mut days: std::collections::BTreeMap<i64, usize> =
                    std::collections::BTreeMap::new();
                perf.agg
                    .drain_closed_days_with(closed, |d| *days.entry(d.day_start).or_default() += 1);
                for (day_start, series) in days {
                    info!(vcenter = %vc_name, day_start, series, "daily performance summaries closed");
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

/// One line per closed window: how many series, samples and how complete.
fn log_windows(vcenter: &str, rollups: &[Rollup]) {
    let mut by_window: std::collections::BTreeMap<i64, (usize, u64, u64)> =
        std::collections::BTreeMap::new();
    for r in rollups {
        let e = by_window.entry(r.window_start).or_default();
        e.0 += 1;
        e.1 += u64::from(r.stats.map_or(0, |s| s.count));
        e.2 += u64::from(r.expected_samples);
    }
    for (start, (series, samples, expected)) in by_window {
        let completeness = if expected == 0 {
            0.0
        } else {
            100.0 * samples as f64 / expected as f64
        };
        info!(vcenter = %vcenter, window_start = start, series, samples, completeness_pct = format!("{completeness:.1}"), "performance window closed");
    }
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
/// daemon goes on if the directory is not writable).
fn save_latest(state_dir: &Path, inv: inventory::VcenterInventory) {
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
