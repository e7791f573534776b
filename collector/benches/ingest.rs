//! Decoding a batch as the collector does (JSON parsed while zstd decompresses, bounded)
//! against the earlier way (decompress whole, then parse the bytes): the ratio of the two
//! in one run, on a batch of 5,000 rollups like the agent's.
//! Run: `cargo bench -p vscout-collector --bench ingest`.

use std::time::Instant;

use vscout_wire::batch::Record;
use vscout_wire::batch::{self, Batch, RollupSetBuilder, BATCH_VERSION};
use vscout_wire::rollup::Rollup;

fn main() {
    let mut set = RollupSetBuilder::default();
    for i in 0..batch::ROLLUPS_PER_BATCH {
        set.push(Rollup::example(
            &format!("vm-{}", i / 13),
            &format!("group{}.counter.average", i % 13),
            i as f64,
        ));
    }
    let body = batch::encode(&Batch {
        batch_version: BATCH_VERSION,
        created_ms: 0,
        records: vec![Record::Rollups(set.take())],
    })
    .expect("encode");
    let rounds = 60;
    let timed = |f: &dyn Fn() -> Batch| {
        // A benchmark measures real time.
        #[allow(clippy::disallowed_methods)]
        let t = Instant::now();
        for _ in 0..rounds {
            std::hint::black_box(f());
        }
        t.elapsed().as_secs_f64() / f64::from(rounds)
    };
    let whole = || {
        let json = zstd::stream::decode_all(&body[..]).expect("zstd");
        serde_json::from_slice(&json).expect("json")
    };
    let streamed = || batch::decode(&body, "zstd").expect("decode");
    // Warm both, then alternate so that the machine's noise hits both alike.
    whole();
    streamed();
    let (mut w, mut s) = (0.0, 0.0);
    for _ in 0..3 {
        w += timed(&whole);
        s += timed(&streamed);
    }
    let per_sec = |t: f64| 3.0 * batch::ROLLUPS_PER_BATCH as f64 / t;
    println!(
        "batch of {} rollups, {} bytes compressed",
        batch::ROLLUPS_PER_BATCH,
        body.len()
    );
    println!(
        "decompress whole, then parse: {:>10.0} rollups/s",
        per_sec(w)
    );
    println!(
        "parse while decompressing:    {:>10.0} rollups/s",
        per_sec(s)
    );
    println!("streamed / whole time: {:.2}", s / w);
}
