//! Handshake signatures made with RSA keys under 2048 bits: legacy vCenter and ESXi
//! certificates (and vcsim's built-in one, RSA-1024) that ring, rustls' crypto provider,
//! refuses ("BadSignature") whatever the trust policy.
//!
//! Used only where the certificate itself is already accepted without a CA — pinned by
//! its SHA-256 thumbprint (the pin authenticates it) or with verification off — so this
//! proves only that the server holds the key of that certificate. Verification against
//! CAs never comes here and stays strict. The caller warns that the key is weak.

use rsa::pkcs1v15::Pkcs1v15Sign;
use rsa::pss::Pss;
use rsa::{BigUint, RsaPublicKey};
use rustls::pki_types::CertificateDer;
use rustls::SignatureScheme;
use sha2::{Digest, Sha256, Sha384, Sha512};
use x509_parser::public_key::PublicKey;

/// Keys at least this long are ring's business; shorter ones are "weak" here.
pub(super) const STRONG_RSA_BITS: usize = 2048;
/// Shorter keys than this are refused even when pinned: 512-bit RSA is broken in hours.
pub(super) const MIN_RSA_BITS: usize = 1024;

/// Verifies `signature` over `message` with the certificate's RSA key when that key is
/// between `MIN_RSA_BITS` and `STRONG_RSA_BITS`. Returns the key's size on success;
/// `None` when the key is not a weak RSA key, the scheme is not RSA, or the signature
/// does not verify.
pub(super) fn verify(
    message: &[u8],
    cert: &CertificateDer<'_>,
    scheme: SignatureScheme,
    signature: &[u8],
) -> Option<usize> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    let PublicKey::RSA(k) = parsed.public_key().parsed().ok()? else {
        return None;
    };
    let bits = k.key_size();
    if !(MIN_RSA_BITS..STRONG_RSA_BITS).contains(&bits) {
        return None;
    }
    let key = RsaPublicKey::new(
        BigUint::from_bytes_be(k.modulus),
        BigUint::from_bytes_be(k.exponent),
    )
    .ok()?;
    let ok = match scheme {
        SignatureScheme::RSA_PKCS1_SHA256 => key.verify(
            Pkcs1v15Sign::new::<Sha256>(),
            &Sha256::digest(message),
            signature,
        ),
        SignatureScheme::RSA_PKCS1_SHA384 => key.verify(
            Pkcs1v15Sign::new::<Sha384>(),
            &Sha384::digest(message),
            signature,
        ),
        SignatureScheme::RSA_PKCS1_SHA512 => key.verify(
            Pkcs1v15Sign::new::<Sha512>(),
            &Sha512::digest(message),
            signature,
        ),
        // TLS 1.3 signs with PSS, salt as long as the hash (RFC 8446, 4.2.3).
        SignatureScheme::RSA_PSS_SHA256 => {
            key.verify(Pss::new::<Sha256>(), &Sha256::digest(message), signature)
        }
        SignatureScheme::RSA_PSS_SHA384 => {
            key.verify(Pss::new::<Sha384>(), &Sha384::digest(message), signature)
        }
        SignatureScheme::RSA_PSS_SHA512 => {
            key.verify(Pss::new::<Sha512>(), &Sha512::digest(message), signature)
        }
        _ => return None,
    };
    ok.ok().map(|()| bits)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsa::pkcs8::DecodePrivateKey;

    // A throwaway self-signed RSA-1024 certificate and its key (openssl req -newkey
    // rsa:1024), standing in for a legacy vCenter's.
    const CERT: &[u8] = include_bytes!("testdata/rsa1024-cert.der");
    const KEY: &[u8] = include_bytes!("testdata/rsa1024-key.der");

    fn sign_pkcs1(message: &[u8]) -> Vec<u8> {
        let key = rsa::RsaPrivateKey::from_pkcs8_der(KEY).expect("test key");
        key.sign(Pkcs1v15Sign::new::<Sha256>(), &Sha256::digest(message))
            .expect("sign")
    }

    #[test]
    fn a_weak_key_signature_verifies_and_reports_its_size() {
        let cert = CertificateDer::from(CERT);
        let sig = sign_pkcs1(b"handshake transcript");
        assert_eq!(
            verify(
                b"handshake transcript",
                &cert,
                SignatureScheme::RSA_PKCS1_SHA256,
                &sig
            ),
            Some(1024)
        );
    }

    #[test]
    fn a_wrong_signature_message_or_scheme_is_refused() {
        let cert = CertificateDer::from(CERT);
        let mut sig = sign_pkcs1(b"handshake transcript");
        assert_eq!(
            verify(
                b"another transcript",
                &cert,
                SignatureScheme::RSA_PKCS1_SHA256,
                &sig
            ),
            None
        );
        assert_eq!(
            verify(
                b"handshake transcript",
                &cert,
                SignatureScheme::RSA_PSS_SHA256,
                &sig
            ),
            None
        );
        assert_eq!(
            verify(
                b"handshake transcript",
                &cert,
                SignatureScheme::ECDSA_NISTP256_SHA256,
                &sig
            ),
            None
        );
        sig[10] ^= 1;
        assert_eq!(
            verify(
                b"handshake transcript",
                &cert,
                SignatureScheme::RSA_PKCS1_SHA256,
                &sig
            ),
            None
        );
    }

    #[test]
    fn garbage_is_no_certificate() {
        let cert = CertificateDer::from(&b"not a certificate"[..]);
        assert_eq!(
            verify(b"m", &cert, SignatureScheme::RSA_PKCS1_SHA256, b"sig"),
            None
        );
    }
}
