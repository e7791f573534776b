//! The reference collector's binary. It receives, stores and serves what agents send;
//! the ingest API, SQLite storage and TLS arrive with issue 4. Until then it only says so.

fn main() {
    println!(
        "vscout-collector {}: not implemented yet (see issue 4)",
        env!("CARGO_PKG_VERSION")
    );
    std::process::exit(69); // EX_UNAVAILABLE: nothing can be served yet.
}
