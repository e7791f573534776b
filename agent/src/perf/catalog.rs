//! Counter resolution: default counter lists per entity type, matched by name
//! (`group.name.rollup`) against the vCenter's own catalog, because keys differ between
//! vCenters. Counters the vCenter lacks are reported once, by name.

use std::collections::HashMap;

use compact_str::CompactString;

use crate::vsphere::PerfCounterInfo;

/// Real-time VM counters collected by default (per disk and NIC instance where vCenter
/// has instances, and the aggregate).
pub const DEFAULT_VM_COUNTERS: &[&str] = &[
    "cpu.usage.average",
    "cpu.usagemhz.average",
    "cpu.ready.summation",
    "cpu.demand.average",
    "mem.usage.average",
    "mem.consumed.average",
    "mem.active.average",
    "mem.granted.average",
    "mem.swapped.average",
    "mem.vmmemctl.average",
    "virtualDisk.read.average",
    "virtualDisk.write.average",
    "virtualDisk.numberReadAveraged.average",
    "virtualDisk.numberWriteAveraged.average",
    "virtualDisk.totalReadLatency.average",
    "virtualDisk.totalWriteLatency.average",
    "net.received.average",
    "net.transmitted.average",
    "disk.usage.average",
    "sys.uptime.latest",
];

/// Real-time host counters collected by default.
pub const DEFAULT_HOST_COUNTERS: &[&str] = &[
    "cpu.usage.average",
    "cpu.usagemhz.average",
    "mem.usage.average",
    "mem.consumed.average",
    "disk.usage.average",
    "net.usage.average",
    "cpu.utilization.average",
    "power.power.average",
];

/// Historical (5-minute) cluster counters collected by default: vCenter keeps no
/// real-time data for clusters.
pub const DEFAULT_CLUSTER_COUNTERS: &[&str] = &[
    "cpu.usage.average",
    "cpu.usagemhz.average",
    "mem.usage.average",
    "mem.consumed.average",
];

/// Historical (5-minute) datastore counters collected by default (capacity and free space
/// come from the inventory's properties).
pub const DEFAULT_DATASTORE_COUNTERS: &[&str] = &[
    "disk.used.latest",
    "disk.provisioned.latest",
    "disk.capacity.latest",
];

/// Counters that get daily summaries by default: what right-sizing reads over a month.
/// Each is a sketch of a few hundred bytes per series and day, so the list is short.
pub const DEFAULT_DAILY_COUNTERS: &[&str] = &[
    "cpu.usage.average",
    "cpu.usagemhz.average",
    "mem.usage.average",
    "mem.active.average",
    "mem.consumed.average",
    "disk.usage.average",
    "net.received.average",
    "net.transmitted.average",
];

/// A counter resolved against one vCenter's catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counter {
    pub key: i32,
    pub name: CompactString,
    pub unit: CompactString,
    /// `rate`, `absolute` or `delta`: how a value relates to its interval.
    pub stats_type: CompactString,
}

/// The counters to query for one entity type, and those that could not be resolved.
#[derive(Debug, Clone, Default)]
pub struct Resolved {
    pub counters: Vec<Counter>,
    pub missing: Vec<String>,
}

impl Resolved {
    pub fn by_key(&self, key: i32) -> Option<&Counter> {
        self.counters.iter().find(|c| c.key == key)
    }
}

/// Resolves `wanted` names against `catalog`.
pub fn resolve(catalog: &[PerfCounterInfo], wanted: &[String]) -> Resolved {
    let index: HashMap<&str, &PerfCounterInfo> =
        catalog.iter().map(|c| (c.name.as_str(), c)).collect();
    let mut out = Resolved::default();
    for name in wanted {
        match index.get(name.as_str()) {
            Some(c) => out.counters.push(Counter {
                key: c.key,
                name: name.as_str().into(),
                unit: c.unit.as_str().into(),
                stats_type: c.stats_type.as_str().into(),
            }),
            None => out.missing.push(name.clone()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_resolve_by_name_not_key() {
        let catalog = vec![
            PerfCounterInfo {
                key: 6,
                name: "cpu.usage.average".into(),
                unit: "percent".into(),
                stats_type: "rate".into(),
                level: Some(1),
            },
            PerfCounterInfo {
                key: 98,
                name: "mem.usage.average".into(),
                unit: "percent".into(),
                stats_type: "absolute".into(),
                level: Some(1),
            },
        ];
        let r = resolve(
            &catalog,
            &[
                "mem.usage.average".into(),
                "cpu.usage.average".into(),
                "power.power.average".into(),
            ],
        );
        assert_eq!(
            r.counters.iter().map(|c| c.key).collect::<Vec<_>>(),
            vec![98, 6]
        );
        assert_eq!(r.missing, vec!["power.power.average"]);
        assert_eq!(
            r.by_key(6).map(|c| c.name.as_str()),
            Some("cpu.usage.average")
        );
    }
}
