use trellis_schema::auth::{Refresh, RefreshParams, RefreshReason, Tokens};

use super::store::{self, Rotation};
use super::{session, tokens::token_hash};
use crate::access::PublicCtx;
use crate::audit::{Event, actions};
use crate::rpc::error::HandlerError;
use crate::rpc::registry::Handler;
use trellis_schema::ids::SessionId;

impl Handler for Refresh {
    /// Failed refreshes (unknown, expired or reused tokens) are limited per
    /// client IP (`TRELLIS_REFRESH_FAILURES_PER_IP` a minute); over the limit
    /// every refresh from that IP answers RATE_LIMITED, before any query,
    /// until the limit refills.
    async fn handle(ctx: PublicCtx, p: RefreshParams) -> Result<Tokens, HandlerError<RefreshReason>> {
        let ip = ctx.ip_addr();
        ctx.state.auth.throttle.refresh(ip).await.map_err(HandlerError::Common)?;
        let presented = token_hash(p.refresh_token.expose());
        // The session is the presented token's, found by the rotation, which
        // sets it on the new row; until then the row names a fresh id.
        let (new_token, new_row) = session::refresh_row(&ctx.state, SessionId::new());
        let reused = Event::new(&ctx.meta, actions::REFRESH_REUSED).failed("TOKEN_REUSED").row();
        let refused = match store::rotate_refresh_token(&ctx.state.db, &presented, &new_row, &reused).await? {
            Rotation::Rotated { user, session_id } => {
                if user.disabled {
                    return Err(HandlerError::reason(RefreshReason::AccountDisabled));
                }
                return Ok(session::tokens(&ctx.state, &user, session_id, new_token)?);
            }
            Rotation::Reused { session_id } => {
                // Someone holds a copy of a spent token: the session is
                // ended, so neither copy, nor any access token of it, works
                // again.
                ctx.state.auth.revoked.revoke(session_id);
                tracing::warn!(%session_id, "refresh token reused; session ended");
                RefreshReason::TokenReused
            }
            Rotation::Expired => RefreshReason::TokenExpired,
            Rotation::Invalid => RefreshReason::TokenInvalid,
        };
        ctx.state.auth.throttle.refresh_failed(ip).await.map_err(HandlerError::Common)?;
        Err(HandlerError::reason(refused))
    }
}
