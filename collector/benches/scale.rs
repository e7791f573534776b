//! The collector's store at estate scale: a load generator replays agents' batches over
//! simulated days (time compressed), while a reader asks for VMs' 30-day metrics and the
//! maintenance pass (retention and packing) runs at each simulated day's start, as the
//! collector runs them. Reported: rollups stored per CPU-second of the ingest thread,
//! the maintenance pass's CPU and longest step, the database's bytes per VM-day and
//! VM-month (file and WAL after a checkpoint, every table), the p95 latency of one
//! counter's and of all counters' 30-day metrics, a VM's 30-day page as the server renders
//! it (issue 17), and the assessment's read of the store.
//!
//! Every VM has the agent's default counters with 2 disks and 1 NIC as a real vCenter
//! reports them: 12 aggregate series, 6 `virtualDisk` counters × 2 disks, network in and
//! out as the aggregate and the NIC: 28 series. Each window's statistics are computed
//! from 15 integer samples (percentages in hundredths, as vCenter sends them): a level
//! per VM, a daily cycle and ±25 % noise, some counters constant or counting up as real
//! ones do. At each day's end the agent's daily sketch of every series is sent too.
//!
//! On PostgreSQL: `scripts/bench-postgres scale` (a throwaway server from
//! `scripts/pg-scratch`, named to the bench by `VSCOUT_BENCH_STORAGE` and
//! `VSCOUT_BENCH_PG_PASSWORD_FILE`); ingest's CPU is then the collector thread's and the
//! server's (every PostgreSQL process, the reader's and retention's queries included).
//!
//! Run: `cargo bench -p vscout-collector --bench scale`. Size by `VSCOUT_BENCH_AGENTS`
//! (1), `VSCOUT_BENCH_VMS_PER_AGENT` (200) and `VSCOUT_BENCH_DAYS` (30): 200 VMs × 30 days
//! are 48 million windows, about 15 minutes on 2 cores. An agent of 200 VMs fills its
//! batches (5,000 rollups) as a large agent does; agents of a few VMs send small batches
//! and the collector then spends more per rollup on each transaction. Bytes per VM-day
//! and rollups per CPU-second depend little on the estate's size (the 20 agents
//! × 5,000 VMs is 500 times this run's windows).

mod support;

use support::Rng;

use std::path::Path;
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;

use vscout_collector::assess::settings::{RawAssessment, Setup};
use vscout_collector::store::postgres::{PgStore, PgTarget};
use vscout_collector::store::retention::STEP_SERIES;
use vscout_collector::store::sqlite::SqliteStore;
use vscout_collector::store::{
    EntityKind, MetricsQuery, Principal, Retention, Storage, UsageQuery, USAGE_COUNTERS,
};
use vscout_collector::web::vm_html;
use vscout_wire::batch::{Batch, Record, RollupSetBuilder, BATCH_VERSION, ROLLUPS_PER_BATCH};
use vscout_wire::inventory::{Disk, Nic, VcenterInventory, Vm};
use vscout_wire::rollup::{DailySummary, Rollup, WindowStats, ROLLUP_SCHEMA_VERSION};
use vscout_wire::sketch::Sketch;

const DAY: i64 = 86_400;
/// Midnight UTC, 2026-11-01: the first simulated day.
const T0: i64 = 1_793_491_200;

/// How a counter's samples move.
#[derive(Clone, Copy)]
enum Shape {
    /// Around a level, with the day's cycle and noise.
    Busy(f64),
    /// The same all day (memory granted, swapped).
    Flat(i64),
    /// Counting up by the interval (uptime).
    Counting,
}

/// (counter, instance, unit, shape) of a VM's 28 series.
const SERIES: [(&str, &str, &str, Shape); 28] = {
    use Shape::*;
    [
        ("cpu.usage.average", "", "percent", Busy(2_500.0)),
        ("cpu.usagemhz.average", "", "megaHertz", Busy(900.0)),
        ("cpu.ready.summation", "", "millisecond", Busy(120.0)),
        ("cpu.demand.average", "", "megaHertz", Busy(950.0)),
        ("mem.usage.average", "", "percent", Busy(1_800.0)),
        ("mem.consumed.average", "", "kiloBytes", Busy(3_500_000.0)),
        ("mem.active.average", "", "kiloBytes", Busy(900_000.0)),
        ("mem.granted.average", "", "kiloBytes", Flat(4_194_304)),
        ("mem.swapped.average", "", "kiloBytes", Flat(0)),
        ("mem.vmmemctl.average", "", "kiloBytes", Flat(0)),
        (
            "disk.usage.average",
            "",
            "kiloBytesPerSecond",
            Busy(9_000.0),
        ),
        ("sys.uptime.latest", "", "second", Counting),
        (
            "virtualDisk.read.average",
            "scsi0:0",
            "kiloBytesPerSecond",
            Busy(4_000.0),
        ),
        (
            "virtualDisk.write.average",
            "scsi0:0",
            "kiloBytesPerSecond",
            Busy(3_000.0),
        ),
        (
            "virtualDisk.numberReadAveraged.average",
            "scsi0:0",
            "number",
            Busy(150.0),
        ),
        (
            "virtualDisk.numberWriteAveraged.average",
            "scsi0:0",
            "number",
            Busy(100.0),
        ),
        (
            "virtualDisk.totalReadLatency.average",
            "scsi0:0",
            "millisecond",
            Busy(3.0),
        ),
        (
            "virtualDisk.totalWriteLatency.average",
            "scsi0:0",
            "millisecond",
            Busy(5.0),
        ),
        (
            "virtualDisk.read.average",
            "scsi0:1",
            "kiloBytesPerSecond",
            Busy(8_000.0),
        ),
        (
            "virtualDisk.write.average",
            "scsi0:1",
            "kiloBytesPerSecond",
            Busy(6_000.0),
        ),
        (
            "virtualDisk.numberReadAveraged.average",
            "scsi0:1",
            "number",
            Busy(300.0),
        ),
        (
            "virtualDisk.numberWriteAveraged.average",
            "scsi0:1",
            "number",
            Busy(200.0),
        ),
        (
            "virtualDisk.totalReadLatency.average",
            "scsi0:1",
            "millisecond",
            Busy(4.0),
        ),
        (
            "virtualDisk.totalWriteLatency.average",
            "scsi0:1",
            "millisecond",
            Busy(6.0),
        ),
        (
            "net.received.average",
            "",
            "kiloBytesPerSecond",
            Busy(2_000.0),
        ),
        (
            "net.transmitted.average",
            "",
            "kiloBytesPerSecond",
            Busy(3_000.0),
        ),
        (
            "net.received.average",
            "4000",
            "kiloBytesPerSecond",
            Busy(2_000.0),
        ),
        (
            "net.transmitted.average",
            "4000",
            "kiloBytesPerSecond",
            Busy(3_000.0),
        ),
    ]
};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The statistics the agent computes of a window's samples (exact, nearest rank).
fn stats(values: &mut [f64]) -> WindowStats {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    let rank = |p: f64| values[((p / 100.0 * n as f64).ceil() as usize).clamp(1, n) - 1];
    WindowStats {
        count: n as u32,
        min: values[0],
        max: values[n - 1],
        mean: values.iter().sum::<f64>() / n as f64,
        p50: rank(50.0),
        p95: rank(95.0),
        p99: rank(99.0),
    }
}

/// One agent's estate: its VMs' levels and the day's sketches being filled.
struct Agent {
    vcenter: String,
    levels: Vec<f64>,
    sketches: Vec<Sketch>,
    seq: u64,
    rng: Rng,
}

impl Agent {
    fn new(a: usize, vms: usize) -> Self {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (a as u64 + 1));
        let levels = (0..vms).map(|_| 0.3 + 1.4 * rng.next()).collect();
        Agent {
            vcenter: format!("vc-{a}"),
            levels,
            sketches: vec![Sketch::default(); vms * SERIES.len()],
            seq: 0,
            rng,
        }
    }

    /// The rollups of the window starting at `start`, every VM and series.
    fn window(&mut self, start: i64) -> Vec<Rollup> {
        let hour = (start.rem_euclid(DAY) / 3600) as f64;
        let cycle = 1.0 + 0.5 * ((hour - 8.0) / 24.0 * std::f64::consts::TAU).sin();
        let mut out = Vec::with_capacity(self.levels.len() * SERIES.len());
        let mut samples = [0f64; 15];
        for (v, level) in self.levels.iter().enumerate() {
            for (s, (counter, instance, unit, shape)) in SERIES.iter().enumerate() {
                for (i, x) in samples.iter_mut().enumerate() {
                    let raw = match shape {
                        Shape::Busy(base) => {
                            let noise = 0.75 + 0.5 * self.rng.next();
                            (base * level * cycle * noise).round()
                        }
                        Shape::Flat(f) => *f as f64,
                        Shape::Counting => (start - T0 + 20 * (i as i64 + 1) + 86_400) as f64,
                    };
                    *x = if *unit == "percent" { raw / 100.0 } else { raw };
                    self.sketches[v * SERIES.len() + s].add(*x);
                }
                out.push(Rollup {
                    schema_version: ROLLUP_SCHEMA_VERSION,
                    vcenter: self.vcenter.as_str().into(),
                    entity_type: "VirtualMachine".into(),
                    entity_id: format!("vm-{v}").into(),
                    counter: (*counter).into(),
                    instance: (*instance).into(),
                    unit: (*unit).into(),
                    stats_type: "rate".into(),
                    window_start: start,
                    window_secs: 300,
                    expected_samples: 15,
                    missing_samples: 0,
                    stats: Some(stats(&mut samples)),
                });
            }
        }
        out
    }

    /// The day's sketches of every series, as the agent sends them when a day closes.
    fn days_end(&mut self, day: i64) -> Vec<Record> {
        let mut out = Vec::new();
        for (i, sketch) in self.sketches.iter_mut().enumerate() {
            let (counter, instance, unit, _) = SERIES[i % SERIES.len()];
            let sketch = std::mem::take(sketch);
            out.push(Record::Daily(DailySummary {
                schema_version: ROLLUP_SCHEMA_VERSION,
                vcenter: self.vcenter.as_str().into(),
                entity_type: "VirtualMachine".into(),
                entity_id: format!("vm-{}", i / SERIES.len()).into(),
                counter: counter.into(),
                instance: instance.into(),
                unit: unit.into(),
                stats_type: "rate".into(),
                day_start: day,
                samples: sketch.count(),
                expected_samples: 4320,
                p50: sketch.quantile(0.5),
                p95: sketch.quantile(0.95),
                p99: sketch.quantile(0.99),
                max: sketch.quantile(1.0),
                sketch,
            }));
        }
        out
    }

    /// Batches of at most the agent's size.
    fn batches(&mut self, rollups: Vec<Rollup>, more: Vec<Record>) -> Vec<(String, u64, Batch)> {
        let mut out = Vec::new();
        let mut push = |records, seq: &mut u64| {
            *seq += 1;
            let agent = format!("agent-{}", self.vcenter);
            out.push((
                agent,
                *seq,
                Batch {
                    batch_version: BATCH_VERSION,
                    created_ms: 0,
                    records,
                },
            ));
        };
        let mut set = RollupSetBuilder::default();
        for r in rollups {
            set.push(r);
            if set.len() == ROLLUPS_PER_BATCH {
                push(vec![Record::Rollups(set.take())], &mut self.seq);
            }
        }
        if !set.is_empty() {
            push(vec![Record::Rollups(set.take())], &mut self.seq);
        }
        for chunk in more.chunks(ROLLUPS_PER_BATCH) {
            push(chunk.to_vec(), &mut self.seq);
        }
        out
    }
}

/// CPU seconds of the calling thread.
fn thread_cpu_secs() -> f64 {
    support::cpu_secs("/proc/thread-self/stat")
}

fn p95_ms(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[((v.len() as f64 * 0.95).ceil() as usize).clamp(1, v.len()) - 1] * 1000.0
}

/// What arrives on the ingest thread: a batch, or a simulated day's start (run the
/// maintenance pass as of then).
enum Work {
    Batch(String, u64, Batch),
    DayStarts(i64),
}

#[derive(Default)]
struct Ingested {
    rollups: u64,
    cpu_s: f64,
    /// The database server's, on PostgreSQL: all of it, and the writer's backend's.
    server_cpu_s: f64,
    writer_cpu_s: f64,
    wall_s: f64,
}

fn ingest_thread(store: Arc<dyn Storage>, rx: Receiver<Work>) -> Ingested {
    let who = Principal::Token("bench".into());
    let before = thread_cpu_secs();
    let server_before = support::postgres_cpu_secs();
    let writer_stat = writer_backend_stat();
    let writer_before = writer_stat.as_deref().map_or(0.0, support::cpu_secs);
    // A benchmark measures real time.
    #[allow(clippy::disallowed_methods)]
    let t = std::time::Instant::now();
    let mut out = Ingested::default();
    let mut maintenance = Vec::new();
    for work in rx {
        match work {
            Work::Batch(agent, seq, b) => {
                let n: usize = b
                    .records
                    .iter()
                    .map(|r| match r {
                        Record::Rollups(s) => s.rows.len(),
                        _ => 0,
                    })
                    .sum();
                store
                    .ingest(&agent, seq, "bench", &who, &b)
                    .expect("ingest");
                out.rollups += n as u64;
            }
            Work::DayStarts(day) => {
                // The collector's pass runs beside ingest; here on a thread of its own
                // too, so ingest's CPU is its own.
                let s = store.clone();
                maintenance.push(std::thread::spawn(move || maintain(s.as_ref(), day + 3600)));
            }
        }
    }
    out.cpu_s = thread_cpu_secs() - before;
    out.server_cpu_s = support::postgres_cpu_secs() - server_before;
    out.writer_cpu_s = writer_stat.as_deref().map_or(0.0, support::cpu_secs) - writer_before;
    out.wall_s = t.elapsed().as_secs_f64();
    let mut cpu = 0.0;
    let mut longest = 0f64;
    for m in maintenance {
        let (c, l) = m.join().expect("maintenance");
        cpu += c;
        longest = longest.max(l);
    }
    println!("maintenance (retention and packing, a pass a day): MEASURED cpu_s={cpu:.1} longest_step_ms={:.0}", longest * 1000.0);
    out
}

/// One maintenance pass step by step: its CPU seconds and longest step.
fn maintain(store: &dyn Storage, now: i64) -> (f64, f64) {
    let before = thread_cpu_secs();
    let r = Retention::default();
    let (mut after, mut longest) = (0, 0f64);
    loop {
        #[allow(clippy::disallowed_methods)]
        let t = std::time::Instant::now();
        let step = store
            .prune_step(now, &r, after, STEP_SERIES)
            .expect("maintenance step");
        longest = longest.max(t.elapsed().as_secs_f64());
        match step.next {
            Some(n) => after = n,
            None => return (thread_cpu_secs() - before, longest),
        }
    }
}

/// Seconds to read a VM's metrics from `from_s` on (of one counter, or all).
fn metrics_secs(store: &dyn Storage, id: &str, counter: Option<&str>, from_s: i64) -> f64 {
    let q = MetricsQuery {
        counter: counter.map(str::to_owned),
        from: Some(from_s),
        ..MetricsQuery::default()
    };
    #[allow(clippy::disallowed_methods)]
    let t = std::time::Instant::now();
    let rows = store.metrics(EntityKind::Vm, id, &q).expect("metrics");
    let secs = t.elapsed().as_secs_f64();
    std::hint::black_box(rows);
    secs
}

/// An agent's vCenter as its inventory lists it: its VMs with 2 disks and a NIC.
fn inventory_of(a: usize, vms: usize) -> VcenterInventory {
    let disk = |unit: i32| Disk {
        key: 2000 + unit,
        label: format!("Hard disk {}", unit + 1).into(),
        capacity_bytes: Some(100 << 30),
        controller: "SCSI controller 0".into(),
        unit_number: Some(unit),
        ..Disk::default()
    };
    VcenterInventory {
        name: format!("vc-{a}").into(),
        url: "https://vc/sdk".into(),
        collected_at: "2026-01-01T00:00:00Z".into(),
        vms: (0..vms)
            .map(|v| Vm {
                id: format!("vm-{v}").into(),
                name: format!("vm-{v}").into(),
                power_state: Some("poweredOn".into()),
                guest_id: Some("ubuntu64Guest".into()),
                num_cpu: Some(4),
                memory_bytes: Some(16 << 30),
                datacenter: "dc".into(),
                cluster: "cluster".into(),
                host: "host".into(),
                disks: vec![disk(0), disk(1)],
                nics: vec![Nic {
                    key: 4000,
                    label: "Network adapter 1".into(),
                    ..Nic::default()
                }],
                ..Vm::default()
            })
            .collect(),
        ..VcenterInventory::default()
    }
}

/// A VM of the fleet, at random: its API id.
fn random_vm(rng: &mut Rng, agents: usize, vms: usize) -> String {
    format!(
        "vc-{}:vm-{}",
        (rng.next() * agents as f64) as usize,
        (rng.next() * vms as f64) as usize
    )
}

/// Reads VMs' metrics over the last 30 days while ingest runs: (one counter, all).
fn reader(
    store: Arc<dyn Storage>,
    agents: usize,
    vms: usize,
    clock: Arc<std::sync::atomic::AtomicI64>,
) -> (Vec<f64>, Vec<f64>) {
    let mut rng = Rng(42);
    let (mut one, mut all) = (Vec::new(), Vec::new());
    while Arc::strong_count(&clock) > 1 {
        let now = clock.load(std::sync::atomic::Ordering::Relaxed);
        let id = random_vm(&mut rng, agents, vms);
        for (counter, out) in [(Some("cpu.usage.average"), &mut one), (None, &mut all)] {
            out.push(metrics_secs(store.as_ref(), &id, counter, now - 30 * DAY));
        }
        // A reader asks now and then, as people do; not a wait for a condition.
        #[allow(clippy::disallowed_methods)]
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    (one, all)
}

/// The database's bytes on disk (file and WAL, after a checkpoint), and what of them is
/// free pages, packed windows, the agents' daily sketches and the day summaries' peaks.
fn db_bytes(db: &Path) -> [u64; 5] {
    let conn = rusqlite::Connection::open(db).expect("open");
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .expect("checkpoint");
    let on_disk = ["", "-wal"]
        .iter()
        .filter_map(|s| std::fs::metadata(format!("{}{s}", db.display())).ok())
        .map(|m| m.len())
        .sum();
    let one = |sql: &str| conn.query_row(sql, [], |r| r.get::<_, i64>(0)).expect(sql) as u64;
    [
        on_disk,
        one("SELECT freelist_count * page_size FROM pragma_freelist_count, pragma_page_size"),
        one("SELECT coalesce(sum(length(data)), 0) FROM window_packs"),
        one("SELECT coalesce(sum(length(sketch)), 0) FROM daily"),
        one("SELECT coalesce(sum(length(peaks)), 0) FROM window_days"),
    ]
}

/// The PostgreSQL database's bytes (after a VACUUM), and of them each partitioned
/// table's: rollups, packed windows, hourly summaries, day summaries, daily sketches.
fn pg_bytes(target: &PgTarget) -> [u64; 6] {
    let mut c = pg_client(target);
    c.batch_execute("VACUUM").expect("vacuum");
    let one = |c: &mut postgres::Client, sql: &str| {
        c.query_one(sql, &[]).expect(sql).get::<_, i64>(0) as u64
    };
    let table = |c: &mut postgres::Client, t: &str| {
        one(c, &format!(
            "SELECT coalesce(sum(pg_total_relation_size(name::regclass)), 0)::int8 FROM partitions WHERE parent = '{t}'"
        ))
    };
    [
        one(&mut c, "SELECT pg_database_size(current_database())"),
        table(&mut c, "rollups"),
        table(&mut c, "window_packs"),
        table(&mut c, "rollup_hours"),
        table(&mut c, "window_days"),
        table(&mut c, "daily"),
    ]
}

/// The `/proc` stat file of the PostgreSQL backend serving the store's writer
/// connection (named `vscout-collector writer`), on PostgreSQL.
fn writer_backend_stat() -> Option<String> {
    let Db::Postgres(t) = Db::from_env(Path::new("/nonexistent")) else {
        return None;
    };
    let mut c = pg_client(&t);
    let pid: i32 = c
        .query_one(
            "SELECT pid FROM pg_stat_activity WHERE application_name = 'vscout-collector writer'",
            &[],
        )
        .expect("the writer's backend")
        .get(0);
    Some(format!("/proc/{pid}/stat"))
}

fn pg_client(target: &PgTarget) -> postgres::Client {
    let mut cfg: postgres::Config = target.url.parse().expect("url");
    if let Some(p) = &target.password {
        cfg.password(p);
    }
    cfg.connect(postgres::NoTls).expect("connect")
}

/// The store the bench fills: SQLite in a temporary directory, or the PostgreSQL database
/// `VSCOUT_BENCH_STORAGE` names.
enum Db {
    Sqlite(std::path::PathBuf),
    Postgres(PgTarget),
}

impl Db {
    fn from_env(dir: &Path) -> Db {
        match std::env::var("VSCOUT_BENCH_STORAGE") {
            Ok(url) if url.starts_with("postgres") => {
                let pw =
                    std::env::var_os("VSCOUT_BENCH_PG_PASSWORD_FILE").map(std::path::PathBuf::from);
                Db::Postgres(PgTarget::new(&url, pw.as_deref()).expect("password file"))
            }
            _ => Db::Sqlite(dir.join("collector.db")),
        }
    }

    fn open(&self) -> Arc<dyn Storage> {
        match self {
            Db::Sqlite(p) => Arc::new(SqliteStore::open(p).expect("open")),
            Db::Postgres(t) => Arc::new(PgStore::open(t).expect("open")),
        }
    }

    /// The size line of the report.
    fn report(&self, vm_days: f64) {
        let per = |b: u64| b as f64 / vm_days;
        match self {
            Db::Sqlite(db) => {
                let [bytes, free, packs, sketches, peaks] = db_bytes(db);
                println!(
                    "database (sqlite): MEASURED bytes={bytes} bytes_per_vm_day={:.0} mb_per_vm_month={:.2} (per VM-day: free pages {:.0}, packed windows {:.0}, daily sketches {:.0}, day summaries' peaks {:.0})",
                    per(bytes), per(bytes) * 30.0 / 1e6, per(free), per(packs), per(sketches), per(peaks),
                );
            }
            Db::Postgres(t) => {
                let [bytes, rollups, packs, hours, days, sketches] = pg_bytes(t);
                println!(
                    "database (postgresql): MEASURED bytes={bytes} bytes_per_vm_day={:.0} mb_per_vm_month={:.2} (per VM-day: window rows {:.0}, packed windows {:.0}, hours {:.0}, day summaries {:.0}, daily sketches {:.0})",
                    per(bytes), per(bytes) * 30.0 / 1e6, per(rollups), per(packs), per(hours), per(days), per(sketches),
                );
            }
        }
    }
}

fn main() {
    let (agents, vms, days) = (
        env("VSCOUT_BENCH_AGENTS", 1),
        env("VSCOUT_BENCH_VMS_PER_AGENT", 200),
        env("VSCOUT_BENCH_DAYS", 30) as i64,
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::from_env(dir.path());
    let store = db.open();
    let (tx, rx) = sync_channel::<Work>(8);
    let s = store.clone();
    let ingest = std::thread::spawn(move || ingest_thread(s, rx));
    let clock = Arc::new(std::sync::atomic::AtomicI64::new(T0));
    let (s, c) = (store.clone(), clock.clone());
    let reading = std::thread::spawn(move || reader(s, agents, vms, c));
    let mut fleet: Vec<Agent> = (0..agents).map(|a| Agent::new(a, vms)).collect();
    for day in 0..days {
        let day_start = T0 + day * DAY;
        if day > 0 {
            tx.send(Work::DayStarts(day_start)).expect("send");
        }
        for w in 0..288 {
            let start = day_start + w * 300;
            clock.store(start, std::sync::atomic::Ordering::Relaxed);
            for agent in &mut fleet {
                let rollups = agent.window(start);
                let more = if w == 287 {
                    agent.days_end(day_start)
                } else {
                    Vec::new()
                };
                for (a, seq, b) in agent.batches(rollups, more) {
                    tx.send(Work::Batch(a, seq, b)).expect("send");
                }
            }
        }
    }
    tx.send(Work::DayStarts(T0 + days * DAY)).expect("send");
    drop(tx);
    drop(clock);
    let done = ingest.join().expect("ingest");
    let (one, all) = reading.join().expect("reader");
    let vm_days = (agents * vms) as f64 * days as f64;
    println!(
        "{agents} agents × {vms} VMs × {days} days, 28 series a VM: MEASURED rollups={} ingest_cpu_s={:.1} writer_backend_cpu_s={:.1} wall_s={:.0} rollups_per_cpu_s={:.0}",
        done.rollups,
        done.cpu_s,
        done.writer_cpu_s,
        done.wall_s,
        done.rollups as f64 / (done.cpu_s + done.writer_cpu_s)
    );
    if done.server_cpu_s > 0.0 {
        println!(
            "postgresql: MEASURED server_cpu_s={:.1} (every process: the writer's, the reader's and retention's backends, WAL and background writers, autovacuum)",
            done.server_cpu_s
        );
    }
    db.report(vm_days);
    println!(
        "a VM's 30-day metrics during ingest: MEASURED one_counter_p95_ms={:.1} all_counters_p95_ms={:.1} reads={}",
        p95_ms(one),
        p95_ms(all.clone()),
        all.len()
    );
    // The same reads once ingest is over: what the read costs without the machine's
    // two cores taken by ingest and the pass.
    let (mut rng, mut idle) = (Rng(7), Vec::new());
    for _ in 0..20 {
        let id = random_vm(&mut rng, agents, vms);
        idle.push(metrics_secs(
            store.as_ref(),
            &id,
            None,
            T0 + (days - 30) * DAY,
        ));
    }
    println!(
        "a VM's 30-day metrics, every counter, after ingest: MEASURED p95_ms={:.1} reads={}",
        p95_ms(idle.clone()),
        idle.len()
    );
    // Issue 17: a VM's page over 30 days (inventory, five charts, the assessment of both
    // clouds) as the server renders it. The load sends no inventory: the VMs' records
    // are sent first.
    let who = Principal::Token("bench".into());
    for (a, agent) in fleet.iter_mut().enumerate() {
        agent.seq += 1;
        let batch = Batch {
            batch_version: BATCH_VERSION,
            created_ms: 0,
            records: vec![Record::Inventory(Box::new(inventory_of(a, vms)))],
        };
        store
            .ingest(
                &format!("agent-{}", agent.vcenter),
                agent.seq,
                "bench",
                &who,
                &batch,
            )
            .expect("inventory");
    }
    let setup = Setup::load(RawAssessment::default(), None).expect("setup");
    let mut page = Vec::new();
    for _ in 0..20 {
        let id = random_vm(&mut rng, agents, vms);
        // A benchmark measures real time.
        #[allow(clippy::disallowed_methods)]
        let t = std::time::Instant::now();
        let html = vm_html(store.as_ref(), &setup, &id, 30, T0 + days * DAY)
            .expect("page")
            .expect("the VM is in the inventory");
        page.push(t.elapsed().as_secs_f64());
        assert!(html.contains("data-points"));
    }
    println!(
        "a VM's page, 30 days (inventory, 5 charts, both clouds' assessment): MEASURED p95_ms={:.1} pages={}",
        p95_ms(page.clone()),
        page.len()
    );
    // What the assessment reads of the store: every VM's usage over the 30 days.
    let before = thread_cpu_secs();
    let mut series = 0;
    let q = UsageQuery {
        counters: &USAGE_COUNTERS,
        from_s: T0 + days * DAY - 30 * DAY,
        to_s: T0 + days * DAY,
        samples: false,
        vm: None,
    };
    store.vm_usage(&q, &mut |_| series += 1).expect("usage");
    println!(
        "the assessment's read of {} VMs (usage, 30 days): MEASURED cpu_s={:.2} series={series}",
        agents * vms,
        thread_cpu_secs() - before,
    );
}
