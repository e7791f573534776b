//! Certificate thumbprints: SHA-256 of the DER, written as vCenter shows it. The collector
//! prints its own in this form and the agent's `thumbprint_sha256` reads it back.

use sha2::{Digest, Sha256};

/// SHA-256 of a DER certificate.
pub fn thumbprint(cert: &[u8]) -> [u8; 32] {
    Sha256::digest(cert).into()
}

/// Formats a SHA-256 digest as vCenter shows it: upper-case hex pairs joined by colons.
pub fn format_thumbprint(digest: &[u8; 32]) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(95);
    for (i, b) in digest.iter().enumerate() {
        if i > 0 {
            out.push(':');
        }
        let _ = write!(out, "{b:02X}");
    }
    out
}
