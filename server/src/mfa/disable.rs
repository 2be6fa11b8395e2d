use trellis_schema::Empty;
use trellis_schema::notifications::EventType;
use trellis_schema::mfa::{Disable, DisableMfaParams, DisableMfaReason};

use crate::access::UserCtx;
use crate::audit::{Event, actions};
use crate::auth::{signin, step_up, store};
use crate::rpc::error::HandlerError;
use crate::rpc::registry::Handler;

fn not_on() -> HandlerError<DisableMfaReason> {
    HandlerError::Reason {
        reason: DisableMfaReason::InvalidTransition,
        message: Some("MFA is not on".into()),
        data: serde_json::Map::new(),
    }
}

impl Handler for Disable {
    /// Needs a current code (never one already used) or a recovery code, and
    /// the current password or a recent sign-in (see `auth::step_up`).
    async fn handle(ctx: UserCtx, p: DisableMfaParams) -> Result<Empty, HandlerError<DisableMfaReason>> {
        let me = ctx.caller;
        let user = store::signed_in_user(&ctx, ctx.caller).await?;
        if !user.mfa_enabled {
            return Err(not_on());
        }
        step_up::require(&ctx, &user, me, p.current_password.as_ref(), actions::MFA_DISABLE).await?;
        ctx.state.auth.throttle.attempt(ctx.ip_addr(), &user.email_key).await.map_err(HandlerError::Common)?;
        if !signin::second_factor(&ctx, &user, &p.code).await? {
            let event = Event::new(&ctx.meta, actions::MFA_DISABLE).by_user(user.id).failed("OTP_INVALID");
            crate::audit::store::record(&ctx.state.db, event.row()).await?;
            return Err(HandlerError::reason(DisableMfaReason::OtpInvalid));
        }
        let event = Event::new(&ctx.meta, actions::MFA_DISABLE).by_user(user.id).row();
        if !crate::mfa::store::disable_mfa(&ctx.state.db, user.id, &event).await? {
            return Err(not_on());
        }
        ctx.state.events.tell(&ctx.state.db, EventType::MfaDisabled, user.id, "Two-factor sign-in turned off", "Your account no longer asks for a code from an authenticator app. If you did not do this, change your password now.").await;
        tracing::info!(user_id = %user.id, "MFA turned off");
        Ok(Empty {})
    }
}
