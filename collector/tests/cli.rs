//! The collector's command line: exit codes an operator and systemd rely on (64 for bad
//! configuration, 73 for an unusable data directory), and `token add`.

use std::process::Command;

fn collector() -> Command {
    Command::new(env!("CARGO_BIN_EXE_vscout-collector"))
}

#[test]
fn bad_configuration_exits_64_and_names_the_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, "listen_adress = \"127.0.0.1:1\"\n").expect("write");
    let out = collector().arg("--config").arg(&cfg).output().expect("run");
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("listen_adress"));
    let out = collector()
        .args(["--listen", "not-an-address"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not-an-address"));
}

#[test]
fn token_add_prints_a_token_and_an_unusable_data_dir_exits_73() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = collector()
        .arg("--data-dir")
        .arg(dir.path())
        .args(["token", "add", "agent-7"])
        .output()
        .expect("run");
    assert!(out.status.success(), "{out:?}");
    let token = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert_eq!(token.len(), 64);
    // Names are unique.
    let again = collector()
        .arg("--data-dir")
        .arg(dir.path())
        .args(["token", "add", "agent-7"])
        .output()
        .expect("run");
    assert!(!again.status.success());
    let file = dir.path().join("file");
    std::fs::write(&file, "").expect("write");
    let out = collector()
        .arg("--data-dir")
        .arg(file.join("sub"))
        .args(["token", "add", "x"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(73), "{out:?}");
}
