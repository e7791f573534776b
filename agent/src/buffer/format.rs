//! The on-disk layout of segment headers, records and the cursor file: encoding, and
//! decoding that classifies every way a record can be damaged (see the module header of
//! `buffer` for the layout itself).

use super::fs::Fs;
use std::path::Path;

/// First bytes of every segment file.
pub(super) const SEGMENT_MAGIC: &[u8; 8] = b"VSCOUTSG";
/// First bytes of the cursor file.
pub(super) const CURSOR_MAGIC: &[u8; 8] = b"VSCOUTCR";
/// Version of the segment and record layout. A reader refuses (quarantines) other versions.
pub(super) const FORMAT_VERSION: u32 = 1;
/// Segment header: magic, version, CRC32C of the preceding 12 bytes.
pub const SEGMENT_HEADER_LEN: u64 = 16;
/// Bytes a record adds to its payload: length, sequence, CRC32C, length again.
pub const RECORD_OVERHEAD: u64 = 4 + 8 + 4 + 4;
/// Largest payload accepted: anything bigger is a bug upstream, and a corrupt length field
/// must not make the reader allocate gigabytes.
pub const MAX_PAYLOAD: u64 = 64 * 1024 * 1024;
/// Cursor file: magic, acknowledged sequence, CRC32C of the preceding 16 bytes.
pub(super) const CURSOR_LEN: usize = 8 + 8 + 4;

pub(super) fn segment_header() -> [u8; SEGMENT_HEADER_LEN as usize] {
    let mut h = [0u8; SEGMENT_HEADER_LEN as usize];
    h[..8].copy_from_slice(SEGMENT_MAGIC);
    h[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    let crc = crc32c::crc32c(&h[..12]);
    h[12..].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Why a segment header is not acceptable.
pub(super) fn check_segment_header(h: &[u8]) -> Result<(), String> {
    if h.len() < SEGMENT_HEADER_LEN as usize {
        return Err(format!("header is {} bytes, expected 16", h.len()));
    }
    if &h[..8] != SEGMENT_MAGIC {
        return Err("not a vscout segment (bad magic)".into());
    }
    if crc32c::crc32c(&h[..12]).to_le_bytes() != h[12..16] {
        return Err("segment header checksum mismatch".into());
    }
    let version = u32::from_le_bytes([h[8], h[9], h[10], h[11]]);
    if version != FORMAT_VERSION {
        return Err(format!(
            "segment format version {version}, this agent reads {FORMAT_VERSION}"
        ));
    }
    Ok(())
}

/// The framed bytes of one record.
pub(super) fn encode_record(seq: u64, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut out = Vec::with_capacity(payload.len() + RECORD_OVERHEAD as usize);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(payload);
    let crc = crc32c::crc32c(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(&len.to_le_bytes());
    out
}

/// What is found at an offset of a segment.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Scan {
    /// A whole, intact record; the next one starts at `next`.
    Record {
        seq: u64,
        payload: Vec<u8>,
        next: u64,
    },
    /// The framing is intact (both lengths agree, the sequence is the expected one) but the
    /// checksum is not: the payload was damaged. Skip to `next`.
    BadCrc { seq: u64, next: u64 },
    /// The file ends inside this record: a write that never finished.
    Torn,
    /// The framing itself is damaged; nothing after this point can be located.
    Broken(String),
    /// Clean end of the data.
    End,
}

/// Reads the record at `offset` of `path` (whose data ends at `end`), expecting `seq`.
pub(super) fn read_record(
    fs: &dyn Fs,
    path: &Path,
    offset: u64,
    end: u64,
    expect_seq: u64,
) -> std::io::Result<Scan> {
    if offset == end {
        return Ok(Scan::End);
    }
    if end - offset < 12 {
        return Ok(Scan::Torn);
    }
    let mut head = [0u8; 12];
    fs.read_exact_at(path, offset, &mut head)?;
    let len = u64::from(u32::from_le_bytes([head[0], head[1], head[2], head[3]]));
    let seq = u64::from_le_bytes([
        head[4], head[5], head[6], head[7], head[8], head[9], head[10], head[11],
    ]);
    if len > MAX_PAYLOAD {
        return Ok(Scan::Broken(format!(
            "record length {len} exceeds the limit"
        )));
    }
    let total = len + RECORD_OVERHEAD;
    if end - offset < total {
        // A length that points past the end is either a torn tail or a damaged length
        // field; either way nothing after it can be found.
        return Ok(Scan::Torn);
    }
    if seq != expect_seq {
        return Ok(Scan::Broken(format!(
            "sequence {seq} where {expect_seq} was expected"
        )));
    }
    let mut body = vec![0u8; (len + 8) as usize];
    fs.read_exact_at(path, offset + 12, &mut body)?;
    let n = len as usize;
    let crc = u32::from_le_bytes([body[n], body[n + 1], body[n + 2], body[n + 3]]);
    let len2 = u64::from(u32::from_le_bytes([
        body[n + 4],
        body[n + 5],
        body[n + 6],
        body[n + 7],
    ]));
    if len2 != len {
        return Ok(Scan::Broken(format!(
            "record lengths disagree ({len} and {len2})"
        )));
    }
    let mut digest = crc32c::crc32c(&head);
    digest = crc32c::crc32c_append(digest, &body[..n]);
    let next = offset + total;
    if digest != crc {
        return Ok(Scan::BadCrc { seq, next });
    }
    body.truncate(n);
    Ok(Scan::Record {
        seq,
        payload: body,
        next,
    })
}

pub(super) fn encode_cursor(acked: u64) -> [u8; CURSOR_LEN] {
    let mut c = [0u8; CURSOR_LEN];
    c[..8].copy_from_slice(CURSOR_MAGIC);
    c[8..16].copy_from_slice(&acked.to_le_bytes());
    let crc = crc32c::crc32c(&c[..16]);
    c[16..].copy_from_slice(&crc.to_le_bytes());
    c
}

pub(super) fn decode_cursor(c: &[u8]) -> Result<u64, String> {
    if c.len() != CURSOR_LEN {
        return Err(format!(
            "cursor file is {} bytes, expected {CURSOR_LEN}",
            c.len()
        ));
    }
    if &c[..8] != CURSOR_MAGIC {
        return Err("cursor file has a bad magic".into());
    }
    if crc32c::crc32c(&c[..16]).to_le_bytes() != c[16..] {
        return Err("cursor checksum mismatch".into());
    }
    let mut v = [0u8; 8];
    v.copy_from_slice(&c[8..16]);
    Ok(u64::from_le_bytes(v))
}

/// `00000000000000000042.seg` for a segment whose first record is 42.
pub(super) fn segment_name(first_seq: u64) -> String {
    format!("{first_seq:020}.seg")
}

/// The first sequence of a segment file name, or `None` for any other file.
pub(super) fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".seg")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}
