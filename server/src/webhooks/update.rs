use trellis_schema::webhooks::{Update, UpdateWebhookParams, Webhook, WebhookReason};

use super::store::{self, WebhookChanges};
use super::{checked_events, checked_url};
use crate::access::OrgCtx;
use crate::audit::Event;
use crate::rpc::error::HandlerError;
use crate::rpc::registry::Handler;

impl Handler for Update {
    async fn handle(ctx: OrgCtx, p: UpdateWebhookParams) -> Result<Webhook, HandlerError<WebhookReason>> {
        let access = &ctx.org;
        let mut changes = WebhookChanges { enabled: p.enabled, ..WebhookChanges::default() };
        if let Some(events) = &p.events {
            changes.events = Some(checked_events(events).map_err(HandlerError::Common)?);
        }
        if let Some(url) = &p.url {
            changes.url = Some(checked_url(&ctx, url.as_str()).await.map_err(HandlerError::Common)?);
        }
        let mut detail = Vec::new();
        if changes.url.is_some() {
            detail.push("url".to_owned());
        }
        if let Some(e) = &changes.events {
            detail.push(format!("events={e}"));
        }
        if let Some(on) = changes.enabled {
            detail.push(format!("enabled={on}"));
        }
        let event = Event::new(&ctx.meta, "webhooks.update")
            .in_org(access)
            .target(format!("webhook:{}", p.webhook_id))
            .detail(detail.join(" "))
            .row();
        let row = store::update(&ctx.state.db, access.org_id, p.webhook_id, &changes, &event)
            .await?
            .ok_or(HandlerError::reason(WebhookReason::NotFound))?;
        if changes.enabled == Some(true) {
            // Deliveries that waited while it was disabled go now.
            ctx.state.webhooks.sender.wake();
        }
        Ok(row.to_api())
    }
}
