//! What a VM used over the history, from its series as the store summed them up: the
//! chosen percentile of CPU, memory, each disk's IOPS and MB/s and the network, and how
//! much of the history the series that fed them cover (the confidence). Pure.
//!
//! vCenter names a disk's `virtualDisk` instance by its controller and unit (`scsi0:1`);
//! the inventory knows both, so each instance finds its disk. A series with no such
//! instance (vcsim answers `*`, the VM's total) is shared among the disks without figures
//! of their own in proportion to their capacity, and the VM's row says so.

use std::collections::BTreeMap;

use vscout_wire::inventory::{Disk, Vm};

use super::need::{DiskUse, ReadWrite, Utilization};
use super::settings::{Memory, Settings};
use crate::store::SeriesUsage;

pub const CPU: &str = "cpu.usage.average";
pub const MEM_ACTIVE: &str = "mem.usage.average";
pub const MEM_CONSUMED: &str = "mem.consumed.average";
const DISK_READ_OPS: &str = "virtualDisk.numberReadAveraged.average";
const DISK_WRITE_OPS: &str = "virtualDisk.numberWriteAveraged.average";
const DISK_READ_KBPS: &str = "virtualDisk.read.average";
const DISK_WRITE_KBPS: &str = "virtualDisk.write.average";
const NET_RX_KBPS: &str = "net.received.average";
const NET_TX_KBPS: &str = "net.transmitted.average";

/// Every counter the assessment reads: those the store sums up by day.
pub use crate::store::USAGE_COUNTERS as COUNTERS;

/// vSphere's KB/s (1,024 bytes) in MB/s (10^6 bytes), the unit of the catalogs' caps.
const KBPS_TO_MBPS: f64 = 1024.0 / 1e6;

/// One series that fed the figures: what the store held and what the history expected.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Fed {
    pub counter: String,
    pub instance: String,
    pub windows: u64,
    pub received: u64,
    /// Samples the history's span expects at this series' rate.
    pub expected: u64,
    /// The percentile read, in the counter's unit.
    pub value: Option<f64>,
    /// Days whose every sample (the agent's daily sketch) is in the percentile; the
    /// rest are window peaks.
    pub sample_days: u32,
    /// Samples a second in the series' windows, and the samples they expected: what
    /// `expected` is made from once the span is known.
    #[serde(skip)]
    rate: f64,
    #[serde(skip)]
    held_expected: u64,
}

/// A VM's figures and where they came from.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VmUsage {
    pub utilization: Utilization,
    /// Read + write IOPS and MB/s of all disks, and network in + out MB/s.
    pub iops: Option<f64>,
    pub mbps: Option<f64>,
    pub network_mbps: Option<f64>,
    /// The network's received and transmitted MB/s apart.
    pub network_in_mbps: Option<f64>,
    pub network_out_mbps: Option<f64>,
    pub fed: Vec<Fed>,
    /// Received ÷ expected over the fed series, percent; `None` with nothing fed.
    pub coverage_pct: Option<f64>,
    pub notes: Vec<String>,
}

/// The instance vCenter gives `disk`'s `virtualDisk` series: `scsi0:1`, `sata0:0`,
/// `ide0:0`, `nvme0:0`; `None` where the controller is not one of those.
pub fn disk_instance(disk: &Disk) -> Option<String> {
    let t = disk.controller_type.to_ascii_lowercase();
    let bus_type = if t.contains("scsi") || t.contains("lsilogic") || t.contains("buslogic") {
        "scsi"
    } else if t.contains("sata") || t.contains("ahci") {
        "sata"
    } else if t.contains("ide") {
        "ide"
    } else if t.contains("nvme") {
        "nvme"
    } else {
        return None;
    };
    let bus: String = disk
        .controller
        .chars()
        .rev()
        .take_while(char::is_ascii_digit)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    if bus.is_empty() {
        return None;
    }
    Some(format!("{bus_type}{bus}:{}", disk.unit_number?))
}

/// A VM-wide instance: the aggregate (`""`) or vcsim's `*`.
fn whole_vm(instance: &str) -> bool {
    instance.is_empty() || instance == "*"
}

/// Reads a VM's series at the percentile, noting each series read in `fed`.
struct Reader<'a> {
    series: &'a [SeriesUsage],
    q: f64,
    fed: Vec<Fed>,
}

/// A disk's reads and writes, and whether an operations counter was there.
#[derive(Debug, Clone, Copy, Default)]
struct DiskFigures {
    rw: ReadWrite,
    has_ops: bool,
}

impl DiskFigures {
    fn add(&mut self, o: &DiskFigures) {
        self.rw.read_iops += o.rw.read_iops;
        self.rw.write_iops += o.rw.write_iops;
        self.rw.read_mbps += o.rw.read_mbps;
        self.rw.write_mbps += o.rw.write_mbps;
        self.has_ops |= o.has_ops;
    }

    fn scaled(mut self, share: f64) -> Self {
        for v in [
            &mut self.rw.read_iops,
            &mut self.rw.write_iops,
            &mut self.rw.read_mbps,
            &mut self.rw.write_mbps,
        ] {
            *v *= share;
        }
        self
    }
}

impl<'a> Reader<'a> {
    fn feed(&mut self, u: &SeriesUsage) -> Option<f64> {
        let value = u.sketch.quantile(self.q);
        self.fed.push(Fed {
            counter: u.counter.clone(),
            instance: u.instance.clone(),
            windows: u.windows,
            received: u.received,
            expected: u.expected,
            value,
            sample_days: u.sample_days,
            rate: u.expected as f64 / (u.covered_secs.max(1) as f64),
            held_expected: u.expected,
        });
        value
    }

    /// The VM-wide series of `counter`.
    fn whole(&self, counter: &str) -> Option<&'a SeriesUsage> {
        self.series
            .iter()
            .filter(|u| u.counter == counter && whole_vm(&u.instance))
            .min_by_key(|u| u.instance.len())
    }

    fn read(&mut self, counter: &str) -> Option<f64> {
        self.whole(counter).and_then(|u| self.feed(u))
    }

    fn memory_pct(&mut self, vm: &Vm, memory: Memory) -> Option<f64> {
        let active = matches!(memory, Memory::Active | Memory::Max)
            .then(|| self.read(MEM_ACTIVE))
            .flatten();
        let consumed = matches!(memory, Memory::Consumed | Memory::Max)
            .then(|| self.read(MEM_CONSUMED))
            .flatten()
            .and_then(|kb| {
                let bytes = vm.memory_bytes.filter(|b| *b > 0)? as f64;
                Some(kb * 1024.0 / bytes * 100.0)
            });
        match (active, consumed) {
            (Some(a), Some(c)) => Some(a.max(c)),
            (a, c) => a.or(c),
        }
        .map(|v| v.clamp(0.0, 100.0))
    }

    /// Per `virtualDisk` instance, reads and writes at the percentile each.
    fn disk_instances(&mut self) -> BTreeMap<&'a str, DiskFigures> {
        let mut per_instance: BTreeMap<&str, DiskFigures> = BTreeMap::new();
        for u in self.series {
            if !matches!(
                u.counter.as_str(),
                DISK_READ_OPS | DISK_WRITE_OPS | DISK_READ_KBPS | DISK_WRITE_KBPS
            ) {
                continue;
            }
            let Some(v) = self.feed(u) else { continue };
            let e = per_instance.entry(u.instance.as_str()).or_default();
            match u.counter.as_str() {
                DISK_READ_OPS => e.rw.read_iops += v,
                DISK_WRITE_OPS => e.rw.write_iops += v,
                DISK_READ_KBPS => e.rw.read_mbps += v * KBPS_TO_MBPS,
                _ => e.rw.write_mbps += v * KBPS_TO_MBPS,
            }
            e.has_ops |= matches!(u.counter.as_str(), DISK_READ_OPS | DISK_WRITE_OPS);
        }
        per_instance
    }

    /// Network in and out: the aggregate where there is one, else every NIC's instance.
    fn network_mbps(&mut self) -> [Option<f64>; 2] {
        [NET_RX_KBPS, NET_TX_KBPS].map(|counter| {
            let whole: Vec<&SeriesUsage> = match self.whole(counter) {
                Some(u) => vec![u],
                None => self
                    .series
                    .iter()
                    .filter(|u| u.counter == counter)
                    .collect(),
            };
            let mut net = None;
            for u in whole {
                if let Some(v) = self.feed(u) {
                    *net.get_or_insert(0.0) += v * KBPS_TO_MBPS;
                }
            }
            net
        })
    }
}

/// Each disk's figures: its own instance's, else its capacity's share of the series no
/// disk claims (`true` in the second place when such a share was used).
fn per_disk(
    vm: &Vm,
    per_instance: &BTreeMap<&str, DiskFigures>,
) -> (Vec<Option<DiskFigures>>, bool) {
    let instances: Vec<Option<String>> = vm.disks.iter().map(disk_instance).collect();
    let mut pooled: Option<DiskFigures> = None;
    for (inst, f) in per_instance {
        if !instances.iter().any(|i| i.as_deref() == Some(*inst)) {
            pooled.get_or_insert_default().add(f);
        }
    }
    let own: Vec<Option<DiskFigures>> = instances
        .iter()
        .map(|i| i.as_deref().and_then(|i| per_instance.get(i)).copied())
        .collect();
    let shared_capacity: u64 = vm
        .disks
        .iter()
        .zip(&own)
        .filter(|(_, o)| o.is_none())
        .map(|(d, _)| d.capacity_bytes.unwrap_or(0))
        .sum();
    let figures = vm
        .disks
        .iter()
        .zip(&own)
        .map(|(disk, own)| match (own, pooled) {
            (Some(f), _) => Some(*f),
            (None, Some(p)) => {
                let share = if shared_capacity > 0 {
                    disk.capacity_bytes.unwrap_or(0) as f64 / shared_capacity as f64
                } else {
                    1.0 / vm.disks.len() as f64
                };
                Some(p.scaled(share))
            }
            (None, None) => None,
        })
        .collect();
    (figures, pooled.is_some() && !vm.disks.is_empty())
}

/// The figures of `vm` from its `series` (all of one VM), the history's span of its
/// vCenter (`span_secs`), and the settings' percentile and memory counter.
pub fn vm_usage(vm: &Vm, series: &[SeriesUsage], span_secs: i64, s: &Settings) -> VmUsage {
    let mut r = Reader {
        series,
        q: f64::from(s.percentile) / 100.0,
        fed: Vec::new(),
    };
    let mut out = VmUsage::default();
    out.utilization.cpu_pct = r.read(CPU).map(|v| v.clamp(0.0, 100.0));
    out.utilization.memory_pct = r.memory_pct(vm, s.memory);
    let (figures, shared) = per_disk(vm, &r.disk_instances());
    let mut any_ops = false;
    for (disk, f) in vm.disks.iter().zip(figures) {
        if let Some(f) = f {
            any_ops |= f.has_ops;
            out.utilization.disks.push(DiskUse {
                key: disk.key,
                iops: f.rw.read_iops + f.rw.write_iops,
                mbps: f.rw.read_mbps + f.rw.write_mbps,
                split: f.rw,
            });
        }
    }
    if shared {
        out.notes.push(
            "disk figures are the VM's total shared among its disks by capacity: vCenter gave no per-disk instance"
                .into(),
        );
    }
    if !out.utilization.disks.is_empty() {
        out.iops = any_ops.then(|| out.utilization.disks.iter().map(|d| d.iops).sum());
        out.mbps = Some(out.utilization.disks.iter().map(|d| d.mbps).sum());
    }
    let [rx, tx] = r.network_mbps();
    (out.network_in_mbps, out.network_out_mbps) = (rx, tx);
    out.network_mbps = match (rx, tx) {
        (Some(a), Some(b)) => Some(a + b),
        (a, b) => a.or(b),
    };
    out.fed = r.fed;
    out.set_span(span_secs);
    out
}

/// A VM's figures at one percentile, without where they came from: the export's
/// Performance tab holds two per VM (p95 and the maximum) beside the assessment's.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Figures {
    pub cpu_pct: Option<f64>,
    pub memory_pct: Option<f64>,
    pub iops: Option<f64>,
    pub mbps: Option<f64>,
    pub network_mbps: Option<f64>,
}

impl From<&VmUsage> for Figures {
    fn from(u: &VmUsage) -> Self {
        Figures {
            cpu_pct: u.utilization.cpu_pct,
            memory_pct: u.utilization.memory_pct,
            iops: u.iops,
            mbps: u.mbps,
            network_mbps: u.network_mbps,
        }
    }
}

impl VmUsage {
    /// Sets what the history expected of each fed series, at its own rate over the span
    /// of its vCenter (a window never received counts as missing), and the coverage.
    pub fn set_span(&mut self, span_secs: i64) {
        for f in &mut self.fed {
            f.expected = ((f.rate * span_secs.max(0) as f64).round() as u64).max(f.held_expected);
        }
        let (received, expected) = self
            .fed
            .iter()
            .fold((0u64, 0u64), |(r, e), f| (r + f.received, e + f.expected));
        self.coverage_pct =
            (expected > 0).then(|| (received as f64 / expected as f64 * 100.0).min(100.0));
    }
}

/// Azure Migrate's confidence bands: 0–20 % one star … 81–100 % five.
pub fn stars(coverage_pct: f64) -> u8 {
    match coverage_pct {
        c if c <= 20.0 => 1,
        c if c <= 40.0 => 2,
        c if c <= 60.0 => 3,
        c if c <= 80.0 => 4,
        _ => 5,
    }
}

#[cfg(test)]
mod tests;
