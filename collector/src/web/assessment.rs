//! The assessment page: a form for the settings (what `GET /v1/assessment` takes), the
//! totals per cloud and per datacenter and cluster, the VMs' rows a page at a time, and
//! the downloads (workbook, Azure Migrate CSV, the assessment as JSON and CSV) with the
//! same settings. The configured defaults are served from the estate's cached build; any
//! other settings are assessed when asked.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Query, State};
use axum::response::Response;
use axum::Extension;
use serde::Deserialize;

use super::pages::{fleet, totals_view, Frame, TotalsView, PAGE_ROWS};
use super::view::{self, date, money, money_or, DASH};
use super::{html, PageError};
use crate::assess::estate::{assess, Assessment};
use crate::assess::settings::{Params, PERCENTILES};
use crate::server::{blocking, AppState};
use crate::store::Principal;

/// The form's fields, as text (an empty field is the configured default).
#[derive(Debug, Default, Deserialize)]
pub(super) struct AssessForm {
    #[serde(default)]
    target: String,
    #[serde(default)]
    region: String,
    #[serde(default)]
    percentile: String,
    #[serde(default)]
    history_days: String,
    #[serde(default)]
    comfort: String,
    #[serde(default)]
    basis: String,
    #[serde(default)]
    sizing: String,
    #[serde(default)]
    memory: String,
    page: Option<usize>,
}

impl AssessForm {
    fn pairs(&self) -> [(&'static str, &str); 8] {
        [
            ("target", &self.target),
            ("region", &self.region),
            ("percentile", &self.percentile),
            ("history_days", &self.history_days),
            ("comfort", &self.comfort),
            ("basis", &self.basis),
            ("sizing", &self.sizing),
            ("memory", &self.memory),
        ]
    }

    fn params(&self) -> Params {
        let o = |s: &str| (!s.trim().is_empty()).then(|| s.trim().to_owned());
        Params {
            target: o(&self.target),
            region: o(&self.region),
            percentile: o(&self.percentile),
            history_days: o(&self.history_days),
            comfort: o(&self.comfort),
            basis: o(&self.basis),
            sizing: o(&self.sizing),
            memory: o(&self.memory),
            ..Params::default()
        }
    }

    fn is_default(&self) -> bool {
        self.pairs().iter().all(|(_, v)| v.trim().is_empty())
    }
}

struct GroupView {
    target: String,
    vcenter: String,
    datacenter: String,
    cluster: String,
    vms: u64,
    ready: u64,
    monthly: String,
}

struct RowView {
    id_q: String,
    name: String,
    cluster: String,
    target: String,
    size: String,
    monthly: String,
    readiness: &'static str,
    stars: String,
}

#[derive(Template)]
#[template(path = "assessment.html")]
struct AssessmentPage {
    frame: Frame,
    form: AssessForm,
    percentiles: Vec<String>,
    error: Option<String>,
    totals: Vec<TotalsView>,
    groups: Vec<GroupView>,
    rows: Vec<RowView>,
    downloads: Vec<(&'static str, String)>,
    applied: String,
    page: usize,
    pages: usize,
    prev: Option<String>,
    next: Option<String>,
    built: String,
}

fn views(a: &Assessment, page: usize) -> (Vec<GroupView>, Vec<RowView>, usize, usize) {
    let groups = a
        .targets
        .iter()
        .flat_map(|t| {
            t.by_cluster.iter().map(|g| GroupView {
                target: t.target.as_str().to_owned(),
                vcenter: g.vcenter.clone(),
                datacenter: g.datacenter.clone(),
                cluster: view::cluster(&g.cluster),
                vms: g.totals.vms,
                ready: g.totals.ready,
                monthly: money(g.totals.monthly_total),
            })
        })
        .collect();
    let all: Vec<_> = a.targets.iter().flat_map(|t| t.rows.iter()).collect();
    let pages = all.len().div_ceil(PAGE_ROWS).max(1);
    let page = page.clamp(1, pages);
    let rows = all
        .iter()
        .skip((page - 1) * PAGE_ROWS)
        .take(PAGE_ROWS)
        .map(|r| RowView {
            id_q: view::query(&[("id", &format!("{}:{}", r.vcenter, r.vm_id))]),
            name: r.name.clone(),
            cluster: view::cluster(&r.cluster),
            target: r.target.as_str().to_owned(),
            size: r
                .recommended
                .as_ref()
                .map_or(DASH.to_owned(), |s| s.size.clone()),
            monthly: money_or(r.monthly_cost.total, "no price"),
            readiness: r.readiness.status.as_str(),
            stars: view::stars(r.confidence.stars),
        })
        .collect();
    (groups, rows, page, pages)
}

pub(super) async fn page(
    State(st): State<AppState>,
    Extension(p): Extension<Principal>,
    Query(form): Query<AssessForm>,
) -> Result<Response, PageError> {
    let query = view::query(&form.pairs());
    let mut error = None;
    let (assessment, built): (Option<Arc<Assessment>>, String) = if form.is_default() {
        // The cached build's assessment, shared rather than copied.
        let f = fleet(&st).await?;
        (Some(f.assessment.clone()), date(f.built_at))
    } else {
        match st.assessment.settings(&form.params()) {
            Err(e) => {
                error = Some(e.to_string());
                (None, DASH.to_owned())
            }
            Ok(settings) => {
                let (store, setup) = (st.store.clone(), st.assessment.clone());
                let now = view::now_s();
                let a =
                    blocking(move || Ok(assess(store.as_ref(), &setup.catalog, &settings, now)?))
                        .await?;
                (Some(Arc::new(a)), date(now))
            }
        }
    };
    let (groups, rows, page, pages) = assessment
        .as_deref()
        .map_or((Vec::new(), Vec::new(), 1, 1), |a| {
            views(a, form.page.unwrap_or(1))
        });
    let link = |page: usize| format!("/assessment?{query}&page={page}");
    let sep = if query.is_empty() { "" } else { "&" };
    let view = AssessmentPage {
        frame: Frame::new(&p, "assessment"),
        percentiles: PERCENTILES.iter().map(u32::to_string).collect(),
        error,
        totals: assessment.as_deref().map(totals_view).unwrap_or_default(),
        applied: assessment.as_deref().map_or(DASH.to_owned(), |a| {
            let s = &a.settings;
            format!(
                "p{} over {} days, comfort {}, basis {}, sizing {}, memory {}; catalog of {}; {}",
                s.percentile,
                s.history_days,
                s.comfort,
                s.basis,
                s.sizing,
                s.memory,
                a.catalog_date,
                a.prices
            )
        }),
        groups,
        rows,
        downloads: vec![
            ("Workbook (xlsx)", format!("/v1/export.xlsx?{query}")),
            (
                "Azure Migrate import (CSV)",
                format!("/v1/export.csv?{query}"),
            ),
            (
                "Assessment (JSON)",
                format!("/v1/assessment?{query}{sep}format=json"),
            ),
            (
                "Assessment (CSV)",
                format!("/v1/assessment?{query}{sep}format=csv"),
            ),
        ],
        page,
        pages,
        prev: (page > 1).then(|| link(page - 1)),
        next: (page < pages).then(|| link(page + 1)),
        built,
        form,
    };
    Ok(html(&view))
}
