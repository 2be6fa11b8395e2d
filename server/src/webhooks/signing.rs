//! Webhook secrets and signatures, as the Standard Webhooks specification
//! says: a secret is `whsec_` and the base64 of random bytes (the HMAC key is
//! the decoded bytes), and a delivery's `webhook-signature` is
//! `v1,<base64 of HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`, one per
//! secret in force, separated by spaces.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

const PREFIX: &str = "whsec_";

/// A new secret: `whsec_` and the base64 of 32 random bytes.
pub(crate) fn generate() -> String {
    let key: [u8; 32] = rand::random();
    format!("{PREFIX}{}", STANDARD.encode(key))
}

/// The HMAC key of a secret.
pub(crate) fn key_of(secret: &str) -> anyhow::Result<Vec<u8>> {
    let b64 = secret.strip_prefix(PREFIX).unwrap_or(secret);
    STANDARD.decode(b64).map_err(|e| anyhow::anyhow!("a webhook secret is not base64: {e}"))
}

/// The `webhook-signature` header for a message signed by each of `keys`.
pub(crate) fn signature_header(keys: &[Vec<u8>], msg_id: &str, timestamp: i64, body: &str) -> String {
    keys.iter()
        .map(|key| {
            let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key");
            mac.update(msg_id.as_bytes());
            mac.update(b".");
            mac.update(timestamp.to_string().as_bytes());
            mac.update(b".");
            mac.update(body.as_bytes());
            format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks specification's test vectors.
    #[test]
    fn signs_as_the_specification_says() {
        let key = key_of("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").expect("key");
        let header = signature_header(&[key], "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, r#"{"test": 2432232314}"#);
        assert_eq!(header, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn secrets_are_32_random_bytes() {
        let s = generate();
        assert_eq!(key_of(&s).expect("key").len(), 32);
        assert_ne!(s, generate());
    }
}
