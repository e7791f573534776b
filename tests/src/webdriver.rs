//! A WebDriver client for the page tests: starts Debian's `chromedriver` on a free
//! loopback port and headless Chromium through it (W3C WebDriver over HTTP, a few
//! commands: navigate, find, read, click, type, run a script, screenshot). Written here
//! rather than taken from a crate: the crates that do it (fantoccini, thirtyfour) bring a
//! second copy of much of the tree for the dozen calls the tests make.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use base64::Engine;
use serde_json::{json, Value};

/// The W3C element reference key.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

pub fn chromium() -> Option<&'static str> {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| Path::new(p).exists())
}

/// A browser session; the driver (and its browser) are killed on drop.
#[derive(Debug)]
pub struct Browser {
    driver: Child,
    base: String,
    http: reqwest::Client,
    rt: tokio::runtime::Runtime,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Headless Chromium at `width`×`height`, accepting the collector's self-signed
    /// certificate, downloading into `downloads`.
    pub fn start(width: u32, height: u32, downloads: &Path) -> Result<Self> {
        let chrome = chromium().context("chromium is not installed (scripts/setup installs it)")?;
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("start chromedriver (Debian's chromium-driver)")?;
        let profile = tempfile::tempdir()?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        // Plain HTTP to the driver, but reqwest is built without a default TLS provider.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder().no_proxy().build()?;
        let mut b = Browser {
            driver,
            base: format!("http://127.0.0.1:{port}"),
            http,
            rt,
            _profile: profile,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while b.call("GET", "/status", None).is_err() {
            if Instant::now() > deadline {
                bail!("chromedriver did not answer on port {port}");
            }
            crate::pause(Duration::from_millis(100));
        }
        let args = [
            "--headless=new".to_owned(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            format!("--window-size={width},{height}"),
            format!("--user-data-dir={}", b._profile.path().display()),
        ];
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "acceptInsecureCerts": true,
            "goog:chromeOptions": {
                "binary": chrome,
                "args": args,
                "prefs": {
                    "download.default_directory": downloads.display().to_string(),
                    "download.prompt_for_download": false,
                },
            },
        }}});
        let v = b.call("POST", "/session", Some(caps))?;
        let id = v["sessionId"].as_str().context("no session id")?.to_owned();
        b.base = format!("{}/session/{id}", b.base);
        Ok(b)
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value> {
        let url = format!("{}{path}", self.base);
        let req = match method {
            "GET" => self.http.get(&url),
            "DELETE" => self.http.delete(&url),
            _ => self
                .http
                .post(&url)
                .header("content-type", "application/json")
                .body(body.unwrap_or(json!({})).to_string()),
        };
        let v: Value = self.rt.block_on(async {
            let r = req.timeout(Duration::from_secs(120)).send().await?;
            let text = r.text().await?;
            Ok::<_, anyhow::Error>(serde_json::from_str::<Value>(&text)?)
        })?;
        if let Some(err) = v["value"]["error"].as_str() {
            bail!(
                "webdriver {method} {path}: {err}: {}",
                v["value"]["message"]
            );
        }
        Ok(v.get("sessionId").map_or(v["value"].clone(), |_| v.clone()))
    }

    pub fn goto(&self, url: &str) -> Result<()> {
        self.call("POST", "/url", Some(json!({ "url": url })))?;
        Ok(())
    }

    pub fn url(&self) -> Result<String> {
        Ok(self
            .call("GET", "/url", None)?
            .as_str()
            .unwrap_or_default()
            .to_owned())
    }

    /// The first element matching the CSS selector.
    pub fn find(&self, css: &str) -> Result<String> {
        let v = self
            .call(
                "POST",
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .with_context(|| format!("find {css:?}"))?;
        Ok(v[ELEMENT]
            .as_str()
            .with_context(|| format!("find {css:?}: {v}"))?
            .to_owned())
    }

    pub fn find_all(&self, css: &str) -> Result<Vec<String>> {
        let v = self.call(
            "POST",
            "/elements",
            Some(json!({"using": "css selector", "value": css})),
        )?;
        Ok(v.as_array()
            .context("elements")?
            .iter()
            .filter_map(|e| e[ELEMENT].as_str().map(str::to_owned))
            .collect())
    }

    /// The first element matching `css` inside `el`.
    pub fn find_in(&self, el: &str, css: &str) -> Result<String> {
        let v = self.call(
            "POST",
            &format!("/element/{el}/element"),
            Some(json!({"using": "css selector", "value": css})),
        )?;
        Ok(v[ELEMENT].as_str().context("element id")?.to_owned())
    }

    pub fn text(&self, el: &str) -> Result<String> {
        Ok(self
            .call("GET", &format!("/element/{el}/text"), None)?
            .as_str()
            .unwrap_or_default()
            .to_owned())
    }

    /// The text of the first element matching `css`.
    pub fn text_of(&self, css: &str) -> Result<String> {
        self.text(&self.find(css)?)
    }

    pub fn attr(&self, el: &str, name: &str) -> Result<Option<String>> {
        Ok(self
            .call("GET", &format!("/element/{el}/attribute/{name}"), None)?
            .as_str()
            .map(str::to_owned))
    }

    pub fn click(&self, el: &str) -> Result<()> {
        self.call("POST", &format!("/element/{el}/click"), None)?;
        Ok(())
    }

    /// Clicks something that loads a page (a link, a form's button) and waits until the
    /// new document has loaded: the old one is marked first, so a check made right after
    /// never reads the page being left.
    pub fn click_to_load(&self, el: &str) -> Result<()> {
        self.script("window.__vscout_left = true; return true")?;
        self.click(el)?;
        self.wait_for_load()
    }

    /// Waits until a document other than the one marked `window.__vscout_left` has
    /// loaded (mark it before the action that navigates).
    pub fn wait_for_load(&self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let done = self.script(
                "return window.__vscout_left !== true && document.readyState === 'complete'",
            );
            if matches!(done, Ok(Value::Bool(true))) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("no new page loaded after the click");
            }
            crate::pause(Duration::from_millis(50));
        }
    }

    pub fn type_into(&self, el: &str, text: &str) -> Result<()> {
        self.call(
            "POST",
            &format!("/element/{el}/value"),
            Some(json!({ "text": text })),
        )?;
        Ok(())
    }

    /// Runs `script` in the page (WebDriver's own channel, not the page's policy).
    pub fn script(&self, script: &str) -> Result<Value> {
        self.call(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": []})),
        )
    }

    pub fn resize(&self, width: u32, height: u32) -> Result<()> {
        self.call(
            "POST",
            "/window/rect",
            Some(json!({"width": width, "height": height})),
        )?;
        Ok(())
    }

    /// The whole window as a PNG at `path`.
    pub fn screenshot(&self, path: &Path) -> Result<()> {
        let v = self.call("GET", "/screenshot", None)?;
        let png = base64::engine::general_purpose::STANDARD.decode(v.as_str().context("png")?)?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, png)?;
        Ok(())
    }

    /// The whole page as a PNG at `path`: the window grown to the page's height for the
    /// picture, then put back to `width`×`height`.
    pub fn page_screenshot(&self, path: &Path, width: u32, height: u32) -> Result<()> {
        let h = self
            .script("return document.documentElement.scrollHeight")?
            .as_u64()
            .unwrap_or(u64::from(height))
            .clamp(u64::from(height), 6000) as u32;
        self.resize(width, h + 100)?;
        let shot = self.screenshot(path);
        self.resize(width, height)?;
        shot
    }

    /// The cookies the browser holds for the current page.
    pub fn cookies(&self) -> Result<Vec<Value>> {
        Ok(self
            .call("GET", "/cookie", None)?
            .as_array()
            .cloned()
            .unwrap_or_default())
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.call("DELETE", "", None);
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
