use trellis_schema::admin::{AdminUser, GetUser, GetUserParams, GetUserReason};

use crate::access::AdminCtx;
use crate::auth::store::find_user;
use crate::db::models::{now, utc};
use crate::rpc::error::HandlerError;
use crate::rpc::registry::Handler;

impl Handler for GetUser {
    async fn handle(ctx: AdminCtx, p: GetUserParams) -> Result<AdminUser, HandlerError<GetUserReason>> {
        let user = find_user(&ctx.state.db, p.user_id).await?.ok_or(HandlerError::reason(GetUserReason::NotFound))?;
        let locked_until = user.locked_at(now()).map(utc);
        Ok(AdminUser { user: user.to_api(), disabled: user.disabled, locked_until })
    }
}
