//! The PostgreSQL schema as numbered migrations: each runs once, in its own transaction,
//! and is recorded in `schema_migrations`; collectors starting together take an advisory
//! lock so that one migrates and the others find it done. A database from a newer
//! collector (a version this one does not know) is refused rather than misread.

use postgres::Client;

use super::locks;
use crate::store::StoreError;

/// Every migration, in order; the position (from 1) is the version. Never edit one that
/// shipped: add the next.
const MIGRATIONS: &[&str] = &[
    // 1: the tables. Times are Unix seconds (or `_ms`); the time-keyed tables are
    // partitioned (rollups by UTC day, the rest by UTC month: see partitions.rs) so that
    // retention drops whole partitions instead of deleting rows.
    "
CREATE TABLE batches (
    agent_id text NOT NULL, seq bigint NOT NULL, received_ms bigint NOT NULL,
    records bigint NOT NULL, rollups bigint NOT NULL, principal text NOT NULL,
    PRIMARY KEY (agent_id, seq));
CREATE TABLE agents (
    agent_id text PRIMARY KEY, version text NOT NULL, principal text NOT NULL,
    first_seen_ms bigint NOT NULL, last_seen_ms bigint NOT NULL, last_seq bigint NOT NULL,
    batches bigint NOT NULL DEFAULT 0, duplicate_batches bigint NOT NULL DEFAULT 0,
    rows_ignored bigint NOT NULL DEFAULT 0, health text);
CREATE TABLE vcenters (
    vcenter text PRIMARY KEY, agent_id text NOT NULL, url text NOT NULL, about text NOT NULL,
    collected_at text NOT NULL, vms bigint NOT NULL, hosts bigint NOT NULL,
    clusters bigint NOT NULL, datastores bigint NOT NULL, networks bigint NOT NULL,
    warnings bigint NOT NULL, updated_ms bigint NOT NULL);
CREATE TABLE vms (
    vcenter text NOT NULL, vm_id text NOT NULL, name text NOT NULL, power_state text,
    guest_os text, num_cpu bigint, memory_bytes bigint, host text NOT NULL,
    cluster text NOT NULL, datacenter text NOT NULL, doc text NOT NULL,
    PRIMARY KEY (vcenter, vm_id));
CREATE TABLE entities (
    vcenter text NOT NULL, kind text NOT NULL, entity_id text NOT NULL, name text NOT NULL,
    doc text NOT NULL, PRIMARY KEY (vcenter, kind, entity_id));
CREATE TABLE series (
    id bigserial PRIMARY KEY, vcenter text NOT NULL, entity_type text NOT NULL,
    entity_id text NOT NULL, counter text NOT NULL, instance text NOT NULL,
    unit text NOT NULL, stats_type text NOT NULL,
    UNIQUE (vcenter, entity_id, counter, instance));
CREATE INDEX series_by_entity ON series (entity_id, entity_type);
CREATE TABLE rollups (
    series_id bigint NOT NULL, window_start bigint NOT NULL, window_secs integer NOT NULL,
    expected integer NOT NULL, missing integer NOT NULL, count integer NOT NULL,
    min float8, max float8, mean float8, p50 float8, p95 float8, p99 float8,
    PRIMARY KEY (series_id, window_start)) PARTITION BY RANGE (window_start);
CREATE TABLE rollup_hours (
    series_id bigint NOT NULL, hour_start bigint NOT NULL, windows bigint NOT NULL,
    expected bigint NOT NULL, missing bigint NOT NULL, count bigint NOT NULL,
    min float8, max float8, mean float8, p95 float8,
    PRIMARY KEY (series_id, hour_start)) PARTITION BY RANGE (hour_start);
CREATE TABLE daily (
    series_id bigint NOT NULL, day_start bigint NOT NULL, samples bigint NOT NULL,
    expected bigint NOT NULL, max float8, sketch bytea NOT NULL,
    PRIMARY KEY (series_id, day_start)) PARTITION BY RANGE (day_start);
CREATE TABLE window_days (
    series_id bigint NOT NULL, day_start bigint NOT NULL, windows bigint NOT NULL,
    covered_secs bigint NOT NULL, received bigint NOT NULL, expected bigint NOT NULL,
    first_start bigint NOT NULL, last_end bigint NOT NULL, peaks bytea NOT NULL,
    PRIMARY KEY (series_id, day_start)) PARTITION BY RANGE (day_start);
-- Days whose summary a late window made stale: summarised again by the next pass, read
-- from their windows until then.
CREATE TABLE dirty_days (
    series_id bigint NOT NULL, day_start bigint NOT NULL, PRIMARY KEY (series_id, day_start));
-- The partitions made, so that retention finds the old ones without parsing catalogs.
CREATE TABLE partitions (
    parent text NOT NULL, lower bigint NOT NULL, upper bigint NOT NULL, name text NOT NULL,
    PRIMARY KEY (parent, lower));
CREATE TABLE tokens (
    name text PRIMARY KEY, sha256 text NOT NULL UNIQUE, created_ms bigint NOT NULL);
CREATE TABLE meta (key text PRIMARY KEY, value bigint NOT NULL);
INSERT INTO meta (key, value) VALUES
    ('horizon', 0), ('summary_mark', 0), ('summary_through', 0),
    ('summaries_horizon', 0), ('summaries_deleted_to', 0), ('stored_windows', 0), ('stored_sketches', 0),
    ('pruned_rollups', 0), ('pruned_summaries', 0), ('pruned_sketches', 0),
    ('pruned_bytes', 0), ('pruned_hours', 0), ('refused_windows', 0);
",
    // 2: closed days packed (postgres/packs.rs): a row per series and day, partitioned
    // by day; windows arriving for a closed day wait in `late_windows` for their pack;
    // `rollups` rows before `packs_through` are packed (their partition not dropped yet)
    // and read from the packs.
    "
CREATE TABLE window_packs (
    series_id bigint NOT NULL, day_start bigint NOT NULL, data bytea NOT NULL,
    PRIMARY KEY (series_id, day_start)) PARTITION BY RANGE (day_start);
CREATE TABLE late_windows (
    series_id bigint NOT NULL, window_start bigint NOT NULL, window_secs integer NOT NULL,
    expected integer NOT NULL, missing integer NOT NULL, count integer NOT NULL,
    min float8, max float8, mean float8, p50 float8, p95 float8, p99 float8,
    PRIMARY KEY (series_id, window_start));
INSERT INTO meta (key, value) VALUES ('packed_before', 0), ('packed_days', 0), ('packs_through', 0),
    ('removed_windows', 0), ('removed_sketches', 0);
",
    // 3: a day packed a few thousand series at a time: the series numbered below
    // `packing_below` of the day at `packs_through` are packed (0: no day half packed).
    "
INSERT INTO meta (key, value) VALUES ('packing_below', 0);
",
    // 4: batch keys forgotten past the windows' horizon (postgres/prune.rs): an agent's
    // sequences up to `forgotten_seq` are duplicates.
    "
ALTER TABLE agents ADD COLUMN forgotten_seq bigint NOT NULL DEFAULT 0;
CREATE INDEX batches_by_time ON batches (received_ms);
INSERT INTO meta (key, value) VALUES ('pruned_batch_keys', 0);
",
    // 5: people who log in to the pages, their sessions, and tokens' roles
    // (postgres/access.rs); the end of the latest window each agent shipped.
    "
ALTER TABLE tokens ADD COLUMN role text NOT NULL DEFAULT 'agent';
CREATE TABLE users (
    name text PRIMARY KEY, phc text NOT NULL, created_ms bigint NOT NULL, last_login_ms bigint);
CREATE TABLE sessions (
    sha256 text PRIMARY KEY, username text NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    expires_s bigint NOT NULL);
CREATE INDEX sessions_by_user ON sessions (username);
ALTER TABLE agents ADD COLUMN last_window_end bigint;
",
];

/// Brings the database up to the last migration.
pub(super) fn migrate(client: &mut Client) -> Result<(), StoreError> {
    let mut tx = client.transaction()?;
    locks::take(&mut tx, locks::MIGRATE)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version integer PRIMARY KEY, applied_ms bigint NOT NULL)",
    )?;
    let done: i32 = tx
        .query_one(
            "SELECT coalesce(max(version), 0) FROM schema_migrations",
            &[],
        )?
        .get(0);
    let known = MIGRATIONS.len() as i32;
    if done > known {
        return Err(StoreError::Other(format!(
            "the database is at schema version {done}, newer than this collector's {known}: \
             upgrade the collector"
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(done as usize) {
        tx.batch_execute(sql)?;
        tx.execute(
            "INSERT INTO schema_migrations VALUES ($1, $2)",
            &[&(i as i32 + 1), &vscout_service::telemetry::unix_now_ms()],
        )?;
    }
    tx.commit()?;
    Ok(())
}

/// The schema version of the database (tests and `/v1/stats` read it).
pub fn version(client: &mut Client) -> Result<i32, StoreError> {
    Ok(client
        .query_one(
            "SELECT coalesce(max(version), 0) FROM schema_migrations",
            &[],
        )?
        .get(0))
}
