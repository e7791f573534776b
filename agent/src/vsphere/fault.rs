//! Turns a SOAP `Fault` element into a typed error. The fault type comes from the first
//! element of `detail` (its `xsi:type`, or its name less the `Fault` suffix); unknown types
//! are kept by name, never rejected.

use super::error::VsphereError;
use super::xml::Node;

/// The fault type and message of a `Fault` node.
pub fn describe(node: &Node) -> (String, String) {
    let message = node.text_at("faultstring").unwrap_or("").trim().to_owned();
    let fault_type = node
        .child("detail")
        .and_then(|d| d.children.first())
        .map(|f| match &f.xsi_type {
            Some(t) => t.to_string(),
            None => f.name.strip_suffix("Fault").unwrap_or(&f.name).to_owned(),
        })
        .unwrap_or_else(|| {
            node.text_at("faultcode").map_or_else(
                || "Unknown".to_owned(),
                |c| c.rsplit_once(':').map_or(c, |(_, l)| l).to_owned(),
            )
        });
    (fault_type, message)
}

/// Maps a fault to an error. `NotAuthenticated` gets its own variant (the session layer
/// re-logs in on it); the URL is filled in by the caller, which knows it.
pub fn from_fault_node(method: &'static str, node: &Node) -> VsphereError {
    let (fault_type, message) = describe(node);
    if fault_type == "NotAuthenticated" {
        return VsphereError::NotAuthenticated {
            method,
            url: String::new(),
        };
    }
    VsphereError::Fault {
        method,
        fault_type,
        message,
    }
}
