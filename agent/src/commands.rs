//! The one-off commands of the `vscout` binary (the daemon is `daemon`): an inventory,
//! `perf --once`, `status`, `firstboot`, and the SIGHUP reload the daemon listens to. Each
//! prints what it did and what failed, and returns the exit status.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::config::{self, AgentConfig};
use crate::exit::{EX_CANTCREAT, EX_USAGE};
use crate::inventory::{self, Format, Inventory, SCHEMA_VERSION};
use crate::tls::TlsPolicy;
use crate::vsphere::Client;

/// 1 if anything failed, else 0.
fn exit_status(failed: bool) -> ExitCode {
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Inventories every vCenter concurrently. What succeeded is written even if another
/// vCenter failed; any failure makes the exit status 1.
pub async fn inventory(cfg: &AgentConfig, output: &Path, format: Format) -> ExitCode {
    let jobs = cfg.vcenters.iter().map(|vc| async move {
        let client = Client::connect(vc).await?;
        let result = inventory::collect(&client).await;
        let _ = client.logout().await;
        result
    });
    let results = futures_util::future::join_all(jobs).await;
    let mut doc = Inventory {
        schema_version: SCHEMA_VERSION,
        agent_version: crate::VERSION.into(),
        vcenters: Vec::new(),
    };
    let mut failed = false;
    for (vc, r) in cfg.vcenters.iter().zip(results) {
        match r {
            Ok(inv) => doc.vcenters.push(inv),
            Err(e) => {
                failed = true;
                eprintln!("vscout: vcenter {}: {e}", vc.name);
            }
        }
    }
    if let Err(e) = std::fs::create_dir_all(output) {
        eprintln!(
            "vscout: cannot create output directory {}: {e}",
            output.display()
        );
        return ExitCode::FAILURE;
    }
    let written = match format {
        Format::Json => inventory::write_json(&doc, output),
        Format::Csv => inventory::write_csv(&doc, output),
        Format::Xlsx => inventory::write_xlsx(&doc, output),
        Format::AzureMigrateCsv => inventory::write_azure_migrate(&doc, output),
    };
    let files = match written {
        Ok(f) => f,
        Err(e) => {
            eprintln!(
                "vscout: cannot write inventory to {}: {e}",
                output.display()
            );
            return ExitCode::FAILURE;
        }
    };
    for v in &doc.vcenters {
        println!(
            "{}: {} VMs, {} hosts, {} clusters, {} datastores, {} networks, {} datacenters ({} warnings)",
            v.name,
            v.vms.len(),
            v.hosts.len(),
            v.clusters.len(),
            v.datastores.len(),
            v.networks.len(),
            v.datacenters.len(),
            v.warnings.len()
        );
    }
    for f in files {
        println!("wrote {}", f.display());
    }
    exit_status(failed)
}

/// Rolls up the last complete window of every vCenter into one JSON-lines file.
pub async fn perf_once(cfg: &AgentConfig, window_secs: u32, output: &Path) -> ExitCode {
    let mut writer = match crate::perf::RollupWriter::create(output) {
        Ok(w) => w,
        Err(e) => {
            eprintln!("vscout: cannot create {}: {e}", output.display());
            return ExitCode::FAILURE;
        }
    };
    let mut failed = false;
    for vc in &cfg.vcenters {
        let result = async {
            let client = Client::connect(vc).await?;
            let r = crate::perf::last_window(&client, &cfg.perf, window_secs, &mut writer).await;
            let _ = client.logout().await;
            r
        }
        .await;
        match result {
            Ok(Ok((rollups, report))) => println!(
                "{}: {rollups} rollups from {} entities ({} samples, {} requests, {} misaligned series dropped, {} off-grid samples placed on their slot, {} set aside; poll took {} ms)",
                vc.name,
                report.entities,
                report.samples,
                report.requests,
                report.misaligned_series,
                report.off_grid,
                report.repeated,
                report.elapsed.as_millis()
            ),
            Ok(Err(e)) => {
                eprintln!("vscout: cannot write {}: {e}", output.display());
                return ExitCode::FAILURE;
            }
            Err(e) => {
                failed = true;
                eprintln!("vscout: vcenter {}: {e}", vc.name);
            }
        }
    }
    if let Err(e) = writer.finish() {
        eprintln!("vscout: cannot write {}: {e}", output.display());
        return ExitCode::FAILURE;
    }
    println!("wrote {}", output.display());
    exit_status(failed)
}

/// `vscout check`: prints each check's result; fails if any failed.
pub async fn check(cfg: &AgentConfig) -> ExitCode {
    let results = crate::check::run(cfg).await;
    print!("{}", crate::check::render(&results));
    let failed = results
        .iter()
        .any(|r| r.status == crate::check::Status::Fail);
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// `vscout run`: the daemon until SIGTERM, reloading `config_path` on SIGHUP.
pub async fn run(cfg: AgentConfig, config_path: PathBuf) -> ExitCode {
    let reloads = reload_on_sighup(config_path);
    match crate::daemon::run_with_reload(cfg, crate::daemon::shutdown_signal(), reloads).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // The state directory or TLS files are unusable: an operator must act.
            eprintln!("vscout: {e}");
            ExitCode::from(EX_CANTCREAT)
        }
    }
}

/// Re-reads and validates the configuration on every SIGHUP; a valid one goes to the
/// daemon, an invalid one is logged and the running configuration stays.
pub fn reload_on_sighup(path: PathBuf) -> tokio::sync::mpsc::Receiver<AgentConfig> {
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    tokio::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            tracing::warn!("cannot listen for SIGHUP: configuration reload is off");
            return;
        };
        while hup.recv().await.is_some() {
            match config::load(&path, std::env::vars()) {
                Ok(cfg) => {
                    tracing::info!(config = %path.display(), vcenters = cfg.vcenters.len(), "configuration reloaded (SIGHUP)");
                    if tx.send(cfg).await.is_err() {
                        return;
                    }
                }
                Err(e) => {
                    tracing::error!(config = %path.display(), error = %e, "invalid configuration on reload (SIGHUP); keeping the running one")
                }
            }
        }
    });
    rx
}

/// `vscout status`: asks the running agent (its `/status` on `metrics_listen`).
pub async fn status(cfg: &AgentConfig) -> ExitCode {
    let Some(addr) = cfg.metrics_listen else {
        eprintln!("vscout: status needs [agent] metrics_listen (e.g. \"127.0.0.1:9187\"): the running agent serves its state there");
        return ExitCode::from(EX_USAGE);
    };
    let url = format!("http://{addr}/status");
    // Plain HTTP on loopback; the TLS configuration is never used but reqwest wants one.
    let answer = async {
        let tls = crate::tls::client_config(&TlsPolicy::Insecure, Default::default(), None)?;
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .timeout(std::time::Duration::from_secs(10))
            .no_proxy()
            .build()
            .map_err(|e| e.to_string())?;
        let r = http.get(&url).send().await.map_err(|e| e.to_string())?;
        r.bytes().await.map_err(|e| e.to_string())
    };
    let body = match answer.await {
        Ok(b) => b,
        Err(e) => {
            eprintln!("vscout: cannot reach the agent at {url}: {e} (is `vscout run` running with this configuration?)");
            return ExitCode::FAILURE;
        }
    };
    let status: crate::metrics::Status = match serde_json::from_slice(&body) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("vscout: the agent's /status answer: {e}");
            return ExitCode::FAILURE;
        }
    };
    print!("{}", crate::metrics::render(&status));
    exit_status(!status.healthy)
}

/// The OVF environment: from a file, or from VMware Tools.
fn read_ovf_env(ovf_env: Option<&Path>) -> Result<String, String> {
    match ovf_env {
        Some(p) => std::fs::read_to_string(p).map_err(|e| format!("cannot read {}: {e}", p.display())),
        None => std::process::Command::new("vmtoolsd")
            .args(["--cmd", "info-get guestinfo.ovfEnv"])
            .output()
            .map_err(|e| format!("cannot run vmtoolsd: {e}"))
            .and_then(|o| {
                if o.status.success() {
                    Ok(String::from_utf8_lossy(&o.stdout).into_owned())
                } else {
                    Err(format!(
                        "vmtoolsd found no OVF environment (was the appliance deployed with its vApp properties?): {}",
                        String::from_utf8_lossy(&o.stderr).trim()
                    ))
                }
            }),
    }
}

/// All-in-one: the local collector provisioned, and the agent pointed at it.
fn provision_local_collector(
    settings: &mut crate::appliance::firstboot::Settings,
    root: &Path,
    collector_bin: &Path,
) -> Result<(), ExitCode> {
    use crate::appliance::all_in_one;
    match all_in_one::provision(settings, root, collector_bin) {
        Ok(p) => {
            let r = p.retention;
            println!(
                "all-in-one: the collector keeps 5-minute windows {} days and summaries {} days ({} MiB free on {} at first boot, sized for {} VMs)",
                r.windows_days,
                r.summaries_days,
                r.free_bytes >> 20,
                all_in_one::DATA_DIR,
                all_in_one::DESIGN_VMS
            );
            if settings.viewer_password.is_none() {
                println!("all-in-one: no viewer password was set: the pages stay closed until one is (see the console's banner)");
            }
            settings.collector = Some((
                all_in_one::LOCAL_URL.to_owned(),
                p.token,
                Some(p.thumbprint),
            ));
            Ok(())
        }
        Err(e) => {
            // Not marked done: the next boot tries again.
            eprintln!("vscout firstboot: all-in-one: {e}");
            Err(ExitCode::from(EX_CANTCREAT))
        }
    }
}

/// `vscout firstboot`: OVF environment → the appliance's configuration files, and in
/// all-in-one mode the local collector (`collector_bin`) provisioned first so that the
/// agent's configuration can name it.
pub fn firstboot(ovf_env: Option<&Path>, root: &Path, collector_bin: &Path) -> ExitCode {
    use crate::appliance::{firstboot, ovfenv};
    let mut settings = match read_ovf_env(ovf_env)
        .and_then(|d| ovfenv::parse(&d).map_err(|e| e.to_string()))
        .and_then(|props| firstboot::settings(&props).map_err(|e| e.to_string()))
    {
        Ok(s) => s,
        Err(e) => {
            eprintln!("vscout firstboot: {e}");
            return ExitCode::from(EX_USAGE);
        }
    };
    if settings.mode == firstboot::Mode::AllInOne {
        if let Err(code) = provision_local_collector(&mut settings, root, collector_bin) {
            return code;
        }
    }
    let files = firstboot::plan(&settings);
    if let Err(e) = firstboot::apply(&files, root) {
        eprintln!(
            "vscout firstboot: cannot write under {}: {e}",
            root.display()
        );
        return ExitCode::from(EX_CANTCREAT);
    }
    for f in &files {
        println!("wrote {} (mode {:o})", f.path.display(), f.mode);
    }
    print!(
        "{}",
        firstboot::banner(&settings).replace("\\4", "<this address>")
    );
    if let Some(pw) = &settings.root_password {
        // chpasswd hashes it; the value goes through a pipe, never an argument or a file.
        let mut cmd = std::process::Command::new("chpasswd");
        if root != Path::new("/") {
            cmd.arg("--root").arg(root);
        }
        let result = cmd
            .stdin(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                use std::io::Write;
                if let Some(mut stdin) = child.stdin.take() {
                    writeln!(stdin, "root:{}", pw.expose())?;
                }
                child.wait()
            });
        // A failure is not final: first boot is marked done only on success, so the next
        // boot tries again (the password may be the operator's only way in).
        let failure = match result {
            Ok(s) if s.success() => None,
            Ok(s) => Some(format!("chpasswd failed ({s})")),
            Err(e) => Some(format!("cannot run chpasswd: {e}")),
        };
        if let Some(why) = failure {
            eprintln!(
                "vscout firstboot: {why}; console login stays disabled until first boot succeeds (it runs again at the next boot)"
            );
            return ExitCode::FAILURE;
        }
        println!("set root's password (console login enabled)");
    }
    ExitCode::SUCCESS
}
