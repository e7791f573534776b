//! The assessment's settings: `[assessment]` of the collector's config gives the
//! defaults, a request's query or the CLI's flags override them, and both are checked
//! the same way into `Settings`. A bad value is refused with the value and what is
//! allowed (exit 64 at the CLI, 400 at the API, a refused start for the config).

use std::path::PathBuf;

use serde::Deserialize;

use super::catalog::{Catalog, Cloud};
use super::need::Sizing;
use super::sizing::Pricing;

/// What every assessment starts from: the catalog (shipped, or `catalog_file`) and the
/// config's defaults, both checked once at start.
#[derive(Debug, Clone)]
pub struct Setup {
    pub catalog: Catalog,
    pub defaults: RawAssessment,
}

/// Why the `[assessment]` section or its catalog is unusable.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Catalog(#[from] super::catalog::CatalogError),
    #[error("[assessment] {0}")]
    Setting(#[from] BadInput),
}

impl Setup {
    /// Loads the catalog (`catalog`, else `defaults.catalog_file`, else the shipped one)
    /// and checks the defaults against it.
    pub fn load(
        defaults: RawAssessment,
        catalog: Option<&std::path::Path>,
    ) -> Result<Setup, SetupError> {
        let catalog = match catalog.or(defaults.catalog_file.as_deref()) {
            Some(path) => Catalog::load(path)?,
            None => Catalog::shipped()?,
        };
        Settings::resolve(&defaults, &Params::default(), &catalog)?;
        Ok(Setup { catalog, defaults })
    }

    /// The settings of one request.
    pub fn settings(&self, asked: &Params) -> Result<Settings, BadInput> {
        Settings::resolve(&self.defaults, asked, &self.catalog)
    }
}

/// Percentiles offered, as Azure Migrate offers them.
pub const PERCENTILES: [u32; 4] = [50, 90, 95, 99];

/// `[assessment]` as written in the collector's config; every key has a default.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAssessment {
    /// `azure`, `aws` or `both`. Default `both`: the two clouds side by side.
    pub target: Option<String>,
    /// Azure region priced. Default `eastus` (the shipped catalog's region with disk
    /// prices).
    pub azure_region: Option<String>,
    /// AWS region priced. Default `us-east-1` (likewise).
    pub aws_region: Option<String>,
    /// Percentile of the utilization over the history: 50, 90, 95 or 99. Default 95.
    pub percentile: Option<u32>,
    /// Days of history read, 1 to 400 (or what there is). Default 30.
    pub history_days: Option<u32>,
    /// Headroom multiplied into every requirement, 1.0 to 10. Default 1.3.
    pub comfort: Option<f64>,
    /// `peaks` (the percentile of each window's peak, as Azure Migrate does) or `samples`
    /// (of every sample, from the daily sketches). Default `peaks`.
    pub basis: Option<String>,
    /// `performance` or `as-on-premises`. Default `performance`.
    pub sizing: Option<String>,
    /// Memory utilization from `active` (`mem.usage.average`, as Azure Migrate),
    /// `consumed` (`mem.consumed.average`) or `max` (the larger). Default `active`.
    pub memory: Option<String>,
    /// Discount off list prices, a fraction from 0 to below 1. Default 0.
    pub discount: Option<f64>,
    /// Hours a size runs per month, 1 to 744. Default 730.
    pub hours_per_month: Option<f64>,
    /// Recommend burstable sizes too. Default false.
    pub burstable: Option<bool>,
    /// A catalog file replacing the shipped one (negotiated prices, more regions).
    pub catalog_file: Option<PathBuf>,
}

/// A request's overrides, as text: the query of `GET /v1/assessment` or the CLI's flags.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    pub target: Option<String>,
    /// The region of the one target asked for.
    pub region: Option<String>,
    pub percentile: Option<String>,
    pub history_days: Option<String>,
    pub comfort: Option<String>,
    pub basis: Option<String>,
    pub sizing: Option<String>,
    pub memory: Option<String>,
    pub discount: Option<String>,
    pub hours_per_month: Option<String>,
    pub burstable: Option<String>,
}

/// Where the percentile is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Basis {
    Peaks,
    Samples,
}

/// Which counter memory utilization comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Memory {
    Active,
    Consumed,
    Max,
}

/// One cloud and the region priced.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub cloud: Cloud,
    pub region: String,
}

/// Checked settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub targets: Vec<Target>,
    pub percentile: u32,
    pub history_days: u32,
    pub comfort: f64,
    pub basis: Basis,
    pub sizing: Sizing,
    pub memory: Memory,
    pub discount: f64,
    pub hours_per_month: f64,
    pub burstable: bool,
}

/// A value refused: which setting, the value, and what is allowed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{key} {value:?} is not allowed: {allowed}")]
pub struct BadInput {
    pub key: &'static str,
    pub value: String,
    pub allowed: String,
}

fn bad(key: &'static str, value: impl ToString, allowed: impl Into<String>) -> BadInput {
    BadInput {
        key,
        value: value.to_string(),
        allowed: allowed.into(),
    }
}

/// A number from the request, else the config's, else the default.
fn number<T: std::str::FromStr + Copy>(
    key: &'static str,
    asked: Option<&str>,
    config: Option<T>,
    default: T,
    allowed: &str,
) -> Result<T, BadInput> {
    match asked {
        Some(text) => text.trim().parse().map_err(|_| bad(key, text, allowed)),
        None => Ok(config.unwrap_or(default)),
    }
}

/// One of some words, from the request, else the config's, else the default.
fn word<T: Copy>(
    key: &'static str,
    asked: Option<&str>,
    config: Option<&str>,
    words: &[(&str, T)],
) -> Result<T, BadInput> {
    let text = asked.or(config).unwrap_or(words[0].0);
    words
        .iter()
        .find(|(w, _)| *w == text)
        .map(|(_, v)| *v)
        .ok_or_else(|| {
            let names: Vec<&str> = words.iter().map(|(w, _)| *w).collect();
            bad(key, text, format!("one of {}", names.join(", ")))
        })
}

impl Settings {
    /// Checks `asked` over the config's `defaults` against `catalog` (whose regions are
    /// the known ones).
    pub fn resolve(
        defaults: &RawAssessment,
        asked: &Params,
        catalog: &Catalog,
    ) -> Result<Settings, BadInput> {
        let targets = targets(defaults, asked, catalog)?;
        let (percentile, history_days, comfort, discount, hours_per_month) =
            numbers(defaults, asked)?;
        let burstable = number(
            "burstable",
            asked.burstable.as_deref(),
            defaults.burstable,
            false,
            "true or false",
        )?;
        Ok(Settings {
            targets,
            percentile,
            history_days,
            comfort,
            basis: word(
                "basis",
                asked.basis.as_deref(),
                defaults.basis.as_deref(),
                &[("peaks", Basis::Peaks), ("samples", Basis::Samples)],
            )?,
            sizing: word(
                "sizing",
                asked.sizing.as_deref(),
                defaults.sizing.as_deref(),
                &[
                    ("performance", Sizing::Performance),
                    ("as-on-premises", Sizing::AsOnPremises),
                ],
            )?,
            memory: word(
                "memory",
                asked.memory.as_deref(),
                defaults.memory.as_deref(),
                &[
                    ("active", Memory::Active),
                    ("consumed", Memory::Consumed),
                    ("max", Memory::Max),
                ],
            )?,
            discount,
            hours_per_month,
            burstable,
        })
    }

    /// How `target` is priced.
    pub fn pricing(&self, target: &Target) -> Pricing {
        Pricing {
            region: target.region.clone(),
            hours_per_month: self.hours_per_month,
            discount: self.discount,
            allow_burstable: self.burstable,
        }
    }
}

/// The clouds asked for, each with a region the catalog prices.
fn targets(
    defaults: &RawAssessment,
    asked: &Params,
    catalog: &Catalog,
) -> Result<Vec<Target>, BadInput> {
    let target = asked
        .target
        .as_deref()
        .or(defaults.target.as_deref())
        .unwrap_or("both");
    let clouds: Vec<Cloud> = match target {
        "both" => Cloud::ALL.to_vec(),
        t => vec![t
            .parse::<Cloud>()
            .map_err(|_| bad("target", t, "one of azure, aws, both"))?],
    };
    if asked.region.is_some() && clouds.len() > 1 {
        return Err(bad(
            "region",
            asked.region.as_deref().unwrap_or(""),
            "a region with one target (target=azure or target=aws); for both, set azure_region and aws_region in [assessment]",
        ));
    }
    let mut targets = Vec::new();
    for cloud in clouds {
        let (configured, default) = match cloud {
            Cloud::Azure => (defaults.azure_region.as_deref(), "eastus"),
            Cloud::Aws => (defaults.aws_region.as_deref(), "us-east-1"),
        };
        let region = asked.region.as_deref().or(configured).unwrap_or(default);
        let known: Vec<&str> = catalog
            .cloud(cloud)
            .map(|c| c.regions().collect())
            .unwrap_or_default();
        if !known.contains(&region) {
            return Err(bad(
                "region",
                region,
                format!(
                    "a region the catalog prices for {cloud} ({})",
                    known.join(", ")
                ),
            ));
        }
        targets.push(Target {
            cloud,
            region: region.to_owned(),
        });
    }
    Ok(targets)
}

/// Percentile, history days, comfort, discount and hours per month, each in its range.
fn numbers(
    defaults: &RawAssessment,
    asked: &Params,
) -> Result<(u32, u32, f64, f64, f64), BadInput> {
    let percentiles = "one of 50, 90, 95, 99";
    let percentile = number(
        "percentile",
        asked.percentile.as_deref(),
        defaults.percentile,
        95,
        percentiles,
    )?;
    if !PERCENTILES.contains(&percentile) {
        return Err(bad("percentile", percentile, percentiles));
    }
    let days = "whole days from 1 to 400";
    let history_days = number(
        "history_days",
        asked.history_days.as_deref(),
        defaults.history_days,
        30,
        days,
    )?;
    if !(1..=400).contains(&history_days) {
        return Err(bad("history_days", history_days, days));
    }
    let comforts = "a number from 1.0 to 10";
    let comfort = number(
        "comfort",
        asked.comfort.as_deref(),
        defaults.comfort,
        1.3,
        comforts,
    )?;
    if !(1.0..=10.0).contains(&comfort) {
        return Err(bad("comfort", comfort, comforts));
    }
    let discounts = "a fraction from 0 to below 1 (0.2 is 20 % off)";
    let discount = number(
        "discount",
        asked.discount.as_deref(),
        defaults.discount,
        0.0,
        discounts,
    )?;
    if !(0.0..1.0).contains(&discount) {
        return Err(bad("discount", discount, discounts));
    }
    let hours = "hours from 1 to 744";
    let hours_per_month = number(
        "hours_per_month",
        asked.hours_per_month.as_deref(),
        defaults.hours_per_month,
        730.0,
        hours,
    )?;
    if !(1.0..=744.0).contains(&hours_per_month) {
        return Err(bad("hours_per_month", hours_per_month, hours));
    }
    Ok((percentile, history_days, comfort, discount, hours_per_month))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(p: Params) -> Result<Settings, BadInput> {
        let catalog = Catalog::shipped().expect("shipped catalog");
        Settings::resolve(&RawAssessment::default(), &p, &catalog)
    }

    #[test]
    fn defaults_are_both_clouds_p95_thirty_days_comfort_1_3() {
        let s = resolve(Params::default()).expect("defaults");
        assert_eq!(
            s.targets,
            vec![
                Target {
                    cloud: Cloud::Azure,
                    region: "eastus".into()
                },
                Target {
                    cloud: Cloud::Aws,
                    region: "us-east-1".into()
                }
            ]
        );
        assert_eq!((s.percentile, s.history_days, s.comfort), (95, 30, 1.3));
        assert_eq!(
            (s.basis, s.sizing, s.memory),
            (Basis::Peaks, Sizing::Performance, Memory::Active)
        );
        assert_eq!(
            (s.discount, s.hours_per_month, s.burstable),
            (0.0, 730.0, false)
        );
    }

    #[test]
    fn bad_values_are_refused_with_the_value_and_what_is_allowed() {
        let cases = [
            (Params { target: Some("gcp".into()), ..Params::default() }, "target \"gcp\" is not allowed: one of azure, aws, both"),
            (Params { percentile: Some("97".into()), ..Params::default() }, "percentile \"97\" is not allowed: one of 50, 90, 95, 99"),
            (Params { percentile: Some("high".into()), ..Params::default() }, "percentile \"high\""),
            (Params { comfort: Some("-1".into()), ..Params::default() }, "comfort \"-1\" is not allowed: a number from 1.0 to 10"),
            (Params { target: Some("aws".into()), region: Some("mars-1".into()), ..Params::default() }, "region \"mars-1\" is not allowed: a region the catalog prices for aws (ap-southeast-2, eu-west-1"),
            (Params { region: Some("eastus".into()), ..Params::default() }, "a region with one target"),
            (Params { basis: Some("mean".into()), ..Params::default() }, "basis \"mean\" is not allowed: one of peaks, samples"),
            (Params { discount: Some("1".into()), ..Params::default() }, "discount \"1\""),
        ];
        for (p, want) in cases {
            let e = resolve(p).expect_err(want).to_string();
            assert!(e.contains(want), "{e:?} should contain {want:?}");
        }
    }

    #[test]
    fn the_request_overrides_the_config() {
        let catalog = Catalog::shipped().expect("shipped catalog");
        let config = RawAssessment {
            target: Some("azure".into()),
            percentile: Some(99),
            memory: Some("max".into()),
            ..RawAssessment::default()
        };
        let s = Settings::resolve(&config, &Params::default(), &catalog).expect("config");
        assert_eq!(
            (s.targets.len(), s.percentile, s.memory),
            (1, 99, Memory::Max)
        );
        let asked = Params {
            target: Some("aws".into()),
            percentile: Some("50".into()),
            sizing: Some("as-on-premises".into()),
            ..Params::default()
        };
        let s = Settings::resolve(&config, &asked, &catalog).expect("asked");
        assert_eq!(
            (s.targets[0].cloud, s.percentile, s.sizing),
            (Cloud::Aws, 50, Sizing::AsOnPremises)
        );
    }
}
