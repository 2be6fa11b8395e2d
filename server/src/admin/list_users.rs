use trellis_schema::admin::{AdminUser, ListUsers, ListUsersParams};
use trellis_schema::error::NoReason;
use trellis_schema::list::Page;
use trellis_schema::values::PageLimit;

use super::store;
use crate::access::AdminCtx;
use crate::db::models::{now, utc};
use crate::rpc::error::HandlerError;
use crate::rpc::paging::{after_id, page};
use crate::rpc::registry::Handler;

impl Handler for ListUsers {
    async fn handle(ctx: AdminCtx, p: ListUsersParams) -> Result<Page<AdminUser>, HandlerError<NoReason>> {
        let after = after_id(p.cursor.as_ref())?;
        let limit = PageLimit::or_default(p.limit);
        let query = p.query.as_ref().map(|q| q.as_str());
        let rows = store::list_users(&ctx.state.db, query, after, i64::from(limit) + 1).await?;
        let t = now();
        Ok(page(
            rows,
            limit as usize,
            |u| u.id,
            |u| AdminUser { user: u.to_api(), disabled: u.disabled, locked_until: u.locked_at(t).map(utc) },
        ))
    }
}
