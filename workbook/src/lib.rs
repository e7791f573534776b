//! Excel workbooks: the sheet writer (`sheet`, `columns`) and the RVTools-compatible
//! inventory tabs (`rvtools`) that the agent's `inventory --format xlsx` and the
//! collector's export both write, and Azure Migrate's CSV import (`azure_migrate`).
#![forbid(unsafe_code)]

pub mod azure_migrate;
pub mod columns;
pub mod csv;
pub mod rvtools;
pub mod sheet;

pub use sheet::{Book, Cell, Sheet};

/// Why a workbook could not be written. Never retryable: the same input fails the same
/// way (a full disk shows as `Xlsx` with the I/O error's text).
#[derive(Debug, thiserror::Error)]
pub enum WorkbookError {
    #[error("xlsx: {0}")]
    Xlsx(String),
    #[error("a sheet of {0} columns is wider than Excel allows")]
    TooWide(usize),
}

impl WorkbookError {
    pub fn is_retryable(&self) -> bool {
        false
    }
}
