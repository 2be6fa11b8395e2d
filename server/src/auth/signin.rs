//! What every way of signing in shares: the checks after the first factor
//! (lockout, disabled account, second factor, verified address, password
//! age), counting failures, and the mail helpers.

use chrono::{Duration, NaiveDateTime};
use trellis_schema::notifications::EventType;
use trellis_schema::values::OneTimeCode;
use trellis_schema::{ErrorReason, Reason};

use super::accounts;
use super::policy::Violation;
use super::totp;
use crate::access::Call;
use crate::audit::{Event, actions};
use crate::db::models::{OutboxRow, UserRow, now};
use crate::mail::{Mail, outbox};
use crate::rpc::error::HandlerError;
use trellis_schema::ids::AuditEventId;

/// Why a sign-in is refused after the first factor was checked.
#[derive(Debug, Clone, Copy)]
pub(super) enum Refusal {
    InvalidCredentials,
    Locked(NaiveDateTime),
    Disabled,
    MfaRequired,
    OtpInvalid,
    NotVerified,
    PasswordExpired,
}

impl Refusal {
    pub(super) fn reason(self) -> Reason {
        match self {
            Self::InvalidCredentials => Reason::InvalidCredentials,
            Self::Locked(_) => Reason::AccountLocked,
            Self::Disabled => Reason::AccountDisabled,
            Self::MfaRequired => Reason::MfaRequired,
            Self::OtpInvalid => Reason::OtpInvalid,
            Self::NotVerified => Reason::EmailNotVerified,
            Self::PasswordExpired => Reason::PasswordExpired,
        }
    }

    /// The refusal as one of the procedure's reasons, with `retryAfterMs`
    /// for a lock.
    pub(super) fn into_error<R: ErrorReason>(self) -> HandlerError<R> {
        let reason = self.reason();
        let Some(r) = R::ALL.iter().copied().find(|r| r.reason() == reason) else {
            return HandlerError::Internal(anyhow::anyhow!("{reason} is not a reason of this procedure"));
        };
        let mut e = HandlerError::reason(r);
        if let (Self::Locked(until), HandlerError::Reason { data, message, .. }) = (self, &mut e) {
            let ms = (until - now()).num_milliseconds().max(1);
            data.insert("retryAfterMs".into(), ms.into());
            *message = Some("the account is locked after too many failed sign-ins; try again later".into());
        }
        e
    }
}

/// The checks every sign-in makes once the first factor (password or
/// e-mailed code) is proven: the account is enabled, the second factor (when
/// MFA is on), the address verified (when required), the password not expired.
pub(super) async fn second_stage<R>(
    ctx: &Call,
    user: &UserRow,
    otp: Option<&OneTimeCode>,
    with_password: bool,
    action: &str,
) -> Result<Result<(), Refusal>, HandlerError<R>> {
    if user.disabled {
        return refuse(ctx, user, action, Refusal::Disabled).await;
    }
    if user.mfa_enabled {
        let Some(code) = otp else { return refuse(ctx, user, action, Refusal::MfaRequired).await };
        if !second_factor(ctx, user, code).await? {
            return count_failure(ctx, user, action, Refusal::OtpInvalid).await.map(Err);
        }
    }
    if ctx.state.config.require_verified_email() && !user.email_verified {
        return refuse(ctx, user, action, Refusal::NotVerified).await;
    }
    if with_password && ctx.state.auth.policy.expired(user.password_changed_at.unwrap_or(user.created_at), now()) {
        return refuse(ctx, user, action, Refusal::PasswordExpired).await;
    }
    Ok(Ok(()))
}

/// Records a refusal that does not count as a failed attempt.
async fn refuse<R>(
    ctx: &Call,
    user: &UserRow,
    action: &str,
    refusal: Refusal,
) -> Result<Result<(), Refusal>, HandlerError<R>> {
    let event = Event::new(&ctx.meta, action).about(user.id).failed(refusal.reason().as_str()).row();
    crate::audit::store::record(&ctx.state.db, event).await?;
    Ok(Err(refusal))
}

/// A TOTP code (once per time step) or an unused recovery code.
pub(crate) async fn second_factor<R>(ctx: &Call, user: &UserRow, code: &OneTimeCode) -> Result<bool, HandlerError<R>> {
    if code.is_six_digits() {
        let Some(stored) = user.totp_secret.as_deref() else { return Ok(false) };
        let secret = ctx.state.auth.secrets.open(stored, user.id)?;
        let Some(step) = totp::matching_step(&secret, code.expose(), totp::current_step()) else { return Ok(false) };
        Ok(crate::mfa::store::accept_totp_step(&ctx.state.db, user.id, step).await?)
    } else {
        let hash = ctx.state.auth.codes.hash("recovery", user.id, code.expose());
        Ok(crate::mfa::store::use_recovery_code(&ctx.state.db, user.id, &hash).await?)
    }
}

/// Counts a failed attempt on `user`'s account; at the threshold it locks
/// and the owner is told by mail. Returns the refusal to answer with.
pub(super) async fn count_failure<R>(
    ctx: &Call,
    user: &UserRow,
    action: &str,
    refusal: Refusal,
) -> Result<Refusal, HandlerError<R>> {
    let config = &ctx.state.config;
    let failure = Event::new(&ctx.meta, action).about(user.id).failed(refusal.reason().as_str()).row();
    let lock_event = Event::new(&ctx.meta, actions::ACCOUNT_LOCKED).about(user.id).row();
    let mail = mail_row(
        ctx,
        &user.email,
        &format!("locked:{}", lock_event.id),
        &Mail::AccountLocked {
            name: &user.display_name,
            failures: config.lockout_threshold,
            minutes: config.lockout_minutes,
        },
    )?;
    let until = now() + Duration::minutes(i64::from(config.lockout_minutes));
    let locked = accounts::record_failure(
        &ctx.state.db,
        user.id,
        config.lockout_threshold,
        until,
        &failure,
        Some((&lock_event, &mail)),
    )
    .await?;
    Ok(match locked {
        Some(until) => {
            ctx.state.mail.wake();
            ctx.state
                .events
                .tell(
                    &ctx.state.db,
                    EventType::AccountLocked,
                    user.id,
                    "Your account was locked",
                    "Your account was locked after repeated failed sign-ins.",
                )
                .await;
            tracing::warn!(user_id = %user.id, "account locked after repeated failed sign-ins");
            crate::observe::lockout();
            Refusal::Locked(until)
        }
        None => refusal,
    })
}

/// Renders `mail` for the outbox, to `recipient`, for the event `event`.
pub(crate) fn mail_row<R>(
    ctx: &Call,
    recipient: &str,
    event: &str,
    mail: &Mail<'_>,
) -> Result<OutboxRow, HandlerError<R>> {
    let rendered = mail.render(&ctx.state.config.public_url)?;
    Ok(outbox::row(recipient, event, rendered))
}

/// A PASSWORD_POLICY error listing every violation.
pub(super) fn policy_error<R: ErrorReason>(reason: R, violations: &[Violation]) -> HandlerError<R> {
    let list: Vec<&str> = violations.iter().map(|v| v.message.as_str()).collect();
    HandlerError::Reason {
        reason,
        message: Some(format!("the password does not meet the policy: it {}", list.join("; it ")).into()),
        data: [("violations".to_owned(), serde_json::to_value(violations).unwrap_or_default())].into_iter().collect(),
    }
}

/// Checks a new password for `user` against the policy and the account's
/// recent passwords, and hashes it. The two reasons are the procedure's own
/// PASSWORD_POLICY and PASSWORD_REUSED.
pub(super) async fn new_password_hash<R: ErrorReason>(
    ctx: &Call,
    user: &UserRow,
    password: &str,
    policy: R,
    reused: R,
) -> Result<String, HandlerError<R>> {
    let violations = ctx.state.auth.policy.violations(password, &user.email, &user.display_name);
    if !violations.is_empty() {
        return Err(policy_error(policy, &violations));
    }
    if recently_used(ctx, user, password).await? {
        return Err(HandlerError::reason(reused));
    }
    Ok(ctx.state.auth.hasher.hash(password).await?)
}

/// The "your password was changed" mail of `event`.
pub(super) fn password_changed_mail<R>(
    ctx: &Call,
    user: &UserRow,
    event: AuditEventId,
) -> Result<OutboxRow, HandlerError<R>> {
    mail_row(ctx, &user.email, &format!("changed:{event}"), &Mail::PasswordChanged { name: &user.display_name })
}

/// Whether `password` is the account's current or one of its recent
/// passwords (each checked against its argon2 hash).
async fn recently_used<R>(ctx: &Call, user: &UserRow, password: &str) -> Result<bool, HandlerError<R>> {
    let n = ctx.state.auth.policy.history;
    if n == 0 {
        return Ok(false);
    }
    let mut hashes = vec![user.password_hash.clone()];
    hashes.extend(accounts::previous_hashes(&ctx.state.db, user.id, n.saturating_sub(1)).await?);
    for h in &hashes {
        if ctx.state.auth.hasher.verify(password, Some(h)).await? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// How long a request that may send mail (a reset link, a verification
/// link, a sign-in code) takes at least. The work differs by whether the
/// address has an account (a token and a mail, or neither); answering no
/// sooner than this hides the difference.
const MAIL_REQUEST_FLOOR: std::time::Duration = std::time::Duration::from_millis(50);

/// Waits until [`MAIL_REQUEST_FLOOR`] has passed since `started`.
pub(super) async fn answer_no_sooner(started: tokio::time::Instant) {
    tokio::time::sleep_until(started + MAIL_REQUEST_FLOOR).await;
}
