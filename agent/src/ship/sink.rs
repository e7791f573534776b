//! `Sink`: how collection hands records to the buffer. Records are grouped into batches,
//! encoded off the async threads, appended, and reported as stored only once the group
//! commit has fsynced them. A full disk pauses the sink (it retries) rather than losing
//! the batch; a stopping agent gives up after logging what was not stored.

use std::time::Duration;

use tokio::sync::watch;
use tracing::{info, warn};

use super::batch::{self, Batch, Record};
use crate::buffer::{BufferError, BufferHandle};

/// Appends batches of records to the buffer.
#[derive(Debug, Clone)]
pub struct Sink {
    buffer: BufferHandle,
    stop: watch::Receiver<bool>,
}

/// How many records of each kind a batch holds (for the "stored" log line).
#[derive(Debug, Default, Clone, Copy)]
struct Kinds {
    inventories: usize,
    rollups: usize,
    daily: usize,
    health: usize,
}

impl Sink {
    pub fn new(buffer: BufferHandle, stop: watch::Receiver<bool>) -> Self {
        Self { buffer, stop }
    }

    /// Stores `records` as batches of at most `batch::ROLLUPS_PER_BATCH`, in order.
    /// Returns the sequences of the stored batches.
    pub async fn store(&self, records: Vec<Record>) -> Result<Vec<u64>, BufferError> {
        let mut seqs = Vec::new();
        let mut records = records.into_iter().peekable();
        while records.peek().is_some() {
            let chunk: Vec<Record> = records.by_ref().take(batch::ROLLUPS_PER_BATCH).collect();
            seqs.push(self.store_batch(chunk).await?);
        }
        Ok(seqs)
    }

    async fn store_batch(&self, records: Vec<Record>) -> Result<u64, BufferError> {
        let encoded = tokio::task::spawn_blocking(move || Encoded::new(records))
            .await
            .map_err(|e| BufferError::Io {
                path: Default::default(),
                reason: format!("encoding task failed: {e}"),
            })??;
        self.store_encoded(encoded).await
    }

    /// Appends a batch encoded beforehand and waits until it is stored.
    pub async fn store_encoded(&self, encoded: Encoded) -> Result<u64, BufferError> {
        let Encoded { payload, kinds } = encoded;
        let bytes = payload.len();
        let mut delay = Duration::from_secs(1);
        let seq = loop {
            match self.buffer.append(payload.clone()).await {
                Ok(seq) => break seq,
                Err(e @ BufferError::DiskFull { .. }) => {
                    warn!(error = %e, retry_in_secs = delay.as_secs(), "buffer disk is full; collection is paused until space is freed");
                    if *self.stop.borrow() {
                        return Err(e);
                    }
                    let mut stop = self.stop.clone();
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = stop.wait_for(|s| *s) => return Err(e),
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
        Ok(Self { payload, kinds })
    }
}

/// Encodes records into batches as they are produced, so that a 10,000-VM window's
/// 130,000 rollups are never all held as records at once: at most one batch of them is.
/// Rollups are gathered into `RollupSet`s (the compact form).
#[derive(Debug, Default)]
pub struct Batcher {
    chunk: Vec<Record>,
    rollups: batch::RollupSetBuilder,
    done: Vec<Encoded>,
    error: Option<BufferError>,
}

impl Batcher {
    pub fn push(&mut self, r: Record) {
        match r {
            Record::Rollup(r) => {
                if !self.rollups.accepts(&r) {
                    self.seal();
                }
                self.rollups.push(r);
            }
            other => self.chunk.push(other),
        }
        if self.chunk.len() + self.rollups.len() >= batch::ROLLUPS_PER_BATCH {
            self.seal();
        }
    }

    fn seal(&mut self) {
        if !self.rollups.is_empty() {
            self.chunk.push(Record::Rollups(self.rollups.take()));
        }
        if self.chunk.is_empty() || self.error.is_some() {
            self.chunk.clear();
            return;
        }
        match Encoded::new(std::mem::take(&mut self.chunk)) {
            Ok(e) => self.done.push(e),
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
