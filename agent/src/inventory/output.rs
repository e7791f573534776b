//! Writes an inventory to a directory: `inventory.json` with everything, one CSV file
//! per table (disks and NICs in their own files keyed by vCenter and VM id), the
//! RVTools-compatible `inventory.xlsx`, or Azure Migrate's CSV import
//! (`azure-migrate.csv`, without utilization: the agent's one-off inventory measures
//! none). Files are written to a temporary name and renamed into place, so a
//! reader never sees half a file.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use super::model::{
    Cluster, Datacenter, Datastore, Disk, Host, Inventory, Network, Nic, VcenterInventory, Vm,
};

/// Output format of `vscout inventory`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Json,
    Csv,
    Xlsx,
    AzureMigrateCsv,
}

/// Writes `inventory.xlsx` (RVTools' tabs and columns) into `dir`.
pub fn write_xlsx(inv: &Inventory, dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut book = vscout_workbook::Book::new();
    vscout_workbook::rvtools::write_inventory(&mut book, &inv.vcenters)
        .and_then(|()| book.to_bytes())
        .map_err(std::io::Error::other)
        .and_then(|bytes| {
            let path = dir.join("inventory.xlsx");
            atomic_write(&path, |w| w.write_all(&bytes))?;
            Ok(vec![path])
        })
}

/// Writes `azure-migrate.csv`, Azure Migrate's import template, into `dir`.
pub fn write_azure_migrate(inv: &Inventory, dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let vms = inv
        .vcenters
        .iter()
        .flat_map(|vc| vc.vms.iter().map(|vm| (vm, None)));
    let text = vscout_workbook::azure_migrate::write(vms);
    let path = dir.join("azure-migrate.csv");
    atomic_write(&path, |w| w.write_all(text.as_bytes()))?;
    Ok(vec![path])
}

/// Writes `inventory.json` into `dir`; returns its path.
pub fn write_json(inv: &Inventory, dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let path = dir.join("inventory.json");
    atomic_write(&path, |w| {
        serde_json::to_writer_pretty(&mut *w, inv).map_err(std::io::Error::other)
    })?;
    Ok(vec![path])
}

fn opt<T: ToString>(v: &Option<T>) -> String {
    v.as_ref().map(ToString::to_string).unwrap_or_default()
}

/// A row of a per-vCenter table: the vCenter and one of its records.
struct Row<'a, T> {
    vc: &'a VcenterInventory,
    item: &'a T,
}

/// A row of a per-VM table (disks, NICs): the vCenter, the VM and one of its parts.
struct Part<'a, T> {
    vc: &'a VcenterInventory,
    vm: &'a Vm,
    item: &'a T,
}

/// A CSV column: its header and how to read it from a row. Header and value are defined
/// together so that they cannot drift apart.
type RowCol<T> = (&'static str, for<'a> fn(&Row<'a, T>) -> String);
type PartCol<T> = (&'static str, for<'a> fn(&Part<'a, T>) -> String);

const VCENTERS: &[RowCol<VcenterInventory>] = &[
    ("vcenter", |r| r.vc.name.to_string()),
    ("url", |r| r.vc.url.to_string()),
    ("product", |r| r.vc.about.full_name.clone()),
    ("version", |r| r.vc.about.version.clone()),
    ("build", |r| r.vc.about.build.clone()),
    ("api_type", |r| r.vc.about.api_type.clone()),
    ("api_version", |r| r.vc.about.api_version.clone()),
    ("instance_uuid", |r| r.vc.about.instance_uuid.clone()),
    ("collected_at", |r| r.vc.collected_at.to_string()),
    ("vms", |r| r.vc.vms.len().to_string()),
    ("hosts", |r| r.vc.hosts.len().to_string()),
    ("warnings", |r| r.vc.warnings.len().to_string()),
];

const DATACENTERS: &[RowCol<Datacenter>] = &[
    ("vcenter", |r| r.vc.name.to_string()),
    ("id", |r| r.item.id.to_string()),
    ("name", |r| r.item.name.to_string()),
];

const CLUSTERS: &[RowCol<Cluster>] = &[
    ("vcenter", |r| r.vc.name.to_string()),
    ("id", |r| r.item.id.to_string()),
    ("name", |r| r.item.name.to_string()),
    ("datacenter", |r| r.item.datacenter.to_string()),
    ("ha_enabled", |r| opt(&r.item.ha_enabled)),
    ("drs_enabled", |r| opt(&r.item.drs_enabled)),
    ("drs_behavior", |r| opt(&r.item.drs_behavior)),
    ("num_hosts", |r| opt(&r.item.num_hosts)),
    ("num_effective_hosts", |r| opt(&r.item.num_effective_hosts)),
    ("total_cpu_mhz", |r| opt(&r.item.total_cpu_mhz)),
    ("total_memory_bytes", |r| opt(&r.item.total_memory_bytes)),
    ("hosts", |r| r.item.hosts.join(";")),
];

const HOSTS: &[RowCol<Host>] = &[
    ("vcenter", |r| r.vc.name.to_string()),
    ("id", |r| r.item.id.to_string()),
    ("name", |r| r.item.name.to_string()),
    ("datacenter", |r| r.item.datacenter.to_string()),
    ("cluster", |r| r.item.cluster.to_string()),
    ("vendor", |r| opt(&r.item.vendor)),
    ("model", |r| opt(&r.item.model)),
    ("cpu_model", |r| opt(&r.item.cpu_model)),
    ("cpu_sockets", |r| opt(&r.item.cpu_sockets)),
    ("cpu_cores", |r| opt(&r.item.cpu_cores)),
    ("cpu_threads", |r| opt(&r.item.cpu_threads)),
    ("cpu_mhz", |r| opt(&r.item.cpu_mhz)),
    ("memory_bytes", |r| opt(&r.item.memory_bytes)),
    ("esxi_version", |r| opt(&r.item.esxi_version)),
    ("esxi_build", |r| opt(&r.item.esxi_build)),
    ("connection_state", |r| opt(&r.item.connection_state)),
    ("in_maintenance_mode", |r| opt(&r.item.in_maintenance_mode)),
    ("power_state", |r| opt(&r.item.power_state)),
];

const DATASTORES: &[RowCol<Datastore>] = &[
    ("vcenter", |r| r.vc.name.to_string()),
    ("id", |r| r.item.id.to_string()),
    ("name", |r| r.item.name.to_string()),
    ("datacenter", |r| r.item.datacenter.to_string()),
    ("type", |r| opt(&r.item.kind)),
    ("capacity_bytes", |r| opt(&r.item.capacity_bytes)),
    ("free_bytes", |r| opt(&r.item.free_bytes)),
    ("uncommitted_bytes", |r| opt(&r.item.uncommitted_bytes)),
    ("url", |r| opt(&r.item.url)),
    ("accessible", |r| opt(&r.item.accessible)),
];

const NETWORKS: &[RowCol<Network>] = &[
    ("vcenter", |r| r.vc.name.to_string()),
    ("id", |r| r.item.id.to_string()),
    ("name", |r| r.item.name.to_string()),
    ("datacenter", |r| r.item.datacenter.to_string()),
    ("kind", |r| r.item.kind.to_string()),
    ("portgroup_key", |r| opt(&r.item.portgroup_key)),
];

/// vInfo, vCPU and vMemory in one table.
const VMS: &[RowCol<Vm>] = &[
    ("vcenter", |r| r.vc.name.to_string()),
    ("id", |r| r.item.id.to_string()),
    ("name", |r| r.item.name.to_string()),
    ("vcenter_uuid", |r| r.item.vcenter_uuid.to_string()),
    ("instance_uuid", |r| opt(&r.item.instance_uuid)),
    ("bios_uuid", |r| opt(&r.item.bios_uuid)),
    ("power_state", |r| opt(&r.item.power_state)),
    ("connection_state", |r| opt(&r.item.connection_state)),
    ("template", |r| r.item.template.to_string()),
    ("guest_id", |r| opt(&r.item.guest_id)),
    ("guest_full_name", |r| opt(&r.item.guest_full_name)),
    ("tools_guest_id", |r| opt(&r.item.tools_guest_id)),
    ("tools_guest_full_name", |r| {
        opt(&r.item.tools_guest_full_name)
    }),
    ("tools_running_status", |r| {
        opt(&r.item.tools_running_status)
    }),
    ("tools_version_status", |r| {
        opt(&r.item.tools_version_status)
    }),
    ("tools_version", |r| opt(&r.item.tools_version)),
    ("hardware_version", |r| opt(&r.item.hardware_version)),
    ("firmware", |r| opt(&r.item.firmware)),
    ("num_cpu", |r| opt(&r.item.num_cpu)),
    ("cores_per_socket", |r| opt(&r.item.cores_per_socket)),
    ("memory_bytes", |r| opt(&r.item.memory_bytes)),
    ("cpu_reservation_mhz", |r| opt(&r.item.cpu.reservation)),
    ("cpu_limit_mhz", |r| opt(&r.item.cpu.limit)),
    ("cpu_shares", |r| opt(&r.item.cpu.shares)),
    ("cpu_shares_level", |r| opt(&r.item.cpu.shares_level)),
    ("memory_reservation_bytes", |r| {
        opt(&r.item.memory.reservation)
    }),
    ("memory_limit_bytes", |r| opt(&r.item.memory.limit)),
    ("memory_shares", |r| opt(&r.item.memory.shares)),
    ("memory_shares_level", |r| opt(&r.item.memory.shares_level)),
    ("cpu_hot_add", |r| opt(&r.item.cpu_hot_add)),
    ("memory_hot_add", |r| opt(&r.item.memory_hot_add)),
    ("disks", |r| r.item.disks.len().to_string()),
    ("nics", |r| r.item.nics.len().to_string()),
    ("ip_addresses", |r| r.item.ip_addresses.join(";")),
    ("guest_hostname", |r| opt(&r.item.guest_hostname)),
    ("host", |r| r.item.host.to_string()),
    ("host_id", |r| r.item.host_id.to_string()),
    ("cluster", |r| r.item.cluster.to_string()),
    ("datacenter", |r| r.item.datacenter.to_string()),
    ("resource_pool", |r| r.item.resource_pool.to_string()),
    ("folder_path", |r| r.item.folder_path.to_string()),
    ("annotation", |r| opt(&r.item.annotation)),
    ("custom_attributes", |r| {
        let pairs: Vec<String> = r
            .item
            .custom_attributes
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        pairs.join(";")
    }),
    ("committed_bytes", |r| opt(&r.item.committed_bytes)),
    ("uncommitted_bytes", |r| opt(&r.item.uncommitted_bytes)),
    ("snapshot_count", |r| r.item.snapshot_count.to_string()),
    ("boot_time", |r| opt(&r.item.boot_time)),
    ("create_date", |r| opt(&r.item.create_date)),
];

const DISKS: &[PartCol<Disk>] = &[
    ("vcenter", |r| r.vc.name.to_string()),
    ("vm_id", |r| r.vm.id.to_string()),
    ("vm_name", |r| r.vm.name.to_string()),
    ("key", |r| r.item.key.to_string()),
    ("label", |r| r.item.label.to_string()),
    ("capacity_bytes", |r| opt(&r.item.capacity_bytes)),
    ("provisioning", |r| r.item.provisioning.to_string()),
    ("thin", |r| opt(&r.item.thin)),
    ("datastore", |r| r.item.datastore.to_string()),
    ("file_path", |r| opt(&r.item.file_path)),
    ("controller", |r| r.item.controller.to_string()),
    ("controller_type", |r| r.item.controller_type.to_string()),
    ("unit_number", |r| opt(&r.item.unit_number)),
    ("mode", |r| opt(&r.item.mode)),
];

const NICS: &[PartCol<Nic>] = &[
    ("vcenter", |r| r.vc.name.to_string()),
    ("vm_id", |r| r.vm.id.to_string()),
    ("vm_name", |r| r.vm.name.to_string()),
    ("key", |r| r.item.key.to_string()),
    ("label", |r| r.item.label.to_string()),
    ("mac", |r| opt(&r.item.mac)),
    ("network", |r| r.item.network.to_string()),
    ("connected", |r| opt(&r.item.connected)),
    ("start_connected", |r| opt(&r.item.start_connected)),
    ("adapter_type", |r| r.item.adapter_type.to_string()),
    ("ip_addresses", |r| r.item.ip_addresses.join(";")),
];

/// Writes one CSV file per table into `dir`; returns their paths.
pub fn write_csv(inv: &Inventory, dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let vcs = inv.vcenters.as_slice();
    let vms = || {
        vcs.iter()
            .flat_map(|vc| vc.vms.iter().map(move |vm| (vc, vm)))
    };
    Ok(vec![
        table(
            dir,
            "vcenters.csv",
            VCENTERS,
            vcs.iter().map(|vc| Row { vc, item: vc }),
        )?,
        table(
            dir,
            "datacenters.csv",
            DATACENTERS,
            rows(vcs, |v| &v.datacenters),
        )?,
        table(dir, "clusters.csv", CLUSTERS, rows(vcs, |v| &v.clusters))?,
        table(dir, "hosts.csv", HOSTS, rows(vcs, |v| &v.hosts))?,
        table(
            dir,
            "datastores.csv",
            DATASTORES,
            rows(vcs, |v| &v.datastores),
        )?,
        table(dir, "networks.csv", NETWORKS, rows(vcs, |v| &v.networks))?,
        table(dir, "vms.csv", VMS, rows(vcs, |v| &v.vms))?,
        table(
            dir,
            "vm_disks.csv",
            DISKS,
            vms().flat_map(|(vc, vm)| vm.disks.iter().map(move |item| Part { vc, vm, item })),
        )?,
        table(
            dir,
            "vm_nics.csv",
            NICS,
            vms().flat_map(|(vc, vm)| vm.nics.iter().map(move |item| Part { vc, vm, item })),
        )?,
    ])
}

/// Every record that `field` selects, of every vCenter, with its vCenter.
fn rows<'a, T: 'a>(
    vcs: &'a [VcenterInventory],
    field: fn(&VcenterInventory) -> &[T],
) -> impl Iterator<Item = Row<'a, T>> {
    vcs.iter()
        .flat_map(move |vc| field(vc).iter().map(move |item| Row { vc, item }))
}

fn table<R, F: Fn(&R) -> String>(
    dir: &Path,
    file: &str,
    cols: &[(&'static str, F)],
    rows: impl Iterator<Item = R>,
) -> std::io::Result<PathBuf> {
    let path = dir.join(file);
    atomic_write(&path, |w| {
        let mut csv = csv::Writer::from_writer(w);
        csv.write_record(cols.iter().map(|(name, _)| *name))?;
        for row in rows {
            csv.write_record(cols.iter().map(|(_, get)| get(&row)))?;
        }
        csv.flush()
    })?;
    Ok(path)
}

/// Writes through a temporary file in the same directory, fsyncs, and renames.
fn atomic_write(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let file = File::create(&tmp)?;
    let mut w = BufWriter::new(file);
    write(&mut w)?;
    w.flush()?;
    w.get_ref().sync_all()?;
    std::fs::rename(&tmp, path)
}
