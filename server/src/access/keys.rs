//! Recently verified keys, in process: a call with a key seen in the last
//! second costs no database query. A change to a key (or to its holder's
//! membership) drops the entry here at once and, through the bus of change
//! notices, on every other replica; entries live one second anyway, so
//! without the bus (Redis away) another replica refuses a revoked key
//! within a second.
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
use super::usage::UsageRecorder;
use crate::cache::limits::{Mode, Outcome, Step, retry_after_ms};
use crate::cache::{Bus, Cache, Change};
use crate::db::models::{ApiKeyRow, now};
use crate::db::schema::{api_key_secrets, api_keys, org_members, users};
use crate::db::{Db, DbError, db_read};

/// API keys as credentials: the cache of verified keys, the limits (each
/// key's own, and lookups of unknown keys per address, shared by every
/// replica), and usage.
pub(crate) struct Keys {
    /// Recently verified API keys.
    pub cache: KeyCache,
    /// Where the limits are kept.
    limits: Arc<Cache>,
    /// Client addresses whose lookups of unknown keys spent their limit,
    /// until when: learnt from the shared limit when a lookup finds
    /// nothing, so a lookup of a real key costs no round trip to it.
    unknown_spent: Mutex<HashMap<IpAddr, Instant>>,
    /// API key usage, counted here and written in batches.
    pub usage: Arc<UsageRecorder>,
}

impl Keys {
    pub(crate) fn new(limits: Arc<Cache>) -> Self {
        Self { cache: KeyCache::new(limits.bus()), limits, unknown_spent: Mutex::default(), usage: Arc::default() }
    }

    /// Whether `ip` may look up one more key not in the cache.
    fn may_look_up(&self, ip: IpAddr, per_minute: u32) -> Result<(), ApiError> {
        let spent = self.unknown_spent.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match spent.get(&ip).map(|until| until.saturating_duration_since(Instant::now())) {
            Some(wait) if !wait.is_zero() => Err(unknown_keys_limited(wait, per_minute)),
            _ => Ok(()),
        }
    }

    /// Counts a lookup by `ip` that found nothing; once the shared limit is
    /// spent, this replica refuses that address's lookups until it refills.
    async fn looked_up_nothing(&self, ip: IpAddr, per_minute: u32) {
        let step = Step::new("unknown-keys", ip, per_minute, MINUTE);
        let outcome = self.limits.limits(std::slice::from_ref(&step), false).await.into_iter().flatten().next();
        if let Some(o) = outcome.filter(|o| o.allowed == 0 || o.remaining == 0) {
            let now = Instant::now();
            let mut spent = self.unknown_spent.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if spent.len() >= MAX_ENTRIES {
                spent.retain(|_, until| *until > now);
            }
            spent.insert(ip, now + o.retry_after);
        }
    }

    /// Takes up to `calls` calls from the key's allowance of `per_minute`,
    /// in one pass: the calls of one batch, which share it.
    pub(crate) async fn take(&self, key: ApiKeyId, per_minute: u32, calls: u32) -> Outcome {
        let step = Step::new("key", key, per_minute, MINUTE).cost(calls, Mode::UpTo);
        self.limits.limits(std::slice::from_ref(&step), false).await.into_iter().flatten().next().unwrap_or(Outcome {
            allowed: calls,
            retry_after: Duration::ZERO,
            remaining: 0,
        })
    }

    /// Calls the key could make now without being refused.
    pub(crate) async fn remaining(&self, key: ApiKeyId, per_minute: u32) -> u32 {
        let step = Step::new("key", key, per_minute, MINUTE).cost(1, Mode::Peek);
        self.limits.limits(&[step], false).await.into_iter().flatten().next().map_or(per_minute, |o| o.remaining)
    }
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

pub(crate) struct KeyCache {
    entries: RwLock<HashMap<String, (Lookup, Instant)>>,
    /// Lookups under way, by secret hash: later callers wait for the first.
    inflight: Mutex<HashMap<String, Arc<tokio::sync::OnceCell<Lookup>>>>,
    /// Bumped by every invalidation, so a lookup that began before a change
    /// is not cached after it.
    generation: AtomicU64,
    /// Where changes are told to the other replicas.
    bus: Bus,
    /// Lookups answered from the cache, and those that were not (for
    /// `performance.report`).
    pub hits: AtomicU64,
    pub misses: AtomicU64,
}

impl KeyCache {
    pub(crate) fn new(bus: Bus) -> Self {
        Self {
            entries: RwLock::default(),
            inflight: Mutex::default(),
            generation: AtomicU64::new(0),
            bus,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

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
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(l);
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
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

    /// Drops every cached secret of `key_id` (after a revoke, rotate or
    /// update), here and on every other replica.
    pub(crate) fn invalidate(&self, key_id: ApiKeyId) {
        self.invalidate_here(key_id);
        self.bus.publish(Change::KeyChanged(key_id));
    }

    /// Drops every cached secret of `key_id` in this process (a notice from
    /// another replica).
    pub(crate) fn invalidate_here(&self, key_id: ApiKeyId) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.inflight.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clear();
        let mut map = self.entries.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        map.retain(|_, (l, _)| l.as_ref().is_none_or(|k| k.id != key_id));
    }

    /// Drops every cached key (after a membership change, which may narrow
    /// what keys made by that member may do), here and on every other replica.
    pub(crate) fn clear(&self) {
        self.clear_here();
        self.bus.publish(Change::MembersChanged);
    }

    /// Drops every cached key in this process (a notice from another
    /// replica, or a resync after notices may have been missed).
    pub(crate) fn clear_here(&self) {
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
                keys.may_look_up(ip, per_minute)?;
            }
            let found = lookup_secret(db, secret_hash).await.map_err(db_error)?;
            if let (None, Some(ip)) = (&found, ip) {
                // Counted; the refusal comes with the next lookup.
                keys.looked_up_nothing(ip, per_minute).await;
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

fn unknown_keys_limited(wait: Duration, per_minute: u32) -> ApiError {
    crate::observe::rate_limited("unknown_api_keys");
    ApiError::new(Reason::RateLimited)
        .message(format!("too many unknown API keys: at most {per_minute} a minute from one address"))
        .with("retryAfterMs", retry_after_ms(wait))
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
