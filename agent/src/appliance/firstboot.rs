//! The appliance's first boot: OVF properties → validated settings → the files that make
//! the appliance an agent (`/etc/vscout/agent.toml`, credentials readable by root only, a
//! drop-in that hands them to the unit with `LoadCredential=`, systemd-networkd
//! configuration, timesyncd's NTP servers, hostname, root's SSH key). Building the plan is pure and tested with
//! hostile values; `apply` writes it under a root directory.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use crate::config::Secret;

/// Longest value a property may have.
pub const MAX_VALUE_BYTES: usize = 4096;

/// The OVF property keys (as the OVF descriptor declares them).
pub mod keys {
    pub const VCENTER_URL: &str = "vscout.vcenter_url";
    pub const VCENTER_USER: &str = "vscout.vcenter_user";
    pub const VCENTER_PASSWORD: &str = "vscout.vcenter_password";
    pub const VCENTER_THUMBPRINT: &str = "vscout.vcenter_thumbprint";
    pub const COLLECTOR_URL: &str = "vscout.collector_url";
    pub const COLLECTOR_TOKEN: &str = "vscout.collector_token";
    pub const COLLECTOR_THUMBPRINT: &str = "vscout.collector_thumbprint";
    pub const HOSTNAME: &str = "vscout.hostname";
    pub const IP: &str = "vscout.ip";
    pub const NETMASK: &str = "vscout.netmask";
    pub const GATEWAY: &str = "vscout.gateway";
    pub const DNS: &str = "vscout.dns";
    pub const NTP: &str = "vscout.ntp";
    pub const ROOT_PASSWORD: &str = "vscout.root_password";
    pub const ROOT_SSH_KEY: &str = "vscout.root_ssh_key";
    pub const MODE: &str = "vscout.mode";
    pub const VIEWER_PASSWORD: &str = "vscout.viewer_password";
    /// Every key (the OVF descriptor declares exactly these).
    pub const ALL: [&str; 17] = [
        VCENTER_URL,
        VCENTER_USER,
        VCENTER_PASSWORD,
        VCENTER_THUMBPRINT,
        COLLECTOR_URL,
        COLLECTOR_TOKEN,
        COLLECTOR_THUMBPRINT,
        HOSTNAME,
        IP,
        NETMASK,
        GATEWAY,
        DNS,
        NTP,
        ROOT_PASSWORD,
        ROOT_SSH_KEY,
        MODE,
        VIEWER_PASSWORD,
    ];
    /// Keys whose values are secrets.
    pub const SECRET: [&str; 4] = [
        VCENTER_PASSWORD,
        COLLECTOR_TOKEN,
        ROOT_PASSWORD,
        VIEWER_PASSWORD,
    ];
}

/// Static addressing; `None` in `Settings::network` means DHCP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticNet {
    pub address: IpAddr,
    pub prefix: u8,
    pub gateway: Option<IpAddr>,
    pub dns: Vec<IpAddr>,
}

/// What the appliance is: an agent shipping to a collector elsewhere, or the agent and
/// a collector with its pages on the appliance itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Agent,
    AllInOne,
}

impl Mode {
    /// As the `vscout.mode` property and `/var/lib/vscout-appliance/mode` write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Agent => "agent",
            Mode::AllInOne => "all-in-one",
        }
    }
}

/// The validated deployment settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub vcenter_url: String,
    pub vcenter_user: String,
    pub vcenter_password: Secret,
    pub vcenter_thumbprint: Option<String>,
    /// The collector the agent ships to: URL, token, pinned thumbprint. In all-in-one
    /// mode first boot fills it in once the local collector is provisioned.
    pub collector: Option<(String, Secret, Option<String>)>,
    pub mode: Mode,
    /// The pages' `viewer` log-in (all-in-one); without it the pages stay closed.
    pub viewer_password: Option<Secret>,
    pub hostname: Option<String>,
    pub network: Option<StaticNet>,
    /// NTP servers (addresses or host names); empty: DHCP's, else Debian's pool.
    pub ntp: Vec<String>,
    pub root_password: Option<Secret>,
    pub root_ssh_key: Option<String>,
}

/// Everything wrong with the properties, each naming its key (never a secret's value).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid OVF properties: {}", .0.iter().map(|(k, r)| format!("{k}: {r}")).collect::<Vec<_>>().join("; "))]
pub struct SettingsError(pub Vec<(String, String)>);

/// A secret property, if set: taken as it is (spaces are part of a password).
fn secret(props: &BTreeMap<String, String>, key: &str) -> Option<Secret> {
    props
        .get(key)
        .filter(|p| !p.is_empty())
        .map(|p| Secret::new(p.as_str()))
}

fn get<'a>(props: &'a BTreeMap<String, String>, key: &str) -> Option<&'a str> {
    props.get(key).map(|v| v.trim()).filter(|v| !v.is_empty())
}

/// Validates the properties. Secrets may hold any character; other values may not hold
/// control characters (they end up in TOML, unit files and /etc/hostname).
pub fn settings(props: &BTreeMap<String, String>) -> Result<Settings, SettingsError> {
    let mut errors: Vec<(String, String)> = Vec::new();
    let mut err = |k: &str, r: String| errors.push((k.to_owned(), r));
    check_values(props, &mut err);
    let url = |k: &str, err: &mut dyn FnMut(&str, String)| https_url(props, k, err);
    let thumb = |k: &str, err: &mut dyn FnMut(&str, String)| thumbprint(props, k, err);
    let vcenter_url = url(keys::VCENTER_URL, &mut err);
    if get(props, keys::VCENTER_URL).is_none() {
        err(
            keys::VCENTER_URL,
            "required (e.g. https://vcenter.example.com/sdk)".into(),
        );
    }
    let vcenter_user = get(props, keys::VCENTER_USER).map(str::to_owned);
    if vcenter_user.is_none() {
        err(keys::VCENTER_USER, "required".into());
    }
    let vcenter_password = secret(props, keys::VCENTER_PASSWORD);
    if vcenter_password.is_none() {
        err(keys::VCENTER_PASSWORD, "required".into());
    }
    let vcenter_thumbprint = thumb(keys::VCENTER_THUMBPRINT, &mut err);
    let collector = match url(keys::COLLECTOR_URL, &mut err) {
        None => None,
        Some(u) => match props.get(keys::COLLECTOR_TOKEN).filter(|t| !t.is_empty()) {
            Some(t) => Some((
                u,
                Secret::new(t.as_str()),
                thumb(keys::COLLECTOR_THUMBPRINT, &mut err),
            )),
            None => {
                err(
                    keys::COLLECTOR_TOKEN,
                    "required with a collector URL".into(),
                );
                None
            }
        },
    };
    let mode = mode(props, collector.is_some(), &mut err);
    let viewer_password = secret(props, keys::VIEWER_PASSWORD);
    let hostname = get(props, keys::HOSTNAME).and_then(|h| {
        if is_host_name(h) {
            Some(h.to_ascii_lowercase())
        } else {
            err(
                keys::HOSTNAME,
                format!("{h:?} is not a host name (letters, digits, hyphens, dots)"),
            );
            None
        }
    });
    let network = static_net(props, &mut err);
    let ntp = ntp_servers(props, &mut err);
    let root_password = secret(props, keys::ROOT_PASSWORD);
    let root_ssh_key = ssh_key(props, &mut err);
    match (vcenter_url, vcenter_user, vcenter_password) {
        (Some(vcenter_url), Some(vcenter_user), Some(vcenter_password)) if errors.is_empty() => {
            Ok(Settings {
                vcenter_url,
                vcenter_user,
                vcenter_password,
                vcenter_thumbprint,
                collector,
                mode,
                viewer_password,
                hostname,
                network,
                ntp,
                root_password,
                root_ssh_key,
            })
        }
        _ => Err(SettingsError(errors)),
    }
}

/// The mode: as given, else (empty or `auto`, the descriptor's default) all-in-one
/// without a collector URL and agent with one. An all-in-one appliance ships to its own
/// collector, so a URL elsewhere contradicts it.
fn mode(
    props: &BTreeMap<String, String>,
    has_collector: bool,
    err: &mut dyn FnMut(&str, String),
) -> Mode {
    match get(props, keys::MODE) {
        None | Some("auto") if has_collector => Mode::Agent,
        None | Some("auto") => Mode::AllInOne,
        Some("agent") => Mode::Agent,
        Some("all-in-one") if has_collector => {
            err(
                keys::MODE,
                "all-in-one serves its own collector: leave vscout.collector_url empty, or set the mode to agent".into(),
            );
            Mode::AllInOne
        }
        Some("all-in-one") => Mode::AllInOne,
        Some(other) => {
            err(
                keys::MODE,
                format!("{other:?}: must be auto, agent or all-in-one"),
            );
            Mode::AllInOne
        }
    }
}

/// Every value: not oversized, and no control characters outside secrets.
fn check_values(props: &BTreeMap<String, String>, err: &mut dyn FnMut(&str, String)) {
    for (k, v) in props {
        if v.len() > MAX_VALUE_BYTES {
            err(k, format!("{} bytes, at most {MAX_VALUE_BYTES}", v.len()));
        } else if !keys::SECRET.contains(&k.as_str()) && v.chars().any(char::is_control) {
            err(k, "contains control characters (a newline?)".into());
        }
    }
}

/// Property `k` as an https URL, if set.
fn https_url(
    props: &BTreeMap<String, String>,
    k: &str,
    err: &mut dyn FnMut(&str, String),
) -> Option<String> {
    let v = get(props, k)?;
    match reqwest::Url::parse(v) {
        Ok(u) if u.scheme() == "https" && u.host_str().is_some() => Some(v.to_owned()),
        Ok(u) => {
            err(k, format!("{v:?} must be an https URL, not {}", u.scheme()));
            None
        }
        Err(e) => {
            err(k, format!("{v:?} is not a URL ({e})"));
            None
        }
    }
}

/// Property `k` as a SHA-256 thumbprint, written as vCenter writes it, if set.
fn thumbprint(
    props: &BTreeMap<String, String>,
    k: &str,
    err: &mut dyn FnMut(&str, String),
) -> Option<String> {
    let v = get(props, k)?;
    match crate::config::parse_thumbprint(v) {
        Ok(d) => Some(crate::tls::format_thumbprint(&d)),
        Err(r) => {
            err(k, format!("{v:?}: {r}"));
            None
        }
    }
}

/// The NTP servers: host names or IP addresses.
fn ntp_servers(props: &BTreeMap<String, String>, err: &mut dyn FnMut(&str, String)) -> Vec<String> {
    let mut ntp = Vec::new();
    for n in list(props, keys::NTP) {
        if n.parse::<IpAddr>().is_ok() || is_host_name(n) {
            ntp.push(n.to_ascii_lowercase());
        } else {
            err(
                keys::NTP,
                format!("{n:?} is not a host name or an IP address"),
            );
        }
    }
    ntp
}

/// Root's SSH public key, if set.
fn ssh_key(props: &BTreeMap<String, String>, err: &mut dyn FnMut(&str, String)) -> Option<String> {
    get(props, keys::ROOT_SSH_KEY).and_then(|k| {
        let kind = k.split_whitespace().next().unwrap_or_default();
        if kind.starts_with("ssh-") || kind.starts_with("ecdsa-") || kind.starts_with("sk-") {
            Some(k.to_owned())
        } else {
            err(
                keys::ROOT_SSH_KEY,
                "not an OpenSSH public key (ssh-ed25519 AAAA…)".into(),
            );
            None
        }
    })
}

fn static_net(
    props: &BTreeMap<String, String>,
    err: &mut dyn FnMut(&str, String),
) -> Option<StaticNet> {
    let ip = get(props, keys::IP)?;
    let (addr, prefix) = match ip.split_once('/') {
        Some((a, p)) => (a, p.parse::<u8>().ok()),
        None => (ip, None),
    };
    let Ok(address) = addr.parse::<IpAddr>() else {
        err(
            keys::IP,
            format!("{ip:?} is not an IP address (leave it empty for DHCP)"),
        );
        return None;
    };
    let max = if address.is_ipv4() { 32 } else { 128 };
    let prefix = match (prefix, get(props, keys::NETMASK)) {
        (Some(p), _) if p <= max => p,
        (Some(p), _) => {
            err(keys::IP, format!("prefix /{p} is longer than {max}"));
            return None;
        }
        (None, Some(mask)) => match mask.parse::<std::net::Ipv4Addr>() {
            Ok(m) if u32::from(m).leading_ones() + u32::from(m).trailing_zeros() == 32 => {
                u32::from(m).leading_ones() as u8
            }
            _ => {
                err(
                    keys::NETMASK,
                    format!("{mask:?} is not a netmask (e.g. 255.255.255.0)"),
                );
                return None;
            }
        },
        (None, None) => {
            err(
                keys::NETMASK,
                "required with a static IP without /prefix".into(),
            );
            return None;
        }
    };
    let gateway = match get(props, keys::GATEWAY) {
        None => None,
        Some(g) => match g.parse() {
            Ok(g) => Some(g),
            Err(_) => {
                err(keys::GATEWAY, format!("{g:?} is not an IP address"));
                None
            }
        },
    };
    let mut dns = Vec::new();
    for d in list(props, keys::DNS) {
        match d.parse() {
            Ok(a) => dns.push(a),
            Err(_) => err(keys::DNS, format!("{d:?} is not an IP address")),
        }
    }
    Some(StaticNet {
        address,
        prefix,
        gateway,
        dns,
    })
}

/// A property holding a list: entries separated by commas and/or spaces.
fn list<'a>(props: &'a BTreeMap<String, String>, key: &str) -> impl Iterator<Item = &'a str> {
    get(props, key)
        .unwrap_or_default()
        .split([',', ' '])
        .filter(|d| !d.is_empty())
}

/// An RFC 1123 host name: dot-separated labels of letters, digits and inner hyphens.
fn is_host_name(h: &str) -> bool {
    h.len() <= 253
        && h.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

/// A TOML basic string: quotes, backslashes and control characters escaped.
pub fn toml_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// One file to write.
#[derive(Debug, Clone)]
pub struct FileOut {
    /// Absolute path on the appliance.
    pub path: PathBuf,
    pub mode: u32,
    pub content: Vec<u8>,
}

/// Credential names the agent's configuration refers to.
pub const VCENTER_CREDENTIAL: &str = "vcenter-password";
pub const COLLECTOR_CREDENTIAL: &str = "collector-token";
const CREDENTIALS_DIR: &str = "/etc/vscout/credentials";

/// The files that configure the appliance.
pub fn plan(s: &Settings) -> Vec<FileOut> {
    let secret = |name: &str, value: &Secret| FileOut {
        path: Path::new(CREDENTIALS_DIR).join(name),
        mode: 0o600,
        content: value.expose().as_bytes().to_vec(),
    };
    let mut files = vec![secret(VCENTER_CREDENTIAL, &s.vcenter_password)];
    if let Some((_, token, _)) = &s.collector {
        files.push(secret(COLLECTOR_CREDENTIAL, token));
    }
    files.push(FileOut {
        path: "/etc/vscout/agent.toml".into(),
        mode: 0o644,
        content: agent_toml(s).into_bytes(),
    });
    let mut dropin = format!(
        "# Written by vscout-firstboot: the agent's secrets, readable by root only.\n[Service]\nLoadCredential={VCENTER_CREDENTIAL}:{CREDENTIALS_DIR}/{VCENTER_CREDENTIAL}\n"
    );
    if s.collector.is_some() {
        dropin.push_str(&format!(
            "LoadCredential={COLLECTOR_CREDENTIAL}:{CREDENTIALS_DIR}/{COLLECTOR_CREDENTIAL}\n"
        ));
    }
    files.push(FileOut {
        path: "/etc/systemd/system/vscout-agent.service.d/10-credentials.conf".into(),
        mode: 0o644,
        content: dropin.into_bytes(),
    });
    files.push(FileOut {
        path: "/etc/systemd/network/10-vscout.network".into(),
        mode: 0o644,
        content: network_file(s.network.as_ref()).into_bytes(),
    });
    if !s.ntp.is_empty() {
        files.push(FileOut {
            path: "/etc/systemd/timesyncd.conf.d/10-vscout.conf".into(),
            mode: 0o644,
            content: format!(
                "# Written by vscout-firstboot.\n[Time]\nNTP={}\n",
                s.ntp.join(" ")
            )
            .into_bytes(),
        });
    }
    files.push(FileOut {
        path: MODE_FILE.into(),
        mode: 0o644,
        content: format!("{}\n", s.mode.as_str()).into_bytes(),
    });
    files.push(FileOut {
        path: "/etc/issue.d/vscout.issue".into(),
        mode: 0o644,
        content: banner(s).into_bytes(),
    });
    if let Some(h) = &s.hostname {
        files.push(FileOut {
            path: "/etc/hostname".into(),
            mode: 0o644,
            content: format!("{h}\n").into_bytes(),
        });
    }
    if let Some(k) = &s.root_ssh_key {
        files.push(FileOut {
            path: "/root/.ssh/authorized_keys".into(),
            mode: 0o600,
            content: format!("{k}\n").into_bytes(),
        });
    }
    files
}

/// Where first boot records the mode (the unit's post-step enables or disables the
/// collector from it).
pub const MODE_FILE: &str = "/var/lib/vscout-appliance/mode";

/// The console's banner (agetty shows `/etc/issue.d/*.issue` above the log-in prompt;
/// `\4` is the appliance's IPv4 address): where the pages are and the certificate's
/// thumbprint to compare in the browser, or where the agent ships. No secret in it.
pub fn banner(s: &Settings) -> String {
    // agetty reads backslashes as escapes: a value's own are doubled.
    let esc = |v: &str| v.replace('\\', "\\\\");
    match (s.mode, &s.collector) {
        (Mode::AllInOne, collector) => {
            let thumb = collector
                .as_ref()
                .and_then(|(_, _, t)| t.as_deref())
                .unwrap_or("(not yet made)");
            let login = if s.viewer_password.is_some() {
                "log in as viewer".to_owned()
            } else {
                format!(
                    "closed: no viewer password was set (set {} and run first boot again, or as root:\n  runuser -u vscout-collector -- vscout-collector --config /etc/vscout/collector.toml user add viewer)",
                    keys::VIEWER_PASSWORD
                )
            };
            format!(
                "vscout appliance (all-in-one): the pages are at https://\\4/ - {login}\n  certificate SHA-256 thumbprint (compare it in the browser):\n  {thumb}\n\n"
            )
        }
        (Mode::Agent, Some((url, _, _))) => {
            format!("vscout appliance (agent): ships to {}\n\n", esc(url))
        }
        (Mode::Agent, None) => "vscout appliance (agent): no collector set; the buffer keeps what is collected until one is\n\n".to_owned(),
    }
}

/// The agent's configuration: the vCenter, and the collector if one was given; secrets
/// are named credentials, never values.
fn agent_toml(s: &Settings) -> String {
    let mut toml = String::from(
        "# Written by vscout-firstboot from the OVF environment. Edit it, then\n# `systemctl reload vscout-agent`. Secrets are systemd credentials (see the drop-in).\n\n[agent]\nstate_dir = \"/var/lib/vscout\"\nmetrics_listen = \"127.0.0.1:9187\"\n\n[[vcenter]]\nname = \"vcenter\"\n",
    );
    toml.push_str(&format!("url = {}\n", toml_string(&s.vcenter_url)));
    toml.push_str(&format!("username = {}\n", toml_string(&s.vcenter_user)));
    toml.push_str(&format!("password_credential = \"{VCENTER_CREDENTIAL}\"\n"));
    if let Some(t) = &s.vcenter_thumbprint {
        toml.push_str(&format!(
            "[vcenter.tls]\nthumbprint_sha256 = {}\n",
            toml_string(t)
        ));
    }
    if let Some((url, _, thumb)) = &s.collector {
        toml.push_str(&format!(
            "\n[collector]\nurl = {}\ntoken_credential = \"{COLLECTOR_CREDENTIAL}\"\n",
            toml_string(url)
        ));
        if let Some(t) = thumb {
            toml.push_str(&format!(
                "[collector.tls]\nthumbprint_sha256 = {}\n",
                toml_string(t)
            ));
        }
    }
    toml
}

/// systemd-networkd's file: DHCP, or the static address, gateway and DNS servers.
fn network_file(network: Option<&StaticNet>) -> String {
    let mut net =
        String::from("# Written by vscout-firstboot.\n[Match]\nName=en* eth*\n\n[Network]\n");
    match network {
        None => net.push_str("DHCP=yes\n"),
        Some(n) => {
            net.push_str(&format!("Address={}/{}\n", n.address, n.prefix));
            if let Some(g) = n.gateway {
                net.push_str(&format!("Gateway={g}\n"));
            }
            for d in &n.dns {
                net.push_str(&format!("DNS={d}\n"));
            }
        }
    }
    net
}

/// Writes the files under `root` (`/` on the appliance), each atomically with its final
/// mode, so a secret is never readable by others, even for a moment. Directories holding
/// secrets are created 0700.
pub fn apply(files: &[FileOut], root: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    for f in files {
        let rel = f.path.strip_prefix("/").unwrap_or(&f.path);
        let path = root.join(rel);
        if let Some(dir) = path.parent() {
            let private = f.mode & 0o077 == 0;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(if private { 0o700 } else { 0o755 })
                .create(dir)?;
        }
        crate::fsio::write_atomic(&path, &f.content, f.mode)?;
    }
    Ok(())
}
