//! `vscout perf --once`: the rollups of the last complete window, for one vCenter.

use std::io::Write;
use std::path::Path;

use super::{vcenter_now_ms, Aggregator, PollReport, Poller, Rollup, REALTIME_SECS};
use crate::config::PerfConfig;
use crate::inventory;
use crate::vsphere::{Client, VsphereError};

/// Takes the inventory (for the targets), then polls the last window that is complete by
/// vCenter's clock (one real-time interval of grace for late publication) and rolls it up.
pub async fn last_window(
    client: &Client,
    cfg: &PerfConfig,
    window_secs: u32,
) -> Result<(Vec<Rollup>, PollReport), VsphereError> {
    let inv = inventory::collect(client).await?;
    let targets = Poller::targets(&inv);
    let mut poller = Poller::new(client, cfg).await?;
    let now = vcenter_now_ms(client).await?;
    let w = i64::from(window_secs) * 1000;
    let end = (now - i64::from(REALTIME_SECS) * 1000).div_euclid(w) * w;
    let mut agg = Aggregator::new(client.name(), window_secs);
    let report = poller.poll(client, &targets, end, w, &mut agg).await?;
    Ok((agg.drain_closed(end), report))
}

/// Writes rollups as JSON lines.
pub fn write_json_lines(rollups: &[Rollup], path: &Path) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut w = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
    for r in rollups {
        serde_json::to_writer(&mut w, r).map_err(std::io::Error::other)?;
        w.write_all(b"\n")?;
    }
    w.flush()?;
    w.get_ref().sync_all()?;
    std::fs::rename(tmp, path)
}
