use trellis_schema::access::OrgRole;
use trellis_schema::error::NoReason;
use trellis_schema::list::Page;
use trellis_schema::orgs::{ListMembers, ListMembersParams, Member};
use trellis_schema::values::PageLimit;

use super::store;
use crate::access::OrgCtx;
use crate::db::models::utc;
use crate::rpc::error::HandlerError;
use crate::rpc::paging::{after_id, page};
use crate::rpc::registry::Handler;

impl Handler for ListMembers {
    async fn handle(ctx: OrgCtx, p: ListMembersParams) -> Result<Page<Member>, HandlerError<NoReason>> {
        let org = ctx.org.org_id;
        let after = after_id(p.cursor.as_ref())?;
        let limit = PageLimit::or_default(p.limit) as usize;
        let rows = store::members(&ctx.state.db, org, after, limit as i64 + 1).await?;
        let page = page(
            rows,
            limit,
            |(u, _, _)| u.id,
            |(u, role, joined)| {
                OrgRole::parse(&role).map(|role| Member { user: u.to_api(), role, joined_at: utc(joined) })
            },
        );
        Ok(Page { items: page.items.into_iter().flatten().collect(), next_cursor: page.next_cursor })
    }
}
