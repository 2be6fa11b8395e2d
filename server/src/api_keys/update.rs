use chrono::Timelike;
use trellis_schema::api_keys::{ApiKey, ChangeApiKeyReason, Update, UpdateApiKeyParams};

use super::create::{check_holder_scopes, check_scopes, check_within_acting_key, invalid, rate_limit};
use super::store::{self, KeyChanges};
use crate::access::OrgCtx;
use crate::audit::Event;
use crate::db::models::now;
use crate::rpc::error::HandlerError;
use crate::rpc::registry::Handler;

fn revoked() -> HandlerError<ChangeApiKeyReason> {
    HandlerError::Reason {
        reason: ChangeApiKeyReason::InvalidTransition,
        message: Some("a revoked key cannot change".into()),
        data: serde_json::Map::new(),
    }
}

impl Handler for Update {
    /// Writes only the fields given, and only while the key is not revoked:
    /// an update never undoes a revocation.
    async fn handle(ctx: OrgCtx, p: UpdateApiKeyParams) -> Result<ApiKey, HandlerError<ChangeApiKeyReason>> {
        let access = &ctx.org;
        let id = p.id;
        let row = store::find(&ctx.state.db, id).await?.ok_or_else(|| anyhow::anyhow!("a checked key has no row"))?;
        if row.revoked_at.is_some() {
            return Err(revoked());
        }
        let mut changes = KeyChanges::default();
        let mut changed = Vec::new();
        if let Some(name) = p.name {
            changes.name = Some(name.as_str().to_owned());
            changed.push("name");
        }
        if let Some(scopes) = p.scopes {
            if scopes.is_empty() {
                return Err(HandlerError::Common(invalid("scopes", "must name at least one scope")));
            }
            check_scopes(access, &scopes, ChangeApiKeyReason::MissingPermission, "a key cannot be given this scope")?;
            let holder_role = crate::access::membership::role_of(&ctx.state.db, row.org_id, row.created_by).await?;
            check_holder_scopes(holder_role, &scopes, ChangeApiKeyReason::MissingPermission)?;
            changes.scopes = Some(store::scopes_text(&scopes));
            changed.push("scopes");
        }
        if let Some(e) = p.expires_at {
            if e.naive_utc() <= now() {
                return Err(HandlerError::Common(invalid("expiresAt", "must be in the future")));
            }
            let e = e.naive_utc();
            changes.expires_at = Some(e.with_nanosecond(e.nanosecond() / 1000 * 1000).unwrap_or(e));
            changed.push("expiresAt");
        }
        if p.rate_limit_per_minute.is_some() {
            changes.rate_limit_per_minute = Some(rate_limit(p.rate_limit_per_minute).map_err(HandlerError::Common)?);
            changed.push("rateLimitPerMinute");
        }
        check_within_acting_key(
            access,
            changes.expires_at.map(Some),
            changes.rate_limit_per_minute,
            ChangeApiKeyReason::MissingPermission,
        )?;
        if changes.is_empty() {
            return Ok(row.to_api());
        }
        let event = Event::new(&ctx.meta, "apiKeys.update")
            .in_org(access)
            .target(format!("apiKey:{id}"))
            .detail(changed.join(","))
            .row();
        let updated = store::update(&ctx.state.db, id, &changes, &event).await?.ok_or_else(revoked)?;
        ctx.state.keys.cache.invalidate(p.id);
        Ok(updated.to_api())
    }
}
