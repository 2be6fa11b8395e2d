use trellis_schema::auth::{LoginWithCode, LoginWithCodeParams, LoginWithCodeReason, Tokens};

use super::accounts::{self, CodeCheck, Purpose};
use super::signin::{Refusal, second_stage};
use super::{session, store};
use crate::access::PublicCtx;
use crate::audit::{Event, actions};
use crate::db::models::now;
use crate::rpc::error::HandlerError;
use crate::rpc::registry::Handler;
use trellis_schema::ids::UserId;

impl Handler for LoginWithCode {
    /// An unknown address and a wrong code get the same answers: a code has
    /// 3 attempts, the third wrong one spends it (OTP_EXHAUSTED from then
    /// on), and an address sent no code runs out alike.
    async fn handle(ctx: PublicCtx, p: LoginWithCodeParams) -> Result<Tokens, HandlerError<LoginWithCodeReason>> {
        let key = p.email.normalized();
        ctx.state.auth.throttle.attempt(ctx.ip_addr(), &key).await.map_err(HandlerError::Common)?;
        let (user, address_locked) = store::find_for_sign_in(&ctx.state.db, &key).await?;
        let Some(user) = user else {
            if let Some(until) = address_locked {
                let event = Event::new(&ctx.meta, actions::LOGIN_WITH_CODE).failed("ACCOUNT_LOCKED").row();
                crate::audit::store::record(&ctx.state.db, event).await?;
                return Err(Refusal::Locked(until).into_error());
            }
            return Err(no_code(&ctx, None, &key).await?);
        };
        if let Some(until) = user.locked_at(now()) {
            let event = Event::new(&ctx.meta, actions::LOGIN_WITH_CODE).about(user.id).failed("ACCOUNT_LOCKED").row();
            crate::audit::store::record(&ctx.state.db, event).await?;
            return Err(Refusal::Locked(until).into_error());
        }
        if user.disabled {
            // A disabled account is sent no code, as an unknown address.
            return Err(no_code(&ctx, Some(user.id), &key).await?);
        }
        let hash = ctx.state.auth.codes.hash(Purpose::LoginCode.as_str(), user.id, p.code.expose());
        let refused = match accounts::check_login_code(&ctx.state.db, user.id, &hash).await? {
            CodeCheck::Accepted => None,
            CodeCheck::Invalid => Some(LoginWithCodeReason::OtpInvalid),
            CodeCheck::Exhausted => Some(LoginWithCodeReason::OtpExhausted),
        };
        if let Some(reason) = refused {
            let wire = trellis_schema::ErrorReason::reason(reason).as_str();
            let event = Event::new(&ctx.meta, actions::LOGIN_WITH_CODE).about(user.id).failed(wire).row();
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
        let event = Event::new(&ctx.meta, actions::LOGIN_WITH_CODE).by_user(user.id).row();
        let tokens = session::start(&ctx, &user, &event, true).await?;
        tracing::info!(user_id = %user.id, "signed in with an e-mailed code");
        Ok(tokens)
    }
}

/// The answer for an address that was sent no code (no account, or a
/// disabled one): the attempts of the code it would have had run out as a
/// real code's do, so the answers tell nothing.
async fn no_code(
    ctx: &PublicCtx,
    user_id: Option<UserId>,
    key: &str,
) -> Result<HandlerError<LoginWithCodeReason>, HandlerError<LoginWithCodeReason>> {
    let reason = match accounts::check_address_code(&ctx.state.db, key).await? {
        CodeCheck::Exhausted => LoginWithCodeReason::OtpExhausted,
        _ => LoginWithCodeReason::OtpInvalid,
    };
    let mut event = Event::new(&ctx.meta, actions::LOGIN_WITH_CODE);
    if let Some(id) = user_id {
        event = event.about(id);
    }
    let wire = trellis_schema::ErrorReason::reason(reason).as_str();
    crate::audit::store::record(&ctx.state.db, event.failed(wire).row()).await?;
    Ok(HandlerError::reason(reason))
}
