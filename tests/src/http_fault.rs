//! A loopback HTTPS fault layer in front of the collector. Real links and collectors fail
//! in ways the reference collector never does on its own, so this proxy makes them
//! happen: 500s, 429s with `Retry-After`, connections reset before the request is
//! forwarded or after the collector stored it (the agent never sees the answer), and slow
//! answers. Each request gets one connection (`Connection: close`), which keeps the
//! HTTP/1.1 handling here small. Given several collectors it is also the load balancer
//! in front of them, round robin.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

use crate::proxy::read_request;
use crate::Certs;

/// What the proxy did, by kind.
#[derive(Debug, Default)]
pub struct FaultCounts {
    pub forwarded: AtomicU64,
    pub errors_500: AtomicU64,
    pub throttled_429: AtomicU64,
    pub reset_before: AtomicU64,
    pub reset_after: AtomicU64,
    pub slow: AtomicU64,
    /// Requests forwarded to each upstream, in the order given.
    pub per_upstream: Vec<AtomicU64>,
}

impl FaultCounts {
    pub fn summary(&self) -> String {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        format!(
            "forwarded={} 500={} 429={} reset_before={} reset_after={} slow={}",
            g(&self.forwarded),
            g(&self.errors_500),
            g(&self.throttled_429),
            g(&self.reset_before),
            g(&self.reset_after),
            g(&self.slow)
        )
    }
}

/// The running proxy; stops when dropped.
#[derive(Debug)]
pub struct FaultProxy {
    pub url: String,
    faults: Arc<AtomicBool>,
    /// Requests still to be refused with a 422 (a permanent rejection).
    reject: Arc<AtomicU64>,
    pub counts: Arc<FaultCounts>,
    _rt: tokio::runtime::Runtime,
}

#[derive(Debug)]
struct Upstream {
    http: reqwest::Client,
    base: String,
}

/// The collectors behind the proxy and whose turn it is.
#[derive(Debug)]
struct Upstreams {
    all: Vec<Upstream>,
    next: AtomicU64,
}

impl FaultProxy {
    /// Listens on a free loopback port with `certs`' server certificate and forwards to
    /// `upstream` (the collector, pinned by `upstream_thumbprint`). Faults start enabled.
    pub fn start(certs: &Certs, upstream: &str, upstream_thumbprint: &str) -> Result<Self> {
        Self::start_balanced(certs, &[(upstream, upstream_thumbprint)])
    }

    /// As `start`, in front of several collectors (URL and thumbprint each), taking turns.
    pub fn start_balanced(certs: &Certs, upstreams: &[(&str, &str)]) -> Result<Self> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?;
        let acceptor = certs.tls_acceptor()?;
        let mut all = Vec::new();
        for (url, thumbprint) in upstreams {
            let pin = vscout::config::parse_thumbprint(thumbprint).map_err(anyhow::Error::msg)?;
            let tls = vscout::tls::client_config(
                &vscout::config::TlsPolicy::Pinned { sha256: pin },
                Default::default(),
                None,
            )
            .map_err(anyhow::Error::msg)?;
            let http = reqwest::Client::builder()
                .tls_backend_preconfigured(tls)
                .timeout(Duration::from_secs(30))
                .no_proxy()
                .build()?;
            all.push(Upstream {
                http,
                base: url.trim_end_matches('/').to_owned(),
            });
        }
        let upstream = Arc::new(Upstreams {
            all,
            next: AtomicU64::new(0),
        });
        let listener = rt.block_on(TcpListener::bind("127.0.0.1:0"))?;
        let url = format!("https://127.0.0.1:{}", listener.local_addr()?.port());
        let faults = Arc::new(AtomicBool::new(true));
        let counts = Arc::new(FaultCounts {
            per_upstream: upstreams.iter().map(|_| AtomicU64::new(0)).collect(),
            ..FaultCounts::default()
        });
        let reject = Arc::new(AtomicU64::new(0));
        let (f, c, r) = (faults.clone(), counts.clone(), reject.clone());
        rt.spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, upstream, f, c, r) = (
                    acceptor.clone(),
                    upstream.clone(),
                    f.clone(),
                    c.clone(),
                    r.clone(),
                );
                tokio::spawn(async move {
                    let _ = handle(tcp, acceptor, &upstream, &f, &c, &r).await;
                });
            }
        });
        Ok(Self {
            url,
            faults,
            reject,
            counts,
            _rt: rt,
        })
    }

    /// Refuses the next `n` requests for good (422), as a collector does with a record it
    /// will never accept.
    pub fn reject_next(&self, n: u64) {
        self.reject.store(n, Ordering::Relaxed);
    }

    /// Turns fault injection on or off (off: every request is forwarded at once).
    pub fn set_faults(&self, on: bool) {
        self.faults.store(on, Ordering::Relaxed);
    }
}

async fn respond(
    s: &mut tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
    status: u16,
    extra: &[(&str, String)],
    body: &[u8],
) -> Result<()> {
    let mut head = format!(
        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
        body.len()
    );
    for (k, v) in extra {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).await?;
    s.write_all(body).await?;
    s.shutdown().await?;
    Ok(())
}

/// Drops the connection with a TCP reset and no answer.
// A zero linger does not block on drop (it is the blocking of a non-zero linger that got
// `set_linger` deprecated): the kernel sends RST at once.
#[allow(deprecated)]
fn reset(s: tokio_rustls::server::TlsStream<tokio::net::TcpStream>) {
    let _ = s.get_ref().0.set_linger(Some(Duration::ZERO));
    drop(s);
}

async fn handle(
    tcp: tokio::net::TcpStream,
    acceptor: tokio_rustls::TlsAcceptor,
    ups: &Upstreams,
    faults: &AtomicBool,
    c: &FaultCounts,
    reject: &AtomicU64,
) -> Result<()> {
    let mut s = acceptor.accept(tcp).await?;
    let req = read_request(&mut s, &mut Vec::new())
        .await?
        .context("connection closed before a whole request")?;
    if reject
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
        .is_ok()
    {
        return respond(
            &mut s,
            422,
            &[],
            br#"{"error":"injected rejection: this record is refused"}"#,
        )
        .await;
    }
    let roll = if faults.load(Ordering::Relaxed) {
        fastrand::u32(0..100)
    } else {
        100
    };
    match roll {
        0..=14 => {
            c.errors_500.fetch_add(1, Ordering::Relaxed);
            return respond(&mut s, 500, &[], br#"{"error":"injected"}"#).await;
        }
        15..=24 => {
            c.throttled_429.fetch_add(1, Ordering::Relaxed);
            return respond(
                &mut s,
                429,
                &[("retry-after", "1".into())],
                br#"{"error":"slow down"}"#,
            )
            .await;
        }
        25..=32 => {
            c.reset_before.fetch_add(1, Ordering::Relaxed);
            reset(s);
            return Ok(());
        }
        33..=44 => {
            c.slow.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(fastrand::u64(300..3000))).await;
        }
        _ => {}
    }
    let turn = (ups.next.fetch_add(1, Ordering::Relaxed) % ups.all.len() as u64) as usize;
    let up = &ups.all[turn];
    let method = reqwest::Method::from_bytes(req.method.as_bytes())?;
    let mut fwd = up
        .http
        .request(method, format!("{}{}", up.base, req.path))
        .body(req.body);
    for (k, v) in &req.headers {
        if matches!(
            k.as_str(),
            "authorization"
                | "idempotency-key"
                | "content-encoding"
                | "content-type"
                | "x-vscout-agent-id"
                | "x-vscout-agent-version"
        ) {
            fwd = fwd.header(k.as_str(), v.as_str());
        }
    }
    let resp = fwd.send().await?;
    c.forwarded.fetch_add(1, Ordering::Relaxed);
    c.per_upstream[turn].fetch_add(1, Ordering::Relaxed);
    if (45..=54).contains(&roll) {
        // The collector stored it; the agent never hears so.
        c.reset_after.fetch_add(1, Ordering::Relaxed);
        reset(s);
        return Ok(());
    }
    let status = resp.status().as_u16();
    let mut extra = Vec::new();
    for h in ["retry-after", "x-vscout-duplicate"] {
        if let Some(v) = resp.headers().get(h).and_then(|v| v.to_str().ok()) {
            extra.push((h, v.to_owned()));
        }
    }
    let body = resp.bytes().await?;
    respond(&mut s, status, &extra, &body).await
}
