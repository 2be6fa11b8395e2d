//! Account queries beyond sign-in: one-time tokens and codes, lockout,
//! password changes. (MFA's are in `mfa/store.rs`, the profile's in
//! `users/store.rs`.) Each change is one transaction with the audit
//! event (and mail) it causes.

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};

use super::codes;
use crate::db::models::{AuditEventRow, OneTimeTokenRow, OutboxRow, UserRow, now};
use crate::db::schema::{address_lockouts, audit_events, one_time_tokens, outbox, password_history, sessions, users};
use crate::db::{Db, DbError, db_read, db_run};
use trellis_schema::ids::{SessionId, UserId};

/// What a one-time token is for, with its lifetime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Purpose {
    VerifyEmail,
    ResetPassword,
    LoginCode,
}

impl Purpose {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::VerifyEmail => "verify_email",
            Self::ResetPassword => "reset_password",
            Self::LoginCode => "login_code",
        }
    }

    pub(crate) fn ttl(self) -> Duration {
        match self {
            Self::VerifyEmail => Duration::hours(VERIFY_EMAIL_HOURS),
            Self::ResetPassword => Duration::minutes(RESET_MINUTES),
            Self::LoginCode => Duration::minutes(LOGIN_CODE_MINUTES),
        }
    }
}

pub(crate) const VERIFY_EMAIL_HOURS: i64 = 24;
pub(crate) const RESET_MINUTES: i64 = 30;
pub(crate) const LOGIN_CODE_MINUTES: i64 = 10;
pub(crate) const LOGIN_CODE_ATTEMPTS: i32 = 3;

/// Marks a token used, if it still is live (in `db_run!` bodies, which
/// compile once per backend); two concurrent uses cannot both win.
macro_rules! claim_token {
    ($conn:expr, $id:expr, $t:expr) => {
        diesel::update(
            one_time_tokens::table
                .filter(one_time_tokens::id.eq($id))
                .filter(one_time_tokens::used_at.is_null())
                .filter(one_time_tokens::expires_at.gt($t)),
        )
        .set(one_time_tokens::used_at.eq($t))
        .execute($conn)
        .await
        .map(|n| n == 1)
    };
}

/// A new token row of `purpose` for `user_id`, stored as `hash`.
pub(crate) fn token_row(user_id: UserId, purpose: Purpose, hash: String) -> OneTimeTokenRow {
    let t = now();
    OneTimeTokenRow {
        id: crate::db::models::internal_id(),
        user_id,
        purpose: purpose.as_str().to_owned(),
        token_hash: hash,
        created_at: t,
        expires_at: t + purpose.ttl(),
        used_at: None,
        attempts: 0,
    }
}

/// Inserts a new account with its first token, mail and event; `false` (and
/// nothing written) when the address is taken.
pub(crate) async fn insert_account(
    db: &Db,
    user: &UserRow,
    token: &OneTimeTokenRow,
    mail: &OutboxRow,
    event: &AuditEventRow,
) -> Result<bool, DbError> {
    let result: Result<(), DbError> = db_run!(db, |conn| conn
        .transaction(async |conn| {
            diesel::insert_into(users::table).values(user).execute(conn).await?;
            diesel::insert_into(one_time_tokens::table).values(token).execute(conn).await?;
            diesel::insert_into(outbox::table).values(mail).on_conflict_do_nothing().execute(conn).await?;
            diesel::insert_into(audit_events::table).values(event).execute(conn).await?;
            Ok::<_, DbError>(())
        })
        .await);
    match result {
        Ok(()) => Ok(true),
        Err(DbError::UniqueViolation(_)) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Records `event`, and with it issues `token` (expiring the user's earlier
/// live tokens of its purpose: a newer one supersedes them) and queues `mail`.
pub(crate) async fn issue(
    db: &Db,
    token: Option<&OneTimeTokenRow>,
    mail: Option<&OutboxRow>,
    event: &AuditEventRow,
) -> Result<(), DbError> {
    let t = now();
    db_run!(db, |conn| conn
        .transaction(async |conn| {
            if let Some(token) = token {
                diesel::update(
                    one_time_tokens::table
                        .filter(one_time_tokens::user_id.eq(&token.user_id))
                        .filter(one_time_tokens::purpose.eq(&token.purpose))
                        .filter(one_time_tokens::used_at.is_null())
                        .filter(one_time_tokens::expires_at.gt(t)),
                )
                .set(one_time_tokens::expires_at.eq(t))
                .execute(conn)
                .await?;
                diesel::insert_into(one_time_tokens::table).values(token).execute(conn).await?;
            }
            if let Some(mail) = mail {
                diesel::insert_into(outbox::table).values(mail).on_conflict_do_nothing().execute(conn).await?;
            }
            diesel::insert_into(audit_events::table).values(event).execute(conn).await?;
            Ok::<_, DbError>(())
        })
        .await)
}

/// What presenting a link token found.
pub(crate) enum TokenLookup {
    Live { token: OneTimeTokenRow, user: Box<UserRow> },
    Used,
    Expired,
    Invalid,
}

/// Looks up a link token by its hash (without using it).
pub(crate) async fn find_token(db: &Db, purpose: Purpose, hash: &str) -> Result<TokenLookup, DbError> {
    let found: Option<(OneTimeTokenRow, UserRow)> = db_read!(db, |conn| one_time_tokens::table
        .inner_join(users::table)
        .filter(one_time_tokens::token_hash.eq(hash))
        .filter(one_time_tokens::purpose.eq(purpose.as_str()))
        .select((OneTimeTokenRow::as_select(), UserRow::as_select()))
        .first(conn)
        .await
        .optional()
        .map_err(DbError::from)?);
    Ok(match found {
        None => TokenLookup::Invalid,
        Some((token, _)) if token.used_at.is_some() => TokenLookup::Used,
        Some((token, _)) if token.expires_at <= now() => TokenLookup::Expired,
        Some((token, user)) => TokenLookup::Live { token, user: Box::new(user) },
    })
}

/// Uses a verification token and marks the address verified. `false` when
/// the token was used meanwhile.
pub(crate) async fn verify_email(
    db: &Db,
    token_id: &str,
    user_id: UserId,
    event: &AuditEventRow,
) -> Result<bool, DbError> {
    let t = now();
    db_run!(db, |conn| conn
        .transaction(async |conn| {
            if !claim_token!(conn, token_id, t)? {
                return Ok::<_, DbError>(false);
            }
            diesel::update(users::table.find(user_id))
                .set((users::email_verified.eq(true), users::updated_at.eq(t)))
                .execute(conn)
                .await?;
            diesel::insert_into(audit_events::table).values(event).execute(conn).await?;
            Ok(true)
        })
        .await)
}

/// A password change: the new hash, the old one kept in the history (the
/// newest `keep` entries stay), and which sessions end.
pub(crate) struct PasswordChange<'a> {
    pub user_id: UserId,
    pub new_hash: &'a str,
    pub old_hash: &'a str,
    pub keep: usize,
    /// A reset token to use in the same transaction.
    pub token_id: Option<&'a str>,
    /// Every session ends but this one (`None`: all of them).
    pub keep_session: Option<SessionId>,
    pub reason: &'a str,
    pub mail: Option<&'a OutboxRow>,
    pub event: &'a AuditEventRow,
}

/// Applies a password change; `None` when its token was used meanwhile (or,
/// for a change by the current password, the password changed meanwhile),
/// else the sessions it ended.
pub(crate) async fn change_password(db: &Db, c: PasswordChange<'_>) -> Result<Option<Vec<SessionId>>, DbError> {
    let t = now();
    let ended: Result<Option<Vec<SessionId>>, DbError> = db_run!(db, |conn| conn
        .transaction(async |conn| {
            // The change applies only while the password it replaces is
            // current: of two concurrent changes one wins.
            let changed = diesel::update(
                users::table.filter(users::id.eq(c.user_id)).filter(users::password_hash.eq(c.old_hash)),
            )
            .set((
                users::password_hash.eq(c.new_hash),
                users::password_changed_at.eq(Some(t)),
                users::updated_at.eq(t),
                // Proving control of the address (a reset link) or
                // knowing the password ends a lockout.
                users::failed_logins.eq(0),
                users::locked_until.eq(None::<NaiveDateTime>),
            ))
            .execute(conn)
            .await?;
            if changed == 0 {
                return Ok::<_, DbError>(None);
            }
            if let Some(token_id) = c.token_id
                && !claim_token!(conn, token_id, t)?
            {
                // Undoes the change above.
                return Err(DbError::NotFound);
            }
            diesel::insert_into(password_history::table)
                .values((
                    password_history::id.eq(crate::db::models::internal_id()),
                    password_history::user_id.eq(c.user_id),
                    password_history::password_hash.eq(c.old_hash),
                    password_history::created_at.eq(t),
                ))
                .execute(conn)
                .await?;
            let stale: Vec<String> = password_history::table
                .filter(password_history::user_id.eq(c.user_id))
                .order(password_history::created_at.desc())
                .offset(i64::try_from(c.keep).unwrap_or(5))
                .select(password_history::id)
                .load(conn)
                .await?;
            if !stale.is_empty() {
                diesel::delete(password_history::table.filter(password_history::id.eq_any(&stale)))
                    .execute(conn)
                    .await?;
            }
            let keep: Vec<SessionId> = c.keep_session.into_iter().collect();
            let ids: Vec<SessionId> = diesel::update(
                sessions::table
                    .filter(sessions::user_id.eq(c.user_id))
                    .filter(sessions::revoked_at.is_null())
                    .filter(sessions::id.ne_all(keep)),
            )
            .set((sessions::revoked_at.eq(t), sessions::revoked_reason.eq(c.reason)))
            .returning(sessions::id)
            .get_results(conn)
            .await?;
            if let Some(mail) = c.mail {
                diesel::insert_into(outbox::table).values(mail).on_conflict_do_nothing().execute(conn).await?;
            }
            diesel::insert_into(audit_events::table).values(c.event).execute(conn).await?;
            Ok(Some(ids))
        })
        .await);
    let ended = match ended {
        Err(DbError::NotFound) => None,
        other => other?,
    };
    Ok(ended)
}

/// The hashes of the account's previous passwords, newest first.
pub(crate) async fn previous_hashes(db: &Db, user_id: UserId, n: usize) -> Result<Vec<String>, DbError> {
    let n = i64::try_from(n).unwrap_or(5);
    db_read!(db, |conn| password_history::table
        .filter(password_history::user_id.eq(user_id))
        .order(password_history::created_at.desc())
        .limit(n)
        .select(password_history::password_hash)
        .load(conn)
        .await
        .map_err(DbError::from))
}

/// Counts a failed sign-in; at `threshold` failures in a row the account
/// locks until `lock_until`, and `on_lock` (the lock's event and mail) is
/// written too. Returns the lock's end when this failure locked it.
pub(crate) async fn record_failure(
    db: &Db,
    user_id: UserId,
    threshold: u32,
    lock_until: NaiveDateTime,
    failure: &AuditEventRow,
    on_lock: Option<(&AuditEventRow, &OutboxRow)>,
) -> Result<Option<NaiveDateTime>, DbError> {
    let threshold = i32::try_from(threshold).unwrap_or(i32::MAX);
    db_run!(db, |conn| conn
        .transaction(async |conn| {
            diesel::insert_into(audit_events::table).values(failure).execute(conn).await?;
            diesel::update(users::table.find(user_id))
                .set(users::failed_logins.eq(users::failed_logins + 1))
                .execute(conn)
                .await?;
            if threshold == 0 {
                return Ok::<_, DbError>(None);
            }
            // Only the failure that reaches the threshold locks (and mails).
            let locked =
                diesel::update(users::table.filter(users::id.eq(user_id)).filter(users::failed_logins.ge(threshold)))
                    .set((users::locked_until.eq(Some(lock_until)), users::failed_logins.eq(0)))
                    .execute(conn)
                    .await?;
            let Some((event, mail)) = on_lock.filter(|_| locked > 0) else { return Ok(None) };
            diesel::insert_into(audit_events::table).values(event).execute(conn).await?;
            diesel::insert_into(outbox::table).values(mail).on_conflict_do_nothing().execute(conn).await?;
            Ok(Some(lock_until))
        })
        .await)
}

/// Counts a failed sign-in for an address that has no account, as
/// [`record_failure`] counts one for an account: the same threshold and
/// lock time, in the database (keyed by the normalized address, so every
/// replica shares it), so a lock answers the same whether or not the
/// address is registered. Returns the lock's end when this failure locked it.
pub(crate) async fn record_address_failure(
    db: &Db,
    email_key: &str,
    threshold: u32,
    lock_until: NaiveDateTime,
    failure: &AuditEventRow,
) -> Result<Option<NaiveDateTime>, DbError> {
    let threshold = i32::try_from(threshold).unwrap_or(i32::MAX);
    let t = now();
    db_run!(db, |conn| conn
        .transaction(async |conn| {
            diesel::insert_into(audit_events::table).values(failure).execute(conn).await?;
            diesel::insert_into(address_lockouts::table)
                .values((
                    address_lockouts::email_key.eq(email_key),
                    address_lockouts::failed_logins.eq(1),
                    address_lockouts::updated_at.eq(t),
                ))
                .on_conflict(address_lockouts::email_key)
                .do_update()
                .set((
                    address_lockouts::failed_logins.eq(address_lockouts::failed_logins + 1),
                    address_lockouts::updated_at.eq(t),
                ))
                .execute(conn)
                .await?;
            if threshold == 0 {
                return Ok::<_, DbError>(None);
            }
            let locked = diesel::update(
                address_lockouts::table
                    .filter(address_lockouts::email_key.eq(email_key))
                    .filter(address_lockouts::failed_logins.ge(threshold)),
            )
            .set((address_lockouts::locked_until.eq(Some(lock_until)), address_lockouts::failed_logins.eq(0)))
            .execute(conn)
            .await?;
            Ok((locked > 0).then_some(lock_until))
        })
        .await)
}

/// Records `event` for a sign-in code requested for an address that gets
/// none (no account, or a disabled one), and starts the attempts of the code
/// it would have had, so guessing at it runs out as a real code does
/// ([`check_address_code`]). One write transaction, as a real code's.
pub(crate) async fn issue_address_code(db: &Db, email_key: &str, event: &AuditEventRow) -> Result<(), DbError> {
    let t = now();
    let expires = t + Purpose::LoginCode.ttl();
    db_run!(db, |conn| conn
        .transaction(async |conn| {
            diesel::insert_into(audit_events::table).values(event).execute(conn).await?;
            diesel::insert_into(address_lockouts::table)
                .values((
                    address_lockouts::email_key.eq(email_key),
                    address_lockouts::code_expires_at.eq(Some(expires)),
                    address_lockouts::code_attempts.eq(0),
                    address_lockouts::updated_at.eq(t),
                ))
                .on_conflict(address_lockouts::email_key)
                .do_update()
                .set((
                    address_lockouts::code_expires_at.eq(Some(expires)),
                    address_lockouts::code_attempts.eq(0),
                    address_lockouts::updated_at.eq(t),
                ))
                .execute(conn)
                .await?;
            Ok::<_, DbError>(())
        })
        .await)
}

/// A guess at the code of an address that was sent none: spends an attempt
/// of the code [`issue_address_code`] started, by the same conditional
/// update as [`check_login_code`], and answers as a wrong guess at a real
/// code would (never accepted).
pub(crate) async fn check_address_code(db: &Db, email_key: &str) -> Result<CodeCheck, DbError> {
    let t = now();
    db_run!(db, |conn| conn
        .transaction(async |conn| {
            let spent: Option<i32> = diesel::update(
                address_lockouts::table
                    .filter(address_lockouts::email_key.eq(email_key))
                    .filter(address_lockouts::code_expires_at.gt(t))
                    .filter(address_lockouts::code_attempts.lt(LOGIN_CODE_ATTEMPTS)),
            )
            .set(address_lockouts::code_attempts.eq(address_lockouts::code_attempts + 1))
            .returning(address_lockouts::code_attempts)
            .get_result(conn)
            .await
            .optional()?;
            let exhausted = match spent {
                Some(attempts) => attempts >= LOGIN_CODE_ATTEMPTS,
                None => address_lockouts::table
                    .find(email_key)
                    .filter(address_lockouts::code_expires_at.gt(t))
                    .select(address_lockouts::code_attempts)
                    .first::<i32>(conn)
                    .await
                    .optional()?
                    .is_some_and(|a| a >= LOGIN_CODE_ATTEMPTS),
            };
            Ok::<_, DbError>(if exhausted { CodeCheck::Exhausted } else { CodeCheck::Invalid })
        })
        .await)
}

/// Forgets addresses whose lock and code have ended (their count is back
/// at 0, as if they had never failed), once an hour; counts below the
/// threshold are kept, as an account keeps them.
pub(crate) fn spawn_address_housekeeping(db: std::sync::Arc<Db>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(3600));
        loop {
            tick.tick().await;
            let t = now();
            let done: Result<usize, DbError> = async {
                Ok(db_run!(db, |conn| diesel::delete(
                    address_lockouts::table
                        .filter(address_lockouts::failed_logins.eq(0))
                        .filter(address_lockouts::locked_until.lt(t).or(address_lockouts::locked_until.is_null()))
                        .filter(
                            address_lockouts::code_expires_at.lt(t).or(address_lockouts::code_expires_at.is_null())
                        ),
                )
                .execute(conn)
                .await
                .map_err(DbError::from)?))
            }
            .await;
            if let Err(e) = done {
                tracing::warn!(error = %e, "failed to forget ended address locks");
            }
        }
    })
}

/// How an e-mailed sign-in code compared.
pub(crate) enum CodeCheck {
    Accepted,
    Invalid,
    /// No attempts left (this one was the last, or there were none).
    Exhausted,
}

/// Checks `hash` against the user's live sign-in code. Every guess, right
/// or wrong, first spends an attempt by one conditional update in SQL
/// (`attempts = attempts + 1 ... AND attempts < 3 AND used_at IS NULL`),
/// which is also the transaction's first statement (so on SQLite it takes
/// the write lock at once): concurrent guesses cannot share an attempt, and
/// only a guess that got one is compared. A code with every attempt spent
/// stays spent (its count never goes down); a used code stays used.
pub(crate) async fn check_login_code(db: &Db, user_id: UserId, hash: &str) -> Result<CodeCheck, DbError> {
    let t = now();
    db_run!(db, |conn| conn
        .transaction(async |conn| {
            // The live code (a newer code expires the older ones, so there
            // is one, or two after two requests at once: each then pays).
            let spent: Vec<(String, String, i32)> = diesel::update(
                one_time_tokens::table
                    .filter(one_time_tokens::user_id.eq(user_id))
                    .filter(one_time_tokens::purpose.eq(Purpose::LoginCode.as_str()))
                    .filter(one_time_tokens::expires_at.gt(t))
                    .filter(one_time_tokens::used_at.is_null())
                    .filter(one_time_tokens::attempts.lt(LOGIN_CODE_ATTEMPTS)),
            )
            .set(one_time_tokens::attempts.eq(one_time_tokens::attempts + 1))
            .returning((one_time_tokens::id, one_time_tokens::token_hash, one_time_tokens::attempts))
            .get_results(conn)
            .await?;
            if spent.is_empty() {
                // No attempt for this guess: it is not compared. Say why.
                let newest: Option<(Option<NaiveDateTime>, i32)> = one_time_tokens::table
                    .filter(one_time_tokens::user_id.eq(user_id))
                    .filter(one_time_tokens::purpose.eq(Purpose::LoginCode.as_str()))
                    .filter(one_time_tokens::expires_at.gt(t))
                    .order(one_time_tokens::created_at.desc())
                    .select((one_time_tokens::used_at, one_time_tokens::attempts))
                    .first(conn)
                    .await
                    .optional()?;
                let exhausted = matches!(newest, Some((None, a)) if a >= LOGIN_CODE_ATTEMPTS);
                return Ok::<_, DbError>(if exhausted { CodeCheck::Exhausted } else { CodeCheck::Invalid });
            }
            if let Some((id, _, _)) = spent.iter().find(|(_, stored, _)| codes::same(stored, hash)) {
                return Ok(if claim_token!(conn, id, t)? { CodeCheck::Accepted } else { CodeCheck::Invalid });
            }
            let left = spent.iter().any(|(_, _, attempts)| *attempts < LOGIN_CODE_ATTEMPTS);
            Ok(if left { CodeCheck::Invalid } else { CodeCheck::Exhausted })
        })
        .await)
}
