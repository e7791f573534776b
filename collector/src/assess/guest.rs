//! Whether a target runs a VM's guest OS, by vSphere's guest id (`ubuntu64Guest`,
//! `windows2019srv_64Guest` …): a short table of families, each of a kind whose verdict
//! per cloud is written once. Sources (README, "The assessment"): Microsoft's support
//! for 32-bit guests in Azure VMs (KB 4021388: 64-bit only, but Windows Server 2003 and
//! 2008), Azure's endorsed Linux distributions, Windows client OSes in Azure (multitenant
//! hosting rights), and AWS VM Import/Export's supported operating systems. A guest the
//! table does not name is left to the other checks: nothing is said of it.

use super::catalog::Cloud;
use super::readiness::Status;

/// What one cloud says of a guest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub status: Status,
    pub reason: String,
}

/// The kinds of family, with what makes their verdicts.
#[derive(Debug, Clone, Copy)]
enum Kind {
    /// Both clouds run it as it is.
    Ready,
    /// A Windows Server past its end of support.
    OutOfSupport,
    /// A Windows client OS.
    Client,
    /// Neither cloud runs it.
    NotRun,
}

/// (guest id prefix, name, kind): the first whose prefix the id has applies, so the
/// 64-bit server ids come before the client ids they share a prefix with.
const FAMILIES: &[(&str, &str, Kind)] = &[
    ("windows2019srv", "Windows Server 2019/2022", Kind::Ready),
    ("windows2022srv", "Windows Server 2022", Kind::Ready),
    ("windows2016srv", "Windows Server 2016", Kind::Ready),
    ("windows9Server64", "Windows Server 2016", Kind::Ready),
    ("windows8Server64", "Windows Server 2012", Kind::Ready),
    ("windows7Server64", "Windows Server 2008 R2", Kind::Ready),
    ("winLonghorn", "Windows Server 2008", Kind::OutOfSupport),
    ("winNet", "Windows Server 2003", Kind::OutOfSupport),
    ("windows7", "Windows 7", Kind::Client),
    ("windows8", "Windows 8", Kind::Client),
    ("windows9", "Windows 10", Kind::Client),
    ("windows11", "Windows 11", Kind::Client),
    ("windows12", "Windows 12", Kind::Client),
    ("winXP", "Windows XP", Kind::NotRun),
    ("winVista", "Windows Vista", Kind::NotRun),
    ("win2000", "Windows 2000", Kind::NotRun),
    ("winNT", "Windows NT", Kind::NotRun),
    ("win9", "Windows 9x", Kind::NotRun),
    ("winMe", "Windows Me", Kind::NotRun),
    ("dos", "MS-DOS", Kind::NotRun),
    ("netware", "NetWare", Kind::NotRun),
    ("os2", "OS/2", Kind::NotRun),
    ("solaris", "Solaris", Kind::NotRun),
    ("darwin", "macOS", Kind::NotRun),
    ("vmkernel", "ESXi", Kind::NotRun),
];

/// Linux distributions vSphere names that both clouds run in 64 bits (Azure endorses
/// them; AWS imports them).
const LINUX: &[&str] = &[
    "ubuntu",
    "rhel",
    "centos",
    "sles",
    "debian",
    "oracleLinux",
    "almalinux",
    "rockylinux",
    "amazonlinux",
];

fn verdict_of(kind: Kind, name: &str, cloud: Cloud) -> Option<Verdict> {
    let (status, reason) = match (kind, cloud) {
        (Kind::Ready, _) => return None,
        (Kind::OutOfSupport, Cloud::Azure) => (
            Status::ConditionallyReady,
            format!("{name}: out of support; Azure runs it with extended security updates or as a custom image"),
        ),
        (Kind::OutOfSupport, Cloud::Aws) => (
            Status::ConditionallyReady,
            format!("{name}: out of support; AWS imports it, without updates"),
        ),
        (Kind::Client, Cloud::Azure) => (
            Status::ConditionallyReady,
            format!("{name}: a Windows client OS; Azure needs multitenant hosting rights"),
        ),
        (Kind::Client, Cloud::Aws) => (
            Status::ConditionallyReady,
            format!("{name}: a Windows client OS; AWS imports it only with your own licence"),
        ),
        (Kind::NotRun, Cloud::Azure) => (Status::NotReady, format!("{name}: not a guest Azure runs")),
        (Kind::NotRun, Cloud::Aws) => (Status::NotReady, format!("{name}: not a guest AWS imports")),
    };
    Some(Verdict { status, reason })
}

/// What `cloud` says of the guest `id`, if the table knows its family.
pub fn verdict(id: &str, cloud: Cloud) -> Option<Verdict> {
    if let Some((_, name, kind)) = FAMILIES.iter().find(|(p, _, _)| id.starts_with(p)) {
        return verdict_of(*kind, name, cloud);
    }
    let named = LINUX.iter().any(|p| id.starts_with(p));
    let linux = named || id.starts_with("other") && id.contains("Linux");
    let reason = match (linux, id.contains("64"), named) {
        (false, _, _) | (true, true, true) => return None,
        (true, false, _) => "32-bit Linux: both clouds run 64-bit guests (AWS imports some 32-bit distributions); plan an upgrade",
        (true, true, false) => "Linux of a distribution vSphere does not name: it may run, with no support unless endorsed (Azure) or listed (AWS)",
    };
    Some(Verdict {
        status: Status::ConditionallyReady,
        reason: reason.into(),
    })
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
            assert_eq!(status(id, Cloud::Aws), Some(Status::NotReady), "{id}");
        }
        // Unknown to the table: nothing said (readiness decides about `other`).
        assert_eq!(status("otherGuest64", Cloud::Azure), None);
        assert_eq!(status("freebsd13_64Guest", Cloud::Aws), None);
        assert!(verdict("winNetStandardGuest", Cloud::Azure)
            .is_some_and(|v| v.reason.starts_with("Windows Server 2003: out of support")));
    }
}
