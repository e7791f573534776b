//! The fleet exported, from one read of the store and one assessment: the RVTools-
//! compatible workbook (every vCenter's inventory tabs, then Assessment, Summary,
//! Performance and Settings) and Azure Migrate's CSV import with its utilization columns.
//! `GET /v1/export.xlsx`, `GET /v1/export.csv` and `vscout-collector export` all call
//! `export`.

pub mod cli;
mod tabs;

use std::collections::HashMap;

use vscout_wire::inventory::{VcenterInventory, Vm};
use vscout_workbook::azure_migrate::{self, DiskUsage, Usage};
use vscout_workbook::{rvtools, Book, WorkbookError};

use crate::assess::catalog::Catalog;
use crate::assess::estate::{assess_estate, Assessment, Estate, VmResult};
use crate::assess::settings::Settings;
use crate::store::{Storage, StoreError};

/// What `export` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Xlsx,
    AzureMigrateCsv,
}

impl std::str::FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "xlsx" => Ok(Self::Xlsx),
            "azure-migrate-csv" => Ok(Self::AzureMigrateCsv),
            _ => Err(format!(
                "format {s:?} is not allowed: xlsx or azure-migrate-csv"
            )),
        }
    }
}

impl Format {
    /// The HTTP content type of the file.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Xlsx => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            Self::AzureMigrateCsv => "text/csv; charset=utf-8",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Workbook(#[from] WorkbookError),
}

impl ExportError {
    /// A store that is busy may answer later; a workbook that cannot be made will not.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Store(e) => e.is_retryable(),
            Self::Workbook(e) => e.is_retryable(),
        }
    }
}

/// The file, and the assessment it holds (for the caller's summary line).
#[derive(Debug)]
pub struct Exported {
    pub bytes: Vec<u8>,
    pub assessment: Assessment,
}

/// The fleet as `format`, assessed with `s` as of `now_s`.
pub fn export(
    store: &dyn Storage,
    catalog: &Catalog,
    s: &Settings,
    now_s: i64,
    format: Format,
) -> Result<Exported, ExportError> {
    let estate = assess_estate(store, catalog, s, now_s, format == Format::Xlsx)?;
    match format {
        Format::Xlsx => workbook(store, estate),
        Format::AzureMigrateCsv => {
            let usage: Vec<Usage> = estate.per_vm.iter().map(usage_of).collect();
            let text = azure_migrate::write(
                estate
                    .vms
                    .iter()
                    .zip(&usage)
                    .map(|((_, vm), u)| (vm, Some(u))),
            );
            Ok(Exported {
                bytes: text.into_bytes(),
                assessment: estate.assessment,
            })
        }
    }
}

/// The inventory tabs (the VM records moved into their vCenters' inventories), then the
/// assessment's.
fn workbook(store: &dyn Storage, estate: Estate) -> Result<Exported, ExportError> {
    let Estate {
        vms,
        per_vm,
        assessment,
    } = estate;
    let inventories = with_vms(store.inventories()?, vms);
    let results: HashMap<(&str, &str), &VmResult> = inventories
        .iter()
        .flat_map(|vc| vc.vms.iter().map(move |vm| (vc.name.as_str(), vm)))
        .zip(&per_vm)
        .map(|((vc, vm), r)| ((vc, vm.id.as_str()), r))
        .collect();
    let mut book = Book::new();
    rvtools::write_inventory(&mut book, &inventories)?;
    tabs::assessment(&mut book, &assessment)?;
    tabs::summary(&mut book, &assessment)?;
    tabs::performance(&mut book, &inventories, &results)?;
    tabs::settings(&mut book, &assessment)?;
    Ok(Exported {
        bytes: book.to_bytes()?,
        assessment,
    })
}

/// Each VM moved into its vCenter's inventory, in the order `vms` had (a vCenter the
/// store has VMs but no head for gets a bare one). The VM results were made in that same
/// order, so `per_vm` lines up with the inventories' VMs read vCenter after vCenter.
fn with_vms(mut heads: Vec<VcenterInventory>, vms: Vec<(String, Vm)>) -> Vec<VcenterInventory> {
    let mut order: Vec<VcenterInventory> = Vec::with_capacity(heads.len());
    for (vc, vm) in vms {
        if order.last().is_none_or(|l| l.name != vc) {
            let head = match heads.iter().position(|h| h.name == vc) {
                Some(i) => heads.swap_remove(i),
                None => VcenterInventory {
                    name: vc.as_str().into(),
                    ..VcenterInventory::default()
                },
            };
            order.push(head);
        }
        if let Some(l) = order.last_mut() {
            l.vms.push(vm);
        }
    }
    heads.sort_by(|a, b| a.name.cmp(&b.name));
    order.extend(heads);
    order
}

/// A VM's figures at the assessment's percentile, as Azure Migrate's import takes them.
fn usage_of(r: &VmResult) -> Usage {
    let u = &r.usage;
    Usage {
        cpu_pct: u.utilization.cpu_pct,
        memory_pct: u.utilization.memory_pct,
        network_in_mbps: u.network_in_mbps,
        network_out_mbps: u.network_out_mbps,
        disks: u
            .utilization
            .disks
            .iter()
            .map(|d| DiskUsage {
                key: d.key,
                read_iops: d.split.read_iops,
                write_iops: d.split.write_iops,
                read_mbps: d.split.read_mbps,
                write_mbps: d.split.write_mbps,
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests;
