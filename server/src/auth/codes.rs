//! Secrets sent to people: link tokens (verification, reset), 6-digit
//! sign-in codes and MFA recovery codes. Each is stored only as a keyed hash
//! (HMAC-SHA-256 with a server-side key), so a copy of the database alone
//! does not let anyone try them, not even the short numeric codes.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use rand::Rng;
use sha2::Sha256;
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// The base32 alphabet of recovery codes, lower-cased (no 0, 1, 8, 9: no
/// look-alikes of o, l, b, g).
const RECOVERY_ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz234567";

#[derive(Clone)]
pub(crate) struct CodeHasher {
    key: [u8; 32],
}

impl CodeHasher {
    /// A key derived from the server secret, for this use only.
    pub(crate) fn new(server_secret: &[u8]) -> Self {
        let mut mac = <HmacSha256 as Mac>::new_from_slice(server_secret).unwrap_or_else(|_| {
            // HMAC takes keys of any length; this cannot happen.
            <HmacSha256 as Mac>::new_from_slice(&[0u8; 32]).unwrap_or_else(|_| unreachable!())
        });
        mac.update(b"trellis one-time codes v1");
        Self { key: mac.finalize().into_bytes().into() }
    }

    /// The stored form of `secret`, bound to what it is for (`purpose`) and,
    /// for short codes, whose it is.
    pub(crate) fn hash(&self, purpose: &str, owner: impl std::fmt::Display, secret: &str) -> String {
        let owner = owner.to_string();
        let mut mac = <HmacSha256 as Mac>::new_from_slice(&self.key).unwrap_or_else(|_| unreachable!());
        for part in [purpose, owner.as_str(), secret] {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part.as_bytes());
        }
        hex(&mac.finalize().into_bytes())
    }
}

/// Compares two stored hashes in constant time.
pub(crate) fn same(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// A link token: 256 random bits, URL-safe.
pub(crate) fn new_link_token() -> String {
    let bytes: [u8; 32] = rand::random();
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A 6-digit code, uniformly drawn.
pub(crate) fn new_six_digit_code() -> String {
    format!("{:06}", rand::rng().random_range(0..1_000_000u32))
}

/// A recovery code as shown, `xxxxx-xxxxx` (50 random bits).
pub(crate) fn new_recovery_code() -> String {
    let mut rng = rand::rng();
    let mut s = String::with_capacity(11);
    for i in 0..10 {
        if i == 5 {
            s.push('-');
        }
        s.push(char::from(RECOVERY_ALPHABET[rng.random_range(0..RECOVERY_ALPHABET.len())]));
    }
    s
}

/// A recovery code as typed and parsed ([`OneTimeCode`](trellis_schema::values::OneTimeCode)
/// drops the dash and lower-cases).
pub(crate) fn normalize_recovery_code(shown: &str) -> String {
    shown.chars().filter(|c| *c != '-').collect()
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_have_their_shapes() {
        let c = new_six_digit_code();
        assert!(c.len() == 6 && c.bytes().all(|b| b.is_ascii_digit()));
        let r = new_recovery_code();
        assert_eq!(r.len(), 11);
        assert_eq!(normalize_recovery_code(&r).len(), 10);
        assert!(new_link_token().len() >= 43);
    }

    #[test]
    fn hashes_are_keyed_and_bound_to_purpose_and_owner() {
        let a = CodeHasher::new(b"secret one");
        let b = CodeHasher::new(b"secret two");
        assert_ne!(a.hash("login", "u1", "123456"), b.hash("login", "u1", "123456"));
        assert_ne!(a.hash("login", "u1", "123456"), a.hash("login", "u2", "123456"));
        assert_ne!(a.hash("login", "u1", "123456"), a.hash("reset", "u1", "123456"));
        assert!(same(&a.hash("login", "u1", "123456"), &a.hash("login", "u1", "123456")));
    }
}
