use trellis_schema::api_keys::{ApiKey, ChangeApiKeyReason, Update, UpdateApiKeyParams};

use super::create::{check_scopes, invalid, rate_limit};
use super::store;
use crate::audit::Event;
use crate::db::models::now;
use crate::rpc::context::Ctx;
use crate::rpc::error::HandlerError;
use crate::rpc::registry::Handler;

impl Handler for Update {
    async fn handle(ctx: Ctx, p: UpdateApiKeyParams) -> Result<ApiKey, HandlerError<ChangeApiKeyReason>> {
        let access = ctx.org()?;
        let id = p.id.to_string();
        let mut row =
            store::find(&ctx.state.db, &id).await?.ok_or_else(|| anyhow::anyhow!("a checked key has no row"))?;
        if row.revoked_at.is_some() {
            return Err(HandlerError::Reason {
                reason: ChangeApiKeyReason::InvalidTransition,
                message: Some("a revoked key cannot change".into()),
                data: serde_json::Map::new(),
            });
        }
        let mut changed = Vec::new();
        if let Some(name) = p.name {
            row.name = name.as_str().to_owned();
            changed.push("name");
        }
        if let Some(scopes) = p.scopes {
            if scopes.is_empty() {
                return Err(HandlerError::Common(invalid("scopes", "must name at least one scope")));
            }
            check_scopes(access, &scopes, ChangeApiKeyReason::MissingPermission)?;
            row.scopes = store::scopes_text(&scopes);
            changed.push("scopes");
        }
        if let Some(e) = p.expires_at {
            if e.naive_utc() <= now() {
                return Err(HandlerError::Common(invalid("expiresAt", "must be in the future")));
            }
            row.expires_at = Some(e.naive_utc());
            changed.push("expiresAt");
        }
        if p.rate_limit_per_minute.is_some() {
            row.rate_limit_per_minute = rate_limit(p.rate_limit_per_minute).map_err(HandlerError::Common)?;
            changed.push("rateLimitPerMinute");
        }
        let event = Event::new(&ctx.meta, "apiKeys.update")
            .in_org(access)
            .target(format!("apiKey:{id}"))
            .detail(changed.join(","))
            .row();
        store::save(&ctx.state.db, &row, &event).await?;
        ctx.state.keys.invalidate(p.id);
        Ok(row.to_api())
    }
}
