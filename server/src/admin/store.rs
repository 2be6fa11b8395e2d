//! Queries over every account.

use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};

use crate::db::models::{AuditEventRow, UserRow, now};
use crate::db::schema::{audit_events, sessions, users};
use crate::db::{Db, DbError, db_read, db_run};
use trellis_schema::ids::{SessionId, UserId};

diesel::define_sql_function!(fn lower(x: diesel::sql_types::Text) -> diesel::sql_types::Text);

/// Accounts in creation order after `after`, whose address or name contains
/// `query` (any case).
pub(crate) async fn list_users(
    db: &Db,
    query: Option<&str>,
    after: Option<UserId>,
    limit: i64,
) -> Result<Vec<UserRow>, DbError> {
    let pattern = query.map(|q| {
        let escaped = q.to_lowercase().replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
        format!("%{escaped}%")
    });
    db_read!(db, |conn| {
        let mut q = users::table.order(users::id.asc()).limit(limit).select(UserRow::as_select()).into_boxed();
        if let Some(after) = after {
            q = q.filter(users::id.gt(after.to_owned()));
        }
        if let Some(p) = &pattern {
            q = q.filter(
                users::email_key
                    .like(p.clone())
                    .escape('\\')
                    .or(lower(users::display_name).like(p.clone()).escape('\\')),
            );
        }
        q.load(conn).await.map_err(DbError::from)
    })
}

/// Sets whether an account is disabled; disabling ends its sessions.
/// Returns the user and the sessions ended, or `None` if there is no such user.
pub(crate) async fn set_disabled(
    db: &Db,
    user_id: UserId,
    disabled: bool,
    event: &AuditEventRow,
) -> Result<Option<(UserRow, Vec<SessionId>)>, DbError> {
    let t = now();
    let out: Option<(UserRow, Vec<SessionId>)> = db_run!(db, |conn| conn
        .transaction(async |conn| {
            let n = diesel::update(users::table.find(user_id))
                .set((users::disabled.eq(disabled), users::updated_at.eq(t)))
                .execute(conn)
                .await?;
            if n == 0 {
                return Ok::<_, DbError>(None);
            }
            let mut ended = Vec::new();
            if disabled {
                ended = diesel::update(
                    sessions::table.filter(sessions::user_id.eq(user_id)).filter(sessions::revoked_at.is_null()),
                )
                .set((sessions::revoked_at.eq(t), sessions::revoked_reason.eq("account disabled")))
                .returning(sessions::id)
                .get_results(conn)
                .await?;
            }
            diesel::insert_into(audit_events::table).values(event).execute(conn).await?;
            let user = users::table.find(user_id).select(UserRow::as_select()).first(conn).await?;
            Ok(Some((user, ended)))
        })
        .await?);
    Ok(out)
}

/// Lifts a lockout; `false` if there is no such user.
pub(crate) async fn unlock(db: &Db, user_id: UserId, event: &AuditEventRow) -> Result<bool, DbError> {
    db_run!(db, |conn| conn
        .transaction(async |conn| {
            let n = diesel::update(users::table.find(user_id))
                .set((users::failed_logins.eq(0), users::locked_until.eq(None::<chrono::NaiveDateTime>)))
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

/// Makes an existing account an administrator; `false` if there is none.
pub(crate) async fn promote(db: &Db, email_key: &str, event: &AuditEventRow) -> Result<Option<UserId>, DbError> {
    db_run!(db, |conn| conn
        .transaction(async |conn| {
            let id: Option<UserId> =
                users::table.filter(users::email_key.eq(email_key)).select(users::id).first(conn).await.optional()?;
            let Some(id) = id else { return Ok::<_, DbError>(None) };
            diesel::update(users::table.find(id)).set(users::is_admin.eq(true)).execute(conn).await?;
            let mut event = event.clone();
            event.subject_user_id = Some(id);
            event.target = Some(format!("user:{id}"));
            diesel::insert_into(audit_events::table).values(&event).execute(conn).await?;
            Ok(Some(id))
        })
        .await)
}
