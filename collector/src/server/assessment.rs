//! `GET /v1/assessment` (the estate, JSON or CSV) and `GET /v1/vms/{id}/assessment` (one
//! VM in depth): the settings from the query over the config's defaults; a bad value is a
//! 400 naming it and what is allowed.

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

use super::{blocking, ApiError, AppState};
use crate::assess::estate::{assess, assess_vm};
use crate::assess::report::{render, vm_detail, Format};
use crate::assess::settings::Params;

/// The query: the assessment's settings and the format.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AssessQuery {
    #[serde(flatten)]
    params: Params,
    /// `json` (default) or `csv`.
    format: Option<String>,
}

pub(super) fn bad_request(e: impl ToString) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, e.to_string())
}

fn now_s() -> i64 {
    vscout_service::telemetry::unix_now_ms() / 1000
}

pub(super) async fn estate(
    State(st): State<AppState>,
    Query(q): Query<AssessQuery>,
) -> Result<Response, ApiError> {
    let format = match q.format.as_deref().unwrap_or("json") {
        "table" => return Err(bad_request("format \"table\" is not allowed: json or csv")),
        f => f.parse::<Format>().map_err(bad_request)?,
    };
    let settings = st.assessment.settings(&q.params).map_err(bad_request)?;
    let (store, setup) = (st.store.clone(), st.assessment.clone());
    let a =
        blocking(move || Ok(assess(store.as_ref(), &setup.catalog, &settings, now_s())?)).await?;
    Ok(match format {
        Format::Csv => (
            [(header::CONTENT_TYPE, "text/csv; charset=utf-8")],
            render(&a, Format::Csv),
        )
            .into_response(),
        _ => Json(a).into_response(),
    })
}

pub(super) async fn one_vm(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<Params>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let settings = st.assessment.settings(&q).map_err(bad_request)?;
    let (store, setup) = (st.store.clone(), st.assessment.clone());
    let key = id.clone();
    let found = blocking(move || {
        // A VM id has no colon; a vCenter's name may.
        let (vcenter, vm) = match key.rsplit_once(':') {
            Some((vc, vm)) => (Some(vc), vm),
            None => (None, key.as_str()),
        };
        let found = assess_vm(
            store.as_ref(),
            &setup.catalog,
            &settings,
            now_s(),
            vcenter,
            vm,
        )?;
        Ok(found.map(|v| vm_detail(&v, &settings)))
    })
    .await?;
    found.map(Json).ok_or_else(|| {
        ApiError(
            StatusCode::NOT_FOUND,
            format!("no VM {id:?} in any inventory (ids are vcenter:vm-id)"),
        )
    })
}
