//! Starting a session and issuing the tokens that carry it.

use trellis_schema::notifications::EventType;
use chrono::Duration;
use trellis_schema::auth::{TokenType, Tokens};

use super::store;
use super::tokens::{new_refresh_token, token_hash};
use crate::access::Call;
use crate::db::models::{AuditEventRow, RefreshTokenRow, SessionRow, UserRow, now};
use crate::rpc::error::HandlerError;
use crate::state::State;
use trellis_schema::ids::SessionId;

/// A new refresh token row for `session_id`, and the token itself.
pub(super) fn refresh_row(state: &State, session_id: SessionId) -> (String, RefreshTokenRow) {
    let token = new_refresh_token();
    let t = now();
    let days = i64::try_from(state.config.refresh_token_ttl_days).unwrap_or(30);
    let row = RefreshTokenRow {
        token_hash: token_hash(&token),
        session_id,
        created_at: t,
        expires_at: t + Duration::days(days),
        used_at: None,
    };
    (token, row)
}

/// Starts a session for `user` and returns its first tokens. In the same
/// transaction the sign-in `event` is recorded, the failure count cleared
/// and, when `verified` (the user proved control of the address), the
/// address marked verified.
pub(super) async fn start<R>(
    ctx: &Call,
    user: &UserRow,
    event: &AuditEventRow,
    verified: bool,
) -> Result<Tokens, HandlerError<R>> {
    let session_id = SessionId::new();
    let t = now();
    let session = SessionRow {
        id: session_id,
        user_id: user.id,
        created_at: t,
        last_used_at: t,
        user_agent: ctx.meta.user_agent.clone(),
        ip: ctx.ip(),
        revoked_at: None,
        revoked_reason: None,
    };
    let (refresh, row) = refresh_row(&ctx.state, session.id);
    let known = store::has_signed_in_from(&ctx.state.db, user.id, session.user_agent.as_deref()).await?;
    store::create_session(&ctx.state.db, &session, &row, event, verified).await?;
    if !known.device && known.any {
        let device = session.user_agent.as_deref().unwrap_or("an unknown device");
        let body = format!("Someone signed in to your account from {device}. If it was not you, change your password now.");
        ctx.state.events.tell(&ctx.state.db, EventType::NewDeviceSignIn, user.id, "New sign-in to your account", &body).await;
    }
    let mut user = user.clone();
    user.email_verified |= verified;
    Ok(tokens(&ctx.state, &user, session_id, refresh)?)
}

pub(super) fn tokens(
    state: &State,
    user: &UserRow,
    session_id: SessionId,
    refresh_token: String,
) -> anyhow::Result<Tokens> {
    let user = user.to_api();
    Ok(Tokens {
        access_token: state.auth.tokens.issue(user.id, session_id)?,
        refresh_token,
        token_type: TokenType::Bearer,
        expires_in: state.auth.tokens.access_ttl.as_secs(),
        user,
    })
}
