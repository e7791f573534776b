//! Issue 12: what a hostile HTTP client can cost the collector is bounded. Decompression
//! bombs posted sixteen at once keep the collector's memory under half of its unit's
//! `MemoryMax`; connections that drip headers or bodies are cut off; past the connection
//! cap the collector stops accepting; rows for a series and window already stored are
//! counted as conflicts in `/metrics`.

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use vscout::config::{parse_thumbprint, TlsPolicy};
use vscout::perf::Rollup;
use vscout::ship::batch::{self, Batch, Record, BATCH_VERSION};
use vscout_e2e::collector::{client, health_batch, post, Collector};

/// Peak resident memory of a process, from /proc.
fn peak_rss_kib(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("VmHWM")
}

/// A valid batch prefix, then a string of `mib` MiB that never ends: a bomb that parses
/// as far as the cap lets it, compressed to a few kilobytes.
fn string_bomb(mib: usize) -> Result<Vec<u8>> {
    let mut enc = zstd::stream::Encoder::new(Vec::new(), 3)?;
    enc.write_all(
        br#"{"batch_version":1,"created_ms":0,"records":[{"health":{"schema_version":1,"last_error":""#,
    )?;
    let chunk = vec![b'A'; 1 << 20];
    for _ in 0..mib {
        enc.write_all(&chunk)?;
    }
    Ok(enc.finish()?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_decompression_bombs_at_once_leave_the_collector_small() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let col = Collector::start_dated(&dir.path().join("data"))?;
    let pid = col.pid().context("pid")?;
    let token = std::fs::read_to_string(&col.token_file)?.trim().to_owned();
    let http = client(&col, None)?;
    let bomb = string_bomb(300)?;
    assert!(bomb.len() < 1 << 20, "the bomb is small on the wire");
    let before = peak_rss_kib(pid)?;
    let mut posts = tokio::task::JoinSet::new();
    for i in 0..16 {
        let (http, body, token) = (http.clone(), bomb.clone(), token.clone());
        let url = col.url.clone();
        posts.spawn(async move {
            let r = http
                .post(format!("{url}/v1/ingest"))
                .header("content-encoding", "zstd")
                .header("idempotency-key", format!("bomber:{}", i + 1))
                .bearer_auth(token)
                .body(body)
                .send()
                .await?;
            let retry = r.headers().get("retry-after").is_some();
            anyhow::Ok((r.status().as_u16(), retry))
        });
    }
    let mut statuses = Vec::new();
    while let Some(r) = posts.join_next().await {
        statuses.push(r??);
    }
    let peak = peak_rss_kib(pid)?;
    eprintln!("collector peak RSS {before} KiB before, {peak} KiB after 16 bombs: {statuses:?}");
    for (status, retry) in &statuses {
        assert!(
            *status == 413 || (*status == 503 && *retry),
            "each bomb is refused as too large, or as busy with Retry-After: {statuses:?}"
        );
    }
    assert!(statuses.iter().any(|(s, _)| *s == 413), "{statuses:?}");
    // Before: 256 MiB decoded per bomb, no limit on concurrent ingests: 3.5 GB.
    assert!(
        peak < 512 * 1024,
        "peak RSS {peak} KiB: must stay under half of the unit's MemoryMax=1G"
    );
    assert_eq!(col.count("SELECT count(*) FROM batches")?, 0);
    // Still serving, and a real batch goes in.
    let r = post(
        &http,
        &col,
        Some(&token),
        Some("honest:1"),
        health_batch(BATCH_VERSION)?,
    )
    .await?;
    assert_eq!(r.status(), 200);
    let metrics = get_text(&http, &col, &token, "/metrics").await?;
    assert!(
        metric(&metrics, "vscout_collector_batches_total") == Some(1),
        "{metrics}"
    );
    Ok(())
}

async fn get_text(
    http: &reqwest::Client,
    col: &Collector,
    token: &str,
    path: &str,
) -> Result<String> {
    let r = http
        .get(format!("{}{path}", col.url))
        .bearer_auth(token)
        .send()
        .await?;
    anyhow::ensure!(r.status() == 200, "GET {path}: {}", r.status());
    Ok(r.text().await?)
}

/// The value of an unlabelled metric in Prometheus text.
fn metric(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// A TLS connection to the collector (its certificate pinned), no HTTP yet.
async fn tls_conn(
    col: &Collector,
) -> Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    let pin = parse_thumbprint(&col.thumbprint).map_err(anyhow::Error::msg)?;
    let config =
        vscout::tls::client_config(&TlsPolicy::Pinned { sha256: pin }, Default::default(), None)
            .map_err(anyhow::Error::msg)?;
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", col.port)).await?;
    let name = rustls::pki_types::ServerName::try_from("localhost")?;
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await?)
}

/// Writes `head` and then one byte of `drip` every 200 ms until the collector closes the
/// connection; how long it stayed open, or `None` if it outlived `limit`.
async fn drip(
    col: &Collector,
    head: String,
    drip: &'static [u8],
    limit: Duration,
) -> Result<Option<Duration>> {
    let start = Instant::now();
    let mut conn = tls_conn(col).await?;
    conn.write_all(head.as_bytes()).await?;
    let mut buf = [0u8; 4096];
    for byte in drip.iter().cycle() {
        if start.elapsed() > limit {
            return Ok(None);
        }
        if conn.write_all(std::slice::from_ref(byte)).await.is_err() {
            return Ok(Some(start.elapsed()));
        }
        // A closed connection reads EOF (or an error); a 408 answer comes first, then EOF.
        match tokio::time::timeout(Duration::from_millis(200), conn.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Ok(Some(start.elapsed())),
            Ok(Ok(_)) | Err(_) => {}
        }
    }
    Ok(None)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_that_drip_headers_or_bodies_are_cut_off() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("collector.toml");
    std::fs::write(
        &config,
        "header_read_timeout_secs = 2\nrequest_timeout_secs = 3\n",
    )?;
    let col = Arc::new(Collector::start_with(
        &dir.path().join("data"),
        0,
        Some(&config),
    )?);
    let token = std::fs::read_to_string(&col.token_file)?.trim().to_owned();
    // Generous: the timeouts are 2 and 3 s; before the fix all 40 were open at 120 s.
    let limit = Duration::from_secs(60);
    let mut conns = tokio::task::JoinSet::new();
    for i in 0..40 {
        let col = col.clone();
        let (head, body): (String, &'static [u8]) = match i % 4 {
            // Headers that never end.
            0 | 1 => ("POST /v1/ingest HTTP/1.1\r\nHost: collector\r\n".into(), b"X-Slow: aaaa\r\n"),
            // A body that never ends, without credentials and with them.
            2 => (
                "POST /v1/ingest HTTP/1.1\r\nHost: collector\r\nContent-Length: 1000000\r\n\r\n".into(),
                b"{",
            ),
            _ => (
                format!("POST /v1/ingest HTTP/1.1\r\nHost: collector\r\nAuthorization: Bearer {token}\r\nIdempotency-Key: slow:1\r\nContent-Length: 1000000\r\n\r\n"),
                b"{",
            ),
        };
        conns.spawn(async move { drip(&col, head, body, limit).await });
    }
    let mut open_for = Vec::new();
    while let Some(r) = conns.join_next().await {
        open_for.push(r??);
    }
    let cut: Vec<Duration> = open_for.iter().flatten().copied().collect();
    assert_eq!(
        cut.len(),
        40,
        "connections still open after {limit:?}: {open_for:?}"
    );
    eprintln!(
        "40 slow connections cut off after {:?} at most",
        cut.iter().max()
    );
    let http = client(&col, None)?;
    let metrics = get_text(&http, &col, &token, "/metrics").await?;
    // Ten authenticated body drips: those holding one of the four ingest permits are cut
    // off by the request timeout, the others are refused busy at once.
    let timed_out = metric(&metrics, "vscout_collector_requests_timed_out_total");
    let busy = metric(&metrics, "vscout_collector_ingests_refused_busy_total");
    assert!(timed_out >= Some(4), "{metrics}");
    assert_eq!(
        timed_out.zip(busy).map(|(t, b)| t + b),
        Some(10),
        "{metrics}"
    );
    assert_eq!(col.count("SELECT count(*) FROM batches")?, 0);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_connection_cap_the_collector_waits_for_a_slot() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("collector.toml");
    std::fs::write(
        &config,
        "max_connections = 2\nheader_read_timeout_secs = 3\n",
    )?;
    let col = Collector::start_with(&dir.path().join("data"), 0, Some(&config))?;
    let start = Instant::now();
    // Two idle connections take both slots until the header timeout closes them.
    let _a = tls_conn(&col).await?;
    let _b = tls_conn(&col).await?;
    let _c = tls_conn(&col).await?;
    let waited = start.elapsed();
    // Without the cap the third handshake completes at once; with it, only once the
    // first two are closed, 3 s after they opened. A lower bound: a slow machine only
    // makes it larger.
    assert!(
        waited >= Duration::from_secs(2),
        "the third connection was served after {waited:?}, before a slot was free"
    );
    Ok(())
}

#[tokio::test]
async fn a_row_for_a_stored_series_and_window_is_counted_as_a_conflict() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let col = Collector::start_dated(&dir.path().join("data"))?;
    let token = std::fs::read_to_string(&col.token_file)?.trim().to_owned();
    let http = client(&col, None)?;
    for (seq, mean) in [(1, 10.0), (2, 20.0)] {
        let body = batch::encode(&Batch {
            batch_version: BATCH_VERSION,
            created_ms: 0,
            records: vec![Record::Rollup(Rollup::example(
                "vm-1",
                "cpu.usage.average",
                mean,
            ))],
        })?;
        let key = format!("agent-c:{seq}");
        let r = post(&http, &col, Some(&token), Some(&key), body).await?;
        assert_eq!(r.status(), 200);
    }
    let metrics = get_text(&http, &col, &token, "/metrics").await?;
    assert_eq!(
        metric(&metrics, "vscout_collector_rows_conflicting_total"),
        Some(1),
        "{metrics}"
    );
    assert_eq!(
        metric(&metrics, "vscout_collector_batches_total"),
        Some(2),
        "{metrics}"
    );
    let mean: f64 = col
        .db()?
        .query_row("SELECT mean FROM rollups", [], |r| r.get(0))?;
    assert_eq!(mean, 10.0, "the stored row is kept");
    Ok(())
}

/// Retention at its defaults (35 days of windows): a window older than that, from an
/// agent back after a long outage, is acknowledged but not stored, and counted apart
/// from conflicts; a current one is stored.
#[tokio::test]
async fn a_window_older_than_retention_keeps_is_refused_and_counted() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let col = Collector::start(&dir.path().join("data"))?;
    let token = std::fs::read_to_string(&col.token_file)?.trim().to_owned();
    let http = client(&col, None)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs() as i64;
    let old = Rollup::example("vm-1", "cpu.usage.average", 10.0); // 2023-11-14
    let mut current = old.clone();
    current.window_start = now / 300 * 300 - 300;
    let body = batch::encode(&Batch {
        batch_version: BATCH_VERSION,
        created_ms: 0,
        records: vec![Record::Rollup(old), Record::Rollup(current)],
    })?;
    // The collector set retention's horizon before it said it was ready.
    let r = post(&http, &col, Some(&token), Some("agent-r:1"), body).await?;
    assert_eq!(r.status(), 200);
    let metrics = get_text(&http, &col, &token, "/metrics").await?;
    for (name, want) in [
        ("vscout_collector_windows_refused_expired_total", 1),
        ("vscout_collector_rows_conflicting_total", 0),
        ("vscout_collector_rollups", 1),
        ("vscout_collector_pruned_rollups_total", 0),
    ] {
        assert_eq!(metric(&metrics, name), Some(want), "{name}:\n{metrics}");
    }
    Ok(())
}
