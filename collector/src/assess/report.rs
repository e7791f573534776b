//! The assessment written out: JSON (the API's answer), CSV (a row per VM and target)
//! and a terminal table (a line per VM, then the totals); and one VM in depth.

use std::fmt::Write as _;

use serde_json::{json, Value};
use vscout_workbook::csv::line;

use super::estate::{Assessment, Row, Totals, VmAssessment};
use super::settings::Settings;

/// An output format of `assess`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
    Csv,
}

impl std::str::FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "table" => Ok(Self::Table),
            "json" => Ok(Self::Json),
            "csv" => Ok(Self::Csv),
            _ => Err(format!(
                "format {s:?} is not allowed: one of table, json, csv"
            )),
        }
    }
}

/// `a` in `format`.
pub fn render(a: &Assessment, format: Format) -> String {
    match format {
        Format::Json => serde_json::to_string_pretty(a).unwrap_or_default() + "\n",
        Format::Csv => csv(a),
        Format::Table => table(a),
    }
}

const CSV_HEADER: &[&str] = &[
    "target",
    "region",
    "vcenter",
    "datacenter",
    "cluster",
    "vm_id",
    "name",
    "readiness",
    "reasons",
    "sizing",
    "size",
    "vcpus",
    "memory_gib",
    "disks",
    "monthly_compute",
    "monthly_storage",
    "monthly_total",
    "stars",
    "coverage_pct",
    "cpu_pct",
    "memory_pct",
    "iops",
    "mbps",
    "network_mbps",
    "allocated_vcpus",
    "allocated_memory_gib",
    "notes",
];

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

fn status(r: &Row) -> String {
    r.readiness.status.as_str().to_owned()
}

fn csv_row(r: &Row) -> Vec<String> {
    let disks: Vec<String> = r
        .disks
        .iter()
        .map(|d| match (&d.tier, d.size_gib) {
            (Some(t), Some(g)) => format!("{}: {t} {g} GiB", d.disk),
            _ => format!("{}: none", d.disk),
        })
        .collect();
    vec![
        r.target.to_string(),
        r.region.clone(),
        r.vcenter.clone(),
        r.datacenter.clone(),
        r.cluster.clone(),
        r.vm_id.clone(),
        r.name.clone(),
        status(r),
        r.readiness.reasons.join("; "),
        r.sizing.to_owned(),
        opt(r.recommended.as_ref().map(|s| s.size.clone())),
        opt(r.recommended.as_ref().map(|s| s.vcpus)),
        opt(r.recommended.as_ref().map(|s| s.memory_gib)),
        disks.join("; "),
        opt(r.monthly_cost.compute),
        r.monthly_cost.storage.to_string(),
        opt(r.monthly_cost.total),
        opt(r.confidence.stars),
        r.confidence.coverage_pct.to_string(),
        opt(r.utilization.cpu_pct),
        opt(r.utilization.memory_pct),
        opt(r.utilization.iops),
        opt(r.utilization.mbps),
        opt(r.utilization.network_mbps),
        r.allocated.vcpus.to_string(),
        r.allocated.memory_gib.to_string(),
        r.notes.join("; "),
    ]
}

/// A row per VM and target, RFC 4180 (`vscout_workbook::csv`, as every CSV of ours).
fn csv(a: &Assessment) -> String {
    let mut out = String::new();
    line(&mut out, CSV_HEADER);
    for t in &a.targets {
        for r in &t.rows {
            line(&mut out, csv_row(r));
        }
    }
    out
}

fn money(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.2}"))
}

fn totals_line(out: &mut String, label: &str, t: &Totals) {
    let _ = writeln!(
        out,
        "{label}: {} VMs ({} ready, {} conditionally, {} not ready, {} unknown); vCPU {} → {}; memory {:.0} → {:.0} GiB; storage {:.0} → {:.0} GiB; ${:.2}/month (compute {:.2}, storage {:.2}){}",
        t.vms, t.ready, t.conditionally_ready, t.not_ready, t.unknown,
        t.allocated_vcpus, t.recommended_vcpus, t.allocated_memory_gib, t.recommended_memory_gib,
        t.allocated_storage_gib, t.recommended_storage_gib, t.monthly_total, t.monthly_compute,
        t.monthly_storage,
        if t.vms_without_price > 0 { format!("; {} VMs without a price", t.vms_without_price) } else { String::new() }
    );
}

fn table(a: &Assessment) -> String {
    let mut out = String::new();
    let h = &a.history;
    let _ = writeln!(
        out,
        "catalog {}; {}; p{} of {} over {} days asked, {} held; comfort {}; sizing {}",
        a.catalog_date,
        a.prices,
        a.settings.percentile,
        a.settings.basis,
        h.requested_days,
        h.held_days,
        a.settings.comfort,
        a.settings.sizing
    );
    for t in &a.targets {
        let _ = writeln!(out, "\n{} {}", t.target, t.region);
        let _ = writeln!(
            out,
            "{:<28} {:<20} {:<22} {:>5} {:>8} {:>10} {:>5} {:>6}",
            "VM", "READINESS", "SIZE", "VCPU", "MEM GIB", "$/MONTH", "STARS", "COVER%"
        );
        for r in &t.rows {
            let _ = writeln!(
                out,
                "{:<28} {:<20} {:<22} {:>5} {:>8} {:>10} {:>5} {:>6.1}",
                r.name.chars().take(28).collect::<String>(),
                status(r),
                opt(r.recommended.as_ref().map(|s| s.size.clone())),
                opt(r.recommended.as_ref().map(|s| s.vcpus)),
                opt(r.recommended.as_ref().map(|s| s.memory_gib)),
                money(r.monthly_cost.total),
                opt(r.confidence.stars),
                r.confidence.coverage_pct
            );
        }
        totals_line(&mut out, &format!("{} total", t.target), &t.totals);
    }
    out
}

/// One VM in depth: the inputs, the figures and the series behind them, and per target
/// the answer with every size refused and why.
pub fn vm_detail(v: &VmAssessment, s: &Settings) -> Value {
    let j = &v.judged;
    let need = &j.sized.need;
    let targets: Vec<Value> = j
        .per_target
        .iter()
        .map(|(decision, row)| {
            json!({
                "row": row,
                "sizes_refused": decision.refused.iter().map(|(size, why)| json!({
                    "size": size, "reason": why.to_string(),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({
        "vm_id": v.vm.id,
        "name": v.vm.name,
        "vcenter": v.vcenter,
        "settings": s.applied(),
        "history": v.history,
        "inputs": {
            "allocated": {
                "vcpus": v.vm.num_cpu,
                "memory_bytes": v.vm.memory_bytes,
                "disks": v.vm.disks.iter().map(|d| json!({
                    "key": d.key, "label": d.label, "capacity_bytes": d.capacity_bytes,
                })).collect::<Vec<_>>(),
                "nics": v.vm.nics.len(),
                "guest_id": v.vm.guest_id,
                "firmware": v.vm.firmware,
            },
            "sizing": j.per_target.first().map(|(_, r)| r.sizing),
            "fallback": j.sized.fallback,
        },
        "utilization": {
            "cpu_pct": j.usage.utilization.cpu_pct,
            "memory_pct": j.usage.utilization.memory_pct,
            "disks": j.usage.utilization.disks.iter().map(|d| json!({
                "key": d.key, "iops": d.iops, "mbps": d.mbps,
            })).collect::<Vec<_>>(),
            "iops": j.usage.iops,
            "mbps": j.usage.mbps,
            "network_mbps": j.usage.network_mbps,
            "coverage_pct": j.usage.coverage_pct,
            "series": j.usage.fed,
            "notes": j.usage.notes,
        },
        "requirement": {
            "vcpus": need.vcpus,
            "memory_gib": need.memory_gib,
            "disks": need.disks.iter().map(|d| json!({
                "disk": d.label, "size_gib": d.size_gib, "iops": d.iops, "mbps": d.mbps,
            })).collect::<Vec<_>>(),
            "nics": need.nics,
            "iops": need.iops,
            "mbps": need.mbps,
        },
        "targets": targets,
    })
}
