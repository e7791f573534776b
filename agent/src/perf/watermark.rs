//! The per-vCenter watermark of stored windows: the end (Unix ms) of the last window whose
//! rollups reached the buffer, and the sequence of the buffer record that completed it,
//! kept in `<state_dir>/perf/<vcenter>.closed` so that a restarted agent neither rolls up
//! a stored window again nor leaves a gap (it looks back to the watermark, up to the hour
//! vCenter keeps).
//!
//! The file is written after the window's batches are stored, so a crash in between
//! leaves it behind the buffer. The sequence bounds what is behind: on start the agent
//! reads the buffer's records after it and treats the series they hold as rolled up for
//! their windows (`Aggregator::seed_closed`), so a window is never rolled up twice,
//! whether the crash came after all its batches or between two of them.

use std::path::{Path, PathBuf};

fn path(state_dir: &Path, vcenter: &str) -> PathBuf {
    file(state_dir, vcenter, "closed")
}

fn file(state_dir: &Path, vcenter: &str, ext: &str) -> PathBuf {
    let safe: String = vcenter
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-._".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    state_dir.join("perf").join(format!("{safe}.{ext}"))
}

/// One series stored past the watermark: its key and the end (Unix ms) of its window.
pub type Seed = (crate::perf::SeriesKey, i64);

/// Series an earlier run found stored past the watermark (`<vcenter>.seeds`), kept until
/// a watermark covers them: the buffer records they came from may be shipped and
/// deleted before then, and a second crash must not forget them.
pub fn read_seeds(state_dir: &Path, vcenter: &str) -> Vec<Seed> {
    let Ok(text) = std::fs::read_to_string(file(state_dir, vcenter, "seeds")) else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|l| {
            let mut f = l.split('\t');
            let key = crate::perf::SeriesKey {
                entity_type: f.next()?.into(),
                entity_id: f.next()?.into(),
                counter: f.next()?.into(),
                instance: f.next()?.into(),
            };
            Some((key, f.next()?.parse().ok()?))
        })
        .collect()
}

/// Replaces the seeds file (atomically); an empty list removes it.
pub fn write_seeds(state_dir: &Path, vcenter: &str, seeds: &[Seed]) -> std::io::Result<()> {
    let p = file(state_dir, vcenter, "seeds");
    if seeds.is_empty() {
        return match std::fs::remove_file(&p) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        };
    }
    if let Some(dir) = p.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut text = String::new();
    for (k, end) in seeds {
        // Tabs and newlines cannot occur in vSphere ids, counter or instance names.
        text.push_str(&format!(
            "{}\t{}\t{}\t{}\t{end}\n",
            k.entity_type, k.entity_id, k.counter, k.instance
        ));
    }
    crate::fsio::write_atomic(&p, text.as_bytes(), 0o644)
}

/// What the file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Watermark {
    /// End (Unix ms) of the last window stored whole.
    pub closed_ms: i64,
    /// Sequence of the buffer record that completed it (absent in files of agents
    /// before 0.1 issue 12).
    pub seq: Option<u64>,
}

/// The stored watermark, if any (an unreadable file counts as none).
pub fn read(state_dir: &Path, vcenter: &str) -> Option<Watermark> {
    let text = std::fs::read_to_string(path(state_dir, vcenter)).ok()?;
    let mut parts = text.split_whitespace();
    let closed_ms = parts.next()?.parse().ok()?;
    let seq = parts.next().and_then(|s| s.parse().ok());
    Some(Watermark { closed_ms, seq })
}

/// Replaces the watermark atomically.
pub fn write(state_dir: &Path, vcenter: &str, mark: Watermark) -> std::io::Result<()> {
    let p = path(state_dir, vcenter);
    if let Some(dir) = p.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let text = match mark.seq {
        Some(seq) => format!("{} {seq}\n", mark.closed_ms),
        None => format!("{}\n", mark.closed_ms),
    };
    crate::fsio::write_atomic(&p, text.as_bytes(), 0o644)
}

#[cfg(test)]
mod tests {
    #[test]
    fn round_trip() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(super::read(dir.path(), "vc/1"), None);
        let mark = super::Watermark {
            closed_ms: 1_700_000_000_000,
            seq: Some(42),
        };
        super::write(dir.path(), "vc/1", mark).expect("write");
        assert_eq!(super::read(dir.path(), "vc/1"), Some(mark));
        // An older agent's file: the end only.
        std::fs::write(super::path(dir.path(), "vc/1"), "1700000000000\n").expect("old");
        assert_eq!(
            super::read(dir.path(), "vc/1"),
            Some(super::Watermark {
                closed_ms: 1_700_000_000_000,
                seq: None
            })
        );
        let seeds = vec![(
            crate::perf::SeriesKey {
                entity_type: "HostSystem".into(),
                entity_id: "host-9".into(),
                counter: "disk.usage.average".into(),
                instance: "".into(),
            },
            60_000,
        )];
        super::write_seeds(dir.path(), "vc/1", &seeds).expect("seeds");
        assert_eq!(super::read_seeds(dir.path(), "vc/1"), seeds);
        super::write_seeds(dir.path(), "vc/1", &[]).expect("clear");
        assert!(super::read_seeds(dir.path(), "vc/1").is_empty());
    }
}
