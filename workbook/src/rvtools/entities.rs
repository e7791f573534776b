//! The estate tabs (vHost, vCluster, vDatastore, vSource): every RVTools column in its
//! order, filled from the inventory's records (with the VMs' figures summed per host and
//! datastore) or left out with the reason.

use vscout_wire::inventory::{Cluster, Datastore, Host};

use super::{totals_by, Source, VmTotals};
use crate::columns::{Col, CustomValues, Tab};
use crate::sheet::{mib, Book, Cell};
use crate::WorkbookError;

use Col::{Has, Not};

const HOST_CONFIG: &str = "host configuration not needed for migration planning (network, time, licences, certificates, power policy) is not read";
const HOST_STATS: &str =
    "a runtime figure of one instant (quickStats); vscout measures hosts over time instead";
const HOST_HW: &str = "hardware identity beyond vendor and model is not read";
const HA_CONFIG: &str = "the cluster's HA, DRS and DPM detail beyond enabled/behaviour is not read";
const DS_DETAIL: &str = "datastore detail beyond capacity, type and URL is not read";

#[derive(Debug, Clone, Copy)]
pub(super) struct HostRow<'a> {
    src: &'a Source<'a>,
    host: &'a Host,
    vms: VmTotals,
}

#[derive(Debug, Clone, Copy)]
pub(super) struct ClusterRow<'a> {
    src: &'a Source<'a>,
    cluster: &'a Cluster,
    cores: Option<u64>,
    threads: Option<u64>,
}

#[derive(Debug, Clone, Copy)]
pub(super) struct DatastoreRow<'a> {
    src: &'a Source<'a>,
    ds: &'a Datastore,
    vms: VmTotals,
}

#[derive(Debug, Clone, Copy)]
pub(super) struct SourceRow<'a> {
    src: &'a Source<'a>,
}

macro_rules! no_custom_values {
    ($($t:ident),*) => {$(
        impl CustomValues for $t<'_> {
            fn custom_value(&self, _: &str) -> Option<&str> {
                None
            }
        }
    )*};
}
no_custom_values!(HostRow, ClusterRow, DatastoreRow, SourceRow);

/// Writes vHost, vCluster, vDatastore and vSource for every vCenter.
pub(super) fn write(book: &mut Book, sources: &[Source<'_>]) -> Result<(), WorkbookError> {
    let mut hosts = Vec::new();
    let mut clusters = Vec::new();
    let mut datastores = Vec::new();
    for src in sources {
        let by_host = totals_by(&src.vc.vms, |vm| vec![vm.host_id.as_str()]);
        hosts.extend(src.vc.hosts.iter().map(|host| HostRow {
            src,
            host,
            vms: by_host.get(host.id.as_str()).copied().unwrap_or_default(),
        }));
        clusters.extend(src.vc.clusters.iter().map(|cluster| {
            let members = src
                .vc
                .hosts
                .iter()
                .filter(|h| h.cluster == cluster.name && h.datacenter == cluster.datacenter);
            let (mut cores, mut threads) = (None, None);
            for h in members {
                *cores.get_or_insert(0) += u64::from(h.cpu_cores.unwrap_or(0));
                *threads.get_or_insert(0) += u64::from(h.cpu_threads.unwrap_or(0));
            }
            ClusterRow {
                src,
                cluster,
                cores,
                threads,
            }
        }));
        let by_ds = totals_by(&src.vc.vms, |vm| {
            vm.disks.iter().map(|d| d.datastore.as_str()).collect()
        });
        datastores.extend(src.vc.datastores.iter().map(|ds| DatastoreRow {
            src,
            ds,
            vms: by_ds.get(ds.name.as_str()).copied().unwrap_or_default(),
        }));
    }
    host().write(book, &[], hosts.into_iter())?;
    cluster().write(book, &[], clusters.into_iter())?;
    datastore().write(book, &[], datastores.into_iter())?;
    source().write(book, &[], sources.iter().map(|src| SourceRow { src }))
}

fn per_core(n: u64, cores: Option<u32>) -> Cell<'static> {
    match cores.filter(|c| *c > 0) {
        Some(c) => Cell::Num(n as f64 / f64::from(c)),
        None => Cell::Empty,
    }
}

fn esx_version(h: &Host) -> Cell<'_> {
    match (&h.esxi_version, &h.esxi_build) {
        (Some(v), Some(b)) => Cell::Owned(format!("VMware ESXi {v} build-{b}")),
        (Some(v), None) => Cell::Owned(format!("VMware ESXi {v}")),
        _ => Cell::Empty,
    }
}

pub(super) fn host<'a>() -> Tab<HostRow<'a>> {
    let cols = vec![
        Has("Host", |r: &HostRow<'_>| Cell::Text(&r.host.name)),
        Has("Datacenter", |r| Cell::Text(&r.host.datacenter)),
        Has("Cluster", |r| Cell::Text(&r.host.cluster)),
        Not("Config status", HOST_STATS),
        Not("Compliance Check State", HOST_CONFIG),
        Has("in Maintenance Mode", |r| {
            Cell::opt_bool(r.host.in_maintenance_mode)
        }),
        Not("in Quarantine Mode", HOST_CONFIG),
        Not("vSAN Fault Domain Name", HOST_CONFIG),
        Has("CPU Model", |r| Cell::opt_text(r.host.cpu_model.as_deref())),
        Has("Speed", |r| Cell::opt_int(r.host.cpu_mhz)),
        Has("HT Available", |r| {
            match (r.host.cpu_threads, r.host.cpu_cores) {
                (Some(t), Some(c)) => Cell::Bool(t > c),
                _ => Cell::Empty,
            }
        }),
        Not("HT Active", HOST_CONFIG),
        Has("# CPU", |r| Cell::opt_int(r.host.cpu_sockets)),
        Has("Cores per CPU", |r| {
            match (r.host.cpu_cores, r.host.cpu_sockets) {
                (Some(c), Some(s)) if s > 0 => Cell::Int(i64::from(c / s)),
                _ => Cell::Empty,
            }
        }),
        Has("# Cores", |r| Cell::opt_int(r.host.cpu_cores)),
        Not("CPU usage %", HOST_STATS),
        Has("# Memory", |r| mib(r.host.memory_bytes)),
        Not("Memory Tiering Type", HOST_CONFIG),
        Not("Memory usage %", HOST_STATS),
        Not("Console", HOST_CONFIG),
        Not("# NICs", HOST_CONFIG),
        Not("# HBAs", HOST_CONFIG),
        Has("# VMs total", |r| Cell::Int(r.vms.vms as i64)),
        Has("# VMs", |r| Cell::Int(r.vms.powered_on as i64)),
        Has("VMs per Core", |r| per_core(r.vms.vms, r.host.cpu_cores)),
        Has("# vCPUs", |r| Cell::Int(r.vms.vcpus as i64)),
        Has("vCPUs per Core", |r| {
            per_core(r.vms.vcpus, r.host.cpu_cores)
        }),
        Has("vRAM", |r| mib(Some(r.vms.memory_bytes))),
        Not("VM Used memory", HOST_STATS),
        Not("VM Memory Swapped", HOST_STATS),
        Not("VM Memory Ballooned", HOST_STATS),
        Not("VMotion support", HOST_CONFIG),
        Not("Storage VMotion support", HOST_CONFIG),
        Not("Current EVC", HOST_CONFIG),
        Not("Max EVC", HOST_CONFIG),
        Not("Assigned License(s)", HOST_CONFIG),
        Not("ATS Heartbeat", HOST_CONFIG),
        Not("ATS Locking", HOST_CONFIG),
        Not("Current CPU power man. policy", HOST_CONFIG),
        Not("Supported CPU power man.", HOST_CONFIG),
        Not("Host Power Policy", HOST_CONFIG),
        Has("ESX Version", |r| esx_version(r.host)),
        Not("Boot time", HOST_CONFIG),
        Not("DNS Servers", HOST_CONFIG),
        Not("DHCP", HOST_CONFIG),
        Not("Domain", HOST_CONFIG),
        Not("Domain List", HOST_CONFIG),
        Not("DNS Search Order", HOST_CONFIG),
        Not("NTP Server(s)", HOST_CONFIG),
        Not("NTPD running", HOST_CONFIG),
        Not("Time Zone", HOST_CONFIG),
        Not("Time Zone Name", HOST_CONFIG),
        Not("GMT Offset", HOST_CONFIG),
        Has("Vendor", |r| Cell::opt_text(r.host.vendor.as_deref())),
        Has("Model", |r| Cell::opt_text(r.host.model.as_deref())),
        Not("Serial number", HOST_HW),
        Not("Service tag", HOST_HW),
        Not("OEM specific string", HOST_HW),
        Not("BIOS Vendor", HOST_HW),
        Not("BIOS Version", HOST_HW),
        Not("BIOS Date", HOST_HW),
        Not("Certificate Issuer", HOST_CONFIG),
        Not("Certificate Start Date", HOST_CONFIG),
        Not("Certificate Expiry Date", HOST_CONFIG),
        Not("Certificate Status", HOST_CONFIG),
        Not("Certificate Subject", HOST_CONFIG),
        Has("Object ID", |r| Cell::Text(&r.host.id)),
        Not("AutoDeploy.MachineIdentity", HOST_HW),
        Not("UUID", HOST_HW),
        Has("VI SDK Server", |r| Cell::Text(&r.src.server)),
        Has("VI SDK UUID", |r| Cell::Text(&r.src.vc.about.instance_uuid)),
    ];
    Tab {
        name: "vHost",
        cols,
    }
}

pub(super) fn cluster<'a>() -> Tab<ClusterRow<'a>> {
    let cols = vec![
        Has("Name", |r: &ClusterRow<'_>| Cell::Text(&r.cluster.name)),
        Not("Config status", HOST_STATS),
        Not("OverallStatus", HOST_STATS),
        Has("NumHosts", |r| Cell::opt_int(r.cluster.num_hosts)),
        Has("numEffectiveHosts", |r| {
            Cell::opt_int(r.cluster.num_effective_hosts)
        }),
        Has("TotalCpu", |r| {
            Cell::opt_int(r.cluster.total_cpu_mhz.map(|v| v as i64))
        }),
        Has("NumCpuCores", |r| Cell::opt_int(r.cores.map(|v| v as i64))),
        Has("NumCpuThreads", |r| {
            Cell::opt_int(r.threads.map(|v| v as i64))
        }),
        Not("Effective Cpu", HOST_STATS),
        Has("TotalMemory", |r| {
            Cell::opt_int(r.cluster.total_memory_bytes.map(|v| v as i64))
        }),
        Not("Effective Memory", HOST_STATS),
        Not("Num VMotions", HOST_STATS),
        Has("HA enabled", |r| Cell::opt_bool(r.cluster.ha_enabled)),
        Not("Failover Level", HA_CONFIG),
        Not("AdmissionControlEnabled", HA_CONFIG),
        Not("Host monitoring", HA_CONFIG),
        Not("HB Datastore Candidate Policy", HA_CONFIG),
        Not("Isolation Response", HA_CONFIG),
        Not("Restart Priority", HA_CONFIG),
        Not("Cluster Settings", HA_CONFIG),
        Not("Max Failures", HA_CONFIG),
        Not("Max Failure Window", HA_CONFIG),
        Not("Failure Interval", HA_CONFIG),
        Not("Min Up Time", HA_CONFIG),
        Not("VM Monitoring", HA_CONFIG),
        Has("DRS enabled", |r| Cell::opt_bool(r.cluster.drs_enabled)),
        Has("DRS default VM behavior", |r| {
            Cell::opt_text(r.cluster.drs_behavior.as_deref())
        }),
        Not("DRS vmotion rate", HA_CONFIG),
        Not("DPM enabled", HA_CONFIG),
        Not("DPM default behavior", HA_CONFIG),
        Not("DPM Host Power Action Rate", HA_CONFIG),
        Has("Object ID", |r| Cell::Text(&r.cluster.id)),
        Has("VI SDK Server", |r| Cell::Text(&r.src.server)),
        Has("VI SDK UUID", |r| Cell::Text(&r.src.vc.about.instance_uuid)),
    ];
    Tab {
        name: "vCluster",
        cols,
    }
}

fn in_use(ds: &Datastore) -> Option<u64> {
    Some(ds.capacity_bytes?.saturating_sub(ds.free_bytes?))
}

pub(super) fn datastore<'a>() -> Tab<DatastoreRow<'a>> {
    let cols = vec![
        Has("Name", |r: &DatastoreRow<'_>| Cell::Text(&r.ds.name)),
        Not("Config status", HOST_STATS),
        Not("Address", DS_DETAIL),
        Has("Accessible", |r| Cell::opt_bool(r.ds.accessible)),
        Has("Type", |r| Cell::opt_text(r.ds.kind.as_deref())),
        Has("# VMs total", |r| Cell::Int(r.vms.vms as i64)),
        Has("# VMs", |r| Cell::Int(r.vms.powered_on as i64)),
        Has("Capacity MiB", |r| mib(r.ds.capacity_bytes)),
        Has("Provisioned MiB", |r| {
            mib(in_use(r.ds).map(|u| u + r.ds.uncommitted_bytes.unwrap_or(0)))
        }),
        Has("In Use MiB", |r| mib(in_use(r.ds))),
        Has("Free MiB", |r| mib(r.ds.free_bytes)),
        Has("Free %", |r| match (r.ds.free_bytes, r.ds.capacity_bytes) {
            (Some(f), Some(c)) if c > 0 => Cell::Num(f as f64 / c as f64 * 100.0),
            _ => Cell::Empty,
        }),
        Not("SIOC enabled", DS_DETAIL),
        Not("SIOC Threshold", DS_DETAIL),
        Not("# Hosts", DS_DETAIL),
        Not("Hosts", DS_DETAIL),
        Not("Cluster name", DS_DETAIL),
        Not("Cluster capacity MiB", DS_DETAIL),
        Not("Cluster free space MiB", DS_DETAIL),
        Not("Block size", DS_DETAIL),
        Not("Max Blocks", DS_DETAIL),
        Not("# Extents", DS_DETAIL),
        Not("Major Version", DS_DETAIL),
        Not("Version", DS_DETAIL),
        Not("VMFS Upgradeable", DS_DETAIL),
        Not("MHA", DS_DETAIL),
        Has("URL", |r| Cell::opt_text(r.ds.url.as_deref())),
        Has("Object ID", |r| Cell::Text(&r.ds.id)),
        Has("VI SDK Server", |r| Cell::Text(&r.src.server)),
        Has("VI SDK UUID", |r| Cell::Text(&r.src.vc.about.instance_uuid)),
    ];
    Tab {
        name: "vDatastore",
        cols,
    }
}

pub(super) fn source<'a>() -> Tab<SourceRow<'a>> {
    let cols = vec![
        Has("Name", |r: &SourceRow<'_>| Cell::Text(&r.src.server)),
        Has("OS type", |r| Cell::Text(&r.src.vc.about.os_type)),
        Has("API type", |r| Cell::Text(&r.src.vc.about.api_type)),
        Has("API version", |r| Cell::Text(&r.src.vc.about.api_version)),
        Has("Version", |r| Cell::Text(&r.src.vc.about.version)),
        Not("Patch level", "not in ServiceContent.about"),
        Has("Build", |r| Cell::Text(&r.src.vc.about.build)),
        Has("Fullname", |r| Cell::Text(&r.src.vc.about.full_name)),
        Has("Product name", |r| Cell::Text(&r.src.vc.about.name)),
        Not(
            "Product version",
            "not in ServiceContent.about (Version gives it)",
        ),
        Has("Product line", |r| {
            Cell::Text(&r.src.vc.about.product_line_id)
        }),
        Has("Vendor", |r| Cell::Text(&r.src.vc.about.vendor)),
        Has("VI SDK Server", |r| Cell::Text(&r.src.server)),
        Has("VI SDK UUID", |r| Cell::Text(&r.src.vc.about.instance_uuid)),
    ];
    Tab {
        name: "vSource",
        cols,
    }
}
