//! The outbox table: mail waiting to be sent, claimed by one sender at a time.

use chrono::Duration;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::Rendered;
use crate::db::models::{OutboxRow, now};
use crate::db::schema::outbox;
use crate::db::{Db, DbError, db_run};

/// How long a sender may hold a claimed mail before another may take it.
const CLAIM_SECS: i64 = 60;
/// Attempts before a mail is given up.
pub(crate) const MAX_ATTEMPTS: i32 = 20;

/// An outbox row for `rendered` to `recipient`. `event` names the event
/// that causes the mail (with the recipient it makes the dedupe key): a
/// second row for the same event and recipient is ignored.
pub(crate) fn row(recipient: &str, event: &str, rendered: Rendered) -> OutboxRow {
    let t = now();
    OutboxRow {
        id: crate::db::models::internal_id(),
        dedupe_key: format!("{event}:{}", recipient.to_lowercase()),
        recipient: recipient.to_owned(),
        subject: rendered.subject,
        text_body: rendered.text,
        html_body: rendered.html,
        created_at: t,
        attempts: 0,
        next_attempt_at: t,
        claimed_until: None,
        sent_at: None,
        failed_at: None,
        last_error: None,
    }
}

/// Claims up to `limit` mails that are due. A claim is a conditional update,
/// so two senders (two replicas) never take the same mail.
pub(crate) async fn claim_due(db: &Db, limit: i64) -> Result<Vec<OutboxRow>, DbError> {
    let t = now();
    let until = t + Duration::seconds(CLAIM_SECS);
    db_run!(db, |conn| {
        let due: Vec<OutboxRow> = outbox::table
            .filter(outbox::sent_at.is_null())
            .filter(outbox::failed_at.is_null())
            .filter(outbox::next_attempt_at.le(t))
            .filter(outbox::claimed_until.is_null().or(outbox::claimed_until.lt(t)))
            .order(outbox::next_attempt_at.asc())
            .limit(limit)
            .select(OutboxRow::as_select())
            .load(conn)
            .await?;
        let mut claimed = Vec::with_capacity(due.len());
        for mail in due {
            let n = diesel::update(
                outbox::table
                    .filter(outbox::id.eq(&mail.id))
                    .filter(outbox::sent_at.is_null())
                    .filter(outbox::claimed_until.is_null().or(outbox::claimed_until.lt(t))),
            )
            .set(outbox::claimed_until.eq(until))
            .execute(conn)
            .await?;
            if n == 1 {
                claimed.push(mail);
            }
        }
        Ok::<_, DbError>(claimed)
    })
}

/// Marks a mail sent. Its bodies are cleared: they may hold a link token,
/// which is not kept once delivered.
pub(crate) async fn mark_sent(db: &Db, id: &str) -> Result<(), DbError> {
    let t = now();
    db_run!(db, |conn| diesel::update(outbox::table.find(id))
        .set((
            outbox::sent_at.eq(t),
            outbox::claimed_until.eq(None::<chrono::NaiveDateTime>),
            outbox::text_body.eq(""),
            outbox::html_body.eq(""),
        ))
        .execute(conn)
        .await
        .map_err(DbError::from)?);
    Ok(())
}

/// Records a failed attempt: retried after a backoff, or given up when the
/// failure is permanent or the attempts are spent. The count is incremented
/// in the database, and only on a mail still pending. A mail given up drops
/// its bodies, which may hold a live link token.
pub(crate) async fn mark_failed(db: &Db, mail: &OutboxRow, transient: bool, error: &str) -> Result<bool, DbError> {
    let t = now();
    // The claim makes this sender the only one writing the row, so the count
    // it read is the stored one.
    let give_up = !transient || mail.attempts + 1 >= MAX_ATTEMPTS;
    let next = t + backoff(mail.attempts + 1);
    let error: String = error.chars().take(500).collect();
    let pending = outbox::table.find(&mail.id).filter(outbox::sent_at.is_null()).filter(outbox::failed_at.is_null());
    let retry = (
        outbox::attempts.eq(outbox::attempts + 1),
        outbox::next_attempt_at.eq(next),
        outbox::claimed_until.eq(None::<chrono::NaiveDateTime>),
        outbox::last_error.eq(&error),
    );
    db_run!(db, |conn| if give_up {
        diesel::update(pending)
            .set((retry, outbox::failed_at.eq(t), outbox::text_body.eq(""), outbox::html_body.eq("")))
            .execute(conn)
            .await
    } else {
        diesel::update(pending).set(retry).execute(conn).await
    }
    .map_err(DbError::from)?);
    Ok(give_up)
}

/// Deletes mail sent or given up before `before`, a batch at a time.
pub(crate) async fn prune(db: &Db, before: chrono::NaiveDateTime) -> Result<u64, DbError> {
    crate::db::in_batches(500, |size| async move {
        let ids: Vec<String> = db_run!(db, |conn| outbox::table
            .filter(outbox::sent_at.lt(before).or(outbox::failed_at.lt(before)))
            .select(outbox::id)
            .limit(i64::try_from(size).unwrap_or(i64::MAX))
            .load(conn)
            .await
            .map_err(DbError::from)?);
        if !ids.is_empty() {
            db_run!(db, |conn| diesel::delete(outbox::table.filter(outbox::id.eq_any(&ids)))
                .execute(conn)
                .await
                .map_err(DbError::from)?);
        }
        Ok(ids.len())
    })
    .await
}

/// 1 s after the first failure, doubling, at most 5 minutes.
pub(crate) fn backoff(attempts: i32) -> Duration {
    let exp = u32::try_from(attempts.clamp(1, 20) - 1).unwrap_or(0);
    Duration::milliseconds((1000_i64 << exp.min(9)).min(300_000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_five_minutes() {
        assert_eq!(backoff(1), Duration::seconds(1));
        assert_eq!(backoff(2), Duration::seconds(2));
        assert_eq!(backoff(4), Duration::seconds(8));
        assert_eq!(backoff(19), Duration::seconds(300));
    }
}
