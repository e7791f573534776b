//! Inventory mapping on a real vcsim answer (`vsphere/testdata/retrieve_vcsim.xml`, made
//! by `tests/tests/record_fixture.rs`), and a property test that mutates it: whatever the
//! bytes, parsing and mapping return a value or an error, never a panic.

use proptest::prelude::*;

use super::from_captured_answer;
use crate::vsphere::About;

const ANSWER: &[u8] = include_bytes!("../vsphere/testdata/retrieve_vcsim.xml");

fn about() -> About {
    About {
        instance_uuid: "vc-uuid".into(),
        api_version: "6.5".into(),
        ..About::default()
    }
}

#[test]
fn captured_vcsim_answer_maps_to_a_resolved_inventory() {
    let inv = from_captured_answer(ANSWER, &about()).expect("parse");
    assert_eq!(inv.vms.len(), 4);
    assert_eq!(inv.hosts.len(), 4);
    assert_eq!(inv.clusters.len(), 1);
    assert_eq!(inv.clusters[0].hosts.len(), 3);
    assert_eq!(inv.datacenters.len(), 1);
    for vm in &inv.vms {
        assert_eq!(vm.vcenter_uuid, "vc-uuid");
        assert_eq!(vm.datacenter, "DC0");
        assert_eq!(vm.folder_path, "/DC0/vm");
        assert!(!vm.host.is_empty());
        assert_eq!(vm.disks.len(), 1);
        assert_eq!(vm.disks[0].datastore, "LocalDS_0");
        assert!(vm.disks[0].controller_type.ends_with("Controller"));
        assert!(!vm.nics.is_empty() && !vm.nics[0].network.is_empty());
    }
    let clustered = inv.vms.iter().filter(|v| v.cluster == "DC0_C0").count();
    assert_eq!(clustered, 2);
}

#[derive(Debug, Clone)]
enum Mutation {
    Truncate(usize),
    Flip(usize, u8),
    Insert(usize, &'static str),
    Delete(usize, usize),
    Duplicate(usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let n = ANSWER.len();
    let junk = prop::sample::select(vec![
        "<",
        ">",
        "&",
        "&amp;",
        "&#0;",
        "&#xD800;",
        "</objects>",
        "<objects>",
        "<val>",
        "]]>",
        "<![CDATA[x",
        "\"",
        "xsi:type=\"",
        "<obj type=\"VirtualMachine\">",
        "</propSet>",
        "\u{feff}",
        "\u{0}",
    ]);
    prop_oneof![
        (0..n).prop_map(Mutation::Truncate),
        (0..n, any::<u8>()).prop_map(|(i, b)| Mutation::Flip(i, b)),
        (0..n, junk).prop_map(|(i, s)| Mutation::Insert(i, s)),
        (0..n, 1..200usize).prop_map(|(i, l)| Mutation::Delete(i, l)),
        (0..n, 1..400usize).prop_map(|(i, l)| Mutation::Duplicate(i, l)),
    ]
}

fn apply(mut bytes: Vec<u8>, m: &Mutation) -> Vec<u8> {
    let n = bytes.len();
    match *m {
        Mutation::Truncate(i) => bytes.truncate(i.min(n)),
        Mutation::Flip(i, b) => {
            if i < n {
                bytes[i] ^= b | 1;
            }
        }
        Mutation::Insert(i, s) => {
            let i = i.min(n);
            bytes.splice(i..i, s.bytes());
        }
        Mutation::Delete(i, l) => {
            let i = i.min(n);
            bytes.drain(i..(i + l).min(n));
        }
        Mutation::Duplicate(i, l) => {
            let i = i.min(n);
            let piece: Vec<u8> = bytes[i..(i + l).min(n)].to_vec();
            bytes.splice(i..i, piece);
        }
    }
    bytes
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn mutated_answers_never_panic(muts in prop::collection::vec(mutation(), 1..4)) {
        let bytes = muts.iter().fold(ANSWER.to_vec(), apply);
        // Ok or Err are both fine; a panic fails the test.
        let _ = from_captured_answer(&bytes, &about());
    }

    #[test]
    fn truncated_answers_are_always_errors(cut in 0..ANSWER.len() - 20) {
        prop_assert!(from_captured_answer(&ANSWER[..cut], &about()).is_err());
    }
}

/// A VM as real vCenter describes one that vcsim does not model: snapshots, custom
/// attributes, guest IPs, an RDM disk on a SCSI controller, a distributed-port NIC.
const RICH_VM: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema"><soapenv:Body><RetrievePropertiesExResponse xmlns="urn:vim25"><returnval>
<objects><obj type="Datacenter">datacenter-1</obj><propSet><name>name</name><val xsi:type="xsd:string">Paris</val></propSet></objects>
<objects><obj type="Folder">group-v1</obj><propSet><name>name</name><val xsi:type="xsd:string">vm</val></propSet><propSet><name>parent</name><val xsi:type="ManagedObjectReference" type="Datacenter">datacenter-1</val></propSet></objects>
<objects><obj type="Folder">group-v2</obj><propSet><name>name</name><val xsi:type="xsd:string">Finance &amp; HR</val></propSet><propSet><name>parent</name><val xsi:type="ManagedObjectReference" type="Folder">group-v1</val></propSet></objects>
<objects><obj type="DistributedVirtualPortgroup">dvportgroup-9</obj><propSet><name>name</name><val xsi:type="xsd:string">VLAN 42</val></propSet><propSet><name>key</name><val xsi:type="xsd:string">dvportgroup-9</val></propSet></objects>
<objects><obj type="VirtualMachine">vm-7</obj>
<propSet><name>name</name><val xsi:type="xsd:string">erp-db</val></propSet>
<propSet><name>parent</name><val xsi:type="ManagedObjectReference" type="Folder">group-v2</val></propSet>
<propSet><name>config.template</name><val xsi:type="xsd:boolean">false</val></propSet>
<propSet><name>config.cpuHotAddEnabled</name><val xsi:type="xsd:boolean">true</val></propSet>
<propSet><name>config.cpuAllocation</name><val xsi:type="ResourceAllocationInfo"><reservation>500</reservation><expandableReservation>false</expandableReservation><limit>-1</limit><shares><shares>2000</shares><level>normal</level></shares></val></propSet>
<propSet><name>config.hardware.device</name><val xsi:type="ArrayOfVirtualDevice">
 <VirtualDevice xsi:type="ParaVirtualSCSIController"><key>1000</key><deviceInfo><label>SCSI controller 0</label></deviceInfo><busNumber>0</busNumber></VirtualDevice>
 <VirtualDevice xsi:type="VirtualKeyboard"><key>600</key><deviceInfo><label>Keyboard</label></deviceInfo></VirtualDevice>
 <VirtualDevice xsi:type="VirtualDisk"><key>2000</key><deviceInfo><label>Hard disk 1</label></deviceInfo><backing xsi:type="VirtualDiskFlatVer2BackingInfo"><fileName>[ds1] erp-db/erp-db.vmdk</fileName><datastore type="Datastore">datastore-3</datastore><diskMode>persistent</diskMode><thinProvisioned>false</thinProvisioned><eagerlyScrub>true</eagerlyScrub></backing><controllerKey>1000</controllerKey><unitNumber>0</unitNumber><capacityInKB>41943040</capacityInKB><capacityInBytes>42949672960</capacityInBytes></VirtualDevice>
 <VirtualDevice xsi:type="VirtualDisk"><key>2001</key><deviceInfo><label>Hard disk 2</label></deviceInfo><backing xsi:type="VirtualDiskRawDiskMappingVer1BackingInfo"><fileName>[ds1] erp-db/erp-db_1.vmdk</fileName><compatibilityMode>physicalMode</compatibilityMode><diskMode>independent_persistent</diskMode></backing><controllerKey>1000</controllerKey><unitNumber>1</unitNumber><capacityInKB>1024</capacityInKB></VirtualDevice>
 <VirtualDevice xsi:type="VirtualVmxnet3"><key>4000</key><deviceInfo><label>Network adapter 1</label></deviceInfo><backing xsi:type="VirtualEthernetCardDistributedVirtualPortBackingInfo"><port><switchUuid>50 2a</switchUuid><portgroupKey>dvportgroup-9</portgroupKey></port></backing><connectable><startConnected>true</startConnected><connected>true</connected></connectable><addressType>assigned</addressType><macAddress>00:50:56:aa:bb:cc</macAddress></VirtualDevice>
</val></propSet>
<propSet><name>guest.net</name><val xsi:type="ArrayOfGuestNicInfo"><GuestNicInfo><network>VLAN 42</network><ipAddress>10.0.0.5</ipAddress><ipAddress>fe80::1</ipAddress><macAddress>00:50:56:aa:bb:cc</macAddress><connected>true</connected><deviceConfigId>4000</deviceConfigId></GuestNicInfo></val></propSet>
<propSet><name>guest.ipAddress</name><val xsi:type="xsd:string">10.0.0.5</val></propSet>
<propSet><name>customValue</name><val xsi:type="ArrayOfCustomFieldValue"><CustomFieldValue xsi:type="CustomFieldStringValue"><key>101</key><value>finance</value></CustomFieldValue></val></propSet>
<propSet><name>snapshot</name><val xsi:type="VirtualMachineSnapshotInfo"><rootSnapshotList><name>base</name><description>before go-live</description><createTime>2026-03-01T10:00:00.5Z</createTime><state>poweredOff</state><quiesced>false</quiesced><childSnapshotList><name>pre-upgrade</name><description></description><createTime>2026-05-02T22:15:00Z</createTime><state>poweredOn</state><quiesced>true</quiesced><childSnapshotList><name>post-upgrade</name></childSnapshotList></childSnapshotList><childSnapshotList><name>branch</name></childSnapshotList></rootSnapshotList></val></propSet>
<propSet><name>summary.storage.unshared</name><val xsi:type="xsd:long">32212254720</val></propSet>
<propSet><name>guest.disk</name><val xsi:type="ArrayOfGuestDiskInfo"><GuestDiskInfo><diskPath>C:\</diskPath><capacity>42314215424</capacity><freeSpace>12884901888</freeSpace><filesystemType>NTFS</filesystemType><mappings><key>2000</key></mappings></GuestDiskInfo><GuestDiskInfo><diskPath>E:\</diskPath><capacity>1072693248</capacity><freeSpace>1072693248</freeSpace></GuestDiskInfo></val></propSet>
<missingSet><path>config.createDate</path><fault><fault xsi:type="InvalidProperty"><name>config.createDate</name></fault></fault></missingSet>
</objects>
<objects><obj type="Datastore">datastore-3</obj><propSet><name>name</name><val xsi:type="xsd:string">ds1</val></propSet></objects>
</returnval></RetrievePropertiesExResponse></soapenv:Body></soapenv:Envelope>"#;

#[test]
fn a_vm_with_snapshots_rdm_dvport_and_custom_values_is_mapped() {
    let inv = from_captured_answer(RICH_VM.as_bytes(), &about()).expect("parse");
    let vm = &inv.vms[0];
    assert_eq!(vm.folder_path, "/Paris/vm/Finance & HR");
    assert_eq!(vm.datacenter, "Paris");
    assert_eq!(vm.snapshot_count, 4);
    let snaps: Vec<(&str, &str)> = vm
        .snapshots
        .iter()
        .map(|s| (s.name.as_str(), s.parent.as_str()))
        .collect();
    assert_eq!(
        snaps,
        vec![
            ("base", ""),
            ("pre-upgrade", "base"),
            ("post-upgrade", "pre-upgrade"),
            ("branch", "base")
        ],
        "parents before children, siblings in vCenter's order"
    );
    let base = &vm.snapshots[0];
    assert_eq!(base.description.as_deref(), Some("before go-live"));
    assert_eq!(base.created.as_deref(), Some("2026-03-01T10:00:00.5Z"));
    assert_eq!(
        (base.state.as_deref(), base.quiesced),
        (Some("poweredOff"), Some(false))
    );
    assert_eq!(vm.snapshots[1].quiesced, Some(true));
    assert_eq!(
        vm.snapshots[1].description, None,
        "an empty description is none"
    );
    assert_eq!(vm.unshared_bytes, Some(32_212_254_720));
    assert_eq!(vm.partitions.len(), 2);
    let c = &vm.partitions[0];
    assert_eq!(
        (c.path.as_str(), c.capacity_bytes, c.free_bytes),
        ("C:\\", Some(42_314_215_424), Some(12_884_901_888))
    );
    assert_eq!(
        (c.filesystem.as_deref(), c.disk_key),
        (Some("NTFS"), Some(2000))
    );
    assert_eq!(
        (
            vm.partitions[1].filesystem.as_deref(),
            vm.partitions[1].disk_key
        ),
        (None, None),
        "vCenter before 7.0 names neither"
    );
    assert_eq!(vm.cpu_hot_add, Some(true));
    assert_eq!(vm.cpu.reservation, Some(500));
    assert_eq!(vm.cpu.limit, Some(-1));
    assert_eq!(vm.cpu.shares, Some(2000));
    assert_eq!(
        vm.custom_attributes.get("field-101").map(|v| v.as_str()),
        Some("finance")
    );
    assert_eq!(vm.ip_addresses, vec!["10.0.0.5", "fe80::1"]);
    // The keyboard is pruned; the controller is not a disk or NIC.
    assert_eq!(vm.disks.len(), 2);
    let d0 = &vm.disks[0];
    assert_eq!(
        (d0.provisioning.as_str(), d0.capacity_bytes),
        ("thick-eager", Some(42_949_672_960))
    );
    assert_eq!(
        (d0.datastore.as_str(), d0.controller.as_str()),
        ("ds1", "SCSI controller 0")
    );
    let d1 = &vm.disks[1];
    assert_eq!(d1.provisioning, "rdm-physical");
    assert_eq!(
        d1.capacity_bytes,
        Some(1024 * 1024),
        "capacityInKB when capacityInBytes is absent"
    );
    assert_eq!(
        d1.datastore, "ds1",
        "datastore from the file path when the backing has none"
    );
    assert_eq!(d1.mode.as_deref(), Some("independent_persistent"));
    let nic = &vm.nics[0];
    assert_eq!(nic.adapter_type, "vmxnet3");
    assert_eq!(nic.network, "VLAN 42");
    assert_eq!(nic.ip_addresses, vec!["10.0.0.5", "fe80::1"]);
    assert_eq!(nic.connected, Some(true));
    assert_eq!(
        inv.warnings,
        vec!["VirtualMachine:vm-7 config.createDate: InvalidProperty"]
    );
}
