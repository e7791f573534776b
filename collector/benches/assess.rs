//! Assessing and exporting 10,000 VMs over 30 days of 5-minute windows: CPU seconds and
//! peak RSS of the assessment (both clouds, the default settings), measured in a process
//! of its own so that making the data does not count.
//!
//! The store is synthesised as ingest leaves it: for each VM the 15 series the
//! assessment reads from a real vCenter with the default counters, 2 disks and 1 NIC
//! (CPU, memory active and consumed, 4 `virtualDisk` counters per disk, network in and
//! out as the aggregate and the NIC's instance); 29 closed days summarised in
//! `window_days` (a sketch of each day's 288 window peaks), the open day's row up to its
//! open hour (`VSCOUT_BENCH_OPEN_HOURS` closed hours, default 23: the most there are) and
//! that hour's 12 windows as rollup rows, which the assessment reads one by one. The
//! rollup rows of closed hours and days are not made: nothing reads them.
//! Then the fleet's workbook (`export`, xlsx) from the same store: CPU and wall seconds,
//! peak RSS and the file's size; every VM with 2 partitions and every fourth with a
//! snapshot, so every inventory tab has rows. Last, a retention pass forty days on
//! (every window goes): its time and its longest step, which is what ingest waits for.
//! Before it, the assessment three times while another thread ingests the next windows
//! of every series (its latency under ingest).
//! The pages (issue 17): the estate's build for the VM list and the server's time for a
//! page of it.
//! Run: `cargo bench -p vscout-collector --bench assess` (`VSCOUT_BENCH_VMS` to change
//! the estate's size, `VSCOUT_BENCH_RUNS=pages,export` for some of the runs).

mod support;

use support::Rng;

use std::path::Path;
use std::process::Command;

use rusqlite::{params, Connection};
use vscout_collector::assess::catalog::Catalog;
use vscout_collector::assess::estate::assess;
use vscout_collector::assess::settings::{Params, RawAssessment, Settings, Setup};
use vscout_collector::export::{export, Format};
use vscout_collector::store::retention::STEP_SERIES;
use vscout_collector::store::sqlite::SqliteStore;
use vscout_collector::store::{Principal, Retention, Storage};
use vscout_collector::web::{vm_list_html, Fleet};
use vscout_wire::batch::{Batch, Record, RollupSetBuilder, BATCH_VERSION, ROLLUPS_PER_BATCH};
use vscout_wire::inventory::{Disk, Nic, Partition, Snapshot, Vm};
use vscout_wire::rollup::Rollup;
use vscout_wire::sketch::Sketch;

const DAY: i64 = 86_400;
/// Midnight UTC, 2026-12-01: the open day's start.
const TODAY: i64 = 1_796_083_200;
const GIB: u64 = 1 << 30;

/// (counter, instance, typical peak) of every series a VM has.
const SERIES: [(&str, &str, f64); 15] = [
    ("cpu.usage.average", "", 40.0),
    ("mem.usage.average", "", 30.0),
    ("mem.consumed.average", "", 4_000_000.0),
    ("virtualDisk.numberReadAveraged.average", "scsi0:0", 200.0),
    ("virtualDisk.numberWriteAveraged.average", "scsi0:0", 150.0),
    ("virtualDisk.read.average", "scsi0:0", 8_000.0),
    ("virtualDisk.write.average", "scsi0:0", 6_000.0),
    ("virtualDisk.numberReadAveraged.average", "scsi0:1", 400.0),
    ("virtualDisk.numberWriteAveraged.average", "scsi0:1", 300.0),
    ("virtualDisk.read.average", "scsi0:1", 20_000.0),
    ("virtualDisk.write.average", "scsi0:1", 12_000.0),
    ("net.received.average", "", 2_000.0),
    ("net.transmitted.average", "", 3_000.0),
    ("net.received.average", "4000", 2_000.0),
    ("net.transmitted.average", "4000", 3_000.0),
];

fn vm(i: usize) -> Vm {
    let guests = [
        "ubuntu64Guest",
        "rhel8_64Guest",
        "windows2019srv_64Guest",
        "sles15_64Guest",
    ];
    let disk = |key: i32, unit: i32, gib: u64| Disk {
        key,
        label: format!("Hard disk {}", unit + 1).into(),
        capacity_bytes: Some(gib * GIB),
        controller: "SCSI controller 0".into(),
        controller_type: "ParaVirtualSCSIController".into(),
        unit_number: Some(unit),
        ..Disk::default()
    };
    Vm {
        id: format!("vm-{i}").into(),
        name: format!("app-{i:05}").into(),
        num_cpu: Some([2, 4, 8, 16][i % 4]),
        memory_bytes: Some([4, 8, 16, 32, 64][i % 5] * GIB),
        guest_id: Some(guests[i % guests.len()].into()),
        firmware: Some(if i.is_multiple_of(7) { "efi" } else { "bios" }.into()),
        datacenter: format!("DC{}", i % 2).into(),
        cluster: format!("cluster-{}", i % 10).into(),
        power_state: Some("poweredOn".into()),
        disks: vec![
            disk(2000, 0, 60),
            disk(2001, 1, [100, 250, 500, 1000][i % 4]),
        ],
        nics: vec![Nic {
            key: 4000,
            mac: Some(
                format!(
                    "00:50:56:{:02x}:{:02x}:{:02x}",
                    i >> 16 & 255,
                    i >> 8 & 255,
                    i & 255
                )
                .into(),
            ),
            ..Nic::default()
        }],
        guest_full_name: Some("Ubuntu Linux (64-bit)".into()),
        ip_addresses: vec![format!("10.{}.{}.{}", i >> 16 & 255, i >> 8 & 255, i & 255).into()],
        // What the workbook's vPartition and vSnapshot tabs carry.
        partitions: ["/", "/data"]
            .iter()
            .zip([40 * GIB, 90 * GIB])
            .map(|(path, cap)| Partition {
                path: (*path).into(),
                capacity_bytes: Some(cap),
                free_bytes: Some(cap / 3),
                filesystem: Some("ext4".into()),
                disk_key: None,
            })
            .collect(),
        snapshots: if i.is_multiple_of(4) {
            vec![Snapshot {
                name: "before-upgrade".into(),
                created: Some("2026-11-02T10:00:00Z".into()),
                state: Some("poweredOn".into()),
                quiesced: Some(true),
                ..Snapshot::default()
            }]
        } else {
            Vec::new()
        },
        ..Vm::default()
    }
}

/// Writes the estate into the store at `db` (its schema made by `SqliteStore::open`).
fn synthesise(db: &Path, vms: usize, open_hours: i64) -> rusqlite::Result<()> {
    let mut conn = Connection::open(db)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "OFF")?;
    let tx = conn.transaction()?;
    // Data made here, not by ingest: nothing to summarise at open.
    tx.execute(
        "INSERT OR IGNORE INTO meta VALUES ('window_days_built', '1')",
        [],
    )?;
    // A pool of day sketches per series kind, each of 288 window peaks.
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let pools: Vec<Vec<Vec<u8>>> = SERIES
        .iter()
        .map(|(_, _, peak)| {
            (0..32)
                .map(|_| {
                    let mut s = Sketch::default();
                    let level = 0.3 + rng.next();
                    for _ in 0..288 {
                        s.add(peak * level * (0.2 + rng.next()));
                    }
                    s.to_bytes()
                })
                .collect()
        })
        .collect();
    {
        let mut vm_row =
            tx.prepare("INSERT INTO vms VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)")?;
        let mut series = tx.prepare(
            "INSERT INTO series (id, vcenter, entity_type, entity_id, counter, instance, unit, stats_type)
             VALUES (?1, 'vc', 'VirtualMachine', ?2, ?3, ?4, 'x', 'rate')",
        )?;
        let mut day =
            tx.prepare("INSERT INTO window_days VALUES (?1, ?2, ?4, ?6, ?7, ?3, ?8, ?2, ?4, ?5)")?;
        let mut daily = tx.prepare("INSERT INTO daily VALUES (?1, ?2, 4320, 4320, NULL, ?3)")?;
        let mut window = tx.prepare(
            "INSERT INTO rollups VALUES (?1, ?2, 300, 15, 0, 15, ?3, ?4, ?3, ?3, ?4, ?4)",
        )?;
        for i in 0..vms {
            let v = vm(i);
            let doc = serde_json::to_string(&v)
                .map_err(|e| rusqlite::Error::ToSqlConversionFailure(e.into()))?;
            vm_row.execute(params![
                "vc",
                v.id.as_str(),
                v.name.as_str(),
                "poweredOn",
                v.guest_id.as_deref(),
                v.num_cpu,
                v.memory_bytes.map(|b| b as i64),
                "host",
                v.cluster.as_str(),
                v.datacenter.as_str(),
                doc
            ])?;
            for (k, (counter, instance, peak)) in SERIES.iter().enumerate() {
                let id = (i * SERIES.len() + k) as i64 + 1;
                series.execute(params![id, v.id.as_str(), counter, instance])?;
                for d in 1..30 {
                    let start = TODAY - d * DAY;
                    let received = 4320 - (rng.next() * 40.0) as i64;
                    let pick = (rng.next() * 32.0) as usize % 32;
                    day.execute(params![
                        id,
                        start,
                        received,
                        start + DAY,
                        pools[k][pick],
                        288,
                        DAY,
                        4320
                    ])?;
                    if matches!(k, 0 | 1 | 2 | 11 | 12) {
                        daily.execute(params![id, start, pools[k][(pick + 1) % 32]])?;
                    }
                }
                if open_hours > 0 {
                    let windows = open_hours * 12;
                    let pick = (rng.next() * 32.0) as usize % 32;
                    day.execute(params![
                        id,
                        TODAY,
                        windows * 15 - 3,
                        TODAY + open_hours * 3600,
                        pools[k][pick],
                        windows,
                        open_hours * 3600,
                        windows * 15
                    ])?;
                }
                for w in 0..12 {
                    let max = peak * (0.2 + rng.next());
                    window.execute(params![
                        id,
                        TODAY + open_hours * 3600 + w * 300,
                        max * 0.6,
                        max
                    ])?;
                }
            }
        }
    }
    tx.commit()
}

/// CPU seconds of this process.
fn cpu_secs() -> f64 {
    support::cpu_secs("/proc/self/stat")
}

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// The measured part, in a process of its own.
fn assess_only(db: &Path, samples: bool) {
    let before = cpu_secs();
    let store = SqliteStore::open(db).expect("open");
    let catalog = Catalog::shipped().expect("catalog");
    let p = Params {
        basis: samples.then(|| "samples".into()),
        ..Params::default()
    };
    let s = Settings::resolve(&RawAssessment::default(), &p, &catalog).expect("settings");
    let a = assess(&store, &catalog, &s, TODAY + DAY).expect("assess");
    let json = serde_json::to_vec(&a).expect("json");
    let cpu = cpu_secs() - before;
    let rows: usize = a.targets.iter().map(|t| t.rows.len()).sum();
    println!(
        "MEASURED cpu_s={cpu:.2} peak_rss_mib={:.0} rows={rows} json_bytes={} azure_monthly={} aws_monthly={}",
        peak_rss_mib(),
        json.len(),
        a.targets[0].totals.monthly_total,
        a.targets.get(1).map_or(0.0, |t| t.totals.monthly_total)
    );
}

/// The pages over 10,000 VMs: the estate's build (the assessment joined with the VMs'
/// records, made in the background as batches arrive), then the server's time for the
/// VM list's first page, sorted by cost, and filtered, each rendered 30 times.
fn pages_only(db: &Path) {
    let store = SqliteStore::open(db).expect("open");
    let setup = Setup::load(RawAssessment::default(), None).expect("setup");
    let before = cpu_secs();
    // A benchmark measures real time.
    #[allow(clippy::disallowed_methods)]
    let t = std::time::Instant::now();
    let fleet = Fleet::build(&store, &setup, 0, TODAY + DAY).expect("build");
    let (build_cpu, build_wall) = (cpu_secs() - before, t.elapsed().as_secs_f64());
    let mut line = format!(
        "MEASURED vms={} build_cpu_s={build_cpu:.2} build_wall_s={build_wall:.1}",
        fleet.vms.len()
    );
    for (name, query) in [
        ("first_page", ""),
        ("by_cost", "sort=cost0&dir=desc"),
        ("filtered", "q=vm-12&power=poweredOn"),
    ] {
        let mut ms: Vec<f64> = (0..30)
            .map(|_| {
                #[allow(clippy::disallowed_methods)]
                let t = std::time::Instant::now();
                let html = vm_list_html(&fleet, query).expect("render");
                assert!(html.contains("</table>"));
                t.elapsed().as_secs_f64() * 1000.0
            })
            .collect();
        ms.sort_by(f64::total_cmp);
        line.push_str(&format!(
            " {name}_p50_ms={:.1} {name}_p95_ms={:.1}",
            ms[ms.len() / 2],
            ms[ms.len() * 95 / 100]
        ));
    }
    println!("{line} peak_rss_mib={:.0}", peak_rss_mib());
}

/// The 10,000-VM workbook (`export`, xlsx: inventory tabs and the assessment's), in a
/// process of its own.
fn export_only(db: &Path) {
    let before = cpu_secs();
    // A benchmark measures real time.
    #[allow(clippy::disallowed_methods)]
    let t = std::time::Instant::now();
    let store = SqliteStore::open(db).expect("open");
    let catalog = Catalog::shipped().expect("catalog");
    let s = Settings::resolve(&RawAssessment::default(), &Params::default(), &catalog)
        .expect("settings");
    let out = export(&store, &catalog, &s, TODAY + DAY, Format::Xlsx).expect("export");
    println!(
        "MEASURED cpu_s={:.2} wall_s={:.1} peak_rss_mib={:.0} xlsx_bytes={} ({:.1} MiB)",
        cpu_secs() - before,
        t.elapsed().as_secs_f64(),
        peak_rss_mib(),
        out.bytes.len(),
        out.bytes.len() as f64 / 1048576.0
    );
}

/// A retention pass over the same store forty days on (default retention): every
/// series' windows go (summed up by hour, its open day closed); the longest step is
/// what an ingest can wait for.
fn prune_only(db: &Path) {
    let before = cpu_secs();
    // A benchmark measures real time.
    #[allow(clippy::disallowed_methods)]
    let t = std::time::Instant::now();
    let store = SqliteStore::open(db).expect("open");
    let r = Retention::default();
    let (mut after, mut steps, mut longest, mut rows) = (0, 0, 0.0f64, 0);
    loop {
        #[allow(clippy::disallowed_methods)]
        let s = std::time::Instant::now();
        let step = store
            .prune_step(TODAY + 40 * DAY, &r, after, STEP_SERIES)
            .expect("prune");
        longest = longest.max(s.elapsed().as_secs_f64());
        (steps, rows) = (steps + 1, rows + step.pruned.rollups);
        match step.next {
            Some(n) => after = n,
            None => break,
        }
    }
    println!(
        "MEASURED cpu_s={:.2} wall_s={:.1} steps={steps} longest_step_ms={:.0} rollups_pruned={rows}",
        cpu_secs() - before,
        t.elapsed().as_secs_f64(),
        longest * 1000.0
    );
}

/// The assessment run three times while another thread ingests the next hour's windows
/// of every series, batch after batch, as agents would: each run's wall time (the slowest
/// is the p95 of three) and what was ingested meanwhile.
fn assess_under_ingest(db: &Path, open_hours: i64) {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
    use std::sync::Arc;
    let store = Arc::new(SqliteStore::open(db).expect("open"));
    let (stop, stored) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicU64::new(0)),
    );
    let vms = store.counts().expect("counts").vms as usize;
    let writer = {
        let (store, stop, stored) = (store.clone(), stop.clone(), stored.clone());
        std::thread::spawn(move || {
            let who = Principal::Token("bench".into());
            let mut seq = 0;
            let mut start = TODAY + (open_hours + 1) * 3600;
            while !stop.load(Relaxed) {
                for batch in window_batches(vms, start) {
                    seq += 1;
                    store
                        .ingest("bench", seq, "bench", &who, &batch)
                        .expect("ingest");
                    let n = batch.records.iter().map(|r| match r {
                        Record::Rollups(s) => s.rows.len(),
                        _ => 0,
                    });
                    stored.fetch_add(n.sum::<usize>() as u64, Relaxed);
                    if stop.load(Relaxed) {
                        break;
                    }
                }
                start += 300;
            }
        })
    };
    let catalog = Catalog::shipped().expect("catalog");
    let s = Settings::resolve(&RawAssessment::default(), &Params::default(), &catalog)
        .expect("settings");
    let mut walls = Vec::new();
    for _ in 0..3 {
        // A benchmark measures real time.
        #[allow(clippy::disallowed_methods)]
        let t = std::time::Instant::now();
        assess(store.as_ref(), &catalog, &s, TODAY + DAY).expect("assess");
        walls.push(t.elapsed().as_secs_f64());
    }
    stop.store(true, Relaxed);
    writer.join().expect("writer");
    println!(
        "MEASURED wall_s={:?} slowest_s={:.1} rollups_ingested_meanwhile={}",
        walls
            .iter()
            .map(|w| (w * 10.0).round() / 10.0)
            .collect::<Vec<_>>(),
        walls.iter().copied().fold(0.0, f64::max),
        stored.load(Relaxed)
    );
}

/// The window at `start` of every series, in batches of 5,000 rollups.
fn window_batches(vms: usize, start: i64) -> Vec<Batch> {
    let mut out = Vec::new();
    let mut set = RollupSetBuilder::default();
    for i in 0..vms {
        let vm = format!("vm-{i}");
        for (counter, instance, peak) in SERIES {
            let mut r = Rollup::example(&vm, counter, peak * 0.5);
            (r.instance, r.window_start) = (instance.into(), start);
            set.push(r);
            if set.len() == ROLLUPS_PER_BATCH {
                out.push(Record::Rollups(set.take()));
            }
        }
    }
    if !set.is_empty() {
        out.push(Record::Rollups(set.take()));
    }
    out.into_iter()
        .map(|r| Batch {
            batch_version: BATCH_VERSION,
            created_ms: 0,
            records: vec![r],
        })
        .collect()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--assess-under-ingest") {
        let hours = args[i + 2].parse().expect("open hours");
        assess_under_ingest(Path::new(&args[i + 1]), hours);
        return;
    }
    if let Some(i) = args.iter().position(|a| a == "--prune-only") {
        prune_only(Path::new(&args[i + 1]));
        return;
    }
    if let Some(i) = args.iter().position(|a| a == "--pages-only") {
        pages_only(Path::new(&args[i + 1]));
        return;
    }
    if let Some(i) = args.iter().position(|a| a == "--export-only") {
        export_only(Path::new(&args[i + 1]));
        return;
    }
    if let Some(i) = args.iter().position(|a| a == "--assess-only") {
        let db = Path::new(&args[i + 1]);
        assess_only(db, args.iter().any(|a| a == "--samples"));
        return;
    }
    let vms: usize = std::env::var("VSCOUT_BENCH_VMS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let open_hours: i64 = std::env::var("VSCOUT_BENCH_OPEN_HOURS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(23);
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir");
    // VSCOUT_BENCH_DB keeps the estate between runs (made if missing), for profiling.
    let kept = std::env::var_os("VSCOUT_BENCH_DB").map(std::path::PathBuf::from);
    let db = kept
        .clone()
        .unwrap_or_else(|| dir.path().join("collector.db"));
    // A benchmark measures real time.
    #[allow(clippy::disallowed_methods)]
    let t = std::time::Instant::now();
    if !db.exists() {
        drop(SqliteStore::open(&db).expect("schema"));
        synthesise(&db, vms, open_hours).expect("synthesise");
    }
    let bytes = std::fs::metadata(&db).map(|m| m.len()).unwrap_or(0)
        + std::fs::metadata(db.with_extension("db-wal"))
            .map(|m| m.len())
            .unwrap_or(0);
    println!(
        "{vms} VMs × {} series: 29 closed days, {open_hours} closed hours and the open hour made in {:.0} s, {:.0} MiB",
        SERIES.len(),
        t.elapsed().as_secs_f64(),
        bytes as f64 / 1048576.0
    );
    // VSCOUT_BENCH_RUNS picks some (`pages,export`); all by default.
    let only = std::env::var("VSCOUT_BENCH_RUNS").unwrap_or_default();
    for run in [
        "peaks",
        "samples",
        "pages",
        "export",
        "under-ingest",
        "prune",
    ] {
        if !only.is_empty() && !only.split(',').any(|r| r == run) {
            continue;
        }
        let mut cmd = Command::new(std::env::current_exe().expect("exe"));
        match run {
            "under-ingest" => cmd
                .arg("--assess-under-ingest")
                .arg(&db)
                .arg(open_hours.to_string()),
            "export" => cmd.arg("--export-only").arg(&db),
            "pages" => cmd.arg("--pages-only").arg(&db),
            "prune" => cmd.arg("--prune-only").arg(&db),
            "samples" => cmd.arg("--assess-only").arg(&db).arg("--samples"),
            _ => cmd.arg("--assess-only").arg(&db),
        };
        let out = cmd.output().expect("run");
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text
            .lines()
            .find(|l| l.starts_with("MEASURED"))
            .unwrap_or("(no figures)");
        match run {
            "export" => println!("export, xlsx: {line}"),
            "pages" => println!("pages, the VM list: {line}"),
            "prune" => println!("retention pass, 40 days on: {line}"),
            "under-ingest" => println!("assess while ingest runs: {line}"),
            basis => println!("assess, basis {basis}: {line}"),
        }
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
