use trellis_schema::Empty;
use trellis_schema::auth::{Logout, LogoutParams};
use trellis_schema::error::NoReason;

use super::store;
use crate::access::UserCtx;
use crate::audit::{Event, actions};
use crate::rpc::error::HandlerError;
use crate::rpc::registry::Handler;

impl Handler for Logout {
    /// The sessions end and the event is recorded in one transaction.
    async fn handle(ctx: UserCtx, p: LogoutParams) -> Result<Empty, HandlerError<NoReason>> {
        let me = ctx.caller;
        let event = Event::new(&ctx.meta, actions::LOGOUT).by_user(me.user_id);
        let ended = if p.all_sessions.unwrap_or(false) {
            store::end_all_sessions(&ctx.state.db, me.user_id, "signed out everywhere", &event.row()).await?
        } else {
            let event = event.detail("1 session(s) ended").row();
            if store::end_session(&ctx.state.db, me.user_id, me.session_id, "signed out", &event).await? {
                vec![me.session_id]
            } else {
                Vec::new()
            }
        };
        for sid in &ended {
            ctx.state.auth.revoked.revoke(*sid);
        }
        // The calling session ends even if it was already gone from the store.
        ctx.state.auth.revoked.revoke(me.session_id);
        tracing::info!(user_id = %me.user_id, sessions = ended.len(), "signed out");
        Ok(Empty {})
    }
}
