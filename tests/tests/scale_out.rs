//! Scale-out on PostgreSQL: two collector processes share one database (a real server,
//! `scripts/pg-scratch`) behind a load balancer that also drops answers after the
//! collector stored the batch (`http_fault`, round robin). The agent resends what it
//! never heard about, often to the other collector: each batch is stored and counted
//! once, nothing the agent stored is lost, and either collector answers for all of it.

use std::path::Path;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use anyhow::{Context, Result};
use vscout_e2e::collector::Collector;
use vscout_e2e::collector::{agent_id, log_tail, stored_batches, wait_logged as wait, Agent};
use vscout_e2e::http_fault::FaultProxy;
use vscout_e2e::{Certs, Estate, SimOptions, PASSWORD};

/// A connection to the shared database, as the test's own reader.
fn db(url: &str, password_file: &Path) -> Result<postgres::Client> {
    let mut cfg: postgres::Config = url.parse()?;
    cfg.password(std::fs::read_to_string(password_file)?.trim());
    Ok(cfg.connect(postgres::NoTls)?)
}

fn count(db: &mut postgres::Client, sql: &str) -> Result<i64> {
    Ok(db.query_one(sql, &[])?.get(0))
}

/// Every batch the agent logged as stored is in the database with the same rollups.
fn all_delivered(db: &mut postgres::Client, log: &Path, agent: &str) -> Result<bool> {
    let stored = stored_batches(log)?;
    let have: std::collections::BTreeMap<i64, i64> = db
        .query(
            "SELECT seq, rollups FROM batches WHERE agent_id = $1",
            &[&agent],
        )?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    Ok(!stored.is_empty()
        && stored
            .iter()
            .all(|s| have.get(&(s.seq as i64)) == Some(&(s.rollups as i64))))
}

#[test]
fn two_collectors_on_one_database_store_each_batch_once() -> Result<()> {
    let opts = SimOptions::default();
    let e = Estate::start(&opts)?;
    let (url, password_file) = vscout_e2e::postgres::database()?;
    let config = e.dir.path().join("collector.toml");
    std::fs::write(
        &config,
        format!(
            "storage = \"{url}\"\nstorage_password_file = \"{}\"\n",
            password_file.display()
        ),
    )?;
    // Each has its own certificate; the first made the first token, in the database.
    let a = Collector::start_with(&e.dir.path().join("a"), 0, Some(&config))?;
    let b = Collector::start_with(&e.dir.path().join("b"), 0, Some(&config))?;
    assert!(
        !b.token_file.exists(),
        "the second collector made another first token"
    );
    let lb_dir = e.dir.path().join("lb");
    std::fs::create_dir_all(&lb_dir)?;
    let lb_certs = Certs::generate(&lb_dir)?;
    let lb = FaultProxy::start_balanced(
        &lb_certs,
        &[(&a.url, &a.thumbprint), (&b.url, &b.thumbprint)],
    )?;
    let extra = format!(
        "inventory_interval_secs = 1\nhealth_interval_secs = 5\n\n[perf]\ninterval_secs = 20\nwindow_secs = 60\n\n[buffer]\ncommit_interval_ms = 100\n{}",
        a.agent_section(Some((&lb.url, &lb_certs.thumbprint)))
    );
    let cfg = e.agent_config(PASSWORD, &extra)?;
    let log = e.dir.path().join("agent.log");
    let agent = Agent::spawn(&cfg, &log)?;
    let mut pg = db(&url, &password_file)?;
    // Faults on until answers were dropped after storing, and windows arrived.
    wait(
        &log,
        Duration::from_secs(240),
        "answers dropped after storing, and two windows of rollups",
        || {
            let windows = count(
                &mut db(&url, &password_file)?,
                "SELECT count(DISTINCT window_start) FROM rollups",
            )?;
            Ok(lb.counts.reset_after.load(Relaxed) >= 2 && windows >= 2)
        },
    )?;
    lb.set_faults(false);
    let id = agent_id(&e.dir.path().join("state"))?;
    wait(
        &log,
        Duration::from_secs(120),
        "every stored batch in the database",
        || all_delivered(&mut db(&url, &password_file)?, &log, &id),
    )?;
    assert_eq!(agent.terminate(Duration::from_secs(30))?, Some(0));
    assert!(all_delivered(&mut pg, &log, &id)?, "{}", log_tail(&log, 40));

    let summary = lb.counts.summary();
    let served: Vec<u64> = lb
        .counts
        .per_upstream
        .iter()
        .map(|n| n.load(Relaxed))
        .collect();
    eprintln!("load balancer: {summary}; per collector {served:?}");
    assert!(
        served.iter().all(|n| *n >= 3),
        "both collectors should have served: {served:?}"
    );
    // Stored once, counted once: one row per batch, as many as the agents' counters say,
    // the resends acknowledged as duplicates; no rollup was offered twice; the stored
    // windows' count is the table's.
    let batches = count(&mut pg, "SELECT count(*) FROM batches")?;
    assert_eq!(
        batches,
        count(
            &mut pg,
            "SELECT coalesce(sum(batches), 0)::int8 FROM agents"
        )?
    );
    let duplicates = count(
        &mut pg,
        "SELECT coalesce(sum(duplicate_batches), 0)::int8 FROM agents",
    )?;
    assert!(duplicates >= 1, "no resend was a duplicate: {summary}");
    assert_eq!(
        count(
            &mut pg,
            "SELECT coalesce(sum(rows_ignored), 0)::int8 FROM agents"
        )?,
        0
    );
    let rollups = count(&mut pg, "SELECT count(*) FROM rollups")?;
    assert!(rollups > 0);
    assert_eq!(
        rollups,
        count(
            &mut pg,
            "SELECT sum(CASE key WHEN 'stored_windows' THEN value ELSE -value END)::int8
             FROM meta WHERE key IN ('stored_windows', 'removed_windows')"
        )?
    );
    assert_eq!(
        rollups,
        count(
            &mut pg,
            "SELECT coalesce(sum(rollups), 0)::int8 FROM batches"
        )?
    );
    let vms = count(&mut pg, "SELECT count(*) FROM vms")?;
    assert_eq!(vms, i64::from(opts.vm_count()));
    eprintln!(
        "two collectors: {batches} batches, {duplicates} resends acknowledged as duplicates, {rollups} rollups"
    );
    // Either collector answers for everything: the assessment run on the second's
    // configuration covers every VM.
    let out_file = e.dir.path().join("assessment.json");
    let out = b.command("assess", &["--output", out_file.to_str().context("path")?])?;
    assert!(out.status.success(), "assess: {out:?}");
    let assessed: serde_json::Value = serde_json::from_slice(&std::fs::read(&out_file)?)?;
    for t in assessed["targets"].as_array().context("targets")? {
        assert_eq!(
            t["rows"].as_array().context("rows")?.len() as i64,
            vms,
            "{}",
            t["target"]
        );
    }
    sessions_are_the_databases(&a, &b, e.dir.path())
}

/// Issue 17: people and sessions live in the database, so a person added on one
/// collector logs in at the other, the session opens pages at both, and logging out at
/// one ends it at both; a wrong password is refused at either.
fn sessions_are_the_databases(a: &Collector, b: &Collector, dir: &Path) -> Result<()> {
    let out = a.add_user(dir, "ann", "correct horse battery")?;
    anyhow::ensure!(out.status.success(), "user add: {out:?}");
    assert_eq!(b.log_in("ann", "wrong password!")?, Err(401));
    let cookie = b
        .log_in("ann", "correct horse battery")?
        .map_err(|status| anyhow::anyhow!("log-in at the second collector: {status}"))?;
    for col in [a, b] {
        let (status, body) = col.get_with_cookie("/vms", &cookie)?;
        assert_eq!(status, 200, "{body}");
        assert!(body.contains(r#"<span id="total">"#), "{body}");
    }
    let http_logout = a.post_with_cookie("/logout", &cookie)?;
    assert_eq!(http_logout, 303);
    for col in [a, b] {
        let (status, _) = col.get_with_cookie("/vms", &cookie)?;
        assert_eq!(status, 303, "the session ended at both collectors");
    }
    Ok(())
}
