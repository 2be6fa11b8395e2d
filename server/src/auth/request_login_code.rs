use trellis_schema::Empty;
use trellis_schema::auth::{EmailParams, RequestLoginCode};
use trellis_schema::error::NoReason;

use super::accounts::{self, LOGIN_CODE_ATTEMPTS, LOGIN_CODE_MINUTES, Purpose};
use super::signin::{answer_no_sooner, mail_row};
use super::{codes, store};
use crate::access::PublicCtx;
use crate::audit::{Event, actions};
use crate::mail::Mail;
use crate::rpc::error::HandlerError;
use crate::rpc::registry::Handler;

impl Handler for RequestLoginCode {
    /// Same answer, and one write either way, whether or not the account
    /// exists; only an enabled account gets a code.
    async fn handle(ctx: PublicCtx, p: EmailParams) -> Result<Empty, HandlerError<NoReason>> {
        let started = tokio::time::Instant::now();
        let key = p.email.normalized();
        ctx.state.auth.throttle.mail(ctx.ip_addr(), &key).await.map_err(HandlerError::Common)?;
        let user = store::find_user_by_email(&ctx.state.db, &key).await?.filter(|u| !u.disabled);
        let event = Event::new(&ctx.meta, actions::REQUEST_LOGIN_CODE);
        match user {
            Some(u) => {
                let code = codes::new_six_digit_code();
                let hash = ctx.state.auth.codes.hash(Purpose::LoginCode.as_str(), u.id, &code);
                let token = accounts::token_row(u.id, Purpose::LoginCode, hash);
                let mail = mail_row(
                    &ctx,
                    &u.email,
                    &format!("code:{}", token.id),
                    &Mail::LoginCode {
                        name: &u.display_name,
                        code: &code,
                        minutes: LOGIN_CODE_MINUTES,
                        attempts: LOGIN_CODE_ATTEMPTS,
                    },
                )?;
                accounts::issue(&ctx.state.db, Some(&token), Some(&mail), &event.about(u.id).row()).await?;
                ctx.state.mail.wake();
            }
            None => accounts::issue_address_code(&ctx.state.db, &key, &event.failed("NO_ACCOUNT").row()).await?,
        }
        answer_no_sooner(started).await;
        Ok(Empty {})
    }
}
