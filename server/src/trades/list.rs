use trellis_schema::error::NoReason;
use trellis_schema::list::Page;
use trellis_schema::trades::{List, ListTradesParams, Trade};
use trellis_schema::values::PageLimit;

use super::store;
use crate::access::OrgCtx;
use crate::rpc::error::HandlerError;
use crate::rpc::paging::{after_id, page};
use crate::rpc::registry::Handler;

impl Handler for List {
    async fn handle(ctx: OrgCtx, p: ListTradesParams) -> Result<Page<Trade>, HandlerError<NoReason>> {
        let before = after_id(p.cursor.as_ref())?;
        let limit = PageLimit::or_default(p.limit) as usize;
        let org = ctx.org.org_id;
        let rows = store::list(&ctx.state.db, org, p.role, p.status, before, limit as i64 + 1).await?;
        let p = page(rows, limit, |r| r.id, |r| r.to_api(Vec::new(), Vec::new()));
        let items = p.items.into_iter().collect::<Result<Vec<_>, _>>()?;
        Ok(Page { items, next_cursor: p.next_cursor })
    }
}
