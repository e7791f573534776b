//! The export through a real store: the workbook is a zip of every tab; Azure Migrate's
//! CSV has a row per VM with the assessment's CPU figure; VMs go to their own vCenter's
//! inventory, in order, whether or not the store holds that vCenter's head.

use super::*;
use crate::assess::estate::tests::{settings, store, T0};
use crate::assess::settings::Params;

#[test]
fn the_workbook_and_the_csv_come_from_one_assessment() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = store(dir.path());
    let (catalog, s) = settings(Params::default());
    let now = T0 + 2 * 86_400;
    let x = export(&store, &catalog, &s, now, Format::Xlsx).expect("xlsx");
    assert!(x.bytes.starts_with(b"PK\x03\x04"), "a zip");
    // The zip's directory names its parts uncompressed: 11 inventory tabs and 4 more.
    let has = |name: &str| x.bytes.windows(name.len()).any(|w| w == name.as_bytes());
    assert!(has("xl/worksheets/sheet15.xml") && !has("xl/worksheets/sheet16.xml"));
    let c = export(&store, &catalog, &s, now, Format::AzureMigrateCsv).expect("csv");
    let text = String::from_utf8(c.bytes).expect("utf-8");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    let header: Vec<&str> = lines[0].split(',').collect();
    let cpu = header
        .iter()
        .position(|h| *h == "CPU utilization percentage")
        .expect("cpu column");
    let one: Vec<&str> = lines[1].split(',').collect();
    assert_eq!(one[0], "name-vm-1");
    let want = c.assessment.targets[0].rows[0]
        .utilization
        .cpu_pct
        .expect("cpu");
    assert_eq!(one[cpu], format!("{want:.2}"));
    let two: Vec<&str> = lines[2].split(',').collect();
    assert_eq!(two[cpu], "", "no figures: left empty, not zero");
}

#[test]
fn vms_go_to_their_vcenters_in_order() {
    let head = |name: &str| VcenterInventory {
        name: name.into(),
        url: format!("https://{name}/sdk").as_str().into(),
        ..VcenterInventory::default()
    };
    let vm = |id: &str| Vm {
        id: id.into(),
        ..Vm::default()
    };
    let vms = vec![
        ("a".to_owned(), vm("1")),
        ("a".to_owned(), vm("2")),
        ("b".to_owned(), vm("3")),
    ];
    let got = with_vms(vec![head("c"), head("a")], vms);
    let shape: Vec<(&str, Vec<&str>)> = got
        .iter()
        .map(|v| {
            (
                v.name.as_str(),
                v.vms.iter().map(|vm| vm.id.as_str()).collect(),
            )
        })
        .collect();
    assert_eq!(
        shape,
        [("a", vec!["1", "2"]), ("b", vec!["3"]), ("c", vec![])]
    );
    assert_eq!(got[0].url, "https://a/sdk", "the head kept");
    assert_eq!(
        got[1].url, "",
        "a bare head for a vCenter the store has no head of"
    );
}
