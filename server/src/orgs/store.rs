//! Organization, membership and invitation queries.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use trellis_schema::access::{OrgRole, Permission};

use crate::db::models::{AuditEventRow, EventRow, InvitationRow, OrgMemberRow, OrgRow, OutboxRow, UserRow, now};
use crate::db::schema::{audit_events, events, invitations, org_members, orgs, outbox, users};
use crate::db::{Db, DbError, db_read, db_run};
use trellis_schema::ids::{InvitationId, OrgId, UserId};

/// Creates an organization with its owner; `false` when the slug is taken.
pub(crate) async fn create(
    db: &Db,
    org: &OrgRow,
    owner: &OrgMemberRow,
    event: &AuditEventRow,
) -> Result<bool, DbError> {
    let r: Result<(), DbError> = db_run!(db, |conn| conn
        .transaction(async |conn| {
            diesel::insert_into(orgs::table).values(org).execute(conn).await?;
            diesel::insert_into(org_members::table).values(owner).execute(conn).await?;
            diesel::insert_into(audit_events::table).values(event).execute(conn).await?;
            Ok::<_, DbError>(())
        })
        .await);
    match r {
        Ok(()) => Ok(true),
        Err(DbError::UniqueViolation(_)) => Ok(false),
        Err(e) => Err(e),
    }
}

pub(crate) async fn find(db: &Db, org_id: OrgId) -> Result<Option<OrgRow>, DbError> {
    db_read!(db, |conn| orgs::table
        .find(org_id)
        .select(OrgRow::as_select())
        .first(conn)
        .await
        .optional()
        .map_err(DbError::from))
}

pub(crate) async fn rename(
    db: &Db,
    org_id: OrgId,
    name: &str,
    event: &AuditEventRow,
) -> Result<Option<OrgRow>, DbError> {
    db_run!(db, |conn| conn
        .transaction(async |conn| {
            diesel::update(orgs::table.find(org_id)).set(orgs::name.eq(name)).execute(conn).await?;
            diesel::insert_into(audit_events::table).values(event).execute(conn).await?;
            Ok::<_, DbError>(orgs::table.find(org_id).select(OrgRow::as_select()).first(conn).await.optional()?)
        })
        .await)
}

/// Members after the user id `after`, by user id.
pub(crate) async fn members(
    db: &Db,
    org_id: OrgId,
    after: Option<UserId>,
    limit: i64,
) -> Result<Vec<(UserRow, String, NaiveDateTime)>, DbError> {
    db_read!(db, |conn| {
        let mut q = org_members::table
            .inner_join(users::table)
            .filter(org_members::org_id.eq(org_id))
            .order(org_members::user_id.asc())
            .limit(limit)
            .select((UserRow::as_select(), org_members::role, org_members::joined_at))
            .into_boxed();
        if let Some(a) = after {
            q = q.filter(org_members::user_id.gt(a));
        }
        q.load(conn).await.map_err(DbError::from)
    })
}

/// The owners and admins of an organization: who hears of its API keys
/// and webhooks.
pub(crate) async fn admins(db: &Db, org_id: OrgId) -> Result<Vec<UserId>, DbError> {
    db_read!(db, |conn| {
        org_members::table
            .filter(org_members::org_id.eq(org_id))
            .filter(org_members::role.eq_any([OrgRole::Owner.as_str(), OrgRole::Admin.as_str()]))
            .select(org_members::user_id)
            .load(conn)
            .await
            .map_err(DbError::from)
    })
}

/// Whether the address already belongs to a member.
pub(crate) async fn is_member_by_email(db: &Db, org_id: OrgId, email_key: &str) -> Result<bool, DbError> {
    let n: i64 = db_read!(db, |conn| org_members::table
        .inner_join(users::table)
        .filter(org_members::org_id.eq(org_id))
        .filter(users::email_key.eq(email_key))
        .count()
        .get_result(conn)
        .await
        .map_err(DbError::from)?);
    Ok(n > 0)
}

pub(crate) async fn invite(
    db: &Db,
    invitation: &InvitationRow,
    mail: &OutboxRow,
    event: &AuditEventRow,
    notice: Option<&EventRow>,
) -> Result<(), DbError> {
    db_run!(db, |conn| conn
        .transaction(async |conn| {
            diesel::insert_into(invitations::table).values(invitation).execute(conn).await?;
            diesel::insert_into(outbox::table).values(mail).on_conflict_do_nothing().execute(conn).await?;
            diesel::insert_into(audit_events::table).values(event).execute(conn).await?;
            if let Some(notice) = notice {
                diesel::insert_into(events::table).values(notice).execute(conn).await?;
            }
            Ok::<_, DbError>(())
        })
        .await)
}

pub(crate) async fn find_invitation(db: &Db, token_hash: &str) -> Result<Option<(InvitationRow, OrgRow)>, DbError> {
    db_read!(db, |conn| invitations::table
        .inner_join(orgs::table)
        .filter(invitations::token_hash.eq(token_hash))
        .select((InvitationRow::as_select(), OrgRow::as_select()))
        .first(conn)
        .await
        .optional()
        .map_err(DbError::from))
}

/// What accepting an invitation did.
pub(crate) enum Accepted {
    Joined,
    /// Used meanwhile.
    Used,
    /// Revoked meanwhile.
    Revoked,
    /// Expired meanwhile.
    Expired,
    /// The member who sent it may no longer grant its role.
    InviterMayNot,
    AlreadyMember,
}

/// Whether a member of this standing (role, account disabled; `None`: not
/// a member) may grant `role`: enabled, allowed `org:manage`, and ranked at
/// least as high as `role`.
pub(crate) fn may_grant(standing: Option<(String, bool)>, role: OrgRole) -> bool {
    standing.is_some_and(|(r, disabled)| {
        !disabled && OrgRole::parse(&r).is_some_and(|r| r.allows(Permission::OrgManage) && r.rank() >= role.rank())
    })
}

/// Claims a pending invitation and adds its member, with the event, in one
/// transaction that first writes the organization's row (so membership
/// changes run one at a time): the inviter's standing is checked under that
/// lock, and the claim is conditional (not accepted, not revoked, not
/// expired), so a revocation or a use in between wins.
pub(crate) async fn accept(
    db: &Db,
    invitation: &InvitationRow,
    role: OrgRole,
    member: &OrgMemberRow,
    event: &AuditEventRow,
) -> Result<Accepted, DbError> {
    let t = now();
    let (id, org_id, inviter) = (invitation.id, invitation.org_id, invitation.invited_by);
    let r: Result<Accepted, DbError> = db_run!(db, |conn| conn
        .transaction(async |conn| {
            diesel::update(orgs::table.find(org_id)).set(orgs::slug.eq(orgs::slug)).execute(conn).await?;
            let standing: Option<(String, bool)> = org_members::table
                .inner_join(users::table)
                .filter(org_members::org_id.eq(org_id))
                .filter(org_members::user_id.eq(inviter))
                .select((org_members::role, users::disabled))
                .first(conn)
                .await
                .optional()?;
            if !may_grant(standing, role) {
                return Ok::<_, DbError>(Accepted::InviterMayNot);
            }
            let claimed = diesel::update(
                invitations::table
                    .filter(invitations::id.eq(id))
                    .filter(invitations::accepted_at.is_null())
                    .filter(invitations::revoked_at.is_null())
                    .filter(invitations::expires_at.gt(t)),
            )
            .set(invitations::accepted_at.eq(Some(t)))
            .execute(conn)
            .await?;
            if claimed == 0 {
                let now_: Option<(Option<NaiveDateTime>, Option<NaiveDateTime>)> = invitations::table
                    .find(id)
                    .select((invitations::accepted_at, invitations::revoked_at))
                    .first(conn)
                    .await
                    .optional()?;
                return Ok(match now_ {
                    Some((Some(_), _)) => Accepted::Used,
                    Some((None, Some(_))) | None => Accepted::Revoked,
                    Some((None, None)) => Accepted::Expired,
                });
            }
            diesel::insert_into(org_members::table).values(member).execute(conn).await?;
            diesel::insert_into(audit_events::table).values(event).execute(conn).await?;
            Ok(Accepted::Joined)
        })
        .await);
    match r {
        Err(DbError::UniqueViolation(_)) => Ok(Accepted::AlreadyMember),
        other => other,
    }
}

/// The organization's pending invitations after the id `after`, oldest first.
pub(crate) async fn pending_invitations(
    db: &Db,
    org_id: OrgId,
    after: Option<InvitationId>,
    limit: i64,
) -> Result<Vec<InvitationRow>, DbError> {
    let t = now();
    db_read!(db, |conn| {
        let mut q = invitations::table
            .filter(invitations::org_id.eq(org_id))
            .filter(invitations::accepted_at.is_null())
            .filter(invitations::revoked_at.is_null())
            .filter(invitations::expires_at.gt(t))
            .order(invitations::id.asc())
            .limit(limit)
            .select(InvitationRow::as_select())
            .into_boxed();
        if let Some(a) = after {
            q = q.filter(invitations::id.gt(a));
        }
        q.load(conn).await.map_err(DbError::from)
    })
}

/// What revoking an invitation found.
pub(crate) enum InviteRevoked {
    Done,
    /// Revoked before: nothing changed.
    Already,
    Accepted,
    NotFound,
}

/// Revokes an invitation of the organization that is neither accepted nor
/// revoked (a conditional update), with its event.
pub(crate) async fn revoke_invitation(
    db: &Db,
    org_id: OrgId,
    invitation_id: InvitationId,
    event: &AuditEventRow,
) -> Result<InviteRevoked, DbError> {
    let t = now();
    db_run!(db, |conn| conn
        .transaction(async |conn| {
            let mine =
                invitations::table.filter(invitations::id.eq(invitation_id)).filter(invitations::org_id.eq(org_id));
            let n = diesel::update(
                mine.filter(invitations::accepted_at.is_null()).filter(invitations::revoked_at.is_null()),
            )
            .set(invitations::revoked_at.eq(Some(t)))
            .execute(conn)
            .await?;
            if n > 0 {
                diesel::insert_into(audit_events::table).values(event).execute(conn).await?;
                return Ok::<_, DbError>(InviteRevoked::Done);
            }
            let found: Option<Option<NaiveDateTime>> =
                mine.select(invitations::accepted_at).first(conn).await.optional()?;
            Ok(match found {
                None => InviteRevoked::NotFound,
                Some(Some(_)) => InviteRevoked::Accepted,
                Some(None) => InviteRevoked::Already,
            })
        })
        .await)
}

/// What a change to a member found.
pub(crate) enum MemberChange {
    Done,
    NotFound,
    /// The change would leave the organization without an owner.
    LastOwner,
    /// The actor may not make this change (why, for people).
    Refused(String),
}

/// A member's role in the organization, inside a transaction.
macro_rules! role_in_org {
    ($conn:expr, $org_id:expr, $user:expr) => {{
        let r: Option<String> = org_members::table
            .filter(org_members::org_id.eq($org_id))
            .filter(org_members::user_id.eq($user))
            .select(org_members::role)
            .first($conn)
            .await
            .optional()?;
        r.as_deref().and_then(OrgRole::parse)
    }};
}

/// Sets (`Some`) or removes (`None`) a member's role, as `actor` (a member,
/// or the holder of the API key acting), keeping at least one owner. The
/// organization row is written first, so changes to one organization's
/// members run one at a time (a row lock on PostgreSQL, the write lock on
/// SQLite): the actor's role and the target's are read under that lock, so
/// nobody changes a member above them or grants a role above their own on
/// the strength of a role they have just lost, and two changes cannot both
/// remove "the other" owner. The event's detail records the change.
pub(crate) async fn change_member(
    db: &Db,
    org_id: OrgId,
    actor: UserId,
    user_id: UserId,
    role: Option<OrgRole>,
    event: &AuditEventRow,
    notice: &EventRow,
) -> Result<MemberChange, DbError> {
    db_run!(db, |conn| conn
        .transaction(async |conn| {
            diesel::update(orgs::table.find(org_id)).set(orgs::slug.eq(orgs::slug)).execute(conn).await?;
            let mine: Option<OrgRole> = role_in_org!(&mut *conn, org_id, actor);
            let Some(mine) = mine.filter(|r| r.allows(Permission::OrgManage)) else {
                return Ok::<_, DbError>(MemberChange::Refused("the caller may no longer manage members".into()));
            };
            let current: Option<OrgRole> = role_in_org!(&mut *conn, org_id, user_id);
            let Some(current) = current else { return Ok(MemberChange::NotFound) };
            let leaving = role.is_none() && user_id == actor;
            if !leaving && current.rank() > mine.rank() {
                return Ok(MemberChange::Refused(format!("a {} cannot change a {}", mine.as_str(), current.as_str())));
            }
            if let Some(r) = role
                && r.rank() > mine.rank()
            {
                return Ok(MemberChange::Refused(format!("a {} cannot grant the role {}", mine.as_str(), r.as_str())));
            }
            if current == OrgRole::Owner && role != Some(OrgRole::Owner) {
                let owners: i64 = org_members::table
                    .filter(org_members::org_id.eq(org_id))
                    .filter(org_members::role.eq(OrgRole::Owner.as_str()))
                    .count()
                    .get_result(conn)
                    .await?;
                if owners <= 1 {
                    return Ok(MemberChange::LastOwner);
                }
            }
            let target =
                org_members::table.filter(org_members::org_id.eq(org_id)).filter(org_members::user_id.eq(user_id));
            let mut event = event.clone();
            match role {
                Some(r) => {
                    diesel::update(target).set(org_members::role.eq(r.as_str())).execute(conn).await?;
                    event.detail = Some(format!("{} -> {}", current.as_str(), r.as_str()));
                }
                None => {
                    diesel::delete(target).execute(conn).await?;
                    event.detail = Some(format!("was {}", current.as_str()));
                }
            }
            diesel::insert_into(audit_events::table).values(&event).execute(conn).await?;
            diesel::insert_into(events::table).values(notice).execute(conn).await?;
            Ok(MemberChange::Done)
        })
        .await)
}
