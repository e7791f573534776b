//! How a tab's columns are declared: every column RVTools 4.x writes, in its order,
//! either with the function that fills it from a row or with the reason vscout leaves
//! it out. Only present columns are written; the documentation's column table is made
//! from the same declarations, so the two cannot drift.

use crate::sheet::{Book, Cell};
use crate::WorkbookError;

/// One RVTools column of a tab.
#[derive(Debug)]
pub enum Col<R> {
    /// Written: its header and the function that fills it.
    Has(&'static str, for<'r> fn(&'r R) -> Cell<'r>),
    /// Not written: its header and why.
    Not(&'static str, &'static str),
    /// The VM's custom attributes, one column per attribute name of the estate (RVTools
    /// puts them after "Annotation").
    Custom,
}

impl<R> Col<R> {
    pub fn header(&self) -> &'static str {
        match self {
            Col::Has(h, _) | Col::Not(h, _) => h,
            Col::Custom => "(one column per custom attribute)",
        }
    }
}

/// A row that belongs to a VM, for the custom attribute columns.
pub trait CustomValues {
    fn custom_value(&self, name: &str) -> Option<&str>;
}

/// A tab: its name and columns.
#[derive(Debug)]
pub struct Tab<R> {
    pub name: &'static str,
    pub cols: Vec<Col<R>>,
}

impl<R: CustomValues> Tab<R> {
    /// Writes the tab's present columns for `rows`; `custom` names the custom attribute
    /// columns.
    pub fn write(
        &self,
        book: &mut Book,
        custom: &[String],
        rows: impl Iterator<Item = R>,
    ) -> Result<(), WorkbookError> {
        let mut headers: Vec<&str> = Vec::new();
        for c in &self.cols {
            match c {
                Col::Has(h, _) => headers.push(h),
                Col::Not(..) => {}
                Col::Custom => headers.extend(custom.iter().map(String::as_str)),
            }
        }
        let mut sheet = book.sheet(self.name, &headers)?;
        for r in rows {
            let mut cells: Vec<Cell<'_>> = Vec::with_capacity(headers.len());
            for c in &self.cols {
                match c {
                    Col::Has(_, f) => cells.push(f(&r)),
                    Col::Not(..) => {}
                    Col::Custom => {
                        cells.extend(custom.iter().map(|n| Cell::opt_text(r.custom_value(n))))
                    }
                }
            }
            sheet.row(&cells)?;
        }
        sheet.finish()
    }
}
