//! Secrets the server must read back (TOTP secrets) are stored encrypted:
//! XChaCha20-Poly1305 with a random 192-bit nonce, bound to their owner (the
//! user id is the associated data, so a sealed secret copied to another row
//! does not open), as `enc:<key id>:<base64 of nonce and ciphertext>`.
//!
//! The keys come from `TRELLIS_ENCRYPTION_KEYS` (`id:base64key,...`): the
//! first seals, every one opens, so a key is rotated by putting a new one
//! first and keeping the old one after it until [`reseal_all`] (run at
//! start) has moved every row to the new one. Unset: one key, id `k0`,
//! derived from the server secret. Rows written before encryption (plain
//! base64) are still read, and sealed at the next start.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use trellis_schema::ids::UserId;

use crate::db::schema::users;
use crate::db::{Db, DbError, db_read, db_run};

const PREFIX: &str = "enc:";
const NONCE_LEN: usize = 24;
/// The key id of the key derived from the server secret.
pub(crate) const DERIVED_KEY_ID: &str = "k0";

pub(crate) struct SecretBox {
    /// The first seals; all open.
    keys: Vec<(String, XChaCha20Poly1305)>,
}

impl fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids: Vec<&str> = self.keys.iter().map(|(id, _)| id.as_str()).collect();
        f.debug_struct("SecretBox").field("key_ids", &ids).finish()
    }
}

impl SecretBox {
    /// The keys of `TRELLIS_ENCRYPTION_KEYS`, or one derived from the server
    /// secret when that is unset or empty.
    pub(crate) fn from_setting(setting: Option<&str>, server_secret: &[u8]) -> anyhow::Result<Self> {
        let setting = setting.map(str::trim).filter(|s| !s.is_empty());
        let Some(setting) = setting else {
            let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(server_secret)
                .map_err(|_| anyhow::anyhow!("the server secret cannot key HMAC"))?;
            mac.update(b"trellis secrets at rest v1");
            let key: [u8; 32] = mac.finalize().into_bytes().into();
            return Ok(Self { keys: vec![(DERIVED_KEY_ID.to_owned(), cipher(key))] });
        };
        let mut keys = Vec::new();
        for entry in setting.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (id, b64) = entry.split_once(':').ok_or_else(|| {
                anyhow::anyhow!("TRELLIS_ENCRYPTION_KEYS: each entry is `id:base64key` (an entry has no `:`)")
            })?;
            let id = id.trim();
            if id.is_empty()
                || id.len() > 32
                || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                anyhow::bail!("TRELLIS_ENCRYPTION_KEYS: a key id is 1 to 32 letters, digits, `-` or `_`: {id:?}");
            }
            let bytes = STANDARD
                .decode(b64.trim())
                .map_err(|e| anyhow::anyhow!("TRELLIS_ENCRYPTION_KEYS: key {id} is not base64: {e}"))?;
            let key: [u8; 32] = bytes.try_into().map_err(|b: Vec<u8>| {
                anyhow::anyhow!("TRELLIS_ENCRYPTION_KEYS: key {id} has {} bytes, not 32", b.len())
            })?;
            if keys.iter().any(|(k, _)| k == id) {
                anyhow::bail!("TRELLIS_ENCRYPTION_KEYS: key id {id} appears twice");
            }
            keys.push((id.to_owned(), cipher(key)));
        }
        if keys.is_empty() {
            anyhow::bail!("TRELLIS_ENCRYPTION_KEYS names no key");
        }
        Ok(Self { keys })
    }

    /// The id of the key that seals.
    pub(crate) fn current_id(&self) -> &str {
        &self.keys[0].0
    }

    /// `plaintext` sealed under the first key, bound to `owner`.
    pub(crate) fn seal(&self, plaintext: &[u8], owner: UserId) -> anyhow::Result<String> {
        let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
        self.seal_bound(plaintext, owner.uuid().hyphenated().encode_lower(&mut buf).as_bytes())
    }

    /// The secret stored as `stored` for `owner`: sealed under any of the
    /// keys, or plain base64 from before encryption.
    pub(crate) fn open(&self, stored: &str, owner: UserId) -> anyhow::Result<Vec<u8>> {
        let Some(rest) = stored.strip_prefix(PREFIX) else {
            return STANDARD.decode(stored).map_err(|e| anyhow::anyhow!("a stored secret is not base64: {e}"));
        };
        let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
        self.open_sealed(rest, owner.uuid().hyphenated().encode_lower(&mut buf).as_bytes())
    }

    /// `plaintext` sealed under the first key, bound to `aad` (the row it
    /// belongs to, with its purpose: a value copied elsewhere does not open).
    pub(crate) fn seal_bound(&self, plaintext: &[u8], aad: &[u8]) -> anyhow::Result<String> {
        let (id, cipher) = &self.keys[0];
        let nonce_bytes: [u8; NONCE_LEN] = rand::random();
        let nonce = XNonce::from(nonce_bytes);
        let sealed = cipher
            .encrypt(&nonce, Payload { msg: plaintext, aad })
            .map_err(|_| anyhow::anyhow!("failed to encrypt a secret"))?;
        let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
        out.extend_from_slice(&nonce_bytes);
        out.extend_from_slice(&sealed);
        Ok(format!("{PREFIX}{id}:{}", STANDARD.encode(out)))
    }

    /// A value sealed by [`SecretBox::seal_bound`] with the same `aad`.
    pub(crate) fn open_bound(&self, stored: &str, aad: &[u8]) -> anyhow::Result<Vec<u8>> {
        let rest = stored.strip_prefix(PREFIX).ok_or_else(|| anyhow::anyhow!("a secret is stored unsealed"))?;
        self.open_sealed(rest, aad)
    }

    fn open_sealed(&self, rest: &str, aad: &[u8]) -> anyhow::Result<Vec<u8>> {
        let (id, b64) = rest.split_once(':').ok_or_else(|| anyhow::anyhow!("a sealed secret has no key id"))?;
        let (_, cipher) =
            self.keys.iter().find(|(k, _)| k == id).ok_or_else(|| {
                anyhow::anyhow!("a secret is sealed under key {id}, which TRELLIS_ENCRYPTION_KEYS lacks")
            })?;
        let bytes = STANDARD.decode(b64).map_err(|e| anyhow::anyhow!("a sealed secret is not base64: {e}"))?;
        if bytes.len() < NONCE_LEN {
            anyhow::bail!("a sealed secret is too short");
        }
        let (nonce, sealed) = bytes.split_at(NONCE_LEN);
        let nonce = XNonce::try_from(nonce).map_err(|_| anyhow::anyhow!("a sealed secret's nonce is malformed"))?;
        cipher
            .decrypt(&nonce, Payload { msg: sealed, aad })
            .map_err(|_| anyhow::anyhow!("a sealed secret does not open under key {id} (wrong key, or not this row's)"))
    }

    /// Whether `stored` is sealed under the first key.
    pub(crate) fn is_current(&self, stored: &str) -> bool {
        stored.strip_prefix(PREFIX).and_then(|r| r.split_once(':')).is_some_and(|(id, _)| id == self.current_id())
    }
}

fn cipher(key: [u8; 32]) -> XChaCha20Poly1305 {
    XChaCha20Poly1305::new(&key.into())
}

/// Seals, under the first key, every TOTP secret (confirmed or pending)
/// stored readable or under an older key. Each row is rewritten only if it
/// still holds what was read, so a concurrent enrolment is never undone.
/// Returns how many values were rewritten.
pub(crate) async fn reseal_all(db: &Db, secrets: &SecretBox) -> anyhow::Result<usize> {
    type Row = (UserId, Option<String>, Option<String>);
    let rows: Vec<Row> = db_read!(db, |conn| users::table
        .filter(users::totp_secret.is_not_null().or(users::totp_pending_secret.is_not_null()))
        .select((users::id, users::totp_secret, users::totp_pending_secret))
        .load(conn)
        .await
        .map_err(DbError::from)?);
    let mut n = 0;
    for (id, secret, pending) in rows {
        for (stored, pending_column) in [(secret, false), (pending, true)] {
            let Some(stored) = stored.filter(|s| !secrets.is_current(s)) else { continue };
            let plain = secrets.open(&stored, id)?;
            let sealed = secrets.seal(&plain, id)?;
            let written = if pending_column {
                db_run!(db, |conn| diesel::update(
                    users::table.filter(users::id.eq(&id)).filter(users::totp_pending_secret.eq(&stored))
                )
                .set(users::totp_pending_secret.eq(&sealed))
                .execute(conn)
                .await
                .map_err(DbError::from)?)
            } else {
                db_run!(db, |conn| diesel::update(
                    users::table.filter(users::id.eq(&id)).filter(users::totp_secret.eq(&stored))
                )
                .set(users::totp_secret.eq(&sealed))
                .execute(conn)
                .await
                .map_err(DbError::from)?)
            };
            n += written;
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_secrets_open_only_for_their_owner_and_under_a_known_key() {
        let derived = SecretBox::from_setting(None, b"server secret").expect("derived");
        let (u1, u2) = (UserId::new(), UserId::new());
        let sealed = derived.seal(b"0123456789abcdefghij", u1).expect("sealed");
        assert!(sealed.starts_with("enc:k0:"));
        assert_eq!(derived.open(&sealed, u1).expect("opens"), b"0123456789abcdefghij");
        assert!(derived.open(&sealed, u2).is_err(), "bound to its owner");
        let k1 = STANDARD.encode([1u8; 32]);
        let rotated = SecretBox::from_setting(Some(&format!("k1:{k1}")), b"server secret").expect("k1");
        assert!(rotated.open(&sealed, u1).is_err(), "k0 is not configured");
        assert_eq!(derived.open(&STANDARD.encode(b"legacy"), u1).expect("legacy"), b"legacy");
        assert!(SecretBox::from_setting(Some("k1:c2hvcnQ="), b"s").is_err(), "a short key is refused");
        assert!(SecretBox::from_setting(Some("nocolon"), b"s").is_err());
    }
}
