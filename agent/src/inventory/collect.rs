//! Takes one vCenter's inventory: one ContainerView over every entity type, one paged
//! RetrievePropertiesEx, each object mapped as it streams in, names resolved at the end.

use compact_str::{format_compact, CompactString};
use std::collections::HashMap;

use super::model::{Cluster, Datacenter, Datastore, Host, Network, VcenterInventory, Vm};
use super::vm::{map_vm, NicBacking, VmRefs, PRUNED_DEVICE_TYPES, VM_PATHS};
use crate::vsphere::{
    About, Client, MoRef, ObjectContent, ObjectSink, Objects, PropertySpec, VsphereError,
};

/// Types the view holds; subtypes (ClusterComputeResource, VirtualApp,
/// DistributedVirtualPortgroup, OpaqueNetwork) come with their parents.
const VIEW_TYPES: &[&str] = &[
    "Folder",
    "Datacenter",
    "ComputeResource",
    "HostSystem",
    "ResourcePool",
    "Datastore",
    "Network",
    "VirtualMachine",
];

const NAME_PARENT: &[&str] = &["name", "parent"];
const COMPUTE_PATHS: &[&str] = &["name", "parent", "host", "summary"];
const CLUSTER_PATHS: &[&str] = &["configurationEx"];
const HOST_PATHS: &[&str] = &[
    "name",
    "parent",
    "summary.hardware",
    "summary.config.product",
    "runtime.connectionState",
    "runtime.inMaintenanceMode",
    "runtime.powerState",
];
const DATASTORE_PATHS: &[&str] = &["name", "parent", "summary"];
const PORTGROUP_PATHS: &[&str] = &["key"];

/// A structural object: enough to walk up the tree and name things.
#[derive(Debug, Clone)]
struct Entity {
    name: CompactString,
    parent: Option<MoRef>,
}

/// Accumulates objects as they stream in. It is moved into the parser's thread and back.
#[derive(Debug, Default)]
pub(super) struct Builder {
    vcenter_uuid: String,
    entities: HashMap<MoRef, Entity>,
    compute: Vec<(MoRef, ObjectContent)>,
    hosts: Vec<ObjectContent>,
    datastores: Vec<ObjectContent>,
    networks: Vec<ObjectContent>,
    datacenters: Vec<MoRef>,
    /// VMs and, at the same index, their unresolved references (kept apart so that the
    /// records can be resolved in place and moved out without a second copy).
    vms: Vec<Vm>,
    vm_refs: Vec<VmRefs>,
    warnings: Vec<CompactString>,
}

impl Builder {
    fn add(&mut self, oc: ObjectContent) {
        for (path, fault) in &oc.missing {
            self.warnings
                .push(format_compact!("{} {path}: {fault}", oc.obj));
        }
        let name = CompactString::from(oc.text("name").unwrap_or(""));
        let parent = oc.moref("parent");
        self.entities
            .insert(oc.obj.clone(), Entity { name, parent });
        match oc.obj.kind.as_str() {
            "VirtualMachine" => {
                let (vm, refs) = map_vm(&oc, &self.vcenter_uuid);
                self.vms.push(vm);
                self.vm_refs.push(refs);
            }
            "HostSystem" => self.hosts.push(oc),
            "ComputeResource" | "ClusterComputeResource" => self.compute.push((oc.obj.clone(), oc)),
            "Datastore" => self.datastores.push(oc),
            "Network" | "DistributedVirtualPortgroup" | "OpaqueNetwork" => self.networks.push(oc),
            "Datacenter" => self.datacenters.push(oc.obj),
            _ => {}
        }
    }
}

impl ObjectSink for Builder {
    fn accept(&mut self, object: ObjectContent) -> Result<(), VsphereError> {
        self.add(object);
        Ok(())
    }
}

/// Collects the inventory of the vCenter behind `client`, re-logging in once if the
/// session has expired.
pub async fn collect(client: &Client) -> Result<VcenterInventory, VsphereError> {
    client.with_session(|| collect_once(client)).await
}

async fn collect_once(client: &Client) -> Result<VcenterInventory, VsphereError> {
    let sc = client.service_content();
    let collected_at = client.current_time().await?;
    let field_names = custom_field_names(client).await?;

    let mut vm_paths: Vec<&str> = VM_PATHS.to_vec();
    if api_at_least(&sc.about.api_version, 6, 7) {
        vm_paths.push("config.createDate");
    }
    let specs = [
        PropertySpec {
            type_name: "Folder",
            paths: NAME_PARENT,
        },
        PropertySpec {
            type_name: "Datacenter",
            paths: NAME_PARENT,
        },
        PropertySpec {
            type_name: "ResourcePool",
            paths: NAME_PARENT,
        },
        PropertySpec {
            type_name: "ComputeResource",
            paths: COMPUTE_PATHS,
        },
        PropertySpec {
            type_name: "ClusterComputeResource",
            paths: CLUSTER_PATHS,
        },
        PropertySpec {
            type_name: "HostSystem",
            paths: HOST_PATHS,
        },
        PropertySpec {
            type_name: "Datastore",
            paths: DATASTORE_PATHS,
        },
        PropertySpec {
            type_name: "Network",
            paths: NAME_PARENT,
        },
        PropertySpec {
            type_name: "DistributedVirtualPortgroup",
            paths: PORTGROUP_PATHS,
        },
        PropertySpec {
            type_name: "VirtualMachine",
            paths: &vm_paths,
        },
    ];
    let builder = Builder {
        vcenter_uuid: sc.about.instance_uuid.clone(),
        ..Builder::default()
    };
    let builder = client
        .with_container_view(VIEW_TYPES, |view| async move {
            let (b, _stats) = client
                .retrieve_pruned(&specs, Objects::View(&view), PRUNED_DEVICE_TYPES, builder)
                .await?;
            Ok(b)
        })
        .await?;
    let sc = client.service_content();
    Ok(builder.finish(
        client.name(),
        client.url(),
        &sc.about,
        collected_at,
        &field_names,
    ))
}

impl Builder {
    fn name_of(&self, r: &MoRef) -> CompactString {
        self.entities
            .get(r)
            .map(|e| e.name.clone())
            .unwrap_or_default()
    }

    /// Walks up `parent` links to the first ancestor of `kind` (bounded: a hostile or
    /// cyclic answer cannot loop).
    fn ancestor(&self, start: &MoRef, kind: &str) -> Option<&MoRef> {
        let mut cur = start;
        for _ in 0..64 {
            let e = self.entities.get(cur)?;
            let parent = e.parent.as_ref()?;
            if parent.kind == kind {
                return Some(parent);
            }
            cur = parent;
        }
        None
    }

    fn datacenter_name(&self, r: &MoRef) -> CompactString {
        self.ancestor(r, "Datacenter")
            .map(|d| self.name_of(d))
            .unwrap_or_default()
    }

    /// `/DC/vm/Sub/Folder` for a folder reference.
    fn folder_path(&self, folder: &MoRef) -> CompactString {
        let mut names = Vec::new();
        let mut cur = Some(folder);
        for _ in 0..64 {
            let Some(r) = cur else { break };
            let Some(e) = self.entities.get(r) else { break };
            names.push(e.name.as_str());
            if r.kind == "Datacenter" {
                break;
            }
            cur = e.parent.as_ref();
        }
        names.reverse();
        format_compact!("/{}", names.join("/"))
    }

    fn finish(
        mut self,
        name: &str,
        url: &str,
        about: &About,
        collected_at: String,
        field_names: &HashMap<i32, CompactString>,
    ) -> VcenterInventory {
        let mut vms = std::mem::take(&mut self.vms);
        let warnings = std::mem::take(&mut self.warnings);
        let (clusters, host_cluster) = self.clusters();
        let hosts = self.hosts(&host_cluster);
        let datastores = self.datastores();
        let (networks, portgroups) = self.networks();
        let datacenters = self
            .datacenters
            .iter()
            .map(|dc| Datacenter {
                id: dc.value.clone(),
                name: self.name_of(dc),
            })
            .collect();
        for (vm, refs) in vms.iter_mut().zip(&self.vm_refs) {
            self.resolve_vm(vm, refs, &host_cluster, &portgroups, field_names);
        }
        VcenterInventory {
            name: name.into(),
            url: url.into(),
            about: about.clone(),
            collected_at: collected_at.into(),
            datacenters,
            clusters,
            hosts,
            datastores,
            networks,
            vms,
            warnings,
        }
    }

    /// Clusters, and each host's cluster name.
    fn clusters(&self) -> (Vec<Cluster>, HashMap<MoRef, CompactString>) {
        let mut out = Vec::new();
        let mut host_cluster: HashMap<MoRef, CompactString> = HashMap::new();
        for (r, oc) in &self.compute {
            if r.kind != "ClusterComputeResource" {
                continue;
            }
            let hosts = oc.morefs("host");
            let name = self.name_of(r);
            for h in &hosts {
                host_cluster.insert(h.clone(), name.clone());
            }
            let summary = oc.get("summary");
            let cfg = oc.get("configurationEx");
            out.push(Cluster {
                id: r.value.clone(),
                name,
                datacenter: self.datacenter_name(r),
                ha_enabled: cfg.and_then(|c| c.bool_at("dasConfig/enabled")),
                drs_enabled: cfg.and_then(|c| c.bool_at("drsConfig/enabled")),
                drs_behavior: cfg
                    .and_then(|c| c.text_at("drsConfig/defaultVmBehavior"))
                    .map(CompactString::from),
                num_hosts: summary.and_then(|s| s.parse_at("numHosts")),
                num_effective_hosts: summary.and_then(|s| s.parse_at("numEffectiveHosts")),
                total_cpu_mhz: summary.and_then(|s| s.parse_at("totalCpu")),
                total_memory_bytes: summary.and_then(|s| s.parse_at("totalMemory")),
                hosts: hosts.iter().map(|h| self.name_of(h)).collect(),
            });
        }
        (out, host_cluster)
    }

    fn hosts(&self, host_cluster: &HashMap<MoRef, CompactString>) -> Vec<Host> {
        let mut out = Vec::new();
        for oc in &self.hosts {
            let hw = oc.get("summary.hardware");
            let product = oc.get("summary.config.product");
            let hwt = |k: &str| hw.and_then(|h| h.text_at(k)).map(CompactString::from);
            out.push(Host {
                id: oc.obj.value.clone(),
                name: self.name_of(&oc.obj),
                datacenter: self.datacenter_name(&oc.obj),
                cluster: host_cluster.get(&oc.obj).cloned().unwrap_or_default(),
                vendor: hwt("vendor"),
                model: hwt("model"),
                cpu_model: hwt("cpuModel"),
                cpu_sockets: hw.and_then(|h| h.parse_at("numCpuPkgs")),
                cpu_cores: hw.and_then(|h| h.parse_at("numCpuCores")),
                cpu_threads: hw.and_then(|h| h.parse_at("numCpuThreads")),
                cpu_mhz: hw.and_then(|h| h.parse_at("cpuMhz")),
                memory_bytes: hw.and_then(|h| h.parse_at("memorySize")),
                esxi_version: product
                    .and_then(|p| p.text_at("version"))
                    .map(CompactString::from),
                esxi_build: product
                    .and_then(|p| p.text_at("build"))
                    .map(CompactString::from),
                connection_state: oc.text("runtime.connectionState").map(CompactString::from),
                in_maintenance_mode: oc.bool("runtime.inMaintenanceMode"),
                power_state: oc.text("runtime.powerState").map(CompactString::from),
            });
        }
        out
    }

    fn datastores(&self) -> Vec<Datastore> {
        let mut out = Vec::new();
        for oc in &self.datastores {
            let s = oc.get("summary");
            let st = |k: &str| s.and_then(|n| n.text_at(k)).map(CompactString::from);
            out.push(Datastore {
                id: oc.obj.value.clone(),
                name: self.name_of(&oc.obj),
                datacenter: self.datacenter_name(&oc.obj),
                kind: st("type"),
                capacity_bytes: s.and_then(|n| n.parse_at("capacity")),
                free_bytes: s.and_then(|n| n.parse_at("freeSpace")),
                uncommitted_bytes: s.and_then(|n| n.parse_at("uncommitted")),
                url: st("url"),
                accessible: s.and_then(|n| n.bool_at("accessible")),
            });
        }
        out
    }

    /// Networks, and distributed portgroups' names by key (what a NIC's backing names).
    fn networks(&self) -> (Vec<Network>, HashMap<&str, CompactString>) {
        let mut out = Vec::new();
        let mut portgroups: HashMap<&str, CompactString> = HashMap::new();
        for oc in &self.networks {
            let key = oc.text("key").map(CompactString::from);
            let name = self.name_of(&oc.obj);
            if let Some(k) = oc.text("key") {
                portgroups.insert(k, name.clone());
            }
            out.push(Network {
                id: oc.obj.value.clone(),
                name,
                datacenter: self.datacenter_name(&oc.obj),
                kind: oc.obj.kind.clone(),
                portgroup_key: key,
            });
        }
        (out, portgroups)
    }

    /// Resolves a VM's references (host, cluster, folder, pool, datastores, networks,
    /// custom field names) to names.
    fn resolve_vm(
        &self,
        vm: &mut Vm,
        refs: &VmRefs,
        host_cluster: &HashMap<MoRef, CompactString>,
        portgroups: &HashMap<&str, CompactString>,
        field_names: &HashMap<i32, CompactString>,
    ) {
        let me = MoRef::new("VirtualMachine", vm.id.clone());
        vm.datacenter = self.datacenter_name(&me);
        vm.folder_path = refs
            .parent
            .as_ref()
            .map(|p| self.folder_path(p))
            .unwrap_or_default();
        vm.resource_pool = refs
            .resource_pool
            .as_ref()
            .map(|p| self.name_of(p))
            .unwrap_or_default();
        if let Some(h) = &refs.host {
            vm.host = self.name_of(h);
            vm.host_id = h.value.clone();
            vm.cluster = host_cluster.get(h).cloned().unwrap_or_default();
        }
        for (disk, ds) in vm.disks.iter_mut().zip(&refs.disk_datastores) {
            if let Some(ds) = ds {
                disk.datastore = self.name_of(ds);
            }
            if disk.datastore.is_empty() {
                // `[datastore1] vm/vm.vmdk`: the name is in the path.
                if let Some(name) = disk
                    .file_path
                    .as_deref()
                    .and_then(|p| p.strip_prefix('['))
                    .and_then(|p| p.split(']').next())
                {
                    disk.datastore = name.into();
                }
            }
        }
        for (nic, link) in vm.nics.iter_mut().zip(&refs.nic_networks) {
            nic.network = match link {
                NicBacking::Network(n) => self.name_of(n),
                NicBacking::Portgroup(k) => portgroups
                    .get(k.as_str())
                    .cloned()
                    .unwrap_or_else(|| k.clone()),
                NicBacking::Named(n) => n.clone(),
                NicBacking::None => CompactString::default(),
            };
        }
        for (key, value) in &refs.custom_values {
            let name = field_names
                .get(key)
                .cloned()
                .unwrap_or_else(|| format_compact!("field-{key}"));
            vm.custom_attributes.insert(name, value.clone());
        }
    }
}

/// Names of custom attributes (`CustomFieldsManager.field`), by key. ESXi has none.
async fn custom_field_names(client: &Client) -> Result<HashMap<i32, CompactString>, VsphereError> {
    let Some(cfm) = client.service_content().custom_fields_manager.clone() else {
        return Ok(HashMap::new());
    };
    let list = [cfm];
    let specs = [PropertySpec {
        type_name: "CustomFieldsManager",
        paths: &["field"],
    }];
    let names = FieldNames::default();
    let (names, _) = client.retrieve(&specs, Objects::List(&list), names).await?;
    Ok(names.0)
}

#[derive(Debug, Default)]
struct FieldNames(HashMap<i32, CompactString>);

impl ObjectSink for FieldNames {
    fn accept(&mut self, oc: ObjectContent) -> Result<(), VsphereError> {
        if let Some(fields) = oc.get("field") {
            for f in fields.children() {
                if let (Some(k), Some(n)) = (f.parse_at::<i32>("key"), f.text_at("name")) {
                    self.0.insert(k, n.into());
                }
            }
        }
        Ok(())
    }
}

/// Compares a dotted API version (`6.5`, `8.0.2.0`) with `major.minor`.
pub fn api_at_least(version: &str, major: u32, minor: u32) -> bool {
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let (a, b) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (a, b) >= (major, minor)
}

/// Builds an inventory from a captured RetrievePropertiesEx answer, as `collect` does from
/// a live one: for tests, fuzzing and the parse benchmark.
pub fn from_captured_answer(body: &[u8], about: &About) -> Result<VcenterInventory, VsphereError> {
    let mut builder = Builder {
        vcenter_uuid: about.instance_uuid.clone(),
        ..Builder::default()
    };
    crate::vsphere::parse_retrieve_response(body, PRUNED_DEVICE_TYPES, |oc: ObjectContent| {
        builder.add(oc);
        Ok(())
    })?;
    Ok(builder.finish("captured", "", about, String::new(), &HashMap::new()))
}
