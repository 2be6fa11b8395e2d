use trellis_schema::error::NoReason;
use trellis_schema::ids::WebhookDeliveryId;
use trellis_schema::list::Page;
use trellis_schema::values::PageLimit;
use trellis_schema::webhooks::{Deliveries, ListDeliveriesParams, WebhookDelivery};

use super::store;
use crate::access::OrgCtx;
use crate::rpc::error::HandlerError;
use crate::rpc::paging::{after_id, page};
use crate::rpc::registry::Handler;

impl Handler for Deliveries {
    /// Newest first. A webhook that is not the organization's has no
    /// deliveries here (an empty page, as for one that does not exist).
    async fn handle(ctx: OrgCtx, p: ListDeliveriesParams) -> Result<Page<WebhookDelivery>, HandlerError<NoReason>> {
        let before: Option<WebhookDeliveryId> = after_id(p.cursor.as_ref())?;
        let limit = PageLimit::or_default(p.limit) as usize;
        let rows = store::deliveries(&ctx.state.db, ctx.org.org_id, p.webhook_id, before, limit as i64 + 1).await?;
        let Page { items, next_cursor } = page(rows, limit, |r| r.id, |r| r.to_api());
        Ok(Page { items: items.into_iter().flatten().collect(), next_cursor })
    }
}
