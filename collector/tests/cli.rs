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
    let again = collector()
        .arg("--data-dir")
        .arg(dir.path())
        .args(["token", "add", "agent-7"])
        .output()
        .expect("run");
    // Names are unique, and the refusal says so (it was "storage error: UNIQUE
    // constraint failed: tokens.name").
    assert_eq!(again.status.code(), Some(64), "{again:?}");
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(
        err.contains("a token named \"agent-7\" already exists"),
        "{err}"
    );
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

#[test]
fn usage_errors_exit_64_and_help_exits_0() {
    for args in [
        &["--bogus"][..],
        &["token"],
        &["token", "add"],
        &["serve", "extra"],
    ] {
        let out = collector().args(args).output().expect("run");
        assert_eq!(out.status.code(), Some(64), "{args:?}: {out:?}");
    }
    let out = collector().arg("--help").output().expect("run");
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("token"));
}

#[test]
fn tokens_are_listed_and_revoked_by_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = |args: &[&str]| {
        collector()
            .arg("--data-dir")
            .arg(dir.path())
            .args(args)
            .output()
            .expect("run")
    };
    for name in ["dc1", "dc2"] {
        assert!(run(&["token", "add", name]).status.success());
    }
    let list = run(&["token", "list"]);
    assert!(list.status.success());
    let text = String::from_utf8_lossy(&list.stdout).into_owned();
    let names: Vec<&str> = text
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(names, ["dc1", "dc2"], "{text}");
    assert!(text.contains("never"), "no agent used them yet: {text}");
    // The list never shows a token, only names.
    assert!(!text
        .lines()
        .any(|l| l.len() > 32 && l.chars().all(|c| c.is_ascii_hexdigit())));
    let out = run(&["token", "revoke", "dc1"]);
    assert!(out.status.success(), "{out:?}");
    let out = run(&["token", "revoke", "dc1"]);
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no token named \"dc1\""));
    let text = String::from_utf8_lossy(&run(&["token", "list"]).stdout).into_owned();
    assert!(!text.contains("dc1") && text.contains("dc2"), "{text}");
    // The name is free again.
    assert!(run(&["token", "add", "dc1"]).status.success());
}
