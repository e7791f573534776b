//! `vscout-demo`: the README's first command. Starts vcsim (a simulated vCenter with a
//! few hundred VMs) on loopback with a certificate made for it, the reference collector
//! (SQLite, a self-signed certificate and a first token made on first start), and the
//! agent (`vscout check`, a one-off `vscout inventory` as JSON and CSV, then `vscout run`
//! shipping to the collector). It prints what the collector holds as it arrives, and
//! keeps everything running until Ctrl-C (or, with `--until-rollups`, until the first
//! rollups are in: what the test suite runs).
//!
//! Everything goes under the output directory (default `demo-output`).

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use vscout_e2e::collector::{Agent, Collector};
use vscout_e2e::{write_agent_config, Certs, SimOptions, Trust, Vcsim, PASSWORD};

fn main() -> Result<()> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let until_rollups = match args.iter().position(|a| a == "--until-rollups") {
        Some(i) => {
            args.remove(i);
            true
        }
        None => false,
    };
    let out = PathBuf::from(
        args.first()
            .cloned()
            .unwrap_or_else(|| "demo-output".into()),
    );
    start_over(&out)?;
    let out = out.canonicalize()?;
    let work = out.join("work");
    std::fs::create_dir_all(&work)?;
    let certs = Certs::generate(&work)?;
    let opts = SimOptions {
        clusters: 2,
        hosts_per_cluster: 3,
        vms_per_pool: 70,
        datastores: 2,
        variety: true,
        ..SimOptions::default()
    };
    println!(
        "starting a simulated vCenter (vcsim) with {} VMs ...",
        opts.vm_count()
    );
    let sim = Vcsim::start(&opts, &certs)?;
    println!(
        "vcsim is at {} (certificate SHA-256 {})",
        sim.url, certs.thumbprint
    );

    println!(
        "\nstarting the collector (SQLite in {}) ...",
        out.join("collector").display()
    );
    let col = Collector::start(&out.join("collector"))?;
    println!(
        "collector is at {} (certificate SHA-256 {})",
        col.url, col.thumbprint
    );
    // A log-in for the pages: a person, not the agent's token.
    let login: String = (0..16).map(|_| fastrand::alphanumeric()).collect();
    let added = col.add_user(&work, "demo", &login)?;
    ensure!(
        added.status.success(),
        "vscout-collector user add: {added:?}"
    );
    println!(
        "pages: open {}/ and log in as \"demo\" with password {login} (kept in {}; accept the self-signed certificate, SHA-256 above)",
        col.url,
        work.join("demo.password").display()
    );

    // Demo pacing: 20-second polls and 1-minute windows, so rollups show within two minutes.
    let extra = format!(
        "inventory_interval_secs = 300\nhealth_interval_secs = 30\n\n[perf]\ninterval_secs = 20\nwindow_secs = 60\n{}",
        col.agent_section(None)
    );
    let cfg = write_agent_config(
        &work,
        &[(
            "demo-vcenter",
            &sim.url,
            Trust::Pin(certs.thumbprint.clone()),
        )],
        PASSWORD,
        &extra,
    )?;
    std::fs::copy(&cfg, out.join("agent.toml")).context("copy config")?;
    let cfg = cfg.to_str().context("utf-8 path")?.to_owned();

    let vscout = sibling("vscout")?;
    println!("\n$ vscout check");
    let status = Command::new(&vscout)
        .args(["--config", &cfg, "check"])
        .status()?;
    ensure!(status.success(), "vscout check failed");
    for format in ["json", "csv", "xlsx"] {
        println!(
            "\n$ vscout inventory --format {format} --output {}",
            out.display()
        );
        let status = Command::new(&vscout)
            .args([
                "--config",
                &cfg,
                "inventory",
                "--format",
                format,
                "--output",
            ])
            .arg(&out)
            .env("RUST_LOG", "warn")
            .status()?;
        ensure!(status.success(), "vscout inventory failed");
    }

    let log = out.join("agent.log");
    println!("\n$ vscout run   (logs: {})", log.display());
    let agent = Agent::spawn(&cfg, &log)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let result = rt.block_on(watch(&col, until_rollups));
    println!(
        "\nstopping the agent (SIGTERM: it stops polling, syncs its buffer, ships what it can) ..."
    );
    let code = agent.terminate(Duration::from_secs(30))?;
    println!(
        "agent exited with {code:?}; the collector's database is {}",
        out.join("collector/collector.db").display()
    );
    let result = result.and_then(|()| rt.block_on(export(&col, &out.join("fleet.xlsx"))));
    drop(col);
    sim.stop();
    result
}

/// Files and directories a demo run writes into its output directory.
const DEMO_ENTRIES: [&str; 7] = [
    "collector",
    "work",
    "agent.toml",
    "agent.log",
    "inventory.json",
    "inventory.xlsx",
    "fleet.xlsx",
];

/// Every run starts from an empty output directory: vcsim makes a new estate (new VMs,
/// new certificates) each time, so a previous run's collector database and agent state
/// would mix two estates. A directory that holds a previous demo run is emptied (and the
/// demo says so); one that holds anything else is refused, never deleted.
fn start_over(out: &std::path::Path) -> Result<()> {
    let entries: Vec<String> = match std::fs::read_dir(out) {
        Ok(rd) => rd
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", out.display())),
    };
    if !entries.is_empty() {
        let ours = |n: &str| DEMO_ENTRIES.contains(&n) || n.ends_with(".csv");
        let foreign: Vec<&String> = entries.iter().filter(|n| !ours(n)).collect();
        ensure!(
            foreign.is_empty() && entries.iter().any(|n| n == "collector" || n == "agent.toml"),
            "{} is not a previous demo's output (it holds {}); give the demo an empty or new directory",
            out.display(),
            foreign.iter().take(5).map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
        );
        println!(
            "{} holds a previous demo run: starting over (its collector database, agent state and exports are removed)",
            out.display()
        );
        std::fs::remove_dir_all(out)
            .with_context(|| format!("cannot remove the previous run in {}", out.display()))?;
    }
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    Ok(())
}

/// A binary built next to this one.
fn sibling(name: &str) -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    Ok(exe.parent().context("bin dir")?.join(name))
}

/// Prints the collector's counts as they change; returns on Ctrl-C, or once rollups are
/// in when `until_rollups`.
async fn watch(col: &Collector, until_rollups: bool) -> Result<()> {
    let http = client(col)?;
    let token = std::fs::read_to_string(&col.token_file)?.trim().to_owned();
    let started = Instant::now();
    let mut last = String::new();
    let mut reported = false;
    println!("\nwatching the collector (Ctrl-C to stop) ...");
    loop {
        let stats = get(&http, col, &token, "/v1/stats").await?;
        let line = format!(
            "collector holds: {} vCenter(s), {} VMs, {} rollups of {} series, {} batches from {} agent(s)",
            stats["vcenters"], stats["vms"], stats["rollups"], stats["series"], stats["batches"], stats["agents"]
        );
        if line != last {
            println!("[{:>4} s] {line}", started.elapsed().as_secs());
            last = line;
        }
        // The first rollups in may be a cluster's or a datastore's: the report waits for
        // a VM's own rows.
        if !reported && stats["rollups"].as_u64().unwrap_or(0) > 0 {
            reported = report(&http, col, &token).await?;
            if reported && until_rollups {
                return Ok(());
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(5)) => {}
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
    }
}

/// One VM's rollups, as the API serves them; false (nothing printed) while that VM has
/// none yet.
async fn report(http: &reqwest::Client, col: &Collector, token: &str) -> Result<bool> {
    let vms = get(http, col, token, "/v1/vms?power_state=poweredOn&limit=1").await?;
    let Some(vm) = vms.as_array().and_then(|a| a.first()) else {
        return Ok(false);
    };
    let id = vm["id"].as_str().unwrap_or_default();
    let metrics = get(http, col, token, &format!("/v1/vms/{id}/metrics")).await?;
    let rows = metrics.as_array().map_or(&[][..], |a| a.as_slice());
    if rows.is_empty() {
        return Ok(false);
    }
    println!(
        "\nGET /v1/vms?power_state=poweredOn&limit=1 -> {} ({} vCPU, {} MiB, on {})",
        vm["name"],
        vm["num_cpu"],
        vm["memory_bytes"].as_u64().unwrap_or(0) >> 20,
        vm["host"]
    );
    println!("GET /v1/vms/{id}/metrics ->");
    for m in rows.iter().take(8) {
        println!(
            "  {:<28} window {} +{}s  mean {:>8} p95 {:>8} {} ({}/{} samples)",
            m["counter"].as_str().unwrap_or_default(),
            m["window_start"],
            m["window_secs"],
            fmt(&m["mean"]),
            fmt(&m["p95"]),
            m["unit"].as_str().unwrap_or_default(),
            m["count"],
            m["expected_samples"]
        );
    }
    assessment(http, col, token).await?;
    println!(
        "\nthe same in a browser: {}/ (overview, VMs, each VM's charts, the assessment with its downloads; user \"demo\", password above)",
        col.url
    );
    Ok(true)
}

/// The assessment's totals per cloud, as `GET /v1/assessment` answers them.
async fn assessment(http: &reqwest::Client, col: &Collector, token: &str) -> Result<()> {
    let a = get(http, col, token, "/v1/assessment").await?;
    let h = &a["history"];
    let held = h["held_to"].as_i64().unwrap_or(0) - h["held_from"].as_i64().unwrap_or(0);
    let held = match held {
        s if s < 7200 => format!("{} min", s / 60),
        s if s < 2 * 86_400 => format!("{:.1} h", s as f64 / 3600.0),
        s => format!("{:.1} days", s as f64 / 86_400.0),
    };
    println!(
        "\nGET /v1/assessment -> p{} of window peaks over the {held} of history held, catalog {} ({})",
        a["settings"]["percentile"],
        a["catalog_date"].as_str().unwrap_or_default(),
        a["prices"].as_str().unwrap_or_default()
    );
    for t in a["targets"].as_array().map_or(&[][..], |v| v.as_slice()) {
        let n = &t["totals"];
        println!(
            "  {:<5} {:<10} {} VMs: {} ready, {} conditionally ready, {} not ready, {} unknown; vCPU {} → {}, memory {} → {} GiB; ${}/month",
            t["target"].as_str().unwrap_or_default(), t["region"].as_str().unwrap_or_default(),
            n["vms"], n["ready"], n["conditionally_ready"], n["not_ready"], n["unknown"],
            n["allocated_vcpus"], n["recommended_vcpus"], n["allocated_memory_gib"], n["recommended_memory_gib"],
            n["monthly_total"]
        );
    }
    println!(
        "  every VM, both clouds: vscout-collector --data-dir {} assess [--format csv --output FILE]",
        col.data_dir.display()
    );
    Ok(())
}

/// The fleet's workbook, as `GET /v1/export.xlsx` answers it, written to `path`.
async fn export(col: &Collector, path: &std::path::Path) -> Result<()> {
    let token = std::fs::read_to_string(&col.token_file)?.trim().to_owned();
    let bytes = fetch(&client(col)?, col, &token, "/v1/export.xlsx").await?;
    std::fs::write(path, &bytes)?;
    println!(
        "\nGET /v1/export.xlsx -> wrote the workbook {} ({} KiB): RVTools' inventory tabs, then Assessment, Summary, Performance, Settings",
        path.display(),
        bytes.len() / 1024
    );
    println!(
        "  the same from the command line: vscout-collector --data-dir {} export --output FILE.xlsx (or FILE.csv: Azure Migrate's import)",
        col.data_dir.display()
    );
    Ok(())
}

fn fmt(v: &serde_json::Value) -> String {
    v.as_f64().map_or("-".into(), |x| format!("{x:.1}"))
}

fn client(col: &Collector) -> Result<reqwest::Client> {
    let pin = vscout::config::parse_thumbprint(&col.thumbprint).map_err(anyhow::Error::msg)?;
    let tls = vscout::tls::client_config(
        &vscout::config::TlsPolicy::Pinned { sha256: pin },
        Default::default(),
        None,
    )
    .map_err(anyhow::Error::msg)?;
    Ok(reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .no_proxy()
        .build()?)
}

/// The body of `GET path`, refused unless 2xx.
async fn fetch(
    http: &reqwest::Client,
    col: &Collector,
    token: &str,
    path: &str,
) -> Result<bytes::Bytes> {
    Ok(http
        .get(format!("{}{path}", col.url))
        .bearer_auth(token)
        .send()
        .await?
        .error_for_status()?
        .bytes()
        .await?)
}

async fn get(
    http: &reqwest::Client,
    col: &Collector,
    token: &str,
    path: &str,
) -> Result<serde_json::Value> {
    Ok(serde_json::from_slice(
        &fetch(http, col, token, path).await?,
    )?)
}
