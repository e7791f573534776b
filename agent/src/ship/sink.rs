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
        let mut kinds = Kinds::default();
        for r in &records {
            match r {
                Record::Inventory(_) => kinds.inventories += 1,
                Record::Rollup(_) => kinds.rollups += 1,
                Record::Daily(_) => kinds.daily += 1,
                Record::Health(_) => kinds.health += 1,
            }
        }
        let batch = Batch {
            batch_version: batch::BATCH_VERSION,
            created_ms: crate::telemetry::unix_now_ms(),
            records,
        };
        let payload = tokio::task::spawn_blocking(move || batch::encode(&batch))
            .await
            .map_err(|e| BufferError::Io {
                path: Default::default(),
                reason: format!("encoding task failed: {e}"),
            })?
            .map_err(|e| BufferError::Io {
                path: Default::default(),
                reason: format!("cannot encode batch: {e}"),
            })?;
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
