//! Tests of configuration parsing and validation: every error names its key and value.

use std::io::Write;

use super::*;
use crate::config::{raw, Compression};

fn password_file() -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().expect("temp file");
    writeln!(f, "s3cret").expect("write");
    f
}

fn minimal(pw: &Path) -> String {
    format!(
        "[[vcenter]]\nurl = \"https://vc.example.com\"\nusername = \"u\"\npassword_file = \"{}\"\n",
        pw.display()
    )
}

fn check(text: &str) -> Result<AgentConfig, ConfigError> {
    validate(raw::parse_str(text)?, &Context::default())
}

#[test]
fn minimal_config_gets_defaults() {
    let pw = password_file();
    let cfg = check(&minimal(pw.path())).expect("valid");
    let vc = &cfg.vcenters[0];
    assert_eq!(vc.url.as_str(), "https://vc.example.com/sdk");
    assert_eq!(vc.name, "vc.example.com");
    assert_eq!(vc.password.expose(), "s3cret");
    assert_eq!(vc.tls, TlsPolicy::Verify { ca_file: None });
    assert_eq!(vc.request_timeout, Duration::from_secs(120));
    assert_eq!(vc.page_size, 500);
    assert_eq!(cfg.inventory_interval, Duration::from_secs(3600));
}

#[test]
fn unknown_key_is_named() {
    let pw = password_file();
    let text = minimal(pw.path()) + "colour = \"blue\"\n";
    let err = check(&text).expect_err("unknown key").to_string();
    assert!(err.contains("colour"), "{err}");
}

#[test]
fn out_of_range_value_names_key_and_value() {
    let pw = password_file();
    let text = minimal(pw.path()) + "request_timeout_secs = 0\n";
    let err = check(&text).expect_err("range").to_string();
    assert!(err.contains("vcenter[0].request_timeout_secs = 0"), "{err}");
}

#[test]
fn http_url_is_refused() {
    let pw = password_file();
    let text = minimal(pw.path()).replace("https://", "http://");
    let err = check(&text).expect_err("http").to_string();
    assert!(
        err.contains("vcenter[0].url = http://vc.example.com"),
        "{err}"
    );
}

#[test]
fn missing_password_file_names_path_but_not_secret() {
    let text = "[[vcenter]]\nurl = \"https://vc\"\nusername = \"u\"\npassword_file = \"/nonexistent/pw\"\n";
    let err = check(text).expect_err("missing file").to_string();
    assert!(err.contains("/nonexistent/pw"), "{err}");
}

#[test]
fn systemd_credential_is_read_from_credentials_directory() {
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(dir.path().join("vc-pass"), "from-cred\n").expect("write");
    let text =
        "[[vcenter]]\nurl = \"https://vc\"\nusername = \"u\"\npassword_credential = \"vc-pass\"\n";
    let ctx = Context {
        credentials_dir: Some(dir.path().to_owned()),
    };
    let cfg = validate(raw::parse_str(text).expect("parse"), &ctx).expect("valid");
    assert_eq!(cfg.vcenters[0].password.expose(), "from-cred");
    let err =
        validate(raw::parse_str(text).expect("parse"), &Context::default()).expect_err("no dir");
    assert!(err.to_string().contains("CREDENTIALS_DIRECTORY"), "{err}");
}

#[test]
fn thumbprint_pins_and_conflicting_trust_is_refused() {
    let pw = password_file();
    let tp = "AB:".repeat(31) + "AB";
    let text = format!(
        "{}[vcenter.tls]\nthumbprint_sha256 = \"{tp}\"\n",
        minimal(pw.path())
    );
    let cfg = check(&text).expect("valid");
    assert_eq!(
        cfg.vcenters[0].tls,
        TlsPolicy::Pinned { sha256: [0xAB; 32] }
    );

    let both = format!("{text}insecure = true\n");
    let err = check(&both).expect_err("conflict").to_string();
    assert!(err.contains("vcenter[0].tls"), "{err}");

    let bad = format!(
        "{}[vcenter.tls]\nthumbprint_sha256 = \"xyz\"\n",
        minimal(pw.path())
    );
    let err = check(&bad).expect_err("bad thumbprint").to_string();
    assert!(err.contains("thumbprint_sha256 = xyz"), "{err}");
}

#[test]
fn thumbprint_with_multibyte_characters_is_an_error_not_a_panic() {
    // 64 bytes, and "é" (two of them) straddles the first pair: slicing by bytes would
    // split it.
    let text = "Aé".to_string() + &"A".repeat(61);
    assert_eq!(text.len(), 64);
    assert_eq!(parse_thumbprint(&text), Err("not hexadecimal".to_string()));
    assert_eq!(parse_thumbprint(&("AB:".repeat(31) + "AB")), Ok([0xAB; 32]));
    assert!(parse_thumbprint(&"a".repeat(64)).is_ok(), "lower case");
}

#[test]
fn duplicate_names_and_too_many_vcenters_are_refused() {
    let pw = password_file();
    let one = minimal(pw.path());
    let err = check(&format!("{one}{one}")).expect_err("dup").to_string();
    assert!(err.contains("vcenter[1].name = vc.example.com"), "{err}");
    let err = check(&one.repeat(11)).expect_err("too many").to_string();
    assert!(err.contains("11 entries"), "{err}");
}

#[test]
fn no_vcenter_is_an_error() {
    let err = check("[agent]\ninventory_interval_secs = 60\n")
        .expect_err("none")
        .to_string();
    assert!(err.contains("vcenter is required"), "{err}");
}

#[test]
fn environment_overrides_file() {
    let pw = password_file();
    let mut file = tempfile::NamedTempFile::new().expect("temp");
    file.write_all(minimal(pw.path()).as_bytes())
        .expect("write");
    let env = vec![
        (
            "VSCOUT_AGENT__INVENTORY_INTERVAL_SECS".to_string(),
            "42".to_string(),
        ),
        ("UNRELATED".to_string(), "x".to_string()),
        ("VSCOUT_CONFIG".to_string(), "/elsewhere.toml".to_string()),
        ("VSCOUT_REPORT_RESOURCES".to_string(), "1".to_string()),
    ];
    let raw = raw::read(file.path(), env).expect("read");
    let cfg = validate(raw, &Context::default()).expect("valid");
    assert_eq!(cfg.inventory_interval, Duration::from_secs(42));
}

#[test]
fn perf_defaults_and_bad_values() {
    let pw = password_file();
    let cfg = check(&minimal(pw.path())).expect("valid");
    assert_eq!(cfg.perf.interval, Duration::from_secs(60));
    assert_eq!(
        (
            cfg.perf.window_secs,
            cfg.perf.concurrency,
            cfg.perf.max_entities_per_query
        ),
        (300, 4, 256)
    );
    assert!(cfg
        .perf
        .vm_counters
        .contains(&"cpu.ready.summation".to_string()));
    assert!(cfg
        .perf
        .daily_counters
        .contains(&"cpu.usage.average".to_string()));
    assert_eq!(cfg.perf.historical_lookback_secs, 1800);

    let err = check(&(minimal(pw.path()) + "[perf]\ninterval_secs = 10\n"))
        .expect_err("range")
        .to_string();
    assert!(err.contains("perf.interval_secs = 10"), "{err}");
    let err = check(&(minimal(pw.path()) + "[perf]\nwindow_secs = 90\n"))
        .expect_err("multiple")
        .to_string();
    assert!(err.contains("perf.window_secs = 90"), "{err}");
    let err = check(&(minimal(pw.path()) + "[perf]\nvm_counters = [\"cpu.usage\"]\n"))
        .expect_err("name")
        .to_string();
    assert!(err.contains("perf.vm_counters = cpu.usage"), "{err}");
}

#[test]
fn buffer_and_collector_sections() {
    let pw = password_file();
    let base = minimal(pw.path());
    let cfg = check(&base).expect("valid");
    assert!(cfg.collector.is_none());
    assert_eq!(cfg.buffer.max_bytes, 1 << 30);
    assert_eq!(cfg.buffer.segment_bytes, 64 << 20);
    assert_eq!(cfg.buffer.commit_interval, Duration::from_millis(500));
    let with = |extra: &str| check(&format!("{base}\n{extra}\n"));
    let tok = pw.path().display();
    let cfg = with(&format!(
        "[buffer]\nmax_bytes = 1048576\nfsync = \"always\"\n[collector]\nurl = \"https://c.example.com:8443\"\ntoken_file = \"{tok}\"\ncompression = \"gzip\"\n"
    ))
    .expect("valid");
    assert!(cfg.buffer.fsync_always);
    assert_eq!(cfg.buffer.segment_bytes, 65536);
    let c = cfg.collector.expect("collector");
    assert_eq!(c.url.as_str(), "https://c.example.com:8443/");
    assert_eq!(c.token.expect("token").expose(), "s3cret");
    assert_eq!(c.compression, Compression::Gzip);
    assert_eq!(c.max_in_flight, 2);
    for (extra, needle) in [
        ("[buffer]\nmax_bytes = 1000", "buffer.max_bytes = 1000"),
        // Issue 12: the old minimum could hold no window batch and no inventory.
        ("[buffer]\nmax_bytes = 65536", "between 1048576 and"),
        ("[buffer]\nfsync = \"never\"", "buffer.fsync = never"),
        ("[collector]\nurl = \"https://c\"", "collector.token_file"),
        (
            &format!("[collector]\nurl = \"http://c\"\ntoken_file = \"{tok}\""),
            "collector.url = http://c",
        ),
        (
            &format!(
                "[collector]\nurl = \"https://c\"\ntoken_file = \"{tok}\"\ncompression = \"lz4\""
            ),
            "collector.compression = lz4",
        ),
        (
            &format!("[collector]\nurl = \"https://c\"\nclient_cert_file = \"{tok}\""),
            "mutual TLS needs both",
        ),
        (
            &format!("[collector]\nurl = \"https://c\"\ntoken_file = \"{tok}\"\nmax_in_flight = 0"),
            "collector.max_in_flight = 0",
        ),
    ] {
        let err = with(extra).expect_err(extra).to_string();
        assert!(err.contains(needle), "{extra}: {err}");
    }
}
