//! Advisory locks that order what several collectors sharing one database must not do at
//! once: migrating, making or dropping partitions, and retention's steps. Each is a
//! transaction lock, released at commit or rollback (a collector that dies holds none).

use postgres::{GenericClient, Transaction};

use crate::store::StoreError;

/// Migrations run one collector at a time.
pub(super) const MIGRATE: i64 = 0x7673_636f_7574_0001;
/// Partitions are made and dropped one at a time (`CREATE TABLE … PARTITION OF` racing
/// another collector's would fail).
pub(super) const PARTITIONS: i64 = 0x7673_636f_7574_0002;
/// One retention step at a time across collectors.
pub(super) const PRUNE: i64 = 0x7673_636f_7574_0003;
/// The limits ingest checks (the horizons, the summaries' mark, the days packed): a batch
/// holds it shared to its commit, retention exclusively to move them, so that a move
/// waits for the batches in flight. One lock, not the rows' locks: a batch share-locking
/// four rows in the table's order and a pass updating them in its own deadlocked.
pub(super) const LIMITS: i64 = 0x7673_636f_7574_0004;

/// Waits for `key` and holds it until the transaction ends.
pub(super) fn take(tx: &mut Transaction<'_>, key: i64) -> Result<(), StoreError> {
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&key])?;
    Ok(())
}

/// Waits for `key` in shared mode (others may share it; not while it is held
/// exclusively) and holds it until the transaction ends.
pub(super) fn share(c: &mut impl GenericClient, key: i64) -> Result<(), StoreError> {
    c.execute("SELECT pg_advisory_xact_lock_shared($1)", &[&key])?;
    Ok(())
}
