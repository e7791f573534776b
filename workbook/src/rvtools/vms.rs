//! The VM tabs (vInfo, vCPU, vMemory, vDisk, vPartition, vNetwork, vSnapshot): every
//! RVTools column in its order, filled from the VM record or left out with the reason.

use vscout_wire::inventory::{Disk, Nic, Partition, Snapshot, Vm};

use super::{Of, OfVm, VmRow};
use crate::columns::{Col, Tab};
use crate::sheet::{mib, Cell};

use Col::{Custom, Has, Not};

const SRM: &str = "Site Recovery Manager placeholders (config.managedBy) are not read";
const QUICK_STATS: &str = "a runtime figure of one instant (quickStats); vscout measures use over time instead (the collector's Performance tab)";
const HA_FT: &str =
    "per-VM HA, DRS and Fault Tolerance settings are not read (not needed to size or map a VM)";
const BOOT: &str = "boot options are not read (not needed to size or map a VM)";
const RUNTIME_STATE: &str = "runtime detail not needed to size or map a VM is not read";
const FILES: &str = "the VM's file layout (config.files, layoutEx) is not read";
const SORT: &str = "RVTools' own sort key";
const STORAGE_IO: &str = "Storage I/O Control allocation of the disk is not read";
const DEVICE: &str = "device detail not needed to size or map a disk or NIC is not read";
const HW_UPGRADE: &str = "scheduled hardware upgrade settings are not read";
const DISPLAY: &str = "display settings are not read";
const CUSTOMIZATION: &str = "guest customization state is not read";

fn name<R: OfVm>(r: &R) -> Cell<'_> {
    Cell::Text(&r.vm().name)
}
fn power<R: OfVm>(r: &R) -> Cell<'_> {
    Cell::opt_text(r.vm().power_state.as_deref())
}
fn template<R: OfVm>(r: &R) -> Cell<'_> {
    Cell::Bool(r.vm().template)
}

/// VM, Powerstate, Template, SRM Placeholder: the start of every VM tab but vSnapshot.
fn head<R: OfVm>() -> Vec<Col<R>> {
    vec![
        Has("VM", name::<R>),
        Has("Powerstate", power::<R>),
        Has("Template", template::<R>),
        Not("SRM Placeholder", SRM),
    ]
}

fn os_config<R: OfVm>(r: &R) -> Cell<'_> {
    Cell::opt_text(r.vm().guest_full_name.as_deref())
}
fn os_tools<R: OfVm>(r: &R) -> Cell<'_> {
    Cell::opt_text(r.vm().tools_guest_full_name.as_deref())
}
fn vm_id<R: OfVm>(r: &R) -> Cell<'_> {
    Cell::Text(&r.vm().id)
}
fn vm_uuid<R: OfVm>(r: &R) -> Cell<'_> {
    Cell::opt_text(r.vm().instance_uuid.as_deref())
}
fn sdk_server<R: OfVm>(r: &R) -> Cell<'_> {
    Cell::Text(&r.src().server)
}
fn sdk_uuid<R: OfVm>(r: &R) -> Cell<'_> {
    Cell::Text(&r.src().vc.about.instance_uuid)
}
fn annotation<R: OfVm>(r: &R) -> Cell<'_> {
    Cell::opt_text(r.vm().annotation.as_deref())
}
fn datacenter<R: OfVm>(r: &R) -> Cell<'_> {
    Cell::Text(&r.vm().datacenter)
}
fn cluster<R: OfVm>(r: &R) -> Cell<'_> {
    Cell::Text(&r.vm().cluster)
}
fn host<R: OfVm>(r: &R) -> Cell<'_> {
    Cell::Text(&r.vm().host)
}
fn folder<R: OfVm>(r: &R) -> Cell<'_> {
    Cell::Text(&r.vm().folder_path)
}

/// Annotation, custom attributes, Datacenter … VI SDK UUID: the end of every VM tab but
/// vInfo.
fn tail<R: OfVm>() -> Vec<Col<R>> {
    vec![
        Has("Annotation", annotation::<R>),
        Custom,
        Has("Datacenter", datacenter::<R>),
        Has("Cluster", cluster::<R>),
        Has("Host", host::<R>),
        Has("Folder", folder::<R>),
        Has("OS according to the configuration file", os_config::<R>),
        Has("OS according to the VMware Tools", os_tools::<R>),
        Has("VM ID", vm_id::<R>),
        Has("VM UUID", vm_uuid::<R>),
        Has("VI SDK Server", sdk_server::<R>),
        Has("VI SDK UUID", sdk_uuid::<R>),
    ]
}

fn tab<R: OfVm>(name: &'static str, middle: Vec<Col<R>>) -> Tab<R> {
    let mut cols = head::<R>();
    cols.extend(middle);
    cols.extend(tail::<R>());
    Tab { name, cols }
}

type V<'a> = VmRow<'a>;

/// `vmx-19` → 19, as RVTools 4.x writes the hardware version.
fn hw_version(v: &Vm) -> Cell<'_> {
    let Some(hw) = v.hardware_version.as_deref() else {
        return Cell::Empty;
    };
    hw.strip_prefix("vmx-")
        .and_then(|n| n.parse::<i64>().ok())
        .map_or(Cell::Text(hw), Cell::Int)
}

fn nic_network(v: &Vm, n: usize) -> Cell<'_> {
    v.nics
        .get(n)
        .map_or(Cell::Empty, |nic| Cell::Text(&nic.network))
}

fn provisioned(v: &Vm) -> Option<u64> {
    Some(v.committed_bytes? + v.uncommitted_bytes.unwrap_or(0))
}

pub(super) fn info<'a>() -> Tab<V<'a>> {
    let mut cols: Vec<Col<V<'a>>> = head();
    cols.extend([
        Not("Config status", RUNTIME_STATE),
        Has("DNS Name", |r: &V<'_>| {
            Cell::opt_text(r.vm.guest_hostname.as_deref())
        }),
        Has("Connection state", |r| {
            Cell::opt_text(r.vm.connection_state.as_deref())
        }),
        Not("Guest state", RUNTIME_STATE),
        Not("Heartbeat", RUNTIME_STATE),
        Not("Consolidation Needed", RUNTIME_STATE),
        Has("PowerOn", |r| Cell::datetime(r.vm.boot_time.as_deref())),
        Not("Suspended To Memory", RUNTIME_STATE),
        Not("Suspend time", RUNTIME_STATE),
        Not("Suspend Interval", RUNTIME_STATE),
        Has("Creation date", |r| {
            Cell::datetime(r.vm.create_date.as_deref())
        }),
        Not("Change Version", RUNTIME_STATE),
        Has("CPUs", |r| Cell::opt_int(r.vm.num_cpu)),
        Not("Overall Cpu Readiness", QUICK_STATS),
        Has("Memory", |r| mib(r.vm.memory_bytes)),
        Not("Active Memory", QUICK_STATS),
        Has("NICs", |r| Cell::Int(r.vm.nics.len() as i64)),
        Has("Disks", |r| Cell::Int(r.vm.disks.len() as i64)),
        Has("Total disk capacity MiB", |r| {
            mib(Some(
                r.vm.disks.iter().filter_map(|d| d.capacity_bytes).sum(),
            ))
        }),
        Not("Fixed Passthru HotPlug", DEVICE),
        Not("min Required EVC Mode Key", RUNTIME_STATE),
        Not("Latency Sensitivity", RUNTIME_STATE),
        Not("Op Notification Timeout", RUNTIME_STATE),
        Not("EnableUUID", RUNTIME_STATE),
        Not("CBT", RUNTIME_STATE),
        Has("Primary IP Address", |r| {
            Cell::opt_text(r.vm.ip_addresses.first().map(|s| s.as_str()))
        }),
        Has("Network #1", |r| nic_network(r.vm, 0)),
        Has("Network #2", |r| nic_network(r.vm, 1)),
        Has("Network #3", |r| nic_network(r.vm, 2)),
        Has("Network #4", |r| nic_network(r.vm, 3)),
        Has("Network #5", |r| nic_network(r.vm, 4)),
        Has("Network #6", |r| nic_network(r.vm, 5)),
        Has("Network #7", |r| nic_network(r.vm, 6)),
        Has("Network #8", |r| nic_network(r.vm, 7)),
        Not("Num Monitors", DISPLAY),
        Not("Video Ram KiB", DISPLAY),
        Has("Resource pool", |r| Cell::Text(&r.vm.resource_pool)),
        Not("Folder ID", "the folder is given by its path (Folder)"),
        Has("Folder", |r| Cell::Text(&r.vm.folder_path)),
        Not("vApp", "vApp membership is not read"),
        Not("DAS protection", HA_FT),
        Not("FT State", HA_FT),
        Not("FT Role", HA_FT),
        Not("FT Latency", HA_FT),
        Not("FT Bandwidth", HA_FT),
        Not("FT Sec. Latency", HA_FT),
        Not("Vm Failover In Progress", HA_FT),
        Has("Provisioned MiB", |r| mib(provisioned(r.vm))),
        Has("In Use MiB", |r| mib(r.vm.committed_bytes)),
        Has("Unshared MiB", |r| mib(r.vm.unshared_bytes)),
        Not("HA Restart Priority", HA_FT),
        Not("HA Isolation Response", HA_FT),
        Not("HA VM Monitoring", HA_FT),
        Not("Cluster rule(s)", HA_FT),
        Not("Cluster rule name(s)", HA_FT),
        Not("Boot Required", BOOT),
        Not("Boot delay", BOOT),
        Not("Boot retry delay", BOOT),
        Not("Boot retry enabled", BOOT),
        Not("Boot BIOS setup", BOOT),
        Not("Reboot PowerOff", BOOT),
        Not("EFI Secure boot", BOOT),
        Has("Firmware", |r| Cell::opt_text(r.vm.firmware.as_deref())),
        Has("HW version", |r| hw_version(r.vm)),
        Not("HW upgrade status", HW_UPGRADE),
        Not("HW upgrade policy", HW_UPGRADE),
        Not("HW target", HW_UPGRADE),
        Not("Path", FILES),
        Not("Log directory", FILES),
        Not("Snapshot directory", FILES),
        Not("Suspend directory", FILES),
        Has("Annotation", |r| Cell::opt_text(r.vm.annotation.as_deref())),
        Custom,
        Has("Datacenter", |r| Cell::Text(&r.vm.datacenter)),
        Has("Cluster", |r| Cell::Text(&r.vm.cluster)),
        Has("Host", |r| Cell::Text(&r.vm.host)),
        Has("OS according to the configuration file", os_config::<V<'a>>),
        Has("OS according to the VMware Tools", os_tools::<V<'a>>),
        Not("Customization Info", CUSTOMIZATION),
        Not("Guest Detailed Data", CUSTOMIZATION),
        Has("VM ID", vm_id::<V<'a>>),
        Has("SMBIOS UUID", |r| Cell::opt_text(r.vm.bios_uuid.as_deref())),
        Has("VM UUID", vm_uuid::<V<'a>>),
        Has("VI SDK Server type", |r| Cell::Text(&r.src.vc.about.name)),
        Has("VI SDK API Version", |r| {
            Cell::Text(&r.src.vc.about.api_version)
        }),
        Has("VI SDK Server", sdk_server::<V<'a>>),
        Has("VI SDK UUID", sdk_uuid::<V<'a>>),
    ]);
    Tab {
        name: "vInfo",
        cols,
    }
}

fn sockets(v: &Vm) -> Option<u32> {
    let cores = v.cores_per_socket.filter(|c| *c > 0)?;
    Some(v.num_cpu? / cores)
}

pub(super) fn cpu<'a>() -> Tab<V<'a>> {
    tab(
        "vCPU",
        vec![
            Has("CPUs", |r: &V<'_>| Cell::opt_int(r.vm.num_cpu)),
            Has("Sockets", |r| Cell::opt_int(sockets(r.vm))),
            Has("Cores p/s", |r| Cell::opt_int(r.vm.cores_per_socket)),
            Not("Max", QUICK_STATS),
            Not("Overall", QUICK_STATS),
            Has("Level", |r| {
                Cell::opt_text(r.vm.cpu.shares_level.as_deref())
            }),
            Has("Shares", |r| Cell::opt_int(r.vm.cpu.shares)),
            Has("Reservation", |r| Cell::opt_int(r.vm.cpu.reservation)),
            Not("Entitlement", QUICK_STATS),
            Not("DRS Entitlement", QUICK_STATS),
            Has("Limit", |r| Cell::opt_int(r.vm.cpu.limit)),
            Has("Hot Add", |r| Cell::opt_bool(r.vm.cpu_hot_add)),
            Not("Hot Remove", "CPU hot remove is not read"),
            Not("Numa Hotadd Exposed", "NUMA settings are not read"),
        ],
    )
}

/// A memory allocation in bytes as RVTools' MiB; -1 (unlimited) stays -1.
fn mib_or_unlimited(v: Option<i64>) -> Cell<'static> {
    match v {
        Some(x) if x < 0 => Cell::Int(x),
        Some(x) => mib(Some(x as u64)),
        None => Cell::Empty,
    }
}

pub(super) fn memory<'a>() -> Tab<V<'a>> {
    tab(
        "vMemory",
        vec![
            Has("Size MiB", |r: &V<'_>| mib(r.vm.memory_bytes)),
            Not("Memory Reservation Locked To Max", "not read"),
            Not("Overhead", QUICK_STATS),
            Not("Max", QUICK_STATS),
            Not("Consumed", QUICK_STATS),
            Not("Consumed Overhead", QUICK_STATS),
            Not("Private", QUICK_STATS),
            Not("Shared", QUICK_STATS),
            Not("Swapped", QUICK_STATS),
            Not("Ballooned", QUICK_STATS),
            Not("Active", QUICK_STATS),
            Not("Entitlement", QUICK_STATS),
            Not("DRS Entitlement", QUICK_STATS),
            Has("Level", |r| {
                Cell::opt_text(r.vm.memory.shares_level.as_deref())
            }),
            Has("Shares", |r| Cell::opt_int(r.vm.memory.shares)),
            Has("Reservation", |r| mib_or_unlimited(r.vm.memory.reservation)),
            Has("Limit", |r| mib_or_unlimited(r.vm.memory.limit)),
            Has("Hot Add", |r| Cell::opt_bool(r.vm.memory_hot_add)),
        ],
    )
}

type D<'a> = Of<'a, Disk>;

fn rdm_mode(d: &Disk) -> Cell<'_> {
    match d.provisioning.as_str() {
        "rdm-physical" => Cell::Text("physicalMode"),
        "rdm-virtual" => Cell::Text("virtualMode"),
        _ => Cell::Empty,
    }
}

pub(super) fn disk<'a>() -> Tab<D<'a>> {
    tab(
        "vDisk",
        vec![
            Has("Disk", |r: &D<'_>| Cell::Text(&r.item.label)),
            Has("Disk Key", |r| Cell::Int(r.item.key.into())),
            Not("Disk UUID", DEVICE),
            Has("Disk Path", |r| Cell::opt_text(r.item.file_path.as_deref())),
            Has("Capacity MiB", |r| mib(r.item.capacity_bytes)),
            Has("Raw", |r| {
                Cell::Bool(r.item.provisioning.starts_with("rdm"))
            }),
            Has("Disk Mode", |r| Cell::opt_text(r.item.mode.as_deref())),
            Not("Sharing mode", DEVICE),
            Has("Thin", |r| Cell::opt_bool(r.item.thin)),
            Has("Eagerly Scrub", |r| {
                Cell::Bool(r.item.provisioning == "thick-eager")
            }),
            Not("Split", DEVICE),
            Not("Write Through", DEVICE),
            Not("Level", STORAGE_IO),
            Not("Shares", STORAGE_IO),
            Not("Reservation", STORAGE_IO),
            Not("Limit", STORAGE_IO),
            Has("Controller", |r| Cell::Text(&r.item.controller)),
            Has("Label", |r| Cell::Text(&r.item.label)),
            Not(
                "SCSI Unit #",
                "the controller's bus number is not kept (Controller names it)",
            ),
            Has("Unit #", |r| Cell::opt_int(r.item.unit_number)),
            Not("Shared Bus", DEVICE),
            Not("Path", FILES),
            Not("Raw LUN ID", DEVICE),
            Has("Raw Comp. Mode", |r| rdm_mode(r.item)),
            Not("Internal Sort Column", SORT),
        ],
    )
}

type P<'a> = Of<'a, Partition>;

fn used(p: &Partition) -> Option<u64> {
    Some(p.capacity_bytes?.saturating_sub(p.free_bytes?))
}

fn free_pct(p: &Partition) -> Option<f64> {
    let cap = p.capacity_bytes.filter(|c| *c > 0)?;
    Some(p.free_bytes? as f64 / cap as f64 * 100.0)
}

pub(super) fn partition<'a>() -> Tab<P<'a>> {
    tab(
        "vPartition",
        vec![
            Has("Disk Key", |r: &P<'_>| Cell::opt_int(r.item.disk_key)),
            Has("Disk", |r| Cell::Text(&r.item.path)),
            Has("Capacity MiB", |r| mib(r.item.capacity_bytes)),
            Has("Consumed MiB", |r| mib(used(r.item))),
            Has("Free MiB", |r| mib(r.item.free_bytes)),
            Has("Free %", |r| Cell::opt_num(free_pct(r.item))),
            Not("Internal Sort Column", SORT),
        ],
    )
}

type N<'a> = Of<'a, Nic>;

/// RVTools names adapters by their vSphere type without `Virtual`.
fn adapter(n: &Nic) -> Cell<'_> {
    Cell::Text(match n.adapter_type.as_str() {
        "vmxnet3" => "Vmxnet3",
        "vmxnet3vrdma" => "Vmxnet3Vrdma",
        "vmxnet2" => "Vmxnet2",
        "vmxnet" => "Vmxnet",
        "e1000e" => "E1000e",
        "e1000" => "E1000",
        "pcnet32" => "PCNet32",
        "sriov" => "SriovEthernetCard",
        other => other,
    })
}

fn addresses(n: &Nic, v6: bool) -> Cell<'static> {
    let list: Vec<&str> = n
        .ip_addresses
        .iter()
        .map(|a| a.as_str())
        .filter(|a| a.contains(':') == v6)
        .collect();
    if list.is_empty() {
        Cell::Empty
    } else {
        Cell::Owned(list.join(", "))
    }
}

pub(super) fn network<'a>() -> Tab<N<'a>> {
    tab(
        "vNetwork",
        vec![
            Has("NIC label", |r: &N<'_>| Cell::Text(&r.item.label)),
            Has("Adapter", |r| adapter(r.item)),
            Has("Network", |r| Cell::Text(&r.item.network)),
            Not("Switch", "the switch behind a portgroup is not read"),
            Has("Connected", |r| Cell::opt_bool(r.item.connected)),
            Has("Starts Connected", |r| {
                Cell::opt_bool(r.item.start_connected)
            }),
            Has("Mac Address", |r| Cell::opt_text(r.item.mac.as_deref())),
            Not("Type", DEVICE),
            Has("IPv4 Address", |r| addresses(r.item, false)),
            Has("IPv6 Address", |r| addresses(r.item, true)),
            Not("Direct Path IO", DEVICE),
            Not("Internal Sort Column", SORT),
        ],
    )
}

type S<'a> = Of<'a, Snapshot>;

pub(super) fn snapshot<'a>() -> Tab<S<'a>> {
    let mut cols: Vec<Col<S<'a>>> = vec![
        Has("VM", name::<S<'a>>),
        Has("Powerstate", power::<S<'a>>),
        Has("Name", |r: &S<'_>| Cell::Text(&r.item.name)),
        Has("Description", |r| {
            Cell::opt_text(r.item.description.as_deref())
        }),
        Has("Date / time", |r| Cell::datetime(r.item.created.as_deref())),
        Not("Filename", FILES),
        Not("Size MiB (vmsn)", FILES),
        Not("Size MiB (total)", FILES),
        Has("Quiesced", |r| Cell::opt_bool(r.item.quiesced)),
        Has("State", |r| Cell::opt_text(r.item.state.as_deref())),
    ];
    cols.extend(tail::<S<'a>>());
    Tab {
        name: "vSnapshot",
        cols,
    }
}
