//! Whether a VM can move to a target as sized: Ready, Conditionally ready, Not ready or
//! Unknown, each with its reasons. Pure: the inventory record and the sizing decision in.
//! The worst status wins (Not ready, then Unknown, then Conditionally ready).

use serde::Serialize;
use vscout_wire::inventory::Vm;

use super::catalog::Cloud;
use super::sizing::Decision;

/// A readiness status, best first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    Ready,
    ConditionallyReady,
    Unknown,
    NotReady,
}

impl Serialize for Status {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl Status {
    /// As every output spells it (the JSON's names).
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ready => "Ready",
            Status::ConditionallyReady => "Conditionally ready",
            Status::Unknown => "Unknown",
            Status::NotReady => "Not ready",
        }
    }
}

/// A status and every reason for it (a Ready VM has none).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Readiness {
    pub status: Status,
    pub reasons: Vec<String>,
}

impl Readiness {
    fn add(&mut self, status: Status, reason: String) {
        self.status = self.status.max(status);
        self.reasons.push(reason);
    }
}

/// The readiness of `vm` for `cloud` as `decision` sized it.
pub fn readiness(vm: &Vm, cloud: Cloud, decision: &Decision) -> Readiness {
    let mut r = Readiness {
        status: Status::Ready,
        reasons: Vec::new(),
    };
    for e in decision.disks.iter().filter_map(|d| d.as_ref().err()) {
        r.add(Status::NotReady, e.clone());
    }
    if decision.size.is_none() {
        r.add(Status::NotReady, no_size(decision));
    }
    match vm.guest_id.as_deref().or(vm.tools_guest_id.as_deref()) {
        None => r.add(Status::Unknown, "the guest OS is not known".into()),
        Some(g) => match super::guest::verdict(g, cloud) {
            Some(v) => r.add(v.status, format!("{} ({g})", v.reason)),
            None if g.starts_with("other") => r.add(
                Status::Unknown,
                format!("the guest OS ({g}) is not one the target can be checked for"),
            ),
            None => {}
        },
    }
    if vm.firmware.as_deref() == Some("efi") {
        let condition = match cloud {
            Cloud::Azure => "UEFI firmware: generation-2 sizes only",
            Cloud::Aws => "UEFI firmware: the instance must boot in UEFI mode",
        };
        r.add(Status::ConditionallyReady, condition.into());
    }
    r
}

/// Why no size was chosen: the commonest refusal among the sizes, said once.
fn no_size(decision: &Decision) -> String {
    let mut counts: Vec<(String, usize)> = Vec::new();
    for (_, refusal) in &decision.refused {
        let kind = refusal_kind(refusal);
        match counts.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, n)) => *n += 1,
            None => counts.push((kind, 1)),
        }
    }
    // Stable: among equal counts, the first refused comes first.
    counts.sort_by_key(|c| std::cmp::Reverse(c.1));
    match counts.first() {
        Some((kind, n)) => format!(
            "no size fits: {n} of {} sizes refused for {kind}",
            decision.refused.len()
        ),
        None => "no size fits: the catalog has no size for this cloud".into(),
    }
}

fn refusal_kind(r: &super::sizing::Refusal) -> String {
    use super::sizing::Refusal::*;
    match r {
        NoPrice => "no price in the region",
        Burstable => "being burstable",
        Vcpus { .. } => "too few vCPUs",
        Memory { .. } => "too little memory",
        DataDisks { .. } => "too few data disks",
        Iops { .. } => "too few disk IOPS",
        Mbps { .. } => "too little disk throughput",
        Nics { .. } => "too few NICs",
        NoPremiumStorage => "no premium storage",
    }
    .into()
}

#[cfg(test)]
mod tests {
    use super::super::sizing::{Refusal, SizePick};
    use super::*;

    fn sized() -> Decision {
        Decision {
            size: Some(SizePick {
                name: "A8".into(),
                vcpus: 8,
                memory_gib: 16.0,
                usd_per_hour: 0.4,
                monthly_usd: 292.0,
            }),
            disks: vec![],
            refused: vec![],
        }
    }

    fn linux() -> Vm {
        Vm {
            guest_id: Some("ubuntu64Guest".into()),
            firmware: Some("bios".into()),
            ..Vm::default()
        }
    }

    #[test]
    fn a_sized_vm_with_a_known_os_and_bios_is_ready() {
        let r = readiness(&linux(), Cloud::Azure, &sized());
        assert_eq!((r.status, r.reasons.len()), (Status::Ready, 0));
    }

    #[test]
    fn uefi_is_a_condition_an_unknown_os_is_unknown_and_the_worst_wins() {
        let mut vm = linux();
        vm.firmware = Some("efi".into());
        let r = readiness(&vm, Cloud::Azure, &sized());
        assert_eq!(r.status, Status::ConditionallyReady);
        assert_eq!(r.reasons, ["UEFI firmware: generation-2 sizes only"]);
        vm.guest_id = Some("otherGuest64".into());
        let r = readiness(&vm, Cloud::Aws, &sized());
        assert_eq!(r.status, Status::Unknown);
        assert_eq!(r.reasons.len(), 2, "{:?}", r.reasons);
        let mut none = sized();
        none.size = None;
        none.disks = vec![Err(
            "Hard disk 2 of 40960 GiB is larger than the largest disk (32767 GiB)".into(),
        )];
        none.refused = vec![
            ("A2".into(), Refusal::Vcpus { has: 2 }),
            ("A4".into(), Refusal::Vcpus { has: 4 }),
            ("X".into(), Refusal::NoPrice),
        ];
        let r = readiness(&vm, Cloud::Azure, &none);
        assert_eq!(r.status, Status::NotReady);
        assert!(r.reasons[0].contains("larger than the largest disk"));
        assert_eq!(
            r.reasons[1],
            "no size fits: 2 of 3 sizes refused for too few vCPUs"
        );
        assert_eq!(
            serde_json::to_value(r.status).ok(),
            Some("Not ready".into())
        );
    }

    #[test]
    fn the_guest_table_speaks_per_cloud_and_names_the_guest() {
        let with = |id: &str| Vm {
            guest_id: Some(id.into()),
            ..linux()
        };
        let r = readiness(&with("winNetStandardGuest"), Cloud::Azure, &sized());
        assert_eq!(r.status, Status::ConditionallyReady);
        assert!(r.reasons[0].contains("2003") && r.reasons[0].ends_with("(winNetStandardGuest)"));
        // A Linux vSphere cannot name is a condition, not an unknown.
        let r = readiness(&with("otherLinux64Guest"), Cloud::Aws, &sized());
        assert_eq!(r.status, Status::ConditionallyReady, "{r:?}");
        let r = readiness(&with("solaris11_64Guest"), Cloud::Aws, &sized());
        assert_eq!(r.status, Status::NotReady);
        let r = readiness(&with("otherGuest64"), Cloud::Azure, &sized());
        assert_eq!(r.status, Status::Unknown);
    }

    #[test]
    fn the_guest_os_tools_report_serves_when_none_is_configured() {
        let vm = Vm {
            tools_guest_id: Some("rhel9_64Guest".into()),
            ..Vm::default()
        };
        assert_eq!(readiness(&vm, Cloud::Aws, &sized()).status, Status::Ready);
        assert_eq!(
            readiness(&Vm::default(), Cloud::Aws, &sized()).status,
            Status::Unknown
        );
    }
}
