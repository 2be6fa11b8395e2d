//! `orgs.updateMemberRole` and `orgs.removeMember`: nobody changes a member
//! above them or grants a role above their own (for an API key: its
//! holder's role), and the last owner stays. The roles compared are read in
//! the change's transaction.

use trellis_schema::Empty;
use trellis_schema::access::OrgRole;
use trellis_schema::orgs::{
    MemberChangeReason, RemoveMember, RemoveMemberParams, UpdateMemberRole, UpdateMemberRoleParams,
};

use super::store::{self, MemberChange};
use crate::access::OrgCtx;
use crate::audit::Event;
use crate::notifications::Event as Notice;
use trellis_schema::notifications::EventType;
use crate::rpc::error::HandlerError;
use crate::rpc::registry::Handler;
use trellis_schema::ids::UserId;

fn refuse(reason: MemberChangeReason, message: String) -> HandlerError<MemberChangeReason> {
    HandlerError::Reason { reason, message: Some(message.into()), data: serde_json::Map::new() }
}

async fn change(
    ctx: &OrgCtx,
    user_id: UserId,
    role: Option<OrgRole>,
) -> Result<Empty, HandlerError<MemberChangeReason>> {
    let access = &ctx.org;
    let org = access.org_id;
    let target = user_id;
    let action = if role.is_some() { "orgs.updateMemberRole" } else { "orgs.removeMember" };
    let event = Event::new(&ctx.meta, action).in_org(access).target(format!("user:{target}")).row();
    let actor = access.user_id();
    let name = store::find(&ctx.state.db, org).await?.map(|o| o.name).unwrap_or_default();
    let notice = match role {
        Some(r) => Notice::new(
            EventType::RoleChanged,
            vec![target],
            "Your role changed",
            format!("Your role in {name} is now {}.", r.as_str()),
        )
        .with("role", r.as_str()),
        None => Notice::new(EventType::RemovedFromOrg, vec![target], "Removed from an organization", format!("You are no longer a member of {name}.")),
    }
    .in_org(org)
    .about(target)
    .with("orgName", name.clone())
    .row();
    match store::change_member(&ctx.state.db, org, actor, target, role, &event, &notice).await? {
        MemberChange::Done => {
            // Keys held by this member may now do less (or nothing).
            ctx.state.keys.cache.clear();
            ctx.state.events.published();
            Ok(Empty {})
        }
        MemberChange::NotFound => Err(HandlerError::reason(MemberChangeReason::NotFound)),
        MemberChange::LastOwner => {
            Err(refuse(MemberChangeReason::InvalidTransition, "an organization keeps at least one owner".into()))
        }
        MemberChange::Refused(why) => Err(refuse(MemberChangeReason::MissingPermission, why)),
    }
}

impl Handler for UpdateMemberRole {
    async fn handle(ctx: OrgCtx, p: UpdateMemberRoleParams) -> Result<Empty, HandlerError<MemberChangeReason>> {
        change(&ctx, p.user_id, Some(p.role)).await
    }
}

impl Handler for RemoveMember {
    async fn handle(ctx: OrgCtx, p: RemoveMemberParams) -> Result<Empty, HandlerError<MemberChangeReason>> {
        change(&ctx, p.user_id, None).await
    }
}
