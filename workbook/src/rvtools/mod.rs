//! The inventory as RVTools 4.x lays it out: tabs vInfo, vCPU, vMemory, vDisk,
//! vPartition, vNetwork, vSnapshot, vHost, vCluster, vDatastore and vSource, their
//! columns named and ordered as RVTools writes them, sizes in MiB, vSphere's own
//! spellings of states and guest OS names. Columns vscout does not read are left out
//! (the tab keeps RVTools' order for the rest); `column_table` lists every one.

mod entities;
mod vms;

use std::collections::{BTreeSet, HashMap};

use vscout_wire::inventory::{VcenterInventory, Vm};

use crate::columns::{Col, CustomValues};
use crate::sheet::Book;
use crate::WorkbookError;

/// One vCenter and how RVTools names it ("VI SDK Server": the host name it was reached
/// at).
#[derive(Debug)]
pub struct Source<'a> {
    pub vc: &'a VcenterInventory,
    pub server: String,
}

impl<'a> Source<'a> {
    pub fn new(vc: &'a VcenterInventory) -> Self {
        Source {
            vc,
            server: server_name(&vc.url),
        }
    }
}

/// `https://vc.example:443/sdk` → `vc.example`.
fn server_name(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let host = rest.split(['/', '?']).next().unwrap_or(rest);
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    if let Some(v6) = host.strip_prefix('[') {
        return v6.split(']').next().unwrap_or(v6).to_owned();
    }
    host.split(':').next().unwrap_or(host).to_owned()
}

/// A VM of a vCenter, for the VM tabs.
#[derive(Debug, Clone, Copy)]
pub struct VmRow<'a> {
    pub src: &'a Source<'a>,
    pub vm: &'a Vm,
}

/// One item of a VM (disk, NIC, partition, snapshot) with its VM.
#[derive(Debug, Clone, Copy)]
pub struct Of<'a, T> {
    pub src: &'a Source<'a>,
    pub vm: &'a Vm,
    pub item: &'a T,
}

/// What the VM tabs share: the VM and its vCenter.
pub trait OfVm {
    fn src(&self) -> &Source<'_>;
    fn vm(&self) -> &Vm;
}

impl OfVm for VmRow<'_> {
    fn src(&self) -> &Source<'_> {
        self.src
    }
    fn vm(&self) -> &Vm {
        self.vm
    }
}

impl<T> OfVm for Of<'_, T> {
    fn src(&self) -> &Source<'_> {
        self.src
    }
    fn vm(&self) -> &Vm {
        self.vm
    }
}

impl CustomValues for VmRow<'_> {
    fn custom_value(&self, name: &str) -> Option<&str> {
        self.vm.custom_attributes.get(name).map(|v| v.as_str())
    }
}

impl<T> CustomValues for Of<'_, T> {
    fn custom_value(&self, name: &str) -> Option<&str> {
        self.vm.custom_attributes.get(name).map(|v| v.as_str())
    }
}

/// The inventory tabs' names, in the order they are written.
pub const TABS: &[&str] = &[
    "vInfo",
    "vCPU",
    "vMemory",
    "vDisk",
    "vPartition",
    "vNetwork",
    "vSnapshot",
    "vHost",
    "vCluster",
    "vDatastore",
    "vSource",
];

/// Writes the inventory tabs for every vCenter of `inventories` (one row per item,
/// vCenter after vCenter).
pub fn write_inventory(
    book: &mut Book,
    inventories: &[VcenterInventory],
) -> Result<(), WorkbookError> {
    let sources: Vec<Source<'_>> = inventories.iter().map(Source::new).collect();
    let custom: Vec<String> = inventories
        .iter()
        .flat_map(|vc| vc.vms.iter())
        .flat_map(|vm| vm.custom_attributes.keys().map(|k| k.to_string()))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let vm_rows = || {
        sources
            .iter()
            .flat_map(|src| src.vc.vms.iter().map(move |vm| VmRow { src, vm }))
    };
    vms::info().write(book, &custom, vm_rows())?;
    vms::cpu().write(book, &custom, vm_rows())?;
    vms::memory().write(book, &custom, vm_rows())?;
    vms::disk().write(
        book,
        &custom,
        vm_rows().flat_map(|r| r.vm.disks.iter().map(move |item| r.of(item))),
    )?;
    vms::partition().write(
        book,
        &custom,
        vm_rows().flat_map(|r| r.vm.partitions.iter().map(move |item| r.of(item))),
    )?;
    vms::network().write(
        book,
        &custom,
        vm_rows().flat_map(|r| r.vm.nics.iter().map(move |item| r.of(item))),
    )?;
    vms::snapshot().write(
        book,
        &custom,
        vm_rows().flat_map(|r| r.vm.snapshots.iter().map(move |item| r.of(item))),
    )?;
    entities::write(book, &sources)
}

impl<'a> VmRow<'a> {
    fn of<T>(self, item: &'a T) -> Of<'a, T> {
        Of {
            src: self.src,
            vm: self.vm,
            item,
        }
    }
}

/// Per host, cluster and datastore: the VMs' figures RVTools sums up for them.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct VmTotals {
    pub vms: u64,
    pub powered_on: u64,
    pub vcpus: u64,
    pub memory_bytes: u64,
}

impl VmTotals {
    fn add(&mut self, vm: &Vm) {
        if vm.template {
            return;
        }
        self.vms += 1;
        if vm.power_state.as_deref() == Some("poweredOn") {
            self.powered_on += 1;
        }
        self.vcpus += u64::from(vm.num_cpu.unwrap_or(0));
        self.memory_bytes += vm.memory_bytes.unwrap_or(0);
    }
}

/// Totals keyed by a name the VM gives (its host id, or each datastore of its disks).
pub(crate) fn totals_by<'v>(
    vms: &'v [Vm],
    keys: impl Fn(&'v Vm) -> Vec<&'v str>,
) -> HashMap<&'v str, VmTotals> {
    let mut out: HashMap<&str, VmTotals> = HashMap::new();
    for vm in vms {
        let mut ks = keys(vm);
        ks.sort_unstable();
        ks.dedup();
        for k in ks {
            out.entry(k).or_default().add(vm);
        }
    }
    out
}

/// Every RVTools column of the inventory tabs, as a Markdown table per tab: written by
/// vscout (and from what), or left out and why.
pub fn column_table() -> String {
    let mut out = String::new();
    let mut tab = |name: &str, cols: Vec<(&'static str, Option<&'static str>)>| {
        out.push_str(&format!("### {name}\n\n| Column | vscout |\n|---|---|\n"));
        for (h, why) in cols {
            let cell = why.map_or_else(|| "written".to_owned(), |w| format!("absent: {w}"));
            out.push_str(&format!("| {h} | {cell} |\n"));
        }
        out.push('\n');
    };
    tab("vInfo", listing(&vms::info().cols));
    tab("vCPU", listing(&vms::cpu().cols));
    tab("vMemory", listing(&vms::memory().cols));
    tab("vDisk", listing(&vms::disk().cols));
    tab("vPartition", listing(&vms::partition().cols));
    tab("vNetwork", listing(&vms::network().cols));
    tab("vSnapshot", listing(&vms::snapshot().cols));
    tab("vHost", listing(&entities::host().cols));
    tab("vCluster", listing(&entities::cluster().cols));
    tab("vDatastore", listing(&entities::datastore().cols));
    tab("vSource", listing(&entities::source().cols));
    out
}

fn listing<R>(cols: &[Col<R>]) -> Vec<(&'static str, Option<&'static str>)> {
    cols.iter()
        .map(|c| match c {
            Col::Not(h, why) => (*h, Some(*why)),
            c => (c.header(), None),
        })
        .collect()
}

/// The headers `write_inventory` gives each tab when the estate has the custom
/// attributes `custom`: what a reader of the workbook should find.
pub fn headers(custom: &[String]) -> Vec<(&'static str, Vec<String>)> {
    fn present<R>(cols: &[Col<R>], custom: &[String]) -> Vec<String> {
        let mut out = Vec::new();
        for c in cols {
            match c {
                Col::Has(h, _) => out.push((*h).to_owned()),
                Col::Not(..) => {}
                Col::Custom => out.extend(custom.iter().cloned()),
            }
        }
        out
    }
    vec![
        ("vInfo", present(&vms::info().cols, custom)),
        ("vCPU", present(&vms::cpu().cols, custom)),
        ("vMemory", present(&vms::memory().cols, custom)),
        ("vDisk", present(&vms::disk().cols, custom)),
        ("vPartition", present(&vms::partition().cols, custom)),
        ("vNetwork", present(&vms::network().cols, custom)),
        ("vSnapshot", present(&vms::snapshot().cols, custom)),
        ("vHost", present(&entities::host().cols, custom)),
        ("vCluster", present(&entities::cluster().cols, custom)),
        ("vDatastore", present(&entities::datastore().cols, custom)),
        ("vSource", present(&entities::source().cols, custom)),
    ]
}

#[cfg(test)]
mod tests;
