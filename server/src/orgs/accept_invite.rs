use trellis_schema::access::OrgRole;
use trellis_schema::orgs::Membership;
use trellis_schema::orgs::{AcceptInvite, AcceptInviteParams, AcceptInviteReason};

use super::store::{self, Accepted};
use crate::access::UserCtx;
use crate::audit::Event;
use crate::db::models::{OrgMemberRow, now};
use crate::rpc::error::HandlerError;
use crate::rpc::registry::Handler;

impl Handler for AcceptInvite {
    /// Only the invited address may accept: the signed-in user's e-mail must
    /// be the one the invitation was sent to. The invitation must be pending
    /// and its sender still a member who may grant its role.
    async fn handle(ctx: UserCtx, p: AcceptInviteParams) -> Result<Membership, HandlerError<AcceptInviteReason>> {
        ctx.state.auth.throttle.ip(ctx.ip_addr()).await.map_err(HandlerError::Common)?;
        let hash = ctx.state.auth.codes.hash("invitation", "", p.token.expose());
        let Some((inv, org)) = store::find_invitation(&ctx.state.db, &hash).await? else {
            return Err(HandlerError::reason(AcceptInviteReason::TokenInvalid));
        };
        if inv.accepted_at.is_some() {
            return Err(HandlerError::reason(AcceptInviteReason::TokenUsed));
        }
        if inv.revoked_at.is_some() {
            return Err(HandlerError::reason(AcceptInviteReason::InvitationRevoked));
        }
        if inv.expires_at <= now() {
            return Err(HandlerError::reason(AcceptInviteReason::TokenExpired));
        }
        let user = crate::auth::store::signed_in_user(&ctx, ctx.caller).await?;
        if user.email_key != inv.email_key {
            let event = Event::new(&ctx.meta, "orgs.acceptInvite")
                .by_user(user.id)
                .org(inv.org_id)
                .failed("INVITATION_MISMATCH")
                .row();
            crate::audit::store::record(&ctx.state.db, event).await?;
            return Err(HandlerError::reason(AcceptInviteReason::InvitationMismatch));
        }
        let role = OrgRole::parse(&inv.role).ok_or_else(|| anyhow::anyhow!("stored role {:?}", inv.role))?;
        let member = OrgMemberRow { org_id: inv.org_id, user_id: user.id, role: inv.role.clone(), joined_at: now() };
        let event = Event::new(&ctx.meta, "orgs.acceptInvite")
            .by_user(user.id)
            .org(inv.org_id)
            .target(format!("invitation:{}", inv.id))
            .detail(format!("joined as {}", inv.role))
            .row();
        match store::accept(&ctx.state.db, &inv, role, &member, &event).await? {
            Accepted::Joined => Ok(Membership { org: org.to_api(), role }),
            Accepted::Used => Err(HandlerError::reason(AcceptInviteReason::TokenUsed)),
            Accepted::Expired => Err(HandlerError::reason(AcceptInviteReason::TokenExpired)),
            Accepted::Revoked => Err(HandlerError::reason(AcceptInviteReason::InvitationRevoked)),
            Accepted::InviterMayNot => {
                let event = Event::new(&ctx.meta, "orgs.acceptInvite")
                    .by_user(user.id)
                    .org(inv.org_id)
                    .target(format!("invitation:{}", inv.id))
                    .failed("INVITATION_REVOKED")
                    .row();
                crate::audit::store::record(&ctx.state.db, event).await?;
                Err(HandlerError::Reason {
                    reason: AcceptInviteReason::InvitationRevoked,
                    message: Some("the member who sent this invitation may no longer grant its role".into()),
                    data: serde_json::Map::new(),
                })
            }
            Accepted::AlreadyMember => Err(HandlerError::reason(AcceptInviteReason::AlreadyExists)),
        }
    }
}
