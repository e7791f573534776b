//! The assessment's catalog: each cloud's sizes, disk offers and list prices per region,
//! dated. The shipped one (`collector/catalog/catalog.json`, made by
//! `scripts/catalog-import` from a sourced snapshot) is built into the binary; a file can
//! replace it. Either is validated once, at load: a bad catalog is refused with the file,
//! the entry and the field named.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use serde::{Deserialize, Serialize};

/// The catalog shipped with vscout.
const SHIPPED: &str = include_str!("../../catalog/catalog.json");
/// The catalog layout this build reads.
const CATALOG_VERSION: u32 = 1;

/// A cloud the assessment sizes for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Cloud {
    Azure,
    Aws,
}

impl Cloud {
    pub const ALL: [Cloud; 2] = [Cloud::Azure, Cloud::Aws];

    pub fn as_str(self) -> &'static str {
        match self {
            Cloud::Azure => "azure",
            Cloud::Aws => "aws",
        }
    }
}

impl fmt::Display for Cloud {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Cloud {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Cloud::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| format!("unknown target {s:?} (known: azure, aws)"))
    }
}

/// Why a catalog was refused: which file, which entry, which field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("catalog {file}: {entry}: {field}: {reason}")]
pub struct CatalogError {
    pub file: String,
    pub entry: String,
    pub field: String,
    pub reason: String,
}

/// One VM size (Azure) or instance type (AWS).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Size {
    /// `Standard_D4s_v5`, `m6i.xlarge`.
    pub name: String,
    /// `Dsv5`, `m6i`.
    pub family: String,
    /// The family's generation (`v5` → 5, `m7i` → 7): the newer wins a tie on price.
    pub generation: u32,
    pub burstable: bool,
    /// Azure: the size's page carries Microsoft's previous-generation notice.
    #[serde(default)]
    pub previous_generation: bool,
    /// AWS: a bare-metal type.
    #[serde(default)]
    pub bare_metal: bool,
    pub vcpus: u32,
    pub memory_gib: f64,
    /// Azure only (AWS's limit is per platform, not per type).
    #[serde(default)]
    pub max_data_disks: Option<u32>,
    /// Uncached (Azure) or baseline EBS (AWS) disk IOPS the size sustains.
    pub max_disk_iops: Option<u64>,
    /// The same in MB/s (10^6 bytes per second).
    pub max_disk_mbps: Option<f64>,
    /// Azure only.
    #[serde(default)]
    pub max_nics: Option<u32>,
    /// Azure: whether Premium SSD disks attach to it.
    #[serde(default = "yes")]
    pub premium_storage: bool,
}

fn yes() -> bool {
    true
}

/// Azure's managed-disk kinds, cheapest performance first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DiskKind {
    StandardHdd,
    StandardSsd,
    PremiumSsd,
}

/// A fixed disk tier (Azure: S10, E30, P10 …).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiskTier {
    pub tier: String,
    pub kind: DiskKind,
    pub size_gib: u64,
    pub iops: u64,
    pub mbps: f64,
    /// Region → USD per month; a region absent has no price.
    pub monthly_usd: BTreeMap<String, f64>,
}

/// AWS gp3: any size, IOPS and throughput provisioned above a baseline.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Gp3 {
    pub size_gib_max: u64,
    pub baseline_iops: u64,
    pub max_iops: u64,
    pub max_iops_per_gib: u64,
    pub baseline_mbps: f64,
    pub max_mbps: f64,
    pub max_mbps_per_iops: f64,
    pub monthly_usd: BTreeMap<String, Gp3Price>,
}

/// gp3 prices in one region, USD per month.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Gp3Price {
    pub per_gib: f64,
    pub per_iops_above_baseline: f64,
    pub per_mbps_above_baseline: f64,
}

/// One cloud's part of the catalog.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CloudCatalog {
    /// What the prices are (`USD list prices, pay-as-you-go, Linux`).
    pub prices_are: String,
    /// Where the values come from.
    pub sources: serde_json::Value,
    /// The largest disk the cloud offers, GiB.
    pub max_disk_gib: u64,
    pub sizes: Vec<Size>,
    /// Region → size name → USD per hour; a size absent has no price there.
    pub size_prices_usd_per_hour: BTreeMap<String, HashMap<String, f64>>,
    /// Azure's tiers.
    #[serde(default)]
    pub disk_tiers: Vec<DiskTier>,
    /// AWS's gp3.
    #[serde(default)]
    pub gp3: Option<Gp3>,
}

impl CloudCatalog {
    /// Regions with any price.
    pub fn regions(&self) -> impl Iterator<Item = &str> {
        self.size_prices_usd_per_hour.keys().map(String::as_str)
    }

    /// The hourly price of `size` in `region`, if it has one.
    pub fn price(&self, region: &str, size: &str) -> Option<f64> {
        self.size_prices_usd_per_hour
            .get(region)?
            .get(size)
            .copied()
    }
}

/// The whole catalog.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalog {
    pub catalog_version: u32,
    /// The day the snapshot was taken (`2026-11-30`): every output carries it.
    pub snapshot_date: String,
    pub made_by: String,
    pub clouds: BTreeMap<Cloud, CloudCatalog>,
}

impl Catalog {
    /// The catalog built into the binary.
    pub fn shipped() -> Result<Self, CatalogError> {
        Self::parse(SHIPPED, "(shipped)")
    }

    /// Reads and validates a catalog file.
    pub fn load(path: &std::path::Path) -> Result<Self, CatalogError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| CatalogError {
            file: file.clone(),
            entry: "(file)".into(),
            field: "(file)".into(),
            reason: e.to_string(),
        })?;
        Self::parse(&text, &file)
    }

    /// Parses and validates catalog text; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Self, CatalogError> {
        let catalog: Catalog = serde_json::from_str(text).map_err(|e| CatalogError {
            file: file.into(),
            entry: format!("line {}", e.line()),
            field: "(json)".into(),
            reason: e.to_string(),
        })?;
        catalog.validate(file)?;
        Ok(catalog)
    }

    /// One cloud's part.
    pub fn cloud(&self, cloud: Cloud) -> Option<&CloudCatalog> {
        self.clouds.get(&cloud)
    }

    fn validate(&self, file: &str) -> Result<(), CatalogError> {
        let err = |entry: &str, field: &str, reason: String| CatalogError {
            file: file.into(),
            entry: entry.into(),
            field: field.into(),
            reason,
        };
        if self.catalog_version != CATALOG_VERSION {
            return Err(err(
                "(top)",
                "catalog_version",
                format!(
                    "{} is not a version this build reads ({CATALOG_VERSION})",
                    self.catalog_version
                ),
            ));
        }
        if self.clouds.is_empty() {
            return Err(err("(top)", "clouds", "no cloud".into()));
        }
        for (cloud, c) in &self.clouds {
            validate_cloud(*cloud, c)
                .map_err(|(entry, field, reason)| err(&entry, &field, reason))?;
        }
        Ok(())
    }
}

/// (entry, field, reason) of the first fault in one cloud's part.
type Fault = (String, String, String);

fn validate_cloud(cloud: Cloud, c: &CloudCatalog) -> Result<(), Fault> {
    let fault = |entry: String, field: &str, reason: String| (entry, field.to_string(), reason);
    let mut names = std::collections::HashSet::new();
    for s in &c.sizes {
        let entry = format!("{cloud} size {}", s.name);
        if !names.insert(s.name.as_str()) {
            return Err(fault(entry, "name", "listed twice".into()));
        }
        if s.vcpus == 0 {
            return Err(fault(entry, "vcpus", "must be at least 1".into()));
        }
        if !(s.memory_gib.is_finite() && s.memory_gib > 0.0) {
            return Err(fault(
                entry,
                "memory_gib",
                format!("{} is not a positive number", s.memory_gib),
            ));
        }
        if s.max_disk_mbps
            .is_some_and(|m| !(m.is_finite() && m >= 0.0))
        {
            return Err(fault(
                entry,
                "max_disk_mbps",
                "must be a non-negative number".into(),
            ));
        }
    }
    for (region, prices) in &c.size_prices_usd_per_hour {
        for (size, price) in prices {
            let entry = format!("{cloud} price of {size} in {region}");
            if !names.contains(size.as_str()) {
                return Err(fault(
                    entry,
                    "size",
                    format!("{size:?} is not a size of the catalog"),
                ));
            }
            if !(price.is_finite() && *price >= 0.0) {
                return Err(fault(
                    entry,
                    "usd_per_hour",
                    format!("{price} is not a price"),
                ));
            }
        }
    }
    for t in &c.disk_tiers {
        let entry = format!("{cloud} disk tier {}", t.tier);
        if t.size_gib == 0 || t.iops == 0 || !(t.mbps.is_finite() && t.mbps > 0.0) {
            return Err(fault(
                entry,
                "size_gib/iops/mbps",
                "must be positive".into(),
            ));
        }
        if let Some((region, p)) = t
            .monthly_usd
            .iter()
            .find(|(_, p)| !(p.is_finite() && **p >= 0.0))
        {
            return Err(fault(
                entry,
                "monthly_usd",
                format!("{p} in {region} is not a price"),
            ));
        }
    }
    if c.disk_tiers.is_empty() && c.gp3.is_none() {
        return Err(fault(
            format!("{cloud}"),
            "disk_tiers",
            "no disk offer (disk_tiers or gp3)".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
