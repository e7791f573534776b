//! `vscout check`: can this agent do its job? For each vCenter: reachability and TLS
//! trust, login, read access to the inventory, performance statistics, and clock skew;
//! for the collector (`collector.rs`): DNS, TCP, TLS, credentials, clock skew; locally:
//! the state directory and free disk. Prints a table; any FAIL means exit 1.

mod collector;

use std::fmt::Write as _;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::config::AgentConfig;
use crate::vsphere::{datetime, Client, ObjectContent, Objects, PropertySpec};

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
        match count_vms(&client).await {
            Ok(0) => out.push(row(
                "inventory",
                Status::Warn,
                "no VMs visible: does the user's role propagate to child objects?".into(),
            )),
            Ok(n) => out.push(row("inventory", Status::Pass, format!("{n} VMs visible"))),
            Err(e) => out.push(row("inventory", Status::Fail, e.to_string())),
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

async fn count_vms(client: &Client) -> Result<u64, crate::vsphere::VsphereError> {
    client
        .with_container_view(&["VirtualMachine"], |view| async move {
            let specs = [PropertySpec {
                type_name: "VirtualMachine",
                paths: &["name"],
            }];
            let (_, stats) = client
                .retrieve(&specs, Objects::View(&view), |_: ObjectContent| Ok(()))
                .await?;
            Ok(stats.objects)
        })
        .await
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
