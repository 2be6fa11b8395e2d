//! `orgs.updateMemberRole` and `orgs.removeMember`: nobody changes a member
//! above them or grants a role above their own, and the last owner stays.

use trellis_schema::access::OrgRole;
use trellis_schema::health::Empty;
use trellis_schema::orgs::{
    MemberChangeReason, RemoveMember, RemoveMemberParams, UpdateMemberRole, UpdateMemberRoleParams,
};
use uuid::Uuid;

use super::store::{self, MemberChange};
use crate::audit::Event;
use crate::rpc::context::Ctx;
use crate::rpc::error::HandlerError;
use crate::rpc::registry::Handler;

fn refuse(reason: MemberChangeReason, message: String) -> HandlerError<MemberChangeReason> {
    HandlerError::Reason { reason, message: Some(message.into()), data: serde_json::Map::new() }
}

async fn change(ctx: &Ctx, user_id: Uuid, role: Option<OrgRole>) -> Result<Empty, HandlerError<MemberChangeReason>> {
    let access = ctx.org()?;
    let org = access.org_id.to_string();
    let target = user_id.to_string();
    let current = store::role_of(&ctx.state.db, &org, &target)
        .await?
        .ok_or_else(|| HandlerError::reason(MemberChangeReason::NotFound))?;
    let leaving = role.is_none() && user_id == access.user_id();
    if !leaving && current.rank() > access.role.rank() {
        return Err(refuse(
            MemberChangeReason::MissingPermission,
            format!("a {} cannot change a {}", access.role.as_str(), current.as_str()),
        ));
    }
    if let Some(r) = role
        && r.rank() > access.role.rank()
    {
        return Err(refuse(
            MemberChangeReason::MissingPermission,
            format!("a {} cannot grant the role {}", access.role.as_str(), r.as_str()),
        ));
    }
    let (action, detail) = match role {
        Some(r) => ("orgs.updateMemberRole", format!("{} -> {}", current.as_str(), r.as_str())),
        None => ("orgs.removeMember", format!("was {}", current.as_str())),
    };
    let event = Event::new(&ctx.meta, action).in_org(access).target(format!("user:{target}")).detail(detail).row();
    match store::change_member(&ctx.state.db, &org, &target, role, &event).await? {
        MemberChange::Done => {
            // Keys made by this member may now do less (or nothing).
            ctx.state.keys.clear();
            Ok(Empty {})
        }
        MemberChange::NotFound => Err(HandlerError::reason(MemberChangeReason::NotFound)),
        MemberChange::LastOwner => {
            Err(refuse(MemberChangeReason::InvalidTransition, "an organization keeps at least one owner".into()))
        }
    }
}

impl Handler for UpdateMemberRole {
    async fn handle(ctx: Ctx, p: UpdateMemberRoleParams) -> Result<Empty, HandlerError<MemberChangeReason>> {
        change(&ctx, p.user_id, Some(p.role)).await
    }
}

impl Handler for RemoveMember {
    async fn handle(ctx: Ctx, p: RemoveMemberParams) -> Result<Empty, HandlerError<MemberChangeReason>> {
        change(&ctx, p.user_id, None).await
    }
}
