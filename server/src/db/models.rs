//! Rows as stored. They never cross the RPC boundary: handlers turn them
//! into schema types.

use chrono::{NaiveDateTime, TimeZone, Timelike, Utc};
use diesel::prelude::*;
use trellis_schema::auth::User;
use trellis_schema::ids::{ActorId, ApiKeyId, AuditEventId, InvitationId, NotificationId, OrgId, SessionId, UserId};
use trellis_schema::orgs::Org;

use super::schema::{
    api_keys, audit_events, events, invitations, notification_preferences, notifications, one_time_tokens, org_members,
    orgs, outbox, refresh_tokens, sessions, users,
};

/// The current time at microsecond precision, the finest both backends keep.
pub(crate) fn now() -> NaiveDateTime {
    let t = Utc::now().naive_utc();
    t.with_nanosecond(t.nanosecond() / 1000 * 1000).unwrap_or(t)
}

/// The id of a row that never leaves the server (a one-time token, an entry
/// of password history, a mail of the outbox): a UUID v7 as text. Rows the
/// API shows have typed ids (`trellis_schema::ids`).
pub(crate) fn internal_id() -> String {
    uuid::Uuid::now_v7().hyphenated().to_string()
}

pub(crate) fn utc(t: NaiveDateTime) -> chrono::DateTime<Utc> {
    Utc.from_utc_datetime(&t)
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = users)]
pub(crate) struct UserRow {
    pub id: UserId,
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
    /// Failed sign-ins since the last success or lockout.
    pub failed_logins: i32,
    pub locked_until: Option<NaiveDateTime>,
    /// `None`: unchanged since the account was made.
    pub password_changed_at: Option<NaiveDateTime>,
    /// Base64 of the TOTP secret in force.
    pub totp_secret: Option<String>,
    /// Base64 of a TOTP secret enrolled but not yet confirmed.
    pub totp_pending_secret: Option<String>,
    /// The last TOTP time step accepted: a code is never accepted twice.
    pub totp_last_step: i64,
}

impl UserRow {
    /// A new account with nothing set but its identity and password.
    pub(crate) fn new(email: &trellis_schema::values::Email, password_hash: String, display_name: String) -> Self {
        let t = now();
        Self {
            id: UserId::new(),
            email: email.as_str().to_owned(),
            email_key: email.normalized(),
            password_hash,
            display_name,
            email_verified: false,
            mfa_enabled: false,
            is_admin: false,
            disabled: false,
            created_at: t,
            updated_at: t,
            failed_logins: 0,
            locked_until: None,
            password_changed_at: None,
            totp_secret: None,
            totp_pending_secret: None,
            totp_last_step: 0,
        }
    }

    /// Until when the account is locked, if it is now.
    pub(crate) fn locked_at(&self, t: NaiveDateTime) -> Option<NaiveDateTime> {
        self.locked_until.filter(|until| *until > t)
    }

    pub(crate) fn to_api(&self) -> User {
        User {
            id: self.id,
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
    pub id: SessionId,
    pub user_id: UserId,
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
    pub session_id: SessionId,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub used_at: Option<NaiveDateTime>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = orgs)]
pub(crate) struct OrgRow {
    pub id: OrgId,
    pub name: String,
    pub slug: String,
    pub created_at: NaiveDateTime,
}

impl OrgRow {
    pub(crate) fn to_api(&self) -> Org {
        Org {
            id: self.id,
            name: self.name.clone(),
            slug: self.slug.clone(),
            created_at: utc(self.created_at),
            approval_thresholds: None,
        }
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = org_members)]
pub(crate) struct OrgMemberRow {
    pub org_id: OrgId,
    pub user_id: UserId,
    pub role: String,
    pub joined_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = one_time_tokens)]
pub(crate) struct OneTimeTokenRow {
    pub id: String,
    pub user_id: UserId,
    pub purpose: String,
    pub token_hash: String,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub used_at: Option<NaiveDateTime>,
    pub attempts: i32,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = outbox)]
pub(crate) struct OutboxRow {
    pub id: String,
    pub dedupe_key: String,
    pub recipient: String,
    pub subject: String,
    pub text_body: String,
    pub html_body: String,
    pub created_at: NaiveDateTime,
    pub attempts: i32,
    pub next_attempt_at: NaiveDateTime,
    pub claimed_until: Option<NaiveDateTime>,
    pub sent_at: Option<NaiveDateTime>,
    pub failed_at: Option<NaiveDateTime>,
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = audit_events)]
pub(crate) struct AuditEventRow {
    pub id: AuditEventId,
    pub at: NaiveDateTime,
    pub org_id: Option<OrgId>,
    pub actor_kind: String,
    pub actor_id: Option<ActorId>,
    pub subject_user_id: Option<UserId>,
    pub action: String,
    pub target: Option<String>,
    pub outcome: String,
    pub detail: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = invitations)]
pub(crate) struct InvitationRow {
    pub id: InvitationId,
    pub org_id: OrgId,
    pub email_key: String,
    pub role: String,
    pub token_hash: String,
    pub invited_by: UserId,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub accepted_at: Option<NaiveDateTime>,
    pub revoked_at: Option<NaiveDateTime>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = api_keys)]
pub(crate) struct ApiKeyRow {
    pub id: ApiKeyId,
    pub org_id: OrgId,
    pub name: String,
    pub prefix: String,
    /// Comma-separated scopes (`org:read,trades:read`).
    pub scopes: String,
    pub created_by: UserId,
    pub created_at: NaiveDateTime,
    pub last_used_at: Option<NaiveDateTime>,
    pub expires_at: Option<NaiveDateTime>,
    pub revoked_at: Option<NaiveDateTime>,
    pub rate_limit_per_minute: Option<i32>,
}

/// An event of the outbox (see `notifications::events`).
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = events)]
pub(crate) struct EventRow {
    pub id: String,
    pub kind: String,
    pub org_id: Option<OrgId>,
    pub subject_user_id: Option<UserId>,
    /// JSON array of user ids.
    pub recipients: String,
    pub title: String,
    pub body: String,
    /// JSON object.
    pub data: String,
    pub created_at: NaiveDateTime,
    pub notified_at: Option<NaiveDateTime>,
    pub hooked_at: Option<NaiveDateTime>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = notifications)]
pub(crate) struct NotificationRow {
    pub id: NotificationId,
    pub user_id: UserId,
    /// The user's notifications in commit order: 1, 2, 3, ...
    pub seq: i64,
    pub event_id: String,
    pub kind: String,
    pub title: String,
    pub body: String,
    /// JSON object.
    pub data: String,
    pub created_at: NaiveDateTime,
    pub read_at: Option<NaiveDateTime>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = notification_preferences)]
pub(crate) struct PreferencesRow {
    pub user_id: UserId,
    pub in_app: bool,
    pub email: bool,
    pub webhook: bool,
    /// JSON array of event types.
    pub muted: String,
    pub updated_at: NaiveDateTime,
}

use super::schema::{webhook_deliveries, webhooks};
use trellis_schema::ids::{WebhookDeliveryId, WebhookId};

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = webhooks)]
pub(crate) struct WebhookRow {
    pub id: WebhookId,
    pub org_id: OrgId,
    pub url: String,
    /// Comma-separated event types (wire names).
    pub events: String,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    /// Sealed (`auth::sealed`), bound to the webhook's id.
    pub secret: String,
    pub previous_secret: Option<String>,
    pub previous_secret_until: Option<NaiveDateTime>,
    pub failure_streak: i32,
    pub created_by: UserId,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = webhook_deliveries)]
pub(crate) struct WebhookDeliveryRow {
    pub id: WebhookDeliveryId,
    pub webhook_id: WebhookId,
    pub org_id: OrgId,
    pub event_id: String,
    pub message_id: String,
    pub kind: String,
    pub payload: String,
    pub status: String,
    pub attempts: i32,
    pub response_code: Option<i32>,
    pub last_error: Option<String>,
    pub created_at: NaiveDateTime,
    pub attempted_at: NaiveDateTime,
    pub next_attempt_at: Option<NaiveDateTime>,
    pub claimed_until: Option<NaiveDateTime>,
}
