//! Turns a SOAP `Fault` element into a typed error. The fault type comes from the first
//! element of `detail` (its `xsi:type`, or its name less the `Fault` suffix); unknown types
//! are kept by name, never rejected.

use super::error::VsphereError;
use super::xml::Node;

/// The fault type and message of a `Fault` node.
pub(super) fn describe(node: Node<'_>) -> (String, String) {
    let message = capped(node.text_at("faultstring").unwrap_or("").trim());
    let fault_type = node
        .child("detail")
        .and_then(|d| d.children().next())
        .map(|f| match f.xsi_type() {
            Some(t) => t.to_owned(),
            None => f
                .name()
                .strip_suffix("Fault")
                .unwrap_or(f.name())
                .to_owned(),
        })
        .unwrap_or_else(|| {
            node.text_at("faultcode").map_or_else(
                || "Unknown".to_owned(),
                |c| c.rsplit_once(':').map_or(c, |(_, l)| l).to_owned(),
            )
        });
    (fault_type, message)
}

/// Longest fault message kept: a server that sends megabytes of it (a hostile one did,
/// and it was logged on every attempt) costs a line of log, not megabytes a minute.
pub(super) const MAX_FAULT_MESSAGE_CHARS: usize = 1000;

fn capped(message: &str) -> String {
    match message.char_indices().nth(MAX_FAULT_MESSAGE_CHARS) {
        None => message.to_owned(),
        Some((at, _)) => format!("{}… ({} bytes in all)", &message[..at], message.len()),
    }
}

/// Maps a fault to an error. `NotAuthenticated` gets its own variant (the session layer
/// re-logs in on it).
pub(super) fn from_fault_node(method: &'static str, node: Node<'_>) -> VsphereError {
    let (fault_type, message) = describe(node);
    if fault_type == "NotAuthenticated" {
        return VsphereError::NotAuthenticated { method };
    }
    VsphereError::Fault {
        method,
        fault_type,
        message,
    }
}
