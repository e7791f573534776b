//! Issue 12: a hostile (or broken) vCenter cannot grow the agent past its unit's memory
//! limit. An endless QueryPerf answer drove `perf --once` to 2,086 MB (four requests in
//! flight, each read up to the 512 MiB answer cap); an endless text node in an inventory
//! retrieval to 535 MB. The proxy in front of vcsim serves those answers.

use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;

use anyhow::Result;
use vscout_e2e::proxy::Proxy;
use vscout_e2e::{
    reported_resources, vscout_binary, write_agent_config, Estate, SimOptions, PASSWORD,
};

/// Runs `vscout ARGS` against the proxy; its exit code, stderr and peak RSS in KiB.
fn run(e: &Estate, proxy: &Proxy, args: &[&str]) -> Result<(Option<i32>, String, u64)> {
    let cfg = write_agent_config(e.dir.path(), &[("sim", &proxy.url, e.pin())], PASSWORD, "")?;
    let out = tokio::task::block_in_place(|| {
        Command::new(vscout_binary()?)
            .arg("--config")
            .arg(&cfg)
            .args(args)
            .env("VSCOUT_REPORT_RESOURCES", "1")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .map_err(anyhow::Error::from)
    })?;
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    let (_, rss) = reported_resources(&err);
    Ok((out.status.code(), err, rss))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endless_answers_cost_the_agent_a_bounded_amount_of_memory() -> Result<()> {
    let e = Estate::start(&SimOptions::default())?;
    let proxy = Proxy::start(&e.sim.url, &e.certs, 0).await?;

    proxy.state.endless_perf.store(true, Ordering::SeqCst);
    let rollups = e.path("rollups.jsonl");
    let (code, err, rss) = run(&e, &proxy, &["perf", "--once", "--output", &rollups])?;
    let sent = proxy.state.endless_bytes.swap(0, Ordering::SeqCst);
    eprintln!("perf --once against endless QueryPerf answers: exit {code:?}, peak RSS {rss} KiB, {sent} bytes served");
    assert!(rss > 0, "the agent reported its resources: {err}");
    assert!(
        err.contains("64 MiB") || err.contains("67108864"),
        "the error names the cap: {err}"
    );
    // Four requests in flight, each cut off at 64 MiB, within a 128 MiB budget.
    assert!(rss < 320 * 1024, "peak RSS {rss} KiB");
    // A megabyte-long error is not what the log gets either.
    assert!(err.lines().all(|l| l.len() < 4096), "a log line over 4 KiB");
    proxy.state.endless_perf.store(false, Ordering::SeqCst);

    proxy.state.endless_text.store(true, Ordering::SeqCst);
    let out = e.path("inv");
    let (code, err, rss) = run(&e, &proxy, &["inventory", "--output", &out])?;
    eprintln!("inventory against an endless text node: exit {code:?}, peak RSS {rss} KiB");
    assert_ne!(code, Some(0));
    assert!(err.contains("longer than"), "{err}");
    assert!(rss < 96 * 1024, "peak RSS {rss} KiB");
    Ok(())
}
