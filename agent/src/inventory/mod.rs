//! Inventory discovery: every VM, host, cluster, datastore and network of each configured
//! vCenter, read through `vsphere` and written as JSON, CSV tables, an RVTools-compatible workbook
//! or Azure Migrate's CSV import.

mod collect;
mod output;
mod vm;

#[cfg(test)]
mod tests;

pub use collect::{api_at_least, collect, from_captured_answer};
pub use output::{write_azure_migrate, write_csv, write_json, write_xlsx, Format};
pub use vm::PRUNED_DEVICE_TYPES;
/// The records, `vscout_wire`'s.
pub use vscout_wire::inventory as model;
pub use vscout_wire::inventory::{Inventory, VcenterInventory, SCHEMA_VERSION};
