//! A small mergeable quantile sketch for daily summaries: a log-bucketed histogram
//! (the DDSketch idea) with a relative-accuracy guarantee.
//!
//! A positive value `v` goes to bucket `i = ceil(ln v / ln γ)` with `γ = (1 + α) / (1 − α)`;
//! every value in bucket `i` lies in `(γ^(i−1), γ^i]`, and the bucket's representative
//! `2γ^i / (γ + 1)` is within a relative error `α` of all of them. So any quantile read from
//! the sketch is within `α` (here 1%) of the true quantile's value. Zeros are counted apart;
//! negative values (vCenter's "no data") are not added. Merging two sketches adds their
//! bucket counts, so a month's p95 is the p95 of thirty merged days, with the same error
//! bound and no raw data.
//!
//! Buckets are kept sparse and sorted, `(i16 index, u32 count)`: a day of one VM counter
//! spans a few dozen buckets, a few hundred bytes.

use serde::{Deserialize, Serialize};

/// Relative accuracy of every quantile.
pub const RELATIVE_ACCURACY: f64 = 0.01;

fn gamma() -> f64 {
    (1.0 + RELATIVE_ACCURACY) / (1.0 - RELATIVE_ACCURACY)
}

/// The bucket of a positive finite value; `None` for zero, negatives and non-finite ones.
fn index(v: f64) -> Option<i16> {
    (v.is_finite() && v > 0.0).then(|| {
        (v.ln() / gamma().ln())
            .ceil()
            .clamp(f64::from(i16::MIN), f64::from(i16::MAX)) as i16
    })
}

/// The sketch.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Sketch {
    /// Values equal to zero.
    pub zeros: u64,
    /// `(bucket index, count)`, sorted by index.
    pub bins: Vec<(i16, u32)>,
}

impl Sketch {
    /// Adds a value; negative and non-finite values are ignored.
    pub fn add(&mut self, v: f64) {
        let Some(idx) = index(v) else {
            if v == 0.0 {
                self.zeros += 1;
            }
            return;
        };
        match self.bins.binary_search_by_key(&idx, |(i, _)| *i) {
            Ok(pos) => self.bins[pos].1 = self.bins[pos].1.saturating_add(1),
            Err(pos) => self.bins.insert(pos, (idx, 1)),
        }
    }

    /// Values added.
    pub fn count(&self) -> u64 {
        self.zeros + self.bins.iter().map(|(_, c)| u64::from(*c)).sum::<u64>()
    }

    /// Adds `other`'s counts to this sketch.
    pub fn merge(&mut self, other: &Sketch) {
        self.zeros += other.zeros;
        let mut merged = Vec::with_capacity(self.bins.len() + other.bins.len());
        let (x, y) = (&self.bins, &other.bins);
        let (mut i, mut j) = (0, 0);
        while i < x.len() || j < y.len() {
            match (x.get(i), y.get(j)) {
                (Some(p), Some(q)) if p.0 == q.0 => {
                    merged.push((p.0, p.1.saturating_add(q.1)));
                    i += 1;
                    j += 1;
                }
                (Some(p), Some(q)) if p.0 < q.0 => {
                    merged.push(*p);
                    i += 1;
                }
                (Some(p), None) => {
                    merged.push(*p);
                    i += 1;
                }
                (_, Some(q)) => {
                    merged.push(*q);
                    j += 1;
                }
                (None, None) => break,
            }
        }
        self.bins = merged;
    }

    /// A compact byte form for storage: LEB128 varints of the zero count, the bin count,
    /// then per bin the index's step from the previous one (zigzag, so the first may be
    /// negative) and the count. A day of window peaks is a few dozen bytes, a quarter of
    /// its JSON.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(4 + self.bins.len() * 3);
        put_varint(&mut out, self.zeros);
        put_varint(&mut out, self.bins.len() as u64);
        let mut prev = 0i32;
        for (i, c) in &self.bins {
            let step = i32::from(*i) - prev;
            put_varint(&mut out, u64::from(((step << 1) ^ (step >> 31)) as u32));
            put_varint(&mut out, u64::from(*c));
            prev = i32::from(*i);
        }
        out
    }

    /// Reads `to_bytes`' form; `None` for bytes it did not write (truncated, an index out
    /// of range, bins out of order, bytes left over).
    pub fn from_bytes(bytes: &[u8]) -> Option<Sketch> {
        let mut bins = Vec::new();
        let zeros = decode(bytes, &mut bins)?;
        let bins = bins
            .into_iter()
            .map(|(i, c)| Some((i, u32::try_from(c).ok()?)))
            .collect::<Option<_>>()?;
        Some(Sketch { zeros, bins })
    }

    /// The `q` quantile (0 ≤ q ≤ 1) by nearest rank, within `RELATIVE_ACCURACY`; `None`
    /// for an empty sketch.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let n = self.count();
        if n == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * n as f64).ceil() as u64).max(1);
        if rank <= self.zeros {
            return Some(0.0);
        }
        let g = gamma();
        let mut seen = self.zeros;
        for (i, c) in &self.bins {
            seen += u64::from(*c);
            if seen >= rank {
                return Some(2.0 * g.powi(i32::from(*i)) / (g + 1.0));
            }
        }
        self.bins
            .last()
            .map(|(i, _)| 2.0 * g.powi(i32::from(*i)) / (g + 1.0))
    }
}

/// Many sketches and values added into one: counts kept dense over the run of bucket
/// indexes seen, so that adding a sketch costs an index per bin, not a search and a
/// copy of the whole (a month of one series is thirty sketches and a day's windows).
#[derive(Debug, Clone, Default)]
pub struct SketchSum {
    zeros: u64,
    /// The bucket index of `counts[0]`.
    base: i32,
    counts: Vec<u64>,
    /// `add_bytes`' decoded bins, kept for the next call.
    scratch: Vec<(i16, u64)>,
}

impl SketchSum {
    #[inline]
    fn slot(&mut self, idx: i16) -> &mut u64 {
        let at = i32::from(idx) - self.base;
        if at >= 0 && (at as usize) < self.counts.len() {
            return &mut self.counts[at as usize];
        }
        self.grow(idx)
    }

    /// Widens the run of counts to take `idx` (a sketch's bins are near each other: the
    /// run stays short).
    fn grow(&mut self, idx: i16) -> &mut u64 {
        let i = i32::from(idx);
        if self.counts.is_empty() {
            self.base = i;
        }
        if i < self.base {
            let grow = (self.base - i) as usize;
            self.counts.splice(0..0, std::iter::repeat_n(0, grow));
            self.base = i;
        }
        let at = (i - self.base) as usize;
        if at >= self.counts.len() {
            self.counts.resize(at + 1, 0);
        }
        &mut self.counts[at]
    }

    /// Adds a value, as `Sketch::add` does.
    pub fn add(&mut self, v: f64) {
        match index(v) {
            Some(idx) => *self.slot(idx) += 1,
            None if v == 0.0 => self.zeros += 1,
            None => {}
        }
    }

    /// Adds every count of `s`.
    pub fn add_sketch(&mut self, s: &Sketch) {
        self.zeros += s.zeros;
        for (i, c) in &s.bins {
            *self.slot(*i) += u64::from(*c);
        }
    }

    /// Adds a sketch in `Sketch::to_bytes`' form without building it; `None` (and
    /// nothing added) for bytes that form does not read.
    pub fn add_bytes(&mut self, bytes: &[u8]) -> Option<()> {
        // Decoded first, so that the run of counts widens once to the sketch's range.
        let mut bins = std::mem::take(&mut self.scratch);
        let zeros = decode(bytes, &mut bins);
        if let (Some(_), Some(first), Some(last)) = (zeros, bins.first(), bins.last()) {
            self.grow(first.0);
            self.grow(last.0);
            let base = self.base;
            for (i, c) in &bins {
                self.counts[(i32::from(*i) - base) as usize] += c;
            }
        }
        self.zeros += zeros.unwrap_or(0);
        self.scratch = bins;
        zeros.map(|_| ())
    }

    /// The sum as a sketch (counts beyond `u32::MAX` saturate).
    pub fn finish(&self) -> Sketch {
        Sketch {
            zeros: self.zeros,
            bins: self
                .counts
                .iter()
                .enumerate()
                .filter(|(_, c)| **c > 0)
                .map(|(k, c)| {
                    (
                        (self.base + k as i32) as i16,
                        u32::try_from(*c).unwrap_or(u32::MAX),
                    )
                })
                .collect(),
        }
    }
}

/// Reads `Sketch::to_bytes`' form into `bins` (cleared first; counts as they were
/// written) and returns the zero count; `None` for bytes that form does not read
/// (truncated, an index out of range, bins out of order, bytes left over).
fn decode(mut bytes: &[u8], bins: &mut Vec<(i16, u64)>) -> Option<u64> {
    bins.clear();
    let zeros = take_varint(&mut bytes)?;
    let n = take_varint(&mut bytes)?;
    let mut prev = 0i32;
    for k in 0..n {
        let z = u32::try_from(take_varint(&mut bytes)?).ok()?;
        let step = ((z >> 1) as i32) ^ -((z & 1) as i32);
        if k > 0 && step <= 0 {
            return None;
        }
        let idx = prev.checked_add(step)?;
        bins.push((i16::try_from(idx).ok()?, take_varint(&mut bytes)?));
        prev = idx;
    }
    bytes.is_empty().then_some(zeros)
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// One LEB128 varint; most are one byte (a bin's step and count), read first.
#[inline]
fn take_varint(bytes: &mut &[u8]) -> Option<u64> {
    match bytes.split_first() {
        Some((&b, rest)) if b < 0x80 => {
            *bytes = rest;
            Some(u64::from(b))
        }
        _ => take_long_varint(bytes),
    }
}

fn take_long_varint(bytes: &mut &[u8]) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = bytes.split_first()?;
        *bytes = rest;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn exact(values: &mut [f64], q: f64) -> f64 {
        values.sort_by(f64::total_cmp);
        let rank = ((q * values.len() as f64).ceil() as usize).max(1);
        values[rank - 1]
    }

    #[test]
    fn empty_zero_and_single_values() {
        let mut s = Sketch::default();
        assert_eq!(s.quantile(0.95), None);
        s.add(-1.0);
        assert_eq!(s.count(), 0, "no-data values are not added");
        s.add(0.0);
        assert_eq!(s.quantile(0.5), Some(0.0));
        let mut one = Sketch::default();
        one.add(42.0);
        let v = one.quantile(0.99).expect("value");
        assert!((v - 42.0).abs() <= 42.0 * RELATIVE_ACCURACY, "{v}");
    }

    proptest! {
        #[test]
        fn quantiles_are_within_the_relative_accuracy(values in prop::collection::vec(0.001f64..1e7, 1..400), q in 0.0f64..1.0) {
            let mut s = Sketch::default();
            for v in &values { s.add(*v); }
            let mut sorted = values.clone();
            let truth = exact(&mut sorted, q);
            let got = s.quantile(q).expect("non-empty");
            prop_assert!((got - truth).abs() <= truth * RELATIVE_ACCURACY * 1.000001, "q {q}: sketch {got}, exact {truth}");
        }

        #[test]
        fn bytes_read_back_as_the_same_sketch(values in prop::collection::vec(0.0f64..1e9, 0..300), cut in 0usize..64) {
            let mut s = Sketch::default();
            for v in &values { s.add(*v); }
            s.add(1e-300); // the most negative index there is
            let bytes = s.to_bytes();
            prop_assert_eq!(Sketch::from_bytes(&bytes), Some(s));
            // Anything shorter is refused, not misread.
            if cut < bytes.len() {
                prop_assert_eq!(Sketch::from_bytes(&bytes[..cut]), None);
            }
        }

        #[test]
        fn a_sum_equals_merging(parts in prop::collection::vec(prop::collection::vec(0.0f64..1e6, 0..60), 0..8), extra in prop::collection::vec(0.0f64..1e-3, 0..5)) {
            let (mut merged, mut sum, mut by_bytes) = (Sketch::default(), SketchSum::default(), SketchSum::default());
            for p in &parts {
                let mut s = Sketch::default();
                for v in p { s.add(*v); }
                merged.merge(&s);
                sum.add_sketch(&s);
                prop_assert_eq!(by_bytes.add_bytes(&s.to_bytes()), Some(()));
            }
            prop_assert_eq!(by_bytes.finish(), merged.clone());
            // Every sketch's bytes added again, and bytes that do not read (adding
            // nothing): every count twice, as a sketch merged with itself.
            for p in &parts {
                let mut s = Sketch::default();
                for v in p { s.add(*v); }
                let bytes = s.to_bytes();
                prop_assert_eq!(by_bytes.add_bytes(&bytes), Some(()));
                prop_assert_eq!(by_bytes.add_bytes(&[bytes.as_slice(), &[0]].concat()), None);
            }
            let mut doubled = merged.clone();
            doubled.merge(&merged);
            prop_assert_eq!(by_bytes.finish(), doubled);
            for v in &extra { merged.add(*v); sum.add(*v); }
            prop_assert_eq!(sum.finish(), merged);
        }

        #[test]
        fn merging_equals_adding_everything_to_one(a in prop::collection::vec(0.0f64..1e5, 0..200), b in prop::collection::vec(0.0f64..1e5, 0..200)) {
            let (mut sa, mut sb, mut all) = (Sketch::default(), Sketch::default(), Sketch::default());
            for v in &a { sa.add(*v); all.add(*v); }
            for v in &b { sb.add(*v); all.add(*v); }
            sa.merge(&sb);
            prop_assert_eq!(sa, all);
        }
    }
}
