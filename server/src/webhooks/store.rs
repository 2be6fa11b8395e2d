//! Webhook queries: the webhooks of an organization (secrets sealed), their
//! deliveries, the hooking of events into deliveries and the senders' claims.
//! Every change writes only the columns it changes, under a condition.

use chrono::{NaiveDateTime, TimeZone, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use trellis_schema::access::OrgRole;
use trellis_schema::ids::{OrgId, UserId, WebhookDeliveryId, WebhookId};
use trellis_schema::notifications::EventType;
use trellis_schema::webhooks::DeliveryStatus;

use crate::db::models::{AuditEventRow, WebhookDeliveryRow, WebhookRow, now, utc};
use crate::db::schema::{
    audit_events, events, notification_preferences, org_members, orgs, webhook_deliveries, webhooks,
};
use crate::db::{Db, DbError, db_read, db_run};
use crate::notifications::events::Event;

pub(crate) fn events_text(events: &[EventType]) -> String {
    let mut s: Vec<&str> = events.iter().map(|e| e.as_str()).collect();
    s.sort_unstable();
    s.dedup();
    s.join(",")
}

/// Adds a webhook with its event, unless the organization has `max` already
/// (`false`). The organization's row is written first, so two creations in
/// one organization run one after the other and cannot both pass the count.
pub(crate) async fn insert(db: &Db, row: &WebhookRow, event: &AuditEventRow, max: usize) -> Result<bool, DbError> {
    let max = i64::try_from(max).unwrap_or(i64::MAX);
    db_run!(db, |conn| conn
        .transaction(async |conn| {
            diesel::update(orgs::table.find(row.org_id)).set(orgs::slug.eq(orgs::slug)).execute(conn).await?;
            let n: i64 = webhooks::table.filter(webhooks::org_id.eq(row.org_id)).count().get_result(conn).await?;
            if n >= max {
                return Ok::<_, DbError>(false);
            }
            diesel::insert_into(webhooks::table).values(row).execute(conn).await?;
            diesel::insert_into(audit_events::table).values(event).execute(conn).await?;
            Ok(true)
        })
        .await)
}

pub(crate) async fn list(
    db: &Db,
    org_id: OrgId,
    after: Option<WebhookId>,
    limit: i64,
) -> Result<Vec<WebhookRow>, DbError> {
    db_read!(db, |conn| {
        let mut q = webhooks::table
            .filter(webhooks::org_id.eq(org_id))
            .order(webhooks::id.asc())
            .limit(limit)
            .select(WebhookRow::as_select())
            .into_boxed();
        if let Some(a) = after {
            q = q.filter(webhooks::id.gt(a));
        }
        q.load(conn).await.map_err(DbError::from)
    })
}

/// The columns an update changes; `None` leaves a column as it is.
#[derive(Debug, Default)]
pub(crate) struct WebhookChanges {
    pub url: Option<String>,
    pub events: Option<String>,
    pub enabled: Option<bool>,
}

/// Writes the changed columns of a webhook of the organization, with its
/// event. Enabling clears the reason it was disabled and its run of
/// failures. `None`: no such webhook in the organization.
pub(crate) async fn update(
    db: &Db,
    org_id: OrgId,
    id: WebhookId,
    changes: &WebhookChanges,
    event: &AuditEventRow,
) -> Result<Option<WebhookRow>, DbError> {
    let t = now();
    let set = (
        changes.url.as_ref().map(|v| webhooks::url.eq(v.clone())),
        changes.events.as_ref().map(|v| webhooks::events.eq(v.clone())),
        changes.enabled.map(|v| webhooks::enabled.eq(v)),
        changes.enabled.map(|_| webhooks::disabled_reason.eq(None::<String>)),
        changes.enabled.filter(|e| *e).map(|_| webhooks::failure_streak.eq(0)),
        webhooks::updated_at.eq(t),
    );
    db_run!(db, |conn| conn
        .transaction(async |conn| {
            let row = diesel::update(webhooks::table.filter(webhooks::id.eq(id)).filter(webhooks::org_id.eq(org_id)))
                .set(set.clone())
                .returning(WebhookRow::as_returning())
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

/// Deletes a webhook of the organization and its deliveries, with its
/// event. `false`: no such webhook.
pub(crate) async fn delete(db: &Db, org_id: OrgId, id: WebhookId, event: &AuditEventRow) -> Result<bool, DbError> {
    db_run!(db, |conn| conn
        .transaction(async |conn| {
            diesel::delete(webhook_deliveries::table.filter(webhook_deliveries::webhook_id.eq(id)))
                .filter(webhook_deliveries::org_id.eq(org_id))
                .execute(conn)
                .await?;
            let n = diesel::delete(webhooks::table.filter(webhooks::id.eq(id)).filter(webhooks::org_id.eq(org_id)))
                .execute(conn)
                .await?;
            if n > 0 {
                diesel::insert_into(audit_events::table).values(event).execute(conn).await?;
            }
            Ok::<_, DbError>(n > 0)
        })
        .await)
}

/// Gives a webhook of the organization a new sealed secret. With
/// `old_until`, the current secret moves to `previous_secret` and keeps
/// signing until then (copied in SQL, never read and written back);
/// without, it stops at once. `false`: no such webhook.
pub(crate) async fn rotate(
    db: &Db,
    org_id: OrgId,
    id: WebhookId,
    sealed: &str,
    old_until: Option<NaiveDateTime>,
    event: &AuditEventRow,
) -> Result<bool, DbError> {
    let t = now();
    let target = webhooks::table.filter(webhooks::id.eq(id)).filter(webhooks::org_id.eq(org_id));
    db_run!(db, |conn| conn
        .transaction(async |conn| {
            let n = match old_until {
                Some(until) => {
                    diesel::update(target)
                        .set((
                            webhooks::previous_secret.eq(webhooks::secret.nullable()),
                            webhooks::previous_secret_until.eq(Some(until)),
                            webhooks::secret.eq(sealed),
                            webhooks::updated_at.eq(t),
                        ))
                        .execute(conn)
                        .await?
                }
                None => {
                    diesel::update(target)
                        .set((
                            webhooks::previous_secret.eq(None::<String>),
                            webhooks::previous_secret_until.eq(None::<NaiveDateTime>),
                            webhooks::secret.eq(sealed),
                            webhooks::updated_at.eq(t),
                        ))
                        .execute(conn)
                        .await?
                }
            };
            if n > 0 {
                diesel::insert_into(audit_events::table).values(event).execute(conn).await?;
            }
            Ok::<_, DbError>(n > 0)
        })
        .await)
}

/// A webhook's deliveries in the organization, newest first, before the cursor.
pub(crate) async fn deliveries(
    db: &Db,
    org_id: OrgId,
    webhook_id: WebhookId,
    before: Option<WebhookDeliveryId>,
    limit: i64,
) -> Result<Vec<WebhookDeliveryRow>, DbError> {
    db_read!(db, |conn| {
        let mut q = webhook_deliveries::table
            .filter(webhook_deliveries::webhook_id.eq(webhook_id))
            .filter(webhook_deliveries::org_id.eq(org_id))
            .order(webhook_deliveries::id.desc())
            .limit(limit)
            .select(WebhookDeliveryRow::as_select())
            .into_boxed();
        if let Some(b) = before {
            q = q.filter(webhook_deliveries::id.lt(b));
        }
        q.load(conn).await.map_err(DbError::from)
    })
}

/// What became of a redelivery.
pub(crate) enum Redelivered {
    Queued,
    NotFound,
    /// The delivery is still pending: it is being tried.
    Pending,
}

/// Queues a delivered or failed delivery of the organization again, as a
/// new delivery with the same message (id and body), with its event.
pub(crate) async fn redeliver(
    db: &Db,
    org_id: OrgId,
    id: WebhookDeliveryId,
    event: &AuditEventRow,
) -> Result<Redelivered, DbError> {
    let t = now();
    db_run!(db, |conn| conn
        .transaction(async |conn| {
            // The organization's row first, as `create` does: the write lock
            // is taken before the read (SQLite), and redeliveries of one
            // organization run one at a time.
            diesel::update(orgs::table.find(org_id)).set(orgs::slug.eq(orgs::slug)).execute(conn).await?;
            let found: Option<WebhookDeliveryRow> = webhook_deliveries::table
                .filter(webhook_deliveries::id.eq(id))
                .filter(webhook_deliveries::org_id.eq(org_id))
                .select(WebhookDeliveryRow::as_select())
                .first(conn)
                .await
                .optional()?;
            let Some(old) = found else { return Ok::<_, DbError>(Redelivered::NotFound) };
            if old.status == DeliveryStatus::Pending.as_str() {
                return Ok(Redelivered::Pending);
            }
            let again = WebhookDeliveryRow {
                id: WebhookDeliveryId::new(),
                status: DeliveryStatus::Pending.as_str().to_owned(),
                attempts: 0,
                response_code: None,
                last_error: None,
                created_at: t,
                attempted_at: t,
                next_attempt_at: Some(t),
                claimed_until: None,
                ..old
            };
            // A pending one of the same message (a redelivery asked for
            // at the same time) is left alone: the unique index decides.
            let queued = diesel::insert_into(webhook_deliveries::table)
                .values(&again)
                .on_conflict_do_nothing()
                .execute(conn)
                .await?;
            if queued == 0 {
                return Ok(Redelivered::Pending);
            }
            diesel::insert_into(audit_events::table).values(event).execute(conn).await?;
            Ok(Redelivered::Queued)
        })
        .await)
}

/// An event not yet turned into deliveries.
#[derive(Debug, Clone, Queryable)]
pub(crate) struct PendingEvent {
    pub id: String,
    pub kind: String,
    pub org_id: Option<OrgId>,
    pub subject_user_id: Option<UserId>,
    pub data: String,
    pub created_at: NaiveDateTime,
}

/// Events not yet hooked, oldest first.
pub(crate) async fn unhooked_events(db: &Db, limit: i64) -> Result<Vec<PendingEvent>, DbError> {
    db_read!(db, |conn| events::table
        .filter(events::hooked_at.is_null())
        .order(events::id.asc())
        .limit(limit)
        .select((events::id, events::kind, events::org_id, events::subject_user_id, events::data, events::created_at,))
        .load(conn)
        .await
        .map_err(DbError::from))
}

/// In one transaction: marks the event hooked (if no other replica did
/// first: then nothing else is written) and inserts a delivery for each
/// enabled webhook of its organization that takes its type, unless the user
/// it is about turned the webhook channel off. Returns the deliveries made.
pub(crate) async fn hook_event(db: &Db, ev: &PendingEvent) -> Result<usize, DbError> {
    let t = now();
    db_run!(db, |conn| conn
        .transaction(async |conn| {
            let n = diesel::update(events::table.filter(events::id.eq(&ev.id)).filter(events::hooked_at.is_null()))
                .set(events::hooked_at.eq(Some(t)))
                .execute(conn)
                .await?;
            let Some(org_id) = ev.org_id.filter(|_| n == 1) else { return Ok::<_, DbError>(0) };
            if let Some(user) = ev.subject_user_id {
                let channel: Option<bool> = notification_preferences::table
                    .find(user)
                    .select(notification_preferences::webhook)
                    .first(conn)
                    .await
                    .optional()?;
                if channel == Some(false) {
                    return Ok(0);
                }
            }
            let hooks: Vec<(WebhookId, String)> = webhooks::table
                .filter(webhooks::org_id.eq(org_id))
                .filter(webhooks::enabled.eq(true))
                .select((webhooks::id, webhooks::events))
                .load(conn)
                .await?;
            let takers: Vec<WebhookId> = hooks
                .into_iter()
                .filter(|(_, events)| events.split(',').any(|e| e == ev.kind))
                .map(|(id, _)| id)
                .collect();
            if takers.is_empty() {
                return Ok(0);
            }
            let payload = payload(ev, org_id);
            let rows: Vec<WebhookDeliveryRow> = takers
                .into_iter()
                .map(|webhook_id| WebhookDeliveryRow {
                    id: WebhookDeliveryId::new(),
                    webhook_id,
                    org_id,
                    event_id: ev.id.clone(),
                    message_id: format!("msg_{}", ev.id),
                    kind: ev.kind.clone(),
                    payload: payload.clone(),
                    status: DeliveryStatus::Pending.as_str().to_owned(),
                    attempts: 0,
                    response_code: None,
                    last_error: None,
                    created_at: t,
                    attempted_at: t,
                    next_attempt_at: Some(t),
                    claimed_until: None,
                })
                .collect();
            for row in &rows {
                diesel::insert_into(webhook_deliveries::table).values(row).execute(conn).await?;
            }
            Ok(rows.len())
        })
        .await)
}

/// A delivery claimed by this sender, with what posting it needs.
#[derive(Debug, Clone)]
pub(crate) struct Claimed {
    pub delivery: WebhookDeliveryRow,
    pub url: String,
    pub secret: String,
    pub previous_secret: Option<String>,
    pub previous_secret_until: Option<NaiveDateTime>,
}

/// Claims up to `limit` deliveries due to enabled webhooks, each by a
/// conditional update of its lease (`claimed_until`), so two senders (two
/// replicas) never post the same delivery at once.
pub(crate) async fn claim_due(db: &Db, limit: i64, lease: chrono::Duration) -> Result<Vec<Claimed>, DbError> {
    type Due = (WebhookDeliveryRow, String, String, Option<String>, Option<NaiveDateTime>);
    let t = now();
    let until = t + lease;
    db_run!(db, |conn| {
        let due: Vec<Due> = webhook_deliveries::table
            .inner_join(webhooks::table)
            .filter(webhook_deliveries::status.eq(DeliveryStatus::Pending.as_str()))
            .filter(webhook_deliveries::next_attempt_at.le(t))
            .filter(webhook_deliveries::claimed_until.is_null().or(webhook_deliveries::claimed_until.lt(t)))
            .filter(webhooks::enabled.eq(true))
            .order(webhook_deliveries::next_attempt_at.asc())
            .limit(limit)
            .select((
                WebhookDeliveryRow::as_select(),
                webhooks::url,
                webhooks::secret,
                webhooks::previous_secret,
                webhooks::previous_secret_until,
            ))
            .load(conn)
            .await?;
        let mut claimed = Vec::with_capacity(due.len());
        for (delivery, url, secret, previous_secret, previous_secret_until) in due {
            let n = diesel::update(
                webhook_deliveries::table
                    .filter(webhook_deliveries::id.eq(delivery.id))
                    .filter(webhook_deliveries::status.eq(DeliveryStatus::Pending.as_str()))
                    .filter(webhook_deliveries::claimed_until.is_null().or(webhook_deliveries::claimed_until.lt(t))),
            )
            .set(webhook_deliveries::claimed_until.eq(Some(until)))
            .execute(conn)
            .await?;
            if n == 1 {
                claimed.push(Claimed { delivery, url, secret, previous_secret, previous_secret_until });
            }
        }
        Ok::<_, DbError>(claimed)
    })
}

/// The outcome of one attempt, as recorded.
#[derive(Debug, Clone)]
pub(crate) struct Attempt {
    pub delivered: bool,
    pub response_code: Option<u16>,
    pub error: Option<String>,
    /// For a failure: when to try again; `None`: give up.
    pub retry_at: Option<NaiveDateTime>,
}

/// A webhook the server disabled, for the log.
#[derive(Debug, Clone)]
pub(crate) struct Disabled {
    pub webhook_id: WebhookId,
    pub org_id: OrgId,
}

/// Records an attempt of a claimed delivery (the claim makes this sender
/// its only writer; the attempt count is still added in SQL). A success
/// ends the webhook's run of failures; a delivery given up adds to it, and
/// at `disable_after` the webhook is disabled (once: a conditional update)
/// and an event for its organization's owners and admins is written in the
/// same transaction.
pub(crate) async fn record_attempt(
    db: &Db,
    claimed: &Claimed,
    attempt: &Attempt,
    disable_after: u32,
) -> Result<Option<Disabled>, DbError> {
    let t = now();
    let d = &claimed.delivery;
    let status = match (attempt.delivered, attempt.retry_at) {
        (true, _) => DeliveryStatus::Delivered,
        (false, Some(_)) => DeliveryStatus::Pending,
        (false, None) => DeliveryStatus::Failed,
    };
    let next = if status == DeliveryStatus::Pending { attempt.retry_at } else { None };
    let error: Option<String> = attempt.error.as_ref().map(|e| e.chars().take(300).collect());
    let disable_after = i32::try_from(disable_after.max(1)).unwrap_or(i32::MAX);
    db_run!(db, |conn| conn
        .transaction(async |conn| {
            let n = diesel::update(
                webhook_deliveries::table
                    .filter(webhook_deliveries::id.eq(d.id))
                    .filter(webhook_deliveries::status.eq(DeliveryStatus::Pending.as_str())),
            )
            .set((
                webhook_deliveries::status.eq(status.as_str()),
                webhook_deliveries::attempts.eq(webhook_deliveries::attempts + 1),
                webhook_deliveries::response_code.eq(attempt.response_code.map(i32::from)),
                webhook_deliveries::last_error.eq(&error),
                webhook_deliveries::attempted_at.eq(t),
                webhook_deliveries::next_attempt_at.eq(next),
                webhook_deliveries::claimed_until.eq(None::<NaiveDateTime>),
            ))
            .execute(conn)
            .await?;
            if n == 0 {
                return Ok::<_, DbError>(None);
            }
            match status {
                DeliveryStatus::Delivered => {
                    diesel::update(webhooks::table.find(d.webhook_id).filter(webhooks::failure_streak.ne(0)))
                        .set(webhooks::failure_streak.eq(0))
                        .execute(conn)
                        .await?;
                    Ok(None)
                }
                DeliveryStatus::Pending => Ok(None),
                DeliveryStatus::Failed => {
                    diesel::update(webhooks::table.find(d.webhook_id))
                        .set(webhooks::failure_streak.eq(webhooks::failure_streak + 1))
                        .execute(conn)
                        .await?;
                    let reason = format!("{disable_after} deliveries in a row failed every attempt");
                    let disabled: Option<(OrgId, String)> = diesel::update(
                        webhooks::table
                            .find(d.webhook_id)
                            .filter(webhooks::enabled.eq(true))
                            .filter(webhooks::failure_streak.ge(disable_after)),
                    )
                    .set((
                        webhooks::enabled.eq(false),
                        webhooks::disabled_reason.eq(Some(reason)),
                        webhooks::updated_at.eq(t),
                    ))
                    .returning((webhooks::org_id, webhooks::url))
                    .get_result(conn)
                    .await
                    .optional()?;
                    let Some((org_id, url)) = disabled else { return Ok(None) };
                    let admins: Vec<UserId> = org_members::table
                        .filter(org_members::org_id.eq(org_id))
                        .filter(org_members::role.eq_any([OrgRole::Owner.as_str(), OrgRole::Admin.as_str()]))
                        .order(org_members::user_id.asc())
                        .select(org_members::user_id)
                        .load(conn)
                        .await?;
                    let body = format!(
                        "The webhook {url} was disabled after {disable_after} deliveries in a row failed every \
                         attempt. Fix the endpoint, then enable it again."
                    );
                    let mut row = Event::new(EventType::WebhookDisabled, admins, "A webhook was disabled", body)
                        .in_org(org_id)
                        .with("webhookId", d.webhook_id.to_string())
                        .with("url", url)
                        .row();
                    // Already hooked: it is not delivered to webhooks, so a
                    // failing webhook cannot feed itself.
                    row.hooked_at = Some(t);
                    diesel::insert_into(events::table).values(&row).execute(conn).await?;
                    Ok(Some(Disabled { webhook_id: d.webhook_id, org_id }))
                }
            }
        })
        .await)
}

/// Deletes deliveries made before `before`, a batch at a time.
pub(crate) async fn prune(db: &Db, before: NaiveDateTime) -> Result<u64, DbError> {
    crate::db::in_batches(500, |size| async move {
        let ids: Vec<WebhookDeliveryId> = db_run!(db, |conn| webhook_deliveries::table
            .filter(webhook_deliveries::created_at.lt(before))
            .filter(webhook_deliveries::status.ne(DeliveryStatus::Pending.as_str()))
            .select(webhook_deliveries::id)
            .limit(i64::try_from(size).unwrap_or(i64::MAX))
            .load(conn)
            .await
            .map_err(DbError::from)?);
        if !ids.is_empty() {
            db_run!(db, |conn| diesel::delete(webhook_deliveries::table.filter(webhook_deliveries::id.eq_any(&ids)))
                .execute(conn)
                .await
                .map_err(DbError::from)?);
        }
        Ok(ids.len())
    })
    .await
}

impl WebhookRow {
    pub(crate) fn to_api(&self) -> trellis_schema::webhooks::Webhook {
        trellis_schema::webhooks::Webhook {
            id: self.id,
            org_id: self.org_id,
            url: self.url.clone(),
            events: self.events.split(',').filter_map(EventType::from_wire).collect(),
            enabled: self.enabled,
            disabled_reason: self.disabled_reason.clone(),
            created_at: utc(self.created_at),
        }
    }
}

impl WebhookDeliveryRow {
    /// `None` for a row of an event type this server does not know.
    pub(crate) fn to_api(&self) -> Option<trellis_schema::webhooks::WebhookDelivery> {
        Some(trellis_schema::webhooks::WebhookDelivery {
            id: self.id,
            event: EventType::from_wire(&self.kind)?,
            attempt: u32::try_from(self.attempts).unwrap_or(0),
            status: DeliveryStatus::parse(&self.status).unwrap_or(DeliveryStatus::Pending),
            response_code: self.response_code.and_then(|c| u16::try_from(c).ok()),
            error: self.last_error.clone(),
            at: utc(self.attempted_at),
            next_attempt_at: self.next_attempt_at.filter(|_| self.status == DeliveryStatus::Pending.as_str()).map(utc),
        })
    }
}

/// The body posted for an event: `{"type", "timestamp", "data"}`, the data
/// carrying the organization's id. Made once, so every attempt (and a
/// redelivery) posts and signs the same bytes.
pub(crate) fn payload(ev: &PendingEvent, org_id: OrgId) -> String {
    let mut data = match serde_json::from_str::<serde_json::Value>(&ev.data) {
        Ok(serde_json::Value::Object(map)) => map,
        _ => serde_json::Map::new(),
    };
    data.insert("orgId".into(), serde_json::json!(org_id));
    let timestamp = Utc.from_utc_datetime(&ev.created_at).to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    serde_json::json!({ "type": ev.kind, "timestamp": timestamp, "data": data }).to_string()
}
