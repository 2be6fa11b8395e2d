use trellis_schema::auth::{TokenReason, VerifyEmail, VerifyEmailParams, VerifyEmailResult};

use super::accounts::{self, Purpose, TokenLookup};
use crate::access::PublicCtx;
use crate::audit::{Event, actions};
use crate::rpc::error::HandlerError;
use crate::rpc::registry::Handler;

impl Handler for VerifyEmail {
    async fn handle(ctx: PublicCtx, p: VerifyEmailParams) -> Result<VerifyEmailResult, HandlerError<TokenReason>> {
        ctx.state.auth.throttle.ip(ctx.ip_addr()).await.map_err(HandlerError::Common)?;
        let hash = ctx.state.auth.codes.hash(Purpose::VerifyEmail.as_str(), "", p.token.expose());
        let event = Event::new(&ctx.meta, actions::VERIFY_EMAIL);
        let refused = match accounts::find_token(&ctx.state.db, Purpose::VerifyEmail, &hash).await? {
            TokenLookup::Live { token, user } => {
                if accounts::verify_email(&ctx.state.db, &token.id, user.id, &event.by_user(user.id).row()).await? {
                    tracing::info!(user_id = %user.id, "e-mail address verified");
                    return Ok(VerifyEmailResult { verified: true });
                }
                TokenReason::TokenUsed
            }
            TokenLookup::Used => TokenReason::TokenUsed,
            TokenLookup::Expired => TokenReason::TokenExpired,
            TokenLookup::Invalid => TokenReason::TokenInvalid,
        };
        let wire = trellis_schema::ErrorReason::reason(refused).as_str();
        crate::audit::store::record(&ctx.state.db, Event::new(&ctx.meta, actions::VERIFY_EMAIL).failed(wire).row())
            .await?;
        Err(HandlerError::reason(refused))
    }
}
