use trellis_schema::Empty;
use trellis_schema::webhooks::{Delete, WebhookParams, WebhookReason};

use super::store;
use crate::access::OrgCtx;
use crate::audit::Event;
use crate::rpc::error::HandlerError;
use crate::rpc::registry::Handler;

impl Handler for Delete {
    async fn handle(ctx: OrgCtx, p: WebhookParams) -> Result<Empty, HandlerError<WebhookReason>> {
        let access = &ctx.org;
        let event =
            Event::new(&ctx.meta, "webhooks.delete").in_org(access).target(format!("webhook:{}", p.webhook_id)).row();
        if !store::delete(&ctx.state.db, access.org_id, p.webhook_id, &event).await? {
            return Err(HandlerError::reason(WebhookReason::NotFound));
        }
        Ok(Empty {})
    }
}
