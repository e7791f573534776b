//! Whether a target runs a VM's guest OS, by vSphere's guest id (`ubuntu64Guest`,
//! `windows2019srv_64Guest` …): a short table of families with what each cloud says of
//! them. Sources (README, "The assessment"): Microsoft's support for 32-bit guests in
//! Azure VMs (KB 4021388: 64-bit only, but Windows Server 2003 and 2008), Azure's
//! endorsed Linux distributions, Windows client OSes in Azure (needs multitenant
//! hosting rights), and AWS VM Import/Export's supported operating systems. A guest the
//! table does not name is left to the other checks: nothing is said of it.

use super::catalog::Cloud;
use super::readiness::Status;

/// What one cloud says of a family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    pub status: Status,
    pub reason: &'static str,
}

const READY: Option<Verdict> = None;

const fn when(status: Status, reason: &'static str) -> Option<Verdict> {
    Some(Verdict { status, reason })
}

/// (guest id prefix, Azure, AWS): the first whose prefix the id has applies. Linux and
/// Windows Server families vSphere marks 64-bit with `64`; those ids are matched first.
const FAMILIES: &[(&str, Option<Verdict>, Option<Verdict>)] = &[
    // Windows Server 2008 R2 and later, 64-bit.
    ("windows2019srv", READY, READY),
    ("windows2022srv", READY, READY),
    ("windows2016srv", READY, READY),
    ("windows8Server64", READY, READY),
    ("windows9Server64", READY, READY),
    ("windows7Server64", READY, READY),
    // Windows Server 2008 (`winLonghorn`) and 2003 (`winNet`): past their end of support.
    (
        "winLonghorn",
        when(
            Status::ConditionallyReady,
            "Windows Server 2008: out of support; Azure runs it with extended security updates only",
        ),
        when(
            Status::ConditionallyReady,
            "Windows Server 2008: out of support; AWS imports it, without updates",
        ),
    ),
    (
        "winNet",
        when(
            Status::ConditionallyReady,
            "Windows Server 2003: out of support; Azure runs it as a custom image, without the VM agent",
        ),
        when(
            Status::ConditionallyReady,
            "Windows Server 2003: out of support; AWS imports it, without updates",
        ),
    ),
    // Windows client OSes: Windows 7, 8, 10/11 (`windows9`).
    (
        "windows7",
        when(
            Status::ConditionallyReady,
            "Windows client OS: Azure needs multitenant hosting rights (Windows 10/11) and 7 is out of support",
        ),
        when(
            Status::ConditionallyReady,
            "Windows client OS: AWS imports it only with your own licence (BYOL)",
        ),
    ),
    (
        "windows8",
        when(
            Status::ConditionallyReady,
            "Windows client OS: Azure needs multitenant hosting rights (Windows 10/11) and 8 is out of support",
        ),
        when(
            Status::ConditionallyReady,
            "Windows client OS: AWS imports it only with your own licence (BYOL)",
        ),
    ),
    (
        "windows9",
        when(
            Status::ConditionallyReady,
            "Windows client OS: Azure needs multitenant hosting rights",
        ),
        when(
            Status::ConditionallyReady,
            "Windows client OS: AWS imports it only with your own licence (BYOL)",
        ),
    ),
    (
        "windows11",
        when(
            Status::ConditionallyReady,
            "Windows client OS: Azure needs multitenant hosting rights",
        ),
        when(
            Status::ConditionallyReady,
            "Windows client OS: AWS imports it only with your own licence (BYOL)",
        ),
    ),
    (
        "windows12",
        when(
            Status::ConditionallyReady,
            "Windows client OS: Azure needs multitenant hosting rights",
        ),
        when(
            Status::ConditionallyReady,
            "Windows client OS: AWS imports it only with your own licence (BYOL)",
        ),
    ),
    // Windows before 2003 and other OSes neither cloud runs.
    (
        "winXP",
        when(Status::NotReady, "Windows XP: not supported"),
        when(Status::NotReady, "Windows XP: not importable"),
    ),
    (
        "winVista",
        when(Status::NotReady, "Windows Vista: not supported"),
        when(Status::NotReady, "Windows Vista: not importable"),
    ),
    (
        "vmkernel",
        when(Status::NotReady, "ESXi: not a guest Azure runs"),
        when(Status::NotReady, "ESXi: not a guest AWS imports"),
    ),
    (
        "win2000",
        when(Status::NotReady, "Windows 2000: neither supported nor importable"),
        when(Status::NotReady, "Windows 2000: not importable"),
    ),
    (
        "winNT",
        when(Status::NotReady, "Windows NT: not supported"),
        when(Status::NotReady, "Windows NT: not importable"),
    ),
    (
        "win9",
        when(Status::NotReady, "Windows 9x: not supported"),
        when(Status::NotReady, "Windows 9x: not importable"),
    ),
    (
        "winMe",
        when(Status::NotReady, "Windows Me: not supported"),
        when(Status::NotReady, "Windows Me: not importable"),
    ),
    (
        "dos",
        when(Status::NotReady, "MS-DOS: not supported"),
        when(Status::NotReady, "MS-DOS: not importable"),
    ),
    (
        "netware",
        when(Status::NotReady, "NetWare: not supported"),
        when(Status::NotReady, "NetWare: not importable"),
    ),
    (
        "os2",
        when(Status::NotReady, "OS/2: not supported"),
        when(Status::NotReady, "OS/2: not importable"),
    ),
    (
        "solaris",
        when(Status::NotReady, "Solaris: not supported"),
        when(Status::NotReady, "Solaris: not importable"),
    ),
    (
        "darwin",
        when(Status::NotReady, "macOS: not supported"),
        when(
            Status::NotReady,
            "macOS: runs only on EC2 Mac hosts, not imported",
        ),
    ),
];

/// 64-bit Linux families both clouds run (Azure's endorsed distributions; AWS imports
/// each). The 32-bit ids of the same families are conditions below.
const LINUX_64: &[&str] = &[
    "ubuntu64",
    "rhel",
    "centos",
    "sles",
    "debian",
    "oracleLinux",
    "almalinux",
    "rockylinux",
    "amazonlinux",
];

/// What `cloud` says of the guest `id`, if the table knows its family.
pub fn verdict(id: &str, cloud: Cloud) -> Option<Verdict> {
    let pick = |azure: Option<Verdict>, aws: Option<Verdict>| match cloud {
        Cloud::Azure => azure,
        Cloud::Aws => aws,
    };
    if let Some((_, azure, aws)) = FAMILIES.iter().find(|(p, _, _)| id.starts_with(p)) {
        return pick(*azure, *aws);
    }
    let linux = LINUX_64.iter().any(|p| id.starts_with(p))
        || id.starts_with("ubuntu")
        || id.starts_with("other") && (id.contains("Linux") || id.contains("linux"));
    if !linux {
        return None;
    }
    let bits64 = id.contains("64");
    let named = LINUX_64.iter().any(|p| id.starts_with(p)) || id.starts_with("ubuntu");
    match (bits64, named) {
        (true, true) => None,
        (false, _) => pick(
            when(
                Status::ConditionallyReady,
                "32-bit Linux: Azure runs 64-bit guests only; plan an upgrade",
            ),
            when(
                Status::ConditionallyReady,
                "32-bit Linux: AWS imports only some 32-bit distributions",
            ),
        ),
        (true, false) => pick(
            when(
                Status::ConditionallyReady,
                "Linux of a distribution vSphere does not name: Azure runs it, without support unless endorsed",
            ),
            when(
                Status::ConditionallyReady,
                "Linux of a distribution vSphere does not name: AWS imports only listed distributions",
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_by_guest_id() {
        let status = |id: &str, cloud| verdict(id, cloud).map(|v| v.status);
        for ready in [
            "ubuntu64Guest",
            "rhel8_64Guest",
            "windows2019srv_64Guest",
            "windows2019srvNext_64Guest",
            "windows9Server64Guest",
            "windows7Server64Guest",
            "sles15_64Guest",
            "debian11_64Guest",
        ] {
            assert_eq!(status(ready, Cloud::Azure), None, "{ready}");
            assert_eq!(status(ready, Cloud::Aws), None, "{ready}");
        }
        let cond = Some(Status::ConditionallyReady);
        for id in [
            "winLonghorn64Guest",
            "winNetEnterpriseGuest",
            "windows9_64Guest",
            "windows11_64Guest",
            "rhel6Guest",
            "ubuntuGuest",
            "otherLinux64Guest",
            "other5xLinux64Guest",
        ] {
            assert_eq!(status(id, Cloud::Azure), cond, "{id}");
            assert_eq!(status(id, Cloud::Aws), cond, "{id}");
        }
        for id in [
            "winXPProGuest",
            "win98Guest",
            "solaris11_64Guest",
            "vmkernel7Guest",
        ] {
            assert_eq!(status(id, Cloud::Azure), Some(Status::NotReady), "{id}");
        }
        // Unknown to the table: nothing said (readiness decides about `other`).
        assert_eq!(status("otherGuest64", Cloud::Azure), None);
        assert_eq!(status("freebsd13_64Guest", Cloud::Aws), None);
        assert!(
            verdict("winNetStandardGuest", Cloud::Azure).is_some_and(|v| v.reason.contains("2003"))
        );
    }
}
