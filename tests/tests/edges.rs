//! What a new user hits first (issue 11), against the real binaries: a hung vCenter names
//! the timeout that fired; vcsim's own legacy (RSA-1024) certificate works when pinned or
//! unverified and stays refused under CA verification; usage errors exit 64.

use std::path::Path;

use vscout_e2e::{run_vscout, write_agent_config, Certs, Trust, PASSWORD};

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// An agent config for one vCenter at `url` with a 2-second request timeout.
fn config_with_timeout(dir: &Path, url: &str) -> String {
    let cfg =
        write_agent_config(dir, &[("hung", url, Trust::Insecure)], PASSWORD, "").expect("config");
    let text = std::fs::read_to_string(&cfg)
        .expect("read")
        .replace("request_timeout_secs = 60", "request_timeout_secs = 2");
    std::fs::write(&cfg, text).expect("write");
    cfg.display().to_string()
}

fn inventory(cfg: &str, out: &Path) -> std::process::Output {
    run_vscout(&[
        "--config",
        cfg,
        "inventory",
        "--output",
        out.to_str().expect("utf-8"),
    ])
    .expect("run vscout")
}

/// Issue 11: a vCenter that accepted and never answered gave "timed out after 120 s"
/// after 30 s — the connect timeout fired, the message named the request timeout.
#[test]
fn a_hung_vcenter_names_the_timeout_that_fired_and_its_value() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Accepts TCP connections and never says a word: the TLS handshake never completes.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let silent_port = silent.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in silent.incoming().flatten() {
            held.push(s);
        }
    });
    let cfg = config_with_timeout(dir.path(), &format!("https://127.0.0.1:{silent_port}/sdk"));
    let out = inventory(&cfg, &dir.path().join("o1"));
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("the connect timeout of 1 s fired"), "{err}");
    assert!(err.contains("vcenter.request_timeout_secs"), "{err}");

    // Completes the TLS handshake, then never answers the request.
    let certs = Certs::generate(dir.path()).expect("certs");
    let acceptor = certs.tls_acceptor().expect("acceptor");
    let mute = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let mute_port = mute.local_addr().expect("addr").port();
    mute.set_nonblocking(true).expect("nonblocking");
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(mute).expect("listener");
            let mut held = Vec::new();
            while let Ok((tcp, _)) = listener.accept().await {
                if let Ok(tls) = acceptor.accept(tcp).await {
                    held.push(tls);
                }
            }
        });
    });
    let cfg = config_with_timeout(dir.path(), &format!("https://127.0.0.1:{mute_port}/sdk"));
    let out = inventory(&cfg, &dir.path().join("o2"));
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("the request timeout of 2 s fired"), "{err}");
    assert!(
        err.contains("connected, but the answer did not complete"),
        "{err}"
    );
}

/// Issue 11: vcsim's built-in certificate (RSA-1024, like many an old vCenter's) was
/// refused even pinned or with verification off ("BadSignature"), and `check` advised
/// pinning the thumbprint that was pinned.
#[test]
fn a_legacy_rsa_1024_certificate_works_pinned_or_unverified_and_never_under_ca_checks() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sim = vscout_e2e::Vcsim::start_with_builtin_certificate(&vscout_e2e::SimOptions::default())
        .expect("vcsim");
    let run = |trust: Trust, cmd: &str| {
        let cfg = write_agent_config(dir.path(), &[("legacy", &sim.url, trust)], PASSWORD, "")
            .expect("config");
        let cfg = cfg.display().to_string();
        match cmd {
            "check" => run_vscout(&["--config", &cfg, "check"]).expect("check"),
            _ => inventory(&cfg, &dir.path().join("out")),
        }
    };
    for trust in [Trust::Pin(sim.thumbprint.clone()), Trust::Insecure] {
        let out = run(trust.clone(), "inventory");
        let err = stderr(&out);
        assert!(out.status.success(), "{trust:?}: {err}");
        assert!(
            err.contains("weak 1024-bit RSA key"),
            "{trust:?} must warn that the key is weak: {err}"
        );
    }
    let out = run(Trust::Pin(sim.thumbprint.clone()), "check");
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{table}\n{}", stderr(&out));
    assert!(
        !table.contains("thumbprint_sha256"),
        "no advice to pin what is pinned: {table}"
    );
    // Verification against CAs stays strict: vcsim's certificate is self-signed, and its
    // key is weak; both refuse it, and the error still offers the thumbprint.
    let out = run(Trust::Default, "inventory");
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("tls verification failed") && err.contains(&sim.thumbprint),
        "{err}"
    );
}
