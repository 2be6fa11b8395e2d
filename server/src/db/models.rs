//! Rows as stored. They never cross the RPC boundary: handlers turn them
//! into schema types.

use chrono::{NaiveDateTime, TimeZone, Timelike, Utc};
use diesel::prelude::*;
use trellis_schema::auth::{Org, User};
use uuid::Uuid;

use super::schema::{org_members, orgs, refresh_tokens, sessions, users};

/// The current time at microsecond precision, the finest both backends keep.
pub(crate) fn now() -> NaiveDateTime {
    let t = Utc::now().naive_utc();
    t.with_nanosecond(t.nanosecond() / 1000 * 1000).unwrap_or(t)
}

pub(crate) fn utc(t: NaiveDateTime) -> chrono::DateTime<Utc> {
    Utc.from_utc_datetime(&t)
}

pub(crate) fn parse_id(s: &str) -> Uuid {
    Uuid::parse_str(s).unwrap_or_default()
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = users)]
pub(crate) struct UserRow {
    pub id: String,
    pub email: String,
    pub email_key: String,
    pub password_hash: String,
    pub display_name: String,
    pub email_verified: bool,
    pub mfa_enabled: bool,
    pub is_admin: bool,
    pub disabled: bool,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

impl UserRow {
    pub(crate) fn to_api(&self) -> User {
        User {
            id: parse_id(&self.id),
            email: self.email.clone(),
            display_name: self.display_name.clone(),
            email_verified: self.email_verified,
            mfa_enabled: self.mfa_enabled,
            is_admin: self.is_admin,
            created_at: utc(self.created_at),
        }
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = sessions)]
pub(crate) struct SessionRow {
    pub id: String,
    pub user_id: String,
    pub created_at: NaiveDateTime,
    pub last_used_at: NaiveDateTime,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
    pub revoked_at: Option<NaiveDateTime>,
    pub revoked_reason: Option<String>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = refresh_tokens)]
pub(crate) struct RefreshTokenRow {
    pub token_hash: String,
    pub session_id: String,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub used_at: Option<NaiveDateTime>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = orgs)]
pub(crate) struct OrgRow {
    pub id: String,
    pub name: String,
    pub slug: String,
    pub created_at: NaiveDateTime,
}

impl OrgRow {
    pub(crate) fn to_api(&self) -> Org {
        Org {
            id: parse_id(&self.id),
            name: self.name.clone(),
            slug: self.slug.clone(),
            created_at: utc(self.created_at),
        }
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = org_members)]
pub(crate) struct OrgMemberRow {
    pub org_id: String,
    pub user_id: String,
    pub role: String,
    pub joined_at: NaiveDateTime,
}
