//! The HTTPS API: a rustls accept loop feeding hyper connections to an axum router. The
//! accept loop is ours (not a wrapper crate's) so that each connection's verified client
//! certificate reaches the handlers as a request extension.
//!
//! Routes: `GET /v1/health` (no auth); with auth: `POST /v1/ingest`, `GET /v1/vcenters`,
//! `GET /v1/vms`, `GET /v1/{hosts,clusters,datastores}`, `GET /v1/{kind}/{id}/metrics`
//! (window rollups), `GET /v1/{kind}/{id}/daily` (daily sketches merged over a range of
//! days), `GET /v1/agents`, `GET /v1/stats`. An unknown entity is a 404.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use bytes::Bytes;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::json;
use tokio::net::TcpListener;
use tower::ServiceExt;
use tracing::{debug, info, warn};
use vscout::ship::batch::{self, DecodeError};

use crate::auth;
use crate::store::{
    DailyQuery, EntityFilter, EntityKind, MetricsQuery, Principal, Storage, StoreError, VmFilter,
};

/// What the handlers share.
#[derive(Debug, Clone)]
pub struct AppState {
    pub store: Arc<dyn Storage>,
}

/// Per connection: the verified client certificate's thumbprint, if one was presented.
#[derive(Debug, Clone)]
struct ConnInfo {
    client_cert: Option<String>,
}

/// An error answer: a status and a message for the agent's log.
#[derive(Debug)]
pub struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        warn!(error = %e, "storage error");
        ApiError(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
}

/// The router, with `max_body_bytes` as the request body limit (413 beyond it).
pub fn router(state: AppState, max_body_bytes: usize) -> Router {
    let api = Router::new()
        .route("/v1/ingest", post(ingest))
        .route("/v1/vcenters", get(vcenters))
        .route("/v1/vms", get(vms))
        .route("/v1/{kind}", get(entities))
        .route("/v1/{kind}/{id}/metrics", get(metrics))
        .route("/v1/{kind}/{id}/daily", get(daily))
        .route("/v1/agents", get(agents))
        .route("/v1/stats", get(stats))
        .route_layer(middleware::from_fn_with_state(state.clone(), authenticate))
        .layer(DefaultBodyLimit::max(max_body_bytes));
    Router::new()
        .route(
            "/v1/health",
            get(|| async { Json(json!({ "status": "ok" })) }),
        )
        .merge(api)
        .with_state(state)
}

/// Runs before the body is read: a verified client certificate, or a known bearer token.
async fn authenticate(
    State(st): State<AppState>,
    mut req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let cert = req
        .extensions()
        .get::<ConnInfo>()
        .and_then(|c| c.client_cert.clone());
    let principal = if let Some(c) = cert {
        Principal::ClientCert(c)
    } else {
        let token = req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(auth::bearer)
            .map(auth::token_hash);
        let Some(hash) = token else {
            return Err(ApiError(
                StatusCode::UNAUTHORIZED,
                "missing credentials: send a bearer token or a client certificate".into(),
            ));
        };
        let store = st.store.clone();
        match blocking(move || Ok(store.token_name(&hash)?)).await? {
            Some(name) => Principal::Token(name),
            None => {
                return Err(ApiError(
                    StatusCode::UNAUTHORIZED,
                    "unknown bearer token".into(),
                ))
            }
        }
    };
    req.extensions_mut().insert(principal);
    Ok(next.run(req).await)
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

fn bad(msg: impl Into<String>) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, msg.into())
}

async fn ingest(
    State(st): State<AppState>,
    Extension(principal): Extension<Principal>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let key = header(&headers, "idempotency-key")
        .ok_or_else(|| bad("missing Idempotency-Key (agent-id:seq)"))?;
    let (agent_id, seq) = key
        .rsplit_once(':')
        .and_then(|(a, s)| Some((a.to_owned(), s.parse::<u64>().ok()?)))
        .filter(|(a, _)| !a.is_empty() && a.len() <= 128)
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
    let outcome =
        blocking(move || Ok(store.ingest(&aid, seq, &version, &principal, &decoded)?)).await?;
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
) -> Result<Json<serde_json::Value>, ApiError> {
    entity_rows(st, &kind, id, move |store, kind, id| {
        store.metrics(kind, id, &q)
    })
    .await
}

async fn daily(
    State(st): State<AppState>,
    Path((kind, id)): Path<(String, String)>,
    Query(q): Query<DailyQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    entity_rows(st, &kind, id, move |store, kind, id| {
        store.daily(kind, id, &q)
    })
    .await
}

/// One entity's rows by `read` (on a blocking thread), or a 404 for an unknown
/// collection or entity.
async fn entity_rows(
    st: AppState,
    kind: &str,
    id: String,
    read: impl FnOnce(&dyn Storage, EntityKind, &str) -> Result<Option<Vec<serde_json::Value>>, StoreError>
        + Send
        + 'static,
) -> Result<Json<serde_json::Value>, ApiError> {
    let kind = kind_of(kind)?;
    let store = st.store.clone();
    let key = id.clone();
    match blocking(move || Ok(read(store.as_ref(), kind, &key)?)).await? {
        Some(rows) => Ok(Json(json!(rows))),
        None => Err(unknown(kind, &id)),
    }
}

async fn agents(State(st): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    let store = st.store.clone();
    Ok(Json(json!(blocking(move || Ok(store.agents()?)).await?)))
}

async fn stats(State(st): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    let store = st.store.clone();
    Ok(Json(json!(blocking(move || Ok(store.counts()?)).await?)))
}

/// Accepts TLS connections until `shutdown` resolves, then gives open connections
/// `grace` to finish.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    app: Router,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let mut conns = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        // Reap finished connections so the set does not grow.
        while conns.try_join_next().is_some() {}
        let acceptor = acceptor.clone();
        let app = app.clone();
        conns.spawn(async move {
            let tls =
                match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await {
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
            let info = ConnInfo { client_cert };
            let svc = hyper::service::service_fn(
                move |mut req: hyper::Request<hyper::body::Incoming>| {
                    req.extensions_mut().insert(info.clone());
                    app.clone().oneshot(req.map(axum::body::Body::new))
                },
            );
            if let Err(e) = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(tls), svc)
                .await
            {
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
