//! The `vscout` binary: parses the command line, loads the configuration (bad
//! configuration exits 64, EX_USAGE), and hands over to the library.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use vscout::config::{self, AgentConfig};
use vscout::inventory::{self, Format, Inventory, SCHEMA_VERSION};
use vscout::telemetry::{self, LogFormat};
use vscout::vsphere::Client;

use vscout::exit::{usage_error, EX_CANTCREAT, EX_USAGE};

#[derive(Debug, Parser)]
#[command(
    name = "vscout",
    version,
    about = "Discovers a VMware estate through vCenter"
)]
struct Cli {
    /// Configuration file.
    #[arg(long, global = true, default_value = config::DEFAULT_CONFIG_PATH, env = "VSCOUT_CONFIG")]
    config: PathBuf,
    /// Log line format.
    #[arg(long, global = true, value_enum, default_value = "text")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Take one inventory of every configured vCenter and write it to a directory.
    Inventory {
        /// Directory to write into (created if missing).
        #[arg(long, default_value = ".")]
        output: PathBuf,
        /// `json` (one inventory.json) or `csv` (one file per table).
        #[arg(long, value_enum, default_value = "json")]
        format: Format,
    },
    /// Check connectivity, credentials, permissions and local prerequisites.
    Check,
    /// Collect performance counters and write their rollups as JSON lines.
    Perf {
        /// Roll up the last complete window and exit (the only mode for now; `vscout run`
        /// collects continuously).
        #[arg(long, required = true)]
        once: bool,
        /// Window length in seconds (a multiple of 20).
        #[arg(long, default_value_t = 300)]
        window_secs: u32,
        /// File to write (JSON lines, one rollup per line).
        #[arg(long)]
        output: PathBuf,
    },
    /// Run as a daemon until SIGTERM or SIGINT.
    Run,
    /// Appliance first boot: read the OVF environment (from vmtoolsd, or a file) and write
    /// the agent's configuration, credentials (0600) and network settings under `--root`.
    /// Appliance-internal (its first-boot unit runs it), so not listed in `--help`.
    #[command(hide = true)]
    Firstboot {
        /// An OVF environment document instead of asking `vmtoolsd`.
        #[arg(long)]
        ovf_env: Option<PathBuf>,
        /// Directory to write under (the appliance's `/`).
        #[arg(long, default_value = "/")]
        root: PathBuf,
    },
    /// Show what the running agent is doing (it serves this on `[agent] metrics_listen`).
    /// Exit status 1 if it is unhealthy or cannot be reached.
    Status,
}

fn main() -> ExitCode {
    let cli: Cli = match vscout::exit::parse_args() {
        Ok(c) => c,
        Err(code) => return code,
    };
    telemetry::init(cli.log_format);
    // First boot runs before any configuration exists: it writes it.
    if let Command::Firstboot { ovf_env, root } = &cli.command {
        return firstboot(ovf_env.as_deref(), root);
    }
    // Usage errors clap cannot see, judged before anything is read or contacted.
    if let Command::Perf { window_secs, .. } = &cli.command {
        if *window_secs < 60 || window_secs % 20 != 0 {
            return usage_error(
                "vscout",
                format!("--window-secs {window_secs}: must be at least 60 and a multiple of 20"),
            );
        }
    }
    let cfg = match config::load(&cli.config, std::env::vars()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("vscout: {e}");
            return ExitCode::from(EX_USAGE);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("vscout: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Inventory { output, format } => inventory_once(&cfg, &output, format).await,
            Command::Check => {
                let results = vscout::check::run(&cfg).await;
                print!("{}", vscout::check::render(&results));
                let failed = results
                    .iter()
                    .any(|r| r.status == vscout::check::Status::Fail);
                Ok(if failed {
                    ExitCode::FAILURE
                } else {
                    ExitCode::SUCCESS
                })
            }
            Command::Perf {
                window_secs,
                output,
                ..
            } => perf_once(&cfg, window_secs, &output).await,
            Command::Status => agent_status(&cfg).await,
            // Handled before the configuration is loaded.
            Command::Firstboot { .. } => Ok(ExitCode::SUCCESS),
            Command::Run => match vscout::daemon::run_with_reload(
                cfg,
                vscout::daemon::shutdown_signal(),
                reload_on_sighup(cli.config.clone()),
            )
            .await
            {
                Ok(()) => Ok(ExitCode::SUCCESS),
                Err(e) => {
                    // The state directory or TLS files are unusable: an operator must act.
                    eprintln!("vscout: {e}");
                    Ok(ExitCode::from(EX_CANTCREAT))
                }
            },
        }
    });
    // Benchmarks read this line to measure the agent from the inside.
    if std::env::var_os("VSCOUT_REPORT_RESOURCES").is_some() {
        if let Some(u) = telemetry::resource_usage() {
            eprintln!(
                "vscout-resources cpu_ms={} peak_rss_kib={}",
                u.cpu_ms, u.peak_rss_kib
            );
        }
    }
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("vscout: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Inventories every vCenter concurrently. What succeeded is written even if another
/// vCenter failed; any failure makes the exit status 1.
async fn inventory_once(
    cfg: &AgentConfig,
    output: &std::path::Path,
    format: Format,
) -> anyhow::Result<ExitCode> {
    let jobs = cfg.vcenters.iter().map(|vc| async move {
        let client = Client::connect(vc).await?;
        let result = inventory::collect(&client).await;
        let _ = client.logout().await;
        result
    });
    let results = futures_util::future::join_all(jobs).await;
    let mut doc = Inventory {
        schema_version: SCHEMA_VERSION,
        agent_version: vscout::VERSION.into(),
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
    std::fs::create_dir_all(output)
        .with_context(|| format!("cannot create output directory {}", output.display()))?;
    let files = match format {
        Format::Json => inventory::write_json(&doc, output),
        Format::Csv => inventory::write_csv(&doc, output),
    }
    .with_context(|| format!("cannot write inventory to {}", output.display()))?;
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
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Rolls up the last complete window of every vCenter into one JSON-lines file.
async fn perf_once(
    cfg: &AgentConfig,
    window_secs: u32,
    output: &std::path::Path,
) -> anyhow::Result<ExitCode> {
    let mut writer = vscout::perf::RollupWriter::create(output)
        .with_context(|| format!("cannot create {}", output.display()))?;
    let mut failed = false;
    for vc in &cfg.vcenters {
        let result = async {
            let client = Client::connect(vc).await?;
            let r = vscout::perf::last_window(&client, &cfg.perf, window_secs, &mut writer).await;
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
            Ok(Err(e)) => anyhow::bail!("cannot write {}: {e}", output.display()),
            Err(e) => {
                failed = true;
                eprintln!("vscout: vcenter {}: {e}", vc.name);
            }
        }
    }
    writer
        .finish()
        .with_context(|| format!("cannot write {}", output.display()))?;
    println!("wrote {}", output.display());
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Re-reads and validates the configuration on every SIGHUP; a valid one goes to the
/// daemon, an invalid one is logged and the running configuration stays.
fn reload_on_sighup(path: PathBuf) -> tokio::sync::mpsc::Receiver<AgentConfig> {
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
async fn agent_status(cfg: &AgentConfig) -> anyhow::Result<ExitCode> {
    let Some(addr) = cfg.metrics_listen else {
        eprintln!("vscout: status needs [agent] metrics_listen (e.g. \"127.0.0.1:9187\"): the running agent serves its state there");
        return Ok(ExitCode::from(EX_USAGE));
    };
    let url = format!("http://{addr}/status");
    // Plain HTTP on loopback; the TLS configuration is never used but reqwest wants one.
    let tls = vscout::tls::client_config(&config::TlsPolicy::Insecure, Default::default(), None)
        .map_err(anyhow::Error::msg)?;
    let http = reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .timeout(std::time::Duration::from_secs(10))
        .no_proxy()
        .build()?;
    let body = match http.get(&url).send().await {
        Ok(r) => r.bytes().await?,
        Err(e) => {
            eprintln!("vscout: cannot reach the agent at {url}: {e} (is `vscout run` running with this configuration?)");
            return Ok(ExitCode::FAILURE);
        }
    };
    let status: vscout::metrics::Status =
        serde_json::from_slice(&body).context("the agent's /status answer")?;
    print!("{}", vscout::metrics::render(&status));
    Ok(if status.healthy {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `vscout firstboot`: OVF environment → the appliance's configuration files.
fn firstboot(ovf_env: Option<&std::path::Path>, root: &std::path::Path) -> ExitCode {
    use vscout::appliance::{firstboot, ovfenv};
    let doc = match ovf_env {
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
    };
    let settings = match doc
        .and_then(|d| ovfenv::parse(&d).map_err(|e| e.to_string()))
        .and_then(|props| firstboot::settings(&props).map_err(|e| e.to_string()))
    {
        Ok(s) => s,
        Err(e) => {
            eprintln!("vscout firstboot: {e}");
            return ExitCode::from(EX_USAGE);
        }
    };
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
    if let Some(pw) = &settings.root_password {
        // chpasswd hashes it; the value goes through a pipe, never an argument or a file.
        let mut cmd = std::process::Command::new("chpasswd");
        if root != std::path::Path::new("/") {
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
