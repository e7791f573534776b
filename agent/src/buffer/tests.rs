//! The buffer against a simulated filesystem: a model-based property test of write /
//! sync / read / ack / crash / disk full, and the corruption cases one by one.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;

use proptest::prelude::*;

use super::format::{self, SEGMENT_HEADER_LEN};
use super::simfs::SimFs;
use super::{Buffer, BufferError, BufferOptions};

fn dir() -> PathBuf {
    PathBuf::from("/buf")
}

fn opts(max_bytes: u64, segment_bytes: u64) -> BufferOptions {
    BufferOptions {
        dir: dir(),
        max_bytes,
        segment_bytes,
        fsync_always: false,
    }
}

fn open(fs: &Arc<SimFs>, o: &BufferOptions) -> Buffer {
    match Buffer::open(fs.clone(), o.clone()) {
        Ok(b) => b,
        Err(e) => panic!("open must not fail: {e}"),
    }
}

fn payload(seq_hint: u64, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (seq_hint as usize * 31 + i) as u8)
        .collect()
}

fn read_all(b: &mut Buffer, after: u64) -> Vec<(u64, Vec<u8>)> {
    let mut out = Vec::new();
    let mut cursor = after;
    loop {
        let batch = b.read(cursor, 7, 1 << 20).expect("read");
        if batch.is_empty() {
            return out;
        }
        for r in batch {
            assert!(r.seq > cursor, "records come in order");
            cursor = r.seq;
            out.push((r.seq, r.payload));
        }
    }
}

fn segments(fs: &SimFs) -> Vec<PathBuf> {
    fs.names()
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect()
}

#[derive(Debug, Clone)]
enum Op {
    Append(usize),
    Sync,
    /// Read up to n records after the consumer's position.
    Read(usize),
    /// Acknowledge the first n records read and not yet acknowledged.
    Ack(usize),
    Crash(usize),
    DiskFull(bool),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0usize..300).prop_map(Op::Append),
        3 => Just(Op::Sync),
        3 => (1usize..6).prop_map(Op::Read),
        2 => (1usize..6).prop_map(Op::Ack),
        1 => any::<usize>().prop_map(Op::Crash),
        1 => any::<bool>().prop_map(Op::DiskFull),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    /// Whatever happens, a record that was stored (appended, then synced) and not
    /// acknowledged with a written cursor is delivered after every crash; nothing delivered
    /// differs from what was appended under its sequence; no sequence is used twice for two
    /// payloads; delivery is in order.
    #[test]
    fn model(ops in proptest::collection::vec(op(), 1..120)) {
        let fs = Arc::new(SimFs::default());
        // Tiny segments: many rotations and deletions. Large cap: no eviction here (it has
        // its own tests).
        let o = opts(1 << 30, 700);
        let mut b = open(&fs, &o);
        // Every payload ever appended, by sequence (a sequence must never get another one).
        let mut appended: BTreeMap<u64, Vec<u8>> = BTreeMap::new();
        // Appended and synced: must be delivered unless acknowledged with a durable cursor.
        let mut stored: BTreeSet<u64> = BTreeSet::new();
        let mut pending_sync: BTreeSet<u64> = BTreeSet::new();
        // Acknowledged with the cursor written: may never be delivered again after a crash.
        let mut durable_acked = 0u64;
        let mut delivered: BTreeSet<u64> = BTreeSet::new();
        let mut read_pos = b.acked();
        let mut unacked_reads: Vec<u64> = Vec::new();
        let mut rng_state = 0x9e37_79b9_7f4a_7c15u64;
        for op in ops {
            match op {
                Op::Append(len) => {
                    let p = payload(appended.len() as u64, len);
                    match b.append(&p) {
                        Ok(seq) => {
                            if appended.contains_key(&seq) {
                                // A sequence that was lost in a crash may come back only if
                                // its record was never stored.
                                prop_assert!(!stored.contains(&seq), "stored sequence {seq} reused");
                            }
                            appended.insert(seq, p);
                            pending_sync.insert(seq);
                        }
                        Err(BufferError::DiskFull { .. }) => {}
                        Err(e) => prop_assert!(false, "append failed: {e}"),
                    }
                }
                Op::Sync => {
                    if b.sync().is_ok() {
                        stored.append(&mut pending_sync);
                    }
                }
                Op::Read(n) => {
                    for r in b.read(read_pos, n, 1 << 20).expect("read") {
                        prop_assert!(r.seq > read_pos);
                        prop_assert_eq!(Some(&r.payload), appended.get(&r.seq), "payload of {}", r.seq);
                        read_pos = r.seq;
                        delivered.insert(r.seq);
                        unacked_reads.push(r.seq);
                    }
                }
                Op::Ack(n) => {
                    let n = n.min(unacked_reads.len());
                    if n > 0 {
                        let upto = unacked_reads[n - 1];
                        unacked_reads.drain(..n);
                        if b.ack(upto).is_ok() {
                            durable_acked = durable_acked.max(upto);
                        }
                    }
                }
                Op::Crash(seed) => {
                    rng_state ^= seed as u64;
                    let mut rng = |n: usize| {
                        rng_state = rng_state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                        (rng_state >> 33) as usize % n.max(1)
                    };
                    fs.crash(&mut rng);
                    b = open(&fs, &o);
                    // Unsynced appends may be gone; their sequences may be used again.
                    pending_sync.retain(|s| *s < b.next_seq());
                    prop_assert!(b.acked() >= durable_acked, "the cursor went back");
                    read_pos = b.acked();
                    unacked_reads.clear();
                    // Everything stored and not durably acknowledged is still there.
                    let all = read_all(&mut b, read_pos);
                    let got: BTreeSet<u64> = all.iter().map(|r| r.0).collect();
                    for s in stored.range(b.acked() + 1..) {
                        prop_assert!(got.contains(s), "stored record {s} lost in a crash");
                    }
                    for (seq, p) in &all {
                        prop_assert_eq!(Some(p), appended.get(seq));
                        prop_assert!(*seq > durable_acked, "acknowledged record {seq} delivered again");
                    }
                    // Records recovered without a sync before the crash are stored now.
                    stored.extend(got.iter().copied());
                    pending_sync.clear();
                    read_pos = b.acked();
                }
                Op::DiskFull(full) => {
                    let used: u64 = fs.names().iter().filter_map(|p| fs.file_len(p)).map(|l| l as u64).sum();
                    fs.set_capacity(full.then_some(used + 200));
                }
            }
        }
        // Finally, with room again, the consumer drains everything that was stored.
        fs.set_capacity(None);
        b.sync().expect("sync");
        let all = { let a = b.acked(); read_all(&mut b, a) };
        let got: BTreeSet<u64> = all.iter().map(|r| r.0).collect();
        for s in stored.range(b.acked() + 1..) {
            prop_assert!(got.contains(s), "stored record {s} not delivered");
        }
    }
}

fn filled(fs: &Arc<SimFs>, o: &BufferOptions, n: u64) -> Buffer {
    let mut b = open(fs, o);
    for i in 0..n {
        b.append(&payload(i, 100)).expect("append");
    }
    b.sync().expect("sync");
    b
}

#[test]
fn a_clean_drain_sends_nothing_again() {
    let fs = Arc::new(SimFs::default());
    let o = opts(1 << 20, 1000);
    let mut b = filled(&fs, &o, 20);
    let all = read_all(&mut b, 0);
    assert_eq!(all.len(), 20);
    b.ack(20).expect("ack");
    // Only the active segment is left; every sealed one is gone.
    assert_eq!(segments(&fs).len(), 1);
    drop(b);
    let mut b = open(&fs, &o);
    assert_eq!(b.acked(), 20);
    assert!(read_all(&mut b, 20).is_empty());
    assert_eq!(b.append(b"next").expect("append"), 21, "sequences continue");
}

#[test]
fn a_flipped_byte_skips_one_record_and_counts_it() {
    let fs = Arc::new(SimFs::default());
    let o = opts(1 << 20, 1 << 20);
    drop(filled(&fs, &o, 5));
    let seg = dir().join(format::segment_name(1));
    // Inside the payload of the second record.
    let frame = 100 + super::RECORD_OVERHEAD as usize;
    fs.flip(&seg, SEGMENT_HEADER_LEN as usize + frame + 12 + 50);
    let mut b = open(&fs, &o);
    assert_eq!(b.stats().bad_crc_records, 1);
    let seqs: Vec<u64> = read_all(&mut b, 0).into_iter().map(|r| r.0).collect();
    assert_eq!(seqs, vec![1, 3, 4, 5]);
}

#[test]
fn a_torn_tail_is_truncated_and_appending_goes_on() {
    let fs = Arc::new(SimFs::default());
    let o = opts(1 << 20, 1 << 20);
    let mut b = filled(&fs, &o, 3);
    // A fourth record half written, never synced, then a power cut keeping half of it.
    b.append(&payload(3, 100)).expect("append");
    drop(b);
    let seg = dir().join(format::segment_name(1));
    let full = fs.file_len(&seg).expect("segment");
    fs.crash(&mut |n| n.min(60));
    assert!(fs.file_len(&seg).expect("segment") < full);
    let mut b = open(&fs, &o);
    assert_eq!(b.stats().torn_tails, 1);
    let whole = SEGMENT_HEADER_LEN as usize + 3 * (100 + super::RECORD_OVERHEAD as usize);
    assert_eq!(
        fs.file_len(&seg),
        Some(whole),
        "truncated at the last whole record"
    );
    assert_eq!(read_all(&mut b, 0).len(), 3);
    assert_eq!(b.append(b"x").expect("append"), 4);
    b.sync().expect("sync");
    assert_eq!(read_all(&mut b, 3).len(), 1);
}

#[test]
fn zero_length_and_stray_files_do_not_stop_recovery() {
    let fs = Arc::new(SimFs::default());
    let o = opts(1 << 20, 1 << 20);
    drop(filled(&fs, &o, 2));
    fs.put(&dir().join(format::segment_name(3)), b"");
    fs.put(&dir().join("notes.txt"), b"hello");
    fs.put(&dir().join("cursor.tmp"), b"half");
    let mut b = open(&fs, &o);
    assert_eq!(b.stats().removed_empty_segments, 1);
    assert_eq!(read_all(&mut b, 0).len(), 2);
    assert!(
        fs.names().contains(&dir().join("notes.txt")),
        "stray files are left alone"
    );
    assert!(!fs.names().contains(&dir().join("cursor.tmp")));
}

#[test]
fn a_bad_header_is_quarantined() {
    let fs = Arc::new(SimFs::default());
    let o = opts(1 << 20, 400);
    drop(filled(&fs, &o, 8));
    let segs = segments(&fs);
    assert!(segs.len() >= 3);
    fs.flip(&segs[1], 2);
    let mut b = open(&fs, &o);
    assert_eq!(b.stats().quarantined_segments, 1);
    let corrupt: Vec<_> = fs
        .names()
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with(".seg.corrupt"))
        .collect();
    assert_eq!(corrupt.len(), 1);
    let got = read_all(&mut b, 0);
    assert!(got.len() < 8 && !got.is_empty());
    assert!(b.disk_bytes() > 0);
}

#[test]
fn a_missing_segment_is_a_counted_gap() {
    let fs = Arc::new(SimFs::default());
    let o = opts(1 << 20, 400);
    drop(filled(&fs, &o, 9));
    let segs = segments(&fs);
    assert!(segs.len() >= 3);
    let lost_first =
        format::parse_segment_name(segs[1].file_name().and_then(|n| n.to_str()).expect("name"))
            .expect("segment name");
    fs.delete(&segs[1]);
    let mut b = open(&fs, &o);
    assert!(b.stats().missing_records > 0);
    let seqs: Vec<u64> = read_all(&mut b, 0).into_iter().map(|r| r.0).collect();
    assert!(!seqs.contains(&lost_first));
    assert_eq!(seqs.last(), Some(&9));
    assert_eq!(b.next_seq(), 10);
}

#[test]
fn a_corrupt_cursor_resends_what_is_on_disk() {
    let fs = Arc::new(SimFs::default());
    let o = opts(1 << 20, 1 << 20);
    let mut b = filled(&fs, &o, 4);
    b.ack(2).expect("ack");
    drop(b);
    fs.flip(&dir().join("cursor"), 9);
    let mut b = open(&fs, &o);
    assert!(b.stats().cursor_corrupt);
    // At least once: records 1..=4 come again, the collector drops the duplicates.
    assert_eq!(
        {
            let a = b.acked();
            read_all(&mut b, a)
        }
        .len(),
        4
    );
    assert_eq!(b.append(b"x").expect("append"), 5);
}

#[test]
fn the_cap_evicts_the_oldest_segment_and_counts_it() {
    let fs = Arc::new(SimFs::default());
    let frame = 100 + super::RECORD_OVERHEAD;
    // Room for about 12 records in segments of 3.
    let o = opts(
        12 * frame + 4 * SEGMENT_HEADER_LEN + 20,
        3 * frame + SEGMENT_HEADER_LEN,
    );
    let mut b = open(&fs, &o);
    for i in 0..40 {
        b.append(&payload(i, 100)).expect("append under the cap");
        assert!(b.disk_bytes() <= o.max_bytes, "over the cap at record {i}");
    }
    b.sync().expect("sync");
    let s = b.stats();
    assert!(s.evicted_segments > 0);
    let got: Vec<u64> = read_all(&mut b, 0).into_iter().map(|r| r.0).collect();
    assert_eq!(
        s.evicted_records + got.len() as u64,
        40,
        "every record is delivered or counted"
    );
    assert_eq!(got.last(), Some(&40), "the newest records are kept");
    let too_big = vec![0u8; o.max_bytes as usize];
    assert!(matches!(
        b.append(&too_big),
        Err(BufferError::TooLarge { .. })
    ));
}

#[test]
fn a_full_disk_pauses_appends_but_acks_still_free_space() {
    let fs = Arc::new(SimFs::default());
    let o = opts(1 << 20, 500);
    let mut b = filled(&fs, &o, 10);
    let used: u64 = fs
        .names()
        .iter()
        .filter_map(|p| fs.file_len(p))
        .map(|l| l as u64)
        .sum();
    fs.set_capacity(Some(used + 30));
    let err = b.append(&payload(99, 100)).expect_err("disk is full");
    assert!(err.is_retryable(), "{err}");
    // The partial write was taken back: the segment ends on a whole record.
    b.sync().expect("sync");
    let all = read_all(&mut b, 0);
    assert_eq!(all.len(), 10);
    // Acknowledging deletes segments even though the disk is full.
    let before = segments(&fs).len();
    let _ = b.ack(10);
    assert!(segments(&fs).len() < before);
    b.append(&payload(11, 100))
        .expect("room again after deleting acknowledged data");
}

#[test]
fn sequences_never_wrap() {
    let fs = Arc::new(SimFs::default());
    let o = opts(1 << 20, 200);
    // A buffer whose cursor is three short of the end of the sequence space, with tiny
    // segments so that every append rotates.
    fs.put(&dir().join("cursor"), &format::encode_cursor(u64::MAX - 3));
    let mut b = open(&fs, &o);
    assert_eq!(b.append(&payload(0, 150)).expect("append"), u64::MAX - 2);
    assert_eq!(b.append(&payload(1, 150)).expect("append"), u64::MAX - 1);
    assert!(matches!(
        b.append(b"x"),
        Err(BufferError::SequenceExhausted { .. })
    ));
    b.sync().expect("sync");
    let got: Vec<u64> = read_all(&mut b, u64::MAX - 3)
        .into_iter()
        .map(|r| r.0)
        .collect();
    assert_eq!(got, vec![u64::MAX - 2, u64::MAX - 1]);
    b.ack(u64::MAX - 1).expect("ack");
    drop(b);
    let b = open(&fs, &o);
    assert_eq!(
        b.next_seq(),
        u64::MAX,
        "no sequence is handed out twice after a restart"
    );
}

#[test]
fn only_stored_records_are_read() {
    let fs = Arc::new(SimFs::default());
    let o = opts(1 << 20, 1 << 20);
    let mut b = open(&fs, &o);
    b.append(b"a").expect("append");
    assert!(b.read(0, 10, 1 << 20).expect("read").is_empty());
    b.sync().expect("sync");
    assert_eq!(b.read(0, 10, 1 << 20).expect("read").len(), 1);
}

#[test]
fn real_files_round_trip() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let o = BufferOptions {
        dir: tmp.path().join("buffer"),
        max_bytes: 1 << 20,
        segment_bytes: 300,
        fsync_always: true,
    };
    let fs: Arc<dyn super::fs::Fs> = Arc::new(super::fs::StdFs::default());
    let mut b = Buffer::open(fs.clone(), o.clone()).expect("open");
    for i in 0..10 {
        b.append(&payload(i, 64)).expect("append");
    }
    b.ack(4).expect("ack");
    drop(b);
    let mut b = Buffer::open(fs, o).expect("reopen");
    let got: Vec<u64> = {
        let a = b.acked();
        read_all(&mut b, a)
    }
    .into_iter()
    .map(|r| r.0)
    .collect();
    assert_eq!(got, (5..=10).collect::<Vec<_>>());
    let on_disk = std::fs::read_dir(tmp.path().join("buffer"))
        .expect("dir")
        .count();
    assert!(on_disk >= 2, "segments and cursor on disk");
}
