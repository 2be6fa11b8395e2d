use trellis_schema::error::NoReason;
use trellis_schema::orgs::Org;
use trellis_schema::orgs::{Get, OrgParams};

use super::store;
use crate::access::OrgCtx;
use crate::rpc::error::HandlerError;
use crate::rpc::registry::Handler;

impl Handler for Get {
    async fn handle(ctx: OrgCtx, _: OrgParams) -> Result<Org, HandlerError<NoReason>> {
        let org = ctx.org.org_id;
        let row = store::find(&ctx.state.db, org).await?;
        let mut org_api = row.ok_or_else(|| anyhow::anyhow!("a checked organization has no row"))?.to_api();
        org_api.approval_thresholds = Some(super::update::thresholds(&ctx.state.db, org).await?);
        Ok(org_api)
    }
}
