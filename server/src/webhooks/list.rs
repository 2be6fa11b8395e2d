use trellis_schema::error::NoReason;
use trellis_schema::list::Page;
use trellis_schema::values::PageLimit;
use trellis_schema::webhooks::{List, ListWebhooksParams, Webhook};

use super::store;
use crate::access::OrgCtx;
use crate::rpc::error::HandlerError;
use crate::rpc::paging::{after_id, page};
use crate::rpc::registry::Handler;

impl Handler for List {
    async fn handle(ctx: OrgCtx, p: ListWebhooksParams) -> Result<Page<Webhook>, HandlerError<NoReason>> {
        let after = after_id(p.cursor.as_ref())?;
        let limit = PageLimit::or_default(p.limit) as usize;
        let rows = store::list(&ctx.state.db, ctx.org.org_id, after, limit as i64 + 1).await?;
        Ok(page(rows, limit, |r| r.id, |r| r.to_api()))
    }
}
