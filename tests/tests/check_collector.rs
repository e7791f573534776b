//! `vscout check` against a real collector: DNS, TCP, TLS (pinned), the token and the
//! clock pass; a wrong token, a wrong pin and a closed port each fail with a fix, and the
//! exit status is 1.

use std::process::Command;

use anyhow::Result;
use vscout_e2e::collector::Collector;
use vscout_e2e::{built_binary, Estate, SimOptions, PASSWORD};

fn check(cfg: &str) -> Result<(Option<i32>, String)> {
    let out = Command::new(built_binary("vscout")?)
        .args(["--config", cfg, "check"])
        .env("RUST_LOG", "error")
        .output()?;
    Ok((
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    ))
}

fn row<'a>(table: &'a str, check: &str) -> Option<&'a str> {
    table
        .lines()
        .find(|l| l.starts_with("collector ") && l.split_whitespace().nth(1) == Some(check))
}

#[test]
fn check_tests_the_collector_too() -> Result<()> {
    let e = Estate::start(&SimOptions::default())?;
    let col = Collector::start(&e.dir.path().join("collector"))?;
    let cfg = e.agent_config(PASSWORD, &col.agent_section(None))?;
    let (code, table) = check(&cfg)?;
    assert_eq!(code, Some(0), "{table}");
    for (name, needle) in [
        ("dns", "127.0.0.1"),
        ("tcp", "reachable"),
        ("tls", &col.thumbprint),
        ("auth", "token accepted"),
        ("clock", "skew"),
    ] {
        let line = row(&table, name).unwrap_or_default();
        assert!(
            line.contains("PASS") && line.contains(needle),
            "{name}: {line:?}\n{table}"
        );
    }

    // A token the collector does not know.
    let bad = e.dir.path().join("bad.token");
    std::fs::write(&bad, "0000\n")?;
    let text = std::fs::read_to_string(&cfg)?;
    std::fs::write(
        &cfg,
        text.replace(
            &col.token_file.display().to_string(),
            &bad.display().to_string(),
        ),
    )?;
    let (code, table) = check(&cfg)?;
    assert_eq!(code, Some(1));
    let line = row(&table, "auth").unwrap_or_default();
    assert!(
        line.contains("FAIL") && line.contains("401") && line.contains("token add"),
        "{table}"
    );

    // The wrong pin: the table shows the thumbprint the collector presented.
    let wrong = "00:".repeat(31) + "00";
    std::fs::write(&cfg, text.replace(&col.thumbprint, &wrong))?;
    let (code, table) = check(&cfg)?;
    assert_eq!(code, Some(1));
    let line = row(&table, "tls").unwrap_or_default();
    assert!(
        line.contains("FAIL") && line.contains(&col.thumbprint),
        "{table}"
    );

    // Nothing listening.
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    std::fs::write(
        &cfg,
        text.replace(&col.url, &format!("https://127.0.0.1:{port}")),
    )?;
    let (code, table) = check(&cfg)?;
    assert_eq!(code, Some(1));
    let line = row(&table, "tcp").unwrap_or_default();
    assert!(
        line.contains("FAIL") && line.contains("firewall"),
        "{table}"
    );
    Ok(())
}
