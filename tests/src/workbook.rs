//! Reads a workbook back through openpyxl (`tests/scripts/xlsx_dump.py`: a reader that
//! is not vscout's) and checks its inventory tabs against the JSON inventory row by row,
//! and its tab and header names against RVTools' column list
//! (`tests/data/rvtools-4x-columns.json`).

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use anyhow::{bail, ensure, Context, Result};
use serde_json::Value;
use vscout_wire::inventory::VcenterInventory;

/// One tab as openpyxl read it.
#[derive(Debug)]
pub struct Tab {
    pub headers: Vec<String>,
    pub rows: Vec<Vec<Value>>,
    pub freeze: Option<String>,
    pub filter: Option<String>,
    pub widths: usize,
}

impl Tab {
    pub fn col(&self, header: &str) -> Result<usize> {
        self.headers
            .iter()
            .position(|h| h == header)
            .with_context(|| format!("no column {header:?} in {:?}", self.headers))
    }

    /// The rows keyed by the text of column `key` (the first row of each key).
    pub fn by(&self, key: &str) -> Result<HashMap<String, &Vec<Value>>> {
        let k = self.col(key)?;
        Ok(self.rows.iter().map(|r| (text(&r[k]), r)).collect())
    }

    pub fn get<'r>(&self, row: &'r [Value], header: &str) -> Result<&'r Value> {
        Ok(&row[self.col(header)?])
    }
}

/// A cell as text (null is empty).
pub fn text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Debian's Python, whose packages (python3-openpyxl) `scripts/setup` installs; another
/// `python3` first on the PATH (pyenv, a virtualenv) would not see them.
pub fn python() -> &'static str {
    if Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    }
}

/// The workbook's tabs in order.
pub fn read(path: &Path) -> Result<Vec<(String, Tab)>> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/xlsx_dump.py");
    let out = std::process::Command::new(python())
        .arg(script)
        .arg(path)
        .output()
        .context("run python3 (openpyxl: Debian's python3-openpyxl, installed by scripts/setup)")?;
    ensure!(
        out.status.success(),
        "xlsx_dump.py {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_slice(&out.stdout).context("dump json")?;
    let mut tabs = Vec::new();
    for name in doc["sheets"].as_array().context("sheets")? {
        let name = name.as_str().context("name")?.to_owned();
        let t = &doc["tabs"][&name];
        tabs.push((
            name,
            Tab {
                headers: t["headers"]
                    .as_array()
                    .context("headers")?
                    .iter()
                    .map(text)
                    .collect(),
                rows: serde_json::from_value(t["rows"].clone())?,
                freeze: t["freeze"].as_str().map(str::to_owned),
                filter: t["filter"].as_str().map(str::to_owned),
                widths: t["widths"].as_u64().unwrap_or(0) as usize,
            },
        ));
    }
    Ok(tabs)
}

/// Every tab has its header frozen, filters on and widths set.
pub fn check_layout(tabs: &[(String, Tab)]) -> Result<()> {
    for (name, t) in tabs {
        ensure!(
            t.freeze.as_deref() == Some("A2"),
            "{name}: freeze {:?}",
            t.freeze
        );
        ensure!(
            t.filter.as_deref().is_some_and(|f| f.starts_with("A1:")),
            "{name}: filter {:?}",
            t.filter
        );
        ensure!(t.widths >= t.headers.len(), "{name}: {} widths", t.widths);
    }
    Ok(())
}

/// The inventory tabs: named and ordered as RVTools' list says, every header one of
/// RVTools' (custom attributes aside) in its order, and the rows those of `vcs`.
pub fn check_inventory(tabs: &[(String, Tab)], vcs: &[VcenterInventory]) -> Result<()> {
    let reference: Value = serde_json::from_str(include_str!("../data/rvtools-4x-columns.json"))?;
    let custom: BTreeSet<String> = vcs
        .iter()
        .flat_map(|v| &v.vms)
        .flat_map(|vm| vm.custom_attributes.keys().map(|k| k.to_string()))
        .collect();
    let by_name: HashMap<&str, &Tab> = tabs.iter().map(|(n, t)| (n.as_str(), t)).collect();
    for (tab, cols) in reference["tabs"].as_object().context("tabs")? {
        let t = by_name
            .get(tab.as_str())
            .with_context(|| format!("no tab {tab}"))?;
        let want: Vec<&str> = cols
            .as_array()
            .context("cols")?
            .iter()
            .filter_map(Value::as_str)
            .collect();
        // RVTools' order: each header found after the previous one.
        let mut at = 0;
        for h in t.headers.iter().filter(|h| !custom.contains(*h)) {
            match want[at..].iter().position(|w| w == h) {
                Some(p) => at += p + 1,
                None => bail!("{tab}: {h:?} is not an RVTools column, or out of RVTools' order"),
            }
        }
    }
    check_vms(by_name["vInfo"], vcs)?;
    check_items(&by_name, vcs)?;
    Ok(())
}

fn num(v: &Value) -> Result<f64> {
    v.as_f64().with_context(|| format!("{v} is not a number"))
}

fn mib(bytes: Option<u64>) -> f64 {
    bytes.map_or(0.0, |b| ((b + (1 << 19)) >> 20) as f64)
}

fn check_vms(info: &Tab, vcs: &[VcenterInventory]) -> Result<()> {
    let rows = info.by("VM ID")?;
    let vms: Vec<_> = vcs.iter().flat_map(|v| &v.vms).collect();
    ensure!(
        info.rows.len() == vms.len(),
        "vInfo: {} rows, {} VMs",
        info.rows.len(),
        vms.len()
    );
    for vm in vms {
        let r = rows
            .get(vm.id.as_str())
            .with_context(|| format!("vInfo: no row for {}", vm.id))?;
        ensure!(
            text(info.get(r, "VM")?) == vm.name.as_str(),
            "vInfo {}: name",
            vm.id
        );
        ensure!(text(info.get(r, "Powerstate")?) == vm.power_state.as_deref().unwrap_or(""));
        ensure!(
            text(info.get(r, "Template")?) == if vm.template { "True" } else { "False" },
            "vInfo {}: Template",
            vm.id
        );
        ensure!(num(info.get(r, "CPUs")?)? == f64::from(vm.num_cpu.unwrap_or(0)));
        ensure!(
            num(info.get(r, "Memory")?)? == mib(vm.memory_bytes),
            "vInfo {}: Memory",
            vm.id
        );
        let total: u64 = vm.disks.iter().filter_map(|d| d.capacity_bytes).sum();
        ensure!(num(info.get(r, "Total disk capacity MiB")?)? == mib(Some(total)));
        ensure!(num(info.get(r, "In Use MiB")?)? == mib(vm.committed_bytes));
        ensure!(num(info.get(r, "Unshared MiB")?)? == mib(vm.unshared_bytes));
        ensure!(num(info.get(r, "NICs")?)? == vm.nics.len() as f64);
        ensure!(
            text(info.get(r, "OS according to the configuration file")?)
                == vm.guest_full_name.as_deref().unwrap_or("")
        );
        ensure!(text(info.get(r, "Host")?) == vm.host.as_str());
        ensure!(text(info.get(r, "Cluster")?) == vm.cluster.as_str());
    }
    Ok(())
}

/// vDisk, vPartition, vNetwork and vSnapshot: one row per item, sizes in MiB, dates as
/// dates; vHost: one row per host with its VMs counted.
fn check_items(by_name: &HashMap<&str, &Tab>, vcs: &[VcenterInventory]) -> Result<()> {
    let vms: Vec<_> = vcs.iter().flat_map(|v| &v.vms).collect();
    let disk = by_name["vDisk"];
    ensure!(disk.rows.len() == vms.iter().map(|v| v.disks.len()).sum::<usize>());
    let mut want: Vec<(String, String, f64)> = vms
        .iter()
        .flat_map(|vm| {
            vm.disks
                .iter()
                .map(|d| (vm.id.to_string(), d.key.to_string(), mib(d.capacity_bytes)))
        })
        .collect();
    let mut got: Vec<(String, String, f64)> = Vec::new();
    for r in &disk.rows {
        got.push((
            text(disk.get(r, "VM ID")?),
            text(disk.get(r, "Disk Key")?),
            num(disk.get(r, "Capacity MiB")?)?,
        ));
    }
    want.sort_by(|a, b| a.partial_cmp(b).expect("finite"));
    got.sort_by(|a, b| a.partial_cmp(b).expect("finite"));
    ensure!(got == want, "vDisk rows differ");

    let part = by_name["vPartition"];
    let parts: usize = vms.iter().map(|v| v.partitions.len()).sum();
    ensure!(
        part.rows.len() == parts,
        "vPartition: {} rows, {parts} partitions",
        part.rows.len()
    );
    for r in &part.rows {
        let (cap, used, free) = (
            num(part.get(r, "Capacity MiB")?)?,
            num(part.get(r, "Consumed MiB")?)?,
            num(part.get(r, "Free MiB")?)?,
        );
        ensure!(
            (cap - used - free).abs() <= 1.0,
            "vPartition: {cap} ≠ {used} + {free}"
        );
        let pct = num(part.get(r, "Free %")?)?;
        ensure!(
            (pct - free / cap * 100.0).abs() < 0.1,
            "vPartition: Free % {pct}"
        );
    }

    let net = by_name["vNetwork"];
    ensure!(net.rows.len() == vms.iter().map(|v| v.nics.len()).sum::<usize>());

    let snap = by_name["vSnapshot"];
    ensure!(snap.rows.len() == vms.iter().map(|v| v.snapshots.len()).sum::<usize>());
    for r in &snap.rows {
        ensure!(
            snap.get(r, "Date / time")?.get("date").is_some(),
            "vSnapshot: a date is a date"
        );
    }

    let host = by_name["vHost"];
    let hosts: Vec<_> = vcs.iter().flat_map(|v| &v.hosts).collect();
    ensure!(host.rows.len() == hosts.len());
    let counted: f64 = host
        .rows
        .iter()
        .map(|r| host.get(r, "# VMs total").and_then(num))
        .sum::<Result<f64>>()?;
    let placed = vms
        .iter()
        .filter(|v| !v.template && !v.host_id.is_empty())
        .count();
    ensure!(
        counted == placed as f64,
        "vHost: {counted} VMs counted, {placed} placed"
    );
    Ok(())
}
