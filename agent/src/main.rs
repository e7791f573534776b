//! The `vscout` binary: parses the command line, loads the configuration (bad
//! configuration exits 64, EX_USAGE), and hands over to the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use vscout::commands;
use vscout::config;
use vscout::exit::{usage_error, EX_USAGE};
use vscout::inventory::Format;
use vscout::telemetry::{self, LogFormat};

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
        /// `json` (one inventory.json), `csv` (one file per table), `xlsx` (inventory.xlsx,
        /// RVTools' tabs and columns) or `azure-migrate-csv` (azure-migrate.csv, Azure
        /// Migrate's import template).
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
        /// The collector's binary, which all-in-one mode runs to provision it.
        #[arg(long, default_value = "/usr/bin/vscout-collector")]
        collector_bin: PathBuf,
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
    if let Command::Firstboot {
        ovf_env,
        root,
        collector_bin,
    } = &cli.command
    {
        return commands::firstboot(ovf_env.as_deref(), root, collector_bin);
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
    let code = runtime.block_on(async move {
        match cli.command {
            Command::Inventory { output, format } => {
                commands::inventory(&cfg, &output, format).await
            }
            Command::Check => commands::check(&cfg).await,
            Command::Perf {
                window_secs,
                output,
                ..
            } => commands::perf_once(&cfg, window_secs, &output).await,
            Command::Status => commands::status(&cfg).await,
            // Handled before the configuration is loaded.
            Command::Firstboot { .. } => ExitCode::SUCCESS,
            Command::Run => commands::run(cfg, cli.config.clone()).await,
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
    code
}
