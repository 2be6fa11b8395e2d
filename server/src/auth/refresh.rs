use trellis_schema::auth::{Refresh, RefreshParams, RefreshReason, Tokens};

use super::store::{self, Rotation};
use super::{session, tokens::token_hash};
use crate::rpc::context::Ctx;
use crate::rpc::error::HandlerError;
use crate::rpc::registry::Handler;

impl Handler for Refresh {
    async fn handle(ctx: Ctx, p: RefreshParams) -> Result<Tokens, HandlerError<RefreshReason>> {
        let presented = token_hash(p.refresh_token.expose());
        let (new_token, new_row) = session::refresh_row(&ctx.state, "");
        match store::rotate_refresh_token(&ctx.state.db, &presented, &new_row).await? {
            Rotation::Rotated { user, session_id } => {
                if user.disabled {
                    return Err(HandlerError::reason(RefreshReason::AccountDisabled));
                }
                Ok(session::tokens(&ctx.state, &user, session_id, new_token)?)
            }
            Rotation::Reused { session_id, user_id } => {
                // Someone holds a copy of a spent token: end the session so
                // neither copy, nor any access token of it, works again.
                ctx.state.revoked.revoke(session_id);
                let event = crate::audit::Event::new(&ctx.meta, crate::audit::actions::REFRESH_REUSED)
                    .about(&user_id)
                    .target(format!("session:{session_id}"))
                    .failed("TOKEN_REUSED")
                    .row();
                crate::audit::store::record(&ctx.state.db, event).await?;
                tracing::warn!(%session_id, "refresh token reused; session ended");
                Err(HandlerError::reason(RefreshReason::TokenReused))
            }
            Rotation::Expired => Err(HandlerError::reason(RefreshReason::TokenExpired)),
            Rotation::Invalid => Err(HandlerError::reason(RefreshReason::TokenInvalid)),
        }
    }
}
