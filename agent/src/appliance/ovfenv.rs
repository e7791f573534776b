//! The OVF environment document vCenter hands an appliance VM (`vmtoolsd --cmd
//! "info-get guestinfo.ovfEnv"`): its `PropertySection` as key → value. Values are XML
//! attributes, so quotes, newlines and other characters arrive entity-encoded; they are
//! decoded here and judged by `settings.rs`.

use std::collections::BTreeMap;

use quick_xml::events::Event;

/// Largest OVF environment accepted: the document is a few kilobytes; anything far larger
/// is not one.
pub const MAX_DOCUMENT_BYTES: usize = 1 << 20;

/// Why an OVF environment document cannot be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OvfEnvError {
    #[error("the OVF environment is {0} bytes, more than the 1 MiB accepted")]
    TooLarge(usize),
    #[error("the OVF environment is not well-formed XML: {0}")]
    Xml(String),
    #[error("the OVF environment has no Environment element")]
    NotAnEnvironment,
    #[error("property {key:?} appears twice")]
    Duplicate { key: String },
}

/// Parses the document into its properties (`oe:key` → `oe:value`, whatever the prefix).
pub fn parse(doc: &str) -> Result<BTreeMap<String, String>, OvfEnvError> {
    if doc.len() > MAX_DOCUMENT_BYTES {
        return Err(OvfEnvError::TooLarge(doc.len()));
    }
    let mut reader = quick_xml::Reader::from_str(doc);
    let mut props = BTreeMap::new();
    let mut seen_env = false;
    loop {
        let ev = reader
            .read_event()
            .map_err(|e| OvfEnvError::Xml(e.to_string()))?;
        match ev {
            Event::Start(e) | Event::Empty(e) => {
                let name = e.local_name();
                if name.as_ref() == b"Environment" {
                    seen_env = true;
                }
                if name.as_ref() != b"Property" {
                    continue;
                }
                let mut key = None;
                let mut value = None;
                for a in e.attributes() {
                    let a = a.map_err(|e| OvfEnvError::Xml(e.to_string()))?;
                    let v = a
                        .decode_and_unescape_value(reader.decoder())
                        .map_err(|e| OvfEnvError::Xml(e.to_string()))?
                        .into_owned();
                    match a.key.local_name().as_ref() {
                        b"key" => key = Some(v),
                        b"value" => value = Some(v),
                        _ => {}
                    }
                }
                if let Some(k) = key {
                    let v = value.unwrap_or_default();
                    if props.insert(k.clone(), v).is_some() {
                        return Err(OvfEnvError::Duplicate { key: k });
                    }
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !seen_env {
        return Err(OvfEnvError::NotAnEnvironment);
    }
    Ok(props)
}
