//! A closed day of one series' windows as one compressed value: what a store keeps of
//! that day instead of 288 rows. Columns, not rows (starts, lengths, counts, then each
//! statistic), integers as zigzag deltas in LEB128 varints, zstd over the lot.
//!
//! Lossless, bit for bit: a statistic is written as a decimal integer (the number of
//! decimals chosen per column: vCenter's values are integers, its percentages
//! hundredths) plus the distance in ULPs from what that integer decodes to, so a value the
//! integer does not give exactly (a mean the agent divided, a float from elsewhere) still
//! comes back as it was; mostly that distance is 0 and zstd makes it nothing. The mean is
//! written as the window's sum (mean × count), which is a decimal when the samples are.

#[cfg(test)]
mod tests;

use std::cell::RefCell;

use vscout_wire::batch::StatsRow;

/// One window as the stores keep it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    /// Unix seconds.
    pub start: i64,
    pub secs: u32,
    pub expected: u32,
    pub missing: u32,
    /// Count, min, max, mean, p50, p95, p99; `None` for a window without samples.
    pub stats: Option<StatsRow>,
}

/// The first byte of a pack: the layout below. A pack of another version is refused.
const VERSION: u8 = 1;
/// zstd's level: 3 packs a day in well under a millisecond.
const LEVEL: i32 = 3;
/// Decimals tried per column: `10^k` must stay exact in an f64 and cover hundredths.
const DECIMALS: [f64; 4] = [1.0, 10.0, 100.0, 1000.0];
/// A day holds at most 86,400 one-second windows; anything more is a corrupt pack.
const MOST_WINDOWS: u64 = 86_400;

/// A pack that does not decode: named with what was wrong.
#[derive(Debug, thiserror::Error)]
#[error("window pack unreadable: {0}")]
pub struct PackError(String);

/// Packs the windows of the day starting at `day_start` (sorted by start, none before
/// the day).
pub fn encode(day_start: i64, windows: &[Window]) -> Vec<u8> {
    let mut out = vec![VERSION];
    put(&mut out, windows.len() as u64);
    let mut prev = day_start;
    for w in windows {
        put_signed(&mut out, w.start - prev);
        prev = w.start;
    }
    for field in [
        |w: &Window| w.secs,
        |w: &Window| w.expected,
        |w: &Window| w.missing,
        |w: &Window| w.stats.map_or(0, |s| s.0),
    ] {
        windows
            .iter()
            .for_each(|w| put(&mut out, u64::from(field(w))));
    }
    out.extend(windows.iter().map(|w| u8::from(w.stats.is_some())));
    let stats: Vec<StatsRow> = windows.iter().filter_map(|w| w.stats).collect();
    let counts: Vec<f64> = stats.iter().map(|s| f64::from(s.0)).collect();
    let ones = vec![1.0; stats.len()];
    for (i, column) in COLUMNS.iter().enumerate() {
        let values: Vec<f64> = stats.iter().map(column).collect();
        // The mean is written as the sum it was divided from.
        let divisors = if i == MEAN { &counts } else { &ones };
        put_column(&mut out, &values, divisors);
    }
    zstd::bulk::compress(&out, LEVEL).unwrap_or_else(|_| {
        // Compressing bytes in memory fails only on allocation; keep them as they are,
        // marked so that decode knows (zstd frames never start with 0).
        let mut raw = vec![0];
        raw.extend(out);
        raw
    })
}

/// The windows of a pack made by [`encode`] for the same `day_start`.
pub fn decode(day_start: i64, packed: &[u8]) -> Result<Vec<Window>, PackError> {
    let bytes = match packed.first() {
        Some(0) => packed[1..].to_vec(),
        _ => unzstd(packed)?,
    };
    let mut r = Reader {
        bytes: &bytes,
        at: 0,
    };
    let version = r.byte()?;
    if version != VERSION {
        return Err(PackError(format!("version {version}, not {VERSION}")));
    }
    let n = r.get()?;
    if n > MOST_WINDOWS {
        return Err(PackError(format!("{n} windows in a day")));
    }
    let n = n as usize;
    let mut starts = Vec::with_capacity(n);
    let mut prev = day_start;
    for _ in 0..n {
        prev = prev.wrapping_add(r.get_signed()?);
        starts.push(prev);
    }
    let mut ints = [vec![], vec![], vec![], vec![]];
    for column in &mut ints {
        for _ in 0..n {
            column.push(r.get_u32()?);
        }
    }
    let present: Vec<bool> = (0..n)
        .map(|_| r.byte().map(|b| b != 0))
        .collect::<Result<_, _>>()?;
    let with_stats = present.iter().filter(|p| **p).count();
    let counts: Vec<f64> = (0..n)
        .filter(|i| present[*i])
        .map(|i| f64::from(ints[3][i]))
        .collect();
    let ones = vec![1.0; with_stats];
    let mut columns = Vec::with_capacity(COLUMNS.len());
    for i in 0..COLUMNS.len() {
        let divisors = if i == MEAN { &counts } else { &ones };
        columns.push(r.column(divisors)?);
    }
    if r.at != bytes.len() {
        return Err(PackError(format!("{} bytes left over", bytes.len() - r.at)));
    }
    let mut k = 0;
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let stats = present[i].then(|| {
            let c = |j: usize| columns[j][k];
            let s = StatsRow(ints[3][i], c(0), c(1), c(2), c(3), c(4), c(5));
            k += 1;
            s
        });
        out.push(Window {
            start: starts[i],
            secs: ints[0][i],
            expected: ints[1][i],
            missing: ints[2][i],
            stats,
        });
    }
    Ok(out)
}

/// The most a pack decompresses to: a day of one-second windows, each at most a few
/// varints of 10 bytes a column.
const MOST_BYTES: u64 = MOST_WINDOWS * 16 * 10;

thread_local! {
    /// One decompression context a thread, kept: making one for each pack (and its
    /// buffers) cost more than decoding the pack.
    static UNZSTD: RefCell<Option<zstd::bulk::Decompressor<'static>>> = const { RefCell::new(None) };
}

/// A zstd frame decompressed, into as many bytes as its header says it holds.
fn unzstd(packed: &[u8]) -> Result<Vec<u8>, PackError> {
    let bad = |e: std::io::Error| PackError(format!("zstd: {e}"));
    let size = match zstd::zstd_safe::get_frame_content_size(packed) {
        Ok(Some(n)) if n <= MOST_BYTES => n as usize,
        // Every pack `encode` made says its size; a frame that does not is read whole.
        Ok(_) => return zstd::stream::decode_all(packed).map_err(bad),
        Err(_) => return Err(PackError("zstd: not a frame".into())),
    };
    UNZSTD.with(|cell| {
        let mut cell = cell.borrow_mut();
        let dctx = match cell.as_mut() {
            Some(d) => d,
            None => cell.insert(zstd::bulk::Decompressor::new().map_err(bad)?),
        };
        dctx.decompress(packed, size).map_err(bad)
    })
}

/// The statistics in the order they are written; [`MEAN`] is the mean's place.
const COLUMNS: [fn(&StatsRow) -> f64; 6] = [|s| s.1, |s| s.2, |s| s.3, |s| s.4, |s| s.5, |s| s.6];
const MEAN: usize = 2;

/// What `int` decodes to with `scale` decimals and `divisor`.
fn value_of(int: i64, scale: f64, divisor: f64) -> f64 {
    int as f64 / scale / divisor
}

/// The integer `v` is written as: `v × divisor × scale` rounded, or 0 where that is no
/// integer an f64 holds exactly (the ULP distance then carries the whole value).
fn int_of(v: f64, scale: f64, divisor: f64) -> i64 {
    let x = (v * divisor * scale).round();
    if x.is_finite() && x.abs() < 9.0e15 {
        x as i64
    } else {
        0
    }
}

/// An f64's bits as an integer that orders like the floats, so that neighbours differ
/// by 1: a negative float's bits but the sign flipped (its own inverse).
fn ordered(v: f64) -> i64 {
    let b = v.to_bits() as i64;
    b ^ (((b >> 63) as u64) >> 1) as i64
}

fn from_ordered(o: i64) -> f64 {
    f64::from_bits((o ^ (((o >> 63) as u64) >> 1) as i64) as u64)
}

/// One statistic's column: the decimals byte, the integers' deltas, the ULP distances.
fn put_column(out: &mut Vec<u8>, values: &[f64], divisors: &[f64]) {
    // The decimals that give most values exactly (ties: the fewest decimals).
    let exact = |scale: f64| {
        values
            .iter()
            .zip(divisors)
            .filter(|(v, d)| value_of(int_of(**v, scale, **d), scale, **d).to_bits() == v.to_bits())
            .count()
    };
    let mut best = 0;
    for (i, scale) in DECIMALS.iter().enumerate().skip(1) {
        if exact(*scale) > exact(DECIMALS[best]) {
            best = i;
        }
    }
    let scale = DECIMALS[best];
    out.push(best as u8);
    let mut prev = 0i64;
    let ints: Vec<i64> = values
        .iter()
        .zip(divisors)
        .map(|(v, d)| int_of(*v, scale, *d))
        .collect();
    for int in &ints {
        put_signed(out, int.wrapping_sub(prev));
        prev = *int;
    }
    for ((v, d), int) in values.iter().zip(divisors).zip(&ints) {
        put_signed(
            out,
            ordered(*v).wrapping_sub(ordered(value_of(*int, scale, *d))),
        );
    }
}

fn put(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_signed(out: &mut Vec<u8>, v: i64) {
    put(out, ((v << 1) ^ (v >> 63)) as u64);
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn byte(&mut self) -> Result<u8, PackError> {
        match self.bytes.get(self.at) {
            Some(b) => {
                self.at += 1;
                Ok(*b)
            }
            None => Err(self.ended()),
        }
    }

    /// A varint. The loop reads bytes, not `Result`s: decoding a day is some 5,000 of
    /// them, and a `Result` a byte took most of a read's time.
    fn get(&mut self) -> Result<u64, PackError> {
        let mut v = 0u64;
        let mut shift = 0;
        while let Some(b) = self.bytes.get(self.at) {
            self.at += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
            shift += 7;
            if shift > 63 {
                return Err(self.too_long());
            }
        }
        Err(self.ended())
    }

    #[cold]
    fn ended(&self) -> PackError {
        PackError(format!("ends at byte {}", self.at))
    }

    #[cold]
    fn too_long(&self) -> PackError {
        PackError(format!("varint too long at byte {}", self.at))
    }

    fn get_u32(&mut self) -> Result<u32, PackError> {
        let v = self.get()?;
        u32::try_from(v).map_err(|_| PackError(format!("{v} is no 32-bit count")))
    }

    fn get_signed(&mut self) -> Result<i64, PackError> {
        let v = self.get()?;
        Ok(((v >> 1) as i64) ^ -((v & 1) as i64))
    }

    fn column(&mut self, divisors: &[f64]) -> Result<Vec<f64>, PackError> {
        let k = self.byte()?;
        let scale = *DECIMALS
            .get(usize::from(k))
            .ok_or_else(|| PackError(format!("{k} decimals")))?;
        let mut ints = Vec::with_capacity(divisors.len());
        let mut prev = 0i64;
        for _ in divisors {
            prev = prev.wrapping_add(self.get_signed()?);
            ints.push(prev);
        }
        ints.iter()
            .zip(divisors)
            .map(|(int, d)| {
                let ulps = self.get_signed()?;
                Ok(from_ordered(
                    ordered(value_of(*int, scale, *d)).wrapping_add(ulps),
                ))
            })
            .collect()
    }
}
