use trellis_schema::Empty;
use trellis_schema::access::OrgRole;
use trellis_schema::error::NoReason;
use trellis_schema::orgs::Membership;
use trellis_schema::orgs::{List, OrgList};

use crate::access::UserCtx;
use crate::rpc::error::HandlerError;
use crate::rpc::registry::Handler;

impl Handler for List {
    async fn handle(ctx: UserCtx, _: Empty) -> Result<OrgList, HandlerError<NoReason>> {
        let me = ctx.caller;
        let found = crate::auth::store::user_with_memberships(&ctx.state.db, me.user_id).await?;
        let items = found
            .map(|(_, ms)| ms)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|(org, role)| Some(Membership { org: org.to_api(), role: OrgRole::parse(&role)? }))
            .collect();
        Ok(OrgList { items })
    }
}
