//! Azure Migrate's CSV import ("Import using CSV" in Discovery and assessment): the
//! columns of Microsoft's template, one row per VM, utilization filled where the caller
//! has measured it. Column names and meanings: Microsoft Learn, "Discover servers using
//! an imported CSV file" (tutorial-discover-import); up to 20 disks.

use vscout_wire::inventory::Vm;

use crate::csv;

/// The most disks the template takes.
pub const MAX_DISKS: usize = 20;

/// What a VM used, for the utilization columns (MB/s are 10^6 bytes a second).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Usage {
    pub cpu_pct: Option<f64>,
    pub memory_pct: Option<f64>,
    pub network_in_mbps: Option<f64>,
    pub network_out_mbps: Option<f64>,
    /// By the inventory disk's key.
    pub disks: Vec<DiskUsage>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct DiskUsage {
    pub key: i32,
    pub read_iops: f64,
    pub write_iops: f64,
    pub read_mbps: f64,
    pub write_mbps: f64,
}

/// The template's columns for `disks` disks.
pub fn header(disks: usize) -> Vec<String> {
    let mut h: Vec<String> = [
        "*Server name",
        "IP addresses",
        "*Cores",
        "*Memory (In MB)",
        "*OS name",
        "OS version",
        "OS architecture",
        "Server type",
        "Hypervisor",
        "CPU utilization percentage",
        "Memory utilization percentage",
        "Network adapters",
        "Network In throughput",
        "Network Out throughput",
        "Boot type",
        "Number of disks",
        "Storage in use (In GB)",
    ]
    .map(str::to_owned)
    .to_vec();
    for n in 1..=disks.clamp(1, MAX_DISKS) {
        h.push(format!("Disk {n} size (In GB)"));
        h.push(format!("Disk {n} read throughput (MB per second)"));
        h.push(format!("Disk {n} write throughput (MB per second)"));
        h.push(format!("Disk {n} read ops (operations per second)"));
        h.push(format!("Disk {n} write ops (operations per second)"));
    }
    h.push("MAC address".to_owned());
    h
}

const GIB: f64 = (1u64 << 30) as f64;

fn num(v: Option<f64>) -> String {
    v.filter(|v| v.is_finite())
        .map_or_else(String::new, |v| format!("{v:.2}"))
}

/// `x64` or `x86` from vSphere's guest name ("… (64-bit)"), empty when it does not say.
fn architecture(os: &str) -> &'static str {
    if os.contains("64-bit") {
        "x64"
    } else if os.contains("32-bit") {
        "x86"
    } else {
        ""
    }
}

fn row(vm: &Vm, usage: Option<&Usage>, disks: usize) -> Vec<String> {
    let os = vm
        .tools_guest_full_name
        .as_deref()
        .or(vm.guest_full_name.as_deref())
        .unwrap_or("");
    let boot = match vm.firmware.as_deref() {
        Some("efi") => "UEFI",
        Some(_) => "BIOS",
        None => "",
    };
    let mut r = vec![
        vm.name.to_string(),
        vm.ip_addresses
            .iter()
            .map(|a| a.as_str())
            .collect::<Vec<_>>()
            .join(";"),
        vm.num_cpu.map(|n| n.to_string()).unwrap_or_default(),
        vm.memory_bytes
            .map(|b| (b >> 20).to_string())
            .unwrap_or_default(),
        os.to_owned(),
        String::new(),
        architecture(os).to_owned(),
        "Virtual".to_owned(),
        "VMware".to_owned(),
        num(usage.and_then(|u| u.cpu_pct)),
        num(usage.and_then(|u| u.memory_pct)),
        vm.nics.len().to_string(),
        num(usage.and_then(|u| u.network_in_mbps)),
        num(usage.and_then(|u| u.network_out_mbps)),
        boot.to_owned(),
        vm.disks.len().to_string(),
        num(vm.committed_bytes.map(|b| b as f64 / GIB)),
    ];
    for i in 0..disks.clamp(1, MAX_DISKS) {
        let Some(d) = vm.disks.get(i) else {
            r.extend(std::iter::repeat_n(String::new(), 5));
            continue;
        };
        let size = d
            .capacity_bytes
            .map(|b| (b as f64 / GIB).ceil().to_string())
            .unwrap_or_default();
        let u = usage.and_then(|u| u.disks.iter().find(|x| x.key == d.key));
        r.push(size);
        r.push(num(u.map(|u| u.read_mbps)));
        r.push(num(u.map(|u| u.write_mbps)));
        r.push(num(u.map(|u| u.read_iops)));
        r.push(num(u.map(|u| u.write_iops)));
    }
    r.push(
        vm.nics
            .iter()
            .find_map(|n| n.mac.as_deref())
            .unwrap_or("")
            .to_owned(),
    );
    r
}

/// The whole file: a header with as many disk columns as the VM with the most disks
/// needs (at most 20), then one row per VM. Templates are left out: they do not run.
pub fn write<'v>(vms: impl Iterator<Item = (&'v Vm, Option<&'v Usage>)> + Clone) -> String {
    let disks = vms
        .clone()
        .filter(|(vm, _)| !vm.template)
        .map(|(vm, _)| vm.disks.len())
        .max()
        .unwrap_or(1);
    let mut out = String::new();
    csv::line(&mut out, header(disks));
    for (vm, usage) in vms.filter(|(vm, _)| !vm.template) {
        csv::line(&mut out, row(vm, usage, disks));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use vscout_wire::inventory::{Disk, Nic};

    #[test]
    fn a_vm_fills_the_template_with_its_utilization() {
        let vm = Vm {
            name: "db, primary".into(),
            num_cpu: Some(8),
            memory_bytes: Some(16 << 30),
            guest_full_name: Some("Microsoft Windows Server 2019 (64-bit)".into()),
            firmware: Some("efi".into()),
            ip_addresses: vec!["10.0.0.5".into(), "fe80::1".into()],
            committed_bytes: Some(50 << 30),
            disks: vec![
                Disk {
                    key: 2000,
                    capacity_bytes: Some((40 << 30) + 1),
                    ..Disk::default()
                },
                Disk {
                    key: 2001,
                    capacity_bytes: Some(100 << 30),
                    ..Disk::default()
                },
            ],
            nics: vec![Nic {
                mac: Some("00:50:56:aa:bb:cc".into()),
                ..Nic::default()
            }],
            ..Vm::default()
        };
        let usage = Usage {
            cpu_pct: Some(20.0),
            memory_pct: Some(55.5),
            network_in_mbps: Some(1.25),
            network_out_mbps: Some(0.5),
            disks: vec![DiskUsage {
                key: 2001,
                read_iops: 100.0,
                write_iops: 50.0,
                read_mbps: 4.0,
                write_mbps: 2.0,
            }],
        };
        let text = write([(&vm, Some(&usage))].into_iter());
        let lines: Vec<&str> = text.split("\r\n").collect();
        let header: Vec<&str> = lines[0].split(',').collect();
        assert_eq!(header.len(), 17 + 2 * 5 + 1);
        assert_eq!(header[0], "*Server name");
        assert_eq!(header[17], "Disk 1 size (In GB)");
        assert_eq!(
            lines[1],
            "\"db, primary\",10.0.0.5;fe80::1,8,16384,Microsoft Windows Server 2019 (64-bit),,x64,Virtual,VMware,20.00,55.50,1,1.25,0.50,UEFI,2,50.00,41,,,,,100,4.00,2.00,100.00,50.00,00:50:56:aa:bb:cc"
        );
    }

    #[test]
    fn templates_are_left_out_and_disks_capped() {
        let many = Vm {
            name: "wide".into(),
            disks: vec![Disk::default(); 25],
            ..Vm::default()
        };
        let template = Vm {
            template: true,
            ..Vm::default()
        };
        let text = write([(&many, None), (&template, None)].into_iter());
        assert_eq!(text.lines().count(), 2);
        assert_eq!(header(25).len(), 17 + MAX_DISKS * 5 + 1);
    }
}
