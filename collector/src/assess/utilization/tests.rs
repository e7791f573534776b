//! Hand-computed figures: the percentile per counter, disks by instance or shared by
//! capacity, memory from either counter, coverage over the span, Azure's star bands.

use vscout_wire::inventory::{Disk, Vm};
use vscout_wire::sketch::Sketch;

use super::*;
use crate::assess::catalog::Catalog;
use crate::assess::settings::{Params, RawAssessment};

const GIB: u64 = 1 << 30;

fn settings(memory: &str, percentile: &str) -> Settings {
    let p = Params {
        memory: Some(memory.into()),
        percentile: Some(percentile.into()),
        ..Params::default()
    };
    Settings::resolve(
        &RawAssessment::default(),
        &p,
        &Catalog::shipped().expect("catalog"),
    )
    .expect("settings")
}

fn disk(key: i32, unit: i32, gib: u64) -> Disk {
    Disk {
        key,
        label: format!("Hard disk {}", unit + 1).into(),
        capacity_bytes: Some(gib * GIB),
        controller: "SCSI controller 0".into(),
        controller_type: "ParaVirtualSCSIController".into(),
        unit_number: Some(unit),
        ..Disk::default()
    }
}

fn vm() -> Vm {
    Vm {
        num_cpu: Some(4),
        memory_bytes: Some(16 * GIB),
        disks: vec![disk(2000, 0, 100), disk(2001, 1, 300)],
        ..Vm::default()
    }
}

/// A series of 100 windows whose peaks are 1..=100 (× `scale`): its p95 is 95 × scale.
fn series(counter: &str, instance: &str, scale: f64, received: u64) -> SeriesUsage {
    let mut sketch = Sketch::default();
    for v in 1..=100 {
        sketch.add(f64::from(v) * scale);
    }
    SeriesUsage {
        vcenter: "vc".into(),
        vm_id: "vm-1".into(),
        counter: counter.into(),
        instance: instance.into(),
        windows: 100,
        covered_secs: 30_000,
        received,
        expected: 1_500,
        first_s: 0,
        end_s: 30_000,
        sketch,
        sample_days: 0,
    }
}

fn near(got: Option<f64>, want: f64) -> bool {
    got.is_some_and(|g| (g - want).abs() <= want * 0.011)
}

#[test]
fn every_counter_read_is_one_the_store_sums_up() {
    let read = [
        CPU,
        MEM_ACTIVE,
        MEM_CONSUMED,
        DISK_READ_OPS,
        DISK_WRITE_OPS,
        DISK_READ_KBPS,
        DISK_WRITE_KBPS,
        NET_RX_KBPS,
        NET_TX_KBPS,
    ];
    assert_eq!(read.len(), COUNTERS.len());
    assert!(read.iter().all(|c| COUNTERS.contains(c)));
}

#[test]
fn disk_instances_follow_controller_and_unit() {
    assert_eq!(disk_instance(&disk(1, 3, 1)).as_deref(), Some("scsi0:3"));
    let sata = Disk {
        controller: "SATA controller 1".into(),
        controller_type: "VirtualAHCIController".into(),
        unit_number: Some(2),
        ..Disk::default()
    };
    assert_eq!(disk_instance(&sata).as_deref(), Some("sata1:2"));
    let nvme = Disk {
        controller: "NVME controller 0".into(),
        controller_type: "VirtualNVMEController".into(),
        unit_number: Some(0),
        ..Disk::default()
    };
    assert_eq!(disk_instance(&nvme).as_deref(), Some("nvme0:0"));
    assert_eq!(disk_instance(&Disk::default()), None);
}

#[test]
fn per_disk_instances_feed_their_disks_at_the_percentile() {
    let s = settings("active", "95");
    let all = vec![
        series(CPU, "", 0.5, 1_500),                      // p95 47.5 %
        series(MEM_ACTIVE, "", 0.4, 1_500),               // p95 38 %
        series(DISK_READ_OPS, "scsi0:0", 1.0, 1_500),     // 95
        series(DISK_WRITE_OPS, "scsi0:0", 2.0, 1_500),    // 190
        series(DISK_READ_KBPS, "scsi0:1", 1000.0, 1_500), // 95,000 KB/s = 97.28 MB/s
        series(NET_RX_KBPS, "", 10.0, 1_500),             // 950 KB/s
        series(NET_TX_KBPS, "", 10.0, 1_500),
        series(NET_RX_KBPS, "4000", 99.0, 1_500), // a NIC's own: the aggregate wins
    ];
    let u = vm_usage(&vm(), &all, 30_000, &s);
    assert!(near(u.utilization.cpu_pct, 47.5), "{:?}", u.utilization);
    assert!(near(u.utilization.memory_pct, 38.0));
    let d = &u.utilization.disks;
    assert_eq!((d[0].key, d[1].key), (2000, 2001));
    assert!(near(Some(d[0].iops), 285.0) && d[0].mbps == 0.0);
    assert!(near(Some(d[0].split.read_iops), 95.0) && near(Some(d[0].split.write_iops), 190.0));
    assert!(near(Some(d[1].split.read_mbps), 95_000.0 * 1024.0 / 1e6));
    assert_eq!(d[1].split.write_mbps, 0.0);
    assert!(near(Some(d[1].mbps), 95_000.0 * 1024.0 / 1e6) && d[1].iops == 0.0);
    assert!(near(u.iops, 285.0));
    assert!(near(u.network_mbps, 2.0 * 950.0 * 1024.0 / 1e6));
    assert!(near(u.network_in_mbps, 950.0 * 1024.0 / 1e6));
    assert!(near(u.network_out_mbps, 950.0 * 1024.0 / 1e6));
    assert!(u.notes.is_empty());
    assert_eq!(u.fed.len(), 7, "every series read but the NIC's own");
    assert_eq!(u.coverage_pct, Some(100.0));
}

#[test]
fn a_vm_total_is_shared_by_capacity_and_said() {
    let s = settings("active", "95");
    let all = vec![
        series(CPU, "*", 0.5, 1_500),
        series(DISK_WRITE_KBPS, "*", 1000.0, 1_500),
    ];
    let u = vm_usage(&vm(), &all, 30_000, &s);
    let d = &u.utilization.disks;
    let total = 95_000.0 * 1024.0 / 1e6;
    assert!(near(Some(d[0].mbps), total / 4.0) && near(Some(d[1].mbps), total * 3.0 / 4.0));
    assert_eq!(
        u.iops, None,
        "no operations counter: IOPS unknown, not zero"
    );
    assert!(u.notes[0].contains("shared among its disks by capacity"));
    assert_eq!(u.utilization.memory_pct, None);
}

#[test]
fn memory_from_consumed_or_the_larger() {
    // Consumed: p95 of 1..=100 × 80,000 KB = 7,600,000 KB of 16 GiB = 45.3 %.
    let all = vec![
        series(MEM_ACTIVE, "", 0.3, 1_500),
        series(MEM_CONSUMED, "", 80_000.0, 1_500),
    ];
    let consumed = 7_600_000.0 * 1024.0 / (16.0 * GIB as f64) * 100.0;
    let u = vm_usage(&vm(), &all, 30_000, &settings("consumed", "95"));
    assert!(near(u.utilization.memory_pct, consumed));
    let u = vm_usage(&vm(), &all, 30_000, &settings("max", "95"));
    assert!(near(u.utilization.memory_pct, consumed));
    let u = vm_usage(&vm(), &all, 30_000, &settings("active", "50"));
    assert!(near(u.utilization.memory_pct, 15.0), "p50 of active");
}

#[test]
fn coverage_counts_what_the_span_expected() {
    let s = settings("active", "95");
    // Half the samples of its windows, and its windows cover a third of the span.
    let all = vec![
        series(CPU, "", 1.0, 750),
        series(MEM_ACTIVE, "", 1.0, 1_500),
    ];
    let u = vm_usage(&vm(), &all, 90_000, &s);
    assert_eq!(u.fed[0].expected, 4_500);
    assert_eq!(u.coverage_pct, Some((750.0 + 1_500.0) / 9_000.0 * 100.0));
    assert_eq!(stars(25.0), 2);
    let bands = [
        (0.0, 1),
        (20.0, 1),
        (20.5, 2),
        (40.0, 2),
        (55.0, 3),
        (61.0, 4),
        (80.0, 4),
        (81.0, 5),
        (100.0, 5),
    ];
    for (c, want) in bands {
        assert_eq!(stars(c), want, "{c} %");
    }
}
