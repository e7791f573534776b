//! Partitions by time: `rollups` and `window_packs` a UTC day each, `rollup_hours`,
//! `window_days` and `daily` a UTC month each, made before the first row that needs one and recorded in
//! `partitions` so that retention finds the old ones. Each process remembers the ones it
//! made or saw, so a batch costs a catalog lookup only on a new day.

use std::collections::HashSet;

use postgres::Client;
use vscout_wire::datetime::{civil_from_days, days_from_civil};

use super::locks;
use crate::store::StoreError;
use crate::store::DAY_SECS;

/// A partitioned table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Table {
    Rollups,
    RollupHours,
    WindowDays,
    Daily,
    WindowPacks,
}

impl Table {
    pub(super) fn name(self) -> &'static str {
        match self {
            Table::Rollups => "rollups",
            Table::RollupHours => "rollup_hours",
            Table::WindowDays => "window_days",
            Table::Daily => "daily",
            Table::WindowPacks => "window_packs",
        }
    }

    /// The partition holding time `t`: `[lower, upper)`, Unix seconds.
    pub(super) fn period(self, t: i64) -> (i64, i64) {
        let day = t.div_euclid(DAY_SECS);
        if matches!(self, Table::Rollups | Table::WindowPacks) {
            return (day * DAY_SECS, (day + 1) * DAY_SECS);
        }
        let (y, m, _) = civil_from_days(day);
        let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
        (
            days_from_civil(y, m, 1) * DAY_SECS,
            days_from_civil(ny, nm, 1) * DAY_SECS,
        )
    }

    /// `rollups_p20261201`: the table and the first day it holds.
    fn partition_name(self, lower: i64) -> String {
        let (y, m, d) = civil_from_days(lower.div_euclid(DAY_SECS));
        format!("{}_p{y:04}{m:02}{d:02}", self.name())
    }
}

/// The partitions this process knows exist, by table and lower bound.
#[derive(Debug, Default)]
pub(super) struct Known(HashSet<(Table, i64)>);

impl Known {
    /// Makes the partitions holding `times` of `table` that do not exist yet, in a
    /// transaction of their own (committed before the batch's, so a batch that fails
    /// leaves at most an empty partition).
    pub(super) fn ensure(
        &mut self,
        client: &mut Client,
        table: Table,
        times: impl IntoIterator<Item = i64>,
    ) -> Result<(), StoreError> {
        let mut missing: Vec<i64> = times
            .into_iter()
            .map(|t| table.period(t).0)
            .filter(|lower| !self.0.contains(&(table, *lower)))
            .collect();
        missing.sort_unstable();
        missing.dedup();
        if missing.is_empty() {
            return Ok(());
        }
        let mut tx = client.transaction()?;
        for lower in &missing {
            make(&mut tx, table, *lower)?;
        }
        tx.commit()?;
        self.0.extend(missing.into_iter().map(|l| (table, l)));
        Ok(())
    }
}

/// Makes the partition of `table` holding time `t` unless it exists, under the
/// partitions lock (held to the end of `tx`).
pub(super) fn make(
    tx: &mut postgres::Transaction<'_>,
    table: Table,
    t: i64,
) -> Result<(), StoreError> {
    let (lower, upper) = table.period(t);
    let made: bool = tx
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM partitions WHERE parent = $1 AND lower = $2)",
            &[&table.name(), &lower],
        )?
        .get(0);
    if made {
        return Ok(());
    }
    locks::take(tx, locks::PARTITIONS)?;
    let name = table.partition_name(lower);
    let made = tx.execute(
        "INSERT INTO partitions VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        &[&table.name(), &lower, &upper, &name],
    )?;
    if made == 1 {
        // Bounds are integers this process computed: nothing to quote.
        tx.batch_execute(&format!(
            "CREATE TABLE {name} PARTITION OF {} FOR VALUES FROM ({lower}) TO ({upper})",
            table.name()
        ))?;
    }
    Ok(())
}

/// Makes the month partitions retention's pass writes into (day summaries and hours of
/// every month that has windows, from the summaries' horizon on): a pass step that made
/// one itself would take the partitions lock while holding table locks a collector
/// making a partition waits for. Today's and tomorrow's windows' partitions too, so that
/// ingest seldom makes one at midnight. Each in a transaction of its own: making a
/// partition locks its parent table exclusively, and a reader holding one parent while
/// waiting for another deadlocked with a transaction making partitions of both.
pub(super) fn prepare_pass(client: &mut Client, now_s: i64) -> Result<(), StoreError> {
    let months: Vec<i64> = client
        .query(
            "SELECT lower FROM partitions WHERE parent = 'rollups'
               AND upper > (SELECT value FROM meta WHERE key = 'summaries_horizon')
             ORDER BY lower",
            &[],
        )?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut wanted = vec![(Table::Rollups, now_s), (Table::Rollups, now_s + DAY_SECS)];
    for table in [Table::WindowDays, Table::RollupHours, Table::WindowPacks] {
        let mut periods: Vec<i64> = months.iter().map(|d| table.period(*d).0).collect();
        periods.dedup();
        wanted.extend(periods.into_iter().map(|lower| (table, lower)));
    }
    for (table, t) in wanted {
        let mut tx = client.transaction()?;
        make(&mut tx, table, t)?;
        tx.commit()?;
    }
    Ok(())
}

/// A partition as recorded: its name and bounds.
#[derive(Debug, Clone)]
pub(super) struct Partition {
    pub(super) name: String,
    pub(super) lower: i64,
    pub(super) upper: i64,
}

/// The partitions of `table` wholly before `before`, oldest first.
pub(super) fn before(
    tx: &mut postgres::Transaction<'_>,
    table: Table,
    before: i64,
) -> Result<Vec<Partition>, StoreError> {
    Ok(tx
        .query(
            "SELECT name, lower, upper FROM partitions WHERE parent = $1 AND upper <= $2
             ORDER BY lower",
            &[&table.name(), &before],
        )?
        .iter()
        .map(|r| Partition {
            name: r.get(0),
            lower: r.get(1),
            upper: r.get(2),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_are_utc_days_and_calendar_months() {
        // 2026-12-02T01:57:36Z
        let t = 1_796_176_656;
        let day = Table::Rollups.period(t);
        assert_eq!(day.1 - day.0, DAY_SECS);
        assert_eq!(Table::Rollups.partition_name(day.0), "rollups_p20261202");
        let month = Table::Daily.period(t);
        assert_eq!(Table::Daily.partition_name(month.0), "daily_p20261201");
        assert_eq!((month.1 - month.0) / DAY_SECS, 31);
        assert_eq!(Table::Daily.partition_name(month.1), "daily_p20270101");
        // February of a leap year.
        let feb = Table::WindowDays.period(days_from_civil(2028, 2, 10) * DAY_SECS);
        assert_eq!((feb.1 - feb.0) / DAY_SECS, 29);
    }
}
