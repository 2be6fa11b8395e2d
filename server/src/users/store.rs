//! Profile queries.

use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use trellis_schema::ids::UserId;

use crate::db::models::{AuditEventRow, UserRow, now};
use crate::db::schema::{audit_events, users};
use crate::db::{Db, DbError, db_run};

/// Sets the display name; returns the updated user.
pub(crate) async fn update_display_name(
    db: &Db,
    user_id: UserId,
    name: &str,
    event: &AuditEventRow,
) -> Result<Option<UserRow>, DbError> {
    let t = now();
    db_run!(db, |conn| conn
        .transaction(async |conn| {
            diesel::update(users::table.find(user_id))
                .set((users::display_name.eq(name), users::updated_at.eq(t)))
                .execute(conn)
                .await?;
            diesel::insert_into(audit_events::table).values(event).execute(conn).await?;
            Ok::<_, DbError>(users::table.find(user_id).select(UserRow::as_select()).first(conn).await.optional()?)
        })
        .await)
}
