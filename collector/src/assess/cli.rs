//! `vscout-collector assess`: the estate's assessment from the collector's database, as
//! a table on the terminal or JSON or CSV to a file. The flags override `[assessment]`;
//! a bad value exits 64 naming it, an unreadable database or unwritable file exits 73.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use vscout_service::exit::{usage_error, EX_CANTCREAT};

use super::estate::{assess, Assessment};
use super::report::{render, Format};
use super::settings::{Params, Settings, Setup};
use crate::config::CollectorConfig;
use crate::store::Storage;

const PROGRAM: &str = "vscout-collector";

/// The assessment's settings as flags (of `assess` and `export`).
#[derive(Debug, Clone, clap::Args)]
pub struct SettingsArgs {
    /// `azure`, `aws` or `both` (default: `[assessment] target`, else both).
    #[arg(long)]
    pub target: Option<String>,
    /// The region priced (with one target).
    #[arg(long)]
    pub region: Option<String>,
    /// 50, 90, 95 or 99.
    #[arg(long)]
    pub percentile: Option<String>,
    /// Days of history, 1 to 400.
    #[arg(long)]
    pub history_days: Option<String>,
    /// Headroom factor, 1.0 to 10.
    #[arg(long)]
    pub comfort: Option<String>,
    /// `peaks` or `samples`.
    #[arg(long)]
    pub basis: Option<String>,
    /// `performance` or `as-on-premises`.
    #[arg(long)]
    pub sizing: Option<String>,
    /// `active`, `consumed` or `max`.
    #[arg(long)]
    pub memory: Option<String>,
    /// Discount off list prices, a fraction (0.2 is 20 % off).
    #[arg(long)]
    pub discount: Option<String>,
    /// Hours a size runs per month.
    #[arg(long)]
    pub hours_per_month: Option<String>,
    /// Recommend burstable sizes too.
    #[arg(long)]
    pub burstable: bool,
    /// A catalog file replacing `[assessment] catalog_file` and the shipped one.
    #[arg(long)]
    pub catalog: Option<PathBuf>,
}

/// The flags of `assess`.
#[derive(Debug, Clone, clap::Args)]
pub struct AssessArgs {
    #[command(flatten)]
    pub settings: SettingsArgs,
    /// `table`, `json` or `csv` (default: table, or by the output file's extension).
    #[arg(long)]
    pub format: Option<String>,
    /// Write to this file instead of standard output.
    #[arg(long)]
    pub output: Option<PathBuf>,
}

/// What a command made of the settings flags: the catalog, the settings and the store.
#[derive(Debug)]
pub struct Prepared {
    pub setup: Setup,
    pub settings: Settings,
    pub store: Arc<dyn Storage>,
}

/// The message and exit code of a command that cannot go on.
pub fn cant(e: &dyn std::fmt::Display) -> ExitCode {
    eprintln!("{PROGRAM}: {e}");
    ExitCode::from(EX_CANTCREAT)
}

impl SettingsArgs {
    fn params(&self) -> Params {
        Params {
            target: self.target.clone(),
            region: self.region.clone(),
            percentile: self.percentile.clone(),
            history_days: self.history_days.clone(),
            comfort: self.comfort.clone(),
            basis: self.basis.clone(),
            sizing: self.sizing.clone(),
            memory: self.memory.clone(),
            discount: self.discount.clone(),
            hours_per_month: self.hours_per_month.clone(),
            burstable: self.burstable.then(|| "true".into()),
        }
    }

    /// The catalog and settings (a bad value exits 64) and the collector's database (none,
    /// or unreadable, exits 73).
    pub fn prepare(&self, cfg: &CollectorConfig) -> Result<Prepared, ExitCode> {
        let setup = match &self.catalog {
            None => (*cfg.assessment).clone(),
            Some(path) => Setup::load(cfg.assessment.defaults.clone(), Some(path))
                .map_err(|e| usage_error(PROGRAM, e))?,
        };
        let settings = setup
            .settings(&self.params())
            .map_err(|e| usage_error(PROGRAM, e))?;
        let db = cfg.data_dir.join("collector.db");
        // An empty SQLite file made here would answer an empty estate; a PostgreSQL
        // database is the collectors' to make.
        if cfg.storage == crate::config::StorageChoice::Sqlite && !db.exists() {
            return Err(cant(&format!(
                "no database at {}: has this collector received anything? (--data-dir)",
                db.display()
            )));
        }
        let store = crate::open_store(cfg).map_err(|e| cant(&e))?;
        Ok(Prepared {
            setup,
            settings,
            store,
        })
    }
}

impl AssessArgs {
    fn format(&self) -> Result<Format, String> {
        if let Some(f) = &self.format {
            return f.parse();
        }
        let ext = self
            .output
            .as_ref()
            .and_then(|p| p.extension())
            .and_then(|e| e.to_str());
        Ok(match (self.output.is_some(), ext) {
            (false, _) => Format::Table,
            (true, Some("csv")) => Format::Csv,
            (true, _) => Format::Json,
        })
    }
}

/// Runs `assess` against the collector's database.
pub fn run(args: &AssessArgs, cfg: &CollectorConfig) -> ExitCode {
    let format = match args.format() {
        Ok(f) => f,
        Err(e) => return usage_error(PROGRAM, e),
    };
    let p = match args.settings.prepare(cfg) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let now_s = vscout_service::telemetry::unix_now_ms() / 1000;
    let a = match assess(p.store.as_ref(), &p.setup.catalog, &p.settings, now_s) {
        Ok(a) => a,
        Err(e) => return cant(&e),
    };
    let text = render(&a, format);
    match &args.output {
        None => print!("{text}"),
        Some(path) => {
            if let Err(e) = vscout_service::fsio::write_atomic(path, text.as_bytes(), 0o644) {
                return cant(&format!("cannot write {}: {e}", path.display()));
            }
            eprintln!("wrote {} ({})", path.display(), totals_note(&a));
        }
    }
    ExitCode::SUCCESS
}

/// `azure westeurope: 12 VMs, $1234.00/month; aws …`, for the line saying what was written.
pub fn totals_note(a: &Assessment) -> String {
    a.targets
        .iter()
        .map(|t| {
            format!(
                "{} {}: {} VMs, ${:.2}/month",
                t.target, t.region, t.totals.vms, t.totals.monthly_total
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}
