use trellis_schema::mfa::{EnrollTotp, EnrollTotpParams, EnrollTotpReason, EnrollTotpResult};

use crate::access::UserCtx;
use crate::audit::{Event, actions};
use crate::auth::{step_up, store, totp};
use crate::rpc::error::HandlerError;
use crate::rpc::registry::Handler;

impl Handler for EnrollTotp {
    /// A new 160-bit secret, pending until confirmed with a code. Enrolling
    /// again before confirming replaces the pending secret. Needs the
    /// current password or a recent sign-in (see `auth::step_up`).
    async fn handle(ctx: UserCtx, p: EnrollTotpParams) -> Result<EnrollTotpResult, HandlerError<EnrollTotpReason>> {
        let me = ctx.caller;
        let user = store::signed_in_user(&ctx, ctx.caller).await?;
        if user.mfa_enabled {
            return Err(HandlerError::reason(EnrollTotpReason::AlreadyExists));
        }
        step_up::require(&ctx, &user, me, p.current_password.as_ref(), actions::MFA_ENROLL).await?;
        let secret: [u8; 20] = rand::random();
        let event = Event::new(&ctx.meta, actions::MFA_ENROLL).by_user(user.id).row();
        let stored = ctx.state.auth.secrets.seal(&secret, user.id)?;
        if !crate::mfa::store::set_pending_totp(&ctx.state.db, user.id, &stored, &event).await? {
            return Err(HandlerError::reason(EnrollTotpReason::AlreadyExists));
        }
        Ok(EnrollTotpResult { secret: totp::base32(&secret), otpauth_url: totp::otpauth_url(&secret, &user.email) })
    }
}
