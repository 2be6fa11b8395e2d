use trellis_schema::api_keys::{ApiKey, KeyParams, Revoke};
use trellis_schema::error::NoReason;

use super::store;
use crate::access::OrgCtx;
use crate::audit::Event;
use crate::db::models::now;
use crate::notifications::events::api_key_event;
use trellis_schema::notifications::EventType;
use crate::rpc::error::HandlerError;
use crate::rpc::registry::Handler;

impl Handler for Revoke {
    /// Refused at once here; other replicas drop their cached copy within a
    /// second. Revoking a revoked key changes nothing (and is not audited again).
    async fn handle(ctx: OrgCtx, p: KeyParams) -> Result<ApiKey, HandlerError<NoReason>> {
        let access = &ctx.org;
        let id = p.id;
        let event = Event::new(&ctx.meta, "apiKeys.revoke").in_org(access).target(format!("apiKey:{id}")).row();
        let notice = api_key_event(&ctx.state.db, EventType::ApiKeyRevoked, access.org_id, id, None).await?;
        let (row, revoked) = store::revoke(&ctx.state.db, id, now(), &event, &notice)
            .await?
            .ok_or_else(|| anyhow::anyhow!("a checked key has no row"))?;
        ctx.state.keys.cache.invalidate(p.id);
        if revoked {
            ctx.state.events.published();
        }
        Ok(row.to_api())
    }
}
