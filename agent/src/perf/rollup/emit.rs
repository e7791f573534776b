//! Rollup sets straight from series numbers: a drained series' labels are the series
//! table's numbers, renumbered for the set (each set carries only the labels its rows use,
//! in order of first use, as `RollupSetBuilder` numbers them) by indexing a vector, with
//! no string hashed or copied but the entity id.

use compact_str::CompactString;

use vscout_wire::batch::{RollupRow, RollupSet, WindowFigures};
use vscout_wire::rollup::ROLLUP_SCHEMA_VERSION;

use crate::perf::series::{SeriesTable, Slot};

/// Builds rollup sets of at most `max_rows` rows.
#[derive(Debug)]
pub(super) struct SetEmitter {
    vcenter: CompactString,
    max_rows: usize,
    /// Table label number → set name index + 1 (0: not in this set yet).
    remap: Vec<u32>,
    names: Vec<CompactString>,
    rows: Vec<RollupRow>,
}

impl SetEmitter {
    pub(super) fn new(vcenter: &CompactString, max_rows: usize) -> Self {
        Self {
            vcenter: vcenter.clone(),
            max_rows: max_rows.max(1),
            remap: Vec::new(),
            names: Vec::new(),
            rows: Vec::new(),
        }
    }

    /// The set's index of table label `label`.
    fn name(&mut self, table: &SeriesTable, label: u32) -> u32 {
        let i = label as usize;
        if self.remap.len() <= i {
            self.remap.resize(table.labels_len().max(i + 1), 0);
        }
        if self.remap[i] == 0 {
            self.names.push(table.label(label).clone());
            self.remap[i] = self.names.len() as u32;
        }
        self.remap[i] - 1
    }

    /// Adds one window of the series in `slot`; a full set is handed to `each`.
    pub(super) fn push(
        &mut self,
        table: &SeriesTable,
        slot: &Slot,
        w: WindowFigures,
        each: &mut impl FnMut(RollupSet),
    ) {
        let Some((moref, kind)) = table.entity_of(slot.entity) else {
            return;
        };
        let labels = [
            kind,
            slot.counter,
            slot.instance,
            slot.unit,
            slot.stats_type,
        ];
        let row = RollupRow::new(labels.map(|l| self.name(table, l)), moref.value.clone(), w);
        self.rows.push(row);
        if self.rows.len() >= self.max_rows {
            self.flush(each);
        }
    }

    /// Hands the rows so far to `each` as one set, if there are any.
    pub(super) fn flush(&mut self, each: &mut impl FnMut(RollupSet)) {
        if self.rows.is_empty() {
            return;
        }
        self.remap.iter_mut().for_each(|r| *r = 0);
        each(RollupSet {
            schema_version: ROLLUP_SCHEMA_VERSION,
            vcenter: self.vcenter.clone(),
            names: std::mem::take(&mut self.names),
            rows: std::mem::take(&mut self.rows),
        });
    }
}
