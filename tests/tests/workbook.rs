//! End-to-end: `vscout inventory --format xlsx` and `--format azure-migrate-csv` against
//! vcsim (with `-variety`: guest file systems and snapshot trees), read back by openpyxl
//! and Python's csv module and compared with `--format json` row by row.

use vscout::inventory::Inventory;
use vscout_e2e::{run_vscout, workbook, write_agent_config, Estate, SimOptions, PASSWORD};

#[test]
fn the_workbook_and_azure_migrate_csv_agree_with_the_json_inventory() {
    let opts = SimOptions {
        clusters: 2,
        hosts_per_cluster: 2,
        vms_per_pool: 4,
        variety: true,
        ..SimOptions::default()
    };
    let e = Estate::start(&opts).expect("vcsim");
    let cfg = write_agent_config(e.dir.path(), &[("sim", &e.sim.url, e.pin())], PASSWORD, "")
        .expect("cfg");
    let cfg = cfg.to_str().expect("utf8");
    let out_dir = e.dir.path().join("out");
    let dir = out_dir.to_str().expect("utf8");
    for format in ["json", "xlsx", "azure-migrate-csv"] {
        let out = run_vscout(&[
            "--config",
            cfg,
            "inventory",
            "--output",
            dir,
            "--format",
            format,
        ])
        .expect("run");
        assert!(
            out.status.success(),
            "{format}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let inv: Inventory =
        serde_json::from_slice(&std::fs::read(out_dir.join("inventory.json")).expect("read"))
            .expect("json");
    let vms: Vec<_> = inv.vcenters.iter().flat_map(|v| &v.vms).collect();
    assert!(
        vms.iter().any(|v| !v.partitions.is_empty()),
        "guest.disk read through the real SOAP answer"
    );
    assert!(vms.iter().any(|v| v.snapshots.len() == 2), "snapshot trees");
    assert!(
        vms.iter().all(|v| v.unshared_bytes.is_some()),
        "summary.storage.unshared"
    );

    let tabs = workbook::read(&out_dir.join("inventory.xlsx")).expect("read workbook");
    assert_eq!(
        tabs.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        vscout_workbook::rvtools::TABS.to_vec()
    );
    workbook::check_layout(&tabs).expect("layout");
    workbook::check_inventory(&tabs, &inv.vcenters).expect("inventory tabs");

    // Azure Migrate's template, read by Python's csv module.
    let check = std::process::Command::new(workbook::python())
        .arg("-c")
        .arg(
            "import csv, json, sys\n\
             rows = list(csv.DictReader(open(sys.argv[1], newline='')))\n\
             json.dump(rows, sys.stdout)",
        )
        .arg(out_dir.join("azure-migrate.csv"))
        .output()
        .expect("python3");
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let rows: Vec<std::collections::HashMap<String, String>> =
        serde_json::from_slice(&check.stdout).expect("rows");
    let running: Vec<_> = vms.iter().filter(|v| !v.template).collect();
    assert_eq!(rows.len(), running.len());
    for (row, vm) in rows.iter().zip(&running) {
        assert_eq!(row["*Server name"], vm.name.as_str());
        assert_eq!(row["*Cores"], vm.num_cpu.expect("cpus").to_string());
        assert_eq!(
            row["*Memory (In MB)"],
            (vm.memory_bytes.expect("memory") >> 20).to_string()
        );
        assert_eq!(row["*OS name"], vm.guest_full_name.as_deref().unwrap_or(""));
        let boot = if vm.firmware.as_deref() == Some("efi") {
            "UEFI"
        } else {
            "BIOS"
        };
        assert_eq!(row["Boot type"], boot);
        assert_eq!(row["Number of disks"], vm.disks.len().to_string());
        assert_eq!(
            row["CPU utilization percentage"], "",
            "the agent measures no use"
        );
    }
}
