use trellis_schema::error::NoReason;
use trellis_schema::list::Page;
use trellis_schema::lots::{List, ListLotsParams, Lot};
use trellis_schema::values::PageLimit;

use super::store;
use crate::access::OrgCtx;
use crate::rpc::error::HandlerError;
use crate::rpc::paging::{after_id, page};
use crate::rpc::registry::Handler;

impl Handler for List {
    async fn handle(ctx: OrgCtx, p: ListLotsParams) -> Result<Page<Lot>, HandlerError<NoReason>> {
        let after = after_id(p.cursor.as_ref())?;
        let limit = PageLimit::or_default(p.limit) as usize;
        let commodity = p.commodity.as_ref().map(|c| c.as_str());
        let rows = store::list(&ctx.state.db, ctx.org.org_id, commodity, after, limit as i64 + 1).await?;
        let p = page(rows, limit, |r| r.id, |r| r.to_api());
        let items = p.items.into_iter().collect::<Result<Vec<_>, _>>()?;
        Ok(Page { items, next_cursor: p.next_cursor })
    }
}
