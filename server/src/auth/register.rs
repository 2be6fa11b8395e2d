use trellis_schema::auth::{Register, RegisterParams, RegisterReason, RegisterResult};
use trellis_schema::ids::UserId;
use uuid::Uuid;

use super::accounts::{self, Purpose, VERIFY_EMAIL_HOURS};
use super::signin::{answer_no_sooner, mail_row, policy_error};
use super::{codes, store};
use crate::access::PublicCtx;
use crate::audit::{Event, actions};
use crate::db::models::UserRow;
use crate::mail::Mail;
use crate::rpc::error::HandlerError;
use crate::rpc::registry::Handler;

impl Handler for Register {
    /// Whether or not the address is taken, the caller gets the same answer
    /// after the same work (one hash, one read, one write, and no sooner than
    /// the floor of requests that send mail): registering tells nobody
    /// which addresses have accounts. The owner of a taken address is told
    /// by mail instead.
    async fn handle(ctx: PublicCtx, p: RegisterParams) -> Result<RegisterResult, HandlerError<RegisterReason>> {
        let started = tokio::time::Instant::now();
        let key = p.email.normalized();
        ctx.state.auth.throttle.mail(ctx.ip_addr(), &key).await.map_err(HandlerError::Common)?;
        let name = p.display_name.map(String::from).unwrap_or_default();
        let violations = ctx.state.auth.policy.violations(p.password.expose(), p.email.as_str(), &name);
        if !violations.is_empty() {
            return Err(policy_error(RegisterReason::PasswordPolicy, &violations));
        }
        let hash = ctx.state.auth.hasher.hash(p.password.expose()).await?;
        let user = UserRow::new(&p.email, hash, name);
        let token = codes::new_link_token();
        let token_row = accounts::token_row(
            user.id,
            Purpose::VerifyEmail,
            ctx.state.auth.codes.hash(Purpose::VerifyEmail.as_str(), "", &token),
        );
        let mail = mail_row(
            &ctx,
            &user.email,
            &format!("verify:{}", token_row.id),
            &Mail::VerifyEmail { name: &user.display_name, token: &token, hours: VERIFY_EMAIL_HOURS },
        )?;
        let event = Event::new(&ctx.meta, actions::REGISTER).by_user(user.id).row();
        // One read and one write transaction either way.
        let existing = store::find_user_by_email(&ctx.state.db, &key).await?;
        let created =
            existing.is_none() && accounts::insert_account(&ctx.state.db, &user, &token_row, &mail, &event).await?;
        let user_id = if created {
            tracing::info!(user_id = %user.id, "account registered");
            user.id
        } else {
            tracing::info!("registration for an address that already has an account");
            let existing = match existing {
                Some(u) => Some(u),
                // Registered between the read and the insert.
                None => store::find_user_by_email(&ctx.state.db, &key).await?,
            };
            let mut event = Event::new(&ctx.meta, actions::REGISTER).failed("ALREADY_EXISTS");
            let mail = match &existing {
                Some(u) => {
                    event = event.about(u.id);
                    Some(mail_row(
                        &ctx,
                        &u.email,
                        &format!("exists:{}", Uuid::now_v7()),
                        &Mail::AccountExists { name: &u.display_name },
                    )?)
                }
                None => None,
            };
            accounts::issue(&ctx.state.db, None, mail.as_ref(), &event.row()).await?;
            // An id like a new account's: the answer does not tell.
            UserId::new()
        };
        ctx.state.mail.wake();
        answer_no_sooner(started).await;
        Ok(RegisterResult { user_id, verification_required: ctx.state.config.require_verified_email() })
    }
}
