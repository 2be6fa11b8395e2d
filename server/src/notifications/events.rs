//! Events: the one way anything notifies anyone. A change that others must
//! hear of writes an [`Event`] row in its own transaction (an outbox: what
//! was acknowledged is never lost), then calls [`Events::published`]. The
//! dispatcher turns each event into a notification per recipient (numbered
//! per user, in commit order), the e-mails their preferences ask for, and a
//! wake-up for their subscribers on every replica; the webhook worker turns
//! it into deliveries. Several replicas dispatch at once: each event is
//! claimed by a conditional update, in the transaction that writes its
//! notifications.

use std::sync::Arc;
use std::time::Duration;

use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use tokio::sync::Notify;
use trellis_schema::ids::{NotificationId, OrgId, UserId};
use trellis_schema::notifications::{EventType, Preferences};

use super::hub::Hub;
use super::store;
use crate::cache::bus::{Bus, Change};
use crate::db::models::{EventRow, NotificationRow, internal_id, now};
use crate::db::schema::{events, notifications, outbox};
use crate::db::{Db, DbError, db_run};
use crate::mail::{Mail, Wakeup, outbox as mail_outbox};

/// Something that happened, for `recipients` (and, with an organization,
/// for its webhooks).
pub(crate) struct Event {
    pub kind: EventType,
    pub org: Option<OrgId>,
    /// The user it is about (their role changed, they were removed).
    pub about: Option<UserId>,
    pub recipients: Vec<UserId>,
    pub title: String,
    pub body: String,
    pub data: serde_json::Map<String, serde_json::Value>,
}

impl Event {
    pub(crate) fn new(kind: EventType, recipients: Vec<UserId>, title: impl Into<String>, body: impl Into<String>) -> Self {
        Self {
            kind,
            org: None,
            about: None,
            recipients,
            title: title.into(),
            body: body.into(),
            data: serde_json::Map::new(),
        }
    }

    pub(crate) fn in_org(mut self, org: OrgId) -> Self {
        self.org = Some(org);
        self.data.insert("orgId".into(), org.to_string().into());
        self
    }

    pub(crate) fn about(mut self, user: UserId) -> Self {
        self.about = Some(user);
        self.data.insert("userId".into(), user.to_string().into());
        self
    }

    pub(crate) fn with(mut self, key: &str, value: impl Into<serde_json::Value>) -> Self {
        self.data.insert(key.to_owned(), value.into());
        self
    }

    /// The row to insert in the transaction of the change.
    pub(crate) fn row(self) -> EventRow {
        let recipients: Vec<String> = self.recipients.iter().map(ToString::to_string).collect();
        EventRow {
            id: internal_id(),
            kind: self.kind.as_str().to_owned(),
            org_id: self.org,
            subject_user_id: self.about,
            recipients: serde_json::to_string(&recipients).unwrap_or_else(|_| "[]".into()),
            title: self.title,
            body: self.body,
            data: serde_json::Value::Object(self.data).to_string(),
            created_at: now(),
            notified_at: None,
            // Without an organization there is no webhook to deliver to.
            hooked_at: if self.org.is_none() { Some(now()) } else { None },
        }
    }
}

/// An event about an API key of `org`, for its owners and admins.
pub(crate) async fn api_key_event(
    db: &Db,
    kind: EventType,
    org: OrgId,
    key: trellis_schema::ids::ApiKeyId,
    name: Option<&str>,
) -> Result<EventRow, DbError> {
    let verb = match kind {
        EventType::ApiKeyCreated => "created",
        EventType::ApiKeyRotated => "rotated",
        _ => "revoked",
    };
    let admins = crate::orgs::store::admins(db, org).await?;
    let body = match name {
        Some(name) => format!("The API key \"{name}\" was {verb}."),
        None => format!("An API key was {verb}."),
    };
    let mut event = Event::new(kind, admins, format!("API key {verb}"), body).in_org(org).with("apiKeyId", key.to_string());
    if let Some(name) = name {
        event = event.with("name", name);
    }
    Ok(event.row())
}

/// The events side of the state: wakes the dispatcher (and the webhook
/// worker) once an event is committed.
#[derive(Clone, Default)]
pub(crate) struct Events {
    dispatch: Arc<Notify>,
    /// Wakes the webhook worker.
    pub webhooks: Wakeup,
    pub hub: Arc<Hub>,
}

impl Events {
    /// Writes `event` on its own (for a change that has no transaction of
    /// its own to write it in), then wakes the dispatcher.
    pub(crate) async fn publish(&self, db: &Db, event: Event) -> Result<(), DbError> {
        let row = event.row();
        db_run!(db, |conn| diesel::insert_into(events::table).values(&row).execute(conn).await)?;
        self.published();
        Ok(())
    }

    /// Tells `user` of a change to their account that has already been
    /// made (its own transaction is committed): a failure to write the
    /// event is logged, never the change's caller's error.
    pub(crate) async fn tell(&self, db: &Db, kind: EventType, user: UserId, title: &str, body: &str) {
        let event = Event::new(kind, vec![user], title, body).about(user);
        if let Err(e) = self.publish(db, event).await {
            tracing::warn!(error = %e, kind = %kind, user_id = %user, "a notification was not recorded");
        }
    }

    /// Call after committing a transaction that wrote an event.
    pub(crate) fn published(&self) {
        self.dispatch.notify_one();
        self.webhooks.wake();
    }

    /// The dispatcher: runs until aborted, waking on [`Events::published`]
    /// and every `poll` (events of other replicas' crashed dispatchers).
    pub(crate) fn spawn(&self, db: Arc<Db>, bus: Bus, mail: Wakeup, public_url: String, poll: Duration) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            loop {
                if let Err(e) = this.drain(&db, &bus, &mail, &public_url).await {
                    tracing::warn!(error = %e, "dispatching events failed; retrying");
                }
                tokio::select! {
                    () = this.dispatch.notified() => {}
                    () = tokio::time::sleep(poll) => {}
                }
            }
        })
    }

    async fn drain(&self, db: &Db, bus: &Bus, mail: &Wakeup, public_url: &str) -> Result<(), DbError> {
        loop {
            let pending: Vec<EventRow> = db_run!(db, |conn| {
                events::table
                    .filter(events::notified_at.is_null())
                    .order(events::id.asc())
                    .limit(50)
                    .select(EventRow::as_select())
                    .load(conn)
                    .await
            })?;
            if pending.is_empty() {
                return Ok(());
            }
            let n = pending.len();
            for event in pending {
                // Two dispatchers numbering the same user's notifications at
                // once: the second meets the first's number and tries again.
                let mut attempt = 0;
                let delivered = loop {
                    match dispatch(db, &event, public_url).await {
                        Ok(d) => break d,
                        Err(DbError::Unavailable(e)) => return Err(DbError::Unavailable(e)),
                        Err(e) if attempt < 5 => {
                            attempt += 1;
                            tracing::debug!(error = %e, event = %event.id, "dispatch conflict; retrying");
                        }
                        Err(e) => return Err(e),
                    }
                };
                let Some(delivered) = delivered else { continue };
                for (user, seq) in &delivered.notified {
                    self.hub.wake(*user, *seq);
                    bus.publish(Change::Notified(*user, *seq));
                }
                if delivered.mailed {
                    mail.wake();
                }
            }
            if n < 50 {
                return Ok(());
            }
        }
    }
}

/// What dispatching one event did.
struct Dispatched {
    /// Each user notified, with their notification's number.
    notified: Vec<(UserId, i64)>,
    mailed: bool,
}

/// Dispatches one event in one transaction: `None` if another dispatcher
/// already did.
async fn dispatch(db: &Db, event: &EventRow, public_url: &str) -> Result<Option<Dispatched>, DbError> {
    let Some(kind) = EventType::from_wire(&event.kind) else {
        tracing::error!(kind = %event.kind, "event of an unknown type; marked done");
        db_run!(db, |conn| {
            diesel::update(events::table.find(&event.id)).set(events::notified_at.eq(Some(now()))).execute(conn).await
        })?;
        return Ok(None);
    };
    let recipients: Vec<UserId> = serde_json::from_str::<Vec<String>>(&event.recipients)
        .unwrap_or_default()
        .iter()
        .filter_map(|s| s.parse().ok())
        .collect();
    let preferences = store::preferences_of(db, &recipients).await?;
    let at = now();
    db_run!(db, |conn| {
        conn.transaction(async |conn| {
            let claimed = diesel::update(events::table.find(&event.id).filter(events::notified_at.is_null()))
                .set(events::notified_at.eq(Some(at)))
                .execute(conn)
                .await?;
            if claimed == 0 {
                return Ok::<_, DbError>(None);
            }
            let mut done = Dispatched { notified: Vec::new(), mailed: false };
            for (user, email, name, prefs) in &preferences {
                let muted = prefs.muted.contains(&kind);
                if prefs.channels.in_app && !muted {
                    let last: Option<i64> = notifications::table
                        .filter(notifications::user_id.eq(user))
                        .select(diesel::dsl::max(notifications::seq))
                        .first(conn)
                        .await?;
                    let seq = last.unwrap_or(0) + 1;
                    let row = NotificationRow {
                        id: NotificationId::new(),
                        user_id: *user,
                        seq,
                        event_id: event.id.clone(),
                        kind: event.kind.clone(),
                        title: event.title.clone(),
                        body: event.body.clone(),
                        data: event.data.clone(),
                        created_at: event.created_at,
                        read_at: None,
                    };
                    diesel::insert_into(notifications::table).values(&row).execute(conn).await?;
                    done.notified.push((*user, seq));
                }
                if wants_mail(kind, prefs, muted) {
                    let mail = Mail::Notice { name, title: &event.title, body: &event.body };
                    match mail.render(public_url) {
                        Ok(rendered) => {
                            let row = mail_outbox::row(email, &format!("event:{}", event.id), rendered);
                            diesel::insert_into(outbox::table)
                                .values(&row)
                                .on_conflict_do_nothing()
                                .execute(conn)
                                .await?;
                            done.mailed = true;
                        }
                        Err(e) => tracing::error!(error = %e, "notice mail did not render"),
                    }
                }
            }
            Ok(Some(done))
        })
        .await
    })
}

/// Whether an event goes out by e-mail to a user with `prefs`. Security
/// notices always do, unless the change already sent a mail of its own
/// (a password change, a lockout).
fn wants_mail(kind: EventType, prefs: &Preferences, muted: bool) -> bool {
    let own_mail = matches!(kind, EventType::PasswordChanged | EventType::AccountLocked);
    if kind.is_security() {
        return !own_mail;
    }
    prefs.channels.email && !muted
}

#[cfg(test)]
mod tests {
    use trellis_schema::notifications::{Channels, EventType, Preferences};

    use super::wants_mail;

    #[test]
    fn security_notices_cannot_be_muted_on_email() {
        let off = Preferences { channels: Channels { in_app: true, email: false, webhook: true }, muted: EventType::ALL.to_vec() };
        assert!(wants_mail(EventType::MfaDisabled, &off, true));
        assert!(wants_mail(EventType::NewDeviceSignIn, &off, true));
        // These send their own mail when they happen.
        assert!(!wants_mail(EventType::PasswordChanged, &off, true));
        assert!(!wants_mail(EventType::ApiKeyCreated, &off, true));
        let on = Preferences { channels: Channels { in_app: true, email: true, webhook: true }, muted: vec![] };
        assert!(wants_mail(EventType::ApiKeyCreated, &on, false));
        assert!(!wants_mail(EventType::ApiKeyCreated, &on, true));
    }
}
