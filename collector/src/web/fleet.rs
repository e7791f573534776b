//! The estate as the pages list it: every VM of the latest inventories joined with the
//! assessment at the configured defaults, built on a blocking thread and cached, because
//! assessing 10,000 VMs takes seconds and a page must answer in milliseconds. A new
//! build starts when batches arrived since the last one, one at a time and no more often
//! than ten times its own duration, so a busy collector spends at most a tenth of a core
//! on it; pages serve the latest build meanwhile and say when it was made.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use tracing::{info, warn};

use crate::assess::estate::{assess_estate, Assessment, Row};
use crate::assess::settings::{Params, Setup};
use crate::store::{Storage, StoreError};

const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

/// One VM's line in the list: inventory, utilization at the settings' percentile, and
/// per target (in `Assessment::targets` order) its size, cost and readiness.
#[derive(Debug, Clone)]
pub struct FleetVm {
    /// `vcenter:vm-id`, the API's id.
    pub id: String,
    pub name: String,
    pub vcenter: String,
    pub datacenter: String,
    pub cluster: String,
    pub power: String,
    pub vcpus: u32,
    pub memory_gib: f64,
    pub storage_gib: f64,
    pub cpu_pct: Option<f64>,
    pub memory_pct: Option<f64>,
    pub stars: Option<u8>,
    pub targets: Vec<TargetCell>,
}

#[derive(Debug, Clone)]
pub struct TargetCell {
    pub size: Option<String>,
    pub monthly: Option<f64>,
    pub readiness: &'static str,
}

/// One build: the VMs, the assessment they come from, and what it was built from.
#[derive(Debug)]
pub struct Fleet {
    pub vms: Vec<FleetVm>,
    pub assessment: Arc<Assessment>,
    /// Unix seconds.
    pub built_at: i64,
    /// Batches stored when the build started (`/v1/stats`' `batches`).
    pub batches: u64,
    pub took: Duration,
    built: Instant,
}

impl Fleet {
    /// Assesses the estate at the configured defaults as of `now` (Unix seconds) and joins
    /// it with the VMs' records (`batches`: the count it was built after).
    pub fn build(
        store: &dyn Storage,
        setup: &Setup,
        batches: u64,
        now: i64,
    ) -> Result<Fleet, StoreError> {
        let started = Instant::now();
        let settings = setup
            .settings(&Params::default())
            .map_err(|e| StoreError::Other(e.to_string()))?;
        let estate = assess_estate(store, &setup.catalog, &settings, now, false)?;
        let vms = estate
            .vms
            .iter()
            .enumerate()
            .map(|(i, (vcenter, vm))| {
                let rows: Vec<&Row> = estate
                    .assessment
                    .targets
                    .iter()
                    .map(|t| &t.rows[i])
                    .collect();
                let first = rows.first();
                FleetVm {
                    id: format!("{vcenter}:{}", vm.id),
                    name: vm.name.to_string(),
                    vcenter: vcenter.clone(),
                    datacenter: vm.datacenter.to_string(),
                    cluster: vm.cluster.to_string(),
                    power: vm.power_state.as_deref().unwrap_or("unknown").to_owned(),
                    vcpus: vm.num_cpu.unwrap_or(0),
                    memory_gib: vm.memory_bytes.unwrap_or(0) as f64 / GIB,
                    storage_gib: vm
                        .disks
                        .iter()
                        .filter_map(|d| d.capacity_bytes)
                        .sum::<u64>() as f64
                        / GIB,
                    cpu_pct: first.and_then(|r| r.utilization.cpu_pct),
                    memory_pct: first.and_then(|r| r.utilization.memory_pct),
                    stars: first.and_then(|r| r.confidence.stars),
                    targets: rows
                        .iter()
                        .map(|r| TargetCell {
                            size: r.recommended.as_ref().map(|s| s.size.clone()),
                            monthly: r.monthly_cost.total,
                            readiness: r.readiness.status.as_str(),
                        })
                        .collect(),
                }
            })
            .collect();
        Ok(Fleet {
            vms,
            assessment: Arc::new(estate.assessment),
            built_at: now,
            batches,
            took: started.elapsed(),
            built: Instant::now(),
        })
    }
}

/// The latest build and whether one is running.
#[derive(Debug, Default)]
pub struct FleetCache {
    current: Mutex<Option<Arc<Fleet>>>,
    /// Held by the one build running.
    building: tokio::sync::Mutex<()>,
    /// A background build is started or queued: requests meanwhile start none (each
    /// would otherwise queue a build of its own behind the running one).
    refreshing: std::sync::atomic::AtomicBool,
}

impl FleetCache {
    /// The latest build; the first call waits for one. A build is started in the
    /// background when batches arrived since the latest and it is old enough.
    pub async fn get(
        self: &Arc<Self>,
        store: &Arc<dyn Storage>,
        setup: &Arc<Setup>,
    ) -> Result<Arc<Fleet>, StoreError> {
        let s = store.clone();
        let batches = tokio::task::spawn_blocking(move || s.counts())
            .await
            .map_err(|e| StoreError::Other(e.to_string()))??
            .batches;
        let current = self
            .current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        match current {
            None => self.rebuild(store.clone(), setup.clone(), batches).await,
            Some(f) => {
                use std::sync::atomic::Ordering::{AcqRel, Acquire, Release};
                if f.batches != batches
                    && f.built.elapsed() >= f.took * 10
                    && self
                        .refreshing
                        .compare_exchange(false, true, AcqRel, Acquire)
                        .is_ok()
                {
                    let (me, store, setup) = (self.clone(), store.clone(), setup.clone());
                    tokio::spawn(async move {
                        if let Err(e) = me.rebuild(store, setup, batches).await {
                            warn!(error = %e, "the pages' estate figures were not rebuilt");
                        }
                        me.refreshing.store(false, Release);
                    });
                }
                Ok(f)
            }
        }
    }

    /// Builds unless another build is running (then waits for it and returns its result:
    /// a build finished while this one waited is as new as asked).
    async fn rebuild(
        &self,
        store: Arc<dyn Storage>,
        setup: Arc<Setup>,
        batches: u64,
    ) -> Result<Arc<Fleet>, StoreError> {
        let asked = Instant::now();
        let _one = self.building.lock().await;
        if let Some(f) = self
            .current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
        {
            if f.batches == batches || f.built >= asked {
                return Ok(f);
            }
        }
        let fleet = tokio::task::spawn_blocking(move || {
            Fleet::build(
                store.as_ref(),
                &setup,
                batches,
                vscout_service::telemetry::unix_now_ms() / 1000,
            )
        })
        .await
        .map_err(|e| StoreError::Other(e.to_string()))??;
        info!(
            vms = fleet.vms.len(),
            batches,
            took_ms = fleet.took.as_millis() as u64,
            "the pages' estate figures were built"
        );
        let fleet = Arc::new(fleet);
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = Some(fleet.clone());
        Ok(fleet)
    }
}
