//! The README's first command stays true: the demo binary starts vcsim, the collector and
//! the agent, and the collector receives the VMs and rollups — and a second run on the
//! same output directory works too (issue 11: it failed every time after the first).

use std::path::Path;
use std::process::Command;

use anyhow::Result;
use vscout_e2e::built_binary;

/// Runs the demo into `out` until the first VM rollups are reported; returns its stdout.
fn demo(out: &Path) -> Result<String> {
    let child = Command::new(built_binary("vscout-demo")?)
        .arg("--until-rollups")
        .arg(out)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    let output = vscout_e2e::wait_with_deadline(child, std::time::Duration::from_secs(300))?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "demo failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(stdout)
}

#[test]
fn the_demo_gets_vms_and_rollups_into_the_collector_twice_in_a_row() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let out = dir.path().join("demo-output");
    for run in 1..=2 {
        let stdout = demo(&out)?;
        assert!(stdout.contains("210 VMs,"), "run {run}:\n{stdout}");
        assert_eq!(
            stdout.contains("holds a previous demo run: starting over"),
            run == 2,
            "run {run}:\n{stdout}"
        );
        // The VM's own rows, not a header over nothing (the first rollups in may be a
        // cluster's or a datastore's).
        let report = stdout
            .split_once("/metrics ->")
            .map(|(_, r)| r)
            .unwrap_or_default();
        assert!(
            report.lines().any(|l| l.trim_start().starts_with("cpu.")
                || l.trim_start().starts_with("mem.")
                || l.trim_start().starts_with("disk.")
                || l.trim_start().starts_with("net.")),
            "run {run}: no VM rollup rows printed:\n{stdout}"
        );
        // Issue 14: the assessment's totals, both clouds.
        for cloud in ["azure eastus", "aws   us-east-1"] {
            assert!(
                stdout
                    .lines()
                    .any(|l| l.contains(cloud) && l.contains("210 VMs:") && l.contains("/month")),
                "run {run}: no {cloud} totals:\n{stdout}"
            );
        }
        assert!(
            stdout.contains("log in as \"demo\" with password"),
            "run {run}: the pages' URL and log-in:\n{stdout}"
        );
        assert!(
            stdout.contains("agent exited with Some(0)"),
            "run {run}:\n{stdout}"
        );
        assert!(out.join("collector/collector.db").is_file());
        assert!(out.join("vms.csv").is_file() && out.join("inventory.json").is_file());
        // Issue 15: the agent's workbook and the collector's, read back by openpyxl.
        for (file, tabs) in [("inventory.xlsx", 11), ("fleet.xlsx", 15)] {
            let book = vscout_e2e::workbook::read(&out.join(file))?;
            assert_eq!(book.len(), tabs, "run {run}: {file}");
            assert_eq!(book[0].1.rows.len(), 210, "run {run}: {file} vInfo");
        }
        assert!(
            stdout.contains("GET /v1/export.xlsx -> wrote the workbook"),
            "run {run}:\n{stdout}"
        );
        let db = rusqlite::Connection::open_with_flags(
            out.join("collector/collector.db"),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )?;
        let impossible: i64 = db.query_row(
            "SELECT count(*) FROM rollups WHERE count > expected",
            [],
            |r| r.get(0),
        )?;
        assert_eq!(
            impossible, 0,
            "run {run}: windows with more samples than they can hold"
        );
        let agents: i64 = db.query_row("SELECT count(*) FROM agents", [], |r| r.get(0))?;
        assert_eq!(
            agents, 1,
            "run {run}: the collector starts over with the demo"
        );
    }
    Ok(())
}

#[test]
fn the_demo_refuses_a_directory_that_is_not_its_own() -> Result<()> {
    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join("thesis.tex"), "keep me")?;
    let output = Command::new(built_binary("vscout-demo")?)
        .arg("--until-rollups")
        .arg(dir.path())
        .output()?;
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("is not a previous demo's output"),
        "{stderr}"
    );
    assert!(stderr.contains("thesis.tex"), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("thesis.tex"))?,
        "keep me"
    );
    Ok(())
}
