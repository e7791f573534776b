//! The assessment of the estate: every VM of the latest inventories, for each target,
//! read once from the store (inventory records, then the series of the history) and
//! sized, priced and judged; totals for the estate and per datacenter and cluster.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use vscout_wire::inventory::Vm;

use super::catalog::{Catalog, Cloud};
use super::need::{need_of, Sized, Sizing};
use super::readiness::{readiness, Readiness, Status};
use super::settings::{Basis, Memory, Settings, Target};
use super::sizing::{decide, Decision};
use super::utilization::{stars, vm_usage, Figures, VmUsage, COUNTERS, CPU};
use crate::store::{SeriesUsage, Storage, StoreError, UsageQuery};

const GIB: f64 = 1024.0 * 1024.0 * 1024.0;
const DAY_SECS: i64 = 86_400;

/// What the prices are, on every output.
pub const PRICES_ARE: &str = "list prices, on-demand, Linux, USD per month";

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

/// The history asked for and what the store held of it.
#[derive(Debug, Clone, Serialize)]
pub struct History {
    pub requested_days: u32,
    /// Unix seconds: the first day read and the end.
    pub from: i64,
    pub to: i64,
    /// First window and end of the last window held (`None`: no performance data).
    pub held_from: Option<i64>,
    pub held_to: Option<i64>,
    pub held_days: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Recommended {
    pub size: String,
    pub vcpus: u32,
    pub memory_gib: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct DiskRow {
    pub disk: String,
    pub tier: Option<String>,
    pub size_gib: Option<u64>,
    pub monthly_cost: Option<f64>,
    /// Why the disk has no offer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Cost {
    pub compute: Option<f64>,
    pub storage: f64,
    /// Compute + storage, when the size and every disk have a price.
    pub total: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Confidence {
    /// 1 to 5 by Azure's bands; `None` for as-on-premises sizing, which reads no data.
    pub stars: Option<u8>,
    pub coverage_pct: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct UtilizationRow {
    pub cpu_pct: Option<f64>,
    pub memory_pct: Option<f64>,
    pub iops: Option<f64>,
    pub mbps: Option<f64>,
    pub network_mbps: Option<f64>,
}

/// One VM for one target.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub vm_id: String,
    pub name: String,
    pub vcenter: String,
    pub datacenter: String,
    pub cluster: String,
    pub target: Cloud,
    pub region: String,
    pub sizing: &'static str,
    pub readiness: Readiness,
    pub recommended: Option<Recommended>,
    pub disks: Vec<DiskRow>,
    pub monthly_cost: Cost,
    pub confidence: Confidence,
    pub utilization: UtilizationRow,
    pub allocated: Allocated,
    pub notes: Vec<String>,
}

/// What the VM has on premises.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Allocated {
    pub vcpus: u32,
    pub memory_gib: f64,
    pub storage_gib: f64,
}

/// Sums over a set of rows.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Totals {
    pub vms: u64,
    pub ready: u64,
    pub conditionally_ready: u64,
    pub not_ready: u64,
    pub unknown: u64,
    pub allocated_vcpus: u64,
    pub recommended_vcpus: u64,
    pub allocated_memory_gib: f64,
    pub recommended_memory_gib: f64,
    pub allocated_storage_gib: f64,
    pub recommended_storage_gib: f64,
    pub monthly_compute: f64,
    pub monthly_storage: f64,
    pub monthly_total: f64,
    /// VMs left out of the costs: no size or a disk without an offer.
    pub vms_without_price: u64,
}

impl Totals {
    pub(crate) fn add(&mut self, r: &Row) {
        self.vms += 1;
        match r.readiness.status {
            Status::Ready => self.ready += 1,
            Status::ConditionallyReady => self.conditionally_ready += 1,
            Status::NotReady => self.not_ready += 1,
            Status::Unknown => self.unknown += 1,
        }
        self.allocated_vcpus += u64::from(r.allocated.vcpus);
        self.allocated_memory_gib += r.allocated.memory_gib;
        self.allocated_storage_gib += r.allocated.storage_gib;
        if let Some(s) = &r.recommended {
            self.recommended_vcpus += u64::from(s.vcpus);
            self.recommended_memory_gib += s.memory_gib;
        }
        let disk_gib: u64 = r.disks.iter().filter_map(|d| d.size_gib).sum();
        self.recommended_storage_gib += disk_gib as f64;
        match r.monthly_cost.total {
            Some(t) => {
                self.monthly_compute += r.monthly_cost.compute.unwrap_or(0.0);
                self.monthly_storage += r.monthly_cost.storage;
                self.monthly_total += t;
            }
            None => self.vms_without_price += 1,
        }
    }

    pub(crate) fn rounded(mut self) -> Self {
        for v in [
            &mut self.allocated_memory_gib,
            &mut self.recommended_memory_gib,
            &mut self.allocated_storage_gib,
            &mut self.recommended_storage_gib,
            &mut self.monthly_compute,
            &mut self.monthly_storage,
            &mut self.monthly_total,
        ] {
            *v = round2(*v);
        }
        self
    }
}

/// Totals of one datacenter and cluster.
#[derive(Debug, Clone, Serialize)]
pub struct GroupTotals {
    pub vcenter: String,
    pub datacenter: String,
    pub cluster: String,
    #[serde(flatten)]
    pub totals: Totals,
}

/// One target's answer.
#[derive(Debug, Clone, Serialize)]
pub struct TargetResult {
    pub target: Cloud,
    pub region: String,
    pub totals: Totals,
    pub by_cluster: Vec<GroupTotals>,
    pub rows: Vec<Row>,
}

/// The settings as they were applied, in the output.
#[derive(Debug, Clone, Serialize)]
pub struct Applied {
    pub percentile: u32,
    pub history_days: u32,
    pub comfort: f64,
    pub basis: &'static str,
    pub sizing: &'static str,
    pub memory: &'static str,
    pub discount: f64,
    pub hours_per_month: f64,
    pub burstable: bool,
}

/// The whole answer.
#[derive(Debug, Clone, Serialize)]
pub struct Assessment {
    pub catalog_date: String,
    pub prices: &'static str,
    pub settings: Applied,
    pub history: History,
    pub targets: Vec<TargetResult>,
}

fn sizing_name(s: Sizing) -> &'static str {
    match s {
        Sizing::Performance => "performance",
        Sizing::AsOnPremises => "as-on-premises",
    }
}

impl Settings {
    /// The settings as the output shows them.
    pub fn applied(&self) -> Applied {
        Applied {
            percentile: self.percentile,
            history_days: self.history_days,
            comfort: self.comfort,
            basis: match self.basis {
                Basis::Peaks => "peaks",
                Basis::Samples => "samples",
            },
            sizing: sizing_name(self.sizing),
            memory: match self.memory {
                Memory::Active => "active",
                Memory::Consumed => "consumed",
                Memory::Max => "max",
            },
            discount: self.discount,
            hours_per_month: self.hours_per_month,
            burstable: self.burstable,
        }
    }
}

/// The store query of the assessment's counters over the history ending at `now_s`.
fn usage_query<'a>(s: &Settings, now_s: i64, vm: Option<(&'a str, &'a str)>) -> UsageQuery<'a> {
    UsageQuery {
        counters: &COUNTERS,
        from_s: history_start(s, now_s),
        to_s: now_s,
        samples: s.basis == Basis::Samples,
        vm,
    }
}

/// How long a vCenter's VMs were watched in the history (0 if not at all).
fn span_of(spans: &HashMap<String, (i64, i64)>, vcenter: &str) -> i64 {
    spans.get(vcenter).map_or(0, |(a, b)| b - a)
}

/// The first day of the history that ends at `now_s`.
fn history_start(s: &Settings, now_s: i64) -> i64 {
    (now_s - i64::from(s.history_days) * DAY_SECS).div_euclid(DAY_SECS) * DAY_SECS
}

/// Widens its vCenter's span to take in `u`'s windows.
fn widen(spans: &mut HashMap<String, (i64, i64)>, u: &SeriesUsage) {
    let e = spans
        .entry(u.vcenter.clone())
        .or_insert((u.first_s, u.end_s));
    *e = (e.0.min(u.first_s), e.1.max(u.end_s));
}

fn history_of(s: &Settings, from: i64, to: i64, spans: &HashMap<String, (i64, i64)>) -> History {
    let held_from = spans.values().map(|s| s.0).min();
    let held_to = spans.values().map(|s| s.1).max();
    History {
        requested_days: s.history_days,
        from,
        to,
        held_from,
        held_to,
        held_days: match (held_from, held_to) {
            (Some(a), Some(b)) => (((b - a) as f64 / DAY_SECS as f64) * 1000.0).round() / 1000.0,
            _ => 0.0,
        },
    }
}

/// One VM's series and its vCenter's span (from every CPU series of that vCenter, as in
/// the estate's answer).
fn read_one(
    store: &dyn Storage,
    s: &Settings,
    now_s: i64,
    vm: (&str, &str),
) -> Result<(Vec<SeriesUsage>, i64, History), StoreError> {
    let q = usage_query(s, now_s, Some(vm));
    let mut series = Vec::new();
    store.vm_usage(&q, &mut |u| series.push(u))?;
    let mut spans = HashMap::new();
    let q = UsageQuery {
        counters: &[CPU],
        vm: None,
        ..q
    };
    store.vm_usage(&q, &mut |u| {
        if u.vcenter == vm.0 {
            widen(&mut spans, &u);
        }
    })?;
    Ok((
        series,
        span_of(&spans, vm.0),
        history_of(s, q.from_s, now_s, &spans),
    ))
}

/// One VM judged: its figures, its requirements, and per target the decision and row.
#[derive(Debug)]
pub struct Judged {
    pub usage: VmUsage,
    pub sized: Sized,
    pub per_target: Vec<(Decision, Row)>,
}

impl Judged {
    /// The figures and the rows, the decisions dropped (the estate keeps no refusals).
    fn into_rows(self) -> (VmUsage, Vec<Row>) {
        (
            self.usage,
            self.per_target.into_iter().map(|(_, r)| r).collect(),
        )
    }
}

fn judge(
    vcenter: &str,
    vm: &Vm,
    series: &[SeriesUsage],
    span: i64,
    catalog: &Catalog,
    s: &Settings,
) -> Judged {
    let usage = vm_usage(vm, series, span, s);
    let sized = need_of(
        vm,
        (!series.is_empty()).then_some(&usage.utilization),
        s.sizing,
        s.comfort,
    );
    let per_target = s
        .targets
        .iter()
        .filter_map(|t| {
            let c = catalog.cloud(t.cloud)?;
            let decision = decide(c, &s.pricing(t), &sized.need);
            let row = row_of(vcenter, vm, t, &decision, &sized, &usage, s);
            Some((decision, row))
        })
        .collect();
    Judged {
        usage,
        sized,
        per_target,
    }
}

/// A row's confidence from its VM's coverage.
fn confidence(usage: &VmUsage, s: &Settings) -> Confidence {
    let coverage_pct = round2(usage.coverage_pct.unwrap_or(0.0));
    Confidence {
        stars: (s.sizing == Sizing::Performance).then(|| stars(coverage_pct)),
        coverage_pct,
    }
}

fn row_of(
    vcenter: &str,
    vm: &Vm,
    t: &Target,
    d: &Decision,
    sized: &Sized,
    usage: &VmUsage,
    s: &Settings,
) -> Row {
    let mut notes: Vec<String> = sized.fallback.map(str::to_owned).into_iter().collect();
    notes.extend(usage.notes.iter().cloned());
    Row {
        vm_id: vm.id.to_string(),
        name: vm.name.to_string(),
        vcenter: vcenter.to_owned(),
        datacenter: vm.datacenter.to_string(),
        cluster: vm.cluster.to_string(),
        target: t.cloud,
        region: t.region.clone(),
        sizing: sizing_name(sized.sizing),
        readiness: readiness(vm, t.cloud, d),
        recommended: d.size.as_ref().map(|p| Recommended {
            size: p.name.clone(),
            vcpus: p.vcpus,
            memory_gib: p.memory_gib,
        }),
        disks: sized
            .need
            .disks
            .iter()
            .zip(&d.disks)
            .map(|(n, pick)| match pick {
                Ok(p) => DiskRow {
                    disk: n.label.clone(),
                    tier: Some(p.tier.clone()),
                    size_gib: Some(p.size_gib),
                    monthly_cost: Some(round2(p.monthly_usd)),
                    refused: None,
                },
                Err(why) => DiskRow {
                    disk: n.label.clone(),
                    tier: None,
                    size_gib: None,
                    monthly_cost: None,
                    refused: Some(why.clone()),
                },
            })
            .collect(),
        monthly_cost: Cost {
            compute: d.size.as_ref().map(|p| round2(p.monthly_usd)),
            storage: round2(d.storage_usd()),
            total: d.total_usd().map(round2),
        },
        confidence: confidence(usage, s),
        utilization: UtilizationRow {
            cpu_pct: usage.utilization.cpu_pct.map(round2),
            memory_pct: usage.utilization.memory_pct.map(round2),
            iops: usage.iops.map(round2),
            mbps: usage.mbps.map(round2),
            network_mbps: usage.network_mbps.map(round2),
        },
        allocated: Allocated {
            vcpus: vm.num_cpu.unwrap_or(0),
            memory_gib: vm.memory_bytes.unwrap_or(0) as f64 / GIB,
            storage_gib: round2(
                vm.disks
                    .iter()
                    .map(|d| d.capacity_bytes.unwrap_or(0) as f64 / GIB)
                    .sum(),
            ),
        },
        notes,
    }
}

/// One VM of the estate: its figures at the settings' percentile, its rows (one per
/// target) and, when asked for, its figures at p95 and at the maximum.
#[derive(Debug, Clone)]
pub struct VmResult {
    pub usage: VmUsage,
    pub rows: Vec<Row>,
    pub p95: Figures,
    pub max: Figures,
}

/// The settings at p95 and at the maximum, for the Performance tab's figures.
struct Profiles {
    p95: Settings,
    max: Settings,
}

impl Profiles {
    fn of(s: &Settings) -> Self {
        let at = |percentile| Settings {
            percentile,
            targets: Vec::new(),
            ..s.clone()
        };
        Profiles {
            p95: at(95),
            max: at(100),
        }
    }

    fn result(profiles: Option<&Self>, vm: &Vm, series: &[SeriesUsage], j: Judged) -> VmResult {
        let (usage, rows) = j.into_rows();
        let figures = |s: &Settings| Figures::from(&vm_usage(vm, series, 0, s));
        VmResult {
            usage,
            rows,
            p95: profiles.map(|p| figures(&p.p95)).unwrap_or_default(),
            max: profiles.map(|p| figures(&p.max)).unwrap_or_default(),
        }
    }
}

/// Judges every VM of `vms` as its series stream in (VM by VM: only one VM's sketches
/// are held at a time), then sets each row's confidence once every vCenter's span is
/// known; returns each VM's result, in `vms`' order.
fn judge_streaming(
    store: &dyn Storage,
    catalog: &Catalog,
    s: &Settings,
    now_s: i64,
    vms: &[(String, Vm)],
    profiles: Option<&Profiles>,
) -> Result<(Vec<VmResult>, History), StoreError> {
    let index: HashMap<(&str, &str), usize> = vms
        .iter()
        .enumerate()
        .map(|(i, (vc, vm))| ((vc.as_str(), vm.id.as_str()), i))
        .collect();
    let mut judged: Vec<Option<VmResult>> = vec![None; vms.len()];
    let mut spans: HashMap<String, (i64, i64)> = HashMap::new();
    let mut current: Vec<SeriesUsage> = Vec::new();
    let mut judge_current = |current: &mut Vec<SeriesUsage>| {
        let Some(u) = current.first() else { return };
        if let Some(&i) = index.get(&(u.vcenter.as_str(), u.vm_id.as_str())) {
            let (vc, vm) = &vms[i];
            let j = judge(vc, vm, current, 0, catalog, s);
            judged[i] = Some(Profiles::result(profiles, vm, current, j));
        }
        current.clear();
    };
    let q = usage_query(s, now_s, None);
    store.vm_usage(&q, &mut |u| {
        let same = current
            .first()
            .is_some_and(|c| c.vcenter == u.vcenter && c.vm_id == u.vm_id);
        if !same {
            judge_current(&mut current);
        }
        if u.counter == CPU {
            widen(&mut spans, &u);
        }
        current.push(u);
    })?;
    judge_current(&mut current);
    let results = vms
        .iter()
        .zip(judged)
        .map(|((vc, vm), j)| {
            let mut r = j.unwrap_or_else(|| {
                Profiles::result(profiles, vm, &[], judge(vc, vm, &[], 0, catalog, s))
            });
            r.usage.set_span(span_of(&spans, vc));
            for row in &mut r.rows {
                row.confidence = confidence(&r.usage, s);
            }
            r
        })
        .collect();
    Ok((results, history_of(s, q.from_s, now_s, &spans)))
}

/// Assesses every VM of the latest inventories as of `now_s`.
pub fn assess(
    store: &dyn Storage,
    catalog: &Catalog,
    s: &Settings,
    now_s: i64,
) -> Result<Assessment, StoreError> {
    Ok(assess_estate(store, catalog, s, now_s, false)?.assessment)
}

/// The assessment and what it was made from: every VM record and, per VM (in the same
/// order), its figures; with `profile`, at p95 and at the maximum too.
#[derive(Debug)]
pub struct Estate {
    pub vms: Vec<(String, Vm)>,
    pub per_vm: Vec<VmResult>,
    pub assessment: Assessment,
}

/// Assesses every VM of the latest inventories as of `now_s`, keeping the records and
/// figures (the export's tabs are made from them).
pub fn assess_estate(
    store: &dyn Storage,
    catalog: &Catalog,
    s: &Settings,
    now_s: i64,
    profile: bool,
) -> Result<Estate, StoreError> {
    let mut vms: Vec<(String, Vm)> = Vec::new();
    store.vm_records(None, &mut |vc, vm| vms.push((vc.to_owned(), vm)))?;
    let profiles = profile.then(|| Profiles::of(s));
    let (mut per_vm, history) = judge_streaming(store, catalog, s, now_s, &vms, profiles.as_ref())?;
    let mut targets: Vec<TargetResult> = s
        .targets
        .iter()
        .map(|t| TargetResult {
            target: t.cloud,
            region: t.region.clone(),
            totals: Totals::default(),
            by_cluster: Vec::new(),
            rows: Vec::with_capacity(vms.len()),
        })
        .collect();
    for r in &mut per_vm {
        for (result, row) in targets.iter_mut().zip(std::mem::take(&mut r.rows)) {
            result.rows.push(row);
        }
    }
    for t in &mut targets {
        t.sum_up();
    }
    Ok(Estate {
        vms,
        per_vm,
        assessment: Assessment {
            catalog_date: catalog.snapshot_date.clone(),
            prices: PRICES_ARE,
            settings: s.applied(),
            history,
            targets,
        },
    })
}

impl TargetResult {
    /// The totals of the estate and of each datacenter and cluster, from the rows.
    fn sum_up(&mut self) {
        let mut groups: BTreeMap<(String, String, String), Totals> = BTreeMap::new();
        for r in &self.rows {
            self.totals.add(r);
            let key = (r.vcenter.clone(), r.datacenter.clone(), r.cluster.clone());
            groups.entry(key).or_default().add(r);
        }
        self.totals = std::mem::take(&mut self.totals).rounded();
        self.by_cluster = groups
            .into_iter()
            .map(|((vcenter, datacenter, cluster), totals)| GroupTotals {
                vcenter,
                datacenter,
                cluster,
                totals: totals.rounded(),
            })
            .collect();
    }
}

/// One VM in depth, as the estate's answer judges it.
#[derive(Debug)]
pub struct VmAssessment {
    pub vcenter: String,
    pub vm: Vm,
    pub judged: Judged,
    pub history: History,
}

/// One VM in depth (`vcenter` may be left out when the id is unique): `None` if no
/// inventory holds it.
pub fn assess_vm(
    store: &dyn Storage,
    catalog: &Catalog,
    s: &Settings,
    now_s: i64,
    vcenter: Option<&str>,
    vm_id: &str,
) -> Result<Option<VmAssessment>, StoreError> {
    let mut found = None;
    store.vm_records(Some((vcenter, vm_id)), &mut |vc, vm| {
        found.get_or_insert((vc.to_owned(), vm));
    })?;
    let Some((vcenter, vm)) = found else {
        return Ok(None);
    };
    let (series, span, history) = read_one(store, s, now_s, (&vcenter, vm_id))?;
    let judged = judge(&vcenter, &vm, &series, span, catalog, s);
    Ok(Some(VmAssessment {
        vcenter,
        vm,
        judged,
        history,
    }))
}

#[cfg(test)]
pub(crate) mod tests;
