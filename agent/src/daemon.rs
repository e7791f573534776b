//! `vscout run`: the long-running agent. For each vCenter a task keeps one session, takes
//! an inventory every `inventory_interval`, keeps the session alive in between, and
//! reconnects with capped exponential backoff when vCenter is unreachable. `shutdown`
//! resolving stops every task; sessions are logged out within `shutdown_timeout`.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use tracing::{error, info, warn};

use crate::config::{AgentConfig, VcenterConfig};
use crate::inventory::{self, Inventory, SCHEMA_VERSION};
use crate::vsphere::{Client, VsphereError};

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
    let mut round: u64 = 0;
    let mut next_inventory = Instant::now();
    let mut last_call = Instant::now();
    loop {
        let now = Instant::now();
        if now >= next_inventory {
            round += 1;
            let started = Instant::now();
            let deadline = round_deadline(cfg.inventory_interval);
            let result = tokio::select! {
                r = tokio::time::timeout(deadline, inventory::collect(&client)) => Some(r),
                _ = stop.wait_for(|s| *s) => None,
            };
            match result.map(|r| r.map_err(|_| deadline)) {
                None => break,
                Some(Err(deadline)) => {
                    error!(vcenter = %vc.name, round, deadline_secs = deadline.as_secs(), "inventory round overran its deadline and was abandoned");
                    // An abandoned round may leave its container view behind; views belong to
                    // the session, so a fresh session drops them.
                    let _ = client.logout().await;
                    if let Err(e) = client.login().await {
                        warn!(vcenter = %vc.name, error = %e, "cannot log in again after an abandoned round");
                    }
                }
                Some(Ok(Ok(inv))) => {
                    info!(
                        vcenter = %vc.name, round, vms = inv.vms.len(), hosts = inv.hosts.len(),
                        clusters = inv.clusters.len(), datastores = inv.datastores.len(),
                        warnings = inv.warnings.len(), elapsed_ms = started.elapsed().as_millis() as u64,
                        "inventory round complete"
                    );
                    save_latest(&cfg.state_dir, inv);
                }
                Some(Ok(Err(e))) => log_round_error(&vc, round, &e),
            }
            last_call = Instant::now();
            next_inventory = started + cfg.inventory_interval;
        }
        let keepalive_at = last_call + cfg.keepalive_interval;
        let wake = next_inventory.min(keepalive_at);
        if sleep_or_stop(wake.saturating_duration_since(Instant::now()), &mut stop).await {
            break;
        }
        if Instant::now() >= keepalive_at && Instant::now() < next_inventory {
            if let Err(e) = client.current_time().await {
                warn!(vcenter = %vc.name, error = %e, "keepalive failed");
            }
            last_call = Instant::now();
        }
    }
    match client.logout().await {
        Ok(()) => info!(vcenter = %vc.name, "logged out"),
        Err(e) => warn!(vcenter = %vc.name, error = %e, "logout failed"),
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
