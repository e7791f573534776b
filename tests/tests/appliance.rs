//! The OVA's structure (`packaging/appliance/pack-ova`), from a small raw disk: the
//! descriptor first in a ustar archive (then the system and data disks), manifest hashes that match, a descriptor that
//! parses and declares exactly the properties `vscout firstboot` reads (secrets marked as
//! passwords), and a streamOptimized VMDK.

use std::collections::BTreeSet;
use std::process::Command;

use anyhow::{ensure, Context, Result};
use quick_xml::events::Event;
use vscout::appliance::firstboot::keys;
use vscout_e2e::workspace_root;

fn run(cmd: &mut Command) -> Result<String> {
    let out = cmd.output().with_context(|| format!("{cmd:?}"))?;
    ensure!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn the_ova_is_structurally_valid() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let raw = dir.path().join("disk.raw");
    let data = dir.path().join("data.raw");
    for (disk, size) in [(&raw, "64M"), (&data, "32M")] {
        run(Command::new("qemu-img")
            .args(["create", "-f", "raw"])
            .arg(disk)
            .arg(size))?;
    }
    let ova = run(Command::new("bash")
        .arg(workspace_root().join("packaging/appliance/pack-ova"))
        .arg("--disk")
        .arg(&raw)
        .arg("--data-disk")
        .arg(&data)
        .arg("--out")
        .arg(dir.path().join("out"))
        .args(["--version", "9.9.9"]))?;
    let ova = ova.trim();
    assert!(ova.ends_with("vscout-appliance-9.9.9.ova"), "{ova}");
    let members = run(Command::new("tar").args(["-tf", ova]))?;
    let members: Vec<&str> = members.lines().collect();
    assert_eq!(
        members,
        [
            "vscout-appliance-9.9.9.ovf",
            "vscout-appliance-9.9.9.mf",
            "vscout-appliance-9.9.9-disk1.vmdk",
            "vscout-appliance-9.9.9-disk2.vmdk"
        ]
    );
    let x = dir.path().join("x");
    std::fs::create_dir_all(&x)?;
    run(Command::new("tar").args(["-xf", ova, "-C"]).arg(&x))?;

    // Manifest: SHA256(name)= hex, matching the files.
    let mf = std::fs::read_to_string(x.join(members[1]))?;
    let mut hashed = BTreeSet::new();
    for line in mf.lines() {
        let (name, hex) = line
            .strip_prefix("SHA256(")
            .and_then(|l| l.split_once(")= "))
            .with_context(|| format!("manifest line {line:?}"))?;
        let digest = vscout::tls::thumbprint(&std::fs::read(x.join(name))?);
        let want: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, want, "{name}");
        hashed.insert(name.to_owned());
    }
    assert_eq!(hashed.len(), 3);

    // Descriptor: well-formed, sizes right, exactly firstboot's keys.
    let ovf = std::fs::read_to_string(x.join(members[0]))?;
    let vmdk_sizes: Vec<String> = members[2..]
        .iter()
        .map(|m| Ok(std::fs::metadata(x.join(m))?.len().to_string()))
        .collect::<Result<_>>()?;
    let mut reader = quick_xml::Reader::from_str(&ovf);
    let (mut props, mut secrets) = (BTreeSet::new(), BTreeSet::new());
    let (mut file_sizes, mut capacities) = (Vec::new(), Vec::new());
    loop {
        match reader.read_event()? {
            Event::Start(e) | Event::Empty(e) => {
                let attr = |name: &str| {
                    e.attributes()
                        .flatten()
                        .find(|a| a.key.as_ref() == name.as_bytes())
                        .map(|a| String::from_utf8_lossy(&a.value).into_owned())
                };
                match e.local_name().as_ref() {
                    b"Property" => {
                        let k = attr("ovf:key").context("ovf:key")?;
                        if attr("ovf:password").as_deref() == Some("true") {
                            secrets.insert(k.clone());
                        }
                        props.insert(k);
                    }
                    b"File" => file_sizes.extend(attr("ovf:size")),
                    b"Disk" => capacities.extend(attr("ovf:capacity")),
                    _ => {}
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    assert_eq!(
        props,
        keys::ALL
            .iter()
            .map(|k| k.to_string())
            .collect::<BTreeSet<_>>()
    );
    assert_eq!(
        secrets,
        keys::SECRET
            .iter()
            .map(|k| k.to_string())
            .collect::<BTreeSet<_>>()
    );
    assert_eq!(file_sizes, vmdk_sizes);
    assert_eq!(capacities, ["67108864", "33554432"]);
    assert!(
        ovf.contains("<Version>9.9.9</Version>") && !ovf.contains('@'),
        "placeholders left"
    );

    for vmdk in &members[2..] {
        let info = run(Command::new("qemu-img").arg("info").arg(x.join(vmdk)))?;
        assert!(info.contains("create type: streamOptimized"), "{info}");
    }
    Ok(())
}
