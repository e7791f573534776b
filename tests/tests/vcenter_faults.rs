//! Issue 12: what vCenter's faults must not cost the running agent. A connection lost
//! under the first inventory left the agent with nothing to poll for an hour; now a read
//! is retried once on a lost connection, a failed round is retried in seconds, and a
//! restarted agent polls what its stored inventory found while inventories keep failing
//! (and says it is connected while its polls succeed). The proxy closes connections;
//! vcsim never does.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Result;
use vscout_e2e::collector::{log_events, log_tail, wait_logged, Agent};
use vscout_e2e::proxy::Proxy;
use vscout_e2e::{write_agent_config, Estate, SimOptions, PASSWORD};

/// `wait_until` off the runtime's threads (the proxy runs on them), with the agent's
/// log in the error.
fn wait(
    log: &Path,
    deadline: Duration,
    what: &str,
    check: impl FnMut() -> Result<bool>,
) -> Result<()> {
    tokio::task::block_in_place(|| wait_logged(log, deadline, what, check))
}

fn agent_config(e: &Estate, proxy: &Proxy, extra: &str) -> Result<String> {
    let path = write_agent_config(
        e.dir.path(),
        &[("sim", &proxy.url, e.pin())],
        PASSWORD,
        extra,
    )?;
    Ok(path.display().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_connection_under_the_inventory_costs_seconds_not_an_hour() -> Result<()> {
    let e = Estate::start(&SimOptions::default())?;
    let proxy = Proxy::start(&e.sim.url, &e.certs, 0).await?;
    // The first round's request and its one retry are lost, and the next round's first
    // request: the retry after the backoff gets through.
    proxy.state.reset_retrieves.store(3, Ordering::SeqCst);
    let cfg = agent_config(
        &e,
        &proxy,
        "inventory_interval_secs = 3600\n\n[perf]\nenabled = false\n",
    )?;
    let log = e.dir.path().join("agent.log");
    let agent = Agent::spawn(&cfg, &log)?;
    wait(
        &log,
        Duration::from_secs(90),
        "an inventory round to complete",
        || Ok(!log_events(&log, "inventory round complete")?.is_empty()),
    )?;
    assert_eq!(proxy.state.resets.load(Ordering::SeqCst), 3);
    assert_eq!(
        log_events(&log, "inventory round failed")?.len(),
        1,
        "{}",
        log_tail(&log, 30)
    );
    let retries = log_events(&log, "connection lost; retrying the read once")?;
    assert_eq!(retries.len(), 2, "each round retried its read once");
    let soon = log_events(&log, "inventory round failed; trying again soon")?;
    assert_eq!(
        soon.first().and_then(|f| f["retry_in_secs"].as_u64()),
        Some(5)
    );
    assert_eq!(agent.terminate(Duration::from_secs(30))?, Some(0));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_agent_polls_its_stored_inventory_while_new_ones_fail() -> Result<()> {
    let e = Estate::start(&SimOptions::default())?;
    let proxy = Proxy::start(&e.sim.url, &e.certs, 0).await?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let cfg = agent_config(
        &e,
        &proxy,
        &format!("inventory_interval_secs = 3600\nmetrics_listen = \"127.0.0.1:{port}\"\n\n[perf]\ninterval_secs = 20\n"),
    )?;
    let log = e.dir.path().join("agent.log");
    let agent = Agent::spawn(&cfg, &log)?;
    wait(&log, Duration::from_secs(90), "a first inventory", || {
        Ok(!log_events(&log, "inventory round complete")?.is_empty())
    })?;
    assert_eq!(agent.terminate(Duration::from_secs(30))?, Some(0));

    // Every inventory fails from now on.
    proxy
        .state
        .reset_retrieves
        .store(u64::MAX, Ordering::SeqCst);
    let polls_before = proxy.state.perf_queries.load(Ordering::SeqCst);
    let agent = Agent::spawn(&cfg, &log)?;
    wait(
        &log,
        Duration::from_secs(120),
        "performance polls of the stored targets",
        || Ok(proxy.state.perf_queries.load(Ordering::SeqCst) > polls_before + 1),
    )?;
    let seeded = log_events(
        &log,
        "polling what the stored inventory found until a new inventory is taken",
    )?;
    assert!(
        seeded.last().and_then(|f| f["targets"].as_u64()) > Some(0),
        "{seeded:?}"
    );
    // Connected follows the last call: polls succeed, so the vCenter is connected,
    // though its inventories fail.
    let metrics = || -> Result<String> {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
        write!(s, "GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
        let mut text = String::new();
        s.read_to_string(&mut text)?;
        Ok(text)
    };
    wait(
        &log,
        Duration::from_secs(60),
        "connected after a successful poll",
        || Ok(metrics()?.contains("vscout_vcenter_connected{vcenter=\"sim\"} 1")),
    )?;
    assert!(proxy.state.resets.load(Ordering::SeqCst) >= 2);
    assert_eq!(agent.terminate(Duration::from_secs(30))?, Some(0));
    Ok(())
}
