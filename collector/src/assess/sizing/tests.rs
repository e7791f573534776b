//! Sizing rules on hand-computed fixtures (a small catalog whose answers can be read off,
//! Azure's documented example against the shipped catalog, gp3's formula) and a property
//! test: the size chosen covers every requirement and no cheaper priced size does.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;
use crate::assess::catalog::{Catalog, Cloud, DiskTier};

fn size(name: &str, generation: u32, vcpus: u32, memory_gib: f64) -> Size {
    Size {
        name: name.into(),
        family: "T".into(),
        generation,
        burstable: false,
        previous_generation: false,
        bare_metal: false,
        vcpus,
        memory_gib,
        max_data_disks: Some(4),
        max_disk_iops: Some(1000 * u64::from(vcpus)),
        max_disk_mbps: Some(50.0 * f64::from(vcpus)),
        max_nics: Some(2),
        premium_storage: true,
    }
}

fn tier(
    name: &str,
    kind: DiskKind,
    size_gib: u64,
    iops: u64,
    mbps: f64,
    usd: Option<f64>,
) -> DiskTier {
    DiskTier {
        tier: name.into(),
        kind,
        size_gib,
        iops,
        mbps,
        monthly_usd: usd.map(|p| ("r1".to_string(), p)).into_iter().collect(),
    }
}

/// Four sizes doubling in vCPUs and price, one older twin at A8's price, a burstable one
/// and one without a price; three disk tiers.
fn small() -> CloudCatalog {
    let mut sizes = vec![
        size("A2", 5, 2, 4.0),
        size("A4", 5, 4, 8.0),
        size("A8", 5, 8, 16.0),
        size("A16", 5, 16, 32.0),
        size("Old8", 3, 8, 16.0),
        size("Unpriced4", 5, 4, 64.0),
    ];
    let mut b = size("B4", 5, 4, 16.0);
    b.burstable = true;
    sizes.push(b);
    let prices = [
        ("A2", 0.1),
        ("A4", 0.2),
        ("A8", 0.4),
        ("A16", 0.8),
        ("Old8", 0.4),
        ("B4", 0.05),
    ];
    CloudCatalog {
        prices_are: "test".into(),
        sources: serde_json::Value::Null,
        max_disk_gib: 1024,
        sizes,
        size_prices_usd_per_hour: BTreeMap::from([(
            "r1".to_string(),
            prices.iter().map(|(n, p)| (n.to_string(), *p)).collect(),
        )]),
        disk_tiers: vec![
            tier("S10", DiskKind::StandardHdd, 128, 500, 60.0, Some(6.0)),
            tier("P10", DiskKind::PremiumSsd, 128, 500, 100.0, Some(20.0)),
            tier("P30", DiskKind::PremiumSsd, 1024, 5000, 200.0, Some(120.0)),
            tier("S30", DiskKind::StandardHdd, 1024, 500, 60.0, None),
        ],
        gp3: None,
    }
}

fn pricing(region: &str) -> Pricing {
    Pricing {
        region: region.into(),
        hours_per_month: 730.0,
        discount: 0.0,
        allow_burstable: false,
    }
}

fn disk(label: &str, size_gib: f64, iops: f64, mbps: f64) -> DiskNeed {
    DiskNeed {
        label: label.into(),
        size_gib,
        iops,
        mbps,
    }
}

fn need(vcpus: f64, memory_gib: f64) -> Need {
    Need {
        vcpus,
        memory_gib,
        disks: vec![disk("Hard disk 1", 40.0, 100.0, 10.0)],
        nics: 1,
        iops: 100.0,
        mbps: 10.0,
    }
}

#[test]
fn azures_documented_example_sixteen_vcpus_at_twenty_percent_with_comfort_one_and_a_half() {
    // 16 × 0.20 × 1.5 = 4.8 vCPUs: the next size that fits has 8.
    let n = need(16.0 * 0.20 * 1.5, 8.0);
    let d = decide(&small(), &pricing("r1"), &n);
    let s = d.size.expect("a size");
    assert_eq!(
        (s.name.as_str(), s.vcpus),
        ("A8", 8),
        "Old8 costs the same: the newer wins"
    );
    assert!((s.monthly_usd - 0.4 * 730.0).abs() < 1e-9);
    // Against the shipped catalog, in eastus: the cheapest size of 8 vCPUs and 8 GiB or
    // more is Standard_F8s_v2 at 0.338 USD an hour (read off collector/catalog).
    let shipped = Catalog::shipped().expect("catalog");
    let azure = shipped.cloud(Cloud::Azure).expect("azure");
    let d = decide(azure, &pricing("eastus"), &n);
    let s = d.size.expect("a size");
    assert_eq!(
        (s.name.as_str(), s.usd_per_hour),
        ("Standard_F8s_v2", 0.338)
    );
    // And in AWS us-east-1: c6a.2xlarge at 0.306.
    let aws = shipped.cloud(Cloud::Aws).expect("aws");
    let s = decide(aws, &pricing("us-east-1"), &n).size.expect("a size");
    assert_eq!((s.name.as_str(), s.usd_per_hour), ("c6a.2xlarge", 0.306));
}

#[test]
fn each_refused_size_says_why() {
    let d = decide(&small(), &pricing("r1"), &need(4.8, 8.0));
    let why: BTreeMap<&str, &Refusal> = d.refused.iter().map(|(n, r)| (n.as_str(), r)).collect();
    assert_eq!(why["A2"], &Refusal::Vcpus { has: 2 });
    assert_eq!(why["A4"], &Refusal::Vcpus { has: 4 });
    assert_eq!(why["Unpriced4"], &Refusal::NoPrice);
    assert_eq!(why["B4"], &Refusal::Burstable);
    assert!(!why.contains_key("A16"), "A16 fits; it is only dearer");
    assert_eq!(why["A2"].to_string(), "2 vCPUs are too few");
}

#[test]
fn burstable_sizes_only_when_asked() {
    let mut p = pricing("r1");
    p.allow_burstable = true;
    let s = decide(&small(), &p, &need(3.0, 8.0)).size.expect("a size");
    assert_eq!(s.name, "B4");
}

#[test]
fn a_vm_bigger_than_any_size_or_in_a_region_without_prices_gets_none() {
    let d = decide(&small(), &pricing("r1"), &need(17.0, 8.0));
    assert_eq!(d.size, None);
    assert_eq!(d.total_usd(), None);
    assert!(d
        .refused
        .iter()
        .any(|(n, r)| n == "A16" && *r == Refusal::Vcpus { has: 16 }));
    let d = decide(&small(), &pricing("r2"), &need(1.0, 1.0));
    assert_eq!(d.size, None);
    assert!(d.refused.iter().all(|(_, r)| *r == Refusal::NoPrice));
    assert!(d.disks[0].as_ref().is_err_and(|e| e.contains("r2")));
}

#[test]
fn disks_take_the_cheapest_priced_tier_that_covers_size_iops_and_throughput() {
    let c = small();
    let pick = |d: DiskNeed| choose_disk(&c, "r1", &d);
    assert_eq!(
        pick(disk("d", 100.0, 400.0, 50.0)).map(|p| p.tier),
        Ok("S10".into())
    );
    // 80 MB/s is over S10's 60: the premium tier.
    let p = pick(disk("d", 100.0, 400.0, 80.0)).expect("P10");
    assert_eq!(
        (p.tier.as_str(), p.premium, p.monthly_usd),
        ("P10", true, 20.0)
    );
    // 500 GiB: S30 has no price, so P30.
    assert_eq!(
        pick(disk("d", 500.0, 100.0, 10.0)).map(|p| p.tier),
        Ok("P30".into())
    );
    // Over the largest disk (a 40 TiB disk against Azure's 32 TiB is the same rule).
    let e = pick(disk("Hard disk 2", 2000.0, 1.0, 1.0)).expect_err("too large");
    assert!(e.contains("Hard disk 2") && e.contains("1024 GiB"), "{e}");
    let shipped = Catalog::shipped().expect("catalog");
    let azure = shipped.cloud(Cloud::Azure).expect("azure");
    let e = choose_disk(azure, "eastus", &disk("d", 40.0 * 1024.0, 1.0, 1.0)).expect_err("40 TiB");
    assert!(e.contains("32767 GiB"), "{e}");
}

#[test]
fn a_premium_disk_needs_a_size_with_premium_storage() {
    let mut c = small();
    c.sizes
        .iter_mut()
        .filter(|s| s.name == "A8")
        .for_each(|s| s.premium_storage = false);
    let mut n = need(4.8, 8.0);
    n.disks[0].mbps = 80.0;
    let d = decide(&c, &pricing("r1"), &n);
    assert_eq!(d.size.map(|s| s.name), Some("Old8".into()));
    assert!(d
        .refused
        .contains(&("A8".into(), Refusal::NoPremiumStorage)));
}

#[test]
fn gp3_is_priced_by_size_and_provisioned_iops_and_throughput() {
    let shipped = Catalog::shipped().expect("catalog");
    let aws = shipped.cloud(Cloud::Aws).expect("aws");
    // 100 GiB, 5,000 IOPS, 200 MB/s in us-east-1: 0.08 × 100 + 0.005 × (5,000 − 3,000)
    // + 0.04 × (200 − 131.072) = 8 + 10 + 2.757 12 = 20.757 12 (125 MiB/s = 131.072 MB/s).
    let p = choose_disk(aws, "us-east-1", &disk("d", 100.0, 5000.0, 200.0)).expect("gp3");
    assert_eq!((p.tier.as_str(), p.size_gib, p.iops), ("gp3", 100, 5000));
    assert!((p.monthly_usd - 20.75712).abs() < 1e-6, "{}", p.monthly_usd);
    // A small disk with the baseline costs its GiB only.
    let p = choose_disk(aws, "us-east-1", &disk("d", 10.5, 50.0, 5.0)).expect("gp3");
    assert_eq!((p.size_gib, p.iops), (11, 3000));
    assert!((p.monthly_usd - 0.88).abs() < 1e-9);
    // 16,000 IOPS need 32 GiB at 500 per GiB.
    let p = choose_disk(aws, "us-east-1", &disk("d", 8.0, 16000.0, 1.0)).expect("gp3");
    assert_eq!(p.size_gib, 32);
    assert!(choose_disk(aws, "us-east-1", &disk("d", 8.0, 20000.0, 1.0)).is_err());
    assert!(choose_disk(aws, "eu-west-1", &disk("d", 8.0, 1.0, 1.0))
        .is_err_and(|e| e.contains("eu-west-1")));
}

/// Every way a size can fall short, checked against the need directly.
fn covers(s: &Size, n: &Need) -> bool {
    f64::from(s.vcpus) >= n.vcpus
        && s.memory_gib >= n.memory_gib
        && s.max_data_disks
            .is_none_or(|m| m as usize >= n.disks.len().saturating_sub(1))
        && s.max_disk_iops.is_some_and(|m| m as f64 >= n.iops)
        && s.max_disk_mbps.is_some_and(|m| m >= n.mbps)
        && s.max_nics.is_none_or(|m| m >= n.nics)
        && !s.burstable
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    #[test]
    fn the_size_chosen_covers_the_need_and_no_cheaper_size_does(
        vcpus in 0.1f64..200.0,
        memory_gib in 0.1f64..1500.0,
        data_disks in 0usize..40,
        nics in 1u32..9,
        iops in 0.0f64..100_000.0,
        mbps in 0.0f64..3_000.0,
        aws in any::<bool>(),
    ) {
        let shipped = Catalog::shipped().expect("catalog");
        let (cloud, region) = if aws { (Cloud::Aws, "us-east-1") } else { (Cloud::Azure, "eastus") };
        let c = shipped.cloud(cloud).expect("cloud");
        let mut n = need(vcpus, memory_gib);
        n.disks.extend((0..data_disks).map(|i| disk(&format!("d{i}"), 10.0, 10.0, 1.0)));
        (n.nics, n.iops, n.mbps) = (nics, iops, mbps);
        let (pick, refused) = choose_size(c, &pricing(region), &n, false);
        let fitting: Vec<(&Size, f64)> = c
            .sizes
            .iter()
            .filter(|s| covers(s, &n))
            .filter_map(|s| c.price(region, &s.name).map(|p| (s, p)))
            .collect();
        prop_assert_eq!(refused.len() + fitting.len(), c.sizes.len());
        match pick {
            None => prop_assert!(fitting.is_empty(), "{n:?}: {fitting:?} fit"),
            Some(p) => {
                let s = c.sizes.iter().find(|s| s.name == p.name).expect("a catalog size");
                prop_assert!(covers(s, &n), "{} does not cover {n:?}", p.name);
                prop_assert!(fitting.iter().all(|(_, price)| *price >= p.usd_per_hour));
            }
        }
    }
}
