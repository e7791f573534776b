//! The shipped catalog against the snapshot's hand checks, and bad catalogs refused by
//! file, entry and field.

use super::*;

#[test]
fn the_shipped_catalog_loads_with_both_clouds_and_the_snapshots_hand_checks() {
    let c = Catalog::shipped().expect("shipped catalog");
    assert_eq!(c.snapshot_date, "2026-11-30");
    let azure = c.cloud(Cloud::Azure).expect("azure");
    let aws = c.cloud(Cloud::Aws).expect("aws");
    assert_eq!((azure.sizes.len(), aws.sizes.len()), (119, 130));
    // ../shared/catalog/README.md, "Hand checks".
    let d4 = azure
        .sizes
        .iter()
        .find(|s| s.name == "Standard_D4s_v5")
        .expect("D4s_v5");
    assert_eq!(
        (
            d4.vcpus,
            d4.memory_gib,
            d4.max_data_disks,
            d4.max_disk_iops,
            d4.max_disk_mbps,
            d4.max_nics
        ),
        (4, 16.0, Some(8), Some(6400), Some(145.0), Some(2))
    );
    assert_eq!(azure.price("eastus", "Standard_D4s_v5"), Some(0.192));
    assert_eq!(aws.price("us-east-1", "m6i.xlarge"), Some(0.192));
    assert_eq!(aws.price("ap-southeast-2", "m6i.xlarge"), Some(0.24));
    assert_eq!(
        aws.price("eu-west-1", "m6i.xlarge"),
        None,
        "only a Dedicated rate there"
    );
    let p10 = azure
        .disk_tiers
        .iter()
        .find(|t| t.tier == "P10")
        .expect("P10");
    assert_eq!(p10.monthly_usd.get("eastus"), Some(&19.71));
    assert_eq!((azure.max_disk_gib, aws.max_disk_gib), (32767, 16384));
    assert!(aws.gp3.is_some() && azure.gp3.is_none());
}

fn shipped_json() -> serde_json::Value {
    serde_json::from_str(SHIPPED).expect("json")
}

fn refused(v: &serde_json::Value) -> CatalogError {
    Catalog::parse(&v.to_string(), "test.json").expect_err("refused")
}

#[test]
fn a_bad_catalog_is_refused_naming_the_file_the_entry_and_the_field() {
    let mut v = shipped_json();
    v["clouds"]["azure"]["size_prices_usd_per_hour"]["eastus"]["Standard_D4s_v5"] = (-1.0).into();
    let e = refused(&v);
    assert_eq!(
        (e.file.as_str(), e.entry.as_str(), e.field.as_str()),
        (
            "test.json",
            "azure price of Standard_D4s_v5 in eastus",
            "usd_per_hour"
        )
    );

    let mut v = shipped_json();
    v["clouds"]["aws"]["size_prices_usd_per_hour"]["us-east-1"]["x9.huge"] = 1.0.into();
    assert!(refused(&v).reason.contains("x9.huge"));

    let mut v = shipped_json();
    v["clouds"]["aws"]["sizes"][3]["vcpus"] = 0.into();
    let e = refused(&v);
    assert_eq!(e.field, "vcpus");
    assert!(e.entry.starts_with("aws size "), "{e}");

    let mut v = shipped_json();
    v["clouds"]["azure"]["sizes"][0]["cores"] = 4.into();
    let e = refused(&v);
    assert!(e.reason.contains("unknown field `cores`"), "{e}");

    let mut v = shipped_json();
    v["catalog_version"] = 2.into();
    assert_eq!(refused(&v).field, "catalog_version");

    let mut v = shipped_json();
    v["clouds"]["gcp"] = v["clouds"]["aws"].clone();
    assert!(refused(&v).reason.contains("gcp"));

    let missing =
        Catalog::load(std::path::Path::new("/nonexistent/catalog.json")).expect_err("missing");
    assert_eq!(missing.file, "/nonexistent/catalog.json");
}

#[test]
fn targets_parse_by_name_and_say_which_exist() {
    assert_eq!("aws".parse::<Cloud>(), Ok(Cloud::Aws));
    let e = "gcp".parse::<Cloud>().expect_err("unknown");
    assert!(e.contains("gcp") && e.contains("azure, aws"), "{e}");
}
