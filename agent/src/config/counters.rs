//! The default performance counter lists, per entity type: what `[perf]` collects when
//! the file names none. Names are vCenter's `group.name.rollup`.

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
