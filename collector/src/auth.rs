//! Agent authentication: bearer tokens, of which only the SHA-256 is stored (tokens are
//! 256-bit random strings, so a fast hash is enough: there is nothing to brute-force),
//! and client certificates verified by rustls against `client_ca_file`; people's
//! passwords (`password.rs`) and the limit on failed log-ins (`limit.rs`).

pub mod limit;
pub mod password;

use sha2::{Digest, Sha256};

/// A new random token: 64 hex digits (256 bits from the OS generator, through UUIDv4).
pub fn new_token() -> String {
    let a = uuid::Uuid::new_v4();
    let b = uuid::Uuid::new_v4();
    // A v4 UUID has 122 random bits; hashing two of them gives 256 evenly spread bits.
    let mut h = Sha256::new();
    h.update(a.as_bytes());
    h.update(b.as_bytes());
    hex(&h.finalize())
}

/// The stored form of a token.
pub fn token_hash(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// The bearer token of an `Authorization` header value.
pub fn bearer(header: &str) -> Option<&str> {
    let (scheme, token) = header.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
        .filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_hashed() {
        let a = new_token();
        assert_eq!(a.len(), 64);
        assert_ne!(a, new_token());
        assert_ne!(token_hash(&a), a);
        assert_eq!(token_hash(&a), token_hash(&a));
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("Bearer "), None);
    }
}
