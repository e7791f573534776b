//! The `vscout-collector` binary: `serve` (the default), `assess`, `export`,
//! `certificate`, `token add|list|revoke` or `user add|remove|list`. Usage
//! errors and bad configuration exit 64; an unusable data directory, certificate or port
//! exits 73.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use vscout_collector::config;
use vscout_collector::store::Role;

use vscout_service::exit::{usage_error, EX_CANTCREAT, EX_USAGE};

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
    /// Assess every VM for Azure and AWS: size, disks, monthly cost, readiness,
    /// confidence (a table, or JSON or CSV to a file).
    Assess(Box<vscout_collector::assess::cli::AssessArgs>),
    /// Export the fleet: an RVTools-compatible workbook (inventory tabs, then
    /// Assessment, Summary, Performance) or Azure Migrate's CSV import.
    Export(Box<vscout_collector::export::cli::ExportArgs>),
    /// Manage agent and viewer tokens.
    Token {
        #[command(subcommand)]
        action: TokenAction,
    },
    /// Print the server certificate's SHA-256 thumbprint (for agents to pin), generating
    /// the self-signed pair first if none is configured and none exists yet.
    Certificate,
    /// Manage the people who log in to the pages.
    User {
        #[command(subcommand)]
        action: UserAction,
    },
}

#[derive(Debug, Subcommand)]
enum UserAction {
    /// Add a person who may log in to the pages. The password is read from
    /// `--password-file`, else from the first line of standard input; only its argon2id
    /// hash is stored.
    Add {
        name: String,
        /// File whose first line is the password.
        #[arg(long)]
        password_file: Option<PathBuf>,
    },
    /// Remove a person: their sessions end at once.
    Remove { name: String },
    /// List the people: name, when added, last log-in.
    List,
}

#[derive(Debug, Subcommand)]
enum TokenAction {
    /// Create a token and print it (only its hash is stored).
    Add {
        name: String,
        /// `agent` (sends batches) or `viewer` (reads the API and the pages, cannot send).
        #[arg(long, default_value = "agent", value_parser = ["agent", "viewer"])]
        role: String,
    },
    /// List the tokens: name, when made, when an agent last used it.
    List,
    /// Delete a token: agents presenting it are refused from their next request on (no
    /// restart needed).
    Revoke { name: String },
}

fn main() -> ExitCode {
    let cli: Cli = match vscout_service::exit::parse_args() {
        Ok(c) => c,
        Err(code) => return code,
    };
    vscout_service::telemetry::init(vscout_service::telemetry::LogFormat::Text);
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
        Command::Assess(args) => vscout_collector::assess::cli::run(&args, &cfg),
        Command::Export(args) => vscout_collector::export::cli::run(&args, &cfg),
        Command::Token { action } => with_store(&cfg, |s| token_command(s, action)),
        Command::User { action } => with_store(&cfg, |s| user_command(s, action)),
        Command::Certificate => match vscout_collector::tls::certificate(&cfg) {
            Ok(c) => {
                println!("COLLECTOR_THUMBPRINT_SHA256={}", c.thumbprint);
                println!("COLLECTOR_CERTIFICATE_FILE={}", c.cert_file.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("vscout-collector: {e}");
                ExitCode::from(EX_CANTCREAT)
            }
        },
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
                vscout_service::shutdown_signal(),
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

/// Runs `f` on the configured store, or exits 73 if it cannot be opened.
fn with_store(
    cfg: &config::CollectorConfig,
    f: impl FnOnce(&dyn vscout_collector::store::Storage) -> ExitCode,
) -> ExitCode {
    match vscout_collector::open_store(cfg) {
        Ok(s) => f(s.as_ref()),
        Err(e) => {
            eprintln!("vscout-collector: {e}");
            ExitCode::from(EX_CANTCREAT)
        }
    }
}

/// `token add|list|revoke` against the store.
fn token_command(store: &dyn vscout_collector::store::Storage, action: TokenAction) -> ExitCode {
    use vscout_collector::store::StoreError;
    let failed = |e: &dyn std::fmt::Display| {
        eprintln!("vscout-collector: {e}");
        ExitCode::from(EX_CANTCREAT)
    };
    match action {
        TokenAction::Add { name, role } => {
            let role = if role == "viewer" {
                Role::Viewer
            } else {
                Role::Agent
            };
            if name.trim().is_empty() || name.len() > 128 || name.chars().any(char::is_control) {
                return usage_error(
                    "vscout-collector",
                    format!("token name {name:?}: must be 1 to 128 printable characters"),
                );
            }
            match vscout_collector::add_token(store, &name, role) {
                Ok(token) => {
                    println!("{token}");
                    ExitCode::SUCCESS
                }
                Err(vscout_collector::StartError::Store(e @ StoreError::TokenExists(_))) => {
                    usage_error("vscout-collector", e)
                }
                Err(e) => failed(&e),
            }
        }
        TokenAction::List => match store.tokens() {
            Ok(tokens) => {
                println!("{:<32} {:<7} {:<22} LAST USED", "NAME", "ROLE", "CREATED");
                for t in tokens {
                    println!(
                        "{:<32} {:<7} {:<22} {}",
                        t.name,
                        t.role.as_str(),
                        when(Some(t.created)),
                        when(t.last_used)
                    );
                }
                ExitCode::SUCCESS
            }
            Err(e) => failed(&e),
        },
        TokenAction::Revoke { name } => match store.revoke_token(&name) {
            Ok(true) => {
                println!("revoked token {name:?}: agents presenting it are refused from now on");
                ExitCode::SUCCESS
            }
            Ok(false) => usage_error(
                "vscout-collector",
                format!("no token named {name:?} (see `vscout-collector token list`)"),
            ),
            Err(e) => failed(&e),
        },
    }
}

/// When something happened, as `token list` and `user list` print it.
fn when(t: Option<i64>) -> String {
    t.map_or("never".to_owned(), |secs| {
        vscout_wire::datetime::format_unix_millis(secs * 1000).replace(".000Z", "Z")
    })
}

/// The password for `user add`: the first line of the file, or of standard input.
fn read_password(file: Option<&std::path::Path>) -> Result<String, String> {
    let text = match file {
        Some(f) => std::fs::read_to_string(f)
            .map_err(|e| format!("cannot read the password file {}: {e}", f.display()))?,
        None => {
            let mut line = String::new();
            std::io::stdin()
                .read_line(&mut line)
                .map_err(|e| format!("cannot read the password from standard input: {e}"))?;
            line
        }
    };
    Ok(text.lines().next().unwrap_or("").to_owned())
}

/// `user add|remove|list` against the store.
fn user_command(store: &dyn vscout_collector::store::Storage, action: UserAction) -> ExitCode {
    use vscout_collector::auth::password;
    use vscout_collector::store::StoreError;
    let failed = |e: &dyn std::fmt::Display| {
        eprintln!("vscout-collector: {e}");
        ExitCode::from(EX_CANTCREAT)
    };
    match action {
        UserAction::Add {
            name,
            password_file,
        } => {
            if name.trim().is_empty()
                || name.len() > 64
                || name.chars().any(|c| c.is_control() || c.is_whitespace())
            {
                return usage_error(
                    "vscout-collector",
                    format!(
                        "user name {name:?}: must be 1 to 64 printable characters without spaces"
                    ),
                );
            }
            let phc = match read_password(password_file.as_deref())
                .and_then(|p| password::hash(&p).map_err(|e| e.to_string()))
            {
                Ok(h) => h,
                Err(e) => return usage_error("vscout-collector", e),
            };
            match store.add_user(&name, &phc) {
                Ok(()) => {
                    println!("added user {name:?}: they may log in to the pages now");
                    ExitCode::SUCCESS
                }
                Err(e @ StoreError::UserExists(_)) => usage_error("vscout-collector", e),
                Err(e) => failed(&e),
            }
        }
        UserAction::Remove { name } => match store.remove_user(&name) {
            Ok(true) => {
                println!("removed user {name:?}: their sessions ended");
                ExitCode::SUCCESS
            }
            Ok(false) => usage_error(
                "vscout-collector",
                format!("no user named {name:?} (see `vscout-collector user list`)"),
            ),
            Err(e) => failed(&e),
        },
        UserAction::List => match store.users() {
            Ok(users) => {
                println!("{:<32} {:<22} LAST LOG-IN", "NAME", "ADDED");
                for u in users {
                    println!(
                        "{:<32} {:<22} {}",
                        u.name,
                        when(Some(u.created)),
                        when(u.last_login)
                    );
                }
                ExitCode::SUCCESS
            }
            Err(e) => failed(&e),
        },
    }
}
