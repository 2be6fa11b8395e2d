use trellis_schema::Empty;
use trellis_schema::sessions::{Revoke, RevokeParams, RevokeReason};

use crate::access::UserCtx;
use crate::audit::{Event, actions};
use crate::auth::store;
use crate::rpc::error::HandlerError;
use crate::rpc::registry::Handler;

impl Handler for Revoke {
    /// Another user's session, or one already ended, is NOT_FOUND.
    async fn handle(ctx: UserCtx, p: RevokeParams) -> Result<Empty, HandlerError<RevokeReason>> {
        let me = ctx.caller;
        let event = Event::new(&ctx.meta, actions::SESSION_REVOKED)
            .by_user(me.user_id)
            .target(format!("session:{}", p.session_id))
            .row();
        // The session ends and the event is recorded in one transaction.
        if !store::end_session(&ctx.state.db, me.user_id, p.session_id, "revoked by the user", &event).await? {
            return Err(HandlerError::reason(RevokeReason::NotFound));
        }
        ctx.state.auth.revoked.revoke(p.session_id);
        Ok(Empty {})
    }
}
