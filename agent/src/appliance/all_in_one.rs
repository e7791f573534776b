//! The appliance's all-in-one mode: the collector and its pages on the appliance itself,
//! provisioned at first boot. This module writes the collector's configuration (port 443,
//! the data disk, retention sized to the disk's free space) and has `vscout-collector`
//! itself, run as the collector's user, make the certificate, the agent's token and the
//! viewer's log-in: the agent crate never opens the collector's database.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::config::Secret;

use super::firstboot::{FileOut, Settings};

/// The collector's configuration on the appliance.
pub const COLLECTOR_CONFIG: &str = "/etc/vscout/collector.toml";
/// Its data directory: the mount point of the appliance's second (data) disk.
pub const DATA_DIR: &str = "/var/lib/vscout-collector";
/// Where the agent reaches it: loopback, port 443.
pub const LOCAL_URL: &str = "https://127.0.0.1";
/// The pages' log-in made from `vscout.viewer_password`.
pub const VIEWER: &str = "viewer";
/// The name of the agent's token at the local collector.
const AGENT_TOKEN: &str = "appliance-agent";
/// The system user the collector's unit runs as (systemd/vscout.sysusers).
const SERVICE_USER: &str = "vscout-collector";
/// The estate size retention is planned for (the README's sizing table).
pub const DESIGN_VMS: u64 = 5_000;
/// Database bytes per VM and day while its 5-minute windows are kept (measured: the
/// README's "The collector", 70 KB per VM-day, every table and free pages).
const WINDOW_DAY_BYTES: u64 = 70_000;
/// Bytes per VM and day once the windows are pruned: day summaries and daily sketches
/// (measured: 4.9 KB of the 70 KB).
const SUMMARY_DAY_BYTES: u64 = 5_000;
/// The share of the free space retention plans to fill (SQLite needs room to vacuum).
const FILL_PERCENT: u64 = 80;

/// How long the local collector keeps what it stores, and what that was sized from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub windows_days: u64,
    pub summaries_days: u64,
    /// Free bytes on the data directory's filesystem at first boot.
    pub free_bytes: u64,
}

/// Retention for `free_bytes` of disk and `DESIGN_VMS` VMs: summaries (what the
/// assessment reads) for 400 days, 5-minute windows as long as the rest allows (7 to 90
/// days); on a disk too small for that, 7 days of windows and fewer days of summaries.
pub fn retention(free_bytes: u64) -> Retention {
    let per_vm = free_bytes / 100 * FILL_PERCENT / DESIGN_VMS;
    let summaries_cost = 400 * SUMMARY_DAY_BYTES;
    let windows = per_vm.saturating_sub(summaries_cost) / (WINDOW_DAY_BYTES - SUMMARY_DAY_BYTES);
    let (windows_days, summaries_days) = if windows >= 7 {
        (windows.min(90), 400)
    } else {
        let rest = per_vm.saturating_sub(7 * WINDOW_DAY_BYTES) / SUMMARY_DAY_BYTES;
        (7, (7 + rest).min(400))
    };
    Retention {
        windows_days,
        summaries_days,
        free_bytes,
    }
}

/// The collector's configuration: the pages and the API on port 443, the data disk, and
/// the retention sized at first boot.
pub fn collector_toml(r: &Retention) -> String {
    format!(
        "# Written by vscout-firstboot (all-in-one): the collector on this appliance. Edit it,\n\
         # then `systemctl restart vscout-collector`; the keys are those of\n\
         # /etc/vscout/collector.toml.example.\n\
         listen_addr = \"0.0.0.0:443\"\n\
         data_dir = \"{DATA_DIR}\"\n\n\
         # Sized at first boot from the data disk's free space ({} MiB) for {DESIGN_VMS} VMs.\n\
         [retention]\n\
         windows_days = {}\n\
         summaries_days = {}\n",
        r.free_bytes >> 20,
        r.windows_days,
        r.summaries_days
    )
}

/// What the local collector gave the agent: its token and the certificate to pin.
#[derive(Debug)]
pub struct Provisioned {
    pub token: Secret,
    pub thumbprint: String,
    pub retention: Retention,
}

/// Sets up the local collector under `root` (`/` on the appliance): its configuration,
/// certificate, a fresh agent token (an earlier one of the same name is revoked, so
/// running first boot again is safe) and, with a viewer password, the `viewer` log-in
/// (the password goes through a pipe, never a file or an argument).
pub fn provision(s: &Settings, root: &Path, collector_bin: &Path) -> Result<Provisioned, String> {
    let data_dir = under(root, DATA_DIR);
    let config = under(root, COLLECTOR_CONFIG);
    std::fs::create_dir_all(&data_dir)
        .map_err(|e| format!("cannot create {}: {e}", data_dir.display()))?;
    // On the appliance the collector's own user makes its files; elsewhere (tests, a
    // scratch root) the current user does.
    let as_user = root == Path::new("/") && rustix::process::geteuid().is_root();
    if as_user {
        give_to_service_user(root, &data_dir)?;
    }
    let free = crate::metrics::free_bytes(&data_dir)
        .ok_or_else(|| format!("cannot tell the free space of {}", data_dir.display()))?;
    let retention = retention(free);
    let file = FileOut {
        path: COLLECTOR_CONFIG.into(),
        mode: 0o644,
        content: collector_toml(&retention).into_bytes(),
    };
    super::firstboot::apply(&[file], root)
        .map_err(|e| format!("cannot write {}: {e}", config.display()))?;
    let collector = |args: &[&str], stdin: Option<&str>| {
        run_collector(collector_bin, &config, &data_dir, as_user, args, stdin)
    };
    let cert = collector(&["certificate"], None)?;
    let thumbprint = cert
        .lines()
        .find_map(|l| l.strip_prefix("COLLECTOR_THUMBPRINT_SHA256="))
        .ok_or_else(|| format!("`vscout-collector certificate` printed no thumbprint: {cert:?}"))?
        .to_owned();
    // Absent the first time: its failure is expected then.
    let _ = collector(&["token", "revoke", AGENT_TOKEN], None);
    let token = collector(&["token", "add", AGENT_TOKEN], None)?
        .trim()
        .to_owned();
    if token.is_empty() {
        return Err("`vscout-collector token add` printed no token".into());
    }
    if let Some(pw) = &s.viewer_password {
        let _ = collector(&["user", "remove", VIEWER], None);
        collector(&["user", "add", VIEWER], Some(pw.expose()))?;
    }
    Ok(Provisioned {
        token: Secret::new(token.as_str()),
        thumbprint,
        retention,
    })
}

/// An absolute appliance path under `root`.
fn under(root: &Path, path: &str) -> PathBuf {
    root.join(path.trim_start_matches('/'))
}

/// Runs `vscout-collector --config C --data-dir D ARGS`, as the service's user when
/// `as_user`, feeding `stdin`'s line; returns its standard output, or an error with its
/// standard error (which never holds the password or a token).
fn run_collector(
    bin: &Path,
    config: &Path,
    data_dir: &Path,
    as_user: bool,
    args: &[&str],
    stdin: Option<&str>,
) -> Result<String, String> {
    let mut cmd = if as_user {
        // setpriv, not runuser: no PAM session this early in the boot.
        let mut c = Command::new("setpriv");
        c.arg(format!("--reuid={SERVICE_USER}"))
            .arg(format!("--regid={SERVICE_USER}"))
            .arg("--init-groups")
            .arg(bin);
        c
    } else {
        Command::new(bin)
    };
    cmd.arg("--config")
        .arg(config)
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let what = format!("vscout-collector {}", args.join(" "));
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
    if let (Some(line), Some(mut pipe)) = (stdin, child.stdin.take()) {
        use std::io::Write;
        writeln!(pipe, "{line}").map_err(|e| format!("{what}: cannot write its input: {e}"))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("{what}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{what} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// The data directory (the data disk's root, made by root) becomes the collector user's,
/// mode 0750, as the package's tmpfiles.d entry would have made it.
fn give_to_service_user(root: &Path, dir: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let passwd = std::fs::read_to_string(under(root, "/etc/passwd"))
        .map_err(|e| format!("cannot read /etc/passwd: {e}"))?;
    let (uid, gid) = passwd
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() > 3 && f[0] == SERVICE_USER)
                .then(|| Some((f[2].parse::<u32>().ok()?, f[3].parse::<u32>().ok()?)))
                .flatten()
        })
        .ok_or_else(|| format!("no user {SERVICE_USER} (is vscout-collector installed?)"))?;
    std::os::unix::fs::chown(dir, Some(uid), Some(gid))
        .and_then(|()| std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o750)))
        .map_err(|e| format!("cannot give {} to {SERVICE_USER}: {e}", dir.display()))
}
