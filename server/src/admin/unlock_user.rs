use trellis_schema::Empty;
use trellis_schema::admin::{UnlockUser, UnlockUserParams, UnlockUserReason};

use super::store;
use crate::access::AdminCtx;
use crate::audit::{Event, actions};
use crate::rpc::error::HandlerError;
use crate::rpc::registry::Handler;

impl Handler for UnlockUser {
    async fn handle(ctx: AdminCtx, p: UnlockUserParams) -> Result<Empty, HandlerError<UnlockUserReason>> {
        let me = ctx.admin;
        let target = p.user_id;
        let event = Event::new(&ctx.meta, actions::UNLOCK_USER).by_admin(me.user_id, target).row();
        if !store::unlock(&ctx.state.db, target, &event).await? {
            return Err(HandlerError::reason(UnlockUserReason::NotFound));
        }
        Ok(Empty {})
    }
}
