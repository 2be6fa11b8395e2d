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

use chrono::NaiveDateTime;
use trellis_schema::access::{OrgRole, Permission};
use uuid::Uuid;

use crate::db::models::ApiKeyRow;

/// A key as the access check needs it.
#[derive(Debug, Clone)]
pub(crate) struct VerifiedKey {
    pub id: Uuid,
    pub org_id: Uuid,
    pub scopes: Vec<Permission>,
    pub created_by: Uuid,
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
    pub(crate) fn invalidate(&self, key_id: Uuid) {
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
