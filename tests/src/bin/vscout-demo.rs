//! `vscout-demo`: the README's first command. Starts vcsim (a simulated vCenter with a
//! cluster, hosts and VMs) on loopback with a certificate made for it, writes an agent
//! configuration that pins that certificate, then runs the real `vscout check`,
//! `vscout inventory` (JSON and CSV) and `vscout perf --once` into the directory given
//! (default `demo-output`).

use std::path::PathBuf;
use std::process::Command;

use anyhow::{ensure, Context, Result};
use vscout_e2e::{write_agent_config, Certs, SimOptions, Trust, Vcsim, PASSWORD};

fn main() -> Result<()> {
    let out = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "demo-output".into()),
    );
    std::fs::create_dir_all(&out)?;
    let out = out.canonicalize()?;
    let work = tempfile::tempdir()?;
    let certs = Certs::generate(work.path())?;
    let opts = SimOptions {
        clusters: 2,
        hosts_per_cluster: 3,
        vms_per_pool: 5,
        datastores: 2,
        ..SimOptions::default()
    };
    println!("starting a simulated vCenter (vcsim) ...");
    let sim = Vcsim::start(&opts, &certs)?;
    println!(
        "vcsim is at {} (certificate SHA-256 {})",
        sim.url, certs.thumbprint
    );
    let cfg = write_agent_config(
        work.path(),
        &[(
            "demo-vcenter",
            &sim.url,
            Trust::Pin(certs.thumbprint.clone()),
        )],
        PASSWORD,
        "",
    )?;
    std::fs::copy(&cfg, out.join("agent.toml")).context("copy config")?;

    // The vscout binary built next to this one.
    let exe = std::env::current_exe()?;
    let vscout = exe.parent().context("bin dir")?.join("vscout");
    let cfg = cfg.to_str().context("utf-8 path")?;
    println!("\n$ vscout check");
    let status = Command::new(&vscout)
        .args(["--config", cfg, "check"])
        .status()?;
    ensure!(status.success(), "vscout check failed");
    for format in ["json", "csv"] {
        println!(
            "\n$ vscout inventory --format {format} --output {}",
            out.display()
        );
        let status = Command::new(&vscout)
            .args(["--config", cfg, "inventory", "--format", format, "--output"])
            .arg(&out)
            .env("RUST_LOG", "warn")
            .status()?;
        ensure!(status.success(), "vscout inventory failed");
    }
    let rollups = out.join("rollups.jsonl");
    println!(
        "\n$ vscout perf --once --window-secs 300 --output {}",
        rollups.display()
    );
    let status = Command::new(&vscout)
        .args([
            "--config",
            cfg,
            "perf",
            "--once",
            "--window-secs",
            "300",
            "--output",
        ])
        .arg(&rollups)
        .env("RUST_LOG", "warn")
        .status()?;
    ensure!(status.success(), "vscout perf failed");
    println!(
        "\nThe inventory is in {} (inventory.json and one CSV per table), the last 5-minute window's performance rollups in rollups.jsonl.",
        out.display()
    );
    Ok(())
}
