//! The overview, the VM list (filtered, sorted and paged on the server from the cached
//! estate), and the lists of hosts, clusters and datastores.

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::{Query, State};
use axum::response::Response;
use axum::Extension;
use serde::Deserialize;
use serde_json::Value;

use super::fleet::{Fleet, FleetVm};
use super::view::{self, ago, date, gib, money, num, opt, DASH};
use super::{html, who, PageError};
use crate::server::{blocking, AppState};
use crate::store::Principal;

/// VMs per page of the list.
pub(super) const PAGE_ROWS: usize = 50;

/// The estate's cached figures (`fleet.rs`).
pub(super) async fn fleet(st: &AppState) -> Result<std::sync::Arc<Fleet>, PageError> {
    Ok(st.web.fleet.get(&st.store, &st.assessment).await?)
}

/// What every page's frame shows.
pub(super) struct Frame {
    pub user: String,
    pub section: &'static str,
}

impl Frame {
    pub(super) fn new(p: &Principal, section: &'static str) -> Self {
        Frame {
            user: who(p),
            section,
        }
    }
}

/// A cloud's totals as the overview and the assessment page show them.
pub(super) struct TotalsView {
    pub target: String,
    pub region: String,
    pub vms: u64,
    pub ready: u64,
    pub conditionally_ready: u64,
    pub not_ready: u64,
    pub unknown: u64,
    pub monthly_total: String,
    pub monthly_compute: String,
    pub monthly_storage: String,
    pub without_price: u64,
}

pub(super) fn totals_view(a: &crate::assess::estate::Assessment) -> Vec<TotalsView> {
    a.targets
        .iter()
        .map(|t| TotalsView {
            target: t.target.as_str().to_owned(),
            region: t.region.clone(),
            vms: t.totals.vms,
            ready: t.totals.ready,
            conditionally_ready: t.totals.conditionally_ready,
            not_ready: t.totals.not_ready,
            unknown: t.totals.unknown,
            monthly_total: money(t.totals.monthly_total),
            monthly_compute: money(t.totals.monthly_compute),
            monthly_storage: money(t.totals.monthly_storage),
            without_price: t.totals.vms_without_price,
        })
        .collect()
}

struct AgentView {
    id: String,
    version: String,
    last_seen: String,
    last_window: String,
    health: &'static str,
    buffer_depth: String,
    errors: String,
    last_error: String,
}

struct VcenterView {
    name: String,
    url: String,
    version: String,
    collected: String,
    vms: String,
    hosts: String,
}

#[derive(Template)]
#[template(path = "overview.html")]
struct Overview {
    frame: Frame,
    vcenters: Vec<VcenterView>,
    agents: Vec<AgentView>,
    power: Vec<(String, u64)>,
    vm_count: usize,
    with_figures: usize,
    history: String,
    latest_window: String,
    totals: Vec<TotalsView>,
    built: String,
}

fn text(v: &Value, key: &str) -> String {
    match v.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => DASH.to_owned(),
        Some(other) => other.to_string(),
    }
}

/// An agent is healthy when it reported within 15 minutes without errors in its last
/// health record; said in words, not colour.
fn agent_view(a: &Value, now: i64) -> AgentView {
    let seen = a.get("last_seen_at").and_then(Value::as_i64).unwrap_or(0);
    let errors = a.get("errors").and_then(Value::as_u64).unwrap_or(0);
    let health = match (now - seen > 900, errors > 0) {
        (true, _) => "Silent",
        (false, true) => "Errors",
        (false, false) => "Healthy",
    };
    AgentView {
        id: text(a, "agent_id"),
        version: text(a, "version"),
        last_seen: ago(now, seen),
        last_window: a
            .get("last_window_end")
            .and_then(Value::as_i64)
            .map_or(DASH.to_owned(), date),
        health,
        buffer_depth: text(a, "buffer_depth"),
        errors: errors.to_string(),
        last_error: text(a, "last_error"),
    }
}

pub(super) async fn overview(
    State(st): State<AppState>,
    Extension(p): Extension<Principal>,
) -> Result<Response, PageError> {
    let store = st.store.clone();
    let (vcenters, agents) = blocking(move || Ok((store.vcenters()?, store.agents(None)?))).await?;
    let f = fleet(&st).await?;
    let now = view::now_s();
    let mut power: BTreeMap<String, u64> = BTreeMap::new();
    for vm in &f.vms {
        *power.entry(vm.power.clone()).or_default() += 1;
    }
    let h = &f.assessment.history;
    let page = Overview {
        frame: Frame::new(&p, "overview"),
        vcenters: vcenters
            .iter()
            .map(|v| VcenterView {
                name: text(v, "vcenter"),
                url: text(v, "url"),
                version: v
                    .pointer("/about/version")
                    .and_then(Value::as_str)
                    .unwrap_or(DASH)
                    .to_owned(),
                collected: v
                    .get("collected_at")
                    .and_then(Value::as_i64)
                    .map_or(DASH.to_owned(), |t| ago(now, t)),
                vms: text(v, "vms"),
                hosts: text(v, "hosts"),
            })
            .collect(),
        agents: agents.iter().map(|a| agent_view(a, now)).collect(),
        power: power.into_iter().collect(),
        vm_count: f.vms.len(),
        with_figures: f.vms.iter().filter(|v| v.cpu_pct.is_some()).count(),
        history: format!(
            "{} of {} days",
            view::span_days(h.held_days),
            h.requested_days
        ),
        latest_window: h.held_to.map_or(DASH.to_owned(), date),
        totals: totals_view(&f.assessment),
        built: format!("{} (after {} batches)", date(f.built_at), f.batches),
    };
    Ok(html(&page))
}

/// The VM list's query: filters, sort and page.
#[derive(Debug, Default, Deserialize)]
pub(super) struct VmsQuery {
    /// Part of the name (any case).
    #[serde(default)]
    q: String,
    #[serde(default)]
    power: String,
    #[serde(default)]
    cluster: String,
    #[serde(default)]
    sort: String,
    #[serde(default)]
    dir: String,
    page: Option<usize>,
}

struct VmLine {
    id_q: String,
    name: String,
    vcenter: String,
    datacenter: String,
    cluster: String,
    power: String,
    vcpus: u32,
    memory: String,
    storage: String,
    cpu: String,
    mem: String,
    targets: Vec<(String, String, &'static str)>,
    stars: String,
}

struct SortLink {
    label: String,
    href: String,
    /// `ascending`, `descending` or `none` (aria-sort).
    state: &'static str,
}

#[derive(Template)]
#[template(path = "vms.html")]
struct VmsPage {
    frame: Frame,
    q: String,
    power: String,
    cluster: String,
    powers: Vec<String>,
    headers: Vec<SortLink>,
    targets: Vec<String>,
    lines: Vec<VmLine>,
    matched: usize,
    total: usize,
    page: usize,
    pages: usize,
    prev: Option<String>,
    next: Option<String>,
    percentile: u32,
    built: String,
}

/// The sortable columns: key, label.
const COLUMNS: [(&str, &str); 13] = [
    ("name", "Name"),
    ("vcenter", "vCenter"),
    ("datacenter", "Datacenter"),
    ("cluster", "Cluster"),
    ("power", "Power"),
    ("vcpu", "vCPU"),
    ("memory", "Memory GiB"),
    ("storage", "Storage GiB"),
    ("cpu", "CPU %"),
    ("mem", "Memory %"),
    ("cost0", "Cost 1"),
    ("cost1", "Cost 2"),
    ("stars", "Confidence"),
];

fn cmp_opt(a: Option<f64>, b: Option<f64>) -> std::cmp::Ordering {
    // Unknown sorts last either way round of the rest.
    match (a, b) {
        (Some(x), Some(y)) => x.total_cmp(&y),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => std::cmp::Ordering::Equal,
    }
}

fn sort_vms(vms: &mut [&FleetVm], key: &str, descending: bool) {
    let cost = |v: &FleetVm, i: usize| v.targets.get(i).and_then(|t| t.monthly);
    vms.sort_by(|a, b| {
        let o = match key {
            "vcenter" => a.vcenter.cmp(&b.vcenter),
            "datacenter" => a.datacenter.cmp(&b.datacenter),
            "cluster" => a.cluster.cmp(&b.cluster),
            "power" => a.power.cmp(&b.power),
            "vcpu" => a.vcpus.cmp(&b.vcpus),
            "memory" => a.memory_gib.total_cmp(&b.memory_gib),
            "storage" => a.storage_gib.total_cmp(&b.storage_gib),
            "cpu" => cmp_opt(a.cpu_pct, b.cpu_pct),
            "mem" => cmp_opt(a.memory_pct, b.memory_pct),
            "cost0" => cmp_opt(cost(a, 0), cost(b, 0)),
            "cost1" => cmp_opt(cost(a, 1), cost(b, 1)),
            "stars" => a.stars.cmp(&b.stars),
            _ => std::cmp::Ordering::Equal,
        };
        let o = if descending { o.reverse() } else { o };
        o.then_with(|| a.name.cmp(&b.name))
            .then_with(|| a.id.cmp(&b.id))
    });
}

pub(super) async fn vms(
    State(st): State<AppState>,
    Extension(p): Extension<Principal>,
    Query(q): Query<VmsQuery>,
) -> Result<Response, PageError> {
    let f = fleet(&st).await?;
    Ok(html(&vms_view(&f, Frame::new(&p, "vms"), q)))
}

/// The VM list as HTML for a query string (`q=…&sort=…`), for the bench: what a
/// request for it renders once the estate's build is cached.
pub fn vm_list_html(f: &Fleet, query: &str) -> Result<String, String> {
    let q: VmsQuery = serde_urlencoded::from_str(query).map_err(|e| e.to_string())?;
    let frame = Frame {
        user: "bench".into(),
        section: "vms",
    };
    vms_view(f, frame, q).render().map_err(|e| e.to_string())
}

/// The column headers: each a link sorting by it (the current one the other way round).
fn sort_links(
    f: &Fleet,
    key: &str,
    descending: bool,
    targets: usize,
    link: &dyn Fn(&str, &str) -> String,
) -> Vec<SortLink> {
    COLUMNS
        .iter()
        .filter(|(k, _)| {
            !k.starts_with("cost") || k[4..].parse::<usize>().is_ok_and(|i| i < targets)
        })
        .map(|(k, label)| {
            let label = match k.strip_prefix("cost").and_then(|i| i.parse::<usize>().ok()) {
                Some(i) => format!("{} $/month", f.assessment.targets[i].target.as_str()),
                None => (*label).to_owned(),
            };
            let here = *k == key;
            let dir = if here && !descending { "desc" } else { "asc" };
            SortLink {
                label,
                href: link(k, dir),
                state: match (here, descending) {
                    (false, _) => "none",
                    (true, false) => "ascending",
                    (true, true) => "descending",
                },
            }
        })
        .collect()
}

/// A VM's row of the list, its figures written out.
fn vm_line(v: &FleetVm) -> VmLine {
    VmLine {
        id_q: view::query(&[("id", &v.id)]),
        name: v.name.clone(),
        vcenter: v.vcenter.clone(),
        datacenter: v.datacenter.clone(),
        cluster: view::cluster(&v.cluster),
        power: v.power.clone(),
        vcpus: v.vcpus,
        memory: num(v.memory_gib, 1),
        storage: num(v.storage_gib, 1),
        cpu: opt(v.cpu_pct, 1, ""),
        mem: opt(v.memory_pct, 1, ""),
        targets: v
            .targets
            .iter()
            .map(|t| {
                (
                    t.size.clone().unwrap_or_else(|| DASH.to_owned()),
                    t.monthly.map_or(DASH.to_owned(), money),
                    t.readiness,
                )
            })
            .collect(),
        stars: view::stars(v.stars),
    }
}

/// One page of the VM list: the estate filtered, sorted and cut on the server.
fn vms_view(f: &Fleet, frame: Frame, q: VmsQuery) -> VmsPage {
    let needle = q.q.to_lowercase();
    let mut matched: Vec<&FleetVm> = f
        .vms
        .iter()
        .filter(|v| needle.is_empty() || v.name.to_lowercase().contains(&needle))
        .filter(|v| q.power.is_empty() || v.power == q.power)
        .filter(|v| q.cluster.is_empty() || v.cluster == q.cluster)
        .collect();
    let key = if COLUMNS.iter().any(|(k, _)| *k == q.sort) {
        q.sort.as_str()
    } else {
        "name"
    };
    let descending = q.dir == "desc";
    sort_vms(&mut matched, key, descending);
    let pages = matched.len().div_ceil(PAGE_ROWS).max(1);
    let page = q.page.unwrap_or(1).clamp(1, pages);
    let targets: Vec<String> = f
        .assessment
        .targets
        .iter()
        .map(|t| format!("{} {}", t.target.as_str(), t.region))
        .collect();
    let link = |sort: &str, dir: &str, page: usize| {
        let page = page.to_string();
        format!(
            "/vms?{}",
            view::query(&[
                ("q", &q.q),
                ("power", &q.power),
                ("cluster", &q.cluster),
                ("sort", sort),
                ("dir", dir),
                ("page", &page),
            ])
        )
    };
    let headers = sort_links(f, key, descending, targets.len(), &|k, dir| link(k, dir, 1));
    let lines = matched
        .iter()
        .skip((page - 1) * PAGE_ROWS)
        .take(PAGE_ROWS)
        .map(|v| vm_line(v))
        .collect();
    let mut powers: Vec<String> = f.vms.iter().map(|v| v.power.clone()).collect();
    powers.sort();
    powers.dedup();
    VmsPage {
        frame,
        headers,
        targets,
        lines,
        matched: matched.len(),
        total: f.vms.len(),
        page,
        pages,
        prev: (page > 1).then(|| link(key, &q.dir, page - 1)),
        next: (page < pages).then(|| link(key, &q.dir, page + 1)),
        percentile: f.assessment.settings.percentile,
        built: date(f.built_at),
        powers,
        q: q.q,
        power: q.power,
        cluster: q.cluster,
    }
}

#[derive(Template)]
#[template(path = "table.html")]
struct TablePage {
    frame: Frame,
    title: &'static str,
    headers: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

fn yes_no(b: Option<bool>) -> String {
    b.map_or(DASH, |b| if b { "yes" } else { "no" }).to_owned()
}

fn show<T: ToString>(v: Option<T>) -> String {
    v.map_or(DASH.to_owned(), |v| v.to_string())
}

/// The lists of hosts, clusters and datastores: each kind's page, its columns and a
/// row of one entity.
#[derive(Debug, Clone, Copy)]
pub(super) enum Kind {
    Hosts,
    Clusters,
    Datastores,
}

impl Kind {
    fn section(self) -> &'static str {
        match self {
            Kind::Hosts => "hosts",
            Kind::Clusters => "clusters",
            Kind::Datastores => "datastores",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Kind::Hosts => "Hosts",
            Kind::Clusters => "Clusters",
            Kind::Datastores => "Datastores",
        }
    }

    fn headers(self) -> Vec<&'static str> {
        let own: &[&str] = match self {
            Kind::Hosts => &[
                "Cluster",
                "Model",
                "CPU",
                "Cores",
                "MHz",
                "Memory GiB",
                "ESXi",
                "State",
                "Maintenance",
            ],
            Kind::Clusters => &[
                "Hosts",
                "Effective hosts",
                "CPU MHz",
                "Memory GiB",
                "HA",
                "DRS",
            ],
            Kind::Datastores => &[
                "Type",
                "Capacity GiB",
                "Free GiB",
                "Free %",
                "Uncommitted GiB",
                "Accessible",
            ],
        };
        ["Name", "vCenter", "Datacenter"]
            .into_iter()
            .chain(own.iter().copied())
            .collect()
    }

    /// A row per entity of this kind in one vCenter's inventory.
    fn rows(self, inv: &vscout_wire::inventory::VcenterInventory) -> Vec<Vec<String>> {
        let vc = inv.name.to_string();
        let row = |name: &str, dc: &str, own: Vec<String>| {
            [name.to_owned(), vc.clone(), dc.to_owned()]
                .into_iter()
                .chain(own)
                .collect()
        };
        match self {
            Kind::Hosts => inv
                .hosts
                .iter()
                .map(|h| {
                    row(
                        &h.name,
                        &h.datacenter,
                        vec![
                            view::cluster(&h.cluster),
                            show(h.model.as_ref()),
                            show(h.cpu_model.as_ref()),
                            show(h.cpu_cores),
                            show(h.cpu_mhz),
                            gib(h.memory_bytes),
                            show(h.esxi_version.as_ref()),
                            show(h.connection_state.as_ref()),
                            yes_no(h.in_maintenance_mode),
                        ],
                    )
                })
                .collect(),
            Kind::Clusters => inv
                .clusters
                .iter()
                .map(|c| {
                    row(
                        &c.name,
                        &c.datacenter,
                        vec![
                            show(c.num_hosts),
                            show(c.num_effective_hosts),
                            show(c.total_cpu_mhz),
                            gib(c.total_memory_bytes),
                            yes_no(c.ha_enabled),
                            yes_no(c.drs_enabled),
                        ],
                    )
                })
                .collect(),
            Kind::Datastores => inv
                .datastores
                .iter()
                .map(|d| {
                    let free_pct = match (d.free_bytes, d.capacity_bytes) {
                        (Some(f), Some(c)) if c > 0 => num(f as f64 / c as f64 * 100.0, 1),
                        _ => DASH.to_owned(),
                    };
                    row(
                        &d.name,
                        &d.datacenter,
                        vec![
                            show(d.kind.as_ref()),
                            gib(d.capacity_bytes),
                            gib(d.free_bytes),
                            free_pct,
                            gib(d.uncommitted_bytes),
                            yes_no(d.accessible),
                        ],
                    )
                })
                .collect(),
        }
    }
}

/// A list of one entity kind from every vCenter's latest inventory.
async fn entity_page(st: AppState, p: Principal, kind: Kind) -> Result<Response, PageError> {
    let store = st.store.clone();
    let rows = blocking(move || {
        let mut out = Vec::new();
        for inv in store.inventories()? {
            out.extend(kind.rows(&inv));
        }
        Ok(out)
    })
    .await?;
    Ok(html(&TablePage {
        frame: Frame::new(&p, kind.section()),
        title: kind.title(),
        headers: kind.headers(),
        rows,
    }))
}

pub(super) async fn hosts(
    State(st): State<AppState>,
    Extension(p): Extension<Principal>,
) -> Result<Response, PageError> {
    entity_page(st, p, Kind::Hosts).await
}

pub(super) async fn clusters(
    State(st): State<AppState>,
    Extension(p): Extension<Principal>,
) -> Result<Response, PageError> {
    entity_page(st, p, Kind::Clusters).await
}

pub(super) async fn datastores(
    State(st): State<AppState>,
    Extension(p): Extension<Principal>,
) -> Result<Response, PageError> {
    entity_page(st, p, Kind::Datastores).await
}
