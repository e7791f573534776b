//! The OVF environment parser and the first-boot plan, with sample documents: all
//! properties, missing ones, and hostile values (quotes, newlines, very long strings).

use std::collections::BTreeMap;

use super::firstboot::{self, keys, plan, settings, toml_string};
use super::ovfenv::{self, OvfEnvError};

/// An OVF environment as vCenter writes it, with these properties (values escaped as
/// XML attributes).
fn env(props: &[(&str, &str)]) -> String {
    let mut s = String::from(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<Environment xmlns="http://schemas.dmtf.org/ovf/environment/1" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:oe="http://schemas.dmtf.org/ovf/environment/1" xmlns:ve="http://www.vmware.com/schema/ovfenv" oe:id="" ve:vCenterId="vm-42">
   <PlatformSection><Kind>VMware ESXi</Kind><Version>8.0.2</Version><Vendor>VMware, Inc.</Vendor><Locale>en</Locale></PlatformSection>
   <PropertySection>
"#,
    );
    for (k, v) in props {
        s.push_str(&format!(
            "         <Property oe:key=\"{}\" oe:value=\"{}\"/>\n",
            quick_xml::escape::escape(*k),
            quick_xml::escape::escape(*v).replace('\n', "&#10;")
        ));
    }
    s.push_str("   </PropertySection>\n   <ve:EthernetAdapterSection><ve:Adapter ve:mac=\"00:50:56:aa:bb:cc\" ve:network=\"VM Network\" ve:unitNumber=\"7\"/></ve:EthernetAdapterSection>\n</Environment>\n");
    s
}

const TP: &str = "ab:cd:ef:01:23:45:67:89:ab:cd:ef:01:23:45:67:89:ab:cd:ef:01:23:45:67:89:ab:cd:ef:01:23:45:67:89";

fn full() -> Vec<(&'static str, &'static str)> {
    vec![
        (keys::VCENTER_URL, "https://vc01.example.com/sdk"),
        (keys::VCENTER_USER, "svc-vscout@vsphere.local"),
        (keys::VCENTER_PASSWORD, "p\"a'ss\n<w>&rd\\"),
        (keys::VCENTER_THUMBPRINT, TP),
        (keys::COLLECTOR_URL, "https://collector.example.com:8443"),
        (keys::COLLECTOR_TOKEN, "tok\"en"),
        (keys::COLLECTOR_THUMBPRINT, TP),
        (keys::HOSTNAME, "Scout-01.example.com"),
        (keys::IP, "10.1.2.3"),
        (keys::NETMASK, "255.255.255.0"),
        (keys::GATEWAY, "10.1.2.1"),
        (keys::DNS, "10.1.2.10, 10.1.2.11"),
        (keys::NTP, "NTP1.example.com,10.1.2.12"),
        (
            keys::ROOT_SSH_KEY,
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFake operator@laptop",
        ),
    ]
}

fn parsed(props: &[(&str, &str)]) -> BTreeMap<String, String> {
    ovfenv::parse(&env(props)).expect("parse")
}

fn file<'a>(files: &'a [firstboot::FileOut], path: &str) -> Option<&'a firstboot::FileOut> {
    files.iter().find(|f| f.path.to_str() == Some(path))
}

/// A planned file's content as text (it must be planned).
fn text(files: &[firstboot::FileOut], path: &str) -> String {
    let f = file(files, path).unwrap_or_else(|| panic!("{path} is not planned"));
    String::from_utf8(f.content.clone()).expect("utf-8")
}

#[test]
fn every_property_makes_a_configured_appliance() {
    let props = parsed(&full());
    assert_eq!(
        props[keys::VCENTER_PASSWORD],
        "p\"a'ss\n<w>&rd\\",
        "entities decoded"
    );
    let s = settings(&props).expect("valid");
    let files = plan(&s);
    let toml = text(&files, "/etc/vscout/agent.toml");
    let raw = crate::config::parse_raw(&toml).expect("the written config parses");
    assert_eq!(
        raw.vcenter[0].url.as_deref(),
        Some("https://vc01.example.com/sdk")
    );
    assert_eq!(
        raw.vcenter[0].username.as_deref(),
        Some("svc-vscout@vsphere.local")
    );
    assert_eq!(
        raw.vcenter[0].password_credential.as_deref(),
        Some(firstboot::VCENTER_CREDENTIAL)
    );
    assert!(raw
        .collector
        .as_ref()
        .and_then(|c| c.token_credential.as_deref())
        .is_some());
    // Secrets: only in root-only credential files, never in the config.
    assert!(
        !toml.contains("a'ss") && !toml.contains("tok\\\"en") && !toml.contains("tok\"en"),
        "{toml}"
    );
    let pw = file(&files, "/etc/vscout/credentials/vcenter-password").expect("pw");
    assert_eq!(
        (pw.mode, pw.content.as_slice()),
        (0o600, "p\"a'ss\n<w>&rd\\".as_bytes())
    );
    let dropin = text(
        &files,
        "/etc/systemd/system/vscout-agent.service.d/10-credentials.conf",
    );
    assert!(
        dropin.contains("LoadCredential=vcenter-password:/etc/vscout/credentials/vcenter-password")
    );
    assert!(dropin.contains("LoadCredential=collector-token:"));
    let net = text(&files, "/etc/systemd/network/10-vscout.network");
    assert!(
        net.contains("Address=10.1.2.3/24")
            && net.contains("Gateway=10.1.2.1")
            && net.contains("DNS=10.1.2.11"),
        "{net}"
    );
    assert_eq!(
        file(&files, "/etc/hostname").expect("hostname").content,
        b"scout-01.example.com\n"
    );
    assert_eq!(
        text(&files, "/etc/systemd/timesyncd.conf.d/10-vscout.conf"),
        "# Written by vscout-firstboot.\n[Time]\nNTP=ntp1.example.com 10.1.2.12\n"
    );
    assert_eq!(
        file(&files, "/root/.ssh/authorized_keys")
            .expect("key")
            .mode,
        0o600
    );

    // Applied under a root: modes on disk, the credentials directory private.
    let root = tempfile::tempdir().expect("tempdir");
    firstboot::apply(&files, root.path()).expect("apply");
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &str| {
        std::fs::metadata(root.path().join(p))
            .expect("meta")
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode("etc/vscout/credentials/vcenter-password"), 0o600);
    assert_eq!(mode("etc/vscout/credentials"), 0o700);
    assert_eq!(mode("etc/vscout/agent.toml"), 0o644);
}

#[test]
fn missing_properties_are_all_named_and_dhcp_is_the_default() {
    let err = settings(&parsed(&[])).expect_err("nothing given");
    let keys_named: Vec<&str> = err.0.iter().map(|(k, _)| k.as_str()).collect();
    for k in [
        keys::VCENTER_URL,
        keys::VCENTER_USER,
        keys::VCENTER_PASSWORD,
    ] {
        assert!(keys_named.contains(&k), "{err}");
    }
    let minimal = [
        (keys::VCENTER_URL, "https://vc/sdk"),
        (keys::VCENTER_USER, "u"),
        (keys::VCENTER_PASSWORD, "p"),
    ];
    let s = settings(&parsed(&minimal)).expect("minimal");
    assert!(s.network.is_none() && s.collector.is_none() && s.root_password.is_none());
    let files = plan(&s);
    let net = text(&files, "/etc/systemd/network/10-vscout.network");
    assert!(net.contains("DHCP=yes"));
    assert!(file(&files, "/etc/hostname").is_none());
    assert!(
        file(&files, "/etc/systemd/timesyncd.conf.d/10-vscout.conf").is_none(),
        "no NTP property: DHCP's servers or Debian's pool"
    );
    assert!(
        file(&files, "/root/.ssh/authorized_keys").is_none(),
        "no key, no login by SSH"
    );
    // A collector URL without its token is an error, not a silent skip.
    let mut with_collector = minimal.to_vec();
    with_collector.push((keys::COLLECTOR_URL, "https://c:8443"));
    let err = settings(&parsed(&with_collector)).expect_err("no token");
    assert!(err.to_string().contains(keys::COLLECTOR_TOKEN), "{err}");
}

#[test]
fn hostile_values_are_refused_or_escaped_never_injected() {
    let base = [
        (keys::VCENTER_URL, "https://vc/sdk"),
        (keys::VCENTER_PASSWORD, "p"),
    ];
    // A newline in a user name would end the TOML line and inject keys.
    let mut p = base.to_vec();
    p.push((keys::VCENTER_USER, "u\"\n[agent]\nstate_dir = \"/\""));
    let err = settings(&parsed(&p)).expect_err("newline");
    assert!(
        err.to_string().contains(keys::VCENTER_USER) && err.to_string().contains("control"),
        "{err}"
    );
    // Quotes and backslashes without newlines are escaped and read back exactly.
    let mut p = base.to_vec();
    let user = r#"dom\user "quoted" 'x' ]["#;
    p.push((keys::VCENTER_USER, user));
    let s = settings(&parsed(&p)).expect("quotes are fine");
    let files = plan(&s);
    let toml = text(&files, "/etc/vscout/agent.toml");
    let raw = crate::config::parse_raw(&toml).expect("parses");
    assert_eq!(raw.vcenter[0].username.as_deref(), Some(user));
    assert_eq!(raw.vcenter.len(), 1);
    // Very long values.
    let long = "x".repeat(firstboot::MAX_VALUE_BYTES + 1);
    let mut p = base.to_vec();
    p.push((keys::VCENTER_USER, &long));
    let err = settings(&parsed(&p)).expect_err("long");
    assert!(err.to_string().contains("at most 4096"), "{err}");
    // Bad addresses, host names, thumbprints, keys, http URLs.
    for (k, v, needle) in [
        (keys::IP, "10.1.2.300", "not an IP"),
        (keys::HOSTNAME, "bad_host;rm -rf", "host name"),
        (keys::VCENTER_THUMBPRINT, "ab:cd", "64 hex"),
        // 64 bytes, one of them inside a two-byte character (once a panic).
        (
            keys::VCENTER_THUMBPRINT,
            "A\u{e9}AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "hexadecimal",
        ),
        (keys::ROOT_SSH_KEY, "not a key", "OpenSSH"),
        (keys::VCENTER_URL, "http://vc/sdk", "https"),
        (keys::NETMASK, "255.0.255.0", "netmask"),
        (keys::NTP, "ntp.example.com;reboot", "not a host name"),
    ] {
        let mut p: Vec<(&str, &str)> = base.iter().filter(|(bk, _)| *bk != k).copied().collect();
        p.push((keys::VCENTER_USER, "u"));
        p.push((k, v));
        if k == keys::NETMASK {
            p.push((keys::IP, "10.0.0.5"));
        }
        let err = settings(&parsed(&p)).expect_err(v);
        assert!(
            err.to_string().contains(k) && err.to_string().contains(needle),
            "{k}: {err}"
        );
    }
    // A secret's value is never in an error.
    let mut p = base.to_vec();
    p.push((keys::ROOT_SSH_KEY, "bad"));
    p.push((keys::VCENTER_USER, "u"));
    p.retain(|(k, _)| *k != keys::VCENTER_PASSWORD);
    p.push((keys::VCENTER_PASSWORD, "hunter2-secret"));
    let err = settings(&parsed(&p)).expect_err("bad key");
    assert!(!err.to_string().contains("hunter2"));
}

#[test]
fn broken_documents_are_errors() {
    assert_eq!(ovfenv::parse("<x/>"), Err(OvfEnvError::NotAnEnvironment));
    assert!(matches!(
        ovfenv::parse("<Environment><Property"),
        Err(OvfEnvError::Xml(_))
    ));
    let dup = env(&[(keys::IP, "1.2.3.4"), (keys::IP, "1.2.3.5")]);
    assert!(matches!(
        ovfenv::parse(&dup),
        Err(OvfEnvError::Duplicate { .. })
    ));
    let huge = "x".repeat(ovfenv::MAX_DOCUMENT_BYTES + 1);
    assert!(matches!(
        ovfenv::parse(&huge),
        Err(OvfEnvError::TooLarge(_))
    ));
    assert_eq!(toml_string("a\u{7}b"), "\"a\\u0007b\"");
}

/// The required properties alone (no collector).
fn minimal() -> Vec<(&'static str, &'static str)> {
    vec![
        (keys::VCENTER_URL, "https://vc01.example.com/sdk"),
        (keys::VCENTER_USER, "svc"),
        (keys::VCENTER_PASSWORD, "pw"),
    ]
}

#[test]
fn the_mode_follows_the_collector_url_unless_given() {
    use firstboot::Mode;
    let mode = |extra: &[(&'static str, &'static str)]| {
        let mut p = minimal();
        p.extend_from_slice(extra);
        settings(&parsed(&p)).map(|s| s.mode)
    };
    assert_eq!(mode(&[]), Ok(Mode::AllInOne), "no collector: all-in-one");
    let remote = [
        (keys::COLLECTOR_URL, "https://c.example.com:8443"),
        (keys::COLLECTOR_TOKEN, "t"),
    ];
    assert_eq!(mode(&remote), Ok(Mode::Agent), "a collector: agent");
    assert_eq!(mode(&[(keys::MODE, "agent")]), Ok(Mode::Agent));
    assert_eq!(mode(&[(keys::MODE, "auto")]), Ok(Mode::AllInOne));
    let mut both = remote.to_vec();
    both.push((keys::MODE, "all-in-one"));
    let err = mode(&both).expect_err("all-in-one with a collector elsewhere");
    assert_eq!(err.0[0].0, keys::MODE, "{err}");
    let err = mode(&[(keys::MODE, "hub")]).expect_err("unknown mode");
    assert!(
        err.to_string()
            .contains("\"hub\": must be auto, agent or all-in-one"),
        "{err}"
    );
}

#[test]
fn the_mode_and_banner_are_planned_and_the_viewer_password_stays_out_of_them() {
    let mut p = minimal();
    p.push((keys::VIEWER_PASSWORD, "v13wer \\4 secret"));
    let mut s = settings(&parsed(&p)).expect("valid");
    assert!(s.viewer_password.is_some());
    // As first boot fills it in once the local collector is provisioned.
    s.collector = Some((
        super::all_in_one::LOCAL_URL.into(),
        crate::config::Secret::new("tok"),
        Some(TP.to_uppercase()),
    ));
    let files = plan(&s);
    assert_eq!(text(&files, firstboot::MODE_FILE), "all-in-one\n");
    let banner = text(&files, "/etc/issue.d/vscout.issue");
    assert!(
        banner.contains("https://\\4/ - log in as viewer"),
        "{banner}"
    );
    assert!(banner.contains(&TP.to_uppercase()), "{banner}");
    for f in &files {
        let body = String::from_utf8_lossy(&f.content);
        assert!(
            !body.contains("v13wer"),
            "the viewer password in {:?}",
            f.path
        );
    }
    let toml = text(&files, "/etc/vscout/agent.toml");
    assert!(toml.contains("url = \"https://127.0.0.1\""), "{toml}");

    // Without a viewer password the banner says how to open the pages.
    s.viewer_password = None;
    let banner = text(&plan(&s), "/etc/issue.d/vscout.issue");
    assert!(
        banner.contains("closed: no viewer password") && banner.contains("user add viewer"),
        "{banner}"
    );
    // Agent mode names the collector; a backslash in it is not an agetty escape.
    s.mode = firstboot::Mode::Agent;
    s.collector = Some((
        "https://c.example.com/a\\4".into(),
        crate::config::Secret::new("t"),
        None,
    ));
    let files = plan(&s);
    assert_eq!(text(&files, firstboot::MODE_FILE), "agent\n");
    assert_eq!(
        text(&files, "/etc/issue.d/vscout.issue"),
        "vscout appliance (agent): ships to https://c.example.com/a\\\\4\n\n"
    );
}

#[test]
fn retention_grows_with_the_data_disk_and_stays_in_the_collectors_bounds() {
    use super::all_in_one::retention;
    const GIB: u64 = 1 << 30;
    let r32 = retention(32 * GIB);
    // 32 GiB for 5,000 VMs: 400 days of summaries (2 MB per VM) leave 3.5 MB per VM for
    // windows at 65 KB a day.
    assert_eq!((r32.windows_days, r32.summaries_days), (53, 400), "{r32:?}");
    let r64 = retention(64 * GIB);
    assert!(r64.windows_days > r32.windows_days, "{r64:?}");
    assert_eq!(retention(4096 * GIB).windows_days, 90, "capped");
    // A small disk: a week of windows, fewer days of summaries, never fewer than windows.
    let small = retention(4 * GIB);
    assert_eq!(small.windows_days, 7, "{small:?}");
    assert!(
        small.summaries_days >= 7 && small.summaries_days < 400,
        "{small:?}"
    );
    let none = retention(0);
    assert_eq!((none.windows_days, none.summaries_days), (7, 7));
    // The configuration holds them (tests/tests/appliance.rs starts a collector on it).
    for r in [r32, r64, small, none] {
        let toml = super::all_in_one::collector_toml(&r);
        assert!(
            toml.contains(&format!("windows_days = {}\n", r.windows_days)),
            "{toml}"
        );
        assert!(toml.contains("listen_addr = \"0.0.0.0:443\""), "{toml}");
    }
}
