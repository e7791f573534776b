//! `vscout-collector export --output FILE`: the fleet's workbook (or Azure Migrate's CSV)
//! written from the collector's database. The assessment's flags are `assess`'s; a bad
//! value exits 64 naming it, an unreadable database or unwritable file exits 73.

use std::path::PathBuf;
use std::process::ExitCode;

use vscout_service::exit::usage_error;

use super::{export, Format};
use crate::assess::cli::{cant, totals_note, SettingsArgs};
use crate::config::CollectorConfig;

/// The flags of `export`.
#[derive(Debug, Clone, clap::Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub settings: SettingsArgs,
    /// `xlsx` or `azure-migrate-csv` (default: by the output file's extension, `.csv`
    /// being Azure Migrate's).
    #[arg(long)]
    pub format: Option<String>,
    /// The file to write.
    #[arg(long)]
    pub output: PathBuf,
}

impl ExportArgs {
    fn format(&self) -> Result<Format, String> {
        if let Some(f) = &self.format {
            return f.parse();
        }
        match self.output.extension().and_then(|e| e.to_str()) {
            Some("xlsx") => Ok(Format::Xlsx),
            Some("csv") => Ok(Format::AzureMigrateCsv),
            _ => Err(format!(
                "cannot tell the format of {}: name it .xlsx or .csv, or give --format",
                self.output.display()
            )),
        }
    }
}

/// Runs `export` against the collector's database.
pub fn run(args: &ExportArgs, cfg: &CollectorConfig) -> ExitCode {
    let format = match args.format() {
        Ok(f) => f,
        Err(e) => return usage_error("vscout-collector", e),
    };
    let p = match args.settings.prepare(cfg) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let now_s = vscout_service::telemetry::unix_now_ms() / 1000;
    let out = match export(
        p.store.as_ref(),
        &p.setup.catalog,
        &p.settings,
        now_s,
        format,
    ) {
        Ok(o) => o,
        Err(e) => return cant(&e),
    };
    if let Err(e) = vscout_service::fsio::write_atomic(&args.output, &out.bytes, 0o644) {
        return cant(&format!("cannot write {}: {e}", args.output.display()));
    }
    eprintln!(
        "wrote {} ({} bytes; {})",
        args.output.display(),
        out.bytes.len(),
        totals_note(&out.assessment)
    );
    ExitCode::SUCCESS
}
