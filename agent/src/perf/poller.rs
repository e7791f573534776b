//! One real-time poll: which entities, which time range, how requests are batched and run,
//! and which samples are new.
//!
//! Every (entity, counter, instance) has a high-water mark: the grid slot of its newest
//! sample. A poll asks each entity for `(oldest of its marks, vCenter's now]` and keeps
//! only samples newer than their series' mark, so every sample is taken exactly once
//! however late or early a poll runs (vCenter keeps an hour of real-time data; vscout
//! never asks further back). Samples are placed on vCenter's grid (20 s for real-time
//! data, 300 s for historical) and a series takes at most one sample per slot, so no
//! window ever holds more samples than it has slots, whatever the server's timestamps.
//! Time is vCenter's (`CurrentTime`), never the local clock.

use std::collections::HashMap;

use futures_util::stream::{self, StreamExt};
use tracing::warn;

use super::catalog::{resolve, Resolved};
use super::series::SeriesTable;
use super::take::{take_answer, SampleSink};
use crate::config::PerfConfig;
use crate::inventory::VcenterInventory;
use crate::vsphere::{
    datetime, Client, MetricId, MoRef, PerfEntityMetric, PerfQuery, VsphereError,
};

/// The real-time interval, in seconds.
pub const REALTIME_SECS: u32 = 20;
/// How far back vCenter keeps real-time samples.
const REALTIME_RETENTION_MS: i64 = 3600 * 1000;
/// The historical interval used for clusters and datastores, in seconds.
pub(super) const HISTORICAL_SECS: u32 = 300;
/// How far back vCenter keeps 5-minute samples (its "past day" interval).
const HISTORICAL_RETENTION_MS: i64 = 86_400 * 1000;
/// vCenter's default `config.vpxd.stats.maxQueryMetrics`.
const DEFAULT_MAX_QUERY_METRICS: usize = 64;

/// Whether an entity type has only historical (5-minute) statistics.
pub(super) fn is_historical(entity: &MoRef) -> bool {
    entity.kind == "ClusterComputeResource" || entity.kind == "Datastore"
}

/// The resolved counters of each entity type.
#[derive(Debug)]
struct CountersByKind {
    vm: Resolved,
    host: Resolved,
    cluster: Resolved,
    datastore: Resolved,
}

impl CountersByKind {
    fn of(&self, entity: &MoRef) -> &Resolved {
        match entity.kind.as_str() {
            "HostSystem" => &self.host,
            "ClusterComputeResource" => &self.cluster,
            "Datastore" => &self.datastore,
            _ => &self.vm,
        }
    }
}

/// What one poll did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PollReport {
    pub entities: usize,
    pub requests: usize,
    pub samples: u64,
    /// Samples whose grid slot was at or before their series' mark (already taken, or a
    /// second sample for one slot): set aside.
    pub repeated: u64,
    /// Samples stamped off vCenter's grid (vcsim stamps back from each request's end):
    /// each was placed on its grid slot.
    pub off_grid: u64,
    /// Series whose length differed from their timestamps (vcsim drops zeros): dropped.
    pub misaligned_series: u64,
    /// Batches split in two after a "too large" fault.
    pub halvings: u64,
    /// Requests that failed; the others' samples are still taken.
    pub failed_requests: u64,
    /// Earliest range start (Unix ms) of the real-time requests that failed: their
    /// entities' samples from there on come with a later poll, so windows after it should
    /// stay open until then (or their grace runs out).
    pub failed_since_ms: Option<i64>,
    /// Wall time of the poll.
    pub elapsed: std::time::Duration,
}

/// The counters of each entity type, resolved, and how to ask for them. The marks of
/// every series are in the sink's series table.
#[derive(Debug)]
pub struct Poller {
    cfg: PerfConfig,
    counters: CountersByKind,
    /// Most entity × counter pairs in one historical query (`maxQueryMetrics`).
    historical_cap: usize,
}

impl Poller {
    /// Reads the counter catalog and resolves the configured counters.
    pub async fn new(client: &Client, cfg: &PerfConfig) -> Result<Self, VsphereError> {
        let catalog = client.perf_counters().await?;
        let vm = resolve(&catalog, &cfg.vm_counters);
        let host = resolve(&catalog, &cfg.host_counters);
        let cluster = resolve(&catalog, &cfg.cluster_counters);
        let datastore = resolve(&catalog, &cfg.datastore_counters);
        // vCenter caps historical queries at config.vpxd.stats.maxQueryMetrics pairs
        // (64 unless an administrator changed it; -1 is unlimited). Without the option,
        // assume the default; a refusal would still be halved.
        let historical_cap = match client.max_query_metrics().await {
            Ok(Some(n)) if n > 0 => n as usize,
            Ok(Some(_)) => cfg.max_metrics_per_query,
            Ok(None) | Err(_) => DEFAULT_MAX_QUERY_METRICS,
        }
        .min(cfg.max_metrics_per_query);
        for (kind, r) in [
            ("VM", &vm),
            ("host", &host),
            ("cluster", &cluster),
            ("datastore", &datastore),
        ] {
            if !r.missing.is_empty() {
                warn!(vcenter = %client.name(), missing = ?r.missing, "{kind} counters this vCenter does not have; they are skipped");
            }
        }
        Ok(Self {
            cfg: cfg.clone(),
            counters: CountersByKind {
                vm,
                host,
                cluster,
                datastore,
            },
            historical_cap,
        })
    }

    /// Asks vCenter for the last few minutes of every configured counter on a few VMs and
    /// a host, with the same QueryPerf that polling sends, and returns, by name, the
    /// counters for which none of them answered a series: the vCenter's statistics level
    /// hides them, or the hardware lacks them. (QueryAvailablePerfMetric was asked before
    /// and disagreed with what polling then got.) Logged once at start; `check` shows it.
    pub async fn unavailable(
        &self,
        client: &Client,
        targets: &[MoRef],
    ) -> Result<Vec<String>, VsphereError> {
        let vms = targets
            .iter()
            .filter(|t| t.kind == "VirtualMachine")
            .take(2);
        let hosts = targets.iter().filter(|t| t.kind == "HostSystem").take(1);
        let probe: Vec<&MoRef> = vms.chain(hosts).collect();
        if probe.is_empty() {
            return Ok(Vec::new());
        }
        let end = vcenter_now_ms(client).await?;
        // Five minutes of real-time samples: enough for a fresh VM to have some.
        let span_ms = 300_000;
        let queries: Vec<PerfQuery> = probe
            .iter()
            .map(|entity| PerfQuery {
                entity: (*entity).clone(),
                start_ms: Some(end - span_ms),
                end_ms: Some(end),
                max_sample: (span_ms / (i64::from(REALTIME_SECS) * 1000)) as u32,
                metrics: every_instance(self.counters.of(entity)),
                interval_secs: REALTIME_SECS,
            })
            .collect();
        let answers = client.query_perf(&queries).await?;
        let mut seen: std::collections::HashSet<(bool, i32)> = std::collections::HashSet::new();
        for a in &answers {
            let is_host = a.entity.as_ref().is_some_and(|e| e.kind == "HostSystem");
            seen.extend(a.series.iter().map(|s| (is_host, s.id.counter)));
        }
        let asked_vm = probe.iter().any(|t| t.kind == "VirtualMachine");
        let asked_host = probe.iter().any(|t| t.kind == "HostSystem");
        let mut missing = Vec::new();
        for (asked, is_host, resolved, kind) in [
            (asked_vm, false, &self.counters.vm, "vm"),
            (asked_host, true, &self.counters.host, "host"),
        ] {
            if asked {
                missing.extend(
                    resolved
                        .counters
                        .iter()
                        .filter(|c| !seen.contains(&(is_host, c.key)))
                        .map(|c| format!("{kind}:{}", c.name)),
                );
            }
        }
        Ok(missing)
    }

    /// The counters resolved for VMs and hosts.
    pub fn resolved(&self) -> (&Resolved, &Resolved) {
        (&self.counters.vm, &self.counters.host)
    }

    /// What to poll in an inventory: powered-on VMs and connected, powered-on hosts
    /// (real-time), clusters and accessible datastores (historical).
    pub fn targets(inv: &VcenterInventory) -> Vec<MoRef> {
        let vms = inv
            .vms
            .iter()
            .filter(|v| !v.template && v.power_state.as_deref() == Some("poweredOn"))
            .map(|v| MoRef::new("VirtualMachine", v.id.clone()));
        let hosts = inv
            .hosts
            .iter()
            .filter(|h| {
                h.connection_state.as_deref() == Some("connected")
                    && h.power_state.as_deref() != Some("poweredOff")
            })
            .map(|h| MoRef::new("HostSystem", h.id.clone()));
        let clusters = inv
            .clusters
            .iter()
            .map(|c| MoRef::new("ClusterComputeResource", c.id.clone()));
        let datastores = inv
            .datastores
            .iter()
            .filter(|d| d.accessible != Some(false))
            .map(|d| MoRef::new("Datastore", d.id.clone()));
        vms.chain(hosts).chain(clusters).chain(datastores).collect()
    }

    /// The request for `entity`'s new samples up to `end_ms` (vCenter's now): from its
    /// mark, or `lookback_ms` back for an entity never polled; `None` if it has no counters
    /// or nothing new can be there yet.
    fn query_for(
        &self,
        series: &SeriesTable,
        entity: &MoRef,
        end_ms: i64,
        lookback_ms: i64,
    ) -> Option<PerfQuery> {
        let counters = self.counters.of(entity);
        if counters.counters.is_empty() {
            return None;
        }
        // Clusters and datastores have 5-minute data only, published late: their range
        // ends at the last 5-minute boundary and reaches back further.
        let (interval, end, lookback, oldest, most) = if is_historical(entity) {
            let step = i64::from(HISTORICAL_SECS) * 1000;
            let end = end_ms.div_euclid(step) * step;
            let lookback = i64::from(self.cfg.historical_lookback_secs) * 1000;
            (
                HISTORICAL_SECS,
                end,
                lookback,
                end - HISTORICAL_RETENTION_MS,
                288,
            )
        } else {
            (
                REALTIME_SECS,
                end_ms,
                lookback_ms,
                end_ms - REALTIME_RETENTION_MS,
                180,
            )
        };
        let start = series
            .entity_start(entity)
            .unwrap_or(end - lookback)
            .max(oldest);
        if start >= end {
            return None;
        }
        let span = (end - start) / (i64::from(interval) * 1000);
        Some(PerfQuery {
            entity: entity.clone(),
            start_ms: Some(start),
            end_ms: Some(end),
            max_sample: (span + 1).clamp(1, most) as u32,
            metrics: every_instance(counters),
            interval_secs: interval,
        })
    }

    /// Polls `targets` up to `end_ms` (vCenter's now). An entity never polled before is
    /// asked for `lookback_ms` of history.
    pub async fn poll(
        &mut self,
        client: &Client,
        targets: &[MoRef],
        end_ms: i64,
        lookback_ms: i64,
        sink: &mut impl SampleSink,
    ) -> Result<PollReport, VsphereError> {
        let started = tokio::time::Instant::now();
        let mut report = PollReport::default();
        let mut queries = Vec::new();
        let mut historical = Vec::new();
        for entity in targets {
            match self.query_for(sink.series(), entity, end_ms, lookback_ms) {
                Some(q) if q.interval_secs == HISTORICAL_SECS => historical.push(q),
                Some(q) => queries.push(q),
                None => {}
            }
        }
        report.entities = queries.len() + historical.len();
        // The start of each entity's range is exclusive: a series seen for the first time
        // takes only samples after it.
        let starts: HashMap<MoRef, i64> = queries
            .iter()
            .chain(&historical)
            .filter_map(|q| Some((q.entity.clone(), q.start_ms?)))
            .collect();
        let mut batches = self.batches(queries, self.cfg.max_metrics_per_query);
        batches.extend(self.batches(historical, self.historical_cap));
        report.requests = batches.len();
        // Answers are taken as each request completes, not gathered first: memory holds
        // at most `concurrency` answers.
        let mut results = stream::iter(batches)
            .map(|batch| {
                let since = batch
                    .iter()
                    .filter(|q| q.interval_secs == REALTIME_SECS)
                    .filter_map(|q| q.start_ms)
                    .min();
                async move { (since, query_halving(client, batch).await) }
            })
            .buffer_unordered(self.cfg.concurrency);
        // One failed request does not lose the others' samples.
        let mut first_error = None;
        while let Some((since, result)) = results.next().await {
            let (answers, halvings) = match result {
                Ok(r) => r,
                Err(e) => {
                    report.failed_requests += 1;
                    report.failed_since_ms = match (report.failed_since_ms, since) {
                        (Some(a), Some(b)) => Some(a.min(b)),
                        (a, b) => a.or(b),
                    };
                    warn!(vcenter = %client.name(), error = %e, "a QueryPerf request failed");
                    first_error.get_or_insert(e);
                    continue;
                }
            };
            report.halvings += halvings;
            for answer in answers {
                let Some(entity) = answer.entity.as_ref() else {
                    continue;
                };
                let start = starts.get(entity).copied().unwrap_or(i64::MIN);
                let counters = self.counters.of(entity);
                take_answer(sink, counters, &answer, start, &mut report);
            }
        }
        report.elapsed = started.elapsed();
        match first_error {
            // Nothing came through: the poll as a whole failed (session, network, …).
            Some(e) if report.samples == 0 && report.failed_requests == report.requests as u64 => {
                Err(e)
            }
            _ => Ok(report),
        }
    }

    /// Splits queries into requests of at most `max_entities_per_query` entities and
    /// `max_metrics_per_query` entity × counter pairs.
    fn batches(&self, queries: Vec<PerfQuery>, max_metrics: usize) -> Vec<Vec<PerfQuery>> {
        let mut out: Vec<Vec<PerfQuery>> = Vec::new();
        let mut metrics = 0;
        for q in queries {
            let n = q.metrics.len();
            let full = out.last().is_none_or(|b| {
                b.len() >= self.cfg.max_entities_per_query || metrics + n > max_metrics
            });
            if full {
                out.push(Vec::new());
                metrics = 0;
            }
            metrics += n;
            if let Some(b) = out.last_mut() {
                b.push(q);
            }
        }
        out
    }
}

/// Every instance (`*`) of each resolved counter, as a QueryPerf asks for them.
fn every_instance(resolved: &Resolved) -> Vec<MetricId> {
    resolved
        .counters
        .iter()
        .map(|c| MetricId {
            counter: c.key,
            instance: "*".into(),
        })
        .collect()
}

/// Faults that mean "this request is too big": split it and try the halves.
fn too_large(e: &VsphereError) -> bool {
    match e {
        VsphereError::Fault {
            fault_type,
            message,
            ..
        } => {
            fault_type == "RestrictedByAdministrator"
                || message.contains("too large")
                || message.contains("exceeds")
                || message.contains("maxQueryMetrics")
        }
        _ => false,
    }
}

/// Runs one batch, halving it (recursively) while vCenter says it is too large.
async fn query_halving(
    client: &Client,
    batch: Vec<PerfQuery>,
) -> Result<(Vec<PerfEntityMetric>, u64), VsphereError> {
    let mut pending = vec![batch];
    let mut answers = Vec::new();
    let mut halvings = 0;
    while let Some(b) = pending.pop() {
        match client.query_perf(&b).await {
            Ok(a) => answers.extend(a),
            Err(e) if too_large(&e) && b.len() > 1 => {
                halvings += 1;
                let mut first = b;
                let second = first.split_off(first.len() / 2);
                pending.push(second);
                pending.push(first);
            }
            Err(e) => return Err(e),
        }
    }
    Ok((answers, halvings))
}

/// vCenter's clock in Unix milliseconds.
pub async fn vcenter_now_ms(client: &Client) -> Result<i64, VsphereError> {
    let t = client.current_time().await?;
    datetime::parse_unix_millis(&t).ok_or(VsphereError::Protocol {
        method: "CurrentTime",
        reason: format!("unreadable time {t:?}"),
    })
}
