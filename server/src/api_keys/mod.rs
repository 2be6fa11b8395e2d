//! `apiKeys.*`: keys that act for an organization within their scopes and
//! never beyond their creator's permissions; the key format, the cache that
//! keeps verification off the database, per-key limits and usage.

pub(crate) mod cache;
mod create;
mod get;
pub(crate) mod limiter;
mod list;
mod revoke;
mod rotate;
pub(crate) mod secret;
pub(crate) mod store;
mod update;
pub(crate) mod usage;
mod usage_report;
mod verify;

use trellis_schema::api_keys::ApiKey;

use crate::db::models::{ApiKeyRow, parse_id, utc};

impl ApiKeyRow {
    pub(crate) fn to_api(&self) -> ApiKey {
        ApiKey {
            id: parse_id(&self.id),
            org_id: parse_id(&self.org_id),
            name: self.name.clone(),
            prefix: self.prefix.clone(),
            scopes: store::parse_scopes(&self.scopes),
            created_by: parse_id(&self.created_by),
            created_at: utc(self.created_at),
            last_used_at: self.last_used_at.map(utc),
            expires_at: self.expires_at.map(utc),
            revoked_at: self.revoked_at.map(utc),
            rate_limit_per_minute: self.rate_limit_per_minute.and_then(|n| u32::try_from(n).ok()).filter(|n| *n > 0),
        }
    }
}
