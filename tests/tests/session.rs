//! Sessions, views and paging against vcsim (and the fault proxy where vcsim lacks real
//! vCenter behaviour): no leaks over 100 rounds, expiry and restarts survived, paging
//! followed to the end, and the daemon drains on SIGTERM.

use std::sync::atomic::Ordering;
use std::time::Duration;

use vscout::inventory;
use vscout::vsphere::Client;
use vscout_e2e::proxy::Proxy;
use vscout_e2e::{admin, vcenter_config, Estate, SimOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_rounds_leave_one_session_and_no_views() {
    let e = Estate::start(&SimOptions::default()).expect("vcsim");
    // No paging here: the proxy only counts CreateContainerView and DestroyView.
    let proxy = Proxy::start(&e.sim.url, &e.certs, 0).await.expect("proxy");
    let client = Client::connect(&vcenter_config("sim", &proxy.url, e.pin(), 500).expect("cfg"))
        .await
        .expect("connect");
    let first = inventory::collect(&client).await.expect("round 1");
    for round in 2..=100 {
        let inv = inventory::collect(&client)
            .await
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
        assert_eq!(inv.vms.len(), first.vms.len());
    }
    let st = &proxy.state;
    assert_eq!(
        st.logins.load(Ordering::SeqCst),
        1,
        "one login for 100 rounds"
    );
    assert_eq!(st.views_created.load(Ordering::SeqCst), 100);
    assert_eq!(
        st.views_destroyed.load(Ordering::SeqCst),
        100,
        "every view destroyed"
    );

    let admin = Client::connect(&vcenter_config("admin", &e.sim.url, e.pin(), 500).expect("cfg"))
        .await
        .expect("admin");
    assert_eq!(
        admin::other_sessions(&admin).await.expect("sessions").len(),
        1,
        "exactly the agent's session"
    );
    client.logout().await.expect("logout");
    assert!(
        admin::other_sessions(&admin)
            .await
            .expect("sessions")
            .is_empty(),
        "logout ends the session"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminated_session_is_replaced_by_one_new_login() {
    let e = Estate::start(&SimOptions::default()).expect("vcsim");
    let client = Client::connect(&vcenter_config("sim", &e.sim.url, e.pin(), 500).expect("cfg"))
        .await
        .expect("connect");
    let before = inventory::collect(&client).await.expect("first");

    let admin = Client::connect(&vcenter_config("admin", &e.sim.url, e.pin(), 500).expect("cfg"))
        .await
        .expect("admin");
    let agent_sessions = admin::other_sessions(&admin).await.expect("sessions");
    assert_eq!(agent_sessions.len(), 1);
    let cookie = admin.session_cookie().expect("cookie");
    admin::terminate(&e.sim.url, &e.certs.ca_pem, &cookie, &agent_sessions)
        .await
        .expect("terminate");
    assert!(admin::other_sessions(&admin)
        .await
        .expect("sessions")
        .is_empty());

    // vcsim reports the dead session as a NotAuthenticated missingSet; the client logs in
    // again and reruns the round, with a new view.
    let after = inventory::collect(&client)
        .await
        .expect("after termination");
    assert_eq!(after.vms.len(), before.vms.len());
    assert_eq!(
        admin::other_sessions(&admin).await.expect("sessions").len(),
        1
    );
    client
        .current_time()
        .await
        .expect("keepalive on the new session");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vcenter_restart_on_the_same_port_is_survived() {
    let e = Estate::start(&SimOptions::default()).expect("vcsim");
    let port = e.sim.port;
    let client = Client::connect(&vcenter_config("sim", &e.sim.url, e.pin(), 500).expect("cfg"))
        .await
        .expect("connect");
    inventory::collect(&client).await.expect("before restart");
    e.sim.stop();
    let err = inventory::collect(&client)
        .await
        .expect_err("vcenter is down");
    assert!(err.is_retryable(), "{err}");

    let opts = SimOptions {
        listen: format!("127.0.0.1:{port}"),
        vms_per_pool: 3,
        ..SimOptions::default()
    };
    let _sim2 = vscout_e2e::Vcsim::start(&opts, &e.certs).expect("restart");
    let inv = inventory::collect(&client)
        .await
        .expect("after restart: the old cookie is unknown, so log in again");
    assert_eq!(inv.vms.len(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paged_answers_are_followed_to_the_end() {
    let opts = SimOptions {
        clusters: 2,
        vms_per_pool: 10,
        ..SimOptions::default()
    };
    let e = Estate::start(&opts).expect("vcsim");
    let direct = Client::connect(&vcenter_config("direct", &e.sim.url, e.pin(), 500).expect("cfg"))
        .await
        .expect("direct");
    let expected = inventory::collect(&direct).await.expect("direct inventory");

    let proxy = Proxy::start(&e.sim.url, &e.certs, 7).await.expect("proxy");
    let paged = Client::connect(&vcenter_config("paged", &proxy.url, e.pin(), 7).expect("cfg"))
        .await
        .expect("paged");
    let got = inventory::collect(&paged).await.expect("paged inventory");
    let st = &proxy.state;
    let objects = expected.vms.len()
        + expected.hosts.len()
        + expected.clusters.len()
        + expected.datastores.len()
        + expected.networks.len();
    assert!(
        st.continues.load(Ordering::SeqCst) as usize >= objects / 7,
        "continuations followed: {}",
        st.continues.load(Ordering::SeqCst)
    );

    let mut a: Vec<_> = expected
        .vms
        .iter()
        .map(|v| (&v.id, &v.name, &v.host, &v.folder_path, v.disks.len()))
        .collect();
    let mut b: Vec<_> = got
        .vms
        .iter()
        .map(|v| (&v.id, &v.name, &v.host, &v.folder_path, v.disks.len()))
        .collect();
    a.sort();
    b.sort();
    assert_eq!(a, b, "paging loses or duplicates nothing");
    assert_eq!(got.hosts.len(), expected.hosts.len());
    assert_eq!(got.clusters, expected.clusters);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_soap_not_authenticated_fault_triggers_one_relogin() {
    let e = Estate::start(&SimOptions::default()).expect("vcsim");
    let proxy = Proxy::start(&e.sim.url, &e.certs, 0).await.expect("proxy");
    let client = Client::connect(&vcenter_config("sim", &proxy.url, e.pin(), 500).expect("cfg"))
        .await
        .expect("connect");
    proxy.state.fail_next_retrieve.store(true, Ordering::SeqCst);
    let inv = inventory::collect(&client)
        .await
        .expect("inventory after the fault");
    assert_eq!(inv.vms.len(), 4);
    assert_eq!(proxy.state.injected_faults.load(Ordering::SeqCst), 1);
    assert_eq!(
        proxy.state.logins.load(Ordering::SeqCst),
        2,
        "one re-login, not more"
    );
    assert_eq!(
        proxy.state.views_created.load(Ordering::SeqCst),
        proxy.state.views_destroyed.load(Ordering::SeqCst),
        "the view of the failed attempt is destroyed too"
    );
}

#[test]
fn daemon_runs_rounds_and_drains_on_sigterm() {
    let e = Estate::start(&SimOptions::default()).expect("vcsim");
    let cfg = vscout_e2e::write_agent_config(
        e.dir.path(),
        &[("sim", &e.sim.url, e.pin())],
        vscout_e2e::PASSWORD,
        "inventory_interval_secs = 1",
    )
    .expect("cfg");
    let child = std::process::Command::new(vscout_e2e::vscout_binary().expect("vscout binary"))
        .args(["--config", cfg.to_str().expect("p"), "run"])
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let pid = child.id();
    let saved = e.dir.path().join("state/inventory/sim/inventory.json");
    // A second inventory round (the saved file rewritten) and a first stored window (the
    // watermark written), not a fixed wait.
    let watermark = e.dir.path().join("state/perf/sim.closed");
    let modified = |p: &std::path::Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut first = None;
    loop {
        let now = modified(&saved);
        first = first.or(now);
        if now.is_some() && now != first && watermark.exists() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no second inventory round and stored window within 60 s"
        );
        vscout_e2e::pause(Duration::from_millis(100));
    }
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let out = vscout_e2e::wait_with_deadline(child, Duration::from_secs(30)).expect("exit");
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{log}");
    assert!(
        log.matches("inventory round complete").count() >= 2,
        "{log}"
    );
    assert!(log.contains("logged out"), "{log}");
    assert!(
        log.contains("performance window closed"),
        "the first poll closes a window: {log}"
    );
    assert!(
        !log.contains(vscout_e2e::PASSWORD),
        "the password never reaches the log"
    );
    let inv: inventory::Inventory =
        serde_json::from_slice(&std::fs::read(&saved).expect("saved")).expect("json");
    assert_eq!(inv.vcenters[0].vms.len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_names_a_missing_privilege() {
    let e = Estate::start(&SimOptions::default()).expect("vcsim");
    let proxy = Proxy::start(&e.sim.url, &e.certs, 0).await.expect("proxy");
    let cfg = vscout_e2e::write_agent_config(
        e.dir.path(),
        &[("sim", &proxy.url, e.pin())],
        vscout_e2e::PASSWORD,
        "",
    )
    .expect("cfg");
    let cfg = cfg.to_str().expect("utf-8").to_owned();
    let run = |cfg: String| async move {
        tokio::task::spawn_blocking(move || vscout_e2e::run_vscout(&["--config", &cfg, "check"]))
            .await
            .expect("join")
            .expect("check")
    };
    let out = run(cfg.clone()).await;
    let table = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.contains(" privileges ") && l.contains("PASS")),
        "{table}"
    );
    *proxy.state.deny_privilege.lock().expect("deny") = Some("System.Read".into());
    let out = run(cfg).await;
    let table = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1), "{table}");
    let line = table
        .lines()
        .find(|l| l.contains(" privileges "))
        .unwrap_or_default();
    assert!(
        line.contains("FAIL") && line.contains("System.Read") && line.contains("Read-only role"),
        "{table}"
    );
}
