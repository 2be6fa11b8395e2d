//! API key queries. Secrets are stored only as keyed hashes.

use std::sync::Arc;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use trellis_schema::access::{OrgRole, Permission};

use super::cache::VerifiedKey;
use crate::db::models::{ApiKeyRow, AuditEventRow, now, parse_id};
use crate::db::schema::{api_key_secrets, api_key_usage, api_keys, audit_events, org_members, users};
use crate::db::{Db, DbError, db_read, db_run};

pub(crate) fn scopes_text(scopes: &[Permission]) -> String {
    let mut s: Vec<&str> = scopes.iter().map(|p| p.as_str()).collect();
    s.sort_unstable();
    s.dedup();
    s.join(",")
}

pub(crate) fn parse_scopes(text: &str) -> Vec<Permission> {
    text.split(',').filter_map(|s| Permission::ALL.iter().copied().find(|p| p.as_str() == s)).collect()
}

/// The key a secret belongs to, with its holder's standing now (their role
/// in the key's organization and whether their account is disabled), in one
/// query.
pub(crate) async fn lookup_secret(db: &Db, secret_hash: &str) -> Result<Option<Arc<VerifiedKey>>, DbError> {
    type Found = (ApiKeyRow, Option<NaiveDateTime>, Option<String>, Option<bool>);
    let found: Option<Found> = db_read!(db, |conn| api_key_secrets::table
        .inner_join(api_keys::table)
        .left_join(
            org_members::table
                .on(org_members::org_id.eq(api_keys::org_id).and(org_members::user_id.eq(api_keys::created_by))),
        )
        .left_join(users::table.on(users::id.eq(api_keys::created_by)))
        .filter(api_key_secrets::secret_hash.eq(secret_hash))
        .select((
            ApiKeyRow::as_select(),
            api_key_secrets::expires_at,
            org_members::role.nullable(),
            users::disabled.nullable(),
        ))
        .first(conn)
        .await
        .optional()
        .map_err(DbError::from)?);
    let Some((row, secret_expires_at, role, disabled)) = found else { return Ok(None) };
    Ok(Some(Arc::new(VerifiedKey {
        id: parse_id(&row.id),
        org_id: parse_id(&row.org_id),
        scopes: parse_scopes(&row.scopes),
        created_by: parse_id(&row.created_by),
        creator_role: role.as_deref().and_then(OrgRole::parse),
        creator_disabled: disabled.unwrap_or(true),
        expires_at: row.expires_at,
        revoked_at: row.revoked_at,
        secret_expires_at,
        rate_limit_per_minute: row.rate_limit_per_minute.and_then(|n| u32::try_from(n).ok()).filter(|n| *n > 0),
        row,
    })))
}

pub(crate) async fn find(db: &Db, id: &str) -> Result<Option<ApiKeyRow>, DbError> {
    db_read!(db, |conn| api_keys::table
        .find(id)
        .select(ApiKeyRow::as_select())
        .first(conn)
        .await
        .optional()
        .map_err(DbError::from))
}

/// The organization a key belongs to.
pub(crate) async fn org_of(db: &Db, id: &str) -> Result<Option<String>, DbError> {
    db_read!(db, |conn| api_keys::table
        .find(id)
        .select(api_keys::org_id)
        .first(conn)
        .await
        .optional()
        .map_err(DbError::from))
}

pub(crate) async fn insert(db: &Db, row: &ApiKeyRow, secret_hash: &str, event: &AuditEventRow) -> Result<(), DbError> {
    db_run!(db, |conn| conn
        .transaction(async |conn| {
            diesel::insert_into(api_keys::table).values(row).execute(conn).await?;
            diesel::insert_into(api_key_secrets::table)
                .values((
                    api_key_secrets::secret_hash.eq(secret_hash),
                    api_key_secrets::key_id.eq(&row.id),
                    api_key_secrets::created_at.eq(row.created_at),
                ))
                .execute(conn)
                .await?;
            diesel::insert_into(audit_events::table).values(event).execute(conn).await?;
            Ok::<_, DbError>(())
        })
        .await)
}

pub(crate) async fn list(
    db: &Db,
    org_id: &str,
    include_revoked: bool,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<ApiKeyRow>, DbError> {
    db_read!(db, |conn| {
        let mut q = api_keys::table
            .filter(api_keys::org_id.eq(org_id))
            .order(api_keys::id.asc())
            .limit(limit)
            .select(ApiKeyRow::as_select())
            .into_boxed();
        if !include_revoked {
            q = q.filter(api_keys::revoked_at.is_null());
        }
        if let Some(a) = after {
            q = q.filter(api_keys::id.gt(a.to_owned()));
        }
        q.load(conn).await.map_err(DbError::from)
    })
}

/// The columns an update changes; `None` leaves a column as it is.
#[derive(Debug, Default)]
pub(crate) struct KeyChanges {
    pub name: Option<String>,
    pub scopes: Option<String>,
    pub expires_at: Option<NaiveDateTime>,
    /// `Some(None)` removes the key's own limit.
    pub rate_limit_per_minute: Option<Option<i32>>,
}

impl KeyChanges {
    pub(crate) fn is_empty(&self) -> bool {
        self.name.is_none()
            && self.scopes.is_none()
            && self.expires_at.is_none()
            && self.rate_limit_per_minute.is_none()
    }
}

/// Writes only the changed columns of a key that is not revoked, with its
/// event. `None`: the key is revoked (or gone), and nothing was written.
pub(crate) async fn update(
    db: &Db,
    key_id: &str,
    changes: &KeyChanges,
    event: &AuditEventRow,
) -> Result<Option<ApiKeyRow>, DbError> {
    let set = (
        changes.name.as_ref().map(|v| api_keys::name.eq(v.clone())),
        changes.scopes.as_ref().map(|v| api_keys::scopes.eq(v.clone())),
        changes.expires_at.map(|v| api_keys::expires_at.eq(Some(v))),
        changes.rate_limit_per_minute.map(|v| api_keys::rate_limit_per_minute.eq(v)),
    );
    db_run!(db, |conn| conn
        .transaction(async |conn| {
            let row =
                diesel::update(api_keys::table.filter(api_keys::id.eq(key_id)).filter(api_keys::revoked_at.is_null()))
                    .set(set.clone())
                    .returning(ApiKeyRow::as_returning())
                    .get_result(conn)
                    .await
                    .optional()?;
            if row.is_some() {
                diesel::insert_into(audit_events::table).values(event).execute(conn).await?;
            }
            Ok::<_, DbError>(row)
        })
        .await)
}

/// Revokes a key that is not revoked yet, with its event. Returns the key
/// as it is afterwards and whether this call revoked it.
pub(crate) async fn revoke(
    db: &Db,
    key_id: &str,
    at: NaiveDateTime,
    event: &AuditEventRow,
) -> Result<Option<(ApiKeyRow, bool)>, DbError> {
    db_run!(db, |conn| conn
        .transaction(async |conn| {
            let n =
                diesel::update(api_keys::table.filter(api_keys::id.eq(key_id)).filter(api_keys::revoked_at.is_null()))
                    .set(api_keys::revoked_at.eq(Some(at)))
                    .execute(conn)
                    .await?;
            if n > 0 {
                diesel::insert_into(audit_events::table).values(event).execute(conn).await?;
            }
            let row = api_keys::table.find(key_id).select(ApiKeyRow::as_select()).first(conn).await.optional()?;
            Ok::<_, DbError>(row.map(|r| (r, n > 0)))
        })
        .await)
}

/// Gives a key that is not revoked a new secret (`new_hash`, shown as
/// `new_prefix`) held by `holder`; its other secrets end at `old_until`
/// (now, or the end of the grace period). `None`: the key is revoked (or
/// gone), and nothing was written.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn rotate(
    db: &Db,
    key_id: &str,
    new_hash: &str,
    new_prefix: &str,
    holder: &str,
    old_until: NaiveDateTime,
    event: &AuditEventRow,
) -> Result<Option<ApiKeyRow>, DbError> {
    let t = now();
    db_run!(db, |conn| conn
        .transaction(async |conn| {
            let row =
                diesel::update(api_keys::table.filter(api_keys::id.eq(key_id)).filter(api_keys::revoked_at.is_null()))
                    .set((api_keys::prefix.eq(new_prefix), api_keys::created_by.eq(holder)))
                    .returning(ApiKeyRow::as_returning())
                    .get_result(conn)
                    .await
                    .optional()?;
            if row.is_none() {
                return Ok::<_, DbError>(None);
            }
            diesel::update(
                api_key_secrets::table
                    .filter(api_key_secrets::key_id.eq(key_id))
                    .filter(api_key_secrets::expires_at.is_null().or(api_key_secrets::expires_at.gt(old_until))),
            )
            .set(api_key_secrets::expires_at.eq(Some(old_until)))
            .execute(conn)
            .await?;
            diesel::insert_into(api_key_secrets::table)
                .values((
                    api_key_secrets::secret_hash.eq(new_hash),
                    api_key_secrets::key_id.eq(key_id),
                    api_key_secrets::created_at.eq(t),
                ))
                .execute(conn)
                .await?;
            diesel::insert_into(audit_events::table).values(event).execute(conn).await?;
            Ok(row)
        })
        .await)
}

/// Per-minute usage rows of a key in `[from, to)`: (minute, method, calls, errors, rate limited).
pub(crate) async fn usage(
    db: &Db,
    key_id: &str,
    from: NaiveDateTime,
    to: NaiveDateTime,
) -> Result<Vec<(NaiveDateTime, String, i64, i64, i64)>, DbError> {
    db_read!(db, |conn| api_key_usage::table
        .filter(api_key_usage::key_id.eq(key_id))
        .filter(api_key_usage::minute.ge(from))
        .filter(api_key_usage::minute.lt(to))
        .order(api_key_usage::minute.asc())
        .select((
            api_key_usage::minute,
            api_key_usage::method,
            api_key_usage::calls,
            api_key_usage::errors,
            api_key_usage::rate_limited,
        ))
        .load(conn)
        .await
        .map_err(DbError::from))
}
