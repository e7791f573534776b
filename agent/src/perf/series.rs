//! The aggregator's series table: each series' number, what the number stands for, and
//! the end of the last window rolled up for it.
//!
//! Numbers are dense (a freed one is reused), so a series' facts are a slot in a vector
//! found by its number: a window's drain reads them directly, without building a reverse
//! map of 100,000+ series each time (at 10,000 VMs that map was the agent's largest
//! allocation of the drain).

use std::collections::HashMap;

/// A series inside the aggregator: numbered entity, numbered counter, numbered instance.
/// 12 bytes instead of a `SeriesKey`'s 96: there are over 100,000 series at 10,000 VMs.
pub(crate) type CompactKey = (u32, u16, u32);

/// What a series number stands for. 20 bytes; one per series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Slot {
    // The key's three numbers as fields (not a tuple) so that `unit` fits in its padding.
    entity: u32,
    counter: u16,
    instance: u32,
    /// Index into the aggregator's (unit, statsType) pairs.
    pub(crate) unit: u8,
    pub(crate) interval_secs: u32,
    /// End (Unix seconds) of the last window rolled up for this series, 0 if none: a later
    /// sample for it or an earlier window is late, counted and dropped, never a second
    /// rollup. Seconds in a u32 (until 2106) rather than i64 milliseconds: windows are whole
    /// seconds, and this keeps a slot at 20 bytes.
    closed_until_s: u32,
}

impl Slot {
    pub(crate) fn key(&self) -> CompactKey {
        (self.entity, self.counter, self.instance)
    }

    /// Whether the window ending at `end_ms` was already rolled up for this series.
    pub(crate) fn is_closed(&self, end_ms: i64) -> bool {
        end_ms <= i64::from(self.closed_until_s) * 1000
    }

    /// Marks windows ending at or before `until_ms` as rolled up.
    pub(crate) fn close_until(&mut self, until_ms: i64) {
        let s = u32::try_from(until_ms.div_euclid(1000)).unwrap_or(if until_ms < 0 {
            0
        } else {
            u32::MAX
        });
        self.closed_until_s = self.closed_until_s.max(s);
    }
}

/// Series by key and by number.
#[derive(Debug, Default)]
pub(crate) struct SeriesTable {
    ids: HashMap<CompactKey, u32>,
    /// Indexed by series number; `None` for a freed number awaiting reuse.
    slots: Vec<Option<Slot>>,
    free: Vec<u32>,
}

impl SeriesTable {
    pub(crate) fn id_of(&self, key: &CompactKey) -> Option<u32> {
        self.ids.get(key).copied()
    }

    pub(crate) fn get(&self, id: u32) -> Option<&Slot> {
        self.slots.get(id as usize).and_then(Option::as_ref)
    }

    pub(crate) fn get_mut(&mut self, id: u32) -> Option<&mut Slot> {
        self.slots.get_mut(id as usize).and_then(Option::as_mut)
    }

    /// Numbers a new series (the key must not be in the table).
    pub(crate) fn insert(&mut self, key: CompactKey, unit: u8, interval_secs: u32) -> u32 {
        let slot = Slot {
            entity: key.0,
            counter: key.1,
            instance: key.2,
            unit,
            interval_secs,
            closed_until_s: 0,
        };
        let id = match self.free.pop() {
            Some(id) => {
                self.slots[id as usize] = Some(slot);
                id
            }
            None => {
                self.slots.push(Some(slot));
                (self.slots.len() - 1) as u32
            }
        };
        self.ids.insert(key, id);
        id
    }

    pub(crate) fn len(&self) -> usize {
        self.ids.len()
    }

    /// Keeps the series for which `keep(id, slot)` holds; the others' numbers are freed.
    /// The caller must not free a number that an open window or day still holds.
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(u32, &Slot) -> bool) {
        for (id, entry) in self.slots.iter_mut().enumerate() {
            if let Some(slot) = entry {
                if !keep(id as u32, slot) {
                    self.ids.remove(&slot.key());
                    self.free.push(id as u32);
                    *entry = None;
                }
            }
        }
    }

    /// The keys of every series.
    pub(crate) fn keys(&self) -> impl Iterator<Item = &CompactKey> {
        self.ids.keys()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn freed_numbers_are_reused_and_keys_follow() {
        let mut t = SeriesTable::default();
        let a = t.insert((1, 0, 0), 0, 20);
        let b = t.insert((2, 0, 0), 0, 20);
        assert_eq!((a, b), (0, 1));
        t.retain(|id, _| id != a);
        assert_eq!(t.len(), 1);
        assert_eq!(t.id_of(&(1, 0, 0)), None);
        assert!(t.get(a).is_none());
        let c = t.insert((3, 0, 0), 0, 300);
        assert_eq!(c, a, "the freed number is reused");
        assert_eq!(
            t.get(c).map(|s| (s.key(), s.interval_secs)),
            Some(((3, 0, 0), 300))
        );
        assert_eq!(t.id_of(&(2, 0, 0)), Some(b));
    }

    #[test]
    fn closing_is_monotonic_and_in_whole_seconds() {
        let mut s = Slot {
            entity: 0,
            counter: 0,
            instance: 0,
            unit: 0,
            interval_secs: 20,
            closed_until_s: 0,
        };
        assert!(!s.is_closed(60_000));
        s.close_until(120_000);
        assert!(s.is_closed(60_000) && s.is_closed(120_000) && !s.is_closed(180_000));
        s.close_until(60_000);
        assert!(
            s.is_closed(120_000),
            "an earlier mark does not reopen a window"
        );
        s.close_until(i64::MIN);
        s.close_until(i64::MAX);
        assert!(s.is_closed(4_000_000_000_000));
        assert_eq!(size_of::<Slot>(), 20);
    }
}
