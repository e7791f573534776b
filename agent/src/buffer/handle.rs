//! `BufferHandle`: the buffer shared between the collection tasks (append), the group
//! commit task (sync) and the shipper (read, ack). File I/O and fsync run on blocking
//! threads; the last stored sequence is published on a watch channel so that waiters
//! (the shipper, an appender that wants its record stored) wake when it moves.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use super::error::BufferError;
use super::queue::{Buffer, Record, Stats};

#[derive(Debug, Clone)]
pub struct BufferHandle {
    inner: Arc<Mutex<Buffer>>,
    durable: Arc<watch::Sender<u64>>,
}

impl BufferHandle {
    pub fn new(buffer: Buffer) -> Self {
        let durable = buffer.durable();
        Self {
            inner: Arc::new(Mutex::new(buffer)),
            durable: Arc::new(watch::channel(durable).0),
        }
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Buffer) -> Result<T, BufferError> + Send + 'static,
    ) -> Result<T, BufferError> {
        let inner = self.inner.clone();
        let durable = self.durable.clone();
        tokio::task::spawn_blocking(move || {
            let mut b = inner.lock().unwrap_or_else(|e| e.into_inner());
            let r = f(&mut b);
            durable.send_if_modified(|d| {
                let changed = *d != b.durable();
                *d = b.durable();
                changed
            });
            r
        })
        .await
        .map_err(|e| BufferError::Io {
            path: Default::default(),
            reason: format!("buffer task failed: {e}"),
        })?
    }

    /// See [`Buffer::count_dropped`].
    pub fn count_dropped(&self, records: u64) {
        let mut b = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        b.count_dropped(records);
    }

    /// Largest batch to append: a quarter of the cap, so that a few batches always fit
    /// (a batch larger than the cap itself could never be stored).
    pub fn batch_limit(&self) -> usize {
        let b = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        (b.max_bytes() / 4) as usize
    }

    /// Appends a record (stored at the next group commit). Returns its sequence.
    pub async fn append(&self, payload: Vec<u8>) -> Result<u64, BufferError> {
        self.blocking(move |b| b.append(&payload)).await
    }

    /// Appends a record and waits until the group commit has stored (fsynced) it.
    pub async fn append_stored(&self, payload: Vec<u8>) -> Result<u64, BufferError> {
        let seq = self.append(payload).await?;
        self.wait_stored(seq).await;
        Ok(seq)
    }

    /// Waits until `seq` is stored.
    pub async fn wait_stored(&self, seq: u64) {
        let mut rx = self.durable.subscribe();
        let _ = rx.wait_for(|d| *d >= seq).await;
    }

    /// fsyncs what was appended. Returns the last stored sequence.
    pub async fn sync(&self) -> Result<u64, BufferError> {
        self.blocking(|b| b.sync()).await
    }

    pub async fn read(
        &self,
        after: u64,
        max_records: usize,
        max_bytes: usize,
    ) -> Result<Vec<Record>, BufferError> {
        self.blocking(move |b| b.read(after, max_records, max_bytes))
            .await
    }

    pub async fn ack(&self, upto: u64) -> Result<(), BufferError> {
        self.blocking(move |b| b.ack(upto)).await
    }

    /// The last stored sequence, as a channel that changes when it moves.
    pub fn stored(&self) -> watch::Receiver<u64> {
        self.durable.subscribe()
    }

    /// Counters, depth, bytes and the acknowledged sequence, read without blocking long.
    pub fn snapshot(&self) -> Snapshot {
        let b = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        Snapshot {
            stats: b.stats(),
            depth: b.depth(),
            disk_bytes: b.disk_bytes(),
            acked: b.acked(),
            stored: b.durable(),
        }
    }

    fn has_unsynced(&self) -> bool {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .has_unsynced()
    }
}

/// A consistent view of the buffer's state.
#[derive(Debug, Clone, Copy)]
pub struct Snapshot {
    pub stats: Stats,
    pub depth: u64,
    pub disk_bytes: u64,
    pub acked: u64,
    pub stored: u64,
}

/// Group commit: every `interval`, fsyncs whatever was appended since the last time,
/// until `stop` is cancelled; then a last sync so nothing appended is left unstored.
pub async fn group_commit(buffer: BufferHandle, interval: Duration, stop: CancellationToken) {
    loop {
        let stopping = tokio::select! {
            _ = tokio::time::sleep(interval) => false,
            _ = stop.cancelled() => true,
        };
        if buffer.has_unsynced() {
            if let Err(e) = buffer.sync().await {
                warn!(error = %e, "buffer fsync failed; retrying");
            }
        }
        if stopping {
            return;
        }
    }
}
