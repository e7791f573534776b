//! The shipped systemd units and sysusers file: `systemd-analyze verify` accepts them,
//! their sandboxing keeps `systemd-analyze security` exposure at or under 2.0 (the figure
//! is printed), and sysusers creates the service users.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result};
use vscout_e2e::{built_binary, workspace_root};

fn units_dir() -> PathBuf {
    workspace_root().join("systemd")
}

/// The units with their ExecStart pointing at the built binaries (verify checks that the
/// executable exists).
fn staged_units(dir: &std::path::Path) -> Result<Vec<PathBuf>> {
    let agent = built_binary("vscout")?;
    let collector = built_binary("vscout-collector")?;
    let mut out = Vec::new();
    for name in ["vscout-agent.service", "vscout-collector.service"] {
        let text = std::fs::read_to_string(units_dir().join(name))?
            .replace(
                "/usr/bin/vscout-collector",
                &collector.display().to_string(),
            )
            .replace("/usr/bin/vscout ", &format!("{} ", agent.display()));
        let path = dir.join(name);
        std::fs::write(&path, text)?;
        out.push(path);
    }
    Ok(out)
}

fn analyze(args: &[&str], dir: &std::path::Path) -> Result<std::process::Output> {
    Command::new("systemd-analyze")
        .args(args)
        .current_dir(dir)
        .output()
        .context("systemd-analyze is missing: scripts/setup installs it (package systemd)")
}

#[test]
fn units_verify_and_are_sandboxed() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let units = staged_units(dir.path())?;
    let names: Vec<String> = units
        .iter()
        .filter_map(|u| u.file_name()?.to_str().map(str::to_owned))
        .collect();
    let mut args = vec!["verify", "--man=no"];
    args.extend(names.iter().map(String::as_str));
    let out = analyze(&args, dir.path())?;
    assert!(
        out.status.success(),
        "systemd-analyze verify: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for name in &names {
        let out = analyze(&["security", "--offline=yes", name], dir.path())?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let line = text
            .lines()
            .find(|l| l.contains("Overall exposure level"))
            .with_context(|| format!("no exposure line for {name}: {text}"))?;
        let score: f64 = line
            .split(':')
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .with_context(|| format!("cannot read the score in {line:?}"))?;
        eprintln!("{name}: systemd-analyze security exposure {score}");
        assert!(score <= 2.0, "{name}: exposure {score} > 2.0\n{text}");
    }
    Ok(())
}

#[test]
fn sysusers_creates_the_service_users() -> Result<()> {
    let root = tempfile::tempdir()?;
    std::fs::create_dir_all(root.path().join("etc"))?;
    let out = Command::new("systemd-sysusers")
        .arg(format!("--root={}", root.path().display()))
        .arg(units_dir().join("vscout.sysusers"))
        .output()
        .context("systemd-sysusers is missing: scripts/setup installs it (package systemd)")?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let passwd = std::fs::read_to_string(root.path().join("etc/passwd"))?;
    for user in ["vscout:", "vscout-collector:"] {
        let line = passwd
            .lines()
            .find(|l| l.starts_with(user))
            .with_context(|| format!("{user} missing: {passwd}"))?;
        assert!(line.ends_with("/usr/sbin/nologin"), "{line}");
    }
    Ok(())
}
