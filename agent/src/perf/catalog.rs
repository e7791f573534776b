//! Counter resolution: the configured counter lists per entity type (their defaults are
//! `config/counters.rs`), matched by name (`group.name.rollup`) against the vCenter's own
//! catalog, because keys differ between vCenters. Counters the vCenter lacks are reported
//! once, by name.

use std::collections::HashMap;

use compact_str::CompactString;

use crate::vsphere::PerfCounterInfo;

/// A counter resolved against one vCenter's catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counter {
    pub key: i32,
    pub name: CompactString,
    pub unit: CompactString,
    /// `rate`, `absolute` or `delta`: how a value relates to its interval.
    pub stats_type: CompactString,
}

/// The counters to query for one entity type, and those that could not be resolved.
#[derive(Debug, Clone, Default)]
pub struct Resolved {
    pub counters: Vec<Counter>,
    pub missing: Vec<String>,
}

impl Resolved {
    pub fn by_key(&self, key: i32) -> Option<&Counter> {
        self.counters.iter().find(|c| c.key == key)
    }
}

/// Resolves `wanted` names against `catalog`.
pub fn resolve(catalog: &[PerfCounterInfo], wanted: &[String]) -> Resolved {
    let index: HashMap<&str, &PerfCounterInfo> =
        catalog.iter().map(|c| (c.name.as_str(), c)).collect();
    let mut out = Resolved::default();
    for name in wanted {
        match index.get(name.as_str()) {
            Some(c) => out.counters.push(Counter {
                key: c.key,
                name: name.as_str().into(),
                unit: c.unit.as_str().into(),
                stats_type: c.stats_type.as_str().into(),
            }),
            None => out.missing.push(name.clone()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_resolve_by_name_not_key() {
        let catalog = vec![
            PerfCounterInfo {
                key: 6,
                name: "cpu.usage.average".into(),
                unit: "percent".into(),
                stats_type: "rate".into(),
                level: Some(1),
            },
            PerfCounterInfo {
                key: 98,
                name: "mem.usage.average".into(),
                unit: "percent".into(),
                stats_type: "absolute".into(),
                level: Some(1),
            },
        ];
        let r = resolve(
            &catalog,
            &[
                "mem.usage.average".into(),
                "cpu.usage.average".into(),
                "power.power.average".into(),
            ],
        );
        assert_eq!(
            r.counters.iter().map(|c| c.key).collect::<Vec<_>>(),
            vec![98, 6]
        );
        assert_eq!(r.missing, vec!["power.power.average"]);
        assert_eq!(
            r.by_key(6).map(|c| c.name.as_str()),
            Some("cpu.usage.average")
        );
    }
}
