use trellis_schema::ids::WebhookId;
use trellis_schema::webhooks::{
    Create, CreateWebhookParams, CreateWebhookReason, CreatedWebhook, MAX_WEBHOOKS_PER_ORG,
};

use super::{checked_events, checked_url, secret_aad, signing, store};
use crate::access::OrgCtx;
use crate::audit::Event;
use crate::db::models::{WebhookRow, now};
use crate::rpc::error::HandlerError;
use crate::rpc::registry::Handler;

impl Handler for Create {
    /// The secret is shown this once; it is stored sealed.
    async fn handle(ctx: OrgCtx, p: CreateWebhookParams) -> Result<CreatedWebhook, HandlerError<CreateWebhookReason>> {
        let access = &ctx.org;
        let events = checked_events(&p.events).map_err(HandlerError::Common)?;
        let url = checked_url(&ctx, p.url.as_str()).await.map_err(HandlerError::Common)?;
        let id = WebhookId::new();
        let secret = signing::generate();
        let sealed = ctx.state.auth.secrets.seal_bound(secret.as_bytes(), secret_aad(id).as_bytes())?;
        let t = now();
        let row = WebhookRow {
            id,
            org_id: access.org_id,
            url,
            events,
            enabled: true,
            disabled_reason: None,
            secret: sealed,
            previous_secret: None,
            previous_secret_until: None,
            failure_streak: 0,
            created_by: access.user_id(),
            created_at: t,
            updated_at: t,
        };
        let event = Event::new(&ctx.meta, "webhooks.create")
            .in_org(access)
            .target(format!("webhook:{id}"))
            .detail(row.events.clone())
            .row();
        if !store::insert(&ctx.state.db, &row, &event, MAX_WEBHOOKS_PER_ORG).await? {
            let mut data = serde_json::Map::new();
            data.insert("limit".into(), MAX_WEBHOOKS_PER_ORG.into());
            return Err(HandlerError::Reason {
                reason: CreateWebhookReason::LimitReached,
                message: Some(format!("an organization has at most {MAX_WEBHOOKS_PER_ORG} webhooks").into()),
                data,
            });
        }
        Ok(CreatedWebhook { webhook: row.to_api(), secret })
    }
}
