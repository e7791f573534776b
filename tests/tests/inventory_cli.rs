//! End-to-end: the real `vscout` binary against vcsim. Counts match what vcsim created,
//! every reference resolves, CSV and JSON agree, and trust and login failures are clear.

use std::collections::HashMap;

use vscout::inventory::Inventory;
use vscout_e2e::{run_vscout, write_agent_config, Estate, SimOptions, Trust, PASSWORD};

fn estate() -> SimOptions {
    SimOptions {
        datacenters: 2,
        clusters: 2,
        hosts_per_cluster: 2,
        standalone_hosts: 1,
        vms_per_pool: 3,
        datastores: 2,
        folders: 1,
        ..SimOptions::default()
    }
}

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}
fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn inventory_json_and_csv_match_the_simulated_estate() {
    let opts = estate();
    let e = Estate::start(&opts).expect("vcsim");
    let cfg = write_agent_config(e.dir.path(), &[("sim", &e.sim.url, e.pin())], PASSWORD, "")
        .expect("cfg");
    let cfg = cfg.to_str().expect("utf8");

    let json_dir = e.dir.path().join("json");
    let out = run_vscout(&[
        "--config",
        cfg,
        "inventory",
        "--output",
        json_dir.to_str().expect("p"),
        "--format",
        "json",
    ])
    .expect("run");
    assert!(
        out.status.success(),
        "stdout: {}\nstderr: {}",
        stdout(&out),
        stderr(&out)
    );
    let inv: Inventory =
        serde_json::from_slice(&std::fs::read(json_dir.join("inventory.json")).expect("read"))
            .expect("json");
    let v = &inv.vcenters[0];

    // vcsim: per datacenter, each cluster and each standalone host has one resource pool
    // holding `vms_per_pool` VMs.
    let dcs = opts.datacenters as usize;
    let pools = dcs * (opts.clusters + opts.standalone_hosts) as usize;
    assert_eq!(v.datacenters.len(), dcs);
    assert_eq!(v.clusters.len(), dcs * opts.clusters as usize);
    assert_eq!(
        v.hosts.len(),
        dcs * (opts.clusters * opts.hosts_per_cluster + opts.standalone_hosts) as usize
    );
    assert_eq!(v.vms.len(), pools * opts.vms_per_pool as usize);
    assert_eq!(
        v.datastores.len(),
        opts.datastores as usize * dcs,
        "datastores: {:?}",
        v.datastores
    );
    assert!(v.warnings.is_empty(), "{:?}", v.warnings);
    assert!(!v.about.instance_uuid.is_empty());

    let host_names: HashMap<&str, &str> = v
        .hosts
        .iter()
        .map(|h| (h.id.as_str(), h.name.as_str()))
        .collect();
    let cluster_names: Vec<&str> = v.clusters.iter().map(|c| c.name.as_str()).collect();
    let dc_names: Vec<&str> = v.datacenters.iter().map(|d| d.name.as_str()).collect();
    let mut clustered = 0;
    for vm in &v.vms {
        assert_eq!(
            host_names.get(vm.host_id.as_str()),
            Some(&vm.host.as_str()),
            "vm {} host",
            vm.name
        );
        assert!(
            dc_names.contains(&vm.datacenter.as_str()),
            "vm {} datacenter {:?}",
            vm.name,
            vm.datacenter
        );
        assert!(
            vm.folder_path.starts_with('/') && vm.folder_path.contains(vm.datacenter.as_str()),
            "vm {} folder {:?}",
            vm.name,
            vm.folder_path
        );
        if !vm.cluster.is_empty() {
            assert!(cluster_names.contains(&vm.cluster.as_str()));
            clustered += 1;
        }
        assert_eq!(vm.vcenter_uuid, v.about.instance_uuid);
        assert!(vm.instance_uuid.is_some() && vm.bios_uuid.is_some());
        assert!(vm.num_cpu.unwrap_or(0) >= 1 && vm.memory_bytes.unwrap_or(0) >= 1 << 20);
        assert!(!vm.disks.is_empty(), "vm {} has no disks", vm.name);
        for d in &vm.disks {
            assert!(d.capacity_bytes.unwrap_or(0) > 0);
            assert!(
                !d.datastore.is_empty() && d.file_path.is_some() && !d.controller.is_empty(),
                "{d:?}"
            );
        }
        assert!(!vm.nics.is_empty(), "vm {} has no NICs", vm.name);
        for n in &vm.nics {
            assert!(
                n.mac.is_some() && !n.network.is_empty() && !n.adapter_type.is_empty(),
                "{n:?}"
            );
        }
    }
    assert_eq!(
        clustered,
        dcs * (opts.clusters * opts.vms_per_pool) as usize
    );
    for h in &v.hosts {
        assert!(
            h.cpu_cores.is_some() && h.memory_bytes.is_some() && h.esxi_version.is_some(),
            "{h:?}"
        );
    }

    // CSV of the same estate agrees with the JSON.
    let csv_dir = e.dir.path().join("csv");
    let out = run_vscout(&[
        "--config",
        cfg,
        "inventory",
        "--output",
        csv_dir.to_str().expect("p"),
        "--format",
        "csv",
    ])
    .expect("run");
    assert!(out.status.success(), "{}", stderr(&out));
    let rows = |file: &str| -> Vec<csv::StringRecord> {
        csv::Reader::from_path(csv_dir.join(file))
            .expect("csv")
            .records()
            .map(|r| r.expect("row"))
            .collect()
    };
    let vms = rows("vms.csv");
    assert_eq!(vms.len(), v.vms.len());
    let by_id: HashMap<&str, &vscout::inventory::model::Vm> =
        v.vms.iter().map(|m| (m.id.as_str(), m)).collect();
    for r in &vms {
        let m = by_id[&r[1]];
        assert_eq!(&r[2], m.name);
        assert_eq!(&r[4], m.instance_uuid.as_deref().unwrap_or(""));
        assert_eq!(&r[35], m.host);
        assert_eq!(&r[40], m.folder_path);
    }
    let disks = rows("vm_disks.csv");
    assert_eq!(
        disks.len(),
        v.vms.iter().map(|m| m.disks.len()).sum::<usize>()
    );
    let nics = rows("vm_nics.csv");
    assert_eq!(
        nics.len(),
        v.vms.iter().map(|m| m.nics.len()).sum::<usize>()
    );
    assert!(nics.iter().all(|r| by_id.contains_key(&r[1])));
    assert_eq!(rows("hosts.csv").len(), v.hosts.len());
    assert_eq!(rows("clusters.csv").len(), v.clusters.len());
    assert_eq!(rows("datastores.csv").len(), v.datastores.len());
    assert!(stdout(&out).contains(&format!("{} VMs", v.vms.len())));
}

#[test]
fn standalone_esxi_host_is_inventoried() {
    let e = Estate::start(&SimOptions {
        esx: true,
        vms_per_pool: 3,
        ..SimOptions::default()
    })
    .expect("vcsim");
    let cfg = write_agent_config(e.dir.path(), &[("esx", &e.sim.url, e.pin())], PASSWORD, "")
        .expect("cfg");
    let out_dir = e.dir.path().join("out");
    let out = run_vscout(&[
        "--config",
        cfg.to_str().expect("p"),
        "inventory",
        "--output",
        out_dir.to_str().expect("p"),
    ])
    .expect("run");
    assert!(out.status.success(), "{}", stderr(&out));
    let inv: Inventory =
        serde_json::from_slice(&std::fs::read(out_dir.join("inventory.json")).expect("read"))
            .expect("json");
    let v = &inv.vcenters[0];
    assert_eq!(v.about.api_type, "HostAgent");
    assert_eq!(v.hosts.len(), 1);
    assert_eq!(v.vms.len(), 3);
    assert!(v
        .vms
        .iter()
        .all(|m| m.host == v.hosts[0].name && !m.disks.is_empty()));
}

#[test]
fn tls_is_verified_by_default_and_the_error_shows_the_thumbprint() {
    let e = Estate::start(&SimOptions::default()).expect("vcsim");
    let out_dir = e.dir.path().join("out");
    let run = |trust: Trust| {
        let cfg = write_agent_config(e.dir.path(), &[("sim", &e.sim.url, trust)], PASSWORD, "")
            .expect("cfg");
        run_vscout(&[
            "--config",
            cfg.to_str().expect("p"),
            "inventory",
            "--output",
            out_dir.to_str().expect("p"),
        ])
        .expect("run")
    };
    let out = run(Trust::Default);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("tls verification failed") && err.contains(&e.certs.thumbprint),
        "{err}"
    );

    let wrong_pin = "00:".repeat(31) + "00";
    let out = run(Trust::Pin(wrong_pin));
    assert!(!out.status.success());
    assert!(stderr(&out).contains(&e.certs.thumbprint));

    let out = run(Trust::Pin(
        e.certs.thumbprint.to_lowercase().replace(':', ""),
    ));
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run(Trust::Ca(e.certs.ca_pem.clone()));
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run(Trust::Insecure);
    assert!(out.status.success());
    assert!(
        stderr(&out).contains("NOT verified"),
        "insecure must warn: {}",
        stderr(&out)
    );
}

#[test]
fn wrong_password_is_a_clear_error_without_the_password() {
    let e = Estate::start(&SimOptions::default()).expect("vcsim");
    let cfg = write_agent_config(
        e.dir.path(),
        &[("sim", &e.sim.url, e.pin())],
        "wrong-password",
        "",
    )
    .expect("cfg");
    let out = run_vscout(&[
        "--config",
        cfg.to_str().expect("p"),
        "inventory",
        "--output",
        e.dir.path().join("o").to_str().expect("p"),
    ])
    .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("InvalidLogin") && err.contains(vscout_e2e::USER) && err.contains(&e.sim.url),
        "{err}"
    );
    assert!(!err.contains("wrong-password"));

    let out = run_vscout(&["--config", cfg.to_str().expect("p"), "check"]).expect("check");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("login") && stdout(&out).contains("FAIL"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn check_passes_against_a_healthy_vcenter_and_fails_on_an_unreachable_port() {
    let e = Estate::start(&SimOptions::default()).expect("vcsim");
    let cfg = write_agent_config(e.dir.path(), &[("sim", &e.sim.url, e.pin())], PASSWORD, "")
        .expect("cfg");
    let out = run_vscout(&["--config", cfg.to_str().expect("p"), "check"]).expect("check");
    let table = stdout(&out);
    assert!(out.status.success(), "{table}\n{}", stderr(&out));
    assert!(
        table.contains("inventory") && table.contains("4 VMs, "),
        "{table}"
    );
    for check in [
        "dns",
        "tcp",
        "connect",
        "login",
        "counters",
        "statistics",
        "clock",
    ] {
        assert!(
            table
                .lines()
                .any(|l| l.starts_with("sim ") && l.split_whitespace().nth(1) == Some(check)),
            "no {check} row:\n{table}"
        );
    }
    // Issue 11: the probe (QueryAvailablePerfMetric) warned that vm:disk.usage.average had
    // no data while polling stored rollups of it; it now asks what polling asks.
    let stats_row = table
        .lines()
        .find(|l| l.starts_with("sim ") && l.split_whitespace().nth(1) == Some("statistics"))
        .unwrap_or_default();
    assert!(stats_row.contains("PASS"), "{table}");

    // A port nobody listens on (bind, read the port, close).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let url = format!("https://127.0.0.1:{port}/sdk");
    let cfg = write_agent_config(
        e.dir.path(),
        &[("gone", &url, Trust::Default)],
        PASSWORD,
        "",
    )
    .expect("cfg");
    let out = run_vscout(&["--config", cfg.to_str().expect("p"), "check"]).expect("check");
    assert_eq!(out.status.code(), Some(1));
    let table = stdout(&out);
    assert!(
        table.lines().any(|l| l.starts_with("gone ")
            && l.contains(" tcp ")
            && l.contains("FAIL")
            && l.contains("firewall")),
        "{table}"
    );
}

#[test]
fn an_answer_over_the_size_cap_is_refused_with_a_clear_error() {
    // About 10 kB of XML per VM: 200 VMs make a 2 MB answer, over a 1 MiB cap.
    let e = Estate::start(&SimOptions {
        vms_per_pool: 100,
        ..SimOptions::default()
    })
    .expect("vcsim");
    let cfg = e.agent_config(PASSWORD, "").expect("cfg");
    let text = std::fs::read_to_string(&cfg).expect("read").replace(
        "request_timeout_secs = 60",
        "request_timeout_secs = 60\nmax_response_mib = 1",
    );
    std::fs::write(&cfg, text).expect("write");
    let out =
        run_vscout(&["--config", &cfg, "inventory", "--output", &e.path("out")]).expect("run");
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("larger than the limit of 1048576 bytes"),
        "{err}"
    );
}
