//! `orgs.listInvites` and `orgs.revokeInvite`.

use trellis_schema::Empty;
use trellis_schema::access::OrgRole;
use trellis_schema::error::NoReason;
use trellis_schema::list::Page;
use trellis_schema::orgs::{
    ListInvites, ListInvitesParams, PendingInvitation, RevokeInvite, RevokeInviteParams, RevokeInviteReason,
};
use trellis_schema::values::PageLimit;

use super::store::{self, InviteRevoked};
use crate::access::OrgCtx;
use crate::audit::Event;
use crate::db::models::utc;
use crate::rpc::error::HandlerError;
use crate::rpc::paging::{after_id, page};
use crate::rpc::registry::Handler;

impl Handler for ListInvites {
    async fn handle(ctx: OrgCtx, p: ListInvitesParams) -> Result<Page<PendingInvitation>, HandlerError<NoReason>> {
        let org = ctx.org.org_id;
        let after = after_id(p.cursor.as_ref())?;
        let limit = PageLimit::or_default(p.limit) as usize;
        let rows = store::pending_invitations(&ctx.state.db, org, after, limit as i64 + 1).await?;
        let page = page(
            rows,
            limit,
            |r| r.id,
            |r| {
                OrgRole::parse(&r.role).map(|role| PendingInvitation {
                    id: r.id,
                    email: r.email_key.clone(),
                    role,
                    invited_by: r.invited_by,
                    created_at: utc(r.created_at),
                    expires_at: utc(r.expires_at),
                })
            },
        );
        Ok(Page { items: page.items.into_iter().flatten().collect(), next_cursor: page.next_cursor })
    }
}

impl Handler for RevokeInvite {
    /// The token stops working at once; audited.
    async fn handle(ctx: OrgCtx, p: RevokeInviteParams) -> Result<Empty, HandlerError<RevokeInviteReason>> {
        let access = &ctx.org;
        let id = p.invitation_id;
        let event = Event::new(&ctx.meta, "orgs.revokeInvite").in_org(access).target(format!("invitation:{id}")).row();
        match store::revoke_invitation(&ctx.state.db, access.org_id, id, &event).await? {
            InviteRevoked::Done | InviteRevoked::Already => Ok(Empty {}),
            InviteRevoked::NotFound => Err(HandlerError::reason(RevokeInviteReason::NotFound)),
            InviteRevoked::Accepted => Err(HandlerError::Reason {
                reason: RevokeInviteReason::InvalidTransition,
                message: Some("the invitation was accepted already".into()),
                data: [("from".to_owned(), "accepted".into()), ("to".to_owned(), "revoked".into())]
                    .into_iter()
                    .collect(),
            }),
        }
    }
}
