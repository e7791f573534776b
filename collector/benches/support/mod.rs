//! What the collector's benches share: CPU time as Linux counts it, and a generator.

/// CPU seconds (user and system) from a `/proc` stat file: `/proc/self/stat` for the
/// process, `/proc/thread-self/stat` for the calling thread.
pub(crate) fn cpu_secs(stat_file: &str) -> f64 {
    let stat = std::fs::read_to_string(stat_file).unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, a)| a);
    let f: Vec<u64> = after
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    // Fields 14 and 15 (utime, stime) are the 12th and 13th after the command name;
    // clock ticks are 100 a second on Linux.
    (f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0)) as f64 / 100.0
}

/// A small deterministic generator (xorshift): the same estate every run.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    /// The next number in `[0, 1)`.
    pub(crate) fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// CPU seconds of every PostgreSQL process on the machine (the bench's throwaway server):
/// each one's own, and what the postmaster counted of the children it reaped (backends
/// and autovacuum workers that exited).
#[allow(dead_code)]
pub(crate) fn postgres_cpu_secs() -> f64 {
    let mut total = 0.0;
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let stat = entry.path().join("stat");
        let Ok(text) = std::fs::read_to_string(&stat) else {
            continue;
        };
        if !text.contains("(postgres)") {
            continue;
        }
        total += cpu_secs(&stat.to_string_lossy());
        let after = text.rsplit_once(')').map_or("", |(_, a)| a);
        let f: Vec<u64> = after
            .split_whitespace()
            .map(|x| x.parse().unwrap_or(0))
            .collect();
        // cutime and cstime: fields 16 and 17.
        total += (f.get(13).copied().unwrap_or(0) + f.get(14).copied().unwrap_or(0)) as f64 / 100.0;
    }
    total
}
