//! TLS client trust, for vCenter and the collector alike: chain verification against the
//! system roots plus an optional CA file, a pinned SHA-256 thumbprint, or (labs only) no
//! verification; and an optional client certificate (mutual TLS to the collector). Whatever the
//! policy, the verifier records the thumbprint of the certificate the server presented,
//! so that a failed handshake can tell the operator exactly what to pin.
//!
//! Legacy certificates with RSA keys under 2048 bits are accepted where the certificate
//! is pinned or verification is off (`weak_rsa`), with a warning; never under CA
//! verification.

use std::sync::{Arc, Mutex};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};

/// How a server's certificate is trusted (vCenter's or the collector's). The TLS layer
/// owns it; configuration only builds it from the file's keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsPolicy {
    /// Verify the chain against the system roots plus an optional extra CA file.
    Verify { ca_file: Option<std::path::PathBuf> },
    /// Accept exactly the certificate with this SHA-256 digest.
    Pinned { sha256: [u8; 32] },
    /// Accept anything (labs only).
    Insecure,
}

mod weak_rsa;

/// The last thumbprint a server presented, shared between the verifier and the client.
pub type SeenThumbprint = Arc<Mutex<Option<[u8; 32]>>>;

/// Certificate digests and their text form, shared with the collector (which prints the
/// thumbprint an agent pins).
pub use vscout_service::thumbprint::{format_thumbprint, thumbprint};

/// The crypto provider used everywhere: ring (see the workspace Cargo.toml for why).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A client certificate chain and its private key, from PEM files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientIdentity {
    pub cert_file: std::path::PathBuf,
    pub key_file: std::path::PathBuf,
}

impl ClientIdentity {
    fn load(
        &self,
    ) -> Result<
        (
            Vec<CertificateDer<'static>>,
            rustls::pki_types::PrivateKeyDer<'static>,
        ),
        String,
    > {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&self.cert_file)
            .map_err(|e| {
                format!(
                    "cannot read client certificate {}: {e}",
                    self.cert_file.display()
                )
            })?
            .collect::<Result<_, _>>()
            .map_err(|e| {
                format!(
                    "client certificate {} is not PEM: {e}",
                    self.cert_file.display()
                )
            })?;
        if certs.is_empty() {
            return Err(format!(
                "client certificate file {} holds no certificate",
                self.cert_file.display()
            ));
        }
        let key = rustls::pki_types::PrivateKeyDer::from_pem_file(&self.key_file)
            .map_err(|e| format!("cannot read client key {}: {e}", self.key_file.display()))?;
        Ok((certs, key))
    }
}

/// Builds a rustls client configuration for `policy`, presenting `identity` if given.
pub fn client_config(
    policy: &TlsPolicy,
    seen: SeenThumbprint,
    identity: Option<&ClientIdentity>,
) -> Result<rustls::ClientConfig, String> {
    let provider = provider();
    let mode = match policy {
        TlsPolicy::Verify { ca_file } => {
            let mut roots = RootCertStore::empty();
            // System roots: a missing or partly unreadable store is not fatal, a CA file may
            // be all that is needed.
            let native = rustls_native_certs::load_native_certs();
            for cert in native.certs {
                let _ = roots.add(cert);
            }
            if let Some(path) = ca_file {
                let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                    .map_err(|e| format!("cannot read tls.ca_file {}: {e}", path.display()))?
                    .collect::<Result<_, _>>()
                    .map_err(|e| format!("tls.ca_file {} is not PEM: {e}", path.display()))?;
                if certs.is_empty() {
                    return Err(format!(
                        "tls.ca_file {} holds no certificate",
                        path.display()
                    ));
                }
                for cert in certs {
                    roots
                        .add(cert)
                        .map_err(|e| format!("tls.ca_file {}: {e}", path.display()))?;
                }
            }
            let verifier =
                WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                    .build()
                    .map_err(|e| format!("cannot build certificate verifier: {e}"))?;
            Mode::Chain(verifier)
        }
        TlsPolicy::Pinned { sha256 } => Mode::Pinned(*sha256),
        TlsPolicy::Insecure => Mode::Insecure,
    };
    let verifier = Arc::new(RecordingVerifier {
        mode,
        seen,
        provider: provider.clone(),
        warned_weak: std::sync::atomic::AtomicBool::new(false),
    });
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("tls protocol versions: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    match identity {
        None => Ok(cfg.with_no_client_auth()),
        Some(id) => {
            let (certs, key) = id.load()?;
            cfg.with_client_auth_cert(certs, key)
                .map_err(|e| format!("client certificate {}: {e}", id.cert_file.display()))
        }
    }
}

#[derive(Debug)]
enum Mode {
    Chain(Arc<WebPkiServerVerifier>),
    Pinned([u8; 32]),
    Insecure,
}

/// Verifies by `mode` and remembers the presented certificate's thumbprint.
#[derive(Debug)]
struct RecordingVerifier {
    mode: Mode,
    seen: SeenThumbprint,
    provider: Arc<CryptoProvider>,
    /// The weak-key warning is logged once per client, not on every connection.
    warned_weak: std::sync::atomic::AtomicBool,
}

impl RecordingVerifier {
    /// When ring refused a handshake signature: for a certificate accepted without a CA
    /// (pinned or unverified), a legacy RSA key under 2048 bits may still have made it.
    fn legacy_signature(
        &self,
        refused: rustls::Error,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let why = match self.mode {
            Mode::Chain(_) => return Err(refused),
            Mode::Pinned(_) => "its thumbprint is pinned",
            Mode::Insecure => "tls.insecure is set",
        };
        let Some(bits) = weak_rsa::verify(message, cert, dss.scheme, dss.signature()) else {
            return Err(refused);
        };
        if !self
            .warned_weak
            .swap(true, std::sync::atomic::Ordering::Relaxed)
        {
            tracing::warn!(
                key_bits = bits,
                thumbprint = %format_thumbprint(&thumbprint(cert)),
                "the server's certificate has a weak {bits}-bit RSA key (under {}); accepted because {why}: replace the certificate",
                weak_rsa::STRONG_RSA_BITS
            );
        }
        Ok(HandshakeSignatureValid::assertion())
    }
}

impl ServerCertVerifier for RecordingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let digest = thumbprint(end_entity);
        if let Ok(mut slot) = self.seen.lock() {
            *slot = Some(digest);
        }
        match &self.mode {
            Mode::Chain(v) => {
                v.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            }
            Mode::Pinned(expected) if *expected == digest => Ok(ServerCertVerified::assertion()),
            Mode::Pinned(expected) => Err(rustls::Error::General(format!(
                "certificate thumbprint does not match the pinned {}",
                format_thumbprint(expected)
            ))),
            Mode::Insecure => Ok(ServerCertVerified::assertion()),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
        .or_else(|e| self.legacy_signature(e, message, cert, dss))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
        .or_else(|e| self.legacy_signature(e, message, cert, dss))
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thumbprint_is_formatted_like_vcenter() {
        let mut d = [0u8; 32];
        d[0] = 0xAB;
        d[31] = 0x01;
        let s = format_thumbprint(&d);
        assert!(s.starts_with("AB:00:"));
        assert!(s.ends_with(":01"));
        assert_eq!(s.len(), 95);
        assert_eq!(crate::config::parse_thumbprint(&s), Ok(d));
    }
}
