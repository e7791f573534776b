//! The binary's command line: version, and configuration errors exit 64 naming the key.

use std::process::Command;

fn vscout() -> Command {
    Command::new(env!("CARGO_BIN_EXE_vscout"))
}

#[test]
fn version_is_printed() {
    let out = vscout().arg("--version").output().expect("run");
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains(env!("CARGO_PKG_VERSION")));
}

#[test]
fn bad_config_exits_64_and_names_the_key() {
    let dir = tempfile::tempdir().expect("tmp");
    let cfg = dir.path().join("agent.toml");
    std::fs::write(
        &cfg,
        "[agent]\ninventory_interval_secs = 0\n[[vcenter]]\nurl = \"https://vc\"\n",
    )
    .expect("write");
    let out = vscout()
        .arg("--config")
        .arg(&cfg)
        .arg("inventory")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("agent.inventory_interval_secs = 0"), "{err}");

    std::fs::write(&cfg, "[agent]\nbogus_key = 1\n").expect("write");
    let out = vscout()
        .arg("--config")
        .arg(&cfg)
        .arg("check")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bogus_key"));

    let out = vscout()
        .arg("--config")
        .arg(dir.path().join("missing.toml"))
        .arg("run")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.toml"));
}

#[test]
fn example_config_is_valid() {
    let dir = tempfile::tempdir().expect("tmp");
    let pw = dir.path().join("pw");
    std::fs::write(&pw, "secret\n").expect("write");
    let text = include_str!("../examples/agent.toml")
        .replace("/etc/vscout/vc01.password", pw.to_str().expect("utf8"))
        .replace("/etc/vscout/collector.token", pw.to_str().expect("utf8"));
    let cfg = vscout::config::from_toml_str(&text).expect("the shipped example must be valid");
    assert_eq!(cfg.vcenters.len(), 1);
    assert_eq!(cfg.vcenters[0].name, "vc01");
    let collector = cfg.collector.expect("[collector]");
    assert_eq!(
        collector.url.as_str(),
        "https://collector.example.com:8443/"
    );
    assert_eq!(cfg.buffer.max_bytes, 1 << 30);
}
