//! Reading and writing notifications and preferences.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use trellis_schema::ids::{NotificationId, UserId};
use trellis_schema::notifications::{Channels, EventType, Notification, Preferences, UpdatePreferencesParams};

use crate::db::models::{NotificationRow, PreferencesRow, now, utc};
use crate::db::schema::{events, notification_preferences, notifications, users};
use crate::db::{Db, DbError, db_read, db_run};

impl NotificationRow {
    /// `None` for a row of an event type this server no longer knows.
    pub(crate) fn to_api(&self) -> Option<Notification> {
        let kind = EventType::from_wire(&self.kind)?;
        let data = match serde_json::from_str(&self.data) {
            Ok(serde_json::Value::Object(m)) => m,
            _ => serde_json::Map::new(),
        };
        Some(Notification {
            id: self.id,
            kind,
            title: self.title.clone(),
            body: self.body.clone(),
            data,
            created_at: utc(self.created_at),
            read_at: self.read_at.map(utc),
        })
    }
}

impl PreferencesRow {
    fn to_api(&self) -> Preferences {
        let muted: Vec<String> = serde_json::from_str(&self.muted).unwrap_or_default();
        Preferences {
            channels: Channels { in_app: self.in_app, email: self.email, webhook: self.webhook },
            muted: muted.iter().filter_map(|m| EventType::from_wire(m)).collect(),
        }
    }
}

/// The page of `user`'s notifications before `before` (an id), newest first.
pub(crate) async fn list(
    db: &Db,
    user: UserId,
    unread_only: bool,
    before: Option<NotificationId>,
    limit: i64,
) -> Result<Vec<NotificationRow>, DbError> {
    db_read!(db, |conn| {
        let mut q = notifications::table
            .filter(notifications::user_id.eq(user))
            .order(notifications::id.desc())
            .limit(limit)
            .select(NotificationRow::as_select())
            .into_boxed();
        if unread_only {
            q = q.filter(notifications::read_at.is_null());
        }
        if let Some(b) = before {
            q = q.filter(notifications::id.lt(b));
        }
        q.load(conn).await.map_err(DbError::from)
    })
}

/// Marks `user`'s unread notifications read: those of `ids`, or all.
pub(crate) async fn mark_read(db: &Db, user: UserId, ids: Option<&[NotificationId]>) -> Result<u64, DbError> {
    let at = now();
    let n = db_run!(db, |conn| {
        let q = notifications::table.filter(notifications::user_id.eq(user)).filter(notifications::read_at.is_null());
        match ids {
            Some(ids) => {
                diesel::update(q.filter(notifications::id.eq_any(ids)))
                    .set(notifications::read_at.eq(Some(at)))
                    .execute(conn)
                    .await
            }
            None => diesel::update(q).set(notifications::read_at.eq(Some(at))).execute(conn).await,
        }
    })?;
    Ok(n as u64)
}

/// The number of `user`'s notification `id`; `None` if it is not theirs.
pub(crate) async fn seq_of(db: &Db, user: UserId, id: NotificationId) -> Result<Option<i64>, DbError> {
    db_read!(db, |conn| {
        notifications::table
            .filter(notifications::id.eq(id))
            .filter(notifications::user_id.eq(user))
            .select(notifications::seq)
            .first(conn)
            .await
            .optional()
            .map_err(DbError::from)
    })
}

/// The number of `user`'s newest notification (0: none yet).
pub(crate) async fn newest_seq(db: &Db, user: UserId) -> Result<i64, DbError> {
    let n: Option<i64> = db_read!(db, |conn| {
        notifications::table
            .filter(notifications::user_id.eq(user))
            .select(diesel::dsl::max(notifications::seq))
            .first(conn)
            .await
            .map_err(DbError::from)
    })?;
    Ok(n.unwrap_or(0))
}

/// `user`'s notifications numbered after `seq`, oldest first.
pub(crate) async fn after_seq(db: &Db, user: UserId, seq: i64, limit: i64) -> Result<Vec<NotificationRow>, DbError> {
    db_read!(db, |conn| {
        notifications::table
            .filter(notifications::user_id.eq(user))
            .filter(notifications::seq.gt(seq))
            .order(notifications::seq.asc())
            .limit(limit)
            .select(NotificationRow::as_select())
            .load(conn)
            .await
            .map_err(DbError::from)
    })
}

/// The newest notification number of each user notified since `since`.
pub(crate) async fn recent(db: &Db, since: NaiveDateTime) -> Result<Vec<(UserId, i64)>, DbError> {
    let rows: Vec<(UserId, Option<i64>)> = db_read!(db, |conn| {
        notifications::table
            .filter(notifications::created_at.ge(since))
            .group_by(notifications::user_id)
            .select((notifications::user_id, diesel::dsl::max(notifications::seq)))
            .load(conn)
            .await
            .map_err(DbError::from)
    })?;
    Ok(rows.into_iter().filter_map(|(u, s)| Some((u, s?))).collect())
}

/// `user`'s preferences (the defaults until they change one).
pub(crate) async fn preferences(db: &Db, user: UserId) -> Result<Preferences, DbError> {
    let row: Option<PreferencesRow> = db_read!(db, |conn| {
        notification_preferences::table
            .find(user)
            .select(PreferencesRow::as_select())
            .first(conn)
            .await
            .optional()
            .map_err(DbError::from)
    })?;
    Ok(row.map(|r| r.to_api()).unwrap_or_default())
}

/// Each of `users` that still has an account, with its e-mail address,
/// display name and preferences.
pub(crate) async fn preferences_of(
    db: &Db,
    users_: &[UserId],
) -> Result<Vec<(UserId, String, String, Preferences)>, DbError> {
    if users_.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<(UserId, String, String, Option<PreferencesRow>)> = db_read!(db, |conn| {
        users::table
            .left_join(notification_preferences::table.on(notification_preferences::user_id.eq(users::id)))
            .filter(users::id.eq_any(users_))
            .select((users::id, users::email, users::display_name, Option::<PreferencesRow>::as_select()))
            .load(conn)
            .await
            .map_err(DbError::from)
    })?;
    Ok(rows.into_iter().map(|(id, email, name, p)| (id, email, name, p.map(|p| p.to_api()).unwrap_or_default())).collect())
}

/// The columns a preferences update changes (`None`: left as they are).
#[derive(AsChangeset)]
#[diesel(table_name = notification_preferences)]
struct PreferencesChange {
    in_app: Option<bool>,
    email: Option<bool>,
    webhook: Option<bool>,
    muted: Option<String>,
    updated_at: NaiveDateTime,
}

/// Changes what `update` names of `user`'s preferences (the defaults
/// first, for a user who never changed any), leaving the rest as stored;
/// answers them as they now are.
pub(crate) async fn update_preferences(
    db: &Db,
    user: UserId,
    update: &UpdatePreferencesParams,
) -> Result<Preferences, DbError> {
    let t = now();
    let defaults = Preferences::default();
    let initial = PreferencesRow {
        user_id: user,
        in_app: defaults.channels.in_app,
        email: defaults.channels.email,
        webhook: defaults.channels.webhook,
        muted: "[]".into(),
        updated_at: t,
    };
    let channels = update.channels.clone().unwrap_or_default();
    let muted = update.muted.as_ref().map(|m| {
        let mut names: Vec<&str> = m.iter().map(|e| e.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        serde_json::to_string(&names).unwrap_or_else(|_| "[]".into())
    });
    let change =
        PreferencesChange { in_app: channels.in_app, email: channels.email, webhook: channels.webhook, muted, updated_at: t };
    let row: PreferencesRow = db_run!(db, |conn| {
        diesel::insert_into(notification_preferences::table)
            .values(&initial)
            .on_conflict_do_nothing()
            .execute(conn)
            .await?;
        diesel::update(notification_preferences::table.find(user))
            .set(&change)
            .returning(PreferencesRow::as_returning())
            .get_result(conn)
            .await
            .map_err(DbError::from)
    })?;
    Ok(row.to_api())
}

/// Deletes notifications from before `before`, a batch at a time, keeping
/// each user's newest (it carries the user's number forward: the next
/// notification is numbered after it).
pub(crate) async fn prune(db: &Db, before: NaiveDateTime) -> Result<u64, DbError> {
    crate::db::in_batches(500, |size| async move {
        let old: Vec<(NotificationId, UserId, i64)> = db_read!(db, |conn| notifications::table
            .filter(notifications::created_at.lt(before))
            .select((notifications::id, notifications::user_id, notifications::seq))
            .limit(i64::try_from(size).unwrap_or(i64::MAX))
            .load(conn)
            .await
            .map_err(DbError::from)?);
        let found = old.len();
        let mut users_: Vec<UserId> = old.iter().map(|(_, u, _)| *u).collect();
        users_.sort_unstable();
        users_.dedup();
        let newest: Vec<(UserId, Option<i64>)> = db_read!(db, |conn| notifications::table
            .filter(notifications::user_id.eq_any(&users_))
            .group_by(notifications::user_id)
            .select((notifications::user_id, diesel::dsl::max(notifications::seq)))
            .load(conn)
            .await
            .map_err(DbError::from)?);
        let ids: Vec<NotificationId> = old
            .into_iter()
            .filter(|(_, u, seq)| newest.iter().any(|(n, max)| n == u && max.is_some_and(|m| m > *seq)))
            .map(|(id, _, _)| id)
            .collect();
        if !ids.is_empty() {
            db_run!(db, |conn| diesel::delete(notifications::table.filter(notifications::id.eq_any(&ids)))
                .execute(conn)
                .await
                .map_err(DbError::from)?);
        }
        // A batch of only users' newest ones is as far as this goes.
        Ok(if ids.is_empty() { 0 } else { found })
    })
    .await
}

/// Deletes events from before `before` that were dispatched and handed to
/// the webhook worker.
pub(crate) async fn prune_events(db: &Db, before: NaiveDateTime) -> Result<u64, DbError> {
    crate::db::in_batches(500, |size| async move {
        let ids: Vec<String> = db_read!(db, |conn| events::table
            .filter(events::created_at.lt(before))
            .filter(events::notified_at.is_not_null())
            .filter(events::hooked_at.is_not_null())
            .select(events::id)
            .limit(i64::try_from(size).unwrap_or(i64::MAX))
            .load(conn)
            .await
            .map_err(DbError::from)?);
        if !ids.is_empty() {
            db_run!(db, |conn| diesel::delete(events::table.filter(events::id.eq_any(&ids)))
                .execute(conn)
                .await
                .map_err(DbError::from)?);
        }
        Ok(ids.len())
    })
    .await
}
