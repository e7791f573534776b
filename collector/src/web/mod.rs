//! The pages people read, on the collector's HTTPS port: the overview, the VM list and
//! each VM, the assessment, hosts, clusters and datastores. Read-only; rendered on the
//! server from askama templates checked at compile time (`collector/templates/`), with
//! charts drawn as SVG on the server (`chart.rs`): no script at all, so the
//! Content-Security-Policy allows none, and every asset is inside the binary.
//!
//! Who may look: a person logged in (`login.rs`: a session cookie, Secure, HttpOnly,
//! SameSite=Strict, expiring) or a viewer token; an agent's credentials may not.

mod assessment;
mod chart;
pub mod fleet;
mod login;
pub(crate) mod pages;
mod view;
mod vm;

use std::sync::Arc;
use std::time::Duration;

use askama::Template;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;

use crate::auth::limit::LoginLimiter;
use crate::server::{identify, ApiError, AppState};
use crate::store::Principal;

pub use fleet::{Fleet, FleetCache};
pub use pages::vm_list_html;
pub use vm::vm_html;

/// The session cookie's name.
pub const COOKIE: &str = "vscout_session";

/// No script, no frame, nothing from elsewhere: styles and images from this origin only.
const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
                   frame-ancestors 'none'; base-uri 'none'";

const STYLE: &str = include_str!("../../assets/style.css");

/// What the pages share beside the API's state.
#[derive(Debug)]
pub struct WebState {
    pub limiter: LoginLimiter,
    pub session_ttl: Duration,
    pub fleet: Arc<FleetCache>,
}

impl WebState {
    pub fn new(session_ttl: Duration) -> Self {
        Self {
            limiter: LoginLimiter::default(),
            session_ttl,
            fleet: Arc::default(),
        }
    }
}

/// The session token of a request's `Cookie` headers, if any.
pub fn session_cookie(h: &HeaderMap) -> Option<&str> {
    h.get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, v)| *k == COOKIE && !v.is_empty())
        .map(|(_, v)| v)
}

/// The pages' routes (merged into the API's router).
pub(crate) fn routes(state: AppState) -> Router<AppState> {
    let pages = Router::new()
        .route("/", get(pages::overview))
        .route("/vms", get(pages::vms))
        .route("/vm", get(vm::detail))
        .route("/assessment", get(assessment::page))
        .route("/hosts", get(pages::hosts))
        .route("/clusters", get(pages::clusters))
        .route("/datastores", get(pages::datastores))
        .route("/logout", post(login::logout))
        .route_layer(middleware::from_fn_with_state(state, viewer_only));
    Router::new()
        .route("/login", get(login::form).post(login::submit))
        .route("/static/style.css", get(style))
        .merge(pages)
        .layer(middleware::from_fn(headers))
}

/// A person or a viewer token, else the log-in page (a page asked for is returned to
/// after it); an agent's credentials are refused.
async fn viewer_only(State(st): State<AppState>, mut req: Request, next: Next) -> Response {
    match identify(&st, &req).await {
        Ok(Some(p)) if p.may_view_pages() => {
            req.extensions_mut().insert(p);
            next.run(req).await
        }
        Ok(Some(p)) => PageError(
            StatusCode::FORBIDDEN,
            format!(
                "{} is an agent's credential: it cannot open pages. Log in as a person \
                 (`vscout-collector user add NAME`) or use a viewer token.",
                p.name()
            ),
        )
        .into_response(),
        Ok(None) => {
            let next_page = req
                .uri()
                .path_and_query()
                .map_or("/".to_owned(), |p| p.as_str().to_owned());
            let q = serde_urlencoded::to_string([("next", next_page)]).unwrap_or_default();
            Redirect::to(&format!("/login?{q}")).into_response()
        }
        Err(e) => PageError::from(e).into_response(),
    }
}

/// Every answer of the pages: the policy, no sniffing, no referrer to other sites, not
/// cached.
async fn headers(req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    resp
}

async fn style() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        STYLE,
    )
        .into_response()
}

/// A rendered template, or a 500 naming what failed.
fn html(t: &impl Template) -> Response {
    match t.render() {
        Ok(body) => Html(body).into_response(),
        Err(e) => PageError(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot render the page: {e}"),
        )
        .into_response(),
    }
}

/// An error shown as a page.
#[derive(Debug)]
pub(crate) struct PageError(pub StatusCode, pub String);

impl From<ApiError> for PageError {
    fn from(e: ApiError) -> Self {
        PageError(e.0, e.1)
    }
}

impl From<crate::store::StoreError> for PageError {
    fn from(e: crate::store::StoreError) -> Self {
        ApiError::from(e).into()
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    status: u16,
    message: &'a str,
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let body = ErrorPage {
            status: self.0.as_u16(),
            message: &self.1,
        }
        .render()
        .unwrap_or_else(|_| self.1.clone());
        (self.0, Html(body)).into_response()
    }
}

/// The principal a page was opened by (set by `viewer_only`).
fn who(p: &Principal) -> String {
    match p {
        Principal::User(n) => n.clone(),
        other => other.name(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_is_found_among_cookies() {
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; vscout_session=abc; b=2"),
        );
        assert_eq!(session_cookie(&h), Some("abc"));
        let mut empty = HeaderMap::new();
        empty.append(
            header::COOKIE,
            HeaderValue::from_static("vscout_session=; x=y"),
        );
        assert_eq!(session_cookie(&empty), None);
        assert_eq!(session_cookie(&HeaderMap::new()), None);
    }
}
