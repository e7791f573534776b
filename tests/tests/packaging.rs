//! The .deb packages, built by `packaging/deb/build` from the test build's binaries and
//! installed with dpkg into a root of their own (`dpkg --root`, maintainer scripts run
//! with `$DPKG_ROOT`): files, conffiles, service user, state directory, the unit enabled;
//! an upgrade keeps the configuration and the buffer; a purge removes the state.

use std::path::Path;
use std::process::Command;

use anyhow::{ensure, Context, Result};
use vscout_e2e::{built_binary, workspace_root};

fn run(cmd: &mut Command) -> Result<String> {
    let out = cmd.output().with_context(|| format!("{cmd:?}"))?;
    ensure!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn dpkg(root: &Path, args: &[&str]) -> Result<String> {
    // The isolated root has no libc6 package: its dependency is the host's.
    run(Command::new("dpkg")
        .arg(format!("--root={}", root.display()))
        .args([
            "--force-script-chrootless",
            "--force-depends",
            "--log=/dev/null",
        ])
        .args(args))
}

#[test]
fn the_agent_package_installs_upgrades_and_purges() -> Result<()> {
    let bin_dir = built_binary("vscout")?
        .parent()
        .context("bin dir")?
        .to_owned();
    built_binary("vscout-collector")?;
    let out = tempfile::tempdir()?;
    let listing = run(Command::new("bash")
        .arg(workspace_root().join("packaging/deb/build"))
        .arg("--bin-dir")
        .arg(&bin_dir)
        .arg("--out")
        .arg(out.path())
        .arg("--fast"))?;
    let debs: Vec<&str> = listing.lines().collect();
    assert_eq!(debs.len(), 2, "{listing}");
    let agent = debs
        .iter()
        .find(|d| d.contains("/vscout_"))
        .context("agent deb")?;
    let collector = debs
        .iter()
        .find(|d| d.contains("/vscout-collector_"))
        .context("collector deb")?;

    let contents = run(Command::new("dpkg-deb").args(["--contents", agent]))?;
    for f in [
        "./usr/bin/vscout",
        "./usr/lib/systemd/system/vscout-agent.service",
        "./usr/lib/sysusers.d/vscout.conf",
        "./usr/lib/tmpfiles.d/vscout.conf",
        "./etc/vscout/agent.toml.example",
    ] {
        assert!(
            contents.contains(f),
            "{f} missing from the agent package:\n{contents}"
        );
    }
    let conffiles = run(Command::new("dpkg-deb").args(["--info", agent, "conffiles"]))?;
    assert_eq!(conffiles.trim(), "/etc/vscout/agent.toml.example");
    let ccontents = run(Command::new("dpkg-deb").args(["--contents", collector]))?;
    assert!(ccontents.contains("./usr/bin/vscout-collector"));
    assert!(ccontents.contains("./usr/lib/systemd/system/vscout-collector.service"));

    let root = tempfile::tempdir()?;
    let r = root.path();
    for d in ["var/lib/dpkg/updates", "var/lib/dpkg/info", "etc"] {
        std::fs::create_dir_all(r.join(d))?;
    }
    std::fs::write(r.join("var/lib/dpkg/status"), "")?;
    dpkg(r, &["-i", agent])?;
    assert!(r.join("usr/bin/vscout").is_file());
    let passwd = std::fs::read_to_string(r.join("etc/passwd"))?;
    assert!(passwd.lines().any(|l| l.starts_with("vscout:")), "{passwd}");
    assert!(r.join("var/lib/vscout").is_dir(), "state directory");
    // A symlink to the unit inside the root (exists() would follow it to the host).
    let wants = r.join("etc/systemd/system/multi-user.target.wants/vscout-agent.service");
    assert!(wants.symlink_metadata().is_ok(), "unit enabled");
    assert!(
        !r.join("etc/vscout/agent.toml").exists(),
        "not configured, so it does not start"
    );

    // Upgrade (reinstall): the operator's config, the edited example and the buffer stay.
    std::fs::write(r.join("etc/vscout/agent.toml"), "# operator's\n")?;
    let example = r.join("etc/vscout/agent.toml.example");
    let edited = std::fs::read_to_string(&example)? + "# edited\n";
    std::fs::write(&example, &edited)?;
    std::fs::create_dir_all(r.join("var/lib/vscout/buffer"))?;
    std::fs::write(r.join("var/lib/vscout/buffer/cursor"), "x")?;
    dpkg(r, &["--force-confold", "-i", agent])?;
    assert_eq!(
        std::fs::read_to_string(r.join("etc/vscout/agent.toml"))?,
        "# operator's\n"
    );
    assert_eq!(std::fs::read_to_string(&example)?, edited);
    assert!(
        r.join("var/lib/vscout/buffer/cursor").exists(),
        "buffer kept"
    );

    // Remove keeps state; purge removes it.
    dpkg(r, &["--remove", "vscout"])?;
    assert!(!r.join("usr/bin/vscout").exists());
    assert!(r.join("var/lib/vscout/buffer/cursor").exists());
    dpkg(r, &["--purge", "vscout"])?;
    assert!(
        !r.join("var/lib/vscout").exists(),
        "purge removes the state"
    );
    assert!(!example.exists(), "purge removes the conffile");
    assert!(wants.symlink_metadata().is_err(), "unit disabled");
    Ok(())
}
