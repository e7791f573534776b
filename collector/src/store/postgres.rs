//! The PostgreSQL store, for estates that outgrow one SQLite file and for several
//! collector processes behind one load balancer: every decision that must hold across
//! collectors is the database's (a batch's key in `batches`, series numbered by a unique
//! key, advisory locks around partitions and retention), so a process keeps only caches
//! that another writer cannot make wrong (series ids, partitions made).
//!
//! Three connections: the writer (ingest, tokens), the reader (the API and the
//! assessment, in read-only snapshots where a read spans statements) and retention's, so
//! that a long pass step never holds up ingest. Plain TCP: the database is expected on
//! loopback or a private network (see README, "Scale-out on PostgreSQL").

mod access;
mod ingest;
mod locks;
mod packs;
mod partitions;
mod prune;
mod read;
mod schema;
mod usage;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use postgres::{Client, NoTls};
use serde_json::Value;
use vscout_wire::batch::Batch;
use vscout_wire::inventory::{VcenterInventory, Vm};

use super::{
    Counts, DailyQuery, EntityFilter, EntityKind, IngestOutcome, MetricsQuery, MetricsRow,
    Principal, PruneStep, Retention, Role, SeriesUsage, Storage, StoreError, TokenInfo, UsageQuery,
    UserInfo, VmFilter,
};
use ingest::Writer;

pub use schema::version as schema_version;

/// Where the database is: a `postgresql://USER@HOST:PORT/DATABASE` URL (no password in
/// it) and the password, read from a file at start-up.
#[derive(Clone)]
pub struct PgTarget {
    pub url: String,
    pub password: Option<String>,
}

impl std::fmt::Debug for PgTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgTarget")
            .field("url", &self.url)
            .field("password", &self.password.as_ref().map(|_| "<from file>"))
            .finish()
    }
}

impl PgTarget {
    /// The URL, with the password in `password_file` (its first line), if given.
    pub fn new(url: &str, password_file: Option<&Path>) -> Result<Self, StoreError> {
        let password = match password_file {
            None => None,
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|e| {
                    StoreError::Other(format!(
                        "cannot read the PostgreSQL password file {}: {e}",
                        p.display()
                    ))
                })?;
                Some(text.lines().next().unwrap_or_default().to_owned())
            }
        };
        Ok(Self {
            url: url.to_owned(),
            password,
        })
    }

    /// A connection named `vscout-collector ROLE` in `pg_stat_activity`.
    fn connect(&self, role: &str) -> Result<Client, StoreError> {
        let mut cfg: postgres::Config = self.url.parse().map_err(|e| {
            StoreError::Other(format!("storage URL {:?} does not parse: {e}", self.url))
        })?;
        if let Some(p) = &self.password {
            cfg.password(p);
        }
        cfg.application_name(&format!("vscout-collector {role}"));
        cfg.connect_timeout(std::time::Duration::from_secs(10));
        cfg.connect(NoTls).map_err(|e| {
            StoreError::Other(format!("cannot connect to PostgreSQL at {}: {e}", self.url))
        })
    }
}

/// PostgreSQL storage.
pub struct PgStore {
    target: PgTarget,
    writer: Mutex<Writer>,
    reader: Mutex<Client>,
    retention: Mutex<Client>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore").finish_non_exhaustive()
    }
}

/// A value of `meta` (the horizons, the summaries' and packs' progress, counters).
fn meta(c: &mut impl postgres::GenericClient, key: &str) -> Result<i64, StoreError> {
    Ok(
        c.query_one("SELECT value FROM meta WHERE key = $1", &[&key])?
            .get(0),
    )
}

fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl PgStore {
    /// Connects, brings the schema up to date and reads the series numbered so far.
    pub fn open(target: &PgTarget) -> Result<Self, StoreError> {
        let mut client = target.connect("writer")?;
        schema::migrate(&mut client)?;
        let mut series = HashMap::new();
        for r in client.query(
            "SELECT id, vcenter, entity_id, counter, instance FROM series",
            &[],
        )? {
            let key = [r.get::<_, &str>(1), r.get(2), r.get(3), r.get(4)].join("\u{1f}");
            series.insert(key, r.get(0));
        }
        Ok(Self {
            target: target.clone(),
            writer: Mutex::new(Writer {
                client,
                series,
                parts: partitions::Known::default(),
            }),
            reader: Mutex::new(target.connect("reader")?),
            retention: Mutex::new(target.connect("retention")?),
        })
    }

    /// The writer, its connection made again if it was lost (its caches hold: series
    /// ids and partitions are the database's, not the connection's).
    fn writer(&self) -> Result<MutexGuard<'_, Writer>, StoreError> {
        let mut w = locked(&self.writer);
        if w.client.is_closed() {
            w.client = self.target.connect("writer")?;
        }
        Ok(w)
    }

    /// Runs `f` on the reader's connection (see `heal`).
    fn read<T>(
        &self,
        f: impl FnOnce(&mut Client) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        on(&self.reader, &self.target, "reader", f)
    }

    /// Runs `f` on the writer (see `heal`).
    fn write<T>(
        &self,
        f: impl FnOnce(&mut Writer) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut w = self.writer()?;
        let r = f(&mut w);
        heal(&mut w.client, &self.target, "writer", r)
    }

    /// Runs `f` on retention's connection (see `heal`).
    fn prune<T>(
        &self,
        f: impl FnOnce(&mut Client) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        on(&self.retention, &self.target, "retention", f)
    }
}

/// Runs `f` on `m`'s connection, made again first if it was lost (`live`) and at once
/// after a failure that shows it gone (`heal`).
fn on<T>(
    m: &Mutex<Client>,
    target: &PgTarget,
    role: &str,
    f: impl FnOnce(&mut Client) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let mut c = live(m, target, role)?;
    let r = f(&mut c);
    heal(&mut c, target, role, r)
}

/// After a request on `client` failed because the connection is gone, the connection
/// is made again at once. A server that ends a connection (a restart, an administrator)
/// says so in a last error that can arrive before the socket closes, while `is_closed`
/// does not know yet: without this the next request would fail on the dead connection
/// too. If the server cannot be reached now, the next request tries again.
fn heal<T>(
    client: &mut Client,
    target: &PgTarget,
    role: &str,
    r: Result<T, StoreError>,
) -> Result<T, StoreError> {
    if let Err(StoreError::Postgres(e)) = &r {
        if connection_lost(e) {
            if let Ok(fresh) = target.connect(role) {
                *client = fresh;
            }
        }
    }
    r
}

/// Whether `e` means the connection is gone: closed, an I/O error, or the server's
/// "operator intervention" (57P: shut down, terminated) or "connection exception" (08).
fn connection_lost(e: &postgres::Error) -> bool {
    let sqlstate = e.code().map(postgres::error::SqlState::code).unwrap_or("");
    e.is_closed()
        || sqlstate.starts_with("57P")
        || sqlstate.starts_with("08")
        || std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>())
}

/// `m`'s connection, made again first if it was lost (the server restarted, or the
/// network or an administrator cut it): the request that found it gone failed, the next
/// one reconnects; a collector runs for months through database restarts.
fn live<'a>(
    m: &'a Mutex<Client>,
    target: &PgTarget,
    role: &str,
) -> Result<MutexGuard<'a, Client>, StoreError> {
    let mut c = locked(m);
    if c.is_closed() {
        *c = target.connect(role)?;
    }
    Ok(c)
}

impl Storage for PgStore {
    fn ingest(
        &self,
        agent_id: &str,
        seq: u64,
        agent_version: &str,
        principal: &Principal,
        batch: &Batch,
    ) -> Result<IngestOutcome, StoreError> {
        self.write(|w| ingest::ingest(w, (agent_id, seq, agent_version), principal, batch))
    }

    fn vcenters(&self) -> Result<Vec<Value>, StoreError> {
        self.read(read::vcenters)
    }

    fn vms(&self, filter: &VmFilter) -> Result<Vec<Value>, StoreError> {
        self.read(|c| read::vms(c, filter))
    }

    fn entities(&self, kind: EntityKind, filter: &EntityFilter) -> Result<Vec<Value>, StoreError> {
        self.read(|c| read::entities(c, kind, filter))
    }

    fn metrics(
        &self,
        kind: EntityKind,
        id: &str,
        q: &MetricsQuery,
    ) -> Result<Option<Vec<MetricsRow>>, StoreError> {
        self.read(|c| read::metrics(c, kind, id, q))
    }

    fn daily(
        &self,
        kind: EntityKind,
        id: &str,
        q: &DailyQuery,
    ) -> Result<Option<Vec<Value>>, StoreError> {
        self.read(|c| read::daily(c, kind, id, q))
    }

    fn vm_usage(
        &self,
        q: &UsageQuery<'_>,
        each: &mut dyn FnMut(SeriesUsage),
    ) -> Result<(), StoreError> {
        self.read(|c| {
            // One snapshot: a pass summing up a day between the reads of summaries and
            // windows would have it counted twice or not at all.
            let mut tx = c
                .build_transaction()
                .isolation_level(postgres::IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()?;
            usage::vm_usage(&mut tx, q, each)?;
            tx.commit()?;
            Ok(())
        })
    }

    fn vm_records(
        &self,
        only: Option<(Option<&str>, &str)>,
        each: &mut dyn FnMut(&str, Vm),
    ) -> Result<(), StoreError> {
        self.read(|c| read::vm_records(c, only, each))
    }

    fn inventories(&self) -> Result<Vec<VcenterInventory>, StoreError> {
        self.read(read::inventories)
    }

    fn agents(&self, only: Option<&str>) -> Result<Vec<Value>, StoreError> {
        self.read(|c| read::agents(c, only))
    }

    fn counts(&self) -> Result<Counts, StoreError> {
        self.read(|c| {
            let row = c.query_one(
                "SELECT (SELECT count(*) FROM agents), (SELECT coalesce(sum(batches), 0)::int8 FROM agents),
                        (SELECT count(*) FROM vcenters), (SELECT count(*) FROM vms),
                        (SELECT count(*) FROM series),
                        (SELECT sum(CASE key WHEN 'stored_windows' THEN value ELSE -value END)::int8
                         FROM meta WHERE key IN ('stored_windows', 'removed_windows')),
                        (SELECT sum(CASE key WHEN 'stored_sketches' THEN value ELSE -value END)::int8
                         FROM meta WHERE key IN ('stored_sketches', 'removed_sketches')),
                        (SELECT coalesce(sum(duplicate_batches), 0)::int8 FROM agents),
                        (SELECT coalesce(sum(rows_ignored), 0)::int8 FROM agents)",
                &[],
            )?;
            let n = |i: usize| row.get::<_, i64>(i).max(0) as u64;
            Ok(Counts {
                agents: n(0),
                batches: n(1),
                vcenters: n(2),
                vms: n(3),
                series: n(4),
                rollups: n(5),
                daily: n(6),
                duplicate_batches: n(7),
                rows_ignored: n(8),
                pruned: prune::counted(c)?,
            })
        })
    }

    fn prune_step(
        &self,
        now_s: i64,
        r: &Retention,
        after: i64,
        series: usize,
    ) -> Result<PruneStep, StoreError> {
        self.prune(|c| {
            if series > 0 {
                partitions::prepare_pass(c, now_s)?;
            }
            let mut tx = c.transaction()?;
            let step = if series == 0 {
                // Only the horizons, before the first request.
                prune::raise_horizons(&mut tx, now_s, r, false)?;
                PruneStep::default()
            } else {
                prune::step(&mut tx, now_s, r, after, series)?
            };
            tx.commit()?;
            Ok(step)
        })
    }

    fn add_token(&self, name: &str, sha256_hex: &str, role: Role) -> Result<(), StoreError> {
        self.write(|w| access::add_token(&mut w.client, name, sha256_hex, role))
    }

    fn token(&self, sha256_hex: &str) -> Result<Option<(String, Role)>, StoreError> {
        self.read(|c| access::token(c, sha256_hex))
    }

    fn add_user(&self, name: &str, phc: &str) -> Result<(), StoreError> {
        self.write(|w| access::add_user(&mut w.client, name, phc))
    }

    fn user_hash(&self, name: &str) -> Result<Option<String>, StoreError> {
        self.read(|c| access::user_hash(c, name))
    }

    fn remove_user(&self, name: &str) -> Result<bool, StoreError> {
        self.write(|w| access::remove_user(&mut w.client, name))
    }

    fn users(&self) -> Result<Vec<UserInfo>, StoreError> {
        self.read(access::users)
    }

    fn add_session(&self, sha256_hex: &str, user: &str, expires_s: i64) -> Result<(), StoreError> {
        self.write(|w| access::add_session(&mut w.client, sha256_hex, user, expires_s))
    }

    fn session_user(&self, sha256_hex: &str, now_s: i64) -> Result<Option<String>, StoreError> {
        self.read(|c| access::session_user(c, sha256_hex, now_s))
    }

    fn end_session(&self, sha256_hex: &str) -> Result<(), StoreError> {
        self.write(|w| access::end_session(&mut w.client, sha256_hex))
    }

    fn token_count(&self) -> Result<u64, StoreError> {
        let n: i64 = self.read(|c| Ok(c.query_one("SELECT count(*) FROM tokens", &[])?.get(0)))?;
        Ok(n as u64)
    }

    fn tokens(&self) -> Result<Vec<TokenInfo>, StoreError> {
        self.read(access::tokens)
    }

    fn revoke_token(&self, name: &str) -> Result<bool, StoreError> {
        self.write(|w| {
            Ok(w.client
                .execute("DELETE FROM tokens WHERE name = $1", &[&name])?
                == 1)
        })
    }

    fn first_token_needed(&self) -> Result<bool, StoreError> {
        self.read(|c| {
            Ok(c.query_one(
                "SELECT NOT EXISTS (SELECT 1 FROM tokens)
                    AND NOT EXISTS (SELECT 1 FROM meta WHERE key = 'tokens_made')",
                &[],
            )?
            .get(0))
        })
    }
}
