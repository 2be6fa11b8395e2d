//! The key format: `trl_<40 base62 characters of CSPRNG output>_<6 base62
//! characters of CRC32>`. The `trl_` prefix lets secret scanners recognise a
//! leaked key; the checksum lets anyone (the server first) refuse a mistyped
//! or made-up key without a database query.

use rand::Rng;

const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const PREFIX: &str = "trl_";
const RANDOM_CHARS: usize = 40;
const CHECKSUM_CHARS: usize = 6;
/// How much of a key is kept in clear to tell keys apart (`trl_AbCdEfGh`).
const DISPLAY_CHARS: usize = PREFIX.len() + 8;

/// A new key (shown once) and its display prefix.
pub(crate) fn generate() -> (String, String) {
    let mut rng = rand::rng();
    let body: String = (0..RANDOM_CHARS).map(|_| char::from(BASE62[rng.random_range(0..BASE62.len())])).collect();
    let head = format!("{PREFIX}{body}");
    let key = format!("{head}_{}", base62_fixed(crc32(head.as_bytes()), CHECKSUM_CHARS));
    let display = key[..DISPLAY_CHARS].to_owned();
    (key, display)
}

/// Whether `key` has the shape of a key and its checksum matches.
pub(crate) fn well_formed(key: &str) -> bool {
    let Some(rest) = key.strip_prefix(PREFIX) else { return false };
    let Some((body, checksum)) = rest.rsplit_once('_') else { return false };
    body.len() >= 32
        && body.len() <= 128
        && checksum.len() == CHECKSUM_CHARS
        && body.bytes().all(|b| b.is_ascii_alphanumeric())
        && base62_fixed(crc32(&key.as_bytes()[..PREFIX.len() + body.len()]), CHECKSUM_CHARS) == checksum
}

fn base62_fixed(mut n: u32, width: usize) -> String {
    let mut out = vec![b'0'; width];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    String::from_utf8(out).unwrap_or_default()
}

/// CRC-32 (IEEE 802.3, as zlib computes it).
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn generated_keys_verify_and_a_changed_character_does_not() {
        for _ in 0..100 {
            let (key, display) = generate();
            assert!(key.starts_with("trl_") && key.len() == 4 + 40 + 1 + 6, "{key}");
            assert!(key.starts_with(&display));
            assert!(well_formed(&key));
            let mut bad = key.clone().into_bytes();
            bad[10] = if bad[10] == b'a' { b'b' } else { b'a' };
            assert!(!well_formed(&String::from_utf8(bad).expect("ascii")));
        }
        assert!(!well_formed("trl_short_AAAAAA"));
        assert!(!well_formed("sk_live_whatever"));
    }
}
