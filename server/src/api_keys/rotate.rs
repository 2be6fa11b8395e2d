use chrono::Duration;
use trellis_schema::api_keys::{ChangeApiKeyReason, CreatedApiKey, Rotate, RotateApiKeyParams};

use super::create::{check_scopes, check_within_acting_key, invalid};
use super::{secret, store};
use crate::access::OrgCtx;
use crate::audit::Event;
use crate::db::models::now;
use crate::notifications::events::api_key_event;
use trellis_schema::notifications::EventType;
use crate::rpc::error::HandlerError;
use crate::rpc::registry::Handler;

/// The longest a rotated-out secret may keep working.
const MAX_GRACE_SECS: u32 = 7 * 24 * 3600;

fn revoked() -> HandlerError<ChangeApiKeyReason> {
    HandlerError::Reason {
        reason: ChangeApiKeyReason::InvalidTransition,
        message: Some("a revoked key cannot be rotated".into()),
        data: serde_json::Map::new(),
    }
}

impl Handler for Rotate {
    /// A new secret; the old one works until the grace period ends (at once
    /// without one). The key keeps its id, scopes and usage. Whoever receives
    /// the new secret holds the key from then on: a member rotating a key
    /// another member holds takes it over (and must hold each of its scopes),
    /// and the old holder's secrets stop at once.
    async fn handle(ctx: OrgCtx, p: RotateApiKeyParams) -> Result<CreatedApiKey, HandlerError<ChangeApiKeyReason>> {
        let access = &ctx.org;
        let grace = p.grace_period_secs.unwrap_or(0);
        if grace > MAX_GRACE_SECS {
            return Err(HandlerError::Common(invalid("gracePeriodSecs", "must be at most 604800 (7 days)")));
        }
        let id = p.id;
        let row = store::find(&ctx.state.db, id).await?.ok_or_else(|| anyhow::anyhow!("a checked key has no row"))?;
        if row.revoked_at.is_some() {
            return Err(revoked());
        }
        let scopes = crate::access::keys::parse_scopes(&row.scopes);
        check_scopes(
            access,
            &scopes,
            ChangeApiKeyReason::MissingPermission,
            "the key's new secret would carry this scope",
        )?;
        check_within_acting_key(
            access,
            Some(row.expires_at),
            Some(row.rate_limit_per_minute),
            ChangeApiKeyReason::MissingPermission,
        )?;
        let holder = access.user_id();
        let takes_over = row.created_by != holder;
        if takes_over && grace > 0 {
            return Err(HandlerError::Common(invalid(
                "gracePeriodSecs",
                "must be 0 when rotating a key another member holds: their secret stops at once",
            )));
        }
        let (key, prefix) = secret::generate();
        let old_until = now() + Duration::seconds(i64::from(grace));
        let mut detail = format!("grace {grace}s");
        if takes_over {
            detail.push_str(&format!("; holder user:{} -> user:{holder}", row.created_by));
        }
        let event =
            Event::new(&ctx.meta, "apiKeys.rotate").in_org(access).target(format!("apiKey:{id}")).detail(detail).row();
        let hash = ctx.state.auth.codes.hash("api key", "", &key);
        let notice =
            api_key_event(&ctx.state.db, EventType::ApiKeyRotated, row.org_id, id, Some(&row.name)).await?;
        let rotated = store::rotate(&ctx.state.db, id, &hash, &prefix, holder, old_until, &event, &notice)
            .await?
            .ok_or_else(revoked)?;
        ctx.state.keys.cache.invalidate(p.id);
        ctx.state.events.published();
        Ok(CreatedApiKey { key, api_key: rotated.to_api() })
    }
}
