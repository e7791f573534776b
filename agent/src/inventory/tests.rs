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
