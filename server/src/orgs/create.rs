use trellis_schema::access::OrgRole;
use trellis_schema::orgs::Org;
use trellis_schema::orgs::{Create, CreateOrgParams, CreateOrgReason};

use super::store;
use crate::access::UserCtx;
use crate::audit::Event;
use crate::db::models::{OrgMemberRow, OrgRow, now};
use crate::rpc::error::HandlerError;
use crate::rpc::registry::Handler;
use trellis_schema::ids::OrgId;

impl Handler for Create {
    async fn handle(ctx: UserCtx, p: CreateOrgParams) -> Result<Org, HandlerError<CreateOrgReason>> {
        let me = ctx.caller.user_id;
        let t = now();
        let org = OrgRow {
            id: OrgId::new(),
            name: p.name.as_str().to_owned(),
            slug: p.slug.as_str().to_owned(),
            created_at: t,
        };
        let owner =
            OrgMemberRow { org_id: org.id, user_id: me, role: OrgRole::Owner.as_str().to_owned(), joined_at: t };
        let event =
            Event::new(&ctx.meta, "orgs.create").by_user(me).org(org.id).target(format!("org:{}", org.id)).row();
        if !store::create(&ctx.state.db, &org, &owner, &event).await? {
            return Err(HandlerError::Reason {
                reason: CreateOrgReason::AlreadyExists,
                message: Some(format!("the slug {:?} is taken", org.slug).into()),
                data: serde_json::Map::new(),
            });
        }
        Ok(org.to_api())
    }
}
