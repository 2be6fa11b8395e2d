//! API key queries. Secrets are stored only as keyed hashes.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use trellis_schema::access::Permission;
use trellis_schema::ids::{ApiKeyId, OrgId, UserId};
use trellis_schema::{ApiError, Reason};

use crate::access::InOrg;
use crate::access::keys::VerifiedKey;
use crate::db::models::{ApiKeyRow, AuditEventRow, EventRow, now};
use crate::db::schema::{api_key_secrets, api_key_usage, api_keys, audit_events, events};
use crate::db::{Db, DbError, db_read, db_run};
use crate::state::State;

pub(crate) fn scopes_text(scopes: &[Permission]) -> String {
    let mut s: Vec<&str> = scopes.iter().map(|p| p.as_str()).collect();
    s.sort_unstable();
    s.dedup();
    s.join(",")
}

pub(crate) async fn find(db: &Db, id: ApiKeyId) -> Result<Option<ApiKeyRow>, DbError> {
    db_read!(db, |conn| api_keys::table
        .find(id)
        .select(ApiKeyRow::as_select())
        .first(conn)
        .await
        .optional()
        .map_err(DbError::from))
}

/// A call naming a key is about the key's organization; a key that does not
/// exist is NOT_FOUND.
impl InOrg for ApiKeyId {
    async fn resolve(self, state: &State, _: Option<&VerifiedKey>) -> Result<OrgId, ApiError> {
        let org: Option<OrgId> = async {
            db_read!(state.db, |conn| api_keys::table
                .find(self)
                .select(api_keys::org_id)
                .first(conn)
                .await
                .optional()
                .map_err(DbError::from))
        }
        .await
        .map_err(crate::access::db_error)?;
        org.ok_or_else(|| ApiError::new(Reason::NotFound))
    }
}

pub(crate) async fn insert(
    db: &Db,
    row: &ApiKeyRow,
    secret_hash: &str,
    event: &AuditEventRow,
    notice: &EventRow,
) -> Result<(), DbError> {
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
            diesel::insert_into(events::table).values(notice).execute(conn).await?;
            Ok::<_, DbError>(())
        })
        .await)
}

pub(crate) async fn list(
    db: &Db,
    org_id: OrgId,
    include_revoked: bool,
    after: Option<ApiKeyId>,
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
            q = q.filter(api_keys::id.gt(a));
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
    key_id: ApiKeyId,
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
    key_id: ApiKeyId,
    at: NaiveDateTime,
    event: &AuditEventRow,
    notice: &EventRow,
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
                diesel::insert_into(events::table).values(notice).execute(conn).await?;
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
    key_id: ApiKeyId,
    new_hash: &str,
    new_prefix: &str,
    holder: UserId,
    old_until: NaiveDateTime,
    event: &AuditEventRow,
    notice: &EventRow,
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
            diesel::insert_into(events::table).values(notice).execute(conn).await?;
            Ok(row)
        })
        .await)
}

/// Per-minute usage rows of a key in `[from, to)`: (minute, method, calls, errors, rate limited).
pub(crate) async fn usage(
    db: &Db,
    key_id: ApiKeyId,
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
