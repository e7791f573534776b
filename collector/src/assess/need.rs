//! A VM's requirements of its target. Performance sizing: allocation × utilization ×
//! comfort factor, per resource (Azure Migrate's method). As-on-premises sizing: the
//! allocation as it is; also what a VM without performance data falls back to, and says
//! so. Pure: the inventory record and the utilization figures in, a `Need` out.

use vscout_wire::inventory::Vm;

use super::sizing::{DiskNeed, Need};

const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

/// How requirements are made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sizing {
    Performance,
    AsOnPremises,
}

/// What one disk did over the history, at the chosen percentile.
#[derive(Debug, Clone, PartialEq)]
pub struct DiskUse {
    /// The inventory disk's key (`2000` …).
    pub key: i32,
    /// Read + write operations per second.
    pub iops: f64,
    /// Read + write MB/s (10^6 bytes).
    pub mbps: f64,
    /// The same figures read and written apart (Azure Migrate's import asks for them).
    pub split: ReadWrite,
}

/// One disk's reads and writes apart, each at the chosen percentile.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ReadWrite {
    pub read_iops: f64,
    pub write_iops: f64,
    /// MB/s (10^6 bytes).
    pub read_mbps: f64,
    pub write_mbps: f64,
}

/// What a VM used over the history, at the chosen percentile: `None` where no series fed
/// the figure.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Utilization {
    pub cpu_pct: Option<f64>,
    pub memory_pct: Option<f64>,
    pub disks: Vec<DiskUse>,
}

/// The requirements and how they were made.
#[derive(Debug, Clone, PartialEq)]
pub struct Sized {
    pub need: Need,
    pub sizing: Sizing,
    /// Why a VM asked for performance sizing got as-on-premises instead.
    pub fallback: Option<&'static str>,
}

/// The requirements of `vm`: performance sizing with `util` and `comfort` where the
/// figures exist, else as on premises (and why).
pub fn need_of(vm: &Vm, util: Option<&Utilization>, sizing: Sizing, comfort: f64) -> Sized {
    let vcpus = f64::from(vm.num_cpu.unwrap_or(1).max(1));
    let memory_gib = vm.memory_bytes.unwrap_or(0) as f64 / GIB;
    let perf = match (sizing, util) {
        (Sizing::AsOnPremises, _) => Err(None),
        (Sizing::Performance, None) => Err(Some("no performance data: sized as on premises")),
        (Sizing::Performance, Some(u)) => match (u.cpu_pct, u.memory_pct) {
            (Some(c), Some(m)) => Ok((u, c, m)),
            _ => Err(Some("no CPU or memory utilization: sized as on premises")),
        },
    };
    let (scale_cpu, scale_mem, used) = match perf {
        Ok((u, c, m)) => (c / 100.0 * comfort, m / 100.0 * comfort, Some(u)),
        Err(_) => (1.0, 1.0, None),
    };
    let disks: Vec<DiskNeed> = vm
        .disks
        .iter()
        .map(|d| {
            let used = used.and_then(|u| u.disks.iter().find(|x| x.key == d.key));
            DiskNeed {
                label: d.label.to_string(),
                size_gib: d.capacity_bytes.unwrap_or(0) as f64 / GIB,
                iops: used.map_or(0.0, |x| x.iops * comfort),
                mbps: used.map_or(0.0, |x| x.mbps * comfort),
            }
        })
        .collect();
    let need = Need {
        vcpus: vcpus * scale_cpu,
        memory_gib: memory_gib * scale_mem,
        iops: disks.iter().map(|d| d.iops).sum(),
        mbps: disks.iter().map(|d| d.mbps).sum(),
        nics: (vm.nics.len() as u32).max(1),
        disks,
    };
    Sized {
        need,
        sizing: if used.is_some() {
            Sizing::Performance
        } else {
            Sizing::AsOnPremises
        },
        fallback: perf.err().flatten(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vscout_wire::inventory::{Disk, Nic};

    fn vm() -> Vm {
        Vm {
            num_cpu: Some(16),
            memory_bytes: Some(64 * 1024 * 1024 * 1024),
            disks: vec![
                Disk {
                    key: 2000,
                    label: "Hard disk 1".into(),
                    capacity_bytes: Some(100 * 1024 * 1024 * 1024),
                    ..Disk::default()
                },
                Disk {
                    key: 2001,
                    label: "Hard disk 2".into(),
                    capacity_bytes: Some(40 * 1024 * 1024 * 1024 * 1024),
                    ..Disk::default()
                },
            ],
            nics: vec![Nic::default(), Nic::default()],
            ..Vm::default()
        }
    }

    #[test]
    fn performance_sizing_is_allocation_times_utilization_times_comfort() {
        let u = Utilization {
            cpu_pct: Some(20.0),
            memory_pct: Some(50.0),
            disks: vec![DiskUse {
                key: 2001,
                iops: 400.0,
                mbps: 20.0,
                split: Default::default(),
            }],
        };
        let s = need_of(&vm(), Some(&u), Sizing::Performance, 1.5);
        assert_eq!((s.sizing, s.fallback), (Sizing::Performance, None));
        // Azure's example: 16 vCPUs at 20 % with comfort 1.5 need 4.8.
        assert!((s.need.vcpus - 4.8).abs() < 1e-9);
        assert!((s.need.memory_gib - 48.0).abs() < 1e-9, "64 × 0.5 × 1.5");
        assert_eq!(s.need.disks[1].size_gib, 40.0 * 1024.0);
        assert_eq!((s.need.disks[1].iops, s.need.disks[1].mbps), (600.0, 30.0));
        assert_eq!(
            (s.need.disks[0].iops, s.need.iops, s.need.mbps),
            (0.0, 600.0, 30.0)
        );
        assert_eq!(s.need.nics, 2);
    }

    #[test]
    fn without_figures_a_vm_is_sized_as_on_premises_and_says_why() {
        let s = need_of(&vm(), None, Sizing::Performance, 1.3);
        assert_eq!(s.sizing, Sizing::AsOnPremises);
        assert!(s
            .fallback
            .is_some_and(|f| f.contains("no performance data")));
        assert_eq!((s.need.vcpus, s.need.memory_gib), (16.0, 64.0));
        let partial = Utilization {
            cpu_pct: Some(10.0),
            ..Utilization::default()
        };
        let s = need_of(&vm(), Some(&partial), Sizing::Performance, 1.3);
        assert_eq!(s.sizing, Sizing::AsOnPremises);
        assert!(s.fallback.is_some_and(|f| f.contains("memory")));
        // Asked for as on premises: no fallback to report.
        let s = need_of(&vm(), Some(&partial), Sizing::AsOnPremises, 1.3);
        assert_eq!((s.sizing, s.fallback), (Sizing::AsOnPremises, None));
        assert_eq!(s.need.vcpus, 16.0);
    }

    #[test]
    fn a_vm_without_nics_or_cpus_recorded_still_needs_one_of_each() {
        let bare = Vm::default();
        let s = need_of(&bare, None, Sizing::AsOnPremises, 1.0);
        assert_eq!(
            (s.need.vcpus, s.need.nics, s.need.memory_gib),
            (1.0, 1, 0.0)
        );
    }
}
