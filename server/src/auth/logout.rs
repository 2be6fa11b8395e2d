use trellis_schema::auth::{Logout, LogoutParams};
use trellis_schema::error::NoReason;
use trellis_schema::health::Empty;

use super::store;
use crate::rpc::context::Ctx;
use crate::rpc::error::HandlerError;
use crate::rpc::registry::Handler;

impl Handler for Logout {
    async fn handle(ctx: Ctx, p: LogoutParams) -> Result<Empty, HandlerError<NoReason>> {
        let me = ctx.caller()?;
        let ended = if p.all_sessions.unwrap_or(false) {
            store::end_all_sessions(&ctx.state.db, me.user_id, "signed out everywhere").await?
        } else {
            store::end_session(&ctx.state.db, me.user_id, me.session_id, "signed out").await?;
            vec![me.session_id]
        };
        for sid in &ended {
            ctx.state.revoked.revoke(*sid);
        }
        // The calling session ends even if it was already gone from the store.
        ctx.state.revoked.revoke(me.session_id);
        let event = crate::audit::Event::new(&ctx.meta, crate::audit::actions::LOGOUT)
            .by_user(&me.user_id.to_string())
            .detail(format!("{} session(s) ended", ended.len()))
            .row();
        crate::audit::store::record(&ctx.state.db, event).await?;
        tracing::info!(user_id = %me.user_id, sessions = ended.len(), "signed out");
        Ok(Empty {})
    }
}
