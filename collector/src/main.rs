//! The `vscout-collector` binary: `serve` (the default) or `token add NAME`. Bad
//! configuration exits 64; an unusable data directory, certificate or port exits 73.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use vscout_collector::config;

const EX_USAGE: u8 = 64;
const EX_CANTCREAT: u8 = 73;

#[derive(Debug, Parser)]
#[command(
    name = "vscout-collector",
    version,
    about = "Receives, stores and serves what vscout agents send"
)]
struct Cli {
    /// Configuration file (optional: every key has a default).
    #[arg(long, global = true, env = "VSCOUT_COLLECTOR_CONFIG")]
    config: Option<PathBuf>,
    /// Overrides `data_dir`.
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    /// Overrides `listen_addr` (port 0 picks a free port, printed at start).
    #[arg(long, global = true)]
    listen: Option<String>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the API (the default).
    Serve,
    /// Manage agent tokens.
    Token {
        #[command(subcommand)]
        action: TokenAction,
    },
}

#[derive(Debug, Subcommand)]
enum TokenAction {
    /// Create a token for an agent and print it (only its hash is stored).
    Add { name: String },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    vscout::telemetry::init(vscout::telemetry::LogFormat::Text);
    let mut raw = match cli.config.as_deref() {
        None => config::RawConfig::default(),
        Some(p) => match std::fs::read_to_string(p)
            .map_err(|e| config::ConfigError::Read {
                path: p.to_owned(),
                reason: e.to_string(),
            })
            .and_then(|t| config::parse(&t))
        {
            Ok(r) => r,
            Err(e) => {
                eprintln!("vscout-collector: {e}");
                return ExitCode::from(EX_USAGE);
            }
        },
    };
    if let Some(d) = cli.data_dir {
        raw.data_dir = Some(d);
    }
    if let Some(l) = cli.listen {
        raw.listen_addr = Some(l);
    }
    let cfg = match config::validate(raw) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("vscout-collector: {e}");
            return ExitCode::from(EX_USAGE);
        }
    };
    match cli.command.unwrap_or(Command::Serve) {
        Command::Token {
            action: TokenAction::Add { name },
        } => {
            let result = vscout_collector::open_store(&cfg)
                .and_then(|s| vscout_collector::add_token(s.as_ref(), &name));
            match result {
                Ok(token) => {
                    println!("{token}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("vscout-collector: {e}");
                    ExitCode::from(EX_CANTCREAT)
                }
            }
        }
        Command::Serve => {
            let rt = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("vscout-collector: cannot start the runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match rt.block_on(vscout_collector::run(
                cfg,
                vscout::daemon::shutdown_signal(),
            )) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("vscout-collector: {e}");
                    ExitCode::from(EX_CANTCREAT)
                }
            }
        }
    }
}
