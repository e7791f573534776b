//! `Buffer`: appending, group commit, reading stored records in order, acknowledging, and
//! keeping the directory under its byte cap.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;

use tracing::warn;

use super::error::BufferError;
use super::format::{self, Scan, CURSOR_LEN, MAX_PAYLOAD, RECORD_OVERHEAD, SEGMENT_HEADER_LEN};
use super::fs::Fs;

/// How a buffer is laid out and bounded.
#[derive(Debug, Clone)]
pub struct BufferOptions {
    /// The buffer directory.
    pub dir: PathBuf,
    /// Hard cap on the bytes of every file in the directory.
    pub max_bytes: u64,
    /// A segment is closed once it reaches this size (the unit of eviction).
    pub segment_bytes: u64,
    /// fsync after every append instead of group commit.
    pub fsync_always: bool,
}

/// One stored record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub seq: u64,
    pub payload: Vec<u8>,
}

/// Counters since the buffer was opened (recovery findings included).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub appended_records: u64,
    pub appended_bytes: u64,
    pub evicted_records: u64,
    pub evicted_segments: u64,
    pub bad_crc_records: u64,
    pub torn_tails: u64,
    pub corrupt_tails: u64,
    pub quarantined_segments: u64,
    pub missing_records: u64,
    pub removed_empty_segments: u64,
    pub cursor_corrupt: bool,
}

#[derive(Debug, Clone)]
pub(super) struct Segment {
    pub first_seq: u64,
    /// One past the last record's sequence.
    pub end_seq: u64,
    pub path: PathBuf,
    /// File size.
    pub bytes: u64,
    /// Where readable data ends (the file size unless recovery found damage).
    pub data_end: u64,
}

/// Where the next sequential read continues.
#[derive(Debug, Clone, Copy)]
struct ReadPos {
    seg_first: u64,
    offset: u64,
    seq: u64,
}

/// The queue. Not thread-safe by itself: `BufferHandle` shares it behind a mutex.
#[derive(Debug)]
pub struct Buffer {
    pub(super) fs: Arc<dyn Fs>,
    pub(super) opts: BufferOptions,
    pub(super) segments: VecDeque<Segment>,
    /// Whether the last segment was created by this process and may be appended to.
    pub(super) active: bool,
    /// Quarantined files and their sizes, oldest first.
    pub(super) quarantined: VecDeque<(PathBuf, u64)>,
    pub(super) next_seq: u64,
    pub(super) durable: u64,
    pub(super) acked: u64,
    pub(super) cursor_bytes: u64,
    pub(super) unsynced: Vec<PathBuf>,
    pub(super) dir_dirty: bool,
    read_pos: Option<ReadPos>,
    pub(super) stats: Stats,
}

impl Buffer {
    pub(super) fn from_parts(
        fs: Arc<dyn Fs>,
        opts: BufferOptions,
        segments: VecDeque<Segment>,
        quarantined: VecDeque<(PathBuf, u64)>,
        acked: u64,
        cursor_bytes: u64,
        stats: Stats,
    ) -> Self {
        let end = segments.back().map_or(1, |s| s.end_seq);
        let next_seq = end.max(acked.saturating_add(1)).max(1);
        Self {
            fs,
            opts,
            segments,
            active: false,
            quarantined,
            next_seq,
            durable: next_seq - 1,
            acked,
            cursor_bytes,
            unsynced: Vec::new(),
            dir_dirty: false,
            read_pos: None,
            stats,
        }
    }

    /// Appends one record; it is stored once a later [`Buffer::sync`] returns (at once
    /// with `fsync_always`). Makes room by evicting the oldest segments if needed.
    pub fn append(&mut self, payload: &[u8]) -> Result<u64, BufferError> {
        let frame = payload.len() as u64 + RECORD_OVERHEAD;
        let limit = self
            .opts
            .max_bytes
            .saturating_sub(SEGMENT_HEADER_LEN + CURSOR_LEN as u64);
        if payload.len() as u64 > MAX_PAYLOAD || frame > limit {
            return Err(BufferError::TooLarge {
                bytes: payload.len() as u64,
                limit: limit.min(MAX_PAYLOAD),
            });
        }
        let seq = self.next_seq;
        if seq == u64::MAX {
            return Err(BufferError::SequenceExhausted { next: seq });
        }
        if self.active {
            if let Some(last) = self.segments.back() {
                if last.end_seq > last.first_seq && last.bytes + frame > self.opts.segment_bytes {
                    self.active = false;
                }
            }
        }
        self.make_room(frame)?;
        if !self.active {
            self.create_segment(seq)?;
        }
        let Some(seg) = self.segments.back_mut() else {
            return Err(BufferError::Io {
                path: self.opts.dir.clone(),
                reason: "no active segment".into(),
            });
        };
        let bytes = format::encode_record(seq, payload);
        if let Err(e) = self.fs.append(&seg.path, &bytes) {
            // Leave no partial record behind: a later append must follow a whole one.
            let _ = self.fs.truncate(&seg.path, seg.bytes);
            return Err(BufferError::io(&seg.path, &e));
        }
        seg.bytes += frame;
        seg.data_end = seg.bytes;
        seg.end_seq = seq + 1;
        if !self.unsynced.contains(&seg.path) {
            self.unsynced.push(seg.path.clone());
        }
        self.next_seq = seq + 1;
        self.stats.appended_records += 1;
        self.stats.appended_bytes += frame;
        if self.opts.fsync_always {
            self.sync()?;
        }
        Ok(seq)
    }

    fn create_segment(&mut self, first_seq: u64) -> Result<(), BufferError> {
        let path = self.opts.dir.join(format::segment_name(first_seq));
        if let Err(e) = self.fs.append(&path, &format::segment_header()) {
            let _ = self.fs.remove(&path);
            return Err(BufferError::io(&path, &e));
        }
        self.segments.push_back(Segment {
            first_seq,
            end_seq: first_seq,
            path: path.clone(),
            bytes: SEGMENT_HEADER_LEN,
            data_end: SEGMENT_HEADER_LEN,
        });
        self.unsynced.push(path);
        self.dir_dirty = true;
        self.active = true;
        Ok(())
    }

    /// Evicts the oldest data until `frame` (plus a segment header if a new segment is
    /// needed) fits under the cap.
    fn make_room(&mut self, frame: u64) -> Result<(), BufferError> {
        loop {
            let need = frame + if self.active { 0 } else { SEGMENT_HEADER_LEN };
            if self.disk_bytes() + need <= self.opts.max_bytes {
                return Ok(());
            }
            if let Some((path, bytes)) = self.quarantined.pop_front() {
                warn!(file = %path.display(), bytes, "buffer full: deleting a quarantined segment");
                if let Err(e) = self.fs.remove(&path) {
                    warn!(file = %path.display(), error = %e, "cannot delete a quarantined segment");
                }
                continue;
            }
            let Some(seg) = self.segments.pop_front() else {
                return Err(BufferError::TooLarge {
                    bytes: frame,
                    limit: self.opts.max_bytes,
                });
            };
            let lost = seg
                .end_seq
                .saturating_sub(seg.first_seq.max(self.acked.saturating_add(1)));
            self.stats.evicted_records += lost;
            self.stats.evicted_segments += 1;
            warn!(
                segment = %seg.path.display(), first_seq = seg.first_seq,
                records_lost = lost, evicted_records_total = self.stats.evicted_records,
                "buffer full: evicting the oldest segment before it was delivered"
            );
            if let Err(e) = self.fs.remove(&seg.path) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    return Err(BufferError::io(&seg.path, &e));
                }
            }
            self.unsynced.retain(|p| p != &seg.path);
            self.dir_dirty = true;
            if self.segments.is_empty() {
                self.active = false;
            }
            if self.read_pos.is_some_and(|p| p.seg_first == seg.first_seq) {
                self.read_pos = None;
            }
        }
    }

    /// Makes every append so far durable (group commit). Returns the last stored sequence.
    pub fn sync(&mut self) -> Result<u64, BufferError> {
        let mut i = 0;
        while i < self.unsynced.len() {
            let path = &self.unsynced[i];
            if let Err(e) = self.fs.sync(path) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    return Err(BufferError::io(path, &e));
                }
            }
            i += 1;
        }
        self.unsynced.clear();
        if self.dir_dirty {
            self.fs
                .sync_dir(&self.opts.dir)
                .map_err(|e| BufferError::io(&self.opts.dir, &e))?;
            self.dir_dirty = false;
        }
        self.durable = self.next_seq - 1;
        Ok(self.durable)
    }

    /// Up to `max_records` stored records (and about `max_bytes` of payload) after `after`,
    /// in sequence order. Gaps (evicted or damaged records) are skipped.
    pub fn read(
        &mut self,
        after: u64,
        max_records: usize,
        max_bytes: usize,
    ) -> Result<Vec<Record>, BufferError> {
        let mut out = Vec::new();
        let mut bytes = 0usize;
        let mut want = after.saturating_add(1);
        while out.len() < max_records && bytes < max_bytes && want <= self.durable {
            let pos = match self.read_pos {
                Some(p) if p.seq == want => p,
                _ => match self.locate(want)? {
                    Some(p) => p,
                    None => break,
                },
            };
            let Some(seg) = self.segments.iter().find(|s| s.first_seq == pos.seg_first) else {
                // The segment was deleted (acknowledged or evicted) since: look again.
                self.read_pos = None;
                continue;
            };
            let scan = scan_at(self.fs.as_ref(), seg, pos)?;
            match scan {
                Scan::Record { seq, payload, next } => {
                    if seq > self.durable {
                        break;
                    }
                    bytes += payload.len();
                    out.push(Record { seq, payload });
                    want = seq + 1;
                    self.read_pos = Some(ReadPos {
                        seg_first: pos.seg_first,
                        offset: next,
                        seq: want,
                    });
                }
                Scan::BadCrc { seq, next } => {
                    // Damaged after it was written (recovery would have counted it).
                    self.stats.bad_crc_records += 1;
                    warn!(segment = %seg.path.display(), seq, "skipping a buffer record with a bad checksum");
                    want = seq + 1;
                    self.read_pos = Some(ReadPos {
                        seg_first: pos.seg_first,
                        offset: next,
                        seq: want,
                    });
                }
                Scan::Torn | Scan::Broken(_) | Scan::End => {
                    // Nothing more readable in this segment: go on with the next one.
                    want = want.max(seg.end_seq);
                    self.read_pos = None;
                    if !self.segments.iter().any(|s| s.first_seq > pos.seg_first) {
                        break;
                    }
                }
            }
        }
        Ok(out)
    }

    /// The position of `seq`, or of the first record after it if it is gone.
    fn locate(&mut self, seq: u64) -> Result<Option<ReadPos>, BufferError> {
        let Some(seg) = self.segments.iter().find(|s| s.end_seq > seq) else {
            return Ok(None);
        };
        let mut pos = ReadPos {
            seg_first: seg.first_seq,
            offset: SEGMENT_HEADER_LEN,
            seq: seg.first_seq,
        };
        while pos.seq < seq {
            let scan = scan_at(self.fs.as_ref(), seg, pos)?;
            match scan {
                Scan::Record { next, .. } | Scan::BadCrc { next, .. } => {
                    pos.offset = next;
                    pos.seq += 1;
                }
                _ => break,
            }
        }
        Ok(Some(pos))
    }

    /// Acknowledges every record up to `upto`: fully acknowledged segments are deleted
    /// (this needs no free space) and the cursor is replaced. An error means the cursor
    /// could not be written: the acknowledgement holds in memory, and after a restart
    /// some records may be sent again.
    pub fn ack(&mut self, upto: u64) -> Result<(), BufferError> {
        let upto = upto.min(self.durable);
        if upto <= self.acked {
            return Ok(());
        }
        self.acked = upto;
        let mut removed = false;
        loop {
            let done = match self.segments.front() {
                Some(s) => {
                    s.end_seq <= self.acked.saturating_add(1)
                        && !(self.active && self.segments.len() == 1)
                }
                None => false,
            };
            if !done {
                break;
            }
            let Some(seg) = self.segments.pop_front() else {
                break;
            };
            match self.fs.remove(&seg.path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    self.segments.push_front(seg.clone());
                    return Err(BufferError::io(&seg.path, &e));
                }
            }
            self.unsynced.retain(|p| p != &seg.path);
            if self.read_pos.is_some_and(|p| p.seg_first == seg.first_seq) {
                self.read_pos = None;
            }
            removed = true;
        }
        if removed {
            self.fs
                .sync_dir(&self.opts.dir)
                .map_err(|e| BufferError::io(&self.opts.dir, &e))?;
        }
        self.write_cursor()
    }

    fn write_cursor(&mut self) -> Result<(), BufferError> {
        let dir = &self.opts.dir;
        let tmp = dir.join("cursor.tmp");
        let path = dir.join("cursor");
        let bytes = format::encode_cursor(self.acked);
        let result = self
            .fs
            .write(&tmp, &bytes)
            .and_then(|()| self.fs.sync(&tmp))
            .and_then(|()| self.fs.rename(&tmp, &path))
            .and_then(|()| self.fs.sync_dir(dir));
        if let Err(e) = result {
            let _ = self.fs.remove(&tmp);
            return Err(BufferError::io(&path, &e));
        }
        self.cursor_bytes = CURSOR_LEN as u64;
        Ok(())
    }

    /// Bytes of every file the buffer keeps.
    pub fn disk_bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.bytes).sum::<u64>()
            + self.quarantined.iter().map(|q| q.1).sum::<u64>()
            + self.cursor_bytes
    }

    /// Stored or written records not yet acknowledged.
    pub fn depth(&self) -> u64 {
        self.segments
            .iter()
            .map(|s| s.end_seq.saturating_sub(s.first_seq.max(self.acked + 1)))
            .sum()
    }

    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Counts records that never entered the buffer because no batch of them could fit
    /// (`TooLarge`): lost to the cap like evicted ones, and counted with them.
    pub fn count_dropped(&mut self, records: u64) {
        self.stats.evicted_records += records;
    }

    /// The cap, in bytes.
    pub fn max_bytes(&self) -> u64 {
        self.opts.max_bytes
    }

    /// The last acknowledged sequence.
    pub fn acked(&self) -> u64 {
        self.acked
    }

    /// The last stored (fsynced) sequence.
    pub fn durable(&self) -> u64 {
        self.durable
    }

    /// The sequence the next append gets.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Whether appends are waiting for a sync.
    pub fn has_unsynced(&self) -> bool {
        self.durable + 1 < self.next_seq
    }
}

/// The record at `pos` of `seg`.
fn scan_at(fs: &dyn Fs, seg: &Segment, pos: ReadPos) -> Result<Scan, BufferError> {
    format::read_record(fs, &seg.path, pos.offset, seg.data_end, pos.seq)
        .map_err(|e| BufferError::io(&seg.path, &e))
}
