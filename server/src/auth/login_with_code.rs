use trellis_schema::auth::{LoginWithCode, LoginWithCodeParams, LoginWithCodeReason, Tokens};

use super::accounts::{self, CodeCheck, Purpose};
use super::signin::{Refusal, second_stage};
use super::{session, store};
use crate::audit::{Event, actions};
use crate::db::models::now;
use crate::rpc::context::Ctx;
use crate::rpc::error::HandlerError;
use crate::rpc::registry::Handler;

impl Handler for LoginWithCode {
    /// An unknown address and a wrong code get the same answer. A code has 3
    /// attempts; the third wrong one spends it.
    async fn handle(ctx: Ctx, p: LoginWithCodeParams) -> Result<Tokens, HandlerError<LoginWithCodeReason>> {
        let key = p.email.normalized();
        ctx.state.throttle.attempt(ctx.ip_addr(), &key).map_err(HandlerError::Common)?;
        let (user, address_locked) = store::find_for_sign_in(&ctx.state.db, &key).await?;
        let Some(user) = user else {
            if let Some(until) = address_locked {
                let event = Event::new(&ctx.meta, actions::LOGIN_WITH_CODE).failed("ACCOUNT_LOCKED").row();
                crate::audit::store::record(&ctx.state.db, event).await?;
                return Err(Refusal::Locked(until).into_error());
            }
            let event = Event::new(&ctx.meta, actions::LOGIN_WITH_CODE).failed("OTP_INVALID").row();
            crate::audit::store::record(&ctx.state.db, event).await?;
            return Err(HandlerError::reason(LoginWithCodeReason::OtpInvalid));
        };
        if let Some(until) = user.locked_at(now()) {
            let event = Event::new(&ctx.meta, actions::LOGIN_WITH_CODE).about(&user.id).failed("ACCOUNT_LOCKED").row();
            crate::audit::store::record(&ctx.state.db, event).await?;
            return Err(Refusal::Locked(until).into_error());
        }
        let hash = ctx.state.codes.hash(Purpose::LoginCode.as_str(), &user.id, p.code.expose());
        let refused = match accounts::check_login_code(&ctx.state.db, &user.id, &hash).await? {
            CodeCheck::Accepted => None,
            CodeCheck::Invalid => Some(LoginWithCodeReason::OtpInvalid),
            CodeCheck::Exhausted => Some(LoginWithCodeReason::OtpExhausted),
        };
        if let Some(reason) = refused {
            let wire = trellis_schema::ErrorReason::reason(reason).as_str();
            let event = Event::new(&ctx.meta, actions::LOGIN_WITH_CODE).about(&user.id).failed(wire).row();
            crate::audit::store::record(&ctx.state.db, event).await?;
            return Err(HandlerError::reason(reason));
        }
        // The code proved control of the address: no verification needed,
        // and none of the password's rules apply.
        let mut verified = user.clone();
        verified.email_verified = true;
        if let Err(refusal) = second_stage(&ctx, &verified, p.otp.as_ref(), false, actions::LOGIN_WITH_CODE).await? {
            return Err(refusal.into_error());
        }
        let event = Event::new(&ctx.meta, actions::LOGIN_WITH_CODE).by_user(&user.id).row();
        let tokens = session::start(&ctx, &user, &event, true).await?;
        tracing::info!(user_id = %user.id, "signed in with an e-mailed code");
        Ok(tokens)
    }
}
