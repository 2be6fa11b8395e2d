//! Writing and reading audit events.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use trellis_schema::audit::{Actor, ActorKind, AuditEvent, Outcome};

use crate::db::models::{AuditEventRow, utc};
use crate::db::schema::audit_events;
use crate::db::{Db, DbError, db_read, db_run};
use trellis_schema::ids::{ActorId, AuditEventId, OrgId, UserId};

/// Records an event on its own (when no other change goes with it).
pub(crate) async fn record(db: &Db, event: AuditEventRow) -> Result<(), DbError> {
    db_run!(db, |conn| diesel::insert_into(audit_events::table)
        .values(&event)
        .execute(conn)
        .await
        .map_err(DbError::from)?);
    Ok(())
}

/// Deletes events from before `before`, a batch at a time.
pub(crate) async fn prune(db: &Db, before: chrono::NaiveDateTime) -> Result<u64, DbError> {
    crate::db::in_batches(500, |size| async move {
        let ids: Vec<String> = db_run!(db, |conn| audit_events::table
            .filter(audit_events::at.lt(before))
            .select(audit_events::id)
            .limit(i64::try_from(size).unwrap_or(i64::MAX))
            .load(conn)
            .await
            .map_err(DbError::from)?);
        if !ids.is_empty() {
            db_run!(db, |conn| diesel::delete(audit_events::table.filter(audit_events::id.eq_any(&ids)))
                .execute(conn)
                .await
                .map_err(DbError::from)?);
        }
        Ok(ids.len())
    })
    .await
}

/// Events about `user_id`'s account, newest first, after the cursor (an id).
pub(crate) async fn for_user(
    db: &Db,
    user_id: UserId,
    before: Option<AuditEventId>,
    limit: i64,
) -> Result<Vec<AuditEventRow>, DbError> {
    db_read!(db, |conn| {
        let mut q = audit_events::table
            .filter(audit_events::subject_user_id.eq(user_id))
            .order(audit_events::id.desc())
            .limit(limit)
            .select(AuditEventRow::as_select())
            .into_boxed();
        if let Some(b) = before {
            q = q.filter(audit_events::id.lt(b));
        }
        q.load(conn).await.map_err(DbError::from)
    })
}

impl AuditEventRow {
    pub(crate) fn to_api(&self) -> AuditEvent {
        let kind = match self.actor_kind.as_str() {
            "apiKey" => ActorKind::ApiKey,
            "system" => ActorKind::System,
            _ => ActorKind::User,
        };
        AuditEvent {
            id: self.id,
            at: utc(self.at),
            actor: Actor { kind, id: self.actor_id },
            action: self.action.clone(),
            target: self.target.clone(),
            outcome: if self.outcome == "success" { Outcome::Success } else { Outcome::Failure },
            detail: self.detail.clone(),
            ip: self.ip.clone(),
            user_agent: self.user_agent.clone(),
            request_id: self.request_id.clone(),
        }
    }
}

/// Events of the organization, newest first, filtered.
pub(crate) struct AuditFilter<'a> {
    pub actor_id: Option<ActorId>,
    pub action: Option<&'a str>,
    pub from: Option<NaiveDateTime>,
    pub to: Option<NaiveDateTime>,
    pub before: Option<AuditEventId>,
    pub limit: i64,
}

pub(crate) async fn in_org(db: &Db, org_id: OrgId, f: AuditFilter<'_>) -> Result<Vec<AuditEventRow>, DbError> {
    db_read!(db, |conn| {
        let mut q = audit_events::table
            .filter(audit_events::org_id.eq(org_id))
            .order(audit_events::id.desc())
            .limit(f.limit)
            .select(AuditEventRow::as_select())
            .into_boxed();
        if let Some(a) = &f.actor_id {
            q = q.filter(audit_events::actor_id.eq(*a));
        }
        if let Some(a) = f.action {
            q = q.filter(audit_events::action.eq(a.to_owned()));
        }
        if let Some(t) = f.from {
            q = q.filter(audit_events::at.ge(t));
        }
        if let Some(t) = f.to {
            q = q.filter(audit_events::at.lt(t));
        }
        if let Some(b) = &f.before {
            q = q.filter(audit_events::id.lt(*b));
        }
        q.load(conn).await.map_err(DbError::from)
    })
}
