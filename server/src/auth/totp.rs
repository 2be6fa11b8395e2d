//! Time-based one-time passwords (RFC 6238: HMAC-SHA-1, 30-second steps,
//! 6 digits), as authenticator apps make them.

use hmac::{Hmac, Mac};
use sha1::Sha1;
use subtle::ConstantTimeEq;

const STEP_SECS: u64 = 30;
const DIGITS: u32 = 6;
/// Steps either side of now that are accepted, for clock drift.
const WINDOW: i64 = 1;

/// The 6-digit code of `secret` at time step `step` (RFC 4226 HOTP).
pub(crate) fn code_at(secret: &[u8], step: u64) -> String {
    let Ok(mut mac) = <Hmac<Sha1> as Mac>::new_from_slice(secret) else { return String::new() };
    mac.update(&step.to_be_bytes());
    let hash = mac.finalize().into_bytes();
    let offset = usize::from(hash[hash.len() - 1] & 0x0f);
    let binary = (u32::from(hash[offset]) & 0x7f) << 24
        | u32::from(hash[offset + 1]) << 16
        | u32::from(hash[offset + 2]) << 8
        | u32::from(hash[offset + 3]);
    format!("{:06}", binary % 10u32.pow(DIGITS))
}

/// The time step of a Unix time in seconds.
pub(crate) fn step_of(unix_secs: u64) -> u64 {
    unix_secs / STEP_SECS
}

pub(crate) fn current_step() -> u64 {
    step_of(u64::try_from(chrono::Utc::now().timestamp()).unwrap_or(0))
}

/// The step whose code `code` is, within the window around `now_step`.
/// The caller must still refuse a step at or before the last one accepted.
pub(crate) fn matching_step(secret: &[u8], code: &str, now_step: u64) -> Option<u64> {
    let mut found = None;
    // Every candidate is compared, in constant time, so the time taken does
    // not tell which step matched.
    for delta in -WINDOW..=WINDOW {
        let Some(step) = now_step.checked_add_signed(delta) else { continue };
        if bool::from(code_at(secret, step).as_bytes().ct_eq(code.as_bytes())) {
            found = Some(step);
        }
    }
    found
}

/// RFC 4648 base32 without padding, as authenticator apps expect.
pub(crate) fn base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &b in bytes {
        buffer = (buffer << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

/// `otpauth://` URL for a QR code.
pub(crate) fn otpauth_url(secret: &[u8], account: &str) -> String {
    let label = percent_encode(&format!("Trellis:{account}"));
    format!("otpauth://totp/{label}?secret={}&issuer=Trellis&algorithm=SHA1&digits=6&period=30", base32(secret))
}

fn percent_encode(s: &str) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'@' | b':') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B, SHA-1, last six digits.
    #[test]
    fn rfc6238_test_vectors() {
        let secret = b"12345678901234567890";
        for (time, code) in [
            (59, "287082"),
            (1_111_111_109, "081804"),
            (1_111_111_111, "050471"),
            (1_234_567_890, "005924"),
            (2_000_000_000, "279037"),
            (20_000_000_000, "353130"),
        ] {
            assert_eq!(code_at(secret, step_of(time)), code, "at {time}");
        }
    }

    #[test]
    fn accepts_one_step_either_side_only() {
        let secret = b"12345678901234567890";
        let now = 1000;
        for step in [now - 1, now, now + 1] {
            assert_eq!(matching_step(secret, &code_at(secret, step), now), Some(step));
        }
        assert_eq!(matching_step(secret, &code_at(secret, now + 2), now), None);
        assert_eq!(matching_step(secret, &code_at(secret, now - 2), now), None);
    }

    #[test]
    fn base32_matches_rfc4648() {
        assert_eq!(base32(b"foobar"), "MZXW6YTBOI");
        assert_eq!(base32(b"f"), "MY");
    }
}
