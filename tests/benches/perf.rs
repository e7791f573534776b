//! Performance-poll benchmark (`cargo bench -p vscout-e2e --bench perf`; prints figures,
//! asserts nothing). vcsim with `VSCOUT_BENCH_VMS` VMs (default 10,000); the release agent
//! runs `vscout inventory` and then `vscout perf --once --window-secs 300`: one real-time
//! poll of every default VM and host counter over 5 minutes (15 samples each). The agent
//! measures its own CPU time and peak RSS; the poll's share of CPU is the difference
//! between the two runs (`perf --once` takes an inventory first to know its targets).

use std::process::{Command, Stdio};
use std::time::Instant;

use vscout_e2e::{Estate, SimOptions, PASSWORD};

fn main() -> anyhow::Result<()> {
    let vms = vscout_e2e::bench_vms();
    let opts = SimOptions::bench(vms);
    let t = Instant::now();
    let e = Estate::start(&opts)?;
    println!(
        "vcsim with {} VMs up in {:.1} s",
        opts.vm_count(),
        t.elapsed().as_secs_f64()
    );
    let bin = vscout_e2e::release_vscout()?;
    let cfg = e.agent_config(PASSWORD, "")?;
    let run = |args: &[&str]| -> anyhow::Result<(String, u64, u64, f64)> {
        let t = Instant::now();
        let out = Command::new(&bin)
            .args(["--config", &cfg])
            .args(args)
            .env("VSCOUT_REPORT_RESOURCES", "1")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()?;
        let wall = t.elapsed().as_secs_f64();
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        anyhow::ensure!(out.status.success(), "vscout {args:?} failed: {err}");
        let (cpu, rss) = vscout_e2e::reported_resources(&err);
        Ok((
            String::from_utf8_lossy(&out.stdout).into_owned(),
            cpu,
            rss,
            wall,
        ))
    };
    let (_, inv_cpu, inv_rss, inv_wall) = run(&["inventory", "--output", &e.path("inv")])?;
    println!(
        "inventory alone: wall {inv_wall:.2} s, agent cpu {inv_cpu} ms, peak rss {} MiB",
        inv_rss / 1024
    );
    let (summary, cpu, rss, wall) = run(&[
        "perf",
        "--once",
        "--window-secs",
        "300",
        "--output",
        &e.path("rollups.jsonl"),
    ])?;
    println!("{}", summary.lines().next().unwrap_or(""));
    let poll_cpu = cpu.saturating_sub(inv_cpu);
    println!(
        "perf --once: wall {wall:.2} s, agent cpu {cpu} ms (poll ≈ {poll_cpu} ms = {:.3} ms per VM), peak rss {} MiB",
        poll_cpu as f64 / f64::from(vms),
        rss / 1024
    );
    Ok(())
}
