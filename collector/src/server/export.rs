//! `GET /v1/export.xlsx` (the fleet's workbook), `GET /v1/export.csv` (Azure Migrate's
//! CSV import) and `GET /v1/export?format=…`: the assessment's settings from the query
//! over the config's defaults, as for `/v1/assessment`; a bad value is a 400 naming it.

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, MethodRouter};
use serde::Deserialize;

use super::assessment::bad_request;
use super::{blocking, ApiError, AppState};
use crate::assess::settings::Params;
use crate::export::{export, ExportError, Format};

/// The query: the assessment's settings and, on `/v1/export`, the format.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ExportQuery {
    #[serde(flatten)]
    params: Params,
    /// `xlsx` (default) or `azure-migrate-csv`; only on `/v1/export`.
    format: Option<String>,
}

impl From<ExportError> for ApiError {
    fn from(e: ExportError) -> Self {
        match e {
            ExportError::Store(e) => e.into(),
            e @ ExportError::Workbook(_) => {
                ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
            }
        }
    }
}

async fn serve(st: AppState, q: ExportQuery, format: Format) -> Result<Response, ApiError> {
    let settings = st.assessment.settings(&q.params).map_err(bad_request)?;
    let (store, setup) = (st.store.clone(), st.assessment.clone());
    let now_s = vscout_service::telemetry::unix_now_ms() / 1000;
    let out = blocking(move || {
        Ok(export(
            store.as_ref(),
            &setup.catalog,
            &settings,
            now_s,
            format,
        )?)
    })
    .await?;
    let name = match format {
        Format::Xlsx => "vscout-export.xlsx",
        Format::AzureMigrateCsv => "vscout-azure-migrate.csv",
    };
    Ok((
        [
            (header::CONTENT_TYPE, format.content_type().to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        out.bytes,
    )
        .into_response())
}

/// A file-named route has its format: a `format` in its query must agree.
fn fixed(q: &ExportQuery, format: Format) -> Result<(), ApiError> {
    match q.format.as_deref().map(str::parse::<Format>) {
        None => Ok(()),
        Some(Ok(f)) if f == format => Ok(()),
        Some(Ok(_)) => Err(bad_request(
            "format does not match the file asked for: use /v1/export?format=…",
        )),
        Some(Err(e)) => Err(bad_request(e)),
    }
}

/// The route of a file-named path (`/v1/export.xlsx`, `/v1/export.csv`): its format is
/// the name's.
pub(super) fn named(format: Format) -> MethodRouter<AppState> {
    get(
        move |State(st): State<AppState>, Query(q): Query<ExportQuery>| async move {
            fixed(&q, format)?;
            serve(st, q, format).await
        },
    )
}

pub(super) async fn any(
    State(st): State<AppState>,
    Query(q): Query<ExportQuery>,
) -> Result<Response, ApiError> {
    let format = match q.format.as_deref() {
        None => Format::Xlsx,
        Some(f) => f.parse().map_err(bad_request)?,
    };
    serve(st, q, format).await
}
