use trellis_schema::audit::{AuditEvent, List, ListAuditParams};
use trellis_schema::error::NoReason;
use trellis_schema::list::Page;
use trellis_schema::values::PageLimit;

use super::store::{self, AuditFilter};
use crate::access::OrgCtx;
use crate::rpc::error::HandlerError;
use crate::rpc::paging::{after_id, page};
use crate::rpc::registry::Handler;

impl Handler for List {
    async fn handle(ctx: OrgCtx, p: ListAuditParams) -> Result<Page<AuditEvent>, HandlerError<NoReason>> {
        let org = ctx.org.org_id;
        let limit = PageLimit::or_default(p.limit) as usize;
        let filter = AuditFilter {
            actor_id: p.actor_id,
            action: p.action.as_ref().map(|a| a.as_str()),
            from: p.from.map(|t| t.naive_utc()),
            to: p.to.map(|t| t.naive_utc()),
            before: after_id(p.cursor.as_ref())?,
            limit: limit as i64 + 1,
        };
        let rows = store::in_org(&ctx.state.db, org, filter).await?;
        Ok(page(rows, limit, |r| r.id, |r| r.to_api()))
    }
}
