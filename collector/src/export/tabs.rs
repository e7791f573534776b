//! The export's own tabs after RVTools' inventory tabs: Assessment (a row per VM and
//! target), Summary (the estate's totals per target, then per datacenter and cluster),
//! Performance (per VM: p95 and maximum over the history, and the coverage) and Settings
//! (what the assessment was made with). Declared column by column, as the inventory tabs
//! are.

use std::collections::{BTreeMap, HashMap};

use vscout_wire::inventory::{VcenterInventory, Vm};
use vscout_workbook::columns::{Col, CustomValues, Tab};
use vscout_workbook::{Book, Cell, WorkbookError};

use crate::assess::estate::{Assessment, Row, Totals, VmResult};
use crate::assess::utilization::Figures;

use Col::Has;

/// The export's tabs carry no custom attribute columns.
macro_rules! no_custom_values {
    ($($t:ty),*) => {$(
        impl CustomValues for $t {
            fn custom_value(&self, _: &str) -> Option<&str> {
                None
            }
        }
    )*};
}

/// One row of the Assessment tab.
struct Assessed<'a>(&'a Row);
/// One row of the Summary tab: a scope's totals for a target.
struct Scope<'a> {
    target: String,
    region: &'a str,
    scope: &'static str,
    vcenter: &'a str,
    datacenter: &'a str,
    cluster: &'a str,
    totals: Totals,
}
/// One row of the Performance tab.
struct Perf<'a> {
    vcenter: &'a str,
    vm: &'a Vm,
    result: Option<&'a VmResult>,
}
no_custom_values!(Assessed<'_>, Scope<'_>, Perf<'_>);

fn num(v: Option<f64>) -> Cell<'static> {
    Cell::opt_num(v.map(|v| (v * 100.0).round() / 100.0))
}

fn assessed_cols<'a>() -> Vec<Col<Assessed<'a>>> {
    vec![
        Has("Target", |r| Cell::Text(r.0.target.as_str())),
        Has("Region", |r| Cell::Text(&r.0.region)),
        Has("VM", |r| Cell::Text(&r.0.name)),
        Has("vCenter", |r| Cell::Text(&r.0.vcenter)),
        Has("Datacenter", |r| Cell::Text(&r.0.datacenter)),
        Has("Cluster", |r| Cell::Text(&r.0.cluster)),
        Has("VM ID", |r| Cell::Text(&r.0.vm_id)),
        Has("Readiness", |r| Cell::Text(r.0.readiness.status.as_str())),
        Has("Reasons", |r| Cell::Owned(r.0.readiness.reasons.join("; "))),
        Has("Sizing", |r| Cell::Text(r.0.sizing)),
        Has("Size", |r| {
            Cell::opt_text(r.0.recommended.as_ref().map(|s| s.size.as_str()))
        }),
        Has("vCPUs", |r| {
            Cell::opt_int(r.0.recommended.as_ref().map(|s| s.vcpus))
        }),
        Has("Memory GiB", |r| {
            num(r.0.recommended.as_ref().map(|s| s.memory_gib))
        }),
        Has("Disks", |r| Cell::Owned(disks(r.0))),
        Has("Disk GiB", |r| {
            Cell::Int(r.0.disks.iter().filter_map(|d| d.size_gib).sum::<u64>() as i64)
        }),
        Has("Compute USD/month", |r| num(r.0.monthly_cost.compute)),
        Has("Storage USD/month", |r| num(Some(r.0.monthly_cost.storage))),
        Has("Total USD/month", |r| num(r.0.monthly_cost.total)),
        Has("Stars", |r| Cell::opt_int(r.0.confidence.stars)),
        Has("Coverage %", |r| num(Some(r.0.confidence.coverage_pct))),
        Has("CPU %", |r| num(r.0.utilization.cpu_pct)),
        Has("Memory %", |r| num(r.0.utilization.memory_pct)),
        Has("IOPS", |r| num(r.0.utilization.iops)),
        Has("MB/s", |r| num(r.0.utilization.mbps)),
        Has("Network MB/s", |r| num(r.0.utilization.network_mbps)),
        Has("Allocated vCPUs", |r| {
            Cell::Int(i64::from(r.0.allocated.vcpus))
        }),
        Has("Allocated memory GiB", |r| {
            num(Some(r.0.allocated.memory_gib))
        }),
        Has("Allocated storage GiB", |r| {
            num(Some(r.0.allocated.storage_gib))
        }),
        Has("Notes", |r| Cell::Owned(r.0.notes.join("; "))),
    ]
}

/// `Hard disk 1: P10 128 GiB; Hard disk 2: none (why)`.
fn disks(r: &Row) -> String {
    r.disks
        .iter()
        .map(|d| match (&d.tier, d.size_gib, &d.refused) {
            (Some(t), Some(g), _) => format!("{}: {t} {g} GiB", d.disk),
            (_, _, Some(why)) => format!("{}: none ({why})", d.disk),
            _ => format!("{}: none", d.disk),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// A row per VM and target, target after target.
pub(super) fn assessment(book: &mut Book, a: &Assessment) -> Result<(), WorkbookError> {
    let tab = Tab {
        name: "Assessment",
        cols: assessed_cols(),
    };
    tab.write(
        book,
        &[],
        a.targets.iter().flat_map(|t| t.rows.iter().map(Assessed)),
    )
}

fn int(v: u64) -> Cell<'static> {
    Cell::Int(v as i64)
}

fn scope_cols<'a>() -> Vec<Col<Scope<'a>>> {
    vec![
        Has("Target", |r| Cell::Text(&r.target)),
        Has("Region", |r| Cell::Text(r.region)),
        Has("Scope", |r| Cell::Text(r.scope)),
        Has("vCenter", |r| Cell::Text(r.vcenter)),
        Has("Datacenter", |r| Cell::Text(r.datacenter)),
        Has("Cluster", |r| Cell::Text(r.cluster)),
        Has("VMs", |r| int(r.totals.vms)),
        Has("Ready", |r| int(r.totals.ready)),
        Has("Conditionally ready", |r| int(r.totals.conditionally_ready)),
        Has("Not ready", |r| int(r.totals.not_ready)),
        Has("Unknown", |r| int(r.totals.unknown)),
        Has("Allocated vCPUs", |r| int(r.totals.allocated_vcpus)),
        Has("Recommended vCPUs", |r| int(r.totals.recommended_vcpus)),
        Has("Allocated memory GiB", |r| {
            num(Some(r.totals.allocated_memory_gib))
        }),
        Has("Recommended memory GiB", |r| {
            num(Some(r.totals.recommended_memory_gib))
        }),
        Has("Allocated storage GiB", |r| {
            num(Some(r.totals.allocated_storage_gib))
        }),
        Has("Recommended storage GiB", |r| {
            num(Some(r.totals.recommended_storage_gib))
        }),
        Has("Compute USD/month", |r| num(Some(r.totals.monthly_compute))),
        Has("Storage USD/month", |r| num(Some(r.totals.monthly_storage))),
        Has("Total USD/month", |r| num(Some(r.totals.monthly_total))),
        Has("VMs without price", |r| int(r.totals.vms_without_price)),
    ]
}

/// Per target: the estate, then each datacenter followed by its clusters.
pub(super) fn summary(book: &mut Book, a: &Assessment) -> Result<(), WorkbookError> {
    let mut rows: Vec<Scope<'_>> = Vec::new();
    for t in &a.targets {
        let scope = |scope, vcenter, datacenter, cluster, totals| Scope {
            target: t.target.to_string(),
            region: &t.region,
            scope,
            vcenter,
            datacenter,
            cluster,
            totals,
        };
        rows.push(scope("Estate", "", "", "", t.totals.clone()));
        let mut datacenters: BTreeMap<(&str, &str), Totals> = BTreeMap::new();
        for r in &t.rows {
            datacenters
                .entry((&r.vcenter, &r.datacenter))
                .or_default()
                .add(r);
        }
        for ((vcenter, datacenter), totals) in datacenters {
            rows.push(scope(
                "Datacenter",
                vcenter,
                datacenter,
                "",
                totals.rounded(),
            ));
            for g in t
                .by_cluster
                .iter()
                .filter(|g| g.vcenter == vcenter && g.datacenter == datacenter)
            {
                rows.push(scope(
                    "Cluster",
                    &g.vcenter,
                    &g.datacenter,
                    &g.cluster,
                    g.totals.clone(),
                ));
            }
        }
    }
    Tab {
        name: "Summary",
        cols: scope_cols(),
    }
    .write(book, &[], rows.into_iter())
}

/// The figure `f` of a VM at p95 (`max` false) or at its maximum.
fn fig(r: &Perf<'_>, max: bool, f: fn(&Figures) -> Option<f64>) -> Cell<'static> {
    num(r.result.and_then(|x| f(if max { &x.max } else { &x.p95 })))
}

fn perf_cols<'a>() -> Vec<Col<Perf<'a>>> {
    vec![
        Has("VM", |r| Cell::Text(&r.vm.name)),
        Has("Powerstate", |r| {
            Cell::opt_text(r.vm.power_state.as_deref())
        }),
        Has("vCenter", |r| Cell::Text(r.vcenter)),
        Has("Datacenter", |r| Cell::Text(&r.vm.datacenter)),
        Has("Cluster", |r| Cell::Text(&r.vm.cluster)),
        Has("CPUs", |r| Cell::opt_int(r.vm.num_cpu)),
        Has("Memory MiB", |r| {
            vscout_workbook::sheet::mib(r.vm.memory_bytes)
        }),
        Has("CPU % p95", |r| fig(r, false, |f| f.cpu_pct)),
        Has("CPU % max", |r| fig(r, true, |f| f.cpu_pct)),
        Has("Memory % p95", |r| fig(r, false, |f| f.memory_pct)),
        Has("Memory % max", |r| fig(r, true, |f| f.memory_pct)),
        Has("IOPS p95", |r| fig(r, false, |f| f.iops)),
        Has("IOPS max", |r| fig(r, true, |f| f.iops)),
        Has("MB/s p95", |r| fig(r, false, |f| f.mbps)),
        Has("MB/s max", |r| fig(r, true, |f| f.mbps)),
        Has("Network MB/s p95", |r| fig(r, false, |f| f.network_mbps)),
        Has("Network MB/s max", |r| fig(r, true, |f| f.network_mbps)),
        Has("Coverage %", |r| {
            num(r.result.and_then(|x| x.usage.coverage_pct))
        }),
        Has("Series", |r| {
            int(r.result.map_or(0, |x| x.usage.fed.len() as u64))
        }),
        Has("VM ID", |r| Cell::Text(&r.vm.id)),
    ]
}

/// A row per VM of every inventory, with its figures over the history.
pub(super) fn performance(
    book: &mut Book,
    inventories: &[VcenterInventory],
    results: &HashMap<(&str, &str), &VmResult>,
) -> Result<(), WorkbookError> {
    let rows = inventories.iter().flat_map(|vc| {
        vc.vms.iter().map(move |vm| Perf {
            vcenter: &vc.name,
            vm,
            result: results.get(&(vc.name.as_str(), vm.id.as_str())).copied(),
        })
    });
    Tab {
        name: "Performance",
        cols: perf_cols(),
    }
    .write(book, &[], rows)
}

/// A setting and its value.
struct Setting(&'static str, Cell<'static>);
no_custom_values!(Setting);

/// What the assessment was made with, as `Setting, Value` rows.
pub(super) fn settings(book: &mut Book, a: &Assessment) -> Result<(), WorkbookError> {
    let s = &a.settings;
    let h = &a.history;
    let text = |v: &str| Cell::Owned(v.to_owned());
    let date = |t: Option<i64>| t.map_or(Cell::Empty, |t| Cell::Date(t * 1000));
    let targets: Vec<String> = a
        .targets
        .iter()
        .map(|t| format!("{} {}", t.target, t.region))
        .collect();
    let rows = vec![
        Setting("Catalog date", text(&a.catalog_date)),
        Setting("Prices", text(a.prices)),
        Setting("Targets", Cell::Owned(targets.join("; "))),
        Setting("Sizing", text(s.sizing)),
        Setting("Percentile", Cell::Int(i64::from(s.percentile))),
        Setting("Basis", text(s.basis)),
        Setting("Memory", text(s.memory)),
        Setting("Comfort factor", Cell::Num(s.comfort)),
        Setting("Discount", Cell::Num(s.discount)),
        Setting("Hours per month", Cell::Num(s.hours_per_month)),
        Setting("Burstable sizes", Cell::Bool(s.burstable)),
        Setting("History days asked", Cell::Int(i64::from(h.requested_days))),
        Setting("History days held", Cell::Num(h.held_days)),
        Setting("History held from", date(h.held_from)),
        Setting("History held to", date(h.held_to)),
        Setting(
            "Performance tab",
            text("p95 and maximum over the history on the same basis, whatever the percentile; the maximum within the sketches' relative accuracy"),
        ),
    ];
    Tab {
        name: "Settings",
        cols: vec![
            Has("Setting", |r: &Setting| Cell::Text(r.0)),
            Has("Value", |r| r.1.clone()),
        ],
    }
    .write(book, &[], rows.into_iter())
}
