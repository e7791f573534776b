//! The estate through a real store: a VM with two days of figures sized from them, a VM
//! without figures sized as on premises and saying so, a 40 TiB disk Not ready on both
//! clouds, coverage from what the store holds, totals that add up.

use vscout_wire::batch::{Batch, Record, BATCH_VERSION};
use vscout_wire::inventory::{Disk, VcenterInventory, Vm};
use vscout_wire::rollup::{Rollup, WindowStats};

use super::*;
use crate::assess::settings::{Params, RawAssessment};
use crate::store::sqlite::SqliteStore;
use crate::store::Principal;

const GIB: u64 = 1 << 30;
pub(crate) const T0: i64 = 1_796_083_200; // 2026-12-01T00:00:00Z, a day start

fn vm(id: &str, cpus: u32, memory_gib: u64, disk_gib: u64) -> Vm {
    Vm {
        id: id.into(),
        name: format!("name-{id}").into(),
        num_cpu: Some(cpus),
        memory_bytes: Some(memory_gib * GIB),
        guest_id: Some("ubuntu64Guest".into()),
        firmware: Some("bios".into()),
        datacenter: "DC1".into(),
        cluster: "C1".into(),
        disks: vec![Disk {
            key: 2000,
            label: "Hard disk 1".into(),
            capacity_bytes: Some(disk_gib * GIB),
            controller: "SCSI controller 0".into(),
            controller_type: "ParaVirtualSCSIController".into(),
            unit_number: Some(0),
            ..Disk::default()
        }],
        ..Vm::default()
    }
}

/// A window of `vm`'s `counter` whose peak is `max`, with `count` samples of 15.
fn window(vm: &str, counter: &str, start: i64, max: f64, count: u32) -> Record {
    let mut r = Rollup::example(vm, counter, max / 1.91);
    r.window_start = start;
    r.missing_samples = 15 - count;
    r.stats = r.stats.map(|s| WindowStats { count, max, ..s });
    Record::Rollup(r)
}

/// A store with three VMs; `vm-1` has two days of windows: CPU peaks 1..=100 % of 16
/// vCPUs cycling (p95 95 %... scaled to 20 % below), memory 50 %.
pub(crate) fn store(dir: &std::path::Path) -> SqliteStore {
    let store = SqliteStore::open(&dir.join("db")).expect("open");
    let inv = VcenterInventory {
        name: "vc".into(),
        vms: vec![
            vm("vm-1", 16, 64, 100),
            vm("vm-2", 4, 8, 50),
            vm("vm-3", 2, 4, 40 * 1024),
        ],
        ..VcenterInventory::default()
    };
    let mut records = vec![Record::Inventory(Box::new(inv))];
    // 2 days of 5-minute windows, every window full but every tenth with 14 of 15.
    for i in 0..576i64 {
        let start = T0 + i * 300;
        let count = if i % 10 == 0 { 14 } else { 15 };
        // Peaks 0.2 … 20.0 %: the p95 of the windows is 19 % (within the sketch's 1 %).
        let cpu = (i % 100 + 1) as f64 * 0.2;
        records.push(window("vm-1", "cpu.usage.average", start, cpu, count));
        records.push(window("vm-1", "mem.usage.average", start, 50.0, count));
    }
    let who = Principal::Token("t".into());
    for (n, chunk) in records.chunks(500).enumerate() {
        let b = Batch {
            batch_version: BATCH_VERSION,
            created_ms: 0,
            records: chunk.to_vec(),
        };
        store
            .ingest("a", n as u64 + 1, "v", &who, &b)
            .expect("ingest");
    }
    store
}

pub(crate) fn settings(p: Params) -> (Catalog, Settings) {
    let catalog = Catalog::shipped().expect("catalog");
    let s = Settings::resolve(&RawAssessment::default(), &p, &catalog).expect("settings");
    (catalog, s)
}

#[test]
fn the_estate_is_sized_priced_and_judged_from_the_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = store(dir.path());
    let (catalog, s) = settings(Params::default());
    let now = T0 + 2 * 86_400;
    let a = assess(&store, &catalog, &s, now).expect("assess");
    assert_eq!(a.targets.len(), 2);
    assert_eq!(
        (a.catalog_date.as_str(), a.prices),
        ("2026-11-30", PRICES_ARE)
    );
    assert_eq!(a.history.held_from, Some(T0));
    assert_eq!(a.history.held_to, Some(T0 + 2 * 86_400));
    assert_eq!(a.history.held_days, 2.0);
    for t in &a.targets {
        let ids: Vec<&str> = t.rows.iter().map(|r| r.vm_id.as_str()).collect();
        assert_eq!(ids, ["vm-1", "vm-2", "vm-3"], "{}", t.target);
        let [one, two, three] = &t.rows[..] else {
            panic!("three rows")
        };
        // vm-1: 16 vCPUs × 19 % (p95 of peaks) × 1.3 = 3.95 → a 4-vCPU size; memory
        // 64 GiB × 50 % × 1.3 = 41.6 GiB.
        let rec = one.recommended.as_ref().expect("a size");
        assert!(
            rec.vcpus >= 4 && rec.memory_gib >= 41.6,
            "{}: {rec:?}",
            t.target
        );
        let cpu = one.utilization.cpu_pct.expect("cpu");
        assert!((cpu - 19.0).abs() <= 0.2, "{cpu}");
        assert_eq!(one.sizing, "performance");
        // Coverage: 576 windows, 58 with 14 samples of 15, over the 2-day span.
        let want = round2((576.0 * 15.0 - 58.0) / (576.0 * 15.0) * 100.0);
        assert_eq!(one.confidence.coverage_pct, want);
        assert_eq!(one.confidence.stars, Some(5));
        assert_eq!(one.readiness.status, Status::Ready, "{:?}", one.readiness);
        // vm-2: no figures: as on premises (4 vCPUs, 8 GiB), said, one star.
        assert_eq!(two.sizing, "as-on-premises");
        assert!(two.notes[0].contains("no performance data"));
        let rec = two.recommended.as_ref().expect("a size");
        assert!(rec.vcpus >= 4 && rec.memory_gib >= 8.0);
        assert_eq!(
            (two.confidence.stars, two.confidence.coverage_pct),
            (Some(1), 0.0)
        );
        // vm-3: a 40 TiB disk has no offer on either cloud.
        assert_eq!(three.readiness.status, Status::NotReady);
        assert!(three.disks[0].refused.is_some() && three.monthly_cost.total.is_none());
        // Totals add the rows up.
        let sum: f64 = t.rows.iter().filter_map(|r| r.monthly_cost.total).sum();
        assert!((t.totals.monthly_total - sum).abs() < 0.02);
        assert_eq!(
            (t.totals.vms, t.totals.not_ready, t.totals.vms_without_price),
            (3, 1, 1)
        );
        assert_eq!(t.totals.allocated_vcpus, 22);
        assert_eq!(t.by_cluster.len(), 1);
        assert_eq!(t.by_cluster[0].totals.vms, 3);
    }
}

#[test]
fn as_on_premises_and_one_vm_in_depth() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = store(dir.path());
    let now = T0 + 2 * 86_400;
    let (catalog, s) = settings(Params {
        target: Some("azure".into()),
        sizing: Some("as-on-premises".into()),
        ..Params::default()
    });
    let a = assess(&store, &catalog, &s, now).expect("assess");
    let one = &a.targets[0].rows[0];
    assert_eq!((one.sizing, one.confidence.stars), ("as-on-premises", None));
    assert!(one.recommended.as_ref().is_some_and(|r| r.vcpus >= 16));
    assert!(one.notes.is_empty(), "asked for, not a fallback");

    let (catalog, s) = settings(Params::default());
    let v = assess_vm(&store, &catalog, &s, now, None, "vm-1")
        .expect("assess")
        .expect("found");
    assert_eq!(v.vcenter, "vc");
    let estate = assess(&store, &catalog, &s, now).expect("assess");
    for (t, (decision, row)) in estate.targets.iter().zip(&v.judged.per_target) {
        assert_eq!(
            row.confidence.coverage_pct,
            t.rows[0].confidence.coverage_pct
        );
        assert_eq!(
            row.recommended.as_ref().map(|r| &r.size),
            t.rows[0].recommended.as_ref().map(|r| &r.size)
        );
        assert!(
            !decision.refused.is_empty(),
            "smaller sizes were refused, with reasons"
        );
    }
    assert!(assess_vm(&store, &catalog, &s, now, Some("vc"), "vm-9")
        .expect("assess")
        .is_none());
}

#[test]
fn the_export_reads_p95_and_the_maximum_beside_the_percentile() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = store(dir.path());
    let (catalog, s) = settings(Params {
        percentile: Some("50".into()),
        ..Params::default()
    });
    let e = assess_estate(&store, &catalog, &s, T0 + 2 * 86_400, true).expect("assess");
    let ids: Vec<&str> = e.vms.iter().map(|(_, vm)| vm.id.as_str()).collect();
    assert_eq!(ids, ["vm-1", "vm-2", "vm-3"]);
    let one = &e.per_vm[0];
    // Peaks 0.2 … 20 % (the first 76 twice): p50 near 10 %, p95 19 %, the maximum 20 %
    // (within the sketch's 1 %).
    let at = |v: Option<f64>, want: f64| v.is_some_and(|v| (v - want).abs() <= want * 0.011);
    assert!(
        one.usage
            .utilization
            .cpu_pct
            .is_some_and(|v| (9.0..10.5).contains(&v)),
        "{:?}",
        one.usage.utilization
    );
    assert!(at(one.p95.cpu_pct, 19.0), "{:?}", one.p95);
    assert!(at(one.max.cpu_pct, 20.0), "{:?}", one.max);
    assert!(at(one.max.memory_pct, 50.0));
    assert_eq!(
        e.per_vm[1].max,
        Figures::default(),
        "no figures, none made up"
    );
    // The rows went to the assessment; the plain assessment reads no profile.
    assert!(e.per_vm.iter().all(|r| r.rows.is_empty()));
    assert_eq!(e.assessment.targets[0].rows.len(), 3);
    let plain = assess_estate(&store, &catalog, &s, T0 + 2 * 86_400, false).expect("assess");
    assert_eq!(plain.per_vm[0].p95, Figures::default());
}
