//! Recently verified keys, in process: a call with a key seen in the last
//! second costs no database query. Entries live one second, so a key revoked
//! or changed on another replica is refused there within a second; on this
//! replica the change drops the entry at once.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
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
    /// The creator's role in the key's organization now (`None`: no longer a
    /// member), and whether their account is disabled.
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

    /// Drops every cached secret of `key_id` (after a revoke, rotate or update).
    pub(crate) fn invalidate(&self, key_id: Uuid) {
        let mut map = self.entries.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        map.retain(|_, (l, _)| l.as_ref().is_none_or(|k| k.id != key_id));
    }

    /// Drops every cached key (after a membership change, which may narrow
    /// what keys made by that member may do).
    pub(crate) fn clear(&self) {
        self.entries.write().unwrap_or_else(std::sync::PoisonError::into_inner).clear();
    }
}
