//! The wire and buffer format of a batch: a versioned JSON document of records
//! (inventories, rollups, daily summaries, agent health), zstd-compressed. The buffer
//! stores exactly these bytes and the shipper sends them as they are, so a record is
//! encoded once. The collector decodes with [`decode`].

use std::io::Read;

use compact_str::CompactString;
use serde::{Deserialize, Serialize};

use crate::inventory::VcenterInventory;
use crate::names::Names;
use crate::rollup::{DailySummary, Rollup, SeriesLabels, WindowStats};

/// Version of the batch document. The collector refuses versions it does not know.
pub const BATCH_VERSION: u32 = 1;
/// Version of the `AgentHealth` record.
pub const HEALTH_SCHEMA_VERSION: u32 = 1;
/// Rollups per batch: about 150 KB compressed, so one request stays small and a retry
/// resends little.
pub const ROLLUPS_PER_BATCH: usize = 5_000;
/// Largest decompressed batch a reader accepts, so that a bomb cannot exhaust memory. A
/// batch of rollups decodes to about 1 MB; the largest record is an inventory, about
/// 2.6 KB a VM (a 10,000-VM vCenter is about 26 MB), so this admits some 25,000 VMs.
pub const MAX_DECODED_BYTES: u64 = 64 * 1024 * 1024;
/// `Content-Type` of a batch.
pub const CONTENT_TYPE: &str = "application/vnd.vscout.batch+json";

/// One batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Batch {
    pub batch_version: u32,
    /// When the agent made the batch, Unix milliseconds.
    pub created_ms: i64,
    pub records: Vec<Record>,
}

/// One record. Externally tagged (`{"rollup": {...}}`) so a reader can stream it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Record {
    Inventory(Box<VcenterInventory>),
    /// One rollup as a JSON object (the `perf --once` shape).
    Rollup(Rollup),
    /// Many rollups of one vCenter in compact form: what the agent ships.
    Rollups(RollupSet),
    Daily(DailySummary),
    Health(AgentHealth),
}

/// Rollups of one vCenter with the names they share written once and each rollup as a
/// JSON array: about a third of the bytes of `Rollup` objects, so a third of the work to
/// encode, compress and decode. A 10,000-VM window is 130,000 of them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RollupSet {
    pub schema_version: u32,
    pub vcenter: CompactString,
    /// Entity types, counters, instances, units and statsTypes, referred to by index.
    pub names: Vec<CompactString>,
    pub rows: Vec<RollupRow>,
}

/// `[entity_type, entity_id, counter, instance, unit, stats_type, window_start,
/// window_secs, expected_samples, missing_samples, stats]`, names as indexes into
/// `RollupSet::names`, as in [`Rollup`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RollupRow(
    pub u32,
    pub CompactString,
    pub u32,
    pub u32,
    pub u32,
    pub u32,
    pub i64,
    pub u32,
    pub u32,
    pub u32,
    pub Option<StatsRow>,
);

/// The figures of one window of one series, as a row carries them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WindowFigures {
    /// Unix seconds.
    pub window_start: i64,
    pub window_secs: u32,
    pub expected_samples: u32,
    pub missing_samples: u32,
    pub stats: Option<WindowStats>,
}

impl RollupRow {
    /// A row: `labels` are the set's indexes of its entity type, counter, instance, unit
    /// and statsType.
    pub fn new(labels: [u32; 5], entity_id: CompactString, w: WindowFigures) -> Self {
        let [entity_type, counter, instance, unit, stats_type] = labels;
        Self(
            entity_type,
            entity_id,
            counter,
            instance,
            unit,
            stats_type,
            w.window_start,
            w.window_secs,
            w.expected_samples,
            w.missing_samples,
            w.stats.map(StatsRow::from),
        )
    }
}

/// `[count, min, max, mean, p50, p95, p99]`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StatsRow(
    pub u32,
    pub f64,
    pub f64,
    pub f64,
    pub f64,
    pub f64,
    pub f64,
);

impl From<WindowStats> for StatsRow {
    fn from(s: WindowStats) -> Self {
        Self(s.count, s.min, s.max, s.mean, s.p50, s.p95, s.p99)
    }
}

impl From<StatsRow> for WindowStats {
    fn from(s: StatsRow) -> Self {
        Self {
            count: s.0,
            min: s.1,
            max: s.2,
            mean: s.3,
            p50: s.4,
            p95: s.5,
            p99: s.6,
        }
    }
}

/// A rollup of a `RollupSet`, its names borrowed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RollupView<'a> {
    pub labels: SeriesLabels<'a>,
    pub window_start: i64,
    pub window_secs: u32,
    pub expected_samples: u32,
    pub missing_samples: u32,
    pub stats: Option<StatsRow>,
}

impl Rollup {
    /// The rollup as a row view, the form stores take rollups in however they came.
    pub fn view(&self) -> RollupView<'_> {
        RollupView {
            labels: self.labels(),
            window_start: self.window_start,
            window_secs: self.window_secs,
            expected_samples: self.expected_samples,
            missing_samples: self.missing_samples,
            stats: self.stats.map(StatsRow::from),
        }
    }
}

impl RollupView<'_> {
    /// The rollup as a record of its own.
    pub fn to_rollup(&self) -> Rollup {
        let l = &self.labels;
        Rollup {
            schema_version: crate::rollup::ROLLUP_SCHEMA_VERSION,
            vcenter: l.vcenter.into(),
            entity_type: l.entity_type.into(),
            entity_id: l.entity_id.into(),
            counter: l.counter.into(),
            instance: l.instance.into(),
            unit: l.unit.into(),
            stats_type: l.stats_type.into(),
            window_start: self.window_start,
            window_secs: self.window_secs,
            expected_samples: self.expected_samples,
            missing_samples: self.missing_samples,
            stats: self.stats.map(WindowStats::from),
        }
    }
}

impl RollupSet {
    /// The same vCenter and names, no rows: the start of a second half.
    pub fn clone_names(&self) -> Self {
        Self {
            schema_version: self.schema_version,
            vcenter: self.vcenter.clone(),
            names: self.names.clone(),
            rows: Vec::new(),
        }
    }

    /// Every row with its names (rows with an index out of range left out; `decode`
    /// refuses a set that has them).
    pub fn views(&self) -> impl Iterator<Item = RollupView<'_>> {
        (0..self.rows.len()).filter_map(|i| self.view(i))
    }

    /// Row `i` with its names; `None` if an index is out of range (checked by `decode`).
    pub fn view(&self, i: usize) -> Option<RollupView<'_>> {
        let r = self.rows.get(i)?;
        let name = |n: u32| self.names.get(n as usize).map(CompactString::as_str);
        Some(RollupView {
            labels: SeriesLabels {
                vcenter: &self.vcenter,
                entity_type: name(r.0)?,
                entity_id: &r.1,
                counter: name(r.2)?,
                instance: name(r.3)?,
                unit: name(r.4)?,
                stats_type: name(r.5)?,
            },
            window_start: r.6,
            window_secs: r.7,
            expected_samples: r.8,
            missing_samples: r.9,
            stats: r.10,
        })
    }
}

/// Builds a `RollupSet` rollup by rollup.
#[derive(Debug, Default)]
pub struct RollupSetBuilder {
    vcenter: CompactString,
    names: Names,
    rows: Vec<RollupRow>,
}

impl RollupSetBuilder {
    /// Whether `r` can join this set (same vCenter, or the set is empty).
    pub fn accepts(&self, r: &Rollup) -> bool {
        self.rows.is_empty() || self.vcenter == r.vcenter
    }

    pub fn push(&mut self, r: Rollup) {
        if self.rows.is_empty() {
            self.vcenter = r.vcenter.clone();
        }
        let n = &mut self.names;
        let labels = [
            &r.entity_type,
            &r.counter,
            &r.instance,
            &r.unit,
            &r.stats_type,
        ]
        .map(|l| n.id(l));
        let figures = WindowFigures {
            window_start: r.window_start,
            window_secs: r.window_secs,
            expected_samples: r.expected_samples,
            missing_samples: r.missing_samples,
            stats: r.stats,
        };
        self.rows.push(RollupRow::new(labels, r.entity_id, figures));
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The set so far; the builder is empty again.
    pub fn take(&mut self) -> RollupSet {
        RollupSet {
            schema_version: crate::rollup::ROLLUP_SCHEMA_VERSION,
            vcenter: std::mem::take(&mut self.vcenter),
            names: self.names.take(),
            rows: std::mem::take(&mut self.rows),
        }
    }
}

impl Record {
    /// The record's schema version (each kind versions its own layout).
    pub fn schema_version(&self) -> u32 {
        match self {
            Record::Inventory(_) => crate::inventory::SCHEMA_VERSION,
            Record::Rollup(r) => r.schema_version,
            Record::Rollups(r) => r.schema_version,
            Record::Daily(d) => d.schema_version,
            Record::Health(h) => h.schema_version,
        }
    }
}

/// How the agent is doing: shipped with the data so the collector knows about agents
/// that are alive but stuck.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AgentHealth {
    pub schema_version: u32,
    pub at_ms: i64,
    pub version: String,
    pub uptime_secs: u64,
    /// Records not yet acknowledged by the collector, and the buffer's bytes on disk.
    pub buffer_depth: u64,
    pub buffer_bytes: u64,
    pub evicted_records: u64,
    pub dead_letters: u64,
    pub shipped_records: u64,
    pub ship_retries: u64,
    pub cpu_ms: Option<u64>,
    pub peak_rss_kib: Option<u64>,
    /// Errors logged since start (inventory, perf, buffer, shipping) and the last one.
    pub errors: u64,
    pub last_error: Option<String>,
    /// Free bytes on the buffer's filesystem (absent from older agents).
    #[serde(default)]
    pub buffer_fs_free_bytes: Option<u64>,
}

/// Encodes a batch as compressed JSON.
pub fn encode(batch: &Batch) -> std::io::Result<Vec<u8>> {
    let json = serde_json::to_vec(batch).map_err(std::io::Error::other)?;
    zstd::bulk::compress(&json, 3)
}

/// Why a body is not a batch this version understands.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("cannot decompress {encoding} body: {reason}")]
    Encoding { encoding: String, reason: String },
    #[error("decompressed body exceeds {MAX_DECODED_BYTES} bytes")]
    TooLarge,
    #[error("body is not a valid batch: {0}")]
    Json(String),
    #[error("unknown batch version {0} (this side reads {BATCH_VERSION})")]
    Version(u32),
    #[error("record {index} has unknown schema version {version}")]
    RecordVersion { index: usize, version: u32 },
}

/// Decodes a body sent with `Content-Encoding: encoding` (`zstd`, `gzip` or `identity`).
/// The JSON is parsed as it is decompressed, never held whole, and decompression stops
/// at `MAX_DECODED_BYTES`: what a batch costs in memory is what its records take.
pub fn decode(body: &[u8], encoding: &str) -> Result<Batch, DecodeError> {
    let batch = match encoding {
        "zstd" => {
            let reader =
                zstd::stream::read::Decoder::new(body).map_err(|e| DecodeError::Encoding {
                    encoding: encoding.into(),
                    reason: e.to_string(),
                })?;
            parse_capped(reader, encoding)?
        }
        "gzip" => parse_capped(flate2::read::GzDecoder::new(body), encoding)?,
        "identity" | "" => {
            if body.len() as u64 > MAX_DECODED_BYTES {
                return Err(DecodeError::TooLarge);
            }
            serde_json::from_slice(body).map_err(|e| DecodeError::Json(e.to_string()))?
        }
        other => {
            return Err(DecodeError::Encoding {
                encoding: other.into(),
                reason: format!("unsupported content encoding {other:?}"),
            })
        }
    };
    check(batch)
}

/// The mark of a capped reader's refusal, told apart from a decompressor's error.
#[derive(Debug)]
struct OverCap;

impl std::fmt::Display for OverCap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "decoded size over {MAX_DECODED_BYTES} bytes")
    }
}

impl std::error::Error for OverCap {}

/// A reader that fails once more than `MAX_DECODED_BYTES` came through it.
struct Capped<R> {
    inner: R,
    read: u64,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        if self.read > MAX_DECODED_BYTES {
            return Err(std::io::Error::other(OverCap));
        }
        Ok(n)
    }
}

/// Parses a batch from a decompressing reader, refusing more than the cap.
fn parse_capped(reader: impl Read, encoding: &str) -> Result<Batch, DecodeError> {
    let capped = Capped {
        inner: reader,
        read: 0,
    };
    // serde_json reads a byte at a time: the buffer keeps that off the decompressor.
    serde_json::from_reader(std::io::BufReader::with_capacity(64 * 1024, capped)).map_err(|e| {
        if !e.is_io() {
            return DecodeError::Json(e.to_string());
        }
        let io = std::io::Error::from(e);
        if io.get_ref().is_some_and(|inner| inner.is::<OverCap>()) {
            DecodeError::TooLarge
        } else {
            DecodeError::Encoding {
                encoding: encoding.into(),
                reason: io.to_string(),
            }
        }
    })
}

/// Versions and name indexes of a parsed batch.
fn check(batch: Batch) -> Result<Batch, DecodeError> {
    if batch.batch_version != BATCH_VERSION {
        return Err(DecodeError::Version(batch.batch_version));
    }
    for (index, r) in batch.records.iter().enumerate() {
        let known = match r {
            Record::Inventory(_) => crate::inventory::SCHEMA_VERSION,
            Record::Rollup(_) | Record::Daily(_) => crate::rollup::ROLLUP_SCHEMA_VERSION,
            Record::Rollups(set) => {
                if let Some(bad) = (0..set.rows.len()).find(|i| set.view(*i).is_none()) {
                    return Err(DecodeError::Json(format!(
                        "record {index}: rollup row {bad} refers to a name beyond the {} given",
                        set.names.len()
                    )));
                }
                crate::rollup::ROLLUP_SCHEMA_VERSION
            }
            Record::Health(_) => HEALTH_SCHEMA_VERSION,
        };
        if r.schema_version() != known {
            return Err(DecodeError::RecordVersion {
                index,
                version: r.schema_version(),
            });
        }
    }
    Ok(batch)
}

/// Re-encodes a stored (zstd) batch as gzip, for `compression = "gzip"`.
pub fn zstd_to_gzip(stored: &[u8]) -> std::io::Result<Vec<u8>> {
    let json = zstd::stream::decode_all(stored)?;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut enc, &json)?;
    enc.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Batch {
        Batch {
            batch_version: BATCH_VERSION,
            created_ms: 1,
            records: vec![Record::Health(AgentHealth {
                schema_version: HEALTH_SCHEMA_VERSION,
                version: "0.1.0".into(),
                ..AgentHealth::default()
            })],
        }
    }

    #[test]
    fn round_trips_through_both_encodings() {
        let b = sample();
        let z = encode(&b).expect("encode");
        assert_eq!(decode(&z, "zstd").expect("zstd"), b);
        let g = zstd_to_gzip(&z).expect("gzip");
        assert_eq!(decode(&g, "gzip").expect("gzip"), b);
    }

    #[test]
    fn rollup_sets_round_trip_and_check_their_indexes() {
        let r = |vm: &str, counter: &str| Rollup {
            schema_version: crate::rollup::ROLLUP_SCHEMA_VERSION,
            vcenter: "vc".into(),
            entity_type: "VirtualMachine".into(),
            entity_id: vm.into(),
            counter: counter.into(),
            instance: "".into(),
            unit: "percent".into(),
            stats_type: "rate".into(),
            window_start: 600,
            window_secs: 300,
            expected_samples: 15,
            missing_samples: 1,
            stats: None,
        };
        let mut b = RollupSetBuilder::default();
        for (vm, c) in [
            ("vm-1", "cpu.usage.average"),
            ("vm-2", "cpu.usage.average"),
            ("vm-1", "mem.usage.average"),
        ] {
            assert!(b.accepts(&r(vm, c)));
            b.push(r(vm, c));
        }
        let set = b.take();
        assert!(b.is_empty());
        assert_eq!(set.names.len(), 6, "{:?}", set.names);
        let v = set.view(2).expect("row");
        assert_eq!(
            (
                v.labels.entity_id,
                v.labels.counter,
                v.labels.unit,
                v.missing_samples
            ),
            ("vm-1", "mem.usage.average", "percent", 1)
        );
        let mut batch = Batch {
            batch_version: BATCH_VERSION,
            created_ms: 0,
            records: vec![Record::Rollups(set)],
        };
        let z = encode(&batch).expect("encode");
        assert_eq!(decode(&z, "zstd").expect("decode"), batch);
        if let Record::Rollups(s) = &mut batch.records[0] {
            s.rows[1].2 = 99;
        }
        let z = encode(&batch).expect("encode");
        let err = decode(&z, "zstd").expect_err("index out of range");
        assert!(err.to_string().contains("row 1"), "{err}");
    }

    #[test]
    fn refuses_unknown_versions_and_garbage() {
        let mut b = sample();
        b.batch_version = 99;
        let z = encode(&b).expect("encode");
        assert!(matches!(decode(&z, "zstd"), Err(DecodeError::Version(99))));
        let mut b = sample();
        if let Record::Health(h) = &mut b.records[0] {
            h.schema_version = 7;
        }
        let z = encode(&b).expect("encode");
        assert!(matches!(
            decode(&z, "zstd"),
            Err(DecodeError::RecordVersion { version: 7, .. })
        ));
        assert!(matches!(
            decode(b"not zstd", "zstd"),
            Err(DecodeError::Encoding { .. })
        ));
        assert!(matches!(
            decode(b"{\"batch_version\":1}", "identity"),
            Err(DecodeError::Json(_))
        ));
    }
}
