//! Logging set-up. Logs go to stderr through `tracing`; under systemd (`JOURNAL_STREAM`
//! set) timestamps are left out because journald adds its own. `RUST_LOG` filters
//! (default `info`).

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Installs the global subscriber. Safe to call once per process.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let under_journald = std::env::var_os("JOURNAL_STREAM").is_some();
    // Colours only for a person at a terminal: log files and pipes get plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false);
    let result = match (format, under_journald) {
        (LogFormat::Json, _) => builder.json().finish().with(ErrorCounter).try_init(),
        (LogFormat::Text, true) => builder
            .without_time()
            .with_ansi(false)
            .finish()
            .with(ErrorCounter)
            .try_init(),
        (LogFormat::Text, false) => builder.finish().with(ErrorCounter).try_init(),
    };
    let _ = result; // already initialised (tests): keep the first
}

static ERRORS: AtomicU64 = AtomicU64::new(0);
static LAST_ERROR: Mutex<Option<String>> = Mutex::new(None);

/// Error events logged since start (they go into the agent's health record).
pub fn error_count() -> u64 {
    ERRORS.load(Ordering::Relaxed)
}

/// The message of the last error event.
pub fn last_error() -> Option<String> {
    LAST_ERROR.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// Counts ERROR events and keeps the last one's message and fields.
struct ErrorCounter;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for ErrorCounter {
    fn on_event(
        &self,
        event: &tracing::Event<'_>,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        if *event.metadata().level() != tracing::Level::ERROR {
            return;
        }
        ERRORS.fetch_add(1, Ordering::Relaxed);
        let mut text = String::new();
        event.record(
            &mut |field: &tracing::field::Field, value: &dyn std::fmt::Debug| {
                use std::fmt::Write;
                if field.name() == "message" {
                    let _ = write!(text, "{value:?}");
                } else {
                    let _ = write!(text, " {}={value:?}", field.name());
                }
            },
        );
        text.truncate(500);
        *LAST_ERROR.lock().unwrap_or_else(|e| e.into_inner()) = Some(text);
    }
}

/// An error and its sources, outermost first (reqwest and hyper put the useful part, such
/// as "connection refused" or a certificate problem, in the innermost).
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> Vec<String> {
    let mut out = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(s) = cur {
        out.push(s.to_string());
        cur = s.source();
    }
    out
}

/// Wall-clock time, Unix milliseconds.
pub fn unix_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// This process's CPU time (user + system) and peak resident set size, from `/proc/self`.
/// Linux only; `None` elsewhere or if `/proc` is not mounted.
pub fn resource_usage() -> Option<ResourceUsage> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may contain spaces) start after the last ')'.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of stat(5); `rest` starts at field 3.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    // /proc reports clock ticks in USER_HZ, which is 100 on every Linux ABI.
    let cpu_ms = (utime + stime) * 10;
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let peak_rss_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())?;
    Some(ResourceUsage {
        cpu_ms,
        peak_rss_kib,
    })
}

/// What [`resource_usage`] measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResourceUsage {
    pub cpu_ms: u64,
    pub peak_rss_kib: u64,
}
