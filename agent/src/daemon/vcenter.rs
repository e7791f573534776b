//! One vCenter's task: connecting with backoff, the loop of inventory rounds, polls and
//! keepalives, inventory rounds with their retry, and what it keeps between rounds.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::config::{AgentConfig, VcenterConfig};
use crate::inventory::{self, Inventory, SCHEMA_VERSION};
use crate::perf::{watermark, Poller};
use crate::ship::{Record, Sink};
use crate::status::{AgentState, VcenterState};
use crate::vsphere::{Client, MoRef, VsphereError};

use super::perf::PerfState;
use super::sleep_or_stop;

/// The running vCenter tasks, each with its own child of the collection token, so that a
/// reload can stop one (it logs out) while the others go on.
pub(super) struct VcenterTasks {
    cfg: Arc<AgentConfig>,
    sink: Sink,
    state: Arc<AgentState>,
    collect: CancellationToken,
    /// What an earlier run stored past its watermark, per vCenter: handed to its task once.
    seeds: HashMap<String, Vec<watermark::Seed>>,
    running: BTreeMap<String, (VcenterConfig, CancellationToken)>,
}

impl VcenterTasks {
    pub(super) fn new(
        cfg: Arc<AgentConfig>,
        sink: Sink,
        state: Arc<AgentState>,
        collect: CancellationToken,
        seeds: HashMap<String, Vec<watermark::Seed>>,
    ) -> Self {
        Self {
            cfg,
            sink,
            state,
            collect,
            seeds,
            running: BTreeMap::new(),
        }
    }

    pub(super) fn start(&mut self, tasks: &mut JoinSet<()>, vc: VcenterConfig) {
        let stop = self.collect.child_token();
        let (cfg, sink, agent) = (self.cfg.clone(), self.sink.clone(), self.state.clone());
        let me = self.state.add(&vc.name);
        let seeds = self.seeds.remove(&vc.name).unwrap_or_default();
        tasks.spawn(vcenter_loop(
            cfg,
            vc.clone(),
            seeds,
            sink,
            agent,
            me,
            stop.clone(),
        ));
        self.running.insert(vc.name.clone(), (vc, stop));
    }

    /// Applies a reloaded configuration's vCenters: removed or changed ones are stopped,
    /// new ones started. Other settings take effect at the next start, and the log says so.
    pub(super) fn reload(&mut self, tasks: &mut JoinSet<()>, new: AgentConfig) {
        if !same_but_vcenters(&self.cfg, &new) {
            warn!("configuration reloaded: only [[vcenter]] changes take effect now; the other settings at the next start");
        }
        let wanted: BTreeMap<String, VcenterConfig> = new
            .vcenters
            .into_iter()
            .map(|v| (v.name.clone(), v))
            .collect();
        let state = &self.state;
        self.running.retain(|name, (old, stop)| {
            let keep = wanted.get(name).is_some_and(|w| w == old);
            if !keep {
                stop.cancel();
                state.remove(name);
                info!(vcenter = %name, changed = wanted.contains_key(name), "vCenter removed or changed in the configuration; stopping its collection");
            }
            keep
        });
        for (name, vc) in wanted {
            if !self.running.contains_key(&name) {
                info!(vcenter = %name, url = %vc.url, "vCenter added to the configuration; starting its collection");
                self.start(tasks, vc);
            }
        }
    }
}

/// Whether two configurations differ in their vCenters only.
fn same_but_vcenters(a: &AgentConfig, b: &AgentConfig) -> bool {
    let strip = |c: &AgentConfig| AgentConfig {
        vcenters: Vec::new(),
        ..c.clone()
    };
    strip(a) == strip(b)
}

pub(super) async fn vcenter_loop(
    cfg: Arc<AgentConfig>,
    vc: VcenterConfig,
    seeds: Vec<watermark::Seed>,
    sink: Sink,
    agent: Arc<AgentState>,
    me: Arc<VcenterState>,
    stop: CancellationToken,
) {
    let Some(client) = connect(&vc, &me, &stop).await else {
        return;
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
            if !task.inventory_round(&stop).await {
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
            if !task.perf_round(&stop).await {
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
        if sleep_or_stop(wake.saturating_duration_since(Instant::now()), &stop).await {
            break;
        }
        if Instant::now() >= keepalive_at && Instant::now() < next_inventory.min(next_perf) {
            task.keepalive().await;
            last_call = Instant::now();
        }
    }
    match task.client.logout().await {
        Ok(()) => info!(vcenter = %vc.name, "logged out"),
        Err(e) => warn!(vcenter = %vc.name, error = %e, "logout failed"),
    }
}

/// Connects and logs in, retrying with capped backoff until it works or `stop`; `None`
/// when stopped first.
async fn connect(
    vc: &VcenterConfig,
    me: &VcenterState,
    stop: &CancellationToken,
) -> Option<Client> {
    let mut backoff = Duration::from_secs(1);
    loop {
        if stop.is_cancelled() {
            return None;
        }
        let attempt = tokio::select! {
            r = Client::connect(vc) => r,
            _ = stop.cancelled() => return None,
        };
        me.tried(attempt.is_ok());
        match attempt {
            Ok(c) => return Some(c),
            Err(e) => {
                let retry = e.is_retryable();
                error!(vcenter = %vc.name, error = %e, retryable = retry, "cannot connect to vCenter; retrying in {} s", backoff.as_secs());
                if sleep_or_stop(backoff, stop).await {
                    return None;
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
    }
}

/// Everything one vCenter's task keeps between rounds.
pub(super) struct VcenterTask {
    pub(super) cfg: Arc<AgentConfig>,
    pub(super) vc: VcenterConfig,
    pub(super) client: Client,
    pub(super) sink: Sink,
    /// The agent's shared state, and this task's part of it (liveness, counts).
    pub(super) agent: Arc<AgentState>,
    pub(super) me: Arc<VcenterState>,
    pub(super) round: u64,
    pub(super) perf: Option<PerfState>,
    /// What to poll, from the latest inventory.
    pub(super) targets: Vec<MoRef>,
    pub(super) perf_overruns: u64,
    /// Whether the last inventory round succeeded.
    pub(super) inventory_ok: bool,
    /// Series stored past the watermark by an earlier run, for the aggregator.
    pub(super) seeds: Vec<watermark::Seed>,
    /// Whether a seeds file is kept (until a watermark covers it).
    pub(super) seeds_kept: bool,
}

impl VcenterTask {
    /// One cheap call between rounds so the session does not expire.
    async fn keepalive(&self) {
        match self.client.current_time().await {
            Ok(_) => self.me.set_connected(true),
            Err(e) => {
                self.me.set_connected(false);
                warn!(vcenter = %self.vc.name, error = %e, "keepalive failed");
            }
        }
    }

    pub(super) fn me(&self) -> &VcenterState {
        &self.me
    }

    /// One inventory round; false if the agent is stopping.
    async fn inventory_round(&mut self, stop: &CancellationToken) -> bool {
        self.round += 1;
        let round = self.round;
        let vc = &self.vc;
        let started = Instant::now();
        let deadline = round_deadline(self.cfg.inventory_interval);
        self.me().begin(deadline);
        let result = tokio::select! {
            r = tokio::time::timeout(deadline, inventory::collect(&self.client)) => Some(r),
            _ = stop.cancelled() => None,
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
                    p.agg.retain(&self.targets);
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

    /// Logs out and in again: a session's views go with it.
    pub(super) async fn fresh_session(&self) {
        let _ = self.client.logout().await;
        if let Err(e) = self.client.login().await {
            warn!(vcenter = %self.vc.name, error = %e, "cannot log in again after an abandoned round");
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
mod tests {
    use super::InventoryRetry;
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
}
