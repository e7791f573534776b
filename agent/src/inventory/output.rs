//! Writes an inventory to a directory: `inventory.json` with everything, or one CSV file
//! per table (as RVTools users expect), with disks and NICs in their own files keyed by
//! vCenter and VM id. Files are written to a temporary name and renamed into place, so a
//! reader never sees half a file.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use super::model::Inventory;

/// Output format of `vscout inventory`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Json,
    Csv,
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

/// A table: file name, header, rows.
type Table = (&'static str, Vec<&'static str>, Vec<Vec<String>>);

/// Writes one CSV file per table into `dir`; returns their paths.
pub fn write_csv(inv: &Inventory, dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut paths = Vec::new();
    for (file, header, rows) in tables(inv) {
        let path = dir.join(file);
        atomic_write(&path, |w| {
            let mut csv = csv::Writer::from_writer(w);
            csv.write_record(&header)?;
            for row in rows {
                csv.write_record(&row)?;
            }
            csv.flush()
        })?;
        paths.push(path);
    }
    Ok(paths)
}

fn tables(inv: &Inventory) -> Vec<Table> {
    let mut vcenters = Vec::new();
    let mut dcs = Vec::new();
    let mut clusters = Vec::new();
    let mut hosts = Vec::new();
    let mut dss = Vec::new();
    let mut nets = Vec::new();
    let mut vms = Vec::new();
    let mut disks = Vec::new();
    let mut nics = Vec::new();
    for v in &inv.vcenters {
        let a = &v.about;
        vcenters.push(vec![
            v.name.to_string(),
            v.url.to_string(),
            a.full_name.to_string(),
            a.version.to_string(),
            a.build.to_string(),
            a.api_type.to_string(),
            a.api_version.to_string(),
            a.instance_uuid.to_string(),
            v.collected_at.to_string(),
            v.vms.len().to_string(),
            v.hosts.len().to_string(),
            v.warnings.len().to_string(),
        ]);
        for d in &v.datacenters {
            dcs.push(vec![
                v.name.to_string(),
                d.id.to_string(),
                d.name.to_string(),
            ]);
        }
        for c in &v.clusters {
            clusters.push(vec![
                v.name.to_string(),
                c.id.to_string(),
                c.name.to_string(),
                c.datacenter.to_string(),
                opt(&c.ha_enabled),
                opt(&c.drs_enabled),
                opt(&c.drs_behavior),
                opt(&c.num_hosts),
                opt(&c.num_effective_hosts),
                opt(&c.total_cpu_mhz),
                opt(&c.total_memory_bytes),
                c.hosts.join(";"),
            ]);
        }
        for h in &v.hosts {
            hosts.push(vec![
                v.name.to_string(),
                h.id.to_string(),
                h.name.to_string(),
                h.datacenter.to_string(),
                h.cluster.to_string(),
                opt(&h.vendor),
                opt(&h.model),
                opt(&h.cpu_model),
                opt(&h.cpu_sockets),
                opt(&h.cpu_cores),
                opt(&h.cpu_threads),
                opt(&h.cpu_mhz),
                opt(&h.memory_bytes),
                opt(&h.esxi_version),
                opt(&h.esxi_build),
                opt(&h.connection_state),
                opt(&h.in_maintenance_mode),
                opt(&h.power_state),
            ]);
        }
        for d in &v.datastores {
            dss.push(vec![
                v.name.to_string(),
                d.id.to_string(),
                d.name.to_string(),
                d.datacenter.to_string(),
                opt(&d.kind),
                opt(&d.capacity_bytes),
                opt(&d.free_bytes),
                opt(&d.uncommitted_bytes),
                opt(&d.url),
                opt(&d.accessible),
            ]);
        }
        for n in &v.networks {
            nets.push(vec![
                v.name.to_string(),
                n.id.to_string(),
                n.name.to_string(),
                n.datacenter.to_string(),
                n.kind.to_string(),
                opt(&n.portgroup_key),
            ]);
        }
        for m in &v.vms {
            let attrs: Vec<String> = m
                .custom_attributes
                .iter()
                .map(|(k, val)| format!("{k}={val}"))
                .collect();
            vms.push(vec![
                v.name.to_string(),
                m.id.to_string(),
                m.name.to_string(),
                m.vcenter_uuid.to_string(),
                opt(&m.instance_uuid),
                opt(&m.bios_uuid),
                opt(&m.power_state),
                opt(&m.connection_state),
                m.template.to_string(),
                opt(&m.guest_id),
                opt(&m.guest_full_name),
                opt(&m.tools_guest_id),
                opt(&m.tools_guest_full_name),
                opt(&m.tools_running_status),
                opt(&m.tools_version_status),
                opt(&m.tools_version),
                opt(&m.hardware_version),
                opt(&m.firmware),
                opt(&m.num_cpu),
                opt(&m.cores_per_socket),
                opt(&m.memory_mb),
                opt(&m.cpu.reservation),
                opt(&m.cpu.limit),
                opt(&m.cpu.shares),
                opt(&m.cpu.shares_level),
                opt(&m.memory.reservation),
                opt(&m.memory.limit),
                opt(&m.memory.shares),
                opt(&m.memory.shares_level),
                opt(&m.cpu_hot_add),
                opt(&m.memory_hot_add),
                m.disks.len().to_string(),
                m.nics.len().to_string(),
                m.ip_addresses.join(";"),
                opt(&m.guest_hostname),
                m.host.to_string(),
                m.host_id.to_string(),
                m.cluster.to_string(),
                m.datacenter.to_string(),
                m.resource_pool.to_string(),
                m.folder_path.to_string(),
                opt(&m.annotation),
                attrs.join(";"),
                opt(&m.committed_bytes),
                opt(&m.uncommitted_bytes),
                m.snapshot_count.to_string(),
                opt(&m.boot_time),
                opt(&m.create_date),
            ]);
            for d in &m.disks {
                disks.push(vec![
                    v.name.to_string(),
                    m.id.to_string(),
                    m.name.to_string(),
                    d.key.to_string(),
                    d.label.to_string(),
                    opt(&d.capacity_bytes),
                    d.provisioning.to_string(),
                    opt(&d.thin),
                    d.datastore.to_string(),
                    opt(&d.file_path),
                    d.controller.to_string(),
                    d.controller_type.to_string(),
                    opt(&d.unit_number),
                    opt(&d.mode),
                ]);
            }
            for n in &m.nics {
                nics.push(vec![
                    v.name.to_string(),
                    m.id.to_string(),
                    m.name.to_string(),
                    n.key.to_string(),
                    n.label.to_string(),
                    opt(&n.mac),
                    n.network.to_string(),
                    opt(&n.connected),
                    opt(&n.start_connected),
                    n.adapter_type.to_string(),
                    n.ip_addresses.join(";"),
                ]);
            }
        }
    }
    vec![
        (
            "vcenters.csv",
            vec![
                "vcenter",
                "url",
                "product",
                "version",
                "build",
                "api_type",
                "api_version",
                "instance_uuid",
                "collected_at",
                "vms",
                "hosts",
                "warnings",
            ],
            vcenters,
        ),
        ("datacenters.csv", vec!["vcenter", "id", "name"], dcs),
        (
            "clusters.csv",
            vec![
                "vcenter",
                "id",
                "name",
                "datacenter",
                "ha_enabled",
                "drs_enabled",
                "drs_behavior",
                "num_hosts",
                "num_effective_hosts",
                "total_cpu_mhz",
                "total_memory_bytes",
                "hosts",
            ],
            clusters,
        ),
        (
            "hosts.csv",
            vec![
                "vcenter",
                "id",
                "name",
                "datacenter",
                "cluster",
                "vendor",
                "model",
                "cpu_model",
                "cpu_sockets",
                "cpu_cores",
                "cpu_threads",
                "cpu_mhz",
                "memory_bytes",
                "esxi_version",
                "esxi_build",
                "connection_state",
                "in_maintenance_mode",
                "power_state",
            ],
            hosts,
        ),
        (
            "datastores.csv",
            vec![
                "vcenter",
                "id",
                "name",
                "datacenter",
                "type",
                "capacity_bytes",
                "free_bytes",
                "uncommitted_bytes",
                "url",
                "accessible",
            ],
            dss,
        ),
        (
            "networks.csv",
            vec![
                "vcenter",
                "id",
                "name",
                "datacenter",
                "kind",
                "portgroup_key",
            ],
            nets,
        ),
        (
            "vms.csv",
            vec![
                "vcenter",
                "id",
                "name",
                "vcenter_uuid",
                "instance_uuid",
                "bios_uuid",
                "power_state",
                "connection_state",
                "template",
                "guest_id",
                "guest_full_name",
                "tools_guest_id",
                "tools_guest_full_name",
                "tools_running_status",
                "tools_version_status",
                "tools_version",
                "hardware_version",
                "firmware",
                "num_cpu",
                "cores_per_socket",
                "memory_mb",
                "cpu_reservation_mhz",
                "cpu_limit_mhz",
                "cpu_shares",
                "cpu_shares_level",
                "memory_reservation_mb",
                "memory_limit_mb",
                "memory_shares",
                "memory_shares_level",
                "cpu_hot_add",
                "memory_hot_add",
                "disks",
                "nics",
                "ip_addresses",
                "guest_hostname",
                "host",
                "host_id",
                "cluster",
                "datacenter",
                "resource_pool",
                "folder_path",
                "annotation",
                "custom_attributes",
                "committed_bytes",
                "uncommitted_bytes",
                "snapshot_count",
                "boot_time",
                "create_date",
            ],
            vms,
        ),
        (
            "vm_disks.csv",
            vec![
                "vcenter",
                "vm_id",
                "vm_name",
                "key",
                "label",
                "capacity_bytes",
                "provisioning",
                "thin",
                "datastore",
                "file_path",
                "controller",
                "controller_type",
                "unit_number",
                "mode",
            ],
            disks,
        ),
        (
            "vm_nics.csv",
            vec![
                "vcenter",
                "vm_id",
                "vm_name",
                "key",
                "label",
                "mac",
                "network",
                "connected",
                "start_connected",
                "adapter_type",
                "ip_addresses",
            ],
            nics,
        ),
    ]
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
