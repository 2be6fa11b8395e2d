use trellis_schema::audit::AuditEvent;
use trellis_schema::error::NoReason;
use trellis_schema::list::Page;
use trellis_schema::users::{Activity, PageParams};
use trellis_schema::values::PageLimit;

use crate::access::UserCtx;
use crate::rpc::error::HandlerError;
use crate::rpc::paging::{after_id, page};
use crate::rpc::registry::Handler;

impl Handler for Activity {
    /// The caller's own events only: what was done to or by their account.
    async fn handle(ctx: UserCtx, p: PageParams) -> Result<Page<AuditEvent>, HandlerError<NoReason>> {
        let me = ctx.caller.user_id;
        let before = after_id(p.cursor.as_ref())?;
        let limit = PageLimit::or_default(p.limit);
        let rows = crate::audit::store::for_user(&ctx.state.db, me, before, i64::from(limit) + 1).await?;
        Ok(page(rows, limit as usize, |r| r.id, |r| r.to_api()))
    }
}
