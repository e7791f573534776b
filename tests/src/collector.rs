//! Harness for the collector and the agent daemon: starts the real `vscout-collector`
//! binary on loopback (restartable on the same port), reads its database for assertions,
//! runs `vscout run` with JSON logs to a file, and reads back which batches the agent
//! logged as stored.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::built_binary;
use vscout::config::{parse_thumbprint, TlsPolicy};
use vscout::ship::batch::{self, AgentHealth, Batch, Record, HEALTH_SCHEMA_VERSION};
use vscout::tls::ClientIdentity;

/// An HTTPS client that pins `col`'s certificate, with a client certificate if given.
/// It follows no redirect: a test sees the page's own answer (a log-in's cookie, the
/// redirect to the log-in form).
pub fn client(col: &Collector, identity: Option<&ClientPki>) -> Result<reqwest::Client> {
    let pin = parse_thumbprint(&col.thumbprint).map_err(anyhow::Error::msg)?;
    let id = identity.map(|p| ClientIdentity {
        cert_file: p.cert_pem.clone(),
        key_file: p.key_pem.clone(),
    });
    let tls = vscout::tls::client_config(
        &TlsPolicy::Pinned { sha256: pin },
        Default::default(),
        id.as_ref(),
    )
    .map_err(anyhow::Error::msg)?;
    Ok(reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()?)
}

/// A batch of one health record, in batch format `version`.
pub fn health_batch(version: u32) -> Result<Vec<u8>> {
    Ok(batch::encode(&Batch {
        batch_version: version,
        created_ms: 0,
        records: vec![Record::Health(AgentHealth {
            schema_version: HEALTH_SCHEMA_VERSION,
            version: "test".into(),
            buffer_depth: 7,
            ..AgentHealth::default()
        })],
    })?)
}

/// POSTs a zstd body to `/v1/ingest` with an optional token and idempotency key.
pub async fn post(
    http: &reqwest::Client,
    col: &Collector,
    token: Option<&str>,
    key: Option<&str>,
    body: Vec<u8>,
) -> Result<reqwest::Response> {
    let mut req = http
        .post(format!("{}/v1/ingest", col.url))
        .header("content-encoding", "zstd")
        .header("content-type", batch::CONTENT_TYPE)
        .body(body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(k) = key {
        req = req.header("idempotency-key", k);
    }
    Ok(req.send().await?)
}

/// `[retention]` for tests whose fixtures are dated (2023 to 2025): ten years kept, as an
/// archive's would be, so the collector's prune at start does not refuse their windows.
pub const DATED_FIXTURES: &str = "[retention]\nwindows_days = 3650\nsummaries_days = 3650\n";

/// A running `vscout-collector`.
#[derive(Debug)]
pub struct Collector {
    child: Option<Child>,
    pub url: String,
    pub port: u16,
    pub thumbprint: String,
    /// The first agent token's file (created on first start).
    pub token_file: PathBuf,
    pub data_dir: PathBuf,
    config: Option<PathBuf>,
}

impl Collector {
    /// Starts a collector with a fresh data directory on a free loopback port.
    pub fn start(data_dir: &Path) -> Result<Self> {
        Self::start_with(data_dir, 0, None)
    }

    /// Starts keeping ten years (`DATED_FIXTURES`), for tests that post dated fixtures.
    pub fn start_dated(data_dir: &Path) -> Result<Self> {
        let config = data_dir.with_extension("toml");
        std::fs::write(&config, DATED_FIXTURES)?;
        Self::start_with(data_dir, 0, Some(&config))
    }

    /// Starts with a configuration file (TOML) as well.
    pub fn start_with(data_dir: &Path, port: u16, config: Option<&Path>) -> Result<Self> {
        let bin = built_binary("vscout-collector")?;
        let mut cmd = Command::new(bin);
        cmd.arg("--data-dir")
            .arg(data_dir)
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"));
        if let Some(c) = config {
            cmd.arg("--config").arg(c);
        }
        let mut child = cmd
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdout = child.stdout.take().context("stdout")?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        // The collector prints COLLECTOR_READY last, once it listens and its first token's
        // file is written: starting an agent on the URL alone raced the token file.
        let (mut url, mut thumbprint, mut ready) = (None, None, false);
        while !ready {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(v) = line.strip_prefix("COLLECTOR_URL=") {
                        url = Some(v.to_owned());
                    } else if let Some(v) = line.strip_prefix("COLLECTOR_THUMBPRINT_SHA256=") {
                        thumbprint = Some(v.to_owned());
                    } else if line == "COLLECTOR_READY=1" {
                        ready = true;
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = child.wait()?;
                    bail!("collector exited before it was ready ({status})");
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    let _ = child.kill();
                    bail!("collector was not ready within 60 s");
                }
            }
        }
        let url = url.context("url")?;
        let port = url
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .context("port")?;
        Ok(Self {
            child: Some(child),
            url,
            port,
            thumbprint: thumbprint.context("thumbprint")?,
            token_file: data_dir.join("first-agent.token"),
            data_dir: data_dir.to_owned(),
            config: config.map(Path::to_owned),
        })
    }

    /// The collector's process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Stops (SIGTERM) and waits.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(c.id().to_string())
                .status();
            let _ = c.wait();
        }
    }

    /// Starts again on the same port with the same data.
    pub fn restart(&mut self) -> Result<()> {
        self.stop();
        let again = Self::start_with(&self.data_dir, self.port, self.config.as_deref())?;
        *self = again;
        Ok(())
    }

    /// An agent's settings for a test that ships here quickly: inventory every 10 s,
    /// 20-second polls into 1-minute windows, a group commit every 100 ms.
    pub fn quick_agent_settings(&self) -> String {
        format!(
            "inventory_interval_secs = 10\nhealth_interval_secs = 5\n\n[perf]\ninterval_secs = 20\nwindow_secs = 60\n\n[buffer]\ncommit_interval_ms = 100\n{}",
            self.agent_section(None)
        )
    }

    /// One request to this collector, on a runtime of its own: the status, the
    /// headers and the body.
    fn send(
        &self,
        req: impl FnOnce(&reqwest::Client, &str) -> reqwest::RequestBuilder,
    ) -> Result<(u16, reqwest::header::HeaderMap, String)> {
        let http = client(self, None)?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        rt.block_on(async {
            let r = req(&http, &self.url).send().await?;
            let (status, headers) = (r.status().as_u16(), r.headers().clone());
            Ok((status, headers, r.text().await?))
        })
    }

    /// Logs in at this collector's pages: the session cookie (`name=value`), or the
    /// status of a refusal.
    pub fn log_in(&self, user: &str, password: &str) -> Result<std::result::Result<String, u16>> {
        let body = form_body(&[("user", user), ("password", password), ("next", "/")]);
        let (status, headers, _) = self.send(|http, url| {
            http.post(format!("{url}/login"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body)
        })?;
        let cookie = headers
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .and_then(|c| c.split(';').next())
            .map(str::to_owned);
        Ok(match (status, cookie) {
            (303, Some(c)) => Ok(c),
            (status, _) => Err(status),
        })
    }

    /// GET `path` with a `Cookie` header: the status and the body.
    pub fn get_with_cookie(&self, path: &str, cookie: &str) -> Result<(u16, String)> {
        let (status, _, body) =
            self.send(|http, url| http.get(format!("{url}{path}")).header("cookie", cookie))?;
        Ok((status, body))
    }

    /// POST `path` (no body) with a `Cookie` header: the status.
    pub fn post_with_cookie(&self, path: &str, cookie: &str) -> Result<u16> {
        Ok(self
            .send(|http, url| http.post(format!("{url}{path}")).header("cookie", cookie))?
            .0)
    }

    /// `user add NAME`, the password given through a file in `dir`: the command's output.
    pub fn add_user(&self, dir: &Path, name: &str, password: &str) -> Result<std::process::Output> {
        let file = dir.join(format!("{name}.password"));
        std::fs::write(&file, format!("{password}\n"))?;
        self.command(
            "user",
            &[
                "add",
                name,
                "--password-file",
                file.to_str().context("utf-8 path")?,
            ],
        )
    }

    /// The `[collector]` section of an agent configuration that ships here (or to `url`
    /// pinned by `thumbprint`, a proxy in front), with this collector's first token.
    pub fn agent_section(&self, via: Option<(&str, &str)>) -> String {
        let (url, thumbprint) = via.unwrap_or((&self.url, &self.thumbprint));
        format!(
            "\n[collector]\nurl = \"{url}\"\ntoken_file = \"{}\"\nretry_max_secs = 2\nrequest_timeout_secs = 10\n[collector.tls]\nthumbprint_sha256 = \"{thumbprint}\"\n",
            self.token_file.display(),
        )
    }

    /// A read-only connection to the collector's database.
    pub fn db(&self) -> Result<rusqlite::Connection> {
        let c = rusqlite::Connection::open_with_flags(
            self.data_dir.join("collector.db"),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )?;
        c.busy_timeout(Duration::from_secs(10))?;
        Ok(c)
    }

    /// Sequences of the batches stored for `agent_id`, with their rollup counts.
    pub fn batches(&self, agent_id: &str) -> Result<std::collections::BTreeMap<u64, u64>> {
        let db = self.db()?;
        let mut stmt = db.prepare("SELECT seq, rollups FROM batches WHERE agent_id = ?1")?;
        let rows = stmt.query_map([agent_id], |r| {
            Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Runs `vscout-collector --data-dir DIR [--config FILE] SUBCOMMAND ARGS` on this
    /// collector's data.
    pub fn command(&self, subcommand: &str, args: &[&str]) -> Result<std::process::Output> {
        let mut cmd = Command::new(built_binary("vscout-collector")?);
        cmd.arg("--data-dir").arg(&self.data_dir);
        if let Some(c) = &self.config {
            cmd.arg("--config").arg(c);
        }
        Ok(cmd.arg(subcommand).args(args).output()?)
    }

    /// One number from the database.
    pub fn count(&self, sql: &str) -> Result<u64> {
        Ok(self.db()?.query_row(sql, [], |r| r.get::<_, i64>(0))? as u64)
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A `vscout run` process with JSON logs appended to a file.
#[derive(Debug)]
pub struct Agent {
    pub child: Child,
    pub log: PathBuf,
}

impl Agent {
    pub fn spawn(config: &str, log: &Path) -> Result<Self> {
        Self::spawn_with_env(config, log, &[])
    }

    /// As `spawn`, with extra environment variables (`NOTIFY_SOCKET` …).
    pub fn spawn_with_env(config: &str, log: &Path, env: &[(&str, &str)]) -> Result<Self> {
        let bin = built_binary("vscout")?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)?;
        let child = Command::new(bin)
            .args(["--log-format", "json", "--config", config, "run"])
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()?;
        Ok(Self {
            child,
            log: log.to_owned(),
        })
    }

    /// Sends a signal by name (`HUP`, `TERM` …).
    pub fn signal(&self, name: &str) -> Result<()> {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()?;
        anyhow::ensure!(status.success(), "kill -{name} failed");
        Ok(())
    }

    pub fn kill9(mut self) -> Result<()> {
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }

    /// SIGTERM, then waits up to `deadline`; returns the exit code.
    pub fn terminate(mut self, deadline: Duration) -> Result<Option<i32>> {
        Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()?;
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status.code());
            }
            if start.elapsed() > deadline {
                let _ = self.child.kill();
                bail!("agent did not stop within {deadline:?} of SIGTERM");
            }
            crate::pause(Duration::from_millis(50));
        }
    }

    /// Resident memory now, from /proc.
    pub fn rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    }
}

/// One "batch stored" line of an agent's log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stored {
    pub seq: u64,
    pub rollups: u64,
    pub inventories: u64,
}

/// The log lines (JSON) whose message is `message`, as their `fields` objects.
pub fn log_events(log: &Path, message: &str) -> Result<Vec<serde_json::Value>> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    Ok(text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v.get("fields").cloned())
        .filter(|f| f.get("message").and_then(|m| m.as_str()) == Some(message))
        .collect())
}

/// Every batch the agent logged as stored (fsynced) in `log`.
pub fn stored_batches(log: &Path) -> Result<Vec<Stored>> {
    let n = |f: &serde_json::Value, k: &str| f.get(k).and_then(|v| v.as_u64()).unwrap_or(0);
    Ok(log_events(log, "batch stored")?
        .iter()
        .map(|f| Stored {
            seq: n(f, "seq"),
            rollups: n(f, "rollups"),
            inventories: n(f, "inventories"),
        })
        .collect())
}

/// The agent's identity from its state directory.
pub fn agent_id(state_dir: &Path) -> Result<String> {
    Ok(std::fs::read_to_string(state_dir.join("agent-id"))?
        .trim()
        .to_owned())
}

/// Polls `check` every 500 ms until it returns true or `deadline` passes.
pub fn wait_until(
    deadline: Duration,
    what: &str,
    mut check: impl FnMut() -> Result<bool>,
) -> Result<()> {
    let start = Instant::now();
    loop {
        if check()? {
            return Ok(());
        }
        if start.elapsed() > deadline {
            bail!("timed out after {deadline:?} waiting for {what}");
        }
        crate::pause(Duration::from_millis(500));
    }
}

/// `wait_until`, with the end of the agent's `log` in the error (a timeout in CI is
/// otherwise unexplained).
pub fn wait_logged(
    log: &Path,
    deadline: Duration,
    what: &str,
    check: impl FnMut() -> Result<bool>,
) -> Result<()> {
    wait_until(deadline, what, check).with_context(|| log_tail(log, 40))
}

/// The last `n` lines of a log, to explain a timeout.
pub fn log_tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    format!(
        "last {} lines of {}:\n{}",
        n.min(lines.len()),
        path.display(),
        lines[lines.len().saturating_sub(n)..].join("\n")
    )
}

/// A client CA and one client certificate it signed, as PEM files.
#[derive(Debug, Clone)]
pub struct ClientPki {
    pub ca_pem: PathBuf,
    pub cert_pem: PathBuf,
    pub key_pem: PathBuf,
}

impl ClientPki {
    pub fn generate(dir: &Path, name: &str) -> Result<Self> {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
        let ca_key = KeyPair::generate()?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, format!("{name} client CA"));
        let ca = ca_params.self_signed(&ca_key)?;
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let cert = params.signed_by(&key, &issuer)?;
        let pki = Self {
            ca_pem: dir.join(format!("{name}-ca.pem")),
            cert_pem: dir.join(format!("{name}-cert.pem")),
            key_pem: dir.join(format!("{name}-key.pem")),
        };
        std::fs::write(&pki.ca_pem, ca.pem())?;
        std::fs::write(&pki.cert_pem, cert.pem())?;
        std::fs::write(&pki.key_pem, key.serialize_pem())?;
        Ok(pki)
    }
}

/// `application/x-www-form-urlencoded` of `pairs` (spaces as `+`, the rest escaped).
fn form_body(pairs: &[(&str, &str)]) -> String {
    let enc = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => {
                    (b as char).to_string()
                }
                b' ' => "+".to_owned(),
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}
