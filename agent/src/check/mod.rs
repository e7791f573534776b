//! `vscout check`: can this agent do its job? For each vCenter: reachability and TLS
//! trust, login, read access to the inventory, performance statistics, and clock skew;
//! for the collector (`collector.rs`): DNS, TCP, TLS, credentials, clock skew; locally:
//! the state directory and free disk. Prints a table; any FAIL means exit 1.

mod collector;

use std::fmt::Write as _;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::config::AgentConfig;
use crate::vsphere::{datetime, Client};

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Pass,
    Warn,
    Fail,
}

/// One row of the report.
#[derive(Debug, Clone)]
pub struct CheckResult {
    pub target: String,
    pub check: &'static str,
    pub status: Status,
    /// What was found, or what to do about it.
    pub detail: String,
}

/// Resolves the URL's host and opens a TCP connection to it, adding a `dns` and a `tcp`
/// row for `target`. False if either failed (the rows say how to fix it).
pub(crate) async fn reach(target: &str, url: &reqwest::Url, out: &mut Vec<CheckResult>) -> bool {
    let row = |check, status, detail: String| CheckResult {
        target: target.to_owned(),
        check,
        status,
        detail,
    };
    let host = url.host_str().unwrap_or_default().to_owned();
    let port = url.port_or_known_default().unwrap_or(443);
    let addrs: Vec<std::net::SocketAddr> = match tokio::net::lookup_host((host.as_str(), port))
        .await
    {
        Ok(a) => a.collect(),
        Err(e) => {
            out.push(row(
                "dns",
                Status::Fail,
                format!("cannot resolve {host}: {e}; fix: check the URL and this machine's DNS"),
            ));
            return false;
        }
    };
    let ips: Vec<String> = addrs.iter().map(|a| a.ip().to_string()).collect();
    out.push(row(
        "dns",
        Status::Pass,
        format!("{host} is {}", ips.join(", ")),
    ));
    let tcp = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        tokio::net::TcpStream::connect(&addrs[..]),
    )
    .await;
    match tcp {
        Ok(Ok(_)) => {
            out.push(row("tcp", Status::Pass, format!("port {port} reachable")));
            true
        }
        Ok(Err(e)) => {
            out.push(row("tcp", Status::Fail, format!("cannot connect to {host}:{port}: {e}; fix: is the service running, and does a firewall allow this port?")));
            false
        }
        Err(_) => {
            out.push(row("tcp", Status::Fail, format!("no answer from {host}:{port} within 10 s; fix: a firewall may drop the traffic")));
            false
        }
    }
}

/// Runs every check against every configured vCenter.
pub async fn run(cfg: &AgentConfig) -> Vec<CheckResult> {
    let mut out = Vec::new();
    local_checks(cfg, &mut out);
    for vc in &cfg.vcenters {
        let row = |check, status, detail: String| CheckResult {
            target: vc.name.clone(),
            check,
            status,
            detail,
        };
        if !reach(&vc.name, &vc.url, &mut out).await {
            continue;
        }
        let client = match Client::connect(vc).await {
            Ok(c) => c,
            Err(e) => {
                let check = match &e {
                    crate::vsphere::VsphereError::InvalidLogin { .. } => "login",
                    crate::vsphere::VsphereError::TlsUntrusted { .. } => "tls",
                    _ => "connect",
                };
                out.push(row(check, Status::Fail, e.to_string()));
                continue;
            }
        };
        let about = &client.service_content().about;
        out.push(row(
            "connect",
            Status::Pass,
            format!("{} (API {})", about.full_name, about.api_version),
        ));
        out.push(row(
            "login",
            Status::Pass,
            format!("logged in as {}", client.username()),
        ));
        let (status, detail) = privileges(&client).await;
        out.push(row("privileges", status, detail));
        let inventory = crate::inventory::collect(&client).await;
        let (status, detail) = inventory_row(&inventory);
        out.push(row("inventory", status, detail));
        if cfg.perf.enabled {
            if let Ok(inv) = &inventory {
                out.extend(counter_rows(&client, cfg, inv, &vc.name).await);
            }
        }
        match client.service_content().perf_manager {
            Some(_) => out.push(row(
                "perf",
                Status::Pass,
                "PerformanceManager available".into(),
            )),
            None => out.push(row(
                "perf",
                Status::Warn,
                "no PerformanceManager: utilisation cannot be collected".into(),
            )),
        }
        match client.current_time().await {
            Ok(t) => out.push(skew_row(&vc.name, &t)),
            Err(e) => out.push(row("clock", Status::Fail, e.to_string())),
        }
        let _ = client.logout().await;
    }
    if let Some(c) = &cfg.collector {
        out.extend(collector::checks(c).await);
    }
    out
}

/// What the inventory saw, or why it could not.
fn inventory_row(
    inventory: &Result<crate::inventory::VcenterInventory, crate::vsphere::VsphereError>,
) -> (Status, String) {
    match inventory {
        Ok(inv) if inv.vms.is_empty() => (
            Status::Warn,
            "no VMs visible; fix: give the user a read-only role on the vCenter root, propagated to children".into(),
        ),
        Ok(inv) => (
            Status::Pass,
            format!("{} VMs, {} hosts, {} clusters, {} datastores visible", inv.vms.len(), inv.hosts.len(), inv.clusters.len(), inv.datastores.len()),
        ),
        Err(e) => (Status::Fail, format!("{e}; fix: the user needs read access (System.View, System.Read) on the vCenter root")),
    }
}

/// Whether the user holds the read-only role on the root folder.
async fn privileges(client: &Client) -> (Status, String) {
    // The read-only role: what inventory and performance collection need.
    const READ_ONLY: [&str; 3] = ["System.Anonymous", "System.View", "System.Read"];
    let root = client.service_content().root_folder.clone();
    match client.user_privileges(&root, &READ_ONLY).await {
        Ok(Some(p)) => {
            let missing: Vec<&str> = READ_ONLY
                .iter()
                .copied()
                .filter(|id| !p.iter().any(|(g, ok)| g == id && *ok))
                .collect();
            if missing.is_empty() {
                (
                    Status::Pass,
                    format!("{} on the root folder", READ_ONLY.join(", ")),
                )
            } else {
                (Status::Fail, format!("{} lacks {} on the root folder; fix: assign the Read-only role on the vCenter root with \"Propagate to children\"", client.username(), missing.join(", ")))
            }
        }
        Ok(None) => (
            Status::Warn,
            "no AuthorizationManager to ask (a standalone host?)".into(),
        ),
        Err(e) => (
            Status::Warn,
            format!("cannot ask which privileges the user holds: {e}"),
        ),
    }
}

/// The configured counters: present in the vCenter's catalog, and with data on a few
/// real VMs and a host (what the statistics level and the hardware allow).
async fn counter_rows(
    client: &Client,
    cfg: &AgentConfig,
    inv: &crate::inventory::VcenterInventory,
    target: &str,
) -> Vec<CheckResult> {
    let row = |check, status, detail: String| CheckResult {
        target: target.to_owned(),
        check,
        status,
        detail,
    };
    let poller = match crate::perf::Poller::new(client, &cfg.perf).await {
        Ok(p) => p,
        Err(e) => {
            return vec![row(
                "counters",
                Status::Fail,
                format!("cannot read the counter catalog: {e}"),
            )]
        }
    };
    let (vm, host) = poller.resolved();
    let mut out = Vec::new();
    let missing: Vec<&String> = vm.missing.iter().chain(&host.missing).collect();
    let found = format!(
        "{} VM and {} host counters in the catalog",
        vm.counters.len(),
        host.counters.len()
    );
    out.push(if missing.is_empty() {
        row("counters", Status::Pass, found)
    } else {
        row(
            "counters",
            Status::Warn,
            format!(
                "{found}; not in this vCenter's catalog: {}; fix: remove them from [perf]",
                missing
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
    });
    let targets = crate::perf::Poller::targets(inv);
    match poller.unavailable(client, &targets).await {
        Ok(none) if none.is_empty() => out.push(row("statistics", Status::Pass, "every configured counter has real-time data on sampled VMs and hosts".into())),
        Ok(none) => out.push(row("statistics", Status::Warn, format!("no data for {}; fix: raise the statistics level in vCenter (Configure > General > Statistics) or drop them from [perf]", none.join(", ")))),
        Err(e) => out.push(row("statistics", Status::Warn, format!("cannot ask which metrics VMs have: {e}"))),
    }
    out
}

fn skew_row(target: &str, vcenter_time: &str) -> CheckResult {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let (status, detail) = match datetime::parse_unix_secs(vcenter_time) {
        Some(t) => {
            let skew = t - now;
            if skew.abs() > 300 {
                (Status::Warn, format!("vCenter clock differs from this machine's by {skew} s: fix NTP on one of them"))
            } else {
                (Status::Pass, format!("skew {skew} s"))
            }
        }
        None => (
            Status::Warn,
            format!("cannot read vCenter time {vcenter_time:?}"),
        ),
    };
    CheckResult {
        target: target.to_owned(),
        check: "clock",
        status,
        detail,
    }
}

fn local_checks(cfg: &AgentConfig, out: &mut Vec<CheckResult>) {
    let row = |check, status, detail: String| CheckResult {
        target: "local".into(),
        check,
        status,
        detail,
    };
    let dir = &cfg.state_dir;
    match std::fs::create_dir_all(dir).and_then(|()| probe_write(dir)) {
        Ok(()) => out.push(row(
            "state_dir",
            Status::Pass,
            format!("{} is writable", dir.display()),
        )),
        Err(e) => out.push(row(
            "state_dir",
            Status::Fail,
            format!("{} is not writable: {e}", dir.display()),
        )),
    }
    if let Some(free) = crate::metrics::free_bytes(dir) {
        let mib = free / (1024 * 1024);
        let status = if mib < 1024 {
            Status::Warn
        } else {
            Status::Pass
        };
        out.push(row(
            "disk",
            status,
            format!("{mib} MiB free under {}", dir.display()),
        ));
    }
}

fn probe_write(dir: &Path) -> std::io::Result<()> {
    let p = dir.join(".vscout-check");
    std::fs::write(&p, b"ok")?;
    std::fs::remove_file(&p)
}

/// Renders the results as an aligned table.
pub fn render(results: &[CheckResult]) -> String {
    let w_target = results
        .iter()
        .map(|r| r.target.len())
        .max()
        .unwrap_or(6)
        .max(6);
    let mut s = format!(
        "{:<w_target$}  {:<10}  {:<6}  DETAIL\n",
        "TARGET", "CHECK", "RESULT"
    );
    for r in results {
        let status = match r.status {
            Status::Pass => "PASS",
            Status::Warn => "WARN",
            Status::Fail => "FAIL",
        };
        let _ = writeln!(
            s,
            "{:<w_target$}  {:<10}  {:<6}  {}",
            r.target, r.check, status, r.detail
        );
    }
    s
}
