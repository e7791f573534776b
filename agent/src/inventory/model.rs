//! The inventory's records: what migration assessment needs of an estate, at least the
//! VM-level columns of RVTools' vInfo, vCPU, vMemory, vDisk, vNetwork, vHost, vCluster and
//! vDatastore tabs. These types are serialised as JSON (`inventory.json`) and, flattened,
//! as CSV; `SCHEMA_VERSION` changes whenever a field changes meaning or is removed.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::vsphere::About;

/// Version of the record layout below.
pub const SCHEMA_VERSION: u32 = 1;

/// One discovery run over every configured vCenter.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Inventory {
    pub schema_version: u32,
    pub agent_version: String,
    pub vcenters: Vec<VcenterInventory>,
}

/// Everything found in one vCenter (or standalone ESXi host).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VcenterInventory {
    /// The configured name.
    pub name: String,
    pub url: String,
    pub about: About,
    /// vCenter's own clock when the inventory was taken.
    pub collected_at: String,
    pub datacenters: Vec<Datacenter>,
    pub clusters: Vec<Cluster>,
    pub hosts: Vec<Host>,
    pub datastores: Vec<Datastore>,
    pub networks: Vec<Network>,
    pub vms: Vec<Vm>,
    /// Properties vCenter could not read (`missingSet`), as `object path: fault`.
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Datacenter {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Cluster {
    pub id: String,
    pub name: String,
    pub datacenter: String,
    pub ha_enabled: Option<bool>,
    pub drs_enabled: Option<bool>,
    pub drs_behavior: Option<String>,
    pub num_hosts: Option<u32>,
    pub num_effective_hosts: Option<u32>,
    pub total_cpu_mhz: Option<u64>,
    pub total_memory_bytes: Option<u64>,
    /// Host names.
    pub hosts: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Host {
    pub id: String,
    pub name: String,
    pub datacenter: String,
    /// Empty for a standalone host.
    pub cluster: String,
    pub vendor: Option<String>,
    pub model: Option<String>,
    pub cpu_model: Option<String>,
    pub cpu_sockets: Option<u32>,
    pub cpu_cores: Option<u32>,
    pub cpu_threads: Option<u32>,
    pub cpu_mhz: Option<u32>,
    pub memory_bytes: Option<u64>,
    pub esxi_version: Option<String>,
    pub esxi_build: Option<String>,
    pub connection_state: Option<String>,
    pub in_maintenance_mode: Option<bool>,
    pub power_state: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Datastore {
    pub id: String,
    pub name: String,
    pub datacenter: String,
    /// VMFS, NFS, vsan, vvol …
    pub kind: Option<String>,
    pub capacity_bytes: Option<u64>,
    pub free_bytes: Option<u64>,
    pub uncommitted_bytes: Option<u64>,
    pub url: Option<String>,
    pub accessible: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Network {
    pub id: String,
    pub name: String,
    pub datacenter: String,
    /// `Network` (standard portgroup), `DistributedVirtualPortgroup` or `OpaqueNetwork`.
    pub kind: String,
    /// A distributed portgroup's key, as NIC backings name it.
    pub portgroup_key: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Vm {
    pub id: String,
    pub name: String,
    /// The vCenter's instance UUID: with `instance_uuid` it identifies the VM globally.
    pub vcenter_uuid: String,
    pub instance_uuid: Option<String>,
    pub bios_uuid: Option<String>,
    pub power_state: Option<String>,
    pub connection_state: Option<String>,
    pub template: bool,
    /// Guest OS as configured.
    pub guest_id: Option<String>,
    pub guest_full_name: Option<String>,
    /// Guest OS as VMware Tools reports it.
    pub tools_guest_id: Option<String>,
    pub tools_guest_full_name: Option<String>,
    pub tools_running_status: Option<String>,
    pub tools_version_status: Option<String>,
    pub tools_version: Option<String>,
    /// `vmx-19` …
    pub hardware_version: Option<String>,
    /// `bios` or `efi`.
    pub firmware: Option<String>,
    pub num_cpu: Option<u32>,
    pub cores_per_socket: Option<u32>,
    pub memory_mb: Option<u64>,
    pub cpu: Allocation,
    pub memory: Allocation,
    pub cpu_hot_add: Option<bool>,
    pub memory_hot_add: Option<bool>,
    pub disks: Vec<Disk>,
    pub nics: Vec<Nic>,
    pub ip_addresses: Vec<String>,
    pub guest_hostname: Option<String>,
    pub host: String,
    pub host_id: String,
    pub cluster: String,
    pub datacenter: String,
    pub resource_pool: String,
    /// Inventory path of the VM's folder, e.g. `/DC0/vm/Finance`.
    pub folder_path: String,
    pub annotation: Option<String>,
    pub custom_attributes: BTreeMap<String, String>,
    pub committed_bytes: Option<u64>,
    pub uncommitted_bytes: Option<u64>,
    pub snapshot_count: u32,
    pub boot_time: Option<String>,
    /// Only vCenter 6.7 and later record it.
    pub create_date: Option<String>,
}

/// CPU (MHz) or memory (MB) reservation, limit (-1 = unlimited) and shares.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Allocation {
    pub reservation: Option<i64>,
    pub limit: Option<i64>,
    pub shares: Option<i64>,
    pub shares_level: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Disk {
    pub key: i32,
    pub label: String,
    pub capacity_bytes: Option<u64>,
    /// `thin`, `thick-lazy`, `thick-eager`, `rdm-physical`, `rdm-virtual` or `other`.
    pub provisioning: String,
    pub thin: Option<bool>,
    pub datastore: String,
    pub file_path: Option<String>,
    pub controller: String,
    pub controller_type: String,
    pub unit_number: Option<i32>,
    /// `persistent`, `independent_persistent` …
    pub mode: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Nic {
    pub key: i32,
    pub label: String,
    pub mac: Option<String>,
    /// Network or portgroup name.
    pub network: String,
    pub connected: Option<bool>,
    pub start_connected: Option<bool>,
    /// `vmxnet3`, `e1000e` …
    pub adapter_type: String,
    pub ip_addresses: Vec<String>,
}
