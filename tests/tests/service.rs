//! The agent as a systemd service, without systemd (this machine's PID 1 is not systemd):
//! a test socket stands in for `$NOTIFY_SOCKET` and receives what systemd would (READY
//! once the first login was tried, STATUS lines, WATCHDOG at a third of `WatchdogSec`,
//! STOPPING on SIGTERM), the password comes from `$CREDENTIALS_DIRECTORY`, SIGHUP reloads
//! the configuration, and `/metrics`, `/healthz` and `vscout status` report.

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
    // The password comes as a systemd credential (LoadCredential=), as the unit does it.
    let creds = e.dir.path().join("credentials");
    std::fs::create_dir_all(&creds)?;
    std::fs::write(creds.join("vc-password"), format!("{PASSWORD}\n"))?;
    let pw_line = format!(
        "password_file = \"{}\"",
        e.dir.path().join("vc.password").display()
    );
    let text = std::fs::read_to_string(&cfg)?;
    assert!(text.contains(&pw_line));
    std::fs::write(
        &cfg,
        text.replace(&pw_line, "password_credential = \"vc-password\""),
    )?;
    std::fs::remove_file(e.dir.path().join("vc.password"))?;
    let log = e.dir.path().join("agent.log");
    let path = sock_path.display().to_string();
    let creds_dir = creds.display().to_string();
    let agent = Agent::spawn_with_env(
        &cfg,
        &log,
        &[
            ("NOTIFY_SOCKET", &path),
            ("WATCHDOG_USEC", "3000000"),
            ("CREDENTIALS_DIRECTORY", &creds_dir),
        ],
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

#[test]
fn metrics_healthz_and_vscout_status_tell_what_the_agent_does() -> Result<()> {
    let opts = SimOptions::default();
    let e = Estate::start(&opts)?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let cfg = e.agent_config(
        PASSWORD,
        &format!("inventory_interval_secs = 600\nmetrics_listen = \"127.0.0.1:{port}\"\n\n[perf]\nenabled = false\n"),
    )?;
    let log = e.dir.path().join("agent.log");
    let agent = Agent::spawn(&cfg, &log)?;
    let get = |path: &str| -> Result<(u16, String)> {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
        write!(s, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
        let mut text = String::new();
        s.read_to_string(&mut text)?;
        let code = text
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        Ok((
            code,
            text.split_once("\r\n\r\n")
                .map(|b| b.1.to_owned())
                .unwrap_or_default(),
        ))
    };
    let vms_line = format!("vscout_vcenter_vms{{vcenter=\"sim\"}} {}", opts.vm_count());
    wait_until(Duration::from_secs(60), "the inventory in /metrics", || {
        Ok(get("/metrics")
            .map(|(_, b)| b.contains(&vms_line))
            .unwrap_or(false))
    })?;
    let (code, metrics) = get("/metrics")?;
    assert_eq!(code, 200);
    for name in [
        "vscout_vcenter_connected{vcenter=\"sim\"} 1",
        "vscout_inventory_rounds_total{vcenter=\"sim\"} 1",
        "vscout_vcenter_logins_total{vcenter=\"sim\"} 1",
        "vscout_buffer_depth_records ",
        "vscout_buffer_fs_free_bytes ",
        "vscout_process_resident_memory_bytes ",
        "# TYPE vscout_ship_retries_total counter",
    ] {
        assert!(metrics.contains(name), "{name} missing:\n{metrics}");
    }
    assert_eq!(get("/healthz")?, (200, "ok\n".to_owned()));
    let out = std::process::Command::new(vscout_e2e::built_binary("vscout")?)
        .args(["--config", &cfg, "status"])
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains(": HEALTHY"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("sim ") && l.contains(" yes ")),
        "{text}"
    );
    assert_eq!(agent.terminate(Duration::from_secs(30))?, Some(0));
    // With the agent gone, status says so and fails.
    let out = std::process::Command::new(vscout_e2e::built_binary("vscout")?)
        .args(["--config", &cfg, "status"])
        .output()?;
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot reach the agent"));
    Ok(())
}
