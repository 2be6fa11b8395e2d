//! Access tokens (JWT, HS256) and refresh tokens (random, stored as hashes).

use std::collections::HashMap;
use std::sync::{PoisonError, RwLock};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use trellis_schema::Reason;
use trellis_schema::ids::{SessionId, UserId};

const ISSUER: &str = "trellis";
const AUDIENCE: &str = "trellis-api";
/// Clock skew tolerated between replicas, in seconds.
pub(crate) const LEEWAY_SECS: u64 = 5;

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Claims {
    pub sub: UserId,
    pub sid: SessionId,
    pub iat: u64,
    pub exp: u64,
    pub iss: String,
    pub aud: String,
}

pub(crate) struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    pub(crate) access_ttl: Duration,
    verified: VerifiedCache,
}

/// Tokens whose signature and claims were already checked, keyed by the whole
/// token text: a token changed in any byte misses and is verified in full.
/// Expiry is still checked on every use. Bounded: when full it starts over.
struct VerifiedCache {
    entries: RwLock<HashMap<Box<str>, (UserId, SessionId, u64)>>,
}

const VERIFIED_CACHE_MAX: usize = 16_384;

impl VerifiedCache {
    fn get(&self, token: &str) -> Option<(UserId, SessionId, u64)> {
        self.entries.read().unwrap_or_else(PoisonError::into_inner).get(token).copied()
    }

    fn put(&self, token: &str, claims: &Claims) {
        let mut map = self.entries.write().unwrap_or_else(PoisonError::into_inner);
        if map.len() >= VERIFIED_CACHE_MAX {
            map.clear();
        }
        map.insert(token.into(), (claims.sub, claims.sid, claims.exp));
    }
}

impl TokenKeys {
    pub(crate) fn new(secret: &[u8], access_ttl: Duration) -> Self {
        // Only HS256 is accepted, whatever the token's header says.
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = LEEWAY_SECS;
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "sub", "iss", "aud"]);
        validation.validate_exp = true;
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            access_ttl,
            verified: VerifiedCache { entries: RwLock::new(HashMap::new()) },
        }
    }

    pub(crate) fn issue(&self, user_id: UserId, session_id: SessionId) -> anyhow::Result<String> {
        let iat = jsonwebtoken::get_current_timestamp();
        let claims = Claims {
            sub: user_id,
            sid: session_id,
            iat,
            exp: iat + self.access_ttl.as_secs(),
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
        };
        Ok(jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)?)
    }

    /// Checks signature, algorithm, issuer, audience and expiry; returns the
    /// user and session the token is for.
    pub(crate) fn verify(&self, token: &str) -> Result<(UserId, SessionId), Reason> {
        self.verify_until(token).map(|(sub, sid, _)| (sub, sid))
    }

    /// [`Self::verify`], also returning the token's `exp` (Unix seconds):
    /// the token is accepted through second `exp + LEEWAY_SECS`.
    pub(crate) fn verify_until(&self, token: &str) -> Result<(UserId, SessionId, u64), Reason> {
        let now = jsonwebtoken::get_current_timestamp();
        if let Some((sub, sid, exp)) = self.verified.get(token) {
            return if now <= exp + LEEWAY_SECS { Ok((sub, sid, exp)) } else { Err(Reason::TokenExpired) };
        }
        match jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation) {
            Ok(data) => {
                if data.claims.iat > now + LEEWAY_SECS {
                    return Err(Reason::TokenInvalid);
                }
                self.verified.put(token, &data.claims);
                Ok((data.claims.sub, data.claims.sid, data.claims.exp))
            }
            Err(e) if matches!(e.kind(), ErrorKind::ExpiredSignature) => Err(Reason::TokenExpired),
            Err(_) => Err(Reason::TokenInvalid),
        }
    }
}

/// A new refresh token: 256 random bits.
pub(crate) fn new_refresh_token() -> String {
    let bytes: [u8; 32] = rand::random();
    format!("rt_{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// What is stored of a secret token: its SHA-256, hex.
pub(crate) fn token_hash(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    let mut out = String::with_capacity(64);
    for b in digest {
        use std::fmt::Write;
        let _ = write!(out, "{b:02x}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_verifies_only_with_its_own_secret() {
        let keys = TokenKeys::new(b"0123456789abcdef0123456789abcdef", Duration::from_secs(60));
        let other = TokenKeys::new(b"fedcba9876543210fedcba9876543210", Duration::from_secs(60));
        let (u, s) = (UserId::new(), SessionId::new());
        let t = keys.issue(u, s).expect("issue");
        assert_eq!(keys.verify(&t), Ok((u, s)));
        assert_eq!(keys.verify(&t), Ok((u, s)), "a second use (from the cache) agrees");
        assert_eq!(other.verify(&t).err(), Some(Reason::TokenInvalid));
    }

    #[test]
    fn refresh_tokens_are_unique_and_hashes_are_stable() {
        let (a, b) = (new_refresh_token(), new_refresh_token());
        assert_ne!(a, b);
        assert!(a.len() >= 40);
        assert_eq!(token_hash(&a), token_hash(&a));
        assert_ne!(token_hash(&a), token_hash(&b));
    }
}
