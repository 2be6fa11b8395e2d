//! MFA queries: the TOTP secret (pending, then confirmed), the last step
//! accepted, recovery codes. Each change is one transaction with its audit
//! event.

use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use trellis_schema::ids::UserId;

use crate::db::models::{AuditEventRow, now};
use crate::db::schema::{audit_events, recovery_codes, users};
use crate::db::{Db, DbError, db_run};

/// Stores a TOTP secret enrolled but not yet confirmed; `false` when MFA is
/// on (turned on meanwhile).
pub(crate) async fn set_pending_totp(
    db: &Db,
    user_id: UserId,
    secret: &str,
    event: &AuditEventRow,
) -> Result<bool, DbError> {
    let t = now();
    db_run!(db, |conn| conn
        .transaction(async |conn| {
            let n = diesel::update(users::table.filter(users::id.eq(user_id)).filter(users::mfa_enabled.eq(false)))
                .set((users::totp_pending_secret.eq(Some(secret)), users::updated_at.eq(t)))
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

/// Accepts TOTP step `step` for the user, once: a step at or before the last
/// one accepted is refused, so a code is never accepted twice.
pub(crate) async fn accept_totp_step(db: &Db, user_id: UserId, step: u64) -> Result<bool, DbError> {
    let step = i64::try_from(step).unwrap_or(i64::MAX);
    let n = db_run!(db, |conn| diesel::update(
        users::table.filter(users::id.eq(user_id)).filter(users::totp_last_step.lt(step))
    )
    .set(users::totp_last_step.eq(step))
    .execute(conn)
    .await
    .map_err(DbError::from)?);
    Ok(n == 1)
}

/// Uses one of the user's recovery codes, once.
pub(crate) async fn use_recovery_code(db: &Db, user_id: UserId, hash: &str) -> Result<bool, DbError> {
    let t = now();
    let n = db_run!(db, |conn| diesel::update(
        recovery_codes::table
            .filter(recovery_codes::code_hash.eq(hash))
            .filter(recovery_codes::user_id.eq(user_id))
            .filter(recovery_codes::used_at.is_null())
    )
    .set(recovery_codes::used_at.eq(Some(t)))
    .execute(conn)
    .await
    .map_err(DbError::from)?);
    Ok(n == 1)
}

/// Turns MFA on with the pending secret `secret`, replacing any recovery
/// codes; `false` when the pending secret changed meanwhile.
pub(crate) async fn enable_mfa(
    db: &Db,
    user_id: UserId,
    secret: &str,
    step: u64,
    recovery_hashes: &[String],
    event: &AuditEventRow,
) -> Result<bool, DbError> {
    let t = now();
    let step = i64::try_from(step).unwrap_or(i64::MAX);
    db_run!(db, |conn| conn
        .transaction(async |conn| {
            let n = diesel::update(
                users::table
                    .filter(users::id.eq(user_id))
                    .filter(users::totp_pending_secret.eq(secret))
                    .filter(users::mfa_enabled.eq(false)),
            )
            .set((
                users::totp_secret.eq(Some(secret)),
                users::totp_pending_secret.eq(None::<String>),
                users::mfa_enabled.eq(true),
                users::totp_last_step.eq(step),
                users::updated_at.eq(t),
            ))
            .execute(conn)
            .await?;
            if n == 0 {
                return Ok::<_, DbError>(false);
            }
            diesel::delete(recovery_codes::table.filter(recovery_codes::user_id.eq(user_id))).execute(conn).await?;
            for h in recovery_hashes {
                diesel::insert_into(recovery_codes::table)
                    .values((recovery_codes::code_hash.eq(h), recovery_codes::user_id.eq(user_id)))
                    .execute(conn)
                    .await?;
            }
            diesel::insert_into(audit_events::table).values(event).execute(conn).await?;
            Ok(true)
        })
        .await)
}

/// Turns MFA off and drops its secret and recovery codes; `false` when it
/// was off already (turned off meanwhile).
pub(crate) async fn disable_mfa(db: &Db, user_id: UserId, event: &AuditEventRow) -> Result<bool, DbError> {
    let t = now();
    db_run!(db, |conn| conn
        .transaction(async |conn| {
            let n = diesel::update(users::table.filter(users::id.eq(user_id)).filter(users::mfa_enabled.eq(true)))
                .set((
                    users::totp_secret.eq(None::<String>),
                    users::totp_pending_secret.eq(None::<String>),
                    users::mfa_enabled.eq(false),
                    users::updated_at.eq(t),
                ))
                .execute(conn)
                .await?;
            if n == 0 {
                return Ok::<_, DbError>(false);
            }
            diesel::delete(recovery_codes::table.filter(recovery_codes::user_id.eq(user_id))).execute(conn).await?;
            diesel::insert_into(audit_events::table).values(event).execute(conn).await?;
            Ok(true)
        })
        .await)
}
