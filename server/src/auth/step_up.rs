//! Step-up: changes to how an account is protected (turning MFA on or off)
//! and making credentials that outlive the session (API keys) need proof
//! that the owner is at the keyboard now, not only a live access token: the
//! current password, or a sign-in within `TRELLIS_STEP_UP_SECS` (the
//! session's start; refreshing tokens does not renew it).

use chrono::Duration;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use trellis_schema::values::Password;
use trellis_schema::{ErrorReason, Reason};

use super::signin::{Refusal, count_failure};
use crate::access::{Call, Principal};
use crate::audit::Event;
use crate::db::models::{UserRow, now};
use crate::db::schema::sessions;
use crate::db::{DbError, db_read};
use crate::rpc::error::HandlerError;

/// Lets the call through when `password` is the account's current one, or,
/// with no password given, when `caller`'s session began at most
/// `TRELLIS_STEP_UP_SECS` ago. A wrong password is throttled and counted
/// like a failed sign-in (INVALID_CREDENTIALS, or ACCOUNT_LOCKED when it
/// locks the account); a locked account cannot prove itself by password.
/// `R` must hold REAUTHENTICATION_REQUIRED, INVALID_CREDENTIALS and
/// ACCOUNT_LOCKED.
pub(crate) async fn require<R: ErrorReason>(
    ctx: &Call,
    user: &UserRow,
    caller: Principal,
    password: Option<&Password>,
    action: &str,
) -> Result<(), HandlerError<R>> {
    let Some(password) = password else {
        if signed_in_within(ctx, caller).await? {
            return Ok(());
        }
        let event = Event::new(&ctx.meta, action).by_user(user.id).failed(Reason::ReauthenticationRequired.as_str());
        crate::audit::store::record(&ctx.state.db, event.row()).await?;
        return Err(reason_error(
            Reason::ReauthenticationRequired,
            format!(
                "give the current password (currentPassword), or sign in again: this change needs a sign-in within \
                 the last {} seconds",
                ctx.state.config.step_up_secs
            ),
        ));
    };
    check_password(ctx, user, password, action).await
}

/// The account's current password, given by its signed-in owner (step-up,
/// `auth.changePassword`): throttled per IP and account like a sign-in, refused
/// while the account is locked (ACCOUNT_LOCKED), and a wrong one counted as a
/// failed sign-in (INVALID_CREDENTIALS, or ACCOUNT_LOCKED when it locks), so
/// a stolen access token cannot be used to guess the password for long.
pub(crate) async fn check_password<R: ErrorReason>(
    ctx: &Call,
    user: &UserRow,
    password: &Password,
    action: &str,
) -> Result<(), HandlerError<R>> {
    ctx.state.auth.throttle.attempt(ctx.ip_addr(), &user.email_key).await.map_err(HandlerError::Common)?;
    if let Some(until) = user.locked_at(now()) {
        let event = Event::new(&ctx.meta, action).by_user(user.id).failed(Reason::AccountLocked.as_str());
        crate::audit::store::record(&ctx.state.db, event.row()).await?;
        return Err(Refusal::Locked(until).into_error());
    }
    if ctx.state.auth.hasher.verify(password.expose(), Some(&user.password_hash)).await? {
        return Ok(());
    }
    tracing::info!(user_id = %user.id, action, "password refused");
    Err(count_failure(ctx, user, action, Refusal::InvalidCredentials).await?.into_error())
}

/// Whether the caller's session began within the step-up window.
async fn signed_in_within<R>(ctx: &Call, caller: Principal) -> Result<bool, HandlerError<R>> {
    let sid = caller.session_id;
    let started: Option<chrono::NaiveDateTime> = db_read!(ctx.state.db, |conn| sessions::table
        .find(&sid)
        .filter(sessions::revoked_at.is_null())
        .select(sessions::created_at)
        .first(conn)
        .await
        .optional()
        .map_err(DbError::from)?);
    let secs = i64::try_from(ctx.state.config.step_up_secs).unwrap_or(i64::MAX);
    let window = Duration::try_seconds(secs).unwrap_or(Duration::days(3650));
    Ok(started.is_some_and(|t| now() - t <= window))
}

fn reason_error<R: ErrorReason>(reason: Reason, message: String) -> HandlerError<R> {
    match R::ALL.iter().copied().find(|r| r.reason() == reason) {
        Some(r) => HandlerError::Reason { reason: r, message: Some(message.into()), data: serde_json::Map::new() },
        None => HandlerError::Internal(anyhow::anyhow!("{reason} is not a reason of this procedure")),
    }
}
