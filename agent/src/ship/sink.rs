//! `Sink`: how collection hands records to the buffer. Records are grouped into batches,
//! encoded off the async threads, appended, and reported as stored only once the group
//! commit has fsynced them. A full disk pauses the sink (it retries) rather than losing
//! the batch; a stopping agent gives up after logging what was not stored.

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::batch::{self, Batch, Record};
use crate::buffer::{BufferError, BufferHandle};

/// Appends batches of records to the buffer.
#[derive(Debug, Clone)]
pub struct Sink {
    buffer: BufferHandle,
    stop: CancellationToken,
}

/// How many records of each kind a batch holds (for the "stored" log line).
#[derive(Debug, Default, Clone, Copy)]
struct Kinds {
    inventories: usize,
    rollups: usize,
    daily: usize,
    health: usize,
}

impl Kinds {
    /// Records of every kind (a rollup counts one).
    fn records(&self) -> u64 {
        (self.inventories + self.rollups + self.daily + self.health) as u64
    }
}

impl Sink {
    pub fn new(buffer: BufferHandle, stop: CancellationToken) -> Self {
        Self { buffer, stop }
    }

    /// Stores `records` as batches of at most `batch::ROLLUPS_PER_BATCH`, each split until
    /// it fits the buffer's batch limit, in order. Returns the sequences of the stored
    /// batches.
    pub async fn store(&self, records: Vec<Record>) -> Result<Vec<u64>, BufferError> {
        let mut seqs = Vec::new();
        let mut records = records.into_iter().peekable();
        let limit = self.batch_limit();
        while records.peek().is_some() {
            let chunk: Vec<Record> = records.by_ref().take(batch::ROLLUPS_PER_BATCH).collect();
            let encoded = tokio::task::spawn_blocking(move || encode_within(chunk, limit))
                .await
                .map_err(|e| BufferError::Io {
                    path: Default::default(),
                    reason: format!("encoding task failed: {e}"),
                })??;
            for e in encoded {
                seqs.push(self.store_encoded(e).await?);
            }
        }
        Ok(seqs)
    }

    /// Largest batch to make for this buffer (see `BufferHandle::batch_limit`).
    pub fn batch_limit(&self) -> usize {
        self.buffer.batch_limit()
    }

    /// Appends a batch encoded beforehand and waits until it is stored. A batch that
    /// cannot fit the buffer at all (one record larger than the cap allows) is counted as
    /// evicted: lost, but never silently.
    pub async fn store_encoded(&self, encoded: Encoded) -> Result<u64, BufferError> {
        let Encoded { payload, kinds } = encoded;
        let bytes = payload.len();
        let mut delay = Duration::from_secs(1);
        let seq = loop {
            match self.buffer.append(payload.clone()).await {
                Ok(seq) => break seq,
                Err(e @ BufferError::TooLarge { .. }) => {
                    let records = kinds.records();
                    self.buffer.count_dropped(records);
                    tracing::error!(error = %e, records, inventories = kinds.inventories, rollups = kinds.rollups, "a batch larger than the buffer can hold was dropped and counted as evicted; raise buffer.max_bytes");
                    return Err(e);
                }
                Err(e @ BufferError::DiskFull { .. }) => {
                    warn!(error = %e, retry_in_secs = delay.as_secs(), "buffer disk is full; collection is paused until space is freed");
                    if self.stop.is_cancelled() {
                        return Err(e);
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = self.stop.cancelled() => return Err(e),
                    }
                    delay = (delay * 2).min(Duration::from_secs(30));
                }
                Err(e) => return Err(e),
            }
        };
        self.buffer.wait_stored(seq).await;
        // The test suite compares these lines with what the collector holds.
        info!(
            seq,
            bytes,
            inventories = kinds.inventories,
            rollups = kinds.rollups,
            daily = kinds.daily,
            health = kinds.health,
            "batch stored"
        );
        Ok(seq)
    }
}

/// A batch encoded (compressed) and ready to append.
#[derive(Debug)]
pub struct Encoded {
    payload: Vec<u8>,
    kinds: Kinds,
}

impl Encoded {
    /// The compressed batch, as the buffer stores it.
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// Encodes `records` as one batch (CPU work: call it off the async threads).
    pub fn new(records: Vec<Record>) -> Result<Self, BufferError> {
        Self::encode(records).map(|(e, _)| e)
    }

    /// As `new`, and hands the records back (to split them if the batch is too large).
    fn encode(records: Vec<Record>) -> Result<(Self, Vec<Record>), BufferError> {
        let mut kinds = Kinds::default();
        for r in &records {
            match r {
                Record::Inventory(_) => kinds.inventories += 1,
                Record::Rollup(_) => kinds.rollups += 1,
                Record::Rollups(set) => kinds.rollups += set.rows.len(),
                Record::Daily(_) => kinds.daily += 1,
                Record::Health(_) => kinds.health += 1,
            }
        }
        let batch = Batch {
            batch_version: batch::BATCH_VERSION,
            created_ms: crate::telemetry::unix_now_ms(),
            records,
        };
        let payload = batch::encode(&batch).map_err(|e| BufferError::Io {
            path: Default::default(),
            reason: format!("cannot encode batch: {e}"),
        })?;
        Ok((Self { payload, kinds }, batch.records))
    }
}

/// Encodes records into batches as they are produced, so that a 10,000-VM window's
/// 130,000 rollups are never all held as records at once: at most one batch of them is.
/// Single rollups are gathered into `RollupSet`s (the compact form); a batch is sealed
/// once it holds `ROLLUPS_PER_BATCH` rollups (a set counts its rows) or other records.
#[derive(Debug)]
pub struct Batcher {
    chunk: Vec<Record>,
    /// Rollups and other records in `chunk` and `rollups`.
    weight: usize,
    rollups: batch::RollupSetBuilder,
    done: Vec<Encoded>,
    error: Option<BufferError>,
    /// Largest encoded batch; larger ones are split.
    limit: usize,
}

impl Default for Batcher {
    /// Without a limit of its own (the buffer still refuses what exceeds its cap).
    fn default() -> Self {
        Self::new(usize::MAX)
    }
}

/// Encodes `records` as one batch, or, if that exceeds `limit` bytes, as halves (a set
/// of rollups is split by rows), recursively. A single record over the limit stays one
/// batch: the buffer decides whether it fits at all.
pub(super) fn encode_within(
    records: Vec<Record>,
    limit: usize,
) -> Result<Vec<Encoded>, BufferError> {
    let (encoded, records) = Encoded::encode(records)?;
    if encoded.payload.len() <= limit {
        return Ok(vec![encoded]);
    }
    let halves = match split(records) {
        Ok(h) => h,
        Err(_) => return Ok(vec![encoded]),
    };
    let mut out = encode_within(halves.0, limit)?;
    out.extend(encode_within(halves.1, limit)?);
    Ok(out)
}

/// Two halves of `records`, or the records back if they cannot be split.
fn split(mut records: Vec<Record>) -> Result<(Vec<Record>, Vec<Record>), Vec<Record>> {
    if records.len() > 1 {
        let back = records.split_off(records.len() / 2);
        return Ok((records, back));
    }
    match records.pop() {
        Some(Record::Rollups(mut set)) if set.rows.len() > 1 => {
            let rows = set.rows.split_off(set.rows.len() / 2);
            let back = batch::RollupSet {
                rows,
                ..set.clone_names()
            };
            Ok((vec![Record::Rollups(set)], vec![Record::Rollups(back)]))
        }
        Some(other) => Err(vec![other]),
        None => Err(Vec::new()),
    }
}

impl Batcher {
    pub fn new(limit: usize) -> Self {
        Self {
            chunk: Vec::new(),
            weight: 0,
            rollups: batch::RollupSetBuilder::default(),
            done: Vec::new(),
            error: None,
            limit,
        }
    }

    pub fn push(&mut self, r: Record) {
        match r {
            Record::Rollup(r) => {
                if !self.rollups.accepts(&r) {
                    self.seal();
                }
                self.rollups.push(r);
                self.weight += 1;
            }
            Record::Rollups(set) => {
                self.weight += set.rows.len();
                self.chunk.push(Record::Rollups(set));
            }
            other => {
                self.chunk.push(other);
                self.weight += 1;
            }
        }
        if self.weight >= batch::ROLLUPS_PER_BATCH {
            self.seal();
        }
    }

    fn seal(&mut self) {
        self.weight = 0;
        if !self.rollups.is_empty() {
            self.chunk.push(Record::Rollups(self.rollups.take()));
        }
        if self.chunk.is_empty() || self.error.is_some() {
            self.chunk.clear();
            return;
        }
        match encode_within(std::mem::take(&mut self.chunk), self.limit) {
            Ok(e) => self.done.extend(e),
            Err(e) => self.error = Some(e),
        }
    }

    /// The encoded batches, in order.
    pub fn finish(mut self) -> Result<Vec<Encoded>, BufferError> {
        self.seal();
        match self.error {
            Some(e) => Err(e),
            None => Ok(self.done),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::perf::Rollup;

    fn rollup(i: usize) -> Record {
        Record::Rollup(Rollup::example(
            &format!("vm-{i}"),
            "cpu.usage.average",
            i as f64,
        ))
    }

    fn rollups_in(e: &Encoded) -> usize {
        let batch = batch::decode(&e.payload, "zstd").expect("decode");
        batch
            .records
            .iter()
            .map(|r| match r {
                Record::Rollups(s) => s.rows.len(),
                Record::Rollup(_) => 1,
                _ => 0,
            })
            .sum()
    }

    /// Issue 12: at a small cap every window batch was larger than the buffer took, and
    /// was lost. Batches are split until each fits, and no rollup is lost or repeated.
    #[test]
    fn a_window_is_split_into_batches_that_fit_the_limit() {
        let limit = 16 * 1024;
        let mut b = Batcher::new(limit);
        for i in 0..5_000 {
            b.push(rollup(i));
        }
        let done = b.finish().expect("encode");
        assert!(done.len() > 2, "{} batches", done.len());
        assert!(done.iter().all(|e| e.payload.len() <= limit));
        assert_eq!(done.iter().map(rollups_in).sum::<usize>(), 5_000);
        assert_eq!(done.iter().map(|e| e.kinds.rollups).sum::<usize>(), 5_000);
        // Unlimited, it is one batch.
        let mut b = Batcher::default();
        for i in 0..5_000 {
            b.push(rollup(i));
        }
        assert_eq!(b.finish().expect("encode").len(), 1);
    }

    /// A record that cannot fit at all is dropped and counted as evicted.
    #[tokio::test]
    async fn a_record_larger_than_the_buffer_allows_is_counted_as_evicted() {
        let dir = tempfile::tempdir().expect("dir");
        let opts = crate::buffer::BufferOptions {
            dir: dir.path().to_owned(),
            max_bytes: 64 * 1024,
            segment_bytes: 4096,
            fsync_always: true,
        };
        let fs: std::sync::Arc<dyn crate::buffer::fs::Fs> =
            std::sync::Arc::new(crate::buffer::fs::StdFs::default());
        let buffer = BufferHandle::new(crate::buffer::Buffer::open(fs, opts).expect("open"));
        let sink = Sink::new(buffer.clone(), CancellationToken::new());
        // Incompressible text: one health record far larger than the cap.
        let mut noise = String::new();
        let mut x = 7u64;
        for _ in 0..100_000 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            noise.push(char::from(b'a' + (x >> 59) as u8));
        }
        let health = Record::Health(batch::AgentHealth {
            schema_version: batch::HEALTH_SCHEMA_VERSION,
            last_error: Some(noise),
            ..Default::default()
        });
        let err = sink.store(vec![health]).await.expect_err("too large");
        assert!(matches!(err, BufferError::TooLarge { .. }), "{err}");
        assert_eq!(buffer.snapshot().stats.evicted_records, 1);
    }
}
