use trellis_schema::notifications::EventType;
use trellis_schema::Empty;
use trellis_schema::auth::{ResetPassword, ResetPasswordParams, ResetPasswordReason};

use super::accounts::{self, PasswordChange, Purpose, TokenLookup};
use super::signin::{new_password_hash, password_changed_mail};
use crate::access::PublicCtx;
use crate::audit::{Event, actions};
use crate::rpc::error::HandlerError;
use crate::rpc::registry::Handler;

impl Handler for ResetPassword {
    /// Sets the password and ends every session of the account; the token is
    /// used in the same transaction, so it works once.
    async fn handle(ctx: PublicCtx, p: ResetPasswordParams) -> Result<Empty, HandlerError<ResetPasswordReason>> {
        ctx.state.auth.throttle.ip(ctx.ip_addr()).await.map_err(HandlerError::Common)?;
        let hash = ctx.state.auth.codes.hash(Purpose::ResetPassword.as_str(), "", p.token.expose());
        let (token, user) = match accounts::find_token(&ctx.state.db, Purpose::ResetPassword, &hash).await? {
            TokenLookup::Live { token, user } => (token, user),
            other => {
                let reason = match other {
                    TokenLookup::Used => ResetPasswordReason::TokenUsed,
                    TokenLookup::Expired => ResetPasswordReason::TokenExpired,
                    _ => ResetPasswordReason::TokenInvalid,
                };
                let wire = trellis_schema::ErrorReason::reason(reason).as_str();
                let event = Event::new(&ctx.meta, actions::RESET_PASSWORD).failed(wire).row();
                crate::audit::store::record(&ctx.state.db, event).await?;
                return Err(HandlerError::reason(reason));
            }
        };
        let password = p.new_password.expose();
        let new_hash = new_password_hash(
            &ctx,
            &user,
            password,
            ResetPasswordReason::PasswordPolicy,
            ResetPasswordReason::PasswordReused,
        )
        .await?;
        let event = Event::new(&ctx.meta, actions::RESET_PASSWORD).about(user.id).row();
        let mail = password_changed_mail(&ctx, &user, event.id)?;
        let change = PasswordChange {
            user_id: user.id,
            new_hash: &new_hash,
            old_hash: &user.password_hash,
            keep: ctx.state.auth.policy.history,
            token_id: Some(&token.id),
            keep_session: None,
            reason: "password reset",
            mail: Some(&mail),
            event: &event,
        };
        let Some(ended) = accounts::change_password(&ctx.state.db, change).await? else {
            return Err(HandlerError::reason(ResetPasswordReason::TokenUsed));
        };
        for sid in &ended {
            ctx.state.auth.revoked.revoke(*sid);
        }
        ctx.state.mail.wake();
        ctx.state.events.tell(&ctx.state.db, EventType::PasswordChanged, user.id, "Your password was changed", "The password of your account was reset, and your sessions were signed out.").await;
        tracing::info!(user_id = %user.id, sessions = ended.len(), "password reset");
        Ok(Empty {})
    }
}
