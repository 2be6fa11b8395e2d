use chrono::Duration;
use trellis_schema::api_keys::{ChangeApiKeyReason, CreatedApiKey, Rotate, RotateApiKeyParams};

use super::create::invalid;
use super::{secret, store};
use crate::audit::Event;
use crate::db::models::now;
use crate::rpc::context::Ctx;
use crate::rpc::error::HandlerError;
use crate::rpc::registry::Handler;

/// The longest a rotated-out secret may keep working.
const MAX_GRACE_SECS: u32 = 7 * 24 * 3600;

impl Handler for Rotate {
    /// A new secret; the old one works until the grace period ends (at once
    /// without one). The key keeps its id, scopes and usage.
    async fn handle(ctx: Ctx, p: RotateApiKeyParams) -> Result<CreatedApiKey, HandlerError<ChangeApiKeyReason>> {
        let access = ctx.org()?;
        let grace = p.grace_period_secs.unwrap_or(0);
        if grace > MAX_GRACE_SECS {
            return Err(HandlerError::Common(invalid("gracePeriodSecs", "must be at most 604800 (7 days)")));
        }
        let id = p.id.to_string();
        let mut row =
            store::find(&ctx.state.db, &id).await?.ok_or_else(|| anyhow::anyhow!("a checked key has no row"))?;
        if row.revoked_at.is_some() {
            return Err(HandlerError::Reason {
                reason: ChangeApiKeyReason::InvalidTransition,
                message: Some("a revoked key cannot be rotated".into()),
                data: serde_json::Map::new(),
            });
        }
        let (key, prefix) = secret::generate();
        let old_until = now() + Duration::seconds(i64::from(grace));
        let event = Event::new(&ctx.meta, "apiKeys.rotate")
            .in_org(access)
            .target(format!("apiKey:{id}"))
            .detail(format!("grace {grace}s"))
            .row();
        store::rotate(&ctx.state.db, &id, &ctx.state.codes.hash("api key", "", &key), old_until, &event).await?;
        ctx.state.keys.invalidate(p.id);
        row.prefix = prefix;
        Ok(CreatedApiKey { key, api_key: row.to_api() })
    }
}
