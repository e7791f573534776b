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
            // `target/` holds what builds and runs write (screenshots, benches): it is
            // absent on a clean clone, so it is not a source path to check.
            if !looks_like_path || token.starts_with("target/") {
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

/// Longest functions (issue 13: under 80 lines). Those still longer are listed with their
/// length today: none may grow, none may join, and one that shrinks under the limit must
/// leave the list. A function ends at the first line that closes it at its own indent;
/// test modules (from `#[cfg(test)]`, and files named `tests.rs`) and benchmarks are not
/// counted.
#[test]
fn no_function_grows_past_eighty_lines() {
    const LIMIT: usize = 80;
    let still_long: [(&str, &str, usize); 3] = [
        ("collector/src/store/sqlite.rs", "ingest", 157),
        ("collector/src/server.rs", "serve", 100),
        ("collector/src/store/sqlite.rs", "store_inventory", 91),
    ];
    let root = root();
    let mut wrong = Vec::new();
    for p in rust_files() {
        let rel = p.strip_prefix(&root).unwrap_or(&p).display().to_string();
        if rel.starts_with("tests/") || rel.ends_with("/tests.rs") || rel.contains("/benches/") {
            continue;
        }
        let text = std::fs::read_to_string(&p).unwrap_or_default();
        for (name, len) in function_lengths(&text) {
            let allowed = still_long
                .iter()
                .find(|(f, n, _)| *f == rel && *n == name)
                .map(|(_, _, l)| *l);
            match allowed {
                None if len > LIMIT => wrong.push(format!("{rel}: {name} is {len} lines")),
                Some(max) if len > max => {
                    wrong.push(format!("{rel}: {name} grew to {len} lines (was {max})"))
                }
                Some(_) if len <= LIMIT => wrong.push(format!(
                    "{rel}: {name} is {len} lines now: take it off the list"
                )),
                _ => {}
            }
        }
    }
    assert!(wrong.is_empty(), "functions over {LIMIT} lines: {wrong:?}");
}

/// (name, lines) of every function before the file's test module.
fn function_lengths(text: &str) -> Vec<(String, usize)> {
    let lines: Vec<&str> = text.lines().collect();
    let end = lines
        .iter()
        .position(|l| l.starts_with("#[cfg(test)]"))
        .unwrap_or(lines.len());
    let mut out = Vec::new();
    for (i, line) in lines[..end].iter().enumerate() {
        let indent = line.len() - line.trim_start().len();
        let mut words = line.split_whitespace().peekable();
        while words
            .peek()
            .is_some_and(|w| w.starts_with("pub") || ["async", "const"].contains(w))
        {
            words.next();
        }
        if words.next() != Some("fn") {
            continue;
        }
        let Some(name) = words
            .next()
            .map(|w| w.split(['(', '<']).next().unwrap_or(w).to_owned())
        else {
            continue;
        };
        // A declaration without a body (a trait's) ends in `;` before any `{`.
        let body = lines[i..end]
            .iter()
            .find(|l| l.contains('{') || l.trim_end().ends_with(';'));
        if !body.is_some_and(|l| l.contains('{')) || line.trim_end().ends_with('}') {
            continue;
        }
        let close = format!("{}}}", " ".repeat(indent));
        if let Some(j) = lines[i..end].iter().position(|l| *l == close) {
            out.push((name, j + 1));
        }
    }
    out
}

/// Issue 13: the dependency policy that `deny.toml` writes down for `cargo deny`, checked
/// here from `cargo metadata` so that it runs offline on every machine: licences from a
/// permissive list, crates only from crates.io (or this workspace), never OpenSSL, and no
/// crate in two versions beyond those listed (each waits on an upstream release).
#[test]
fn dependencies_follow_the_policy() {
    const LICENSES: [&str; 11] = [
        "MIT",
        "Apache-2.0",
        "BSD-2-Clause",
        "BSD-3-Clause",
        "ISC",
        "Zlib",
        "Unicode-3.0",
        "Unlicense",
        "0BSD",
        "BSL-1.0",
        "CDLA-Permissive-2.0",
    ];
    const BANNED: [&str; 3] = ["openssl", "openssl-sys", "native-tls"];
    // The crates allowed in two versions are deny.toml's `[bans] skip` list, read from
    // it so that the two cannot drift apart.
    let deny = std::fs::read_to_string(root().join("deny.toml")).expect("deny.toml");
    let skip = deny
        .split_once("skip = [")
        .and_then(|(_, rest)| rest.split_once(']'))
        .map_or("", |(list, _)| list);
    let two_versions: Vec<&str> = skip
        .lines()
        .filter_map(|l| {
            l.split_once("name = \"")
                .and_then(|(_, r)| r.split_once('"'))
        })
        .map(|(name, _)| name)
        .collect();
    assert!(
        two_versions.contains(&"syn"),
        "deny.toml's skip list: {skip}"
    );
    let out =
        std::process::Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
            .args(["metadata", "--format-version", "1", "--locked"])
            .current_dir(root())
            .output()
            .expect("cargo metadata");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).expect("metadata json");
    let mut wrong = Vec::new();
    let mut versions: std::collections::BTreeMap<&str, usize> = Default::default();
    for p in meta["packages"].as_array().expect("packages") {
        let name = p["name"].as_str().unwrap_or("?");
        let license = p["license"].as_str().unwrap_or("");
        if !license_allowed(license, &LICENSES) {
            wrong.push(format!("{name}: licence {license:?}"));
        }
        let source = p["source"].as_str().unwrap_or("path");
        if source != "path" && source != "registry+https://github.com/rust-lang/crates.io-index" {
            wrong.push(format!("{name}: from {source}"));
        }
        if BANNED.contains(&name) {
            wrong.push(format!("{name}: banned (rustls only, never OpenSSL)"));
        }
        *versions.entry(name).or_default() += 1;
    }
    for (name, n) in versions {
        if n > 1 && !two_versions.contains(&name) {
            wrong.push(format!("{name}: {n} versions"));
        }
    }
    assert!(
        wrong.is_empty(),
        "dependencies against the policy: {wrong:?}"
    );
}

/// Whether an SPDX expression (`MIT OR Apache-2.0`, `(MIT OR Apache-2.0) AND
/// Unicode-3.0`, `Apache-2.0 WITH LLVM-exception`, the old `MIT/Apache-2.0`) can be met
/// with `allowed` licences alone.
fn license_allowed(expr: &str, allowed: &[&str]) -> bool {
    let spaced = expr
        .replace('/', " OR ")
        .replace('(', " ( ")
        .replace(')', " ) ");
    let tokens: Vec<&str> = spaced.split_whitespace().collect();
    let mut pos = 0;
    !tokens.is_empty() && or_expr(&tokens, &mut pos, allowed) && pos == tokens.len()
}

fn or_expr(t: &[&str], pos: &mut usize, allowed: &[&str]) -> bool {
    let mut ok = and_expr(t, pos, allowed);
    while t.get(*pos) == Some(&"OR") {
        *pos += 1;
        ok |= and_expr(t, pos, allowed);
    }
    ok
}

fn and_expr(t: &[&str], pos: &mut usize, allowed: &[&str]) -> bool {
    let mut ok = factor(t, pos, allowed);
    while t.get(*pos) == Some(&"AND") {
        *pos += 1;
        ok &= factor(t, pos, allowed);
    }
    ok
}

fn factor(t: &[&str], pos: &mut usize, allowed: &[&str]) -> bool {
    let Some(tok) = t.get(*pos) else {
        return false;
    };
    *pos += 1;
    if *tok == "(" {
        let ok = or_expr(t, pos, allowed);
        if t.get(*pos) == Some(&")") {
            *pos += 1;
            return ok;
        }
        return false;
    }
    // An exception widens a licence's grant; it never narrows it.
    if t.get(*pos) == Some(&"WITH") {
        *pos += 2;
    }
    allowed.contains(tok)
}

#[test]
fn license_expressions_are_read_as_spdx() {
    let allowed = ["MIT", "Apache-2.0", "Unicode-3.0"];
    assert!(license_allowed("MIT OR Apache-2.0", &allowed));
    assert!(license_allowed("MIT/Apache-2.0", &allowed));
    assert!(license_allowed(
        "(MIT OR Apache-2.0) AND Unicode-3.0",
        &allowed
    ));
    assert!(license_allowed(
        "Apache-2.0 WITH LLVM-exception OR MIT",
        &allowed
    ));
    assert!(!license_allowed("MIT AND GPL-3.0", &allowed));
    assert!(!license_allowed("GPL-3.0", &allowed));
    assert!(!license_allowed("", &allowed));
    assert!(license_allowed("GPL-3.0 OR MIT", &allowed));
}
