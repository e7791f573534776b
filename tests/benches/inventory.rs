//! Inventory benchmark (run with `cargo bench -p vscout-e2e`; it prints figures, it asserts
//! nothing). Starts vcsim with `VSCOUT_BENCH_VMS` VMs (default 10,000), then:
//!
//! 1. runs the release `vscout inventory` against it and prints wall time, the agent's own
//!    CPU time and peak RSS (the agent measures itself: `VSCOUT_REPORT_RESOURCES`);
//! 2. records the RetrievePropertiesEx answer through the test proxy and hands it to the
//!    parser bench (`agent/benches/parse.rs`), which times vscout's parser against a bare
//!    quick-xml event scan of the same bytes in one run and reports the ratio (machines
//!    here are shared and noisy; ratios travel, seconds don't).

use std::process::{Command, Stdio};
use std::time::Instant;

use vscout::vsphere::Client;
use vscout_e2e::proxy::Proxy;
use vscout_e2e::{vcenter_config, write_agent_config, Certs, SimOptions, Trust, Vcsim, PASSWORD};

fn main() -> anyhow::Result<()> {
    let vms = vscout_e2e::bench_vms();
    let opts = SimOptions::bench(vms);
    let dir = tempfile::tempdir()?;
    let certs = Certs::generate(dir.path())?;
    let started = Instant::now();
    let sim = Vcsim::start(&opts, &certs)?;
    println!(
        "vcsim with {} VMs up in {:.1} s",
        opts.vm_count(),
        started.elapsed().as_secs_f64()
    );

    // 1. The agent, end to end, measured from the inside.
    let bin = vscout_e2e::release_vscout()?;
    let cfg = write_agent_config(
        dir.path(),
        &[("bench", &sim.url, Trust::Pin(certs.thumbprint.clone()))],
        PASSWORD,
        "",
    )?;
    for run in 1..=2 {
        let t = Instant::now();
        let out = Command::new(&bin)
            .args([
                "--config",
                cfg.to_str().unwrap_or_default(),
                "inventory",
                "--output",
            ])
            .arg(dir.path().join("out"))
            .env("VSCOUT_REPORT_RESOURCES", "1")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()?;
        let wall = t.elapsed();
        let err = String::from_utf8_lossy(&out.stderr);
        anyhow::ensure!(out.status.success(), "vscout failed: {err}");
        let line = err
            .lines()
            .find(|l| l.starts_with("vscout-resources"))
            .unwrap_or("vscout-resources ?");
        println!(
            "inventory run {run}: wall {:.2} s; agent {}; {}",
            wall.as_secs_f64(),
            line.trim_start_matches("vscout-resources "),
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .next()
                .unwrap_or("")
        );
    }

    // 2. Parser cost against a bare scan of the same bytes.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let answer = dir.path().join("answer.xml");
    rt.block_on(async {
        let proxy = Proxy::start(&sim.url, &certs, 0).await?;
        *proxy
            .state
            .record_to
            .lock()
            .map_err(|_| anyhow::anyhow!("lock"))? = Some(answer.clone());
        let client = Client::connect(&vcenter_config(
            "rec",
            &proxy.url,
            Trust::Pin(certs.thumbprint.clone()),
            500,
        )?)
        .await?;
        vscout::inventory::collect(&client).await?;
        client.logout().await?;
        anyhow::Ok(())
    })?;
    println!(
        "recorded answer: {:.1} MB; parsing it with the parser bench:",
        std::fs::metadata(&answer)?.len() as f64 / 1e6
    );
    drop(sim);
    let status = Command::new(env!("CARGO"))
        .args(["bench", "-p", "vscout", "--bench", "parse"])
        .env("VSCOUT_PARSE_FILE", &answer)
        .current_dir(vscout_e2e::workspace_root())
        .status()?;
    anyhow::ensure!(status.success(), "parser bench failed");
    Ok(())
}
