//! The collector's front door, against the real binary: requests without credentials, with
//! a wrong token or a client certificate from another CA, bodies over the limit, garbage
//! and unknown versions are all refused, and nothing of them is stored; a good batch is
//! stored once however often it is sent; the read API serves what was stored.

use std::process::Command;

use anyhow::{Context, Result};
use vscout::config::{parse_thumbprint, TlsPolicy};
use vscout::ship::batch::{self, AgentHealth, Batch, Record, BATCH_VERSION, HEALTH_SCHEMA_VERSION};
use vscout::tls::ClientIdentity;
use vscout_e2e::built_binary;
use vscout_e2e::collector::{ClientPki, Collector};

fn client(col: &Collector, identity: Option<&ClientPki>) -> Result<reqwest::Client> {
    let pin = parse_thumbprint(&col.thumbprint).map_err(anyhow::Error::msg)?;
    let id = identity.map(|p| ClientIdentity {
        cert_file: p.cert_pem.clone(),
        key_file: p.key_pem.clone(),
    });
    let tls = vscout::tls::client_config(
        &TlsPolicy::Pinned { sha256: pin },
        Default::default(),
        id.as_ref(),
    )
    .map_err(anyhow::Error::msg)?;
    Ok(reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .no_proxy()
        .build()?)
}

fn health_batch(version: u32) -> Result<Vec<u8>> {
    Ok(batch::encode(&Batch {
        batch_version: version,
        created_ms: 0,
        records: vec![Record::Health(AgentHealth {
            schema_version: HEALTH_SCHEMA_VERSION,
            version: "test".into(),
            buffer_depth: 7,
            ..AgentHealth::default()
        })],
    })?)
}

async fn post(
    http: &reqwest::Client,
    col: &Collector,
    token: Option<&str>,
    key: Option<&str>,
    body: Vec<u8>,
) -> Result<reqwest::Response> {
    let mut req = http
        .post(format!("{}/v1/ingest", col.url))
        .header("content-encoding", "zstd")
        .header("content-type", batch::CONTENT_TYPE)
        .body(body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(k) = key {
        req = req.header("idempotency-key", k);
    }
    Ok(req.send().await?)
}

#[tokio::test]
async fn the_collector_refuses_what_it_must_and_stores_the_rest_once() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let good = ClientPki::generate(dir.path(), "agent")?;
    let other = ClientPki::generate(dir.path(), "intruder")?;
    let config = dir.path().join("collector.toml");
    std::fs::write(
        &config,
        format!(
            "client_ca_file = \"{}\"\nmax_body_bytes = 4096\n",
            good.ca_pem.display()
        ),
    )?;
    // With a client CA no first token is made: issue one as an operator would.
    let out = Command::new(built_binary("vscout-collector")?)
        .arg("--data-dir")
        .arg(&data)
        .args(["token", "add", "agent-1"])
        .output()?;
    anyhow::ensure!(out.status.success(), "token add: {out:?}");
    let token = String::from_utf8(out.stdout)?.trim().to_owned();
    assert_eq!(token.len(), 64);
    let col = Collector::start_with(&data, 0, Some(&config))?;
    let db_text = std::fs::read(data.join("collector.db"))?;
    assert!(
        !String::from_utf8_lossy(&db_text).contains(&token),
        "the token itself is not stored"
    );

    let anon = client(&col, None)?;
    let key = Some("agent-x:1");
    let good_body = health_batch(BATCH_VERSION)?;
    // No credentials, a wrong token.
    let r = post(&anon, &col, None, key, good_body.clone()).await?;
    assert_eq!(r.status(), 401);
    let r = post(
        &anon,
        &col,
        Some("0".repeat(64).as_str()),
        key,
        good_body.clone(),
    )
    .await?;
    assert_eq!(r.status(), 401);
    assert!(r.text().await?.contains("unknown bearer token"));
    // A client certificate from another CA: the handshake itself fails.
    let intruder = client(&col, Some(&other))?;
    let err = post(&intruder, &col, None, key, good_body.clone())
        .await
        .expect_err("a certificate from another CA is refused");
    eprintln!("wrong client certificate: {err:#}");
    // Over the body limit, garbage, an unknown version, no idempotency key.
    let r = post(&anon, &col, Some(&token), key, vec![7u8; 8192]).await?;
    assert_eq!(r.status(), 413);
    let r = post(&anon, &col, Some(&token), key, b"garbage".to_vec()).await?;
    assert_eq!(r.status(), 400);
    assert!(
        r.text().await?.contains("zstd"),
        "the message says what was wrong"
    );
    let r = post(&anon, &col, Some(&token), key, health_batch(99)?).await?;
    assert_eq!(r.status(), 400);
    assert!(r.text().await?.contains("99"));
    let r = post(&anon, &col, Some(&token), None, good_body.clone()).await?;
    assert_eq!(r.status(), 400);
    for table in ["agents", "batches", "vms", "rollups", "series"] {
        assert_eq!(
            col.count(&format!("SELECT count(*) FROM {table}"))?,
            0,
            "{table} is empty"
        );
    }

    // A good batch is stored once, however often it comes.
    for attempt in 0..3 {
        let r = post(&anon, &col, Some(&token), key, good_body.clone()).await?;
        assert_eq!(r.status(), 200);
        let dup = r.headers().get("x-vscout-duplicate").is_some();
        assert_eq!(dup, attempt > 0, "attempt {attempt}");
    }
    assert_eq!(col.count("SELECT count(*) FROM batches")?, 1);
    // The right client certificate needs no token.
    let agent = client(&col, Some(&good))?;
    let r = post(&agent, &col, None, Some("agent-y:1"), good_body.clone()).await?;
    assert_eq!(r.status(), 200);
    assert_eq!(col.count("SELECT count(*) FROM batches")?, 2);

    // The read API needs credentials too, and shows the agents.
    let r = anon.get(format!("{}/v1/agents", col.url)).send().await?;
    assert_eq!(r.status(), 401);
    let agents: serde_json::Value = anon
        .get(format!("{}/v1/agents", col.url))
        .bearer_auth(&token)
        .send()
        .await?
        .bytes()
        .await
        .map(|b| serde_json::from_slice::<serde_json::Value>(&b))??;
    let list = agents.as_array().context("array")?;
    assert_eq!(list.len(), 2);
    let x = list
        .iter()
        .find(|a| a["agent_id"] == "agent-x")
        .context("agent-x")?;
    assert_eq!(x["buffer_depth"], 7);
    assert_eq!(x["duplicate_batches"], 2);
    assert_eq!(x["principal"], "token:agent-1");
    let health: serde_json::Value = anon
        .get(format!("{}/v1/health", col.url))
        .send()
        .await?
        .bytes()
        .await
        .map(|b| serde_json::from_slice::<serde_json::Value>(&b))??;
    assert_eq!(health["status"], "ok");
    Ok(())
}

/// Issue 11: the harness started agents as soon as the URL was printed, before the first
/// token's file existed (`first-agent.token.tmp` only). Whatever a script reads first,
/// the token file must already be there; the announcement ends with COLLECTOR_READY.
#[test]
fn the_collector_announces_itself_only_once_its_first_token_file_is_written() -> Result<()> {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let token_file = data.join("first-agent.token");
    for start in ["first", "second"] {
        let mut child = Command::new(built_binary("vscout-collector")?)
            .args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(&data)
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::piped())
            .spawn()?;
        let stdout = child.stdout.take().context("stdout")?;
        let mut lines = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let line = line?;
            // Checked the moment each line arrives, as a script would act on it.
            assert!(
                token_file.is_file(),
                "{start} start: {line:?} printed before {} existed",
                token_file.display()
            );
            let done = line == "COLLECTOR_READY=1";
            lines.push(line);
            if done {
                break;
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(
            lines.last().map(String::as_str),
            Some("COLLECTOR_READY=1"),
            "{start} start: {lines:?}"
        );
        let announced = lines
            .iter()
            .any(|l| l.starts_with("FIRST_AGENT_TOKEN_FILE="));
        assert_eq!(announced, start == "first", "{start} start: {lines:?}");
        assert_eq!(std::fs::read_to_string(&token_file)?.trim().len(), 64);
    }
    Ok(())
}
