//! Parser benchmark (`cargo bench -p vscout --bench parse`). The answer parsed is the file
//! named by `VSCOUT_PARSE_FILE` (the vcsim bench records a real 10,000-VM one), or else
//! one of `VSCOUT_BENCH_VMS` VMs (default 10,000) built by repeating the VMs of a real
//! vcsim answer (`src/vsphere/testdata/retrieve_vcsim.xml`) under new ids. It times, interleaved and best of 7, a bare quick-xml event scan of the bytes, vscout's
//! parse into objects, and parse + map + resolve into an inventory. It prints the ratios to
//! the scan; it asserts nothing.

use std::time::{Duration, Instant};

use vscout::vsphere::{About, ObjectContent};

const FIXTURE: &str = include_str!("../src/vsphere/testdata/retrieve_vcsim.xml");

fn synthetic_answer(vms: usize) -> String {
    let mut blocks = Vec::new();
    let mut pos = 0;
    while let Some(start) = FIXTURE[pos..].find("<objects>").map(|i| i + pos) {
        let end = FIXTURE[start..]
            .find("</objects>")
            .map(|i| i + start + "</objects>".len())
            .expect("closed");
        blocks.push(&FIXTURE[start..end]);
        pos = end;
    }
    let first = FIXTURE.find("<objects>").expect("objects");
    let last = FIXTURE.rfind("</objects>").expect("objects") + "</objects>".len();
    let (vm_blocks, other): (Vec<&str>, Vec<&str>) = blocks
        .iter()
        .partition(|b| b.contains(r#"<obj type="VirtualMachine">"#));
    let mut out = String::with_capacity(vms * 11_000);
    out.push_str(&FIXTURE[..first]);
    for b in &other {
        out.push_str(b);
    }
    for i in 0..vms {
        let b = vm_blocks[i % vm_blocks.len()];
        out.push_str(&b.replacen(
            r#"<obj type="VirtualMachine">vm-"#,
            &format!(r#"<obj type="VirtualMachine">vm-{i}-"#),
            1,
        ));
    }
    out.push_str(&FIXTURE[last..]);
    out
}

fn main() {
    let vms: usize = std::env::var("VSCOUT_BENCH_VMS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let (text, source) = match std::env::var_os("VSCOUT_PARSE_FILE") {
        Some(path) => {
            let text = std::fs::read_to_string(&path).expect("VSCOUT_PARSE_FILE is readable");
            (text, std::path::Path::new(&path).display().to_string())
        }
        None => (
            synthetic_answer(vms),
            format!("{vms} VMs built from the vcsim fixture"),
        ),
    };
    let bytes = text.as_bytes();
    let about = About {
        api_version: "6.5".into(),
        ..About::default()
    };

    let scan = || {
        let mut reader = quick_xml::Reader::from_reader(bytes);
        let mut buf = Vec::new();
        let mut events = 0u64;
        loop {
            match reader.read_event_into(&mut buf) {
                Ok(quick_xml::events::Event::Eof) => break,
                Ok(_) => events += 1,
                Err(e) => panic!("scan: {e}"),
            }
            buf.clear();
        }
        events
    };
    let parse = || {
        let mut objects = 0u64;
        vscout::vsphere::parse_retrieve_response(
            bytes,
            vscout::inventory::PRUNED_DEVICE_TYPES,
            |_: ObjectContent| {
                objects += 1;
                Ok(())
            },
        )
        .expect("parse");
        objects
    };
    let build = || {
        vscout::inventory::from_captured_answer(bytes, &about)
            .expect("inventory")
            .vms
            .len() as u64
    };

    // For profiling: `VSCOUT_BENCH_ONLY=parse perf record …` runs only the parser,
    // `…=build` only parse + map + resolve.
    match std::env::var("VSCOUT_BENCH_ONLY").as_deref() {
        Ok("parse") => {
            for _ in 0..7 {
                parse();
            }
            return;
        }
        Ok("build") => {
            for _ in 0..7 {
                build();
            }
            return;
        }
        _ => {}
    }
    let mut best = [Duration::MAX; 3];
    let mut counts = [0u64; 3];
    for _ in 0..7 {
        for (i, f) in [&scan as &dyn Fn() -> u64, &parse, &build]
            .iter()
            .enumerate()
        {
            // A benchmark measures real time.
            #[allow(clippy::disallowed_methods)]
            let t = Instant::now();
            counts[i] = f();
            best[i] = best[i].min(t.elapsed());
        }
    }
    let mb = bytes.len() as f64 / 1e6;
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!("answer: {source}, {mb:.1} MB");
    println!(
        "bare quick-xml scan   : {:>7.1} ms ({:.0} MB/s, {} events)",
        ms(best[0]),
        mb / best[0].as_secs_f64(),
        counts[0]
    );
    println!(
        "vscout parse          : {:>7.1} ms ({} objects) = {:.2}x the scan",
        ms(best[1]),
        counts[1],
        ms(best[1]) / ms(best[0])
    );
    println!(
        "parse + map + resolve : {:>7.1} ms ({} VMs) = {:.2}x the scan",
        ms(best[2]),
        counts[2],
        ms(best[2]) / ms(best[0])
    );
}
