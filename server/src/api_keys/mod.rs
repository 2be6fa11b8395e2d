//! `apiKeys.*`: keys that act for an organization within their scopes and
//! never beyond their holder's permissions, and the key format. (Keys as
//! credentials, with their cache, limits and usage, are in `access`.)

mod create;
mod get;
mod list;
mod revoke;
mod rotate;
pub(crate) mod secret;
pub(crate) mod store;
mod update;
mod usage_report;
mod verify;

use trellis_schema::api_keys::ApiKey;

use crate::db::models::{ApiKeyRow, utc};

impl ApiKeyRow {
    pub(crate) fn to_api(&self) -> ApiKey {
        ApiKey {
            id: self.id,
            org_id: self.org_id,
            name: self.name.clone(),
            prefix: self.prefix.clone(),
            scopes: crate::access::keys::parse_scopes(&self.scopes),
            created_by: self.created_by,
            created_at: utc(self.created_at),
            last_used_at: self.last_used_at.map(utc),
            expires_at: self.expires_at.map(utc),
            revoked_at: self.revoked_at.map(utc),
            rate_limit_per_minute: self.rate_limit_per_minute.and_then(|n| u32::try_from(n).ok()).filter(|n| *n > 0),
        }
    }
}
