use trellis_schema::health::Empty;
use trellis_schema::mfa::{CodeParams, Disable, MfaCodeReason};

use crate::audit::{Event, actions};
use crate::auth::{accounts, signin, store};
use crate::rpc::context::Ctx;
use crate::rpc::error::HandlerError;
use crate::rpc::registry::Handler;

impl Handler for Disable {
    /// Needs a current code (never one already used) or a recovery code.
    async fn handle(ctx: Ctx, p: CodeParams) -> Result<Empty, HandlerError<MfaCodeReason>> {
        let user = store::signed_in_user(&ctx).await?;
        if !user.mfa_enabled {
            return Err(HandlerError::Reason {
                reason: MfaCodeReason::InvalidTransition,
                message: Some("MFA is not on".into()),
                data: serde_json::Map::new(),
            });
        }
        ctx.state.throttle.attempt(ctx.ip_addr(), &user.email_key).map_err(HandlerError::Common)?;
        if !signin::second_factor(&ctx, &user, &p.code).await? {
            let event = Event::new(&ctx.meta, actions::MFA_DISABLE).by_user(&user.id).failed("OTP_INVALID");
            crate::audit::store::record(&ctx.state.db, event.row()).await?;
            return Err(HandlerError::reason(MfaCodeReason::OtpInvalid));
        }
        let event = Event::new(&ctx.meta, actions::MFA_DISABLE).by_user(&user.id).row();
        accounts::disable_mfa(&ctx.state.db, &user.id, &event).await?;
        tracing::info!(user_id = %user.id, "MFA turned off");
        Ok(Empty {})
    }
}
