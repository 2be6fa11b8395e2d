use trellis_schema::api_keys::{ApiKey, List, ListApiKeysParams};
use trellis_schema::error::NoReason;
use trellis_schema::list::Page;
use trellis_schema::values::PageLimit;

use super::store;
use crate::access::OrgCtx;
use crate::rpc::error::HandlerError;
use crate::rpc::paging::{after_id, page};
use crate::rpc::registry::Handler;

impl Handler for List {
    async fn handle(ctx: OrgCtx, p: ListApiKeysParams) -> Result<Page<ApiKey>, HandlerError<NoReason>> {
        let org = ctx.org.org_id;
        let after = after_id(p.cursor.as_ref())?;
        let limit = PageLimit::or_default(p.limit) as usize;
        let rows = store::list(&ctx.state.db, org, p.include_revoked.unwrap_or(false), after, limit as i64 + 1).await?;
        Ok(page(rows, limit, |r| r.id, |r| r.to_api()))
    }
}
