//! Decoding a batch as the collector does (JSON parsed while zstd decompresses, bounded)
//! against the earlier way (decompress whole, then parse the bytes): the ratio of the two
//! in one run, on a batch of 5,000 rollups like the agent's.
//! Run: `cargo bench -p vscout-collector --bench ingest`.

use std::time::Instant;

use vscout::perf::{Rollup, WindowStats};
use vscout::ship::batch::{self, Batch, RollupSetBuilder, BATCH_VERSION};
use vscout::ship::Record;

fn main() {
    let mut set = RollupSetBuilder::default();
    for i in 0..batch::ROLLUPS_PER_BATCH {
        let v = i as f64;
        set.push(Rollup {
            schema_version: vscout::perf::ROLLUP_SCHEMA_VERSION,
            vcenter: "vc".into(),
            entity_type: "VirtualMachine".into(),
            entity_id: format!("vm-{}", i / 13).into(),
            counter: format!("group{}.counter.average", i % 13).into(),
            instance: "".into(),
            unit: "percent".into(),
            stats_type: "rate".into(),
            window_start: 1_700_000_000,
            window_secs: 300,
            expected_samples: 15,
            missing_samples: 0,
            stats: Some(WindowStats {
                count: 15,
                min: v * 0.37,
                max: v * 1.91,
                mean: v * 1.13,
                p50: v * 1.07,
                p95: v * 1.77,
                p99: v * 1.89,
            }),
        });
    }
    let body = batch::encode(&Batch {
        batch_version: BATCH_VERSION,
        created_ms: 0,
        records: vec![Record::Rollups(set.take())],
    })
    .expect("encode");
    let rounds = 60;
    let timed = |f: &dyn Fn() -> Batch| {
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
