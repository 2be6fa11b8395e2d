use chrono::Duration;
use trellis_schema::orgs::{Invitation, Invite, InviteParams, InviteReason};

use super::store;
use crate::access::OrgCtx;
use crate::audit::Event;
use crate::notifications::Event as Notice;
use trellis_schema::notifications::EventType;
use crate::auth::{codes, signin};
use crate::db::models::{InvitationRow, now, utc};
use crate::mail::Mail;
use crate::rpc::error::HandlerError;
use crate::rpc::registry::Handler;
use trellis_schema::ids::InvitationId;

pub(super) const INVITATION_DAYS: i64 = 7;

impl Handler for Invite {
    /// Nobody invites with a role above their own (a key: its holder's);
    /// limited per inviter, organization and recipient address.
    async fn handle(ctx: OrgCtx, p: InviteParams) -> Result<Invitation, HandlerError<InviteReason>> {
        let access = &ctx.org;
        if p.role.rank() > access.role.rank() {
            return Err(HandlerError::Reason {
                reason: InviteReason::MissingPermission,
                message: Some(
                    format!("a {} cannot invite with the role {}", access.role.as_str(), p.role.as_str()).into(),
                ),
                data: serde_json::Map::new(),
            });
        }
        let org_id = access.org_id;
        let key = p.email.normalized();
        if store::is_member_by_email(&ctx.state.db, org_id, &key).await? {
            return Err(HandlerError::Reason {
                reason: InviteReason::AlreadyExists,
                message: Some("that address already belongs to a member".into()),
                data: serde_json::Map::new(),
            });
        }
        ctx.state
            .invites
            .take(&ctx.state.config, access.user_id(), access.org_id, &key)
            .await
            .map_err(HandlerError::Common)?;
        let org = store::find(&ctx.state.db, org_id)
            .await?
            .ok_or_else(|| anyhow::anyhow!("a checked organization has no row"))?;
        let inviter = crate::auth::store::find_user(&ctx.state.db, access.user_id()).await?;
        let inviter =
            inviter.map(|u| if u.display_name.is_empty() { u.email } else { u.display_name }).unwrap_or_default();
        let token = codes::new_link_token();
        let t = now();
        let row = InvitationRow {
            id: InvitationId::new(),
            org_id,
            email_key: key,
            role: p.role.as_str().to_owned(),
            token_hash: ctx.state.auth.codes.hash("invitation", "", &token),
            invited_by: access.user_id(),
            created_at: t,
            expires_at: t + Duration::days(INVITATION_DAYS),
            accepted_at: None,
            revoked_at: None,
        };
        let mail = signin::mail_row(
            &ctx,
            p.email.as_str(),
            &format!("invite:{}", row.id),
            &Mail::Invitation {
                org: &org.name,
                inviter: &inviter,
                role: p.role.as_str(),
                token: &token,
                days: INVITATION_DAYS,
            },
        )?;
        let event = Event::new(&ctx.meta, "orgs.invite")
            .in_org(access)
            .target(format!("invitation:{}", row.id))
            .detail(format!("role {}", p.role.as_str()))
            .row();
        // An invitee who already has an account hears of it in the app too.
        let invitee = crate::auth::store::find_user_by_email(&ctx.state.db, &row.email_key).await?;
        let notice = invitee.map(|u| {
            Notice::new(
                EventType::InvitationReceived,
                vec![u.id],
                "Invitation to an organization",
                format!("{inviter} invited you to join {} as {}.", org.name, p.role.as_str()),
            )
            .with("orgName", org.name.clone())
            .with("role", p.role.as_str())
            .with("invitationId", row.id.to_string())
            .row()
        });
        store::invite(&ctx.state.db, &row, &mail, &event, notice.as_ref()).await?;
        ctx.state.mail.wake();
        if notice.is_some() {
            ctx.state.events.published();
        }
        Ok(Invitation { invitation_id: row.id, expires_at: utc(row.expires_at) })
    }
}
