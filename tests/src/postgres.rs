//! A real PostgreSQL server for tests: `scripts/pg-scratch` (initdb into a temporary
//! directory as an unprivileged user, `pg_ctl start` on a loopback port) started once per
//! test process, and a new database per test. The script stops the server when this
//! process exits and its standard input closes, however the process ends.

use std::io::{BufRead, BufReader};
use std::process::{ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};

use anyhow::{anyhow, bail, Context, Result};

use crate::workspace_root;

/// The server: its URL (of the `postgres` database) and password file.
#[derive(Debug)]
pub struct Server {
    pub url: String,
    pub password_file: std::path::PathBuf,
    /// Held open while the process lives: closing it stops the server.
    _stdin: Mutex<ChildStdin>,
}

/// The process's server, started on first use (about a second).
pub fn server() -> Result<&'static Server> {
    static SERVER: OnceLock<std::result::Result<Server, String>> = OnceLock::new();
    SERVER
        .get_or_init(|| start().map_err(|e| format!("{e:#}")))
        .as_ref()
        .map_err(|e| anyhow!("{e}"))
}

fn start() -> Result<Server> {
    let mut child = Command::new(workspace_root().join("scripts/pg-scratch"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting scripts/pg-scratch")?;
    let stdin = child.stdin.take().context("pg-scratch stdin")?;
    let mut lines = BufReader::new(child.stdout.take().context("pg-scratch stdout")?).lines();
    let (mut url, mut password_file) = (None, None);
    while url.is_none() || password_file.is_none() {
        let Some(line) = lines.next() else {
            bail!("pg-scratch ended before the server was up (see its stderr above)");
        };
        let line = line?;
        if let Some(u) = line.strip_prefix("PG_URL=") {
            url = Some(u.to_owned());
        } else if let Some(f) = line.strip_prefix("PG_PASSWORD_FILE=") {
            password_file = Some(f.into());
        }
    }
    // The child is not waited for: it lives as long as this process.
    std::mem::forget(child);
    Ok(Server {
        url: url.unwrap_or_default(),
        password_file: password_file.unwrap_or_default(),
        _stdin: Mutex::new(stdin),
    })
}

/// A new, empty database on the process's server: its URL (user and host as the
/// server's, no password) and the password file.
pub fn database() -> Result<(String, std::path::PathBuf)> {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let s = server()?;
    let name = format!(
        "t{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let password = std::fs::read_to_string(&s.password_file)?;
    let mut cfg: postgres::Config = s.url.parse()?;
    cfg.password(password.trim());
    let mut admin = cfg
        .connect(postgres::NoTls)
        .context("connecting to the test server")?;
    admin.batch_execute(&format!("CREATE DATABASE {name}"))?;
    let url = s
        .url
        .rsplit_once('/')
        .map(|(base, _)| format!("{base}/{name}"))
        .context("server URL without a database")?;
    Ok((url, s.password_file.clone()))
}
