//! The assessment checked against what the collector holds, after a pipeline run:
//! `vscout-collector assess` gives every VM of the inventory a row for both clouds; each
//! VM's coverage is what the collector holds of the series that fed it (read from its
//! database); the API answers JSON and CSV alike; bad settings are refused with exit 64
//! and 400, naming the value. The export (`crate::export`) is checked against the same
//! assessment.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::{Context, Result};
use serde_json::Value;

use crate::collector::{client, Collector};
use crate::export::{check_azure_migrate, check_workbook, export_cli};

fn assess_cli(col: &Collector, args: &[&str]) -> Result<std::process::Output> {
    col.command("assess", args)
}

/// Received samples and windows the collector holds for one series.
fn held(col: &Collector, vm: &str, counter: &str, instance: &str) -> Result<(u64, u64, u64)> {
    let db = col.db()?;
    Ok(db.query_row(
        "SELECT coalesce(sum(r.count), 0), count(*), coalesce(sum(r.expected), 0)
         FROM series s JOIN rollups r ON r.series_id = s.id
         WHERE s.entity_type = 'VirtualMachine' AND s.entity_id = ?1 AND s.counter = ?2
           AND s.instance = ?3",
        [vm, counter, instance],
        |r| {
            Ok((
                r.get::<_, i64>(0)? as u64,
                r.get::<_, i64>(1)? as u64,
                r.get::<_, i64>(2)? as u64,
            ))
        },
    )?)
}

/// Ours is JSON {"error": …}; axum's refusal of an unknown parameter is text.
fn error_text(body: String) -> String {
    serde_json::from_str::<Value>(&body)
        .ok()
        .and_then(|v| v["error"].as_str().map(str::to_owned))
        .unwrap_or(body)
}

/// Issue 15: the export, by the command and the API, against the assessment `a`.
async fn check_export<F, Fut>(col: &Collector, dir: &Path, a: &Value, get: &F) -> Result<()>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = reqwest::Result<reqwest::Response>>,
{
    let file = dir.join("fleet.xlsx");
    let out = export_cli(col, &["--output", file.to_str().context("path")?])?;
    anyhow::ensure!(out.status.success(), "export: {out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("wrote "));
    check_workbook(col, &file, a)?;
    let r = get("/v1/export.xlsx".into()).await?;
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()?
        .contains("spreadsheetml"));
    let api_file = dir.join("fleet-api.xlsx");
    std::fs::write(&api_file, r.bytes().await?)?;
    check_workbook(col, &api_file, a)?;
    let r = get("/v1/export.csv".into()).await?;
    assert_eq!(r.status(), 200);
    check_azure_migrate(&r.text().await?, a)?;
    let csv_file = dir.join("azure-migrate.csv");
    let out = export_cli(col, &["--output", csv_file.to_str().context("path")?])?;
    anyhow::ensure!(out.status.success(), "export csv: {out:?}");
    check_azure_migrate(&std::fs::read_to_string(&csv_file)?, a)?;
    // Bad input: 400 and exit 64, naming the value.
    for (query, says) in [
        ("/v1/export.xlsx?percentile=97", "percentile \"97\""),
        ("/v1/export?format=pdf", "format \"pdf\""),
        ("/v1/export.csv?format=xlsx", "does not match"),
    ] {
        let r = get(query.into()).await?;
        assert_eq!(r.status(), 400, "{query}");
        let text = error_text(r.text().await?);
        assert!(text.contains(says), "{query}: {text}");
    }
    let out = export_cli(col, &["--output", "fleet.pdf"])?;
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("fleet.pdf"));
    let out = export_cli(col, &["--output", "x.xlsx", "--sizing", "guess"])?;
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("sizing \"guess\""));
    Ok(())
}

/// Runs every check against `col` (whose agent has stopped, so what it holds is still);
/// files go under `dir`.
pub fn assessment_agrees_with_the_collector(col: &Collector, dir: &Path) -> Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(check(col, dir))
}

async fn check(col: &Collector, dir: &Path) -> Result<()> {
    let out_file = dir.join("assessment.json");
    let out = assess_cli(col, &["--output", out_file.to_str().context("path")?])?;
    anyhow::ensure!(out.status.success(), "assess: {out:?}");
    let a: Value = serde_json::from_slice(&std::fs::read(&out_file)?)?;
    let inventory: BTreeSet<String> = {
        let db = col.db()?;
        let mut stmt = db.prepare("SELECT vm_id FROM vms")?;
        let ids = stmt.query_map([], |r| r.get::<_, String>(0))?;
        ids.collect::<Result<_, _>>()?
    };
    let targets = a["targets"].as_array().context("targets")?;
    let clouds: Vec<&str> = targets
        .iter()
        .filter_map(|t| t["target"].as_str())
        .collect();
    assert_eq!(clouds, ["azure", "aws"]);
    assert_eq!(a["catalog_date"], "2026-11-30");
    assert!(a["prices"]
        .as_str()
        .is_some_and(|p| p.contains("on-demand, Linux")));
    for t in targets {
        let rows = t["rows"].as_array().context("rows")?;
        let ids: BTreeSet<String> = rows
            .iter()
            .filter_map(|r| r["vm_id"].as_str().map(str::to_owned))
            .collect();
        assert_eq!((rows.len(), &ids), (inventory.len(), &inventory));
        assert_eq!(t["totals"]["vms"], inventory.len());
        for r in rows {
            assert_eq!(r["sizing"], "performance", "every VM has figures: {r}");
            assert!(r["readiness"]["status"].is_string() && r["confidence"]["stars"].is_u64());
            assert!(r["utilization"]["cpu_pct"].is_f64(), "{r}");
        }
    }

    // Each VM's coverage is what the collector holds of the series behind it.
    let token = std::fs::read_to_string(&col.token_file)?.trim().to_owned();
    let http = client(col, None)?;
    let get = |path: String| {
        let (http, token, url) = (http.clone(), token.clone(), col.url.clone());
        async move {
            http.get(format!("{url}{path}"))
                .bearer_auth(token)
                .send()
                .await
        }
    };
    for (n, row) in targets[0]["rows"]
        .as_array()
        .context("rows")?
        .iter()
        .enumerate()
    {
        let (vc, id) = (
            row["vcenter"].as_str().context("vc")?,
            row["vm_id"].as_str().context("id")?,
        );
        let detail: Value = serde_json::from_str(
            &get(format!("/v1/vms/{vc}:{id}/assessment"))
                .await?
                .text()
                .await?,
        )?;
        let series = detail["utilization"]["series"]
            .as_array()
            .context("series")?;
        assert!(series.iter().any(|s| s["counter"] == "cpu.usage.average"));
        let (mut received, mut expected) = (0u64, 0u64);
        for s in series {
            let (c, i) = (
                s["counter"].as_str().context("c")?,
                s["instance"].as_str().context("i")?,
            );
            let (got, windows, window_expected) = held(col, id, c, i)?;
            assert_eq!(s["received"].as_u64(), Some(got), "{id} {c}");
            assert_eq!(s["windows"].as_u64(), Some(windows), "{id} {c}");
            let e = s["expected"].as_u64().context("expected")?;
            assert!(
                e >= window_expected,
                "the span expects at least what the windows held"
            );
            received += got;
            expected += e;
        }
        let want = (received as f64 / expected as f64 * 100.0 * 100.0).round() / 100.0;
        for t in targets {
            let same = &t["rows"][n];
            assert_eq!(same["vm_id"], id);
            assert_eq!(
                same["confidence"]["coverage_pct"].as_f64(),
                Some(want.min(100.0)),
                "{id}"
            );
        }
        let targets_detail = detail["targets"].as_array().context("detail targets")?;
        assert_eq!(targets_detail.len(), 2);
        assert!(targets_detail[0]["sizes_refused"].is_array());
    }

    // The API answers the same rows, and CSV a line per VM and target.
    let api: Value = serde_json::from_str(
        &get("/v1/assessment?target=aws&percentile=99".into())
            .await?
            .text()
            .await?,
    )?;
    assert_eq!(api["settings"]["percentile"], 99);
    assert_eq!(
        api["targets"][0]["rows"].as_array().map(Vec::len),
        Some(inventory.len())
    );
    let csv = get("/v1/assessment?format=csv".into())
        .await?
        .text()
        .await?;
    assert_eq!(csv.lines().count(), 1 + 2 * inventory.len());
    assert!(csv.starts_with("target,region,vcenter,"));

    // Bad settings: 400 naming the value, exit 64 naming the value.
    for (query, says) in [
        (
            "percentile=97",
            "percentile \"97\" is not allowed: one of 50, 90, 95, 99",
        ),
        ("target=gcp", "target \"gcp\""),
        ("target=aws&region=mars-1", "region \"mars-1\""),
        ("comfort=-1", "comfort \"-1\""),
        ("colour=blue", "colour"),
    ] {
        let r = get(format!("/v1/assessment?{query}")).await?;
        assert_eq!(r.status(), 400, "{query}");
        let text = error_text(r.text().await?);
        assert!(text.contains(says), "{query}: {text}");
    }
    let out = assess_cli(col, &["--percentile", "97"])?;
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("percentile \"97\""));
    let out = assess_cli(col, &["--target", "azure", "--region", "atlantis"])?;
    assert_eq!(out.status.code(), Some(64));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("eastus"),
        "lists the known regions"
    );
    check_export(col, dir, &a, &get).await?;
    // A table on the terminal: a line per VM, then the totals.
    let out = assess_cli(col, &["--target", "aws"])?;
    anyhow::ensure!(out.status.success(), "assess table: {out:?}");
    let table = String::from_utf8(out.stdout)?;
    assert!(table.lines().any(|l| l.starts_with("aws total: ")));
    assert_eq!(
        table.lines().count(),
        inventory.len() + 5,
        "header, blank, target, columns, a line per VM, totals:\n{table}"
    );
    Ok(())
}
