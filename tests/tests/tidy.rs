//! Conventions checked by machine (issue 13): every Rust file says what it owns in a `//!`
//! line; every path `ARCHITECTURE.md` names exists; HTTP clients and raw TCP streams live
//! only in the modules allowed to have them; the collector does not pull the agent in.

use std::path::{Path, PathBuf};

/// The workspace's crates, by directory.
const CRATES: [&str; 5] = ["agent", "collector", "service", "tests", "wire"];

fn root() -> PathBuf {
    vscout_e2e::workspace_root()
}

/// Every `.rs` file of the workspace's crates, relative to the root.
fn rust_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            let name = e.file_name();
            if p.is_dir() && name != "target" && !name.to_string_lossy().starts_with('.') {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    for krate in CRATES {
        walk(&root().join(krate), &mut out);
    }
    out
}

#[test]
fn every_rust_file_opens_with_what_it_owns() {
    let files = rust_files();
    assert!(files.len() > 50, "found {} files", files.len());
    let missing: Vec<String> = files
        .iter()
        .filter(|p| {
            let text = std::fs::read_to_string(p).unwrap_or_default();
            !text.starts_with("//!")
        })
        .map(|p| p.strip_prefix(root()).unwrap_or(p).display().to_string())
        .collect();
    assert!(
        missing.is_empty(),
        "files without a //! first line: {missing:?}"
    );
}

/// Backticked names in ARCHITECTURE.md that look like paths (`…/` or `….rs`), with the
/// directory they are read against: the last full path of the heading they sit under (a
/// heading `agent/src/vsphere/` followed by `transport.rs`). A full path in the text is
/// checked as it is and does not move the base.
#[test]
fn every_path_architecture_names_exists() {
    let root = root();
    let text = std::fs::read_to_string(root.join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    let tops: Vec<String> = CRATES
        .iter()
        .chain(&["packaging", "systemd", "scripts"])
        .map(|c| format!("{c}/"))
        .collect();
    let mut base = PathBuf::new();
    let mut missing = Vec::new();
    for line in text.lines() {
        let heading = line.starts_with('#');
        for token in line.split('`').skip(1).step_by(2) {
            let looks_like_path = (token.ends_with(".rs") || token.ends_with('/'))
                && !token.contains(' ')
                && !token.contains("://");
            if !looks_like_path {
                continue;
            }
            if tops.iter().any(|t| token.starts_with(t.as_str())) {
                if !root.join(token).exists() {
                    missing.push(token.to_owned());
                }
                if heading {
                    base = if token.ends_with('/') {
                        PathBuf::from(token)
                    } else {
                        PathBuf::from(token)
                            .parent()
                            .map(Path::to_owned)
                            .unwrap_or_default()
                    };
                }
                continue;
            }
            // Read against the base and each of its parents, directly or under `src/` or
            // `tests/` (a crate's heading names the crate, its sections the files); module
            // names alone (`vsphere/`) against the crates' sources.
            let found = base
                .ancestors()
                .flat_map(|a| ["", "src", "tests"].map(|sub| a.join(sub).join(token)))
                .chain(CRATES.map(|c| Path::new(c).join("src").join(token)))
                .find(|p| root.join(p).exists());
            match found {
                // A directory found becomes the base of the names after it (`store/`,
                // then `sqlite.rs`).
                Some(p) if token.ends_with('/') => base = p,
                Some(_) => {}
                None => missing.push(format!("{token} (read against {})", base.display())),
            }
        }
    }
    assert!(
        missing.is_empty(),
        "ARCHITECTURE.md names paths that do not exist: {missing:?}"
    );
}

/// Who may open connections: vCenter only through `vsphere/transport.rs`, the collector
/// through the shipper (and `check`'s and `status`' one-off probes in `commands.rs`), TCP directly only
/// where a listener or a port probe is the point.
#[test]
fn connections_are_opened_only_where_allowed() {
    let allowed_http = [
        "agent/src/vsphere/transport.rs",
        "agent/src/ship/shipper.rs",
        "agent/src/check/collector.rs",
        "agent/src/commands.rs",
    ];
    let allowed_tcp = [
        "agent/src/check/mod.rs",
        "agent/src/daemon/supervise.rs",
        "agent/src/metrics/mod.rs",
        "collector/src/lib.rs",
        "collector/src/server.rs",
    ];
    let root = root();
    let mut wrong = Vec::new();
    for p in rust_files() {
        let rel = p.strip_prefix(&root).unwrap_or(&p).display().to_string();
        if rel.starts_with("tests/") {
            continue;
        }
        let text = std::fs::read_to_string(&p).unwrap_or_default();
        if text.contains("reqwest::Client") && !allowed_http.contains(&rel.as_str()) {
            wrong.push(format!("{rel}: reqwest::Client"));
        }
        if (text.contains("TcpStream") || text.contains("TcpListener"))
            && !allowed_tcp.contains(&rel.as_str())
        {
            wrong.push(format!("{rel}: raw TCP"));
        }
    }
    assert!(
        wrong.is_empty(),
        "connections opened outside their modules: {wrong:?}"
    );
}

/// Issue 13: the collector (and the crates it shares with the agent) build without the
/// agent and its vCenter client: no SOAP, HTTP client, CSV or host-metrics crates.
#[test]
fn the_collector_does_not_pull_the_agent_in() {
    for package in ["vscout-collector", "vscout-wire", "vscout-service"] {
        let out =
            std::process::Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
                .args([
                    "tree", "--locked", "-e", "normal", "--prefix", "none", "-p", package,
                ])
                .current_dir(root())
                .output()
                .expect("cargo tree");
        assert!(
            out.status.success(),
            "cargo tree -p {package}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let tree = String::from_utf8_lossy(&out.stdout);
        assert!(tree.contains(package), "{package}'s tree: {tree}");
        let pulled: Vec<&str> = tree
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .filter(|name| ["vscout", "reqwest", "quick-xml", "sysinfo", "csv"].contains(name))
            .collect();
        assert!(
            pulled.is_empty(),
            "{package} depends on {pulled:?}:\n{tree}"
        );
    }
}
