//! The series table: every (entity, counter, instance) series of one vCenter, numbered
//! once, when the poller first sees it. The number is the series' identity from the poll
//! to the rollup set: the poller keeps its high-water mark under it, the aggregator its
//! samples and closed windows, and the rollup set names it with the table's labels.
//!
//! Numbers are dense (a freed one is reused), so a series' facts are a slot in a vector
//! found by its number: a window's drain reads them directly, without building a reverse
//! map of 100,000+ series each time (at 10,000 VMs that map was the agent's largest
//! allocation of the drain).

use std::collections::{HashMap, HashSet};

use compact_str::CompactString;

use vscout_wire::names::Names;

use super::catalog::Counter;
use crate::vsphere::MoRef;

/// A series in words: what the watermark's seeds file and the tests name series by.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeriesKey {
    pub entity_type: CompactString,
    pub entity_id: CompactString,
    /// `group.name.rollup`.
    pub counter: CompactString,
    /// Instance (`""` is the aggregate).
    pub instance: CompactString,
}

/// A series' number.
pub type SeriesId = u32;

/// What a series number stands for, and where its data stands. 32 bytes; one per series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    /// Index into the table's entities.
    pub(crate) entity: u32,
    /// Label numbers (see [`SeriesTable::label`]).
    pub(crate) counter: u32,
    pub(crate) instance: u32,
    pub(crate) unit: u32,
    pub(crate) stats_type: u32,
    pub(crate) interval_secs: u32,
    /// Grid slot (Unix seconds) of the newest sample taken, 0 if none: the poller takes
    /// only later ones. Seconds in a u32 (until 2106): grid slots are whole seconds.
    mark_s: u32,
    /// End (Unix seconds) of the last window rolled up for this series, 0 if none: a later
    /// sample for it or an earlier window is late, counted and dropped, never a second
    /// rollup.
    closed_until_s: u32,
}

/// Unix milliseconds as whole seconds in a u32, clamped.
fn secs_u32(ms: i64) -> u32 {
    u32::try_from(ms.div_euclid(1000)).unwrap_or(if ms < 0 { 0 } else { u32::MAX })
}

impl Slot {
    /// Whether the window ending at `end_ms` was already rolled up for this series.
    pub(crate) fn is_closed(&self, end_ms: i64) -> bool {
        end_ms <= i64::from(self.closed_until_s) * 1000
    }

    /// Marks windows ending at or before `until_ms` as rolled up.
    pub(crate) fn close_until(&mut self, until_ms: i64) {
        self.closed_until_s = self.closed_until_s.max(secs_u32(until_ms));
    }

    /// The grid slot (Unix ms) of the newest sample taken, if any.
    pub(crate) fn mark_ms(&self) -> Option<i64> {
        (self.mark_s > 0).then(|| i64::from(self.mark_s) * 1000)
    }
}

/// Puts `item` in a freed place of `vec` (listed in `free`), or at its end; returns the
/// place: numbers stay dense.
fn place<T>(vec: &mut Vec<Option<T>>, free: &mut Vec<u32>, item: T) -> u32 {
    match free.pop() {
        Some(at) => {
            vec[at as usize] = Some(item);
            at
        }
        None => {
            vec.push(Some(item));
            (vec.len() - 1) as u32
        }
    }
}

/// An entity whose series the table holds.
#[derive(Debug, Clone)]
struct Entity {
    moref: MoRef,
    /// Label number of its type.
    kind: u32,
    /// Where its next request starts (Unix ms): the oldest of its series' marks.
    next_start_ms: Option<i64>,
}

/// The labels of a counter: name, unit, statsType.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CounterLabels {
    name: u32,
    unit: u32,
    stats_type: u32,
}

/// Series by key and by number, their entities, and the labels they use.
#[derive(Debug, Default)]
pub struct SeriesTable {
    /// (entity, counter label, instance label) → series.
    ids: HashMap<(u32, u32, u32), SeriesId>,
    /// Indexed by series number; `None` for a freed number awaiting reuse.
    slots: Vec<Option<Slot>>,
    free: Vec<SeriesId>,
    entities: Vec<Option<Entity>>,
    entity_ids: HashMap<MoRef, u32>,
    free_entities: Vec<u32>,
    /// Entity types, counter names, instances, units and statsTypes, numbered: a few
    /// hundred per estate, repeated across 100,000+ series.
    labels: Names,
    /// vCenter counter key → its labels (keys are per vCenter, as the table is).
    counters: HashMap<i32, CounterLabels>,
    /// Closed marks learnt before their series was seen (`seed_closed`: what an earlier
    /// run stored past its watermark), applied when the series first appears.
    pending_closed: HashMap<(MoRef, CompactString, CompactString), i64>,
}

impl SeriesTable {
    /// The number of `label`, given one if it has none.
    fn label_id(&mut self, label: &str) -> u32 {
        self.labels.id(label)
    }

    /// Label `n` (`""` if there is none).
    pub fn label(&self, n: u32) -> &CompactString {
        static EMPTY: CompactString = CompactString::const_new("");
        self.labels.get(n).unwrap_or(&EMPTY)
    }

    /// How many labels there are: label numbers are below this.
    pub(crate) fn labels_len(&self) -> usize {
        self.labels.len()
    }

    /// The number of label `label`, if it has one.
    pub(crate) fn find_label(&self, label: &str) -> Option<u32> {
        self.labels.find(label)
    }

    /// The number of `entity`, given one if it has none.
    pub(crate) fn entity(&mut self, entity: &MoRef) -> u32 {
        if let Some(e) = self.entity_ids.get(entity) {
            return *e;
        }
        let kind = self.label_id(&entity.kind);
        let record = Entity {
            moref: entity.clone(),
            kind,
            next_start_ms: None,
        };
        let e = place(&mut self.entities, &mut self.free_entities, record);
        self.entity_ids.insert(entity.clone(), e);
        e
    }

    /// The entity of number `e`: its managed object and type label.
    pub(crate) fn entity_of(&self, e: u32) -> Option<(&MoRef, u32)> {
        let entity = self.entities.get(e as usize)?.as_ref()?;
        Some((&entity.moref, entity.kind))
    }

    /// Where the next request for `entity` starts (Unix ms), if it was polled before.
    pub fn entity_start(&self, entity: &MoRef) -> Option<i64> {
        let e = self.entity_ids.get(entity)?;
        self.entities.get(*e as usize)?.as_ref()?.next_start_ms
    }

    pub(crate) fn set_entity_start(&mut self, e: u32, start_ms: i64) {
        if let Some(Some(entity)) = self.entities.get_mut(e as usize) {
            entity.next_start_ms = Some(start_ms);
        }
    }

    /// The series of `counter` and `instance` on entity `e`, numbered if it is new.
    pub(crate) fn series(
        &mut self,
        e: u32,
        counter: &Counter,
        instance: &str,
        interval_secs: u32,
    ) -> SeriesId {
        let labels = match self.counters.get(&counter.key) {
            Some(l) => *l,
            None => {
                let l = self.counter_labels(&counter.name, &counter.unit, &counter.stats_type);
                self.counters.insert(counter.key, l);
                l
            }
        };
        self.series_with(e, labels, instance, interval_secs)
    }

    /// A counter's labels, by name (the poller's path caches them by counter key).
    pub(crate) fn counter_labels(
        &mut self,
        name: &str,
        unit: &str,
        stats_type: &str,
    ) -> CounterLabels {
        CounterLabels {
            name: self.label_id(name),
            unit: self.label_id(unit),
            stats_type: self.label_id(stats_type),
        }
    }

    /// The series of a counter with `labels` and `instance` on entity `e`.
    pub(crate) fn series_with(
        &mut self,
        e: u32,
        labels: CounterLabels,
        instance: &str,
        interval_secs: u32,
    ) -> SeriesId {
        let instance = self.label_id(instance);
        if let Some(id) = self.ids.get(&(e, labels.name, instance)) {
            return *id;
        }
        let slot = Slot {
            entity: e,
            counter: labels.name,
            instance,
            unit: labels.unit,
            stats_type: labels.stats_type,
            interval_secs,
            mark_s: 0,
            closed_until_s: 0,
        };
        self.insert(slot)
    }

    /// Numbers a new series (its key must not be in the table), with the closed mark an
    /// earlier run left for it.
    fn insert(&mut self, mut slot: Slot) -> SeriesId {
        if !self.pending_closed.is_empty() {
            if let Some((moref, _)) = self.entity_of(slot.entity) {
                let key = (
                    moref.clone(),
                    self.label(slot.counter).clone(),
                    self.label(slot.instance).clone(),
                );
                if let Some(until) = self.pending_closed.remove(&key) {
                    slot.close_until(until);
                }
            }
        }
        let key = (slot.entity, slot.counter, slot.instance);
        let id = place(&mut self.slots, &mut self.free, slot);
        self.ids.insert(key, id);
        id
    }

    pub fn get(&self, id: SeriesId) -> Option<&Slot> {
        self.slots.get(id as usize).and_then(Option::as_ref)
    }

    pub(crate) fn get_mut(&mut self, id: SeriesId) -> Option<&mut Slot> {
        self.slots.get_mut(id as usize).and_then(Option::as_mut)
    }

    /// Moves the mark of series `id` to `slot_ms`.
    pub(crate) fn set_mark(&mut self, id: SeriesId, slot_ms: i64) {
        if let Some(s) = self.get_mut(id) {
            s.mark_s = secs_u32(slot_ms);
        }
    }

    /// Series known.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Series `id` in words.
    pub fn key(&self, id: SeriesId) -> Option<SeriesKey> {
        let slot = self.get(id)?;
        let (moref, _) = self.entity_of(slot.entity)?;
        Some(SeriesKey {
            entity_type: moref.kind.clone(),
            entity_id: moref.value.clone(),
            counter: self.label(slot.counter).clone(),
            instance: self.label(slot.instance).clone(),
        })
    }

    /// Marks `key` as rolled up until `until_ms` (Unix ms): its samples of windows ending
    /// then or before are late. For what an earlier run stored past its watermark (a
    /// crash between a window's batches); a series not seen yet gets it when it appears.
    pub fn seed_closed(&mut self, key: &SeriesKey, until_ms: i64) {
        let moref = MoRef::new(key.entity_type.as_str(), key.entity_id.as_str());
        let id = self.entity_ids.get(&moref).and_then(|e| {
            let counter = self.find_label(&key.counter)?;
            let instance = self.find_label(&key.instance)?;
            self.ids.get(&(*e, counter, instance)).copied()
        });
        match id.and_then(|id| self.get_mut(id)) {
            Some(slot) => slot.close_until(until_ms),
            None => {
                let floor = self
                    .pending_closed
                    .entry((moref, key.counter.clone(), key.instance.clone()))
                    .or_insert(i64::MIN);
                *floor = (*floor).max(until_ms);
            }
        }
    }

    /// Forgets the series of entities not in `targets` (deleted or powered off), except
    /// those `held` says an open window or day still holds; an entity goes with its last
    /// series. Memory follows the estate.
    pub fn retain(&mut self, targets: &[MoRef], held: impl Fn(SeriesId) -> bool) {
        let keep: HashSet<&MoRef> = targets.iter().collect();
        let mut kept_entities: HashSet<u32> = HashSet::new();
        for (e, entity) in self.entities.iter().enumerate() {
            if entity.as_ref().is_some_and(|x| keep.contains(&x.moref)) {
                kept_entities.insert(e as u32);
            }
        }
        for (id, entry) in self.slots.iter_mut().enumerate() {
            let Some(slot) = entry else { continue };
            if kept_entities.contains(&slot.entity) || held(id as SeriesId) {
                continue;
            }
            self.ids.remove(&(slot.entity, slot.counter, slot.instance));
            self.free.push(id as SeriesId);
            *entry = None;
        }
        let used: HashSet<u32> = self.slots.iter().flatten().map(|s| s.entity).collect();
        for (e, entry) in self.entities.iter_mut().enumerate() {
            let e = e as u32;
            let Some(entity) = entry else { continue };
            if kept_entities.contains(&e) || used.contains(&e) {
                continue;
            }
            self.entity_ids.remove(&entity.moref);
            self.free_entities.push(e);
            *entry = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counter(key: i32, name: &str) -> Counter {
        Counter {
            key,
            name: name.into(),
            unit: "percent".into(),
            stats_type: "rate".into(),
        }
    }

    fn vm(n: u32) -> MoRef {
        MoRef::new("VirtualMachine", format!("vm-{n}").as_str())
    }

    #[test]
    fn a_series_is_numbered_once_and_freed_numbers_are_reused() {
        let mut t = SeriesTable::default();
        let cpu = counter(6, "cpu.usage.average");
        let (e1, e2) = (t.entity(&vm(1)), t.entity(&vm(2)));
        let a = t.series(e1, &cpu, "", 20);
        let b = t.series(e2, &cpu, "", 20);
        assert_eq!((a, b), (0, 1));
        assert_eq!(
            t.series(e1, &cpu, "", 20),
            a,
            "the same series, the same number"
        );
        assert_eq!(t.len(), 2);
        t.retain(&[vm(2)], |_| false);
        assert_eq!(t.len(), 1);
        assert!(t.get(a).is_none());
        assert_eq!(t.entity_start(&vm(1)), None);
        let e3 = t.entity(&MoRef::new("Datastore", "datastore-9"));
        let c = t.series(e3, &cpu, "", 300);
        assert_eq!(c, a, "the freed number is reused");
        let key = t.key(c).expect("key");
        assert_eq!(
            (key.entity_type.as_str(), key.entity_id.as_str()),
            ("Datastore", "datastore-9")
        );
        assert_eq!(t.get(c).map(|s| s.interval_secs), Some(300));
        assert_eq!(t.key(b).map(|k| k.entity_id), Some("vm-2".into()));
    }

    #[test]
    fn a_held_series_keeps_its_entity_and_marks() {
        let mut t = SeriesTable::default();
        let cpu = counter(6, "cpu.usage.average");
        let e = t.entity(&vm(1));
        let id = t.series(e, &cpu, "", 20);
        t.set_mark(id, 60_000);
        t.set_entity_start(e, 60_000);
        t.retain(&[], |held| held == id);
        assert_eq!(t.get(id).and_then(Slot::mark_ms), Some(60_000));
        assert_eq!(t.entity_start(&vm(1)), Some(60_000));
        t.retain(&[], |_| false);
        assert!(t.is_empty());
        assert_eq!(t.entity_start(&vm(1)), None);
    }

    #[test]
    fn seeds_close_a_series_now_or_when_it_appears() {
        let mut t = SeriesTable::default();
        let cpu = counter(6, "cpu.usage.average");
        let key = |vm: &str| SeriesKey {
            entity_type: "VirtualMachine".into(),
            entity_id: vm.into(),
            counter: "cpu.usage.average".into(),
            instance: "".into(),
        };
        let e = t.entity(&vm(1));
        let seen = t.series(e, &cpu, "", 20);
        t.seed_closed(&key("vm-1"), 120_000);
        t.seed_closed(&key("vm-2"), 60_000);
        assert!(t.get(seen).is_some_and(|s| s.is_closed(120_000)));
        let e2 = t.entity(&vm(2));
        let later = t.series(e2, &cpu, "", 20);
        let slot = t.get(later).expect("slot");
        assert!(slot.is_closed(60_000) && !slot.is_closed(120_000));
    }

    #[test]
    fn closing_is_monotonic_and_in_whole_seconds() {
        let mut t = SeriesTable::default();
        let e = t.entity(&vm(1));
        let id = t.series(e, &counter(6, "cpu.usage.average"), "", 20);
        let s = t.get_mut(id).expect("slot");
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
        assert_eq!(size_of::<Slot>(), 32);
    }
}
