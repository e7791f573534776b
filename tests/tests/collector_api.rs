//! The collector's front door, against the real binary: requests without credentials, with
//! a wrong token or a client certificate from another CA, bodies over the limit, garbage
//! and unknown versions are all refused, and nothing of them is stored; a good batch is
//! stored once however often it is sent; the read API serves what was stored.

use std::process::Command;

use anyhow::{Context, Result};
use vscout::ship::batch::{self, Batch, Record, BATCH_VERSION};
use vscout_e2e::built_binary;
use vscout_e2e::collector::{client, health_batch, post, ClientPki, Collector, DATED_FIXTURES};

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
            "client_ca_file = \"{}\"\nmax_body_bytes = 4096\noperators = [\"token:ops\"]\n{DATED_FIXTURES}",
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
    let out = Command::new(built_binary("vscout-collector")?)
        .arg("--data-dir")
        .arg(&data)
        .args(["token", "add", "ops"])
        .output()?;
    anyhow::ensure!(out.status.success(), "token add: {out:?}");
    let ops = String::from_utf8(out.stdout)?.trim().to_owned();
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
    // Issue 12: a sequence past what SQLite stores was a 503 (retry forever), not a 400.
    let r = post(
        &anon,
        &col,
        Some(&token),
        Some("agent-x:18446744073709551615"),
        good_body.clone(),
    )
    .await?;
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
    // Issue 12: another principal posting in an agent's name (its id read from
    // /v1/agents) had the agent's real batches answered as duplicates. An agent id
    // belongs to whoever used it first.
    let r = post(
        &anon,
        &col,
        Some(&ops),
        Some("agent-y:2"),
        good_body.clone(),
    )
    .await?;
    assert_eq!(r.status(), 403);
    assert!(r.text().await?.contains("cert:"), "names the owner");
    let r = post(&agent, &col, None, Some("agent-x:2"), good_body.clone()).await?;
    assert_eq!(r.status(), 403);
    assert_eq!(col.count("SELECT count(*) FROM batches")?, 2);
    let r = post(&agent, &col, None, Some("agent-y:2"), good_body.clone()).await?;
    assert_eq!(r.status(), 200, "the owner goes on");

    // The read API needs credentials too. An agent's token lists its own agents; an
    // operator's every agent.
    let r = anon.get(format!("{}/v1/agents", col.url)).send().await?;
    assert_eq!(r.status(), 401);
    let agents_seen_by = |t: String| {
        let anon = anon.clone();
        let url = format!("{}/v1/agents", col.url);
        async move {
            let body = anon.get(url).bearer_auth(t).send().await?.bytes().await?;
            let v: serde_json::Value = serde_json::from_slice(&body)?;
            anyhow::Ok(v.as_array().context("array")?.clone())
        }
    };
    let own = agents_seen_by(token.clone()).await?;
    assert_eq!(own.len(), 1, "{own:?}");
    assert_eq!(own[0]["agent_id"], "agent-x");
    let list = agents_seen_by(ops.clone()).await?;
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
        let token = std::fs::read_to_string(&token_file)?.trim().to_owned();
        assert_eq!(token.len(), 64);
        // Issue 12: stdout goes to the journal under systemd; the token stays in its file.
        assert!(
            !lines.iter().any(|l| l.contains(&token)),
            "{start} start printed the token: {lines:?}"
        );
    }
    Ok(())
}

/// GET `path` with `token`; the status and the JSON body.
async fn get_json(
    http: &reqwest::Client,
    col: &Collector,
    token: &str,
    path: &str,
) -> Result<(u16, serde_json::Value)> {
    let r = http
        .get(format!("{}{path}", col.url))
        .bearer_auth(token)
        .send()
        .await?;
    let status = r.status().as_u16();
    Ok((status, serde_json::from_slice(&r.bytes().await?)?))
}

/// Issue 11: hosts, clusters and datastores are served (lists and metrics), the daily
/// sketches are merged over a range of days, an unknown entity is a 404 (it was `[]`),
/// and a token revoked with the CLI is refused at once by the running collector.
#[tokio::test]
async fn the_api_serves_every_entity_kind_daily_percentiles_and_refuses_revoked_tokens(
) -> Result<()> {
    use vscout::inventory::model::{Cluster, Datastore, Host, Vm};
    use vscout::inventory::VcenterInventory;
    use vscout::perf::sketch::Sketch;
    use vscout::perf::{DailySummary, Rollup, WindowStats, ROLLUP_SCHEMA_VERSION};

    let dir = tempfile::tempdir()?;
    let col = Collector::start_dated(&dir.path().join("data"))?;
    let token = std::fs::read_to_string(&col.token_file)?.trim().to_owned();
    let http = client(&col, None)?;
    let inventory = VcenterInventory {
        name: "vc".into(),
        collected_at: "2026-11-30T12:00:00Z".into(),
        hosts: vec![Host {
            id: "host-1".into(),
            name: "esx01".into(),
            memory_bytes: Some(64 << 30),
            ..Host::default()
        }],
        clusters: vec![Cluster {
            id: "domain-c1".into(),
            name: "prod".into(),
            ..Cluster::default()
        }],
        datastores: vec![Datastore {
            id: "datastore-1".into(),
            name: "ds01".into(),
            capacity_bytes: Some(1 << 40),
            ..Datastore::default()
        }],
        vms: vec![Vm {
            id: "vm-1".into(),
            name: "web01".into(),
            memory_bytes: Some(4 << 30),
            ..Vm::default()
        }],
        ..VcenterInventory::default()
    };
    let rollup = |entity_type: &str, id: &str| {
        Record::Rollup(Rollup {
            schema_version: ROLLUP_SCHEMA_VERSION,
            vcenter: "vc".into(),
            entity_type: entity_type.into(),
            entity_id: id.into(),
            counter: "cpu.usage.average".into(),
            instance: "".into(),
            unit: "percent".into(),
            stats_type: "rate".into(),
            window_start: 1_764_504_000,
            window_secs: 300,
            expected_samples: 15,
            missing_samples: 0,
            stats: Some(WindowStats {
                count: 15,
                min: 1.0,
                max: 30.0,
                mean: 10.0,
                p50: 9.0,
                p95: 25.0,
                p99: 30.0,
            }),
        })
    };
    let daily = |day_start: i64, base: u32| {
        let mut sketch = Sketch::default();
        for v in base..base + 100 {
            sketch.add(f64::from(v));
        }
        Record::Daily(DailySummary {
            schema_version: ROLLUP_SCHEMA_VERSION,
            vcenter: "vc".into(),
            entity_type: "VirtualMachine".into(),
            entity_id: "vm-1".into(),
            counter: "cpu.usage.average".into(),
            instance: "".into(),
            unit: "percent".into(),
            stats_type: "rate".into(),
            day_start,
            samples: 100,
            expected_samples: 4320,
            p50: None,
            p95: None,
            p99: None,
            max: Some(f64::from(base + 99)),
            sketch,
        })
    };
    let body = batch::encode(&Batch {
        batch_version: BATCH_VERSION,
        created_ms: 0,
        records: vec![
            Record::Inventory(Box::new(inventory)),
            rollup("HostSystem", "host-1"),
            rollup("ClusterComputeResource", "domain-c1"),
            rollup("Datastore", "datastore-1"),
            rollup("VirtualMachine", "vm-1"),
            daily(1_764_460_800, 0),
            daily(1_764_547_200, 100),
        ],
    })?;
    let r = post(&http, &col, Some(&token), Some("agent-z:1"), body).await?;
    assert_eq!(r.status(), 200, "{}", r.text().await?);

    for (kind, id, name) in [
        ("hosts", "vc:host-1", "esx01"),
        ("clusters", "vc:domain-c1", "prod"),
        ("datastores", "vc:datastore-1", "ds01"),
    ] {
        let (status, list) = get_json(&http, &col, &token, &format!("/v1/{kind}")).await?;
        assert_eq!(status, 200, "{kind}: {list}");
        assert_eq!(list[0]["id"], id, "{kind}: {list}");
        assert_eq!(list[0]["name"], name, "{kind}: {list}");
        let (status, rows) =
            get_json(&http, &col, &token, &format!("/v1/{kind}/{id}/metrics")).await?;
        assert_eq!(status, 200, "{kind}: {rows}");
        assert_eq!(rows.as_array().map(Vec::len), Some(1), "{kind}: {rows}");
        assert_eq!(rows[0]["p95"], 25.0);
    }
    let (_, hosts) = get_json(&http, &col, &token, "/v1/hosts").await?;
    assert_eq!(hosts[0]["memory_bytes"], 64u64 << 30, "sizes in bytes");
    let (_, vms) = get_json(&http, &col, &token, "/v1/vms").await?;
    assert_eq!(vms[0]["memory_bytes"], 4u64 << 30, "sizes in bytes");
    let (_, vcs) = get_json(&http, &col, &token, "/v1/vcenters").await?;
    assert_eq!(
        vcs[0]["collected_at"], 1_796_040_000,
        "timestamps in Unix seconds"
    );

    // Unknown entities and collections are 404s with a message, not empty lists.
    for path in [
        "/v1/vms/vc:vm-404/metrics",
        "/v1/hosts/vc:vm-1/metrics",
        "/v1/vms/vc:vm-404/daily",
        "/v1/widgets",
    ] {
        let (status, body) = get_json(&http, &col, &token, path).await?;
        assert_eq!(status, 404, "{path}: {body}");
        assert!(body["error"].as_str().is_some_and(|e| !e.is_empty()));
    }
    // A known VM without rows in the range is an empty list.
    let (status, rows) = get_json(
        &http,
        &col,
        &token,
        "/v1/vms/vc:vm-1/metrics?from=2000000000",
    )
    .await?;
    assert_eq!((status, rows.as_array().map(Vec::len)), (200, Some(0)));

    // Two days merged: the p95 of 0..=199 (190) within the sketch's 1%; one day alone.
    let (status, d) = get_json(&http, &col, &token, "/v1/vms/vc:vm-1/daily").await?;
    assert_eq!(status, 200, "{d}");
    assert_eq!(d[0]["days"], 2);
    assert_eq!(d[0]["samples"], 200);
    let p95 = d[0]["p95"].as_f64().context("p95")?;
    assert!((p95 - 190.0).abs() <= 1.9, "{d}");
    let (_, one) = get_json(
        &http,
        &col,
        &token,
        "/v1/vms/vc:vm-1/daily?from=1764547200&counter=cpu.usage.average",
    )
    .await?;
    assert_eq!(one[0]["days"], 1);
    assert_eq!(one[0]["max"], 199.0);

    // A token revoked from the command line is refused by the running collector at once.
    let add = Command::new(built_binary("vscout-collector")?)
        .arg("--data-dir")
        .arg(&col.data_dir)
        .args(["token", "add", "short-lived"])
        .output()?;
    assert!(add.status.success(), "{add:?}");
    let short = String::from_utf8_lossy(&add.stdout).trim().to_owned();
    assert_eq!(get_json(&http, &col, &short, "/v1/stats").await?.0, 200);
    let revoke = Command::new(built_binary("vscout-collector")?)
        .arg("--data-dir")
        .arg(&col.data_dir)
        .args(["token", "revoke", "short-lived"])
        .output()?;
    assert!(revoke.status.success(), "{revoke:?}");
    assert_eq!(get_json(&http, &col, &short, "/v1/stats").await?.0, 401);
    assert_eq!(get_json(&http, &col, &token, "/v1/stats").await?.0, 200);
    Ok(())
}
