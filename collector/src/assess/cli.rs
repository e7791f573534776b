//! `vscout-collector assess`: the estate's assessment from the collector's database, as
//! a table on the terminal or JSON or CSV to a file. The flags override `[assessment]`;
//! a bad value exits 64 naming it, an unreadable database or unwritable file exits 73.

use std::path::PathBuf;
use std::process::ExitCode;

use vscout_service::exit::{usage_error, EX_CANTCREAT};

use super::estate::assess;
use super::report::{render, Format};
use super::settings::{Params, Setup};
use crate::config::CollectorConfig;

const PROGRAM: &str = "vscout-collector";

/// The flags of `assess`.
#[derive(Debug, Clone, clap::Args)]
pub struct AssessArgs {
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
    /// `table`, `json` or `csv` (default: table, or by the output file's extension).
    #[arg(long)]
    pub format: Option<String>,
    /// Write to this file instead of standard output.
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// A catalog file replacing `[assessment] catalog_file` and the shipped one.
    #[arg(long)]
    pub catalog: Option<PathBuf>,
}

impl AssessArgs {
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
    let setup = match &args.catalog {
        None => (*cfg.assessment).clone(),
        Some(path) => match Setup::load(cfg.assessment.defaults.clone(), Some(path)) {
            Ok(s) => s,
            Err(e) => return usage_error(PROGRAM, e),
        },
    };
    let format = match args.format() {
        Ok(f) => f,
        Err(e) => return usage_error(PROGRAM, e),
    };
    let settings = match setup.settings(&args.params()) {
        Ok(s) => s,
        Err(e) => return usage_error(PROGRAM, e),
    };
    let cant = |e: &dyn std::fmt::Display| {
        eprintln!("{PROGRAM}: {e}");
        ExitCode::from(EX_CANTCREAT)
    };
    let db = cfg.data_dir.join("collector.db");
    if !db.exists() {
        return cant(&format!(
            "no database at {}: has this collector received anything? (--data-dir)",
            db.display()
        ));
    }
    let store = match crate::open_store(cfg) {
        Ok(s) => s,
        Err(e) => return cant(&e),
    };
    let now_s = vscout_service::telemetry::unix_now_ms() / 1000;
    let a = match assess(store.as_ref(), &setup.catalog, &settings, now_s) {
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
            let t: Vec<String> = a
                .targets
                .iter()
                .map(|t| {
                    format!(
                        "{} {}: {} VMs, ${:.2}/month",
                        t.target, t.region, t.totals.vms, t.totals.monthly_total
                    )
                })
                .collect();
            eprintln!("wrote {} ({})", path.display(), t.join("; "));
        }
    }
    ExitCode::SUCCESS
}
