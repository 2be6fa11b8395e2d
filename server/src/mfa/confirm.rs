use trellis_schema::mfa::{CodeParams, ConfirmTotp, ConfirmTotpResult, MfaCodeReason};

use trellis_schema::notifications::EventType;
use crate::access::UserCtx;
use crate::audit::{Event, actions};
use crate::auth::{codes, store, totp};
use crate::rpc::error::HandlerError;
use crate::rpc::registry::Handler;

const RECOVERY_CODES: usize = 10;

impl Handler for ConfirmTotp {
    /// Turns MFA on once a code of the pending secret proves the app has it;
    /// returns ten recovery codes, shown this once and stored hashed.
    async fn handle(ctx: UserCtx, p: CodeParams) -> Result<ConfirmTotpResult, HandlerError<MfaCodeReason>> {
        let user = store::signed_in_user(&ctx, ctx.caller).await?;
        ctx.state.auth.throttle.attempt(ctx.ip_addr(), &user.email_key).await.map_err(HandlerError::Common)?;
        let pending = match (&user.totp_pending_secret, user.mfa_enabled) {
            (Some(p), false) => p.clone(),
            _ => {
                return Err(HandlerError::Reason {
                    reason: MfaCodeReason::InvalidTransition,
                    message: Some("no TOTP enrolment is waiting for confirmation (call mfa.enrollTotp)".into()),
                    data: serde_json::Map::new(),
                });
            }
        };
        let secret = ctx.state.auth.secrets.open(&pending, user.id)?;
        let Some(step) = totp::matching_step(&secret, p.code.expose(), totp::current_step()) else {
            let event = Event::new(&ctx.meta, actions::MFA_CONFIRM).by_user(user.id).failed("OTP_INVALID");
            crate::audit::store::record(&ctx.state.db, event.row()).await?;
            return Err(HandlerError::reason(MfaCodeReason::OtpInvalid));
        };
        let shown: Vec<String> = (0..RECOVERY_CODES).map(|_| codes::new_recovery_code()).collect();
        let hashes: Vec<String> = shown
            .iter()
            .map(|c| ctx.state.auth.codes.hash("recovery", user.id, &codes::normalize_recovery_code(c)))
            .collect();
        let event = Event::new(&ctx.meta, actions::MFA_CONFIRM).by_user(user.id).row();
        if !crate::mfa::store::enable_mfa(&ctx.state.db, user.id, &pending, step, &hashes, &event).await? {
            return Err(HandlerError::reason(MfaCodeReason::InvalidTransition));
        }
        ctx.state.events.tell(&ctx.state.db, EventType::MfaEnabled, user.id, "Two-factor sign-in turned on", "An authenticator app now protects your account.").await;
        tracing::info!(user_id = %user.id, "MFA turned on");
        Ok(ConfirmTotpResult { recovery_codes: shown })
    }
}
