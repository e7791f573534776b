//! `Buffer::open`: finds what survived in the directory and repairs what can be repaired,
//! without ever refusing to start (see the module header of `buffer` for each case).

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tracing::{info, warn};

use super::error::BufferError;
use super::format::{self, Scan, SEGMENT_HEADER_LEN};
use super::fs::Fs;
use super::queue::{Buffer, BufferOptions, Segment, Stats};

impl Buffer {
    /// Opens (or creates) the buffer in `opts.dir`. Errors only when the directory itself
    /// cannot be created or listed.
    pub fn open(fs: Arc<dyn Fs>, opts: BufferOptions) -> Result<Self, BufferError> {
        let dir = opts.dir.clone();
        fs.create_dir_all(&dir)
            .map_err(|e| BufferError::io(&dir, &e))?;
        let mut stats = Stats::default();
        let found = read_dir(fs.as_ref(), &dir, &mut stats)?;
        let (cursor, cursor_bytes, mut quarantined) =
            (found.cursor, found.cursor_bytes, found.quarantined);
        let segments = chain_segments(
            fs.as_ref(),
            found.candidates,
            cursor,
            &mut quarantined,
            &mut stats,
        );
        // Whatever survived is made durable before it is offered to the shipper.
        for seg in &segments {
            fs.sync(&seg.path)
                .map_err(|e| BufferError::io(&seg.path, &e))?;
        }
        fs.sync_dir(&dir).map_err(|e| BufferError::io(&dir, &e))?;
        let acked = match cursor {
            Some(v) => v,
            None => segments
                .front()
                .map_or(0, |s| s.first_seq.saturating_sub(1)),
        };
        let buffer =
            Buffer::from_parts(fs, opts, segments, quarantined, acked, cursor_bytes, stats);
        if stats != Stats::default() {
            warn!(?stats, "buffer recovered with findings");
        }
        info!(dir = %dir.display(), acked, next_seq = buffer.next_seq(), depth = buffer.depth(), bytes = buffer.disk_bytes(), "buffer opened");
        Ok(buffer)
    }
}

/// What the buffer's directory holds, sorted out.
struct Found {
    cursor: Option<u64>,
    cursor_bytes: u64,
    /// Segments by first sequence number, path and size, in directory order.
    candidates: Vec<(u64, PathBuf, u64)>,
    quarantined: VecDeque<(PathBuf, u64)>,
}

/// Reads the cursor, lists the segments and the quarantined files, and removes an
/// interrupted acknowledgement's temporary file.
fn read_dir(fs: &dyn Fs, dir: &Path, stats: &mut Stats) -> Result<Found, BufferError> {
    let files = fs.list(dir).map_err(|e| BufferError::io(dir, &e))?;
    let mut cursor: Option<u64> = None;
    let mut cursor_bytes = 0;
    let mut candidates = Vec::new();
    let mut quarantined = VecDeque::new();
    for (name, size) in files {
        let path = dir.join(&name);
        if name == "cursor" {
            cursor_bytes = size;
            match fs
                .read(&path)
                .map_err(|e| e.to_string())
                .and_then(|b| format::decode_cursor(&b))
            {
                Ok(v) => cursor = Some(v),
                Err(reason) => {
                    stats.cursor_corrupt = true;
                    warn!(file = %path.display(), reason, "buffer cursor is unreadable; records still on disk will be sent again");
                }
            }
        } else if name == "cursor.tmp" {
            // An acknowledgement interrupted before its rename: the old cursor holds.
            let _ = fs.remove(&path);
        } else if let Some(first) = format::parse_segment_name(&name) {
            candidates.push((first, path, size));
        } else if name.ends_with(".corrupt") {
            quarantined.push_back((path, size));
        } else {
            info!(file = %path.display(), "ignoring a file that is not part of the buffer");
        }
    }
    Ok(Found {
        cursor,
        cursor_bytes,
        candidates,
        quarantined,
    })
}

/// The segments in sequence order, scanned; one that overlaps the previous or cannot be
/// read is quarantined, and records missing between them are counted.
fn chain_segments(
    fs: &dyn Fs,
    mut candidates: Vec<(u64, PathBuf, u64)>,
    cursor: Option<u64>,
    quarantined: &mut VecDeque<(PathBuf, u64)>,
    stats: &mut Stats,
) -> VecDeque<Segment> {
    candidates.sort_by_key(|c| c.0);
    let mut segments: VecDeque<Segment> = VecDeque::new();
    for (first_seq, path, size) in candidates {
        if let Some(prev) = segments.back() {
            if first_seq < prev.end_seq {
                // Overlaps the previous segment: the sequence would repeat.
                quarantine(
                    fs,
                    &path,
                    size,
                    quarantined,
                    stats,
                    "overlaps the previous segment",
                );
                continue;
            }
        }
        match scan_segment(fs, &path, first_seq, size, stats) {
            Ok(Some(seg)) => {
                // Records between the previous segment (or the cursor) and this one
                // that were never acknowledged are gone.
                let expected = segments
                    .back()
                    .map_or(0, |p| p.end_seq)
                    .max(cursor.map_or(0, |c| c + 1));
                if expected > 0 && first_seq > expected {
                    stats.missing_records += first_seq - expected;
                    warn!(
                        from_seq = expected,
                        to_seq = first_seq - 1,
                        "buffer records are missing (a segment was deleted or lost)"
                    );
                }
                segments.push_back(seg);
            }
            Ok(None) => {}
            Err(reason) => {
                quarantine(fs, &path, size, quarantined, stats, &reason);
            }
        }
    }
    segments
}

fn quarantine(
    fs: &dyn Fs,
    path: &Path,
    size: u64,
    quarantined: &mut VecDeque<(PathBuf, u64)>,
    stats: &mut Stats,
    reason: &str,
) {
    let mut target = path.as_os_str().to_owned();
    target.push(".corrupt");
    let target = PathBuf::from(target);
    warn!(segment = %path.display(), reason, "quarantining an unreadable buffer segment");
    stats.quarantined_segments += 1;
    match fs.rename(path, &target) {
        Ok(()) => quarantined.push_back((target, size)),
        Err(e) => warn!(segment = %path.display(), error = %e, "cannot quarantine segment"),
    }
}

/// Scans one segment: `Ok(None)` if it holds no record (and was removed), `Err` if its
/// header is unreadable (the caller quarantines it).
fn scan_segment(
    fs: &dyn Fs,
    path: &Path,
    first_seq: u64,
    size: u64,
    stats: &mut Stats,
) -> Result<Option<Segment>, String> {
    if size < SEGMENT_HEADER_LEN {
        // Created, then the process died before the header reached the disk.
        stats.removed_empty_segments += 1;
        let _ = fs.remove(path);
        return Ok(None);
    }
    let mut header = [0u8; SEGMENT_HEADER_LEN as usize];
    fs.read_exact_at(path, 0, &mut header)
        .map_err(|e| e.to_string())?;
    format::check_segment_header(&header)?;
    let mut offset = SEGMENT_HEADER_LEN;
    let mut seq = first_seq;
    let mut end = size;
    let mut data_end = size;
    loop {
        let scan = format::read_record(fs, path, offset, end, seq).map_err(|e| e.to_string())?;
        match scan {
            Scan::Record { next, .. } => {
                offset = next;
                seq += 1;
            }
            Scan::BadCrc { next, .. } => {
                stats.bad_crc_records += 1;
                warn!(segment = %path.display(), seq, "buffer record has a bad checksum; skipping it");
                offset = next;
                seq += 1;
            }
            Scan::End => break,
            Scan::Torn => {
                truncate_tail(fs, path, offset, stats)?;
                end = offset;
                data_end = offset;
                break;
            }
            Scan::Broken(reason) => {
                if zeros_to_end(fs, path, offset, size) {
                    truncate_tail(fs, path, offset, stats)?;
                    end = offset;
                    data_end = offset;
                } else {
                    stats.corrupt_tails += 1;
                    warn!(segment = %path.display(), offset, seq, reason, "buffer segment is damaged here; the rest of it cannot be read");
                    // Left as it is on disk (counted in the cap), read up to here.
                    data_end = offset;
                }
                break;
            }
        }
    }
    if seq == first_seq {
        stats.removed_empty_segments += 1;
        let _ = fs.remove(path);
        return Ok(None);
    }
    Ok(Some(Segment {
        first_seq,
        end_seq: seq,
        path: path.to_owned(),
        bytes: end,
        data_end,
    }))
}

fn truncate_tail(fs: &dyn Fs, path: &Path, offset: u64, stats: &mut Stats) -> Result<(), String> {
    stats.torn_tails += 1;
    warn!(segment = %path.display(), offset, "truncating a torn write at the end of a buffer segment");
    fs.truncate(path, offset).map_err(|e| e.to_string())
}

/// Whether the file holds only zeros from `offset` (a tail the filesystem extended but
/// never wrote, after a power loss).
fn zeros_to_end(fs: &dyn Fs, path: &Path, mut offset: u64, size: u64) -> bool {
    let mut buf = vec![0u8; 64 * 1024];
    while offset < size {
        let n = (size - offset).min(buf.len() as u64) as usize;
        if fs.read_exact_at(path, offset, &mut buf[..n]).is_err() {
            return false;
        }
        if buf[..n].iter().any(|b| *b != 0) {
            return false;
        }
        offset += n as u64;
    }
    true
}
