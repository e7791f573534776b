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

/// An OVF environment with the three required properties, in agent mode (all-in-one,
/// the default without a collector URL, needs the collector's binary:
/// tests/tests/appliance_all_in_one.rs); `password` is XML-escaped.
fn ovf_env(password: &str) -> String {
    format!(
        r#"<?xml version="1.0"?><Environment xmlns="http://schemas.dmtf.org/ovf/environment/1" xmlns:oe="http://schemas.dmtf.org/ovf/environment/1"><PropertySection>
<Property oe:key="vscout.vcenter_url" oe:value="https://vc.example.com/sdk"/>
<Property oe:key="vscout.vcenter_user" oe:value="svc@vsphere.local"/>
<Property oe:key="vscout.vcenter_password" oe:value="{password}"/>
<Property oe:key="vscout.mode" oe:value="agent"/>
</PropertySection></Environment>"#
    )
}

#[test]
fn firstboot_writes_the_appliance_configuration_or_names_what_is_wrong() {
    let dir = tempfile::tempdir().expect("tmp");
    let env = dir.path().join("ovfenv.xml");
    std::fs::write(&env, ovf_env("s3cr&quot;t")).expect("write");
    let root = dir.path().join("root");
    let firstboot = || {
        vscout()
            .args(["firstboot", "--ovf-env"])
            .arg(&env)
            .arg("--root")
            .arg(&root)
            .output()
            .expect("run")
    };
    let out = firstboot();
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("/etc/vscout/agent.toml"), "{stdout}");
    assert!(!stdout.contains("s3cr"), "no secret on the console");
    assert_eq!(
        std::fs::read_to_string(root.join("etc/vscout/credentials/vcenter-password")).expect("pw"),
        "s3cr\"t"
    );
    // The written configuration is valid for the agent (with its credential).
    let out = vscout()
        .arg("--config")
        .arg(root.join("etc/vscout/agent.toml"))
        .arg("status")
        .env("CREDENTIALS_DIRECTORY", root.join("etc/vscout/credentials"))
        .output()
        .expect("run");
    assert_eq!(
        out.status.code(),
        Some(1),
        "valid config, no agent running: {out:?}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot reach the agent"));

    std::fs::write(&env, "<Environment><PropertySection/></Environment>").expect("write");
    let out = firstboot();
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("vscout.vcenter_url"));
}

/// Without `--ovf-env`, first boot asks VMware Tools: `vmtoolsd --cmd "info-get
/// guestinfo.ovfEnv"`. A stand-in `vmtoolsd` on PATH answers only that exact question.
#[test]
fn firstboot_reads_the_ovf_environment_from_vmware_tools() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tmp");
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).expect("bin");
    let doc = dir.path().join("ovfenv.xml");
    std::fs::write(&doc, ovf_env("from-tools")).expect("write");
    let fake = |answer: &str| {
        let script = format!(
            "#!/bin/sh\nif [ \"$#\" = 2 ] && [ \"$1\" = --cmd ] && [ \"$2\" = 'info-get guestinfo.ovfEnv' ]; then {answer}; fi\necho \"unexpected arguments: $*\" >&2; exit 2\n"
        );
        let path = bin.join("vmtoolsd");
        std::fs::write(&path, script).expect("script");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    };
    let run = |path_var: &std::ffi::OsStr, root: &std::path::Path| {
        vscout()
            .args(["firstboot", "--root"])
            .arg(root)
            .env("PATH", path_var)
            .output()
            .expect("run")
    };

    // PATH holds only the stand-in, hence /bin/cat.
    fake(&format!("/bin/cat '{}'; exit 0", doc.display()));
    let root = dir.path().join("root");
    let out = run(bin.as_os_str(), &root);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        std::fs::read_to_string(root.join("etc/vscout/credentials/vcenter-password")).expect("pw"),
        "from-tools"
    );

    // Deployed without its vApp properties: VMware Tools has no value to give.
    fake("echo 'No value found' >&2; exit 1");
    let out = run(bin.as_os_str(), &dir.path().join("root2"));
    assert_eq!(out.status.code(), Some(64), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("vApp properties") && stderr.contains("No value found"),
        "{stderr}"
    );

    // No VMware Tools at all.
    let out = run(
        dir.path().join("empty").as_os_str(),
        &dir.path().join("root3"),
    );
    assert_eq!(out.status.code(), Some(64), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot run vmtoolsd"),
        "{out:?}"
    );
}

/// Issue 11: `vscout perf` without `--once` exited 1, clap's own errors 2.
#[test]
fn usage_errors_exit_64_and_help_exits_0() {
    let cases: [&[&str]; 5] = [
        &["perf", "--output", "x.jsonl"],
        &[
            "perf",
            "--once",
            "--window-secs",
            "30",
            "--output",
            "x.jsonl",
        ],
        &["--bogus"],
        &["inventory", "--format", "xml"],
        &[],
    ];
    for args in cases {
        let out = vscout().args(args).output().expect("run");
        assert_eq!(out.status.code(), Some(64), "{args:?}: {out:?}");
        assert!(!out.stderr.is_empty(), "{args:?} says why");
    }
    let out = vscout().arg("--help").output().expect("run");
    assert_eq!(out.status.code(), Some(0));
}

/// `firstboot` is the appliance's own step: not on the first screen of `--help`.
#[test]
fn help_leaves_out_the_appliance_firstboot() {
    let out = vscout().arg("--help").output().expect("run");
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(
        help.contains("inventory") && help.contains("check"),
        "{help}"
    );
    assert!(!help.contains("firstboot"), "{help}");
}
