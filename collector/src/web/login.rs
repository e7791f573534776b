//! Log-in and log-out. A session is a random 256-bit token in a cookie (Secure, HttpOnly,
//! SameSite=Strict, expiring after `session_hours`), stored as its SHA-256 only and
//! checked on every request, so removing a user ends their sessions at once. Failed
//! log-ins are limited per client address and per user name (`auth::limit`) and logged
//! with both, never with the password; an unknown name costs the same argon2 time as a
//! wrong password.

use tokio::time::Instant;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use serde::Deserialize;
use tracing::{info, warn};

use super::{html, session_cookie, PageError, COOKIE};
use crate::auth::{self, password};
use crate::server::{blocking, header as header_str, AppState, ConnInfo};

#[derive(Debug, Deserialize)]
pub(super) struct NextQuery {
    next: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(super) struct LoginForm {
    user: String,
    password: String,
    next: Option<String>,
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    next: &'a str,
    user: &'a str,
    error: Option<String>,
}

/// A name as typed, for the log: quoted with its control characters escaped (`?`) and
/// cut to 64 characters, so a crafted name cannot forge or flood log lines.
fn logged(name: &str) -> &str {
    name.char_indices()
        .nth(64)
        .map_or(name, |(i, _)| &name[..i])
}

/// Where to go after logging in: a path of this site only (never `//host`).
fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.starts_with("/\\")
                && !n.chars().any(char::is_control) =>
        {
            n
        }
        _ => "/",
    }
}

pub(super) async fn form(Query(q): Query<NextQuery>) -> Response {
    html(&LoginPage {
        next: safe_next(q.next.as_deref()),
        user: "",
        error: None,
    })
}

/// A browser's cross-site POST says so (`Sec-Fetch-Site`, or another `Origin` from
/// browsers without it): refused. SameSite keeps the cookie from such posts; this keeps
/// a log-in from being planted. Clients that are not browsers send neither.
fn same_origin(h: &HeaderMap) -> bool {
    if let Some(site) = header_str(h, "sec-fetch-site") {
        return matches!(site, "same-origin" | "none");
    }
    match (header_str(h, "origin"), header_str(h, "host")) {
        (None | Some("null"), _) => true,
        (Some(origin), Some(host)) => origin == format!("https://{host}"),
        (Some(_), None) => false,
    }
}

pub(super) async fn submit(
    State(st): State<AppState>,
    conn: Option<Extension<ConnInfo>>,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Response {
    if !same_origin(&headers) {
        return PageError(
            StatusCode::FORBIDDEN,
            "log-in from another site refused".into(),
        )
        .into_response();
    }
    let client = conn.map_or_else(|| "unknown".to_owned(), |c| c.peer.ip().to_string());
    let next = safe_next(f.next.as_deref()).to_owned();
    let keys = [format!("ip:{client}"), format!("user:{}", f.user)];
    let web = st.web.clone();
    let page = |status: StatusCode, error: String| {
        let mut resp = html(&LoginPage {
            next: &next,
            user: &f.user,
            error: Some(error),
        });
        *resp.status_mut() = status;
        resp
    };
    if let Some(wait) = web.limiter.blocked(&keys, Instant::now()) {
        warn!(user = ?logged(&f.user), client, "log-in refused: too many failed attempts");
        let secs = wait.as_secs().max(1);
        let mut resp = page(
            StatusCode::TOO_MANY_REQUESTS,
            format!("Too many failed log-ins. Try again in {secs} s."),
        );
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        return resp;
    }
    let (store, user, pw) = (st.store.clone(), f.user.clone(), f.password.clone());
    let checked = blocking(move || match store.user_hash(&user)?.as_deref() {
        Some(phc) => Ok(password::verify(&pw, phc)),
        None => {
            password::verify_nothing(&pw);
            Ok(false)
        }
    })
    .await;
    match checked {
        Ok(true) => {}
        Ok(false) => {
            web.limiter.failed(&keys, Instant::now());
            warn!(user = ?logged(&f.user), client, "log-in failed: wrong user name or password");
            return page(
                StatusCode::UNAUTHORIZED,
                "Wrong user name or password.".into(),
            );
        }
        Err(e) => return PageError::from(e).into_response(),
    }
    let token = auth::new_token();
    let ttl = web.session_ttl.as_secs();
    let expires = vscout_service::telemetry::unix_now_ms() / 1000 + ttl as i64;
    let (store, user, hash) = (st.store.clone(), f.user.clone(), auth::token_hash(&token));
    if let Err(e) = blocking(move || Ok(store.add_session(&hash, &user, expires)?)).await {
        return PageError::from(e).into_response();
    }
    web.limiter.succeeded(&keys[1]);
    info!(user = ?logged(&f.user), client, "logged in");
    let cookie =
        format!("{COOKIE}={token}; Path=/; Max-Age={ttl}; Secure; HttpOnly; SameSite=Strict");
    let mut resp = Redirect::to(&next).into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

pub(super) async fn logout(State(st): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(hash) = session_cookie(&headers).map(auth::token_hash) {
        let store = st.store.clone();
        if let Err(e) = blocking(move || Ok(store.end_session(&hash)?)).await {
            return PageError::from(e).into_response();
        }
    }
    let mut resp = Redirect::to("/login").into_response();
    resp.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static(
            "vscout_session=; Path=/; Max-Age=0; Secure; HttpOnly; SameSite=Strict",
        ),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_logged_short() {
        assert_eq!(logged("ann"), "ann");
        assert_eq!(logged(&"x".repeat(100)).len(), 64);
        assert_eq!(format!("{:?}", logged("a\nfake line")), "\"a\\nfake line\"");
    }

    #[test]
    fn only_this_sites_paths_are_returned_to() {
        assert_eq!(safe_next(Some("/vms?q=a")), "/vms?q=a");
        assert_eq!(safe_next(Some("//evil.example/")), "/");
        assert_eq!(safe_next(Some("/\\evil.example")), "/");
        assert_eq!(safe_next(Some("https://evil.example/")), "/");
        assert_eq!(safe_next(Some("/a\nb")), "/");
        assert_eq!(safe_next(None), "/");
    }

    #[test]
    fn cross_site_posts_are_told_apart() {
        let h = |pairs: &[(&'static str, &'static str)]| {
            let mut m = HeaderMap::new();
            for (k, v) in pairs {
                m.insert(*k, HeaderValue::from_static(v));
            }
            m
        };
        assert!(same_origin(&h(&[])), "not a browser");
        assert!(same_origin(&h(&[("sec-fetch-site", "same-origin")])));
        assert!(!same_origin(&h(&[("sec-fetch-site", "cross-site")])));
        assert!(same_origin(&h(&[
            ("origin", "https://c:8443"),
            ("host", "c:8443")
        ])));
        assert!(!same_origin(&h(&[
            ("origin", "https://evil"),
            ("host", "c:8443")
        ])));
    }
}
