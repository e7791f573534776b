//! Maps one VirtualMachine's properties to a `Vm` record. References to other objects
//! (host, folder, datastores, networks) are kept unresolved in `VmRefs` until every
//! object of the estate has been read.

use compact_str::CompactString;
use std::collections::BTreeMap;

use super::model::{Allocation, Disk, Nic, Partition, Snapshot, Vm};
use crate::vsphere::{MoRef, Node, ObjectContent};

/// Properties read for every VM. `config.createDate` is added for API ≥ 6.7 only: vCenter
/// 6.5 would fail the whole request with InvalidProperty.
pub(super) const VM_PATHS: &[&str] = &[
    "name",
    "parent",
    "resourcePool",
    "config.instanceUuid",
    "config.uuid",
    "config.template",
    "config.guestId",
    "config.guestFullName",
    "config.version",
    "config.firmware",
    "config.hardware.numCPU",
    "config.hardware.numCoresPerSocket",
    "config.hardware.memoryMB",
    "config.hardware.device",
    "config.cpuAllocation",
    "config.memoryAllocation",
    "config.cpuHotAddEnabled",
    "config.memoryHotAddEnabled",
    "config.annotation",
    "runtime.powerState",
    "runtime.connectionState",
    "runtime.host",
    "runtime.bootTime",
    "guest.guestId",
    "guest.guestFullName",
    "guest.toolsRunningStatus",
    "guest.toolsVersionStatus2",
    "guest.toolsVersion",
    "guest.hostName",
    "guest.ipAddress",
    "guest.net",
    "customValue",
    "summary.storage.committed",
    "summary.storage.uncommitted",
    "summary.storage.unshared",
    "snapshot",
    "guest.disk",
];

/// Virtual devices the inventory does not report (keyboard, mouse, video, VMCI, the
/// motherboard's PCI/SIO/PS2 controllers, CD-ROM and floppy drives). They are half of a
/// VM's device list; the parser skips them instead of building them.
pub const PRUNED_DEVICE_TYPES: &[&str] = &[
    "VirtualKeyboard",
    "VirtualPointingDevice",
    "VirtualMachineVideoCard",
    "VirtualMachineVMCIDevice",
    "VirtualPCIController",
    "VirtualSIOController",
    "VirtualPS2Controller",
    "VirtualCdrom",
    "VirtualFloppy",
];

/// References of a VM still to be turned into names.
#[derive(Debug, Clone, Default)]
pub(super) struct VmRefs {
    pub parent: Option<MoRef>,
    pub resource_pool: Option<MoRef>,
    pub host: Option<MoRef>,
    /// Per disk (same order as `Vm::disks`): its datastore.
    pub disk_datastores: Vec<Option<MoRef>>,
    /// Per NIC: its network, or a distributed portgroup key.
    pub nic_networks: Vec<NicBacking>,
    /// Custom attribute values by field key.
    pub custom_values: Vec<(i32, CompactString)>,
}

/// What a NIC is connected to.
#[derive(Debug, Clone, Default)]
pub(super) enum NicBacking {
    Network(MoRef),
    Portgroup(CompactString),
    Named(CompactString),
    #[default]
    None,
}

fn text(n: Option<Node<'_>>) -> Option<CompactString> {
    n.map(|n| CompactString::from(n.text().trim()))
        .filter(|s| !s.is_empty())
}

/// Builds the record and its unresolved references.
pub(super) fn map_vm(oc: &ObjectContent, vcenter_uuid: &str) -> (Vm, VmRefs) {
    let t = |p: &str| text(oc.get(p));
    let mut vm = Vm {
        id: oc.obj.value.clone(),
        name: t("name").unwrap_or_default(),
        vcenter_uuid: vcenter_uuid.into(),
        instance_uuid: t("config.instanceUuid"),
        bios_uuid: t("config.uuid"),
        power_state: t("runtime.powerState"),
        connection_state: t("runtime.connectionState"),
        template: oc.bool("config.template").unwrap_or(false),
        guest_id: t("config.guestId"),
        guest_full_name: t("config.guestFullName"),
        tools_guest_id: t("guest.guestId"),
        tools_guest_full_name: t("guest.guestFullName"),
        tools_running_status: t("guest.toolsRunningStatus"),
        tools_version_status: t("guest.toolsVersionStatus2"),
        tools_version: t("guest.toolsVersion"),
        hardware_version: t("config.version"),
        firmware: t("config.firmware"),
        num_cpu: oc.parse("config.hardware.numCPU"),
        cores_per_socket: oc.parse("config.hardware.numCoresPerSocket"),
        memory_bytes: oc
            .parse::<u64>("config.hardware.memoryMB")
            .map(|mb| mb.saturating_mul(MIB)),
        cpu: allocation(oc.get("config.cpuAllocation")),
        memory: in_bytes(allocation(oc.get("config.memoryAllocation"))),
        cpu_hot_add: oc.bool("config.cpuHotAddEnabled"),
        memory_hot_add: oc.bool("config.memoryHotAddEnabled"),
        guest_hostname: t("guest.hostName"),
        annotation: t("config.annotation"),
        committed_bytes: oc.parse("summary.storage.committed"),
        uncommitted_bytes: oc.parse("summary.storage.uncommitted"),
        unshared_bytes: oc.parse("summary.storage.unshared"),
        snapshots: oc.get("snapshot").map_or_else(Vec::new, snapshots),
        partitions: oc.get("guest.disk").map_or_else(Vec::new, partitions),
        boot_time: t("runtime.bootTime"),
        create_date: t("config.createDate"),
        ..Vm::default()
    };
    vm.snapshot_count = u32::try_from(vm.snapshots.len()).unwrap_or(u32::MAX);
    let mut refs = VmRefs {
        parent: oc.moref("parent"),
        resource_pool: oc.moref("resourcePool"),
        host: oc.moref("runtime.host"),
        ..VmRefs::default()
    };
    if let Some(devices) = oc.get("config.hardware.device") {
        map_devices(devices, &mut vm, &mut refs);
    }
    if let Some(net) = oc.get("guest.net") {
        map_guest_net(net, &mut vm);
    }
    if let Some(ip) = t("guest.ipAddress") {
        if !vm.ip_addresses.contains(&ip) {
            vm.ip_addresses.insert(0, ip);
        }
    }
    if let Some(values) = oc.get("customValue") {
        for v in values.children() {
            if let (Some(key), Some(value)) = (v.parse_at::<i32>("key"), v.text_at("value")) {
                refs.custom_values.push((key, value.into()));
            }
        }
    }
    (vm, refs)
}

fn allocation(n: Option<Node<'_>>) -> Allocation {
    let Some(n) = n else {
        return Allocation::default();
    };
    Allocation {
        reservation: n.parse_at("reservation"),
        limit: n.parse_at("limit"),
        shares: n.parse_at("shares/shares"),
        shares_level: n.text_at("shares/level").map(CompactString::from),
    }
}

const MIB: u64 = 1 << 20;

/// vCenter gives memory reservations and limits in MB; vscout gives every size in bytes.
/// A limit of -1 (unlimited) stays -1.
fn in_bytes(a: Allocation) -> Allocation {
    let scale = |v: Option<i64>| {
        v.map(|x| {
            if x < 0 {
                x
            } else {
                x.saturating_mul(MIB as i64)
            }
        })
    };
    Allocation {
        reservation: scale(a.reservation),
        limit: scale(a.limit),
        ..a
    }
}

/// Flattens the snapshot tree, parents before children, without recursion (hostile input
/// cannot blow the stack).
fn snapshots(info: Node<'_>) -> Vec<Snapshot> {
    let mut stack: Vec<(Node<'_>, CompactString)> = info
        .children_named("rootSnapshotList")
        .map(|n| (n, CompactString::default()))
        .collect();
    stack.reverse();
    let mut out = Vec::new();
    while let Some((n, parent)) = stack.pop() {
        let name = CompactString::from(n.text_at("name").unwrap_or(""));
        let children: Vec<_> = n.children_named("childSnapshotList").collect();
        stack.extend(children.into_iter().rev().map(|c| (c, name.clone())));
        out.push(Snapshot {
            description: text(n.child("description")),
            created: text(n.child("createTime")),
            state: text(n.child("state")),
            quiesced: n.parse_at("quiesced"),
            name,
            parent,
        });
    }
    out
}

/// `guest.disk`: one `GuestDiskInfo` per guest file system.
fn partitions(disks: Node<'_>) -> Vec<Partition> {
    disks
        .children()
        .map(|d| Partition {
            path: CompactString::from(d.text_at("diskPath").unwrap_or("")),
            capacity_bytes: d.parse_at("capacity"),
            free_bytes: d.parse_at("freeSpace"),
            filesystem: text(d.child("filesystemType")),
            disk_key: d.parse_at("mappings/key"),
        })
        .collect()
}

const NIC_TYPES: &[(&str, &str)] = &[
    ("VirtualVmxnet3Vrdma", "vmxnet3vrdma"),
    ("VirtualVmxnet3", "vmxnet3"),
    ("VirtualVmxnet2", "vmxnet2"),
    ("VirtualVmxnet", "vmxnet"),
    ("VirtualE1000e", "e1000e"),
    ("VirtualE1000", "e1000"),
    ("VirtualPCNet32", "pcnet32"),
    ("VirtualSriovEthernetCard", "sriov"),
];

fn map_devices(devices: Node<'_>, vm: &mut Vm, refs: &mut VmRefs) {
    // Controllers first: disks name theirs by key.
    let mut controllers: BTreeMap<i32, (CompactString, CompactString)> = BTreeMap::new();
    for d in devices.children() {
        let ty = d.type_name();
        if ty.ends_with("Controller") && !ty.contains("Usb") && !ty.contains("USB") {
            if let Some(key) = d.parse_at::<i32>("key") {
                let label = CompactString::from(d.text_at("deviceInfo/label").unwrap_or(ty));
                controllers.insert(key, (label, ty.into()));
            }
        }
    }
    for d in devices.children() {
        let ty = d.type_name();
        if ty == "VirtualDisk" {
            let (disk, ds) = map_disk(d, &controllers);
            vm.disks.push(disk);
            refs.disk_datastores.push(ds);
        } else if d.child("macAddress").is_some() || NIC_TYPES.iter().any(|(t, _)| *t == ty) {
            let (nic, backing) = map_nic(d);
            vm.nics.push(nic);
            refs.nic_networks.push(backing);
        }
    }
}

fn map_disk(
    d: Node<'_>,
    controllers: &BTreeMap<i32, (CompactString, CompactString)>,
) -> (Disk, Option<MoRef>) {
    let backing = d.child("backing");
    let bt = backing.map(Node::type_name).unwrap_or("");
    let thin = backing.and_then(|b| b.bool_at("thinProvisioned"));
    let provisioning = if bt.contains("RawDiskMapping") {
        match backing.and_then(|b| b.text_at("compatibilityMode")) {
            Some("physicalMode") => "rdm-physical",
            _ => "rdm-virtual",
        }
    } else if thin == Some(true) {
        "thin"
    } else if bt.contains("FlatVer") || bt.contains("SeSparse") || bt.contains("SparseVer") {
        if backing.and_then(|b| b.bool_at("eagerlyScrub")) == Some(true) {
            "thick-eager"
        } else {
            "thick-lazy"
        }
    } else {
        "other"
    };
    let capacity = d
        .parse_at::<u64>("capacityInBytes")
        .filter(|b| *b > 0)
        .or_else(|| d.parse_at::<u64>("capacityInKB").map(|kb| kb * 1024));
    let controller_key = d.parse_at::<i32>("controllerKey");
    let (controller, controller_type) = controller_key
        .and_then(|k| controllers.get(&k).cloned())
        .unwrap_or_default();
    let disk = Disk {
        key: d.parse_at("key").unwrap_or_default(),
        label: d.text_at("deviceInfo/label").unwrap_or("").into(),
        capacity_bytes: capacity,
        provisioning: provisioning.into(),
        thin,
        datastore: CompactString::default(),
        file_path: backing
            .and_then(|b| b.text_at("fileName"))
            .map(CompactString::from),
        controller,
        controller_type,
        unit_number: d.parse_at("unitNumber"),
        mode: backing
            .and_then(|b| b.text_at("diskMode"))
            .map(CompactString::from),
    };
    (
        disk,
        backing
            .and_then(|b| b.child("datastore"))
            .and_then(MoRef::from_node),
    )
}

fn map_nic(d: Node<'_>) -> (Nic, NicBacking) {
    let ty = d.type_name();
    let adapter = NIC_TYPES.iter().find(|(t, _)| *t == ty).map_or_else(
        || ty.trim_start_matches("Virtual").to_ascii_lowercase().into(),
        |(_, a)| CompactString::from(*a),
    );
    let backing = d.child("backing");
    let link = match backing {
        Some(b) => {
            if let Some(pg) = b.text_at("port/portgroupKey") {
                NicBacking::Portgroup(pg.into())
            } else if let Some(net) = b.child("network").and_then(MoRef::from_node) {
                NicBacking::Network(net)
            } else if let Some(name) = b
                .text_at("deviceName")
                .or_else(|| b.text_at("opaqueNetworkId"))
            {
                NicBacking::Named(name.into())
            } else {
                NicBacking::None
            }
        }
        None => NicBacking::None,
    };
    let nic = Nic {
        key: d.parse_at("key").unwrap_or_default(),
        label: d.text_at("deviceInfo/label").unwrap_or("").into(),
        mac: d.text_at("macAddress").map(CompactString::from),
        network: CompactString::default(),
        connected: d.bool_at("connectable/connected"),
        start_connected: d.bool_at("connectable/startConnected"),
        adapter_type: adapter,
        ip_addresses: Vec::new(),
    };
    (nic, link)
}

/// Guest-reported addresses, per NIC (by `deviceConfigId`) and for the whole VM.
fn map_guest_net(net: Node<'_>, vm: &mut Vm) {
    for g in net.children() {
        let ips: Vec<CompactString> = g
            .children_named("ipAddress")
            .map(|n| CompactString::from(n.text().trim()))
            .filter(|s| !s.is_empty())
            .collect();
        if let Some(key) = g.parse_at::<i32>("deviceConfigId") {
            if let Some(nic) = vm.nics.iter_mut().find(|n| n.key == key) {
                nic.ip_addresses.clone_from(&ips);
            }
        }
        for ip in ips {
            if !vm.ip_addresses.contains(&ip) {
                vm.ip_addresses.push(ip);
            }
        }
    }
}
