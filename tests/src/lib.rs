//! Test harness for vscout's end-to-end tests: builds and starts govmomi's vCenter
//! simulator (vcsim) with certificates made per test, writes agent configurations, runs
//! the real `vscout` binary, and (in `proxy`) puts a fault layer in front of vcsim.
//!
//! vcsim is built once from `vcsim/main.go` against Debian's govmomi package into
//! `target/vcsim/vcsim` (or taken from `$VSCOUT_VCSIM`).
#![forbid(unsafe_code)]

pub mod assessment;
pub mod collector;
pub mod export;
pub mod http_fault;
pub mod postgres;
pub mod proxy;
pub mod webdriver;
pub mod workbook;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// The workspace root (this crate lives in `tests/`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_owned()
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// Path to a built vcsim, building it if needed (about 20 s the first time).
pub fn vcsim_binary() -> Result<PathBuf> {
    static BIN: OnceLock<std::result::Result<PathBuf, String>> = OnceLock::new();
    BIN.get_or_init(|| build_vcsim().map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(anyhow::Error::msg)
}

fn build_vcsim() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("VSCOUT_VCSIM") {
        return Ok(PathBuf::from(p));
    }
    let src = workspace_root().join("tests/vcsim");
    let out_dir = target_dir().join("vcsim");
    let bin = out_dir.join("vcsim");
    let fresh = |bin: &Path| -> bool {
        let (Ok(b), Ok(s)) = (
            std::fs::metadata(bin),
            std::fs::metadata(src.join("main.go")),
        ) else {
            return false;
        };
        matches!((b.modified(), s.modified()), (Ok(b), Ok(s)) if b >= s)
    };
    if fresh(&bin) {
        return Ok(bin);
    }
    std::fs::create_dir_all(&out_dir)?;
    // Several test binaries may build at once: each builds to its own name, then renames.
    let tmp = out_dir.join(format!("vcsim.{}", std::process::id()));
    let status = Command::new("go")
        .args(["build", "-o"])
        .arg(&tmp)
        .arg(".")
        .current_dir(&src)
        .env("GO111MODULE", "off")
        .env("GOPATH", "/usr/share/gocode")
        .env("GOCACHE", out_dir.join("gocache"))
        .env("GOFLAGS", "-mod=mod")
        .status()
        .context("cannot run `go` (install golang-go and golang-github-vmware-govmomi-dev)")?;
    if !status.success() {
        bail!("go build of tests/vcsim failed ({status})");
    }
    std::fs::rename(&tmp, &bin)?;
    Ok(bin)
}

/// A CA and a server certificate for 127.0.0.1 signed by it, as PEM files in a directory.
#[derive(Debug, Clone)]
pub struct Certs {
    pub ca_pem: PathBuf,
    pub cert_pem: PathBuf,
    pub key_pem: PathBuf,
    /// SHA-256 of the server certificate, `AB:CD:…`.
    pub thumbprint: String,
}

impl Certs {
    /// A TLS acceptor presenting the server certificate (ring, safe default protocols),
    /// for the test proxies that stand in front of vcsim or the collector.
    pub fn tls_acceptor(&self) -> Result<tokio_rustls::TlsAcceptor> {
        use rustls::pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer};
        let chain: Vec<CertificateDer<'static>> =
            CertificateDer::pem_file_iter(&self.cert_pem)?.collect::<Result<_, _>>()?;
        let key = PrivateKeyDer::from_pem_file(&self.key_pem)?;
        let server = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
        Ok(tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(server)))
    }

    pub fn generate(dir: &Path) -> Result<Self> {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, SanType};
        let ca_key = KeyPair::generate()?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "vscout test CA");
        let ca = ca_params.self_signed(&ca_key)?;
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(vec!["localhost".to_string()])?;
        params
            .subject_alt_names
            .push(SanType::IpAddress("127.0.0.1".parse()?));
        params.distinguished_name.push(DnType::CommonName, "vcsim");
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let cert = params.signed_by(&key, &issuer)?;
        let certs = Self {
            ca_pem: dir.join("ca.pem"),
            cert_pem: dir.join("cert.pem"),
            key_pem: dir.join("key.pem"),
            thumbprint: thumbprint(cert.der()),
        };
        std::fs::write(&certs.ca_pem, ca.pem())?;
        std::fs::write(&certs.cert_pem, cert.pem())?;
        std::fs::write(&certs.key_pem, key.serialize_pem())?;
        Ok(certs)
    }
}

/// SHA-256 thumbprint as vCenter formats it.
pub fn thumbprint(der: &[u8]) -> String {
    vscout::tls::format_thumbprint(&vscout::tls::thumbprint(der))
}

/// Options for a simulated estate.
#[derive(Debug, Clone)]
pub struct SimOptions {
    pub datacenters: u32,
    pub clusters: u32,
    pub hosts_per_cluster: u32,
    pub standalone_hosts: u32,
    pub vms_per_pool: u32,
    pub datastores: u32,
    pub folders: u32,
    pub esx: bool,
    /// `127.0.0.1:0` picks a free port.
    pub listen: String,
    /// An estate's spread of guest OSes, firmware, vCPUs, memory and disk sizes instead
    /// of vcsim's identical VMs (`-variety`).
    pub variety: bool,
}

impl SimOptions {
    /// The benchmarks' estate: `vms` VMs in 10 resource pools (9 clusters of 4 hosts and
    /// a standalone host), 4 datastores.
    pub fn bench(vms: u32) -> Self {
        let pools = 10;
        Self {
            clusters: pools - 1,
            hosts_per_cluster: 4,
            standalone_hosts: 1,
            vms_per_pool: vms / pools,
            datastores: 4,
            ..Self::default()
        }
    }

    /// The number of VMs vcsim creates for these options.
    pub fn vm_count(&self) -> u32 {
        self.datacenters * (self.clusters + self.standalone_hosts) * self.vms_per_pool
    }
}

impl Default for SimOptions {
    fn default() -> Self {
        Self {
            datacenters: 1,
            clusters: 1,
            hosts_per_cluster: 3,
            standalone_hosts: 1,
            vms_per_pool: 2,
            datastores: 1,
            folders: 0,
            esx: false,
            listen: "127.0.0.1:0".into(),
            variety: false,
        }
    }
}

pub const USER: &str = "vscout-user";
pub const PASSWORD: &str = "Sup3r&Secret<pw>";

/// A running vcsim; killed on drop (and it exits by itself if this process dies, because
/// its standard input closes).
#[derive(Debug)]
pub struct Vcsim {
    child: Child,
    _stdin: ChildStdin,
    /// `https://127.0.0.1:PORT/sdk`
    pub url: String,
    pub port: u16,
    /// SHA-256 of the certificate vcsim presents, `AB:CD:…`.
    pub thumbprint: String,
}

impl Vcsim {
    /// Starts vcsim presenting `certs`' server certificate.
    pub fn start(opts: &SimOptions, certs: &Certs) -> Result<Self> {
        Self::spawn(opts, Some(certs))
    }

    /// Starts vcsim with its own built-in certificate (RSA-1024, self-signed), as an
    /// estate with a legacy certificate would present.
    pub fn start_with_builtin_certificate(opts: &SimOptions) -> Result<Self> {
        Self::spawn(opts, None)
    }

    fn spawn(opts: &SimOptions, certs: Option<&Certs>) -> Result<Self> {
        let bin = vcsim_binary()?;
        let mut cmd = Command::new(bin);
        cmd.arg(format!("-dc={}", opts.datacenters))
            .arg(format!("-cluster={}", opts.clusters))
            .arg(format!("-host={}", opts.hosts_per_cluster))
            .arg(format!("-standalone-host={}", opts.standalone_hosts))
            .arg(format!("-vm={}", opts.vms_per_pool))
            .arg(format!("-ds={}", opts.datastores))
            .arg(format!("-folder={}", opts.folders))
            .arg(format!("-esx={}", opts.esx))
            .arg(format!("-l={}", opts.listen))
            .arg(format!("-variety={}", opts.variety))
            .arg(format!("-username={USER}"))
            .arg(format!("-password={PASSWORD}"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        if let Some(c) = certs {
            cmd.arg("-tlscert")
                .arg(&c.cert_pem)
                .arg("-tlskey")
                .arg(&c.key_pem);
        }
        let mut child = cmd.spawn().context("spawn vcsim")?;
        let stdin = child.stdin.take().context("vcsim stdin")?;
        let stdout = child.stdout.take().context("vcsim stdout")?;
        let mut stdout = BufReader::new(stdout);
        let mut said = |prefix: &str| -> Option<String> {
            let mut line = String::new();
            stdout.read_line(&mut line).ok()?;
            line.trim().strip_prefix(prefix).map(str::to_owned)
        };
        let (Some(url), Some(thumbprint)) = (said("VCSIM_URL="), said("VCSIM_THUMBPRINT_SHA256="))
        else {
            let _ = child.kill();
            bail!("vcsim did not start (no VCSIM_URL and VCSIM_THUMBPRINT_SHA256 lines)");
        };
        let port = url
            .rsplit(':')
            .next()
            .and_then(|p| p.split('/').next())
            .and_then(|p| p.parse().ok())
            .context("port")?;
        Ok(Self {
            child,
            _stdin: stdin,
            url,
            port,
            thumbprint,
        })
    }

    pub fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Vcsim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How the test agent trusts the server.
#[derive(Debug, Clone)]
pub enum Trust {
    Default,
    Pin(String),
    Ca(PathBuf),
    Insecure,
}

/// Writes `agent.toml` and a password file into `dir`; returns the config path.
pub fn write_agent_config(
    dir: &Path,
    vcenters: &[(&str, &str, Trust)],
    password: &str,
    extra_agent: &str,
) -> Result<PathBuf> {
    let pw = dir.join("vc.password");
    std::fs::write(&pw, format!("{password}\n"))?;
    let mut text = format!(
        "[agent]\nstate_dir = \"{}\"\n{extra_agent}\n",
        dir.join("state").display()
    );
    for (name, url, trust) in vcenters {
        text.push_str(&format!(
            "\n[[vcenter]]\nname = \"{name}\"\nurl = \"{url}\"\nusername = \"{USER}\"\npassword_file = \"{}\"\nrequest_timeout_secs = 60\n",
            pw.display()
        ));
        match trust {
            Trust::Default => {}
            Trust::Pin(tp) => {
                text.push_str(&format!("[vcenter.tls]\nthumbprint_sha256 = \"{tp}\"\n"))
            }
            Trust::Ca(p) => {
                text.push_str(&format!("[vcenter.tls]\nca_file = \"{}\"\n", p.display()))
            }
            Trust::Insecure => text.push_str("[vcenter.tls]\ninsecure = true\n"),
        }
    }
    let path = dir.join("agent.toml");
    std::fs::write(&path, text)?;
    Ok(path)
}

/// The `vscout` binary cargo built next to the test executables.
pub fn vscout_binary() -> Result<PathBuf> {
    built_binary("vscout")
}

/// A workspace binary (`vscout`, `vscout-collector`) cargo built next to the test
/// executables. Refuses one older than its sources: `cargo test --workspace` rebuilds
/// it, but `cargo test -p vscout-e2e` alone does not, and a stale binary would test old
/// code.
pub fn built_binary(name: &str) -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    // Test executables live in target/<profile>/deps, binaries (the demo) one level up.
    let mut dir = exe.parent().context("target dir")?;
    if dir.ends_with("deps") {
        dir = dir.parent().context("target dir")?;
    }
    let bin = dir.join(name);
    if !bin.exists() {
        bail!(
            "{} is missing: build the workspace first (cargo build --workspace)",
            bin.display()
        );
    }
    let built = std::fs::metadata(&bin)?.modified()?;
    if newest_source_mtime(&bin).is_some_and(|src| src > built) {
        bail!(
            "{} is older than its sources: run `cargo build --workspace` (or `cargo test --workspace`)",
            bin.display()
        );
    }
    Ok(bin)
}

/// Newest modification time of the sources cargo recorded for `bin` in its dep-info
/// file (`bin.d`): exactly the files whose change makes cargo rebuild it.
fn newest_source_mtime(bin: &Path) -> Option<std::time::SystemTime> {
    let depinfo = std::fs::read_to_string(bin.with_extension("d")).ok()?;
    let (_, deps) = depinfo.split_once(": ")?;
    deps.split_whitespace()
        .filter_map(|p| std::fs::metadata(p).ok()?.modified().ok())
        .max()
}

/// The agent's own CPU time (ms) and peak RSS (KiB) from the `vscout-resources` line it
/// prints to stderr with `VSCOUT_REPORT_RESOURCES` set; zeros if the line is missing.
pub fn reported_resources(stderr: &str) -> (u64, u64) {
    let line = stderr
        .lines()
        .find(|l| l.starts_with("vscout-resources"))
        .unwrap_or("");
    let field = |name: &str| {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(name))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("cpu_ms="), field("peak_rss_kib="))
}

/// Blocks this (test) thread for `d` between two looks at a condition: the one place the
/// tests sleep, so that clippy's `disallowed-methods` keeps `std::thread::sleep` out of
/// everything else. Never a wait for something to happen by itself: poll for it.
#[allow(clippy::disallowed_methods)]
pub fn pause(d: Duration) {
    std::thread::sleep(d);
}

/// VMs in the benchmarks' estate: `$VSCOUT_BENCH_VMS`, default 10,000.
pub fn bench_vms() -> u32 {
    std::env::var("VSCOUT_BENCH_VMS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000)
}

/// Builds (if needed) the release `vscout` binary and returns its path; for benchmarks.
pub fn release_vscout() -> Result<PathBuf> {
    let status = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .args(["build", "--release", "-p", "vscout", "--bin", "vscout"])
        .current_dir(workspace_root())
        .status()?;
    anyhow::ensure!(status.success(), "cargo build --release failed");
    Ok(target_dir().join("release/vscout"))
}

/// Runs `vscout` with arguments and returns its output (with a deadline).
pub fn run_vscout(args: &[&str]) -> Result<Output> {
    let bin = vscout_binary()?;
    let child = Command::new(&bin)
        .args(args)
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    wait_with_deadline(child, Duration::from_secs(300))
}

/// Waits for a child, killing it after `deadline`.
pub fn wait_with_deadline(child: Child, deadline: Duration) -> Result<Output> {
    let pid = child.id();
    let start = Instant::now();
    let handle = std::thread::spawn(move || child.wait_with_output());
    while !handle.is_finished() {
        if start.elapsed() > deadline {
            let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
            bail!("process {pid} ran longer than {deadline:?}");
        }
        pause(Duration::from_millis(20));
    }
    Ok(handle
        .join()
        .map_err(|_| anyhow::anyhow!("waiter panicked"))??)
}

/// A library-level vCenter config pointing at `url` with this trust.
pub fn vcenter_config(
    name: &str,
    url: &str,
    trust: Trust,
    page_size: u32,
) -> Result<vscout::config::VcenterConfig> {
    let dir = tempfile::tempdir()?;
    let path = write_agent_config(dir.path(), &[(name, url, trust)], PASSWORD, "")?;
    let text = std::fs::read_to_string(path)?;
    let text = text.replace(
        "request_timeout_secs = 60",
        &format!("request_timeout_secs = 60\npage_size = {page_size}"),
    );
    let cfg = vscout::config::from_toml_str(&text)?;
    cfg.vcenters.into_iter().next().context("one vcenter")
}

/// An administrator's view of vcsim's sessions, through vscout's own client.
pub mod admin {
    use anyhow::{Context, Result};
    use vscout::vsphere::{Client, CollectAll, Objects, PropertySpec};

    /// Session keys other than the caller's own.
    pub async fn other_sessions(admin: &Client) -> Result<Vec<String>> {
        let sm = admin.service_content().session_manager.clone();
        let list = [sm];
        let specs = [PropertySpec {
            type_name: "SessionManager",
            paths: &["sessionList", "currentSession"],
        }];
        let (found, _) = admin
            .retrieve(&specs, Objects::List(&list), CollectAll::default())
            .await?;
        let oc = found.0.into_iter().next().context("SessionManager")?;
        let mine = oc
            .get("currentSession")
            .and_then(|n| n.text_at("key"))
            .unwrap_or("")
            .to_owned();
        let keys = oc
            .get("sessionList")
            .map(|l| {
                l.children()
                    .filter_map(|s| s.text_at("key"))
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        Ok(keys.into_iter().filter(|k| *k != mine).collect())
    }

    /// Terminates sessions by key (raw SOAP: vscout itself never needs this call).
    pub async fn terminate(
        url: &str,
        ca_pem: &std::path::Path,
        cookie: &str,
        keys: &[String],
    ) -> Result<()> {
        let ids: String = keys
            .iter()
            .map(|k| format!("<sessionId>{k}</sessionId>"))
            .collect();
        let call = format!(
            r#"<TerminateSession xmlns="urn:vim25"><_this type="SessionManager">SessionManager</_this>{ids}</TerminateSession>"#
        );
        raw_call(url, ca_pem, cookie, &call).await
    }

    /// Powers a VM on (raw SOAP: vscout only reads).
    pub async fn power_on(
        url: &str,
        ca_pem: &std::path::Path,
        cookie: &str,
        vm_id: &str,
    ) -> Result<()> {
        vm_task(url, ca_pem, cookie, vm_id, "PowerOnVM_Task").await
    }

    /// Powers a VM off (raw SOAP: vscout only reads).
    pub async fn power_off(
        url: &str,
        ca_pem: &std::path::Path,
        cookie: &str,
        vm_id: &str,
    ) -> Result<()> {
        vm_task(url, ca_pem, cookie, vm_id, "PowerOffVM_Task").await
    }

    async fn vm_task(
        url: &str,
        ca_pem: &std::path::Path,
        cookie: &str,
        vm_id: &str,
        task: &str,
    ) -> Result<()> {
        let call = format!(
            r#"<{task} xmlns="urn:vim25"><_this type="VirtualMachine">{vm_id}</_this></{task}>"#
        );
        raw_call(url, ca_pem, cookie, &call).await
    }

    async fn raw_call(url: &str, ca_pem: &std::path::Path, cookie: &str, call: &str) -> Result<()> {
        use rustls::pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        for c in rustls::pki_types::CertificateDer::pem_file_iter(ca_pem)? {
            roots.add(c?)?;
        }
        let cfg = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(cfg)
            .build()?;
        let body = format!(
            r#"<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>{call}</soapenv:Body></soapenv:Envelope>"#
        );
        let resp = http
            .post(url)
            .header("Content-Type", "text/xml")
            .header("SOAPAction", "urn:vim25/6.5")
            .header("Cookie", cookie)
            .body(body)
            .send()
            .await?;
        anyhow::ensure!(resp.status().is_success(), "{call}: HTTP {}", resp.status());
        Ok(())
    }
}

/// A simulated vCenter with its own certificates in its own temporary directory: the
/// set-up every end-to-end test starts from.
#[derive(Debug)]
pub struct Estate {
    pub sim: Vcsim,
    pub certs: Certs,
    pub dir: tempfile::TempDir,
}

impl Estate {
    pub fn start(opts: &SimOptions) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let certs = Certs::generate(dir.path())?;
        let sim = Vcsim::start(opts, &certs)?;
        Ok(Self { sim, certs, dir })
    }

    /// Trust that pins this estate's certificate.
    pub fn pin(&self) -> Trust {
        Trust::Pin(self.certs.thumbprint.clone())
    }

    /// Writes an agent config for this vCenter (pinned) and returns its path as a string.
    pub fn agent_config(&self, password: &str, extra_agent: &str) -> Result<String> {
        let path = write_agent_config(
            self.dir.path(),
            &[("sim", &self.sim.url, self.pin())],
            password,
            extra_agent,
        )?;
        path.to_str().map(str::to_owned).context("utf-8 path")
    }

    /// A library-level config for a client of `url` (this vCenter or a proxy in front).
    pub fn client_config(
        &self,
        url: &str,
        page_size: u32,
    ) -> Result<vscout::config::VcenterConfig> {
        vcenter_config("sim", url, self.pin(), page_size)
    }

    /// The validated `[perf]` settings of an agent config with these `[perf]` lines.
    pub fn perf_config(&self, perf_lines: &str) -> Result<vscout::config::PerfConfig> {
        let path = self.agent_config(PASSWORD, "")?;
        let text = std::fs::read_to_string(path)? + "\n[perf]\n" + perf_lines + "\n";
        Ok(vscout::config::from_toml_str(&text)?.perf)
    }

    /// A path inside the estate's directory, as a string.
    pub fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }
}
