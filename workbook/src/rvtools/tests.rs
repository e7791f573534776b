//! The tabs' declarations against RVTools' column list, the documentation's table, and a
//! workbook written from a small estate.

use std::collections::BTreeMap;

use vscout_wire::inventory::{About, Disk, Host, Partition, VcenterInventory, Vm};

use super::*;
use crate::columns::Col;

/// Every column declared (written or not), custom attributes left out, per tab.
fn declared() -> BTreeMap<&'static str, Vec<&'static str>> {
    fn names<R>(cols: &[Col<R>]) -> Vec<&'static str> {
        cols.iter()
            .filter(|c| !matches!(c, Col::Custom))
            .map(Col::header)
            .collect()
    }
    BTreeMap::from([
        ("vInfo", names(&vms::info().cols)),
        ("vCPU", names(&vms::cpu().cols)),
        ("vMemory", names(&vms::memory().cols)),
        ("vDisk", names(&vms::disk().cols)),
        ("vPartition", names(&vms::partition().cols)),
        ("vNetwork", names(&vms::network().cols)),
        ("vSnapshot", names(&vms::snapshot().cols)),
        ("vHost", names(&entities::host().cols)),
        ("vCluster", names(&entities::cluster().cols)),
        ("vDatastore", names(&entities::datastore().cols)),
        ("vSource", names(&entities::source().cols)),
    ])
}

#[test]
fn every_rvtools_column_is_declared_in_rvtools_order() {
    let reference: serde_json::Value =
        serde_json::from_str(include_str!("../../../tests/data/rvtools-4x-columns.json"))
            .expect("reference list");
    let tabs = reference["tabs"].as_object().expect("tabs");
    let declared = declared();
    assert_eq!(
        tabs.keys().map(String::as_str).collect::<Vec<_>>().len(),
        declared.len()
    );
    for (tab, cols) in tabs {
        let want: Vec<&str> = cols
            .as_array()
            .expect("columns")
            .iter()
            .map(|c| c.as_str().expect("name"))
            .collect();
        assert_eq!(declared[tab.as_str()], want, "{tab}");
    }
    assert_eq!(TABS.len(), declared.len());
}

/// `VSCOUT_BLESS=1 cargo test -p vscout-workbook` rewrites the tables after a change.
#[test]
fn the_documented_column_table_is_the_declared_one() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/rvtools-columns.md");
    let doc = std::fs::read_to_string(path).expect("docs/rvtools-columns.md");
    let table = column_table();
    let marker = "<!-- tables: made from workbook/src/rvtools; VSCOUT_BLESS=1 cargo test -p vscout-workbook rewrites them -->\n";
    if std::env::var_os("VSCOUT_BLESS").is_some() {
        let head = doc.split(marker).next().unwrap_or_default();
        std::fs::write(path, format!("{head}{marker}\n{table}")).expect("bless");
        return;
    }
    assert!(
        doc.contains(&table),
        "docs/rvtools-columns.md is out of date; its tables should read:\n{table}"
    );
}

#[test]
fn server_names_come_from_the_url() {
    assert_eq!(server_name("https://vc.example:443/sdk"), "vc.example");
    assert_eq!(server_name("https://127.0.0.1:8989/sdk"), "127.0.0.1");
    assert_eq!(server_name("https://[::1]:443/sdk"), "::1");
    assert_eq!(server_name("vc.example"), "vc.example");
}

fn estate() -> VcenterInventory {
    let vm = Vm {
        id: "vm-1".into(),
        name: "db".into(),
        power_state: Some("poweredOn".into()),
        num_cpu: Some(4),
        memory_bytes: Some(8 << 30),
        host_id: "host-1".into(),
        disks: vec![Disk {
            key: 2000,
            datastore: "ds1".into(),
            capacity_bytes: Some(40 << 30),
            ..Disk::default()
        }],
        partitions: vec![Partition {
            path: "/".into(),
            capacity_bytes: Some(10 << 30),
            free_bytes: Some(3 << 30),
            ..Partition::default()
        }],
        custom_attributes: [("owner".into(), "finance".into())].into(),
        ..Vm::default()
    };
    VcenterInventory {
        name: "vc".into(),
        url: "https://vc.example/sdk".into(),
        about: About::default(),
        hosts: vec![Host {
            id: "host-1".into(),
            cpu_cores: Some(8),
            ..Host::default()
        }],
        vms: vec![vm],
        ..VcenterInventory::default()
    }
}

#[test]
fn a_small_estate_writes_every_tab() {
    let mut book = Book::new();
    write_inventory(&mut book, &[estate()]).expect("write");
    let bytes = book.to_bytes().expect("save");
    assert_eq!(&bytes[..2], b"PK", "an xlsx is a zip");
    let headers = headers(&["owner".to_owned()]);
    assert_eq!(
        headers.iter().map(|(t, _)| *t).collect::<Vec<_>>(),
        TABS.to_vec()
    );
    let vinfo = &headers[0].1;
    let annotation = vinfo
        .iter()
        .position(|h| h == "Annotation")
        .expect("annotation");
    assert_eq!(
        vinfo[annotation + 1],
        "owner",
        "custom attributes follow Annotation"
    );
}

#[test]
fn host_totals_count_the_vms_on_it() {
    let vc = estate();
    let by_host = totals_by(&vc.vms, |vm| vec![vm.host_id.as_str()]);
    let t = by_host["host-1"];
    assert_eq!((t.vms, t.powered_on, t.vcpus), (1, 1, 4));
    assert_eq!(t.memory_bytes, 8 << 30);
}
