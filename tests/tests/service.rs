//! The agent as a systemd service, without systemd: a test socket stands in for
//! `$NOTIFY_SOCKET` and receives what systemd would (READY once the first login was
//! tried, STATUS lines, WATCHDOG at a third of `WatchdogSec`, STOPPING on SIGTERM).

use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use anyhow::Result;
use vscout_e2e::collector::{log_events, wait_until, Agent};
use vscout_e2e::{Estate, SimOptions, PASSWORD, USER};

#[test]
fn the_agent_speaks_systemds_notify_protocol() -> Result<()> {
    let opts = SimOptions::default();
    let e = Estate::start(&opts)?;
    let sock_path = e.dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path)?;
    sock.set_read_timeout(Some(Duration::from_secs(30)))?;
    let cfg = e.agent_config(
        PASSWORD,
        "inventory_interval_secs = 600\n\n[perf]\nenabled = false\n",
    )?;
    let log = e.dir.path().join("agent.log");
    let path = sock_path.display().to_string();
    let agent = Agent::spawn_with_env(
        &cfg,
        &log,
        &[("NOTIFY_SOCKET", &path), ("WATCHDOG_USEC", "3000000")],
    )?;
    let mut got: Vec<String> = Vec::new();
    let mut buf = [0u8; 1024];
    let start = Instant::now();
    let vms = format!("VMs {}", opts.vm_count());
    // READY, then STATUS lines that reach the inventory's VM count, and the watchdog fed
    // repeatedly (every second for a 3-second WatchdogSec).
    while start.elapsed() < Duration::from_secs(60) {
        let n = sock.recv(&mut buf)?;
        got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        let watchdogs = got.iter().filter(|m| *m == "WATCHDOG=1").count();
        if watchdogs >= 4 && got.iter().any(|m| m.contains(&vms)) {
            break;
        }
    }
    assert_eq!(got.first().map(String::as_str), Some("READY=1"), "{got:?}");
    assert!(
        got.iter()
            .any(|m| m.starts_with("STATUS=vCenters connected 1/1, ") && m.contains(&vms)),
        "{got:?}"
    );
    assert!(
        got.iter().filter(|m| *m == "WATCHDOG=1").count() >= 4,
        "{got:?}"
    );
    let code = agent.terminate(Duration::from_secs(30))?;
    assert_eq!(code, Some(0));
    let mut rest = Vec::new();
    sock.set_read_timeout(Some(Duration::from_millis(200)))?;
    while let Ok(n) = sock.recv(&mut buf) {
        rest.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    assert!(rest.iter().any(|m| m == "STOPPING=1"), "{rest:?}");
    Ok(())
}

/// Log events with `message` whose `vcenter` field is `vc`.
fn events_for(log: &std::path::Path, message: &str, vc: &str) -> Result<usize> {
    Ok(log_events(log, message)?
        .iter()
        .filter(|f| f.get("vcenter").and_then(|v| v.as_str()) == Some(vc))
        .count())
}

#[test]
fn sighup_adds_and_removes_vcenters_and_refuses_a_bad_file() -> Result<()> {
    let e = Estate::start(&SimOptions::default())?;
    let cfg = e.agent_config(
        PASSWORD,
        "inventory_interval_secs = 600\n\n[perf]\nenabled = false\n",
    )?;
    let original = std::fs::read_to_string(&cfg)?;
    let (head, _) = original
        .split_once("[[vcenter]]")
        .ok_or_else(|| anyhow::anyhow!("no vcenter block"))?;
    // The same simulator under a second name is a second vCenter to the agent.
    let second = format!(
        "\n[[vcenter]]\nname = \"sim-b\"\nurl = \"{}\"\nusername = \"{USER}\"\npassword_file = \"{}\"\n[vcenter.tls]\nthumbprint_sha256 = \"{}\"\n",
        e.sim.url,
        e.dir.path().join("vc.password").display(),
        e.certs.thumbprint
    );
    let log = e.dir.path().join("agent.log");
    let agent = Agent::spawn(&cfg, &log)?;
    let done = "inventory round complete";
    wait_until(Duration::from_secs(60), "the first inventory", || {
        Ok(events_for(&log, done, "sim")? >= 1)
    })?;

    std::fs::write(&cfg, format!("{original}{second}"))?;
    agent.signal("HUP")?;
    wait_until(Duration::from_secs(60), "sim-b added", || {
        Ok(events_for(&log, done, "sim-b")? >= 1)
    })?;

    std::fs::write(&cfg, "[[vcenter]]\nurl = \"http://nope\"\n")?;
    agent.signal("HUP")?;
    wait_until(Duration::from_secs(30), "the bad file refused", || {
        Ok(!log_events(
            &log,
            "invalid configuration on reload (SIGHUP); keeping the running one",
        )?
        .is_empty())
    })?;

    std::fs::write(&cfg, format!("{head}{second}"))?;
    agent.signal("HUP")?;
    wait_until(
        Duration::from_secs(30),
        "sim removed and logged out",
        || Ok(events_for(&log, "logged out", "sim")? >= 1),
    )?;
    assert_eq!(
        events_for(&log, "logged out", "sim-b")?,
        0,
        "sim-b keeps running"
    );
    assert_eq!(
        events_for(&log, done, "sim")?,
        1,
        "sim was not inventoried again"
    );
    assert_eq!(agent.terminate(Duration::from_secs(30))?, Some(0));
    assert_eq!(events_for(&log, "logged out", "sim-b")?, 1);
    Ok(())
}
