//! The collector's export checked against what it holds, after a pipeline run: the
//! workbook (`vscout-collector export` and `GET /v1/export.xlsx`) read back by openpyxl
//! has RVTools' inventory tabs agreeing with the database's inventory row by row, then
//! Assessment, Summary and Performance agreeing with the assessment's JSON; Azure
//! Migrate's CSV (`GET /v1/export.csv`) has a row per VM with its utilization filled;
//! bad input is refused with exit 64 and 400.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{ensure, Context, Result};
use serde_json::Value;
use vscout_wire::inventory::VcenterInventory;

use crate::collector::Collector;
use crate::workbook::{self, text, Tab};

/// The tabs after RVTools' inventory tabs.
const OWN_TABS: [&str; 4] = ["Assessment", "Summary", "Performance", "Settings"];

pub fn export_cli(col: &Collector, args: &[&str]) -> Result<std::process::Output> {
    col.command("export", args)
}

/// The collector's inventory, read from its database (independently of its code).
pub fn inventories(col: &Collector) -> Result<Vec<VcenterInventory>> {
    let db = col.db()?;
    let mut stmt =
        db.prepare("SELECT vcenter, url, about, collected_at FROM vcenters ORDER BY vcenter")?;
    let mut out: Vec<VcenterInventory> = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
            ))
        })?
        .map(|r| {
            let (name, url, about, at) = r?;
            Ok(VcenterInventory {
                name: name.as_str().into(),
                url: url.as_str().into(),
                about: serde_json::from_str(&about)?,
                collected_at: at.as_str().into(),
                ..VcenterInventory::default()
            })
        })
        .collect::<Result<_>>()?;
    for vc in &mut out {
        let mut stmt = db.prepare("SELECT doc FROM vms WHERE vcenter = ?1")?;
        for doc in stmt.query_map([vc.name.as_str()], |r| r.get::<_, String>(0))? {
            vc.vms.push(serde_json::from_str(&doc?)?);
        }
        let mut stmt = db.prepare("SELECT kind, doc FROM entities WHERE vcenter = ?1")?;
        let rows = stmt.query_map([vc.name.as_str()], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })?;
        for row in rows {
            let (kind, doc) = row?;
            match kind.as_str() {
                "HostSystem" => vc.hosts.push(serde_json::from_str(&doc)?),
                "ClusterComputeResource" => vc.clusters.push(serde_json::from_str(&doc)?),
                "Datastore" => vc.datastores.push(serde_json::from_str(&doc)?),
                _ => {}
            }
        }
    }
    Ok(out)
}

fn tab<'t>(tabs: &'t [(String, Tab)], name: &str) -> Result<&'t Tab> {
    tabs.iter()
        .find(|(n, _)| n == name)
        .map(|(_, t)| t)
        .with_context(|| format!("no tab {name}"))
}

fn num(v: &Value) -> Option<f64> {
    v.as_f64()
}

fn close(a: Option<f64>, b: Option<f64>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => (a - b).abs() <= 0.011,
        (a, b) => a == b,
    }
}

/// The workbook at `path` against the database and the assessment `a` (made with the
/// same settings).
pub fn check_workbook(col: &Collector, path: &Path, a: &Value) -> Result<()> {
    let tabs = workbook::read(path)?;
    workbook::check_layout(&tabs)?;
    let names: Vec<&str> = tabs.iter().map(|(n, _)| n.as_str()).collect();
    let mut want: Vec<&str> = vscout_workbook::rvtools::TABS.to_vec();
    want.extend(OWN_TABS);
    ensure!(names == want, "tabs {names:?}");
    let vcs = inventories(col)?;
    workbook::check_inventory(&tabs, &vcs)?;
    let vms: usize = vcs.iter().map(|v| v.vms.len()).sum();

    // Assessment: a row per VM and target, as the JSON has it.
    let assessed = tab(&tabs, "Assessment")?;
    let targets = a["targets"].as_array().context("targets")?;
    ensure!(assessed.rows.len() == vms * targets.len());
    let mut rows: HashMap<(String, String), &Vec<Value>> = HashMap::new();
    for r in &assessed.rows {
        rows.insert(
            (
                text(assessed.get(r, "Target")?),
                text(assessed.get(r, "VM ID")?),
            ),
            r,
        );
    }
    for t in targets {
        let target = t["target"].as_str().context("target")?;
        for j in t["rows"].as_array().context("rows")? {
            let id = j["vm_id"].as_str().context("id")?;
            let r = rows
                .get(&(target.to_owned(), id.to_owned()))
                .with_context(|| format!("Assessment: no row {target} {id}"))?;
            ensure!(
                text(assessed.get(r, "Readiness")?)
                    == j["readiness"]["status"].as_str().unwrap_or("")
            );
            ensure!(
                text(assessed.get(r, "Size")?) == j["recommended"]["size"].as_str().unwrap_or("")
            );
            ensure!(
                close(
                    num(assessed.get(r, "Total USD/month")?),
                    j["monthly_cost"]["total"].as_f64()
                ),
                "Assessment {target} {id}: cost"
            );
            ensure!(close(
                num(assessed.get(r, "Coverage %")?),
                j["confidence"]["coverage_pct"].as_f64()
            ));
            ensure!(assessed.get(r, "Stars")?.as_u64() == j["confidence"]["stars"].as_u64());
            ensure!(close(
                num(assessed.get(r, "CPU %")?),
                j["utilization"]["cpu_pct"].as_f64()
            ));
        }
    }

    // Summary: per target the estate's totals, its datacenters' and clusters' adding up.
    let summary = tab(&tabs, "Summary")?;
    for t in targets {
        let target = t["target"].as_str().context("target")?;
        let of = |scope: &str| -> Result<Vec<&Vec<Value>>> {
            let mut out = Vec::new();
            for r in &summary.rows {
                if text(summary.get(r, "Target")?) == target
                    && text(summary.get(r, "Scope")?) == scope
                {
                    out.push(r);
                }
            }
            Ok(out)
        };
        let estate = of("Estate")?;
        ensure!(estate.len() == 1, "Summary: one estate row for {target}");
        let e = estate[0];
        ensure!(num(summary.get(e, "VMs")?) == t["totals"]["vms"].as_f64());
        ensure!(close(
            num(summary.get(e, "Total USD/month")?),
            t["totals"]["monthly_total"].as_f64()
        ));
        ensure!(
            num(summary.get(e, "Recommended vCPUs")?) == t["totals"]["recommended_vcpus"].as_f64()
        );
        for scope in ["Datacenter", "Cluster"] {
            let mut sum = 0.0;
            for r in of(scope)? {
                sum += num(summary.get(r, "VMs")?).context("VMs")?;
            }
            ensure!(
                Some(sum) == t["totals"]["vms"].as_f64(),
                "Summary: {scope} rows add up to {sum}"
            );
        }
    }

    // Performance: a row per VM; p95 at most the maximum; the coverage the assessment's.
    let perf = tab(&tabs, "Performance")?;
    ensure!(perf.rows.len() == vms);
    let coverage: HashMap<&str, Option<f64>> = targets[0]["rows"]
        .as_array()
        .context("rows")?
        .iter()
        .filter_map(|r| {
            Some((
                r["vm_id"].as_str()?,
                r["confidence"]["coverage_pct"].as_f64(),
            ))
        })
        .collect();
    for r in &perf.rows {
        let id = text(perf.get(r, "VM ID")?);
        let p95 = num(perf.get(r, "CPU % p95")?).with_context(|| format!("{id}: CPU p95"))?;
        let max = num(perf.get(r, "CPU % max")?).context("CPU max")?;
        ensure!(p95 <= max, "Performance {id}: p95 {p95} > max {max}");
        ensure!(close(
            num(perf.get(r, "Coverage %")?),
            coverage.get(id.as_str()).copied().flatten()
        ));
        ensure!(num(perf.get(r, "Series")?).is_some_and(|n| n >= 1.0));
    }
    Ok(())
}

/// RFC 4180 fields of one line (quotes doubled inside quoted fields).
fn fields(line: &str) -> Vec<String> {
    let (mut out, mut cur, mut quoted) = (Vec::new(), String::new(), false);
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    out.push(cur);
    out
}

/// Azure Migrate's CSV: the template's columns, a row per VM (no templates in vcsim),
/// CPU utilization the assessment's at the same percentile.
pub fn check_azure_migrate(csv: &str, a: &Value) -> Result<()> {
    let lines: Vec<&str> = csv.lines().collect();
    let header = fields(lines.first().context("header")?);
    ensure!(
        header[..5]
            == [
                "*Server name",
                "IP addresses",
                "*Cores",
                "*Memory (In MB)",
                "*OS name"
            ],
        "{header:?}"
    );
    let at = |h: &str| {
        header
            .iter()
            .position(|x| x == h)
            .with_context(|| format!("no {h}"))
    };
    let (name, cpu, read_ops) = (
        at("*Server name")?,
        at("CPU utilization percentage")?,
        at("Disk 1 read ops (operations per second)")?,
    );
    let rows = a["targets"][0]["rows"].as_array().context("rows")?;
    ensure!(
        lines.len() == 1 + rows.len(),
        "{} lines for {} VMs",
        lines.len(),
        rows.len()
    );
    let by_name: HashMap<&str, &Value> = rows
        .iter()
        .filter_map(|r| Some((r["name"].as_str()?, r)))
        .collect();
    for line in &lines[1..] {
        let f = fields(line);
        ensure!(f.len() == header.len(), "{line}");
        let r = by_name
            .get(f[name].as_str())
            .with_context(|| format!("no VM {}", f[name]))?;
        let got: f64 = f[cpu]
            .parse()
            .with_context(|| format!("{}: CPU {:?}", f[name], f[cpu]))?;
        ensure!(
            close(Some(got), r["utilization"]["cpu_pct"].as_f64()),
            "{}: CPU {got}",
            f[name]
        );
        ensure!(
            f[read_ops].parse::<f64>().is_ok(),
            "{}: disk 1 read ops {:?}",
            f[name],
            f[read_ops]
        );
    }
    Ok(())
}
