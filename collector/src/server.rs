//! The HTTPS API: a rustls accept loop feeding hyper connections to an axum router. The
//! accept loop is ours (not a wrapper crate's) so that each connection's verified client
//! certificate reaches the handlers as a request extension.
//!
//! Routes: `GET /v1/health` (no auth); with auth: `POST /v1/ingest`, `GET /v1/vcenters`,
//! `GET /v1/vms`, `GET /v1/{hosts,clusters,datastores}`, `GET /v1/{kind}/{id}/metrics`
//! (window rollups), `GET /v1/{kind}/{id}/daily` (daily sketches merged over a range of
//! days), `GET /v1/agents` (the caller's own agents, or all for an operator),
//! `GET /v1/stats`, `GET /metrics` (Prometheus text), `GET /v1/assessment` and
//! `GET /v1/vms/{id}/assessment` (`assessment.rs`), `GET /v1/export.xlsx`,
//! `/v1/export.csv` and `/v1/export` (`export.rs`). An unknown entity is a 404. The
//! pages people read (`/`, `/vms`, `/vm`, `/assessment`, `/hosts`, `/clusters`,
//! `/datastores`, `/login`, `/logout`) are `crate::web`'s, merged into the same router.
//! `identify` turns a request's credentials into a `Principal` for both: a client
//! certificate, an agent's or a viewer's bearer token, or a page session's cookie; only
//! an agent's send batches.
//!
//! What a hostile client can cost is bounded here: connections (a cap on accept), time
//! (a header-read timeout that is also the idle timeout, and a per-request timeout that
//! cuts off dripped bodies), and memory (at most `max_concurrent_ingests` batches decoded
//! at once, each bounded by the decoded-size cap; past it a 503 with `Retry-After`
//! before the body is read).

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use bytes::Bytes;
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::json;
use tokio::net::TcpListener;
use tower::ServiceExt;
use tracing::{debug, info, warn};
use vscout_wire::batch::{self, DecodeError};

mod assessment;
mod export;

use crate::assess::settings::Setup;
use crate::auth;
use crate::export::Format;
use crate::store::{
    DailyQuery, EntityFilter, EntityKind, MetricsQuery, MetricsRow, Principal, Role, Storage,
    StoreError, VmFilter,
};

/// What the handlers share.
#[derive(Debug, Clone)]
pub struct AppState {
    pub store: Arc<dyn Storage>,
    /// One permit per batch being read, decoded and stored.
    pub ingests: Arc<tokio::sync::Semaphore>,
    /// Principals (`token:NAME`, `cert:SHA256`) that may list every agent.
    pub operators: Arc<Vec<String>>,
    pub counters: Arc<ServerCounters>,
    /// The catalog and the assessment's defaults.
    pub assessment: Arc<Setup>,
    /// The pages' sessions, log-in limits and the estate's cached figures.
    pub web: Arc<crate::web::WebState>,
}

impl AppState {
    pub fn new(
        store: Arc<dyn Storage>,
        max_concurrent_ingests: usize,
        operators: Vec<String>,
        assessment: Arc<Setup>,
        session_ttl: Duration,
    ) -> Self {
        Self {
            assessment,
            web: Arc::new(crate::web::WebState::new(session_ttl)),
            store,
            ingests: Arc::new(tokio::sync::Semaphore::new(max_concurrent_ingests)),
            operators: Arc::new(operators),
            counters: Arc::default(),
        }
    }
}

/// What the server itself counts (the store counts what it stored), for `/metrics`.
#[derive(Debug, Default)]
pub struct ServerCounters {
    /// Ingests answered 503 because `max_concurrent_ingests` were running.
    pub ingests_refused_busy: AtomicU64,
    /// Ingests refused with 403: another principal owns the agent id.
    pub ingests_refused_owner: AtomicU64,
    /// Requests cut off by `request_timeout`.
    pub requests_timed_out: AtomicU64,
    /// Connections accepted, and open now.
    pub connections_accepted: AtomicU64,
    pub connections_open: AtomicU64,
}

/// Per connection: the verified client certificate's thumbprint, if one was presented,
/// and the client's address (failed log-ins are limited and logged by it).
#[derive(Debug, Clone)]
pub(crate) struct ConnInfo {
    pub(crate) client_cert: Option<String>,
    pub(crate) peer: std::net::SocketAddr,
}

/// An error answer: a status and a message for the agent's log.
#[derive(Debug)]
pub struct ApiError(pub(crate) StatusCode, pub(crate) String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

impl From<StoreError> for ApiError {
    /// What may pass (a locked or full disk) is a 503 the agent retries; the rest says
    /// what is wrong with the request.
    fn from(e: StoreError) -> Self {
        if e.is_retryable() {
            warn!(error = %e, "storage error");
            return ApiError(StatusCode::SERVICE_UNAVAILABLE, e.to_string());
        }
        let status = match e {
            StoreError::AgentOwned { .. } => StatusCode::FORBIDDEN,
            _ => StatusCode::CONFLICT,
        };
        ApiError(status, e.to_string())
    }
}

pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
}

/// The router, with `max_body_bytes` as the request body limit (413 beyond it).
pub fn router(state: AppState, max_body_bytes: usize) -> Router {
    let ingest_route =
        post(ingest).route_layer(middleware::from_fn_with_state(state.clone(), ingest_permit));
    let api = Router::new()
        .route("/v1/ingest", ingest_route)
        .route("/v1/vcenters", get(vcenters))
        .route("/v1/vms", get(vms))
        .route("/v1/assessment", get(assessment::estate))
        .route("/v1/vms/{id}/assessment", get(assessment::one_vm))
        .route("/v1/export", get(export::any))
        .route("/v1/export.xlsx", export::named(Format::Xlsx))
        .route("/v1/export.csv", export::named(Format::AzureMigrateCsv))
        .route("/v1/{kind}", get(entities))
        .route("/v1/{kind}/{id}/metrics", get(metrics))
        .route("/v1/{kind}/{id}/daily", get(daily))
        .route("/v1/agents", get(agents))
        .route("/v1/stats", get(stats))
        .route("/metrics", get(prometheus))
        .route_layer(middleware::from_fn_with_state(state.clone(), authenticate))
        .layer(DefaultBodyLimit::max(max_body_bytes));
    Router::new()
        .route(
            "/v1/health",
            get(|| async { Json(json!({ "status": "ok" })) }),
        )
        .merge(api)
        .merge(crate::web::routes(state.clone()))
        .with_state(state)
}

/// Who sent `req`: a verified client certificate, else a bearer token (an agent's or a
/// viewer's), else a page session's cookie; `Ok(None)` without any; an unknown token is
/// a 401 (a stale cookie is only no session: the browser is sent to log in).
pub(crate) fn identify(
    st: &AppState,
    req: &Request,
) -> impl Future<Output = Result<Option<Principal>, ApiError>> + Send + 'static {
    let cert = req
        .extensions()
        .get::<ConnInfo>()
        .and_then(|c| c.client_cert.clone());
    // Only what is Send is held across the lookups (a request's body is not).
    let bearer = header(req.headers(), "authorization")
        .and_then(auth::bearer)
        .map(auth::token_hash);
    let cookie = crate::web::session_cookie(req.headers()).map(auth::token_hash);
    let st = st.clone();
    async move { identify_by(&st, cert, bearer, cookie).await }
}

async fn identify_by(
    st: &AppState,
    cert: Option<String>,
    bearer: Option<String>,
    cookie: Option<String>,
) -> Result<Option<Principal>, ApiError> {
    if let Some(c) = cert {
        return Ok(Some(Principal::ClientCert(c)));
    }
    let store = st.store.clone();
    if let Some(hash) = bearer {
        return match blocking(move || Ok(store.token(&hash)?)).await? {
            Some((name, Role::Agent)) => Ok(Some(Principal::Token(name))),
            Some((name, Role::Viewer)) => Ok(Some(Principal::Viewer(name))),
            None => Err(ApiError(
                StatusCode::UNAUTHORIZED,
                "unknown bearer token".into(),
            )),
        };
    }
    let Some(hash) = cookie else {
        return Ok(None);
    };
    let now = vscout_service::telemetry::unix_now_ms() / 1000;
    Ok(blocking(move || Ok(store.session_user(&hash, now)?))
        .await?
        .map(Principal::User))
}

/// Runs before the body is read: the caller must be someone (`identify`).
async fn authenticate(
    State(st): State<AppState>,
    mut req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let Some(principal) = identify(&st, &req).await? else {
        return Err(ApiError(
            StatusCode::UNAUTHORIZED,
            "missing credentials: send a bearer token or a client certificate, or log in".into(),
        ));
    };
    req.extensions_mut().insert(principal);
    Ok(next.run(req).await)
}

/// Holds one of `max_concurrent_ingests` permits while the request's body is read,
/// decoded and stored; none free is a 503 at once (the agent retries after
/// `Retry-After`), so memory stays bounded however many agents post together.
async fn ingest_permit(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let Ok(_permit) = st.ingests.clone().try_acquire_owned() else {
        st.counters.ingests_refused_busy.fetch_add(1, Relaxed);
        let mut resp = ApiError(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy: too many batches being stored at once; retry later".into(),
        )
        .into_response();
        resp.headers_mut().insert(
            axum::http::header::RETRY_AFTER,
            axum::http::HeaderValue::from_static("1"),
        );
        return resp;
    };
    next.run(req).await
}

pub(crate) fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

fn bad(msg: impl Into<String>) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, msg.into())
}

/// Only agents send batches: a viewer's token or a person's session is refused.
fn may_send(p: &Principal) -> Result<(), ApiError> {
    if p.may_ingest() {
        return Ok(());
    }
    Err(ApiError(
        StatusCode::FORBIDDEN,
        format!(
            "{} may read but not send batches: use an agent token (`token add NAME`)",
            p.name()
        ),
    ))
}

async fn ingest(
    State(st): State<AppState>,
    Extension(principal): Extension<Principal>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    may_send(&principal)?;
    let key = header(&headers, "idempotency-key")
        .ok_or_else(|| bad("missing Idempotency-Key (agent-id:seq)"))?;
    let (agent_id, seq) = key
        .rsplit_once(':')
        .and_then(|(a, s)| Some((a.to_owned(), s.parse::<u64>().ok()?)))
        // Sequence numbers are stored as SQLite integers (i64): larger ones are no
        // agent's (an agent stops long before), so they are bad requests, not retries.
        .filter(|(a, s)| !a.is_empty() && a.len() <= 128 && i64::try_from(*s).is_ok())
        .ok_or_else(|| {
            bad(format!(
                "bad Idempotency-Key {key:?}: expected agent-id:seq"
            ))
        })?;
    if let Some(h) = header(&headers, "x-vscout-agent-id") {
        if h != agent_id {
            return Err(bad(format!(
                "X-Vscout-Agent-Id {h:?} does not match the Idempotency-Key's agent {agent_id:?}"
            )));
        }
    }
    let version = header(&headers, "x-vscout-agent-version")
        .unwrap_or("unknown")
        .to_owned();
    let encoding = header(&headers, "content-encoding")
        .unwrap_or("identity")
        .to_owned();
    let decoded = blocking(move || {
        batch::decode(&body, &encoding).map_err(|e| match e {
            DecodeError::TooLarge => ApiError(StatusCode::PAYLOAD_TOO_LARGE, e.to_string()),
            other => bad(other.to_string()),
        })
    })
    .await?;
    let store = st.store.clone();
    let aid = agent_id.clone();
    let outcome = match blocking(move || {
        Ok(store.ingest(&aid, seq, &version, &principal, &decoded)?)
    })
    .await
    {
        Err(e) if e.0 == StatusCode::FORBIDDEN => {
            st.counters.ingests_refused_owner.fetch_add(1, Relaxed);
            warn!(agent_id, seq, error = %e.1, "ingest refused");
            return Err(e);
        }
        other => other?,
    };
    if outcome.rows_ignored > 0 {
        warn!(
            agent_id,
            seq,
            rows = outcome.rows_ignored,
            "batch carried rows for series and windows already stored; the stored rows were kept and the new ones counted as conflicts"
        );
    }
    debug!(
        agent_id,
        seq,
        records = outcome.records,
        duplicate = outcome.duplicate,
        "batch ingested"
    );
    let mut resp = Json(json!(outcome)).into_response();
    if outcome.duplicate {
        resp.headers_mut().insert(
            "x-vscout-duplicate",
            axum::http::HeaderValue::from_static("true"),
        );
    }
    Ok(resp)
}

async fn vcenters(State(st): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    let store = st.store.clone();
    Ok(Json(json!(blocking(move || Ok(store.vcenters()?)).await?)))
}

async fn vms(
    State(st): State<AppState>,
    Query(f): Query<VmFilter>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let store = st.store.clone();
    Ok(Json(json!(blocking(move || Ok(store.vms(&f)?)).await?)))
}

/// The entity kind of a path segment, or a 404 naming the ones there are.
fn kind_of(segment: &str) -> Result<EntityKind, ApiError> {
    EntityKind::from_path(segment).ok_or_else(|| {
        ApiError(
            StatusCode::NOT_FOUND,
            format!("no such collection {segment:?}: vms, hosts, clusters, datastores"),
        )
    })
}

fn unknown(kind: EntityKind, id: &str) -> ApiError {
    ApiError(
        StatusCode::NOT_FOUND,
        format!(
            "no {} {id:?} in any inventory or series (ids are vcenter:entity-id)",
            kind.noun()
        ),
    )
}

async fn entities(
    State(st): State<AppState>,
    Path(kind): Path<String>,
    Query(f): Query<EntityFilter>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let kind = kind_of(&kind)?;
    if kind == EntityKind::Vm {
        return Err(ApiError(StatusCode::NOT_FOUND, "use /v1/vms".into()));
    }
    let store = st.store.clone();
    Ok(Json(json!(
        blocking(move || Ok(store.entities(kind, &f)?)).await?
    )))
}

async fn metrics(
    State(st): State<AppState>,
    Path((kind, id)): Path<(String, String)>,
    Query(q): Query<MetricsQuery>,
) -> Result<Json<Vec<MetricsRow>>, ApiError> {
    entity_rows(st, &kind, id, move |store, kind, id| {
        store.metrics(kind, id, &q)
    })
    .await
}

async fn daily(
    State(st): State<AppState>,
    Path((kind, id)): Path<(String, String)>,
    Query(q): Query<DailyQuery>,
) -> Result<Json<Vec<serde_json::Value>>, ApiError> {
    entity_rows(st, &kind, id, move |store, kind, id| {
        store.daily(kind, id, &q)
    })
    .await
}

/// One entity's rows by `read` (on a blocking thread), or a 404 for an unknown
/// collection or entity.
/// An entity's rows, written out as they are (not copied into a JSON value first).
async fn entity_rows<T: Send + 'static>(
    st: AppState,
    kind: &str,
    id: String,
    read: impl FnOnce(&dyn Storage, EntityKind, &str) -> Result<Option<Vec<T>>, StoreError>
        + Send
        + 'static,
) -> Result<Json<Vec<T>>, ApiError> {
    let kind = kind_of(kind)?;
    let store = st.store.clone();
    let key = id.clone();
    match blocking(move || Ok(read(store.as_ref(), kind, &key)?)).await? {
        Some(rows) => Ok(Json(rows)),
        None => Err(unknown(kind, &id)),
    }
}

/// Every agent for an operator; for anyone else only the agents bound to the caller (an
/// agent id is what another token holder would need to post in its name).
async fn agents(
    State(st): State<AppState>,
    Extension(principal): Extension<Principal>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let store = st.store.clone();
    let who = principal.name();
    let only = (!st.operators.contains(&who)).then_some(who);
    Ok(Json(json!(
        blocking(move || Ok(store.agents(only.as_deref())?)).await?
    )))
}

/// Prometheus text: what the store holds and counted, and what the server refused.
async fn prometheus(State(st): State<AppState>) -> Result<Response, ApiError> {
    let store = st.store.clone();
    let c = blocking(move || Ok(store.counts()?)).await?;
    let s = &st.counters;
    let rows: [(&str, &str, &str, u64); 19] = [
        ("vscout_collector_agents", "gauge", "Agents that ever sent a batch.", c.agents),
        ("vscout_collector_batches_total", "counter", "Batches stored (each agent and sequence once).", c.batches),
        ("vscout_collector_duplicate_batches_total", "counter", "Batches received again and acknowledged without storing.", c.duplicate_batches),
        ("vscout_collector_rows_conflicting_total", "counter", "Rollup and daily rows received for a series and window already stored: the stored row was kept.", c.rows_ignored),
        ("vscout_collector_rollups", "gauge", "Windows (rollups) stored, as rows and packed.", c.rollups),
        ("vscout_collector_series", "gauge", "Series known.", c.series),
        ("vscout_collector_pruned_rollups_total", "counter", "Rollup rows retention deleted (older than retention.windows_days).", c.pruned.rollups),
        ("vscout_collector_pruned_hours_total", "counter", "Hourly summaries retention deleted (older than retention.summaries_days).", c.pruned.hours),
        ("vscout_collector_packed_days_total", "counter", "Closed days of a series whose windows were packed into one compressed row.", c.pruned.packed_days),
        ("vscout_collector_pruned_summaries_total", "counter", "Day summaries retention deleted (older than retention.summaries_days).", c.pruned.summaries),
        ("vscout_collector_pruned_sketches_total", "counter", "Daily sketches retention deleted (older than retention.summaries_days).", c.pruned.sketches),
        ("vscout_collector_pruned_batch_keys_total", "counter", "Batch keys (agent, sequence) retention forgot (received before retention.windows_days); a resend of one is still a duplicate.", c.pruned.batch_keys),
        ("vscout_collector_pruned_bytes_total", "counter", "Database pages retention freed, in bytes (SQLite reuses them).", c.pruned.bytes),
        ("vscout_collector_windows_refused_expired_total", "counter", "Rollups that arrived older than retention.windows_days keeps, refused.", c.pruned.refused_windows),
        ("vscout_collector_ingests_refused_busy_total", "counter", "Ingests answered 503 because max_concurrent_ingests were running.", s.ingests_refused_busy.load(Relaxed)),
        ("vscout_collector_ingests_refused_owner_total", "counter", "Ingests refused 403: the agent id belongs to another principal.", s.ingests_refused_owner.load(Relaxed)),
        ("vscout_collector_requests_timed_out_total", "counter", "Requests cut off by request_timeout_secs.", s.requests_timed_out.load(Relaxed)),
        ("vscout_collector_connections_accepted_total", "counter", "TCP connections accepted.", s.connections_accepted.load(Relaxed)),
        ("vscout_collector_connections_open", "gauge", "Connections open now.", s.connections_open.load(Relaxed)),
    ];
    let mut out = String::new();
    for (name, kind, help, value) in rows {
        use std::fmt::Write;
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
        );
    }
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        out,
    )
        .into_response())
}

async fn stats(State(st): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    let store = st.store.clone();
    Ok(Json(json!(blocking(move || Ok(store.counts()?)).await?)))
}

/// Connection limits of `serve`.
#[derive(Debug, Clone, Copy)]
pub struct ConnLimits {
    pub max_connections: usize,
    /// Time to send a request's headers, from the connection's start or the end of the
    /// previous answer: also the idle timeout of a kept-alive connection.
    pub header_read_timeout: Duration,
    /// Time from a request's headers to its answer, body included.
    pub request_timeout: Duration,
}

/// Decrements the open-connection gauge however the connection task ends.
struct OpenConn(Arc<ServerCounters>);

impl Drop for OpenConn {
    fn drop(&mut self) {
        self.0.connections_open.fetch_sub(1, Relaxed);
    }
}

/// Accepts TLS connections until `shutdown` resolves, then gives open connections
/// `grace` to finish. At most `limits.max_connections` are open at once: past it the
/// listener is not polled until one closes (the kernel's backlog holds the rest).
pub async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    app: Router,
    counters: Arc<ServerCounters>,
    limits: ConnLimits,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    let mut conns = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let (permit, tcp, peer) = tokio::select! {
            r = async {
                let permit = slots.clone().acquire_owned().await;
                (permit, listener.accept().await)
            } => match r {
                (Ok(p), Ok((tcp, peer))) => (p, tcp, peer),
                (_, Err(e)) => {
                    warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
                (Err(_), _) => break,
            },
            _ = &mut shutdown => break,
        };
        // Reap finished connections so the set does not grow.
        while conns.try_join_next().is_some() {}
        counters.connections_accepted.fetch_add(1, Relaxed);
        counters.connections_open.fetch_add(1, Relaxed);
        let open = OpenConn(counters.clone());
        let acceptor = acceptor.clone();
        let app = app.clone();
        let counters = counters.clone();
        conns.spawn(async move {
            let _slot = (permit, open);
            let handshake = limits.header_read_timeout.min(Duration::from_secs(10));
            let tls = match tokio::time::timeout(handshake, acceptor.accept(tcp)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    debug!(%peer, "TLS handshake timed out");
                    return;
                }
            };
            let client_cert = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .map(|c| crate::tls::thumbprint(c.as_ref()));
            let info = ConnInfo { client_cert, peer };
            let svc = hyper::service::service_fn(
                move |mut req: hyper::Request<hyper::body::Incoming>| {
                    req.extensions_mut().insert(info.clone());
                    let call = app.clone().oneshot(req.map(axum::body::Body::new));
                    let counters = counters.clone();
                    async move {
                        match tokio::time::timeout(limits.request_timeout, call).await {
                            Ok(r) => r,
                            Err(_) => {
                                counters.requests_timed_out.fetch_add(1, Relaxed);
                                debug!(%peer, "request timed out");
                                Ok(ApiError(
                                    StatusCode::REQUEST_TIMEOUT,
                                    format!(
                                        "request not complete within {} s",
                                        limits.request_timeout.as_secs()
                                    ),
                                )
                                .into_response())
                            }
                        }
                    }
                },
            );
            // HTTP/1 directly, not the auto-detecting builder: that one reads the first
            // bytes itself, outside the header timeout, so an idle connection stayed open.
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_read_timeout)
                .serve_connection(TokioIo::new(tls), svc);
            if let Err(e) = conn.await {
                debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    info!(
        open_connections = conns.len(),
        "stopped accepting; draining connections"
    );
    let _ = tokio::time::timeout(grace, async { while conns.join_next().await.is_some() {} }).await;
    conns.abort_all();
}
