use chrono::Duration;
use trellis_schema::auth::{Login, LoginParams, LoginReason, Tokens};

use super::accounts;
use super::signin::{Refusal, count_failure, second_stage};
use super::{session, store};
use crate::access::PublicCtx;
use crate::audit::{Event, actions};
use crate::db::models::now;
use crate::rpc::error::HandlerError;
use crate::rpc::registry::Handler;

impl Handler for Login {
    /// An unknown e-mail costs one password verification and one write, like
    /// a wrong password, and gets the same answers, ACCOUNT_LOCKED included
    /// after as many failures. A locked account is refused whatever the
    /// password.
    async fn handle(ctx: PublicCtx, p: LoginParams) -> Result<Tokens, HandlerError<LoginReason>> {
        let key = p.email.normalized();
        ctx.state.auth.throttle.attempt(ctx.ip_addr(), &key).await.map_err(HandlerError::Common)?;
        let (user, address_locked) = store::find_for_sign_in(&ctx.state.db, &key).await?;
        let valid =
            ctx.state.auth.hasher.verify(p.password.expose(), user.as_ref().map(|u| u.password_hash.as_str())).await?;
        let Some(user) = user else {
            // An address without an account fails, and locks, as an account
            // does: the same transaction as a wrong password, the same
            // threshold and lock time, the same answers.
            if let Some(until) = address_locked {
                let event = Event::new(&ctx.meta, actions::LOGIN).failed("ACCOUNT_LOCKED").row();
                crate::audit::store::record(&ctx.state.db, event).await?;
                return Err(Refusal::Locked(until).into_error());
            }
            let event = Event::new(&ctx.meta, actions::LOGIN).failed("INVALID_CREDENTIALS").row();
            let config = &ctx.state.config;
            let until = now() + Duration::minutes(i64::from(config.lockout_minutes));
            let locked =
                accounts::record_address_failure(&ctx.state.db, &key, config.lockout_threshold, until, &event).await?;
            tracing::info!("sign-in refused: invalid credentials");
            if locked.is_some() {
                crate::observe::lockout();
            }
            return Err(locked.map_or(Refusal::InvalidCredentials, Refusal::Locked).into_error());
        };
        if let Some(until) = user.locked_at(now()) {
            let event = Event::new(&ctx.meta, actions::LOGIN).about(user.id).failed("ACCOUNT_LOCKED").row();
            crate::audit::store::record(&ctx.state.db, event).await?;
            return Err(Refusal::Locked(until).into_error());
        }
        if !valid {
            tracing::info!("sign-in refused: invalid credentials");
            return Err(count_failure(&ctx, &user, actions::LOGIN, Refusal::InvalidCredentials).await?.into_error());
        }
        if let Err(refusal) = second_stage(&ctx, &user, p.otp.as_ref(), true, actions::LOGIN).await? {
            return Err(refusal.into_error());
        }
        let event = Event::new(&ctx.meta, actions::LOGIN).by_user(user.id).row();
        let tokens = session::start(&ctx, &user, &event, false).await?;
        tracing::info!(user_id = %user.id, "signed in");
        Ok(tokens)
    }
}
