//! The sheet writer every tab uses: a header row (bold, frozen, with filters), rows of
//! typed cells (numbers as numbers, dates as dates), and column widths from what was
//! written. Sheets are written row by row in rust_xlsxwriter's constant-memory mode.

use std::path::Path;

use rust_xlsxwriter::{Format, Workbook, Worksheet, XlsxError};

use crate::WorkbookError;

/// One cell's value.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell<'a> {
    Empty,
    Text(&'a str),
    Owned(String),
    Int(i64),
    Num(f64),
    /// Written as the text `True` or `False`, as RVTools (a .NET program) writes booleans.
    Bool(bool),
    /// Unix milliseconds, written as an Excel date-time (UTC).
    Date(i64),
}

impl<'a> Cell<'a> {
    pub fn opt_text(v: Option<&'a str>) -> Self {
        v.map_or(Cell::Empty, Cell::Text)
    }

    pub fn opt_int<T: Into<i64>>(v: Option<T>) -> Self {
        v.map_or(Cell::Empty, |v| Cell::Int(v.into()))
    }

    pub fn opt_num(v: Option<f64>) -> Self {
        v.filter(|v| v.is_finite()).map_or(Cell::Empty, Cell::Num)
    }

    pub fn opt_bool(v: Option<bool>) -> Self {
        v.map_or(Cell::Empty, Cell::Bool)
    }

    /// An `xsd:dateTime` as a date cell; text that is not one stays text.
    pub fn datetime(v: Option<&'a str>) -> Self {
        match v {
            None => Cell::Empty,
            Some(t) => {
                vscout_wire::datetime::parse_unix_millis(t).map_or(Cell::Text(t), Cell::Date)
            }
        }
    }

    /// Characters it shows, for the column's width.
    fn width(&self) -> usize {
        match self {
            Cell::Empty => 0,
            Cell::Text(s) => s.chars().count(),
            Cell::Owned(s) => s.chars().count(),
            Cell::Int(i) => i.to_string().len(),
            Cell::Num(n) => format!("{n:.2}").len(),
            Cell::Bool(b) => {
                if *b {
                    4
                } else {
                    5
                }
            }
            Cell::Date(_) => 19,
        }
    }
}

/// Bytes to MiB, RVTools' unit for sizes (whole MiB, rounded).
pub fn mib(bytes: Option<u64>) -> Cell<'static> {
    bytes.map_or(Cell::Empty, |b| Cell::Int(((b + (1 << 19)) >> 20) as i64))
}

/// The widest a column is made, in characters.
const MAX_WIDTH: usize = 60;
/// Excel's serial day of 1970-01-01.
const UNIX_EPOCH_SERIAL: f64 = 25_569.0;

/// A workbook being written, one sheet at a time.
pub struct Book {
    wb: Workbook,
    header: Format,
    date: Format,
    number: Format,
}

impl std::fmt::Debug for Book {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Book").finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Sheet<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sheet")
            .field("row", &self.row)
            .finish_non_exhaustive()
    }
}

impl Default for Book {
    fn default() -> Self {
        Self::new()
    }
}

impl Book {
    pub fn new() -> Self {
        Book {
            wb: Workbook::new(),
            header: Format::new().set_bold(),
            date: Format::new().set_num_format("yyyy-mm-dd hh:mm:ss"),
            number: Format::new().set_num_format("0.00"),
        }
    }

    /// Starts the tab `name` with its header row; rows follow through `Sheet::row`.
    pub fn sheet(&mut self, name: &str, headers: &[&str]) -> Result<Sheet<'_>, WorkbookError> {
        let ws = self.wb.add_worksheet_with_constant_memory();
        ws.set_name(name)?;
        for (col, h) in headers.iter().enumerate() {
            ws.write_string_with_format(0, col_num(col)?, *h, &self.header)?;
        }
        ws.set_freeze_panes(1, 0)?;
        Ok(Sheet {
            ws,
            date: &self.date,
            number: &self.number,
            row: 0,
            widths: headers.iter().map(|h| h.chars().count() + 3).collect(),
        })
    }

    pub fn save(mut self, path: &Path) -> Result<(), WorkbookError> {
        self.wb.save(path).map_err(WorkbookError::from)
    }

    pub fn to_bytes(mut self) -> Result<Vec<u8>, WorkbookError> {
        self.wb.save_to_buffer().map_err(WorkbookError::from)
    }
}

fn col_num(col: usize) -> Result<u16, WorkbookError> {
    u16::try_from(col).map_err(|_| WorkbookError::TooWide(col))
}

/// One tab being written: call `row` per row, then `finish`.
pub struct Sheet<'b> {
    ws: &'b mut Worksheet,
    date: &'b Format,
    number: &'b Format,
    /// The last row written (0: the header).
    row: u32,
    widths: Vec<usize>,
}

impl Sheet<'_> {
    /// Writes the next row; cells past the header's columns widen the filter too.
    pub fn row(&mut self, cells: &[Cell<'_>]) -> Result<(), WorkbookError> {
        self.row += 1;
        let row = self.row;
        for (i, cell) in cells.iter().enumerate() {
            let col = col_num(i)?;
            match cell {
                Cell::Empty => {}
                Cell::Text(s) => {
                    self.ws.write_string(row, col, *s)?;
                }
                Cell::Owned(s) => {
                    self.ws.write_string(row, col, s)?;
                }
                Cell::Int(v) => {
                    self.ws.write_number(row, col, *v as f64)?;
                }
                Cell::Num(v) => {
                    self.ws
                        .write_number_with_format(row, col, *v, self.number)?;
                }
                Cell::Bool(b) => {
                    self.ws
                        .write_string(row, col, if *b { "True" } else { "False" })?;
                }
                Cell::Date(ms) => {
                    let serial = *ms as f64 / 86_400_000.0 + UNIX_EPOCH_SERIAL;
                    self.ws
                        .write_number_with_format(row, col, serial, self.date)?;
                }
            }
            let w = cell.width() + 2;
            match self.widths.get_mut(i) {
                Some(have) => *have = (*have).max(w),
                None => self.widths.push(w),
            }
        }
        Ok(())
    }

    /// Filters over the header and every row, and the columns' widths.
    pub fn finish(self) -> Result<(), WorkbookError> {
        let last_col = col_num(self.widths.len().saturating_sub(1))?;
        self.ws.autofilter(0, 0, self.row, last_col)?;
        for (i, w) in self.widths.iter().enumerate() {
            self.ws
                .set_column_width(col_num(i)?, (*w).min(MAX_WIDTH) as f64)?;
        }
        Ok(())
    }
}

impl From<XlsxError> for WorkbookError {
    fn from(e: XlsxError) -> Self {
        WorkbookError::Xlsx(e.to_string())
    }
}
