use trellis_schema::Empty;
use trellis_schema::auth::{EmailParams, ResendVerification};
use trellis_schema::error::NoReason;

use super::accounts::{self, Purpose, VERIFY_EMAIL_HOURS};
use super::signin::{answer_no_sooner, mail_row};
use super::{codes, store};
use crate::access::PublicCtx;
use crate::audit::{Event, actions};
use crate::mail::Mail;
use crate::rpc::error::HandlerError;
use crate::rpc::registry::Handler;

impl Handler for ResendVerification {
    /// Same answer, and one write either way, whether or not the account
    /// exists or is already verified. A new link supersedes the last.
    async fn handle(ctx: PublicCtx, p: EmailParams) -> Result<Empty, HandlerError<NoReason>> {
        let started = tokio::time::Instant::now();
        let key = p.email.normalized();
        ctx.state.auth.throttle.mail(ctx.ip_addr(), &key).await.map_err(HandlerError::Common)?;
        let user = store::find_user_by_email(&ctx.state.db, &key).await?;
        let event = Event::new(&ctx.meta, actions::RESEND_VERIFICATION);
        match user {
            Some(u) if !u.email_verified && !u.disabled => {
                let token = codes::new_link_token();
                let hash = ctx.state.auth.codes.hash(Purpose::VerifyEmail.as_str(), "", &token);
                let row = accounts::token_row(u.id, Purpose::VerifyEmail, hash);
                let mail = mail_row(
                    &ctx,
                    &u.email,
                    &format!("verify:{}", row.id),
                    &Mail::VerifyEmail { name: &u.display_name, token: &token, hours: VERIFY_EMAIL_HOURS },
                )?;
                accounts::issue(&ctx.state.db, Some(&row), Some(&mail), &event.about(u.id).row()).await?;
                ctx.state.mail.wake();
            }
            Some(u) => {
                accounts::issue(&ctx.state.db, None, None, &event.about(u.id).failed("NOT_NEEDED").row()).await?
            }
            None => accounts::issue(&ctx.state.db, None, None, &event.failed("NO_ACCOUNT").row()).await?,
        }
        answer_no_sooner(started).await;
        Ok(Empty {})
    }
}
