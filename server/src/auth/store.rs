//! Account and session queries, portable across both backends.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};

use crate::db::models::{AuditEventRow, OrgRow, RefreshTokenRow, SessionRow, UserRow, now};
use crate::db::schema::{address_lockouts, audit_events, org_members, orgs, refresh_tokens, sessions, users};
use crate::db::{Db, DbError, db_read, db_run};
use trellis_schema::ids::{SessionId, UserId};

pub(crate) async fn find_user(db: &Db, id: UserId) -> Result<Option<UserRow>, DbError> {
    db_read!(db, |conn| Ok(users::table.find(id).select(UserRow::as_select()).first(conn).await.optional()?))
}

/// The account row of the signed-in caller of a user-level procedure.
pub(crate) async fn signed_in_user<R>(
    ctx: &crate::access::Call,
    me: crate::access::Principal,
) -> Result<UserRow, crate::rpc::error::HandlerError<R>> {
    let user = find_user(&ctx.state.db, me.user_id).await?;
    Ok(user.ok_or_else(|| anyhow::anyhow!("a signed-in user has no account row"))?)
}

pub(crate) async fn find_user_by_email(db: &Db, email_key: &str) -> Result<Option<UserRow>, DbError> {
    db_read!(db, |conn| Ok(users::table
        .filter(users::email_key.eq(email_key))
        .select(UserRow::as_select())
        .first(conn)
        .await
        .optional()?))
}

/// What sign-in needs to know of an address: its account, if any, and, for
/// an address without one, until when it is locked (see
/// `accounts::record_address_failure`). Both are read either way, so the
/// work does not tell whether the address is registered.
pub(crate) async fn find_for_sign_in(
    db: &Db,
    email_key: &str,
) -> Result<(Option<UserRow>, Option<NaiveDateTime>), DbError> {
    db_read!(db, |conn| {
        let user = users::table
            .filter(users::email_key.eq(email_key))
            .select(UserRow::as_select())
            .first(conn)
            .await
            .optional()?;
        let address: Option<Option<NaiveDateTime>> = address_lockouts::table
            .find(email_key)
            .select(address_lockouts::locked_until)
            .first(conn)
            .await
            .optional()?;
        let t = now();
        let locked = if user.is_some() { None } else { address.flatten().filter(|until| *until > t) };
        Ok::<_, DbError>((user, locked))
    })
}

/// Inserts a user; `Ok(false)` when the e-mail is already registered.
pub(crate) async fn insert_user(db: &Db, row: &UserRow) -> Result<bool, DbError> {
    let result: Result<usize, DbError> =
        db_run!(db, |conn| diesel::insert_into(users::table).values(row).execute(conn).await.map_err(DbError::from));
    match result {
        Ok(_) => Ok(true),
        Err(DbError::UniqueViolation(_)) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Starts a session and stores its first refresh token, with the sign-in's
/// audit event, in one transaction. A sign-in clears the failure count, and
/// with `verified` marks the address verified.
/// What `user`'s past sessions say of a sign-in from `user_agent`.
pub(crate) struct KnownDevice {
    /// They signed in before, from anywhere.
    pub any: bool,
    /// They signed in before from this user agent.
    pub device: bool,
}

/// Whether `user` signed in before, and from `user_agent` (sessions kept
/// since, ended or not).
pub(crate) async fn has_signed_in_from(db: &Db, user: UserId, user_agent: Option<&str>) -> Result<KnownDevice, DbError> {
    let agents: Vec<Option<String>> = db_read!(db, |conn| {
        sessions::table
            .filter(sessions::user_id.eq(user))
            .select(sessions::user_agent)
            .distinct()
            .limit(1000)
            .load(conn)
            .await
            .map_err(DbError::from)
    })?;
    Ok(KnownDevice { any: !agents.is_empty(), device: agents.iter().any(|a| a.as_deref() == user_agent) })
}

pub(crate) async fn create_session(
    db: &Db,
    session: &SessionRow,
    refresh: &RefreshTokenRow,
    event: &AuditEventRow,
    verified: bool,
) -> Result<(), DbError> {
    db_run!(db, |conn| conn
        .transaction(async |conn| {
            diesel::insert_into(sessions::table).values(session).execute(conn).await?;
            diesel::insert_into(refresh_tokens::table).values(refresh).execute(conn).await?;
            diesel::insert_into(audit_events::table).values(event).execute(conn).await?;
            diesel::update(users::table.filter(users::id.eq(&session.user_id)).filter(users::failed_logins.ne(0)))
                .set(users::failed_logins.eq(0))
                .execute(conn)
                .await?;
            if verified {
                diesel::update(
                    users::table.filter(users::id.eq(&session.user_id)).filter(users::email_verified.eq(false)),
                )
                .set(users::email_verified.eq(true))
                .execute(conn)
                .await?;
            }
            Ok::<_, DbError>(())
        })
        .await)
}

/// The user's live sessions, newest first.
pub(crate) async fn live_sessions(db: &Db, user_id: UserId) -> Result<Vec<SessionRow>, DbError> {
    let uid = user_id;
    db_read!(db, |conn| sessions::table
        .filter(sessions::user_id.eq(&uid))
        .filter(sessions::revoked_at.is_null())
        .order(sessions::created_at.desc())
        .select(SessionRow::as_select())
        .load(conn)
        .await
        .map_err(DbError::from))
}

/// What presenting a refresh token led to.
pub(crate) enum Rotation {
    /// The token was current: it is now used, and `new` replaces it.
    Rotated {
        user: Box<UserRow>,
        session_id: SessionId,
    },
    /// The token had been used before: its session is now ended (and the
    /// `reused` event recorded with it).
    Reused {
        session_id: SessionId,
    },
    Expired,
    /// Unknown token, or its session has ended.
    Invalid,
}

/// Marks `token_hash` used and stores `new` in its place, atomically. Two
/// concurrent uses of one token cannot both succeed: the conditional update
/// lets exactly one through, and the other is treated as reuse.
/// A reused token's session ends in the same transaction as the `reused`
/// event (its subject and target filled in here) is recorded.
pub(crate) async fn rotate_refresh_token(
    db: &Db,
    token_hash: &str,
    new: &RefreshTokenRow,
    reused: &AuditEventRow,
) -> Result<Rotation, DbError> {
    let t = now();
    db_run!(db, |conn| conn
        .transaction(async |conn| {
            let claimed = diesel::update(
                refresh_tokens::table
                    .filter(refresh_tokens::token_hash.eq(token_hash))
                    .filter(refresh_tokens::used_at.is_null()),
            )
            .set(refresh_tokens::used_at.eq(t))
            .execute(conn)
            .await?;
            let found: Option<(RefreshTokenRow, SessionRow)> = refresh_tokens::table
                .inner_join(sessions::table)
                .filter(refresh_tokens::token_hash.eq(token_hash))
                .select((RefreshTokenRow::as_select(), SessionRow::as_select()))
                .first(conn)
                .await
                .optional()?;
            let Some((token, session)) = found else { return Ok::<_, DbError>(Rotation::Invalid) };
            let session_id = session.id;
            if claimed == 0 {
                let ended = diesel::update(sessions::table.find(&session.id).filter(sessions::revoked_at.is_null()))
                    .set((sessions::revoked_at.eq(t), sessions::revoked_reason.eq("refresh token reused")))
                    .execute(conn)
                    .await?;
                let mut event = reused.clone();
                event.subject_user_id = Some(session.user_id);
                event.target = Some(format!("session:{session_id}"));
                if ended == 0 {
                    event.detail = Some("the session had already ended".into());
                }
                diesel::insert_into(audit_events::table).values(&event).execute(conn).await?;
                return Ok(Rotation::Reused { session_id });
            }
            if session.revoked_at.is_some() {
                return Ok(Rotation::Invalid);
            }
            if token.expires_at <= t {
                return Ok(Rotation::Expired);
            }
            let mut new = new.clone();
            new.session_id = session.id;
            diesel::insert_into(refresh_tokens::table).values(&new).execute(conn).await?;
            // Ended meanwhile: the new token belongs to an ended session and
            // is never accepted.
            let live = diesel::update(sessions::table.find(&session.id).filter(sessions::revoked_at.is_null()))
                .set(sessions::last_used_at.eq(t))
                .execute(conn)
                .await?;
            if live == 0 {
                return Ok(Rotation::Invalid);
            }
            let user = users::table.find(&session.user_id).select(UserRow::as_select()).first(conn).await?;
            Ok(Rotation::Rotated { user: Box::new(user), session_id })
        })
        .await)
}

/// Ends one session of `user_id`, recording `event` in the same
/// transaction; `false` (and nothing recorded) if there was no such live
/// session.
pub(crate) async fn end_session(
    db: &Db,
    user_id: UserId,
    session_id: SessionId,
    reason: &str,
    event: &AuditEventRow,
) -> Result<bool, DbError> {
    let (uid, sid, t) = (user_id, session_id, now());
    db_run!(db, |conn| conn
        .transaction(async |conn| {
            let n = diesel::update(
                sessions::table
                    .filter(sessions::id.eq(&sid))
                    .filter(sessions::user_id.eq(&uid))
                    .filter(sessions::revoked_at.is_null()),
            )
            .set((sessions::revoked_at.eq(t), sessions::revoked_reason.eq(reason)))
            .execute(conn)
            .await?;
            if n == 0 {
                return Ok::<_, DbError>(false);
            }
            diesel::insert_into(audit_events::table).values(event).execute(conn).await?;
            Ok(true)
        })
        .await)
}

/// Ends every live session of `user_id`, recording `event` (its detail
/// says how many) in the same transaction; returns their ids.
pub(crate) async fn end_all_sessions(
    db: &Db,
    user_id: UserId,
    reason: &str,
    event: &AuditEventRow,
) -> Result<Vec<SessionId>, DbError> {
    let (uid, t) = (user_id, now());
    let ids: Vec<SessionId> = db_run!(db, |conn| conn
        .transaction(async |conn| {
            // One statement ends them and says which: none ended meanwhile
            // is counted or rewritten.
            let ids: Vec<SessionId> = diesel::update(
                sessions::table.filter(sessions::user_id.eq(&uid)).filter(sessions::revoked_at.is_null()),
            )
            .set((sessions::revoked_at.eq(t), sessions::revoked_reason.eq(reason)))
            .returning(sessions::id)
            .get_results(conn)
            .await?;
            let mut event = event.clone();
            event.detail = Some(format!("{} session(s) ended", ids.len()));
            diesel::insert_into(audit_events::table).values(&event).execute(conn).await?;
            Ok::<_, DbError>(ids)
        })
        .await?);
    Ok(ids)
}

/// A user with the organizations they belong to and the role held in each,
/// in one query.
pub(crate) async fn user_with_memberships(
    db: &Db,
    user_id: UserId,
) -> Result<Option<(UserRow, Vec<(OrgRow, String)>)>, DbError> {
    let uid = user_id;
    let rows: Vec<(UserRow, Option<OrgRow>, Option<String>)> = db_read!(db, |conn| users::table
        .left_join(org_members::table.inner_join(orgs::table))
        .filter(users::id.eq(&uid))
        .order(orgs::name.asc())
        .select((UserRow::as_select(), Option::<OrgRow>::as_select(), org_members::role.nullable()))
        .load(conn)
        .await
        .map_err(DbError::from)?);
    let mut rows = rows.into_iter().peekable();
    let Some((user, _, _)) = rows.peek().cloned() else { return Ok(None) };
    let memberships = rows.filter_map(|(_, org, role)| Some((org?, role?))).collect();
    Ok(Some((user, memberships)))
}
