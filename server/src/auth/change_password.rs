use trellis_schema::notifications::EventType;
use trellis_schema::Empty;
use trellis_schema::auth::{ChangePassword, ChangePasswordParams, ChangePasswordReason};

use super::accounts::{self, PasswordChange};
use super::signin::{new_password_hash, password_changed_mail};
use super::store;
use crate::access::UserCtx;
use crate::audit::{Event, actions};
use crate::rpc::error::HandlerError;
use crate::rpc::registry::Handler;

impl Handler for ChangePassword {
    /// Needs the current password (a wrong one counts as a failed sign-in;
    /// a locked account is ACCOUNT_LOCKED); every other session of the user
    /// ends.
    async fn handle(ctx: UserCtx, p: ChangePasswordParams) -> Result<Empty, HandlerError<ChangePasswordReason>> {
        let me = ctx.caller;
        let user = store::signed_in_user(&ctx, ctx.caller).await?;
        super::step_up::check_password(&ctx, &user, &p.current_password, actions::CHANGE_PASSWORD).await?;
        let password = p.new_password.expose();
        let new_hash = new_password_hash(
            &ctx,
            &user,
            password,
            ChangePasswordReason::PasswordPolicy,
            ChangePasswordReason::PasswordReused,
        )
        .await?;
        let event = Event::new(&ctx.meta, actions::CHANGE_PASSWORD).by_user(user.id).row();
        let mail = password_changed_mail(&ctx, &user, event.id)?;
        let current = me.session_id;
        let change = PasswordChange {
            user_id: user.id,
            new_hash: &new_hash,
            old_hash: &user.password_hash,
            keep: ctx.state.auth.policy.history,
            token_id: None,
            keep_session: Some(current),
            reason: "password changed",
            mail: Some(&mail),
            event: &event,
        };
        let Some(ended) = accounts::change_password(&ctx.state.db, change).await? else {
            // Changed meanwhile by another call: the password given is no
            // longer the current one.
            return Err(HandlerError::reason(ChangePasswordReason::InvalidCredentials));
        };
        for sid in &ended {
            ctx.state.auth.revoked.revoke(*sid);
        }
        ctx.state.mail.wake();
        ctx.state.events.tell(&ctx.state.db, EventType::PasswordChanged, user.id, "Your password was changed", "The password of your account was changed, and your other sessions were signed out.").await;
        tracing::info!(user_id = %user.id, sessions = ended.len(), "password changed");
        Ok(Empty {})
    }
}
