//! Issue 17: the collector's pages in a real browser (Debian's headless Chromium driven
//! through chromedriver), against a collector filled by vcsim → agent: log-in refused
//! with a wrong password and without a session, then every page opened and what a
//! person sees checked against the API and `assess`; a download is a valid workbook.
//! Screenshots of each page go to `target/screenshots/`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use serde_json::Value;
use vscout_e2e::collector::{client, wait_logged as wait, wait_until, Agent, Collector};
use vscout_e2e::webdriver::Browser;
use vscout_e2e::{Estate, SimOptions, PASSWORD};

fn shots() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/screenshots")
}

/// As the pages write dollars.
fn money(v: f64) -> String {
    let cents = (v * 100.0).round() as i64;
    let whole = (cents / 100).to_string();
    let mut out = String::new();
    for (i, c) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    format!("${out}.{:02}", cents % 100)
}

struct Api {
    http: reqwest::Client,
    url: String,
    rt: tokio::runtime::Runtime,
}

impl Api {
    fn send(
        &self,
        req: reqwest::RequestBuilder,
    ) -> Result<(u16, String, reqwest::header::HeaderMap)> {
        self.rt.block_on(async {
            let r = req.send().await?;
            let (status, headers) = (r.status().as_u16(), r.headers().clone());
            Ok((status, r.text().await?, headers))
        })
    }

    fn get(
        &self,
        path: &str,
        token: Option<&str>,
    ) -> Result<(u16, String, reqwest::header::HeaderMap)> {
        let mut req = self.http.get(format!("{}{path}", self.url));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        self.send(req)
    }

    fn json(&self, path: &str, token: &str) -> Result<Value> {
        let (status, body, _) = self.get(path, Some(token))?;
        ensure!(status == 200, "{path}: {status} {body}");
        Ok(serde_json::from_str(&body)?)
    }
}

/// Credentials for people and viewers are separate from agents': each is refused what
/// it may not do.
fn refusals(api: &Api, col: &Collector, agent_token: &str, viewer_token: &str) -> Result<()> {
    let (status, _, h) = api.get("/vms", None)?;
    assert_eq!(status, 303, "no session: sent to log in");
    assert_eq!(h["location"], "/login?next=%2Fvms", "and back after it");
    assert_eq!(
        api.get("/v1/vms", None)?.0,
        401,
        "no read API without credentials"
    );
    assert_eq!(
        api.get("/v1/vms", Some(viewer_token))?.0,
        200,
        "a viewer reads the API"
    );
    assert_eq!(
        api.get("/", Some(viewer_token))?.0,
        200,
        "a viewer token opens pages"
    );
    let (status, body, _) = api.get("/", Some(agent_token))?;
    assert_eq!(status, 403, "an agent's token opens no page: {body}");
    let ingest = api
        .http
        .post(format!("{}/v1/ingest", api.url))
        .bearer_auth(viewer_token)
        .header("idempotency-key", "viewer:1")
        .body(vec![0u8; 16]);
    let (status, body, _) = api.send(ingest)?;
    assert_eq!(status, 403, "a viewer cannot send batches: {body}");
    assert!(body.contains("may read but not send"), "{body}");
    assert_eq!(
        col.log_in("first-agent", "anything-at-all")?,
        Err(401),
        "an agent token is no log-in"
    );
    Ok(())
}

/// Failed log-ins are limited: within five more failures (the browser's and the agent
/// token's count too, from the same address) the name is locked out, whatever the
/// password after.
fn limits_failed_logins(col: &Collector, password: &str) -> Result<()> {
    let mut refused = 0;
    for _ in 0..5 {
        match col.log_in("ann", "not-her-password")? {
            Err(401) => refused += 1,
            Err(429) => break,
            other => anyhow::bail!("a wrong password answered {other:?}"),
        }
    }
    assert!(refused < 5, "never locked out");
    assert_eq!(
        col.log_in("ann", password)?,
        Err(429),
        "locked out, even with the right password"
    );
    Ok(())
}

#[test]
fn the_pages_in_a_real_browser() -> Result<()> {
    // 60 VMs: more than the list's page of 50.
    let opts = SimOptions {
        clusters: 2,
        hosts_per_cluster: 2,
        vms_per_pool: 20,
        variety: true,
        ..SimOptions::default()
    };
    let e = Estate::start(&opts)?;
    let col = Collector::start(&e.dir.path().join("collector"))?;
    let extra = col.quick_agent_settings();
    let cfg = e.agent_config(PASSWORD, &extra)?;
    let log = e.dir.path().join("agent.log");
    let agent = Agent::spawn(&cfg, &log)?;
    let vms = u64::from(opts.vm_count());
    wait(
        &log,
        Duration::from_secs(300),
        "VMs and three of their windows",
        || {
            Ok(col.count("SELECT count(*) FROM vms")? == vms
                && col.count(
                    "SELECT count(DISTINCT r.window_start) FROM rollups r
                     JOIN series s ON s.id = r.series_id WHERE s.entity_type = 'VirtualMachine'",
                )? >= 3)
        },
    )?;
    assert_eq!(agent.terminate(Duration::from_secs(30))?, Some(0));

    let password = "correct horse battery";
    let out = col.add_user(e.dir.path(), "ann", password)?;
    ensure!(out.status.success(), "user add: {out:?}");
    let out = col.add_user(e.dir.path(), "bob", "short")?;
    assert_eq!(out.status.code(), Some(64), "a short password is refused");
    let out = col.command("token", &["add", "screen", "--role", "viewer"])?;
    ensure!(out.status.success(), "token add: {out:?}");
    let viewer = String::from_utf8(out.stdout)?.trim().to_owned();
    let agent_token = std::fs::read_to_string(&col.token_file)?.trim().to_owned();
    let api = Api {
        http: client(&col, None)?,
        url: col.url.clone(),
        rt: tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?,
    };
    refusals(&api, &col, &agent_token, &viewer)?;

    // What the pages must agree with.
    let api_vms = api.json("/v1/vms?limit=100000", &agent_token)?;
    let api_vms = api_vms.as_array().context("vms")?.len();
    assert_eq!(api_vms as u64, vms);
    let out = col.command("assess", &["--format", "json"])?;
    ensure!(out.status.success(), "assess: {out:?}");
    let assessed: Value = serde_json::from_slice(&out.stdout)?;

    let downloads = e.dir.path().join("downloads");
    std::fs::create_dir_all(&downloads)?;
    let b = Browser::start(1280, 800, &downloads)?;
    in_the_browser(
        &b,
        &api,
        &col,
        &agent_token,
        api_vms,
        &assessed,
        password,
        &downloads,
    )?;
    limits_failed_logins(&col, password)?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn in_the_browser(
    b: &Browser,
    api: &Api,
    col: &Collector,
    token: &str,
    api_vms: usize,
    assessed: &Value,
    password: &str,
    downloads: &Path,
) -> Result<()> {
    let url = &col.url;
    let dir = shots();
    // A missing session lands on the log-in page; a wrong password is refused.
    b.goto(&format!("{url}/vms"))?;
    ensure!(
        b.url()?.contains("/login"),
        "not sent to log in: {}",
        b.url()?
    );
    b.type_into(&b.find("#user")?, "ann")?;
    b.type_into(&b.find("#password")?, "wrong password here")?;
    b.click_to_load(&b.find("form.login button")?)?;
    assert!(b
        .text_of("#login-error")?
        .contains("Wrong user name or password"));
    b.screenshot(&dir.join("login.png"))?;
    // By keyboard: Enter in the password field submits the form.
    b.script("window.__vscout_left = true; return true")?;
    b.type_into(&b.find("#password")?, &format!("{password}\u{E007}"))?;
    b.wait_for_load()?;
    ensure!(
        b.url()?.ends_with("/vms"),
        "after log-in: {}: {}",
        b.url()?,
        b.text_of("main")?
    );
    let cookie = b
        .cookies()?
        .into_iter()
        .find(|c| c["name"] == "vscout_session")
        .context("cookie")?;
    assert_eq!(
        (cookie["secure"].as_bool(), cookie["httpOnly"].as_bool()),
        (Some(true), Some(true))
    );
    assert_eq!(cookie["sameSite"], "Strict");

    // The VM list: the API's count, a page of rows, sorting and filtering on the server.
    assert_eq!(b.text_of("#total")?, api_vms.to_string());
    assert_eq!(b.find_all("table.vms tbody tr")?.len(), api_vms.min(50));
    b.page_screenshot(&dir.join("vms.png"), 1280, 800)?;
    // The next page holds the rest.
    b.click_to_load(&b.find(".pager a[rel=next]")?)?;
    assert_eq!(b.find_all("table.vms tbody tr")?.len(), api_vms - 50);
    b.goto(&format!("{url}/vms"))?;
    // Sorted by vCPU on the server: the column says so, and the rows follow.
    let vcpu = "table.vms thead th:nth-child(6)";
    assert!(b.text_of(vcpu)?.starts_with("vCPU"));
    b.click_to_load(&b.find(&format!("{vcpu} a"))?)?;
    assert_eq!(
        b.attr(&b.find(vcpu)?, "aria-sort")?.as_deref(),
        Some("ascending")
    );
    let mut counts = Vec::new();
    for cell in b.find_all("table.vms tbody tr td:nth-child(6)")? {
        counts.push(b.text(&cell)?.parse::<u32>()?);
    }
    assert!(counts.windows(2).all(|w| w[0] <= w[1]), "{counts:?}");
    let first = b.text_of("table.vms tbody tr th a")?;
    b.type_into(&b.find("#q")?, &first)?;
    b.click_to_load(&b.find("form.filters button")?)?;
    ensure!(
        b.text_of("#matched")?.parse::<usize>()? >= 1,
        "filter by {first:?}"
    );

    // One VM: inventory, charts with drawn points, the assessment per target.
    b.click_to_load(&b.find("table.vms tbody tr th a")?)?;
    b.click_to_load(&b.find(".ranges a")?)?; // 1 day
    assert_eq!(b.text_of("h1")?, first);
    let points: usize = b
        .attr(&b.find("figure[data-title=CPU]")?, "data-points")?
        .context("points")?
        .parse()?;
    assert!(
        points >= 4,
        "the CPU chart drew {points} points (two lines)"
    );
    let drawn = b
        .attr(&b.find("figure[data-title=CPU] polyline.p95")?, "points")?
        .unwrap_or_default();
    assert!(
        drawn.split(' ').count() >= 1 && drawn.contains(','),
        "{drawn}"
    );
    assert_eq!(b.find_all("article.target")?.len(), 2, "both clouds");
    b.page_screenshot(&dir.join("vm.png"), 1280, 800)?;

    // The overview counts what the API counts.
    b.goto(&format!("{url}/"))?;
    assert_eq!(b.text_of("#vm-count")?, api_vms.to_string());
    let shipped = b.text_of("td.last-window")?;
    assert!(
        shipped.ends_with(" UTC"),
        "the agent's last window: {shipped:?}"
    );
    b.page_screenshot(&dir.join("overview.png"), 1280, 800)?;

    // The assessment's totals are `assess`'s (the page's figures are rebuilt once the
    // last batch is in: reload until they are).
    let want: Vec<(String, String)> = assessed["targets"]
        .as_array()
        .context("targets")?
        .iter()
        .map(|t| {
            (
                t["target"].as_str().unwrap_or_default().to_owned(),
                money(t["totals"]["monthly_total"].as_f64().unwrap_or(-1.0)),
            )
        })
        .collect();
    wait_until(
        Duration::from_secs(60),
        "the assessment page's totals equal assess's",
        || {
            b.goto(&format!("{url}/assessment"))?;
            let mut got = Vec::new();
            for row in b.find_all("table.totals tbody tr")? {
                let target = b.attr(&row, "data-target")?.unwrap_or_default();
                let total = b.text(&b.find_in(&row, "td.total")?)?;
                got.push((target, total));
            }
            Ok(got == want)
        },
    )?;
    b.page_screenshot(&dir.join("assessment.png"), 1280, 800)?;
    // A bad setting is said on the page, naming the value.
    b.goto(&format!("{url}/assessment?percentile=97"))?;
    assert!(b.text_of("#settings-error")?.contains("97"));

    // A download is a valid workbook.
    b.goto(&format!("{url}/assessment"))?;
    let link = b
        .find_all(".downloads a")?
        .into_iter()
        .find(|a| b.text(a).is_ok_and(|t| t.contains("xlsx")))
        .context("xlsx link")?;
    b.click(&link)?; // a download: no new page
    let mut file = None;
    wait_until(Duration::from_secs(60), "the workbook downloaded", || {
        file = std::fs::read_dir(downloads)?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|x| x == "xlsx"));
        Ok(file.is_some())
    })?;
    let tabs = vscout_e2e::workbook::read(&file.context("file")?)?;
    let names: Vec<&str> = tabs.iter().map(|(n, _)| n.as_str()).collect();
    assert!(
        names.contains(&"vInfo") && names.contains(&"Assessment"),
        "{names:?}"
    );

    // Hosts, clusters and datastores: as many as the API lists.
    for kind in ["hosts", "clusters", "datastores"] {
        let n = api
            .json(&format!("/v1/{kind}?limit=100000"), token)?
            .as_array()
            .map_or(0, Vec::len);
        b.goto(&format!("{url}/{kind}"))?;
        assert_eq!(b.text_of("#count")?, n.to_string(), "{kind}");
        b.screenshot(&dir.join(format!("{kind}.png")))?;
    }

    // A phone-width screen: nothing wider than the screen but the tables' own scroll.
    b.resize(390, 844)?;
    for (page, shot) in [("/", "overview-phone.png"), ("/vms", "vms-phone.png")] {
        b.goto(&format!("{url}{page}"))?;
        let fits =
            b.script("return document.documentElement.scrollWidth <= window.innerWidth + 1")?;
        assert_eq!(fits, Value::Bool(true), "{page} overflows a phone's width");
        b.screenshot(&dir.join(shot))?;
    }
    b.resize(1280, 800)?;

    // Logging out ends the session.
    b.click_to_load(&b.find("form.logout button")?)?;
    ensure!(b.url()?.contains("/login"), "after log-out: {}", b.url()?);
    b.goto(&format!("{url}/vms"))?;
    ensure!(b.url()?.contains("/login"), "the session outlived log-out");
    Ok(())
}
