//! Recently verified keys, in process: a call with a key seen in the last
//! second costs no database query. Entries live one second, so a key revoked
//! or changed on another replica is refused there within a second; on this
//! replica the change drops the entry at once.
//!
//! Lookups are single-flight: the calls of a batch start at once, and all
//! that present the same secret while it is being looked up wait for that
//! one lookup (so a batch of 100 calls with a made-up key costs one query,
//! not 100).

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use std::net::IpAddr;

use chrono::NaiveDateTime;
use trellis_schema::access::{OrgRole, Permission};
use trellis_schema::ids::{ApiKeyId, OrgId, UserId};
use trellis_schema::{ApiError, Reason};

use super::db_error;
use super::limiter::{KeyLimiter, Limited};
use super::usage::UsageRecorder;
use crate::db::models::{ApiKeyRow, now};
use crate::db::schema::{api_key_secrets, api_keys, org_members, users};
use crate::db::{Db, DbError, db_read};

/// API keys as credentials: the cache of verified keys, each key's own
/// limit, the limit on lookups of unknown keys per address, and usage.
pub(crate) struct Keys {
    /// Recently verified API keys.
    pub cache: KeyCache,
    /// Each API key's own calls-per-minute limit.
    pub limiter: KeyLimiter<ApiKeyId>,
    /// Lookups of unknown API keys, per client IP.
    pub unknown: KeyLimiter<IpAddr>,
    /// API key usage, counted here and written in batches.
    pub usage: Arc<UsageRecorder>,
}

/// A key as the access check needs it.
#[derive(Debug, Clone)]
pub(crate) struct VerifiedKey {
    pub id: ApiKeyId,
    pub org_id: OrgId,
    pub scopes: Vec<Permission>,
    pub created_by: UserId,
    /// The holder (`created_by`: who made the key or last rotated it): their
    /// role in the key's organization now (`None`: no longer a member), and
    /// whether their account is disabled.
    pub creator_role: Option<OrgRole>,
    pub creator_disabled: bool,
    pub expires_at: Option<NaiveDateTime>,
    pub revoked_at: Option<NaiveDateTime>,
    /// When this secret stops working (a rotated-out secret).
    pub secret_expires_at: Option<NaiveDateTime>,
    pub rate_limit_per_minute: Option<u32>,
    pub row: ApiKeyRow,
}

/// What a secret's hash was found to be: a key, or nothing.
pub(crate) type Lookup = Option<Arc<VerifiedKey>>;

const TTL: Duration = Duration::from_secs(1);
const MAX_ENTRIES: usize = 100_000;

#[derive(Default)]
pub(crate) struct KeyCache {
    entries: RwLock<HashMap<String, (Lookup, Instant)>>,
    /// Lookups under way, by secret hash: later callers wait for the first.
    inflight: Mutex<HashMap<String, Arc<tokio::sync::OnceCell<Lookup>>>>,
    /// Bumped by every invalidation, so a lookup that began before a change
    /// is not cached after it.
    generation: AtomicU64,
}

impl KeyCache {
    pub(crate) fn get(&self, secret_hash: &str) -> Option<Lookup> {
        let map = self.entries.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        map.get(secret_hash).filter(|(_, at)| at.elapsed() < TTL).map(|(l, _)| l.clone())
    }

    pub(crate) fn put(&self, secret_hash: String, lookup: Lookup) {
        let mut map = self.entries.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        if map.len() >= MAX_ENTRIES {
            map.retain(|_, (_, at)| at.elapsed() < TTL);
            if map.len() >= MAX_ENTRIES {
                map.clear();
            }
        }
        map.insert(secret_hash, (lookup, Instant::now()));
    }

    /// The cached lookup of `secret_hash`, else the result of `load`, run
    /// once however many callers ask at the same time. `load`'s errors are
    /// not cached (the next caller runs its own `load`).
    pub(crate) async fn get_or_load<E, F, Fut>(&self, secret_hash: &str, load: F) -> Result<Lookup, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Lookup, E>>,
    {
        if let Some(l) = self.get(secret_hash) {
            return Ok(l);
        }
        let cell = {
            let mut inflight = self.inflight.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            inflight.entry(secret_hash.to_owned()).or_default().clone()
        };
        let generation = self.generation.load(Ordering::SeqCst);
        let result = cell
            .get_or_try_init(|| async {
                let l = load().await?;
                if self.generation.load(Ordering::SeqCst) == generation {
                    self.put(secret_hash.to_owned(), l.clone());
                }
                Ok(l)
            })
            .await
            .cloned();
        let mut inflight = self.inflight.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if inflight.get(secret_hash).is_some_and(|c| Arc::ptr_eq(c, &cell)) {
            inflight.remove(secret_hash);
        }
        result
    }

    /// Drops every cached secret of `key_id` (after a revoke, rotate or update).
    pub(crate) fn invalidate(&self, key_id: ApiKeyId) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.inflight.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clear();
        let mut map = self.entries.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        map.retain(|_, (l, _)| l.as_ref().is_none_or(|k| k.id != key_id));
    }

    /// Drops every cached key (after a membership change, which may narrow
    /// what keys made by that member may do).
    pub(crate) fn clear(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.inflight.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clear();
        self.entries.write().unwrap_or_else(std::sync::PoisonError::into_inner).clear();
    }
}

/// Finds the key of a presented secret (in the cache, else the database:
/// one lookup, shared by every call that presents the secret meanwhile) and
/// checks that it is live. With `ip`, lookups that find nothing are limited
/// per client IP (`TRELLIS_API_KEY_FAILURES_PER_IP` a minute): over it, keys
/// not in the cache answer RATE_LIMITED without a lookup.
pub(crate) async fn verify_key(
    keys: &Keys,
    db: &Db,
    per_minute: u32,
    secret_hash: &str,
    ip: Option<IpAddr>,
) -> Result<Arc<VerifiedKey>, ApiError> {
    let ip = ip.filter(|_| per_minute > 0).map(crate::net::limit_bucket);
    let lookup = keys
        .cache
        .get_or_load(secret_hash, || async {
            if let Some(ip) = ip {
                keys.unknown.peek_per(&ip, per_minute, MINUTE).map_err(|l| unknown_keys_limited(&l, per_minute))?;
            }
            let found = lookup_secret(db, secret_hash).await.map_err(db_error)?;
            if let (None, Some(ip)) = (&found, ip) {
                // Counted; the refusal comes with the next lookup.
                let _ = keys.unknown.check_per(&ip, per_minute, MINUTE);
            }
            Ok::<_, ApiError>(found)
        })
        .await?;
    let key = lookup.ok_or_else(|| ApiError::new(Reason::ApiKeyInvalid))?;
    let t = now();
    if key.revoked_at.is_some() {
        return Err(ApiError::new(Reason::ApiKeyRevoked));
    }
    if key.expires_at.is_some_and(|e| e <= t) {
        return Err(ApiError::new(Reason::ApiKeyExpired));
    }
    if key.secret_expires_at.is_some_and(|e| e <= t) {
        return Err(
            ApiError::new(Reason::ApiKeyRevoked).message("this secret was rotated and its grace period is over")
        );
    }
    Ok(key)
}

const MINUTE: Duration = Duration::from_secs(60);

fn unknown_keys_limited(l: &Limited, per_minute: u32) -> ApiError {
    ApiError::new(Reason::RateLimited)
        .message(format!("too many unknown API keys: at most {per_minute} a minute from one address"))
        .with("retryAfterMs", l.retry_after_ms())
        .with("limit", per_minute)
}

/// The scopes of a key as stored (comma-separated).
pub(crate) fn parse_scopes(text: &str) -> Vec<Permission> {
    text.split(',').filter_map(|s| Permission::ALL.iter().copied().find(|p| p.as_str() == s)).collect()
}

/// The key a secret belongs to, with its holder's standing now (their role
/// in the key's organization and whether their account is disabled), in one
/// query.
async fn lookup_secret(db: &Db, secret_hash: &str) -> Result<Option<Arc<VerifiedKey>>, DbError> {
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;

    type Found = (ApiKeyRow, Option<NaiveDateTime>, Option<String>, Option<bool>);
    let found: Option<Found> = db_read!(db, |conn| api_key_secrets::table
        .inner_join(api_keys::table)
        .left_join(
            org_members::table
                .on(org_members::org_id.eq(api_keys::org_id).and(org_members::user_id.eq(api_keys::created_by))),
        )
        .left_join(users::table.on(users::id.eq(api_keys::created_by)))
        .filter(api_key_secrets::secret_hash.eq(secret_hash))
        .select((
            ApiKeyRow::as_select(),
            api_key_secrets::expires_at,
            org_members::role.nullable(),
            users::disabled.nullable(),
        ))
        .first(conn)
        .await
        .optional()
        .map_err(DbError::from)?);
    let Some((row, secret_expires_at, role, disabled)) = found else { return Ok(None) };
    Ok(Some(Arc::new(VerifiedKey {
        id: row.id,
        org_id: row.org_id,
        scopes: parse_scopes(&row.scopes),
        created_by: row.created_by,
        creator_role: role.as_deref().and_then(OrgRole::parse),
        creator_disabled: disabled.unwrap_or(true),
        expires_at: row.expires_at,
        revoked_at: row.revoked_at,
        secret_expires_at,
        rate_limit_per_minute: row.rate_limit_per_minute.and_then(|n| u32::try_from(n).ok()).filter(|n| *n > 0),
        row,
    })))
}
