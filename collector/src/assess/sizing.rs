//! Right-sizing one VM against one cloud's catalog: each disk's cheapest offer, then the
//! cheapest size that covers every requirement (a tie goes to the newer generation), the
//! monthly cost, and why every other size was refused. Pure: requirements in, decision
//! out; `need.rs` makes the requirements, the assessment runs this per VM and target.

use std::fmt;

use super::catalog::{CloudCatalog, DiskKind, Gp3, Size};

/// What one VM needs of its target.
#[derive(Debug, Clone, PartialEq)]
pub struct Need {
    pub vcpus: f64,
    pub memory_gib: f64,
    /// Every disk, the OS disk first.
    pub disks: Vec<DiskNeed>,
    pub nics: u32,
    /// The VM's disk IOPS and MB/s, all disks together: a size's caps are per VM.
    pub iops: f64,
    pub mbps: f64,
}

/// What one disk needs.
#[derive(Debug, Clone, PartialEq)]
pub struct DiskNeed {
    pub label: String,
    pub size_gib: f64,
    pub iops: f64,
    pub mbps: f64,
}

/// Where and how sizes are priced.
#[derive(Debug, Clone, PartialEq)]
pub struct Pricing {
    pub region: String,
    /// Hours billed per month (730 by default).
    pub hours_per_month: f64,
    /// Fraction off the compute list price (0 ≤ discount < 1).
    pub discount: f64,
    /// Whether burstable sizes (Azure B, AWS t3) may be recommended.
    pub allow_burstable: bool,
}

/// The offer chosen for one disk.
#[derive(Debug, Clone, PartialEq)]
pub struct DiskPick {
    pub label: String,
    /// `P10`, `E30` … or `gp3`.
    pub tier: String,
    pub size_gib: u64,
    pub iops: u64,
    pub mbps: f64,
    pub monthly_usd: f64,
    /// Whether it needs a size with premium storage (Azure Premium SSD).
    pub premium: bool,
}

/// Why a size was not recommended.
#[derive(Debug, Clone, PartialEq)]
pub enum Refusal {
    NoPrice,
    Burstable,
    Vcpus { has: u32 },
    Memory { has_gib: f64 },
    DataDisks { has: u32 },
    Iops { has: Option<u64> },
    Mbps { has: Option<f64> },
    Nics { has: u32 },
    NoPremiumStorage,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::NoPrice => f.write_str("no price in the region"),
            Refusal::Burstable => f.write_str("burstable (not asked for)"),
            Refusal::Vcpus { has } => write!(f, "{has} vCPUs are too few"),
            Refusal::Memory { has_gib } => write!(f, "{has_gib} GiB of memory is too little"),
            Refusal::DataDisks { has } => write!(f, "takes {has} data disks, too few"),
            Refusal::Iops { has: Some(h) } => write!(f, "{h} disk IOPS are too few"),
            Refusal::Mbps { has: Some(h) } => {
                write!(f, "{h} MB/s of disk throughput is too little")
            }
            Refusal::Iops { has: None } | Refusal::Mbps { has: None } => {
                f.write_str("its disk limits are not in the catalog")
            }
            Refusal::Nics { has } => write!(f, "takes {has} NICs, too few"),
            Refusal::NoPremiumStorage => {
                f.write_str("no premium storage for its Premium SSD disks")
            }
        }
    }
}

/// The size chosen and what it costs.
#[derive(Debug, Clone, PartialEq)]
pub struct SizePick {
    pub name: String,
    pub vcpus: u32,
    pub memory_gib: f64,
    pub usd_per_hour: f64,
    /// Per month, after the discount.
    pub monthly_usd: f64,
}

/// The decision for one VM and target.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// `None` when no size covers the need (see `refused`).
    pub size: Option<SizePick>,
    /// Per disk, in the need's order: the offer, or why there is none.
    pub disks: Vec<Result<DiskPick, String>>,
    /// Every size not chosen that could not take the VM, with the first reason.
    pub refused: Vec<(String, Refusal)>,
}

impl Decision {
    /// Monthly storage cost of the disks that have an offer.
    pub fn storage_usd(&self) -> f64 {
        self.disks.iter().flatten().map(|d| d.monthly_usd).sum()
    }

    /// Compute + storage, when the size and every disk have an offer.
    pub fn total_usd(&self) -> Option<f64> {
        let size = self.size.as_ref()?;
        self.disks
            .iter()
            .all(Result::is_ok)
            .then(|| size.monthly_usd + self.storage_usd())
    }
}

/// Sizes `need` for one cloud: disks first (a Premium SSD narrows the sizes), then the size.
pub fn decide(c: &CloudCatalog, pricing: &Pricing, need: &Need) -> Decision {
    let disks: Vec<Result<DiskPick, String>> = need
        .disks
        .iter()
        .map(|d| choose_disk(c, &pricing.region, d))
        .collect();
    let premium = disks.iter().flatten().any(|d| d.premium);
    let (size, refused) = choose_size(c, pricing, need, premium);
    Decision {
        size,
        disks,
        refused,
    }
}

/// The first reason `s` cannot take `need`, if any.
fn refusal(
    s: &Size,
    price: Option<f64>,
    pricing: &Pricing,
    need: &Need,
    premium: bool,
) -> Option<Refusal> {
    // Data disks are the VM's disks less its OS disk.
    let data_disks = need.disks.len().saturating_sub(1) as u32;
    let checks = [
        (price.is_none(), Refusal::NoPrice),
        (s.burstable && !pricing.allow_burstable, Refusal::Burstable),
        (
            f64::from(s.vcpus) < need.vcpus,
            Refusal::Vcpus { has: s.vcpus },
        ),
        (
            s.memory_gib < need.memory_gib,
            Refusal::Memory {
                has_gib: s.memory_gib,
            },
        ),
        (
            s.max_data_disks.is_some_and(|m| m < data_disks),
            Refusal::DataDisks {
                has: s.max_data_disks.unwrap_or(0),
            },
        ),
        (
            s.max_disk_iops.is_none_or(|m| (m as f64) < need.iops),
            Refusal::Iops {
                has: s.max_disk_iops,
            },
        ),
        (
            s.max_disk_mbps.is_none_or(|m| m < need.mbps),
            Refusal::Mbps {
                has: s.max_disk_mbps,
            },
        ),
        (
            s.max_nics.is_some_and(|m| m < need.nics),
            Refusal::Nics {
                has: s.max_nics.unwrap_or(0),
            },
        ),
        (premium && !s.premium_storage, Refusal::NoPremiumStorage),
    ];
    checks.into_iter().find(|(fails, _)| *fails).map(|(_, r)| r)
}

/// The cheapest size of `c` priced in the region that covers `need` (a tie on price: the
/// newer generation, then the name), and every refused size with its reason.
pub fn choose_size(
    c: &CloudCatalog,
    pricing: &Pricing,
    need: &Need,
    premium: bool,
) -> (Option<SizePick>, Vec<(String, Refusal)>) {
    let mut best: Option<(&Size, f64)> = None;
    let mut refused = Vec::new();
    for s in &c.sizes {
        let price = c.price(&pricing.region, &s.name);
        if let Some(r) = refusal(s, price, pricing, need, premium) {
            refused.push((s.name.clone(), r));
            continue;
        }
        let Some(p) = price else { continue };
        let better = match best {
            None => true,
            Some((b, bp)) => {
                (p, std::cmp::Reverse(s.generation), &s.name)
                    < (bp, std::cmp::Reverse(b.generation), &b.name)
            }
        };
        if better {
            best = Some((s, p));
        }
    }
    let pick = best.map(|(s, p)| SizePick {
        name: s.name.clone(),
        vcpus: s.vcpus,
        memory_gib: s.memory_gib,
        usd_per_hour: p,
        monthly_usd: p * pricing.hours_per_month * (1.0 - pricing.discount),
    });
    (pick, refused)
}

/// The cheapest offer for one disk in `region`, or why there is none.
pub fn choose_disk(c: &CloudCatalog, region: &str, need: &DiskNeed) -> Result<DiskPick, String> {
    if need.size_gib > c.max_disk_gib as f64 {
        return Err(format!(
            "{} of {:.0} GiB is larger than the largest disk ({} GiB)",
            need.label, need.size_gib, c.max_disk_gib
        ));
    }
    if let Some(gp3) = &c.gp3 {
        return gp3_offer(gp3, region, need);
    }
    c.disk_tiers
        .iter()
        .filter(|t| {
            t.size_gib as f64 >= need.size_gib && t.iops as f64 >= need.iops && t.mbps >= need.mbps
        })
        .filter_map(|t| t.monthly_usd.get(region).map(|p| (t, *p)))
        .min_by(|(a, ap), (b, bp)| ap.total_cmp(bp).then(a.size_gib.cmp(&b.size_gib)))
        .map(|(t, p)| DiskPick {
            label: need.label.clone(),
            tier: t.tier.clone(),
            size_gib: t.size_gib,
            iops: t.iops,
            mbps: t.mbps,
            monthly_usd: p,
            premium: t.kind == DiskKind::PremiumSsd,
        })
        .ok_or_else(|| {
            format!(
                "no disk tier priced in {region} holds {} ({:.0} GiB, {:.0} IOPS, {:.1} MB/s)",
                need.label, need.size_gib, need.iops, need.mbps
            )
        })
}

/// A gp3 volume for `need`: its size (at least the need, and for IOPS over the baseline
/// 1 GiB per 500 IOPS), IOPS above the 3,000 baseline only as needed (and as the
/// throughput needs at 0.25 MiB/s per IOPS), throughput above its baseline only as needed.
fn gp3_offer(g: &Gp3, region: &str, need: &DiskNeed) -> Result<DiskPick, String> {
    let Some(price) = g.monthly_usd.get(region) else {
        return Err(format!("no gp3 price in {region}"));
    };
    let mbps = need.mbps.max(g.baseline_mbps);
    let iops_for_mbps = (mbps / g.max_mbps_per_iops).ceil();
    let iops = need
        .iops
        .ceil()
        .max(iops_for_mbps)
        .max(g.baseline_iops as f64) as u64;
    if iops > g.max_iops || mbps > g.max_mbps {
        return Err(format!(
            "{} needs {:.0} IOPS and {:.1} MB/s, over gp3's {} IOPS and {} MB/s",
            need.label, need.iops, need.mbps, g.max_iops, g.max_mbps
        ));
    }
    // The baseline comes with any size; more IOPS take 1 GiB per 500.
    let for_iops = if iops > g.baseline_iops {
        iops.div_ceil(g.max_iops_per_gib)
    } else {
        0
    };
    let size_gib = (need.size_gib.ceil() as u64).max(1).max(for_iops);
    if size_gib > g.size_gib_max {
        return Err(format!(
            "{} needs {size_gib} GiB, over gp3's {} GiB",
            need.label, g.size_gib_max
        ));
    }
    let monthly_usd = price.per_gib * size_gib as f64
        + price.per_iops_above_baseline * iops.saturating_sub(g.baseline_iops) as f64
        + price.per_mbps_above_baseline * (mbps - g.baseline_mbps).max(0.0);
    Ok(DiskPick {
        label: need.label.clone(),
        tier: "gp3".into(),
        size_gib,
        iops,
        mbps,
        monthly_usd,
        premium: false,
    })
}

#[cfg(test)]
mod tests;
