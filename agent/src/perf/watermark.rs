//! The per-vCenter watermark of stored windows: the end (Unix ms) of the last window whose
//! rollups reached the buffer, kept in `<state_dir>/perf/<vcenter>.closed` so that a
//! restarted agent neither rolls up a stored window again nor leaves a gap (it looks back
//! to the watermark, up to the hour vCenter keeps).

use std::path::{Path, PathBuf};

fn path(state_dir: &Path, vcenter: &str) -> PathBuf {
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
    state_dir.join("perf").join(format!("{safe}.closed"))
}

/// The stored watermark, if any (an unreadable file counts as none).
pub fn read(state_dir: &Path, vcenter: &str) -> Option<i64> {
    std::fs::read_to_string(path(state_dir, vcenter))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Replaces the watermark atomically.
pub fn write(state_dir: &Path, vcenter: &str, closed_ms: i64) -> std::io::Result<()> {
    let p = path(state_dir, vcenter);
    if let Some(dir) = p.parent() {
        std::fs::create_dir_all(dir)?;
    }
    crate::fsio::write_atomic(&p, format!("{closed_ms}\n").as_bytes(), 0o644)
}

#[cfg(test)]
mod tests {
    #[test]
    fn round_trip() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(super::read(dir.path(), "vc/1"), None);
        super::write(dir.path(), "vc/1", 1_700_000_000_000).expect("write");
        assert_eq!(super::read(dir.path(), "vc/1"), Some(1_700_000_000_000));
    }
}
