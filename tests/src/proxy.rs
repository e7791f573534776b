//! A loopback fault layer in front of vcsim, for what vcsim lacks and real vCenter does:
//!
//! - **Paging.** vcsim ignores `maxObjects` and has no ContinueRetrievePropertiesEx. The
//!   proxy splits a RetrievePropertiesEx answer into pages of `page_size` objects, returns
//!   the first with a token, and serves the rest on ContinueRetrievePropertiesEx.
//! - **SOAP NotAuthenticated faults.** Real vCenter answers a dead session with an HTTP 500
//!   `NotAuthenticated` fault (vcsim uses a `missingSet`); `fail_next_retrieve` injects one.
//!
//! - **Lost connections.** `reset_retrieves` closes the connection on that many coming
//!   inventory retrievals (RetrievePropertiesEx over a ContainerView) without an answer, as a load balancer or a vCenter
//!   restart does (vcsim never drops a connection).
//!
//! - **Hostile answers.** `endless_perf` answers QueryPerf, and `endless_text` inventory
//!   retrievals, with a body that never ends (a text node that never closes, for the
//!   latter), to measure what the agent holds before it gives up.
//!
//! It terminates TLS with the test certificate (so the agent pins the same thumbprint) and
//! forwards to vcsim over HTTPS trusting the test CA. HTTP/1.1 with keep-alive, by hand:
//! only what vscout's client sends.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::Certs;

/// Counters and switches shared with the test.
#[derive(Debug, Default)]
pub struct ProxyState {
    pub retrieves: AtomicU64,
    pub continues: AtomicU64,
    pub cancels: AtomicU64,
    pub logins: AtomicU64,
    pub views_created: AtomicU64,
    pub views_destroyed: AtomicU64,
    pub injected_faults: AtomicU64,
    /// This many coming inventory retrievals (RetrievePropertiesEx over a ContainerView)
    /// have their connection closed without an answer.
    pub reset_retrieves: AtomicU64,
    /// Connections closed that way.
    pub resets: AtomicU64,
    /// QueryPerf answers never end.
    pub endless_perf: AtomicBool,
    /// Inventory retrievals are answered with a text node that never ends.
    pub endless_text: AtomicBool,
    /// Bytes written in endless answers before the agent hung up.
    pub endless_bytes: AtomicU64,
    /// When set, the next RetrievePropertiesEx gets a NotAuthenticated SOAP fault.
    pub fail_next_retrieve: AtomicBool,
    /// When non-zero, a QueryPerf with more query specs than this gets the
    /// RestrictedByAdministrator fault that vCenter sends for requests over its limits.
    pub max_perf_specs: AtomicUsize,
    pub perf_queries: AtomicU64,
    /// Bodies of the QueryPerf requests seen, for tests that check what was asked.
    pub perf_bodies: Mutex<Vec<String>>,
    pub perf_refusals: AtomicU64,
    /// When set, HasUserPrivilegeOnEntities answers that this privilege is not granted
    /// (vcsim grants everything; real vCenter does not).
    pub deny_privilege: Mutex<Option<String>>,
    /// When set, the raw upstream answer of each RetrievePropertiesEx that returns VMs is
    /// saved here (for benchmarks and test fixtures).
    pub record_to: Mutex<Option<std::path::PathBuf>>,
    pages: Mutex<HashMap<String, Vec<String>>>,
    next_token: AtomicU64,
}

/// A running proxy.
#[derive(Debug)]
pub struct Proxy {
    pub url: String,
    pub state: Arc<ProxyState>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Proxy {
    /// Starts a proxy to `upstream` (vcsim's URL) that pages answers by `page_size`.
    pub async fn start(upstream: &str, certs: &Certs, page_size: usize) -> Result<Self> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let acceptor = certs.tls_acceptor()?;

        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_file_iter(&certs.ca_pem)? {
            roots.add(c?)?;
        }
        let client_cfg = rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(client_cfg)
            .no_proxy()
            .build()?;

        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let state = Arc::new(ProxyState::default());
        let st = state.clone();
        let upstream = upstream.to_owned();
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                let http = http.clone();
                let st = st.clone();
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    if let Ok(tls) = acceptor.accept(tcp).await {
                        let _ = serve(tls, &http, &upstream, &st, page_size).await;
                    }
                });
            }
        });
        Ok(Self {
            url: format!("https://127.0.0.1:{port}/sdk"),
            state,
            task,
        })
    }
}

/// One HTTP/1.1 request (the fault layers of this crate share the parsing).
pub(crate) struct Request {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// Reads the next request from `s` (`buf` keeps what was read past it, for keep-alive);
/// `None` when the connection closes.
pub(crate) async fn read_request<S: AsyncReadExt + Unpin>(
    s: &mut S,
    buf: &mut Vec<u8>,
) -> Result<Option<Request>> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            let mut lines = head.split("\r\n");
            let mut request_line = lines.next().context("request line")?.split(' ');
            let method = request_line.next().unwrap_or("GET").to_owned();
            let path = request_line.next().unwrap_or("/").to_owned();
            let headers: Vec<(String, String)> = lines
                .filter_map(|l| l.split_once(':'))
                .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
                .collect();
            let len: usize = headers
                .iter()
                .find(|(k, _)| k == "content-length")
                .and_then(|(_, v)| v.parse().ok())
                .unwrap_or(0);
            while buf.len() < end + 4 + len {
                let mut chunk = [0u8; 65536];
                let n = s.read(&mut chunk).await?;
                if n == 0 {
                    return Ok(None);
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            let body = buf[end + 4..end + 4 + len].to_vec();
            buf.drain(..end + 4 + len);
            return Ok(Some(Request {
                method,
                path,
                headers,
                body,
            }));
        }
        anyhow::ensure!(buf.len() < 64 * 1024, "request head too large");
        let mut chunk = [0u8; 65536];
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

async fn serve<S: AsyncReadExt + AsyncWriteExt + Unpin>(
    mut s: S,
    http: &reqwest::Client,
    upstream: &str,
    st: &ProxyState,
    page_size: usize,
) -> Result<()> {
    let mut buf = Vec::new();
    while let Some(req) = read_request(&mut s, &mut buf).await? {
        let body = String::from_utf8_lossy(&req.body).into_owned();
        if body.contains("<RetrievePropertiesEx")
            && body.contains("<type>ContainerView</type>")
            && st
                .reset_retrieves
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
        {
            st.resets.fetch_add(1, Ordering::SeqCst);
            return Ok(());
        }
        let endless = if body.contains("<QueryPerf") && st.endless_perf.load(Ordering::SeqCst) {
            Some((
                "<QueryPerfResponse xmlns=\"urn:vim25\"><returnval>",
                "<value>12345</value>",
            ))
        } else if body.contains("<type>ContainerView</type>")
            && st.endless_text.load(Ordering::SeqCst)
        {
            Some(("<RetrievePropertiesExResponse xmlns=\"urn:vim25\"><returnval><objects><obj type=\"VirtualMachine\">vm-1</obj><propSet><name>config.annotation</name><val xsi:type=\"xsd:string\">", "AAAAAAAAAAAAAAAA"))
        } else {
            None
        };
        if let Some((open, unit)) = endless {
            // No Content-Length: the body ends when the connection does, which is when
            // the agent gives up (or after 2 GiB).
            let head = format!("HTTP/1.1 200 OK\r\nContent-Type: text/xml; charset=utf-8\r\nConnection: close\r\n\r\n<?xml version=\"1.0\" encoding=\"UTF-8\"?><soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"><soapenv:Body>{open}");
            s.write_all(head.as_bytes()).await?;
            let chunk = unit.repeat((1 << 20) / unit.len());
            for _ in 0..2048 {
                if s.write_all(chunk.as_bytes()).await.is_err() {
                    break;
                }
                st.endless_bytes
                    .fetch_add(chunk.len() as u64, Ordering::SeqCst);
            }
            return Ok(());
        }
        let (status, set_cookie, text) = if body.contains("<ContinueRetrievePropertiesEx") {
            st.continues.fetch_add(1, Ordering::SeqCst);
            let token = between(&body, "<token>", "</token>").unwrap_or_default();
            (200, None, next_page(st, &token))
        } else if body.contains("<CancelRetrievePropertiesEx") {
            st.cancels.fetch_add(1, Ordering::SeqCst);
            let token = between(&body, "<token>", "</token>").unwrap_or_default();
            st.pages.lock().expect("pages").remove(&token);
            (200, None, envelope("<CancelRetrievePropertiesExResponse xmlns=\"urn:vim25\"></CancelRetrievePropertiesExResponse>"))
        } else if body.contains("<QueryPerf") && too_many_specs(st, &body) {
            st.perf_refusals.fetch_add(1, Ordering::SeqCst);
            (500, None, restricted_fault())
        } else if body.contains("<RetrievePropertiesEx")
            && st.fail_next_retrieve.swap(false, Ordering::SeqCst)
        {
            st.injected_faults.fetch_add(1, Ordering::SeqCst);
            (500, None, not_authenticated_fault())
        } else {
            if body.contains("<Login") {
                st.logins.fetch_add(1, Ordering::SeqCst);
            }
            if body.contains("<CreateContainerView") {
                st.views_created.fetch_add(1, Ordering::SeqCst);
            }
            if body.contains("<DestroyView") {
                st.views_destroyed.fetch_add(1, Ordering::SeqCst);
            }
            let mut url = reqwest::Url::parse(upstream)?;
            url.set_path(&req.path);
            let mut fwd = if req.body.is_empty() {
                http.get(url)
            } else {
                http.post(url).body(req.body.clone())
            };
            for (k, v) in &req.headers {
                if k == "cookie" || k == "soapaction" || k == "content-type" {
                    fwd = fwd.header(k.as_str(), v.as_str());
                }
            }
            let resp = fwd.send().await?;
            let status = resp.status().as_u16();
            let cookie = resp
                .headers()
                .get("set-cookie")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let mut text = resp.text().await?;
            if body.contains("<RetrievePropertiesEx") && status == 200 {
                st.retrieves.fetch_add(1, Ordering::SeqCst);
                let record = st.record_to.lock().expect("record").clone();
                if let Some(path) = record {
                    if text.contains(r#"<obj type="VirtualMachine">"#) {
                        std::fs::write(path, &text)?;
                    }
                }
                text = paginate(st, &text, page_size);
            }
            if body.contains("<HasUserPrivilegeOnEntities") {
                if let Some(p) = st.deny_privilege.lock().expect("deny").as_deref() {
                    text = text.replace(
                        &format!("<privId>{p}</privId><isGranted>true</isGranted>"),
                        &format!("<privId>{p}</privId><isGranted>false</isGranted>"),
                    );
                }
            }
            (status, cookie, text)
        };
        let mut head = format!(
            "HTTP/1.1 {status} {}\r\nContent-Type: text/xml; charset=utf-8\r\nContent-Length: {}\r\n",
            if status == 200 { "OK" } else { "Internal Server Error" },
            text.len()
        );
        if let Some(c) = set_cookie {
            head.push_str(&format!("Set-Cookie: {c}\r\n"));
        }
        head.push_str("\r\n");
        s.write_all(head.as_bytes()).await?;
        s.write_all(text.as_bytes()).await?;
        s.flush().await?;
    }
    Ok(())
}

fn between(s: &str, a: &str, b: &str) -> Option<String> {
    let start = s.find(a)? + a.len();
    let end = s[start..].find(b)? + start;
    Some(s[start..end].to_owned())
}

fn envelope(body: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>{body}</soapenv:Body></soapenv:Envelope>"#
    )
}

fn too_many_specs(st: &ProxyState, body: &str) -> bool {
    st.perf_queries.fetch_add(1, Ordering::SeqCst);
    st.perf_bodies.lock().expect("bodies").push(body.to_owned());
    let max = st.max_perf_specs.load(Ordering::SeqCst);
    max > 0 && body.matches("<querySpec>").count() > max
}

fn restricted_fault() -> String {
    envelope(
        r#"<soapenv:Fault><faultcode>ServerFaultCode</faultcode><faultstring>Request exceeds the administrator's limits.</faultstring><detail><RestrictedByAdministratorFault xmlns="urn:vim25" xsi:type="RestrictedByAdministrator"><details>config.vpxd.stats.maxQueryMetrics</details></RestrictedByAdministratorFault></detail></soapenv:Fault>"#,
    )
}

fn not_authenticated_fault() -> String {
    envelope(
        r#"<soapenv:Fault><faultcode>ServerFaultCode</faultcode><faultstring>The session is not authenticated.</faultstring><detail><NotAuthenticatedFault xmlns="urn:vim25" xsi:type="NotAuthenticated"><object type="PropertyCollector">propertyCollector</object><privilegeId>System.View</privilegeId></NotAuthenticatedFault></detail></soapenv:Fault>"#,
    )
}

/// Splits the `<objects>` of a RetrievePropertiesEx answer into pages.
fn paginate(st: &ProxyState, text: &str, page_size: usize) -> String {
    let mut spans = Vec::new();
    let mut pos = 0;
    while let Some(start) = text[pos..].find("<objects>").map(|i| i + pos) {
        let Some(end) = text[start..]
            .find("</objects>")
            .map(|i| i + start + "</objects>".len())
        else {
            break;
        };
        spans.push((start, end));
        pos = end;
    }
    if spans.len() <= page_size || page_size == 0 {
        return text.to_owned();
    }
    let prefix = &text[..spans[0].0];
    let suffix = &text[spans[spans.len() - 1].1..];
    let mut pages: Vec<String> = spans
        .chunks(page_size)
        .map(|c| c.iter().map(|(a, b)| &text[*a..*b]).collect())
        .collect();
    let first = pages.remove(0);
    let token = format!("tok-{}", st.next_token.fetch_add(1, Ordering::SeqCst));
    let cont_prefix = prefix.replace(
        "RetrievePropertiesExResponse",
        "ContinueRetrievePropertiesExResponse",
    );
    let cont_suffix = suffix.replace(
        "RetrievePropertiesExResponse",
        "ContinueRetrievePropertiesExResponse",
    );
    // Store the remaining pages fully formed; each but the last carries the same token.
    let n = pages.len();
    let stored: Vec<String> = pages
        .into_iter()
        .enumerate()
        .map(|(i, objs)| {
            let tok = if i + 1 < n {
                format!("<token>{token}</token>")
            } else {
                String::new()
            };
            format!("{cont_prefix}{tok}{objs}{cont_suffix}")
        })
        .collect();
    st.pages
        .lock()
        .expect("pages")
        .insert(token.clone(), stored.into_iter().rev().collect());
    format!("{prefix}<token>{token}</token>{first}{suffix}")
}

fn next_page(st: &ProxyState, token: &str) -> String {
    let mut pages = st.pages.lock().expect("pages");
    let page = pages.get_mut(token).and_then(Vec::pop);
    if pages.get(token).is_some_and(Vec::is_empty) {
        pages.remove(token);
    }
    page.unwrap_or_else(|| {
        envelope(r#"<soapenv:Fault><faultcode>ServerFaultCode</faultcode><faultstring>invalid token</faultstring><detail><InvalidArgumentFault xsi:type="InvalidArgument"><invalidProperty>token</invalidProperty></InvalidArgumentFault></detail></soapenv:Fault>"#)
    })
}
