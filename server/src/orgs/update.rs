use trellis_schema::error::NoReason;
use trellis_schema::orgs::Org;
use trellis_schema::orgs::{Update, UpdateOrgParams};

use super::store;
use crate::access::OrgCtx;
use crate::audit::Event;
use crate::rpc::error::HandlerError;
use crate::rpc::registry::Handler;

impl Handler for Update {
    async fn handle(ctx: OrgCtx, p: UpdateOrgParams) -> Result<Org, HandlerError<NoReason>> {
        let access = &ctx.org;
        let org = access.org_id;
        let row = match p.name {
            Some(name) => {
                let event = Event::new(&ctx.meta, "orgs.update")
                    .in_org(access)
                    .target(format!("org:{org}"))
                    .detail("renamed")
                    .row();
                store::rename(&ctx.state.db, org, name.as_str(), &event).await?
            }
            None => store::find(&ctx.state.db, org).await?,
        };
        Ok(row.ok_or_else(|| anyhow::anyhow!("a checked organization has no row"))?.to_api())
    }
}
