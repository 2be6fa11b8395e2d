use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use trellis_schema::health::Empty;
use trellis_schema::mfa::{EnrollTotp, EnrollTotpReason, EnrollTotpResult};

use crate::audit::{Event, actions};
use crate::auth::{accounts, store, totp};
use crate::rpc::context::Ctx;
use crate::rpc::error::HandlerError;
use crate::rpc::registry::Handler;

impl Handler for EnrollTotp {
    /// A new 160-bit secret, pending until confirmed with a code. Enrolling
    /// again before confirming replaces the pending secret.
    async fn handle(ctx: Ctx, _: Empty) -> Result<EnrollTotpResult, HandlerError<EnrollTotpReason>> {
        let user = store::signed_in_user(&ctx).await?;
        if user.mfa_enabled {
            return Err(HandlerError::reason(EnrollTotpReason::AlreadyExists));
        }
        let secret: [u8; 20] = rand::random();
        let event = Event::new(&ctx.meta, actions::MFA_ENROLL).by_user(&user.id).row();
        accounts::set_pending_totp(&ctx.state.db, &user.id, &STANDARD.encode(secret), &event).await?;
        Ok(EnrollTotpResult { secret: totp::base32(&secret), otpauth_url: totp::otpauth_url(&secret, &user.email) })
    }
}
