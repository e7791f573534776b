//! The appliance's all-in-one first boot, run under a scratch root with the real
//! `vscout-collector`: the collector's configuration starts a collector whose certificate
//! the agent's configuration pins, the agent's token ingests, the viewer's password logs
//! in (a wrong one does not), running it again rotates the token, and switching to agent
//! mode keeps the local database readable. (The booted image: packaging/appliance/boot-test.)

use std::path::Path;
use std::process::Command;

use anyhow::{ensure, Context, Result};
use vscout::appliance::firstboot::keys;
use vscout::ship::batch::BATCH_VERSION;
use vscout_e2e::built_binary;
use vscout_e2e::collector::{client, health_batch, post, Collector};

/// An OVF environment document with these properties.
fn ovf_env(props: &[(&str, &str)]) -> String {
    let mut xml = String::from(
        "<?xml version=\"1.0\"?>\n<Environment xmlns=\"http://schemas.dmtf.org/ovf/environment/1\" xmlns:oe=\"http://schemas.dmtf.org/ovf/environment/1\"><PropertySection>\n",
    );
    for (k, v) in props {
        xml.push_str(&format!(
            "<Property oe:key=\"{k}\" oe:value=\"{}\"/>\n",
            quick_xml::escape::escape(*v)
        ));
    }
    xml.push_str("</PropertySection></Environment>\n");
    xml
}

/// `vscout firstboot` under `root` with these properties: its standard output.
fn firstboot(root: &Path, props: &[(&str, &str)]) -> Result<String> {
    let env = root.with_extension("ovfenv.xml");
    std::fs::write(&env, ovf_env(props))?;
    let out = Command::new(built_binary("vscout")?)
        .arg("firstboot")
        .arg("--ovf-env")
        .arg(&env)
        .arg("--root")
        .arg(root)
        .arg("--collector-bin")
        .arg(built_binary("vscout-collector")?)
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    ensure!(
        out.status.success(),
        "firstboot: {}\n{stdout}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(stdout)
}

/// The status of an ingest with `token` (each with its own idempotency key).
fn ingest(col: &Collector, token: &str) -> Result<u16> {
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let key = format!(
        "appliance:{}",
        SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    let http = client(col, None)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let r = rt.block_on(post(
        &http,
        col,
        Some(token),
        Some(&key),
        health_batch(BATCH_VERSION)?,
    ))?;
    Ok(r.status().as_u16())
}

const VIEWER_PASSWORD: &str = "v1ew \"er\" & <pages>";

#[test]
fn all_in_one_first_boot_provisions_the_local_collector() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let root = dir.path().join("root");
    let base = [
        (keys::VCENTER_URL, "https://vc.example.com/sdk"),
        (keys::VCENTER_USER, "scout"),
        (keys::VCENTER_PASSWORD, "vc-secret"),
        (keys::VIEWER_PASSWORD, VIEWER_PASSWORD),
    ];
    let out = firstboot(&root, &base)?;
    ensure!(
        out.contains("all-in-one: the collector keeps 5-minute windows"),
        "{out}"
    );
    ensure!(
        !out.contains("v1ew"),
        "the viewer password on the console: {out}"
    );
    let etc = root.join("etc/vscout");
    ensure!(std::fs::read_to_string(root.join("var/lib/vscout-appliance/mode"))? == "all-in-one\n");
    let data = root.join("var/lib/vscout-collector");
    let config = etc.join("collector.toml");
    let mut col = Collector::start_with(&data, 0, Some(&config))?;
    ensure!(
        !data.join("first-agent.token").exists(),
        "the collector made a first token although first boot made the agent's"
    );
    // The agent's configuration pins this collector's certificate, on loopback.
    let agent = std::fs::read_to_string(etc.join("agent.toml"))?;
    ensure!(agent.contains("url = \"https://127.0.0.1\""), "{agent}");
    ensure!(
        agent.contains(&format!("thumbprint_sha256 = \"{}\"", col.thumbprint)),
        "agent.toml does not pin {}: {agent}",
        col.thumbprint
    );
    let token = std::fs::read_to_string(etc.join("credentials/collector-token"))?;
    ensure!(ingest(&col, &token)? == 200, "the agent's token is refused");
    ensure!(
        col.log_in("viewer", VIEWER_PASSWORD)?.is_ok(),
        "the viewer cannot log in"
    );
    ensure!(
        col.log_in("viewer", "wrong")?.is_err(),
        "a wrong password logged in"
    );
    let issue = std::fs::read_to_string(root.join("etc/issue.d/vscout.issue"))?;
    ensure!(issue.contains(&col.thumbprint), "{issue}");

    // Again: a new token; the one before it is revoked, the viewer still logs in.
    firstboot(&root, &base)?;
    let again = std::fs::read_to_string(etc.join("credentials/collector-token"))?;
    ensure!(again != token, "the token was not rotated");
    ensure!(ingest(&col, &token)? == 401, "the old token still ingests");
    ensure!(ingest(&col, &again)? == 200, "the new token is refused");
    ensure!(col.log_in("viewer", VIEWER_PASSWORD)?.is_ok());

    // Agent mode: the agent ships elsewhere; the local database stays readable.
    col.stop();
    let mut remote = base.to_vec();
    remote.push((keys::COLLECTOR_URL, "https://central.example.com:8443"));
    remote.push((keys::COLLECTOR_TOKEN, "central-token"));
    let out = firstboot(&root, &remote)?;
    ensure!(!out.contains("all-in-one"), "{out}");
    let agent = std::fs::read_to_string(etc.join("agent.toml"))?;
    ensure!(
        agent.contains("url = \"https://central.example.com:8443\""),
        "{agent}"
    );
    ensure!(std::fs::read_to_string(root.join("var/lib/vscout-appliance/mode"))? == "agent\n");
    let users = Command::new(built_binary("vscout-collector")?)
        .arg("--config")
        .arg(&config)
        .arg("--data-dir")
        .arg(&data)
        .args(["user", "list"])
        .output()?;
    let users = String::from_utf8(users.stdout).context("utf-8")?;
    ensure!(users.lines().any(|l| l.starts_with("viewer ")), "{users}");
    Ok(())
}
