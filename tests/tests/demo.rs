//! The README's first command stays true: the demo binary starts vcsim, the collector and
//! the agent, and the collector receives the VMs and rollups.

use std::process::Command;

use anyhow::Result;
use vscout_e2e::built_binary;

#[test]
fn the_demo_gets_vms_and_rollups_into_the_collector() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let out = dir.path().join("demo-output");
    let child = Command::new(built_binary("vscout-demo")?)
        .arg("--until-rollups")
        .arg(&out)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    let output = vscout_e2e::wait_with_deadline(child, std::time::Duration::from_secs(300))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "demo failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("210 VMs,"), "{stdout}");
    assert!(stdout.contains("/metrics ->"), "{stdout}");
    assert!(stdout.contains("agent exited with Some(0)"), "{stdout}");
    assert!(out.join("collector/collector.db").is_file());
    assert!(out.join("vms.csv").is_file() && out.join("inventory.json").is_file());
    Ok(())
}
