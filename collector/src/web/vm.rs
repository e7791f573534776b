//! One VM: its inventory (disks, NICs, partitions, snapshots), charts of CPU, memory,
//! disk IOPS and MB/s and network over a chosen range (each window's p95 and maximum),
//! and the assessment for each target with every size refused and why.

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Extension;
use serde::Deserialize;

use super::chart::{self, Line};
use super::pages::Frame;
use super::view::{self, gib, money, money_or, num, opt, DASH};
use super::{html, PageError};
use crate::assess::estate::{assess_vm, VmAssessment};
use crate::assess::settings::{Params, Settings, Setup};
use crate::server::{blocking, AppState};
use crate::store::{EntityKind, MetricsQuery, MetricsRow, Principal, Storage, StoreError};

/// Ranges offered, in days.
const RANGES: [u32; 3] = [1, 7, 30];
/// Points per line at most (about one per horizontal pixel).
const POINTS: usize = 600;

#[derive(Debug, Deserialize)]
pub(super) struct VmQuery {
    id: String,
    days: Option<u32>,
}

/// A chart: its title, unit, and how to read a window's value from the counters
/// (each counter's figure summed over its instances, the counters then combined).
struct ChartSpec {
    title: &'static str,
    unit: &'static str,
    counters: &'static [&'static str],
    /// Multiplies the sum (KB/s → MB/s, KB/s → Mbit/s).
    scale: f64,
}

const CHARTS: [ChartSpec; 5] = [
    ChartSpec {
        title: "CPU",
        unit: "%",
        counters: &["cpu.usage.average"],
        scale: 1.0,
    },
    ChartSpec {
        title: "Memory",
        unit: "%",
        counters: &["mem.usage.average"],
        scale: 1.0,
    },
    ChartSpec {
        title: "Disk IOPS",
        unit: "IO/s",
        counters: &[
            "virtualDisk.numberReadAveraged.average",
            "virtualDisk.numberWriteAveraged.average",
        ],
        scale: 1.0,
    },
    ChartSpec {
        title: "Disk throughput",
        unit: "MB/s",
        counters: &["virtualDisk.read.average", "virtualDisk.write.average"],
        scale: 1.0 / 1024.0,
    },
    ChartSpec {
        title: "Network",
        unit: "Mbit/s",
        counters: &["net.received.average", "net.transmitted.average"],
        scale: 8.0 / 1024.0,
    },
];

struct ChartView {
    title: &'static str,
    unit: &'static str,
    svg: String,
    points: usize,
    peak: String,
}

struct TargetView {
    target: String,
    region: String,
    size: String,
    monthly: String,
    compute: String,
    storage: String,
    readiness: &'static str,
    reasons: Vec<String>,
    disks: Vec<[String; 4]>,
    refused: Vec<(String, String)>,
    notes: Vec<String>,
}

#[derive(Template)]
#[template(path = "vm.html")]
struct VmPage {
    frame: Frame,
    id: String,
    name: String,
    facts: Vec<(&'static str, String)>,
    disks: Vec<[String; 6]>,
    nics: Vec<[String; 5]>,
    partitions: Vec<[String; 4]>,
    snapshots: Vec<[String; 4]>,
    ranges: Vec<(u32, String, bool)>,
    days: u32,
    /// When the VM's data starts, if within the range.
    held_from: Option<String>,
    charts: Vec<ChartView>,
    targets: Vec<TargetView>,
    percentile: u32,
    coverage: String,
    stars: String,
}

/// Per chart, per counter, the rows read.
type ChartRows = Vec<Vec<Vec<MetricsRow>>>;

/// A window's value of one counter: the aggregate instance (`""`, or vcsim's `*`) where
/// the VM has one, else the sum of its instances (per disk).
fn per_window(rows: &[MetricsRow], stat: fn(&MetricsRow) -> Option<f64>) -> BTreeMap<i64, f64> {
    let mut total: BTreeMap<i64, (f64, bool)> = BTreeMap::new();
    for r in rows {
        let Some(v) = stat(r) else { continue };
        let whole = r.instance.is_empty() || r.instance == "*";
        let e = total.entry(r.window_start).or_insert((0.0, false));
        match (whole, e.1) {
            (true, _) => *e = (v, true),
            (false, false) => e.0 += v,
            (false, true) => {}
        }
    }
    total.into_iter().map(|(t, (v, _))| (t, v)).collect()
}

fn chart_of(spec: &ChartSpec, rows: &[Vec<MetricsRow>], from: i64, to: i64) -> ChartView {
    let line = |stat: fn(&MetricsRow) -> Option<f64>| {
        let mut sum: BTreeMap<i64, f64> = BTreeMap::new();
        for counter_rows in rows {
            for (t, v) in per_window(counter_rows, stat) {
                *sum.entry(t).or_default() += v * spec.scale;
            }
        }
        let pts: Vec<(i64, f64)> = sum.into_iter().collect();
        chart::thin(&pts, from, to, POINTS)
    };
    let p95 = line(|r| r.p95);
    let max = line(|r| r.max);
    let peak = max.iter().map(|p| p.1).fold(f64::NAN, f64::max);
    let lines = [
        Line {
            label: "maximum",
            class: "max",
            points: max,
        },
        Line {
            label: "p95",
            class: "p95",
            points: p95,
        },
    ];
    ChartView {
        title: spec.title,
        unit: spec.unit,
        svg: chart::svg(spec.title, spec.unit, &lines, from, to),
        points: lines.iter().map(|l| l.points.len()).sum(),
        peak: if peak.is_nan() {
            DASH.to_owned()
        } else {
            format!("{} {}", num(peak, 1), spec.unit)
        },
    }
}

/// The VM's assessment and its rows of every charted counter over `[from, to]`.
fn read(
    store: &dyn Storage,
    setup: &Setup,
    settings: &Settings,
    id: &str,
    from: i64,
    to: i64,
) -> Result<Option<(VmAssessment, ChartRows)>, StoreError> {
    let (vcenter, vm) = match id.rsplit_once(':') {
        Some((vc, vm)) => (Some(vc), vm),
        None => (None, id),
    };
    let Some(a) = assess_vm(store, &setup.catalog, settings, to, vcenter, vm)? else {
        return Ok(None);
    };
    let full_id = format!("{}:{}", a.vcenter, a.vm.id);
    let mut charts = Vec::with_capacity(CHARTS.len());
    for spec in &CHARTS {
        let mut per_counter = Vec::with_capacity(spec.counters.len());
        for c in spec.counters {
            let q = MetricsQuery {
                counter: Some((*c).to_owned()),
                from: Some(from),
                to: Some(to),
                vcenter: None,
            };
            per_counter.push(
                store
                    .metrics(EntityKind::Vm, &full_id, &q)?
                    .unwrap_or_default(),
            );
        }
        charts.push(per_counter);
    }
    Ok(Some((a, charts)))
}

fn text<T: AsRef<str>>(v: Option<T>) -> String {
    v.map_or(DASH.to_owned(), |s| s.as_ref().to_owned())
}

fn targets_view(a: &VmAssessment) -> Vec<TargetView> {
    a.judged
        .per_target
        .iter()
        .map(|(d, r)| TargetView {
            target: r.target.as_str().to_owned(),
            region: r.region.clone(),
            size: r
                .recommended
                .as_ref()
                .map_or("no size fits".to_owned(), |s| {
                    format!(
                        "{} ({} vCPU, {} GiB)",
                        s.size,
                        s.vcpus,
                        num(s.memory_gib, 1)
                    )
                }),
            monthly: money_or(r.monthly_cost.total, "no price"),
            compute: money_or(r.monthly_cost.compute, "no price"),
            storage: money(r.monthly_cost.storage),
            readiness: r.readiness.status.as_str(),
            reasons: r.readiness.reasons.clone(),
            disks: r
                .disks
                .iter()
                .map(|k| {
                    [
                        k.disk.clone(),
                        text(k.tier.as_ref()),
                        k.size_gib.map_or(DASH.to_owned(), |g| g.to_string()),
                        k.refused
                            .clone()
                            .unwrap_or_else(|| money_or(k.monthly_cost, DASH)),
                    ]
                })
                .collect(),
            refused: d
                .refused
                .iter()
                .map(|(s, why)| (s.clone(), why.to_string()))
                .collect(),
            notes: r.notes.clone(),
        })
        .collect()
}

/// Facts, disks and NICs, as the page lists them.
type InventoryRows = (
    Vec<(&'static str, String)>,
    Vec<[String; 6]>,
    Vec<[String; 5]>,
);

fn inventory(a: &VmAssessment) -> InventoryRows {
    let vm = &a.vm;
    let facts = vec![
        ("vCenter", a.vcenter.clone()),
        ("Datacenter", vm.datacenter.to_string()),
        ("Cluster", vm.cluster.to_string()),
        ("Host", vm.host.to_string()),
        ("Power", text(vm.power_state.as_ref())),
        (
            "Guest OS",
            text(
                vm.guest_full_name
                    .as_ref()
                    .or(vm.tools_guest_full_name.as_ref()),
            ),
        ),
        (
            "vCPU",
            vm.num_cpu.map_or(DASH.to_owned(), |n| n.to_string()),
        ),
        ("Memory GiB", gib(vm.memory_bytes)),
        ("Hardware", text(vm.hardware_version.as_ref())),
        ("Firmware", text(vm.firmware.as_ref())),
        (
            "IP addresses",
            if vm.ip_addresses.is_empty() {
                DASH.to_owned()
            } else {
                vm.ip_addresses.join(", ")
            },
        ),
        ("Folder", vm.folder_path.to_string()),
    ];
    let disks = vm
        .disks
        .iter()
        .map(|d| {
            [
                d.label.to_string(),
                gib(d.capacity_bytes),
                d.datastore.to_string(),
                d.provisioning.to_string(),
                format!(
                    "{}:{}",
                    d.controller,
                    d.unit_number.map_or(DASH.to_owned(), |u| u.to_string())
                ),
                text(d.mode.as_ref()),
            ]
        })
        .collect();
    let nics = vm
        .nics
        .iter()
        .map(|n| {
            [
                n.label.to_string(),
                n.adapter_type.to_string(),
                n.network.to_string(),
                text(n.mac.as_ref()),
                n.connected
                    .map_or(DASH, |c| if c { "yes" } else { "no" })
                    .to_owned(),
            ]
        })
        .collect();
    (facts, disks, nics)
}

/// The page of the VM `id` over the `days` before `now` (Unix seconds); `None` if no
/// inventory holds it. What the handler runs on a blocking thread, and the bench times.
fn page_of(
    store: &dyn Storage,
    setup: &Setup,
    id: &str,
    days: u32,
    now: i64,
    frame: Frame,
) -> Result<Option<VmPage>, StoreError> {
    let from = now - i64::from(days) * 86_400;
    let settings = setup
        .settings(&Params::default())
        .map_err(|e| StoreError::Other(e.to_string()))?;
    let Some((a, rows)) = read(store, setup, &settings, id, from, now)? else {
        return Ok(None);
    };
    let (facts, disks, nics) = inventory(&a);
    let vm = &a.vm;
    let id_q = view::query(&[("id", id)]);
    // A VM watched for less than the range is drawn over what is held, not squeezed
    // into the range's right edge.
    let held = rows
        .iter()
        .flatten()
        .flatten()
        .map(|r| r.window_start)
        .min();
    let shown_from = held.map_or(from, |t| t.max(from));
    let first = a.judged.per_target.first().map(|(_, r)| r);
    let percentile = settings.applied().percentile;
    Ok(Some(VmPage {
        frame,
        id: id.to_owned(),
        name: vm.name.to_string(),
        facts,
        disks,
        nics,
        partitions: vm
            .partitions
            .iter()
            .map(|p| {
                [
                    p.path.to_string(),
                    gib(p.capacity_bytes),
                    gib(p.free_bytes),
                    text(p.filesystem.as_ref()),
                ]
            })
            .collect(),
        snapshots: vm
            .snapshots
            .iter()
            .map(|s| {
                [
                    s.name.to_string(),
                    text(s.created.as_ref()),
                    text(s.state.as_ref()),
                    s.parent.to_string(),
                ]
            })
            .collect(),
        ranges: RANGES
            .iter()
            .map(|d| (*d, format!("/vm?{id_q}&days={d}"), *d == days))
            .collect(),
        days,
        charts: CHARTS
            .iter()
            .zip(&rows)
            .map(|(spec, r)| chart_of(spec, r, shown_from, now))
            .collect(),
        held_from: (shown_from > from).then(|| view::date(shown_from)),
        targets: targets_view(&a),
        percentile,
        coverage: opt(a.judged.usage.coverage_pct, 0, " %"),
        stars: view::stars(first.and_then(|r| r.confidence.stars)),
    }))
}

/// The VM page as HTML, for the bench: what a request for it renders.
pub fn vm_html(
    store: &dyn Storage,
    setup: &Setup,
    id: &str,
    days: u32,
    now: i64,
) -> Result<Option<String>, StoreError> {
    let frame = Frame {
        user: "bench".into(),
        section: "vms",
    };
    Ok(page_of(store, setup, id, days, now, frame)?.and_then(|p| p.render().ok()))
}

pub(super) async fn detail(
    State(st): State<AppState>,
    Extension(p): Extension<Principal>,
    Query(q): Query<VmQuery>,
) -> Result<Response, PageError> {
    let days = q.days.filter(|d| RANGES.contains(d)).unwrap_or(7);
    let (store, setup, id, frame) = (
        st.store.clone(),
        st.assessment.clone(),
        q.id.clone(),
        Frame::new(&p, "vms"),
    );
    let now = view::now_s();
    let page =
        blocking(move || Ok(page_of(store.as_ref(), &setup, &id, days, now, frame)?)).await?;
    match page {
        Some(page) => Ok(html(&page)),
        None => Err(PageError(
            StatusCode::NOT_FOUND,
            format!("no VM {:?} in any inventory (ids are vcenter:vm-id)", q.id),
        )),
    }
}
