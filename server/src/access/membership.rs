//! What the access rules ask of the database.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use trellis_schema::access::OrgRole;
use trellis_schema::ids::{OrgId, UserId};

use crate::db::schema::{org_members, users};
use crate::db::{Db, DbError, db_read};

/// The user's role in the organization; `None` when not a member (or no
/// such organization).
pub(crate) async fn role_of(db: &Db, org_id: OrgId, user_id: UserId) -> Result<Option<OrgRole>, DbError> {
    let role: Option<String> = db_read!(db, |conn| org_members::table
        .filter(org_members::org_id.eq(org_id))
        .filter(org_members::user_id.eq(user_id))
        .select(org_members::role)
        .first(conn)
        .await
        .optional()
        .map_err(DbError::from)?);
    Ok(role.as_deref().and_then(OrgRole::parse))
}

/// A user's standing: administrator, disabled.
pub(crate) struct Standing {
    pub is_admin: bool,
    pub disabled: bool,
}

/// `None`: no such user.
pub(crate) async fn standing(db: &Db, user_id: UserId) -> Result<Option<Standing>, DbError> {
    let found: Option<(bool, bool)> = db_read!(db, |conn| users::table
        .find(user_id)
        .select((users::is_admin, users::disabled))
        .first(conn)
        .await
        .optional()
        .map_err(DbError::from)?);
    Ok(found.map(|(is_admin, disabled)| Standing { is_admin, disabled }))
}
