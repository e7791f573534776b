//! The inventory's records: what migration assessment needs of an estate, at least the
//! VM-level columns of RVTools' vInfo, vCPU, vMemory, vDisk, vNetwork, vHost, vCluster and
//! vDatastore tabs. These types are serialised as JSON (`inventory.json`) and, flattened,
//! as CSV; `SCHEMA_VERSION` changes whenever a field changes meaning or is removed.

use std::collections::BTreeMap;

use compact_str::CompactString;
use serde::{Deserialize, Serialize};

/// Strings are `CompactString`: ids, states and most names fit inline in 24 bytes, which
/// keeps a 10,000-VM inventory small in memory.
///
/// Version of the record layout below. 2: memory sizes in bytes (`memory_bytes`, memory
/// reservation and limit), like every other size.
pub const SCHEMA_VERSION: u32 = 2;

/// One discovery run over every configured vCenter.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Inventory {
    pub schema_version: u32,
    pub agent_version: CompactString,
    pub vcenters: Vec<VcenterInventory>,
}

/// Everything found in one vCenter (or standalone ESXi host).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VcenterInventory {
    /// The configured name.
    pub name: CompactString,
    pub url: CompactString,
    pub about: About,
    /// vCenter's own clock when the inventory was taken.
    pub collected_at: CompactString,
    pub datacenters: Vec<Datacenter>,
    pub clusters: Vec<Cluster>,
    pub hosts: Vec<Host>,
    pub datastores: Vec<Datastore>,
    pub networks: Vec<Network>,
    pub vms: Vec<Vm>,
    /// Properties vCenter could not read (`missingSet`), as `object path: fault`.
    pub warnings: Vec<CompactString>,
}

/// `ServiceContent.about`: what the endpoint is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct About {
    pub name: String,
    pub full_name: String,
    pub vendor: String,
    pub version: String,
    pub build: String,
    pub os_type: String,
    pub product_line_id: String,
    /// `VirtualCenter` or `HostAgent` (a standalone ESXi host).
    pub api_type: String,
    pub api_version: String,
    /// vCenter's instance UUID (empty on ESXi).
    pub instance_uuid: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Datacenter {
    pub id: CompactString,
    pub name: CompactString,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Cluster {
    pub id: CompactString,
    pub name: CompactString,
    pub datacenter: CompactString,
    pub ha_enabled: Option<bool>,
    pub drs_enabled: Option<bool>,
    pub drs_behavior: Option<CompactString>,
    pub num_hosts: Option<u32>,
    pub num_effective_hosts: Option<u32>,
    pub total_cpu_mhz: Option<u64>,
    pub total_memory_bytes: Option<u64>,
    /// Host names.
    pub hosts: Vec<CompactString>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Host {
    pub id: CompactString,
    pub name: CompactString,
    pub datacenter: CompactString,
    /// Empty for a standalone host.
    pub cluster: CompactString,
    pub vendor: Option<CompactString>,
    pub model: Option<CompactString>,
    pub cpu_model: Option<CompactString>,
    pub cpu_sockets: Option<u32>,
    pub cpu_cores: Option<u32>,
    pub cpu_threads: Option<u32>,
    pub cpu_mhz: Option<u32>,
    pub memory_bytes: Option<u64>,
    pub esxi_version: Option<CompactString>,
    pub esxi_build: Option<CompactString>,
    pub connection_state: Option<CompactString>,
    pub in_maintenance_mode: Option<bool>,
    pub power_state: Option<CompactString>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Datastore {
    pub id: CompactString,
    pub name: CompactString,
    pub datacenter: CompactString,
    /// VMFS, NFS, vsan, vvol …
    pub kind: Option<CompactString>,
    pub capacity_bytes: Option<u64>,
    pub free_bytes: Option<u64>,
    pub uncommitted_bytes: Option<u64>,
    pub url: Option<CompactString>,
    pub accessible: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Network {
    pub id: CompactString,
    pub name: CompactString,
    pub datacenter: CompactString,
    /// `Network` (standard portgroup), `DistributedVirtualPortgroup` or `OpaqueNetwork`.
    pub kind: CompactString,
    /// A distributed portgroup's key, as NIC backings name it.
    pub portgroup_key: Option<CompactString>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Vm {
    pub id: CompactString,
    pub name: CompactString,
    /// The vCenter's instance UUID: with `instance_uuid` it identifies the VM globally.
    pub vcenter_uuid: CompactString,
    pub instance_uuid: Option<CompactString>,
    pub bios_uuid: Option<CompactString>,
    pub power_state: Option<CompactString>,
    pub connection_state: Option<CompactString>,
    pub template: bool,
    /// Guest OS as configured.
    pub guest_id: Option<CompactString>,
    pub guest_full_name: Option<CompactString>,
    /// Guest OS as VMware Tools reports it.
    pub tools_guest_id: Option<CompactString>,
    pub tools_guest_full_name: Option<CompactString>,
    pub tools_running_status: Option<CompactString>,
    pub tools_version_status: Option<CompactString>,
    pub tools_version: Option<CompactString>,
    /// `vmx-19` …
    pub hardware_version: Option<CompactString>,
    /// `bios` or `efi`.
    pub firmware: Option<CompactString>,
    pub num_cpu: Option<u32>,
    pub cores_per_socket: Option<u32>,
    /// Configured memory, bytes (vCenter's `memoryMB` × 1 MiB).
    pub memory_bytes: Option<u64>,
    pub cpu: Allocation,
    pub memory: Allocation,
    pub cpu_hot_add: Option<bool>,
    pub memory_hot_add: Option<bool>,
    pub disks: Vec<Disk>,
    pub nics: Vec<Nic>,
    pub ip_addresses: Vec<CompactString>,
    pub guest_hostname: Option<CompactString>,
    pub host: CompactString,
    pub host_id: CompactString,
    pub cluster: CompactString,
    pub datacenter: CompactString,
    pub resource_pool: CompactString,
    /// Inventory path of the VM's folder, e.g. `/DC0/vm/Finance`.
    pub folder_path: CompactString,
    pub annotation: Option<CompactString>,
    pub custom_attributes: BTreeMap<CompactString, CompactString>,
    /// Bytes the VM's files use on their datastores (`summary.storage.committed`).
    pub committed_bytes: Option<u64>,
    /// Bytes its thin disks could still grow by (`summary.storage.uncommitted`).
    pub uncommitted_bytes: Option<u64>,
    /// Bytes used by this VM alone, not shared with linked clones
    /// (`summary.storage.unshared`).
    #[serde(default)]
    pub unshared_bytes: Option<u64>,
    pub snapshot_count: u32,
    /// The snapshot tree, parents before their children.
    #[serde(default)]
    pub snapshots: Vec<Snapshot>,
    /// The guest's file systems as VMware Tools reports them (`guest.disk`): empty when
    /// Tools is not running.
    #[serde(default)]
    pub partitions: Vec<Partition>,
    pub boot_time: Option<CompactString>,
    /// Only vCenter 6.7 and later record it.
    pub create_date: Option<CompactString>,
}

/// One snapshot of a VM (`VirtualMachineSnapshotTree`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub name: CompactString,
    pub description: Option<CompactString>,
    /// `xsd:dateTime`, as vCenter gives it.
    pub created: Option<CompactString>,
    /// The VM's power state when the snapshot was taken.
    pub state: Option<CompactString>,
    pub quiesced: Option<bool>,
    /// The name of the snapshot it was taken from (empty for a root).
    pub parent: CompactString,
}

/// One guest file system (`GuestDiskInfo`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Partition {
    /// Mount point or drive letter, e.g. `/` or `C:\`.
    pub path: CompactString,
    pub capacity_bytes: Option<u64>,
    pub free_bytes: Option<u64>,
    pub filesystem: Option<CompactString>,
    /// The virtual disk (`Disk::key`) it lives on; vSphere 7.0 and later only.
    pub disk_key: Option<i32>,
}

/// CPU (MHz) or memory (bytes) reservation, limit (-1 = unlimited) and shares.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Allocation {
    pub reservation: Option<i64>,
    pub limit: Option<i64>,
    pub shares: Option<i64>,
    pub shares_level: Option<CompactString>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Disk {
    pub key: i32,
    pub label: CompactString,
    pub capacity_bytes: Option<u64>,
    /// `thin`, `thick-lazy`, `thick-eager`, `rdm-physical`, `rdm-virtual` or `other`.
    pub provisioning: CompactString,
    pub thin: Option<bool>,
    pub datastore: CompactString,
    pub file_path: Option<CompactString>,
    pub controller: CompactString,
    pub controller_type: CompactString,
    pub unit_number: Option<i32>,
    /// `persistent`, `independent_persistent` …
    pub mode: Option<CompactString>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Nic {
    pub key: i32,
    pub label: CompactString,
    pub mac: Option<CompactString>,
    /// Network or portgroup name.
    pub network: CompactString,
    pub connected: Option<bool>,
    pub start_connected: Option<bool>,
    /// `vmxnet3`, `e1000e` …
    pub adapter_type: CompactString,
    pub ip_addresses: Vec<CompactString>,
}
