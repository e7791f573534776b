//! Performance collection against vcsim: every counter vcsim serves arrives for every
//! powered-on VM, polls take every sample exactly once (no duplicates, no gaps, a late
//! poll catches up), targets follow power state, and too-large requests are halved.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;

use vscout::inventory::VcenterInventory;
use vscout::perf::{
    grid_slot, vcenter_now_ms, Poller, SampleSink, SeriesId, SeriesKey, SeriesTable,
};
use vscout::vsphere::{Client, MoRef};
use vscout_e2e::proxy::Proxy;
use vscout_e2e::{admin, run_vscout, Estate, SimOptions, PASSWORD};

/// Connects to `url` (vcsim, or a proxy in front of it) and takes the inventory.
async fn connect_and_inventory(e: &Estate, url: &str) -> (Client, VcenterInventory) {
    let client = Client::connect(&e.client_config(url, 500).expect("cfg"))
        .await
        .expect("connect");
    let inv = vscout::inventory::collect(&client)
        .await
        .expect("inventory");
    (client, inv)
}

/// Connects to `url`, takes the inventory for its targets, and makes a poller with these
/// `[perf]` lines.
async fn connect_and_poll_setup(e: &Estate, url: &str, perf: &str) -> (Client, Vec<MoRef>, Poller) {
    let (client, inv) = connect_and_inventory(e, url).await;
    let targets = Poller::targets(&inv);
    let cfg = e.perf_config(perf).expect("perf cfg");
    let poller = Poller::new(&client, &cfg).await.expect("poller");
    (client, targets, poller)
}

/// Takes inventories until their targets satisfy `done` (vcsim completes power tasks
/// asynchronously), for at most five seconds; returns the last targets.
async fn targets_once(client: &Client, done: impl Fn(&[MoRef]) -> bool) -> Vec<MoRef> {
    let mut targets = Vec::new();
    for _ in 0..50 {
        let inv = vscout::inventory::collect(client).await.expect("inventory");
        targets = Poller::targets(&inv);
        if done(&targets) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    targets
}

/// Records every sample a poll hands over, by series number.
#[derive(Default)]
struct Recorder {
    table: SeriesTable,
    by_id: BTreeMap<SeriesId, Vec<i64>>,
}

impl SampleSink for Recorder {
    fn series(&mut self) -> &mut SeriesTable {
        &mut self.table
    }

    fn sample(&mut self, id: SeriesId, slot_ms: i64, _raw: i64) {
        self.by_id.entry(id).or_default().push(slot_ms);
    }
}

impl Recorder {
    /// Every series' sample slots, by the series' words.
    fn samples(&self) -> BTreeMap<SeriesKey, Vec<i64>> {
        self.by_id
            .iter()
            .map(|(id, ts)| (self.table.key(*id).expect("a numbered series"), ts.clone()))
            .collect()
    }
}

#[test]
fn perf_once_rolls_up_every_served_counter_of_every_powered_on_vm() {
    let e = Estate::start(&SimOptions {
        vms_per_pool: 3,
        ..SimOptions::default()
    })
    .expect("vcsim");
    let cfg = e.agent_config(PASSWORD, "").expect("cfg");
    let out = e.path("rollups.jsonl");
    let run = run_vscout(&[
        "--config",
        &cfg,
        "perf",
        "--once",
        "--window-secs",
        "300",
        "--output",
        &out,
    ])
    .expect("run");
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let rollups: Vec<vscout::perf::Rollup> = std::fs::read_to_string(&out)
        .expect("read")
        .lines()
        .map(|l| serde_json::from_str(l).expect("rollup json"))
        .collect();
    let mut counters_by_vm: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for r in &rollups {
        // Real-time: 15 samples of 20 s; clusters and datastores: one 5-minute sample.
        let realtime = r.entity_type == "VirtualMachine" || r.entity_type == "HostSystem";
        let per_window = if realtime { 15 } else { 1 };
        assert_eq!((r.window_secs, r.expected_samples), (300, per_window));
        let s = r.stats.expect("stats");
        assert_eq!(s.count, per_window, "a complete 5-minute window: {r:?}");
        assert!(s.min <= s.p50 && s.p50 <= s.p95 && s.p95 <= s.p99 && s.p99 <= s.max);
        assert!(
            ["rate", "absolute", "delta"].contains(&r.stats_type.as_str()),
            "{r:?}"
        );
        if r.entity_type == "VirtualMachine" {
            counters_by_vm
                .entry(r.entity_id.to_string())
                .or_default()
                .insert(r.counter.to_string());
        }
    }
    // vcsim: 2 pools (a cluster and a standalone host) × 3 VMs, all powered on.
    assert_eq!(counters_by_vm.len(), 6);
    let first = counters_by_vm.values().next().expect("a VM").clone();
    assert!(
        first.contains("cpu.usage.average") && first.contains("mem.usage.average"),
        "{first:?}"
    );
    assert!(
        counters_by_vm.values().all(|c| *c == first),
        "every VM has the same counters"
    );
    assert!(rollups.iter().any(|r| r.entity_type == "HostSystem"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consecutive_and_late_polls_take_every_sample_once() {
    let e = Estate::start(&SimOptions::default()).expect("vcsim");
    let (client, inv) = connect_and_inventory(&e, &e.sim.url).await;
    // Real-time entities only: clusters and datastores have their own 5-minute grid.
    let targets: Vec<_> = Poller::targets(&inv)
        .into_iter()
        .filter(|t| t.kind == "VirtualMachine" || t.kind == "HostSystem")
        .collect();
    let cfg = e.perf_config("").expect("perf cfg");
    let mut poller = Poller::new(&client, &cfg).await.expect("poller");
    let mut rec = Recorder::default();

    let t0 = vcenter_now_ms(&client).await.expect("now");
    let first = poller
        .poll(&client, &targets, t0, 300_000, &mut rec)
        .await
        .expect("poll 1");
    assert!(first.samples > 0, "{first:?}");
    // A poll right after (overlapping range), then one 3 minutes late.
    let t1 = t0 + 7_000;
    let second = poller
        .poll(&client, &targets, t1, 300_000, &mut rec)
        .await
        .expect("poll 2");
    let t2 = t1 + 180_000;
    let third = poller
        .poll(&client, &targets, t2, 300_000, &mut rec)
        .await
        .expect("poll 3");
    // vcsim stamps samples back from each request's end, off vCenter's 20-second grid:
    // every sample is placed on its slot (issue 11: windows held more samples than
    // slots). vcsim also drops zero values from a series, which vscout must discard (and
    // count) rather than misalign; such a series misses that poll's samples. Every other
    // series holds one sample per slot from its first to the slot of vCenter's now at the
    // late poll: the first five minutes, the quick poll, and the three minutes the late
    // poll recovered, without a gap or a repeat.
    let last_slot = grid_slot(t2, 20);
    assert!(
        third.off_grid > 0,
        "vcsim's timestamps are off the grid: {third:?}"
    );
    for (key, ts) in &rec.samples() {
        assert!(
            ts.iter().all(|t| t % 20_000 == 0),
            "{key:?}: every sample on the grid: {ts:?}"
        );
        let mut sorted = ts.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), ts.len(), "{key:?}: one sample per slot");
        assert!(
            sorted[0] > t0 - 300_000,
            "{key:?}: nothing at or before the first range's start"
        );
        assert!(*sorted.last().expect("samples") <= last_slot);
    }
    let complete: Vec<_> = rec
        .samples()
        .into_iter()
        .filter(|(_, ts)| {
            let mut sorted = (*ts).clone();
            sorted.sort_unstable();
            sorted.windows(2).all(|w| w[1] - w[0] == 20_000)
                && sorted.last() == Some(&last_slot)
                && sorted.len() >= 20
        })
        .collect();
    assert!(
        complete.len() * 2 > rec.samples().len(),
        "most series are complete (no gap from the first five minutes to now): {} of {}",
        complete.len(),
        rec.samples().len()
    );
    let misaligned = first.misaligned_series + second.misaligned_series + third.misaligned_series;
    assert!(misaligned > 0, "vcsim's dropped zeros are seen and counted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn targets_follow_power_state_without_a_restart() {
    let e = Estate::start(&SimOptions::default()).expect("vcsim");
    let (client, inv) = connect_and_inventory(&e, &e.sim.url).await;
    let before = Poller::targets(&inv);
    let victim = inv.vms[0].id.to_string();
    let cookie = client.session_cookie().expect("cookie");
    admin::power_off(&e.sim.url, &e.certs.ca_pem, &cookie, &victim)
        .await
        .expect("power off");
    let after = targets_once(&client, |t| t.len() < before.len()).await;
    assert_eq!(after.len(), before.len() - 1);
    assert!(!after.iter().any(|t| t.value == victim.as_str()));

    let cfg = e.perf_config("").expect("perf cfg");
    let mut poller = Poller::new(&client, &cfg).await.expect("poller");
    let mut rec = Recorder::default();
    let now = vcenter_now_ms(&client).await.expect("now");
    poller
        .poll(&client, &after, now, 60_000, &mut rec)
        .await
        .expect("poll");
    assert!(rec.samples().keys().all(|k| k.entity_id != victim.as_str()));
    assert!(rec
        .samples()
        .keys()
        .any(|k| k.entity_type == "VirtualMachine"));

    // Powered on again, it is picked up by the next inventory and polled from then on.
    admin::power_on(&e.sim.url, &e.certs.ca_pem, &cookie, &victim)
        .await
        .expect("power on");
    let again = targets_once(&client, |t| t.len() == before.len()).await;
    assert!(again.iter().any(|t| t.value == victim.as_str()));
    rec.table.retain(&again, |_| false);
    let now = vcenter_now_ms(&client).await.expect("now");
    poller
        .poll(&client, &again, now, 60_000, &mut rec)
        .await
        .expect("poll");
    assert!(
        rec.samples().keys().any(|k| k.entity_id == victim.as_str()),
        "the VM is polled again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_vcenter_finds_too_large_is_halved_until_it_passes() {
    let e = Estate::start(&SimOptions {
        vms_per_pool: 4,
        ..SimOptions::default()
    })
    .expect("vcsim");
    // vcsim has no request limits; the proxy refuses QueryPerf with more than 3 entities
    // the way vCenter refuses requests over its limits.
    let proxy = Proxy::start(&e.sim.url, &e.certs, 0).await.expect("proxy");
    proxy.state.max_perf_specs.store(3, Ordering::SeqCst);
    let (client, targets, mut poller) =
        connect_and_poll_setup(&e, &proxy.url, "max_entities_per_query = 256").await;
    assert!(targets.len() > 8);
    let mut rec = Recorder::default();
    let now = vcenter_now_ms(&client).await.expect("now");
    let report = poller
        .poll(&client, &targets, now, 60_000, &mut rec)
        .await
        .expect("poll");
    assert!(report.halvings >= 2, "{report:?}");
    assert!(proxy.state.perf_refusals.load(Ordering::SeqCst) >= 1);
    let samples = rec.samples();
    let entities: BTreeSet<&str> = samples.keys().map(|k| k.entity_id.as_str()).collect();
    assert_eq!(
        entities.len(),
        targets.len(),
        "every entity's samples arrive after halving"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_without_data_are_reported_by_name() {
    let e = Estate::start(&SimOptions::default()).expect("vcsim");
    let (client, targets, poller) = connect_and_poll_setup(
        &e,
        &e.sim.url,
        "vm_counters = [\"cpu.usage.average\", \"mem.usage.average\", \"no.such.counter\"]",
    )
    .await;
    let (vm, _) = poller.resolved();
    assert_eq!(
        vm.missing,
        vec!["no.such.counter"],
        "unknown to the catalog"
    );
    let unavailable = poller
        .unavailable(&client, &targets)
        .await
        .expect("available metrics");
    assert!(
        !unavailable.contains(&"vm:cpu.usage.average".to_string()),
        "{unavailable:?}"
    );
    assert!(unavailable
        .iter()
        .all(|u| u.starts_with("vm:") || u.starts_with("host:")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clusters_and_datastores_are_asked_for_five_minute_data_apart_from_real_time() {
    let e = Estate::start(&SimOptions {
        clusters: 2,
        datastores: 2,
        ..SimOptions::default()
    })
    .expect("vcsim");
    let proxy = Proxy::start(&e.sim.url, &e.certs, 0).await.expect("proxy");
    let (client, targets, mut poller) = connect_and_poll_setup(&e, &proxy.url, "").await;
    assert!(targets.iter().any(|t| t.kind == "ClusterComputeResource"));
    assert!(targets.iter().any(|t| t.kind == "Datastore"));
    let mut rec = Recorder::default();
    let now = vcenter_now_ms(&client).await.expect("now");
    let report = poller
        .poll(&client, &targets, now, 300_000, &mut rec)
        .await
        .expect("poll");

    let bodies = proxy.state.perf_bodies.lock().expect("bodies").clone();
    let historical: Vec<&String> = bodies
        .iter()
        .filter(|b| b.contains("<intervalId>300</intervalId>"))
        .collect();
    assert!(!historical.is_empty(), "a historical request was sent");
    for b in &historical {
        assert!(
            !b.contains(r#"type="VirtualMachine""#) && !b.contains(r#"type="HostSystem""#),
            "real-time entities are not in historical requests"
        );
        // The range ends on a 5-minute boundary.
        let end = b
            .split("<endTime>")
            .nth(1)
            .and_then(|r| r.split("</endTime>").next())
            .expect("endTime");
        let ms = vscout::vsphere::datetime::parse_unix_millis(end).expect("time");
        assert_eq!(ms % 300_000, 0, "{end}");
    }
    assert!(bodies.iter().any(
        |b| b.contains("<intervalId>20</intervalId>") && b.contains(r#"type="VirtualMachine""#)
    ));
    assert_eq!(report.failed_requests, 0, "{report:?}");
    assert!(rec
        .samples()
        .keys()
        .any(|k| k.entity_type == "VirtualMachine"));
    let cluster_series: Vec<_> = rec
        .samples()
        .into_iter()
        .filter(|(k, _)| k.entity_type == "ClusterComputeResource")
        .collect();
    assert!(
        !cluster_series.is_empty(),
        "vcsim serves cluster statistics"
    );
    for (key, ts) in cluster_series {
        assert!(
            ts.iter().all(|t| t % 300_000 == 0),
            "{key:?}: 5-minute samples {ts:?}"
        );
        assert!(
            ts.len() > 1,
            "{key:?}: the lookback reaches several intervals back"
        );
    }
}
