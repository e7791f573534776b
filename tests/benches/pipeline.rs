//! Buffer, shipper and collector benchmark (`cargo bench -p vscout-e2e --bench pipeline`;
//! prints figures, asserts nothing). In one run, against vcsim with `VSCOUT_BENCH_VMS`
//! VMs (default 10,000):
//! 1. the release agent's own CPU for `vscout inventory` and `vscout perf --once` (one
//!    5-minute window of every default counter), as in the perf bench: the collection
//!    cost of one window is the poll plus a twelfth of the hourly inventory;
//! 2. that window's rollups through the real buffer and shipper, in this process: encode
//!    into batches, append with group commit (fsync per batch), read back and POST to the
//!    real collector (release binary, SQLite) until everything is acknowledged — this
//!    process's CPU for that is the buffer + shipper cost;
//! 3. the collector's CPU for ingesting them (from /proc), as rollups per CPU-second;
//! 4. an all-in-one appliance's memory: the agent's and the collector's peak RSS.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use vscout::buffer::{fs::StdFs, Buffer, BufferHandle, BufferOptions};
use vscout::config::{CollectorConfig, Compression, Secret, TlsPolicy};
use vscout::perf::Rollup;
use vscout::ship::{Batcher, Record, ShipStats, Shipper};
use vscout_e2e::collector::Collector;
use vscout_e2e::{Estate, SimOptions, PASSWORD};

/// CPU time (user + system) of a process, in milliseconds.
fn cpu_ms(pid: &str) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = stat.rsplit_once(')').map_or("", |r| r.1);
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    (f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0)) * 10
}

fn main() -> anyhow::Result<()> {
    let vms = vscout_e2e::bench_vms();
    let opts = SimOptions::bench(vms);
    let e = Estate::start(&opts)?;
    println!("vcsim with {} VMs", opts.vm_count());
    let bin = vscout_e2e::release_vscout()?;
    let status = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .args(["build", "--release", "-p", "vscout-collector"])
        .current_dir(vscout_e2e::workspace_root())
        .status()?;
    anyhow::ensure!(
        status.success(),
        "cargo build --release -p vscout-collector failed"
    );
    let cfg = e.agent_config(PASSWORD, "")?;
    let rollups_file = e.dir.path().join("rollups.jsonl");
    let run = |args: &[&str]| -> anyhow::Result<(u64, u64)> {
        let out = Command::new(&bin)
            .args(["--config", &cfg])
            .args(args)
            .env("VSCOUT_REPORT_RESOURCES", "1")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()?;
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        anyhow::ensure!(out.status.success(), "vscout {args:?} failed: {err}");
        Ok(vscout_e2e::reported_resources(&err))
    };
    let inv_dir = e.path("inv");
    let inventory_cpu = run(&["inventory", "--output", &inv_dir])?.0;
    let (once_cpu, once_rss_kib) = run(&[
        "perf",
        "--once",
        "--window-secs",
        "300",
        "--output",
        rollups_file.to_str().unwrap_or_default(),
    ])?;
    let poll_cpu = once_cpu.saturating_sub(inventory_cpu);
    // `vscout run` polls every 60 s: five 1-minute polls make a 5-minute window.
    let minute_file = e.dir.path().join("minute.jsonl");
    let minute_cpu = run(&[
        "perf",
        "--once",
        "--window-secs",
        "60",
        "--output",
        minute_file.to_str().unwrap_or_default(),
    ])?
    .0
    .saturating_sub(inventory_cpu);
    let run_collect_cpu = 5.0 * minute_cpu as f64 + inventory_cpu as f64 / 12.0;
    let collect_cpu = poll_cpu as f64 + inventory_cpu as f64 / 12.0;
    let rollups: Vec<Rollup> = std::fs::read_to_string(&rollups_file)?
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    let n = rollups.len();
    println!(
        "agent collection, one 5-minute window: poll {poll_cpu} ms CPU + inventory {inventory_cpu} ms / 12 = {collect_cpu:.0} ms; {n} rollups"
    );

    // The collector, and this process as the agent's buffer + shipper.
    let col = Collector::start(&e.dir.path().join("collector"))?;
    let col_pid = col.pid().map(|p| p.to_string()).unwrap_or_default();
    let dir = tempfile::tempdir()?;
    let me = std::process::id().to_string();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let cpu0 = cpu_ms(&me);
    let t0 = Instant::now();
    // Encode (what the daemon does with a closed window).
    let mut batcher = Batcher::default();
    for r in rollups {
        batcher.push(Record::Rollup(r));
    }
    let batches: Vec<Vec<u8>> = batcher
        .finish()?
        .iter()
        .map(|e| e.payload().to_vec())
        .collect();
    let encode_cpu = cpu_ms(&me) - cpu0;
    let encode_wall = t0.elapsed();
    // Append with an fsync per batch (stricter than the 500 ms group commit).
    let fs: Arc<dyn vscout::buffer::fs::Fs> = Arc::new(StdFs::default());
    let mut buffer = Buffer::open(
        fs,
        BufferOptions {
            dir: dir.path().join("buffer"),
            max_bytes: 1 << 30,
            segment_bytes: 64 << 20,
            fsync_always: false,
        },
    )?;
    let t1 = Instant::now();
    let mut last = 0;
    for b in &batches {
        last = buffer.append(b)?;
        buffer.sync()?;
    }
    let append_wall = t1.elapsed();
    let disk = buffer.disk_bytes();
    let payload: usize = batches.iter().map(Vec::len).sum();
    // Ship through the real shipper.
    let handle = BufferHandle::new(buffer);
    let collector = CollectorConfig {
        url: reqwest::Url::parse(&col.url)?,
        token: Some(Secret::new(
            std::fs::read_to_string(&col.token_file)?.trim(),
        )),
        tls: TlsPolicy::Pinned {
            sha256: vscout::config::parse_thumbprint(&col.thumbprint)
                .map_err(anyhow::Error::msg)?,
        },
        identity: None,
        compression: Compression::Zstd,
        max_in_flight: 2,
        request_timeout: Duration::from_secs(60),
        retry_max: Duration::from_secs(2),
    };
    let col_cpu0 = cpu_ms(&col_pid);
    let t2 = Instant::now();
    let acked = rt.block_on(async {
        let stats = Arc::new(ShipStats::default());
        let shipper = Shipper::new(
            collector,
            "bench-agent".into(),
            handle.clone(),
            dir.path(),
            stats,
        )?;
        let stop = tokio_util::sync::CancellationToken::new();
        let task = tokio::spawn(shipper.run(stop.clone(), Duration::from_secs(5)));
        while handle.snapshot().acked < last {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        stop.cancel();
        let _ = task.await;
        anyhow::Ok(handle.snapshot().acked)
    })?;
    let ship_wall = t2.elapsed();
    let ship_cpu = cpu_ms(&me) - cpu0;
    let col_cpu = cpu_ms(&col_pid) - col_cpu0;
    anyhow::ensure!(acked == last, "shipped {acked} of {last}");
    let stored = col.count("SELECT count(*) FROM rollups")?;

    let mb = payload as f64 / 1e6;
    println!("buffer: {} records ({} rollups, {mb:.1} MB compressed) appended + fsynced in {:.0} ms: {:.0} records/s, {:.1} MB/s",
        batches.len(), n, append_wall.as_secs_f64() * 1e3,
        batches.len() as f64 / append_wall.as_secs_f64(), mb / append_wall.as_secs_f64());
    println!(
        "bytes on disk per rollup: {:.1} (one rollup = count, min, max, mean, p50, p95, p99 of one series and window; {:.1} per value)",
        disk as f64 / n as f64,
        disk as f64 / n as f64 / 7.0
    );
    println!(
        "encode: {encode_cpu} ms CPU ({:.0} ms wall); buffer + ship total: {ship_cpu} ms CPU, ship wall {:.0} ms",
        encode_wall.as_secs_f64() * 1e3,
        ship_wall.as_secs_f64() * 1e3
    );
    println!(
        "agent CPU share of buffer + shipper, window collected by one 5-minute poll: {ship_cpu} / ({collect_cpu:.0} + {ship_cpu}) = {:.1}% (target <= 10%)",
        100.0 * ship_cpu as f64 / (collect_cpu + ship_cpu as f64)
    );
    println!(
        "same, window collected as `vscout run` does (five 1-minute polls of {minute_cpu} ms + inventory / 12 = {run_collect_cpu:.0} ms): {:.1}%",
        100.0 * ship_cpu as f64 / (run_collect_cpu + ship_cpu as f64)
    );
    println!(
        "collector: {stored} rollups stored with {col_cpu} ms CPU: {:.0} rollups per CPU-second (target >= 200,000)",
        n as f64 / (col_cpu.max(1) as f64 / 1e3)
    );
    all_in_one_memory(&col, &col_pid, once_rss_kib)
}

/// An all-in-one appliance's memory: the agent's peak polling the estate (`perf --once`)
/// beside the collector's after it ingested that window and assessed the estate (the
/// pages' heaviest request), both peaks (VmHWM).
fn all_in_one_memory(col: &Collector, col_pid: &str, agent_rss_kib: u64) -> anyhow::Result<()> {
    let token = std::fs::read_to_string(&col.token_file)?;
    let http = vscout_e2e::collector::client(col, None)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let status = rt.block_on(async {
        let r = http
            .get(format!("{}/v1/assessment", col.url))
            .bearer_auth(token.trim())
            .send()
            .await?;
        let status = r.status();
        r.bytes().await?;
        anyhow::Ok(status)
    })?;
    anyhow::ensure!(status.is_success(), "GET /v1/assessment: {status}");
    let status_file = std::fs::read_to_string(format!("/proc/{col_pid}/status"))?;
    let col_kib: u64 = status_file
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    println!(
        "all-in-one memory: agent peak {} MiB (perf --once) + collector peak {} MiB (ingest, then the assessment) = {} MiB",
        agent_rss_kib / 1024,
        col_kib / 1024,
        (agent_rss_kib + col_kib) / 1024
    );
    Ok(())
}
