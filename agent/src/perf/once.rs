//! `vscout perf --once`: the rollups of the last complete window, written as JSON lines
//! as they are made (a 10,000-VM window has over 100,000 of them).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use super::{vcenter_now_ms, Aggregator, PollReport, Poller, Rollup, REALTIME_SECS};
use crate::config::PerfConfig;
use crate::inventory;
use crate::vsphere::{Client, VsphereError};

/// Writes rollups as JSON lines to a temporary file, renamed into place by `finish`.
#[derive(Debug)]
pub struct RollupWriter {
    path: PathBuf,
    tmp: PathBuf,
    out: BufWriter<File>,
    written: u64,
}

impl RollupWriter {
    pub fn create(path: &Path) -> std::io::Result<Self> {
        let tmp = path.with_extension("tmp");
        let out = BufWriter::new(File::create(&tmp)?);
        Ok(Self {
            path: path.to_owned(),
            tmp,
            out,
            written: 0,
        })
    }

    pub fn write(&mut self, r: &Rollup) -> std::io::Result<()> {
        serde_json::to_writer(&mut self.out, r).map_err(std::io::Error::other)?;
        self.out.write_all(b"\n")?;
        self.written += 1;
        Ok(())
    }

    /// Rollups written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Flushes, fsyncs and renames the file into place.
    pub fn finish(mut self) -> std::io::Result<()> {
        self.out.flush()?;
        self.out.get_ref().sync_all()?;
        std::fs::rename(&self.tmp, &self.path)
    }
}

/// Takes the inventory (for the targets), then polls the last window that is complete by
/// vCenter's clock (one real-time interval of grace for late publication) and writes its
/// rollups. Returns how many were written and the poll's report.
pub async fn last_window(
    client: &Client,
    cfg: &PerfConfig,
    window_secs: u32,
    writer: &mut RollupWriter,
) -> Result<Result<(u64, PollReport), std::io::Error>, VsphereError> {
    // Only the targets are needed: the inventory itself is dropped before polling.
    let targets = Poller::targets(&inventory::collect(client).await?);
    let mut poller = Poller::new(client, cfg).await?;
    let now = vcenter_now_ms(client).await?;
    let w = i64::from(window_secs) * 1000;
    let end = (now - i64::from(REALTIME_SECS) * 1000).div_euclid(w) * w;
    let mut agg = Aggregator::new(client.name(), window_secs);
    let report = poller.poll(client, &targets, end, w, &mut agg).await?;
    drop(poller);
    let before = writer.written();
    let mut failure = None;
    // Only the one window asked for: historical series (clusters, datastores) reach back
    // further because vCenter publishes them late, and their older windows are not it.
    let window_start = (end - w) / 1000;
    agg.drain_closed_with(end, |set| {
        for v in set.views() {
            if failure.is_none() && v.window_start == window_start {
                failure = writer.write(&v.to_rollup()).err();
            }
        }
    });
    Ok(match failure {
        Some(e) => Err(e),
        None => Ok((writer.written() - before, report)),
    })
}
